//! Adapter callbacks. StorPort calls them one at a time; HwFindAdapter at PASSIVE_LEVEL.

use core::ffi::c_void;
use rvblk_abi::*;
use rvblk_kernel::adapter::ExposePolicy;
use rvblk_kernel::port;

/// VirtualHwStorFindAdapter (7 parameters, `docs/windows-integration.md` §0 item 2).
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
    // SAFETY: StorPort's contract is port::find_adapter's.
    unsafe {
        port::find_adapter(
            ext,
            config,
            again,
            true,
            STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE,
            ExposePolicy::ALL,
        )
    }
}

/// # Safety
/// StorPort contract: valid extension.
pub unsafe extern "system" fn hw_initialize(ext: *mut c_void) -> u8 {
    port::initialize(ext)
}

/// # Safety
/// StorPort contract.
pub unsafe extern "system" fn hw_reset_bus(_ext: *mut c_void, _path_id: u32) -> u8 {
    // Nothing is ever outstanding: every request completes inside HwStartIo.
    1
}

/// # Safety
/// StorPort contract (see port::adapter_control).
pub unsafe extern "system" fn hw_adapter_control(
    ext: *mut c_void,
    control: u32,
    params: *mut c_void,
) -> u32 {
    // SAFETY: StorPort's contract is port::adapter_control's.
    unsafe { port::adapter_control(ext, control, params) }
}

/// # Safety
/// StorPort contract: called once when the adapter is removed, no I/O in flight.
pub unsafe extern "system" fn hw_free_adapter_resources(ext: *mut c_void) {
    // SAFETY: StorPort's contract is port::free_resources's.
    unsafe { port::free_resources(ext) }
}
