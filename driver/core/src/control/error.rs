//! Every way a control request can fail, its ReturnCode and its SrbStatus (`docs/control.md` §4).

use core::fmt;

use crate::srb::status;

/// Why a control request was refused. One enum for the parser, [`admit`](super::admit), the port's
/// service step and the CLI's reply decoder, so each failure has exactly one code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlError {
    // --- The SRB_IO_CONTROL header cannot be trusted: nothing is written back. ---
    /// DataTransferLength is smaller than the 28-byte header.
    ShortBuffer,
    /// HeaderLength is not 28.
    BadHeaderLength,
    /// HeaderLength + Length overflows or runs past DataTransferLength.
    LengthPastBuffer,
    /// Not rvblk's signature: the request is for another miniport (e.g. disk.sys's `SCSIDISK`).
    WrongSignature,

    // --- The header is ours and sane; the payload is not. ---
    /// ControlCode is not one rvblk knows.
    UnknownCode,
    /// The payload's version is not [`VERSION`](super::VERSION).
    UnsupportedVersion,
    /// Length is smaller than the fixed part of this request.
    Truncated,
    /// A reserved field or an undefined flag bit is not zero.
    ReservedNotZero,
    /// The device-kind byte is not disk, CD or floppy.
    BadKind,
    /// The path byte count is zero (where a path is required), odd, over
    /// [`MAX_PATH_UNITS`](super::MAX_PATH_UNITS) or runs past Length.
    BadPathLength,
    /// The path contains a NUL character.
    PathHasNul,
    /// The path does not start with `\` (NT paths are absolute: `\??\C:\…`, `\Device\…`).
    PathNotAbsolute,

    // --- Well-formed, but refused by the admission rules (`admit`). ---
    /// A RAM disk of 0 bytes.
    ZeroSize,
    /// A RAM disk size that is not a whole number of the kind's blocks.
    SizeNotBlockMultiple,
    /// A RAM disk larger than the memory the port reports as available.
    SizeExceedsMemory,
    /// A path longer than the port can keep for the LUN.
    PathTooLong,
    /// Every target id the adapter offers is taken.
    NoFreeTarget,
    /// REMOVE of a target id that has no LUN.
    NoSuchTarget,
    /// REMOVE of an image a boot loader left: Windows may be running from it.
    BootImage,
    /// A RAM CD without a source image would be an empty, read-only disc.
    CdNeedsSource,
    /// A well-formed, admissible request this driver build cannot serve yet (file mounts, RAM
    /// disks and removal need the PASSIVE_LEVEL worker; [`Limits::services`](super::Limits)).
    NotAvailable,

    // --- Raised by the port while serving an admitted request. ---
    /// The reply does not fit the Length the requester gave; `needed` is the Length that would.
    BufferTooSmall { needed: u32 },
    /// The requester's token is not a member of Administrators.
    NotAdministrator,
    /// The requester may not open the file with the access the mount needs.
    AccessDenied,
    /// The path names no file.
    FileNotFound,
    /// The file is empty, shorter than one block, or (for a RAM disk source) larger than the disk.
    FileTooSmall,
    /// Another program holds the file open in a way that excludes the mount.
    SharingViolation,
    /// The memory (or pool) for the RAM disk or the LUN could not be had; nothing was created.
    InsufficientMemory,
    /// Reading the file (or the source image) failed.
    IoError,
    /// The LUN is busy (e.g. removal already in progress); try again.
    Busy,
    /// The file is compressed or encrypted: not served (`docs/control.md` §10.1).
    UnsupportedFile,
}

impl ControlError {
    /// Every variant, for tests and for decoding.
    pub const ALL: [ControlError; 31] = [
        Self::ShortBuffer,
        Self::BadHeaderLength,
        Self::LengthPastBuffer,
        Self::WrongSignature,
        Self::UnknownCode,
        Self::UnsupportedVersion,
        Self::Truncated,
        Self::ReservedNotZero,
        Self::BadKind,
        Self::BadPathLength,
        Self::PathHasNul,
        Self::PathNotAbsolute,
        Self::ZeroSize,
        Self::SizeNotBlockMultiple,
        Self::SizeExceedsMemory,
        Self::PathTooLong,
        Self::NoFreeTarget,
        Self::NoSuchTarget,
        Self::BootImage,
        Self::CdNeedsSource,
        Self::NotAvailable,
        Self::BufferTooSmall { needed: 0 },
        Self::NotAdministrator,
        Self::AccessDenied,
        Self::FileNotFound,
        Self::FileTooSmall,
        Self::SharingViolation,
        Self::InsufficientMemory,
        Self::IoError,
        Self::Busy,
        Self::UnsupportedFile,
    ];

    /// The ReturnCode value (`docs/control.md` §4). Header-level errors have one too (for logs and
    /// the harness), but it is never written into a buffer whose header cannot be trusted.
    pub const fn return_code(self) -> u32 {
        match self {
            Self::ShortBuffer => 0x0001,
            Self::BadHeaderLength => 0x0002,
            Self::LengthPastBuffer => 0x0003,
            Self::WrongSignature => 0x0004,
            Self::UnknownCode => 0x0101,
            Self::UnsupportedVersion => 0x0102,
            Self::Truncated => 0x0103,
            Self::ReservedNotZero => 0x0104,
            Self::BadKind => 0x0105,
            Self::BadPathLength => 0x0106,
            Self::PathHasNul => 0x0107,
            Self::PathNotAbsolute => 0x0108,
            Self::ZeroSize => 0x0201,
            Self::SizeNotBlockMultiple => 0x0202,
            Self::SizeExceedsMemory => 0x0203,
            Self::PathTooLong => 0x0204,
            Self::NoFreeTarget => 0x0205,
            Self::NoSuchTarget => 0x0206,
            Self::BootImage => 0x0207,
            Self::CdNeedsSource => 0x0208,
            Self::NotAvailable => 0x0209,
            Self::BufferTooSmall { .. } => 0x0301,
            Self::NotAdministrator => 0x0302,
            Self::AccessDenied => 0x0303,
            Self::FileNotFound => 0x0304,
            Self::FileTooSmall => 0x0305,
            Self::SharingViolation => 0x0306,
            Self::InsufficientMemory => 0x0307,
            Self::IoError => 0x0308,
            Self::Busy => 0x0309,
            Self::UnsupportedFile => 0x030A,
        }
    }

    /// Whether the error is reported through ReturnCode. The four header-level errors are not:
    /// the buffer is either too short to hold a header or not an rvblk request at all.
    pub const fn reaches_requester(self) -> bool {
        !matches!(
            self,
            Self::ShortBuffer
                | Self::BadHeaderLength
                | Self::LengthPastBuffer
                | Self::WrongSignature
        )
    }

    /// The SrbStatus the port completes the SRB with (`docs/control.md` §4): INVALID_REQUEST for
    /// header-level errors (srb.h's rule for a signature that is not ours), SUCCESS for the rest,
    /// so that the header with its ReturnCode is copied back to the requester.
    pub const fn srb_status(self) -> u8 {
        if self.reaches_requester() {
            status::SUCCESS
        } else {
            status::INVALID_REQUEST
        }
    }

    /// Decodes a ReturnCode; `length` is the header's Length (the size needed, for
    /// [`BufferTooSmall`](Self::BufferTooSmall)). `None` for 0 (success) and unknown codes.
    pub fn from_return_code(code: u32, length: u32) -> Option<Self> {
        let e = Self::ALL.into_iter().find(|e| e.return_code() == code)?;
        Some(match e {
            Self::BufferTooSmall { .. } => Self::BufferTooSmall { needed: length },
            e => e,
        })
    }

    /// A short explanation for logs and the CLI.
    pub const fn message(self) -> &'static str {
        match self {
            Self::ShortBuffer => "buffer shorter than the SRB_IO_CONTROL header",
            Self::BadHeaderLength => "SRB_IO_CONTROL HeaderLength is not 28",
            Self::LengthPastBuffer => "SRB_IO_CONTROL Length runs past the buffer",
            Self::WrongSignature => "not an rvblk control request (signature)",
            Self::UnknownCode => "unknown control code",
            Self::UnsupportedVersion => "unsupported protocol version",
            Self::Truncated => "request shorter than its fixed fields",
            Self::ReservedNotZero => "reserved field or unknown flag is not zero",
            Self::BadKind => "unknown device kind",
            Self::BadPathLength => "bad path length",
            Self::PathHasNul => "path contains NUL",
            Self::PathNotAbsolute => "path is not an absolute NT path",
            Self::ZeroSize => "size is 0",
            Self::SizeNotBlockMultiple => "size is not a whole number of blocks",
            Self::SizeExceedsMemory => "size is larger than the available memory",
            Self::PathTooLong => "path is too long",
            Self::NoFreeTarget => "no free target id on the adapter",
            Self::NoSuchTarget => "no LUN with that target id",
            Self::BootImage => "a boot loader's image cannot be removed",
            Self::CdNeedsSource => "a RAM CD needs a source image",
            Self::NotAvailable => "this driver version cannot do that yet",
            Self::BufferTooSmall { .. } => "reply buffer too small",
            Self::NotAdministrator => "only Administrators may send control requests",
            Self::AccessDenied => "access to the file denied",
            Self::FileNotFound => "file not found",
            Self::FileTooSmall => "file too small (or source larger than the RAM disk)",
            Self::SharingViolation => "file is in use by another program",
            Self::InsufficientMemory => "not enough memory",
            Self::IoError => "I/O error reading the file",
            Self::Busy => "LUN busy; try again",
            Self::UnsupportedFile => "file is compressed or encrypted; not served",
        }
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => {
                write!(f, "{} ({} bytes needed)", self.message(), needed)
            }
            e => f.write_str(e.message()),
        }
    }
}
