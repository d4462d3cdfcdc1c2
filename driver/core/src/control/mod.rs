//! rvblk's control protocol: list LUNs, mount a file, create a RAM disk, remove a LUN
//! (`docs/control.md`).
//!
//! A request travels as `IOCTL_SCSI_MINIPORT` to the adapter and reaches the miniport as an
//! SRB_FUNCTION_IO_CONTROL whose DataBuffer starts with an `SRB_IO_CONTROL` header carrying
//! [`SIGNATURE`] (§1). Everything after the header is this module's fixed-layout, little-endian,
//! versioned payload (§2, §3). One definition serves both ends:
//!
//! * the driver calls [`serve`] on `DataBuffer[..DataTransferLength]` with its LUN table: it
//!   parses, runs [`admit`], answers LIST LUNS and every refusal, and hands admitted work back;
//!   the worker answers that with [`reply_lun`], [`reply_removed`] or [`reply_error`], which give
//!   the SrbStatus and DataTransferLength to complete with;
//! * the CLI sizes its buffer with [`buffer_len`], builds requests with [`encode`] and decodes
//!   answers with [`read_reply`].
//!
//! Nothing here allocates, panics on input or assumes alignment: every field is read from bytes
//! after a bounds check against the buffer actually given (`wire`).

mod admit;
mod error;
mod reply;
mod request;
mod serve;
pub mod service;
mod wire;

pub use admit::{admit, Decision, Limits, LunSummary, Services};
pub use error::ControlError;
pub use reply::{
    buffer_len, read_reply, reply_error, reply_len, reply_lun, reply_luns, reply_removed,
    Completion, LunEntries, LunInfo, Reply, ReplyError,
};
pub use request::{encode, parse, NtPath, Parsed, Request};
pub use serve::{serve, Served};

use crate::image::DeviceKind;

/// `SRB_IO_CONTROL.Signature` of every rvblk request (`docs/control.md` §1).
pub const SIGNATURE: [u8; 8] = *b"RVBLKCTL";
/// The payload version this build speaks; a request with another version is refused with
/// [`ControlError::UnsupportedVersion`] (§2).
pub const VERSION: u16 = 1;
/// `sizeof(SRB_IO_CONTROL)`: the payload starts at this offset of DataBuffer.
pub const HEADER_LEN: usize = 28;
/// Longest path in UTF-16 units: a `UNICODE_STRING` counts bytes in a u16 (§3.2).
pub const MAX_PATH_UNITS: usize = 32_767;
/// Longest path the Windows ports keep per LUN ([`Limits::max_path_units`], §5): room for the
/// longest Win32 long path most tools produce, and a LIST reply of 32 such LUNs stays under
/// 70 KiB.
pub const LUN_PATH_UNITS: usize = 1024;

/// Byte offsets of the `SRB_IO_CONTROL` fields (§1).
pub mod header {
    pub const HEADER_LENGTH: usize = 0;
    pub const SIGNATURE: usize = 4;
    pub const TIMEOUT: usize = 12;
    pub const CONTROL_CODE: usize = 16;
    pub const RETURN_CODE: usize = 20;
    pub const LENGTH: usize = 24;
}

/// `SRB_IO_CONTROL.ControlCode` values (§3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ControlCode {
    ListLuns = 1,
    MountFile = 2,
    CreateRamDisk = 3,
    Remove = 4,
}

impl ControlCode {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::ListLuns),
            2 => Some(Self::MountFile),
            3 => Some(Self::CreateRamDisk),
            4 => Some(Self::Remove),
            _ => None,
        }
    }
}

/// Where a LUN came from (§3.1): only [`Origin::Loader`] LUNs are refused for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Found in memory or on a disk at boot (GRUB4DOS, MEMDISK, NFIT, Ventoy, …).
    Loader,
    /// A file mounted at run time.
    File,
    /// A RAM disk created at run time.
    RamDisk,
}

impl Origin {
    pub const fn to_wire(self) -> u8 {
        match self {
            Self::Loader => 0,
            Self::File => 1,
            Self::RamDisk => 2,
        }
    }

    pub const fn from_wire(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Loader),
            1 => Some(Self::File),
            2 => Some(Self::RamDisk),
            _ => None,
        }
    }

    /// Name used by the CLI's `list` and the harness's JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Loader => "loader",
            Self::File => "file",
            Self::RamDisk => "ramdisk",
        }
    }
}

/// The device-kind byte (§3): 0 disk, 1 CD, 2 floppy.
pub const fn kind_to_wire(kind: DeviceKind) -> u8 {
    match kind {
        DeviceKind::Disk => 0,
        DeviceKind::CdRom => 1,
        DeviceKind::Floppy => 2,
    }
}

pub const fn kind_from_wire(v: u8) -> Option<DeviceKind> {
    match v {
        0 => Some(DeviceKind::Disk),
        1 => Some(DeviceKind::CdRom),
        2 => Some(DeviceKind::Floppy),
        _ => None,
    }
}

bitflags::bitflags! {
    /// The flags byte of MOUNT FILE and CREATE RAM DISK requests and of LUN entries (§3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct LunFlags: u8 {
        /// Writes fail with DATA PROTECT. Always set for CDs in replies.
        const READ_ONLY = 0x01;
    }
}
