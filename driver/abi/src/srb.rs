//! The classic `SCSI_REQUEST_BLOCK` (`docs/windows-integration.md` §1.6), shared by StorPort and
//! SCSIPORT, and the header of `SCSI_PNP_REQUEST_BLOCK`.

use core::ffi::c_void;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ScsiRequestBlock {
    pub length: u16,
    pub function: u8,
    pub srb_status: u8,
    pub scsi_status: u8,
    pub path_id: u8,
    pub target_id: u8,
    pub lun: u8,
    pub queue_tag: u8,
    pub queue_action: u8,
    pub cdb_length: u8,
    pub sense_info_buffer_length: u8,
    pub srb_flags: u32,
    pub data_transfer_length: u32,
    pub time_out_value: u32,
    pub data_buffer: *mut c_void,
    pub sense_info_buffer: *mut c_void,
    pub next_srb: *mut ScsiRequestBlock,
    pub original_request: *mut c_void,
    pub srb_extension: *mut c_void,
    /// InternalStatus / QueueSortKey / LinkTimeoutValue.
    pub internal_status: u32,
    #[cfg(target_pointer_width = "64")]
    pub reserved: u32,
    pub cdb: [u8; 16],
}

/// `SCSI_PNP_REQUEST_BLOCK` (Function 0x25): same header; the PnP action sits where `QueueTag`..
/// would be and `SrbPnPFlags` in the InternalStatus slot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ScsiPnpRequestBlock {
    pub length: u16,
    pub function: u8,
    pub srb_status: u8,
    pub scsi_status: u8,
    pub path_id: u8,
    pub target_id: u8,
    pub lun: u8,
    pub pnp_action: u32,
    pub srb_flags: u32,
    pub data_transfer_length: u32,
    pub time_out_value: u32,
    pub data_buffer: *mut c_void,
    pub sense_info_buffer: *mut c_void,
    pub next_srb: *mut ScsiRequestBlock,
    pub original_request: *mut c_void,
    pub srb_extension: *mut c_void,
    pub srb_pnp_flags: u32,
    #[cfg(target_pointer_width = "64")]
    pub reserved: u32,
    pub reserved4: [u8; 16],
}

/// `SRB_IO_CONTROL` (ntddscsi.h; `docs/control.md` §1): the header at the start of an
/// SRB_FUNCTION_IO_CONTROL request's DataBuffer, followed by `length` bytes of payload. Only
/// 32-bit fields, so x86 and x64 share one layout (28 bytes). rvblk's control protocol
/// (`rvblk_core::control`) reads and writes it as little-endian bytes; this struct is for the
/// port crates and the harness.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrbIoControl {
    /// `sizeof(SRB_IO_CONTROL)`: 28.
    pub header_length: u32,
    /// ASCII, not NUL-terminated; picks the miniport the request is for.
    pub signature: [u8; 8],
    /// Seconds the request may take.
    pub timeout: u32,
    pub control_code: u32,
    /// Written by the miniport for the requester.
    pub return_code: u32,
    /// Bytes of payload after the header (in and out share the area).
    pub length: u32,
}
