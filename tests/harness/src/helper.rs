//! The 32-bit helper: x86 drivers run in the i686 build of this crate. The 64-bit CLI finds it
//! next to itself (`<target-dir>/i686-unknown-linux-gnu/<profile>/rvblk-harness`) or through
//! `RVBLK_HARNESS_X86`, runs it with the same arguments and relays its exit status.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const X86_TRIPLE: &str = "i686-unknown-linux-gnu";

pub fn host_is_64() -> bool {
    cfg!(target_pointer_width = "64")
}

/// Candidate locations of the i686 build for a given executable path.
pub fn candidates(exe: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    // <target>/<profile>/rvblk-harness or <target>/<profile>/deps/<test-binary>
    let mut dir = exe.parent().map(Path::to_path_buf);
    if dir
        .as_ref()
        .and_then(|d| d.file_name())
        .is_some_and(|n| n == "deps")
    {
        dir = dir.and_then(|d| d.parent().map(Path::to_path_buf));
    }
    if let Some(profile_dir) = dir {
        let profile = profile_dir.file_name().map(|s| s.to_os_string());
        if let (Some(target), Some(profile)) = (profile_dir.parent(), profile) {
            out.push(target.join(X86_TRIPLE).join(&profile).join("rvblk-harness"));
            for p in ["release", "debug"] {
                let c = target.join(X86_TRIPLE).join(p).join("rvblk-harness");
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
    }
    out
}

pub fn x86_helper() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RVBLK_HARNESS_X86") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!("RVBLK_HARNESS_X86={} does not exist", p.display()));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let c = candidates(&exe);
    for p in &c {
        if p.is_file() {
            return Ok(p.clone());
        }
    }
    Err(format!(
        "x86 driver: the 32-bit harness helper is missing (looked at {}). Build it with \
         `cargo build --target {X86_TRIPLE} -p rvblk-harness` (add --release to match a release \
         build), or point RVBLK_HARNESS_X86 at it",
        c.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Runs the helper with `args`; returns its exit code (stdout/stderr are inherited).
pub fn run_x86(args: &[String]) -> Result<i32, String> {
    let h = x86_helper()?;
    let st = Command::new(&h)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", h.display()))?;
    Ok(st.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        eprintln!("x86 helper killed by signal {:?}", st.signal());
        crate::crash::CRASH_EXIT
    }))
}

/// Runs the helper and captures stdout (stderr inherited).
pub fn run_x86_capture(args: &[String]) -> Result<(i32, String), String> {
    let h = x86_helper()?;
    let out = Command::new(&h)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", h.display()))?;
    Ok((
        out.status.code().unwrap_or(crate::crash::CRASH_EXIT),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}
