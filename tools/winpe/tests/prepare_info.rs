//! `rvblk winpe prepare` on an ISO tree, and `rvblk info`.

mod common;
use common::*;
use rvblk_winpe::cli::{run_info_args, run_winpe_args};

#[test]
fn prepare_injects_both_images_sets_both_bcds_and_prints_the_menu() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    std::fs::write(pkg.join("rvblk-test.cer"), b"cert").unwrap();
    let iso = t.path().join("win10");
    std::fs::create_dir_all(iso.join("SOURCES")).unwrap();
    std::fs::create_dir_all(iso.join("Boot")).unwrap();
    std::fs::create_dir_all(iso.join("efi/Microsoft/boot")).unwrap();
    setup_wim(t.path(), &iso.join("SOURCES/Boot.wim"), AMD64);
    bcd_store(&iso.join("Boot/BCD"), true);
    bcd_store(&iso.join("efi/Microsoft/boot/BCD"), true);

    let o = run_winpe_args(args(&[&"prepare", &iso, &"--package", &pkg]));
    assert_eq!(o.code, 0, "{o:?}");
    let wim = iso.join("SOURCES/Boot.wim");
    for i in [1, 2] {
        let x = t.path().join(format!("x{i}"));
        assert_eq!(driver_in(&wim, i, &x).as_deref(), Some(AMD64_SYS));
        let h = extract_hive(&wim, i, &x);
        assert!(lsval(&h, "ControlSet001\\Enum\\Root\\RVBLK\\0000")
            .unwrap()
            .contains(&"\"ConfigFlags\"=dword:00000000".to_string()));
    }
    for s in ["Boot/BCD", "efi/Microsoft/boot/BCD"] {
        assert_eq!(
            lsval(
                &iso.join(s),
                &format!("Objects\\{LOADER1}\\Elements\\16000049")
            ),
            Some(vec!["\"Element\"=hex(3):01".to_string()]),
            "{s}"
        );
    }
    assert!(
        o.stdout
            .contains("map --mem /win10.iso (0xff)\nmap --hook\nchainloader (0xff)\nboot\n"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--top"), "{}", o.stdout);
    assert!(
        o.stdout.contains("rvblk-test.cer") && o.stdout.contains("any certificate"),
        "{}",
        o.stdout
    );

    // Again: nothing changes anywhere.
    let snapshot = || -> Vec<Vec<u8>> {
        [
            wim.clone(),
            iso.join("Boot/BCD"),
            iso.join("efi/Microsoft/boot/BCD"),
        ]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
    };
    let snap = snapshot();
    let o = run_winpe_args(args(&[
        &"prepare",
        &iso,
        &"--package",
        &pkg,
        &"--iso",
        &"/isos/w10.iso",
    ]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("map --mem /isos/w10.iso (0xff)"));
    let again = snapshot();
    assert!(snap == again, "second prepare must not modify anything");

    // info on each kind of file.
    let o = run_info_args(args(&[&wim]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains(
            "image 2: \"Microsoft Windows Setup\" arch=amd64 (from ntoskrnl.exe) bootable"
        ),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("ControlSet001: rvblk present"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("ConfigFlags=0x0"), "{}", o.stdout);
    let o = run_info_args(args(&[&iso.join("Boot/BCD")]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains(&format!(
            "* {LOADER1} \"Windows Setup\": testsigning=on nointegritychecks=off (not set)"
        )),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(&format!(
            "  {LOADER2} \"Second\": testsigning=off (not set)"
        )),
        "{}",
        o.stdout
    );
    let h = extract_hive(&wim, 1, &t.path().join("hh"));
    let o = run_info_args(args(&[&h]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("Select: Current=1 Default=1"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("service   Start=0x0 Type=0x1 Group=\"SCSI miniport\""),
        "{}",
        o.stdout
    );
}

#[test]
fn prepare_checks_everything_before_writing() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let iso = t.path().join("iso");
    std::fs::create_dir_all(iso.join("sources")).unwrap();
    std::fs::create_dir_all(iso.join("boot")).unwrap();
    setup_wim(t.path(), &iso.join("sources/boot.wim"), AMD64);
    bcd_store(&iso.join("boot/bcd"), false); // no {bootmgr}
    let before = std::fs::read(iso.join("sources/boot.wim")).unwrap();
    let o = run_winpe_args(args(&[&"prepare", &iso, &"--package", &pkg]));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("{bootmgr}"), "{o:?}");
    assert_eq!(std::fs::read(iso.join("sources/boot.wim")).unwrap(), before);

    let o = run_winpe_args(args(&[&"prepare", &t.path(), &"--package", &pkg]));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("sources/boot.wim"), "{o:?}");
}

#[test]
fn info_rejects_unknown_files_and_hives() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().join("g");
    std::fs::write(&g, b"hello world, not a wim").unwrap();
    let o = run_info_args(args(&[&g]));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("not a WIM, BCD store or registry hive"),
        "{o:?}"
    );
    let h = t.path().join("nosel");
    hive_without_select(&h);
    let o = run_info_args(args(&[&h]));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("\\Select"), "{o:?}");
    let o = run_info_args(args(&[&"--help"]));
    assert_eq!(o.code, 0);
}
