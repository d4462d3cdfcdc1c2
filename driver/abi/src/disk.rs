//! Structures of the asynchronous disk-backed path (`docs/windows-integration.md` §8): events,
//! I/O status blocks, PnP interface notifications and the two disk IOCTLs' buffers. Layouts are
//! checked for x86 and x64 in `layout.rs`.

use crate::{AlignedI64, UnicodeString};

/// `GUID` (16 bytes, 4-byte aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guid {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

/// GUID_DEVINTERFACE_DISK {53F56307-B6BF-11D0-94F2-00A0C91EFB8B}.
pub const GUID_DEVINTERFACE_DISK: Guid = Guid {
    data1: 0x53F5_6307,
    data2: 0xB6BF,
    data3: 0x11D0,
    data4: [0x94, 0xF2, 0x00, 0xA0, 0xC9, 0x1E, 0xFB, 0x8B],
};
/// GUID_DEVICE_INTERFACE_ARRIVAL {CB3A4004-46F0-11D0-B08F-00609713053F}.
pub const GUID_DEVICE_INTERFACE_ARRIVAL: Guid = Guid {
    data1: 0xCB3A_4004,
    data2: 0x46F0,
    data3: 0x11D0,
    data4: [0xB0, 0x8F, 0x00, 0x60, 0x97, 0x13, 0x05, 0x3F],
};
/// GUID_DEVICE_INTERFACE_REMOVAL {CB3A4005-46F0-11D0-B08F-00609713053F}.
pub const GUID_DEVICE_INTERFACE_REMOVAL: Guid = Guid {
    data1: 0xCB3A_4005,
    ..GUID_DEVICE_INTERFACE_ARRIVAL
};
/// Ventoy's vendor GUID for its UEFI variables {77772020-2E77-6576-6E74-6F792E6E6574}
/// (`docs/ventoy.md` §3.2).
pub const GUID_VENTOY_VENDOR: Guid = Guid {
    data1: 0x7777_2020,
    data2: 0x2E77,
    data3: 0x6576,
    data4: [0x6E, 0x74, 0x6F, 0x79, 0x2E, 0x6E, 0x65, 0x74],
};

/// `KEVENT`: a DISPATCHER_HEADER and nothing else (16 bytes on x86, 24 on 64-bit). Opaque to the
/// driver: only KeInitializeEvent/KeSetEvent/KeWaitForSingleObject touch it. Non-paged.
#[repr(C)]
#[derive(Debug, Default)]
pub struct KEvent {
    #[cfg(target_pointer_width = "32")]
    pub(crate) header: [usize; 4],
    #[cfg(target_pointer_width = "64")]
    pub(crate) header: [usize; 3],
}

/// EVENT_TYPE.
pub const NOTIFICATION_EVENT: u32 = 0;
pub const SYNCHRONIZATION_EVENT: u32 = 1;

/// `IO_STATUS_BLOCK`: the status (a pointer-sized union with NTSTATUS in its low 32 bits) and
/// Information.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoStatusBlock {
    pub status: usize,
    pub information: usize,
}

impl IoStatusBlock {
    pub fn ntstatus(&self) -> i32 {
        self.status as u32 as i32
    }
}

/// `DEVICE_INTERFACE_CHANGE_NOTIFICATION`, the first argument of a device-interface change
/// callback.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DeviceInterfaceChangeNotification {
    pub version: u16,
    pub size: u16,
    pub event: Guid,
    pub interface_class_guid: Guid,
    pub symbolic_link_name: *const UnicodeString,
}

/// IoRegisterPlugPlayNotification: EventCategoryDeviceInterfaceChange.
pub const EVENT_CATEGORY_DEVICE_INTERFACE_CHANGE: u32 = 2;
/// PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES.
pub const PNPNOTIFY_INCLUDE_EXISTING_INTERFACES: u32 = 1;

/// IRP_MJ_READ / IRP_MJ_WRITE for IoBuildSynchronousFsdRequest.
pub const IRP_MJ_READ: u32 = 3;
pub const IRP_MJ_WRITE: u32 = 4;
/// ACCESS_MASK bits for IoGetDeviceObjectPointer.
pub const FILE_READ_DATA: u32 = 1;
pub const FILE_WRITE_DATA: u32 = 2;
/// THREAD_ALL_ACCESS as PsCreateSystemThread is usually given it.
pub const THREAD_ALL_ACCESS: u32 = 0x001F_FFFF;

pub const IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: u32 = 0x0007_00A0;
pub const IOCTL_STORAGE_QUERY_PROPERTY: u32 = 0x002D_1400;

/// `DISK_GEOMETRY_EX` with a one-QWORD `Data` tail (sizeof in the SDK: 40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskGeometryEx {
    pub cylinders: AlignedI64,
    pub media_type: u32,
    pub tracks_per_cylinder: u32,
    pub sectors_per_track: u32,
    pub bytes_per_sector: u32,
    pub disk_size: AlignedI64,
    pub data: AlignedI64,
}

/// `STORAGE_PROPERTY_QUERY` for StorageDeviceProperty (0), PropertyStandardQuery (0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StoragePropertyQuery {
    pub property_id: u32,
    pub query_type: u32,
    pub additional_parameters: [u8; 4],
}

/// The fixed header of `STORAGE_DEVICE_DESCRIPTOR`; the strings it points at by offset follow
/// it in the same buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageDeviceDescriptor {
    pub version: u32,
    pub size: u32,
    pub device_type: u8,
    pub device_type_modifier: u8,
    pub removable_media: u8,
    pub command_queueing: u8,
    pub vendor_id_offset: u32,
    pub product_id_offset: u32,
    pub product_revision_offset: u32,
    pub serial_number_offset: u32,
    pub bus_type: u32,
    pub raw_properties_length: u32,
}
