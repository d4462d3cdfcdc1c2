//! DriverEntry: a legacy SCSIPORT miniport. ScsiPortInitialize calls HwFindAdapter at once (no
//! PnP, §2.2); Isa with no access ranges, as Arsenal's XP build does.

use crate::{adapter, io};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};
use rvblk_abi::*;
use rvblk_core::policy;

/// True when this driver was loaded under the service that always exposes disk images
/// (`rvblkxpd`, see `inf/xp/README.md`).
pub static DISKS_SERVICE: AtomicBool = AtomicBool::new(false);

/// # Safety
/// Called once by the I/O manager at PASSIVE_LEVEL; `registry_path` is a UNICODE_STRING.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
) -> i32 {
    rvblk_kernel::rvblk_log!(
        "rvblkxp {} loading (SCSIPORT miniport)",
        env!("CARGO_PKG_VERSION")
    );
    if !registry_path.is_null() {
        // SAFETY: the I/O manager passes a valid UNICODE_STRING for the service key.
        let path = unsafe { &*registry_path.cast::<UnicodeString>() };
        if !path.buffer.is_null() {
            // SAFETY: `length` bytes of UTF-16 at `buffer` (UNICODE_STRING contract).
            let units =
                unsafe { core::slice::from_raw_parts(path.buffer, usize::from(path.length) / 2) };
            let name = policy::service_name_of(units);
            DISKS_SERVICE.store(
                policy::expose_disks(policy::DisksOption::Unset, name, true),
                Ordering::Relaxed,
            );
        }
    }
    let mut init = HwInitializationData::zeroed();
    init.hw_initialization_data_size = HW_INIT_DATA_SIZE_SCSIPORT;
    init.adapter_interface_type = INTERFACE_TYPE_ISA;
    init.hw_initialize = Some(adapter::hw_initialize);
    init.hw_start_io = Some(io::hw_start_io);
    // ReactOS's scsiport rejects a NULL HwInterrupt; a stub costs nothing (§2.2).
    init.hw_interrupt = Some(adapter::hw_interrupt);
    init.hw_find_adapter = adapter::hw_find_adapter as HwFindAdapterFn as *const c_void;
    init.hw_reset_bus = Some(adapter::hw_reset_bus);
    init.hw_adapter_control = Some(adapter::hw_adapter_control);
    init.device_extension_size = rvblk_kernel::port::DEVICE_EXTENSION_SIZE;
    init.map_buffers = 1;
    init.tagged_queuing = 1;
    init.auto_request_sense = 1;
    init.multiple_request_per_lu = 1;
    let status = crate::scsiport::initialize(driver_object, registry_path, &mut init);
    if status != status::STATUS_SUCCESS {
        rvblk_kernel::rvblk_log!("ScsiPortInitialize failed: {:#x}", status as u32);
    }
    status
}
