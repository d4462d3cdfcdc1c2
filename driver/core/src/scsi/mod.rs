//! SCSI targets for RAM images: SBC-3 direct-access disks (and removable floppies) and MMC-6
//! CD-ROMs, with one sense-data builder.
//!
//! CONTRACT used by the port crates and the harness (keep these names and shapes stable):
//!
//! * [`ScsiTarget::new`] builds an immutable, `Sync` target from a [`MemoryImage`]; the port keeps
//!   one per LUN and calls [`ScsiTarget::execute`] concurrently from many CPUs.
//! * [`ScsiTarget::execute`] takes the CDB bytes as received (`cdb.len()` = SRB CdbLength), the
//!   data buffer (`data.len()` = SRB DataTransferLength; for DATA OUT it is read, for DATA IN it is
//!   written), the direction from the SRB flags, and the [`Medium`] giving access to the image's
//!   bytes. It never touches `data` beyond its length, never reads the medium beyond the image.
//! * The returned [`Outcome`] says GOOD / CHECK CONDITION (with [`SenseData`]) / BUSY and how many
//!   bytes were really transferred (under-run is reported, never over-run).
//! * The medium is only touched for READ/WRITE/VERIFY-with-compare style commands; everything else
//!   is answered from the target's own state.

use crate::image::MemoryImage;

/// Data direction of an SRB (SRB_FLAGS_DATA_IN / DATA_OUT / neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirection {
    None,
    /// Device to host (reads, INQUIRY, ...).
    In,
    /// Host to device (writes, MODE SELECT, ...).
    Out,
    /// Both flags set (SRB_FLAGS_UNSPECIFIED_DIRECTION): the command decides.
    Unspecified,
}

/// Failure to reach the image's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediumError {
    /// A transient resource problem (e.g. no free mapping view): the request should be retried
    /// (SRB_STATUS_BUSY).
    Busy,
    /// The bytes cannot be reached (mapping failed permanently): MEDIUM ERROR / UNRECOVERED READ.
    Unreadable,
}

/// Byte access to one image. Offsets are relative to the image start; callers guarantee
/// `offset + len <= image.length` (the target checks bounds before calling).
pub trait Medium {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError>;
    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError>;
}

/// SCSI status of a completed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    Good,
    CheckCondition,
    /// Transient: the port should ask for a retry (SRB_STATUS_BUSY).
    Busy,
}

pub mod sense;
pub use sense::SenseData;
