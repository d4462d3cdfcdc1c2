//! Issue 14's acceptance scenarios for a driver that serves runtime mounts (StorPort,
//! `docs/harness-runtime.md` §5): an ISO file as a CD and a raw image as a writable disk (every
//! block equal to the file, writes landing in the host file), a 64 MiB RAM disk written and read
//! back, each ejected (REMOVE, the bus change, REPORT LUNS without it, the file closed or the
//! RAM given back), a file whose volume vanishes, and the requests the work itself refuses —
//! missing, locked, denied, too short, directory, compressed/sparse/encrypted files, the same
//! writable file twice, non-administrator and unprovable requesters — each with its error and
//! nothing changed.

use super::list;
use crate::commands::control::{
    create_lun, encoded, mount_file, requester_released, send_as, NewLun,
};
use crate::commands::run::{read_lun, ExpectFile};
use crate::commands::scsi::Io;
use crate::emu::kernel::files::{
    self, DELETE, FILE_ATTRIBUTE_COMPRESSED, FILE_ATTRIBUTE_ENCRYPTED, FILE_ATTRIBUTE_SPARSE_FILE,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, GENERIC_READ, GENERIC_WRITE,
    STATUS_SHARING_VIOLATION,
};
use crate::emu::kernel::{Kernel, Requester, STATUS_SUCCESS};
use crate::emu::storport::SRB_STATUS_SUCCESS;
use rvblk_core::control::{
    buffer_len, read_reply, ControlError, NtPath, Reply, ReplyError, Request as Control, HEADER_LEN,
};
use rvblk_core::image::DeviceKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GRACE: Duration = Duration::from_secs(5);
const MIB: u64 = 1 << 20;

/// The test files, in a directory of their own.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Result<Files, String> {
        let dir = std::env::temp_dir().join(format!(
            "rvblk-runtime-{}-{}",
            std::process::id(),
            crate::commands::HOST_ARCH
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Files { dir })
    }

    /// A file of `len` bytes with a pattern that differs in every 512-byte block.
    fn make(&self, name: &str, len: u64, seed: u8) -> Result<PathBuf, String> {
        let p = self.dir.join(name);
        let data: Vec<u8> = (0..len)
            .map(|i| ((i / 512) as u8 ^ (i as u8).rotate_left(3)).wrapping_add(seed))
            .collect();
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `req` as `who` and expects a refusal; returns it.
fn refused(io: &mut Io<'_>, req: &Control<'_>, who: Requester) -> Result<ControlError, String> {
    let ro = !matches!(req, Control::MountFile { read_only: false, kind, .. } if *kind != DeviceKind::CdRom);
    let a = send_as(io, &encoded(req, buffer_len(req) - HEADER_LEN), who, ro);
    if a.srb_status != SRB_STATUS_SUCCESS || a.transferred != HEADER_LEN {
        return Err(format!(
            "SrbStatus {:#x} with {} bytes; a refusal is SUCCESS with the 28-byte header",
            a.srb_status, a.transferred
        ));
    }
    let r = match read_reply(req.code(), a.returned()) {
        Err(ReplyError::Refused(e)) => Ok(e),
        other => Err(format!("answered {other:?}; a refusal was expected")),
    };
    requester_released(&io.a.k, a.irp, Duration::from_secs(2))?;
    r
}

/// Nothing changed: the LIST of the start, no handle on any test file, no MDL pages held.
fn unchanged(
    io: &mut Io<'_>,
    k: &Kernel,
    first_raw: &[u8],
    files: &[&Path],
    mdl_before: u64,
) -> Result<(), String> {
    let (raw, _) = list(io)?;
    if raw != first_raw {
        return Err("LIST differs after the refused request".into());
    }
    for f in files {
        if k.open_file_handles(f) != 0 {
            return Err(format!("the driver still holds {} open", f.display()));
        }
    }
    let held = k.mdl_bytes().0;
    if held != mdl_before {
        return Err(format!(
            "MDL pages held: {held:#x} bytes, {mdl_before:#x} before (half created?)"
        ));
    }
    Ok(())
}

fn nt(p: &Path) -> Vec<u8> {
    super::utf16(&files::nt_path(p))
}

/// Reads the whole LUN and compares it with `file` (which must match exactly).
fn reads_as(io: &mut Io<'_>, lun: &NewLun, file: &Path) -> Result<(), String> {
    let name = file.display().to_string();
    let mut e = ExpectFile::open_all(std::slice::from_ref(&name))?;
    match read_lun(io, &lun.scsi, &mut e, None) {
        Ok((_, m)) if m == [name] => Ok(()),
        Ok(_) => Err(format!(
            "target {} does not read back as {}",
            lun.target,
            file.display()
        )),
        Err((e, _)) => Err(e),
    }
}

/// REMOVE of `target`, then the bus change, the re-enumeration without it, SRBs to it refused,
/// LIST without it, and `file` (if any) closed — within `GRACE`.
fn eject(io: &mut Io<'_>, k: &Kernel, target: u8, file: Option<&Path>) -> Result<(), String> {
    let before = k.bus_change_count();
    let req = Control::Remove { target_id: target };
    let a = send_as(io, &encoded(&req, 64), Requester::Admin, false);
    match read_reply(req.code(), a.returned()) {
        Ok(Reply::Removed { target_id }) if target_id == target => {}
        other => return Err(format!("REMOVE of target {target} answered {other:?}")),
    }
    requester_released(k, a.irp, Duration::from_secs(2))?;
    if k.wait_bus_change(before, GRACE) <= before {
        return Err(format!(
            "no BusChangeDetected after REMOVE of target {target}"
        ));
    }
    let scan = io.rescan()?;
    if scan.iter().any(|l| l.target == target) {
        return Err(format!(
            "target {target} is still in REPORT LUNS / INQUIRY after the bus change"
        ));
    }
    if io.read(target, 0, 0, 1, 512).ok() {
        return Err(format!("a READ of removed target {target} succeeded"));
    }
    let end = Instant::now() + GRACE;
    loop {
        let (_, entries) = list(io)?;
        let listed = entries.iter().any(|e| e.target_id == target);
        let open = file.is_some_and(|f| k.open_file_handles(f) != 0);
        if !listed && !open {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(format!(
                "{} s after REMOVE of target {target}: {}",
                GRACE.as_secs(),
                if listed {
                    "LIST still has it".to_string()
                } else {
                    format!(
                        "{} is still open",
                        file.map_or(String::new(), |f| f.display().to_string())
                    )
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expect(got: Result<ControlError, String>, want: ControlError) -> Result<(), String> {
    match got {
        Ok(e) if e == want => Ok(()),
        Ok(e) => Err(format!("refused with {e:?}; wanted {want:?}")),
        Err(e) => Err(e),
    }
}

/// `path` mounted as a disk (read-only when `read_only`) by an elevated administrator.
fn admin_disk(io: &mut Io<'_>, path: &Path, read_only: bool) -> Result<NewLun, String> {
    created(mount_file(
        io,
        path,
        DeviceKind::Disk,
        read_only,
        Requester::Admin,
    ))
}

fn created(r: Result<NewLun, Result<ReplyError, String>>) -> Result<NewLun, String> {
    r.map_err(|e| match e {
        Ok(e) => format!("refused: {e:?}"),
        Err(e) => e,
    })
}

/// Writes `data` over the LUN from `lba` in chunks the adapter takes.
fn write_all(io: &mut Io<'_>, lun: &NewLun, lba: u64, data: &[u8]) -> Result<(), String> {
    let bs = lun.block_size as usize;
    let chunk = (io.a.cfg.max_transfer as usize).clamp(bs, 1 << 20) / bs * bs;
    for (i, c) in data.chunks(chunk).enumerate() {
        let at = lba + (i * chunk / bs) as u64;
        let o = io.write(lun.target, 0, at, c, bs as u32);
        if !o.ok() {
            return Err(format!(
                "WRITE at LBA {at} of target {} failed: {:#x} {:?}",
                lun.target,
                o.srb_status,
                o.sense_key()
            ));
        }
    }
    Ok(())
}

/// Reads `len` bytes from `lba`, in READs as large as the port allows (at most 1 MiB).
fn read_all(io: &mut Io<'_>, lun: &NewLun, lba: u64, len: usize) -> Result<Vec<u8>, String> {
    let bs = lun.block_size as usize;
    let chunk = (io.a.cfg.max_transfer as usize).clamp(bs, 1 << 20) / bs * bs;
    read_pieces(io, lun, lba, len, chunk)
}

/// Reads `len` bytes from `lba` in READs of `piece` bytes.
fn read_pieces(
    io: &mut Io<'_>,
    lun: &NewLun,
    lba: u64,
    len: usize,
    piece: usize,
) -> Result<Vec<u8>, String> {
    let bs = lun.block_size as usize;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let n = piece.min(len - out.len());
        let at = lba + (out.len() / bs) as u64;
        let o = io.read(lun.target, 0, at, (n / bs) as u32, bs as u32);
        if !o.ok() {
            return Err(format!(
                "READ at LBA {at} of target {} failed: {:#x} {:?}",
                lun.target,
                o.srb_status,
                o.sense_key()
            ));
        }
        out.extend_from_slice(io.slot.data(n));
    }
    Ok(out)
}

/// Gives the worker `d` to do the fills it wants, or until no ZwReadFile happened for 20 ms.
fn wait_fills(k: &Kernel, d: Duration) {
    let end = Instant::now() + d;
    let mut last = k.file_read_calls();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        let now = k.file_read_calls();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Waits until `n` ZwReadFile calls are held by `Kernel::hold_file_reads`.
fn wait_held(k: &Kernel, n: u32) -> Result<(), String> {
    let end = Instant::now() + GRACE;
    while k.held_file_reads() < n {
        if Instant::now() >= end {
            return Err(format!(
                "no read-ahead fill started within {} s of a sequential stream",
                GRACE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Lets held file reads go however the case ends.
struct HoldGuard<'a>(&'a Kernel);

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        self.0.hold_file_reads(None);
    }
}

/// Runs `f` with every HwStartIo at PASSIVE_LEVEL (inside a guarded region when `guarded`),
/// then puts the machine's HwStartIo IRQL back.
fn at_passive<R>(
    io: &mut Io<'_>,
    k: &Kernel,
    guarded: bool,
    f: impl FnOnce(&mut Io<'_>) -> R,
) -> R {
    io.a.set_startio(0, guarded);
    let r = f(io);
    io.a.set_startio(k.cfg.machine.startio_dispatch_every, false);
    r
}

/// Mounts `img` writable, makes its volume vanish, and expects NOT READY / MEDIUM NOT PRESENT
/// for a READ (never a hang), then a working eject.
fn file_vanishes(io: &mut Io<'_>, k: &Kernel, img: &Path) -> Result<(), String> {
    let lun = admin_disk(io, img, false)?;
    k.vanish_file(img)?;
    let o = io.read(lun.target, 0, 0, 8, 512);
    if o.sense_key().map(|s| (s.0, s.1)) != Some((2, 0x3a)) {
        return Err(format!(
            "READ after the file vanished: {:#x} {:?} (NOT READY / MEDIUM NOT PRESENT expected)",
            o.srb_status,
            o.sense_key()
        ));
    }
    eject(io, k, lun.target, Some(img))
}

/// Mounts `img` writable, reads it from a second thread and ejects it meanwhile: every READ
/// ends with data, NOT READY or no LUN, none hangs, and the file is closed afterwards.
fn eject_while_reading(io: &mut Io<'_>, k: &Kernel, img: &Path) -> Result<(), String> {
    let lun = admin_disk(io, img, false)?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let a = io.a;
    let (t, blocks) = (lun.target, lun.blocks);
    let (reads, bad, ejected) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut io2 = Io::new(a);
            let (mut n, mut bad) = (0u64, Vec::new());
            let mut lba = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let o = io2.read(t, 0, lba, 64, 512);
                if !o.ok() && !crate::commands::run::removal_outcome(&o) {
                    bad.push(format!("{:#x} {:?}", o.srb_status, o.sense_key()));
                }
                n += 1;
                lba = (lba + 64) % (blocks - 64);
            }
            (n, bad)
        });
        std::thread::sleep(Duration::from_millis(20));
        let r = eject(io, k, t, Some(img));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (n, bad) = reader
            .join()
            .unwrap_or((0, vec!["the reader panicked".into()]));
        (n, bad, r)
    });
    ejected?;
    if !bad.is_empty() {
        return Err(format!("READs during the eject ended with {} (of {reads}); only data, NOT READY or no LUN are expected", bad.join(", ")));
    }
    Ok(())
}

/// Runs the cases; `record(name, result, kernel, failures before)` as in `runtime`.
pub(super) fn cases(
    io: &mut Io<'_>,
    k: &Arc<Kernel>,
    tag: &str,
    first_raw: &[u8],
    record: &mut impl FnMut(String, Result<(), String>, &Kernel, usize),
) {
    let f = match Files::new() {
        Ok(f) => f,
        Err(e) => return record(format!("runtime_files [{tag}]"), Err(e), k, 0),
    };
    let mut case = |name: &str, body: &mut dyn FnMut(&mut Io<'_>) -> Result<(), String>| {
        let before = k.failures().len();
        let r = body(io);
        record(format!("{name} [{tag}]"), r, k, before);
    };
    let mk = |n: &str, len: u64, seed: u8| f.make(n, len, seed);

    // An ISO file as a CD: every block equal to the file, writes refused, the file locked
    // against deletion and writers but still readable by others.
    case("mount_iso_as_cd", &mut |io| {
        let iso = mk("cd.iso", 4 * MIB, 1)?;
        let lun = created(mount_file(
            io,
            &iso,
            DeviceKind::CdRom,
            true,
            Requester::Admin,
        ))?;
        if lun.kind != DeviceKind::CdRom
            || !lun.read_only
            || lun.block_size != 2048
            || lun.blocks != 4 * MIB / 2048
            || !lun.scsi.is_cd()
        {
            return Err(format!(
                "MOUNT reply / enumeration: kind {:?} ro {} {} × {}, INQUIRY type {}",
                lun.kind, lun.read_only, lun.blocks, lun.block_size, lun.scsi.device_type
            ));
        }
        reads_as(io, &lun, &iso)?;
        let (_, entries) = list(io)?;
        let want = nt(&iso);
        match entries.iter().find(|e| e.target_id == lun.target) {
            Some(e)
                if e.origin == "file" && e.read_only && e.path.as_deref() == Some(&want[..]) => {}
            other => return Err(format!("LIST entry of the mount: {other:?}")),
        }
        let o = io.write(lun.target, 0, 0, &[0u8; 2048], 2048);
        if o.ok() || o.sense_key().map(|s| s.0) != Some(7) {
            return Err(format!(
                "WRITE to the CD: {:#x} {:?} (DATA PROTECT expected)",
                o.srb_status,
                o.sense_key()
            ));
        }
        let all = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
        if k.other_open(&iso, DELETE, all) != STATUS_SHARING_VIOLATION
            || k.other_open(&iso, GENERIC_WRITE, all) != STATUS_SHARING_VIOLATION
            || k.other_open(&iso, GENERIC_READ, all) != STATUS_SUCCESS
        {
            return Err("a read-only mount must keep the file from deletion and writers, open to readers (share READ only)".into());
        }
        eject(io, k, lun.target, Some(&iso))?;
        if k.other_open(&iso, DELETE, all) != STATUS_SUCCESS {
            return Err("the file is still locked after the eject".into());
        }
        Ok(())
    });

    // A raw image as a writable disk: reads equal the file, writes land in the host file.
    case("mount_image_as_writable_disk", &mut |io| {
        let img = mk("disk.img", 4 * MIB, 2)?;
        let orig = std::fs::read(&img).map_err(|e| e.to_string())?;
        let lun = admin_disk(io, &img, false)?;
        if lun.kind != DeviceKind::Disk
            || lun.read_only
            || lun.block_size != 512
            || lun.blocks != 4 * MIB / 512
            || lun.scsi.write_protected
        {
            return Err(format!(
                "MOUNT reply / enumeration: kind {:?} ro {} {} × {}",
                lun.kind, lun.read_only, lun.blocks, lun.block_size
            ));
        }
        reads_as(io, &lun, &img)?;
        if k.other_open(
            &img,
            GENERIC_READ,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
        ) != STATUS_SHARING_VIOLATION
        {
            return Err("a writable mount must share nothing".into());
        }
        // The same file again while it is mounted for write: the driver's own open conflicts.
        let again = nt(&img);
        let path = NtPath::new(&again).map_err(|e| format!("{e:?}"))?;
        expect(
            refused(
                io,
                &Control::MountFile {
                    kind: DeviceKind::Disk,
                    read_only: true,
                    path,
                },
                Requester::Admin,
            ),
            ControlError::SharingViolation,
        )?;
        let pat: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 + 3) as u8).collect();
        write_all(io, &lun, 100, &pat)?;
        write_all(io, &lun, lun.blocks - 8, &pat[..4096])?;
        if read_all(io, &lun, 100, pat.len())? != pat {
            return Err("the written blocks do not read back".into());
        }
        eject(io, k, lun.target, Some(&img))?;
        let mut want = orig;
        want[100 * 512..100 * 512 + pat.len()].copy_from_slice(&pat);
        let end = want.len();
        want[end - 4096..].copy_from_slice(&pat[..4096]);
        if std::fs::read(&img).map_err(|e| e.to_string())? != want {
            return Err("the host file differs from what was written through the LUN".into());
        }
        Ok(())
    });

    // A 64 MiB RAM disk: zero-filled, a pattern written and read back, its RAM given back.
    case("ramdisk_64m", &mut |io| {
        let held = k.mdl_bytes().0;
        let req = Control::CreateRamDisk {
            kind: DeviceKind::Disk,
            read_only: false,
            size_bytes: 64 * MIB,
            source: None,
        };
        let lun = created(create_lun(io, &req, Requester::Admin))?;
        if lun.kind != DeviceKind::Disk
            || lun.read_only
            || lun.block_size != 512
            || lun.blocks != 64 * MIB / 512
        {
            return Err(format!(
                "CREATE RAM DISK reply: kind {:?} ro {} {} × {}",
                lun.kind, lun.read_only, lun.blocks, lun.block_size
            ));
        }
        if k.mdl_bytes().0 < held + 64 * MIB {
            return Err(format!(
                "the RAM disk holds {:#x} bytes of MDL pages (64 MiB expected)",
                k.mdl_bytes().0 - held
            ));
        }
        let zero = read_all(io, &lun, 0, MIB as usize)?;
        let last = read_all(io, &lun, lun.blocks - 2048, MIB as usize)?;
        if zero.iter().chain(&last).any(|&b| b != 0) {
            return Err("a new RAM disk is not zero-filled".into());
        }
        let pat: Vec<u8> = (0..64 * MIB)
            .map(|i| ((i / 512) as u8).wrapping_mul(31) ^ i as u8)
            .collect();
        write_all(io, &lun, 0, &pat)?;
        if read_all(io, &lun, 0, pat.len())? != pat {
            return Err("the pattern does not read back".into());
        }
        eject(io, k, lun.target, None)?;
        let end = Instant::now() + GRACE;
        while k.mdl_bytes().0 != held {
            if Instant::now() >= end {
                return Err(format!(
                    "{:#x} bytes of MDL pages still held after the eject",
                    k.mdl_bytes().0 - held
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    });

    // Low resources, as Driver Verifier simulates them: the N-th pool/MDL allocation, then the
    // N-th mapping, fails while a RAM disk is created or a file mounted, for every N the work
    // reaches. Each ends served (and is ejected) or refused with InsufficientMemory / Busy,
    // with nothing half created.
    case("low_resources", &mut |io| {
        use std::sync::atomic::Ordering::SeqCst;
        let held = k.mdl_bytes().0;
        let img = mk("lowres.img", MIB, 15)?;
        let units = nt(&img);
        let path = NtPath::new(&units).map_err(|e| format!("{e:?}"))?;
        let ram = Control::CreateRamDisk {
            kind: DeviceKind::Disk,
            read_only: false,
            size_bytes: 8 * MIB,
            source: None,
        };
        let file = Control::MountFile {
            kind: DeviceKind::Disk,
            read_only: false,
            path,
        };
        for (what, req, f) in [
            ("RAM disk", &ram, None),
            ("file mount", &file, Some(img.as_path())),
        ] {
            for map in [false, true] {
                let (calls, fail_at) = if map {
                    (&k.map_calls, &k.fail_map_at)
                } else {
                    (&k.pool_calls, &k.fail_pool_at)
                };
                let site = if map { "mapping" } else { "allocation" };
                for n in 1..=64 {
                    let base = calls.load(SeqCst);
                    fail_at.store(base + n, SeqCst);
                    let r = create_lun(io, req, Requester::Admin);
                    fail_at.store(0, SeqCst);
                    let hit = calls.load(SeqCst) >= base + n;
                    let at = format!("{what}, {site} #{n} failed");
                    match r {
                        Ok(lun) => {
                            eject(io, k, lun.target, f).map_err(|e| format!("{at}: {e}"))?;
                            let end = Instant::now() + GRACE;
                            while k.mdl_bytes().0 != held {
                                if Instant::now() >= end {
                                    return Err(format!(
                                        "{at}: MDL pages still held after the eject"
                                    ));
                                }
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            if !hit {
                                break;
                            }
                        }
                        Err(Ok(ReplyError::Refused(
                            ControlError::InsufficientMemory | ControlError::Busy,
                        ))) => unchanged(io, k, first_raw, &[&img], held)
                            .map_err(|e| format!("{at}: {e}"))?,
                        Err(e) => return Err(format!("{at}: {e:?}")),
                    }
                }
            }
        }
        Ok(())
    });

    // A RAM CD filled from an image file.
    case("ramdisk_cd_from_image", &mut |io| {
        let iso = mk("src.iso", 2 * MIB, 3)?;
        let p = nt(&iso);
        let source = Some(NtPath::new(&p).map_err(|e| format!("{e:?}"))?);
        let req = Control::CreateRamDisk {
            kind: DeviceKind::CdRom,
            read_only: true,
            size_bytes: 2 * MIB,
            source,
        };
        let lun = created(create_lun(io, &req, Requester::Admin))?;
        reads_as(io, &lun, &iso)?;
        eject(io, k, lun.target, None)?;
        if k.open_file_handles(&iso) != 0 {
            return Err("the source image is still open".into());
        }
        Ok(())
    });

    // REMOVE while another thread reads the LUN: every READ completes (data, or NOT READY /
    // no LUN once it is going), none hangs, and the file is closed afterwards.
    case("eject_while_reading", &mut |io| {
        eject_while_reading(io, k, &mk("busy.img", 2 * MIB, 14)?)
    });

    // HwStartIo at PASSIVE_LEVEL reads the file itself (`docs/control.md` §10.5): every block
    // equal to the file, made by ZwReadFile calls inside HwStartIo; a WRITE (the worker's) is
    // read back at once.
    case("file_read_inline_at_passive", &mut |io| {
        let img = mk("inline.img", 4 * MIB, 19)?;
        let lun = admin_disk(io, &img, false)?;
        at_passive(io, k, false, |io| {
            let inline = k.inline_file_read_calls();
            reads_as(io, &lun, &img)?;
            if k.inline_file_read_calls() == inline {
                return Err("no READ was read from the file inside HwStartIo".into());
            }
            let pat: Vec<u8> = (0..8192u32).map(|i| (i * 29 + 7) as u8).collect();
            write_all(io, &lun, 100, &pat)?;
            if read_all(io, &lun, 100, pat.len())? != pat {
                return Err("a READ after the WRITE returned the old bytes".into());
            }
            reads_as(io, &lun, &img)
        })?;
        eject(io, k, lun.target, Some(&img))
    });

    // The same at PASSIVE_LEVEL with special kernel APCs disabled (a caller in a guarded
    // region): a synchronous ZwReadFile could not complete there, so the worker reads.
    case("file_read_guarded_at_passive", &mut |io| {
        let img = mk("guarded.img", 2 * MIB, 20)?;
        let lun = admin_disk(io, &img, true)?;
        at_passive(io, k, true, |io| {
            let inline = k.inline_file_read_calls();
            reads_as(io, &lun, &img)?;
            match k.inline_file_read_calls() - inline {
                0 => Ok(()),
                n => Err(format!(
                    "{n} ZwReadFile calls inside HwStartIo with APCs disabled"
                )),
            }
        })?;
        eject(io, k, lun.target, Some(&img))
    });

    // At PASSIVE_LEVEL too: a vanished file gives NOT READY, and an eject while another thread
    // reads (HwStartIo in ZwReadFile) waits for those reads and closes the file.
    case("file_vanishes_at_passive", &mut |io| {
        let img = mk("vanish-passive.img", MIB, 21)?;
        at_passive(io, k, false, |io| file_vanishes(io, k, &img))
    });
    case("eject_while_reading_at_passive", &mut |io| {
        let img = mk("busy-passive.img", 2 * MIB, 22)?;
        at_passive(io, k, false, |io| eject_while_reading(io, k, &img))
    });

    // A kernel-mode requester is served with the driver's own rights.
    case("mount_by_kernel_requester", &mut |io| {
        let img = mk("kernel.img", MIB, 4)?;
        let lun = created(mount_file(
            io,
            &img,
            DeviceKind::Disk,
            true,
            Requester::Kernel,
        ))?;
        reads_as(io, &lun, &img)?;
        eject(io, k, lun.target, Some(&img))
    });

    // A sparse file is served like any other (holes read as zeros, writes fill them), as
    // ImDisk and AIM do; only compressed and encrypted files are refused (`docs/control.md` §10).
    case("mount_sparse_file_writable", &mut |io| {
        let img = mk("sparse.img", MIB, 12)?;
        k.set_file_attributes(&img, FILE_ATTRIBUTE_SPARSE_FILE)?;
        let lun = admin_disk(io, &img, false)?;
        let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        write_all(io, &lun, 8, &pattern)?;
        if read_all(io, &lun, 8, pattern.len())? != pattern {
            return Err("the pattern written to the sparse file did not read back".into());
        }
        reads_as(io, &lun, &img)?;
        eject(io, k, lun.target, Some(&img))
    });

    // The file's volume goes away: NOT READY / MEDIUM NOT PRESENT, never a hang; eject works.
    case("file_vanishes", &mut |io| {
        file_vanishes(io, k, &mk("vanish.img", MIB, 5)?)
    });

    // Read-ahead (`docs/control.md` §10.4): a sequential stream of 64 KiB READs equals the
    // file, and most of it is served from the buffers (far fewer ZwReadFile calls than READs).
    case("readahead_sequential_read", &mut |io| {
        let img = mk("ra-seq.img", 8 * MIB, 16)?;
        let want = std::fs::read(&img).map_err(|e| e.to_string())?;
        let lun = admin_disk(io, &img, true)?;
        let calls = k.file_read_calls();
        let got = read_pieces(io, &lun, 0, want.len(), 64 * 1024)?;
        let n = k.file_read_calls() - calls;
        if got != want {
            return Err("the stream read through read-ahead differs from the file".into());
        }
        let srbs = want.len() as u64 / (64 * 1024);
        // ≈ 1 per 4 READs (one 256 KiB fill each); 1 per READ without read-ahead. The margin
        // is for a loaded host, where the reader can pass the worker and miss more often.
        if n * 4 > srbs * 3 {
            return Err(format!(
                "{n} ZwReadFile calls for {srbs} sequential READs: read-ahead served too few"
            ));
        }
        eject(io, k, lun.target, Some(&img))
    });

    // A WRITE into a range the buffers hold: the next READs of it see the new bytes.
    case("readahead_write_then_read", &mut |io| {
        let img = mk("ra-write.img", 4 * MIB, 17)?;
        let lun = admin_disk(io, &img, false)?;
        // Start a stream and give the worker time to fill the window ahead of it.
        read_pieces(io, &lun, 0, 128 * 1024, 64 * 1024)?;
        wait_fills(k, Duration::from_millis(200));
        let pat: Vec<u8> = (0..8192u32).map(|i| (i * 13 + 5) as u8).collect();
        // 300 KiB: inside the first or second buffer ahead of the reader.
        write_all(io, &lun, 600, &pat)?;
        let mut want = std::fs::read(&img).map_err(|e| e.to_string())?;
        if want[600 * 512..600 * 512 + pat.len()] != pat[..] {
            return Err("the write did not reach the host file".into());
        }
        want.truncate(2 * MIB as usize);
        let got = read_pieces(io, &lun, 0, want.len(), 64 * 1024)?;
        if got != want {
            return Err("a READ after the WRITE returned the old bytes (stale read-ahead)".into());
        }
        eject(io, k, lun.target, Some(&img))
    });

    // A WRITE arrives while a fill of the same range is reading the file: the fill's bytes
    // (read before the write) are never served.
    case("readahead_write_during_fill", &mut |io| {
        let img = mk("ra-race.img", 4 * MIB, 18)?;
        let lun = admin_disk(io, &img, false)?;
        let _release = HoldGuard(k);
        // Fills read 256 KiB; the test's own 64 KiB READs go through.
        k.hold_file_reads(Some(128 * 1024));
        read_pieces(io, &lun, 0, 128 * 1024, 64 * 1024)?;
        wait_held(k, 1)?;
        let pat: Vec<u8> = (0..4096u32).map(|i| (i * 11 + 1) as u8).collect();
        let a = io.a;
        let t = lun.target;
        let written = std::thread::scope(|s| {
            let w = s.spawn(|| {
                let mut io2 = Io::new(a);
                // LBA 300 = 150 KiB: inside the fill that is held (128 KiB …).
                io2.write(t, 0, 300, &pat, 512).ok()
            });
            std::thread::sleep(Duration::from_millis(100));
            k.hold_file_reads(None);
            w.join().unwrap_or(false)
        });
        if !written {
            return Err("the WRITE during the fill failed".into());
        }
        let want = std::fs::read(&img).map_err(|e| e.to_string())?;
        let got = read_pieces(io, &lun, 128 * 1024 / 512, 512 * 1024, 64 * 1024)?;
        if got[..] != want[128 * 1024..640 * 1024] {
            return Err("READs after a WRITE during a fill returned the fill's stale bytes".into());
        }
        eject(io, k, lun.target, Some(&img))
    });

    // REMOVE while a fill is reading the file: the eject completes once it is done, the file
    // is closed and the buffers go back (no pool leak reported).
    case("readahead_eject_during_fill", &mut |io| {
        let img = mk("ra-eject.img", 4 * MIB, 19)?;
        let lun = admin_disk(io, &img, true)?;
        let _release = HoldGuard(k);
        k.hold_file_reads(Some(128 * 1024));
        read_pieces(io, &lun, 0, 128 * 1024, 64 * 1024)?;
        wait_held(k, 1)?;
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                k.hold_file_reads(None);
            });
            eject(io, k, lun.target, Some(&img))
        })
    });

    // Random reads never start a stream: every READ goes to the file, once, and returns it.
    case("readahead_random_reads_unchanged", &mut |io| {
        let img = mk("ra-rand.img", 4 * MIB, 20)?;
        let want = std::fs::read(&img).map_err(|e| e.to_string())?;
        let lun = admin_disk(io, &img, true)?;
        let calls = k.file_read_calls();
        let mut x = 0x2545_f491_u64;
        let mut last = u64::MAX;
        let mut n = 0;
        while n < 200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lba = (x % (lun.blocks - 8)) / 8 * 8;
            if last.checked_add(8) == Some(lba) {
                continue;
            }
            last = lba;
            let o = io.read(lun.target, 0, lba, 8, 512);
            let at = lba as usize * 512;
            if !o.ok() || io.slot.data(4096) != &want[at..at + 4096] {
                return Err(format!(
                    "random READ at LBA {lba}: {:#x} or wrong data",
                    o.srb_status
                ));
            }
            n += 1;
        }
        wait_fills(k, Duration::from_millis(50));
        let calls = k.file_read_calls() - calls;
        if calls != n {
            return Err(format!("{calls} ZwReadFile calls for {n} random READs (read-ahead filled without a stream)"));
        }
        eject(io, k, lun.target, Some(&img))
    });

    // A stream up to the end of the LUN (whose last fill is shorter than a buffer): every block
    // reads right, and a READ past the end, or across it, is refused (LBA OUT OF RANGE).
    case("readahead_read_past_end", &mut |io| {
        let len = MIB + 96 * 1024;
        let img = mk("ra-end.img", len, 21)?;
        let want = std::fs::read(&img).map_err(|e| e.to_string())?;
        let lun = admin_disk(io, &img, true)?;
        let got = read_pieces(io, &lun, 0, want.len(), 64 * 1024)?;
        if got != want {
            return Err("a stream to the end of the LUN differs from the file".into());
        }
        for (lba, blocks) in [(lun.blocks, 8), (lun.blocks - 64, 128)] {
            let o = io.read(lun.target, 0, lba, blocks, 512);
            if o.ok() || o.sense_key().map(|s| (s.0, s.1)) != Some((5, 0x21)) {
                return Err(format!(
                    "READ of {blocks} blocks at LBA {lba} (past the end): {:#x} {:?}",
                    o.srb_status,
                    o.sense_key()
                ));
            }
        }
        eject(io, k, lun.target, Some(&img))
    });

    // Requests the work refuses, each changing nothing.
    let small = mk("small.img", 100, 6);
    let empty = mk("empty.img", 0, 0);
    let plain = mk("plain.img", MIB, 7);
    let (Ok(small), Ok(empty), Ok(plain)) = (small, empty, plain) else {
        return;
    };
    let missing = f.dir.join("missing.img");
    let no_dir = f.dir.join("no-such-dir").join("x.img");
    let dir = f.dir.clone();
    type Prep<'a> = Box<dyn Fn() -> Result<PathBuf, String> + 'a>;
    /// (case, the file it mounts, kind, read-only, requester, the error it must get).
    type Refusal<'a> = (
        &'static str,
        Prep<'a>,
        DeviceKind,
        bool,
        Requester,
        ControlError,
    );
    let refusals: Vec<Refusal<'_>> = vec![
        (
            "mount_missing_file",
            Box::new(|| Ok(missing.clone())),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::FileNotFound,
        ),
        (
            "mount_missing_directory",
            Box::new(|| Ok(no_dir.clone())),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::FileNotFound,
        ),
        (
            "mount_directory",
            Box::new(|| Ok(dir.clone())),
            DeviceKind::CdRom,
            true,
            Requester::Admin,
            ControlError::FileNotFound,
        ),
        (
            "mount_empty_file",
            Box::new(|| Ok(empty.clone())),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::FileTooSmall,
        ),
        (
            "mount_file_shorter_than_a_block",
            Box::new(|| Ok(small.clone())),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::FileTooSmall,
        ),
        (
            "mount_locked_file",
            Box::new(|| {
                let p = mk("locked.img", MIB, 8)?;
                k.lock_file(&p, true)?;
                Ok(p)
            }),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::SharingViolation,
        ),
        (
            "mount_denied_file",
            Box::new(|| {
                let p = mk("denied.img", MIB, 9)?;
                k.deny_file(&p)?;
                Ok(p)
            }),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::AccessDenied,
        ),
        (
            "mount_read_only_file_for_write",
            Box::new(|| {
                let p = mk("readonly.img", MIB, 10)?;
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o444))
                    .map_err(|e| e.to_string())?;
                Ok(p)
            }),
            DeviceKind::Disk,
            false,
            Requester::Admin,
            ControlError::AccessDenied,
        ),
        (
            "mount_compressed_file",
            Box::new(|| {
                let p = mk("compressed.iso", MIB, 11)?;
                k.set_file_attributes(&p, FILE_ATTRIBUTE_COMPRESSED)?;
                Ok(p)
            }),
            DeviceKind::CdRom,
            true,
            Requester::Admin,
            ControlError::UnsupportedFile,
        ),
        (
            "mount_encrypted_file",
            Box::new(|| {
                let p = mk("encrypted.img", MIB, 13)?;
                k.set_file_attributes(&p, FILE_ATTRIBUTE_ENCRYPTED)?;
                Ok(p)
            }),
            DeviceKind::Disk,
            true,
            Requester::Admin,
            ControlError::UnsupportedFile,
        ),
        (
            "mount_by_filtered_admin",
            Box::new(|| Ok(plain.clone())),
            DeviceKind::Disk,
            true,
            Requester::Filtered,
            ControlError::NotAdministrator,
        ),
        (
            "mount_by_user",
            Box::new(|| Ok(plain.clone())),
            DeviceKind::Disk,
            true,
            Requester::User,
            ControlError::NotAdministrator,
        ),
        (
            "mount_without_requester_thread",
            Box::new(|| Ok(plain.clone())),
            DeviceKind::Disk,
            true,
            Requester::NoThread,
            ControlError::NotAdministrator,
        ),
        (
            "mount_without_requester_irp",
            Box::new(|| Ok(plain.clone())),
            DeviceKind::Disk,
            true,
            Requester::NoIrp,
            ControlError::NotAdministrator,
        ),
    ];
    for (name, prep, kind, ro, who, want) in refusals {
        case(name, &mut |io| {
            let held = k.mdl_bytes().0;
            let p = prep()?;
            let units = nt(&p);
            let path = NtPath::new(&units).map_err(|e| format!("{e:?}"))?;
            let got = refused(
                io,
                &Control::MountFile {
                    kind,
                    read_only: ro,
                    path,
                },
                who,
            );
            expect(got, want)?;
            unchanged(io, k, first_raw, &[&p, &plain], held)
        });
    }
}
