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

    for target in FUZZ_TARGETS {
        tally.check(
            &format!("fuzz {} ({fuzz_seconds} s)", target.name),
            run_fuzz(target, fuzz_seconds).map(|_| ()),
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

/// One libFuzzer target of `fuzz/` and how it is run (`docs/fuzzing.md`).
struct FuzzTarget {
    name: &'static str,
    /// `-max_len`: the largest input that still decodes to something new.
    max_len: u32,
    /// A libFuzzer dictionary under `fuzz/`, for magic values the mutator cannot guess.
    dict: Option<&'static str>,
}

const FUZZ_TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "cdb",
        max_len: 64,
        dict: None,
    },
    FuzzTarget {
        name: "discovery",
        max_len: 4096,
        dict: Some("dict/discovery.dict"),
    },
    FuzzTarget {
        name: "control",
        // An SRB_IO_CONTROL header and one request with a path of a few hundred characters.
        max_len: 4096,
        dict: None,
    },
];

/// What libFuzzer reports at the end of a run (`-print_final_stats=1` and the `DONE` line).
#[derive(Debug, Default, PartialEq)]
struct FuzzStats {
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus: Option<u64>,
    rss_start_mb: Option<u64>,
    peak_rss_mb: Option<u64>,
}

impl FuzzStats {
    fn line(&mut self, line: &str) {
        let field = |key: &str| -> Option<u64> {
            let rest = line.split(key).nth(1)?.trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            self.executions = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            self.exec_per_sec = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::peak_rss_mb:") {
            self.peak_rss_mb = v.trim().parse().ok();
        } else if line.contains("\tINITED ") && self.rss_start_mb.is_none() {
            self.rss_start_mb = field("rss:");
        } else if line.contains("\tDONE ") {
            self.coverage = field("cov:");
            self.features = field("ft:");
            self.corpus = field("corp:");
        }
    }

    fn summary(&self, target: &str) -> String {
        let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        format!(
            "fuzz {target}: {} executions, {} exec/s, coverage {} edges ({} features), \
             corpus {} inputs, RSS {} MB at start, {} MB peak",
            n(self.executions),
            n(self.exec_per_sec),
            n(self.coverage),
            n(self.features),
            n(self.corpus),
            n(self.rss_start_mb),
            n(self.peak_rss_mb),
        )
    }
}

/// Runs one target for `seconds` and prints libFuzzer's final statistics as one line.
///
/// Built without a sanitizer (the core forbids `unsafe`, so ASan had nothing to find, and its
/// allocator quarantine was what made RSS grow), with overflow checks, and without
/// compare tracing (the dictionary supplies the magic values); see `docs/fuzzing.md`. New inputs
/// go to `fuzz/target/corpus/<target>`; the checked-in seeds in `fuzz/corpus/<target>` are only
/// read.
fn run_fuzz(target: &FuzzTarget, seconds: u64) -> Result<FuzzStats> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = cmd::root().join("fuzz");
    let work = fuzz_dir.join("target").join("corpus").join(target.name);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target.name);
    let mut c = Command::new("cargo");
    c.current_dir(&fuzz_dir)
        .env_remove("CARGO_TARGET_DIR")
        .args([
            "+nightly",
            "fuzz",
            "run",
            "--sanitizer",
            "none",
            "--debug-assertions",
            "--no-trace-compares",
            target.name,
        ])
        .arg(&work)
        .arg(&seeds)
        .args([
            "--".to_string(),
            format!("-max_total_time={seconds}"),
            format!("-max_len={}", target.max_len),
            // Memory must stay flat: growth past this is reported as a failure.
            "-rss_limit_mb=512".to_string(),
            "-print_final_stats=1".to_string(),
        ]);
    if let Some(dict) = target.dict {
        c.arg(format!("-dict={}", fuzz_dir.join(dict).display()));
    }
    eprintln!("xtask: running {}", cmd::describe(&c));
    c.stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd::describe(&c)))?;
    let mut stats = FuzzStats::default();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            eprintln!("{line}");
            stats.line(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("cargo fuzz: {e}"))?;
    println!("{}", stats.summary(target.name));
    if !status.success() {
        return Err(format!("fuzz {} failed ({status})", target.name));
    }
    if stats.executions.is_none() {
        return Err(format!(
            "fuzz {}: libFuzzer printed no statistics",
            target.name
        ));
    }
    Ok(stats)
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let names = || {
        FUZZ_TARGETS
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = args
        .first()
        .ok_or_else(|| format!("fuzz needs a target: {}", names()))?;
    let target = FUZZ_TARGETS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("unknown fuzz target {name:?} (one of: {})", names()))?;
    let seconds = match args.get(1) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("not a number of seconds: {s:?}"))?,
        None => 600,
    };
    run_fuzz(target, seconds).map(|_| ())
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
    use super::{parse_result_line, FuzzStats};

    #[test]
    fn parses_libfuzzer_final_stats() {
        let mut s = FuzzStats::default();
        for line in [
            "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 26Mb",
            "#4096\tpulse  cov: 300 ft: 400 corp: 90/2000b lim: 64 exec/s: 2048 rss: 27Mb",
            "#6094422\tDONE   cov: 485 ft: 566 corp: 220/7121b lim: 128 exec/s: 380901 rss: 29Mb",
            "stat::number_of_executed_units: 6094422",
            "stat::average_exec_per_sec:     380901",
            "stat::new_units_added:          690",
            "stat::peak_rss_mb:              29",
        ] {
            s.line(line);
        }
        assert_eq!(
            s,
            FuzzStats {
                executions: Some(6_094_422),
                exec_per_sec: Some(380_901),
                coverage: Some(485),
                features: Some(566),
                corpus: Some(220),
                rss_start_mb: Some(26),
                peak_rss_mb: Some(29),
            }
        );
        assert!(s.summary("cdb").contains("380901 exec/s"));
    }

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
