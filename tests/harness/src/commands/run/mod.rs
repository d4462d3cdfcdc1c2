//! `rvblk-harness run`: discover, read every LUN fully, try one write per disk, report.
//!
//! `report` holds the report it prints.

mod report;

pub use report::{LunReport, RunReport};

use crate::commands::lun_log::{parse_log, LogLun};
use crate::commands::scsi::{self, Io, LunInfo};
use crate::emu::kernel::{Kernel, KernelConfig, LegacyConfig, MachineConfig, Personality};
use crate::emu::phys::PhysMem;
use crate::emu::storport::{Adapter, Outcome};
use rvblk_report::LunKind;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct RunOptions {
    pub driver: PathBuf,
    pub ram: Option<PathBuf>,
    pub os_ram: Vec<(u64, u64)>,
    pub expect: Vec<String>,
    pub personality: Personality,
    pub nfit: Option<Vec<u8>>,
    pub verbose: bool,
    /// Skip the write test (read-only inspection).
    pub no_write: bool,
    /// READ size of the content pass in KiB (`--read-kib`; default: the maximum transfer).
    pub read_kib: Option<u32>,
    /// Setup phase, DriverParameter and service name (SCSIPORT personality).
    pub legacy: LegacyConfig,
    /// Disks arriving through PnP, their timing, UEFI variables (`docs/harness-disks.md`).
    pub machine: MachineConfig,
}

/// Decimal or `0x` hexadecimal.
fn num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("bad range {s:?} (START:LEN)"))?;
    Ok((
        num(a.trim()).ok_or_else(|| format!("bad number {a:?}"))?,
        num(b.trim()).ok_or_else(|| format!("bad number {b:?}"))?,
    ))
}

pub(crate) struct ExpectFile {
    name: String,
    f: File,
    len: u64,
    ok: bool,
}

impl ExpectFile {
    /// Opens every `--expect` file.
    pub(crate) fn open_all(names: &[String]) -> Result<Vec<ExpectFile>, String> {
        names
            .iter()
            .map(|n| {
                let f = File::open(n).map_err(|e| format!("{n}: {e}"))?;
                let len = f.metadata().map_err(|e| format!("{n}: {e}"))?.len();
                Ok(ExpectFile {
                    name: n.clone(),
                    f,
                    len,
                    ok: true,
                })
            })
            .collect()
    }
}

/// Reads a whole LUN through SRBs, hashing it and comparing it with every expect file.
pub(crate) fn read_lun(
    io: &mut Io<'_>,
    info: &LunInfo,
    expects: &mut [ExpectFile],
    read_kib: Option<u32>,
) -> Result<(String, Vec<String>), (String, Outcome)> {
    let bs = info.block_size as u64;
    let max = read_kib
        .map_or(io.a.cfg.max_transfer as u64, |k| u64::from(k) << 10)
        .clamp(bs, 1 << 20);
    let chunk_blocks = (max / bs).max(1);
    let mut h = Sha256::new();
    for e in expects.iter_mut() {
        // An empty file "equals" anything over its own zero length; it matches nothing.
        e.ok = e.len > 0 && e.len <= info.bytes();
    }
    let mut lba = 0u64;
    let mut fbuf = Vec::new();
    while lba < info.blocks {
        let n = chunk_blocks.min(info.blocks - lba) as u32;
        let o = io.read(info.target, info.lun, lba, n, bs as u32);
        let len = n as usize * bs as usize;
        if !o.ok() || o.transferred as usize != len {
            return Err((
                format!(
                    "READ of {n} blocks at LBA {lba} on {}:{} failed: SrbStatus {:#04x}, transferred {}, sense {:?}",
                    info.target, info.lun, o.srb_status, o.transferred, o.sense_key()
                ),
                o,
            ));
        }
        let data = io.slot.data(len);
        h.update(data);
        let off = lba * bs;
        for e in expects.iter_mut().filter(|e| e.ok) {
            if off >= e.len {
                continue;
            }
            let m = ((e.len - off) as usize).min(len);
            fbuf.resize(m, 0);
            if e.f.read_exact(&mut fbuf).is_err() || fbuf[..] != data[..m] {
                e.ok = false;
            }
        }
        lba += n as u64;
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let matches = expects
        .iter()
        .filter(|e| e.ok)
        .map(|e| e.name.clone())
        .collect();
    Ok((hex, matches))
}

/// One write per disk: write a pattern over one block, read it back, restore and verify.
/// On read-only media the write must be refused with DATA PROTECT.
pub(crate) fn write_test(io: &mut Io<'_>, info: &LunInfo, read_only: bool, k: &Kernel) -> String {
    let bs = info.block_size;
    let lba = info.blocks / 2;
    let (t, l) = (info.target, info.lun);
    // A backing disk pulled meanwhile: NOT READY / no LUN is the expected answer (ASYNC.md).
    let gone = |o: &Outcome| k.disk_fault().is_some() && removal_outcome(o);
    let o = io.read(t, l, lba, 1, bs);
    if gone(&o) {
        return format!("not done: {}", k.disk_fault().unwrap_or_default());
    }
    if !o.ok() {
        k.fail(format!("write test: READ of LBA {lba} on {t}:{l} failed"));
        return "read failed".into();
    }
    let orig = io.slot.data(bs as usize).to_vec();
    let pat: Vec<u8> = orig
        .iter()
        .enumerate()
        .map(|(i, b)| !b ^ (i as u8))
        .collect();
    let o = io.write(t, l, lba, &pat, bs);
    if gone(&o) {
        return format!("not done: {}", k.disk_fault().unwrap_or_default());
    }
    if read_only {
        if o.ok() {
            k.fail(format!(
                "WRITE to read-only {} {t}:{l} succeeded",
                if info.is_cd() { "CD-ROM" } else { "disk" }
            ));
            let _ = io.write(t, l, lba, &orig, bs);
            return "write accepted on read-only media (restored)".into();
        }
        match o.sense_key() {
            Some((scsi::SK_DATA_PROTECT, _, _)) => "refused with DATA PROTECT (as expected)".into(),
            other => {
                k.fail(format!(
                    "WRITE to read-only {t}:{l} refused without DATA PROTECT sense (SrbStatus {:#04x}, sense {other:?})",
                    o.srb_status
                ));
                "refused without DATA PROTECT".into()
            }
        }
    } else {
        if !o.ok() {
            k.fail(format!(
                "WRITE to writable disk {t}:{l} failed: SrbStatus {:#04x} sense {:?}",
                o.srb_status,
                o.sense_key()
            ));
            return "write failed".into();
        }
        let o = io.read(t, l, lba, 1, bs);
        let back_ok = o.ok() && io.slot.data(bs as usize) == &pat[..];
        let o2 = io.write(t, l, lba, &orig, bs);
        let o3 = io.read(t, l, lba, 1, bs);
        if [&o, &o2, &o3].into_iter().any(gone) {
            return format!("interrupted: {}", k.disk_fault().unwrap_or_default());
        }
        let restored = o2.ok() && o3.ok() && io.slot.data(bs as usize) == &orig[..];
        if !back_ok {
            k.fail(format!("WRITE on {t}:{l} LBA {lba} did not read back"));
        }
        if !restored {
            k.fail(format!("restoring LBA {lba} on {t}:{l} failed"));
        }
        if back_ok && restored {
            "written, read back and restored".into()
        } else {
            "write/read-back mismatch".into()
        }
    }
}

/// What a disk-backed LUN answers once its backing disk is gone: NOT READY / MEDIUM NOT
/// PRESENT, ABORTED COMMAND, or no LUN at all after the bus change (ASYNC.md).
pub(crate) fn removal_outcome(o: &Outcome) -> bool {
    use crate::emu::storport::{
        SRB_STATUS_INVALID_LUN, SRB_STATUS_INVALID_TARGET_ID, SRB_STATUS_NO_DEVICE,
        SRB_STATUS_SELECTION_TIMEOUT,
    };
    matches!(o.sense_key(), Some((2, 0x3a, _)) | Some((0x0b, _, _)))
        || matches!(
            o.status(),
            SRB_STATUS_NO_DEVICE
                | SRB_STATUS_INVALID_LUN
                | SRB_STATUS_INVALID_TARGET_ID
                | SRB_STATUS_SELECTION_TIMEOUT
        )
}

/// A LUN the re-enumeration found without medium (READ CAPACITY: NOT READY / MEDIUM NOT
/// PRESENT): correct for a disk-backed LUN whose backing disk was removed (a note; nothing to
/// read or compare), a failure otherwise.
fn no_medium_lun(
    info: &LunInfo,
    ll: Option<&LogLun>,
    k: &Kernel,
    notes: &mut Vec<String>,
) -> LunReport {
    let what = format!(
        "LUN {}:{} answers READ CAPACITY with NOT READY / MEDIUM NOT PRESENT",
        info.target, info.lun
    );
    if let Some(why) = k.disk_fault() {
        notes.push(format!("{what} ({why})"));
    } else {
        k.fail(format!("{what} although no disk was removed"));
    }
    LunReport {
        info: info.clone(),
        kind: ll.map_or_else(|| kind_of(info).to_string(), |l| l.kind.clone()),
        read_only: info.is_cd() || ll.is_some_and(|l| l.read_only),
        source: ll.map_or_else(|| "unknown".to_string(), |l| l.source.clone()),
        phys_base: ll.map(|l| l.phys_base),
        sha256: String::new(),
        matches: Vec::new(),
        write_test: "skipped (no medium)".into(),
    }
}

/// Re-enumerates the bus after every BusChangeDetected (the harness's PnP side); the latest
/// list and the bus-change count it answered go to `latest`.
fn enumerator(
    a: &Adapter,
    k: &Kernel,
    latest: &Mutex<(u64, Option<Vec<LunInfo>>)>,
    stop: &AtomicBool,
) {
    let mut io = Io::new(a);
    let mut seen = 0;
    while !stop.load(Ordering::SeqCst) {
        // SCSIPORT's timer fires on its own, not only while an SRB waits: a miniport announces
        // a late disk from HwTimer (`docs/harness-disks.md` §6).
        a.run_timer_if_due();
        let n = k.wait_bus_change(seen, Duration::from_millis(50));
        if n > seen {
            seen = n;
            match io.rescan() {
                Ok(v) => *latest.lock().unwrap_or_else(|e| e.into_inner()) = (n, Some(v)),
                Err(e) => k.fail(format!("re-enumeration after BusChangeDetected: {e}")),
            }
        }
    }
}

/// Waits, as the contract says, for the disks to arrive and for the re-enumeration that
/// follows the driver's BusChangeDetected (up to arrival + 10 s), then for the bus to stay
/// quiet for `QUIET`. Returns the latest enumeration, if there was one.
fn wait_for_disks(
    k: &Kernel,
    m: &MachineConfig,
    latest: &Mutex<(u64, Option<Vec<LunInfo>>)>,
    notes: &mut Vec<String>,
) -> Option<Vec<LunInfo>> {
    const REGISTER_WAIT: Duration = Duration::from_secs(2);
    const QUIET: Duration = Duration::from_millis(300);
    let t0 = Instant::now();
    let reg = loop {
        if let Some(r) = k.pnp_registered_at() {
            break r;
        }
        if t0.elapsed() > REGISTER_WAIT {
            notes.push(format!(
                "the driver did not register for disk interface notifications within {} s: the disks never arrived",
                REGISTER_WAIT.as_secs()
            ));
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let last_arrival = m.arrival_ms + m.stagger_ms * (k.disks().len().max(1) as u64 - 1);
    let limit = reg + Duration::from_millis(last_arrival) + Duration::from_secs(10);
    let want = k.disks().len() as u64;
    loop {
        let now = Instant::now();
        let before = k.bus_changes_before_arrival();
        let scanned = latest.lock().unwrap_or_else(|e| e.into_inner()).0;
        if k.arrivals_delivered() >= want && before.is_some_and(|b| scanned > b) {
            break;
        }
        if now >= limit {
            notes.push(
                "no bus change (BusChangeDetected) and re-enumeration after the disks arrived within arrival + 10 s"
                    .into(),
            );
            return latest.lock().unwrap_or_else(|e| e.into_inner()).1.clone();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Quiet: the last bus change has been enumerated and no other came for QUIET.
    let mut last = (k.bus_change_count(), Instant::now());
    while Instant::now() < limit {
        let n = k.bus_change_count();
        let scanned = latest.lock().unwrap_or_else(|e| e.into_inner()).0;
        if n != last.0 {
            last = (n, Instant::now());
        } else if scanned == n && last.1.elapsed() >= QUIET {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    latest.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
}

/// The control interface's LIST LUNS (`docs/control.md` §4) names exactly the LUNs SCSI
/// enumeration found with a medium, each with the same block size, block count and
/// read-only state, whichever port serves it and whatever backs it (RAM or a disk). A driver
/// without a control interface (the mock miniports) is not checked.
fn list_agrees(io: &mut Io<'_>, infos: &[LunInfo]) -> Result<(), String> {
    let Some(entries) = crate::commands::runtime::list_if_served(io)? else {
        return Ok(());
    };
    let served: Vec<&LunInfo> = infos.iter().filter(|i| !i.no_medium).collect();
    for i in &served {
        let Some(e) = entries.iter().find(|e| e.target_id == i.target) else {
            return Err(format!(
                "LUN {}:{} is on the bus but LIST LUNS does not name it (it names {:?})",
                i.target,
                i.lun,
                entries.iter().map(|e| e.target_id).collect::<Vec<_>>()
            ));
        };
        let ro = i.is_cd() || i.write_protected;
        if (e.block_size, e.blocks, e.read_only) != (i.block_size, i.blocks, ro) {
            return Err(format!(
                "LUN {}:{}: LIST LUNS says {} x {} read_only={}, SCSI says {} x {} read_only={ro}",
                i.target, i.lun, e.block_size, e.blocks, e.read_only, i.block_size, i.blocks
            ));
        }
    }
    if let Some(e) = entries
        .iter()
        .find(|e| !infos.iter().any(|i| i.target == e.target_id))
    {
        return Err(format!(
            "LIST LUNS names target {} that SCSI enumeration did not find",
            e.target_id
        ));
    }
    Ok(())
}

pub fn kind_of(info: &LunInfo) -> LunKind {
    if info.is_cd() {
        LunKind::Cdrom
    } else if info.removable && info.bytes() <= 2_949_120 {
        LunKind::Floppy
    } else {
        LunKind::Disk
    }
}

pub fn make_kernel(opts: &RunOptions) -> Result<Arc<Kernel>, String> {
    let phys = match &opts.ram {
        Some(p) => PhysMem::from_dump(p)?,
        None => return Err("--ram DUMP is required".into()),
    };
    let k = Kernel::new(
        KernelConfig {
            personality: opts.personality,
            os_ram: opts.os_ram.clone(),
            nfit: opts.nfit.clone(),
            verbose: opts.verbose,
            legacy: opts.legacy.clone(),
            machine: opts.machine.clone(),
        },
        Arc::new(phys),
    );
    k.open_disks()?;
    Ok(k)
}

pub fn run(opts: &RunOptions) -> Result<RunReport, String> {
    let driver =
        std::fs::read(&opts.driver).map_err(|e| format!("{}: {e}", opts.driver.display()))?;
    let k = make_kernel(opts)?;
    run_with(&driver, k, opts)
}

pub fn run_with(driver: &[u8], k: Arc<Kernel>, opts: &RunOptions) -> Result<RunReport, String> {
    let mut rep = RunReport::default();
    let mut expects = Vec::new();
    for e in &opts.expect {
        let f = File::open(e).map_err(|x| format!("{e}: {x}"))?;
        let len = f.metadata().map_err(|x| format!("{e}: {x}"))?.len();
        expects.push((e.clone(), len));
    }
    let mut a = match Adapter::start(driver, k.clone()) {
        Ok(a) => a,
        Err(crate::emu::storport::StartError::Load(e)) => return Err(e),
        Err(e) => {
            k.shutdown_async();
            rep.failures = k.failures();
            rep.notes.push(format!("adapter did not start: {e}"));
            rep.log = k.log();
            // The port's own explanation (e.g. a StorPort driver under the xp personality).
            rep.notes.extend(
                rep.log
                    .iter()
                    .filter_map(|l| l.strip_prefix("[harness] "))
                    .map(str::to_string),
            );
            let (_, refused, bad) = parse_log(&rep.log);
            rep.refused = refused;
            rep.failures.extend(bad);
            if !matches!(e, crate::emu::storport::StartError::NotFound(_)) {
                rep.failures.push(format!("adapter start failed: {e}"));
            }
            for l in k.leaks() {
                rep.failures.push(format!("after failed start: {l}"));
            }
            return Ok(rep);
        }
    };
    let mut luns = Vec::new();
    let mut notes = Vec::new();
    let latest = Mutex::new((0u64, None));
    let stop = AtomicBool::new(false);
    let with_disks = !k.disks().is_empty();
    std::thread::scope(|scope| {
        let a = &a;
        if with_disks {
            let (k, latest, stop) = (&k, &latest, &stop);
            scope.spawn(move || enumerator(a, k, latest, stop));
        }
        let mut io = Io::new(a);
        let mut infos = match io.enumerate() {
            Ok(v) => v,
            Err(e) => {
                k.fail(e);
                Vec::new()
            }
        };
        if with_disks {
            if let Some(v) = wait_for_disks(&k, &opts.machine, &latest, &mut notes) {
                infos = v;
            }
        }
        let (log_luns, _, _) = parse_log(&k.log());
        for (i, info) in infos.iter().enumerate() {
            let ll = log_luns.iter().find(|l| l.n as usize == i).cloned();
            if info.no_medium {
                luns.push(no_medium_lun(info, ll.as_ref(), &k, &mut notes));
                continue;
            }
            let scsi_kind = kind_of(info);
            let scsi_ro = info.is_cd() || info.write_protected;
            let (kind, source, phys_base) = match &ll {
                Some(l) => {
                    let kind_ok = l.kind == scsi_kind.as_str()
                        || (!info.is_cd() && (l.kind == "disk" || l.kind == "floppy"));
                    if !kind_ok {
                        k.fail(format!("LUN {}:{}: log says kind={} but INQUIRY reports device type {} ({scsi_kind})", info.target, info.lun, l.kind, info.device_type));
                    }
                    if l.block_size != info.block_size as u64 || l.blocks != info.blocks {
                        k.fail(format!(
                            "LUN {}:{}: log says block_size={} blocks={} but READ CAPACITY says {} x {}",
                            info.target, info.lun, l.block_size, l.blocks, info.block_size, info.blocks
                        ));
                    }
                    if l.read_only != scsi_ro {
                        k.fail(format!(
                            "LUN {}:{}: log says read_only={} but MODE SENSE/INQUIRY say {}",
                            info.target, info.lun, l.read_only as u8, scsi_ro
                        ));
                    }
                    (
                        if kind_ok {
                            l.kind.clone()
                        } else {
                            scsi_kind.to_string()
                        },
                        l.source.clone(),
                        Some(l.phys_base),
                    )
                }
                None => {
                    k.fail(format!(
                        "LUN {}:{} (#{i}) has no `rvblk: lun {i}:` line in the driver log",
                        info.target, info.lun
                    ));
                    (scsi_kind.to_string(), "unknown".to_string(), None)
                }
            };
            let mut ef: Vec<ExpectFile> = expects
                .iter()
                .filter_map(|(n, len)| {
                    File::open(n).ok().map(|f| ExpectFile {
                        name: n.clone(),
                        f,
                        len: *len,
                        ok: true,
                    })
                })
                .collect();
            let (sha, matches) = match read_lun(&mut io, info, &mut ef, opts.read_kib) {
                Ok(x) => x,
                Err((e, o)) if k.disk_fault().is_some() && removal_outcome(&o) => {
                    notes.push(format!("{e} ({})", k.disk_fault().unwrap_or_default()));
                    (String::new(), Vec::new())
                }
                Err((e, _)) => {
                    k.fail(e);
                    (String::new(), Vec::new())
                }
            };
            let wt = if opts.no_write {
                "skipped".to_string()
            } else {
                write_test(&mut io, info, scsi_ro, &k)
            };
            luns.push(LunReport {
                info: info.clone(),
                kind,
                read_only: scsi_ro,
                source,
                phys_base,
                sha256: sha,
                matches,
                write_test: wt,
            });
        }
        if !k.any_disk_removed() {
            if let Err(e) = list_agrees(&mut io, &infos) {
                k.fail(e);
            }
        }
        if log_luns.len() != infos.len() {
            k.fail(format!(
                "the driver log lists {} LUN(s) but SCSI enumeration found {}",
                log_luns.len(),
                infos.len()
            ));
        }
        stop.store(true, Ordering::SeqCst);
    });
    // PnP: stop / restart / a read after restart / remove.
    let r = a.stop();
    if r != 0 {
        k.fail(format!("ScsiStopAdapter returned {r}"));
    }
    if a.supports(2) {
        let r = a.restart();
        if r != 0 {
            k.fail(format!("ScsiRestartAdapter returned {r}"));
        }
        let mut io = Io::new(&a);
        for l in &luns {
            let o = io.read(l.info.target, l.info.lun, 0, 1, l.info.block_size);
            if !o.ok() && k.disk_fault().is_some() && removal_outcome(&o) {
                notes.push(format!(
                    "READ on {}:{} after ScsiRestartAdapter: {}",
                    l.info.target,
                    l.info.lun,
                    k.disk_fault().unwrap_or_default()
                ));
            } else if !o.ok() {
                k.fail(format!(
                    "READ on {}:{} after ScsiRestartAdapter failed: {:#04x}",
                    l.info.target, l.info.lun, o.srb_status
                ));
            }
        }
    }
    a.remove();
    rep.stack_high_water = crate::emu::stack::measure();
    drop(a);
    rep.luns = luns;
    rep.notes.extend(notes);
    rep.log = k.log();
    let (_, refused, bad) = parse_log(&rep.log);
    rep.refused = refused;
    rep.failures = k.failures();
    rep.failures.extend(bad);
    Ok(rep)
}
