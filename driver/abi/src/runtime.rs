//! Structures of the runtime mounts (`docs/windows-integration.md` §9): the requester's IRP
//! fields, client security, file information classes and MDL headers. Layouts are checked for
//! x86 and x64 in `layout.rs`.

use crate::{AlignedI64, IoStatusBlock};
use core::ffi::c_void;

/// The head of an `IRP` up to `Tail.Overlay.Thread`, the only fields rvblk reads
/// (`RequestorMode`, `Tail.Overlay.Thread`); the rest is there to place them. Never read as a
/// whole: the port reads the two fields through raw places.
#[repr(C)]
#[derive(Debug)]
pub struct IrpHead {
    pub r#type: i16,
    pub size: u16,
    pub mdl_address: *mut c_void,
    pub flags: u32,
    pub associated_irp: *mut c_void,
    pub thread_list_entry: [usize; 2],
    pub io_status: IoStatusBlock,
    pub requestor_mode: u8,
    pub pending_returned: u8,
    pub stack_count: i8,
    pub current_location: i8,
    pub cancel: u8,
    pub cancel_irql: u8,
    pub apc_environment: i8,
    pub allocation_flags: u8,
    pub user_iosb: *mut c_void,
    pub user_event: *mut c_void,
    /// `Overlay`: AsynchronousParameters (two pointers) or AllocationSize.
    pub overlay: [usize; 2],
    pub cancel_routine: *mut c_void,
    pub user_buffer: *mut c_void,
    /// `Tail.Overlay.DriverContext[4]` (or DeviceQueueEntry).
    pub driver_context: [usize; 4],
    pub thread: *mut c_void,
}

/// KPROCESSOR_MODE values.
pub const KERNEL_MODE: u8 = 0;
pub const USER_MODE: u8 = 1;

/// `SECURITY_QUALITY_OF_SERVICE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SecurityQualityOfService {
    pub length: u32,
    pub impersonation_level: u32,
    pub context_tracking_mode: u8,
    pub effective_only: u8,
    /// The structure's tail padding, spelled out so it is written as zeros.
    pub reserved: [u8; 2],
}

/// SECURITY_IMPERSONATION_LEVEL SecurityImpersonation; SECURITY_STATIC_TRACKING.
pub const SECURITY_IMPERSONATION: u32 = 2;
pub const SECURITY_STATIC_TRACKING: u8 = 0;

/// `LUID`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Luid {
    pub low_part: u32,
    pub high_part: i32,
}

/// `TOKEN_CONTROL` (inside the client context; not read by rvblk).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenControl {
    pub token_id: Luid,
    pub authentication_id: Luid,
    pub modified_id: Luid,
    pub source_name: [u8; 8],
    pub source_identifier: Luid,
}

/// `SECURITY_CLIENT_CONTEXT`: storage the driver owns and `SeCreateClientSecurity` fills;
/// rvblk reads `client_token` (to ask SeTokenIsAdmin and to release it).
#[repr(C)]
#[derive(Debug)]
pub struct SecurityClientContext {
    pub security_qos: SecurityQualityOfService,
    pub client_token: *mut c_void,
    pub directly_access_client_token: u8,
    pub direct_access_effective_only: u8,
    pub server_is_remote: u8,
    pub client_token_control: TokenControl,
}

/// `FILE_STANDARD_INFORMATION` (FileStandardInformation = 5).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStandardInformation {
    pub allocation_size: AlignedI64,
    pub end_of_file: AlignedI64,
    pub number_of_links: u32,
    pub delete_pending: u8,
    pub directory: u8,
}

/// `FILE_BASIC_INFORMATION` (FileBasicInformation = 4).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileBasicInformation {
    pub creation_time: AlignedI64,
    pub last_access_time: AlignedI64,
    pub last_write_time: AlignedI64,
    pub change_time: AlignedI64,
    pub file_attributes: u32,
}

/// FILE_INFORMATION_CLASS values.
pub const FILE_BASIC_INFORMATION: u32 = 4;
pub const FILE_STANDARD_INFORMATION: u32 = 5;

/// `MDL` header; the PFN array follows it.
#[repr(C)]
#[derive(Debug)]
pub struct Mdl {
    pub next: *mut Mdl,
    pub size: i16,
    pub mdl_flags: i16,
    pub process: *mut c_void,
    pub mapped_system_va: *mut c_void,
    pub start_va: *mut c_void,
    pub byte_count: u32,
    pub byte_offset: u32,
}

/// ZwCreateFile's access, share, disposition and options (`docs/windows-integration.md` §9.1).
pub const GENERIC_READ: u32 = 0x8000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const FILE_SHARE_READ: u32 = 1;
pub const FILE_OPEN: u32 = 1;
pub const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x20;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
/// OBJECT_ATTRIBUTES.Attributes: enforce every access check although the caller is kernel mode.
pub const OBJ_FORCE_ACCESS_CHECK: u32 = 0x400;

/// MmAllocatePagesForMdlEx: MM_ALLOCATE_FULLY_REQUIRED (the cache type is `MM_CACHED`).
pub const MM_ALLOCATE_FULLY_REQUIRED: u32 = 0x4;
/// MmMapLockedPagesSpecifyCache priority: NormalPagePriority, MdlMappingNoExecute (Windows 8+).
pub const NORMAL_PAGE_PRIORITY: u32 = 16;
pub const MDL_MAPPING_NO_EXECUTE: u32 = 0x4000_0000;
