//! The aarch64 build of the harness, which runs the arm64 `rvblk.sys` under `qemu-aarch64`
//! user mode (`docs/arm64.md` §1): finding the cross toolchain and the emulator, building it,
//! and the environment the harness CLI and the MEMDISK tests need to reach it.

use crate::cmd::{self, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TRIPLE: &str = "aarch64-unknown-linux-gnu";
/// Debian's libc6-arm64-cross: the aarch64 dynamic loader and libc for `qemu-aarch64 -L`.
const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// What running the arm64 driver needs on this machine.
pub struct Toolchain {
    pub qemu: PathBuf,
    pub linker: PathBuf,
    pub sysroot: PathBuf,
}

fn on_path(pred: impl Fn(&str) -> bool) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut hits: Vec<PathBuf> = std::env::split_paths(&path)
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&pred))
        .collect();
    // The unversioned name (a symlink to the default compiler) first, else a versioned one
    // (Debian's gcc-N-aarch64-linux-gnu installs only aarch64-linux-gnu-gcc-N).
    hits.sort_by_key(|p| (p.file_name().map(|n| n.len()), p.clone()));
    hits.into_iter().next()
}

/// Finds qemu-aarch64, an aarch64 Linux C linker, the sysroot and the Rust target, or says
/// which is missing and which package provides it.
pub fn toolchain() -> Result<Toolchain> {
    let qemu = match std::env::var_os("RVBLK_QEMU_AARCH64") {
        Some(p) => PathBuf::from(p),
        None => on_path(|n| n == "qemu-aarch64" || n == "qemu-aarch64-static")
            .ok_or("qemu-aarch64 not found (Debian: qemu-user)")?,
    };
    let linker = on_path(|n| {
        n == "aarch64-linux-gnu-gcc"
            || n.strip_prefix("aarch64-linux-gnu-gcc-")
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    })
    .ok_or("aarch64-linux-gnu-gcc not found (Debian: gcc-aarch64-linux-gnu or gcc-N-aarch64-linux-gnu)")?;
    let sysroot =
        PathBuf::from(std::env::var_os("RVBLK_AARCH64_SYSROOT").unwrap_or_else(|| SYSROOT.into()));
    if !sysroot.join("lib").is_dir() {
        return Err(format!(
            "{} missing (Debian: libc6-dev-arm64-cross)",
            sysroot.display()
        ));
    }
    let rustc_sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(cmd::root())
        .output()
        .map_err(|e| format!("rustc --print sysroot: {e}"))?;
    let rs = PathBuf::from(String::from_utf8_lossy(&rustc_sysroot.stdout).trim());
    if !rs.join("lib/rustlib").join(TRIPLE).is_dir() {
        return Err(format!(
            "Rust target {TRIPLE} not installed (rustup target add {TRIPLE})"
        ));
    }
    Ok(Toolchain {
        qemu,
        linker,
        sysroot,
    })
}

/// The aarch64 harness binary built by [`build`].
pub fn helper() -> PathBuf {
    cmd::target_dir()
        .join(TRIPLE)
        .join("release")
        .join("rvblk-harness")
}

/// `cargo build --release --target aarch64-unknown-linux-gnu -p rvblk-harness`.
pub fn build(tc: &Toolchain) -> Result<PathBuf> {
    let mut c = cmd::cargo();
    c.args([
        "build",
        "--release",
        "-p",
        "rvblk-harness",
        "--bin",
        "rvblk-harness",
        "--target",
        TRIPLE,
    ])
    .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", &tc.linker);
    cmd::run(&mut c)?;
    Ok(helper())
}

/// Lets the x64 harness CLI (and the MEMDISK tests through it) delegate arm64 drivers.
pub fn env(c: &mut Command, tc: &Toolchain, helper: &Path) {
    c.env("RVBLK_HARNESS_ARM64", helper)
        .env("RVBLK_QEMU_AARCH64", &tc.qemu)
        .env("RVBLK_AARCH64_SYSROOT", &tc.sysroot);
}
