//! `rvblk winpe prepare IN.iso -o OUT.iso` and `rvblk info IMAGE.iso`, with the real `rvblk`
//! binary, on a small bootable ISO built by xorriso; results checked with xorriso
//! (`-report_el_torito`, `-pvd_info`, `-extract`), wimlib-imagex and hivexsh.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rvblk(bin: &Path, dir: &Path, a: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(bin)
        .args(args(a))
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `rvblk winpe prepare INPUT -o OUTPUT --package PKG EXTRA…`, run in `dir`.
fn prepare(
    bin: &Path,
    dir: &Path,
    input: &dyn AsRef<std::ffi::OsStr>,
    output: &dyn AsRef<std::ffi::OsStr>,
    pkg: &Path,
    extra: &[&dyn AsRef<std::ffi::OsStr>],
) -> Output {
    let mut a: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"winpe",
        &"prepare",
        input,
        &"-o",
        output,
        &"--package",
        &pkg,
    ];
    a.extend_from_slice(extra);
    rvblk(bin, dir, &a)
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Files in `dir` whose names start with `.` (the temporary output and work directory).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect()
}

fn testsigning(store: &Path) -> Option<Vec<String>> {
    lsval(store, &format!("Objects\\{LOADER1}\\Elements\\16000049"))
}

#[test]
fn prepare_iso_to_iso_keeps_label_and_both_boot_records() {
    let Some(bin) = rvblk_bin() else { return };
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, AMD64);
    let input = bootable_iso(t.path(), &wim, "WIN_TEST_X64");
    let before = std::fs::read(&input).unwrap();
    let out_dir = t.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let output = out_dir.join("win-rvblk.iso");

    let o = prepare(
        &bin,
        t.path(),
        &input,
        &output,
        &pkg,
        &[&"--verifier", &"--debug", &"serial"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rvblk: writing"), "progress on stderr: {err}");

    // The input is untouched, nothing else is left in the output directory.
    assert_eq!(std::fs::read(&input).unwrap(), before);
    assert_eq!(leftovers(&out_dir), Vec::<PathBuf>::new());

    // Label and both boot records, byte for byte.
    assert_eq!(volume_id(&output), "WIN_TEST_X64");
    let (a, b) = (el_torito(&input), el_torito(&output));
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(
        a.iter().map(|x| (&x.0, x.1, &x.3)).collect::<Vec<_>>(),
        b.iter().map(|x| (&x.0, x.1, &x.3)).collect::<Vec<_>>()
    );
    assert_eq!(a[0].0, "BIOS");
    assert_eq!(a[1].0, "UEFI");
    assert_eq!(boot_image_bytes(&input), boot_image_bytes(&output));

    // The driver and its service in both images of boot.wim.
    let x = t.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let new_wim = x.join("boot.wim");
    iso_extract(&output, "/sources/boot.wim", &new_wim);
    for image in [1, 2] {
        assert_eq!(
            driver_in(&new_wim, image, &x.join("d")).as_deref(),
            Some(AMD64_SYS)
        );
        let hive = extract_hive(&new_wim, image, &x.join("h"));
        let svc = lsval(&hive, "\\ControlSet001\\Services\\rvblk").unwrap();
        assert!(
            svc.contains(&"\"Start\"=dword:00000000".to_string()),
            "{svc:?}"
        );
        let mm = lsval(
            &hive,
            "\\ControlSet001\\Control\\Session Manager\\Memory Management",
        )
        .unwrap();
        assert!(
            mm.contains(&"\"VerifyDrivers\"=\"rvblk.sys\"".to_string()),
            "{mm:?}"
        );
        let filter = lsval(
            &hive,
            "\\ControlSet001\\Control\\Session Manager\\Debug Print Filter",
        );
        assert_eq!(filter, Some(vec!["\"DEFAULT\"=dword:0000000f".to_string()]));
    }
    // Test-signing in every BCD store; other files unchanged.
    for store in ["/boot/bcd", "/efi/microsoft/boot/bcd"] {
        let local = x.join("bcd");
        iso_extract(&output, store, &local);
        assert_eq!(
            testsigning(&local),
            Some(vec!["\"Element\"=hex(3):01".to_string()]),
            "{store}"
        );
        assert_eq!(
            lsval(&local, &format!("Objects\\{LOADER1}\\Elements\\260000a0")),
            Some(vec!["\"Element\"=hex(3):01".to_string()]),
            "kernel debugger on in {store}"
        );
        iso_extract(&input, store, &local);
        assert_eq!(testsigning(&local), None, "input store {store} untouched");
    }
    iso_extract(&output, "/sources/install.wim", &x.join("i"));
    iso_extract(&input, "/sources/install.wim", &x.join("j"));
    assert_eq!(sha(&x.join("i")), sha(&x.join("j")));

    // rvblk info on both ISOs.
    let o = rvblk(&bin, t.path(), &[&"info", &output]);
    let s = text(&o);
    assert!(o.status.success(), "{s}");
    assert!(s.contains("label \"WIN_TEST_X64\""), "{s}");
    assert!(
        s.contains("rvblk: yes, version 0.1.2.3 in image(s) 1, 2 of /sources/boot.wim"),
        "{s}"
    );
    assert!(
        s.contains("test-signing: /boot/bcd on, /efi/microsoft/boot/bcd on"),
        "{s}"
    );
    assert!(
        s.contains("Driver Verifier: image 2: on, level 0x209bb"),
        "{s}"
    );
    let o = rvblk(&bin, t.path(), &[&"info", &input]);
    assert!(text(&o).contains("rvblk: no"), "{}", text(&o));

    // -o onto the input is refused; the ISO form needs -o.
    let o = prepare(&bin, t.path(), &input, &input, &pkg, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("must not be the input"), "{}", text(&o));
    let o = rvblk(
        &bin,
        t.path(),
        &[&"winpe", &"prepare", &input, &"--package", &pkg],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("-o OUT.iso"), "{}", text(&o));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn bad_inputs_and_a_full_disk_leave_no_output() {
    let Some(bin) = rvblk_bin() else { return };
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, X86);
    let good = bootable_iso(t.path(), &wim, "GOOD");
    let out_dir = t.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let output = out_dir.join("o.iso");

    // Truncated ISO: the volume descriptors survive, the files do not.
    let truncated = t.path().join("truncated.iso");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let o = prepare(&bin, t.path(), &truncated, &output, &pkg, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        s.starts_with("rvblk: error:") || s.contains("rvblk: error:"),
        "{s}"
    );
    assert!(!output.exists());
    assert_eq!(leftovers(&out_dir), Vec::<PathBuf>::new());

    // Not an ISO at all.
    let o = prepare(&bin, t.path(), &wim, &output, &pkg, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not an ISO 9660 image"), "{}", text(&o));

    // An ISO without sources/boot.wim.
    let plain_tree = t.path().join("plain");
    std::fs::create_dir_all(plain_tree.join("docs")).unwrap();
    std::fs::write(plain_tree.join("docs/readme.txt"), b"hello").unwrap();
    let plain = t.path().join("plain.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-V", "PLAIN", "-o"])
        .arg(&plain)
        .arg(&plain_tree));
    let o = prepare(&bin, t.path(), &plain, &output, &pkg, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("no sources/boot.wim in the ISO"),
        "{}",
        text(&o)
    );
    assert!(!output.exists());
    assert_eq!(leftovers(&out_dir), Vec::<PathBuf>::new());

    // The ISO 9660 stub of a UDF-only disc (Windows 10/11 media): the message says what to do.
    let stub_tree = t.path().join("stub");
    std::fs::create_dir_all(&stub_tree).unwrap();
    std::fs::write(
        stub_tree.join("README.TXT"),
        b"This disc contains a UDF file system",
    )
    .unwrap();
    let stub = t.path().join("stub.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-V", "CCCOMA_X64FRE", "-o"])
        .arg(&stub)
        .arg(&stub_tree));
    let o = prepare(&bin, t.path(), &stub, &output, &pkg, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("UDF only"), "{}", text(&o));
    assert!(!output.exists());

    // A full disk: file size limited to 1 MiB (SIGXFSZ ignored, so writes fail with EFBIG, as
    // they would with ENOSPC), below what the work copy and the new ISO need.
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1024; exec \"$0\" \"$@\"")
        .arg(&bin)
        .args(["winpe", "prepare"])
        .arg(&good)
        .arg("-o")
        .arg(&output)
        .arg("--package")
        .arg(&pkg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("File too large"), "{}", text(&o));
    assert!(!output.exists());
    assert_eq!(leftovers(&out_dir), Vec::<PathBuf>::new());
    let bytes_after = std::fs::read(&good).unwrap();
    assert_eq!(bytes_after, bytes, "input unchanged");
}

#[test]
fn the_built_binary_works_from_any_directory_without_package() {
    let Some(bin) = rvblk_bin() else { return };
    let t = tempfile::tempdir().unwrap();
    // What the binary carries, written out by itself.
    let o = rvblk(&bin, t.path(), &[&"package", &"extract", &"pkg"]);
    assert!(
        o.status.success(),
        "the rvblk binary carries no driver package: run `cargo xtask package` first\n{}",
        text(&o)
    );
    let pkg = t.path().join("pkg");
    let amd64 = std::fs::read(pkg.join("amd64/rvblk.sys")).unwrap();
    assert_eq!(&amd64[..2], b"MZ");
    assert!(pkg.join("rvblk.inf").is_file() && pkg.join("rvblk-f6.img").is_file());
    // The same bytes as the package it was built from, when that is at hand.
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/package/amd64/rvblk.sys");
    if built.is_file() {
        assert_eq!(std::fs::read(built).unwrap(), amd64);
    }

    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, AMD64);
    let input = bootable_iso(t.path(), &wim, "NOPKG");
    let o = rvblk(
        &bin,
        t.path(),
        &[&"winpe", &"prepare", &"NOPKG.iso", &"-o", &"out.iso"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let x = t.path().join("x");
    std::fs::create_dir(&x).unwrap();
    iso_extract(
        &t.path().join("out.iso"),
        "/sources/boot.wim",
        &x.join("boot.wim"),
    );
    assert_eq!(
        driver_in(&x.join("boot.wim"), 2, &x.join("d")),
        Some(amd64.clone())
    );
    drop(input);

    // XP: slipstream into an i386 tree with the built-in x86 rvblkxp.sys.
    let i386 = t.path().join("xpcd/i386");
    std::fs::create_dir_all(&i386).unwrap();
    std::fs::write(
        i386.join("txtsetup.sif"),
        "[Version]\r\nsignature = \"$Windows NT$\"\r\n\r\n[SourceDisksFiles]\r\n\
         atapi.sys = 1,,,,,,3_,4,1,,,1,4\r\n\r\n[HardwareIdsDatabase]\r\n*PNP0600 = \"atapi\"\r\n\r\n\
         [SCSI.Load]\r\natapi = atapi.sys,4\r\n\r\n[SCSI]\r\n",
    )
    .unwrap();
    let o = rvblk(&bin, t.path(), &[&"xp", &"slipstream", &"xpcd/i386"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(i386.join("rvblkxp.sys")).unwrap(),
        std::fs::read(pkg.join("xp/rvblkxp.sys")).unwrap()
    );
    let o = rvblk(&bin, t.path(), &[&"winpe", &"inject", &"boot.wim"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(driver_in(&wim, 2, &x.join("e")), Some(amd64));
}

#[test]
fn a_udf_only_windows_iso_is_rebuilt_with_udf() {
    let Some(bin) = rvblk_bin() else { return };
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, AMD64);
    let input = udf_only_iso(t.path(), &wim, "CCCOMA_X64FRE");
    // Independent view: xorriso sees only the stub, 7-Zip sees the files.
    let listing = run(Command::new("xorriso")
        .arg("-indev")
        .arg(&input)
        .args(["-find", "/", "-type", "f"]));
    assert_eq!(listing.trim(), "'/README.TXT'");
    let before = std::fs::read(&input).unwrap();
    let output = t.path().join("out.iso");
    let o = prepare(&bin, t.path(), &input, &output, &pkg, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&input).unwrap(), before);
    assert_eq!(leftovers(t.path()), Vec::<PathBuf>::new());

    assert_eq!(volume_id(&output), "CCCOMA_X64FRE");
    let (a, b) = (el_torito(&input), el_torito(&output));
    assert_eq!(
        a.iter().map(|x| (&x.0, x.1)).collect::<Vec<_>>(),
        b.iter().map(|x| (&x.0, x.1)).collect::<Vec<_>>()
    );
    assert_eq!(boot_image_bytes(&input), boot_image_bytes(&output));
    // The new image has a UDF tree with the changed boot.wim (read by 7-Zip) ...
    let udf = run(Command::new("7zz").args(["l", "-ba", "-tudf"]).arg(&output));
    assert!(udf.contains("sources/boot.wim"), "{udf}");
    // ... and the same files in ISO 9660/Joliet (read by xorriso).
    let x = t.path().join("x");
    std::fs::create_dir(&x).unwrap();
    iso_extract(&output, "/sources/boot.wim", &x.join("boot.wim"));
    assert_eq!(
        driver_in(&x.join("boot.wim"), 2, &x.join("d")).as_deref(),
        Some(AMD64_SYS)
    );
    iso_extract(&output, "/efi/microsoft/boot/bcd", &x.join("bcd"));
    assert_eq!(
        testsigning(&x.join("bcd")),
        Some(vec!["\"Element\"=hex(3):01".to_string()])
    );
    let o = rvblk(&bin, t.path(), &[&"info", &input]);
    assert!(text(&o).contains("rvblk: no"), "{}", text(&o));
}
