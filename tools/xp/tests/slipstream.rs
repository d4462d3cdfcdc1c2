//! `rvblk xp slipstream` on synthetic i386 and amd64 trees.

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{fake_driver, TempDir};
use rvblk_xp::slipstream::{self, Options};
use rvblk_xp::{XpArch, XpError};

const SIF: &str = "\
; Synthetic txtsetup.sif in the shape of XP's
[Version]
signature = \"$Windows NT$\"
LayoutInf = layout.inf

[SetupData]
ProductType = 0
OsLoadOptions = \"/fastdetect /noguiboot /nodebug\"

[SourceDisksNames.x86]
1 = %cdname%,%cdtagfilei%,,\\i386

[SourceDisksFiles]
atapi.sys = 1,,,,,,3_,4,1,,,1,4
cpqarray.sys = 1,,,,,,4_,4,1,,,1,4

[HardwareIdsDatabase]
PCI\\CC_0101 = \"pciide\"
*PNP0600 = \"atapi\"

[SCSI.Load]
atapi = atapi.sys,4
cpqarray = cpqarray.sys,4

[SCSI]
cpqarray = \"Compaq Drive Array\"

[Strings]
cdname = \"Windows XP Professional CD\"
";

const SIF_AFTER: &str = "\
; Synthetic txtsetup.sif in the shape of XP's
[Version]
signature = \"$Windows NT$\"
LayoutInf = layout.inf

[SetupData]
ProductType = 0
OsLoadOptions = \"/fastdetect /noguiboot /nodebug\"

[SourceDisksNames.x86]
1 = %cdname%,%cdtagfilei%,,\\i386

[SourceDisksFiles]
atapi.sys = 1,,,,,,3_,4,1,,,1,4
cpqarray.sys = 1,,,,,,4_,4,1,,,1,4
rvblkxp.sys = 1,,,,,,4_,4,1,,,1,4

[HardwareIdsDatabase]
PCI\\CC_0101 = \"pciide\"
*PNP0600 = \"atapi\"
DETECTED\\Isa\\rvblkxp = \"rvblkxp\"
DETECTED\\rvblkxp = \"rvblkxp\"

[SCSI.Load]
atapi = atapi.sys,4
cpqarray = cpqarray.sys,4
rvblkxp = rvblkxp.sys,4

[SCSI]
cpqarray = \"Compaq Drive Array\"
rvblkxp = \"rvblk RAM disk/CD (GRUB4DOS/MEMDISK)\"

[Strings]
cdname = \"Windows XP Professional CD\"
";

const DOSNET: &str = "\
[Version]
signature=\"$Windows NT$\"

[Directories]
d1 = \\

[Files]
d1,atapi.sys
d1,cpqarray.sys
";

const DRIVER: &[u8] = b"MZ fake rvblkxp.sys for the tests";

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// An i386 tree with CRLF txtsetup.sif and dosnet.inf.
fn tree(tag: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let i386 = dir.path().join("i386");
    fs::create_dir(&i386).unwrap();
    fs::write(i386.join("txtsetup.sif"), crlf(SIF)).unwrap();
    fs::write(i386.join("dosnet.inf"), crlf(DOSNET)).unwrap();
    (dir, i386)
}

/// Every file of the directory (name -> bytes), to check that nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn one_run_adds_exact_lines_and_keeps_backups() {
    let (_dir, i386) = tree("once");
    let report = slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    assert!(!report.unchanged());
    assert_eq!(
        fs::read(i386.join("txtsetup.sif")).unwrap(),
        crlf(SIF_AFTER)
    );
    let dosnet_after = DOSNET.to_string() + "d1,rvblkxp.sys\n";
    assert_eq!(
        fs::read(i386.join("dosnet.inf")).unwrap(),
        crlf(&dosnet_after)
    );
    assert_eq!(fs::read(i386.join("rvblkxp.sys")).unwrap(), DRIVER);
    assert_eq!(
        fs::read(i386.join("txtsetup.sif.rvblk-orig")).unwrap(),
        crlf(SIF)
    );
    assert_eq!(
        fs::read(i386.join("dosnet.inf.rvblk-orig")).unwrap(),
        crlf(DOSNET)
    );
    // No temporary files left behind.
    assert_eq!(snapshot(&i386).len(), 5);
}

#[test]
fn second_run_is_byte_identical() {
    let (_dir, i386) = tree("twice");
    slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    let after_one = snapshot(&i386);
    let report = slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    assert!(report.unchanged(), "{report:?}");
    assert_eq!(snapshot(&i386), after_one);
}

#[test]
fn remove_restores_the_original_bytes() {
    let (_dir, i386) = tree("remove");
    let before = snapshot(&i386);
    slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    slipstream::remove(&i386).unwrap();
    assert_eq!(
        snapshot(&i386),
        before,
        "originals back, backups and driver gone"
    );
    // Removing again is a no-op.
    let report = slipstream::remove(&i386).unwrap();
    assert!(report.unchanged());
    assert_eq!(snapshot(&i386), before);
}

#[test]
fn remove_after_other_edits_removes_only_our_lines() {
    let (_dir, i386) = tree("removeother");
    slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    let sif = i386.join("txtsetup.sif");
    let mut edited = fs::read(&sif).unwrap();
    edited.extend_from_slice(b"[Extra]\r\nfoo = bar\r\n");
    fs::write(&sif, &edited).unwrap();
    slipstream::remove(&i386).unwrap();
    let mut want = crlf(SIF);
    want.extend_from_slice(b"[Extra]\r\nfoo = bar\r\n");
    assert_eq!(fs::read(&sif).unwrap(), want);
    // The backup is kept (never overwritten); dosnet.inf was restored from its own.
    assert_eq!(
        fs::read(i386.join("txtsetup.sif.rvblk-orig")).unwrap(),
        crlf(SIF)
    );
    assert_eq!(fs::read(i386.join("dosnet.inf")).unwrap(), crlf(DOSNET));
    assert!(!i386.join("dosnet.inf.rvblk-orig").exists());
}

#[test]
fn disks_flavour_and_switching_back() {
    let (_dir, i386) = tree("disks");
    slipstream::slipstream(&i386, DRIVER, Options { disks: true }).unwrap();
    let sif = String::from_utf8(fs::read(i386.join("txtsetup.sif")).unwrap()).unwrap();
    for line in [
        "rvblkxpd = rvblkxp.sys,4\r\n",
        "rvblkxpd = \"rvblk RAM CD + RAM disks (GRUB4DOS/MEMDISK)\"\r\n",
        "DETECTED\\Isa\\rvblkxpd = \"rvblkxpd\"\r\n",
        "DETECTED\\rvblkxpd = \"rvblkxpd\"\r\n",
        "rvblkxp.sys = 1,,,,,,4_,4,1,,,1,4\r\n",
    ] {
        assert!(sif.contains(line), "{line:?} in\n{sif}");
    }
    assert!(!sif.contains("rvblkxp = "));
    // Back to the default flavour: the rvblkxpd lines are replaced, not added to.
    slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    assert_eq!(
        fs::read(i386.join("txtsetup.sif")).unwrap(),
        crlf(SIF_AFTER)
    );
    // The backup is still the very first original.
    assert_eq!(
        fs::read(i386.join("txtsetup.sif.rvblk-orig")).unwrap(),
        crlf(SIF)
    );
    slipstream::remove(&i386).unwrap();
    assert_eq!(fs::read(i386.join("txtsetup.sif")).unwrap(), crlf(SIF));
}

#[test]
fn upper_case_tree_and_lf_line_ends() {
    let dir = TempDir::new("upper");
    let i386 = dir.path().join("I386");
    fs::create_dir(&i386).unwrap();
    fs::write(i386.join("TXTSETUP.SIF"), SIF).unwrap();
    fs::write(i386.join("DOSNET.INF"), DOSNET).unwrap();
    slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    assert_eq!(
        fs::read_to_string(i386.join("TXTSETUP.SIF")).unwrap(),
        SIF_AFTER,
        "LF kept"
    );
    assert_eq!(fs::read(i386.join("RVBLKXP.SYS")).unwrap(), DRIVER);
    assert!(i386.join("TXTSETUP.SIF.rvblk-orig").exists());
}

#[test]
fn utf16_with_bom_stays_utf16() {
    let dir = TempDir::new("utf16");
    let i386 = dir.path().join("i386");
    fs::create_dir(&i386).unwrap();
    let utf16 = |s: &str| {
        let mut v = vec![0xFF, 0xFE];
        v.extend(
            s.replace('\n', "\r\n")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        v
    };
    fs::write(i386.join("txtsetup.sif"), utf16(SIF)).unwrap();
    slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    assert_eq!(
        fs::read(i386.join("txtsetup.sif")).unwrap(),
        utf16(SIF_AFTER)
    );
}

#[test]
fn no_dosnet_is_a_note_not_an_error() {
    let (_dir, i386) = tree("nodosnet");
    fs::remove_file(i386.join("dosnet.inf")).unwrap();
    let report = slipstream::slipstream(&i386, DRIVER, Options::default()).unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("no dosnet.inf")),
        "{:?}",
        report.notes
    );
    assert_eq!(
        fs::read(i386.join("txtsetup.sif")).unwrap(),
        crlf(SIF_AFTER)
    );
}

/// Expects `slipstream` to fail with a message containing `needle` and to leave the tree alone.
fn refused(i386: &Path, needle: &str) -> XpError {
    let before = snapshot(i386);
    let err = slipstream::slipstream(i386, DRIVER, Options::default()).unwrap_err();
    assert!(
        err.to_string().contains(needle),
        "error {err:?} should mention {needle:?}"
    );
    assert_eq!(snapshot(i386), before, "tree unchanged after: {err}");
    err
}

#[test]
fn refuses_missing_sections() {
    for section in [
        "[SCSI.Load]",
        "[SCSI]",
        "[HardwareIdsDatabase]",
        "[SourceDisksFiles]",
    ] {
        let (_dir, i386) = tree("missing");
        let sif = SIF.replace(&format!("{section}\n"), "[Renamed]\n");
        fs::write(i386.join("txtsetup.sif"), crlf(&sif)).unwrap();
        let name = section.trim_matches(['[', ']']);
        let err = refused(&i386, &format!("no [{name}] section"));
        assert!(err.to_string().contains("refusing"), "{err}");
    }
}

#[test]
fn refuses_binary_garbage() {
    let (_dir, i386) = tree("garbage");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(i386.join("txtsetup.sif"), garbage).unwrap();
    refused(&i386, "binary data");
}

#[test]
fn refuses_utf16_without_bom() {
    let (_dir, i386) = tree("utf16nobom");
    let bytes: Vec<u8> = SIF.encode_utf16().flat_map(u16::to_le_bytes).collect();
    fs::write(i386.join("txtsetup.sif"), bytes).unwrap();
    refused(&i386, "UTF-16 text without a byte-order mark");
}

#[test]
fn refuses_malformed_dosnet_before_touching_anything() {
    let (_dir, i386) = tree("baddosnet");
    fs::write(i386.join("dosnet.inf"), crlf("[Version]\nsignature=x\n")).unwrap();
    refused(&i386, "no [Files] section: not a dosnet.inf");
}

/// A synthetic amd64\txtsetup.sif in the shape of XP x64's / Server 2003 x64's: the x64 files
/// come from disk 1 = \amd64 and are listed in [SourceDisksFiles.amd64].
const SIF64: &str = "\
; Synthetic amd64 txtsetup.sif
[Version]
signature = \"$Windows NT$\"
LayoutInf = layout.inf

[SourceDisksNames.amd64]
1 = %cdname%,%cdtagfilea%,,\\amd64

[SourceDisksFiles]
vgaoem.fon = 1,,,,,,,20,0,0

[SourceDisksFiles.amd64]
atapi.sys = 1,,,,,,3_,4,1,,,1,4

[HardwareIdsDatabase]
*PNP0600 = \"atapi\"

[SCSI.Load]
atapi = atapi.sys,4

[SCSI]
atapi = \"IDE/ESDI Hard Disk Controller\"
";

const SIF64_AFTER: &str = "\
; Synthetic amd64 txtsetup.sif
[Version]
signature = \"$Windows NT$\"
LayoutInf = layout.inf

[SourceDisksNames.amd64]
1 = %cdname%,%cdtagfilea%,,\\amd64

[SourceDisksFiles]
vgaoem.fon = 1,,,,,,,20,0,0

[SourceDisksFiles.amd64]
atapi.sys = 1,,,,,,3_,4,1,,,1,4
rvblkxp.sys = 1,,,,,,4_,4,1,,,1,4

[HardwareIdsDatabase]
*PNP0600 = \"atapi\"
DETECTED\\Isa\\rvblkxp = \"rvblkxp\"
DETECTED\\rvblkxp = \"rvblkxp\"

[SCSI.Load]
atapi = atapi.sys,4
rvblkxp = rvblkxp.sys,4

[SCSI]
atapi = \"IDE/ESDI Hard Disk Controller\"
rvblkxp = \"rvblk RAM disk/CD (GRUB4DOS/MEMDISK)\"
";

/// An amd64 tree (directory `AMD64`, as on the CD) with a CRLF txtsetup.sif and dosnet.inf.
fn tree64(tag: &str, sif: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let amd64 = dir.path().join("AMD64");
    fs::create_dir(&amd64).unwrap();
    fs::write(amd64.join("TXTSETUP.SIF"), crlf(sif)).unwrap();
    fs::write(amd64.join("DOSNET.INF"), crlf(DOSNET)).unwrap();
    (dir, amd64)
}

#[test]
fn amd64_tree_gets_the_x64_driver() {
    let (_dir, amd64) = tree64("amd64", SIF64);
    let before = snapshot(&amd64);
    assert_eq!(slipstream::setup_arch(&amd64).unwrap(), XpArch::Amd64);
    let driver = fake_driver(XpArch::Amd64);
    let report = slipstream::slipstream(&amd64, &driver, Options::default()).unwrap();
    assert!(report.notes.iter().any(|n| n.contains("x64")), "{report:?}");
    assert_eq!(
        fs::read(amd64.join("TXTSETUP.SIF")).unwrap(),
        crlf(SIF64_AFTER)
    );
    let dosnet_after = DOSNET.to_string() + "d1,rvblkxp.sys\n";
    assert_eq!(
        fs::read(amd64.join("DOSNET.INF")).unwrap(),
        crlf(&dosnet_after)
    );
    assert_eq!(fs::read(amd64.join("RVBLKXP.SYS")).unwrap(), driver);
    // Idempotent, and --remove gives the original tree back.
    let after_one = snapshot(&amd64);
    let report = slipstream::slipstream(&amd64, &driver, Options::default()).unwrap();
    assert!(report.unchanged(), "{report:?}");
    assert_eq!(snapshot(&amd64), after_one);
    slipstream::remove(&amd64).unwrap();
    assert_eq!(snapshot(&amd64), before);
}

#[test]
fn amd64_tree_without_a_decorated_files_section() {
    // Some guides add x64 drivers to the undecorated section; with no [SourceDisksFiles.amd64]
    // that is where the line goes.
    let sif = SIF64.replace("\n[SourceDisksFiles.amd64]\n", "");
    let (_dir, amd64) = tree64("amd64plain", &sif);
    slipstream::slipstream(&amd64, &fake_driver(XpArch::Amd64), Options::default()).unwrap();
    let after = String::from_utf8(fs::read(amd64.join("TXTSETUP.SIF")).unwrap()).unwrap();
    assert!(
        after.contains(
            "[SourceDisksFiles]\r\nvgaoem.fon = 1,,,,,,,20,0,0\r\natapi.sys = 1,,,,,,3_,4,1,,,1,4\r\nrvblkxp.sys = 1,,,,,,4_,4,1,,,1,4\r\n"
        ),
        "{after}"
    );
}

/// Expects `slipstream` with `driver` to fail mentioning `needle` and to leave `dir` alone.
fn refused_driver(dir: &Path, driver: &[u8], needle: &str) {
    let before = snapshot(dir);
    let err = slipstream::slipstream(dir, driver, Options::default()).unwrap_err();
    assert!(
        err.to_string().contains(needle),
        "{err} should mention {needle:?}"
    );
    assert_eq!(snapshot(dir), before, "tree unchanged after: {err}");
}

#[test]
fn refuses_a_driver_of_the_other_architecture() {
    let (_dir, amd64) = tree64("wrongdrv64", SIF64);
    refused_driver(
        &amd64,
        &fake_driver(XpArch::X86),
        "the driver given is an x86 image",
    );
    let (_dir, i386) = tree("wrongdrv32");
    refused_driver(
        &i386,
        &fake_driver(XpArch::Amd64),
        "the driver given is an x64 image",
    );
    // The right one is accepted.
    slipstream::slipstream(&i386, &fake_driver(XpArch::X86), Options::default()).unwrap();
}

#[test]
fn refuses_trees_whose_name_and_txtsetup_sif_disagree() {
    // An x86 txtsetup.sif in a directory named amd64, and the other way round.
    let (_dir, amd64) = tree64("misnamed64", SIF);
    refused(
        &amd64,
        "named amd64 but this is the txtsetup.sif of an x86 (i386)",
    );
    let (_dir, i386) = tree("misnamed32");
    fs::write(i386.join("txtsetup.sif"), crlf(SIF64)).unwrap();
    refused(
        &i386,
        "named i386 but this is the txtsetup.sif of an x64 (amd64)",
    );
    // Any other name: the txtsetup.sif decides.
    let dir = TempDir::new("x64src");
    let other = dir.path().join("x64src");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("txtsetup.sif"), crlf(SIF64)).unwrap();
    assert_eq!(slipstream::setup_arch(&other).unwrap(), XpArch::Amd64);
}

#[test]
fn refuses_itanium_trees() {
    let dir = TempDir::new("ia64");
    let ia64 = dir.path().join("ia64");
    fs::create_dir(&ia64).unwrap();
    fs::write(ia64.join("txtsetup.sif"), crlf(SIF)).unwrap();
    refused(&ia64, "Itanium (ia64) setup trees are not supported");
    let other = dir.path().join("src");
    fs::create_dir(&other).unwrap();
    let sif = SIF.replace("[SourceDisksNames.x86]\n", "[SourceDisksNames.ia64]\n");
    fs::write(other.join("txtsetup.sif"), crlf(&sif)).unwrap();
    refused(&other, "an Itanium (ia64) txtsetup.sif");
}

#[test]
fn refuses_the_cd_root_with_a_hint() {
    let (dir, i386) = tree("cdroot");
    refused(dir.path(), "this looks like the CD root");
    let err = refused(dir.path(), "this looks like the CD root");
    assert!(
        err.to_string().contains(&i386.display().to_string()),
        "{err}"
    );
    let (dir, amd64) = tree64("cdroot64", SIF64);
    let err = refused(dir.path(), "this looks like the CD root");
    assert!(
        err.to_string().contains(&amd64.display().to_string()),
        "{err}"
    );
}

#[test]
fn refuses_a_stale_compressed_driver() {
    let (_dir, i386) = tree("sy_");
    fs::write(i386.join("RVBLKXP.SY_"), b"MSCF").unwrap();
    refused(&i386, "compressed copy");
}

fn cli(args: &[&str]) -> ExitCode {
    rvblk_xp::cli::xp(args.iter().map(OsString::from).collect())
}

#[test]
fn cli_slipstream_and_remove() {
    let (dir, i386) = tree("cli");
    let pkg = dir.path().join("package");
    fs::create_dir_all(pkg.join("xp")).unwrap();
    fs::write(pkg.join("xp/rvblkxp.sys"), DRIVER).unwrap();
    let i = i386.to_str().unwrap();
    let p = pkg.to_str().unwrap();
    assert_eq!(cli(&["slipstream", i, "--package", p]), ExitCode::SUCCESS);
    assert_eq!(
        fs::read(i386.join("txtsetup.sif")).unwrap(),
        crlf(SIF_AFTER)
    );
    assert_eq!(cli(&["slipstream", i, "--package", p]), ExitCode::SUCCESS);
    assert_eq!(
        fs::read(i386.join("txtsetup.sif")).unwrap(),
        crlf(SIF_AFTER)
    );
    assert_eq!(cli(&["slipstream", i, "--remove"]), ExitCode::SUCCESS);
    assert_eq!(fs::read(i386.join("txtsetup.sif")).unwrap(), crlf(SIF));
    // Errors exit non-zero.
    assert_eq!(
        cli(&["slipstream", i, "--package", "/nonexistent"]),
        ExitCode::FAILURE
    );
    assert_eq!(
        cli(&["slipstream", dir.path().to_str().unwrap(), "--package", p]),
        ExitCode::FAILURE
    );
    assert_eq!(cli(&["slipstream"]), ExitCode::from(2));
    // An x86 driver given for an i386 tree is fine, for an amd64 tree it is refused.
    let x86 = dir.path().join("x86.sys");
    fs::write(&x86, fake_driver(XpArch::X86)).unwrap();
    let (dir64, amd64) = tree64("cli64", SIF64);
    let a = amd64.to_str().unwrap();
    assert_eq!(
        cli(&["slipstream", a, "--driver", x86.to_str().unwrap()]),
        ExitCode::FAILURE
    );
    assert_eq!(snapshot(&amd64).len(), 2, "nothing written");
    // Without --driver the package's driver for the tree's architecture is used.
    fs::create_dir_all(pkg.join("xp/amd64")).unwrap();
    fs::write(pkg.join("xp/amd64/rvblkxp.sys"), fake_driver(XpArch::Amd64)).unwrap();
    assert_eq!(cli(&["slipstream", a, "--package", p]), ExitCode::SUCCESS);
    assert_eq!(
        fs::read(amd64.join("RVBLKXP.SYS")).unwrap(),
        fake_driver(XpArch::Amd64)
    );
    drop(dir64);
    assert_eq!(cli(&["menu", "--iso", "/isos/xp.iso"]), ExitCode::SUCCESS);
    assert_eq!(cli(&["--help"]), ExitCode::SUCCESS);
}
