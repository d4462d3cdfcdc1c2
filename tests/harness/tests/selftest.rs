//! The verifier must catch deliberately broken drivers built by `cargo xtask package` into
//! target/selftest/<fault>/{amd64,x86}/rvblk.sys (or RVBLK_SELFTEST_DIR/<fault>/...).
mod common;

use std::path::PathBuf;

fn broken(fault: &str, arch: &str) -> PathBuf {
    let base = std::env::var_os("RVBLK_SELFTEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace().join("target/selftest"));
    let p = base.join(fault).join(arch).join("rvblk.sys");
    assert!(
        p.is_file(),
        "{} is missing: run cargo xtask package first",
        p.display()
    );
    p
}

fn caught(fault: &str, arch: &str, needle: &str) {
    let d = broken(fault, arch);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let s = rvblk_memimage::scenarios::g4d_both();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("selftest_{fault}_{arch}"));
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("ram.dump");
    s.mem.write_dump_len(&dump, s.total_ram_bytes).unwrap();
    let mut args = vec![
        "run".to_string(),
        "--driver".into(),
        d.display().to_string(),
        "--ram".into(),
        dump.display().to_string(),
        "--json".into(),
    ];
    for r in &s.os_ram {
        args.push("--os-ram".into());
        args.push(format!("{:#x}:{:#x}", r.start, r.length));
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = common::run(&a);
    assert_ne!(
        o.code, 0,
        "the verifier did not fail the broken driver ({fault}, {arch})"
    );
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(
        all.contains(needle),
        "verifier output for {fault}/{arch} does not mention {needle:?}:\n{all}"
    );
}

#[test]
fn double_complete_caught_x64() {
    caught("double-complete", "amd64", "completed twice");
}
#[test]
fn double_complete_caught_x86() {
    caught("double-complete", "x86", "completed twice");
}
#[test]
fn overread_caught_x64() {
    caught("overread", "amd64", "guard page after the SRB data buffer");
}
#[test]
fn overread_caught_x86() {
    caught("overread", "x86", "guard page after the SRB data buffer");
}
