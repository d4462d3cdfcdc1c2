//! The adapter callbacks whose contract is the same under StorPort and SCSIPORT, as generic
//! trampolines over [`AdapterCallbacks`]; each port's `trampolines.rs` has the rest (DriverEntry,
//! HwFindAdapter, HwStartIo, …) and puts these into its HW_INITIALIZATION_DATA.

use crate::backed::{DiskPath, PortCalls};
use crate::extension;
use crate::io::Started;
use crate::ntio::{interface_change, PnpRegistration, SpawnError, SystemThread};
use crate::physmem::PoolBox;
use crate::port::{self, AdapterControl, DeviceState};
use crate::srb::Srb;
use core::ffi::c_void;
use rvblk_abi::ScsiRequestBlock;
use rvblk_irql::{Dispatch, Passive};

/// What both port flavours' traits share: the adapter callbacks with a common contract.
pub trait AdapterCallbacks {
    /// HwInitialize (up to device IRQL: nothing may be mapped; everything was prepared in
    /// HwFindAdapter, and rule 29 is checked at each LUN's first I/O).
    fn initialize(_state: &DeviceState) -> bool {
        true
    }
    /// HwResetBus: RAM requests complete inside HwStartIo; disk-backed requests the worker has
    /// queued are left to it (each completes within the IRP timeout and its cancellation,
    /// `docs/driver.md` "Disk-backed images").
    fn reset_bus(_state: &DeviceState, _path_id: u32) -> bool {
        true
    }
    /// HwAdapterControl (query, stop, restart).
    fn adapter_control(_state: &mut DeviceState, control: AdapterControl<'_>) -> u32 {
        port::adapter_control(control)
    }
}

/// # Safety
/// The port calls it once after HwFindAdapter returned SP_RETURN_FOUND, serialised with every
/// other callback, with the adapter's device extension (see `extension::state`).
pub unsafe extern "system" fn hw_initialize<M: AdapterCallbacks>(ext: *mut c_void) -> u8 {
    // SAFETY: the adapter's extension, serialised (contract); read only.
    let state = unsafe { extension::state(ext) };
    u8::from(M::initialize(state))
}

/// # Safety
/// The port calls it serialised with the adapter callbacks, with the adapter's extension.
pub unsafe extern "system" fn hw_reset_bus<M: AdapterCallbacks>(
    ext: *mut c_void,
    path_id: u32,
) -> u8 {
    // SAFETY: the adapter's extension (contract); read only.
    let state = unsafe { extension::state(ext) };
    u8::from(M::reset_bus(state, path_id))
}

/// # Safety
/// The port calls it serialised with every other adapter callback and with no request in
/// flight that the call could disturb, with the adapter's extension and, for
/// ScsiQuerySupportedControlTypes, `params` pointing to a SCSI_SUPPORTED_CONTROL_TYPE_LIST whose
/// SupportedTypeList has MaxControlType writable BOOLEANs.
pub unsafe extern "system" fn hw_adapter_control<M: AdapterCallbacks>(
    ext: *mut c_void,
    control: u32,
    params: *mut c_void,
) -> u32 {
    // SAFETY: the adapter's extension, exclusive in this serialised callback (contract).
    let state = unsafe { extension::state_mut(ext) };
    // SAFETY: for the query, `params` is the list described in the contract.
    let control = unsafe { extension::adapter_control(control, params) };
    M::adapter_control(state, control)
}

/// HwStartIo's part both ports share: the IRQL token, the extension and a view of the SRB under
/// the MapBuffers mode HwFindAdapter recorded, handed to `serve`. The view is gone on return;
/// for [`Started::Done`] the caller then completes the request the port's way, for
/// [`Started::Pending`] the disk worker will (`docs/driver.md` "Disk-backed images").
///
/// # Safety
/// The port calls HwStartIo at IRQL ≤ DISPATCH_LEVEL with:
/// * `ext` — the adapter's device extension, which no adapter callback changes while requests
///   are in flight (see `extension::state`);
/// * `srb` — a live SRB owned by this miniport until it completes it, with a SenseInfoBuffer
///   null or valid for SenseInfoBufferLength bytes and, for the buffers the recorded MapBuffers
///   mode maps, a DataBuffer that is a system address valid for DataTransferLength bytes
///   (`docs/windows-integration.md` §1.10); for SRB_FUNCTION_IO_CONTROL, an OriginalRequest
///   that is NULL or the requester's pending IRP (`docs/control.md` §6.3).
pub unsafe fn start_io(
    ext: *mut c_void,
    srb: *mut ScsiRequestBlock,
    serve: impl FnOnce(&DeviceState, Srb<'_>, &Dispatch) -> Started,
) -> Started {
    // SAFETY: IRQL ≤ DISPATCH_LEVEL for the duration of this call (contract).
    let irql = unsafe { Dispatch::new_unchecked() };
    // SAFETY: shared access to the adapter's extension during I/O (contract).
    let state = unsafe { extension::state(ext) };
    // SAFETY: live and ours until the caller completes it, after this view is dropped; buffers
    // as the recorded mapping says (contract).
    let request = unsafe { Srb::from_raw(srb, state.mapping) };
    serve(state, request, &irql)
}

/// The disk worker thread's start routine (`crate::backed::worker`).
///
/// # Safety
/// Called once by the kernel on a new system thread at PASSIVE_LEVEL with the `DiskPath` given
/// to [`spawn_worker`], which stays alive until the thread has ended (the adapter joins the
/// thread before freeing it).
unsafe extern "system" fn worker_main<P: PortCalls>(context: *mut c_void) {
    // SAFETY: a system thread's start routine runs at PASSIVE_LEVEL (contract).
    let irql = unsafe { Passive::new_unchecked() };
    // SAFETY: the live DiskPath (contract); shared access, as every user of it.
    let path = unsafe { &*context.cast::<DiskPath>() };
    crate::backed::worker::<P>(path, &irql);
}

/// The disk-interface change callback: records the change for the worker.
///
/// # Safety
/// Called by the PnP manager at PASSIVE_LEVEL with a DEVICE_INTERFACE_CHANGE_NOTIFICATION and
/// the `DiskPath` registered in [`register_disk_arrivals`], which lives until the registration
/// is removed.
unsafe extern "system" fn disk_interface_change(
    notification: *mut c_void,
    context: *mut c_void,
) -> i32 {
    // SAFETY: PnP notification callbacks run at PASSIVE_LEVEL (contract).
    let irql = unsafe { Passive::new_unchecked() };
    // SAFETY: the live DiskPath (contract).
    let path = unsafe { &*context.cast::<DiskPath>() };
    // SAFETY: the notification the PnP manager passed, valid during this call (contract).
    let change = unsafe { interface_change(notification) };
    path.interface_changed(change, &irql);
    rvblk_abi::status::STATUS_SUCCESS
}

/// The running disk path: the pool object the worker thread and the PnP callback use, the
/// thread and the registration. The pool object is freed only after [`DiskService::stop`] has
/// unregistered the callback and joined the thread; a service dropped without `stop` (never
/// done) leaks it rather than free memory a thread may still use.
pub struct DiskService {
    path: core::mem::ManuallyDrop<PoolBox<DiskPath>>,
    thread: Option<SystemThread>,
    pnp: Option<PnpRegistration>,
}

impl DiskService {
    /// Starts the worker on `path` and, when `watch_disks`, registers for disk interfaces
    /// (existing ones included).
    /// The registration's failure status, if any, comes back with the running service.
    pub fn start<P: PortCalls>(
        path: PoolBox<DiskPath>,
        watch_disks: bool,
        irql: &Passive,
    ) -> Result<(Self, Option<i32>), SpawnError> {
        let context = core::ptr::from_ref::<DiskPath>(&path)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: `worker_main` needs a live DiskPath: the pool object is freed only after the
        // thread is joined (`stop`), or never (`Drop`, `SpawnError::Unjoinable` below).
        let thread = match unsafe { SystemThread::spawn(worker_main::<P>, context, irql) } {
            Ok(t) => t,
            Err(e) => {
                if e == SpawnError::Unjoinable {
                    path.request_stop(irql);
                    core::mem::forget(path);
                }
                return Err(e);
            }
        };
        let (pnp, failure) = if watch_disks {
            // SAFETY: the DriverObject DriverEntry stored; the callback needs a live DiskPath,
            // which stays until `stop` has unregistered it.
            let pnp = unsafe {
                PnpRegistration::register(
                    crate::nt::driver_object(),
                    disk_interface_change,
                    context,
                    irql,
                )
            };
            match pnp {
                Ok(r) => (Some(r), None),
                Err(st) => (None, Some(st)),
            }
        } else {
            (None, None)
        };
        let service = Self {
            path: core::mem::ManuallyDrop::new(path),
            thread: Some(thread),
            pnp,
        };
        Ok((service, failure))
    }

    pub fn path(&self) -> &DiskPath {
        &self.path
    }

    /// HwFreeAdapterResources (PASSIVE): no callback after this, the worker served what was
    /// queued, closed its disks and ended; then the pool object goes.
    pub fn stop(mut self, irql: &Passive) {
        if let Some(pnp) = self.pnp.take() {
            pnp.unregister(irql);
            // A callback that was already running may still finish after the unregistration
            // (`docs/windows-integration.md` §8.1): wait until none is inside, 1 ms at a time.
            let pause = crate::ntio::Event::default();
            pause.init(false, irql);
            for _ in 0..5000 {
                if !self.path.in_callback() {
                    break;
                }
                pause.wait(Some(10_000), irql);
            }
        }
        self.path.request_stop(irql);
        if let Some(thread) = self.thread.take() {
            thread.join(irql);
        }
        // SAFETY: nothing uses the path any more (callback unregistered, thread joined), and
        // it is dropped once: `Drop` below skips it once the thread is gone.
        unsafe { core::mem::ManuallyDrop::drop(&mut self.path) };
    }
}

// The device extension holds an `Option<DiskService>` and must be valid when all-zero: the
// option must use a pointer niche (the pool object's non-null pointer is the only one left
// free: the thread and the registration are non-null inside their own options), so all-zero
// bytes are `None`.
const _: () =
    assert!(core::mem::size_of::<Option<DiskService>>() == core::mem::size_of::<DiskService>());

impl Drop for DiskService {
    fn drop(&mut self) {
        // Reached only through `stop` (thread joined, path already dropped) or by a bug: then
        // the path stays allocated, as its users may still run.
    }
}
