//! Disk-backed images (`docs/driver.md` "Disk-backed images"): the worker thread, its queue, disk
//! arrival and removal, identification of the backing disk, and the I/O through the extent list.
//! Safe Rust over `crate::ntio`; every decision that does not need Windows is the core's
//! (`rvblk_core::backed`, `rvblk_core::discovery::identify_backing_disk`).
//!
//! Contexts: HwStartIo (≤ DISPATCH) only reads the LUN states and pushes onto the queue under
//! its spin lock; the PnP callback (PASSIVE, not the worker) only copies a link name under the
//! same lock; the worker (PASSIVE, its own system thread) does everything that blocks.

use crate::extension::AdapterRef;
use crate::ntio::{Event, Instant, InterfaceChange, IoFailure, OpenDisk, SpinLocked};
use crate::physmem::PoolBuf;
use crate::readahead::ReadAheadBuffers;
use crate::rvblk_log;
use crate::srb::{QueuedSrb, Srb};
use arrayvec::ArrayVec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use rvblk_core::backed::{self as policy, LunState, Plan, Step};
use rvblk_core::discovery::{
    identify_backing_disk, BackingDisk, IdentifyRefusal, Unreadable, MAX_DISK_IMAGES,
};
use rvblk_core::image::DiskBackedImage;
use rvblk_core::log::DiskLunLine;
use rvblk_core::scsi::{Medium, MediumError, ScsiTarget};
use rvblk_core::srb::{self as core_srb, status, BufferUse, SrbCompletion};
use rvblk_irql::{AtMostDispatch, Passive};

/// SRBs waiting for the worker; one more is answered BUSY (the port retries it).
pub const QUEUE_DEPTH: usize = 64;
/// Disk interface names waiting for the worker; arrivals beyond it are dropped with a log line.
pub const MAX_ARRIVALS: usize = 16;
/// Longest symbolic link name kept (UTF-16 units); longer names are dropped with a log line.
pub const MAX_LINK: usize = 256;
/// Largest disk sector handled (the bounce buffer's size).
pub const MAX_SECTOR: usize = 4096;
/// Disk arrivals are identified together once no other disk interface has arrived for this
/// long (`docs/driver.md` "Identification": a cloned stick's two disks arrive one by one).
pub const SETTLE_QUIET_US: u64 = 300_000;
/// … but no later than this after the first arrival of the batch (a stream of arrivals cannot
/// hold identification off).
pub const SETTLE_MAX_US: u64 = 3_000_000;
/// After a wake that served requests the worker polls this long for the next one before it
/// sleeps (`docs/driver.md` "Disk-backed images", the queue; `docs/bench.md`).
pub const SPIN_US: u64 = 30;

/// What the port does for the worker: complete a pending SRB and announce a new LUN. StorPort
/// does both at once (`StorPortNotification`, callable from any thread at ≤ DISPATCH); SCSIPORT
/// allows its notifications only inside miniport callbacks, so its flavour hands both to the
/// path's [`Deferred`] queue, which its HwTimer drains (`docs/driver.md` "Disk-backed images",
/// SCSIPORT).
pub trait PortCalls: 'static {
    /// Whether the worker serves the control interface's runtime LUNs (`docs/control.md` §10).
    /// SCSIPORT's flavour does not: their code imports MmAllocatePagesForMdlEx, which XP x86
    /// does not export, and a missing import stops the driver from loading.
    const RUNTIME_LUNS: bool = true;
    /// Completes an SRB from any thread at ≤ DISPATCH_LEVEL (an IRP's completion routine):
    /// what the fast path needs (`crate::fastio`). `None` keeps every disk request on the
    /// worker: SCSIPORT notifies only from its own callbacks (`docs/driver.md` "The fast path").
    const COMPLETE_ANYWHERE: Option<fn(AdapterRef, QueuedSrb)> = None;
    fn complete(path: &DiskPath, adapter: AdapterRef, srb: QueuedSrb, irql: &Passive);
    fn bus_changed(path: &DiskPath, adapter: AdapterRef);
}

/// Completions and bus changes the worker leaves for a port that may notify only from its own
/// callbacks (SCSIPORT's HwTimer): SRBs done but not yet handed back, and whether the bus
/// changed. `owed` counts the SRBs HwStartIo left pending that HwTimer has not completed yet.
#[derive(Default)]
pub struct Deferred {
    done: SpinLocked<ArrayVec<QueuedSrb, DONE_DEPTH>>,
    bus_change: AtomicBool,
    owed: AtomicU32,
}

/// Every SRB a pending path can hold at once: the worker's queue and one control request per
/// runtime slot stay well below it; a completion that still finds it full waits for HwTimer.
pub const DONE_DEPTH: usize = 2 * QUEUE_DEPTH;

impl Deferred {
    /// HwStartIo left one more SRB pending (counted before the worker can complete it: HwTimer,
    /// the only reader, is serialised with HwStartIo).
    pub fn note_pending(&self) {
        self.owed.fetch_add(1, Ordering::AcqRel);
    }

    /// The worker is done with `srb`: queued for HwTimer. Never dropped: if the queue were full
    /// the worker waits for HwTimer to make room (1 ms at a time).
    pub fn push(&self, mut srb: QueuedSrb, irql: &Passive) {
        let pause = Event::default();
        pause.init(false, irql);
        loop {
            match self.done.with(irql, |q, _| q.try_push(srb)) {
                Ok(()) => return,
                Err(e) => srb = e.element(),
            }
            pause.wait(Some(10_000), irql);
        }
    }

    /// The next completed SRB, for HwTimer.
    pub fn pop(&self, irql: &impl AtMostDispatch) -> Option<QueuedSrb> {
        let srb = self.done.with(irql, |q, _| q.pop_at(0))?;
        self.owed.fetch_sub(1, Ordering::AcqRel);
        Some(srb)
    }

    /// Records a bus change for HwTimer to announce.
    pub fn bus_changed(&self) {
        self.bus_change.store(true, Ordering::Release);
    }

    /// Whether a bus change waits to be announced (cleared by the look).
    pub fn take_bus_change(&self) -> bool {
        self.bus_change.swap(false, Ordering::AcqRel)
    }

    /// SRBs left pending and not yet completed by HwTimer.
    pub fn owed(&self) -> u32 {
        self.owed.load(Ordering::Acquire)
    }
}

/// One disk-backed LUN: its image and target (immutable), its exposure state, and read-ahead
/// buffers when its image is one no WRITE reaches (`docs/driver.md` "Read-ahead of
/// disk-backed images").
pub struct DiskLun {
    pub image: DiskBackedImage,
    pub target: ScsiTarget,
    state: AtomicU8,
    pub(crate) ahead: Option<ReadAheadBuffers>,
}

impl DiskLun {
    pub fn state(&self) -> LunState {
        LunState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves to `next` if the core allows it from the current state.
    pub(crate) fn become_(&self, next: LunState) -> bool {
        let now = self.state();
        now.may_become(next) && {
            self.state.store(next as u8, Ordering::Release);
            true
        }
    }
}

/// One request waiting for the worker.
pub struct Queued {
    pub(crate) route: Route,
    pub(crate) srb: QueuedSrb,
}

/// What a queued request is for.
pub enum Route {
    /// READ/WRITE of disk-backed LUN `n` (index in [`DiskPath`]'s table).
    Disk(u8),
    /// A command of the runtime LUN at `target`, as created by `generation`: READ/WRITE of a
    /// file LUN; UNMAP, or a WRITE that needs memory, of a RAM disk.
    Runtime { target: u8, generation: u32 },
    /// An admitted control request (`crate::runtime`).
    Control(crate::runtime::ControlJob),
}

type Link = ArrayVec<u16, MAX_LINK>;
/// Disk interface names that arrived since the worker last looked (pool: ~8 KiB).
type Arrivals = ArrayVec<Link, MAX_ARRIVALS>;

/// What the worker is asked to do, under one spin lock.
#[derive(Default)]
struct Inbox {
    srbs: ArrayVec<Queued, QUEUE_DEPTH>,
    arrivals: Arrivals,
    removals: ArrayVec<u64, MAX_ARRIVALS>,
    dropped: u32,
    stop: bool,
}

/// The shared part of the disk path, in pool: the HwStartIo side, the PnP callback and the
/// worker all hold `&DiskPath`.
#[derive(Default)]
pub struct DiskPath {
    luns: ArrayVec<DiskLun, MAX_DISK_IMAGES>,
    first_target: u8,
    inbox: SpinLocked<Inbox>,
    /// Synchronization event: one wake per batch of work.
    wake: Event,
    adapter: Option<AdapterRef>,
    /// Runtime LUNs (`crate::runtime`); `None` only when their table could not be allocated.
    runtime: Option<crate::runtime::Runtime>,
    /// Loader RAM images are targets `0..loader_luns`, for the worker's admission.
    loader_luns: u8,
    /// The RAM Windows manages (`crate::control::os_ram_bytes`), for the worker's admission.
    ram_bytes: u64,
    /// Windows 8 or later (StorPort took the Windows 8 init data): MdlMappingNoExecute exists.
    win8: bool,
    /// PnP callbacks inside `interface_changed` right now (`DiskService::stop` waits for 0).
    callbacks: core::sync::atomic::AtomicU32,
    /// The worker is running (not about to sleep): HwStartIo need not set `wake`.
    awake: AtomicBool,
    /// SRBs ever queued (incremented under the inbox lock) and nudges: what the worker's poll
    /// watches.
    posted: AtomicU32,
    /// A nudge arrived ([`DiskPath::nudge`]): the worker does not sleep before it has looked.
    nudged: AtomicBool,
    /// Completions for a port that notifies only from its callbacks (SCSIPORT).
    deferred: Deferred,
    /// The fast path's IRP slots and per-LUN disks (`crate::fastio`).
    fast: crate::fastio::FastPath,
}

pub use crate::trampolines::DiskService;

impl DiskPath {
    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// The runtime LUN table.
    pub fn runtime(&self) -> Option<&crate::runtime::Runtime> {
        self.runtime.as_ref()
    }

    /// Completions and bus changes left for SCSIPORT's HwTimer.
    pub fn deferred(&self) -> &Deferred {
        &self.deferred
    }

    /// The fast path (`crate::fastio`).
    pub fn fast(&self) -> &crate::fastio::FastPath {
        &self.fast
    }

    /// A fast IRP found LUN `lun`'s disk gone (completion routine, ≤ DISPATCH): the LUN is
    /// removed now, no further fast request goes to the disk, and the worker is woken to close
    /// it once the IRPs still in flight have completed (`close_removed`).
    pub(crate) fn fast_removal(&self, lun: usize, irql: &impl AtMostDispatch) {
        self.fast.withdraw(lun);
        if self
            .luns
            .get(lun)
            .is_some_and(|l| l.become_(LunState::Removed))
        {
            self.wake.set(irql);
        }
    }

    /// The adapter, for the port's notifications.
    pub fn adapter_ref(&self) -> Option<AdapterRef> {
        self.adapter
    }

    /// Windows 8 or later (MdlMappingNoExecute exists).
    pub fn win8(&self) -> bool {
        self.win8
    }

    /// Every visible disk-backed LUN with its target id.
    pub fn disk_luns(&self) -> impl Iterator<Item = (u8, &DiskLun)> {
        self.luns
            .iter()
            .enumerate()
            .filter(|(_, l)| l.state().visible())
            .map(|(i, l)| (self.first_target + i as u8, l))
    }

    /// What the worker's admission knows of the LUNs that are not runtime ones: loader RAM
    /// images at `0..loader_luns` and every disk-backed image (visible or not: its target id
    /// is reserved), all of loader origin; and the RAM limit.
    pub(crate) fn fixed_luns(&self) -> (impl Iterator<Item = u8> + '_, u64) {
        let disks = (0..self.luns.len()).map(|i| self.first_target + i as u8);
        ((0..self.loader_luns).chain(disks), self.ram_bytes)
    }

    /// The worker, while it removes a runtime LUN: serves every queued request of runtime LUNs
    /// now (disk-backed requests and control requests stay queued, in order).
    pub(crate) fn serve_queued_files<P: PortCalls>(&self, irql: &Passive) {
        loop {
            let next = self.inbox.with(irql, |inbox, _| {
                let i = inbox
                    .srbs
                    .iter()
                    .position(|q| matches!(q.route, Route::Runtime { .. }))?;
                Some(inbox.srbs.remove(i))
            });
            let Some(q) = next else { break };
            if let Route::Runtime { target, generation } = q.route {
                crate::runtime::serve_queued::<P>(self, target, generation, q, irql);
            }
        }
    }

    /// The disk-backed LUN at a SCSI address, with its index.
    pub fn lun_at(&self, path: u8, target: u8, lun: u8) -> Option<(u8, &DiskLun)> {
        let i = target.checked_sub(self.first_target)?;
        let l = self
            .luns
            .get(usize::from(i))
            .filter(|_| path == 0 && lun == 0)?;
        Some((i, l))
    }

    /// Asks the worker to end once the queue is empty, and wakes it.
    pub fn request_stop(&self, irql: &impl AtMostDispatch) {
        self.inbox.with(irql, |inbox, _| inbox.stop = true);
        self.wake.set(irql);
    }

    /// HwStartIo: hands `srb` to the worker for `route`. Gives both back when the queue is
    /// full.
    pub fn enqueue_route<'a>(
        &self,
        route: Route,
        srb: Srb<'a>,
        data: *mut u8,
        irql: &impl AtMostDispatch,
    ) -> Result<(), (Srb<'a>, Route)> {
        let queued = self.inbox.with(irql, |inbox, _| {
            if inbox.srbs.is_full() || inbox.stop {
                return Err((srb, route));
            }
            inbox.srbs.push(Queued {
                route,
                srb: srb.defer(data),
            });
            self.posted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        // A worker that is awake finds the SRB without being woken (`pause`).
        if queued.is_ok() && !self.awake.load(Ordering::SeqCst) {
            self.wake.set(irql);
        }
        queued
    }

    /// HwStartIo: the worker has read-ahead work (`docs/control.md` §10.4); wakes it unless
    /// it is awake.
    pub fn nudge(&self, irql: &impl AtMostDispatch) {
        self.nudged.store(true, Ordering::SeqCst);
        self.posted.fetch_add(1, Ordering::SeqCst);
        if !self.awake.load(Ordering::SeqCst) {
            self.wake.set(irql);
        }
    }

    /// The PnP callback: records an arrival or removal and wakes the worker; never blocks on I/O.
    pub fn interface_changed(&self, change: InterfaceChange<'_>, irql: &Passive) {
        self.callbacks.fetch_add(1, Ordering::AcqRel);
        self.record_change(change, irql);
        self.callbacks.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether a PnP callback is still inside [`DiskPath::interface_changed`].
    pub fn in_callback(&self) -> bool {
        self.callbacks.load(Ordering::Acquire) != 0
    }

    fn record_change(&self, change: InterfaceChange<'_>, irql: &Passive) {
        let wake = match change {
            InterfaceChange::Arrival(name) => {
                let Ok(link) = Link::try_from(name) else {
                    rvblk_log!("disk interface name longer than {} units ignored", MAX_LINK);
                    return;
                };
                self.inbox.with(irql, |inbox, _| {
                    if inbox.arrivals.try_push(link).is_err() {
                        inbox.dropped += 1;
                    }
                });
                true
            }
            InterfaceChange::Removal(name) => {
                let hash = link_hash(name);
                self.inbox
                    .with(irql, |inbox, _| inbox.removals.try_push(hash).is_ok())
            }
            InterfaceChange::Other => false,
        };
        if wake {
            self.wake.set(irql);
        }
    }
}

/// Case-insensitive FNV-1a of a link name: removals are matched by it (the worker keeps no
/// names).
fn link_hash(name: &[u16]) -> u64 {
    name.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &u| {
        let u = if (u16::from(b'a')..=u16::from(b'z')).contains(&u) {
            u - 32
        } else {
            u
        };
        (h ^ u64::from(u)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A link name in a log line (non-ASCII as `?`).
struct LinkName<'a>(&'a [u16]);

impl fmt::Display for LinkName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in char::decode_utf16(self.0.iter().copied()) {
            let c = c
                .ok()
                .filter(|c| c.is_ascii() && !c.is_ascii_control())
                .unwrap_or('?');
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// Appends LUN `i` for `image` (read-ahead buffers when the core wants them); false when the
/// table is full. Not inlined: a LUN (its image's extent list, its read-ahead state) is over a
/// kilobyte, and its temporaries in the caller's frame pushed that frame past one page, which
/// needs `__chkstk`, a routine a kernel driver does not link.
#[inline(never)]
fn add_lun(
    luns: &mut ArrayVec<DiskLun, MAX_DISK_IMAGES>,
    i: usize,
    image: &DiskBackedImage,
    irql: &Passive,
) -> bool {
    let ahead = if rvblk_core::readahead::wanted_for_disk(image) {
        let a = ReadAheadBuffers::allocate(image.length, irql);
        if a.is_none() {
            rvblk_log!(
                "disk-backed image {}: out of pool for read-ahead; served without it",
                i
            );
        }
        a
    } else {
        None
    };
    luns.try_push(DiskLun {
        image: image.clone(),
        target: ScsiTarget::for_disk_backed(image),
        state: AtomicU8::new(LunState::Waiting as u8),
        ahead,
    })
    .is_ok()
}

/// Builds the disk path for `images` at targets `first_target…`, starts its worker and
/// registers for disk arrivals (HwFindAdapter, PASSIVE). `None` (logged) when it cannot run: the
/// images then stay unexposed and the RAM path is untouched.
pub fn start<P: PortCalls>(
    images: &[DiskBackedImage],
    first_target: u8,
    ram_bytes: u64,
    win8: bool,
    adapter: AdapterRef,
    irql: &Passive,
) -> Option<DiskService> {
    let Some(mut path) = crate::physmem::PoolBox::<DiskPath>::new_default(irql) else {
        rvblk_log!("out of pool for the disk path; disk-backed images and runtime LUNs not served");
        return None;
    };
    path.first_target = first_target;
    path.loader_luns = first_target;
    path.ram_bytes = ram_bytes;
    path.win8 = win8;
    path.adapter = Some(adapter);
    path.runtime = if P::RUNTIME_LUNS {
        crate::runtime::Runtime::new(irql)
    } else {
        None
    };
    if P::RUNTIME_LUNS && path.runtime.is_none() {
        rvblk_log!("out of pool for the runtime LUN table; mounts and RAM disks not served");
    }
    for (i, image) in images.iter().enumerate() {
        if !add_lun(&mut path.luns, i, image, irql) {
            break;
        }
        rvblk_log!(
            "disk-backed image {} (source={} kind={} length={:#x} extents={} read_only={}) at target {}: waiting for its disk",
            i,
            image.source,
            image.kind,
            image.length,
            image.extents.len(),
            u8::from(image.is_read_only()),
            usize::from(first_target) + i
        );
    }
    path.wake.init(true, irql);
    let at: *const DiskPath = &*path;
    path.fast.init(at, adapter, P::COMPLETE_ANYWHERE, irql);
    // Disk arrivals matter only when an image waits for its disk.
    let watch_disks = !images.is_empty();
    match DiskService::start::<P>(path, watch_disks, irql) {
        Ok((service, None)) => Some(service),
        Ok((service, Some(st))) => {
            rvblk_log!(
                "IoRegisterPlugPlayNotification failed ({:#x}); no backing disk can be found",
                st as u32
            );
            Some(service)
        }
        Err(e) => {
            rvblk_log!(
                "cannot start the worker thread ({:?}); disk-backed images and runtime LUNs not served",
                e
            );
            None
        }
    }
}

/// One disk as identification sees it (`BackingDisk`), read through the worker's bounce buffer.
struct Candidate<'c, 'w> {
    disk: Option<OpenDisk>,
    hash: u64,
    sector: u32,
    size: u64,
    io: &'c WorkerIo<'w>,
}

impl BackingDisk for Candidate<'_, '_> {
    fn size_bytes(&self) -> u64 {
        self.size
    }
    fn sector_size(&self) -> u32 {
        self.sector
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let disk = self.disk.as_ref().ok_or(Unreadable)?;
        self.io
            .read_bytes(disk, self.sector, offset, buf)
            .map_err(|_| Unreadable)
    }
}

/// The worker's bounce sector and IRQL token.
struct WorkerIo<'w> {
    bounce: RefCell<&'w mut [u8]>,
    irql: &'w Passive,
}

impl WorkerIo<'_> {
    /// Any byte range of the disk, one sector at a time through the bounce buffer.
    fn read_bytes(
        &self,
        disk: &OpenDisk,
        sector: u32,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), IoFailure> {
        let ss = u64::from(sector);
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let skip = (at % ss) as usize;
            let n = (sector as usize - skip).min(buf.len() - done);
            self.sector_io(disk, false, at - skip as u64, sector as usize)?;
            let b = self.bounce.borrow();
            buf[done..done + n].copy_from_slice(&b[skip..skip + n]);
            done += n;
        }
        Ok(())
    }

    fn sector_io(
        &self,
        disk: &OpenDisk,
        write: bool,
        at: u64,
        len: usize,
    ) -> Result<(), IoFailure> {
        let mut b = self.bounce.borrow_mut();
        let b = b
            .get_mut(..len)
            .ok_or(IoFailure::Status(0xC000_000Du32 as i32))?;
        if write {
            disk.write(at, b, self.irql)
        } else {
            disk.read(at, b, self.irql)
        }
    }
}

/// A LUN's identified disk.
struct LunDisk {
    disk: OpenDisk,
    hash: u64,
    sector: u32,
}

/// The worker's own state: only the worker thread touches it. Small (its stack); the bounce
/// sector is pool.
struct Worker {
    bounce: PoolBuf,
    /// The link name of each LUN's identified disk (pool), for log lines.
    names: crate::physmem::PoolBox<[Link; MAX_DISK_IMAGES]>,
    disks: [Option<LunDisk>; MAX_DISK_IMAGES],
    /// The last refusal logged per LUN, so a repeated verdict is not logged again.
    refused: [Option<IdentifyRefusal>; MAX_DISK_IMAGES],
}

/// The worker thread's body (PASSIVE, system thread).
pub fn worker<P: PortCalls>(path: &DiskPath, irql: &Passive) {
    let Some(bounce) = PoolBuf::new(MAX_SECTOR, irql) else {
        rvblk_log!("out of pool for the disk worker; disk-backed I/O fails");
        drain_failing::<P>(path, irql);
        return;
    };
    let Some(names) = crate::physmem::PoolBox::<[Link; MAX_DISK_IMAGES]>::new_default(irql) else {
        rvblk_log!("out of pool for the disk worker; disk-backed I/O fails");
        drain_failing::<P>(path, irql);
        return;
    };
    let mut w = Worker {
        bounce,
        names,
        disks: Default::default(),
        refused: [None; MAX_DISK_IMAGES],
    };
    // Arrivals are examined together, all that are pending at once, so that two disks holding
    // the same image (a cloned stick) present together are refused rather than one picked.
    let Some(mut batch) = crate::physmem::PoolBox::<Arrivals>::new_default(irql) else {
        rvblk_log!("out of pool for the disk worker; disk-backed I/O fails");
        drain_failing::<P>(path, irql);
        return;
    };
    let Some(units) = crate::runtime::PathUnits::new(irql) else {
        rvblk_log!("out of pool for the worker; disk-backed I/O fails");
        drain_failing::<P>(path, irql);
        return;
    };
    let mut control = crate::runtime::ControlWorker {
        units,
        no_execute: path.win8,
    };
    // They are identified once the arrivals have settled (`Settle`); until then they collect
    // in `batch`.
    let mut settle = Settle::default();
    // `posted` as the last look at the queue saw it, when that wake served requests.
    let mut spin: Option<u32> = None;
    loop {
        // While a disk is open to the fast path, look at its IRPs at least once a second
        // (`fast_watch`): HwStartIo sends them without waking the worker.
        let watch = path.fast.watching().then_some(FAST_WATCH_100NS);
        let timeout = match (settle.wait_100ns(), watch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        pause(path, spin, timeout, irql);
        fast_watch(path, &mut w, irql);
        let mut served = false;
        loop {
            let (srb, removal, stop, dropped, fresh, posted) = path.inbox.with(irql, |inbox, _| {
                let (fresh, overflow) = take_arrivals(&mut inbox.arrivals, &mut batch);
                let dropped = core::mem::take(&mut inbox.dropped) + overflow;
                let srb = (!inbox.srbs.is_empty()).then(|| inbox.srbs.remove(0));
                let posted = path.posted.load(Ordering::SeqCst);
                (
                    srb,
                    inbox.removals.pop(),
                    inbox.stop,
                    dropped,
                    fresh,
                    posted,
                )
            });
            if dropped > 0 {
                rvblk_log!("{} disk arrival(s) dropped (queue full)", dropped);
            }
            if fresh > 0 {
                settle.arrived();
            }
            let idle = srb.is_none() && fresh == 0 && removal.is_none();
            if let Some(hash) = removal {
                removed(path, &mut w, hash, irql);
                // A disk that left before its batch settled is not examined.
                batch.retain(|l| link_hash(l) != hash);
            }
            if let Some(q) = srb {
                match q.route {
                    Route::Disk(lun) => serve::<P>(path, &mut w, lun, q, irql),
                    // Never queued without a runtime table (`RUNTIME_LUNS`).
                    Route::Runtime { .. } | Route::Control(_) if !P::RUNTIME_LUNS => {
                        let mut srb = q.srb;
                        srb.view().set_status(status::NO_DEVICE);
                        complete::<P>(path, srb, irql);
                    }
                    Route::Runtime { target, generation } => {
                        crate::runtime::serve_queued::<P>(path, target, generation, q, irql)
                    }
                    Route::Control(_) => {
                        crate::runtime::serve_control::<P>(path, &mut control, q, irql)
                    }
                }
                served = true;
            }
            // Read-ahead fills for file LUNs, one per look at the queue. They do not make the
            // worker poll afterwards: the next fill waits for the reader, which may need this
            // processor (`docs/bench.md` "Runtime mounts").
            if idle
                && (disk_read_ahead(path, &mut w, irql)
                    || P::RUNTIME_LUNS && crate::runtime::read_ahead(path, irql))
            {
                continue;
            }
            if idle {
                if stop {
                    for (i, d) in w.disks.iter_mut().enumerate() {
                        if let Some(d) = d.take() {
                            close_disk(path, i, d, irql);
                        }
                    }
                    // Every IRP slot free: no completion routine touches the path any more.
                    while path.fast.busy_slots() > 0 {
                        path.fast.cancel_stale(Instant::now().millis32());
                        sleep_ms(1, irql);
                    }
                    if let Some(rt) = path.runtime().filter(|_| P::RUNTIME_LUNS) {
                        crate::runtime::release_all(rt, irql);
                    }
                    return;
                }
                // A batch emptied by removals has nothing left to settle.
                if batch.is_empty() {
                    settle = Settle::default();
                } else if settle.settled() {
                    arrived::<P>(path, &mut w, &batch, irql);
                    batch.clear();
                    settle = Settle::default();
                }
                spin = served.then_some(posted);
                break;
            }
        }
    }
}

/// Moves the arrivals the callback recorded into the batch being settled: (moved, dropped for
/// want of room). A link already in the batch is not added again: an arrival that races with
/// the registration's report of existing interfaces can be notified twice, and the same disk
/// twice in a batch would look like two disks holding the image.
fn take_arrivals(from: &mut Arrivals, to: &mut Arrivals) -> (usize, u32) {
    let (mut moved, mut dropped) = (0, 0);
    for link in from.drain(..) {
        let hash = link_hash(&link);
        if to.iter().any(|l| link_hash(l) == hash) {
            continue;
        }
        if to.try_push(link).is_ok() {
            moved += 1;
        } else {
            dropped += 1;
        }
    }
    (moved, dropped)
}

/// When a batch of disk arrivals is identified (`docs/driver.md` "Identification"): after
/// [`SETTLE_QUIET_US`] without a further arrival, at most [`SETTLE_MAX_US`] after the first.
/// The harness, like Windows, delivers arrival notifications one at a time; identifying after
/// the first would serve one of two cloned sticks instead of refusing both.
#[derive(Default)]
struct Settle {
    /// (first, last) arrival of the batch.
    since: Option<(Instant, Instant)>,
}

impl Settle {
    fn arrived(&mut self) {
        let now = Instant::now();
        let first = self.since.map_or(now, |(first, _)| first);
        self.since = Some((first, now));
    }

    /// Microseconds until the batch settles (0: settled); `None` without a batch.
    fn remaining_us(&self) -> Option<u64> {
        let (first, last) = self.since?;
        let quiet = SETTLE_QUIET_US.saturating_sub(last.elapsed_micros());
        let bound = SETTLE_MAX_US.saturating_sub(first.elapsed_micros());
        Some(quiet.min(bound))
    }

    fn settled(&self) -> bool {
        self.remaining_us() == Some(0)
    }

    /// How long the worker may sleep before it must look at the batch again (100 ns units);
    /// `None` = until woken.
    fn wait_100ns(&self) -> Option<u64> {
        self.remaining_us().map(|us| us.max(1) * 10)
    }
}

/// Waits for work. After a wake that served requests (`spin`: the `posted` count the last look
/// at the queue saw) the worker first polls for a new request for up to [`SPIN_US`]: a stream
/// of requests then costs no sleep and wake-up each (on an idle machine a wake-up costs more
/// than a 64 KiB transfer: `docs/bench.md` "The disk-backed path"), and HwStartIo skips
/// `KeSetEvent` while `awake` is set. Then it sleeps on `wake`, at most `timeout` (100 ns
/// units) while arrivals settle.
fn pause(path: &DiskPath, spin: Option<u32>, timeout: Option<u64>, irql: &Passive) {
    if let Some(seen) = spin {
        let start = Instant::now();
        loop {
            // The clock is read once per 64 looks (`KeQueryPerformanceCounter` is to be used
            // sparingly: `docs/windows-integration.md` §8.1).
            for _ in 0..64 {
                if path.posted.load(Ordering::SeqCst) != seen {
                    return;
                }
                core::hint::spin_loop();
            }
            if start.elapsed_micros() >= SPIN_US {
                break;
            }
        }
    }
    // Announce the sleep before the last look at the queue: an SRB queued after that look sees
    // `awake` clear and sets the event (`DiskPath::enqueue`).
    path.awake.store(false, Ordering::SeqCst);
    if path.inbox.with(irql, |inbox, _| inbox.srbs.is_empty())
        && !path.nudged.swap(false, Ordering::SeqCst)
    {
        path.wake.wait(timeout, irql);
    }
    path.awake.store(true, Ordering::SeqCst);
}

/// Completes whatever is queued with NO DEVICE until stopped (no pool for the worker).
fn drain_failing<P: PortCalls>(path: &DiskPath, irql: &Passive) {
    loop {
        path.wake.wait(None, irql);
        loop {
            let (srb, stop) = path.inbox.with(irql, |inbox, _| {
                inbox.arrivals.clear();
                inbox.removals.clear();
                (
                    (!inbox.srbs.is_empty()).then(|| inbox.srbs.remove(0)),
                    inbox.stop,
                )
            });
            match srb {
                Some(mut q) => {
                    if let Route::Control(job) = q.route {
                        job.abandon(irql);
                    }
                    q.srb.view().set_status(status::NO_DEVICE);
                    complete::<P>(path, q.srb, irql);
                }
                None if stop => return,
                None => break,
            }
        }
    }
}

pub(crate) fn complete<P: PortCalls>(path: &DiskPath, srb: QueuedSrb, irql: &Passive) {
    if let Some(adapter) = path.adapter {
        P::complete(path, adapter, srb, irql);
    }
}

/// How often the worker looks at fast IRPs while any is out (100 ns units: 1 s).
const FAST_WATCH_100NS: u64 = 10_000_000;

/// Sleeps about `ms` milliseconds (PASSIVE).
fn sleep_ms(ms: u64, irql: &Passive) {
    let pause = Event::default();
    pause.init(false, irql);
    pause.wait(Some(ms * 10_000), irql);
}

/// Closes LUN `i`'s disk once no fast IRP to it is in flight: the fast path stops sending to
/// it first, and IRPs older than the timeout are cancelled while the worker waits
/// (`docs/driver.md` "The fast path").
fn close_disk(path: &DiskPath, i: usize, d: LunDisk, irql: &Passive) {
    path.fast.withdraw(i);
    while path.fast.inflight(i) > 0 {
        path.fast.cancel_stale(Instant::now().millis32());
        sleep_ms(1, irql);
    }
    d.disk.close(irql);
}

/// The worker's look at the fast path after each wake: cancels fast IRPs older than the timeout
/// and closes the disks of LUNs a fast IRP found removed.
fn fast_watch(path: &DiskPath, w: &mut Worker, irql: &Passive) {
    path.fast.cancel_stale(Instant::now().millis32());
    for (i, slot) in w.disks.iter_mut().enumerate() {
        if path
            .luns
            .get(i)
            .is_some_and(|l| l.state() == LunState::Removed)
        {
            if let Some(d) = slot.take() {
                close_disk(path, i, d, irql);
                rvblk_log!(
                    "disk-backed image {}: its disk is gone; the LUN answers NOT READY (medium not present)",
                    i
                );
            }
        }
    }
}

/// A disk interface went away: every LUN on it is removed (NOT READY from now on).
fn removed(path: &DiskPath, w: &mut Worker, hash: u64, irql: &Passive) {
    for (i, slot) in w.disks.iter_mut().enumerate() {
        if slot.as_ref().is_some_and(|d| d.hash == hash) {
            if let Some(d) = slot.take() {
                close_disk(path, i, d, irql);
            }
            if path.luns[i].become_(LunState::Removed) {
                rvblk_log!(
                    "disk-backed image {}: its disk was removed; the LUN answers NOT READY (medium not present)",
                    i
                );
            }
        }
    }
}

/// Opens and examines a batch of arrived disks, then identifies every waiting image among all of
/// them (`identify_backing_disk`: exactly one match, or a refusal with its reason).
fn arrived<P: PortCalls>(path: &DiskPath, w: &mut Worker, links: &[Link], irql: &Passive) {
    // Live LUNs too: a disk arriving later may be a clone of a live LUN's disk (`clones`).
    if !path
        .luns
        .iter()
        .any(|l| matches!(l.state(), LunState::Waiting | LunState::Live))
    {
        return;
    }
    let was_live: [bool; MAX_DISK_IMAGES] = core::array::from_fn(|i| {
        path.luns
            .get(i)
            .is_some_and(|l| l.state() == LunState::Live)
    });
    let writable = path
        .luns
        .iter()
        .any(|l| l.state() == LunState::Waiting && !l.image.is_read_only());
    let (bounce, disks, refused, names) =
        (&mut w.bounce, &mut w.disks, &mut w.refused, &mut *w.names);
    let io = WorkerIo {
        bounce: RefCell::new(&mut bounce[..]),
        irql,
    };
    let mut candidates: ArrayVec<Candidate<'_, '_>, MAX_ARRIVALS> = ArrayVec::new();
    // Which link each candidate came from.
    let mut origin: ArrayVec<usize, MAX_ARRIVALS> = ArrayVec::new();
    for (k, link) in links.iter().enumerate() {
        let name = LinkName(link);
        // A repeated arrival of a disk that already backs a LUN: nothing new to examine.
        if disks.iter().flatten().any(|d| d.hash == link_hash(link)) {
            continue;
        }
        let opened = OpenDisk::open(link, writable, irql).or_else(|st| {
            if writable {
                OpenDisk::open(link, false, irql)
            } else {
                Err(st)
            }
        });
        let disk = match opened {
            Ok(d) => d,
            Err(st) => {
                rvblk_log!("disk {}: cannot open it ({:#x}); skipped", name, st as u32);
                continue;
            }
        };
        let Some((sector, size)) = examine(&disk, &name, irql) else {
            disk.close(irql);
            continue;
        };
        candidates.push(Candidate {
            disk: Some(disk),
            hash: link_hash(link),
            sector,
            size,
            io: &io,
        });
        origin.push(k);
    }
    if candidates.is_empty() {
        return;
    }
    let mut newly_live = false;
    for (i, lun) in path.luns.iter().enumerate() {
        if lun.state() != LunState::Waiting {
            continue;
        }
        match identify_backing_disk(&lun.image, &candidates) {
            Ok(c) => {
                let link = &links[origin[c]];
                let name = LinkName(link);
                // The first image on this disk keeps the reference `open` took; another image on
                // the same disk opens it again (one reference per LUN, released once each).
                let reference = match candidates[c].disk.take() {
                    Some(d) => Some(d),
                    None => OpenDisk::open(link, !lun.image.is_read_only(), irql).ok(),
                };
                let Some(reference) = reference else {
                    rvblk_log!(
                        "disk-backed image {}: disk {} identified but cannot be opened again",
                        i,
                        name
                    );
                    continue;
                };
                if reference.does_direct_io() {
                    path.fast
                        .publish(i, reference.device(), candidates[c].sector);
                } else {
                    rvblk_log!(
                        "disk-backed image {}: disk {} does not do direct I/O: its requests take the worker",
                        i,
                        name
                    );
                }
                disks[i] = Some(LunDisk {
                    disk: reference,
                    hash: candidates[c].hash,
                    sector: candidates[c].sector,
                });
                names[i].clone_from(link);
                refused[i] = None;
                lun.become_(LunState::Identified);
                // Whatever the buffers held came from the disk before this arrival.
                if let Some(ahead) = &lun.ahead {
                    ahead.invalidate(irql);
                }
                lun.become_(LunState::Live);
                newly_live = true;
                let target = usize::from(path.first_target) + i;
                rvblk_log!(
                    "disk-backed image {}: backing disk {} identified; lun at target {} live",
                    i,
                    name,
                    target
                );
                rvblk_log!("{}", DiskLunLine::of(target as u32, &lun.image));
            }
            Err(IdentifyRefusal::NoneMatched) => {
                rvblk_log!(
                    "disk-backed image {}: none of the {} disk(s) just arrived holds it; waiting",
                    i,
                    candidates.len()
                );
            }
            Err(reason) => {
                if refused[i] != Some(reason) {
                    // Disk numbers in the reason count the disks of this arrival batch.
                    rvblk_log!("disk-backed image {}: not identified: {}", i, reason);
                    refused[i] = Some(reason);
                }
            }
        }
    }
    clones(path, disks, names, &was_live, &candidates, links, &origin);
    // Disks that matched nothing are not kept.
    for c in candidates.iter_mut() {
        if let Some(d) = c.disk.take() {
            d.close(irql);
        }
    }
    if newly_live {
        if let Some(adapter) = path.adapter {
            P::bus_changed(path, adapter);
        }
    }
}

/// A disk arriving after an image went live that holds the same image (a cloned stick plugged in
/// later): logged with both disks' names; the LUN stays on its disk (`docs/driver.md`
/// "Identification": switching would change a live disk's bytes under the file system).
fn clones(
    path: &DiskPath,
    disks: &[Option<LunDisk>; MAX_DISK_IMAGES],
    names: &[Link; MAX_DISK_IMAGES],
    was_live: &[bool; MAX_DISK_IMAGES],
    candidates: &[Candidate<'_, '_>],
    links: &[Link],
    origin: &[usize],
) {
    for (i, lun) in path.luns.iter().enumerate() {
        let Some(current) = disks[i].as_ref().filter(|_| was_live[i]) else {
            continue;
        };
        for (c, cand) in candidates.iter().enumerate() {
            if cand.disk.is_none() || cand.hash == current.hash {
                continue;
            }
            if identify_backing_disk(&lun.image, core::slice::from_ref(cand)) == Ok(0) {
                // Two lines: one line with both names exceeds the log's line length.
                rvblk_log!(
                    "disk-backed image {}: disk {} also holds it (a clone); not switched",
                    i,
                    LinkName(&links[origin[c]])
                );
                rvblk_log!(
                    "disk-backed image {}: stays on disk {}",
                    i,
                    LinkName(&names[i])
                );
            }
        }
    }
}

/// Rejects rvblk's own disks and reads the geometry: `(sector size, size)`.
fn examine(disk: &OpenDisk, name: &LinkName<'_>, irql: &Passive) -> Option<(u32, u64)> {
    let mut query = [0u8; 12];
    let mut descriptor = [0u8; 512];
    match disk.ioctl(
        rvblk_abi::IOCTL_STORAGE_QUERY_PROPERTY,
        &mut query,
        &mut descriptor,
        irql,
    ) {
        Ok(n) if policy::is_own_disk(&descriptor[..n]) => {
            rvblk_log!("disk {}: one of rvblk's own disks; skipped", name);
            return None;
        }
        // No descriptor: not ours (rvblk's LUNs always answer it); examined further.
        _ => {}
    }
    let mut geometry = [0u8; 40];
    let n = match disk.ioctl(
        rvblk_abi::IOCTL_DISK_GET_DRIVE_GEOMETRY_EX,
        &mut [],
        &mut geometry,
        irql,
    ) {
        Ok(n) => n,
        Err(e) => {
            rvblk_log!("disk {}: no geometry ({:?}); skipped", name, e);
            return None;
        }
    };
    let sector = geometry
        .get(20..24)
        .filter(|_| n >= 32)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let size = geometry
        .get(24..32)
        .filter(|_| n >= 32)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    match (sector, size) {
        (Some(s @ (512 | 1024 | 2048 | 4096)), Some(size)) if size > 0 => {
            rvblk_log!(
                "disk {}: {} bytes, {}-byte sectors; examining",
                name,
                size,
                s
            );
            Some((s, size))
        }
        _ => {
            rvblk_log!("disk {}: unusable geometry; skipped", name);
            None
        }
    }
}

/// A disk-backed LUN's bytes, read and written through the extent list on the worker.
struct DiskMedium<'m, 'w> {
    image: &'m DiskBackedImage,
    disk: &'m LunDisk,
    io: &'m WorkerIo<'w>,
    failed: Cell<Option<MediumError>>,
}

/// The request's side of a transfer.
enum Bytes<'b> {
    Read(&'b mut [u8]),
    Write(&'b [u8]),
}

impl Bytes<'_> {
    fn len(&self) -> usize {
        match self {
            Bytes::Read(b) => b.len(),
            Bytes::Write(b) => b.len(),
        }
    }
}

impl DiskMedium<'_, '_> {
    fn fail(&self, e: IoFailure) -> MediumError {
        let m = match e {
            IoFailure::Status(st) => policy::medium_error(st as u32),
            IoFailure::TimedOut => MediumError::TimedOut,
        };
        self.failed.set(Some(m));
        m
    }

    /// Moves image bytes `[offset, offset + len)` per the core's plan: direct pieces straight
    /// between the request's buffer and the disk, partial sectors through the bounce sector (a
    /// write reads the sector, patches it and writes it back: it lies inside the extent).
    fn run(&self, offset: u64, mut bytes: Bytes<'_>) -> Result<(), MediumError> {
        let plan = Plan::new(self.image, offset, bytes.len(), self.disk.sector)
            .map_err(|_| MediumError::Unreadable)?;
        let (disk, irql) = (&self.disk.disk, self.io.irql);
        let sector = self.disk.sector as usize;
        for step in plan {
            match step.map_err(|_| MediumError::Unreadable)? {
                Step::Direct { disk: at, buf, len } => match &mut bytes {
                    Bytes::Read(b) => disk.read(at, &mut b[buf..buf + len], irql),
                    Bytes::Write(b) => disk.write(at, &b[buf..buf + len], irql),
                }
                .map_err(|e| self.fail(e))?,
                Step::Bounce {
                    disk: at,
                    skip,
                    buf,
                    len,
                } => {
                    self.io
                        .sector_io(disk, false, at, sector)
                        .map_err(|e| self.fail(e))?;
                    match &mut bytes {
                        Bytes::Read(b) => b[buf..buf + len]
                            .copy_from_slice(&self.io.bounce.borrow()[skip..skip + len]),
                        Bytes::Write(b) => {
                            self.io.bounce.borrow_mut()[skip..skip + len]
                                .copy_from_slice(&b[buf..buf + len]);
                            self.io
                                .sector_io(disk, true, at, sector)
                                .map_err(|e| self.fail(e))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Medium for DiskMedium<'_, '_> {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        self.run(offset, Bytes::Read(dst))
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        self.run(offset, Bytes::Write(src))
    }
}

/// Serves one queued SRB on the worker and completes it, exactly once.
fn serve<P: PortCalls>(path: &DiskPath, w: &mut Worker, lun: u8, mut q: Queued, irql: &Passive) {
    let i = usize::from(lun);
    let lun = &path.luns[i];
    let mut failed = None;
    {
        let mut srb = q.srb.view();
        let (flags, length) = (srb.flags(), srb.transfer_length());
        let (cdb, cdb_len) = srb.cdb();
        let done = match (lun.state(), w.disks[i].as_ref()) {
            (LunState::Live, Some(disk)) => {
                let hit = lun.ahead.as_ref().and_then(|ahead| {
                    queued_hit(ahead, &lun.target, &cdb[..cdb_len], &mut srb, irql)
                });
                if let Some(done) = hit {
                    done
                } else {
                    let (mut access, sense) = srb.buffers();
                    let (done, e) = on_disk(&mut w.bounce, &lun.image, disk, irql, |medium| {
                        core_srb::execute_scsi(
                            &lun.target,
                            &cdb[..cdb_len],
                            flags,
                            length,
                            &mut Mapped(&mut access),
                            sense,
                            medium,
                        )
                    });
                    failed = e;
                    done
                }
            }
            // Removed while queued: the answer HwStartIo now gives too.
            _ => {
                let (_, sense) = srb.buffers();
                let outcome = MediumError::Removed.outcome(false);
                core_srb::complete(&outcome, flags, sense)
            }
        };
        srb.finish(&done);
        if let Some(e) = failed {
            rvblk_log!(
                "disk-backed image {}: disk I/O failed ({:?}) for opcode {:#04x}",
                i,
                e,
                cdb[0]
            );
        }
    }
    if let Some(e) = failed {
        disk_failed(path, w, i, e, irql);
    }
    complete::<P>(path, q.srb, irql);
}

/// The worker's queued READ for `target`, served from `ahead` when a fill brought its range
/// since it was queued (no nudge: the worker itself fills next); `None` when the buffers do
/// not hold it, or `cdb` is no READ.
pub(crate) fn queued_hit(
    ahead: &ReadAheadBuffers,
    target: &ScsiTarget,
    cdb: &[u8],
    srb: &mut Srb<'_>,
    irql: &Passive,
) -> Option<SrbCompletion> {
    let rvblk_core::readahead::Access::Read { offset, len } =
        rvblk_core::readahead::classify(cdb, target.image().block_size())
    else {
        return None;
    };
    let hit = ahead.lookup(offset, len, irql)?;
    let (flags, length) = (srb.flags(), srb.transfer_length());
    let (mut access, sense) = srb.buffers();
    let done = core_srb::execute_scsi(
        target,
        cdb,
        flags,
        length,
        &mut Mapped(&mut access),
        sense,
        &hit,
    );
    let _ = hit.release(irql);
    Some(done)
}

/// Runs `f` with `image` on `disk` as the medium (through the worker's bounce buffer); returns
/// its result and the disk failure the medium met, if any.
fn on_disk<R>(
    bounce: &mut [u8],
    image: &DiskBackedImage,
    disk: &LunDisk,
    irql: &Passive,
    f: impl FnOnce(&DiskMedium<'_, '_>) -> R,
) -> (R, Option<MediumError>) {
    let io = WorkerIo {
        bounce: RefCell::new(bounce),
        irql,
    };
    let medium = DiskMedium {
        image,
        disk,
        io: &io,
        failed: Cell::new(None),
    };
    let r = f(&medium);
    (r, medium.failed.get())
}

/// LUN `i`'s disk failed with `e`: a failure that means the disk is gone removes the LUN and
/// closes the disk.
fn disk_failed(path: &DiskPath, w: &mut Worker, i: usize, e: MediumError, irql: &Passive) {
    let lun = &path.luns[i];
    if lun.state().after_failure(e) == LunState::Removed && lun.become_(LunState::Removed) {
        if let Some(d) = w.disks[i].take() {
            close_disk(path, i, d, irql);
        }
        rvblk_log!(
            "disk-backed image {}: its disk is gone; the LUN answers NOT READY (medium not present)",
            i
        );
    }
}

/// The worker, with nothing queued: one read-ahead fill for a streaming disk-backed LUN, if any
/// wants one (`docs/driver.md` "Read-ahead of disk-backed images"), read from its disk through
/// the image's extents. True when it did one.
fn disk_read_ahead(path: &DiskPath, w: &mut Worker, irql: &Passive) -> bool {
    for (i, lun) in path.luns.iter().enumerate() {
        let (Some(ahead), Some(disk), LunState::Live) = (&lun.ahead, &w.disks[i], lun.state())
        else {
            continue;
        };
        let (filled, failed) = on_disk(&mut w.bounce, &lun.image, disk, irql, |medium| {
            ahead.fill_one(medium, irql)
        });
        if filled {
            if let Some(e) = failed {
                rvblk_log!(
                    "disk-backed image {}: disk I/O failed ({:?}) in a read-ahead fill",
                    i,
                    e
                );
                disk_failed(path, w, i, e, irql);
            }
            return true;
        }
    }
    false
}

/// The queued SRB's data buffer: the system address HwStartIo recorded.
pub(crate) struct Mapped<'s, 'a>(pub(crate) &'s mut crate::srb::DataAccess<'a>);

impl core_srb::DataBuffer for Mapped<'_, '_> {
    fn get(&mut self, usage: BufferUse) -> Option<&mut [u8]> {
        self.0.mapped(usage)
    }
}
