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
    // SAFETY: the SRB is still ours until RequestComplete; read its address first.
    let request = unsafe { &*srb };
    let (path, target, lun) = (request.path_id, request.target_id, request.lun);
    // SAFETY: per the caller's contract.
    unsafe { request_complete(device_extension, srb) };
    // SAFETY: the extension HwStartIo received.
    unsafe { ask_next(device_extension, path, target, lun) };
}

/// RequestComplete alone (HwTimer: the next request was asked for when HwStartIo left it
/// pending).
///
/// # Safety
/// Called from a miniport callback (HwStartIo, HwTimer) with this adapter's extension and a
/// live SRB this miniport owns and has not completed, with no reference to it left.
pub unsafe fn request_complete(device_extension: *mut c_void, srb: *mut ScsiRequestBlock) {
    use rvblk_abi::notification::REQUEST_COMPLETE;
    // SAFETY: per the caller's contract; RequestComplete takes (ext, srb).
    unsafe { ScsiPortNotification(REQUEST_COMPLETE, device_extension, srb) };
}

/// NextRequest and NextLuRequest for the LU of the request HwStartIo just handled, completed
/// or left pending: SCSIPORT sends nothing more until asked (§2.3).
///
/// # Safety
/// Called from HwStartIo with this adapter's extension.
pub unsafe fn ask_next(device_extension: *mut c_void, path: u8, target: u8, lun: u8) {
    use rvblk_abi::notification::{NEXT_LU_REQUEST, NEXT_REQUEST};
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

/// RequestTimerCall: SCSIPORT calls `timer` once, `micros` µs from now, at DISPATCH_LEVEL and
/// serialised with HwStartIo; a later call replaces an armed timer.
///
/// # Safety
/// Called from a miniport callback (HwInitialize, HwStartIo, HwTimer) with this adapter's
/// extension; `timer` is safe to call with that extension at any later time.
pub unsafe fn request_timer_call(
    device_extension: *mut c_void,
    timer: rvblk_abi::HwTimerFn,
    micros: u32,
) {
    use rvblk_abi::notification::REQUEST_TIMER_CALL;
    // SAFETY: RequestTimerCall takes (ext, PHW_TIMER, ULONG MiniportTimerValue).
    unsafe {
        ScsiPortNotification(
            REQUEST_TIMER_CALL,
            device_extension,
            timer as *const c_void,
            micros,
        )
    };
}

/// BusChangeDetected on bus 0: SCSIPORT re-enumerates the bus.
///
/// # Safety
/// Called from a miniport callback (HwTimer) with this adapter's extension.
pub unsafe fn bus_change_detected(device_extension: *mut c_void) {
    use rvblk_abi::notification::BUS_CHANGE_DETECTED;
    // SAFETY: BusChangeDetected takes (ext, UCHAR PathId), promoted to int.
    unsafe { ScsiPortNotification(BUS_CHANGE_DETECTED, device_extension, 0u32) };
}
