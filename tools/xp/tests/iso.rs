//! `rvblk xp slipstream IN.iso -o OUT.iso` on a small XP-like setup CD built with xorriso
//! (ISO 9660 names only, a hidden no-emulation boot image like XP's); checked with xorriso.

mod common;

use common::{fake_driver, parse_ini, section, TempDir};
use rvblk_xp::slipstream::Options;
use rvblk_xp::XpArch;
use std::fs;
use std::path::Path;
use std::process::Command;

const SIF: &str = "[Version]\r\nsignature = \"$Windows NT$\"\r\n\r\n[SourceDisksNames.x86]\r\n\
1 = %cdname%,%cdtagfilei%,,\\i386\r\n\r\n[SourceDisksFiles]\r\natapi.sys = 1,,,,,,3_,4,1,,,1,4\r\n\r\n\
[HardwareIdsDatabase]\r\n*PNP0600 = \"atapi\"\r\n\r\n[SCSI.Load]\r\natapi = atapi.sys,4\r\n\r\n\
[SCSI]\r\n\r\n[Strings]\r\ncdname = \"Windows XP Professional CD\"\r\n";
const DOSNET: &str = "[Version]\r\nsignature=\"$Windows NT$\"\r\n\r\n[Files]\r\nd1,atapi.sys\r\n";

fn xorriso(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = Command::new("xorriso")
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("xorriso (apt-get install xorriso)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn el_torito(iso: &Path) -> Vec<String> {
    xorriso(&[&"-indev", &iso, &"-report_el_torito", &"plain"])
        .lines()
        .filter(|l| l.starts_with("El Torito boot img"))
        .map(str::to_string)
        .collect()
}

/// Boot image bytes: 4 × 512 at the LBA the catalog gives.
fn boot_bytes(iso: &Path) -> Vec<u8> {
    let line = el_torito(iso).into_iter().next().unwrap();
    let lba: usize = line.split_whitespace().last().unwrap().parse().unwrap();
    fs::read(iso).unwrap()[lba * 2048..lba * 2048 + 2048].to_vec()
}

fn extract(iso: &Path, path: &str, dest: &Path) -> Vec<u8> {
    let _ = fs::remove_file(dest);
    xorriso(&[
        &"-indev",
        &iso,
        &"-osirrox",
        &"on",
        &"-extract",
        &path,
        &dest,
    ]);
    fs::read(dest).unwrap()
}

#[test]
fn slipstream_iso_to_iso() {
    let dir = TempDir::new("iso");
    let tree = dir.path().join("cd");
    fs::create_dir_all(tree.join("I386")).unwrap();
    fs::write(tree.join("I386/TXTSETUP.SIF"), SIF).unwrap();
    fs::write(tree.join("I386/DOSNET.INF"), DOSNET).unwrap();
    fs::write(tree.join("I386/SETUPLDR.BIN"), b"setupldr").unwrap();
    let boot: Vec<u8> = (0..2048u32).map(|i| (i * 7 + 3) as u8).collect();
    fs::write(tree.join("BOOT.BIN"), &boot).unwrap();
    let input = dir.path().join("xp.iso");
    xorriso(&[
        &"-as",
        &"mkisofs",
        &"-V",
        &"XP_TEST_CD",
        &"-b",
        &"BOOT.BIN",
        &"-no-emul-boot",
        &"-boot-load-size",
        &"4",
        &"-hide",
        &"BOOT.BIN",
        &"-o",
        &input,
        &tree,
    ]);
    let before = fs::read(&input).unwrap();
    let output = dir.path().join("xp-rvblk.iso");
    let driver = fake_driver(XpArch::X86);
    let d = driver.clone();
    let report = rvblk_xp::iso::slipstream_iso(
        &input,
        &output,
        &move |a| {
            assert_eq!(a, XpArch::X86);
            Ok(d.clone())
        },
        Options::default(),
    )
    .unwrap();
    assert!(!report.unchanged());

    assert_eq!(fs::read(&input).unwrap(), before, "input unchanged");
    let pvd = xorriso(&[&"-indev", &output, &"-pvd_info"]);
    assert!(pvd.contains("Volume Id    : XP_TEST_CD"), "{pvd}");
    let (a, b) = (el_torito(&input), el_torito(&output));
    assert_eq!(a.len(), 1);
    // Same platform, emulation and load size; the block may move.
    let strip = |l: &str| l.rsplit_once(' ').unwrap().0.trim_end().to_string();
    assert_eq!(strip(&a[0]), strip(&b[0]));
    assert_eq!(boot_bytes(&output), boot);

    let x = dir.path().join("x");
    let sif = String::from_utf8(extract(&output, "/I386/TXTSETUP.SIF", &x)).unwrap();
    let ini = parse_ini(&sif);
    assert!(section(&ini, "SCSI.Load")
        .iter()
        .any(|(k, v)| k == "rvblkxp" && v[0] == "rvblkxp.sys"));
    let files = xorriso(&[&"-indev", &output, &"-find", &"/I386", &"-type", &"f"]);
    let drv = files
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("/i386/rvblkxp.sys"))
        .unwrap_or_else(|| panic!("no driver in {files}"))
        .trim_matches('\'')
        .to_string();
    assert_eq!(extract(&output, &drv, &x), driver);
    assert!(
        !files.contains("rvblk-orig"),
        "backups stay out of the ISO: {files}"
    );
    let dosnet = String::from_utf8(extract(&output, "/I386/DOSNET.INF", &x)).unwrap();
    assert!(dosnet.contains("d1,rvblkxp.sys"), "{dosnet}");
    // Only the ISO was written next to it.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    // A CD without a setup source is refused, with no output.
    let other = dir.path().join("other.iso");
    let plain = dir.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    fs::write(plain.join("README.TXT"), b"x").unwrap();
    xorriso(&[&"-as", &"mkisofs", &"-o", &other, &plain]);
    let out2 = dir.path().join("o2.iso");
    let e = rvblk_xp::iso::slipstream_iso(&other, &out2, &|_| Ok(vec![]), Options::default())
        .unwrap_err();
    assert!(e.to_string().contains("no I386/TXTSETUP.SIF"), "{e}");
    assert!(!out2.exists());
}
