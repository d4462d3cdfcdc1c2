//! Adapter callbacks. StorPort calls them one at a time; HwFindAdapter at PASSIVE_LEVEL.

use core::ffi::c_void;
use core::mem::{offset_of, size_of};
use rvblk_abi::*;
use rvblk_kernel::adapter::{Adapter, ExposePolicy, LUNS_PER_TARGET, MAX_TARGETS};
use rvblk_kernel::rvblk_log;

/// What lives in StorPort's device extension (DeviceExtensionSize = size_of).
pub struct DeviceState {
    /// False in a freshly zeroed extension; StorPort keeps the old contents across a restart
    /// (§1.5 "Device-extension lifetime").
    pub live: bool,
    pub adapter: Adapter,
}

/// # Safety
/// `ext` is StorPort's device extension for this adapter, `size_of::<DeviceState>()` bytes,
/// either zeroed or holding a `DeviceState` we wrote; StorPort serialises adapter callbacks.
pub unsafe fn state<'a>(ext: *mut c_void) -> &'a mut DeviceState {
    // SAFETY: per the function contract. An all-zero DeviceState is valid (live = false and an
    // empty ArrayVec are both zero bits), so a fresh extension is also a valid value.
    unsafe { &mut *ext.cast::<DeviceState>() }
}

const MAX_TRANSFER: u32 = 8 << 20;

/// Writes `value` into ConfigInfo only if the field lies within `length` (§1.1: never write past
/// what this Windows version's structure has).
macro_rules! set_config {
    ($config:expr, $field:ident, $value:expr) => {{
        let end = offset_of!(PortConfigurationInformation, $field) as u32 + field_size(&$config.$field);
        if end <= $config.length {
            $config.$field = $value;
        }
    }};
}

fn field_size<T>(_: &T) -> u32 {
    size_of::<T>() as u32
}

/// VirtualHwStorFindAdapter (7 parameters).
///
/// # Safety
/// StorPort contract: PASSIVE_LEVEL, valid extension and ConfigInfo.
pub unsafe extern "system" fn hw_find_adapter(
    ext: *mut c_void,
    _hw_context: *mut c_void,
    _bus_information: *mut c_void,
    _lower_device: *mut c_void,
    _argument_string: *const u8,
    config: *mut PortConfigurationInformation,
    again: *mut u8,
) -> u32 {
    // SAFETY: StorPort passes its extension (see `state`).
    let st = unsafe { state(ext) };
    if st.live {
        st.adapter.release();
        st.live = false;
    }
    // SAFETY: ConfigInfo is valid for `length` bytes; `set_config!` checks every write.
    let config = unsafe { &mut *config };
    set_config!(config, maximum_transfer_length, MAX_TRANSFER);
    set_config!(config, number_of_physical_breaks, (MAX_TRANSFER >> 12) + 1);
    set_config!(config, alignment_mask, 0);
    set_config!(config, number_of_buses, 1);
    set_config!(config, scatter_gather, 1);
    set_config!(config, master, 1);
    set_config!(config, caches_data, 0);
    set_config!(config, map_buffers, STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE);
    set_config!(config, tagged_queuing, 1);
    set_config!(config, auto_request_sense, 1);
    set_config!(config, multiple_request_per_lu, 1);
    set_config!(config, maximum_number_of_targets, MAX_TARGETS as u8);
    set_config!(config, maximum_number_of_logical_units, LUNS_PER_TARGET as u8);
    set_config!(config, wmi_data_provider, 0);
    set_config!(config, synchronization_model, STOR_SYNCHRONIZE_FULL_DUPLEX);
    set_config!(config, virtual_device, 1);
    if !again.is_null() {
        // SAFETY: a BOOLEAN out-parameter when non-null.
        unsafe { *again = 0 };
    }
    // A fresh extension is zeroed, which is an empty table; a restarted one was released above.
    st.adapter.discover(ExposePolicy::ALL);
    st.live = true;
    SP_RETURN_FOUND
}

/// # Safety
/// StorPort contract: valid extension.
pub unsafe extern "system" fn hw_initialize(ext: *mut c_void) -> u8 {
    // SAFETY: StorPort passes its extension.
    let st = unsafe { state(ext) };
    if st.live {
        st.adapter.verify_images();
    }
    1
}

/// # Safety
/// StorPort contract.
pub unsafe extern "system" fn hw_reset_bus(_ext: *mut c_void, _path_id: u32) -> u8 {
    // Nothing is ever outstanding: every request completes inside HwStartIo.
    1
}

/// # Safety
/// StorPort contract: valid extension; for ScsiQuerySupportedControlTypes `params` is a
/// SCSI_SUPPORTED_CONTROL_TYPE_LIST with room for MaxControlType booleans.
pub unsafe extern "system" fn hw_adapter_control(ext: *mut c_void, control: u32, params: *mut c_void) -> u32 {
    use rvblk_abi::adapter_control::*;
    // SAFETY: StorPort passes its extension.
    let st = unsafe { state(ext) };
    match control {
        QUERY_SUPPORTED_CONTROL_TYPES => {
            let list = params.cast::<SupportedControlTypeList>();
            // SAFETY: per the contract above; we write only indices below MaxControlType.
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
        STOP_ADAPTER => {
            if st.live {
                st.adapter.suspend();
            }
            STATUS_SUCCESS
        }
        RESTART_ADAPTER => {
            if st.live {
                st.adapter.resume();
            }
            STATUS_SUCCESS
        }
        _ => {
            rvblk_log!("unsupported adapter control {}", control);
            STATUS_UNSUCCESSFUL
        }
    }
}

/// # Safety
/// StorPort contract: called once when the adapter is removed, no I/O in flight.
pub unsafe extern "system" fn hw_free_adapter_resources(ext: *mut c_void) {
    // SAFETY: StorPort passes its extension.
    let st = unsafe { state(ext) };
    if st.live {
        st.adapter.release();
        st.live = false;
    }
}
