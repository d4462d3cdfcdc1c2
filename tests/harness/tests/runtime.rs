//! `rvblk-harness runtime` and `mount` on the real packaged binaries (`cargo xtask package`, or
//! RVBLK_PACKAGE_DIR): the control interface (`docs/control.md`) of `rvblk.sys` under both
//! StorPort personalities — with issue 14's runtime mounts (`docs/harness-runtime.md`) — and of
//! `rvblkxp.sys` under SCSIPORT, x64 and x86.
mod common;

use std::path::PathBuf;

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
        "ram_cd_without_source",
        "eject_boot_image",
        "scsi_view_unchanged",
        "remove_after_control",
    ] {
        let want = format!("PASS {host} {case} [g4d_both/{personality}]");
        assert!(o.stdout.contains(&want), "{want:?} missing:\n{}", o.stdout);
    }
    let served: &[&str] = if personality == "xp" {
        // SCSIPORT: admissible requests are NOT AVAILABLE (docs/control.md §9).
        &["mount_not_available", "ram_disk_of_all_ram_not_available"]
    } else {
        &[
            "mount_outside_the_mapped_volume",
            "ram_disk_over_emulated_ram",
            "mount_iso_as_cd",
            "mount_image_as_writable_disk",
            "ramdisk_64m",
            "low_resources",
            "ramdisk_cd_from_image",
            "mount_by_kernel_requester",
            "eject_while_reading",
            "file_vanishes",
            "mount_missing_file",
            "mount_directory",
            "mount_empty_file",
            "mount_locked_file",
            "mount_denied_file",
            "mount_read_only_file_for_write",
            "mount_compressed_file",
            "mount_by_filtered_admin",
            "mount_by_user",
            "mount_without_requester_thread",
            "readahead_sequential_read",
            "readahead_write_then_read",
            "readahead_write_during_fill",
            "readahead_eject_during_fill",
            "readahead_random_reads_unchanged",
            "readahead_read_past_end",
        ]
    };
    for case in served {
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

/// A file to mount: `len` bytes of a pattern, in a directory of this test's own.
fn test_file(name: &str, len: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runtime-mount");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let data: Vec<u8> = (0..len)
        .map(|i| (i / 2048) as u8 ^ (i as u8).rotate_left(5))
        .collect();
    std::fs::write(&p, data).unwrap();
    p
}

fn mount(arch: &str, personality: &str, args: &[&str]) -> common::Out {
    let d = common::packaged(arch);
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let mut a = vec![
        "mount",
        "--driver",
        d.to_str().unwrap(),
        "--personality",
        personality,
        "--json",
    ];
    a.extend_from_slice(args);
    common::run(&a)
}

/// `mount` reports the LUN as `run --json` does: an ISO as a read-only CD whose every block
/// matches the file, a raw image as a writable disk (write test restored), on x64 and x86.
#[test]
fn mount_iso_and_image_on_the_packaged_driver() {
    for (arch, pers) in [("amd64", "win8"), ("x86", "win7")] {
        let iso = test_file(&format!("{arch}.iso"), 4 << 20);
        let img = test_file(&format!("{arch}.img"), 2 << 20);
        let copy = iso.with_extension("copy");
        std::fs::copy(&iso, &copy).unwrap();
        let o = mount(
            arch,
            pers,
            &[
                "--file",
                iso.to_str().unwrap(),
                "--kind",
                "cd",
                "--expect",
                copy.to_str().unwrap(),
            ],
        );
        assert_eq!(o.code, 0, "{arch}: {}", o.stdout);
        assert!(o.stdout.contains("\"kind\":\"cdrom\",\"block_size\":2048,\"blocks\":2048,\"read_only\":true,\"source\":\"file\""), "{arch}: {}", o.stdout);
        assert!(
            o.stdout.contains(".copy\"]"),
            "{arch}: not matched: {}",
            o.stdout
        );
        assert!(
            o.stdout.contains("\"verifier_failures\":[]"),
            "{arch}: {}",
            o.stdout
        );
        let before = std::fs::read(&img).unwrap();
        let o = mount(
            arch,
            pers,
            &[
                "--file",
                img.to_str().unwrap(),
                "--kind",
                "disk",
                "--expect",
                img.to_str().unwrap(),
            ],
        );
        assert_eq!(o.code, 0, "{arch}: {}", o.stdout);
        assert!(
            o.stdout.contains(
                "\"kind\":\"disk\",\"block_size\":512,\"blocks\":4096,\"read_only\":false"
            ),
            "{arch}: {}",
            o.stdout
        );
        // The write test wrote through the LUN into the file and restored it.
        assert_eq!(std::fs::read(&img).unwrap(), before, "{arch}");
    }
}

/// A non-elevated administrator is refused (no LUN, no verifier failure, exit status 1).
#[test]
fn mount_by_a_filtered_admin_is_refused() {
    let iso = test_file("filtered.iso", 1 << 20);
    let o = mount(
        "amd64",
        "win8",
        &[
            "--file",
            iso.to_str().unwrap(),
            "--kind",
            "cd",
            "--requester",
            "filtered",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stdout.contains("\"luns\":[]"), "{}", o.stdout);
    assert!(o.stdout.contains("NotAdministrator"), "{}", o.stdout);
    assert!(
        o.stdout.contains("\"verifier_failures\":[]"),
        "{}",
        o.stdout
    );
}
