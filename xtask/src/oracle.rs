//! `oracle`: the differential SCSI test against QEMU and the data-integrity torture run
//! (`docs/scsi-oracle.md`), on the x64 and x86 `rvblk.sys` of the package.

use crate::cmd::{self, Result};
use crate::{package, summary};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Operations per binary in the torture run.
const TORTURE_OPS: u64 = 1_000_000;

/// Runs `c`, echoing its stdout; fails unless it exits 0 and printed a line starting with
/// `want` (the summary the caller relies on).
fn run_echo(c: &mut Command, want: &str) -> Result<()> {
    eprintln!("xtask: running {}", cmd::describe(c));
    c.stdout(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd::describe(c)))?;
    let mut seen = false;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            println!("{line}");
            seen |= line.contains(want);
        }
    }
    let st = child.wait().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("{} failed ({st})", cmd::describe(c)));
    }
    if !seen {
        return Err(format!("{} printed no `{want}` line", cmd::describe(c)));
    }
    Ok(())
}

/// The differential test: builds and runs `rvblk-oracle` (QEMU guest + harness).
pub fn differential(pkg: &Path) -> Result<()> {
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "rvblk-oracle"]))?;
    let t = cmd::target_dir();
    let mut c = Command::new(t.join("release").join("rvblk-oracle"));
    c.current_dir(cmd::root())
        .arg("--package")
        .arg(pkg)
        .arg("--harness")
        .arg(t.join("release").join("rvblk-harness"))
        .arg("--out")
        .arg(t.join("oracle"));
    run_echo(&mut c, "CDBs compared")
}

/// The torture run on both binaries.
pub fn torture(pkg: &Path) -> Result<()> {
    let harness = cmd::target_dir().join("release").join("rvblk-harness");
    let mut result = Ok(());
    for arch in ["amd64", "x86"] {
        let mut c = Command::new(&harness);
        c.arg("torture")
            .arg("--driver")
            .arg(pkg.join(arch).join("rvblk.sys"))
            .arg("--ops")
            .arg(TORTURE_OPS.to_string());
        if let Err(e) = run_echo(&mut c, "0 mismatches") {
            result = Err(e);
        }
    }
    result
}

/// `cargo xtask oracle`: package, harness, then both parts.
pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err("oracle takes no arguments".into());
    }
    let pkg = package::run(&[])?;
    summary::build_harness()?;
    let d = differential(&pkg);
    let t = torture(&pkg);
    d.and(t)
}

/// For `cargo xtask test`: both parts, each reported as one check.
pub fn checks(pkg: &Path, mut check: impl FnMut(&str, Result<()>)) {
    check("SCSI oracle: QEMU vs rvblk (x64, x86)", differential(pkg));
    check("torture: 10^6 operations per binary", torture(pkg));
}
