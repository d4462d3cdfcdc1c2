//! The real packaged binaries (`cargo xtask package` → target/package/{amd64,x86}/rvblk.sys,
//! or RVBLK_PACKAGE_DIR) under both StorPort personalities: compliance suite, fault injection
//! and the `run` CLI over a RAM dump.
mod common;

use rvblk_harness::scenario::Setup;
use std::path::PathBuf;

fn suite(arch: &str, personality: &str) {
    let d = common::packaged(arch);
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
    let d = common::packaged(arch);
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

fn run_cli(arch: &str, personality: &str) {
    let d = common::packaged(arch);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let (dump, os_ram, files) = dump_g4d_both(&format!("{arch}-{personality}"));
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
    let j = o.stdout.trim();
    assert!(j.starts_with("{\"luns\":[{"), "{j}");
    assert!(j.contains("\"verifier_failures\":[]"), "{j}");
    assert!(
        j.contains("\"kind\":\"cdrom\"") && j.contains("\"kind\":\"disk\""),
        "{j}"
    );
    assert!(j.contains("\"source\":\"grub4dos\""), "{j}");
    for f in &files {
        assert!(
            j.contains(&format!("\"matches\":[\"{}\"]", f.display())),
            "{} not matched: {j}",
            f.display()
        );
    }
    assert!(
        j.contains(&format!("\"phys_base\":{}", 0x0FBC_E000u64)),
        "{j}"
    );
}

#[test]
fn run_cli_x64_win8() {
    run_cli("amd64", "win8");
}
#[test]
fn run_cli_x86_win7() {
    run_cli("x86", "win7");
}
