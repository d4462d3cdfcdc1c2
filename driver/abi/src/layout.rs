//! Compile-time layout checks against `docs/windows-integration.md` §1.2, §1.5, §1.6 (and §2.1). They
//! run for whatever target the crate is built for: x86/x64/arm64 Windows for the driver, and
//! i686/x86-64 Linux for the harness and the host tests. Each entry is (field, x86, x64).

use crate::*;
use core::mem::{offset_of, size_of};

macro_rules! check_layout {
    ($test:ident: $ty:ident { $($field:ident: $x86:expr, $x64:expr;)* } size: $sx86:expr, $sx64:expr) => {
        $(
            #[cfg(target_pointer_width = "32")]
            const _: () = assert!(offset_of!($ty, $field) == $x86);
            #[cfg(target_pointer_width = "64")]
            const _: () = assert!(offset_of!($ty, $field) == $x64);
        )*
        #[cfg(target_pointer_width = "32")]
        const _: () = assert!(size_of::<$ty>() == $sx86);
        #[cfg(target_pointer_width = "64")]
        const _: () = assert!(size_of::<$ty>() == $sx64);

        // The same table at run time, so `cargo test` (run for x86_64 and i686 by `cargo xtask
        // test`) reports every field it checked.
        #[cfg(test)]
        paste_test!($test, $ty, [$(($field, $x86, $x64)),*], $sx86, $sx64);
    };
}

#[cfg_attr(not(test), allow(unused_macros))]
macro_rules! paste_test {
    ($test:ident, $ty:ident, [$(($field:ident, $x86:expr, $x64:expr)),*], $sx86:expr, $sx64:expr) => {
        #[test]
        fn $test() {
            {
                let x86 = cfg!(target_pointer_width = "32");
                $(
                    let want = if x86 { $x86 } else { $x64 };
                    assert_eq!(offset_of!($ty, $field), want, "{}::{}", stringify!($ty), stringify!($field));
                )*
                assert_eq!(size_of::<$ty>(), if x86 { $sx86 } else { $sx64 });
            }
        }
    };
}

check_layout!(hw_initialization_data_layout: HwInitializationData {
    hw_initialization_data_size: 0, 0;
    adapter_interface_type: 4, 4;
    hw_initialize: 8, 8;
    hw_start_io: 12, 16;
    hw_interrupt: 16, 24;
    hw_find_adapter: 20, 32;
    hw_reset_bus: 24, 40;
    hw_dma_started: 28, 48;
    hw_adapter_state: 32, 56;
    device_extension_size: 36, 64;
    specific_lu_extension_size: 40, 68;
    srb_extension_size: 44, 72;
    number_of_access_ranges: 48, 76;
    reserved: 52, 80;
    map_buffers: 56, 88;
    need_physical_addresses: 57, 89;
    tagged_queuing: 58, 90;
    auto_request_sense: 59, 91;
    multiple_request_per_lu: 60, 92;
    receive_event: 61, 93;
    vendor_id_length: 62, 94;
    vendor_id: 64, 96;
    port_version_flags: 68, 104;
    device_id_length: 70, 106;
    device_id: 72, 112;
    hw_adapter_control: 76, 120;
    hw_build_io: 80, 128;
    hw_free_adapter_resources: 84, 136;
    hw_process_service_request: 88, 144;
    hw_complete_service_irp: 92, 152;
    hw_initialize_tracing: 96, 160;
    hw_cleanup_tracing: 100, 168;
    hw_tracing_enabled: 104, 176;
    feature_support: 108, 184;
    srb_type_flags: 112, 188;
    address_type_flags: 116, 192;
    reserved1: 120, 196;
    hw_unit_control: 124, 200;
} size: 128, 208);

check_layout!(port_configuration_information_layout: PortConfigurationInformation {
    length: 0, 0;
    system_io_bus_number: 4, 4;
    adapter_interface_type: 8, 8;
    bus_interrupt_level: 12, 12;
    bus_interrupt_vector: 16, 16;
    interrupt_mode: 20, 20;
    maximum_transfer_length: 24, 24;
    number_of_physical_breaks: 28, 28;
    dma_channel: 32, 32;
    dma_port: 36, 36;
    dma_width: 40, 40;
    dma_speed: 44, 44;
    alignment_mask: 48, 48;
    number_of_access_ranges: 52, 52;
    access_ranges: 56, 56;
    miniport_dump_data: 60, 64;
    number_of_buses: 64, 72;
    initiator_bus_id: 65, 73;
    scatter_gather: 73, 81;
    master: 74, 82;
    caches_data: 75, 83;
    adapter_scans_down: 76, 84;
    atdisk_primary_claimed: 77, 85;
    atdisk_secondary_claimed: 78, 86;
    dma32_bit_addresses: 79, 87;
    demand_mode: 80, 88;
    map_buffers: 81, 89;
    need_physical_addresses: 82, 90;
    tagged_queuing: 83, 91;
    auto_request_sense: 84, 92;
    multiple_request_per_lu: 85, 93;
    receive_event: 86, 94;
    real_mode_initialized: 87, 95;
    buffer_access_scsi_port_controlled: 88, 96;
    maximum_number_of_targets: 89, 97;
    srb_type: 90, 98;
    address_type: 91, 99;
    slot_number: 92, 100;
    bus_interrupt_level2: 96, 104;
    bus_interrupt_vector2: 100, 108;
    interrupt_mode2: 104, 112;
    dma_channel2: 108, 116;
    dma_port2: 112, 120;
    dma_width2: 116, 124;
    dma_speed2: 120, 128;
    device_extension_size: 124, 132;
    specific_lu_extension_size: 128, 136;
    srb_extension_size: 132, 140;
    dma64_bit_addresses: 136, 144;
    reset_target_supported: 137, 145;
    maximum_number_of_logical_units: 138, 146;
    wmi_data_provider: 139, 147;
    synchronization_model: 140, 148;
    hw_ms_interrupt_routine: 144, 152;
    interrupt_synchronization_mode: 148, 160;
    dump_region: 152, 168;
    requested_dump_buffer_size: 176, 192;
    virtual_device: 180, 196;
    dump_mode: 181, 197;
    dma_address_width: 182, 198;
    extended_flags1: 184, 200;
    max_number_of_io: 188, 204;
    max_ios_per_lun: 192, 208;
    initial_lun_queue_depth: 196, 212;
    bus_reset_hold_time: 200, 216;
    feature_support: 204, 220;
} size: 208, 224);

check_layout!(scsi_request_block_layout: ScsiRequestBlock {
    length: 0, 0;
    function: 2, 2;
    srb_status: 3, 3;
    scsi_status: 4, 4;
    path_id: 5, 5;
    target_id: 6, 6;
    lun: 7, 7;
    queue_tag: 8, 8;
    queue_action: 9, 9;
    cdb_length: 10, 10;
    sense_info_buffer_length: 11, 11;
    srb_flags: 12, 12;
    data_transfer_length: 16, 16;
    time_out_value: 20, 20;
    data_buffer: 24, 24;
    sense_info_buffer: 28, 32;
    next_srb: 32, 40;
    original_request: 36, 48;
    srb_extension: 40, 56;
    internal_status: 44, 64;
    cdb: 48, 72;
} size: 64, 88);

check_layout!(scsi_pnp_request_block_layout: ScsiPnpRequestBlock {
    pnp_action: 8, 8;
    data_buffer: 24, 24;
    srb_pnp_flags: 44, 64;
} size: 64, 88);

check_layout!(memory_region_layout: MemoryRegion {
    virtual_base: 0, 0;
    physical_base: 8, 8;
    length: 16, 16;
} size: 24, 24);

check_layout!(physical_memory_range_layout: PhysicalMemoryRange {
    base_address: 0, 0;
    number_of_bytes: 8, 8;
} size: 16, 16);

// Sizes the port drivers check (§1.1, §1.2, §2.1).
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(HW_INIT_DATA_SIZE_WIN8 == 128);
    assert!(HW_INIT_DATA_SIZE_VIRTUAL_WIN7 == 104);
    assert!(HW_INIT_DATA_SIZE_SCSIPORT == 80);
    assert!(PORT_CONFIG_SIZE_SCSIPORT_XP == 140);
};
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(HW_INIT_DATA_SIZE_WIN8 == 208);
    assert!(HW_INIT_DATA_SIZE_VIRTUAL_WIN7 == 176);
    assert!(HW_INIT_DATA_SIZE_SCSIPORT == 128);
};

check_layout!(unicode_string_layout: UnicodeString {
    length: 0, 0;
    maximum_length: 2, 2;
    buffer: 4, 8;
} size: 8, 16);

check_layout!(object_attributes_layout: ObjectAttributes {
    length: 0, 0;
    root_directory: 4, 8;
    object_name: 8, 16;
    attributes: 12, 24;
    security_descriptor: 16, 32;
    security_quality_of_service: 20, 40;
} size: 24, 48);

check_layout!(srb_io_control_layout: SrbIoControl {
    header_length: 0, 0;
    signature: 4, 4;
    timeout: 12, 12;
    control_code: 16, 16;
    return_code: 20, 20;
    length: 24, 24;
} size: 28, 28);

// `docs/control.md` §1: the value every ntddscsi.h spells out.
const _: () = assert!(IOCTL_SCSI_MINIPORT == 0x0004_D008);

#[cfg(test)]
#[test]
fn ioctl_scsi_miniport_code() {
    assert_eq!(IOCTL_SCSI_MINIPORT, 0x0004_D008);
    // Access bits 14–15 = read | write: the handle needs both.
    assert_eq!((IOCTL_SCSI_MINIPORT >> 14) & 3, 3);
    assert_eq!(IOCTL_SCSI_MINIPORT & 3, METHOD_BUFFERED);
}

check_layout!(guid_layout: Guid {
    data1: 0, 0;
    data2: 4, 4;
    data3: 6, 6;
    data4: 8, 8;
} size: 16, 16);

check_layout!(kevent_layout: KEvent {
    header: 0, 0;
} size: 16, 24);

check_layout!(io_status_block_layout: IoStatusBlock {
    status: 0, 0;
    information: 4, 8;
} size: 8, 16);

check_layout!(device_interface_change_notification_layout: DeviceInterfaceChangeNotification {
    version: 0, 0;
    size: 2, 2;
    event: 4, 4;
    interface_class_guid: 20, 20;
    symbolic_link_name: 36, 40;
} size: 40, 48);

check_layout!(disk_geometry_ex_layout: DiskGeometryEx {
    cylinders: 0, 0;
    media_type: 8, 8;
    tracks_per_cylinder: 12, 12;
    sectors_per_track: 16, 16;
    bytes_per_sector: 20, 20;
    disk_size: 24, 24;
    data: 32, 32;
} size: 40, 40);

check_layout!(storage_property_query_layout: StoragePropertyQuery {
    property_id: 0, 0;
    query_type: 4, 4;
    additional_parameters: 8, 8;
} size: 12, 12);

check_layout!(storage_device_descriptor_layout: StorageDeviceDescriptor {
    version: 0, 0;
    size: 4, 4;
    device_type: 8, 8;
    device_type_modifier: 9, 9;
    removable_media: 10, 10;
    command_queueing: 11, 11;
    vendor_id_offset: 12, 12;
    product_id_offset: 16, 16;
    product_revision_offset: 20, 20;
    serial_number_offset: 24, 24;
    bus_type: 28, 28;
    raw_properties_length: 32, 32;
} size: 36, 36);

check_layout!(irp_head_layout: IrpHead {
    r#type: 0, 0;
    mdl_address: 4, 8;
    io_status: 24, 48;
    requestor_mode: 32, 64;
    user_iosb: 40, 72;
    overlay: 48, 88;
    user_buffer: 60, 112;
    driver_context: 64, 120;
    thread: 80, 152;
} size: 84, 160);

check_layout!(security_quality_of_service_layout: SecurityQualityOfService {
    length: 0, 0;
    impersonation_level: 4, 4;
    context_tracking_mode: 8, 8;
    effective_only: 9, 9;
    reserved: 10, 10;
} size: 12, 12);

check_layout!(security_client_context_layout: SecurityClientContext {
    security_qos: 0, 0;
    client_token: 12, 16;
    directly_access_client_token: 16, 24;
    server_is_remote: 18, 26;
    client_token_control: 20, 28;
} size: 60, 72);

check_layout!(file_standard_information_layout: FileStandardInformation {
    allocation_size: 0, 0;
    end_of_file: 8, 8;
    number_of_links: 16, 16;
    delete_pending: 20, 20;
    directory: 21, 21;
} size: 24, 24);

check_layout!(file_basic_information_layout: FileBasicInformation {
    creation_time: 0, 0;
    change_time: 24, 24;
    file_attributes: 32, 32;
} size: 40, 40);

check_layout!(mdl_layout: Mdl {
    next: 0, 0;
    size: 4, 8;
    mdl_flags: 6, 10;
    process: 8, 16;
    mapped_system_va: 12, 24;
    start_va: 16, 32;
    byte_count: 20, 40;
    byte_offset: 24, 44;
} size: 28, 48);

check_layout!(irp_layout: Irp {
    head: 0, 0;
    auxiliary_buffer: 84, 160;
    list_entry: 88, 168;
    current_stack_location: 96, 184;
    original_file_object: 100, 192;
    apc_tail: 104, 200;
} size: 0x70, 0xD0);

check_layout!(io_stack_location_layout: IoStackLocation {
    major_function: 0, 0;
    minor_function: 1, 1;
    flags: 2, 2;
    control: 3, 3;
    parameters: 4, 8;
    device_object: 0x14, 0x28;
    file_object: 0x18, 0x30;
    completion_routine: 0x1C, 0x38;
    context: 0x20, 0x40;
} size: 0x24, 0x48);

check_layout!(device_object_head_layout: DeviceObjectHead {
    type_: 0, 0;
    size: 2, 2;
    reference_count: 4, 4;
    driver_object: 8, 8;
    next_device: 12, 16;
    attached_device: 16, 24;
    current_irp: 20, 32;
    timer: 24, 40;
    flags: 0x1C, 0x30;
} size: 0x20, 0x38);
