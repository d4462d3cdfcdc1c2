//! Runtime LUNs (`docs/driver.md` "Runtime LUNs", `docs/control.md` §10): files mounted and RAM
//! disks created through the control interface, served by `rvblk.sys` (StorPort). Safe Rust
//! over `crate::ntmount`; every decision that does not need Windows is the core's
//! (`rvblk_core::control`, `rvblk_core::control::service`, `rvblk_core::backed::admit`).
//!
//! **Publication.** The table has one [`Slot`] per target id, allocated once when the adapter
//! starts and never moved. A slot is an atomic state byte ([`SlotState`]) and a reader-writer
//! spin lock around `Option<RuntimeLun>`. HwStartIo, on any CPU, never waits: it reads the
//! state and, when it says live, *tries* a read lock (one atomic add) and holds it while it
//! serves the request; a failed try is a LUN going away (NO DEVICE). Only the worker thread
//! writes: it builds a LUN completely, then stores it under the write lock and only afterwards
//! marks the slot live; to remove, it first marks the slot removing (HwStartIo stops taking
//! requests for it), serves what was queued, then waits — 1 ms at a time — until it gets the
//! write lock, i.e. until every request still reading the LUN has finished.

use crate::backed::{DiskPath, PortCalls, Queued, Route};
use crate::ntmount::{ClientSecurity, FileHandle, RamChunk, ThreadRef};
use crate::physmem::{PoolBuf, PoolVec};
use crate::readahead::ReadAheadBuffers;
use crate::rvblk_log;
use crate::srb::Srb;
use arrayvec::ArrayVec;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use rvblk_core::backed::{self as policy, LunState};
use rvblk_core::control::service::{
    self, file_length, open_error, requester_check, source_length, ChunkLayout, FileFacts,
    RequesterCheck, SlotState,
};
use rvblk_core::control::{
    self, ControlError, Decision, Limits, LunInfo, LunSummary, NtPath, Origin, Request, Served,
    Services, LUN_PATH_UNITS,
};
use rvblk_core::image::DeviceKind;
use rvblk_core::readahead::{self, Access};
use rvblk_core::scsi::{Medium, MediumError, ScsiTarget};
use rvblk_core::srb::{self as core_srb, status, BufferUse, SrbCompletion};
use rvblk_irql::{AtMostDispatch, Dispatch, Passive};

/// Target ids the adapter offers; a runtime slot exists for each.
pub const SLOTS: usize = crate::adapter::MAX_TARGETS;

/// What a runtime LUN's bytes live in.
enum Backing {
    /// A file opened by the worker; only the worker reads or writes it. `ahead`: its
    /// read-ahead buffers (`docs/control.md` §10.4), `None` when the pool could not give them.
    File {
        file: FileHandle,
        ahead: Option<ReadAheadBuffers>,
    },
    /// RAM-disk chunks, mapped: read and written in HwStartIo. A chunk UNMAP gave back is
    /// `None` (it reads as zeros) until a write needs it again; each has its own lock so the
    /// worker can take one away or put one back while HwStartIo uses the others.
    Ram {
        layout: ChunkLayout,
        chunks: PoolVec<Chunk>,
    },
}

/// One RAM-disk chunk's place: HwStartIo only ever *tries* its read lock (never waits); the
/// worker takes the write lock to remove or install the chunk.
pub type Chunk = spin::RwLock<Option<RamChunk>>;

/// One runtime LUN. Immutable while published, except `gone` (its file's volume went away).
pub struct RuntimeLun {
    pub target: ScsiTarget,
    pub origin: Origin,
    /// Which creation this is: a queued request that names another one is not served by it.
    generation: u32,
    backing: Backing,
    /// The path as the requester gave it (UTF-16LE bytes), for LIST LUNS; empty for none.
    path: Option<PoolBuf>,
    gone: AtomicBool,
}

impl RuntimeLun {
    fn info(&self, target_id: u8) -> LunInfo<'_> {
        let image = self.target.image();
        LunInfo {
            target_id,
            kind: image.kind,
            origin: self.origin,
            read_only: image.is_read_only(),
            block_size: image.block_size(),
            blocks: image.blocks(),
            path: self.path.as_deref().and_then(|p| NtPath::new(p).ok()),
        }
    }

    /// Gives everything back (PASSIVE: the worker; nothing uses the LUN any more).
    fn release(self, irql: &Passive) {
        match self.backing {
            Backing::File { file, ahead } => {
                drop(ahead);
                file.close(irql)
            }
            Backing::Ram { mut chunks, .. } => {
                while let Some(c) = chunks.pop() {
                    if let Some(c) = c.into_inner() {
                        c.free(irql);
                    }
                }
            }
        }
    }
}

/// One target id's runtime LUN (see the module documentation for the protocol).
#[derive(Default)]
pub struct Slot {
    state: AtomicU8,
    lun: spin::RwLock<Option<RuntimeLun>>,
}

impl Slot {
    pub fn state(&self) -> SlotState {
        SlotState::from_u8(self.state.load(Ordering::SeqCst))
    }

    /// Moves to `next` if the core allows it (only the worker calls this).
    fn become_(&self, next: SlotState) -> bool {
        let now = self.state();
        now.may_become(next) && {
            self.state.store(next as u8, Ordering::SeqCst);
            true
        }
    }

    /// The live LUN, read-locked for as long as the guard lives; `None` when the slot is not
    /// live or is being taken away right now. Never waits.
    pub fn pin(&self) -> Option<Pinned<'_>> {
        if !self.state().serves() {
            return None;
        }
        let guard = self.lun.try_read()?;
        guard.is_some().then_some(Pinned(guard))
    }
}

/// A live runtime LUN held for one request (a read lock on its slot).
pub struct Pinned<'a>(spin::RwLockReadGuard<'a, Option<RuntimeLun>>);

impl core::ops::Deref for Pinned<'_> {
    type Target = RuntimeLun;
    fn deref(&self) -> &RuntimeLun {
        // `pin` only makes a Pinned of a slot holding a LUN, and the read lock keeps it.
        self.0.as_ref().expect("pinned slot holds a LUN")
    }
}

/// The runtime table: [`SLOTS`] slots in pool (built once, in HwFindAdapter).
pub struct Runtime {
    slots: PoolVec<Slot>,
    generation: AtomicU32,
}

impl Runtime {
    pub fn new(irql: &Passive) -> Option<Self> {
        let mut slots = PoolVec::with_capacity(SLOTS, irql)?;
        for _ in 0..SLOTS {
            slots.push(Slot::default()).ok()?;
        }
        Some(Self {
            slots,
            generation: AtomicU32::new(0),
        })
    }

    pub fn slot(&self, path: u8, target: u8, lun: u8) -> Option<&Slot> {
        self.slots
            .get(usize::from(target))
            .filter(|_| path == 0 && lun == 0)
    }

    /// Admission's view of the runtime slots: every slot not empty, with its origin when live
    /// (a slot being built or removed is a runtime LUN of some origin; never a loader's).
    fn summaries(&self) -> impl Iterator<Item = LunSummary> + Clone + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state().occupied())
            .map(|(t, s)| LunSummary {
                target_id: t as u8,
                origin: s.pin().map_or(Origin::File, |l| l.origin),
            })
    }
}

/// The RAM a RAM disk may take: what Windows manages, and on x86 no more than one image may
/// map (`crate::medium::Budget::NT6`, `docs/x86-mapping.md`): every chunk stays mapped.
fn ram_limit(os_ram: u64) -> u64 {
    #[cfg(target_arch = "x86")]
    {
        os_ram.min(crate::medium::Budget::NT6.whole_limit)
    }
    #[cfg(not(target_arch = "x86"))]
    {
        os_ram
    }
}

/// The adapter's LUNs (loader RAM images, disk-backed images, runtime LUNs) for LIST LUNS and
/// admission, with the runtime LUNs pinned while the table is used.
fn with_table<R>(
    state: &crate::port::DeviceState,
    path: &DiskPath,
    f: impl FnOnce(&[LunInfo<'_>], &Limits) -> R,
) -> R {
    let pins: ArrayVec<(u8, Pinned<'_>), SLOTS> = path
        .runtime()
        .map(|rt| {
            rt.slots
                .iter()
                .enumerate()
                .filter_map(|(t, s)| s.pin().map(|p| (t as u8, p)))
                .collect()
        })
        .unwrap_or_default();
    let mut infos: ArrayVec<LunInfo<'_>, SLOTS> =
        crate::control::boot_luns(&state.adapter, Some(path));
    for (t, p) in &pins {
        if !infos.iter().any(|i| i.target_id == *t) {
            let _ = infos.try_push(p.info(*t));
        }
    }
    infos.sort_unstable_by_key(|i| i.target_id);
    let limits = Limits {
        max_targets: SLOTS as u8,
        ram_bytes: ram_limit(state.ram_bytes),
        max_path_units: LUN_PATH_UNITS,
        services: if path.runtime().is_some() {
            Services::all()
        } else {
            Services::empty()
        },
    };
    f(&infos, &limits)
}

/// Who asked, as captured in HwStartIo (`docs/control.md` §6.3).
pub enum Requester {
    Kernel,
    /// A user-mode requester's thread, referenced.
    User(ThreadRef),
    Unknown,
}

/// A queued control request.
pub struct ControlJob {
    requester: Requester,
}

impl ControlJob {
    /// Drops the job without serving it (the worker has no memory to): its thread reference
    /// goes back.
    pub fn abandon(self, irql: &impl AtMostDispatch) {
        if let Requester::User(t) = self.requester {
            t.release(irql);
        }
    }
}

/// HwStartIo's SRB_FUNCTION_IO_CONTROL on StorPort: LIST and every refusal at once (the core's
/// `serve`), admitted work captured and queued for the worker.
pub fn io_control<'a>(
    state: &crate::port::DeviceState,
    path: &DiskPath,
    mut srb: Srb<'a>,
    irql: &Dispatch,
) -> Result<(), Srb<'a>> {
    let (served, data) = {
        let (mut access, _) = srb.buffers();
        let buf = access.mapped(BufferUse::Parameters).unwrap_or(&mut []);
        let served = with_table(state, path, |luns, limits| {
            control::serve(buf, luns, limits)
        });
        (served, buf.as_mut_ptr())
    };
    let done = match served {
        Served::Done(c) => c,
        Served::Admitted { .. } => {
            let (facts, thread) = srb.requester();
            let requester = match (requester_check(facts), thread) {
                (RequesterCheck::Kernel, _) => Requester::Kernel,
                // The worker needs the thread after this SRB's view is gone: referenced here,
                // released by the worker (`docs/control.md` §6.3).
                (RequesterCheck::Impersonate, Some(t)) => Requester::User(t.reference(irql)),
                _ => Requester::Unknown,
            };
            let job = ControlJob { requester };
            return match path.enqueue_route(Route::Control(job), srb, data, irql) {
                Ok(()) => Ok(()),
                Err((mut srb, route)) => {
                    if let Route::Control(job) = route {
                        job.abandon(irql);
                    }
                    srb.set_status(status::BUSY);
                    Err(srb)
                }
            };
        }
    };
    srb.finish(&SrbCompletion {
        srb_status: done.srb_status,
        scsi_status: 0,
        data_transfer_length: done.data_transfer_length,
        sense_length: 0,
    });
    Err(srb)
}

/// HwStartIo for a live runtime LUN. RAM disks are served here; file LUNs queue what moves
/// medium data. `Err` gives the SRB back completed-in-place (the caller completes it).
pub fn start_io<'a, P: crate::backed::PortCalls>(
    path: &DiskPath,
    target_id: u8,
    lun: Pinned<'_>,
    mut srb: Srb<'a>,
    port: &impl crate::io::PortBuffers,
    irql: &Dispatch,
) -> Result<(), Srb<'a>> {
    let (cdb, cdb_len) = srb.cdb();
    let cdb = &cdb[..cdb_len];
    let (flags, length) = (srb.flags(), srb.transfer_length());
    match &lun.backing {
        Backing::Ram { layout, chunks } => {
            let present = |i: usize| {
                // A chunk being changed right now counts as present: the write then finds out
                // (BUSY, retried) rather than queueing for nothing.
                chunks
                    .get(i)
                    .is_some_and(|c| c.try_read().is_none_or(|g| g.is_some()))
            };
            let bs = lun.target.image().block_size();
            if service::ram_admission(cdb, bs, layout, present) == service::RamAdmission::Queue {
                let route = Route::Runtime {
                    target: target_id,
                    generation: lun.generation,
                };
                return crate::io::queue(path, route, srb, port, irql);
            }
            let medium = RamMedium {
                layout,
                chunks,
                worker: None,
            };
            let done = crate::io::execute_with(&mut srb, port, irql, |target_buf, sense| {
                core_srb::execute_scsi(&lun.target, cdb, flags, length, target_buf, sense, &medium)
            });
            srb.finish(&done);
            Err(srb)
        }
        Backing::File { file, ahead } => {
            let state = if lun.gone.load(Ordering::Acquire) {
                LunState::Removed
            } else {
                LunState::Live
            };
            match policy::admit(state, cdb) {
                policy::Admission::Queue => {
                    let bs = lun.target.image().block_size();
                    let access = readahead::classify(cdb, bs);
                    if let Some(ahead) = ahead {
                        // A READ a read-ahead buffer holds is served here, at once.
                        if crate::io::serve_read_ahead_hit(
                            ahead,
                            &lun.target,
                            access,
                            &mut srb,
                            path,
                            port,
                            irql,
                        ) {
                            return Err(srb);
                        }
                        // Buffers a WRITE overlaps stop serving before it is queued.
                        if let Access::Write { offset, len } = access {
                            ahead.write_queued(offset, len, irql);
                        }
                    }
                    // HwStartIo at PASSIVE_LEVEL reads the file itself, straight into the
                    // SRB's buffer (`docs/control.md` §10.5); anywhere else the worker does. A
                    // port without runtime LUNs never gets here, and must not import the file
                    // calls (`PortCalls::RUNTIME_LUNS`).
                    let here = match access {
                        Access::Read { .. } if P::RUNTIME_LUNS => path.fast().passive_here(irql),
                        _ => None,
                    };
                    if let Some(here) = here {
                        let done = crate::io::execute_with(&mut srb, port, irql, |b, sense| {
                            file_io(&lun, target_id, file, cdb, flags, length, b, sense, &here)
                        });
                        srb.finish(&done);
                        return Err(srb);
                    }
                    let route = Route::Runtime {
                        target: target_id,
                        generation: lun.generation,
                    };
                    // Queued while the LUN is still pinned: a REMOVE waits for this pin to go
                    // and then serves what was queued (`remove`).
                    let queued = crate::io::queue(path, route, srb, port, irql);
                    if let (Err(_), Some(ahead), Access::Write { .. }) = (&queued, ahead, access) {
                        // Not queued after all (BUSY): the write will come again.
                        ahead.write_done(irql);
                    }
                    queued
                }
                policy::Admission::Refuse(sense) => {
                    let (_, sense_buf) = srb.buffers();
                    let done = core_srb::complete(
                        &rvblk_core::scsi::Outcome::check_condition(sense),
                        flags,
                        sense_buf,
                    );
                    srb.finish(&done);
                    Err(srb)
                }
                policy::Admission::NoDevice => {
                    srb.set_status(status::NO_DEVICE);
                    Err(srb)
                }
                policy::Admission::Now => {
                    let done = crate::io::execute_with(&mut srb, port, irql, |b, sense| {
                        core_srb::execute_scsi(
                            &lun.target,
                            cdb,
                            flags,
                            length,
                            b,
                            sense,
                            &crate::io::Untouched,
                        )
                    });
                    srb.finish(&done);
                    Err(srb)
                }
            }
        }
    }
}

/// A RAM disk's bytes: the mapped chunks, split by the core's [`ChunkLayout::spans`]. In
/// HwStartIo (`worker: None`) a chunk whose lock the worker holds answers BUSY (retried); only
/// the worker gives chunks back (UNMAP).
struct RamMedium<'m> {
    layout: &'m ChunkLayout,
    chunks: &'m [Chunk],
    worker: Option<&'m Passive>,
}

impl Medium for RamMedium<'_> {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        let spans = self
            .layout
            .spans(offset, dst.len())
            .ok_or(MediumError::Unreadable)?;
        for s in spans {
            let c = self.chunks.get(s.chunk).ok_or(MediumError::Unreadable)?;
            let c = c.try_read().ok_or(MediumError::Busy)?;
            let dst = &mut dst[s.buf..s.buf + s.len];
            match c.as_ref() {
                Some(c) => c.copy_out(s.within, dst),
                // Given back by UNMAP: nothing was written since.
                None => dst.fill(0),
            }
        }
        Ok(())
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        let spans = self
            .layout
            .spans(offset, src.len())
            .ok_or(MediumError::Unreadable)?;
        for s in spans {
            let c = self.chunks.get(s.chunk).ok_or(MediumError::Unreadable)?;
            let c = c.try_read().ok_or(MediumError::Busy)?;
            // An absent chunk here was given back after admission: retried, then queued.
            let c = c.as_ref().ok_or(MediumError::Busy)?;
            c.copy_in(s.within, &src[s.buf..s.buf + s.len]);
        }
        Ok(())
    }

    /// Gives back every chunk wholly inside the range (`ChunkLayout::whole_chunks`); the rest
    /// of the range keeps its memory. Only on the worker.
    fn unmap(&self, offset: u64, len: u64) -> Result<(), MediumError> {
        let irql = self.worker.ok_or(MediumError::Busy)?;
        for i in self.layout.whole_chunks(offset, len) {
            let Some(place) = self.chunks.get(i) else {
                continue;
            };
            let chunk = write_locked(place, irql, |c| c.take());
            if let Some(c) = chunk {
                c.free(irql);
            }
        }
        Ok(())
    }
}

/// Runs `f` under the chunk's write lock (the worker, PASSIVE): requests in HwStartIo hold the
/// read lock only for one copy, so this waits 1 ms at a time until they are done.
fn write_locked<R>(place: &Chunk, irql: &Passive, f: impl FnOnce(&mut Option<RamChunk>) -> R) -> R {
    let pause = crate::ntio::Event::default();
    pause.init(false, irql);
    loop {
        if let Some(mut g) = place.try_write() {
            return f(&mut g);
        }
        pause.wait(Some(10_000), irql);
    }
}

/// Gives a RAM disk memory again wherever `[offset, offset + len)` reaches a chunk UNMAP took
/// away (the worker, before it serves the write). False when the machine cannot give it.
fn repopulate(
    layout: &ChunkLayout,
    chunks: &[Chunk],
    no_execute: bool,
    offset: u64,
    len: usize,
    irql: &Passive,
) -> bool {
    let Some(spans) = layout.spans(offset, len) else {
        return true;
    };
    let mut last = usize::MAX;
    for s in spans {
        if s.chunk == last {
            continue;
        }
        last = s.chunk;
        let Some(place) = chunks.get(s.chunk) else {
            continue;
        };
        if place.try_read().is_none_or(|g| g.is_some()) {
            continue;
        }
        // Allocated outside the lock (it may take long); put in place under it.
        let Some(new) = RamChunk::allocate(layout.alloc_len(s.chunk) as usize, no_execute, irql)
        else {
            return false;
        };
        let spare = write_locked(place, irql, |c| match c {
            Some(_) => Some(new),
            None => {
                *c = Some(new);
                None
            }
        });
        if let Some(spare) = spare {
            spare.free(irql);
        }
    }
    true
}

/// A file LUN's bytes, on the worker.
struct FileMedium<'m> {
    file: &'m FileHandle,
    irql: &'m Passive,
    failed: Cell<Option<MediumError>>,
}

impl FileMedium<'_> {
    fn fail(&self, st: i32) -> MediumError {
        let e = policy::medium_error(st as u32);
        self.failed.set(Some(e));
        e
    }
}

impl Medium for FileMedium<'_> {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        let n = self
            .file
            .read(offset, dst, self.irql)
            .map_err(|st| self.fail(st))?;
        if n < dst.len() {
            // The file got shorter than the LUN: those blocks are not there any more.
            return Err(self.fail(service::ntstatus::STATUS_END_OF_FILE as i32));
        }
        Ok(())
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        let n = self
            .file
            .write(offset, src, self.irql)
            .map_err(|st| self.fail(st))?;
        if n < src.len() {
            return Err(self.fail(0xC000_007Fu32 as i32)); // STATUS_DISK_FULL
        }
        Ok(())
    }
}

/// The worker: serves one queued command of a runtime LUN (a file LUN's READ/WRITE, a RAM
/// disk's UNMAP or a write that needs memory again) and completes it.
pub fn serve_queued<P: PortCalls>(
    path: &DiskPath,
    target: u8,
    generation: u32,
    mut q: Queued,
    irql: &Passive,
) {
    let slot = path.runtime().and_then(|rt| rt.slot(0, target, 0));
    // The worker is the only writer, so a read lock is there unless a request on another CPU
    // holds... only readers: it is granted.
    let guard = slot.and_then(|s| s.lun.try_read());
    let lun = guard
        .as_ref()
        .and_then(|g| g.as_ref())
        .filter(|l| l.generation == generation);
    {
        let mut srb = q.srb.view();
        let (flags, length) = (srb.flags(), srb.transfer_length());
        let (cdb, cdb_len) = srb.cdb();
        match lun {
            Some(lun) => {
                let done = if let Backing::Ram { layout, chunks } = &lun.backing {
                    let bs = lun.target.image().block_size();
                    let room =
                        service::write_range(&cdb[..cdb_len], bs).is_none_or(|(offset, len)| {
                            repopulate(layout, chunks, path.win8(), offset, len, irql)
                        });
                    let (mut access, sense) = srb.buffers();
                    if room {
                        let medium = RamMedium {
                            layout,
                            chunks,
                            worker: Some(irql),
                        };
                        core_srb::execute_scsi(
                            &lun.target,
                            &cdb[..cdb_len],
                            flags,
                            length,
                            &mut crate::backed::Mapped(&mut access),
                            sense,
                            &medium,
                        )
                    } else {
                        rvblk_log!(
                            "runtime lun {}: no memory to write where UNMAP gave it back",
                            target
                        );
                        core_srb::complete(&MediumError::Unreadable.outcome(true), flags, sense)
                    }
                } else if let Backing::File { file, ahead } = &lun.backing {
                    let bs = lun.target.image().block_size();
                    let access = readahead::classify(&cdb[..cdb_len], bs);
                    let done = file_command(
                        lun,
                        target,
                        file,
                        ahead.as_ref(),
                        &cdb[..cdb_len],
                        &mut srb,
                        irql,
                    );
                    if let (Some(ahead), Access::Write { .. }) = (ahead, access) {
                        // Served (or refused): fills may read the file again.
                        ahead.write_done(irql);
                    }
                    done
                } else {
                    unreachable!("a LUN is backed by RAM or by a file")
                };
                srb.finish(&done);
            }
            None => srb.set_status(status::NO_DEVICE),
        }
    }
    drop(guard);
    crate::backed::complete::<P>(path, q.srb, irql);
}

/// The worker's part of one queued command of a file LUN: a READ a read-ahead buffer filled
/// meanwhile holds is copied from it; everything else goes to the file.
#[allow(clippy::too_many_arguments)]
fn file_command(
    lun: &RuntimeLun,
    target: u8,
    file: &FileHandle,
    ahead: Option<&ReadAheadBuffers>,
    cdb: &[u8],
    srb: &mut Srb<'_>,
    irql: &Passive,
) -> SrbCompletion {
    let (flags, length) = (srb.flags(), srb.transfer_length());
    if let (Some(ahead), false) = (ahead, lun.gone.load(Ordering::Acquire)) {
        if let Some(done) = crate::backed::queued_hit(ahead, &lun.target, cdb, srb, irql) {
            return done;
        }
    }
    let (mut buffers, sense) = srb.buffers();
    let mut buffer = crate::backed::Mapped(&mut buffers);
    file_io(
        lun,
        target,
        file,
        cdb,
        flags,
        length,
        &mut buffer,
        sense,
        irql,
    )
}

/// One command of a file LUN against the file itself, at PASSIVE_LEVEL (the worker, or
/// HwStartIo when it runs there: `docs/control.md` §10.5). A LUN whose file went away answers
/// NOT READY; a failed file call becomes sense data and a log line.
#[allow(clippy::too_many_arguments)]
fn file_io(
    lun: &RuntimeLun,
    target: u8,
    file: &FileHandle,
    cdb: &[u8],
    flags: rvblk_core::srb::SrbFlags,
    length: u32,
    buffer: &mut impl rvblk_core::srb::DataBuffer,
    sense: &mut [u8],
    irql: &Passive,
) -> SrbCompletion {
    if lun.gone.load(Ordering::Acquire) {
        return core_srb::complete(&MediumError::Removed.outcome(false), flags, sense);
    }
    let medium = FileMedium {
        file,
        irql,
        failed: Cell::new(None),
    };
    let done = core_srb::execute_scsi(&lun.target, cdb, flags, length, buffer, sense, &medium);
    if let Some(e) = medium.failed.get() {
        rvblk_log!(
            "runtime lun {}: file I/O failed ({:?}) for opcode {:#04x}",
            target,
            e,
            cdb[0]
        );
        if e == MediumError::Removed && !lun.gone.swap(true, Ordering::AcqRel) {
            rvblk_log!(
                "runtime lun {}: its file is gone; the LUN answers NOT READY (medium not present)",
                target
            );
        }
    }
    done
}

/// The worker, with nothing queued: one read-ahead fill for a streaming file LUN, if any
/// wants one (`docs/control.md` §10.4). True when it did one (the worker looks at its queue
/// again before the next).
pub fn read_ahead(path: &DiskPath, irql: &Passive) -> bool {
    let Some(rt) = path.runtime() else {
        return false;
    };
    rt.slots.iter().any(|slot| {
        let Some(lun) = slot.pin() else {
            return false;
        };
        match &lun.backing {
            Backing::File {
                file,
                ahead: Some(ahead),
            } if !lun.gone.load(Ordering::Acquire) => {
                let medium = FileMedium {
                    file,
                    irql,
                    failed: Cell::new(None),
                };
                ahead.fill_one(&medium, irql)
            }
            _ => false,
        }
    })
}

/// The caller's rights, established in the worker (`docs/control.md` §6.3).
enum Caller {
    Kernel,
    User {
        thread: ThreadRef,
        security: ClientSecurity,
    },
}

impl Caller {
    /// Decides who may act: a kernel-mode request is served; a user-mode one needs its
    /// security captured and an administrator's token; anything else is refused. Every
    /// reference taken for a refused requester is released here.
    fn establish(requester: Requester, irql: &Passive) -> Result<Self, ControlError> {
        match requester {
            Requester::Kernel => Ok(Caller::Kernel),
            Requester::Unknown => Err(ControlError::NotAdministrator),
            Requester::User(thread) => {
                let security = match ClientSecurity::capture(&thread, irql) {
                    Ok(s) => s,
                    Err(st) => {
                        rvblk_log!(
                            "control: cannot capture the requester's security ({:#x})",
                            st as u32
                        );
                        thread.release(irql);
                        return Err(ControlError::NotAdministrator);
                    }
                };
                if !security.is_admin(irql) {
                    security.release(irql);
                    thread.release(irql);
                    return Err(ControlError::NotAdministrator);
                }
                Ok(Caller::User { thread, security })
            }
        }
    }

    /// Opens `path` as the caller: impersonating a user-mode requester with every access check
    /// forced, reverting before anything else happens.
    fn open(
        &mut self,
        path: &[u16],
        write: bool,
        irql: &Passive,
    ) -> Result<FileHandle, ControlError> {
        let r = match self {
            Caller::Kernel => FileHandle::open(path, write, false, irql),
            Caller::User { security, .. } => security
                .impersonating(irql, |irql| FileHandle::open(path, write, true, irql))
                .map_err(|st| {
                    rvblk_log!("control: impersonation failed ({:#x})", st as u32);
                    0xC000_0022u32 as i32
                })
                .and_then(|r| r),
        };
        r.map_err(|st| {
            rvblk_log!("control: opening the file failed ({:#x})", st as u32);
            open_error(st as u32)
        })
    }

    fn finish(self, irql: &Passive) {
        if let Caller::User { thread, security } = self {
            security.release(irql);
            thread.release(irql);
        }
    }
}

/// What an opened file says of itself.
fn facts(file: &FileHandle, irql: &Passive) -> Result<FileFacts, ControlError> {
    let standard = file.standard(irql).map_err(|_| ControlError::IoError)?;
    let basic = file.basic(irql).map_err(|_| ControlError::IoError)?;
    Ok(FileFacts {
        end_of_file: u64::try_from(standard.end_of_file.0).unwrap_or(0),
        directory: standard.directory != 0,
        attributes: basic.file_attributes,
    })
}

/// The worker's scratch for one path as UTF-16 units (a `UNICODE_STRING` buffer).
pub struct PathUnits(PoolVec<u16>);

impl PathUnits {
    pub fn new(irql: &Passive) -> Option<Self> {
        let mut v = PoolVec::with_capacity(LUN_PATH_UNITS, irql)?;
        for _ in 0..LUN_PATH_UNITS {
            v.push(0).ok()?;
        }
        Some(Self(v))
    }

    fn load(&mut self, p: NtPath<'_>) -> Option<&[u16]> {
        let n = p.copy_units(&mut self.0)?;
        Some(&self.0[..n])
    }
}

/// The worker's own state for control work.
pub struct ControlWorker {
    pub units: PathUnits,
    /// MdlMappingNoExecute is understood (Windows 8+).
    pub no_execute: bool,
}

/// The worker: serves one queued control request and completes it.
pub fn serve_control<P: PortCalls>(
    path: &DiskPath,
    w: &mut ControlWorker,
    q: Queued,
    irql: &Passive,
) {
    let Queued {
        route,
        srb: mut queued,
    } = q;
    let Route::Control(job) = route else {
        return crate::backed::complete::<P>(path, queued, irql);
    };
    let mut bus_change = false;
    {
        let mut srb = queued.view();
        let done = {
            let (mut access, _) = srb.buffers();
            let buf = access.mapped(BufferUse::Parameters).unwrap_or(&mut []);
            control_work::<P>(path, w, job, buf, &mut bus_change, irql)
        };
        srb.finish(&SrbCompletion {
            srb_status: done.srb_status,
            scsi_status: 0,
            data_transfer_length: done.data_transfer_length,
            sense_length: 0,
        });
    }
    crate::backed::complete::<P>(path, queued, irql);
    if bus_change {
        if let Some(adapter) = path.adapter_ref() {
            P::bus_changed(path, adapter);
        }
    }
}

fn control_work<P: PortCalls>(
    path: &DiskPath,
    w: &mut ControlWorker,
    job: ControlJob,
    buf: &mut [u8],
    bus_change: &mut bool,
    irql: &Passive,
) -> control::Completion {
    let mut caller = match Caller::establish(job.requester, irql) {
        Ok(c) => c,
        Err(e) => return control::reply_error(buf, e),
    };
    let result = work::<P>(path, w, &mut caller, buf, bus_change, irql);
    caller.finish(irql);
    match result {
        Ok(done) => done,
        Err(e) => {
            rvblk_log!("control: refused: {}", e);
            control::reply_error(buf, e)
        }
    }
}

fn work<P: PortCalls>(
    path: &DiskPath,
    w: &mut ControlWorker,
    caller: &mut Caller,
    buf: &mut [u8],
    bus_change: &mut bool,
    irql: &Passive,
) -> Result<control::Completion, ControlError> {
    let runtime = path.runtime().ok_or(ControlError::NotAvailable)?;
    // The request again, from the buffer HwStartIo admitted (ours until completion), and the
    // admission again against the table as it is now: the worker is the only one that changes
    // it, so this decision holds while the work is done.
    let parsed = control::parse(buf)?;
    let (fixed, ram_bytes) = path.fixed_luns();
    let mut luns: ArrayVec<LunSummary, SLOTS> = fixed
        .map(|target_id| LunSummary {
            target_id,
            origin: Origin::Loader,
        })
        .collect();
    for l in runtime.summaries() {
        if !luns.iter().any(|f| f.target_id == l.target_id) {
            let _ = luns.try_push(l);
        }
    }
    let limits = Limits {
        max_targets: SLOTS as u8,
        ram_bytes: ram_limit(ram_bytes),
        max_path_units: LUN_PATH_UNITS,
        services: Services::all(),
    };
    let decision = control::admit(&parsed.request, &luns, &limits)?;
    let seed_gen = runtime
        .generation
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_add(1);
    let lun = match (decision, parsed.request) {
        (
            Decision::Mount { target_id },
            Request::MountFile {
                kind,
                read_only,
                path: p,
            },
        ) => {
            let units = w.units.load(p).ok_or(ControlError::PathTooLong)?;
            let lun = mount(caller, units, p, kind, read_only, seed_gen, irql)?;
            (target_id, lun)
        }
        (
            Decision::CreateRamDisk { target_id },
            Request::CreateRamDisk {
                kind,
                read_only,
                size_bytes,
                source,
            },
        ) => {
            let lun = ram_disk(
                caller, w, kind, read_only, size_bytes, source, seed_gen, irql,
            )?;
            (target_id, lun)
        }
        (Decision::Remove { target_id }, _) => {
            // The bus change is reported inside, before the LUN's resources go.
            remove::<P>(path, runtime, target_id, irql)?;
            return Ok(control::reply_removed(buf, target_id));
        }
        // LIST is answered in HwStartIo; a decision that does not match its request is a core bug.
        _ => return Err(ControlError::NotAvailable),
    };
    let (target_id, lun) = lun;
    let slot = &runtime.slots[usize::from(target_id)];
    let info_done = {
        let mut g = slot.lun.write();
        *g = Some(lun);
        slot.become_(SlotState::Creating);
        slot.become_(SlotState::Live);
        let lun = g.as_ref().expect("just stored");
        let image = lun.target.image();
        rvblk_log!(
            "runtime lun {}: origin={} kind={} block_size={} blocks={} read_only={}",
            target_id,
            lun.origin.name(),
            image.kind,
            image.block_size(),
            image.blocks(),
            u8::from(image.is_read_only())
        );
        control::reply_lun(buf, &lun.info(target_id))
    };
    *bus_change = true;
    Ok(info_done)
}

fn mount(
    caller: &mut Caller,
    units: &[u16],
    p: NtPath<'_>,
    kind: DeviceKind,
    read_only: bool,
    seed: u32,
    irql: &Passive,
) -> Result<RuntimeLun, ControlError> {
    let read_only = read_only || kind == DeviceKind::CdRom;
    let file = caller.open(units, !read_only, irql)?;
    let length = match facts(&file, irql).and_then(|f| file_length(kind, f)) {
        Ok(l) => l,
        Err(e) => {
            file.close(irql);
            return Err(e);
        }
    };
    let Some(path) = copy_path(p, irql) else {
        file.close(irql);
        return Err(ControlError::InsufficientMemory);
    };
    let target = ScsiTarget::for_runtime(kind, length, read_only, u64::from(seed));
    let image = target.image();
    let bytes = image.blocks() * u64::from(image.block_size());
    // Read-ahead is an optimisation: without its memory the LUN is served all the same.
    let ahead = ReadAheadBuffers::allocate(bytes, irql);
    if ahead.is_none() {
        rvblk_log!(
            "file lun: no pool for {} KiB of read-ahead; served without it",
            readahead::WINDOW / 1024
        );
    }
    Ok(RuntimeLun {
        target,
        origin: Origin::File,
        generation: seed,
        backing: Backing::File { file, ahead },
        path: Some(path),
        gone: AtomicBool::new(false),
    })
}

fn copy_path(p: NtPath<'_>, irql: &Passive) -> Option<PoolBuf> {
    let bytes = p.as_le_bytes();
    let mut b = PoolBuf::new(bytes.len(), irql)?;
    b.copy_from_slice(bytes);
    Some(b)
}

#[allow(clippy::too_many_arguments)]
fn ram_disk(
    caller: &mut Caller,
    w: &mut ControlWorker,
    kind: DeviceKind,
    read_only: bool,
    size: u64,
    source: Option<NtPath<'_>>,
    seed: u32,
    irql: &Passive,
) -> Result<RuntimeLun, ControlError> {
    let layout = ChunkLayout::new(size);
    let mut chunks =
        PoolVec::with_capacity(layout.count(), irql).ok_or(ControlError::InsufficientMemory)?;
    let free_all = |mut chunks: PoolVec<Chunk>| {
        while let Some(c) = chunks.pop() {
            if let Some(c) = c.into_inner() {
                c.free(irql);
            }
        }
    };
    for i in 0..layout.count() {
        let len = layout.alloc_len(i) as usize;
        match RamChunk::allocate(len, w.no_execute, irql) {
            Some(c) => {
                if let Err(c) = chunks.push(spin::RwLock::new(Some(c))) {
                    if let Some(c) = c.into_inner() {
                        c.free(irql);
                    }
                }
            }
            None => {
                rvblk_log!(
                    "ram disk of {} bytes: chunk {} of {} not available; nothing created",
                    size,
                    i,
                    layout.count()
                );
                free_all(chunks);
                return Err(ControlError::InsufficientMemory);
            }
        }
    }
    let path = match source {
        None => None,
        Some(p) => {
            let filled = w
                .units
                .load(p)
                .ok_or(ControlError::PathTooLong)
                .and_then(|units| fill(caller, units, &mut chunks, size, irql));
            let copy =
                filled.and_then(|()| copy_path(p, irql).ok_or(ControlError::InsufficientMemory));
            match copy {
                Ok(b) => Some(b),
                Err(e) => {
                    free_all(chunks);
                    return Err(e);
                }
            }
        }
    };
    // A writable RAM disk gives memory back on UNMAP, a chunk at a time.
    let target = ScsiTarget::for_runtime(kind, size, read_only, u64::from(seed))
        .with_unmap(ChunkLayout::granularity_blocks(kind.block_size()));
    Ok(RuntimeLun {
        target,
        origin: Origin::RamDisk,
        generation: seed,
        backing: Backing::Ram { layout, chunks },
        path,
        gone: AtomicBool::new(false),
    })
}

/// Copies a source image into the chunks (read-only open as the caller).
fn fill(
    caller: &mut Caller,
    units: &[u16],
    chunks: &mut PoolVec<Chunk>,
    size: u64,
    irql: &Passive,
) -> Result<(), ControlError> {
    let file = caller.open(units, false, irql)?;
    let r = (|| {
        let len = facts(&file, irql).and_then(|f| source_length(size, f))?;
        let mut at = 0u64;
        for c in chunks.iter_mut().filter_map(|c| c.get_mut().as_mut()) {
            if at >= len {
                break;
            }
            let n = (len - at).min(c.len() as u64) as usize;
            let got = file
                .read(at, &mut c.bytes_mut()[..n], irql)
                .map_err(|_| ControlError::IoError)?;
            if got != n {
                return Err(ControlError::IoError);
            }
            at += n as u64;
        }
        Ok(())
    })();
    file.close(irql);
    r
}

/// REMOVE: offline, queued requests served, readers gone, then released.
fn remove<P: PortCalls>(
    path: &DiskPath,
    runtime: &Runtime,
    target_id: u8,
    irql: &Passive,
) -> Result<(), ControlError> {
    let slot = runtime
        .slots
        .get(usize::from(target_id))
        .ok_or(ControlError::NoSuchTarget)?;
    if !slot.become_(SlotState::Removing) {
        return Err(ControlError::Busy);
    }
    // HwStartIo takes no new pin now. Wait (1 ms at a time) until every request still holding
    // one has finished in HwStartIo or has been queued: the write lock is free then. Then serve
    // every queued request of the LUN, in order, and only then take the LUN out.
    let pause = crate::ntio::Event::default();
    pause.init(false, irql);
    while slot.lun.try_write().is_none() {
        pause.wait(Some(10_000), irql);
    }
    path.serve_queued_files::<P>(irql);
    let lun = loop {
        if let Some(mut g) = slot.lun.try_write() {
            break g.take();
        }
        pause.wait(Some(10_000), irql);
    };
    slot.become_(SlotState::Empty);
    if let Some(adapter) = path.adapter_ref() {
        P::bus_changed(path, adapter);
    }
    if let Some(lun) = lun {
        lun.release(irql);
    }
    rvblk_log!("runtime lun {}: removed", target_id);
    Ok(())
}

/// Releases every runtime LUN (the worker, at stop: no request in flight).
pub fn release_all(runtime: &Runtime, irql: &Passive) {
    for slot in runtime.slots.iter() {
        let lun = slot.lun.try_write().and_then(|mut g| g.take());
        slot.state.store(SlotState::Empty as u8, Ordering::SeqCst);
        if let Some(lun) = lun {
            lun.release(irql);
        }
    }
}

pub use rvblk_core::control::service::RAM_CHUNK;
