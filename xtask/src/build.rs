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

/// `cargo +nightly <subcommand>` for one kernel package and architecture, with build-std and the
/// x86 target spec, as both the build and clippy need it.
fn kernel_cargo(subcommand: &str, package: &str, arch: Arch, features: &[&str]) -> Command {
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
            subcommand,
            "--release",
            "--package",
            package,
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
    c
}

/// Builds one kernel binary and returns the path of the linked image.
pub fn kernel_binary(package: &str, bin: &str, arch: Arch, features: &[&str]) -> Result<PathBuf> {
    let mut c = kernel_cargo("build", package, arch, features);
    c.args(["--bin", bin]);
    cmd::run(&mut c)?;
    let target_dir = kernel_target_dir();
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

/// Clippy over the kernel workspace with its lint set (`driver/windows/Cargo.toml`, the same as
/// the root workspace's), every warning an error: each shipped package and architecture, and the
/// self-test feature builds.
pub fn kernel_clippy() -> Result<()> {
    let mut runs: Vec<(&str, Arch, Vec<&str>)> = Vec::new();
    for arch in STORPORT_ARCHES {
        runs.push(("rvblk-storport", arch, vec![]));
    }
    for arch in [X86, AMD64] {
        runs.push(("rvblk-scsiport", arch, vec![]));
        runs.push((
            "rvblk-storport",
            arch,
            vec!["selftest-double-complete", "selftest-overread"],
        ));
    }
    for (package, arch, features) in runs {
        let mut c = kernel_cargo("clippy", package, arch, &features);
        c.args(["--", "-D", "warnings"]);
        cmd::run(&mut c)?;
    }
    Ok(())
}
