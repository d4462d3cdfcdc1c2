//! Independent checks on the XP package: txtsetup.oem, the INF, and the F6 floppy images (x86 and
//! x64) read back with the standard FAT tools (mtools, fsck.fat).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::{fake_driver, parse_ini, run, section, TempDir};
use rvblk_xp::XpArch;

/// The drivers of `arches` (and catalogs beside them if `with_cat`): the package as
/// `cargo xtask package` leaves it before the XP files are written.
fn fake_package(dir: &Path, with_cat: bool, arches: &[XpArch]) {
    for &arch in arches {
        let arch_dir = dir.join(arch.package_dir());
        fs::create_dir_all(&arch_dir).unwrap();
        fs::write(dir.join(arch.driver_path()), fake_driver(arch)).unwrap();
        if with_cat {
            fs::write(arch_dir.join("rvblkxp.cat"), b"0\x82fake catalog").unwrap();
        }
    }
}

/// The PE machine of a driver image.
fn pe_machine(image: &[u8]) -> u16 {
    rvblk_pe::Pe::parse(image).expect("a PE image").machine
}

/// Root directory of the floppy as mtools lists it: upper-case 8.3 name -> size.
fn floppy_listing(img: &Path) -> BTreeMap<String, u64> {
    let out = run("mdir", &["-b", "-i", img.to_str().unwrap(), "::"]);
    let text = String::from_utf8(out).unwrap();
    let mut files = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let name = line.trim().trim_start_matches("::/").to_string();
        let bytes = floppy_file(img, &name);
        files.insert(name, bytes.len() as u64);
    }
    files
}

fn floppy_file(img: &Path, name: &str) -> Vec<u8> {
    run(
        "mtype",
        &["-i", img.to_str().unwrap(), &format!("::{name}")],
    )
}

/// Everything `arch`'s floppy must satisfy, for a package made by us or by `cargo xtask package`.
fn check_floppy(dir: &Path, arch: XpArch) {
    let img = dir.join(arch.f6_image_name());
    let image = fs::read(&img).unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    assert_eq!(image.len(), 1_474_560, "1.44 MB image");

    // fsck.fat: clean, read-only check.
    let fsck = run("fsck.fat", &["-n", img.to_str().unwrap()]);
    let fsck = String::from_utf8_lossy(&fsck);
    assert!(!fsck.to_lowercase().contains("dirty"), "{fsck}");

    // mdir: volume label and the files.
    let mdir = String::from_utf8(run("mdir", &["-i", img.to_str().unwrap(), "::"])).unwrap();
    assert!(mdir.contains("Volume in drive : is RVBLK F6"), "{mdir}");
    let listing = floppy_listing(&img);
    for required in ["TXTSETUP.OEM", "RVBLKXP.SYS", "RVBLKXP.INF", "RVBLKXP.TAG"] {
        assert!(
            listing.contains_key(required),
            "{required} on the floppy: {listing:?}"
        );
    }

    // Byte-for-byte: the floppy holds exactly the package's files (mtype and mcopy).
    let arch_dir = dir.join(arch.package_dir());
    for (on_floppy, in_package) in [
        ("TXTSETUP.OEM", "txtsetup.oem"),
        ("RVBLKXP.SYS", "rvblkxp.sys"),
        ("RVBLKXP.INF", "rvblkxp.inf"),
        ("RVBLKXP.TAG", "RVBLKXP.TAG"),
    ] {
        let want = fs::read(arch_dir.join(in_package)).unwrap();
        assert_eq!(floppy_file(&img, on_floppy), want, "{on_floppy} (mtype)");
    }
    let copy_dir = TempDir::new("mcopy");
    let target = copy_dir.path().join("driver.sys");
    run(
        "mcopy",
        &[
            "-n",
            "-i",
            img.to_str().unwrap(),
            "::RVBLKXP.SYS",
            target.to_str().unwrap(),
        ],
    );
    let driver = fs::read(&target).unwrap();
    assert_eq!(
        driver,
        fs::read(dir.join(arch.driver_path())).unwrap(),
        "mcopy"
    );
    assert_eq!(
        pe_machine(&driver),
        arch.pe_machine(),
        "the {arch:?} driver"
    );

    // txtsetup.oem: ANSI, CRLF; names only files on the floppy.
    let oem_bytes = floppy_file(&img, "TXTSETUP.OEM");
    let oem = String::from_utf8(oem_bytes.clone()).expect("ASCII txtsetup.oem");
    assert!(oem.is_ascii());
    assert_eq!(
        oem.matches('\n').count(),
        oem.matches("\r\n").count(),
        "CRLF line ends"
    );
    let ini = parse_ini(&oem);
    let disks = section(&ini, "Disks");
    assert_eq!(disks.len(), 1);
    let (disk_key, disk) = &disks[0];
    assert_eq!(disk_key, "d1");
    assert_eq!(disk.len(), 3, "description, tag file, directory");
    assert_eq!(disk[2], "\\", "files in the root");
    let tag = disk[1].trim_start_matches('\\').to_ascii_uppercase();
    assert!(listing.contains_key(&tag), "tag file {tag} on the floppy");

    let defaults = section(&ini, "Defaults");
    assert_eq!(
        defaults,
        &[("SCSI".to_string(), vec!["rvblkxp".to_string()])]
    );
    let scsi = section(&ini, "SCSI");
    let ids: Vec<&str> = scsi.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(ids, ["rvblkxp", "rvblkxpd"]);
    for (id, _) in scsi {
        let files = section(&ini, &format!("Files.SCSI.{id}"));
        let drivers: Vec<_> = files.iter().filter(|(k, _)| k == "driver").collect();
        assert_eq!(drivers.len(), 1, "one driver line for {id}");
        assert_eq!(
            drivers[0].1[2], *id,
            "driver key = service name = [SCSI] id"
        );
        assert!(files.iter().any(|(k, _)| k == "inf"), "inf line for {id}");
        for (kind, values) in files {
            assert_eq!(values[0], "d1", "{kind} from disk d1");
            let name = values[1].to_ascii_uppercase();
            assert!(
                name.len() <= 12 && name.split('.').next().unwrap().len() <= 8,
                "8.3: {name}"
            );
            assert!(
                listing.contains_key(&name),
                "[Files.SCSI.{id}] {kind} = {name} is on the floppy"
            );
        }
        // Legacy miniport: no PnpInterface; the Config section is keyed by the driver key.
        let config = section(&ini, &format!("Config.{id}"));
        assert!(config.iter().all(|(_, v)| !v[0].contains("PnpInterface")));
        let hwids = section(&ini, &format!("HardwareIds.SCSI.{id}"));
        let hw: Vec<&str> = hwids.iter().map(|(_, v)| v[0].as_str()).collect();
        assert_eq!(
            hw,
            [format!("DETECTED\\Isa\\{id}"), format!("DETECTED\\{id}")]
        );
    }
    // Plain text, independent of the parser.
    let disks_line = format!(
        "[Disks]\r\nd1 = \"rvblk driver disk for Windows XP/2003 {}\", \\RVBLKXP.TAG, \\\r\n",
        arch.label()
    );
    for line in [
        disks_line.as_str(),
        "[Defaults]\r\nSCSI = rvblkxp\r\n",
        "[Files.SCSI.rvblkxp]\r\ndriver  = d1, rvblkxp.sys, rvblkxp\r\ninf     = d1, rvblkxp.inf\r\n",
        "[Files.SCSI.rvblkxpd]\r\ndriver  = d1, rvblkxp.sys, rvblkxpd\r\ninf     = d1, rvblkxp.inf\r\n",
        "value = Parameters\\Device, DriverParameter, REG_SZ, \"disks=on\"\r\n",
    ] {
        assert!(oem.contains(line), "txtsetup.oem contains {line:?}");
    }
    let setters = oem
        .lines()
        .filter(|l| l.starts_with("value") && l.contains("DriverParameter"))
        .count();
    assert_eq!(setters, 1, "only rvblkxpd sets DriverParameter");
    let has_cat = listing.contains_key("RVBLKXP.CAT");
    assert_eq!(
        oem.contains("catalog = d1, rvblkxp.cat"),
        has_cat,
        "catalog lines iff RVBLKXP.CAT is there"
    );

    // The INF.
    let inf = String::from_utf8(floppy_file(&img, "RVBLKXP.INF")).unwrap();
    assert_eq!(
        inf.matches('\n').count(),
        inf.matches("\r\n").count(),
        "CRLF line ends"
    );
    let ini = parse_ini(&inf);
    let version: BTreeMap<_, _> = section(&ini, "Version")
        .iter()
        .map(|(k, v)| (k.as_str(), v.join(",")))
        .collect();
    assert_eq!(version["Signature"], "$Windows NT$");
    assert_eq!(version["Class"], "SCSIAdapter");
    assert_eq!(
        version["ClassGUID"],
        "{4D36E97B-E325-11CE-BFC1-08002BE10318}"
    );
    assert_eq!(version["CatalogFile"], "rvblkxp.cat");
    let driver_ver = &version["DriverVer"];
    assert!(
        driver_ver.starts_with("01/01/2025,") && driver_ver.split('.').count() == 4,
        "{driver_ver}"
    );
    // x86 uses the undecorated models, x64 only the NTamd64 ones: the same devices in both.
    let manufacturer = section(&ini, "Manufacturer");
    assert_eq!(manufacturer[0].1, ["rvblk_Models", "NTamd64"]);
    for models in ["rvblk_Models", "rvblk_Models.NTamd64"] {
        let hwids: Vec<&str> = section(&ini, models)
            .iter()
            .map(|(_, v)| v[1].as_str())
            .collect();
        assert_eq!(
            hwids,
            [
                "DETECTED\\Isa\\rvblkxp",
                "DETECTED\\rvblkxp",
                "DETECTED\\Isa\\rvblkxpd",
                "DETECTED\\rvblkxpd"
            ],
            "[{models}]"
        );
    }
    for svc in ["rvblkxp", "rvblkxpd"] {
        let service: BTreeMap<_, _> = section(&ini, &format!("{svc}_Service"))
            .iter()
            .map(|(k, v)| (k.as_str(), v.join(",")))
            .collect();
        assert_eq!(service["ServiceType"], "1");
        assert_eq!(service["StartType"], "0");
        assert_eq!(service["ErrorControl"], "1");
        assert_eq!(service["LoadOrderGroup"], "SCSI miniport");
        assert_eq!(service["ServiceBinary"], "%12%\\rvblkxp.sys");
        let add_service = &section(&ini, &format!("{svc}_Inst.Services"))[0].1;
        assert_eq!(add_service[0], svc);
        assert_eq!(add_service[1], "0x00000002", "SPSVCINST_ASSOCSERVICE");
    }
    assert!(
        !inf.contains("PnpInterface\""),
        "no PnpInterface value for a legacy miniport"
    );
    assert!(inf.contains(
        "HKR, \"Parameters\\Device\", \"DriverParameter\", 0x00000002, \"disks=on\"\r\n"
    ));
    let names = section(&ini, "SourceDisksNames");
    assert_eq!(
        names[0].1[1].to_ascii_uppercase(),
        tag,
        "INF source disk tag = floppy tag"
    );
    // Where each architecture's rvblkxp.sys is, relative to this INF: the floppy's own
    // architecture's driver is the one on the floppy; the other one is not beside it.
    let sources = |platform: &str| section(&ini, &format!("SourceDisksFiles.{platform}")).to_vec();
    let (x86, amd64) = (sources("x86"), sources("amd64"));
    let beside = vec![("rvblkxp.sys".to_string(), vec!["1".to_string()])];
    match arch {
        XpArch::X86 => {
            assert_eq!(x86, beside);
            let sub = vec!["1".to_string(), "amd64".to_string()];
            assert_eq!(amd64, [("rvblkxp.sys".to_string(), sub)]);
        }
        XpArch::Amd64 => {
            assert_eq!(amd64, beside);
            assert!(x86.is_empty(), "no x86 driver beside the x64 INF: {x86:?}");
        }
    }
}

/// Both floppies if the package has the x64 driver, else the x86 one alone.
fn check_package(dir: &Path) {
    check_floppy(dir, XpArch::X86);
    if dir.join(XpArch::Amd64.driver_path()).exists() {
        check_floppy(dir, XpArch::Amd64);
        // The xp\ copy of the INF finds the x64 driver in amd64\.
        let x86_inf = fs::read_to_string(dir.join("xp/rvblkxp.inf")).unwrap();
        assert!(x86_inf.contains("[SourceDisksFiles.amd64]\r\nrvblkxp.sys = 1,amd64\r\n"));
        assert!(dir.join("xp/amd64/rvblkxp.sys").is_file());
    }
}

#[test]
fn package_without_catalog() {
    let dir = TempDir::new("pkg");
    fake_package(dir.path(), false, &XpArch::ALL);
    let images = rvblk_xp::write_xp_package(dir.path()).unwrap();
    assert_eq!(
        images,
        [
            dir.path().join("rvblk-f6.img"),
            dir.path().join("rvblk-f6-amd64.img")
        ]
    );
    check_package(dir.path());
    for arch in XpArch::ALL {
        let listing = floppy_listing(&dir.path().join(arch.f6_image_name()));
        assert_eq!(listing.len(), 4, "{listing:?}");
    }
}

#[test]
fn package_with_catalog() {
    let dir = TempDir::new("pkgcat");
    fake_package(dir.path(), true, &XpArch::ALL);
    rvblk_xp::write_xp_package(dir.path()).unwrap();
    check_package(dir.path());
    for arch in XpArch::ALL {
        let img = dir.path().join(arch.f6_image_name());
        assert_eq!(floppy_file(&img, "RVBLKXP.CAT"), b"0\x82fake catalog");
    }
}

#[test]
fn package_without_the_x64_driver() {
    let dir = TempDir::new("pkgx86");
    fake_package(dir.path(), false, &[XpArch::X86]);
    let images = rvblk_xp::write_xp_package(dir.path()).unwrap();
    assert_eq!(images, [dir.path().join("rvblk-f6.img")]);
    check_package(dir.path());
    assert!(!dir.path().join("rvblk-f6-amd64.img").exists());
    assert!(!dir.path().join("xp/amd64").exists());
}

#[test]
fn package_is_deterministic() {
    let a = TempDir::new("deta");
    let b = TempDir::new("detb");
    fake_package(a.path(), false, &XpArch::ALL);
    fake_package(b.path(), false, &XpArch::ALL);
    rvblk_xp::write_xp_package(a.path()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    rvblk_xp::write_xp_package(b.path()).unwrap();
    let read = |d: &Path, f: &str| fs::read(d.join(f)).unwrap();
    let mut files = vec!["rvblk-f6.img".to_string(), "rvblk-f6-amd64.img".to_string()];
    for arch in XpArch::ALL {
        for f in ["txtsetup.oem", "rvblkxp.inf", "RVBLKXP.TAG"] {
            files.push(format!("{}/{f}", arch.package_dir()));
        }
    }
    for f in &files {
        assert!(
            read(a.path(), f) == read(b.path(), f),
            "{f} differs between two runs"
        );
    }
    // Writing again over an existing package gives the same bytes too.
    rvblk_xp::write_xp_package(a.path()).unwrap();
    for f in ["rvblk-f6.img", "rvblk-f6-amd64.img"] {
        assert!(read(a.path(), f) == read(b.path(), f));
    }
}

#[test]
fn package_needs_the_x86_driver() {
    let dir = TempDir::new("nodrv");
    let err = rvblk_xp::write_xp_package(dir.path()).unwrap_err();
    assert!(err.to_string().contains("rvblkxp.sys not found"), "{err}");
    // The x64 driver alone is not enough either, and nothing is written.
    fake_package(dir.path(), false, &[XpArch::Amd64]);
    let err = rvblk_xp::write_xp_package(dir.path()).unwrap_err();
    assert!(err.to_string().contains("rvblkxp.sys not found"), "{err}");
    assert!(!dir.path().join("rvblk-f6.img").exists());
    assert!(!dir.path().join("rvblk-f6-amd64.img").exists());
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn real_package() {
    let dir = std::env::var_os("RVBLK_PACKAGE_DIR")
        .expect("RVBLK_PACKAGE_DIR names the package directory");
    let dir = Path::new(&dir);
    assert!(
        dir.join("xp/amd64/rvblkxp.sys").is_file(),
        "cargo xtask package ships the x64 XP driver"
    );
    check_package(dir);
}
