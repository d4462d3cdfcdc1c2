//! Images that stay on the USB stick (issue 11): GRUB4DOS direct maps of an ISO and of a
//! writable hard-disk image, contiguous and fragmented, and Ventoy's normal mode (ISO and IMG
//! files; BIOS, BIOS `iBFT`, UEFI), served by the real packaged `rvblk.sys` (x64 and x86) from
//! an emulated backing disk (`rvblk-harness run --disk FILE [--disk-arrival-ms N]
//! [--disk-remove-ms N] [--uefi-var NAME=FILE]`). The inputs are `rvblk_memimage::backed`'s
//! scenarios: the RAM dump with the loader's tables, the stick (non-zero filler around the
//! image, so stray writes show) and the image file.
//!
//! Each served scenario runs with the stick arriving 0 ms and 3000 ms after the driver
//! registered for disk arrivals: exactly one LUN whose content read through SRBs equals the
//! image, nothing on the stick changed outside the image's extents, and (for the writable
//! image) the run's write test written, read back and restored through the extents. Then: the
//! stick pulled while `run` reads (the run ends, NOT READY / MEDIUM NOT PRESENT, no verifier
//! failure), a cloned stick (refused as ambiguous), no stick at all (nothing exposed, logged).
//!
//! Needs `cargo xtask package` (like `package.rs`) and the disk-backed harness and driver of
//! issue 11; every case first checks that this harness has `--disk` and fails with that
//! message when it does not.
mod common;

use rvblk_memimage::backed::{
    g4d_direct_hdd, g4d_direct_iso, g4d_direct_iso_sized, ventoy_img, ventoy_iso,
    ventoy_memdisk_uefi, write_sparse, BackedFiles, BackedScenario, Layout, VentoyBoot,
};
use rvblk_report::{LunKind, Report};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than any legitimate run (arrival 3 s + the harness's 10 s re-enumeration bound +
/// reading a few MiB, x86 helper included): a run still going then has hung.
const HANG: Duration = Duration::from_secs(150);

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Out {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn report(&self) -> Report {
        Report::from_harness_output(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// The run's report, checked: no verifier failure, and exactly one LUN, which reads as
    /// `image`.
    fn serves_only(&self, image: &Path, ctx: &str) -> Report {
        let r = self.report();
        assert!(
            r.verifier_failures.is_empty(),
            "{ctx}: {:?}",
            r.verifier_failures
        );
        assert_eq!(r.luns.len(), 1, "{ctx}: {:?}", r.luns);
        assert_eq!(
            r.luns[0].matches,
            vec![image.display().to_string()],
            "{ctx}"
        );
        r
    }

    /// The driver's own log lines (`rvblk: …`), as `--verbose` prints them.
    fn driver_log(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|l| l.find("rvblk: ").map(|i| &l[i..]))
            .collect()
    }
}

/// `rvblk-harness ARGS`, killed (and failed) if it runs longer than [`HANG`].
fn run_timed(args: &[String]) -> Out {
    let start = Instant::now();
    let mut child = Command::new(common::harness())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rvblk-harness");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for rvblk-harness") {
            break Some(st);
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Out {
        code: status.and_then(|s| s.code()),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        took: start.elapsed(),
    };
    println!(
        "$ rvblk-harness {}\n[{:.1} s, exit {:?}]\n{}{}",
        args.join(" "),
        out.took.as_secs_f64(),
        out.code,
        out.stdout,
        out.stderr
    );
    assert!(
        status.is_some(),
        "rvblk-harness hung: killed after {} s",
        HANG.as_secs()
    );
    out
}

/// The disk-backed command line must exist: without it every case would fail for a reason
/// that has nothing to do with the driver.
fn require_disk_support() {
    let o = Command::new(common::harness())
        .arg("--help")
        .output()
        .expect("run rvblk-harness --help");
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--disk ",
        "--disk-arrival-ms",
        "--disk-remove-ms",
        "--uefi-var",
    ] {
        assert!(
            help.contains(flag),
            "this rvblk-harness has no {flag} (the disk-backed harness of issue 11 is not in \
             this build):\n{help}"
        );
    }
}

/// The packaged driver and the personality a case runs it under. Vista/7 has no
/// ExGetFirmwareEnvironmentVariable, so UEFI cases need the Windows 8+ personality.
fn driver(arch: &str, uefi: bool) -> (PathBuf, &'static str) {
    if arch == "x86" {
        common::ensure_x86_helper();
    }
    let personality = if arch == "x86" && !uefi {
        "win7"
    } else {
        "win8"
    };
    (common::packaged_for(arch, personality), personality)
}

/// A fresh directory for one run (runs write to their disk files).
fn case_dir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("disk_backed")
        .join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `run --json --verbose` over `s`'s RAM dump and variables, expecting its image, with
/// `disks` and `extra` flags.
fn args(
    s: &BackedScenario,
    f: &BackedFiles,
    arch: &str,
    disks: &[PathBuf],
    extra: &[String],
) -> Vec<String> {
    let (drv, personality) = driver(arch, !s.uefi_vars.is_empty());
    let mut a: Vec<String> = vec![
        "run".into(),
        "--driver".into(),
        drv.display().to_string(),
        "--ram".into(),
        f.ram.display().to_string(),
        "--personality".into(),
        personality.into(),
        "--verbose".into(),
        "--expect".into(),
        f.image.display().to_string(),
    ];
    for r in s.os_ram_args() {
        a.extend(["--os-ram".into(), r]);
    }
    for (name, file) in &f.uefi_vars {
        a.extend(["--uefi-var".into(), format!("{name}={}", file.display())]);
    }
    for d in disks {
        a.extend(["--disk".into(), d.display().to_string()]);
    }
    a.extend(extra.iter().cloned());
    a
}

fn json(mut a: Vec<String>) -> Vec<String> {
    a.push("--json".into());
    a
}

/// The stick after a run: unchanged outside the image's extents, the image inside.
fn check_stick(s: &BackedScenario, f: &BackedFiles, ctx: &str) {
    let after = std::fs::read(&f.disk).unwrap();
    if let Some(off) = s.first_change_outside(&after) {
        panic!(
            "{ctx}: the stick changed outside the image's extents at byte {off:#x} (sector {}): \
             a write missed the extent list",
            off / 512
        );
    }
    assert!(
        s.image_on(&after) == s.image,
        "{ctx}: the image on the stick no longer equals the file (a write was not restored \
         through the extents)"
    );
}

/// One served scenario on `arch`, the stick arriving at 0 and 3000 ms.
fn serve(s: BackedScenario, arch: &str) {
    serve_on(s, arch, false);
}

/// `args`, with the XP/2003 build (rvblkxp.sys, SCSIPORT) when `xp`.
fn args_on(
    s: &BackedScenario,
    f: &BackedFiles,
    arch: &str,
    extra: &[String],
    xp: bool,
) -> Vec<String> {
    let mut a = args(s, f, arch, std::slice::from_ref(&f.disk), extra);
    if xp {
        let d = a.iter().position(|x| x == "--driver").unwrap();
        a[d + 1] = common::packaged_for(arch, "xp").display().to_string();
        let p = a.iter().position(|x| x == "--personality").unwrap();
        a[p + 1] = "xp".into();
    }
    a
}

/// [`serve`] on StorPort or, when `xp`, on SCSIPORT.
fn serve_on(s: BackedScenario, arch: &str, xp: bool) {
    require_disk_support();
    let arch_name = if xp {
        format!("{arch}-xp")
    } else {
        arch.to_string()
    };
    let arch_name = arch_name.as_str();
    for arrival in [0u32, 3000] {
        let ctx = format!("{} on {arch_name}, stick after {arrival} ms", s.name);
        let dir = case_dir(&format!("{}-{arch_name}-{arrival}", s.name));
        let f = s.write_files(&dir).unwrap();
        // Every third HwStartIo at DISPATCH_LEVEL: the fast path (≤ APC_LEVEL) and the worker
        // both serve the image (`docs/driver.md` "The fast path").
        let extra = vec![
            "--disk-arrival-ms".into(),
            arrival.to_string(),
            "--startio-dispatch-every".into(),
            "3".into(),
        ];
        let o = run_timed(&json(args_on(&s, &f, arch, &extra, xp)));
        let r = o.report();
        assert!(
            r.verifier_failures.is_empty(),
            "{ctx}: {:?}",
            r.verifier_failures
        );
        assert_eq!(o.code, Some(0), "{ctx}");
        assert_eq!(r.luns.len(), 1, "{ctx}: {:?}", r.luns);
        let l = &r.luns[0];
        let (kind, bs) = match s.kind {
            rvblk_core::image::DeviceKind::CdRom => (LunKind::Cdrom, 2048u32),
            _ => (LunKind::Disk, 512),
        };
        assert_eq!((l.kind, l.block_size), (kind, bs), "{ctx}");
        assert_eq!(l.blocks, s.image.len() as u64 / u64::from(bs), "{ctx}");
        assert_eq!(l.read_only, !s.writable, "{ctx}");
        assert_eq!(l.matches, vec![f.image.display().to_string()], "{ctx}");
        if s.source == rvblk_core::image::BackingSource::Grub4Dos {
            assert_eq!(l.source, "grub4dos", "{ctx}");
        }
        check_stick(&s, &f, &ctx);
        if s.writable {
            // The text report says what the write test did; `--json` does not carry it.
            let o = run_timed(&args_on(&s, &f, arch, &extra, xp));
            assert_eq!(o.code, Some(0), "{ctx}");
            assert!(
                o.stdout
                    .contains("write_test=written, read back and restored"),
                "{ctx}: the write test did not run through the stick"
            );
            assert!(o.stdout.contains("verifier: no failures"), "{ctx}");
            check_stick(&s, &f, &ctx);
        }
        if arrival > 0 {
            assert!(
                o.took >= Duration::from_millis(u64::from(arrival)),
                "{ctx}: the run ended before the stick arrived"
            );
        }
        // Kept when a case fails, for a look at the stick.
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn g4d_direct_iso_contiguous_x64() {
    serve(g4d_direct_iso(Layout::Contiguous), "amd64");
}
#[test]
fn g4d_direct_iso_contiguous_x86() {
    serve(g4d_direct_iso(Layout::Contiguous), "x86");
}
#[test]
fn g4d_direct_iso_fragmented_x64() {
    serve(g4d_direct_iso(Layout::Fragmented), "amd64");
}
#[test]
fn g4d_direct_iso_fragmented_x86() {
    serve(g4d_direct_iso(Layout::Fragmented), "x86");
}
#[test]
fn g4d_direct_hdd_contiguous_writable_x64() {
    serve(g4d_direct_hdd(Layout::Contiguous), "amd64");
}
#[test]
fn g4d_direct_hdd_contiguous_writable_x86() {
    serve(g4d_direct_hdd(Layout::Contiguous), "x86");
}
#[test]
fn g4d_direct_hdd_fragmented_writable_x64() {
    serve(g4d_direct_hdd(Layout::Fragmented), "amd64");
}
#[test]
fn g4d_direct_hdd_fragmented_writable_x86() {
    serve(g4d_direct_hdd(Layout::Fragmented), "x86");
}
#[test]
fn ventoy_bios_contiguous_x64() {
    serve(ventoy_iso(VentoyBoot::Bios, Layout::Contiguous), "amd64");
}
#[test]
fn ventoy_bios_fragmented_x86() {
    serve(ventoy_iso(VentoyBoot::Bios, Layout::Fragmented), "x86");
}
#[test]
fn ventoy_bios_fragmented_x64() {
    serve(ventoy_iso(VentoyBoot::Bios, Layout::Fragmented), "amd64");
}
#[test]
fn ventoy_bios_ibft_x86() {
    serve(ventoy_iso(VentoyBoot::BiosIbft, Layout::Contiguous), "x86");
}
#[test]
fn ventoy_uefi_contiguous_x86() {
    serve(ventoy_iso(VentoyBoot::Uefi, Layout::Contiguous), "x86");
}
#[test]
fn ventoy_uefi_fragmented_x64() {
    serve(ventoy_iso(VentoyBoot::Uefi, Layout::Fragmented), "amd64");
}

/// An IMG file in Ventoy's normal mode: a read-only disk (WRITE refused with DATA PROTECT).
#[test]
fn ventoy_img_bios_contiguous_x64() {
    serve(ventoy_img(VentoyBoot::Bios, Layout::Contiguous), "amd64");
}
#[test]
fn ventoy_img_uefi_fragmented_x86() {
    serve(ventoy_img(VentoyBoot::Uefi, Layout::Fragmented), "x86");
}

/// Ventoy's memdisk mode under UEFI: the ISO in RAM through `VentoyRamDisk`, no stick.
fn ventoy_memdisk(arch: &str) {
    require_disk_support();
    let s = ventoy_memdisk_uefi();
    let f = s
        .write_files(&case_dir(&format!("{}-{arch}", s.name)))
        .unwrap();
    let o = run_timed(&json(args(&s, &f, arch, &[], &[])));
    let r = o.report();
    assert!(r.verifier_failures.is_empty(), "{:?}", r.verifier_failures);
    assert_eq!(r.luns.len(), 1, "{:?}", r.luns);
    assert_eq!(r.luns[0].kind, LunKind::Cdrom);
    assert_eq!(r.luns[0].matches, vec![f.image.display().to_string()]);
    assert_eq!(r.luns[0].source, "memdisk");
}

#[test]
fn ventoy_memdisk_uefi_x64() {
    ventoy_memdisk("amd64");
}
#[test]
fn ventoy_memdisk_uefi_x86() {
    ventoy_memdisk("x86");
}

/// Windows 7 cannot read firmware variables (no ExGetFirmwareEnvironmentVariable): a Ventoy
/// UEFI boot exposes nothing there, cleanly.
#[test]
fn ventoy_uefi_on_windows_7_exposes_nothing_x64() {
    require_disk_support();
    let s = ventoy_iso(VentoyBoot::Uefi, Layout::Contiguous);
    let f = s.write_files(&case_dir("ventoy_uefi_win7")).unwrap();
    let mut a = json(args(&s, &f, "amd64", std::slice::from_ref(&f.disk), &[]));
    let p = a.iter().position(|x| x == "--personality").unwrap();
    a[p + 1] = "win7".into();
    let o = run_timed(&a);
    let r = o.report();
    assert!(r.verifier_failures.is_empty(), "{:?}", r.verifier_failures);
    assert!(r.luns.is_empty(), "{:?}", r.luns);
    check_stick(&s, &f, "ventoy uefi on win7");
}

/// The XP/2003 build (SCSIPORT) serves a direct map through the same worker, its completions
/// and the late stick's bus change handed to SCSIPORT from HwTimer.
#[test]
fn xp_build_serves_stick_images_x86() {
    serve_on(g4d_direct_hdd(Layout::Contiguous), "x86", true);
}
#[test]
fn xp_build_serves_stick_images_x64() {
    serve_on(g4d_direct_iso(Layout::Fragmented), "amd64", true);
}

/// Evidence that a read failed with NOT READY, MEDIUM NOT PRESENT (02/3A/00) after the stick
/// went away, in whatever form the report or the log carries it.
fn says_medium_not_present(o: &Out) -> bool {
    let all = o.all().to_ascii_lowercase();
    all.contains("(2, 58, 0)") || all.contains("02/3a/00") || all.contains("medium not present")
}

/// The LBA of the first failed READ in the report's notes (`run` notes a read that failed
/// because the backing disk was removed as "READ of N blocks at LBA X …").
fn failed_read_lba(r: &Report) -> Option<u64> {
    r.notes.iter().find_map(|n| {
        let rest = n.strip_prefix("READ of ")?;
        let at = rest.find(" at LBA ")? + " at LBA ".len();
        let digits: String = rest[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// How long the driver lets disk arrivals settle before it identifies them
/// (`SETTLE_QUIET_US` in `driver/windows/kernel/src/backed.rs`, `docs/driver.md`
/// "Identification"): the read starts that much later after the stick's arrival.
const SETTLE_MS: u32 = 300;

/// The stick pulled while `run` reads a 64 MiB ISO, at several delays after its arrival (before
/// it is identified, before the first read, during the read — where exactly depends on the
/// machine): every run ends with no verifier failure; a LUN whose reads failed does not claim
/// to be the image; at least one run saw NOT READY / MEDIUM NOT PRESENT, and at least one was
/// pulled in the middle of the read (the first failed READ is not at LBA 0).
fn pulled(arch: &str) {
    require_disk_support();
    let s = g4d_direct_iso_sized(32768, Layout::Contiguous);
    let (mut saw_sense, mut mid_read) = (false, false);
    let after_settle = [330u32, 380, 450, 600].map(|ms| SETTLE_MS + ms);
    for remove in [0u32, 100, SETTLE_MS + 30].into_iter().chain(after_settle) {
        let ctx = format!("{} on {arch}, pulled {remove} ms after arrival", s.name);
        let dir = case_dir(&format!("pulled-{arch}-{remove}"));
        let f = s.write_files(&dir).unwrap();
        let extra = vec!["--disk-remove-ms".into(), remove.to_string()];
        let o = run_timed(&json(args(
            &s,
            &f,
            arch,
            std::slice::from_ref(&f.disk),
            &extra,
        )));
        let r = o.report();
        assert!(
            r.verifier_failures.is_empty(),
            "{ctx}: {:?}",
            r.verifier_failures
        );
        let sense = says_medium_not_present(&o);
        // A read of the image that failed (rather than a later step of the run).
        if let Some(lba) = failed_read_lba(&r) {
            assert!(
                r.luns.iter().all(|l| l.matches.is_empty()),
                "{ctx}: a LUN whose reads failed matched the image: {:?}",
                r.luns
            );
            mid_read |= sense && lba > 0;
        }
        saw_sense |= sense;
        check_stick(&s, &f, &ctx);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        saw_sense,
        "{arch}: no run saw NOT READY / MEDIUM NOT PRESENT after the stick was pulled"
    );
    assert!(
        mid_read,
        "{arch}: no run pulled the stick in the middle of the read (every failed read was the \
         first); the delays no longer bracket the read"
    );
}

#[test]
fn stick_pulled_mid_io_x64() {
    pulled("amd64");
}
#[test]
fn stick_pulled_mid_io_x86() {
    pulled("x86");
}

/// Two sticks with the same content (a cloned stick): nothing exposed, the refusal logged with
/// the core's reason.
fn cloned(s: BackedScenario, arch: &str) {
    cloned_staggered(s, arch, 0);
}

/// [`cloned`] with the clone arriving `stagger` ms after the first stick (within the driver's
/// settle period: still refused).
fn cloned_staggered(s: BackedScenario, arch: &str, stagger: u32) {
    require_disk_support();
    let ctx = format!(
        "{} on {arch} with a cloned stick arriving {stagger} ms later",
        s.name
    );
    let dir = case_dir(&format!("cloned-{}-{arch}-{stagger}", s.name));
    let f = s.write_files(&dir).unwrap();
    let clone = f.disk.with_file_name("clone.img");
    write_sparse(&clone, &s.disk).unwrap();
    let o = run_timed(&json(args(
        &s,
        &f,
        arch,
        &[f.disk.clone(), clone.clone()],
        &["--disk-stagger-ms".into(), stagger.to_string()],
    )));
    let r = o.report();
    assert!(
        r.verifier_failures.is_empty(),
        "{ctx}: {:?}",
        r.verifier_failures
    );
    assert!(r.luns.is_empty(), "{ctx}: exposed {:?}", r.luns);
    // `rvblk_core::discovery::IdentifyRefusal::Ambiguous`'s text.
    assert!(
        o.driver_log()
            .iter()
            .any(|l| l.contains("disks 0 and 1 both match")),
        "{ctx}: the refusal is not logged"
    );
    check_stick(&s, &f, &ctx);
    let after = std::fs::read(&clone).unwrap();
    assert!(s.first_change_outside(&after).is_none() && s.image_on(&after) == s.image);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cloned_stick_is_refused_g4d_x64() {
    cloned(g4d_direct_iso(Layout::Contiguous), "amd64");
}
#[test]
fn cloned_stick_is_refused_g4d_hdd_x86() {
    cloned(g4d_direct_hdd(Layout::Fragmented), "x86");
}
#[test]
fn cloned_stick_is_refused_ventoy_x64() {
    cloned(ventoy_iso(VentoyBoot::Bios, Layout::Fragmented), "amd64");
}
#[test]
fn cloned_stick_is_refused_ventoy_x86() {
    cloned(ventoy_iso(VentoyBoot::Bios, Layout::Contiguous), "x86");
}

/// Arrivals are delivered one at a time: a clone arriving 150 ms after its twin (inside the
/// driver's settle period) is refused like one arriving together with it.
#[test]
fn cloned_stick_arriving_150_ms_later_is_refused_x64() {
    cloned_staggered(g4d_direct_iso(Layout::Contiguous), "amd64", 150);
}
#[test]
fn cloned_stick_arriving_150_ms_later_is_refused_x86() {
    cloned_staggered(ventoy_iso(VentoyBoot::Bios, Layout::Contiguous), "x86", 150);
}

/// A clone plugged in 1.5 s after the image went live: the LUN stays on the first stick (still
/// the image), and the driver logs the clone naming both disks.
fn clone_after_live(arch: &str) {
    require_disk_support();
    // 64 MiB: reading it outlasts the clone's settle period, so the run is still going when
    // the driver examines the clone.
    let s = g4d_direct_iso_sized(32768, Layout::Contiguous);
    let ctx = format!("{} on {arch}, clone 1500 ms after the first stick", s.name);
    let dir = case_dir(&format!("clone-after-live-{arch}"));
    let f = s.write_files(&dir).unwrap();
    let clone = f.disk.with_file_name("clone.img");
    write_sparse(&clone, &s.disk).unwrap();
    let o = run_timed(&json(args(
        &s,
        &f,
        arch,
        &[f.disk.clone(), clone.clone()],
        &["--disk-stagger-ms".into(), "1500".into()],
    )));
    o.serves_only(&f.image, &ctx);
    let log = o.driver_log();
    let warned = log
        .iter()
        .any(|l| l.contains("also holds it (a clone); not switched") && l.contains("Prod_Disk1"))
        && log
            .iter()
            .any(|l| l.contains("stays on disk") && l.contains("Prod_Disk0"));
    assert!(
        warned,
        "{ctx}: the late clone is not logged with both disks"
    );
    check_stick(&s, &f, &ctx);
    let after = std::fs::read(&clone).unwrap();
    assert!(s.first_change_outside(&after).is_none() && s.image_on(&after) == s.image);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clone_after_the_image_went_live_is_logged_x64() {
    clone_after_live("amd64");
}
#[test]
fn clone_after_the_image_went_live_is_logged_x86() {
    clone_after_live("x86");
}

/// No stick at all: nothing is exposed, the run ends, and the driver says it is waiting for
/// the backing disk (or that no disk has arrived).
fn no_stick(s: BackedScenario, arch: &str) {
    require_disk_support();
    let ctx = format!("{} on {arch} without a stick", s.name);
    let dir = case_dir(&format!("nostick-{}-{arch}", s.name));
    let f = s.write_files(&dir).unwrap();
    let o = run_timed(&json(args(&s, &f, arch, &[], &[])));
    let r = o.report();
    assert!(
        r.verifier_failures.is_empty(),
        "{ctx}: {:?}",
        r.verifier_failures
    );
    assert!(r.luns.is_empty(), "{ctx}: exposed {:?}", r.luns);
    assert!(
        o.driver_log().iter().any(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("waiting") && l.contains("disk")) || l.contains("no disk has arrived")
        }),
        "{ctx}: the driver did not log that it waits for the stick"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_stick_exposes_nothing_g4d_x64() {
    no_stick(g4d_direct_iso(Layout::Fragmented), "amd64");
}
#[test]
fn no_stick_exposes_nothing_ventoy_x86() {
    no_stick(ventoy_iso(VentoyBoot::Bios, Layout::Contiguous), "x86");
}

/// `run --json` of a contiguous GRUB4DOS direct-mapped ISO (4096 blocks) on its stick, with
/// every HwStartIo at PASSIVE_LEVEL (so every fast candidate may take the fast path) and
/// `extra` options: the output, the files and their directory (removed by the caller).
fn passive_run(arch: &str, tag: &str, extra: &[&str]) -> (Out, BackedFiles, PathBuf) {
    require_disk_support();
    let s = g4d_direct_iso_sized(4096, Layout::Contiguous);
    let dir = case_dir(&format!("{tag}-{arch}"));
    let f = s.write_files(&dir).unwrap();
    let mut extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    extra.extend(["--startio-dispatch-every".to_string(), "0".to_string()]);
    let o = run_timed(&json(args(
        &s,
        &f,
        arch,
        std::slice::from_ref(&f.disk),
        &extra,
    )));
    (o, f, dir)
}

/// A backing disk that stops answering the fast path's asynchronous IRPs
/// (`--disk-hang-async-after`): the driver cancels the IRP after its 10 s timeout
/// (`docs/driver.md` "The fast path"), the READ completes with ABORTED COMMAND instead of
/// hanging, the LUN does not claim to be the image, and the run ends with no verifier failure
/// (no IRP, MDL or SRB left behind, nothing completed twice).
fn hung_disk(arch: &str) {
    let (o, _f, dir) = passive_run(arch, "hung", &["--disk-hang-async-after", "8"]);
    let ctx = format!("g4d direct ISO on {arch}, asynchronous IRPs hang after 8");
    let r = o.report();
    assert!(
        r.verifier_failures.is_empty(),
        "{ctx}: {:?}",
        r.verifier_failures
    );
    assert!(
        o.took >= Duration::from_secs(10),
        "{ctx}: ended after {:?}, before the driver's 10 s timeout could cancel anything",
        o.took
    );
    // `run` notes a READ that failed with ABORTED COMMAND (or NOT READY) while the disk hangs
    // instead of failing the run; any other failure is a verifier failure (checked above).
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("stopped answering and the request was cancelled")),
        "{ctx}: no READ ended with ABORTED COMMAND: {:?}",
        r.notes
    );
    assert_eq!(o.code, Some(0), "{ctx}");
    assert!(
        o.all().contains("asynchronous)"),
        "{ctx}: the harness did not report its IRP counts"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hung_disk_irp_cancelled_after_timeout_x64() {
    hung_disk("amd64");
}
#[test]
fn hung_disk_irp_cancelled_after_timeout_x86() {
    hung_disk("x86");
}

/// A backing disk whose device object does buffered I/O (`--disk-buffered-io`): the fast path's
/// completion frees the IRP itself, which would skip the I/O manager's copy-back of a buffered
/// read, so the driver must send every request through the worker's synchronous IRPs
/// (`docs/windows-integration.md` §8.5). The image is still served byte for byte, with HwStartIo
/// at PASSIVE_LEVEL (where the fast path would otherwise take every READ), and not one
/// asynchronous IRP is sent.
fn buffered_io_disk(arch: &str) {
    let (o, f, dir) = passive_run(arch, "buffered", &["--disk-buffered-io"]);
    let ctx = format!("g4d direct ISO on {arch}, buffered-I/O disk");
    o.serves_only(&f.image, &ctx);
    assert!(
        o.driver_log()
            .iter()
            .any(|l| l.contains("does not do direct I/O")),
        "{ctx}: the driver did not log why its fast path is off:\n{}",
        o.all()
    );
    assert!(
        o.all().contains("(0 asynchronous)"),
        "{ctx}: asynchronous IRPs were sent to a buffered-I/O disk:\n{}",
        o.all()
    );
    assert_eq!(o.code, Some(0), "{ctx}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn buffered_io_disk_takes_the_worker_x64() {
    buffered_io_disk("amd64");
}
#[test]
fn buffered_io_disk_takes_the_worker_x86() {
    buffered_io_disk("x86");
}

/// Read-ahead of a disk-backed CD (`docs/driver.md` "Read-ahead of disk-backed images"): every
/// HwStartIo at DISPATCH_LEVEL (so no fast path) and the content pass in 64 KiB READs. The image
/// reads byte for byte, contiguous or fragmented on the stick, from the StorPort and the SCSIPORT
/// build, with far fewer IRPs to the stick than READs: without read-ahead each of the 128 READs
/// is at least one IRP; with it the worker reads 256 KiB per IRP and the READs are served from
/// its buffers.
fn read_ahead_at_dispatch(arch: &str, layout: Layout, xp: bool) {
    require_disk_support();
    let s = g4d_direct_iso_sized(4096, layout);
    let tag = format!(
        "ra-{layout:?}-{arch}-{}",
        if xp { "xp" } else { "storport" }
    );
    let dir = case_dir(&tag);
    let f = s.write_files(&dir).unwrap();
    let extra: Vec<String> = ["--startio-dispatch-every", "1", "--read-kib", "64"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let o = run_timed(&json(args_on(&s, &f, arch, &extra, xp)));
    let ctx = format!("{tag}: 8 MiB ISO, 64 KiB READs at DISPATCH_LEVEL");
    o.serves_only(&f.image, &ctx);
    assert_eq!(o.code, Some(0), "{ctx}");
    let all = o.all();
    let sent: u64 = all
        .split("[harness] disk IRPs: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{ctx}: no IRP count in the output:\n{all}"));
    // 128 READs; identification and re-enumeration add a few IRPs of their own.
    assert!(
        sent < 96,
        "{ctx}: {sent} IRPs to the stick for 128 READs: read-ahead served too few"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_ahead_serves_a_stick_cd_at_dispatch_x64() {
    read_ahead_at_dispatch("amd64", Layout::Contiguous, false);
    read_ahead_at_dispatch("amd64", Layout::Fragmented, false);
}
#[test]
fn read_ahead_serves_a_stick_cd_at_dispatch_x86() {
    read_ahead_at_dispatch("x86", Layout::Contiguous, false);
    read_ahead_at_dispatch("x86", Layout::Fragmented, false);
}
#[test]
fn read_ahead_serves_a_stick_cd_under_scsiport() {
    read_ahead_at_dispatch("x86", Layout::Fragmented, true);
    read_ahead_at_dispatch("amd64", Layout::Contiguous, true);
}
