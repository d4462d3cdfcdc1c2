//! The 32-bit helper: x86 drivers run in the i686 build of this crate. The 64-bit CLI finds it
//! next to itself (`<target-dir>/i686-unknown-linux-gnu/<profile>/rvblk-harness`) or through
//! `RVBLK_HARNESS_X86`, runs it with the same arguments and relays its exit status.
//!
//! The arm64 helper works the same way for ARM64 drivers: the aarch64 build of this crate
//! (`<target-dir>/aarch64-unknown-linux-gnu/<profile>/rvblk-harness` or `RVBLK_HARNESS_ARM64`),
//! run under `qemu-aarch64` user mode unless the host is arm64 (`docs/arm64.md` §1).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const X86_TRIPLE: &str = "i686-unknown-linux-gnu";
pub const ARM64_TRIPLE: &str = "aarch64-unknown-linux-gnu";

pub fn host_is_64() -> bool {
    cfg!(target_pointer_width = "64")
}

/// Candidate locations of the i686 build for a given executable path.
pub fn candidates(exe: &Path) -> Vec<PathBuf> {
    candidates_for(exe, X86_TRIPLE)
}

/// Candidate locations of the `triple` build for a given executable path.
pub fn candidates_for(exe: &Path, triple: &str) -> Vec<PathBuf> {
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
            out.push(target.join(triple).join(&profile).join("rvblk-harness"));
            for p in ["release", "debug"] {
                let c = target.join(triple).join(p).join("rvblk-harness");
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
        crate::checks::crash::CRASH_EXIT
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
        out.status
            .code()
            .unwrap_or(crate::checks::crash::CRASH_EXIT),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// The aarch64 build of the harness: `RVBLK_HARNESS_ARM64`, else next to this executable.
pub fn arm64_helper() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RVBLK_HARNESS_ARM64") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!(
            "RVBLK_HARNESS_ARM64={} does not exist",
            p.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let c = candidates_for(&exe, ARM64_TRIPLE);
    if let Some(p) = c.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    Err(format!(
        "arm64 driver: the aarch64 harness helper is missing (looked at {}). Build it with \
         `cargo build --release --target {ARM64_TRIPLE} -p rvblk-harness` (linker and sysroot: \
         see docs/arm64.md), or point RVBLK_HARNESS_ARM64 at it",
        c.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The user-mode emulator for the aarch64 helper: `RVBLK_QEMU_AARCH64`, else `qemu-aarch64` or
/// `qemu-aarch64-static` on PATH.
pub fn qemu_aarch64() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RVBLK_QEMU_AARCH64") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["qemu-aarch64", "qemu-aarch64-static"] {
            let c = dir.join(name);
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    Err(
        "arm64 driver: qemu-aarch64 (Debian: qemu-user) is not on PATH; set \
         RVBLK_QEMU_AARCH64 to an aarch64 user-mode emulator"
            .into(),
    )
}

/// The command that runs the aarch64 helper with `args`: directly on an arm64 host, else under
/// `qemu-aarch64 -L SYSROOT` (`RVBLK_AARCH64_SYSROOT`, default `/usr/aarch64-linux-gnu`, where
/// Debian's libc6-arm64-cross puts the dynamic loader and libc).
pub fn arm64_command(args: &[String]) -> Result<Command, String> {
    let h = arm64_helper()?;
    let mut c = if cfg!(target_arch = "aarch64") {
        Command::new(&h)
    } else {
        let sysroot = std::env::var_os("RVBLK_AARCH64_SYSROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/aarch64-linux-gnu"));
        let mut c = Command::new(qemu_aarch64()?);
        c.arg("-L").arg(sysroot).arg(&h);
        c
    };
    c.args(args);
    Ok(c)
}

/// Runs the arm64 helper with `args`; returns its exit code (stdout/stderr are inherited).
pub fn run_arm64(args: &[String]) -> Result<i32, String> {
    let mut c = arm64_command(args)?;
    let st = c
        .status()
        .map_err(|e| format!("cannot run {}: {e}", c.get_program().to_string_lossy()))?;
    Ok(st.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        eprintln!("arm64 helper killed by signal {:?}", st.signal());
        crate::checks::crash::CRASH_EXIT
    }))
}
