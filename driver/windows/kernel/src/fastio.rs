//! The fast path of disk-backed READ/WRITE (`docs/driver.md` "The fast path",
//! `docs/windows-integration.md` §8.5): HwStartIo sends a request that is one whole-sector piece
//! of one extent to the backing disk itself, as an asynchronous IRP
//! (`IoBuildAsynchronousFsdRequest` + `IofCallDriver`), and the IRP's completion routine
//! completes the SRB. No thread hand-off remains. StorPort only: SCSIPORT notifies only from its
//! own callbacks, so `rvblkxp.sys` keeps the worker for every disk request.
//!
//! Bookkeeping, all in the disk path's pool object: [`SLOTS`] IRP slots per adapter (no
//! allocation of the driver's own per request), a reference count per slot so that the worker's
//! cancel of a stale IRP and the IRP's completion may race, and a per-LUN in-flight count so that
//! the worker closes a removed disk, and the adapter stops, only once every IRP sent to it has
//! completed.
//!
//! Kernel-wrapper module: the imports and their `# Safety` contracts are here; the decisions are
//! the core's (`rvblk_core::fastio`).

use crate::backed::{DiskLun, DiskPath};
use crate::extension::AdapterRef;
use crate::io::{Buffer, PortBuffers};
use crate::srb::{QueuedSrb, Srb};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use rvblk_abi::{AlignedI64, IoStatusBlock, Irp, Mdl};
use rvblk_core::discovery::MAX_DISK_IMAGES;
use rvblk_core::fastio::{fast_plan, irp_result, FastIo};
use rvblk_core::scsi::MediumError;
use rvblk_core::srb::{BufferUse, DataBuffer, SrbFlags};
use rvblk_irql::{Dispatch, Passive};

crate::kernel_imports!("ntoskrnl.exe", "system" {
    fn IoBuildAsynchronousFsdRequest(
        major: u32,
        device: *mut c_void,
        buffer: *mut c_void,
        length: u32,
        offset: *const AlignedI64,
        iosb: *mut IoStatusBlock,
    ) -> *mut Irp;
    fn IoFreeIrp(irp: *mut Irp);
    fn IoFreeMdl(mdl: *mut Mdl);
    fn MmUnlockPages(mdl: *mut Mdl);
    fn IoGetRemainingStackSize() -> usize;
});

/// `KeGetCurrentIrql`, looked up by name (§8.5): a HAL export on x86 and an ntoskrnl export on
/// Windows 7+ x64 and arm64, but not an export at all on NT 5.2 x64 (XP x64 / Server 2003 x64,
/// where wdm.h reads CR8 inline), so an import would keep `rvblkxp.sys` from loading there.
type GetCurrentIrql = unsafe extern "system" fn() -> u8;
/// `KeAreAllApcsDisabled` (Server 2003 and later; not exported by XP), looked up by name for the
/// inline file path (`docs/control.md` §10.5): TRUE when the thread cannot take special kernel
/// APCs, which a synchronous ZwReadFile needs for its completion.
type AreAllApcsDisabled = unsafe extern "system" fn() -> u8;

/// IRPs in flight at once per adapter; a request that finds none free takes the worker.
pub const SLOTS: usize = 32;
/// APC_LEVEL: the highest IRQL at which the fast path sends an IRP (a disk's read/write
/// dispatch routine is documented for ≤ APC_LEVEL; §8.5).
const APC_LEVEL: u8 = 1;
/// Kernel stack the fast path leaves to the disk stack, which runs on HwStartIo's stack when
/// the disk completes inline (§8.5).
#[cfg(target_pointer_width = "64")]
pub const STACK_MARGIN: usize = 10 * 1024;
#[cfg(target_pointer_width = "32")]
pub const STACK_MARGIN: usize = 6 * 1024;
/// Kernel stack HwStartIo leaves to the file system (and its filters) under an inline
/// ZwReadFile of a file LUN (`docs/control.md` §10.5); with less, the worker reads.
#[cfg(target_pointer_width = "64")]
pub const FILE_STACK_MARGIN: usize = 16 * 1024;
#[cfg(target_pointer_width = "32")]
pub const FILE_STACK_MARGIN: usize = 8 * 1024;
/// A fast IRP older than this is cancelled by the worker (the worker's synchronous IRPs use
/// the same bound, `crate::ntio::IRP_TIMEOUT_100NS`).
pub const CANCEL_AFTER_MS: u32 = (crate::ntio::IRP_TIMEOUT_100NS / 10_000) as u32;

/// The request an IRP slot carries, from HwStartIo to the completion routine.
struct Request {
    srb: QueuedSrb,
    io: FastIo,
    flags: SrbFlags,
    lun: u8,
}

/// One IRP slot.
pub struct Slot {
    /// Claimed by HwStartIo (until the last reference is released).
    busy: AtomicBool,
    /// References on the IRP: 1 for its completion, +1 while the worker cancels it. The one
    /// that drops it to 0 frees the IRP and the slot.
    refs: AtomicU32,
    /// Bumped at every claim: a canceller holding a reference checks it is the same IRP.
    generation: AtomicU32,
    /// The worker's own watch (only its thread reads or writes these): the generation it last
    /// saw busy, and since when (`Instant::millis32`). An IRP's age is counted from the first
    /// look that saw it, so HwStartIo reads no clock per request.
    watched: AtomicBool,
    watched_generation: AtomicU32,
    watched_since_ms: AtomicU32,
    cancelled: AtomicBool,
    irp: AtomicPtr<Irp>,
    /// Written by HwStartIo before the IRP is sent, taken by the completion routine.
    request: UnsafeCell<Option<Request>>,
    /// The `IO_STATUS_BLOCK` the IRP was built with (the completion reads the IRP's own).
    iosb: UnsafeCell<IoStatusBlock>,
    owner: AtomicPtr<FastPath>,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            busy: AtomicBool::new(false),
            refs: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            watched: AtomicBool::new(false),
            watched_generation: AtomicU32::new(0),
            watched_since_ms: AtomicU32::new(0),
            cancelled: AtomicBool::new(false),
            irp: AtomicPtr::new(null_mut()),
            request: UnsafeCell::new(None),
            iosb: UnsafeCell::new(IoStatusBlock::default()),
            owner: AtomicPtr::new(null_mut()),
        }
    }
}

// SAFETY: `request` and `iosb` are reached only by the slot's claimer before the IRP is sent
// and by the IRP's completion (ordered by IofCallDriver / the refs counter); everything else is
// atomic.
unsafe impl Sync for Slot {}
// SAFETY: as above.
unsafe impl Send for Slot {}

/// The backing disk of one LUN as the fast path sees it.
#[derive(Default)]
pub struct FastLun {
    /// The disk's device object while the LUN is live and the worker holds the disk open; NULL
    /// otherwise.
    device: AtomicPtr<c_void>,
    sector: AtomicU32,
    /// Fast IRPs sent to `device` and not completed yet.
    inflight: AtomicU32,
}

/// The fast path's part of the disk path (`DiskPath::fast`).
#[derive(Default)]
pub struct FastPath {
    slots: [Slot; SLOTS],
    luns: [FastLun; MAX_DISK_IMAGES],
    /// The port's completion from any thread; `None`: no fast path (SCSIPORT).
    complete: Option<fn(AdapterRef, QueuedSrb)>,
    /// `KeGetCurrentIrql`; `None`: no fast path (the port has none, or this Windows does not
    /// export it).
    current_irql: Option<GetCurrentIrql>,
    /// `KeAreAllApcsDisabled`; `None`: no inline file I/O.
    apcs_disabled: Option<AreAllApcsDisabled>,
    adapter: Option<AdapterRef>,
    path: AtomicPtr<DiskPath>,
}

/// Proof that the current IRQL is ≤ APC_LEVEL, made only by [`BelowDispatch::now`].
struct BelowDispatch(());

impl BelowDispatch {
    /// `None` at DISPATCH_LEVEL, or when the IRQL cannot be read (no `KeGetCurrentIrql`).
    fn now(current_irql: Option<GetCurrentIrql>) -> Option<Self> {
        // SAFETY: the kernel's KeGetCurrentIrql (looked up by that name in `FastPath::init`)
        // takes nothing and may be called at any IRQL.
        let irql = unsafe { current_irql?() };
        (irql <= APC_LEVEL).then_some(BelowDispatch(()))
    }
}

fn remaining_stack() -> usize {
    // SAFETY: no arguments; any IRQL.
    unsafe { IoGetRemainingStackSize() }
}

impl FastPath {
    /// Fixes the slots' back pointers (the path is at its final pool address) and what the
    /// completion needs. `complete` is `None` for a port without completion from any thread.
    pub fn init(
        &mut self,
        path: *const DiskPath,
        adapter: AdapterRef,
        complete: Option<fn(AdapterRef, QueuedSrb)>,
        irql: &Passive,
    ) {
        let me: *mut FastPath = self;
        for s in self.slots.iter() {
            s.owner.store(me, Ordering::Relaxed);
        }
        self.adapter = Some(adapter);
        self.complete = complete;
        if complete.is_some() {
            let p = crate::ntio::system_routine(b"KeGetCurrentIrql", irql);
            // SAFETY: the kernel's KeGetCurrentIrql has exactly this signature (wdm.h) on every
            // architecture that exports it.
            self.current_irql = (!p.is_null())
                .then(|| unsafe { core::mem::transmute::<*mut c_void, GetCurrentIrql>(p) });
            if self.current_irql.is_none() {
                crate::rvblk_log!(
                    "KeGetCurrentIrql is not exported here: disk-backed I/O takes the worker"
                );
            }
            let p = crate::ntio::system_routine(b"KeAreAllApcsDisabled", irql);
            // SAFETY: the kernel's KeAreAllApcsDisabled has exactly this signature (wdm.h:
            // BOOLEAN (VOID)) wherever it is exported.
            self.apcs_disabled = (!p.is_null())
                .then(|| unsafe { core::mem::transmute::<*mut c_void, AreAllApcsDisabled>(p) });
        }
        self.path.store(path.cast_mut(), Ordering::Relaxed);
    }

    /// The worker opened LUN `lun`'s disk: fast requests may go to `device` from now on.
    pub fn publish(&self, lun: usize, device: *mut c_void, sector: u32) {
        if let Some(l) = self.luns.get(lun).filter(|_| self.complete.is_some()) {
            l.sector.store(sector, Ordering::SeqCst);
            l.device.store(device, Ordering::SeqCst);
        }
    }

    /// No new fast request goes to LUN `lun`'s disk (it was removed or is being closed).
    pub fn withdraw(&self, lun: usize) {
        if let Some(l) = self.luns.get(lun) {
            l.device.store(null_mut(), Ordering::SeqCst);
        }
    }

    /// Fast IRPs of LUN `lun` not completed yet.
    pub fn inflight(&self, lun: usize) -> u32 {
        self.luns
            .get(lun)
            .map_or(0, |l| l.inflight.load(Ordering::SeqCst))
    }

    /// Whether a fast IRP can be out: a disk is open to the fast path, or a slot is in use.
    pub fn watching(&self) -> bool {
        self.luns
            .iter()
            .any(|l| !l.device.load(Ordering::Relaxed).is_null())
            || self.busy_slots() > 0
    }

    /// Slots still in use (IRPs not freed yet).
    pub fn busy_slots(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.busy.load(Ordering::SeqCst))
            .count()
    }

    /// The worker's periodic look (its thread only): cancels every fast IRP that earlier looks
    /// have seen in flight for [`CANCEL_AFTER_MS`] or more (once; it still completes, with
    /// STATUS_CANCELLED → ABORTED COMMAND). ≤ DISPATCH.
    pub fn cancel_stale(&self, now_ms: u32) {
        for s in self.slots.iter() {
            s.cancel_if_stale(now_ms);
        }
    }

    /// HwStartIo's proof that it may call ZwReadFile/ZwWriteFile right here
    /// (`docs/control.md` §10.5): a StorPort adapter, PASSIVE_LEVEL, special kernel APCs
    /// enabled (the two conditions of their documented contract) and [`FILE_STACK_MARGIN`]
    /// of kernel stack left. `None` otherwise: the request takes the worker. The token must
    /// not outlive this HwStartIo call.
    pub fn passive_here(&self, _irql: &Dispatch) -> Option<Passive> {
        let (Some(current_irql), Some(apcs_disabled)) = (self.current_irql, self.apcs_disabled)
        else {
            return None;
        };
        // SAFETY: KeGetCurrentIrql and KeAreAllApcsDisabled (looked up by name in `init`) take
        // nothing and may be called at any IRQL.
        let passive = unsafe { current_irql() } == 0 && unsafe { apcs_disabled() } == 0;
        if !passive || remaining_stack() < FILE_STACK_MARGIN {
            return None;
        }
        // SAFETY: the thread runs at PASSIVE_LEVEL (just read), and HwStartIo neither raises
        // the IRQL nor returns before its caller drops the token (not Send: it stays here).
        Some(unsafe { Passive::new_unchecked() })
    }

    /// HwStartIo: sends `srb` for disk-backed LUN `index` as one asynchronous IRP when it is a
    /// fast candidate (`rvblk_core::fastio::fast_plan`), at ≤ APC_LEVEL with enough stack left.
    /// Gives the SRB back untouched otherwise (the worker serves it).
    pub fn try_start<'a>(
        &self,
        index: u8,
        lun: &DiskLun,
        mut srb: Srb<'a>,
        port: &impl PortBuffers,
        irql: &Dispatch,
    ) -> Result<(), Srb<'a>> {
        let Some(fl) = self.luns.get(usize::from(index)) else {
            return Err(srb);
        };
        if self.complete.is_none() || fl.device.load(Ordering::Relaxed).is_null() {
            return Err(srb);
        }
        let Some(below) = BelowDispatch::now(self.current_irql) else {
            return Err(srb);
        };
        if remaining_stack() < STACK_MARGIN {
            return Err(srb);
        }
        // Counted before the device is read again: the worker withdraws the device, then waits
        // for the count to drop to 0 before it closes the disk.
        fl.inflight.fetch_add(1, Ordering::SeqCst);
        let device = fl.device.load(Ordering::SeqCst);
        let sent = if device.is_null() {
            None
        } else {
            self.send(index, lun, fl, device, &mut srb, port, irql, &below)
        };
        match sent {
            Some((slot, irp)) => {
                let data = slot.data;
                // SAFETY: the slot was claimed by `send` and its IRP is not sent yet, so nothing
                // else reaches `request`.
                unsafe {
                    *slot.slot.request.get() = Some(Request {
                        srb: srb.defer(data),
                        io: slot.io,
                        flags: slot.flags,
                        lun: index,
                    })
                };
                slot.slot.refs.store(1, Ordering::Release);
                // SAFETY: an IRP built for `device` (referenced through the LUN's open disk, kept
                // open until `inflight` drops to 0), sent exactly once; its buffer is the SRB's
                // data buffer, valid until the SRB completes, which happens in the completion
                // routine at the earliest. ≤ APC_LEVEL (`below`). Nothing here touches the slot
                // after this call: the completion may already have reused it.
                unsafe { crate::ntio::call_driver(device, irp.cast()) };
                Ok(())
            }
            None => {
                fl.inflight.fetch_sub(1, Ordering::SeqCst);
                Err(srb)
            }
        }
    }

    /// Plans, claims a slot and builds the IRP (not sent yet).
    #[allow(clippy::too_many_arguments)]
    fn send<'s>(
        &'s self,
        index: u8,
        lun: &DiskLun,
        fl: &FastLun,
        device: *mut c_void,
        srb: &mut Srb<'_>,
        port: &impl PortBuffers,
        irql: &Dispatch,
        _below: &BelowDispatch,
    ) -> Option<(Claimed<'s>, *mut Irp)> {
        let _ = index;
        let (cdb, cdb_len) = srb.cdb();
        let flags = srb.flags();
        let (mut access, _) = srb.buffers();
        let mut buffer = Buffer::new(&mut access, port, irql);
        let data = buffer.get(BufferUse::MediumData)?;
        let base = data.as_mut_ptr();
        let io = fast_plan(
            &lun.target,
            &lun.image,
            &cdb[..cdb_len],
            flags,
            data,
            fl.sector.load(Ordering::SeqCst),
        )?;
        let slot = self.slots.iter().find(|s| {
            s.busy
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        let offset = AlignedI64(i64::try_from(io.disk).ok()?);
        let major = if io.write {
            rvblk_abi::IRP_MJ_WRITE
        } else {
            rvblk_abi::IRP_MJ_READ
        };
        // `io.buf + io.len` lies inside the data buffer (the plan's access was a sub-slice of it).
        let at = base.wrapping_add(io.buf);
        // SAFETY: ≤ APC_LEVEL (`_below`); `device` is a referenced disk device; the buffer is
        // `io.len` bytes of the SRB's locked data buffer (non-paged system address), valid until
        // the SRB completes; the offset is read during the call only; the status block is the
        // slot's, which outlives the IRP.
        let irp = unsafe {
            IoBuildAsynchronousFsdRequest(
                major,
                device,
                at.cast(),
                io.len as u32,
                &offset,
                slot.iosb.get(),
            )
        };
        if irp.is_null() {
            slot.busy.store(false, Ordering::Release);
            return None;
        }
        // IoSetCompletionRoutine(irp, completed, slot, TRUE, TRUE, TRUE): the next stack
        // location (the disk's) is CurrentStackLocation - 1 (IoGetNextIrpStackLocation).
        // SAFETY: a fresh IRP from IoBuildAsynchronousFsdRequest, not sent yet: it is ours, and
        // its stack has at least the disk's location below the current one.
        let current = unsafe { (*irp).current_stack_location };
        let next = current.wrapping_sub(1);
        // SAFETY: as above; the location belongs to the IRP, which we own until it is sent.
        unsafe {
            (*next).completion_routine = Some(completed);
        }
        // SAFETY: as above.
        unsafe {
            (*next).context = (slot as *const Slot).cast_mut().cast();
        }
        // SAFETY: as above.
        unsafe {
            (*next).control = rvblk_abi::SL_INVOKE_ON_SUCCESS
                | rvblk_abi::SL_INVOKE_ON_ERROR
                | rvblk_abi::SL_INVOKE_ON_CANCEL;
        }
        // The claimer is the generation's only writer (the slot is busy): no locked add.
        slot.generation.store(
            slot.generation.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Release,
        );
        slot.cancelled.store(false, Ordering::Relaxed);
        slot.irp.store(irp, Ordering::Release);
        Some((
            Claimed {
                slot,
                io,
                flags,
                data: base,
            },
            irp,
        ))
    }
}

/// A claimed slot with the request it will carry.
struct Claimed<'s> {
    slot: &'s Slot,
    io: FastIo,
    flags: SrbFlags,
    data: *mut u8,
}

impl Slot {
    fn owner(&self) -> &FastPath {
        // SAFETY: set once in `FastPath::init` to the path's own (pool, fixed) address before any
        // slot is claimed; the path outlives every IRP (the adapter stops only after every slot
        // is free).
        unsafe { &*self.owner.load(Ordering::Relaxed) }
    }

    /// Drops one reference; the last one frees the IRP (its MDL chain first) and the slot.
    fn release(&self) {
        if self.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last reference: no canceller holds the IRP any more, so a plain load and store
        // take it (no locked exchange on the request path).
        let irp = self.irp.load(Ordering::Acquire);
        self.irp.store(null_mut(), Ordering::Relaxed);
        if !irp.is_null() {
            // SAFETY: the last reference: the IRP completed (its routine ran) and no canceller
            // holds it, so it is ours to free, exactly once (only the last reference gets here).
            unsafe { free_irp(irp) };
        }
        self.busy.store(false, Ordering::Release);
    }

    fn cancel_if_stale(&self, now_ms: u32) {
        if !self.busy.load(Ordering::Acquire) {
            self.watched.store(false, Ordering::Relaxed);
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if !self.watched.load(Ordering::Relaxed)
            || self.watched_generation.load(Ordering::Relaxed) != generation
        {
            // First seen now: its age starts here.
            self.watched_generation.store(generation, Ordering::Relaxed);
            self.watched_since_ms.store(now_ms, Ordering::Relaxed);
            self.watched.store(true, Ordering::Relaxed);
            return;
        }
        let age = now_ms.wrapping_sub(self.watched_since_ms.load(Ordering::Relaxed));
        if age < CANCEL_AFTER_MS {
            return;
        }
        let mut r = self.refs.load(Ordering::Acquire);
        loop {
            if r == 0 {
                return;
            }
            match self
                .refs
                .compare_exchange(r, r + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => r = now,
            }
        }
        let same = self.generation.load(Ordering::Acquire) == generation;
        if same && !self.cancelled.swap(true, Ordering::AcqRel) {
            let irp = self.irp.load(Ordering::Acquire);
            if !irp.is_null() {
                // SAFETY: we hold a reference, so the IRP is not freed; it may complete
                // meanwhile, which IoCancelIrp tolerates for an IRP that still exists. ≤
                // DISPATCH (the worker at PASSIVE).
                unsafe { crate::ntio::cancel_irp(irp.cast()) };
            }
        }
        self.release();
    }
}

/// Unlocks and frees the IRP's MDL chain, then the IRP (the owner of an IRP from
/// IoBuildAsynchronousFsdRequest frees both; IoFreeIrp frees no MDL; §8.5).
///
/// # Safety
/// `irp` came from IoBuildAsynchronousFsdRequest, has completed, and nothing uses it any more.
unsafe fn free_irp(irp: *mut Irp) {
    // SAFETY: per the contract the IRP is ours.
    let mut mdl = unsafe { (*irp).head.mdl_address }.cast::<Mdl>();
    while !mdl.is_null() {
        // SAFETY: an MDL of the IRP's chain, ours per the contract.
        let next = unsafe { (*mdl).next };
        // SAFETY: as above.
        let locked = unsafe { (*mdl).mdl_flags } & rvblk_abi::MDL_PAGES_LOCKED != 0;
        if locked {
            // SAFETY: pages locked by the I/O manager for this IRP, unlocked once.
            unsafe { MmUnlockPages(mdl) };
        }
        // SAFETY: freed once; its successor was read before.
        unsafe { IoFreeMdl(mdl) };
        mdl = next;
    }
    // SAFETY: the IRP drops its MDL pointer before it goes (nothing reads it, but the I/O
    // manager's verifier would flag a dangling one), then is freed exactly once.
    unsafe { (*irp).head.mdl_address = null_mut() };
    // SAFETY: as above.
    unsafe { IoFreeIrp(irp) };
}

/// The IRP's completion routine (≤ DISPATCH, any thread): the SRB's answer, its completion,
/// then the slot's reference. Keeps the IRP (STATUS_MORE_PROCESSING_REQUIRED): the slot frees
/// it.
unsafe extern "system" fn completed(
    _device: *mut c_void,
    irp: *mut Irp,
    context: *mut c_void,
) -> i32 {
    // SAFETY: `context` is the slot `send` set for this IRP; slots live as long as the path.
    let slot = unsafe { &*context.cast::<Slot>() };
    // SAFETY: the IRP is complete and the I/O manager hands it to us.
    let (status, information) = unsafe {
        let s = &(*irp).head.io_status;
        (s.status as u32, s.information)
    };
    // SAFETY: set before the IRP was sent; the completion runs once per IRP, so nothing else
    // reaches it now.
    let request = unsafe { (*slot.request.get()).take() };
    let fast = slot.owner();
    // SAFETY: completion routines run at ≤ DISPATCH_LEVEL (§8.5); the token dies with this call.
    let irql = unsafe { Dispatch::new_unchecked() };
    if let Some(r) = request {
        finish(fast, r, status, information, &irql);
    }
    slot.release();
    rvblk_abi::STATUS_MORE_PROCESSING_REQUIRED
}

fn finish(fast: &FastPath, r: Request, status: u32, information: usize, irql: &Dispatch) {
    let Request {
        mut srb,
        io,
        flags,
        lun,
    } = r;
    let failed = {
        let mut view = srb.view();
        let (_, sense) = view.buffers();
        let (done, failed) = irp_result(&io, status, information, flags, sense);
        view.finish(&done);
        failed
    };
    if failed == Some(MediumError::Removed) {
        // SAFETY: set in `init`; the path outlives every IRP.
        let path = unsafe { &*fast.path.load(Ordering::Relaxed) };
        path.fast_removal(usize::from(lun), irql);
    }
    let lun_state = fast.luns.get(usize::from(lun));
    if let (Some(complete), Some(adapter)) = (fast.complete, fast.adapter) {
        complete(adapter, srb);
    }
    if let Some(l) = lun_state {
        l.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}
