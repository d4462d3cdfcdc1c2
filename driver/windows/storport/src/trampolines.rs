//! The StorPort trampolines: DriverEntry and every `unsafe extern "system"` callback, generic
//! over [`StorMiniport`]. Each shim checks nothing it cannot check, turns its raw arguments
//! into safe types under the contract listed in its `# Safety` section, hands the callback the
//! token of the IRQL StorPort calls it at, and calls the safe logic (`miniport.rs`).
//!
//! One binary serves every version from Vista SP1 to Windows 11 (`docs/windows-integration.md`
//! §1.1): DriverEntry tries the Windows 8+ structure first and falls back to the Vista SP1 /
//! Windows 7 size when StorPort refuses it. The MapBuffers mode is chosen once per attempt and
//! travels to HwFindAdapter in the callback itself ([`hw_find_adapter`] is instantiated per
//! [`BufferMapping`]): no global, and ConfigInfo gets the value the init data declared.

use crate::miniport::RamDisks;
use crate::storport::{self, StorPortAdapter};
use core::ffi::c_void;
use rvblk_abi::*;
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::extension::{self, AdapterRef, DEVICE_EXTENSION_SIZE};
use rvblk_kernel::io::Started;
use rvblk_kernel::port::DeviceState;
use rvblk_kernel::srb::{BufferMapping, Srb};
use rvblk_kernel::trampolines::{
    self, hw_adapter_control, hw_initialize, hw_reset_bus, AdapterCallbacks,
};

/// The driver logic behind the StorPort callbacks, safe Rust.
pub trait StorMiniport: AdapterCallbacks {
    /// HwFindAdapter (PASSIVE_LEVEL). `mapping` is what the init data declared.
    fn find_adapter(
        state: &mut DeviceState,
        config: &mut PortConfigurationInformation,
        mapping: BufferMapping,
        adapter: AdapterRef,
        irql: &Passive,
    ) -> u32;
    /// HwStartIo (≤ DISPATCH_LEVEL, unsynchronised, several CPUs at once,
    /// `docs/windows-integration.md` §1.9). [`Started::Done`]: the completion fields are filled
    /// and the trampoline completes it; [`Started::Pending`]: the disk worker completes it.
    fn start_io(
        state: &DeviceState,
        srb: Srb<'_>,
        adapter: &StorPortAdapter,
        irql: &Dispatch,
    ) -> Started;
    /// HwFreeAdapterResources (PASSIVE_LEVEL, no I/O in flight).
    fn free_resources(state: &mut DeviceState, irql: &Passive);
}

/// One StorPortInitialize attempt: the structure size and the MapBuffers mode that goes with it.
#[derive(Clone, Copy)]
struct Attempt {
    size: u32,
    mapping: BufferMapping,
}

/// Windows 8+: MapBuffers = 3 maps READ/WRITE buffers too.
const WIN8: Attempt = Attempt {
    size: HW_INIT_DATA_SIZE_WIN8,
    mapping: BufferMapping::All,
};
/// Vista SP1/7 treat MapBuffers 3 as invalid; 1 maps the non-READ/WRITE buffers (§1.10).
const WIN7: Attempt = Attempt {
    size: HW_INIT_DATA_SIZE_VIRTUAL_WIN7,
    mapping: BufferMapping::AllButMediumData,
};

fn init_data<M: StorMiniport>(attempt: Attempt) -> HwInitializationData {
    let mut init = HwInitializationData::zeroed();
    init.hw_initialization_data_size = attempt.size;
    init.adapter_interface_type = INTERFACE_TYPE_INTERNAL;
    init.hw_initialize = Some(hw_initialize::<M>);
    init.hw_start_io = Some(hw_start_io::<M>);
    let find: VirtualHwFindAdapterFn = match attempt.mapping {
        BufferMapping::All => hw_find_adapter::<M, { BufferMapping::All as u8 }>,
        BufferMapping::AllButMediumData => {
            hw_find_adapter::<M, { BufferMapping::AllButMediumData as u8 }>
        }
    };
    init.hw_find_adapter = find as *const c_void;
    init.hw_reset_bus = Some(hw_reset_bus::<M>);
    init.hw_adapter_control = Some(hw_adapter_control::<M>);
    init.hw_free_adapter_resources = Some(hw_free_adapter_resources::<M>);
    init.device_extension_size = DEVICE_EXTENSION_SIZE;
    init.map_buffers = attempt.mapping.storport_map_buffers();
    init.tagged_queuing = 1;
    init.auto_request_sense = 1;
    init.multiple_request_per_lu = 1;
    init.receive_event = 1;
    if attempt.size >= HW_INIT_DATA_SIZE_WIN8 {
        init.feature_support =
            STOR_FEATURE_VIRTUAL_MINIPORT | STOR_FEATURE_FULL_PNP_DEVICE_CAPABILITIES;
        init.srb_type_flags = SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK;
        init.address_type_flags = ADDRESS_TYPE_FLAG_BTL8;
    }
    init
}

const fn mapping_of(code: u8) -> BufferMapping {
    if code == BufferMapping::AllButMediumData as u8 {
        BufferMapping::AllButMediumData
    } else {
        BufferMapping::All
    }
}

/// # Safety
/// Called once by the I/O manager, at PASSIVE_LEVEL, with its driver object and the service's
/// registry path (a UNICODE_STRING), which StorPortInitialize receives unchanged.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
) -> i32 {
    // SAFETY: DriverEntry runs at PASSIVE_LEVEL (contract); the token dies with this call.
    let irql = unsafe { Passive::new_unchecked() };
    rvblk_kernel::nt::set_driver_object(driver_object);
    rvblk_kernel::rvblk_log!(
        "rvblk {} loading (StorPort virtual miniport)",
        env!("CARGO_PKG_VERSION")
    );
    let mut init = init_data::<RamDisks>(WIN8);
    // SAFETY: DriverEntry's own two arguments.
    let mut status =
        unsafe { storport::initialize(driver_object, registry_path, &mut init, &irql) };
    if status != status::STATUS_SUCCESS {
        rvblk_kernel::rvblk_log!(
            "StorPort refused the Windows 8 structure ({:#x}); using the Windows 7 layout",
            status as u32
        );
        let mut init = init_data::<RamDisks>(WIN7);
        // SAFETY: as above.
        status = unsafe { storport::initialize(driver_object, registry_path, &mut init, &irql) };
    }
    if status != status::STATUS_SUCCESS {
        rvblk_kernel::rvblk_log!("StorPortInitialize failed: {:#x}", status as u32);
    }
    status
}

/// VirtualHwStorFindAdapter (7 parameters, `docs/windows-integration.md` §0 item 2), one instance
/// per MapBuffers mode (`MAPPING` is a [`BufferMapping`] discriminant).
///
/// # Safety
/// StorPort calls it at PASSIVE_LEVEL, serialised with every other callback of the adapter,
/// with:
/// * `ext` — the adapter's device extension of DeviceExtensionSize bytes, zeroed on first use
///   or holding the state a previous HwFindAdapter left (`extension::state_mut`);
/// * `config` — a PORT_CONFIGURATION_INFORMATION valid for reads and writes of its `Length`
///   field's bytes (fields past `Length` are never touched), not aliased during the call;
/// * `again` — null or a writable BOOLEAN.
///
/// The other arguments (PDO, FDO, LowerDevice, ArgumentString) are not used.
unsafe extern "system" fn hw_find_adapter<M: StorMiniport, const MAPPING: u8>(
    ext: *mut c_void,
    _hw_context: *mut c_void,
    _bus_information: *mut c_void,
    _lower_device: *mut c_void,
    _argument_string: *const u8,
    config: *mut PortConfigurationInformation,
    again: *mut u8,
) -> u32 {
    // SAFETY: PASSIVE_LEVEL for the duration of this call (contract).
    let irql = unsafe { Passive::new_unchecked() };
    // SAFETY: the extension, ConfigInfo and Again as `find_adapter_args` requires (contract).
    let (state, config) = unsafe { extension::find_adapter_args(ext, config, again) };
    // SAFETY: the extension StorPort passed to this callback; the worker using it is stopped in
    // HwFreeAdapterResources, before the adapter goes.
    let adapter = unsafe { extension::AdapterRef::new(ext) };
    M::find_adapter(state, config, mapping_of(MAPPING), adapter, &irql)
}

/// # Safety
/// StorPort calls it at IRQL ≤ DISPATCH_LEVEL, possibly on several CPUs at once, with:
/// * `ext` — the adapter's device extension, which no adapter callback changes while requests
///   are in flight (StorPort serialises stop/remove against I/O);
/// * `srb` — a live classic SRB now owned by this miniport until RequestComplete, with a
///   SenseInfoBuffer null or valid for SenseInfoBufferLength bytes and, for the buffers the
///   MapBuffers mode declared in HwFindAdapter maps, a DataBuffer that is a system address valid
///   for DataTransferLength bytes (`docs/windows-integration.md` §1.10), and for
///   SRB_FUNCTION_IO_CONTROL an OriginalRequest that is NULL or the requester's pending IRP
///   (`docs/control.md` §6.3).
unsafe extern "system" fn hw_start_io<M: StorMiniport>(
    ext: *mut c_void,
    srb: *mut ScsiRequestBlock,
) -> u8 {
    let serve = |state: &DeviceState, request: Srb<'_>, irql: &Dispatch| {
        // SAFETY: the extension StorPort passed to this HwStartIo call.
        let adapter = unsafe { StorPortAdapter::new(ext) };
        M::start_io(state, request, &adapter, irql)
    };
    // SAFETY: IRQL, extension and SRB as `start_io` requires (contract; HwFindAdapter recorded
    // the mapping the init data declared).
    let started = unsafe { trampolines::start_io(ext, srb, serve) };
    if started == Started::Pending {
        // The disk worker owns the request now and completes it (`docs/driver.md`
        // "Disk-backed images"); HwStartIo returns TRUE without completing it.
        return 1;
    }
    #[cfg(feature = "selftest-double-complete")]
    // SAFETY: the SRB is still ours here (completed only below).
    let read10 = unsafe { (*srb).cdb[0] } == 0x28;
    // SAFETY: the request is complete, no reference to it remains, handed back exactly once.
    unsafe { storport::request_complete(ext, srb) };
    #[cfg(feature = "selftest-double-complete")]
    if read10 {
        // Deliberate fault for the harness's verifier self-test (never shipped).
        // SAFETY: none — this build exists only to prove the verifier catches it.
        unsafe { storport::request_complete(ext, srb) };
    }
    1
}

/// # Safety
/// StorPort calls it once when the adapter is removed, at PASSIVE_LEVEL, with no I/O in flight
/// and serialised, with the adapter's extension.
unsafe extern "system" fn hw_free_adapter_resources<M: StorMiniport>(ext: *mut c_void) {
    // SAFETY: PASSIVE_LEVEL for the call (contract).
    let irql = unsafe { Passive::new_unchecked() };
    // SAFETY: the adapter's extension, exclusive (contract).
    let state = unsafe { extension::state_mut(ext) };
    M::free_resources(state, &irql);
}
