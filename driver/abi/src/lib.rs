//! The small slice of the StorPort / SCSIPORT / ntoskrnl ABI that rvblk uses.
//!
//! Layouts follow `docs/windows-integration.md` §1.2 (HW_INITIALIZATION_DATA), §1.5
//! (PORT_CONFIGURATION_INFORMATION), §1.6 (SCSI_REQUEST_BLOCK), §2.1 (SCSIPORT sizes). Every
//! structure is `#[repr(C)]`; 64-bit integers that MSVC aligns to 8 on x86 use [`AlignedI64`], so
//! the same definitions give the MSVC x86 layout on `i686-unknown-linux-gnu` too (the test
//! harness runs x86 drivers in a 32-bit Linux process and shares these types). Offsets are
//! checked at compile time for 32- and 64-bit pointers (see `layout.rs`) and by tests.
//!
//! Callback types use the Windows convention of each architecture: stdcall on x86, the Microsoft
//! x64 convention on x86-64, AAPCS64 on arm64 — spelled explicitly so a Linux host (the harness)
//! gets the same ABI as the kernel.
#![no_std]
#![forbid(unsafe_code)]

mod callbacks;
mod config;
mod consts;
mod disk;
mod hwinit;
mod irp;
mod layout;
mod runtime;
mod srb;

pub use callbacks::*;
pub use config::*;
pub use consts::*;
pub use disk::*;
pub use hwinit::*;
pub use irp::*;
pub use runtime::*;
pub use srb::*;

/// `LARGE_INTEGER`/`PHYSICAL_ADDRESS`/`LONGLONG` as MSVC lays them out: 8-byte aligned on every
/// target (i686 SysV would align an `i64` to 4).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlignedI64(pub i64);

/// `PHYSICAL_MEMORY_RANGE`, the element of `MmGetPhysicalMemoryRanges`'s result; the array ends
/// with an all-zero entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysicalMemoryRange {
    pub base_address: AlignedI64,
    pub number_of_bytes: AlignedI64,
}

/// Header of `SYSTEM_FIRMWARE_TABLE_INFORMATION` (ZwQuerySystemInformation class 76); the table
/// bytes follow `table_buffer_length`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemFirmwareTableInformation {
    pub provider_signature: u32,
    pub action: u32,
    pub table_id: u32,
    pub table_buffer_length: u32,
}

/// `MEMORY_REGION` inside PORT_CONFIGURATION_INFORMATION (DumpRegion).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MemoryRegion {
    pub virtual_base: *mut u8,
    pub physical_base: AlignedI64,
    pub length: u32,
}

/// `UNICODE_STRING`: lengths in bytes, not NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnicodeString {
    pub length: u16,
    pub maximum_length: u16,
    pub buffer: *const u16,
}

/// `OBJECT_ATTRIBUTES` for ZwOpenKey.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ObjectAttributes {
    pub length: u32,
    pub root_directory: *mut core::ffi::c_void,
    pub object_name: *const UnicodeString,
    pub attributes: u32,
    pub security_descriptor: *mut core::ffi::c_void,
    pub security_quality_of_service: *mut core::ffi::c_void,
}

pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
pub const KEY_QUERY_VALUE: u32 = 0x0001;
/// KEY_VALUE_INFORMATION_CLASS KeyValuePartialInformation; the result starts with
/// `{ TitleIndex u32, Type u32, DataLength u32 }` followed by the data.
pub const KEY_VALUE_PARTIAL_INFORMATION: u32 = 2;
pub const REG_SZ: u32 = 1;
pub const REG_DWORD: u32 = 4;
