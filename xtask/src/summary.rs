//! `test`, `bench` and `fuzz`: run the suites and report.

use crate::arm64;
use crate::cmd::{self, Result};
use crate::package;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    /// Runs a cargo test invocation, echoing its output and adding up its `test result:` lines.
    fn cargo_test(&mut self, what: &str, cmd: &mut Command) {
        eprintln!("xtask: {what}: {}", cmd::describe(cmd));
        cmd.stdout(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.fail(format!("{what}: cannot start: {e}"));
                return;
            }
        };
        let mut counted = false;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                println!("{line}");
                if let Some((p, f)) = parse_result_line(&line) {
                    self.passed += p;
                    self.failed += f;
                    counted = true;
                }
            }
        }
        let ok = child.wait().is_ok_and(|s| s.success());
        if !ok {
            self.failures.push(what.to_string());
            if !counted {
                // The suite did not even run (build failure): count it as one failure.
                self.failed += 1;
            }
        }
    }

    fn check(&mut self, what: &str, result: Result<()>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(e) => self.fail(format!("{what}: {e}")),
        }
    }

    fn fail(&mut self, why: String) {
        eprintln!("xtask: FAILED: {why}");
        self.failed += 1;
        self.failures.push(why);
    }
}

/// `test result: ok. 12 passed; 0 failed; …` → (12, 0).
fn parse_result_line(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let num = |key: &str| -> Option<u64> {
        let before = rest.split(key).next()?;
        before
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    Some((num(" passed")?, num(" failed")?))
}

fn harness_env(cmd: &mut Command, pkg: &Path) {
    let t = cmd::target_dir();
    cmd.env("RVBLK_PACKAGE_DIR", pkg)
        .env("RVBLK_HARNESS", t.join("release").join("rvblk-harness"))
        .env(
            "RVBLK_HARNESS_X86",
            t.join("i686-unknown-linux-gnu")
                .join("release")
                .join("rvblk-harness"),
        )
        .env("RVBLK_SELFTEST_DIR", t.join("selftest"));
}

pub(crate) fn build_harness() -> Result<()> {
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "rvblk-harness"]))?;
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "rvblk-harness",
        "--target",
        "i686-unknown-linux-gnu",
    ]))
}

pub fn test(args: &[String]) -> Result<()> {
    let fuzz_seconds: u64 = match args {
        [] => 20,
        [flag, n] if flag == "--fuzz-seconds" => {
            n.parse().map_err(|_| "--fuzz-seconds needs a number")?
        }
        _ => return Err("test takes no arguments except --fuzz-seconds N".into()),
    };
    let mut tally = Tally::default();
    let pkg = match package::run(&[]) {
        Ok(p) => {
            tally.passed += 1;
            p
        }
        Err(e) => {
            tally.fail(format!("package: {e}"));
            return finish(tally);
        }
    };
    tally.check("harness build (x64 and x86 hosts)", build_harness());
    tally.check(
        "kernel clippy (x86, x64, arm64; shared lint set)",
        crate::build::kernel_clippy(),
    );
    let arm64 = test_arm64(&mut tally);

    let mut c = cmd::cargo();
    c.args([
        "test",
        "--workspace",
        "--release",
        "--",
        "--include-ignored",
    ]);
    harness_env(&mut c, &pkg);
    if let Some((tc, helper)) = &arm64 {
        // The MEMDISK cases add the arm64 flavour when the helper is reachable.
        arm64::env(&mut c, tc, helper);
    }
    // Run under `cargo xtask test`, the arm64 cases never report themselves skipped.
    c.env("RVBLK_REQUIRE_ARM64", "1");
    tally.cargo_test(
        "workspace tests (host, package checks, harness, MEMDISK end-to-end)",
        &mut c,
    );

    let mut c = cmd::cargo();
    c.args([
        "test",
        "--release",
        "-p",
        "rvblk-abi",
        "-p",
        "rvblk-core",
        "--target",
        "i686-unknown-linux-gnu",
    ]);
    tally.cargo_test("x86 layouts and core on a 32-bit host", &mut c);

    crate::oracle::checks(&pkg, |what, r| tally.check(what, r));

    for target in ["cdb", "discovery", "control"] {
        tally.check(
            &format!("fuzz {target} ({fuzz_seconds} s)"),
            run_fuzz(target, fuzz_seconds),
        );
    }
    finish(tally)
}

/// Builds the aarch64 harness that runs the arm64 `rvblk.sys` under qemu-aarch64
/// (`docs/arm64.md`); the workspace tests then run its compliance suite, fault sweep, `run` CLI
/// and MEMDISK cases (`suite_arm64_win8`, ..., the MEMDISK `[arm64 win8]` flavour). A missing
/// cross toolchain or emulator is a failure, like a missing QEMU: every shipped binary runs.
/// Returns what the workspace tests need to reach the helper.
fn test_arm64(tally: &mut Tally) -> Option<(arm64::Toolchain, std::path::PathBuf)> {
    let tc = match arm64::toolchain() {
        Ok(tc) => tc,
        Err(e) => {
            tally.fail(format!("arm64: {e} (.ci/run installs what it needs)"));
            return None;
        }
    };
    match arm64::build(&tc) {
        Ok(helper) => {
            tally.passed += 1;
            Some((tc, helper))
        }
        Err(e) => {
            tally.fail(format!("arm64 harness build: {e}"));
            None
        }
    }
}

fn finish(t: Tally) -> Result<()> {
    for f in &t.failures {
        eprintln!("xtask: failed: {f}");
    }
    println!("{} passed, {} failed", t.passed, t.failed);
    if t.failed == 0 && t.failures.is_empty() {
        Ok(())
    } else {
        Err("some tests failed".into())
    }
}

fn ensure_cargo_fuzz() -> Result<()> {
    let ok = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if ok.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    cmd::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

fn run_fuzz(target: &str, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = cmd::root().join("fuzz");
    let mut c = Command::new("cargo");
    c.current_dir(&fuzz_dir)
        .env_remove("CARGO_TARGET_DIR")
        .args([
            "+nightly",
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
    cmd::run(&mut c)
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let target = args
        .first()
        .ok_or("fuzz needs a target: cdb, discovery or control")?;
    if !matches!(target.as_str(), "cdb" | "discovery" | "control") {
        return Err(format!(
            "unknown fuzz target {target:?} (cdb, discovery or control)"
        ));
    }
    let seconds = match args.get(1) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("not a number of seconds: {s:?}"))?,
        None => 600,
    };
    run_fuzz(target, seconds)
}

pub fn bench(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err("bench takes no arguments".into());
    }
    let pkg = package::run(&[])?;
    build_harness()?;
    let harness = cmd::target_dir().join("release").join("rvblk-harness");
    let mut c = Command::new(&harness);
    c.arg("bench")
        .arg("--driver")
        .arg(pkg.join("amd64").join("rvblk.sys"))
        .arg("--x86-driver")
        .arg(pkg.join("x86").join("rvblk.sys"));
    harness_env(&mut c, &pkg);
    match arm64::toolchain() {
        Ok(tc) => {
            let helper = arm64::build(&tc)?;
            c.arg("--arm64-driver")
                .arg(pkg.join("arm64").join("rvblk.sys"));
            arm64::env(&mut c, &tc, &helper);
        }
        Err(e) => eprintln!("xtask: arm64 bench SKIPPED: {e}"),
    }
    cmd::run(&mut c)?;
    cmd::run(cmd::cargo().args([
        "run",
        "--release",
        "-q",
        "-p",
        "rvblk-winpe",
        "--bin",
        "winpe-bench",
    ]))
}

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn parses_cargo_test_result_lines() {
        assert_eq!(
            parse_result_line("test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.1s"),
            Some((12, 0))
        );
        assert_eq!(
            parse_result_line("test result: FAILED. 1 passed; 2 failed; 0 ignored"),
            Some((1, 2))
        );
        assert_eq!(parse_result_line("running 3 tests"), None);
    }
}
