//! scsiport.sys imports (XP DDK; `docs/windows-integration.md` §2.1). ScsiPortNotification is
//! variadic, hence cdecl.

use core::ffi::c_void;
use rvblk_abi::{HwInitializationData, ScsiRequestBlock};

rvblk_kernel::kernel_imports!("scsiport.sys", "system" {
    fn ScsiPortInitialize(
        arg1: *mut c_void,
        arg2: *mut c_void,
        init: *mut HwInitializationData,
        context: *mut c_void,
    ) -> u32;
});

rvblk_kernel::kernel_imports!("scsiport.sys", "C" {
    fn ScsiPortNotification(kind: u32, device_extension: *mut c_void, ...);
});

/// Contract: PASSIVE_LEVEL, from DriverEntry with its two arguments.
pub fn initialize(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
    init: &mut HwInitializationData,
) -> i32 {
    // SAFETY: `init` is fully initialised; SCSIPORT copies it.
    unsafe { ScsiPortInitialize(driver_object, registry_path, init, core::ptr::null_mut()) as i32 }
}

/// RequestComplete, then NextRequest so SCSIPORT sends the next SRB, and NextLuRequest for the
/// same LU because the adapter declares tagged queuing and several requests per LU (§2.3).
///
/// # Safety
/// Called from HwStartIo with the live SRB this miniport owns; it belongs to SCSIPORT afterwards.
pub unsafe fn complete_and_ask_next(device_extension: *mut c_void, srb: *mut ScsiRequestBlock) {
    use rvblk_abi::notification::{NEXT_LU_REQUEST, NEXT_REQUEST, REQUEST_COMPLETE};
    // SAFETY: the SRB is still ours until RequestComplete; read its address first.
    let (path, target, lun) = unsafe { ((*srb).path_id, (*srb).target_id, (*srb).lun) };
    // SAFETY: per the caller's contract; these notifications take (ext, srb), (ext) and
    // (ext, PathId, TargetId, Lun), the UCHARs promoted to int as for any variadic call.
    unsafe {
        ScsiPortNotification(REQUEST_COMPLETE, device_extension, srb);
        ScsiPortNotification(NEXT_REQUEST, device_extension);
        ScsiPortNotification(
            NEXT_LU_REQUEST,
            device_extension,
            u32::from(path),
            u32::from(target),
            u32::from(lun),
        );
    }
}
