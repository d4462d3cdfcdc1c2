//! Kernel-wrapper module: storport.sys imports (`docs/windows-integration.md` §1.11).
//! StorPortNotification and StorPortExtendedFunction are variadic, hence cdecl on x86.

use core::ffi::c_void;
use rvblk_abi::{HwInitializationData, ScsiRequestBlock};
use rvblk_core::srb::BufferUse;
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::backed::{DiskPath, PortCalls};
use rvblk_kernel::extension::AdapterRef;
use rvblk_kernel::io::PortBuffers;
use rvblk_kernel::srb::{DataAccess, QueuedSrb};

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

/// `StorPortInitialize` (PASSIVE_LEVEL, from DriverEntry).
///
/// # Safety
/// `driver_object` and `registry_path` are the two arguments DriverEntry received.
pub unsafe fn initialize(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
    init: &mut HwInitializationData,
    _irql: &Passive,
) -> i32 {
    // SAFETY: the arguments are DriverEntry's (caller contract); `init` is a fully initialised
    // structure that StorPort copies; HwContext is unused by virtual miniports.
    unsafe { StorPortInitialize(driver_object, registry_path, init, core::ptr::null_mut()) as i32 }
}

/// `StorPortNotification(RequestComplete, ext, srb)`.
///
/// # Safety
/// `device_extension` is this adapter's extension and `srb` a live SRB this miniport owns and
/// has not completed yet, with no reference to it left; afterwards it belongs to StorPort.
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

/// The adapter as HwStartIo sees it: reaches READ/WRITE buffers that StorPort did not map.
pub struct StorPortAdapter {
    ext: *mut c_void,
}

impl StorPortAdapter {
    /// # Safety
    /// `ext` is the device extension StorPort passed to the current HwStartIo call.
    pub unsafe fn new(ext: *mut c_void) -> Self {
        Self { ext }
    }
}

impl PortBuffers for StorPortAdapter {
    /// `StorPortGetSystemAddress(ext, srb, &va)` (an inline over StorPortExtendedFunction(5, …)).
    fn unmapped<'b>(
        &self,
        access: &'b mut DataAccess<'_>,
        _usage: BufferUse,
        _irql: &Dispatch,
    ) -> Option<&'b mut [u8]> {
        let mut va: *mut c_void = core::ptr::null_mut();
        // SAFETY: ExtFunctionGetSystemAddress takes (ext, srb, PVOID*) and writes only `va`; the
        // SRB is live and ours (DataAccess exists only inside HwStartIo), IRQL ≤ DISPATCH_LEVEL.
        let st = unsafe {
            StorPortExtendedFunction(
                rvblk_abi::EXT_FUNCTION_GET_SYSTEM_ADDRESS,
                self.ext,
                access.srb_ptr(),
                &mut va as *mut *mut c_void,
            )
        };
        if st != rvblk_abi::stor_status::SUCCESS || va.is_null() {
            return None;
        }
        // SAFETY: StorPort returns a system address for the whole data buffer
        // (DataTransferLength bytes), owned by this request until completion and borrowed from
        // `access` here.
        Some(unsafe { core::slice::from_raw_parts_mut(va.cast::<u8>(), access.len()) })
    }
}

/// What the disk worker asks of StorPort (`docs/windows-integration.md` §8.3): RequestComplete
/// and BusChangeDetected are both allowed from any thread at ≤ DISPATCH_LEVEL.
pub struct StorPortCalls;

/// RequestComplete from an IRP's completion routine (any thread, ≤ DISPATCH: §8.3).
fn complete_anywhere(adapter: AdapterRef, srb: QueuedSrb) {
    // SAFETY: the adapter's extension; a pending SRB this miniport owns and has not completed
    // (QueuedSrb invariant), handed back exactly once (consumed here) with no view left (the
    // fast path's view ended before this call).
    unsafe { request_complete(adapter.as_ptr(), srb.into_raw()) };
}

impl PortCalls for StorPortCalls {
    const COMPLETE_ANYWHERE: Option<fn(AdapterRef, QueuedSrb)> = Some(complete_anywhere);

    fn complete(_path: &DiskPath, adapter: AdapterRef, srb: QueuedSrb, _irql: &Passive) {
        // SAFETY: the adapter's extension; a pending SRB this miniport owns and has not
        // completed (QueuedSrb invariant), handed back exactly once (consumed here) with no view
        // of it left (the worker's view ended before this call).
        unsafe { request_complete(adapter.as_ptr(), srb.into_raw()) };
    }

    fn bus_changed(_path: &DiskPath, adapter: AdapterRef) {
        // SAFETY: BusChangeDetected takes (ext, UCHAR PathId), the PathId promoted to int as a
        // variadic argument; the adapter exists while its worker runs.
        unsafe {
            StorPortNotification(
                rvblk_abi::notification::BUS_CHANGE_DETECTED,
                adapter.as_ptr(),
                0u32,
            )
        };
    }
}
