//! Kernel-wrapper module: the raw arguments both ports pass to adapter callbacks, as typed
//! values: the device extension as a [`DeviceState`], HwFindAdapter's ConfigInfo and `Again`,
//! HwAdapterControl's parameters as an [`AdapterControl`].

use crate::port::{AdapterControl, DeviceState};
use core::ffi::c_void;
use rvblk_abi::PortConfigurationInformation;

/// Bytes the port allocates for [`DeviceState`] (DeviceExtensionSize).
pub const DEVICE_EXTENSION_SIZE: u32 = core::mem::size_of::<DeviceState>() as u32;

/// Exclusive access, for adapter callbacks.
///
/// # Safety
/// * `ext` is this adapter's device extension, [`DEVICE_EXTENSION_SIZE`] bytes, suitably
///   aligned (ports align extensions to 8 or more), either zeroed by the port or holding a
///   `DeviceState` written through these functions;
/// * the port serialises this callback against every other callback of the adapter, so no
///   other reference to the state exists during `'a`.
pub unsafe fn state_mut<'a>(ext: *mut c_void) -> &'a mut DeviceState {
    // SAFETY: per the contract. An all-zero DeviceState is valid (live = false, an empty
    // ArrayVec, BufferMapping::All, `disk: None` are all zero bits — see the niche assertion
    // next to `DiskService`), so a fresh extension is a valid value.
    unsafe { &mut *ext.cast::<DeviceState>() }
}

/// Shared access, for HwStartIo.
///
/// # Safety
/// As [`state_mut`], except that other shared references may exist: the port runs no adapter
/// callback that changes the state (find, stop, remove) while requests are in flight.
pub unsafe fn state<'a>(ext: *mut c_void) -> &'a DeviceState {
    // SAFETY: per the contract.
    unsafe { &*ext.cast::<DeviceState>() }
}

/// HwFindAdapter's arguments common to both ports: the state and ConfigInfo, with `*again`
/// cleared (one adapter, never call again).
///
/// # Safety
/// * `ext` as for [`state_mut`];
/// * `config` is a PORT_CONFIGURATION_INFORMATION valid for reads and writes of its `Length`
///   field's bytes, not aliased during `'a` (`port::fill_config` checks every write against
///   `Length`, so fields past it are never touched);
/// * `again` is null or a writable BOOLEAN.
pub unsafe fn find_adapter_args<'a>(
    ext: *mut c_void,
    config: *mut PortConfigurationInformation,
    again: *mut u8,
) -> (&'a mut DeviceState, &'a mut PortConfigurationInformation) {
    // SAFETY: the adapter's extension, exclusive in this serialised callback (contract).
    let state = unsafe { state_mut(ext) };
    // SAFETY: valid and unaliased for `'a` (contract).
    let config = unsafe { &mut *config };
    if !again.is_null() {
        // SAFETY: a writable BOOLEAN when non-null (contract).
        unsafe { *again = 0 };
    }
    (state, config)
}

/// HwAdapterControl's (ControlType, Parameters) as a request.
///
/// # Safety
/// For ScsiQuerySupportedControlTypes, `params` points to a SCSI_SUPPORTED_CONTROL_TYPE_LIST
/// whose SupportedTypeList has MaxControlType writable BOOLEANs, not aliased during `'a`.
pub unsafe fn adapter_control<'a>(control: u32, params: *mut c_void) -> AdapterControl<'a> {
    use rvblk_abi::adapter_control::*;
    match control {
        QUERY_SUPPORTED_CONTROL_TYPES => {
            let list = params.cast::<rvblk_abi::SupportedControlTypeList>();
            // SAFETY: a valid list header (contract).
            let max = unsafe { (*list).max_control_type } as usize;
            // SAFETY: a place computation inside the valid header; nothing is read.
            let flags = unsafe { core::ptr::addr_of_mut!((*list).supported_type_list) };
            // SAFETY: MaxControlType writable BOOLEANs follow the header (contract).
            let flags = unsafe { core::slice::from_raw_parts_mut(flags.cast::<u8>(), max) };
            AdapterControl::QuerySupported(flags)
        }
        STOP_ADAPTER => AdapterControl::Stop,
        RESTART_ADAPTER => AdapterControl::Restart,
        other => AdapterControl::Other(other),
    }
}

/// The adapter's device extension as the port's notification routines need it
/// (StorPortNotification's HwDeviceExtension argument), for the worker thread.
#[derive(Clone, Copy)]
pub struct AdapterRef(*mut c_void);

// SAFETY: only an address handed back to the port's notification routines, which accept it from
// any thread (`docs/windows-integration.md` §8.3).
unsafe impl Send for AdapterRef {}
// SAFETY: as above; never dereferenced by the driver.
unsafe impl Sync for AdapterRef {}

impl AdapterRef {
    /// # Safety
    /// `ext` is this adapter's device extension as the port passed it to a callback; the value
    /// is used only while the adapter exists (the worker is stopped before removal completes).
    pub unsafe fn new(ext: *mut c_void) -> Self {
        Self(ext)
    }

    pub fn as_ptr(self) -> *mut c_void {
        self.0
    }
}
