//! `rvblk-harness runtime` on the real packaged binaries (`cargo xtask package`, or
//! RVBLK_PACKAGE_DIR): the control interface (`docs/control.md`) of `rvblk.sys` under both
//! StorPort personalities and of `rvblkxp.sys` under SCSIPORT, x64 and x86.
mod common;

fn runtime(arch: &str, personality: &str) {
    let d = common::packaged_for(arch, personality);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let o = common::run(&[
        "runtime",
        "--driver",
        d.to_str().unwrap(),
        "--personality",
        personality,
    ]);
    let fails: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(
        o.code,
        0,
        "control interface failures for {arch}/{personality}:\n{}{}",
        fails.join("\n"),
        o.stderr
    );
    assert!(o.stdout.contains(" passed, 0 failed"), "no summary line");
    // The driver was really exercised in this architecture, on every kind of request.
    let host = if arch == "amd64" { "x64" } else { "x86" };
    for case in [
        "list_is_the_lun_table",
        "list_buffer_too_small",
        "short_buffer",
        "wrong_signature",
        "unknown_code",
        "path_too_long",
        "ram_disk_size_0",
        "ram_disk_larger_than_ram",
        "mount_not_available",
        "eject_boot_image",
        "scsi_view_unchanged",
    ] {
        let want = format!("PASS {host} {case} [g4d_both/{personality}]");
        assert!(o.stdout.contains(&want), "{want:?} missing:\n{}", o.stdout);
    }
}

#[test]
fn runtime_x64_win8() {
    runtime("amd64", "win8");
}

#[test]
fn runtime_x86_win7() {
    runtime("x86", "win7");
}

#[test]
fn runtime_x86_xp() {
    runtime("x86", "xp");
}

#[test]
fn runtime_x64_xp() {
    runtime("amd64", "xp");
}
