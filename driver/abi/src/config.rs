//! `PORT_CONFIGURATION_INFORMATION` (StorPort WDK 10; the XP SCSIPORT structure is the prefix up
//! to `WmiDataProvider`) — `docs/windows-integration.md` §1.5, §2.1. The port pre-fills it and sets
//! `length`; a miniport must never write a field that ends beyond `length`.

use crate::MemoryRegion;
use core::ffi::c_void;
use core::mem::{offset_of, size_of};

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PortConfigurationInformation {
    pub length: u32,
    pub system_io_bus_number: u32,
    pub adapter_interface_type: u32,
    pub bus_interrupt_level: u32,
    pub bus_interrupt_vector: u32,
    pub interrupt_mode: u32,
    pub maximum_transfer_length: u32,
    pub number_of_physical_breaks: u32,
    pub dma_channel: u32,
    pub dma_port: u32,
    pub dma_width: u32,
    pub dma_speed: u32,
    pub alignment_mask: u32,
    pub number_of_access_ranges: u32,
    pub access_ranges: *mut c_void,
    pub miniport_dump_data: *mut c_void,
    pub number_of_buses: u8,
    pub initiator_bus_id: [u8; 8],
    pub scatter_gather: u8,
    pub master: u8,
    pub caches_data: u8,
    pub adapter_scans_down: u8,
    pub atdisk_primary_claimed: u8,
    pub atdisk_secondary_claimed: u8,
    pub dma32_bit_addresses: u8,
    pub demand_mode: u8,
    pub map_buffers: u8,
    pub need_physical_addresses: u8,
    pub tagged_queuing: u8,
    pub auto_request_sense: u8,
    pub multiple_request_per_lu: u8,
    pub receive_event: u8,
    pub real_mode_initialized: u8,
    pub buffer_access_scsi_port_controlled: u8,
    pub maximum_number_of_targets: u8,
    pub srb_type: u8,
    pub address_type: u8,
    pub slot_number: u32,
    pub bus_interrupt_level2: u32,
    pub bus_interrupt_vector2: u32,
    pub interrupt_mode2: u32,
    pub dma_channel2: u32,
    pub dma_port2: u32,
    pub dma_width2: u32,
    pub dma_speed2: u32,
    pub device_extension_size: u32,
    pub specific_lu_extension_size: u32,
    pub srb_extension_size: u32,
    pub dma64_bit_addresses: u8,
    pub reset_target_supported: u8,
    pub maximum_number_of_logical_units: u8,
    pub wmi_data_provider: u8,
    pub synchronization_model: u32,
    pub hw_ms_interrupt_routine: *mut c_void,
    pub interrupt_synchronization_mode: u32,
    pub dump_region: MemoryRegion,
    pub requested_dump_buffer_size: u32,
    pub virtual_device: u8,
    pub dump_mode: u8,
    pub dma_address_width: u8,
    pub extended_flags1: u32,
    pub max_number_of_io: u32,
    pub max_ios_per_lun: u32,
    pub initial_lun_queue_depth: u32,
    pub bus_reset_hold_time: u32,
    pub feature_support: u32,
}

/// Size of the WDK 10 StorPort structure: x86 208, x64 224.
pub const PORT_CONFIG_SIZE_WDK10: u32 = size_of::<PortConfigurationInformation>() as u32;
/// Size of the XP SCSIPORT structure (ends after `WmiDataProvider`): x86 140, x64 148.
pub const PORT_CONFIG_SIZE_SCSIPORT_XP: u32 =
    offset_of!(PortConfigurationInformation, synchronization_model) as u32;

/// One past the last byte of a field, for checking writes against `length`:
/// `field_end(offset_of!(PortConfigurationInformation, virtual_device), 1)`.
pub const fn field_end(offset: usize, size: usize) -> u32 {
    (offset + size) as u32
}
