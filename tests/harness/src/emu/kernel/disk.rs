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
use super::{Kernel, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER};
use rvblk_abi::status::{STATUS_BUFFER_TOO_SMALL, STATUS_NO_SUCH_DEVICE, STATUS_SUCCESS};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
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
}

/// Session state of the I/O manager part.
#[derive(Default)]
pub(crate) struct IoState {
    disks: std::sync::OnceLock<Vec<Arc<EmuDisk>>>,
    irps: Mutex<HashMap<usize, Irp>>,
    /// Recently completed IRP addresses (to name a second IofCallDriver as such).
    retired: Mutex<VecDeque<usize>>,
    queue: Mutex<VecDeque<(Instant, usize)>>,
    queue_cv: Condvar,
    stop: AtomicBool,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    sent: AtomicU64,
    pub(crate) completed: AtomicU64,
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
        let s = self.sector as u64;
        if !(len as u64).is_multiple_of(s) || !offset.is_multiple_of(s) {
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

    fn disk_of_device(&self, dev: usize) -> Option<Arc<EmuDisk>> {
        self.disks().iter().find(|d| d.device == dev).cloned()
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
        self.io
            .irps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(a, irp);
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
        let op = match major {
            IRP_MJ_READ => IrpOp::Read,
            IRP_MJ_WRITE => IrpOp::Write,
            m => {
                self.fail(format!(
                    "{api}(MajorFunction {m}): the emulated disk takes IRP_MJ_READ (3) or IRP_MJ_WRITE (4)"
                ));
                return 0;
            }
        };
        let Some(d) = self.disk_of_device(dev) else {
            self.fail(format!(
                "{api}: {dev:#x} is not a DEVICE_OBJECT from IoGetDeviceObjectPointer"
            ));
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
            },
        )
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
            },
        )
    }

    pub(crate) fn call_driver(&self, dev: usize, irp: usize) -> i32 {
        self.check_irql("IofCallDriver", DISPATCH_LEVEL);
        let mut irps = self.io.irps.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = irps.get_mut(&irp) else {
            drop(irps);
            let retired = self
                .io
                .retired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&irp);
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
            drop(irps);
            self.fail(format!(
                "IofCallDriver: IRP {irp:#x} sent twice (it is still in flight)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        if r.device != dev {
            let built = r.device;
            drop(irps);
            self.fail(format!(
                "IofCallDriver({dev:#x}, {irp:#x}): the IRP was built for device {built:#x}"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let n = self.io.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.cfg.machine.pend_every as u64;
        let removed = self.disks()[r.disk].removed.load(Ordering::SeqCst);
        if every > 0 && n.is_multiple_of(every) && !removed {
            r.state = IrpState::Pending;
            drop(irps);
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
        let r = irps.remove(&irp).expect("present");
        drop(irps);
        self.finish(irp, r, None)
    }

    /// Performs and completes an IRP taken out of the table: fills the IO_STATUS_BLOCK, then
    /// sets the event (as IopCompleteRequest does for a synchronous FSD/IOCTL request).
    fn finish(&self, irp: usize, r: Irp, forced: Option<i32>) -> i32 {
        let d = self.disks()[r.disk].clone();
        let (status, info) = match forced {
            Some(s) => (s, 0),
            None if d.removed.load(Ordering::SeqCst) => (STATUS_NO_SUCH_DEVICE, 0),
            None => match &r.op {
                IrpOp::Read => d.transfer(false, r.buf, r.len, r.offset),
                IrpOp::Write => d.transfer(true, r.buf, r.len, r.offset),
                IrpOp::Ioctl { code, input } => ioctl(&d, *code, input, r.buf, r.len),
            },
        };
        let p = std::mem::size_of::<usize>();
        // SAFETY: IO_STATUS_BLOCK in driver memory: Status (pointer-sized union) @0,
        // Information @pointer size.
        unsafe { (r.iosb as *mut usize).write_unaligned(status as u32 as usize) };
        // SAFETY: as above.
        unsafe { ((r.iosb + p) as *mut usize).write_unaligned(info) };
        {
            let mut ret = self.io.retired.lock().unwrap_or_else(|e| e.into_inner());
            ret.push_back(irp);
            if ret.len() > RETIRED_KEEP {
                ret.pop_front();
            }
        }
        objects::release_opaque(irp);
        self.io.completed.fetch_add(1, Ordering::Relaxed);
        self.set_event(None, r.event);
        status
    }

    pub(crate) fn cancel_irp(&self, irp: usize) -> u8 {
        self.check_irql("IoCancelIrp", DISPATCH_LEVEL);
        let mut irps = self.io.irps.lock().unwrap_or_else(|e| e.into_inner());
        match irps.get(&irp).map(|r| r.state) {
            Some(IrpState::Pending) => {
                let r = irps.remove(&irp).expect("present");
                drop(irps);
                self.finish(irp, r, Some(STATUS_CANCELLED));
                1
            }
            Some(IrpState::Built) => 0,
            None => {
                drop(irps);
                if self
                    .io
                    .retired
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&irp)
                {
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
        let mut irps = self.io.irps.lock().unwrap_or_else(|e| e.into_inner());
        let victims: Vec<usize> = irps
            .iter()
            .filter(|(_, r)| r.disk == i && r.state == IrpState::Pending)
            .map(|(a, _)| *a)
            .collect();
        let taken: Vec<(usize, Irp)> = victims
            .into_iter()
            .filter_map(|a| irps.remove(&a).map(|r| (a, r)))
            .collect();
        drop(irps);
        for (a, r) in taken {
            self.finish(a, r, Some(STATUS_NO_SUCH_DEVICE));
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
                let mut irps = self.io.irps.lock().unwrap_or_else(|e| e.into_inner());
                match irps.get(&irp).map(|r| r.state) {
                    Some(IrpState::Pending) => irps.remove(&irp),
                    // Cancelled or failed by a removal meanwhile.
                    _ => None,
                }
            };
            if let Some(r) = r {
                // Completion runs at DISPATCH_LEVEL on Windows (a DPC); nothing here calls the
                // driver.
                super::at_irql(DISPATCH_LEVEL, || self.finish(irp, r, None));
            }
            q = self.io.queue.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops the completion thread (after finishing what is queued).
    pub(crate) fn stop_io(&self) {
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
        let irps = self.io.irps.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = irps
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
            })
            .collect();
        v.sort();
        v
    }

    /// Counters: (IRPs sent, of them pended, completed).
    pub fn irp_counts(&self) -> (u64, u64, u64) {
        (
            self.io.sent.load(Ordering::Relaxed),
            self.io.pended.load(Ordering::Relaxed),
            self.io.completed.load(Ordering::Relaxed),
        )
    }
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
