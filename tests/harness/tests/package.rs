//! The real packaged binaries (`cargo xtask package` → target/package/{amd64,x86}/rvblk.sys
//! and xp/rvblkxp.sys, or RVBLK_PACKAGE_DIR) under both StorPort personalities and SCSIPORT
//! (xp): compliance suite, fault injection and the `run` CLI over a RAM dump, including the XP
//! setup-mode disk policy.
mod common;

use rvblk_harness::commands::scenario::Setup;
use std::path::PathBuf;

fn suite(arch: &str, personality: &str) {
    let d = common::packaged_for(arch, personality);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let o = common::run(&[
        "suite",
        "--driver",
        d.to_str().unwrap(),
        "--personality",
        personality,
    ]);
    assert!(o.stdout.contains(" passed, "), "no summary line");
    assert_eq!(
        o.code,
        0,
        "compliance failures for {arch}/{personality}:\n{}",
        o.stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn faults(arch: &str, personality: &str) {
    let d = common::packaged_for(arch, personality);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let o = common::run(&[
        "faults",
        "--driver",
        d.to_str().unwrap(),
        "--personality",
        personality,
    ]);
    assert_eq!(
        o.code,
        0,
        "fault injection failures for {arch}/{personality}:\n{}{}",
        o.stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect::<Vec<_>>()
            .join("\n"),
        o.stderr
    );
}

#[test]
fn suite_x64_win8() {
    suite("amd64", "win8");
}
#[test]
fn suite_x64_win7() {
    suite("amd64", "win7");
}
#[test]
fn suite_x86_win8() {
    suite("x86", "win8");
}
#[test]
fn suite_x86_win7() {
    suite("x86", "win7");
}
#[test]
fn faults_x64_win8() {
    faults("amd64", "win8");
}
#[test]
fn faults_x86_win7() {
    faults("x86", "win7");
}

/// Writes the g4d_both scenario as a sparse dump plus the ISO/HDD images as files, in a
/// directory of the caller's own (`tag`): tests run in parallel and must not rewrite each
/// other's inputs.
pub fn dump_g4d_both(tag: &str) -> (PathBuf, Vec<String>, Vec<PathBuf>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("g4d_both-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let s = rvblk_memimage::scenarios::g4d_both();
    let dump = dir.join("ram.dump");
    s.mem.write_dump_len(&dump, s.total_ram_bytes).unwrap();
    let setup = Setup::from_scenario(&s).unwrap();
    let mut files = Vec::new();
    for (i, e) in setup.expected.iter().enumerate() {
        let mut b = vec![0u8; e.length as usize];
        setup.phys.read(e.phys_base, &mut b).unwrap();
        let f = dir.join(format!(
            "image{i}.{}",
            if e.kind == "cdrom" { "iso" } else { "img" }
        ));
        std::fs::write(&f, b).unwrap();
        files.push(f);
    }
    let os_ram = s
        .os_ram
        .iter()
        .map(|r| format!("{:#x}:{:#x}", r.start, r.length))
        .collect();
    (dump, os_ram, files)
}

/// `rvblk-harness run --json` over the g4d_both dump (one ISO, one HDD image); returns the JSON
/// and the image files in the scenario's order (ISO first).
fn run_json(arch: &str, personality: &str, extra: &[&str]) -> (String, Vec<PathBuf>) {
    let d = common::packaged_for(arch, personality);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let tag = format!("{arch}-{personality}{}", extra.join("_").replace('=', "-"));
    let (dump, os_ram, files) = dump_g4d_both(&tag);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--driver".into(),
        d.display().to_string(),
        "--ram".into(),
        dump.display().to_string(),
        "--personality".into(),
        personality.into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    for r in &os_ram {
        args.push("--os-ram".into());
        args.push(r.clone());
    }
    for f in &files {
        args.push("--expect".into());
        args.push(f.display().to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = common::run(&a);
    assert_eq!(o.code, 0, "run failed");
    let j = o.stdout.trim().to_string();
    assert!(j.starts_with("{\"luns\":[{"), "{j}");
    assert!(j.contains("\"verifier_failures\":[]"), "{j}");
    assert!(j.contains("\"source\":\"grub4dos\""), "{j}");
    assert!(
        j.contains(&format!("\"phys_base\":{}", 0x0FBC_E000u64)),
        "{j}"
    );
    (j, files)
}

fn matched(j: &str, f: &std::path::Path) -> bool {
    j.contains(&format!("\"matches\":[\"{}\"]", f.display()))
}

fn run_cli(arch: &str, personality: &str) {
    let (j, files) = run_json(arch, personality, &[]);
    assert!(
        j.contains("\"kind\":\"cdrom\"") && j.contains("\"kind\":\"disk\""),
        "{j}"
    );
    for f in &files {
        assert!(matched(&j, f), "{} not matched: {j}", f.display());
    }
}

#[test]
fn run_cli_x64_win8() {
    run_cli("amd64", "win8");
}
#[test]
fn run_cli_x86_win7() {
    run_cli("x86", "win7");
}
#[test]
fn run_cli_x86_xp() {
    run_cli("x86", "xp");
}

#[test]
fn suite_x86_xp() {
    suite("x86", "xp");
}
#[test]
fn faults_x86_xp() {
    faults("x86", "xp");
}
#[test]
fn suite_x64_xp() {
    suite("amd64", "xp");
}
#[test]
fn faults_x64_xp() {
    faults("amd64", "xp");
}
#[test]
fn run_cli_x64_xp() {
    run_cli("amd64", "xp");
}

/// XP setup installs to the lowest-numbered disk, so while setup runs rvblkxp shows RAM CDs only,
/// unless `disks=on` (DriverParameter) or the `rvblkxpd` service asks for disks too; an installed
/// system or a MININT PE sees every image unless `disks=off` (`docs/driver.md` "Setup mode",
/// `inf/xp/README.md`).
#[test]
fn xp_setup_disk_policy_x86() {
    let cases: [(&[&str], bool); 9] = [
        (&["--setup", "textmode"], false),
        (&["--setup", "guimode"], false),
        // An XP-based PE booted /MININT has no SystemSetupInProgress either, but it is not
        // setup: RAM hard disks must appear (`docs/driver.md` "Setup mode").
        (&["--setup", "minint"], true),
        (
            &["--setup", "minint", "--driver-parameter", "disks=off"],
            false,
        ),
        (
            &["--setup", "textmode", "--driver-parameter", "disks=on"],
            true,
        ),
        (&["--setup", "guimode", "--service", "rvblkxpd"], true),
        (&["--setup", "installed"], true),
        (
            &["--setup", "installed", "--driver-parameter", "disks=off"],
            false,
        ),
        (
            &[
                "--setup",
                "textmode",
                "--service",
                "rvblkxpd",
                "--driver-parameter",
                "disks=off",
            ],
            false,
        ),
    ];
    for (extra, disks) in cases {
        let (j, files) = run_json("x86", "xp", extra);
        assert!(
            j.contains("\"kind\":\"cdrom\""),
            "{extra:?}: the ISO must always show: {j}"
        );
        assert!(matched(&j, &files[0]), "{extra:?}: ISO not matched: {j}");
        assert_eq!(
            j.contains("\"kind\":\"disk\""),
            disks,
            "{extra:?}: disk shown should be {disks}: {j}"
        );
        assert_eq!(matched(&j, &files[1]), disks, "{extra:?}: {j}");
    }
}

// arm64: the aarch64 harness under qemu-aarch64, reached through this x64 CLI's delegation
// (docs/arm64.md). Windows on ARM64 starts at 10, so only the Windows 8+ personality applies.
#[test]
fn suite_arm64_win8() {
    if common::arm64_ready("suite_arm64_win8") {
        suite("arm64", "win8");
    }
}
#[test]
fn faults_arm64_win8() {
    if common::arm64_ready("faults_arm64_win8") {
        faults("arm64", "win8");
    }
}
#[test]
fn run_cli_arm64_win8() {
    if common::arm64_ready("run_cli_arm64_win8") {
        run_cli("arm64", "win8");
    }
}
