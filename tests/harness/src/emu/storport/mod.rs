//! Emulated StorPort: driver load, DriverEntry/StorPortInitialize validation, the virtual
//! HwFindAdapter with a guarded PORT_CONFIGURATION_INFORMATION, HwInitialize, SRB issue through
//! HwStartIo at DISPATCH_LEVEL (from any number of threads), adapter control and removal.
//! The same `Adapter` drives a legacy SCSIPORT miniport under the xp personality (its start-up
//! happens inside ScsiPortInitialize, see `scsiport`; HwStartIo is serialised there).
//!
//! This file is the adapter's life cycle; `srb` issues SRBs and checks their completion,
//! `port_config` validates what the miniport hands the port at start.

use crate::checks::guard::{self, GuardedBuf, PAGE};
use crate::emu::kernel::{self, Active, Kernel, Personality, DIRQL, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::emu::stack::on_kernel_stack;
use crate::host::pe::{self, LoadedImage};
use rvblk_abi::{
    DriverEntryFn, HwAdapterControlFn, HwFreeAdapterResourcesFn, HwInitializationData,
    HwInitializeFn, HwResetBusFn, HwStartIoFn, PortConfigurationInformation,
};
use std::ffi::c_void;
use std::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::Arc;

mod port_config;
mod srb;

use port_config::validate_init;
pub use port_config::PortConfig;
pub(crate) use port_config::{check_config, prefill_config};
pub use srb::{
    describe, is_rw_opcode, valid_srb_status, Dir, Outcome, Request, SrbSlot, SRB_FLAGS_DATA_IN,
    SRB_FLAGS_DATA_OUT, SRB_FLAGS_DISABLE_AUTOSENSE, SRB_FLAGS_QUEUE_ACTION_ENABLE,
    SRB_STATUS_AUTOSENSE_VALID, SRB_STATUS_BUSY, SRB_STATUS_DATA_OVERRUN, SRB_STATUS_ERROR,
    SRB_STATUS_INSUFFICIENT_RESOURCES, SRB_STATUS_INVALID_LUN, SRB_STATUS_INVALID_PATH_ID,
    SRB_STATUS_INVALID_REQUEST, SRB_STATUS_INVALID_TARGET_ID, SRB_STATUS_NO_DEVICE,
    SRB_STATUS_PENDING, SRB_STATUS_QUEUE_FROZEN, SRB_STATUS_SELECTION_TIMEOUT, SRB_STATUS_SUCCESS,
};

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
    /// HwStartIo calls so far (for `--startio-dispatch-every`).
    start_ios: std::sync::atomic::AtomicU64,
    /// `--startio-dispatch-every`, from the machine configuration; tests may change it
    /// ([`Adapter::set_startio`]).
    startio_dispatch_every: std::sync::atomic::AtomicU64,
    /// HwStartIo calls at PASSIVE_LEVEL run inside a guarded region (special kernel APCs
    /// disabled; [`Adapter::set_startio`]).
    startio_guarded: std::sync::atomic::AtomicBool,
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

/// A UNICODE_STRING in guarded memory: (its address, the buffer holding it).
pub(crate) fn unicode_string_buf(s: &str, label: &str) -> (usize, GuardedBuf) {
    let hdr = if cfg!(target_pointer_width = "64") {
        16
    } else {
        8
    };
    let total = hdr + s.encode_utf16().count() * 2 + 2;
    let b = unicode_string(s, label);
    (b.tail(guard::round_up(total, 8)) as usize, b)
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
            start_ios: std::sync::atomic::AtomicU64::new(0),
            startio_dispatch_every: std::sync::atomic::AtomicU64::new(
                k.cfg.machine.startio_dispatch_every,
            ),
            startio_guarded: std::sync::atomic::AtomicBool::new(false),
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
            start_ios: std::sync::atomic::AtomicU64::new(0),
            startio_dispatch_every: std::sync::atomic::AtomicU64::new(
                k.cfg.machine.startio_dispatch_every,
            ),
            startio_guarded: std::sync::atomic::AtomicBool::new(false),
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
            let watchdog = free_watchdog();
            on_kernel_stack(|| {
                kernel::at_irql(PASSIVE_LEVEL, || {
                    // SAFETY: HwFreeAdapterResources(DeviceExtension).
                    unsafe { f(e) }
                })
            });
            drop(watchdog);
        }
        self.k.adapter_removed.store(true, Ordering::SeqCst);
        self.check_async_removal();
        let leaks = self.k.leaks();
        for l in &leaks {
            self.k.fail(format!("after remove: {l}"));
        }
        self.k.reclaim();
        leaks
    }

    /// From now on every `every`-th HwStartIo runs at DISPATCH_LEVEL and the others at
    /// PASSIVE_LEVEL (as `--startio-dispatch-every`; 0: all at PASSIVE), those at PASSIVE
    /// inside a guarded region when `guarded` (special kernel APCs disabled).
    pub fn set_startio(&self, every: u64, guarded: bool) {
        self.startio_dispatch_every
            .store(every, std::sync::atomic::Ordering::Relaxed);
        self.startio_guarded
            .store(guarded, std::sync::atomic::Ordering::Relaxed);
    }

    /// What the asynchronous path must have finished when removal returns
    /// (`docs/harness-disks.md` §5): no SRB pending, every system thread ended (given
    /// `THREAD_GRACE` to end before it counts as still running), every PnP notification
    /// unregistered, every object reference dropped.
    fn check_async_removal(&self) {
        let k = &self.k;
        for a in k.srbs.in_flight() {
            k.fail(format!(
                "SRB {a:#x} still pending when HwFreeAdapterResources returned (every pending SRB must be completed first)"
            ));
        }
        let returned = std::time::Instant::now();
        let running = k.running_threads();
        if !running.is_empty() {
            let all = k.wait_threads(THREAD_GRACE);
            for (i, d) in k.threads_ended_after(returned) {
                k.fail(format!(
                    "system thread #{i} ended {} ms after HwFreeAdapterResources returned: the driver must wait for its threads (thread object signalled) before returning",
                    d.as_millis()
                ));
            }
            if !all {
                for (i, start) in k.running_threads() {
                    k.fail(format!(
                        "threads gone after remove: system thread #{i} ({}) still running {} s after HwFreeAdapterResources returned",
                        crate::checks::crash::describe_ip(start),
                        THREAD_GRACE.as_secs()
                    ));
                }
            }
        }
        for l in k.async_leaks() {
            k.fail(format!("after remove: {l}"));
        }
    }

    /// A legacy SCSIPORT miniport is never unloaded: what it maps and allocates for its images
    /// stays until shutdown, so only registry handles count as leaks.
    fn retire_legacy(&mut self) -> Vec<String> {
        let mut leaks = self.k.handle_leaks();
        leaks.extend(
            self.k
                .irp_leaks()
                .into_iter()
                .filter(|l| l.contains("never sent")),
        );
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
}

impl Drop for Adapter {
    fn drop(&mut self) {
        if !self.removed && !std::thread::panicking() {
            self.remove();
        }
        self.k.shutdown_async();
        self.k.device_extension.store(0, Ordering::SeqCst);
    }
}

/// How long system threads get to end after HwFreeAdapterResources returned before the
/// harness reports them as still running.
pub const THREAD_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long HwFreeAdapterResources may take (waiting for threads and I/O) before it is a hang.
pub const FREE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Ends the process with a report when HwFreeAdapterResources does not return within
/// `FREE_LIMIT` (a driver waiting forever for a thread or an IRP); dropping it disarms it.
fn free_watchdog() -> std::sync::mpsc::Sender<()> {
    crate::checks::crash::watchdog(
        FREE_LIMIT,
        "HwFreeAdapterResources (waiting for a thread or an IRP that never ends?)".into(),
    )
}
