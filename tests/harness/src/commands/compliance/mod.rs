//! SCSI compliance suite, modelled on what classpnp/disk.sys/cdrom.sys send at start and in use
//! and on the HLK SCSI compliance checks, plus a concurrency stress test and a PnP cycle. Every
//! case also fails when the verifier recorded a failure while it ran.
//!
//! This file holds the case table and the runner; the cases live in `identify`, `media`,
//! `errors` and `stress`.

mod errors;
mod identify;
mod media;
mod stress;

use errors::{bad_cdbs, no_device, short_buffers, srb_functions};
use identify::{cd_mmc, inquiry_standard, inquiry_vpd, mode_sense, read_capacity, simple_commands};
use media::{full_media_read, read_opcodes_agree, verify_bytchk, write_protect, write_read_back};
use stress::stress;

use crate::commands::scenario::{ExpectedLun, Setup};
use crate::commands::scsi::{self, Io, LunInfo};
use crate::emu::kernel::Personality;
use crate::emu::storport::{self as sp, Adapter};
use std::path::Path;

pub struct Ctx<'a> {
    pub a: &'a Adapter,
    pub setup: &'a Setup,
    pub luns: Vec<(LunInfo, ExpectedLun)>,
}

type Case = fn(&Ctx<'_>) -> Result<(), String>;

pub const CASES: &[(&str, Case)] = &[
    ("inquiry_standard", inquiry_standard),
    ("inquiry_vpd", inquiry_vpd),
    ("read_capacity", read_capacity),
    ("mode_sense", mode_sense),
    ("cd_mmc", cd_mmc),
    ("simple_commands", simple_commands),
    ("full_media_read", full_media_read),
    ("read_opcodes_agree", read_opcodes_agree),
    ("verify_bytchk", verify_bytchk),
    ("write_read_back", write_read_back),
    ("write_protect", write_protect),
    ("bad_cdbs", bad_cdbs),
    ("short_buffers", short_buffers),
    ("no_device", no_device),
    ("srb_functions", srb_functions),
    ("stress", stress),
];

pub(super) fn ensure(c: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if c {
        Ok(())
    } else {
        Err(msg())
    }
}

pub(super) fn expect_sense(o: &sp::Outcome, key: u8, asc: &[u8], what: &str) -> Result<(), String> {
    ensure(!o.ok(), || {
        format!("{what}: succeeded, expected CHECK CONDITION")
    })?;
    ensure(
        o.status() == sp::SRB_STATUS_ERROR && o.scsi_status == 2,
        || {
            format!(
                "{what}: SrbStatus {:#04x} ScsiStatus {:#04x}, expected ERROR + CHECK CONDITION",
                o.srb_status, o.scsi_status
            )
        },
    )?;
    match o.sense_key() {
        Some((k, a, _)) if k == key && (asc.is_empty() || asc.contains(&a)) => Ok(()),
        other => Err(format!(
            "{what}: sense {other:?}, expected key {key:#x} ASC {asc:x?}"
        )),
    }
}

#[derive(Default)]
pub struct SuiteResult {
    pub passed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

pub const SCENARIOS: &[&str] = &[
    "g4d_both",
    "g4d_fd0",
    // 40 MiB: through replaced views under XP's x86 budget (`docs/x86-mapping.md`).
    "g4d_big_hdd",
    "memdisk_iso",
    "nfit_ramdisks",
    "grub4efi_page",
    "g4d_6g_top",
];

fn vpd83(a: &Adapter, luns: &[(LunInfo, ExpectedLun)]) -> Vec<Vec<u8>> {
    let mut io = Io::new(a);
    luns.iter()
        .map(|(i, _)| {
            io.data_in(i.target, i.lun, &scsi::cdb_inquiry(true, 0x83, 255), 255)
                .1
        })
        .collect()
}

/// Runs every case against one scenario; records results into `res`.
pub fn run_scenario(
    driver: &[u8],
    setup: &Setup,
    personality: Personality,
    only: Option<&str>,
    verbose: bool,
    res: &mut SuiteResult,
) {
    let tag = format!("{}/{}", setup.name, personality.name());
    let k = setup.kernel(personality, verbose);
    let a = match Adapter::start(driver, k.clone()) {
        Ok(a) => a,
        Err(e) => {
            res.failed.push((
                format!("start [{tag}]"),
                format!("{e}; verifier: {:?}", k.failures()),
            ));
            return;
        }
    };
    let mut a = a;
    let infos = Io::new(&a).enumerate();
    let luns = match infos {
        Ok(v) => v,
        Err(e) => {
            res.failed.push((format!("enumerate [{tag}]"), e));
            return;
        }
    };
    let mut pairs = Vec::new();
    let mut enum_err = None;
    // 32-bit XP has no firmware-table query, so NFIT RAM disks cannot be found there.
    let expected: Vec<&ExpectedLun> = setup
        .expected
        .iter()
        .filter(|e| personality != Personality::Xp || e.source != "nfit")
        .collect();
    if luns.len() != expected.len() {
        enum_err = Some(format!(
            "found {} LUN(s), expected {}",
            luns.len(),
            expected.len()
        ));
    }
    for (n, i) in luns.iter().enumerate() {
        if let Some(&e) = expected.get(n) {
            pairs.push((i.clone(), e.clone()));
        }
    }
    let (log_luns, _, bad) = crate::commands::lun_log::parse_log(&k.log());
    for (n, (_, e)) in pairs.iter().enumerate() {
        match log_luns.iter().find(|l| l.n as usize == n) {
            Some(l) if l.phys_base == e.phys_base && l.source == e.source && l.kind == e.kind => {}
            other => enum_err
                .get_or_insert(format!("log line for LUN {n}: {other:?}, expected {e:?}"))
                .push(' '),
        }
    }
    let f0 = k.failures().len();
    match enum_err.or(bad.first().cloned()) {
        Some(e) => res.failed.push((format!("discovery [{tag}]"), e)),
        None if k.failures().is_empty() => res.passed.push(format!("discovery [{tag}]")),
        None => res
            .failed
            .push((format!("discovery [{tag}]"), k.failures().join("; "))),
    }
    let _ = f0;
    let first_ids = vpd83(&a, &pairs);
    let ctx = Ctx {
        a: &a,
        setup,
        luns: pairs.clone(),
    };
    for (name, case) in CASES {
        if only.is_some_and(|o| o != *name) {
            continue;
        }
        let before = k.failures().len();
        let r = case(&ctx);
        let new: Vec<String> = k.failures()[before..].to_vec();
        let name = format!("{name} [{tag}]");
        match (r, new.is_empty()) {
            (Ok(()), true) => res.passed.push(name),
            (Ok(()), false) => res
                .failed
                .push((name, format!("verifier: {}", new.join("; ")))),
            (Err(e), _) => res.failed.push((
                name,
                if new.is_empty() {
                    e
                } else {
                    format!("{e}; verifier: {}", new.join("; "))
                },
            )),
        }
    }
    // PnP cycle: stop, restart, I/O, remove with no leaks; identifiers stable across restart.
    let before = k.failures().len();
    let mut pnp_err = None;
    if a.stop() != 0 {
        pnp_err = Some("ScsiStopAdapter failed".to_string());
    }
    if a.restart() != 0 {
        pnp_err = Some("ScsiRestartAdapter failed".to_string());
    }
    if vpd83(&a, &pairs) != first_ids {
        pnp_err = Some("VPD 0x83 changed across ScsiRestartAdapter".to_string());
    }
    let leaks = a.remove();
    drop(a);
    if !leaks.is_empty() {
        pnp_err = Some(format!("leaks after remove: {leaks:?}"));
    }
    let new: Vec<String> = k.failures()[before..].to_vec();
    // A legacy SCSIPORT adapter is never stopped or removed: the same steps are no-ops for it,
    // and only registry handles left open count as leaks.
    let name = if personality == Personality::Xp {
        format!("legacy_lifetime [{tag}]")
    } else {
        format!("pnp_stop_restart_remove [{tag}]")
    };
    match (pnp_err, new.is_empty()) {
        (None, true) => res.passed.push(name),
        (e, _) => res.failed.push((
            name,
            format!(
                "{}{}",
                e.unwrap_or_default(),
                if new.is_empty() {
                    String::new()
                } else {
                    format!(" verifier: {}", new.join("; "))
                }
            ),
        )),
    }
    // Identifiers stable across a fresh load of the driver.
    if only.is_none() {
        let k2 = setup.kernel(personality, verbose);
        if let Ok(a2) = Adapter::start(driver, k2) {
            let ids2 = vpd83(&a2, &pairs);
            let name = format!("vpd83_stable_across_loads [{tag}]");
            if ids2 == first_ids {
                res.passed.push(name);
            } else {
                res.failed.push((
                    name,
                    "VPD 0x83 differs between two loads of the same memory".into(),
                ));
            }
        }
    }
}

/// `rvblk-harness suite`: prints one line per case and `N passed, N failed`.
pub fn main(driver: &Path, personality: Personality, only: Option<&str>, verbose: bool) -> i32 {
    let bytes = match crate::commands::read_driver(driver) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut res = SuiteResult::default();
    for sc in SCENARIOS {
        let setup = match Setup::named(sc) {
            Ok(s) => s,
            Err(e) => {
                res.failed.push((format!("setup {sc}"), e));
                continue;
            }
        };
        run_scenario(&bytes, &setup, personality, only, verbose, &mut res);
    }
    crate::commands::print_results(&res.passed, &res.failed);
    println!(
        "kernel stack high-water mark: {} bytes of {}",
        crate::emu::stack::measure(),
        crate::emu::stack::KERNEL_STACK
    );
    println!("{} passed, {} failed", res.passed.len(), res.failed.len());
    if res.failed.is_empty() {
        0
    } else {
        1
    }
}
