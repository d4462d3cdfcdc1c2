//! What both port flavours share around their callbacks: the device-extension state and the
//! PORT_CONFIGURATION_INFORMATION values (`docs/windows-integration.md` §1.5, §2.2).

use crate::adapter::{Adapter, LUNS_PER_TARGET, MAX_TARGETS};
use core::ffi::c_void;
use core::mem::{offset_of, size_of};
use rvblk_abi::*;

/// What lives in the port's device extension (DeviceExtensionSize = size_of).
pub struct DeviceState {
    /// False in a freshly zeroed extension. StorPort keeps the old contents across a restart
    /// (§1.5 "Device-extension lifetime"); SCSIPORT zeroes them.
    pub live: bool,
    pub adapter: Adapter,
}

pub const DEVICE_EXTENSION_SIZE: u32 = size_of::<DeviceState>() as u32;

/// # Safety
/// `ext` is the port's device extension for this adapter, `DEVICE_EXTENSION_SIZE` bytes, either
/// zeroed or holding a `DeviceState` written through this function; the caller has the access
/// the port's callback rules give it (exclusive in adapter callbacks).
pub unsafe fn state<'a>(ext: *mut c_void) -> &'a mut DeviceState {
    // SAFETY: per the function contract. An all-zero DeviceState is valid (live = false and an
    // empty ArrayVec are both zero bits), so a fresh extension is a valid value too.
    unsafe { &mut *ext.cast::<DeviceState>() }
}

/// Largest transfer per SRB.
pub const MAX_TRANSFER: u32 = 8 << 20;

fn field_size<T>(_: &T) -> u32 {
    size_of::<T>() as u32
}

/// Writes `value` into ConfigInfo only if the field lies within `length`: never write past what
/// this Windows version's structure has (§1.1; XP's ends at WmiDataProvider).
macro_rules! set_config {
    ($config:expr, $field:ident, $value:expr) => {{
        let end =
            offset_of!(PortConfigurationInformation, $field) as u32 + field_size(&$config.$field);
        if end <= $config.length {
            $config.$field = $value;
        }
    }};
}

/// Fills the fields a RAM-disk miniport sets in HwFindAdapter. `virtual_device` for StorPort
/// virtual miniports; `map_buffers` as in the init data.
pub fn fill_config(
    config: &mut PortConfigurationInformation,
    virtual_device: bool,
    map_buffers: u8,
) {
    set_config!(config, maximum_transfer_length, MAX_TRANSFER);
    set_config!(config, number_of_physical_breaks, (MAX_TRANSFER >> 12) + 1);
    set_config!(config, alignment_mask, 0);
    set_config!(config, number_of_buses, 1);
    set_config!(config, scatter_gather, 1);
    set_config!(config, master, 1);
    set_config!(config, caches_data, 0);
    set_config!(config, map_buffers, map_buffers);
    set_config!(config, tagged_queuing, 1);
    set_config!(config, auto_request_sense, 1);
    set_config!(config, multiple_request_per_lu, 1);
    set_config!(config, maximum_number_of_targets, MAX_TARGETS as u8);
    set_config!(
        config,
        maximum_number_of_logical_units,
        LUNS_PER_TARGET as u8
    );
    set_config!(config, dma64_bit_addresses, SCSI_DMA64_MINIPORT_SUPPORTED);
    if virtual_device {
        set_config!(config, wmi_data_provider, 0);
        set_config!(config, synchronization_model, STOR_SYNCHRONIZE_FULL_DUPLEX);
        set_config!(config, virtual_device, 1);
    }
}

/// HwFindAdapter's common part: reset a restarted extension, fill ConfigInfo, discover.
///
/// # Safety
/// `ext` as in [`state`] (adapter callback, exclusive); `config` valid for `config.length`
/// bytes; `again` null or a writable BOOLEAN. PASSIVE_LEVEL.
pub unsafe fn find_adapter(
    ext: *mut c_void,
    config: *mut PortConfigurationInformation,
    again: *mut u8,
    virtual_device: bool,
    map_buffers: u8,
    policy: crate::adapter::ExposePolicy,
) -> u32 {
    // SAFETY: forwarded contract.
    let st = unsafe { state(ext) };
    if st.live {
        st.adapter.release();
        st.live = false;
    }
    // SAFETY: forwarded contract; `fill_config` checks every write against `length`.
    fill_config(unsafe { &mut *config }, virtual_device, map_buffers);
    if !again.is_null() {
        // SAFETY: a BOOLEAN out-parameter when non-null.
        unsafe { *again = 0 };
    }
    // A fresh extension is zeroed, which is an empty table; a restarted one was released above.
    st.adapter.discover(policy);
    st.live = true;
    SP_RETURN_FOUND
}

/// HwInitialize runs at device IRQL, where nothing may be mapped: everything was prepared in
/// HwFindAdapter, and the rule-29 re-check happens at each LUN's first I/O.
pub fn initialize(_ext: *mut c_void) -> u8 {
    1
}

/// HwAdapterControl: query, stop, restart. Stop and restart run at device IRQL, where
/// MmMapIoSpace/MmUnmapIoSpace are not allowed, so the mappings stay in place until
/// HwFreeAdapterResources (PASSIVE_LEVEL) releases them; nothing is in flight while stopped.
///
/// # Safety
/// As [`state`]; for ScsiQuerySupportedControlTypes `params` is a SCSI_SUPPORTED_CONTROL_TYPE_LIST
/// with room for MaxControlType booleans. IRQL ≤ DISPATCH_LEVEL.
pub unsafe fn adapter_control(_ext: *mut c_void, control: u32, params: *mut c_void) -> u32 {
    use rvblk_abi::adapter_control::*;
    match control {
        QUERY_SUPPORTED_CONTROL_TYPES => {
            let list = params.cast::<SupportedControlTypeList>();
            // SAFETY: per the contract above; only indices below MaxControlType are written.
            unsafe {
                let max = (*list).max_control_type;
                let flags = core::ptr::addr_of_mut!((*list).supported_type_list).cast::<u8>();
                for t in [QUERY_SUPPORTED_CONTROL_TYPES, STOP_ADAPTER, RESTART_ADAPTER] {
                    if t < max {
                        *flags.add(t as usize) = 1;
                    }
                }
            }
            STATUS_SUCCESS
        }
        STOP_ADAPTER | RESTART_ADAPTER => STATUS_SUCCESS,
        _ => {
            crate::rvblk_log!("unsupported adapter control {}", control);
            STATUS_UNSUCCESSFUL
        }
    }
}

/// HwFreeAdapterResources / removal: release every mapping.
///
/// # Safety
/// As [`state`]; no I/O in flight.
pub unsafe fn free_resources(ext: *mut c_void) {
    // SAFETY: forwarded contract.
    let st = unsafe { state(ext) };
    if st.live {
        st.adapter.release();
        st.live = false;
    }
}

/// Kernel code cannot unwind. The core returns errors instead of panicking; reaching this is a
/// bug, and spinning keeps it visible under a debugger rather than corrupting state.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The MSVC toolchain expects this symbol whenever floating point may appear; core's formatting
/// code references it although rvblk does no floating point.
#[no_mangle]
#[used]
static _fltused: i32 = 0;
