//! `HW_INITIALIZATION_DATA` (StorPort WDK 10 layout; SCSIPORT and the Vista SP1/Win7 virtual
//! layout are prefixes of it) — `docs/windows-integration.md` §1.2, §2.1.

use crate::callbacks::*;
use core::ffi::c_void;
use core::mem::{offset_of, size_of};

/// The full Windows 8+ StorPort structure. Older layouts are prefixes: pass one of the `*_SIZE`
/// constants below as `hw_initialization_data_size`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HwInitializationData {
    pub hw_initialization_data_size: u32,
    pub adapter_interface_type: u32,
    pub hw_initialize: Option<HwInitializeFn>,
    pub hw_start_io: Option<HwStartIoFn>,
    pub hw_interrupt: Option<HwInterruptFn>,
    /// A `VirtualHwFindAdapterFn` (StorPort virtual) or `HwFindAdapterFn` (SCSIPORT): the port
    /// decides which prototype it calls, so the field is untyped.
    pub hw_find_adapter: *const c_void,
    pub hw_reset_bus: Option<HwResetBusFn>,
    pub hw_dma_started: *const c_void,
    pub hw_adapter_state: *const c_void,
    pub device_extension_size: u32,
    pub specific_lu_extension_size: u32,
    pub srb_extension_size: u32,
    pub number_of_access_ranges: u32,
    pub reserved: *mut c_void,
    pub map_buffers: u8,
    pub need_physical_addresses: u8,
    pub tagged_queuing: u8,
    pub auto_request_sense: u8,
    pub multiple_request_per_lu: u8,
    pub receive_event: u8,
    pub vendor_id_length: u16,
    pub vendor_id: *const c_void,
    pub port_version_flags: u16,
    pub device_id_length: u16,
    pub device_id: *const c_void,
    pub hw_adapter_control: Option<HwAdapterControlFn>,
    pub hw_build_io: Option<HwStartIoFn>,
    pub hw_free_adapter_resources: Option<HwFreeAdapterResourcesFn>,
    pub hw_process_service_request: *const c_void,
    pub hw_complete_service_irp: *const c_void,
    pub hw_initialize_tracing: *const c_void,
    pub hw_cleanup_tracing: *const c_void,
    pub hw_tracing_enabled: *const c_void,
    pub feature_support: u32,
    pub srb_type_flags: u32,
    pub address_type_flags: u32,
    pub reserved1: u32,
    pub hw_unit_control: *const c_void,
}

impl HwInitializationData {
    /// An all-zero structure ("unused fields must be set to zero").
    pub const fn zeroed() -> Self {
        Self {
            hw_initialization_data_size: 0,
            adapter_interface_type: 0,
            hw_initialize: None,
            hw_start_io: None,
            hw_interrupt: None,
            hw_find_adapter: core::ptr::null(),
            hw_reset_bus: None,
            hw_dma_started: core::ptr::null(),
            hw_adapter_state: core::ptr::null(),
            device_extension_size: 0,
            specific_lu_extension_size: 0,
            srb_extension_size: 0,
            number_of_access_ranges: 0,
            reserved: core::ptr::null_mut(),
            map_buffers: 0,
            need_physical_addresses: 0,
            tagged_queuing: 0,
            auto_request_sense: 0,
            multiple_request_per_lu: 0,
            receive_event: 0,
            vendor_id_length: 0,
            vendor_id: core::ptr::null(),
            port_version_flags: 0,
            device_id_length: 0,
            device_id: core::ptr::null(),
            hw_adapter_control: None,
            hw_build_io: None,
            hw_free_adapter_resources: None,
            hw_process_service_request: core::ptr::null(),
            hw_complete_service_irp: core::ptr::null(),
            hw_initialize_tracing: core::ptr::null(),
            hw_cleanup_tracing: core::ptr::null(),
            hw_tracing_enabled: core::ptr::null(),
            feature_support: 0,
            srb_type_flags: 0,
            address_type_flags: 0,
            reserved1: 0,
            hw_unit_control: core::ptr::null(),
        }
    }
}

/// Windows 8+ `HW_INITIALIZATION_DATA`: x86 128, x64 208.
pub const HW_INIT_DATA_SIZE_WIN8: u32 = size_of::<HwInitializationData>() as u32;
/// Vista SP1/Windows 7 `VIRTUAL_HW_INITIALIZATION_DATA`, which ends with `HwCleanupTracing`
/// (Microsoft's DDI page for the structure): x86 104, x64 176. The spec's table says 108 for
/// x86; that figure does not match the field list and is not used.
pub const HW_INIT_DATA_SIZE_VIRTUAL_WIN7: u32 =
    offset_of!(HwInitializationData, hw_tracing_enabled) as u32;
/// SCSIPORT (XP DDK) `HW_INITIALIZATION_DATA`, ending with `HwAdapterControl`: x86 80, x64 128.
pub const HW_INIT_DATA_SIZE_SCSIPORT: u32 = offset_of!(HwInitializationData, hw_build_io) as u32;
