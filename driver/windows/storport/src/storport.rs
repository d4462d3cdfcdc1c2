//! storport.sys imports (`docs/windows-integration.md` §1.11). StorPortNotification and
//! StorPortExtendedFunction are variadic, hence cdecl on x86.

use core::ffi::c_void;
use rvblk_abi::{HwInitializationData, ScsiRequestBlock};

rvblk_kernel::kernel_imports!("storport.sys", "system" {
    fn StorPortInitialize(
        arg1: *mut c_void,
        arg2: *mut c_void,
        init: *mut HwInitializationData,
        context: *mut c_void,
    ) -> u32;
});

rvblk_kernel::kernel_imports!("storport.sys", "C" {
    fn StorPortNotification(kind: u32, device_extension: *mut c_void, ...);
    fn StorPortExtendedFunction(function: u32, device_extension: *mut c_void, ...) -> u32;
});

/// Contract: PASSIVE_LEVEL, from DriverEntry, with the two arguments DriverEntry received.
pub fn initialize(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
    init: &mut HwInitializationData,
) -> i32 {
    // SAFETY: `init` is a fully initialised structure (zeroed then filled) that StorPort copies.
    unsafe { StorPortInitialize(driver_object, registry_path, init, core::ptr::null_mut()) as i32 }
}

/// `StorPortNotification(RequestComplete, ext, srb)`.
///
/// # Safety
/// `srb` is a live SRB this miniport owns and has not completed yet; after this call it belongs
/// to StorPort again.
pub unsafe fn request_complete(device_extension: *mut c_void, srb: *mut ScsiRequestBlock) {
    // SAFETY: per the caller's contract; RequestComplete takes exactly (ext, srb).
    unsafe {
        StorPortNotification(
            rvblk_abi::notification::REQUEST_COMPLETE,
            device_extension,
            srb,
        )
    }
}

/// `StorPortGetSystemAddress(ext, srb, &va)` (an inline over StorPortExtendedFunction(5, …)).
///
/// # Safety
/// `srb` is a live SRB owned by this miniport. IRQL ≤ DISPATCH_LEVEL.
pub unsafe fn get_system_address(
    device_extension: *mut c_void,
    srb: *mut ScsiRequestBlock,
) -> Option<*mut u8> {
    let mut va: *mut c_void = core::ptr::null_mut();
    // SAFETY: ExtFunctionGetSystemAddress takes (ext, srb, PVOID*) and writes only `va`.
    let st = unsafe {
        StorPortExtendedFunction(
            rvblk_abi::EXT_FUNCTION_GET_SYSTEM_ADDRESS,
            device_extension,
            srb,
            &mut va as *mut *mut c_void,
        )
    };
    (st == rvblk_abi::stor_status::SUCCESS && !va.is_null()).then_some(va.cast())
}
