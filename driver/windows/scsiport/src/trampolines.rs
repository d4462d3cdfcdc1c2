//! The SCSIPORT trampolines: DriverEntry and every `unsafe extern "system"` callback, generic
//! over [`ScsiMiniport`]. Each shim turns its raw arguments into safe types under the contract
//! in its `# Safety` section, hands the callback its IRQL token and calls the safe logic
//! (`miniport.rs`).
//!
//! A legacy miniport: ScsiPortInitialize calls HwFindAdapter at once (no PnP,
//! `docs/windows-integration.md` §2.2), on an Isa adapter with no access ranges, as Arsenal's XP
//! build does. What DriverEntry learns (which service loaded the driver) reaches HwFindAdapter
//! through ScsiPortInitialize's HwContext, as a value: no global.

use crate::miniport::{self, RamDisks};
use crate::scsiport;
use core::ffi::c_void;
use rvblk_abi::*;
use rvblk_core::policy::Service;
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::extension::{self, AdapterRef, DEVICE_EXTENSION_SIZE};
use rvblk_kernel::io::Started;
use rvblk_kernel::port::DeviceState;
use rvblk_kernel::srb::Srb;
use rvblk_kernel::trampolines::{
    self, hw_adapter_control, hw_initialize, hw_reset_bus, AdapterCallbacks,
};

/// The driver logic behind the SCSIPORT callbacks, safe Rust.
pub trait ScsiMiniport: AdapterCallbacks {
    /// HwFindAdapter (PASSIVE_LEVEL, inside ScsiPortInitialize). `argument` is the
    /// ArgumentString (the service's `Parameters\Device` DriverParameter) without its NUL.
    fn find_adapter(
        state: &mut DeviceState,
        config: &mut PortConfigurationInformation,
        service: Service,
        argument: Option<&[u8]>,
        adapter: AdapterRef,
        irql: &Passive,
    ) -> u32;
    /// HwStartIo (≤ DISPATCH_LEVEL, serialised by SCSIPORT). [`Started::Done`]: the completion
    /// fields are filled and the trampoline completes it; [`Started::Pending`]: the disk worker
    /// serves it and HwTimer completes it. Either way the trampoline asks for the next one.
    fn start_io(state: &DeviceState, srb: Srb<'_>, irql: &Dispatch) -> Started;
}

/// HwContext values: the service, as a number (SCSIPORT passes HwContext through untouched).
const CONTEXT_DISKS_SERVICE: usize = 1;
const CONTEXT_DEFAULT_SERVICE: usize = 2;

fn init_data<M: ScsiMiniport>() -> HwInitializationData {
    let mut init = HwInitializationData::zeroed();
    init.hw_initialization_data_size = HW_INIT_DATA_SIZE_SCSIPORT;
    init.adapter_interface_type = INTERFACE_TYPE_ISA;
    init.hw_initialize = Some(hw_initialize_timer::<M>);
    init.hw_start_io = Some(hw_start_io::<M>);
    // ReactOS's scsiport rejects a NULL HwInterrupt; a stub costs nothing (§2.2).
    init.hw_interrupt = Some(hw_interrupt);
    init.hw_find_adapter = hw_find_adapter::<M> as HwFindAdapterFn as *const c_void;
    init.hw_reset_bus = Some(hw_reset_bus::<M>);
    init.hw_adapter_control = Some(hw_adapter_control::<M>);
    init.device_extension_size = DEVICE_EXTENSION_SIZE;
    // `docs/driver.md` "Port configuration": a DMA-less adapter whose buffers SCSIPORT maps.
    init.map_buffers = 1;
    init.tagged_queuing = 1;
    init.auto_request_sense = 1;
    init.multiple_request_per_lu = 1;
    init
}

/// # Safety
/// Called once by the I/O manager at PASSIVE_LEVEL with its driver object and `registry_path`,
/// null or a UNICODE_STRING whose Buffer is null or holds Length bytes of UTF-16.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
) -> i32 {
    // SAFETY: DriverEntry runs at PASSIVE_LEVEL (contract); the token dies with this call.
    let irql = unsafe { Passive::new_unchecked() };
    rvblk_kernel::nt::set_driver_object(driver_object);
    rvblk_kernel::rvblk_log!(
        "rvblkxp {} loading (SCSIPORT miniport)",
        env!("CARGO_PKG_VERSION")
    );
    let path: &[u16] = match registry_path.cast::<UnicodeString>() {
        p if p.is_null() => &[],
        // SAFETY: a valid UNICODE_STRING when non-null (contract).
        p => match unsafe { &*p } {
            s if s.buffer.is_null() => &[],
            // SAFETY: `length` bytes of UTF-16 at `buffer` (UNICODE_STRING contract).
            s => unsafe { core::slice::from_raw_parts(s.buffer, usize::from(s.length) / 2) },
        },
    };
    let context = match Service::from_registry_path(path) {
        Service::Disks => CONTEXT_DISKS_SERVICE,
        Service::Default => CONTEXT_DEFAULT_SERVICE,
    };
    let mut init = init_data::<RamDisks>();
    // SAFETY: DriverEntry's own two arguments.
    let status =
        unsafe { scsiport::initialize(driver_object, registry_path, &mut init, context, &irql) };
    if status != status::STATUS_SUCCESS {
        rvblk_kernel::rvblk_log!("ScsiPortInitialize failed: {:#x}", status as u32);
    }
    status
}

/// HwFindAdapter, 6 parameters (SCSIPORT).
///
/// # Safety
/// SCSIPORT calls it at PASSIVE_LEVEL, serialised with every other callback, with:
/// * `ext` — the adapter's device extension of DeviceExtensionSize bytes, zeroed;
/// * `hw_context` — the value DriverEntry passed to ScsiPortInitialize (read as a number only);
/// * `argument_string` — null or a NUL-terminated string, valid during the call;
/// * `config` — a PORT_CONFIGURATION_INFORMATION valid for its `Length` bytes (XP's ends at
///   WmiDataProvider; fields past `Length` are never touched), not aliased during the call;
/// * `again` — null or a writable BOOLEAN.
unsafe extern "system" fn hw_find_adapter<M: ScsiMiniport>(
    ext: *mut c_void,
    hw_context: *mut c_void,
    _bus_information: *mut c_void,
    argument_string: *const u8,
    config: *mut PortConfigurationInformation,
    again: *mut u8,
) -> u32 {
    // SAFETY: PASSIVE_LEVEL for the duration of this call (contract).
    let irql = unsafe { Passive::new_unchecked() };
    let service = match hw_context as usize {
        CONTEXT_DISKS_SERVICE => Service::Disks,
        _ => Service::Default,
    };
    let argument = (!argument_string.is_null()).then(|| {
        // SAFETY: a NUL-terminated string valid during the call (contract).
        unsafe { core::ffi::CStr::from_ptr(argument_string.cast()) }.to_bytes()
    });
    // SAFETY: the extension, ConfigInfo and Again as `find_adapter_args` requires (contract).
    let (state, config) = unsafe { extension::find_adapter_args(ext, config, again) };
    // SAFETY: the extension SCSIPORT passed; a legacy adapter is never removed, so the worker
    // that keeps it outlives nothing.
    let adapter = unsafe { AdapterRef::new(ext) };
    M::find_adapter(state, config, service, argument, adapter, &irql)
}

/// No hardware, no interrupts: never ours.
///
/// # Safety
/// None needed: the extension is not touched.
unsafe extern "system" fn hw_interrupt(_ext: *mut c_void) -> u8 {
    0
}

/// # Safety
/// SCSIPORT calls it at IRQL ≤ DISPATCH_LEVEL, serialised with the adapter callbacks, with:
/// * `ext` — the adapter's device extension;
/// * `srb` — a live SRB now owned by this miniport until RequestComplete, with a
///   SenseInfoBuffer null or valid for SenseInfoBufferLength bytes and (MapBuffers = TRUE) a
///   DataBuffer that is a system address valid for DataTransferLength bytes
///   (`docs/windows-integration.md` §1.10).
unsafe extern "system" fn hw_start_io<M: ScsiMiniport>(
    ext: *mut c_void,
    srb: *mut ScsiRequestBlock,
) -> u8 {
    // The address, read while the SRB is surely ours: once pending it belongs to the worker.
    // SAFETY: a live SRB (contract).
    let request = unsafe { &*srb };
    let (path, target, lun) = (request.path_id, request.target_id, request.lun);
    let serve = |state: &DeviceState, request: Srb<'_>, irql: &Dispatch| {
        let started = M::start_io(state, request, irql);
        if started == Started::Pending {
            if let Some(disk) = &state.disk {
                disk.path().deferred().note_pending();
            }
        }
        started
    };
    // SAFETY: IRQL, extension and SRB as `start_io` requires (contract; HwFindAdapter recorded
    // BufferMapping::All, which MapBuffers = TRUE provides).
    let started = unsafe { trampolines::start_io(ext, srb, serve) };
    if started == Started::Pending {
        // The worker serves it; HwTimer completes it (ScsiPortNotification is legal only in
        // miniport callbacks, `docs/driver.md` "Disk-backed images", SCSIPORT).
        // SAFETY: HwStartIo's extension; `hw_timer` takes any later call with it.
        unsafe { scsiport::request_timer_call(ext, hw_timer, miniport::BUSY_TIMER_US) };
        // SAFETY: HwStartIo's extension.
        unsafe { scsiport::ask_next(ext, path, target, lun) };
        return 1;
    }
    // SAFETY: the request is complete, no reference to it remains, handed back exactly once.
    unsafe { scsiport::complete_and_ask_next(ext, srb) };
    1
}

/// HwInitialize, then the first RequestTimerCall when disk-backed images are served: HwTimer
/// announces their arrival (BusChangeDetected) and completes what the worker served.
///
/// # Safety
/// As [`hw_initialize`]: SCSIPORT calls it once after HwFindAdapter found the adapter, inside
/// the miniport, with the adapter's device extension.
unsafe extern "system" fn hw_initialize_timer<M: ScsiMiniport>(ext: *mut c_void) -> u8 {
    // SAFETY: the same call, forwarded (contract).
    let ok = unsafe { hw_initialize::<M>(ext) };
    // SAFETY: the adapter's extension, read only.
    let state = unsafe { extension::state(ext) };
    if ok != 0 && state.disk.is_some() {
        // SAFETY: a miniport callback with its extension; `hw_timer` takes any later call.
        unsafe { scsiport::request_timer_call(ext, hw_timer, miniport::IDLE_TIMER_US) };
    }
    ok
}

/// HwTimer (RequestTimerCall): completes every SRB the worker finished, announces a bus change
/// the worker recorded, and re-arms itself (`miniport::timer_period`).
///
/// # Safety
/// SCSIPORT calls it at DISPATCH_LEVEL, serialised with HwStartIo, with the adapter's device
/// extension; every SRB in the deferred queue is pending, owned by this miniport and no longer
/// used by the worker (`QueuedSrb`).
unsafe extern "system" fn hw_timer(ext: *mut c_void) {
    // SAFETY: DISPATCH_LEVEL for the call (contract).
    let irql = unsafe { Dispatch::new_unchecked() };
    // SAFETY: shared access to the adapter's extension (contract).
    let state = unsafe { extension::state(ext) };
    let Some(disk) = &state.disk else {
        return;
    };
    let deferred = disk.path().deferred();
    while let Some(done) = deferred.pop(&irql) {
        // SAFETY: a pending SRB the worker finished, handed back exactly once (consumed).
        unsafe { scsiport::request_complete(ext, done.into_raw()) };
    }
    if deferred.take_bus_change() {
        // SAFETY: inside HwTimer with its extension.
        unsafe { scsiport::bus_change_detected(ext) };
    }
    let period = miniport::timer_period(deferred.owed());
    // SAFETY: inside HwTimer with its extension; `hw_timer` takes any later call.
    unsafe { scsiport::request_timer_call(ext, hw_timer, period) };
}
