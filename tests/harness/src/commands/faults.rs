//! Fault injection: makes the N-th pool allocation (or the N-th MmMapIoSpace) fail, for every N
//! the driver reaches in a start + I/O + remove cycle, and checks the driver ends in a clean
//! error: HwFindAdapter not-found/error, or SRBs completed with an error/BUSY status, with
//! correct data on every success and nothing leaked. A crash ends the process with a report.

use crate::commands::lun_log::parse_log;
use crate::commands::scenario::Setup;
use crate::commands::scsi::Io;
use crate::emu::kernel::{Kernel, Personality};
use crate::emu::storport::{self as sp, Adapter, StartError};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Pool,
    Map,
}

/// One start/I-O/remove cycle; returns problems found (empty = clean).
pub fn cycle(driver: &[u8], setup: &Setup, k: Arc<Kernel>) -> Vec<String> {
    let mut p = Vec::new();
    match Adapter::start(driver, k.clone()) {
        Err(StartError::Load(e)) => p.push(format!("load: {e}")),
        Err(StartError::Invalid(e)) => p.push(e),
        Err(_) => {
            for l in k.leaks() {
                p.push(format!("after failed start: {l}"));
            }
            k.reclaim();
        }
        Ok(mut a) => {
            {
                let mut io = Io::new(&a);
                let luns = io.enumerate().unwrap_or_default();
                let (log_luns, _, _) = parse_log(&k.log());
                for (n, i) in luns.iter().enumerate() {
                    let Some(ll) = log_luns.iter().find(|l| l.n as usize == n) else {
                        continue;
                    };
                    let bs = i.block_size;
                    for lba in [0, i.blocks.saturating_sub(8)] {
                        let cnt = 8u32.min(i.blocks as u32);
                        let o = io.read(i.target, i.lun, lba, cnt, bs);
                        let len = (cnt * bs) as usize;
                        if o.ok() {
                            let mut src = vec![0u8; len];
                            let _ = setup.phys.read(ll.phys_base + lba * bs as u64, &mut src);
                            let avail =
                                (ll.length.saturating_sub(lba * bs as u64) as usize).min(len);
                            if io.slot.data(len)[..avail] != src[..avail] {
                                p.push(format!(
                                    "wrong data completed with SUCCESS on LUN {n} LBA {lba}"
                                ));
                            }
                        } else if !matches!(
                            o.status(),
                            sp::SRB_STATUS_ERROR
                                | sp::SRB_STATUS_BUSY
                                | sp::SRB_STATUS_INSUFFICIENT_RESOURCES
                                | sp::SRB_STATUS_NO_DEVICE
                                | sp::SRB_STATUS_INVALID_LUN
                        ) {
                            p.push(format!(
                                "READ on LUN {n} failed with unexpected SrbStatus {:#x}",
                                o.srb_status
                            ));
                        }
                    }
                }
            }
            a.stop();
            a.restart();
            a.remove();
        }
    }
    p.extend(k.failures());
    p
}

pub fn sweep(
    driver: &[u8],
    setup: &Setup,
    personality: Personality,
    verbose: bool,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    let k = setup.kernel(personality, verbose);
    let base = cycle(driver, setup, k.clone());
    if !base.is_empty() {
        failed.push(("baseline (no injected fault)".to_string(), base.join("; ")));
        return (passed, failed);
    }
    let pools = k.pool_calls.load(Ordering::SeqCst);
    let maps = k.map_calls.load(Ordering::SeqCst);
    for (site, total) in [(Site::Pool, pools), (Site::Map, maps)] {
        let step = total.div_ceil(60).max(1);
        let mut n = 1;
        while n <= total {
            let k = setup.kernel(personality, verbose);
            match site {
                Site::Pool => k.fail_pool_at.store(n, Ordering::SeqCst),
                Site::Map => k.fail_map_at.store(n, Ordering::SeqCst),
            }
            let r = cycle(driver, setup, k);
            let name = format!(
                "{} #{n} of {total} fails [{}/{}]",
                if site == Site::Pool {
                    "pool allocation"
                } else {
                    "MmMapIoSpace"
                },
                setup.name,
                personality.name()
            );
            if r.is_empty() {
                passed.push(name);
            } else {
                failed.push((name, r.join("; ")));
            }
            n += step;
        }
    }
    (passed, failed)
}

pub fn main(driver: &Path, personality: Personality, verbose: bool) -> i32 {
    let bytes = match crate::commands::read_driver(driver) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    // No NFIT under XP (no firmware-table query there): sweep a MEMDISK layout instead.
    let scenarios = if personality == Personality::Xp {
        ["g4d_both", "memdisk_iso"]
    } else {
        ["g4d_both", "nfit_ramdisks"]
    };
    for sc in scenarios {
        match Setup::named(sc) {
            Ok(s) => {
                let (p, f) = sweep(&bytes, &s, personality, verbose);
                passed.extend(p);
                failed.extend(f);
            }
            Err(e) => failed.push((format!("setup {sc}"), e)),
        }
    }
    crate::commands::print_results(&passed, &failed);
    println!("{} passed, {} failed", passed.len(), failed.len());
    i32::from(!failed.is_empty())
}
