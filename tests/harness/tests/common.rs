//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rvblk-harness"))
}

pub fn package_dir() -> PathBuf {
    std::env::var_os("RVBLK_PACKAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/package"))
}

/// The packaged driver for `arch` ("amd64" or "x86"); panics with a clear message if missing.
pub fn packaged(arch: &str) -> PathBuf {
    let p = package_dir().join(arch).join("rvblk.sys");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask package` first (or set RVBLK_PACKAGE_DIR)",
        p.display()
    );
    p
}

/// The packaged driver a personality loads: `rvblk.sys` under StorPort, the SCSIPORT build
/// `rvblkxp.sys` under xp (`xp/` for x86, `xp/<arch>/` otherwise).
pub fn packaged_for(arch: &str, personality: &str) -> PathBuf {
    if personality != "xp" {
        return packaged(arch);
    }
    let dir = package_dir().join("xp");
    let p = if arch == "x86" {
        dir.join("rvblkxp.sys")
    } else {
        dir.join(arch).join("rvblkxp.sys")
    };
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask package` first (or set RVBLK_PACKAGE_DIR)",
        p.display()
    );
    p
}

/// Makes sure the 32-bit helper exists next to the harness binary (builds it if needed).
pub fn ensure_x86_helper() {
    if std::env::var_os("RVBLK_HARNESS_X86").is_some() {
        return;
    }
    let exe = harness();
    let c = rvblk_harness::host::helper::candidates(&exe);
    if c.iter().any(|p| p.is_file()) {
        return;
    }
    let profile_dir = exe.parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let release = profile_dir.file_name().unwrap() == "release";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir)
        .args([
            "build",
            "-p",
            "rvblk-harness",
            "--bin",
            "rvblk-harness",
            "--target",
            rvblk_harness::host::helper::X86_TRIPLE,
        ]);
    if release {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("run cargo to build the x86 helper");
    assert!(st.success(), "building the i686 harness helper failed");
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Out {
    run_env(args, &[])
}

/// `run` with extra environment variables for the harness.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = Command::new(harness())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run rvblk-harness");
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    println!(
        "$ rvblk-harness {}\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out
}

/// Compiles `testdata/tiny.rs` for a Windows target into a kernel-style PE.
pub fn tiny_pe(triple: &str, cfgs: &[&str]) -> PathBuf {
    compile_testdata("tiny", triple, cfgs)
}

/// Compiles `testdata/mock.rs` (a minimal virtual miniport) for a Windows target.
pub fn mock_pe(triple: &str, cfgs: &[&str]) -> PathBuf {
    compile_testdata("mock", triple, cfgs)
}

/// Builds `testdata/<name>.rs` into `<tmp>/<name>_<triple><cfgs>.sys` with rustc + rust-lld.
fn compile_testdata(name: &str, triple: &str, cfgs: &[&str]) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}_{triple}{}.sys", cfgs.join("_")));
    let tmp = private_path(&out);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{name}.rs"));
    let mut c = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    c.args(["--edition", "2021", "--target", triple])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=1",
            "-C",
            "linker=rust-lld",
            "-A",
            "warnings",
        ])
        .args([
            "-C",
            "link-arg=/ENTRY:DriverEntry",
            "-C",
            "link-arg=/SUBSYSTEM:NATIVE",
        ])
        .args(["-C", "link-arg=/DRIVER", "-C", "link-arg=/NODEFAULTLIB"])
        .args(["--crate-type", "bin", "-o"])
        .arg(&tmp)
        .arg(&src);
    for cfg in cfgs {
        c.args(["--cfg", cfg]);
    }
    let st = c.status().expect("rustc");
    assert!(
        st.success(),
        "compiling testdata/{name}.rs for {triple} failed (is the target installed?)"
    );
    publish(&tmp, &out);
    out
}

/// A private name next to `out` (process id + per-call counter): tests run in parallel and may
/// build the same PE at once.
/// Inside a private directory: rustc keeps its intermediate objects next to the output, named
/// after the crate, so two builds of one test crate must not share a directory.
fn private_path(out: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = out.with_extension(format!("build.{}.{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a private build directory");
    dir.join(out.file_name().expect("an output file name"))
}

/// Moves the private build into place atomically (rename), so readers see a whole file.
fn publish(tmp: &Path, out: &Path) {
    std::fs::rename(tmp, out).expect("rename the built test PE into place");
    if let Some(dir) = tmp.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Whether the arm64 cases can run: `RVBLK_HARNESS_ARM64` names the aarch64 helper (`cargo xtask
/// test` builds it and sets it where the cross toolchain and qemu-aarch64 exist). Without it a
/// case is reported as skipped on stderr, unless `RVBLK_REQUIRE_ARM64` is set (CI), where the
/// missing helper fails the case.
pub fn arm64_ready(case: &str) -> bool {
    if std::env::var_os("RVBLK_HARNESS_ARM64").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("RVBLK_REQUIRE_ARM64").is_none(),
        "{case}: RVBLK_REQUIRE_ARM64 is set but RVBLK_HARNESS_ARM64 is not (build the aarch64 \
         helper: docs/arm64.md)"
    );
    eprintln!("{case}: SKIPPED: no aarch64 harness helper (RVBLK_HARNESS_ARM64 unset)");
    false
}
