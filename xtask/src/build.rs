//! Kernel-mode builds: nightly + build-std for the Windows targets (x86 through the soft-float
//! target spec, so no x87/MMX/SSE instruction can appear), linked by rust-lld.

use crate::cmd::{self, Result};
use std::path::PathBuf;
use std::process::Command;

/// An architecture the package ships.
#[derive(Clone, Copy, Debug)]
pub struct Arch {
    /// Directory name in the package (INF convention).
    pub dir: &'static str,
    /// Rust target triple or target-spec path relative to `driver/`.
    pub target: &'static str,
    pub spec_file: bool,
}

pub const X86: Arch = Arch {
    dir: "x86",
    target: "targets/i686-rvblk-windows-kernel.json",
    spec_file: true,
};
pub const AMD64: Arch = Arch {
    dir: "amd64",
    target: "x86_64-pc-windows-msvc",
    spec_file: false,
};
pub const ARM64: Arch = Arch {
    dir: "arm64",
    target: "aarch64-pc-windows-msvc",
    spec_file: false,
};
pub const STORPORT_ARCHES: [Arch; 3] = [X86, AMD64, ARM64];

fn driver_dir() -> PathBuf {
    cmd::root().join("driver")
}

fn kernel_target_dir() -> PathBuf {
    cmd::target_dir().join("kernel")
}

/// Makes sure the nightly toolchain has rust-src (build-std) and the harness target exists.
pub fn ensure_toolchains() -> Result<()> {
    let mut c = Command::new("rustup");
    c.args(["component", "add", "rust-src", "--toolchain", "nightly"]);
    cmd::run(&mut c)?;
    let mut c = Command::new("rustup");
    c.args([
        "target",
        "add",
        "i686-unknown-linux-gnu",
        "x86_64-pc-windows-msvc",
        "i686-pc-windows-msvc",
        "aarch64-pc-windows-msvc",
    ]);
    cmd::run(&mut c)
}

/// Builds one kernel binary and returns the path of the linked image.
pub fn kernel_binary(package: &str, bin: &str, arch: Arch, features: &[&str]) -> Result<PathBuf> {
    let target = if arch.spec_file {
        driver_dir()
            .join(arch.target)
            .to_string_lossy()
            .into_owned()
    } else {
        arch.target.to_string()
    };
    // One target directory for every variant: a feature change rebuilds only the top crate, and
    // the binary is copied out right after each build.
    let target_dir = kernel_target_dir();
    let mut c = Command::new("cargo");
    c.current_dir(driver_dir().join("windows"))
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "+nightly",
            "build",
            "--release",
            "--package",
            package,
            "--bin",
            bin,
            "--target",
            &target,
        ])
        .args([
            "-Z",
            "build-std=core,compiler_builtins",
            "-Z",
            "build-std-features=compiler-builtins-mem",
        ]);
    if arch.spec_file {
        c.args(["-Z", "json-target-spec"]);
        // LLVM puts x86 COFF jump tables inside .text; with none, every byte of .text is an
        // instruction and the package test's linear disassembly (no x87/MMX/SSE) is exact.
        c.env("RUSTFLAGS", "-Cjump-tables=no");
    }
    if !features.is_empty() {
        c.args(["--features", &features.join(",")]);
    }
    cmd::run(&mut c)?;
    let triple_dir = if arch.spec_file {
        "i686-rvblk-windows-kernel"
    } else {
        arch.target
    };
    let out = target_dir
        .join(triple_dir)
        .join("release")
        .join(format!("{bin}.exe"));
    if out.is_file() {
        Ok(out)
    } else {
        Err(format!("the build did not produce {}", out.display()))
    }
}
