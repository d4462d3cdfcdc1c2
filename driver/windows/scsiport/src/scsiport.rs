//! Kernel-wrapper module: scsiport.sys imports (XP DDK; `docs/windows-integration.md` §2.1).
//! ScsiPortNotification is variadic, hence cdecl.

use core::ffi::c_void;
use rvblk_abi::{HwInitializationData, ScsiRequestBlock};
use rvblk_irql::Passive;

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

/// `ScsiPortInitialize` (PASSIVE_LEVEL, from DriverEntry). `hw_context` reaches HwFindAdapter
/// unchanged; rvblk passes a small integer in it, never a pointer.
///
/// # Safety
/// `driver_object` and `registry_path` are the two arguments DriverEntry received.
pub unsafe fn initialize(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
    init: &mut HwInitializationData,
    hw_context: usize,
    _irql: &Passive,
) -> i32 {
    // SAFETY: DriverEntry's arguments (caller contract); `init` is fully initialised and
    // SCSIPORT copies it; the context is an opaque value SCSIPORT only passes on.
    unsafe {
        ScsiPortInitialize(
            driver_object,
            registry_path,
            init,
            hw_context as *mut c_void,
        ) as i32
    }
}

/// RequestComplete, then NextRequest so SCSIPORT sends the next SRB, and NextLuRequest for the
/// same LU because the adapter declares tagged queuing and several requests per LU (§2.3).
///
/// # Safety
/// Called from HwStartIo with this adapter's extension and the live SRB this miniport owns,
/// with no reference to it left; it belongs to SCSIPORT afterwards.
pub unsafe fn complete_and_ask_next(device_extension: *mut c_void, srb: *mut ScsiRequestBlock) {
    use rvblk_abi::notification::{NEXT_LU_REQUEST, NEXT_REQUEST, REQUEST_COMPLETE};
    // SAFETY: the SRB is still ours until RequestComplete; read its address first.
    let request = unsafe { &*srb };
    let (path, target, lun) = (request.path_id, request.target_id, request.lun);
    // SAFETY: per the caller's contract; RequestComplete takes (ext, srb).
    unsafe { ScsiPortNotification(REQUEST_COMPLETE, device_extension, srb) };
    // SAFETY: NextRequest takes (ext), allowed from HwStartIo.
    unsafe { ScsiPortNotification(NEXT_REQUEST, device_extension) };
    // SAFETY: NextLuRequest takes (ext, PathId, TargetId, Lun), the UCHARs promoted to int as
    // for any variadic call.
    unsafe {
        ScsiPortNotification(
            NEXT_LU_REQUEST,
            device_extension,
            u32::from(path),
            u32::from(target),
            u32::from(lun),
        )
    };
}
