//! Emulated StorPort: driver load, DriverEntry/StorPortInitialize validation, the virtual
//! HwFindAdapter with a guarded PORT_CONFIGURATION_INFORMATION, HwInitialize, SRB issue through
//! HwStartIo at DISPATCH_LEVEL (from any number of threads), adapter control and removal.
//! The same `Adapter` drives a legacy SCSIPORT miniport under the xp personality (its start-up
//! happens inside ScsiPortInitialize, see `scsiport`; HwStartIo is serialised there).

use crate::checks::guard::{self, GuardedBuf, PAGE};
use crate::emu::kernel::{
    self, Active, Kernel, Personality, SrbTrack, DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL,
};
use crate::emu::stack::on_kernel_stack;
use crate::host::pe::{self, LoadedImage};
use rvblk_abi::{
    DriverEntryFn, HwAdapterControlFn, HwFreeAdapterResourcesFn, HwInitializationData,
    HwInitializeFn, HwResetBusFn, HwStartIoFn, PortConfigurationInformation, ScsiRequestBlock,
    VirtualHwFindAdapterFn,
};
use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const SRB_STATUS_PENDING: u8 = 0x00;
pub const SRB_STATUS_SUCCESS: u8 = 0x01;
pub const SRB_STATUS_ERROR: u8 = 0x04;
pub const SRB_STATUS_BUSY: u8 = 0x05;
pub const SRB_STATUS_INVALID_REQUEST: u8 = 0x06;
pub const SRB_STATUS_NO_DEVICE: u8 = 0x08;
pub const SRB_STATUS_SELECTION_TIMEOUT: u8 = 0x0A;
pub const SRB_STATUS_DATA_OVERRUN: u8 = 0x12;
pub const SRB_STATUS_INVALID_LUN: u8 = 0x20;
pub const SRB_STATUS_INVALID_TARGET_ID: u8 = 0x21;
pub const SRB_STATUS_INVALID_PATH_ID: u8 = 0x07;
pub const SRB_STATUS_INSUFFICIENT_RESOURCES: u8 = 0x26;
pub const SRB_STATUS_QUEUE_FROZEN: u8 = 0x40;
pub const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80;

pub const SRB_FLAGS_DISABLE_AUTOSENSE: u32 = 0x20;
pub const SRB_FLAGS_DATA_IN: u32 = 0x40;
pub const SRB_FLAGS_DATA_OUT: u32 = 0x80;
pub const SRB_FLAGS_QUEUE_ACTION_ENABLE: u32 = 0x02;

const SP_UNINITIALIZED_VALUE: u32 = 0xFFFF_FFFF;

/// All SrbStatus values a miniport may complete with (without the flag bits).
pub fn valid_srb_status(s: u8) -> bool {
    matches!(
        s & 0x3f,
        0x01..=0x0B | 0x0D..=0x16 | 0x18 | 0x19 | 0x20..=0x23 | 0x25..=0x28 | 0x30 | 0x32..=0x34
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    None,
    In,
    Out,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub function: u8,
    pub path: u8,
    pub target: u8,
    pub lun: u8,
    pub cdb: Vec<u8>,
    pub dir: Dir,
    pub len: u32,
    pub sense_len: u8,
    pub extra_flags: u32,
}

impl Request {
    pub fn scsi(target: u8, lun: u8, cdb: &[u8], dir: Dir, len: u32) -> Request {
        Request {
            function: 0,
            path: 0,
            target,
            lun,
            cdb: cdb.to_vec(),
            dir,
            len,
            sense_len: 18,
            extra_flags: 0,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub srb_status: u8,
    pub scsi_status: u8,
    pub transferred: u32,
    /// Sense bytes when AUTOSENSE_VALID was set.
    pub sense: Option<Vec<u8>>,
    pub start_io_returned: bool,
}

impl Outcome {
    pub fn status(&self) -> u8 {
        self.srb_status & 0x3f
    }
    pub fn ok(&self) -> bool {
        self.status() == SRB_STATUS_SUCCESS
    }
    /// (sense key, ASC, ASCQ) from fixed-format sense data.
    pub fn sense_key(&self) -> Option<(u8, u8, u8)> {
        let s = self.sense.as_ref()?;
        if s.len() < 14 {
            return s.get(2).map(|k| (k & 0xf, 0, 0));
        }
        Some((s[2] & 0xf, s[12], s[13]))
    }
}

/// Opcodes whose data buffer Vista/7 StorPort leaves unmapped in this emulation: every SBC/MMC
/// command that moves medium data (READ/WRITE 6/10/12/16, VERIFY 10/12/16, WRITE AND VERIFY
/// 10/12/16, READ CD). Kept independent of the driver's own classification: the harness is
/// the oracle, and erring wide makes the Win7 personality stricter.
pub fn is_rw_opcode(op: u8) -> bool {
    matches!(
        op,
        0x08 | 0x0A
            | 0x28
            | 0x2A
            | 0xA8
            | 0xAA
            | 0x88
            | 0x8A
            | 0x2F
            | 0xAF
            | 0x8F
            | 0x2E
            | 0xAE
            | 0x8E
            | 0xBE
    )
}

#[derive(Clone, Debug, Default)]
pub struct PortConfig {
    pub length: u32,
    pub max_transfer: u32,
    pub physical_breaks: u32,
    pub buses: u8,
    pub max_targets: u8,
    pub max_luns: u8,
    pub map_buffers: u8,
    pub sync_model: u32,
    pub virtual_device: bool,
    pub alignment_mask: u32,
}

/// One reusable set of guarded SRB/sense/extension/data buffers (one per issuing thread).
pub struct SrbSlot {
    k: Arc<Kernel>,
    _srb_page: GuardedBuf,
    sense: GuardedBuf,
    ext: Option<GuardedBuf>,
    pub data: GuardedBuf,
    fake: GuardedBuf,
    track: Arc<SrbTrack>,
    srb: *mut ScsiRequestBlock,
    /// Lighter checks for benchmarks (no per-I/O pattern fills of the SrbExtension).
    pub light: bool,
}

// SAFETY: the slot's memory is owned by it and used by one thread at a time.
unsafe impl Send for SrbSlot {}

impl SrbSlot {
    pub fn srb_addr(&self) -> usize {
        self.srb as usize
    }

    /// The first `len` bytes of the data buffer for the last request of length `len`.
    pub fn data(&self, len: usize) -> &[u8] {
        // SAFETY: `tail(len)` is inside the data buffer.
        unsafe { std::slice::from_raw_parts(self.data.tail(len), len) }
    }

    pub fn data_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: as above; exclusive through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.data.tail(len), len) }
    }
}

impl Drop for SrbSlot {
    fn drop(&mut self) {
        self.k
            .srbs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.srb as usize));
    }
}

#[derive(Clone, Copy)]
struct HwFns {
    initialize: HwInitializeFn,
    start_io: HwStartIoFn,
    reset_bus: HwResetBusFn,
    adapter_control: Option<HwAdapterControlFn>,
    free_resources: Option<HwFreeAdapterResourcesFn>,
}

#[derive(Debug)]
pub enum StartError {
    Load(String),
    DriverEntry(i32),
    /// HwFindAdapter did not return SP_RETURN_FOUND.
    NotFound(u32),
    Initialize,
    Invalid(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Load(s) => write!(f, "load failed: {s}"),
            StartError::DriverEntry(s) => write!(f, "DriverEntry returned {:#010x}", *s as u32),
            StartError::NotFound(r) => {
                write!(f, "HwFindAdapter returned {r} (not SP_RETURN_FOUND)")
            }
            StartError::Initialize => write!(f, "HwInitialize returned FALSE"),
            StartError::Invalid(s) => write!(f, "{s}"),
        }
    }
}

/// A started adapter. Drop order matters: the image must outlive everything that calls it.
pub struct Adapter {
    pub k: Arc<Kernel>,
    hw: HwFns,
    pub cfg: PortConfig,
    pub srb_ext_size: usize,
    pub supported_controls: Vec<bool>,
    pub init_size: u32,
    map_rw: bool,
    /// SCSIPORT: HwStartIo is serialised, and every data buffer is mapped or none is.
    legacy: bool,
    serial: std::sync::Mutex<()>,
    _ext: GuardedBuf,
    _objects: Vec<GuardedBuf>,
    pub image: LoadedImage,
    stopped: bool,
    removed: bool,
    _active: Active,
}

fn unicode_string(s: &str, label: &str) -> GuardedBuf {
    let w: Vec<u16> = s.encode_utf16().collect();
    let hdr = if cfg!(target_pointer_width = "64") {
        16
    } else {
        8
    };
    let total = hdr + w.len() * 2 + 2;
    let b = GuardedBuf::new(total, label);
    let p = b.tail(guard::round_up(total, 8));
    // SAFETY: the buffer has `round_up(total, 8)` writable bytes at `p`.
    let sbuf = p.wrapping_add(hdr);
    // SAFETY: as above: the string data after the header.
    unsafe { std::ptr::copy_nonoverlapping(w.as_ptr() as *const u8, sbuf, w.len() * 2) };
    // SAFETY: as above: Length.
    unsafe { (p as *mut u16).write((w.len() * 2) as u16) };
    // SAFETY: as above: MaximumLength.
    unsafe { (p.wrapping_add(2) as *mut u16).write((w.len() * 2 + 2) as u16) };
    let buffer = p.wrapping_add(if hdr == 16 { 8 } else { 4 }) as *mut usize;
    // SAFETY: as above: Buffer, pointer-aligned in the 8-aligned buffer.
    unsafe { buffer.write(sbuf as usize) };
    b
}

/// An opaque object the miniport must not dereference: a no-access region.
fn opaque(label: &str) -> (usize, GuardedBuf) {
    let b = GuardedBuf::new(PAGE, label);
    guard::protect(b.start(), PAGE, libc::PROT_NONE);
    guard::register_guard(
        b.start() as usize,
        PAGE,
        &format!("{label} (opaque to a miniport)"),
    );
    (b.start() as usize, b)
}

impl Adapter {
    /// Loads the driver, runs DriverEntry, HwFindAdapter, HwInitialize and the supported
    /// control-type query, as StorPort does for a root-enumerated virtual adapter.
    pub fn start(driver: &[u8], k: Arc<Kernel>) -> Result<Adapter, StartError> {
        let active = k.activate();
        let service_key = format!(
            "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{}",
            k.service_name()
        );
        let image = pe::load(driver, &kernel::resolve).map_err(|e| StartError::Load(e.0))?;
        crate::checks::crash::set_image(image.base(), image.size());
        let mut objects = Vec::new();
        let dobj_size = if cfg!(target_pointer_width = "64") {
            0x150
        } else {
            0xa8
        };
        let dobj = GuardedBuf::new(dobj_size, "DRIVER_OBJECT");
        let dobj_p = dobj.tail(dobj_size);
        // SAFETY: writable fresh (zeroed) memory: Type = IO_TYPE_DRIVER (4), Size.
        unsafe { (dobj_p as *mut u16).write(4) };
        // SAFETY: as above.
        unsafe { (dobj_p.wrapping_add(2) as *mut u16).write(dobj_size as u16) };
        let reg = unicode_string(&service_key, "RegistryPath UNICODE_STRING");
        let reg_p = reg.tail(guard::round_up(
            if cfg!(target_pointer_width = "64") {
                16
            } else {
                8
            } + service_key.len() * 2
                + 2,
            8,
        ));
        objects.push(dobj);
        objects.push(reg);
        // SAFETY: the entry point of a loaded, relocated, bound image has this prototype.
        let entry: DriverEntryFn =
            unsafe { std::mem::transmute::<usize, DriverEntryFn>(image.entry()) };
        *k.entry_args.lock().unwrap_or_else(|e| e.into_inner()) = (dobj_p as usize, reg_p as usize);
        let st = on_kernel_stack(|| {
            kernel::at_irql(PASSIVE_LEVEL, || {
                // SAFETY: calling the driver's DriverEntry with valid objects.
                unsafe { entry(dobj_p as *mut c_void, reg_p as *mut c_void) }
            })
        });
        if k.cfg.personality == Personality::Xp {
            return Self::start_legacy(k, st, image, objects, active);
        }
        if st != 0 {
            return Err(StartError::DriverEntry(st));
        }
        let init = k
            .init_data
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                StartError::Invalid(
                    "DriverEntry succeeded without a successful StorPortInitialize".into(),
                )
            })?;
        // SAFETY: `init` is a zero-padded copy of full-structure size.
        let d: HwInitializationData =
            unsafe { std::ptr::read_unaligned(init.as_ptr() as *const HwInitializationData) };
        let (hw, find_adapter) = validate_init(&k, &d)?;
        let map_rw = k.cfg.personality == Personality::Win8
            && d.map_buffers == rvblk_abi::STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE;
        if k.cfg.personality == Personality::Win8 && !map_rw {
            k.log_line(format!(
                "[harness] MapBuffers = {}: READ/WRITE buffers are not mapped (use StorPortGetSystemAddress)",
                d.map_buffers
            ));
        }

        // Device extension (zeroed, ends at a guard page).
        let de_size = guard::round_up((d.device_extension_size as usize).max(1), 16);
        let ext = GuardedBuf::new(de_size, "the device extension");
        let ext_p = ext.tail(de_size);
        k.device_extension.store(ext_p as usize, Ordering::SeqCst);

        // PORT_CONFIGURATION_INFORMATION, ending exactly at a guard page at `Length`.
        let full = size_of::<PortConfigurationInformation>() as u32;
        let length = match k.cfg.personality {
            Personality::Win7 => full - 24,
            _ => full,
        };
        let cbuf = GuardedBuf::new(
            length as usize,
            "PORT_CONFIGURATION_INFORMATION (writes past Length)",
        );
        let ci = cbuf.tail(length as usize);
        prefill_config(ci, length, &d);
        let (pdo, b1) = opaque("HwContext (PDO)");
        let (fdo, b2) = opaque("BusInformation (FDO)");
        let (lower, b3) = opaque("LowerDevice");
        objects.extend([b1, b2, b3]);
        let again = GuardedBuf::new(1, "the Again BOOLEAN");
        let again_p = again.tail(1);
        let r = on_kernel_stack(|| {
            kernel::at_irql(PASSIVE_LEVEL, || {
                // SAFETY: the 7-parameter virtual HwFindAdapter with valid arguments.
                unsafe {
                    find_adapter(
                        ext_p as *mut c_void,
                        pdo as *mut c_void,
                        fdo as *mut c_void,
                        lower as *mut c_void,
                        std::ptr::null(),
                        ci as *mut PortConfigurationInformation,
                        again_p,
                    )
                }
            })
        });
        if r != rvblk_abi::SP_RETURN_FOUND {
            return Err(StartError::NotFound(r));
        }
        let cfg = check_config(&k, ci, length, &d);
        drop(cbuf);
        drop(again);
        let srb_ext_size = d.srb_extension_size as usize;
        let mut a = Adapter {
            k: k.clone(),
            hw,
            cfg,
            srb_ext_size,
            supported_controls: Vec::new(),
            init_size: d.hw_initialization_data_size,
            map_rw,
            legacy: false,
            serial: std::sync::Mutex::new(()),
            _ext: ext,
            _objects: objects,
            image,
            stopped: false,
            removed: false,
            _active: active,
        };
        if !a.hw_initialize() {
            a.remove();
            return Err(StartError::Initialize);
        }
        a.query_controls();
        Ok(a)
    }

    /// After DriverEntry under SCSIPORT: ScsiPortInitialize already ran HwFindAdapter and
    /// HwInitialize (see `scsiport::initialize`).
    fn start_legacy(
        k: Arc<Kernel>,
        status: i32,
        image: LoadedImage,
        objects: Vec<GuardedBuf>,
        active: Active,
    ) -> Result<Adapter, StartError> {
        let started = k
            .legacy_start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(s) = started else {
            if status != 0 {
                return Err(StartError::DriverEntry(status));
            }
            return Err(StartError::Invalid(
                "DriverEntry succeeded without calling ScsiPortInitialize".into(),
            ));
        };
        match s.find_result {
            None => return Err(StartError::DriverEntry(status)),
            Some(r) if r != rvblk_abi::SP_RETURN_FOUND => return Err(StartError::NotFound(r)),
            Some(_) => {}
        }
        if !s.initialized {
            return Err(StartError::Initialize);
        }
        if status != 0 {
            // SCSIPORT keeps the adapter, but the I/O manager unloads a driver whose
            // DriverEntry fails: everything the adapter holds would dangle.
            k.fail(format!(
                "DriverEntry returned {status:#010x} after a successful ScsiPortInitialize"
            ));
            return Err(StartError::DriverEntry(status));
        }
        let d = s.init;
        let hw = HwFns {
            initialize: d.hw_initialize.expect("validated by ScsiPortInitialize"),
            start_io: d.hw_start_io.expect("validated by ScsiPortInitialize"),
            reset_bus: d.hw_reset_bus.expect("validated by ScsiPortInitialize"),
            // Only a PnP SCSIPORT miniport gets HwAdapterControl calls.
            adapter_control: None,
            free_resources: None,
        };
        Ok(Adapter {
            k: k.clone(),
            hw,
            cfg: s.cfg,
            srb_ext_size: d.srb_extension_size as usize,
            supported_controls: Vec::new(),
            init_size: d.hw_initialization_data_size,
            map_rw: d.map_buffers != 0,
            legacy: true,
            serial: std::sync::Mutex::new(()),
            _ext: s.ext.expect("a found adapter has an extension"),
            _objects: objects,
            image,
            stopped: false,
            removed: false,
            _active: active,
        })
    }

    fn ext_ptr(&self) -> *mut c_void {
        self.k.device_extension.load(Ordering::SeqCst) as *mut c_void
    }

    fn hw_initialize(&self) -> bool {
        let f = self.hw.initialize;
        let e = self.ext_ptr();
        on_kernel_stack(|| {
            kernel::at_irql(DIRQL, || {
                // SAFETY: HwInitialize(DeviceExtension).
                unsafe { f(e) != 0 }
            })
        })
    }

    fn query_controls(&mut self) {
        const MAX: usize = 20;
        let b = GuardedBuf::new(4 + MAX, "SCSI_SUPPORTED_CONTROL_TYPE_LIST");
        let p = b.tail(4 + MAX);
        // SAFETY: writable 4 + MAX bytes at `p`, 4-byte aligned (4 + 20 = 24).
        unsafe { (p as *mut u32).write(MAX as u32) };
        // SAFETY: as above.
        unsafe { std::ptr::write_bytes(p.wrapping_add(4), 0, MAX) };
        let r = self.adapter_control_raw(
            rvblk_abi::adapter_control::QUERY_SUPPORTED_CONTROL_TYPES,
            p as *mut c_void,
            PASSIVE_LEVEL,
        );
        // SAFETY: as above.
        let list = unsafe { std::slice::from_raw_parts(p.wrapping_add(4), MAX) };
        self.supported_controls = list.iter().map(|&x| x != 0).collect();
        if r != 0 {
            self.k.fail(format!(
                "HwAdapterControl(ScsiQuerySupportedControlTypes) returned {r}"
            ));
        }
        if !self.supports(1) || !self.supports(2) {
            self.k.fail("HwAdapterControl does not report ScsiStopAdapter and ScsiRestartAdapter as supported (required for a PnP Storport miniport)");
        }
    }

    pub fn supports(&self, ty: u32) -> bool {
        self.supported_controls
            .get(ty as usize)
            .copied()
            .unwrap_or(false)
    }

    fn adapter_control_raw(&self, ty: u32, params: *mut c_void, level: u8) -> u32 {
        let Some(f) = self.hw.adapter_control else {
            // A legacy SCSIPORT adapter lives until shutdown; nothing stops or restarts it.
            return 0;
        };
        let e = self.ext_ptr();
        on_kernel_stack(|| {
            kernel::at_irql(level, || {
                // SAFETY: HwAdapterControl(DeviceExtension, ControlType, Parameters).
                unsafe { f(e, ty, params) }
            })
        })
    }

    /// ScsiStopAdapter (DIRQL, as Storport does).
    pub fn stop(&mut self) -> u32 {
        self.stopped = true;
        self.adapter_control_raw(
            rvblk_abi::adapter_control::STOP_ADAPTER,
            std::ptr::null_mut(),
            DIRQL,
        )
    }

    /// ScsiRestartAdapter (DIRQL) after a stop.
    pub fn restart(&mut self) -> u32 {
        let r = self.adapter_control_raw(
            rvblk_abi::adapter_control::RESTART_ADAPTER,
            std::ptr::null_mut(),
            DIRQL,
        );
        self.stopped = false;
        r
    }

    pub fn reset_bus(&self) -> bool {
        let f = self.hw.reset_bus;
        let e = self.ext_ptr();
        on_kernel_stack(|| {
            kernel::in_miniport(|| {
                kernel::at_irql(DISPATCH_LEVEL, || {
                    // SAFETY: HwResetBus(DeviceExtension, PathId).
                    unsafe { f(e, 0) != 0 }
                })
            })
        })
    }

    /// PnP remove: ScsiStopAdapter (if not stopped), then HwFreeAdapterResources. Returns the
    /// leaks (pool and mappings still outstanding), which are also recorded as failures.
    pub fn remove(&mut self) -> Vec<String> {
        if self.removed {
            return Vec::new();
        }
        self.removed = true;
        if self.legacy {
            return self.retire_legacy();
        }
        if !self.stopped {
            let r = self.stop();
            if r != 0 {
                self.k
                    .fail(format!("HwAdapterControl(ScsiStopAdapter) returned {r}"));
            }
        }
        if let Some(f) = self.hw.free_resources {
            let e = self.ext_ptr();
            on_kernel_stack(|| {
                kernel::at_irql(PASSIVE_LEVEL, || {
                    // SAFETY: HwFreeAdapterResources(DeviceExtension).
                    unsafe { f(e) }
                })
            });
        }
        let leaks = self.k.leaks();
        for l in &leaks {
            self.k.fail(format!("after remove: {l}"));
        }
        self.k.reclaim();
        leaks
    }

    /// A legacy SCSIPORT miniport is never unloaded: what it maps and allocates for its images
    /// stays until shutdown, so only registry handles count as leaks.
    fn retire_legacy(&mut self) -> Vec<String> {
        let leaks = self.k.handle_leaks();
        let held = self.k.leaks().len() - leaks.len();
        if held > 0 {
            self.k.log_line(format!(
                "[harness] legacy adapter retired holding {held} pool block(s)/mapping(s) until shutdown"
            ));
        }
        for l in &leaks {
            self.k.fail(format!("after start: {l}"));
        }
        self.k.reclaim();
        leaks
    }

    pub fn new_slot(&self) -> SrbSlot {
        let srb_size = size_of::<ScsiRequestBlock>();
        let srb_page = GuardedBuf::new(srb_size, "the SRB");
        let sense = GuardedBuf::new(255, "the sense buffer (SenseInfoBufferLength)");
        let ext = (self.srb_ext_size > 0)
            .then(|| GuardedBuf::new(guard::round_up(self.srb_ext_size, 16), "the SRB extension"));
        let cap = (self.cfg.max_transfer as usize)
            .clamp(PAGE, 16 << 20)
            .max(1 << 20);
        let data = GuardedBuf::new(cap, "the SRB data buffer (DataTransferLength)");
        let fake = GuardedBuf::new(cap, "unmapped");
        guard::protect(fake.start(), fake.cap(), libc::PROT_NONE);
        guard::register_guard(
            fake.start() as usize,
            fake.cap(),
            if self.legacy {
                "Srb->DataBuffer under SCSIPORT with MapBuffers = FALSE: not a system address"
            } else {
                "Srb->DataBuffer of a READ/WRITE SRB that Storport did not map (Win7 personality or MapBuffers != 3): use StorPortGetSystemAddress"
            },
        );
        let srb = srb_page.tail(srb_size) as *mut ScsiRequestBlock;
        let track = Arc::new(SrbTrack::default());
        self.k
            .srbs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(srb as usize, track.clone());
        SrbSlot {
            k: self.k.clone(),
            _srb_page: srb_page,
            sense,
            ext,
            data,
            fake,
            track,
            srb,
            light: false,
        }
    }

    /// Issues one SRB through HwStartIo at DISPATCH_LEVEL and checks its completion. For
    /// `Dir::Out` the caller has filled `slot.data_mut(req.len)` first.
    pub fn execute(&self, slot: &mut SrbSlot, req: &Request) -> Outcome {
        let k = &self.k;
        let len = req.len as usize;
        let real = slot.data.tail(len);
        let rw = req.function == 0 && req.cdb.first().is_some_and(|&o| is_rw_opcode(o));
        let unmapped = if self.legacy {
            !self.map_rw
        } else {
            rw && !self.map_rw
        };
        let data_buffer = if req.dir == Dir::None && len == 0 {
            std::ptr::null_mut()
        } else if unmapped {
            slot.fake.tail(len)
        } else {
            real
        };
        let sense_len = req.sense_len as usize;
        let sense_p = if sense_len > 0 {
            slot.sense.tail(sense_len)
        } else {
            std::ptr::null_mut()
        };
        if sense_len > 0 {
            // SAFETY: `sense_len` writable bytes at `sense_p`.
            unsafe { std::ptr::write_bytes(sense_p, 0xEE, sense_len) };
        }
        let ext_p = slot.ext.as_ref().map(|e| {
            let n = guard::round_up(self.srb_ext_size, 16);
            let p = e.tail(n);
            if !slot.light {
                // SAFETY: `n` writable bytes; StorPort does not zero SRB extensions.
                unsafe { std::ptr::write_bytes(p, 0xCD, n) };
            }
            p
        });
        let mut flags = req.extra_flags
            | match req.dir {
                Dir::None => 0,
                Dir::In => SRB_FLAGS_DATA_IN,
                Dir::Out => SRB_FLAGS_DATA_OUT,
            };
        if sense_len == 0 {
            flags |= SRB_FLAGS_DISABLE_AUTOSENSE;
        }
        let mut cdb = [0u8; 16];
        cdb[..req.cdb.len().min(16)].copy_from_slice(&req.cdb[..req.cdb.len().min(16)]);
        let srb = slot.srb;
        // SAFETY: `srb` points at a writable SRB-sized area ending at a guard page.
        unsafe { std::ptr::write_bytes(srb as *mut u8, 0, size_of::<ScsiRequestBlock>()) };
        // SAFETY: as above; zeroed, so a valid SRB value, and not referenced elsewhere.
        let s = unsafe { &mut *srb };
        {
            s.length = size_of::<ScsiRequestBlock>() as u16;
            s.function = req.function;
            s.srb_status = SRB_STATUS_PENDING;
            s.path_id = req.path;
            s.target_id = req.target;
            s.lun = req.lun;
            s.queue_tag = 0xff;
            s.queue_action = 0x20;
            s.cdb_length = req.cdb.len() as u8;
            s.sense_info_buffer_length = req.sense_len;
            s.srb_flags = flags;
            s.data_transfer_length = req.len;
            s.time_out_value = 10;
            s.data_buffer = data_buffer as *mut c_void;
            s.sense_info_buffer = sense_p as *mut c_void;
            s.original_request = slot.fake.start() as *mut c_void;
            s.srb_extension = ext_p.unwrap_or(std::ptr::null_mut()) as *mut c_void;
            s.cdb = cdb;
        }
        slot.track
            .real_buf
            .store(if len > 0 { real as usize } else { 0 }, Ordering::SeqCst);
        slot.track.completions.store(0, Ordering::SeqCst);
        slot.track
            .state
            .store(kernel::SRB_IN_FLIGHT, Ordering::SeqCst);
        let f = self.hw.start_io;
        let e = self.ext_ptr();
        // SCSIPORT sends one request at a time and only after the miniport asked for the next.
        let serial = self
            .legacy
            .then(|| self.serial.lock().unwrap_or_else(|e| e.into_inner()));
        let asked_before = k.next_request.load(Ordering::SeqCst);
        let ret = on_kernel_stack(|| {
            kernel::in_miniport(|| {
                kernel::at_irql(DISPATCH_LEVEL, || {
                    // SAFETY: HwStartIo(DeviceExtension, Srb) with a fully initialised SRB.
                    unsafe { f(e, srb) }
                })
            })
        });
        if self.legacy && k.next_request.load(Ordering::SeqCst) == asked_before {
            k.fail(format!(
                "{}: HwStartIo returned without ScsiPortNotification(NextRequest): SCSIPORT sends this adapter no further request",
                describe(req)
            ));
        }
        drop(serial);
        let state = slot.track.state.swap(kernel::SRB_IDLE, Ordering::SeqCst);
        // SAFETY: the SRB memory is ours again (the driver completed it or failed to).
        let s = unsafe { *srb };
        let what = || describe(req);
        if state != kernel::SRB_DONE {
            k.fail(format!(
                "{}: HwStartIo returned without completing the SRB (no RequestComplete)",
                what()
            ));
        }
        if ret == 0 {
            k.log_line(format!("[harness] {}: HwStartIo returned FALSE", what()));
        }
        let st = s.srb_status;
        if state == kernel::SRB_DONE {
            if st & 0x3f == SRB_STATUS_PENDING {
                k.fail(format!("{}: completed with SRB_STATUS_PENDING", what()));
            } else if !valid_srb_status(st) {
                k.fail(format!(
                    "{}: completed with invalid SrbStatus {st:#04x}",
                    what()
                ));
            }
            if st & SRB_STATUS_QUEUE_FROZEN != 0 {
                k.fail(format!("{}: miniport set SRB_STATUS_QUEUE_FROZEN", what()));
            }
        }
        if s.data_transfer_length > req.len {
            k.fail(format!(
                "{}: DataTransferLength grew from {} to {}",
                what(),
                req.len,
                s.data_transfer_length
            ));
        }
        let moved = |a: *mut c_void, b: *mut u8| !std::ptr::eq(a.cast::<u8>(), b);
        if moved(s.data_buffer, data_buffer)
            || moved(s.sense_info_buffer, sense_p)
            || s.function != req.function
            || moved(s.srb_extension, ext_p.unwrap_or(std::ptr::null_mut()))
        {
            k.fail(format!(
                "{}: miniport changed DataBuffer/SenseInfoBuffer/Function/SrbExtension",
                what()
            ));
        }
        let mut sense = None;
        if sense_len > 0 {
            // SAFETY: `sense_len` readable bytes at `sense_p`.
            let sb = unsafe { std::slice::from_raw_parts(sense_p, sense_len) };
            let written = sb.iter().any(|&b| b != 0xEE);
            let new_len = s.sense_info_buffer_length as usize;
            if new_len > sense_len {
                k.fail(format!(
                    "{}: SenseInfoBufferLength grew from {sense_len} to {new_len}",
                    what()
                ));
            }
            if st & SRB_STATUS_AUTOSENSE_VALID != 0 {
                if !written {
                    k.fail(format!(
                        "{}: AUTOSENSE_VALID set but no sense data written",
                        what()
                    ));
                }
                if st & 0x3f == SRB_STATUS_SUCCESS {
                    k.fail(format!(
                        "{}: AUTOSENSE_VALID with SRB_STATUS_SUCCESS",
                        what()
                    ));
                }
                sense = Some(sb[..new_len.min(sense_len)].to_vec());
            } else if written {
                let pos = sb.iter().position(|&b| b != 0xEE).unwrap_or(0);
                if st & 0x3f == SRB_STATUS_ERROR && s.scsi_status == 2 {
                    k.fail(format!(
                        "{}: CHECK CONDITION with sense data written (byte {pos}) but AUTOSENSE_VALID not set",
                        what()
                    ));
                } else {
                    k.fail(format!(
                        "{}: sense buffer written (byte {pos}) without AUTOSENSE_VALID",
                        what()
                    ));
                }
            }
        } else if st & SRB_STATUS_AUTOSENSE_VALID != 0 {
            k.fail(format!(
                "{}: AUTOSENSE_VALID set although autosense is disabled",
                what()
            ));
        }
        Outcome {
            srb_status: st,
            scsi_status: s.scsi_status,
            transferred: s.data_transfer_length,
            sense,
            start_io_returned: ret != 0,
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        if !self.removed && !std::thread::panicking() {
            self.remove();
        }
        self.k.device_extension.store(0, Ordering::SeqCst);
    }
}

pub fn describe(req: &Request) -> String {
    let cdb: Vec<String> = req.cdb.iter().map(|b| format!("{b:02x}")).collect();
    if req.function == 0 {
        format!(
            "SRB to {}:{}:{} CDB [{}] len {}",
            req.path,
            req.target,
            req.lun,
            cdb.join(" "),
            req.len
        )
    } else {
        format!(
            "SRB function {:#x} to {}:{}:{}",
            req.function, req.path, req.target, req.lun
        )
    }
}

fn validate_init(
    k: &Kernel,
    d: &HwInitializationData,
) -> Result<(HwFns, VirtualHwFindAdapterFn), StartError> {
    let size = d.hw_initialization_data_size;
    let mut errs = Vec::new();
    if d.adapter_interface_type != rvblk_abi::INTERFACE_TYPE_INTERNAL {
        errs.push(format!(
            "AdapterInterfaceType {} (a virtual miniport uses Internal = 0)",
            d.adapter_interface_type
        ));
    }
    if d.hw_build_io.is_some() {
        errs.push("HwBuildIo must be NULL for a virtual miniport".to_string());
    }
    if !d.hw_dma_started.is_null() || !d.hw_adapter_state.is_null() {
        errs.push("HwDmaStarted/HwAdapterState must be NULL".to_string());
    }
    if d.device_extension_size == 0 {
        errs.push("DeviceExtensionSize is 0".to_string());
    }
    if d.number_of_access_ranges != 0 {
        errs.push(format!(
            "NumberOfAccessRanges {} for a virtual miniport",
            d.number_of_access_ranges
        ));
    }
    if size == rvblk_abi::HW_INIT_DATA_SIZE_WIN8 {
        if d.feature_support & rvblk_abi::STOR_FEATURE_VIRTUAL_MINIPORT == 0 {
            errs.push("FeatureSupport lacks STOR_FEATURE_VIRTUAL_MINIPORT with the full-size HW_INITIALIZATION_DATA".to_string());
        }
        if d.srb_type_flags != 0
            && d.srb_type_flags & rvblk_abi::SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK == 0
        {
            errs.push(format!(
                "SrbTypeFlags {:#x} without SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK",
                d.srb_type_flags
            ));
        }
        if d.hw_free_adapter_resources.is_none() {
            errs.push("HwFreeAdapterResources is required for a virtual miniport".to_string());
        }
    }
    if !d.hw_complete_service_irp.is_null() && d.hw_process_service_request.is_null() {
        // fine
    } else if !d.hw_process_service_request.is_null() && d.hw_complete_service_irp.is_null() {
        errs.push("HwProcessServiceRequest set without HwCompleteServiceIrp".to_string());
    }
    let req = |name: &str, p: usize, errs: &mut Vec<String>| {
        if p == 0 {
            errs.push(format!("{name} is NULL"));
        }
    };
    req("HwFindAdapter", d.hw_find_adapter as usize, &mut errs);
    req(
        "HwStartIo",
        d.hw_start_io.map_or(0, |f| f as usize),
        &mut errs,
    );
    req(
        "HwInitialize",
        d.hw_initialize.map_or(0, |f| f as usize),
        &mut errs,
    );
    req(
        "HwResetBus",
        d.hw_reset_bus.map_or(0, |f| f as usize),
        &mut errs,
    );
    req(
        "HwAdapterControl",
        d.hw_adapter_control.map_or(0, |f| f as usize),
        &mut errs,
    );
    if !errs.is_empty() {
        for e in &errs {
            k.fail(format!("StorPortInitialize: {e}"));
        }
        return Err(StartError::Invalid(format!(
            "invalid HW_INITIALIZATION_DATA: {}",
            errs.join("; ")
        )));
    }
    // SAFETY: non-null function pointer with the virtual HwFindAdapter prototype.
    let find_adapter =
        unsafe { std::mem::transmute::<*const c_void, VirtualHwFindAdapterFn>(d.hw_find_adapter) };
    Ok((
        HwFns {
            initialize: d.hw_initialize.expect("checked"),
            start_io: d.hw_start_io.expect("checked"),
            reset_bus: d.hw_reset_bus.expect("checked"),
            adapter_control: d.hw_adapter_control,
            free_resources: d.hw_free_adapter_resources,
        },
        find_adapter,
    ))
}

macro_rules! cfg_put {
    ($ci:expr, $len:expr, $field:ident, $v:expr) => {
        if offset_of!(PortConfigurationInformation, $field) < $len as usize {
            let p = $ci as *mut PortConfigurationInformation;
            // SAFETY: the field lies inside the `Length` bytes allocated at `ci`.
            unsafe { std::ptr::addr_of_mut!((*p).$field).write_unaligned($v) };
        }
    };
}

/// Reads a field the miniport may have set, or the type's default when the field lies past
/// `Length` (it does not exist in that port's structure).
macro_rules! cfg_get {
    ($ci:expr, $len:expr, $field:ident) => {{
        let p = $ci as *const PortConfigurationInformation;
        if offset_of!(PortConfigurationInformation, $field) < $len as usize {
            // SAFETY: the field lies inside the `Length` bytes at `ci`.
            unsafe { std::ptr::addr_of!((*p).$field).read_unaligned() }
        } else {
            Default::default()
        }
    }};
}

/// SCSIPORT semantics for a legacy miniport with no hardware (`docs/driver.md` "Port
/// configuration"): Master or a DMA channel makes SCSIPORT build a DMA adapter (HalGetAdapter)
/// for a device that does no DMA; scatter/gather, 32/64-bit DMA addressing and physical
/// addresses describe DMA too; MapBuffers must be TRUE because the miniport reads DataBuffer.
fn check_legacy_dma(ci: *mut u8, length: u32) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, value) in [
        ("Master", cfg_get!(ci, length, master)),
        ("ScatterGather", cfg_get!(ci, length, scatter_gather)),
        (
            "Dma32BitAddresses",
            cfg_get!(ci, length, dma32_bit_addresses),
        ),
        (
            "NeedPhysicalAddresses",
            cfg_get!(ci, length, need_physical_addresses),
        ),
    ] {
        if value != 0u8 {
            bad.push(format!(
                "{name} = TRUE under SCSIPORT: declares a DMA adapter for a miniport that does no DMA"
            ));
        }
    }
    let dma64: u8 = cfg_get!(ci, length, dma64_bit_addresses);
    if dma64 & rvblk_abi::SCSI_DMA64_MINIPORT_SUPPORTED != 0 {
        bad.push(format!(
            "Dma64BitAddresses {dma64:#x} claims 64-bit DMA for a miniport that does no DMA"
        ));
    }
    let (channel, port): (u32, u32) = (
        cfg_get!(ci, length, dma_channel),
        cfg_get!(ci, length, dma_port),
    );
    if channel != SP_UNINITIALIZED_VALUE || port != SP_UNINITIALIZED_VALUE {
        bad.push(format!(
            "DmaChannel {channel:#x} / DmaPort {port:#x} set: claims a system DMA controller"
        ));
    }
    if cfg_get!(ci, length, map_buffers) == 0u8 {
        bad.push("MapBuffers FALSE: Srb->DataBuffer would not be a system address".to_string());
    }
    bad
}

pub(crate) fn prefill_config(ci: *mut u8, length: u32, d: &HwInitializationData) {
    // SAFETY: `length` writable bytes at `ci`.
    unsafe { std::ptr::write_bytes(ci, 0, length as usize) };
    cfg_put!(ci, length, length, length);
    cfg_put!(ci, length, adapter_interface_type, d.adapter_interface_type);
    cfg_put!(ci, length, maximum_transfer_length, SP_UNINITIALIZED_VALUE);
    cfg_put!(
        ci,
        length,
        number_of_physical_breaks,
        SP_UNINITIALIZED_VALUE
    );
    cfg_put!(ci, length, dma_channel, SP_UNINITIALIZED_VALUE);
    cfg_put!(ci, length, dma_port, SP_UNINITIALIZED_VALUE);
    cfg_put!(ci, length, initiator_bus_id, [0xffu8; 8]);
    cfg_put!(ci, length, map_buffers, d.map_buffers);
    cfg_put!(
        ci,
        length,
        need_physical_addresses,
        d.need_physical_addresses
    );
    cfg_put!(ci, length, tagged_queuing, 1u8);
    cfg_put!(ci, length, auto_request_sense, 1u8);
    cfg_put!(ci, length, multiple_request_per_lu, 1u8);
    cfg_put!(ci, length, device_extension_size, d.device_extension_size);
    cfg_put!(
        ci,
        length,
        specific_lu_extension_size,
        d.specific_lu_extension_size
    );
    cfg_put!(ci, length, srb_extension_size, d.srb_extension_size);
    cfg_put!(ci, length, dma64_bit_addresses, 0x80u8);
    cfg_put!(ci, length, max_number_of_io, 1000u32);
    cfg_put!(ci, length, max_ios_per_lun, 255u32);
    cfg_put!(ci, length, initial_lun_queue_depth, 250u32);
}

/// What HwFindAdapter left in ConfigInfo, checked against the port's rules and against the
/// init data the driver gave the port (`d`).
pub(crate) fn check_config(
    k: &Kernel,
    ci: *mut u8,
    length: u32,
    d: &HwInitializationData,
) -> PortConfig {
    let c = PortConfig {
        length: cfg_get!(ci, length, length),
        max_transfer: cfg_get!(ci, length, maximum_transfer_length),
        physical_breaks: cfg_get!(ci, length, number_of_physical_breaks),
        buses: cfg_get!(ci, length, number_of_buses),
        max_targets: cfg_get!(ci, length, maximum_number_of_targets),
        max_luns: cfg_get!(ci, length, maximum_number_of_logical_units),
        map_buffers: cfg_get!(ci, length, map_buffers),
        sync_model: cfg_get!(ci, length, synchronization_model),
        virtual_device: cfg_get!(ci, length, virtual_device) != 0,
        alignment_mask: cfg_get!(ci, length, alignment_mask),
    };
    let mut bad = Vec::new();
    if c.length != length {
        bad.push(format!("Length changed from {length} to {}", c.length));
    }
    if c.max_transfer == SP_UNINITIALIZED_VALUE || c.max_transfer == 0 {
        bad.push(format!(
            "MaximumTransferLength not set ({:#x})",
            c.max_transfer
        ));
    }
    if c.physical_breaks == SP_UNINITIALIZED_VALUE {
        bad.push("NumberOfPhysicalBreaks not set".to_string());
    }
    if c.buses == 0 {
        bad.push("NumberOfBuses is 0".to_string());
    }
    if c.max_targets == 0 {
        bad.push("MaximumNumberOfTargets is 0".to_string());
    }
    if c.max_luns == 0 {
        bad.push("MaximumNumberOfLogicalUnits is 0".to_string());
    }
    // The port takes MapBuffers from the init data and the miniport may only confirm it: two
    // different values are two different promises about Srb->DataBuffer (StorPort on Vista/7
    // rejects 3 in the init data, so the driver must not declare 3 in ConfigInfo either).
    if c.map_buffers != d.map_buffers {
        bad.push(format!(
            "MapBuffers {} differs from HW_INITIALIZATION_DATA.MapBuffers {}: the miniport declares two buffer mappings",
            c.map_buffers, d.map_buffers
        ));
    }
    if k.cfg.personality == Personality::Xp {
        bad.extend(check_legacy_dma(ci, length));
    } else if cfg_get!(ci, length, scatter_gather) == 0 || cfg_get!(ci, length, master) == 0 {
        // StorPort requires both.
        bad.push("ScatterGather and Master must be TRUE".to_string());
    }
    if c.sync_model > 1 {
        bad.push(format!("SynchronizationModel {} invalid", c.sync_model));
    }
    if k.cfg.personality == Personality::Win8 {
        if !c.virtual_device {
            bad.push("VirtualDevice not set TRUE".to_string());
        }
        let srb_type: u8 = cfg_get!(ci, length, srb_type);
        if srb_type != 0 {
            bad.push(format!(
                "SrbType {srb_type}: this port only issues classic SCSI_REQUEST_BLOCKs"
            ));
        }
    }
    for b in bad {
        k.fail(format!(
            "HwFindAdapter: PORT_CONFIGURATION_INFORMATION: {b}"
        ));
    }
    k.log_line(format!(
        "[harness] config: MaximumTransferLength={:#x} NumberOfPhysicalBreaks={} buses={} targets={} luns={} MapBuffers={} SynchronizationModel={} VirtualDevice={}",
        c.max_transfer, c.physical_breaks, c.buses, c.max_targets, c.max_luns, c.map_buffers, c.sync_model, c.virtual_device
    ));
    c
}
