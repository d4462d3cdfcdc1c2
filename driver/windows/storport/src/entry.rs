//! DriverEntry: hand StorPort our callbacks. One binary serves every version from Vista SP1 to
//! Windows 11 (`docs/windows-integration.md` §1.1): try the Windows 8+ structure first and fall back to
//! the Vista SP1/Windows 7 VIRTUAL_HW_INITIALIZATION_DATA size when StorPort refuses it.

use crate::{adapter, io};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};
use rvblk_abi::*;

/// Whether StorPort maps READ/WRITE buffers (MapBuffers = 3, Windows 8+). On Vista/7 the value
/// is not valid and READ/WRITE buffers need StorPortGetSystemAddress (§1.10).
pub static MAPS_READ_WRITE_BUFFERS: AtomicBool = AtomicBool::new(false);

fn init_data(size: u32) -> HwInitializationData {
    let mut init = HwInitializationData::zeroed();
    init.hw_initialization_data_size = size;
    init.adapter_interface_type = INTERFACE_TYPE_INTERNAL;
    init.hw_initialize = Some(adapter::hw_initialize);
    init.hw_start_io = Some(io::hw_start_io);
    init.hw_find_adapter = adapter::hw_find_adapter as VirtualHwFindAdapterFn as *const c_void;
    init.hw_reset_bus = Some(adapter::hw_reset_bus);
    init.hw_adapter_control = Some(adapter::hw_adapter_control);
    init.hw_free_adapter_resources = Some(adapter::hw_free_adapter_resources);
    init.device_extension_size = rvblk_kernel::port::DEVICE_EXTENSION_SIZE;
    init.map_buffers = STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE;
    init.tagged_queuing = 1;
    init.auto_request_sense = 1;
    init.multiple_request_per_lu = 1;
    init.receive_event = 1;
    if size >= HW_INIT_DATA_SIZE_WIN8 {
        init.feature_support =
            STOR_FEATURE_VIRTUAL_MINIPORT | STOR_FEATURE_FULL_PNP_DEVICE_CAPABILITIES;
        init.srb_type_flags = SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK;
        init.address_type_flags = ADDRESS_TYPE_FLAG_BTL8;
    } else {
        // Vista/7 treat MapBuffers 3 as invalid; 1 maps the non-READ/WRITE buffers.
        init.map_buffers = STOR_MAP_ALL_BUFFERS;
    }
    init
}

/// # Safety
/// Called once by the I/O manager at PASSIVE_LEVEL with its driver object and registry path.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver_object: *mut c_void,
    registry_path: *mut c_void,
) -> i32 {
    rvblk_kernel::rvblk_log!(
        "rvblk {} loading (StorPort virtual miniport)",
        env!("CARGO_PKG_VERSION")
    );
    let mut init = init_data(HW_INIT_DATA_SIZE_WIN8);
    MAPS_READ_WRITE_BUFFERS.store(true, Ordering::Relaxed);
    let mut status = crate::storport::initialize(driver_object, registry_path, &mut init);
    if status != status::STATUS_SUCCESS {
        rvblk_kernel::rvblk_log!(
            "StorPort refused the Windows 8 structure ({:#x}); using the Windows 7 layout",
            status as u32
        );
        let mut init = init_data(HW_INIT_DATA_SIZE_VIRTUAL_WIN7);
        MAPS_READ_WRITE_BUFFERS.store(false, Ordering::Relaxed);
        status = crate::storport::initialize(driver_object, registry_path, &mut init);
    }
    if status != status::STATUS_SUCCESS {
        rvblk_kernel::rvblk_log!("StorPortInitialize failed: {:#x}", status as u32);
    }
    status
}
