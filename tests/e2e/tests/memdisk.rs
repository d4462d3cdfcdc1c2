//! MEMDISK in QEMU → RAM dump → discovery (core, directly) and the real x64/x86 `rvblk.sys`
//! (and arm64, given the aarch64 helper) through the harness CLI. One `#[test]` per case; see
//! `rvblk_e2e::case` for the table.
//!
//! Which discovery path each case pins down (remove the path, the case fails):
//! * IVT safe-hook chain → every case with `via_chain` (core check asserts `via` ∋ ivt-chain; the
//!   binaries' log must show MEMDISK's safe hook reached);
//!   walking *through* a hook of another vendor → `memdisk_behind_foreign_safe_hook`.
//! * mBFT scan → `memdisk_chain_hidden_mbft_scan_only` (the chain ends at an unsafe hook).
//! * MEMDISK mBFT/MDI parsing (kind, shift, size, ro) → every LUN case.
//! * OS-RAM overlap rule (23) → `memdisk_image_in_usable_ram_refused`.
//! * Non-page-aligned image end (ISO sliver) → the ISO cases; images near 3 GiB → 6 GiB case.

use rvblk_core::discovery::{
    self, DiscoveryInput, DiscoveryLog, Event, Firmware, FoundVia, PhysRange, PhysicalMemory,
    Refusal, RefusalReason, Unreadable,
};
use rvblk_core::image::{DeviceKind, LoaderSource, WritePolicy};
use rvblk_e2e::case::{self, Booted, Case, Expect};
use rvblk_e2e::harness;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Guest physical memory backed by the dump file (offset = physical address).
struct DumpMemory {
    file: File,
    len: u64,
}

impl PhysicalMemory for DumpMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = phys.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if end > self.len {
            return Err(Unreadable);
        }
        self.file.read_exact_at(buf, phys).map_err(|_| Unreadable)
    }
}

#[derive(Default)]
struct Lines(Vec<String>);

impl DiscoveryLog for Lines {
    fn event(&mut self, e: &Event<'_>) {
        self.0.push(e.to_string());
    }
}

/// The core's discovery, run directly on the dump: independent of the harness and the binaries.
fn core_check(b: &Booted) {
    let file = File::open(&b.dump).expect("open dump");
    let len = file.metadata().unwrap().len();
    let mem = DumpMemory { file, len };
    let os_ram: Vec<PhysRange> = b
        .os_ram
        .iter()
        .map(|r| PhysRange::new(r.start, r.len))
        .collect();
    let input = DiscoveryInput {
        os_ram: &os_ram,
        nfit: None,
        firmware: Firmware::Bios,
        max_phys_end: 0,
        total_ram_bytes: b.total_ram,
    };
    let mut log = Lines::default();
    let got = discovery::discover(&mem, &input, &mut log);
    let ctx = format!(
        "{}: core discovery\nlog:\n  {}\nresult: {got:#?}",
        b.case.name,
        log.0.join("\n  ")
    );
    let base = u64::from(b.memdisk.diskbuf);
    match b.case.expect {
        Expect::Lun {
            kind,
            block_size,
            read_only,
        } => {
            assert_eq!(got.images.len(), 1, "{ctx}");
            assert!(got.refused.is_empty(), "{ctx}");
            let f = got.images[0];
            let img = f.image;
            let want_kind = match kind {
                "cdrom" => DeviceKind::CdRom,
                "floppy" => DeviceKind::Floppy,
                _ => DeviceKind::Disk,
            };
            assert_eq!(img.kind, want_kind, "{ctx}");
            assert_eq!(u64::from(img.block_size()), block_size, "{ctx}");
            assert_eq!(img.source, LoaderSource::Memdisk, "{ctx}");
            assert_eq!(img.phys_base, base, "{ctx}");
            assert_eq!(img.length, b.image_len, "{ctx}");
            assert_eq!(img.blocks(), b.image_len / block_size, "{ctx}");
            assert_eq!(img.table_address, u64::from(b.memdisk.mbft), "{ctx}");
            assert_eq!(img.bios_drive, b.memdisk.driveno, "{ctx}");
            assert_eq!(img.is_read_only(), read_only, "{ctx}");
            if want_kind != DeviceKind::CdRom {
                let wp = if read_only {
                    WritePolicy::ReadOnly
                } else {
                    WritePolicy::ReadWrite
                };
                assert_eq!(img.write_policy, wp, "{ctx}");
            }
            if b.case.via_chain {
                assert!(
                    f.via.contains(FoundVia::IVT_CHAIN),
                    "{ctx}: not found through the IVT chain"
                );
            } else {
                assert_eq!(
                    f.via,
                    FoundVia::MBFT_SCAN,
                    "{ctx}: must be found by the mBFT scan alone"
                );
            }
        }
        Expect::RefusedOsRam => {
            assert!(got.images.is_empty(), "{ctx}");
            let r = got
                .refused
                .iter()
                .find(|r| r.phys_base == base)
                .unwrap_or_else(|| panic!("{ctx}: not refused"));
            assert!(
                matches!(r.reason, RefusalReason::OverlapsOsRam { .. }),
                "{ctx}"
            );
            assert_eq!(r.source, LoaderSource::Memdisk, "{ctx}");
            let line = r.to_string();
            assert!(
                log.0.iter().any(|l| l == &line),
                "{ctx}: refusal not logged"
            );
            eprintln!("{}: refusal log line: {line}", b.case.name);
        }
    }
}

/// Lines the real driver's discovery log (DbgPrint, `rvblk: ` + the core's event text) must or
/// must not contain. The texts come from the core's own `Display`, so wording changes there
/// cannot break this; a driver that stops logging them fails here with the line it lacks.
fn driver_log_expectations(b: &Booted) -> (Vec<String>, Vec<String>) {
    let memdisk_hook = Event::HookFound {
        hook: b.memdisk.hook,
        vendor: *b"MEMDISK ",
    }
    .to_string();
    let (mut must, mut must_not) = (Vec::new(), Vec::new());
    // The chain walk of the *binary* reached MEMDISK's safe hook (or, hidden, did not).
    if b.case.via_chain {
        must.push(memdisk_hook);
    } else {
        must_not.push(memdisk_hook);
    }
    if b.case.expect == Expect::RefusedOsRam {
        // Rule 30: the refusal is logged, naming the OS RAM range it overlaps.
        let base = u64::from(b.memdisk.diskbuf);
        let hit = b
            .os_ram
            .iter()
            .find(|r| r.overlaps(base, b.image_len))
            .expect("image overlaps OS RAM");
        let r = Refusal {
            phys_base: base,
            length: b.image_len,
            source: LoaderSource::Memdisk,
            reason: RefusalReason::OverlapsOsRam {
                ram_start: hit.start,
                ram_end: hit.end(),
            },
        };
        must.push(r.to_string());
    }
    (must, must_not)
}

/// The real binaries through the harness CLI: `rvblk.sys` for x64 and x86, each under the
/// Windows 8+ and the Windows 7 StorPort personality, and `rvblkxp.sys` under XP's SCSIPORT.
fn harness_check(b: &Booted) {
    let harness = harness::harness_binary().unwrap_or_else(|e| panic!("{}: {e}", b.case.name));
    let verbose = std::env::var_os("RVBLK_E2E_VERBOSE").is_some();
    let (must, must_not) = driver_log_expectations(b);
    let mut problems = Vec::new();
    for flavour in harness::flavours() {
        let (arch, personality) = (flavour.arch, flavour.personality);
        let driver = harness::driver(flavour).unwrap_or_else(|e| panic!("{}: {e}", b.case.name));
        let run = format!("[{arch} {personality}]");
        let r = harness::run(&harness, &driver, personality, &[], b)
            .unwrap_or_else(|e| panic!("{} {run}: harness run failed: {e}", b.case.name));
        eprintln!(
            "{} {run}: harness {:.2?}, {} LUN(s), {} refused",
            b.case.name,
            r.time,
            r.luns.len(),
            r.refused.len()
        );
        let before = problems.len();
        problems.extend(
            harness::check(b, &r)
                .into_iter()
                .map(|p| format!("{run} {p}")),
        );
        // The harness echoes each DbgPrint line twice (live and in its closing log); keep one.
        let mut log: Vec<&str> = Vec::new();
        for t in r
            .stderr
            .lines()
            .filter_map(|l| l.split_once("rvblk: ").map(|(_, t)| t.trim()))
        {
            if !log.contains(&t) {
                log.push(t);
            }
        }
        for m in must.iter().filter(|m| !log.contains(&m.as_str())) {
            problems.push(format!("{run} driver log lacks {m:?}"));
        }
        for m in must_not.iter().filter(|m| log.contains(&m.as_str())) {
            problems.push(format!(
                "{run} driver log has {m:?}, which this case rules out"
            ));
        }
        if verbose && (problems.len() > before || (arch == "amd64" && personality == "win8")) {
            eprintln!("{} {run}: driver log:\n  {}", b.case.name, log.join("\n  "));
        }
        if verbose && problems.len() > before {
            eprintln!("stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        }
    }
    assert!(
        problems.is_empty(),
        "{}: real driver binaries:\n  {}",
        b.case.name,
        problems.join("\n  ")
    );
}

/// XP setup installs to the lowest-numbered disk, so while setup runs `rvblkxp.sys` keeps a RAM
/// hard-disk image hidden (and says so in its log) unless `disks=on`; CDs and floppies always
/// show (`docs/peers.md` §6).
fn xp_setup_mode_check(b: &Booted) {
    let harness = harness::harness_binary().unwrap_or_else(|e| panic!("{}: {e}", b.case.name));
    let flavour = harness::Flavour {
        arch: "x86",
        personality: "xp",
    };
    let driver = harness::driver(flavour).unwrap_or_else(|e| panic!("{}: {e}", b.case.name));
    let hidden = matches!(b.case.expect, Expect::Lun { kind: "disk", .. });
    let mut problems = Vec::new();
    for (extra, expect_hidden) in [
        (&["--setup", "textmode"][..], hidden),
        (&["--setup", "guimode"][..], hidden),
        (
            &["--setup", "textmode", "--driver-parameter", "disks=on"][..],
            false,
        ),
    ] {
        let run = format!("[x86 xp {}]", extra.join(" "));
        let r = harness::run(&harness, &driver, "xp", extra, b)
            .unwrap_or_else(|e| panic!("{} {run}: harness run failed: {e}", b.case.name));
        if !expect_hidden {
            problems.extend(
                harness::check(b, &r)
                    .into_iter()
                    .map(|p| format!("{run} {p}")),
            );
            continue;
        }
        if !r.luns.is_empty() || !r.verifier_failures.is_empty() || !r.exit_ok {
            problems.push(format!(
                "{run} the disk image must stay hidden: LUNs {:?}, verifier {:?}",
                r.luns, r.verifier_failures
            ));
        }
        let note = format!(
            "not exposing disk image at phys_base={:#x} in setup mode",
            b.memdisk.diskbuf
        );
        if !r.stderr.contains(&note) {
            problems.push(format!("{run} driver log lacks {note:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}: rvblkxp.sys in setup mode:\n  {}",
        b.case.name,
        problems.join("\n  ")
    );
}

fn run(case: Case) {
    let b = case::boot_and_dump(
        &case,
        &case::work_root(Path::new(env!("CARGO_TARGET_TMPDIR"))),
    );
    eprintln!(
        "{}: QEMU boot+dump {:.2?}; MEMDISK image at {:#x}, {} bytes, mBFT {:#x}",
        case.name, b.qemu_time, b.memdisk.diskbuf, b.image_len, b.memdisk.mbft
    );
    core_check(&b);
    if std::env::var_os("RVBLK_E2E_SKIP_HARNESS").is_some() {
        eprintln!(
            "{}: RVBLK_E2E_SKIP_HARNESS set, real binaries not run",
            case.name
        );
        return;
    }
    harness_check(&b);
    xp_setup_mode_check(&b);
}

#[test]
fn memdisk_iso_raw() {
    run(case::ISO_RAW)
}
#[test]
fn memdisk_iso_safeint() {
    run(case::ISO_SAFEINT)
}
#[test]
fn memdisk_iso_bigraw() {
    run(case::ISO_BIGRAW)
}
#[test]
fn memdisk_hdd_plain() {
    run(case::HDD_PLAIN)
}
#[test]
fn memdisk_hdd_raw() {
    run(case::HDD_RAW)
}
#[test]
fn memdisk_hdd_bigraw() {
    run(case::HDD_BIGRAW)
}
#[test]
fn memdisk_hdd_gzip() {
    run(case::HDD_GZIP)
}
#[test]
fn memdisk_floppy() {
    run(case::FLOPPY)
}
#[test]
fn memdisk_hdd_ro() {
    run(case::HDD_RO)
}
#[test]
fn memdisk_6gib_guest_hdd() {
    run(case::GUEST_6GIB)
}
#[test]
fn memdisk_q35_iso() {
    run(case::Q35_ISO)
}
#[test]
fn memdisk_image_in_usable_ram_refused() {
    run(case::USABLE_RAM_REFUSED)
}
#[test]
fn memdisk_behind_foreign_safe_hook() {
    run(case::FOREIGN_HOOK)
}
#[test]
fn memdisk_chain_hidden_mbft_scan_only() {
    run(case::CHAIN_HIDDEN)
}
