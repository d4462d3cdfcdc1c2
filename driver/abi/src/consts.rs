//! Constants from `docs/windows-integration.md` §1.3, §1.7, §1.8, §1.10, §1.11.

/// NTSTATUS values the driver returns or checks.
pub mod status {
    pub const STATUS_SUCCESS: i32 = 0;
    pub const STATUS_UNSUCCESSFUL: i32 = 0xC000_0001_u32 as i32;
    pub const STATUS_REVISION_MISMATCH: i32 = 0xC000_0059_u32 as i32;
    pub const STATUS_BUFFER_TOO_SMALL: i32 = 0xC000_0023_u32 as i32;
    pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
    pub const STATUS_NOT_FOUND: i32 = 0xC000_0225_u32 as i32;
    pub const STATUS_NO_SUCH_DEVICE: i32 = 0xC000_000E_u32 as i32;
}

/// STOR_STATUS_* (StorPortExtendedFunction results).
pub mod stor_status {
    pub const SUCCESS: u32 = 0;
    pub const UNSUCCESSFUL: u32 = 0xC100_0001;
    pub const NOT_IMPLEMENTED: u32 = 0xC100_0002;
    pub const INSUFFICIENT_RESOURCES: u32 = 0xC100_0003;
    pub const INVALID_PARAMETER: u32 = 0xC100_0006;
    pub const INVALID_IRQL: u32 = 0xC100_0008;
}

/// INTERFACE_TYPE.
pub const INTERFACE_TYPE_INTERNAL: u32 = 0;
pub const INTERFACE_TYPE_ISA: u32 = 1;

/// HW_INITIALIZATION_DATA.MapBuffers.
pub const STOR_MAP_NO_BUFFERS: u8 = 0;
pub const STOR_MAP_ALL_BUFFERS: u8 = 1;
pub const STOR_MAP_NON_READ_WRITE_BUFFERS: u8 = 2;
pub const STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE: u8 = 3;

pub const STOR_FEATURE_VIRTUAL_MINIPORT: u32 = 0x1;
pub const STOR_FEATURE_FULL_PNP_DEVICE_CAPABILITIES: u32 = 0x4;
pub const SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK: u32 = 0x1;
pub const ADDRESS_TYPE_FLAG_BTL8: u32 = 0x1;

/// HwFindAdapter results.
pub const SP_RETURN_NOT_FOUND: u32 = 0;
pub const SP_RETURN_FOUND: u32 = 1;
pub const SP_RETURN_ERROR: u32 = 2;
pub const SP_RETURN_BAD_CONFIG: u32 = 3;

pub const SCSI_DMA64_MINIPORT_SUPPORTED: u8 = 0x01;
pub const STOR_SYNCHRONIZE_FULL_DUPLEX: u32 = 1;

/// SCSI_NOTIFICATION_TYPE (first argument of StorPortNotification / ScsiPortNotification).
pub mod notification {
    pub const REQUEST_COMPLETE: u32 = 0;
    pub const NEXT_REQUEST: u32 = 1;
    pub const NEXT_LU_REQUEST: u32 = 2;
    pub const RESET_DETECTED: u32 = 3;
    pub const REQUEST_TIMER_CALL: u32 = 6;
    pub const BUS_CHANGE_DETECTED: u32 = 7;
}

/// STORPORT_FUNCTION_CODE for StorPortExtendedFunction.
pub const EXT_FUNCTION_GET_SYSTEM_ADDRESS: u32 = 5;

/// SCSI_ADAPTER_CONTROL_TYPE.
pub mod adapter_control {
    pub const QUERY_SUPPORTED_CONTROL_TYPES: u32 = 0;
    pub const STOP_ADAPTER: u32 = 1;
    pub const RESTART_ADAPTER: u32 = 2;
    pub const SET_BOOT_CONFIG: u32 = 3;
    pub const SET_RUNNING_CONFIG: u32 = 4;
    pub const STATUS_SUCCESS: u32 = 0;
    pub const STATUS_UNSUCCESSFUL: u32 = 1;
}

/// `SCSI_SUPPORTED_CONTROL_TYPE_LIST` header: `{ ULONG MaxControlType; BOOLEAN List[] }`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SupportedControlTypeList {
    pub max_control_type: u32,
    pub supported_type_list: [u8; 1],
}

/// MEMORY_CACHING_TYPE for MmMapIoSpace.
pub const MM_NON_CACHED: u32 = 0;
pub const MM_CACHED: u32 = 1;

/// POOL_TYPE: NonPagedPoolNx exists from Windows 8; NonPagedPool everywhere.
pub const NON_PAGED_POOL: u32 = 0;

/// ZwQuerySystemInformation class and firmware-table constants (`docs/loaders.md` §6.4).
pub const SYSTEM_FIRMWARE_TABLE_INFORMATION_CLASS: u32 = 76;
pub const FIRMWARE_PROVIDER_ACPI: u32 = u32::from_be_bytes(*b"ACPI");
pub const FIRMWARE_TABLE_GET: u32 = 1;
pub const ACPI_TABLE_NFIT: u32 = u32::from_le_bytes(*b"NFIT");

/// `CTL_CODE(DeviceType, Function, Method, Access)` (devioctl.h).
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}
pub const FILE_DEVICE_CONTROLLER: u32 = 0x0000_0004;
pub const METHOD_BUFFERED: u32 = 0;
pub const FILE_READ_ACCESS: u32 = 0x0001;
pub const FILE_WRITE_ACCESS: u32 = 0x0002;
/// `IOCTL_SCSI_MINIPORT` (ntddscsi.h): sent to the adapter's device; the port turns it into an
/// SRB_FUNCTION_IO_CONTROL whose DataBuffer starts with [`SrbIoControl`](crate::SrbIoControl)
/// (`docs/control.md` §1). The access bits mean the I/O manager accepts it only on a handle
/// opened for both read and write data access.
pub const IOCTL_SCSI_MINIPORT: u32 = ctl_code(
    FILE_DEVICE_CONTROLLER,
    0x0402,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// STOR_PNP_ACTION in SCSI_PNP_REQUEST_BLOCK.
pub const STOR_QUERY_CAPABILITIES: u32 = 9;
