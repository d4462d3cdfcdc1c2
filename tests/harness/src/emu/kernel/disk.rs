//! Emulated Windows disks and the IRPs the driver sends them (`docs/harness-disks.md` §3):
//! IoGetDeviceObjectPointer, IoBuildSynchronousFsdRequest, IoBuildDeviceIoControlRequest,
//! IofCallDriver, IoCancelIrp, and the completion thread that finishes pended IRPs.
//!
//! A disk serves a host file with pread/pwrite, refuses I/O not aligned to its sector size,
//! answers IOCTL_DISK_GET_DRIVE_GEOMETRY_EX and IOCTL_STORAGE_QUERY_PROPERTY, pends a share
//! of IRPs (completed ~50 µs later from the completion thread), and can be surprise-removed.
//! IRPs are opaque harness objects; every IRP built must be sent exactly once.

use super::config::DiskSpec;
use super::objects::{self, ObjKind};
use super::port_calls::AddrHasher;
use super::{Kernel, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER};
use rvblk_abi::status::{STATUS_BUFFER_TOO_SMALL, STATUS_NO_SUCH_DEVICE, STATUS_SUCCESS};
use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const STATUS_PENDING: i32 = 0x103;
pub const STATUS_CANCELLED: i32 = 0xC000_0120_u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: i32 = 0xC000_0010_u32 as i32;
pub const STATUS_MEDIA_WRITE_PROTECTED: i32 = 0xC000_00A2_u32 as i32;
pub const STATUS_IO_DEVICE_ERROR: i32 = 0xC000_0185_u32 as i32;
pub const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BB_u32 as i32;

pub const IRP_MJ_READ: u32 = 3;
pub const IRP_MJ_WRITE: u32 = 4;
pub const IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: u32 = 0x0007_00A0;
pub const IOCTL_STORAGE_QUERY_PROPERTY: u32 = 0x002D_1400;

/// The symbolic link of disk `i` as the harness presents it (ASYNC.md).
pub fn disk_link(i: usize) -> String {
    format!(
        "\\??\\USBSTOR#Disk&Ven_Harness&Prod_Disk{i}&Rev_1.00#0000{i}&0#{{53f56307-b6bf-11d0-94f2-00a0c91efb8b}}"
    )
}

pub struct EmuDisk {
    pub index: usize,
    pub file: File,
    pub size: u64,
    pub sector: u32,
    pub read_only: bool,
    pub link: String,
    /// Its DEVICE_OBJECT (an object page).
    pub device: usize,
    pub arrived: AtomicBool,
    pub removed: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IrpState {
    Built,
    Pending,
    /// An asynchronous IRP whose completion routine kept it (STATUS_MORE_PROCESSING_REQUIRED):
    /// waits for IoFreeIrp.
    Kept,
    /// An asynchronous IRP being completed (its completion routine may free it).
    Completing,
}

/// How an IRP was built: a synchronous one (opaque, with the caller's event) or one from
/// IoBuildAsynchronousFsdRequest, laid out as a real IRP with one stack location and an MDL
/// (`docs/harness-disks.md` §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IrpKind {
    Sync,
    Async { mdl: usize },
}

#[derive(Clone, Debug)]
enum IrpOp {
    Read,
    Write,
    Ioctl { code: u32, input: Vec<u8> },
}

#[derive(Clone, Debug)]
struct Irp {
    op: IrpOp,
    disk: usize,
    device: usize,
    buf: usize,
    len: u32,
    offset: u64,
    event: usize,
    iosb: usize,
    state: IrpState,
    kind: IrpKind,
}

/// Tables keyed by IRP or MDL address (one folded multiply instead of SipHash: see
/// [`AddrHasher`]).
type ByAddr<V> = HashMap<usize, V, BuildHasherDefault<AddrHasher>>;

/// What the I/O manager knows of the IRPs and MDLs it built, under one lock: every call on an
/// IRP takes it once.
#[derive(Default)]
struct IrpBook {
    live: ByAddr<Irp>,
    /// Recently completed IRP addresses (to name a second IofCallDriver as such).
    retired: VecDeque<usize>,
    /// MDLs of asynchronous IRPs not freed yet: address → pages still locked.
    mdls: ByAddr<bool>,
    /// Freed asynchronous IRP blocks and MDLs kept for the next request (at most [`SPARES`]
    /// each), filled with [`FREED`] while they wait, as a pool allocator would recycle them.
    spare_irps: Vec<usize>,
    spare_mdls: Vec<usize>,
    /// IRPs sent to the emulated disks (IofCallDriver calls), all kinds; of them asynchronous
    /// (for `--disk-hang-async-after`); IRPs completed. Counted under the book's lock, which
    /// their calls hold anyway.
    sent: u64,
    async_sent: u64,
    completed: u64,
}

/// The lock of the [`IrpBook`]: held for a few table operations at a time, so a waiter spins
/// (yielding the processor between looks), and its release is a plain store rather than the
/// locked exchange of `std::sync::Mutex` (every IRP call takes this lock, and a locked
/// instruction right after the emulated disk's copy waits for the whole copy to reach memory;
/// `docs/bench.md` "The disk-backed path").
#[derive(Default)]
struct BookLock {
    held: AtomicBool,
    book: std::cell::UnsafeCell<IrpBook>,
}

// SAFETY: the book is reached only through a `BookGuard`, of which `held` admits one at a time.
unsafe impl Sync for BookLock {}

impl BookLock {
    fn lock(&self) -> BookGuard<'_> {
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        BookGuard(self)
    }
}

struct BookGuard<'a>(&'a BookLock);

impl std::ops::Deref for BookGuard<'_> {
    type Target = IrpBook;
    fn deref(&self) -> &IrpBook {
        // SAFETY: this guard holds the lock: no other reference to the book exists.
        unsafe { &*self.0.book.get() }
    }
}

impl std::ops::DerefMut for BookGuard<'_> {
    fn deref_mut(&mut self) -> &mut IrpBook {
        // SAFETY: as above, and `&mut self` makes this the only use of the guard.
        unsafe { &mut *self.0.book.get() }
    }
}

impl Drop for BookGuard<'_> {
    fn drop(&mut self) {
        self.0.held.store(false, Ordering::Release);
    }
}

/// Freed IRP blocks and MDLs kept for reuse.
const SPARES: usize = 64;
/// What a freed IRP or MDL holds until it is reused: a driver that reads one after freeing it
/// finds no valid pointer in it.
const FREED: u8 = 0xDB;

impl Drop for IrpBook {
    fn drop(&mut self) {
        for irp in self.spare_irps.drain(..) {
            free_async_irp(irp);
        }
        for mdl in self.spare_mdls.drain(..) {
            // SAFETY: a spare MDL from `Box<Mdl>`, owned by the pool only.
            drop(unsafe { Box::from_raw(mdl as *mut rvblk_abi::Mdl) });
        }
    }
}

impl IrpBook {
    /// A zeroed asynchronous IRP block (the IRP and its one stack location).
    fn take_irp_block(&mut self) -> usize {
        match self.spare_irps.pop() {
            Some(irp) => {
                // SAFETY: a spare block of ASYNC_IRP_BYTES, owned by the pool until now.
                unsafe { std::ptr::write_bytes(irp as *mut u8, 0, ASYNC_IRP_BYTES) };
                irp
            }
            None => alloc_async_irp(),
        }
    }

    /// An IRP block that left the table: back to the pool, or to the allocator.
    fn give_irp_block(&mut self, irp: usize) {
        if self.spare_irps.len() < SPARES {
            // SAFETY: the block is ours again (out of the table); ASYNC_IRP_BYTES long.
            unsafe { std::ptr::write_bytes(irp as *mut u8, FREED, ASYNC_IRP_BYTES) };
            self.spare_irps.push(irp);
        } else {
            free_async_irp(irp);
        }
    }

    /// An MDL holding `mdl`.
    fn take_mdl(&mut self, mdl: rvblk_abi::Mdl) -> usize {
        match self.spare_mdls.pop() {
            Some(m) => {
                // SAFETY: a spare MDL allocation, owned by the pool until now.
                unsafe { (m as *mut rvblk_abi::Mdl).write(mdl) };
                m
            }
            None => Box::into_raw(Box::new(mdl)) as usize,
        }
    }

    /// An MDL that left the table: back to the pool, or to the allocator.
    fn give_mdl(&mut self, mdl: usize) {
        if self.spare_mdls.len() < SPARES {
            // SAFETY: the MDL is ours again (out of the table).
            unsafe {
                std::ptr::write_bytes(mdl as *mut u8, FREED, std::mem::size_of::<rvblk_abi::Mdl>())
            };
            self.spare_mdls.push(mdl);
        } else {
            // SAFETY: allocated as a Box<Mdl> by `take_mdl`, out of the table: freed once.
            drop(unsafe { Box::from_raw(mdl as *mut rvblk_abi::Mdl) });
        }
    }

    fn retire(&mut self, irp: usize) {
        self.retired.push_back(irp);
        if self.retired.len() > RETIRED_KEEP {
            self.retired.pop_front();
        }
    }
}

/// Session state of the I/O manager part.
#[derive(Default)]
pub(crate) struct IoState {
    disks: std::sync::OnceLock<Vec<Arc<EmuDisk>>>,
    book: BookLock,
    queue: Mutex<VecDeque<(Instant, usize)>>,
    queue_cv: Condvar,
    stop: AtomicBool,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(crate) pended: AtomicU64,
}

const RETIRED_KEEP: usize = 4096;

impl EmuDisk {
    pub fn open(index: usize, spec: &DiskSpec) -> Result<EmuDisk, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(!spec.read_only)
            .open(&spec.path)
            .map_err(|e| format!("--disk {}: {e}", spec.path.display()))?;
        let size = file
            .metadata()
            .map_err(|e| format!("--disk {}: {e}", spec.path.display()))?
            .len();
        if size == 0 || size % spec.sector as u64 != 0 {
            return Err(format!(
                "--disk {}: size {size} is not a positive multiple of the sector size {}",
                spec.path.display(),
                spec.sector
            ));
        }
        Ok(EmuDisk {
            index,
            file,
            size,
            sector: spec.sector,
            read_only: spec.read_only,
            link: disk_link(index),
            device: 0,
            arrived: AtomicBool::new(false),
            removed: AtomicBool::new(false),
        })
    }

    /// DISK_GEOMETRY_EX without the partition/detection tail (32 bytes).
    pub fn geometry_ex(&self) -> [u8; 32] {
        let (heads, spt) = (255u32, 63u32);
        let cyl = self.size / (heads as u64 * spt as u64 * self.sector as u64);
        let mut g = [0u8; 32];
        g[0..8].copy_from_slice(&cyl.to_le_bytes());
        g[8..12].copy_from_slice(&11u32.to_le_bytes()); // RemovableMedia: a USB stick
        g[12..16].copy_from_slice(&heads.to_le_bytes());
        g[16..20].copy_from_slice(&spt.to_le_bytes());
        g[20..24].copy_from_slice(&self.sector.to_le_bytes());
        g[24..32].copy_from_slice(&self.size.to_le_bytes());
        g
    }

    /// STORAGE_DEVICE_DESCRIPTOR with its strings (vendor "Harness", product "Disk<i>").
    pub fn device_descriptor(&self) -> Vec<u8> {
        let hdr = 40usize;
        let strings = [
            "Harness".to_string(),
            format!("Disk{}", self.index),
            "1.00".to_string(),
            format!("0000{}", self.index),
        ];
        let mut d = vec![0u8; hdr];
        let mut offs = Vec::new();
        for s in &strings {
            offs.push(d.len() as u32);
            d.extend_from_slice(s.as_bytes());
            d.push(0);
        }
        let total = d.len() as u32;
        d[0..4].copy_from_slice(&(hdr as u32).to_le_bytes());
        d[4..8].copy_from_slice(&total.to_le_bytes());
        d[8] = 0; // DIRECT_ACCESS_DEVICE
        d[10] = 1; // RemovableMedia
        for (i, o) in offs.iter().enumerate() {
            d[12 + 4 * i..16 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        d[28..32].copy_from_slice(&7u32.to_le_bytes()); // BusTypeUsb
        d
    }

    /// Serves a read or write of `buf[..len]` at byte `offset`: (status, information).
    fn transfer(&self, write: bool, buf: usize, len: u32, offset: u64) -> (i32, usize) {
        // (In 32 bits: no 64-bit division per request for the usual power-of-two sector.)
        let s = self.sector as u64;
        let whole = |n: u64| {
            if s.is_power_of_two() {
                n & (s - 1) == 0
            } else {
                n.is_multiple_of(s)
            }
        };
        if !whole(len as u64) || !whole(offset) {
            return (STATUS_INVALID_PARAMETER, 0);
        }
        if offset.checked_add(len as u64).is_none_or(|e| e > self.size) {
            return (STATUS_INVALID_PARAMETER, 0);
        }
        if len == 0 {
            return (STATUS_SUCCESS, 0);
        }
        if write && self.read_only {
            return (STATUS_MEDIA_WRITE_PROTECTED, 0);
        }
        let r = if write {
            // SAFETY: the driver's buffer of `len` bytes (IoBuildSynchronousFsdRequest contract:
            // nonpaged, valid until the IRP completes).
            let b = unsafe { std::slice::from_raw_parts(buf as *const u8, len as usize) };
            self.file.write_all_at(b, offset)
        } else {
            // SAFETY: as above, writable.
            let b = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len as usize) };
            self.file.read_exact_at(b, offset)
        };
        match r {
            Ok(()) => (STATUS_SUCCESS, len as usize),
            Err(_) => (STATUS_IO_DEVICE_ERROR, 0),
        }
    }
}

impl Kernel {
    /// Opens the configured disks (`MachineConfig::disks`); call once before the driver starts.
    pub fn open_disks(&self) -> Result<(), String> {
        let specs = self.cfg.machine.disks.clone();
        let mut disks = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let mut d = EmuDisk::open(i, s)?;
            d.device = self.new_object(ObjKind::Device(i), 0);
            disks.push(Arc::new(d));
        }
        self.io
            .disks
            .set(disks)
            .map_err(|_| "open_disks called twice".to_string())
    }

    pub fn disks(&self) -> &[Arc<EmuDisk>] {
        self.io.disks.get().map_or(&[], |v| v.as_slice())
    }

    pub fn any_disk_removed(&self) -> bool {
        self.disks()
            .iter()
            .any(|d| d.removed.load(Ordering::SeqCst))
    }

    /// Why disk I/O may fail in this run, as `run` words it: a disk was removed, or asynchronous
    /// IRPs were made to hang (`--disk-hang-async-after`, cancelled by the driver's timeout).
    pub fn disk_fault(&self) -> Option<&'static str> {
        if self.any_disk_removed() {
            Some("its backing disk was removed")
        } else if self.cfg.machine.hang_async_after > 0 {
            Some("its backing disk stopped answering and the request was cancelled")
        } else {
            None
        }
    }

    fn disk_of_device(&self, dev: usize) -> Option<&EmuDisk> {
        self.disks().iter().find(|d| d.device == dev).map(|d| &**d)
    }

    /// What an IoBuild*FsdRequest asks of the emulated disk: the operation of `major` and the
    /// disk of `dev`; `None` (with a verifier failure) for any other major function or device.
    fn fsd_target(&self, api: &str, major: u32, dev: usize) -> Option<(IrpOp, &EmuDisk)> {
        let op = match major {
            IRP_MJ_READ => IrpOp::Read,
            IRP_MJ_WRITE => IrpOp::Write,
            m => {
                self.fail(format!(
                    "{api}(MajorFunction {m}): the emulated disk takes IRP_MJ_READ (3) or IRP_MJ_WRITE (4)"
                ));
                return None;
            }
        };
        let Some(d) = self.disk_of_device(dev) else {
            self.fail(format!(
                "{api}: {dev:#x} is not a DEVICE_OBJECT from IoGetDeviceObjectPointer"
            ));
            return None;
        };
        Some((op, d))
    }

    pub(crate) fn get_device_object_pointer(
        &self,
        name: *const rvblk_abi::UnicodeString,
        access: u32,
        file: *mut usize,
        dev: *mut usize,
    ) -> i32 {
        self.check_irql("IoGetDeviceObjectPointer", PASSIVE_LEVEL);
        let Some(n) = self.unicode(name, "IoGetDeviceObjectPointer ObjectName") else {
            return super::STATUS_OBJECT_NAME_INVALID;
        };
        if file.is_null() || dev.is_null() {
            self.fail("IoGetDeviceObjectPointer with a NULL FileObject or DeviceObject pointer");
            return STATUS_INVALID_PARAMETER;
        }
        if access & !0x0012_019F != 0 && access != 0x001F_01FF {
            self.log_line(format!(
                "[harness] IoGetDeviceObjectPointer({n}) access {access:#x}"
            ));
        }
        let Some(d) = self
            .disks()
            .iter()
            .find(|d| d.link.eq_ignore_ascii_case(&n))
            .cloned()
        else {
            return super::STATUS_OBJECT_NAME_NOT_FOUND;
        };
        if !d.arrived.load(Ordering::SeqCst) {
            return super::STATUS_OBJECT_NAME_NOT_FOUND;
        }
        if d.removed.load(Ordering::SeqCst) {
            return STATUS_NO_SUCH_DEVICE;
        }
        let f = self.new_object(ObjKind::File(d.index), 1);
        // SAFETY: non-null out-pointer from the driver.
        unsafe { file.write_unaligned(f) };
        // SAFETY: as above.
        unsafe { dev.write_unaligned(d.device) };
        STATUS_SUCCESS
    }

    fn new_irp(&self, api: &str, dev: usize, irp: Irp) -> usize {
        let n = self.pool_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_pool_at.load(Ordering::SeqCst) == n {
            self.log_line(format!("[harness] fault injection: {api} #{n} fails"));
            return 0;
        }
        let _ = dev;
        let a = objects::opaque_page();
        self.book().live.insert(a, irp);
        a
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build_fsd_request(
        &self,
        major: u32,
        dev: usize,
        buf: usize,
        len: u32,
        offset: *const i64,
        event: usize,
        iosb: usize,
    ) -> usize {
        let api = "IoBuildSynchronousFsdRequest";
        self.check_irql(api, PASSIVE_LEVEL);
        let Some((op, d)) = self.fsd_target(api, major, dev) else {
            return 0;
        };
        if event == 0 || iosb == 0 || offset.is_null() || (buf == 0 && len > 0) {
            self.fail(format!(
                "{api} with a NULL Event, IoStatusBlock, StartingOffset or Buffer"
            ));
            return 0;
        }
        // SAFETY: a non-null PLARGE_INTEGER from the driver.
        let off = unsafe { offset.read_unaligned() };
        if off < 0 {
            self.fail(format!("{api}: negative StartingOffset {off}"));
            return 0;
        }
        self.new_irp(
            api,
            dev,
            Irp {
                op,
                disk: d.index,
                device: dev,
                buf,
                len,
                offset: off as u64,
                event,
                iosb,
                state: IrpState::Built,
                kind: IrpKind::Sync,
            },
        )
    }

    /// IoBuildAsynchronousFsdRequest (≤ DISPATCH_LEVEL; the buffer is non-paged here): a real
    /// IRP layout (`rvblk_abi::Irp` + one `IoStackLocation`, the disk's) with a locked MDL for
    /// the buffer, as for a DO_DIRECT_IO disk. The IRP's owner frees both (IoFreeMdl after
    /// MmUnlockPages, then IoFreeIrp).
    pub(crate) fn build_async_fsd_request(
        &self,
        major: u32,
        dev: usize,
        buf: usize,
        len: u32,
        offset: *const i64,
        iosb: usize,
    ) -> usize {
        let api = "IoBuildAsynchronousFsdRequest";
        self.check_irql(api, DISPATCH_LEVEL);
        let Some((op, d)) = self.fsd_target(api, major, dev) else {
            return 0;
        };
        if offset.is_null() || buf == 0 || len == 0 {
            self.fail(format!(
                "{api} with a NULL StartingOffset or Buffer, or a zero Length"
            ));
            return 0;
        }
        // SAFETY: a non-null PLARGE_INTEGER from the driver.
        let off = unsafe { offset.read_unaligned() };
        if off < 0 {
            self.fail(format!("{api}: negative StartingOffset {off}"));
            return 0;
        }
        let n = self.pool_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_pool_at.load(Ordering::SeqCst) == n {
            self.log_line(format!("[harness] fault injection: {api} #{n} fails"));
            return 0;
        }
        let mut b = self.book();
        let mdl = b.take_mdl(rvblk_abi::Mdl {
            next: std::ptr::null_mut(),
            size: std::mem::size_of::<rvblk_abi::Mdl>() as i16,
            mdl_flags: rvblk_abi::MDL_PAGES_LOCKED,
            process: std::ptr::null_mut(),
            mapped_system_va: buf as *mut c_void,
            start_va: (buf & !0xFFF) as *mut c_void,
            byte_count: len,
            byte_offset: (buf & 0xFFF) as u32,
        });
        let irp = b.take_irp_block();
        // SAFETY: a fresh, zeroed block holding the IRP and its one stack location; nothing
        // else knows it yet.
        let r = unsafe { &mut *(irp as *mut rvblk_abi::Irp) };
        r.head.r#type = IO_TYPE_IRP;
        r.head.size = ASYNC_IRP_BYTES as u16;
        r.head.mdl_address = mdl as *mut c_void;
        r.head.stack_count = 1;
        r.head.current_location = 2;
        r.head.user_iosb = iosb as *mut c_void;
        let stack = stack_of(irp);
        // SAFETY: the stack location right after the IRP in the same block.
        let loc = unsafe { &mut *stack };
        loc.major_function = major as u8;
        loc.set_rw(len, off as u64);
        r.current_stack_location = stack.wrapping_add(1);
        b.mdls.insert(mdl, true);
        b.live.insert(
            irp,
            Irp {
                op,
                disk: d.index,
                device: dev,
                buf,
                len,
                offset: off as u64,
                event: 0,
                iosb,
                state: IrpState::Built,
                kind: IrpKind::Async { mdl },
            },
        );
        irp
    }

    /// MmUnlockPages (≤ DISPATCH) on an MDL of an asynchronous IRP.
    pub(crate) fn unlock_pages(&self, mdl: usize) {
        self.check_irql("MmUnlockPages", DISPATCH_LEVEL);
        let mut m = self.book();
        match m.mdls.get_mut(&mdl) {
            Some(locked @ true) => {
                *locked = false;
                // SAFETY: our MDL, alive until IoFreeMdl.
                unsafe {
                    (*(mdl as *mut rvblk_abi::Mdl)).mdl_flags &= !rvblk_abi::MDL_PAGES_LOCKED
                };
            }
            Some(false) => {
                drop(m);
                self.fail(format!(
                    "MmUnlockPages({mdl:#x}): the pages are not locked (unlocked twice)"
                ));
            }
            None => {
                drop(m);
                self.fail(format!(
                    "MmUnlockPages({mdl:#x}): not an MDL the I/O manager locked"
                ));
            }
        }
    }

    /// IoFreeMdl (≤ DISPATCH) on an MDL of an asynchronous IRP.
    pub(crate) fn io_free_mdl(&self, mdl: usize) {
        self.check_irql("IoFreeMdl", DISPATCH_LEVEL);
        let mut b = self.book();
        let taken = b.mdls.remove(&mdl);
        if taken.is_some() {
            b.give_mdl(mdl);
        }
        drop(b);
        match taken {
            Some(locked) => {
                if locked {
                    self.fail(format!(
                        "IoFreeMdl({mdl:#x}): its pages are still locked (MmUnlockPages first)"
                    ));
                }
            }
            None => self.fail(format!(
                "IoFreeMdl({mdl:#x}): not an MDL of an IRP from IoBuildAsynchronousFsdRequest (or freed twice)"
            )),
        }
    }

    /// IoFreeIrp (≤ DISPATCH): an asynchronous IRP that completed and was kept by its
    /// completion routine, or that was never sent.
    pub(crate) fn io_free_irp(&self, irp: usize) {
        self.check_irql("IoFreeIrp", DISPATCH_LEVEL);
        let mut irps = self.book();
        let state = irps.live.get(&irp).map(|r| (r.state, r.kind));
        match state {
            Some((
                IrpState::Kept | IrpState::Built | IrpState::Completing,
                IrpKind::Async { .. },
            )) => {
                irps.live.remove(&irp);
                irps.retire(irp);
                irps.give_irp_block(irp);
            }
            Some((_, IrpKind::Sync)) => {
                drop(irps);
                self.fail(format!(
                    "IoFreeIrp({irp:#x}): a synchronous IRP (the I/O manager frees it at completion)"
                ));
            }
            Some((IrpState::Pending, _)) => {
                drop(irps);
                self.fail(format!("IoFreeIrp({irp:#x}): the IRP is still in flight"));
            }
            _ => {
                let retired = irps.retired.contains(&irp);
                drop(irps);
                self.fail(if retired {
                    format!("IoFreeIrp({irp:#x}): freed twice")
                } else {
                    format!("IoFreeIrp({irp:#x}): not an IRP the I/O manager built")
                });
            }
        }
    }

    fn book(&self) -> BookGuard<'_> {
        self.io.book.lock()
    }

    /// Completes an asynchronous IRP as IoCompleteRequest does: the status into the IRP, then
    /// the completion routine of the disk's stack location if its SL_INVOKE_* bits ask for this
    /// outcome. A routine that returns STATUS_MORE_PROCESSING_REQUIRED keeps the IRP (it must
    /// free it); otherwise the I/O manager finishes it (user IOSB, MDLs, the IRP). Returns the
    /// status.
    fn complete_async(&self, irp: usize, status: i32, info: usize, pended: bool) -> i32 {
        // SAFETY: the IRP block is alive until IoFreeIrp, which needs state Kept (set below).
        let r = unsafe { &mut *(irp as *mut rvblk_abi::Irp) };
        r.head.io_status.status = status as u32 as usize;
        r.head.io_status.information = info;
        if pended {
            r.head.pending_returned = 1;
        }
        // SAFETY: the disk's stack location inside the IRP block (IofCallDriver made it current).
        let loc = unsafe { &*r.current_stack_location };
        let (routine, context, control) = (loc.completion_routine, loc.context, loc.control);
        // IoCompleteRequest moves up one location before calling the routine set in it.
        r.current_stack_location = r.current_stack_location.wrapping_add(1);
        r.head.current_location += 1;
        let want = if status == STATUS_CANCELLED {
            rvblk_abi::SL_INVOKE_ON_CANCEL
        } else if status < 0 {
            rvblk_abi::SL_INVOKE_ON_ERROR
        } else {
            rvblk_abi::SL_INVOKE_ON_SUCCESS
        };
        let mut kept = false;
        if let Some(f) = routine.filter(|_| control & want != 0) {
            let before = super::irql();
            // SAFETY: the driver's IO_COMPLETION_ROUTINE with the context it set; DeviceObject
            // is NULL because the driver that built the IRP has no stack location of its own.
            let st = unsafe { f(std::ptr::null_mut(), irp as *mut rvblk_abi::Irp, context) };
            if super::irql() != before {
                self.fail(format!(
                    "the completion routine of IRP {irp:#x} returned at IRQL {} (called at {before})",
                    super::irql()
                ));
                super::set_irql(before);
            }
            kept = st == rvblk_abi::STATUS_MORE_PROCESSING_REQUIRED;
        }
        let mut irps = self.book();
        irps.completed += 1;
        if kept {
            // The routine may already have freed it (IoFreeIrp inside the routine).
            if let Some(r) = irps.live.get_mut(&irp) {
                r.state = IrpState::Kept;
            }
            return status;
        }
        // Not kept: the I/O manager finishes the IRP itself.
        let Some(r) = irps.live.remove(&irp) else {
            drop(irps);
            self.fail(format!(
                "IRP {irp:#x}: its completion routine freed it but did not return STATUS_MORE_PROCESSING_REQUIRED"
            ));
            return status;
        };
        irps.retire(irp);
        if let IrpKind::Async { mdl, .. } = r.kind {
            // The IRP's own MDL, unless the driver freed it (then it is out of the table).
            if irps.mdls.remove(&mdl).is_some() {
                irps.give_mdl(mdl);
            }
        }
        irps.give_irp_block(irp);
        drop(irps);
        if r.iosb != 0 {
            let p = std::mem::size_of::<usize>();
            // SAFETY: the caller's IO_STATUS_BLOCK.
            unsafe { (r.iosb as *mut usize).write_unaligned(status as u32 as usize) };
            // SAFETY: as above.
            unsafe { ((r.iosb + p) as *mut usize).write_unaligned(info) };
        }
        status
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build_ioctl_request(
        &self,
        code: u32,
        dev: usize,
        input: usize,
        inlen: u32,
        output: usize,
        outlen: u32,
        internal: u8,
        event: usize,
        iosb: usize,
    ) -> usize {
        let api = "IoBuildDeviceIoControlRequest";
        self.check_irql(api, PASSIVE_LEVEL);
        let Some(d) = self.disk_of_device(dev) else {
            self.fail(format!(
                "{api}: {dev:#x} is not a DEVICE_OBJECT from IoGetDeviceObjectPointer"
            ));
            return 0;
        };
        if event == 0 || iosb == 0 {
            self.fail(format!("{api} with a NULL Event or IoStatusBlock"));
            return 0;
        }
        if internal != 0 {
            self.log_line(format!(
                "[harness] {api}({code:#x}) with InternalDeviceIoControl TRUE: the disk answers it like IRP_MJ_DEVICE_CONTROL"
            ));
        }
        if (input == 0 && inlen > 0) || (output == 0 && outlen > 0) {
            self.fail(format!(
                "{api}({code:#x}): a NULL buffer with a non-zero length"
            ));
            return 0;
        }
        // METHOD_BUFFERED: the I/O manager copies the input when it builds the IRP.
        let data = if inlen > 0 {
            // SAFETY: `inlen` readable bytes at `input` (the caller's input buffer).
            unsafe { std::slice::from_raw_parts(input as *const u8, inlen as usize) }.to_vec()
        } else {
            Vec::new()
        };
        self.new_irp(
            api,
            dev,
            Irp {
                op: IrpOp::Ioctl { code, input: data },
                disk: d.index,
                device: dev,
                buf: output,
                len: outlen,
                offset: 0,
                event,
                iosb,
                state: IrpState::Built,
                kind: IrpKind::Sync,
            },
        )
    }

    pub(crate) fn call_driver(&self, dev: usize, irp: usize) -> i32 {
        self.check_irql("IofCallDriver", DISPATCH_LEVEL);
        let mut book = self.book();
        let irps = &mut *book;
        let Some(r) = irps.live.get_mut(&irp) else {
            let retired = irps.retired.contains(&irp);
            drop(book);
            self.fail(if retired {
                format!(
                    "IofCallDriver: IRP {irp:#x} sent twice (it already completed and was freed)"
                )
            } else {
                format!("IofCallDriver({dev:#x}, {irp:#x}): not an IRP the I/O manager built")
            });
            return STATUS_INVALID_PARAMETER;
        };
        if r.state != IrpState::Built {
            drop(book);
            self.fail(format!(
                "IofCallDriver: IRP {irp:#x} sent twice (it is still in flight)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        if r.device != dev {
            let built = r.device;
            drop(book);
            self.fail(format!(
                "IofCallDriver({dev:#x}, {irp:#x}): the IRP was built for device {built:#x}"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        irps.sent += 1;
        let n = irps.sent;
        let every = self.cfg.machine.pend_every as u64;
        let removed = self.disks()[r.disk].removed.load(Ordering::SeqCst);
        if let IrpKind::Async { .. } = r.kind {
            // The disk's stack location becomes the current one.
            // SAFETY: our IRP block, not freed while in the table.
            let x = unsafe { &mut *(irp as *mut rvblk_abi::Irp) };
            x.head.current_location -= 1;
            x.current_stack_location = x.current_stack_location.wrapping_sub(1);
            // SAFETY: the disk's stack location inside the same block.
            unsafe { (*x.current_stack_location).device_object = dev as *mut c_void };
            irps.async_sent += 1;
            let a = irps.async_sent;
            let hang_after = self.cfg.machine.hang_async_after;
            let hang = hang_after > 0 && a > hang_after && !removed;
            if hang || (every > 0 && n.is_multiple_of(every) && !removed) {
                r.state = IrpState::Pending;
                drop(book);
                self.io.pended.fetch_add(1, Ordering::Relaxed);
                if !hang {
                    self.ensure_completion_thread();
                    let due = Instant::now() + Duration::from_micros(self.cfg.machine.pend_us);
                    self.io
                        .queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back((due, irp));
                    self.io.queue_cv.notify_all();
                }
                return STATUS_PENDING;
            }
            r.state = IrpState::Completing;
            let r = r.clone();
            drop(book);
            let (status, info) = self.perform(&r, None);
            return self.complete_async(irp, status, info, false);
        }
        if every > 0 && n.is_multiple_of(every) && !removed {
            r.state = IrpState::Pending;
            drop(book);
            self.io.pended.fetch_add(1, Ordering::Relaxed);
            self.ensure_completion_thread();
            let due = Instant::now() + Duration::from_micros(self.cfg.machine.pend_us);
            self.io
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back((due, irp));
            self.io.queue_cv.notify_all();
            return STATUS_PENDING;
        }
        let r = irps.live.remove(&irp).expect("present");
        drop(book);
        self.finish(irp, r, None)
    }

    /// Performs and completes an IRP taken out of the table: fills the IO_STATUS_BLOCK, then
    /// sets the event (as IopCompleteRequest does for a synchronous FSD/IOCTL request).
    /// The disk's answer to an IRP: (status, information).
    fn perform(&self, r: &Irp, forced: Option<i32>) -> (i32, usize) {
        let d = &self.disks()[r.disk];
        match forced {
            Some(s) => (s, 0),
            None if d.removed.load(Ordering::SeqCst) => (STATUS_NO_SUCH_DEVICE, 0),
            None => match &r.op {
                IrpOp::Read => d.transfer(false, r.buf, r.len, r.offset),
                IrpOp::Write => d.transfer(true, r.buf, r.len, r.offset),
                IrpOp::Ioctl { code, input } => ioctl(d, *code, input, r.buf, r.len),
            },
        }
    }

    /// Completes an IRP taken out of the pending state: a synchronous one through `finish`, an
    /// asynchronous one (left in the table) through `complete_async`.
    fn finish_any(&self, irp: usize, r: Irp, forced: Option<i32>) -> i32 {
        if let IrpKind::Async { .. } = r.kind {
            let (status, info) = self.perform(&r, forced);
            return self.complete_async(irp, status, info, true);
        }
        self.finish(irp, r, forced)
    }

    fn finish(&self, irp: usize, r: Irp, forced: Option<i32>) -> i32 {
        let (status, info) = self.perform(&r, forced);
        let p = std::mem::size_of::<usize>();
        // SAFETY: IO_STATUS_BLOCK in driver memory: Status (pointer-sized union) @0,
        // Information @pointer size.
        unsafe { (r.iosb as *mut usize).write_unaligned(status as u32 as usize) };
        // SAFETY: as above.
        unsafe { ((r.iosb + p) as *mut usize).write_unaligned(info) };
        {
            let mut b = self.book();
            b.retire(irp);
            b.completed += 1;
        }
        objects::release_opaque(irp);
        self.set_event(None, r.event);
        status
    }

    pub(crate) fn cancel_irp(&self, irp: usize) -> u8 {
        self.check_irql("IoCancelIrp", DISPATCH_LEVEL);
        let mut irps = self.book();
        match irps.live.get(&irp).map(|r| r.state) {
            Some(IrpState::Pending) => {
                let r = take_pending(&mut irps.live, irp).expect("present");
                drop(irps);
                self.finish_any(irp, r, Some(STATUS_CANCELLED));
                1
            }
            Some(IrpState::Built) => 0,
            Some(IrpState::Kept | IrpState::Completing) => {
                drop(irps);
                self.log_line(format!(
                    "[harness] IoCancelIrp({irp:#x}) after the IRP completed (lost the race with its completion): FALSE"
                ));
                0
            }
            None => {
                let retired = irps.retired.contains(&irp);
                drop(irps);
                if retired {
                    self.log_line(format!(
                        "[harness] IoCancelIrp({irp:#x}) after the IRP completed (lost the race with its completion): FALSE"
                    ));
                } else {
                    self.fail(format!(
                        "IoCancelIrp({irp:#x}): not an IRP the I/O manager built"
                    ));
                }
                0
            }
        }
    }

    /// Surprise removal of disk `i`, step 1: every pending IRP of it fails with
    /// STATUS_NO_SUCH_DEVICE, and so does every new one.
    pub fn remove_disk(&self, i: usize) {
        let Some(d) = self.disks().get(i) else {
            return;
        };
        d.removed.store(true, Ordering::SeqCst);
        let mut book = self.book();
        let irps = &mut book.live;
        let victims: Vec<usize> = irps
            .iter()
            .filter(|(_, r)| r.disk == i && r.state == IrpState::Pending)
            .map(|(a, _)| *a)
            .collect();
        let taken: Vec<(usize, Irp)> = victims
            .into_iter()
            .filter_map(|a| take_pending(irps, a).map(|r| (a, r)))
            .collect();
        drop(book);
        for (a, r) in taken {
            self.finish_any(a, r, Some(STATUS_NO_SUCH_DEVICE));
        }
    }

    fn ensure_completion_thread(&self) {
        self.spawn_once(&self.io.worker, "irp-completion", Kernel::completion_loop);
    }

    fn completion_loop(&self) {
        let mut q = self.io.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.io.stop.load(Ordering::SeqCst) && q.is_empty() {
                return;
            }
            let Some(&(due, irp)) = q.front() else {
                q = self
                    .io
                    .queue_cv
                    .wait_timeout(q, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            };
            let now = Instant::now();
            // Stopping: what is still queued completes now.
            if due > now && !self.io.stop.load(Ordering::SeqCst) {
                q = self
                    .io
                    .queue_cv
                    .wait_timeout(q, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            q.pop_front();
            drop(q);
            let r = {
                let mut irps = self.book();
                match irps.live.get(&irp).map(|r| r.state) {
                    Some(IrpState::Pending) => take_pending(&mut irps.live, irp),
                    // Cancelled or failed by a removal meanwhile.
                    _ => None,
                }
            };
            if let Some(r) = r {
                // Completion runs at DISPATCH_LEVEL on Windows (a DPC); an asynchronous IRP's
                // completion routine is driver code, run on an emulated kernel stack.
                crate::emu::stack::on_kernel_stack(|| {
                    super::at_irql(DISPATCH_LEVEL, || self.finish_any(irp, r, None))
                });
            }
            q = self.io.queue.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// IRPs sent to the emulated disks so far (IofCallDriver calls), all kinds.
    pub fn disk_irps_sent(&self) -> u64 {
        self.book().sent
    }

    /// Stops the completion thread (after finishing what is queued).
    pub(crate) fn stop_io(&self) {
        let (sent, async_sent) = {
            let b = self.book();
            (b.sent, b.async_sent)
        };
        if sent > 0 {
            self.log_line(format!(
                "[harness] disk IRPs: {sent} sent ({async_sent} asynchronous), {} pended",
                self.io.pended.load(Ordering::SeqCst)
            ));
        }
        self.io.stop.store(true, Ordering::SeqCst);
        self.io.queue_cv.notify_all();
        let h = self
            .io
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }

    /// IRPs built and never sent, and IRPs still pending, as verifier lines.
    pub(crate) fn irp_leaks(&self) -> Vec<String> {
        let book = self.book();
        let mut v: Vec<String> = book
            .live
            .iter()
            .map(|(a, r)| match r.state {
                IrpState::Built => format!(
                    "IRP {a:#x} ({:?} on disk {}) built but never sent with IofCallDriver (leaked)",
                    r.op_name(),
                    r.disk
                ),
                IrpState::Pending => format!(
                    "IRP {a:#x} ({:?} on disk {}) still pending: the driver did not wait for it",
                    r.op_name(),
                    r.disk
                ),
                IrpState::Kept | IrpState::Completing => format!(
                    "IRP {a:#x} ({:?} on disk {}) kept by its completion routine and never freed (IoFreeIrp)",
                    r.op_name(),
                    r.disk
                ),
            })
            .collect();
        v.extend(
            book.mdls
                .keys()
                .map(|m| format!("MDL {m:#x} of an asynchronous IRP never freed (IoFreeMdl)")),
        );
        v.sort();
        v
    }

    /// Counters: (IRPs sent, of them pended, completed).
    pub fn irp_counts(&self) -> (u64, u64, u64) {
        let (sent, completed) = {
            let b = self.book();
            (b.sent, b.completed)
        };
        (sent, self.io.pended.load(Ordering::Relaxed), completed)
    }
}

/// Takes a pending IRP out of the table for its completion: a synchronous one leaves it, an
/// asynchronous one stays (its block lives until IoFreeIrp) and is handed out as a copy.
fn take_pending(irps: &mut ByAddr<Irp>, irp: usize) -> Option<Irp> {
    match irps.get(&irp)?.kind {
        IrpKind::Sync => irps.remove(&irp),
        IrpKind::Async { .. } => {
            let r = irps.get_mut(&irp)?;
            // In completion: neither pending (no second completion) nor kept yet.
            r.state = IrpState::Completing;
            Some(r.clone())
        }
    }
}

/// `IO_TYPE_IRP`.
const IO_TYPE_IRP: i16 = 6;
/// One asynchronous IRP: the IRP and its one stack location.
const ASYNC_IRP_BYTES: usize =
    std::mem::size_of::<rvblk_abi::Irp>() + std::mem::size_of::<rvblk_abi::IoStackLocation>();

/// Pointer-aligned zeroed storage of an asynchronous IRP.
fn alloc_async_irp() -> usize {
    let words = ASYNC_IRP_BYTES.div_ceil(std::mem::size_of::<usize>());
    Box::into_raw(vec![0usize; words].into_boxed_slice()) as *mut usize as usize
}

fn free_async_irp(irp: usize) {
    let words = ASYNC_IRP_BYTES.div_ceil(std::mem::size_of::<usize>());
    // SAFETY: allocated by `alloc_async_irp` with this length, freed once (taken out of the
    // table by the caller).
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(irp as *mut usize, words)) });
}

/// The IRP's one stack location (right after the IRP).
fn stack_of(irp: usize) -> *mut rvblk_abi::IoStackLocation {
    (irp + std::mem::size_of::<rvblk_abi::Irp>()) as *mut rvblk_abi::IoStackLocation
}

impl Irp {
    fn op_name(&self) -> &'static str {
        match self.op {
            IrpOp::Read => "IRP_MJ_READ",
            IrpOp::Write => "IRP_MJ_WRITE",
            IrpOp::Ioctl { .. } => "IRP_MJ_DEVICE_CONTROL",
        }
    }
}

/// The two IOCTLs the emulated disk answers (ASYNC.md): (status, information).
fn ioctl(d: &EmuDisk, code: u32, input: &[u8], out: usize, outlen: u32) -> (i32, usize) {
    let put = |bytes: &[u8]| {
        let n = bytes.len().min(outlen as usize);
        // SAFETY: `outlen` writable bytes at `out` (the caller's output buffer).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out as *mut u8, n) };
        n
    };
    match code {
        IOCTL_DISK_GET_DRIVE_GEOMETRY_EX => {
            if outlen < 32 {
                return (STATUS_BUFFER_TOO_SMALL, 0);
            }
            (STATUS_SUCCESS, put(&d.geometry_ex()))
        }
        IOCTL_STORAGE_QUERY_PROPERTY => {
            if input.len() < 8 {
                return (STATUS_INVALID_PARAMETER, 0);
            }
            let id = u32::from_le_bytes(input[0..4].try_into().expect("4 bytes"));
            let qt = u32::from_le_bytes(input[4..8].try_into().expect("4 bytes"));
            match (id, qt) {
                (0, 0) => {
                    // At least the STORAGE_DESCRIPTOR_HEADER (Version, Size) must fit.
                    if outlen < 8 {
                        return (STATUS_BUFFER_TOO_SMALL, 0);
                    }
                    (STATUS_SUCCESS, put(&d.device_descriptor()))
                }
                (0, 1) => (STATUS_SUCCESS, 0),
                _ => (STATUS_NOT_SUPPORTED, 0),
            }
        }
        _ => (STATUS_INVALID_DEVICE_REQUEST, 0),
    }
}
