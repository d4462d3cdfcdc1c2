//! The harness side of the SCSI oracle (`docs/scsi-oracle.md`) against the packaged drivers:
//! `cdbs` answers a script over an image file as the real driver sees it, and the torture run
//! finds a byte changed behind the driver's back.
mod common;

use rvblk_harness::commands::torture::{self, Options};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn image() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(7) ^ (i >> 9)) as u8)
        .collect()
}

const SCRIPT: &str = "\
inq in 36 120000002400
cap in 8 25000000000000000000
rd in 1024 28000000000500000200
past in 512 28000000080000000100
wr out 512 2a000000000000000100 ZEROS
op02 in 16 020000001000
";

fn cdbs(arch: &str, personality: &str) {
    let dir = tempfile_dir(&format!("cdbs-{arch}-{personality}"));
    let img = dir.join("disk.img");
    std::fs::write(&img, image()).unwrap();
    let script = dir.join("disk.script");
    std::fs::write(&script, SCRIPT.replace("ZEROS", &"00".repeat(512))).unwrap();
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let driver = common::packaged_for(arch, personality);
    let out = common::run(&[
        "cdbs",
        "--driver",
        driver.to_str().unwrap(),
        "--personality",
        personality,
        "--kind",
        "disk",
        "--image",
        img.to_str().unwrap(),
        "--script",
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = |id: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no answer for {id}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // A disk (type 0), GOOD, 36 bytes.
    let inq = line("inq");
    assert_eq!((inq[2].as_str(), inq[3].as_str()), ("00", "-"));
    assert_eq!(&inq[4][..2], "00");
    assert_eq!(inq[4].len(), 72);
    // 2048 blocks of 512 bytes: last LBA 2047.
    assert_eq!(line("cap")[4], "000007ff00000200");
    // Blocks 5 and 6 are the image's bytes.
    assert_eq!(line("rd")[4], hex(&image()[5 * 512..7 * 512]));
    // Past the end: LOGICAL BLOCK ADDRESS OUT OF RANGE; read-only: WRITE PROTECTED;
    // unknown opcode: INVALID COMMAND OPERATION CODE.
    for (id, key, asc) in [
        ("past", "05", "21"),
        ("wr", "07", "27"),
        ("op02", "05", "20"),
    ] {
        let l = line(id);
        assert_eq!(l[2], "02", "{id}");
        assert_eq!((&l[3][4..6], &l[3][24..26]), (key, asc), "{id}: {}", l[3]);
    }
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let d = common::workspace()
        .join("target")
        .join("harness-oracle-tests")
        .join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cdbs_x64_storport() {
    cdbs("amd64", "win8");
}

#[test]
fn cdbs_x86_storport() {
    cdbs("x86", "win8");
}

#[test]
fn cdbs_x86_scsiport() {
    cdbs("x86", "xp");
}

#[test]
fn torture_is_clean_and_catches_a_byte_changed_behind_the_driver() {
    let driver = std::fs::read(common::packaged("amd64")).unwrap();
    let mut o = Options {
        ops: 20_000,
        threads: 3,
        size: 8 << 20,
        seed: 7,
        corrupt_behind_driver: false,
    };
    let r = torture::run(&driver, "x64", &o).unwrap();
    assert_eq!(r.mismatches, 0, "{}\n{:?}", r.line, r.problems);
    assert!(r.verifier_failures.is_empty(), "{:?}", r.verifier_failures);
    assert!(r.line.contains("20000 operations"), "{}", r.line);
    o.corrupt_behind_driver = true;
    let r = torture::run(&driver, "x64", &o).unwrap();
    assert_eq!(r.mismatches, 1, "{}", r.line);
    assert!(r.line.contains("1 of 128 stripes differ"), "{}", r.line);
}

#[test]
fn torture_x86_with_faults_on_the_io_path() {
    common::ensure_x86_helper();
    let driver = common::packaged("x86");
    let out = common::run(&[
        "torture",
        "--driver",
        driver.to_str().unwrap(),
        "--ops",
        "20000",
        "--size-mib",
        "320",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("torture x86"), "{}", out.stdout);
    assert!(out.stdout.contains(" 0 mismatches"), "{}", out.stdout);
    // The view cache remaps, and injected mapping failures came back as BUSY and were retried.
    let injected: u64 = out
        .stdout
        .split("injected faults")
        .next()
        .and_then(|s| s.rsplit("; ").next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(injected > 0, "no fault was injected: {}", out.stdout);
}
