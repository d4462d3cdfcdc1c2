//! SCSI targets for RAM images: SBC-3 direct-access disks (and removable floppies) and MMC-6
//! CD-ROMs, with one sense-data builder.
//!
//! CONTRACT used by the port crates and the harness (keep these names and shapes stable):
//!
//! * [`ScsiTarget::new`] builds an immutable, `Sync` target from a
//!   [`MemoryImage`](crate::image::MemoryImage); the port keeps one per LUN and calls
//!   [`ScsiTarget::execute`] concurrently from many CPUs.
//! * [`ScsiTarget::execute`] takes the CDB bytes as received (`cdb.len()` = SRB CdbLength), the
//!   data buffer (`data.len()` = SRB DataTransferLength; for DATA OUT it is read, for DATA IN it is
//!   written), the direction from the SRB flags, and the [`Medium`] giving access to the image's
//!   bytes. It never touches `data` beyond its length, never reads the medium beyond the image.
//! * The returned [`Outcome`] says GOOD / CHECK CONDITION (with [`SenseData`]) / BUSY and how many
//!   bytes were really transferred (under-run is reported, never over-run).
//! * The medium is only touched for READ/WRITE/VERIFY-with-compare style commands; everything else
//!   is answered from the target's own state.
//!
//! Policies the port can rely on:
//!
//! * Medium transfers (READ/WRITE/VERIFY with compare/READ CD) must fit the buffer whole: a CDB
//!   asking for more than `data.len()` is ILLEGAL REQUEST / INVALID FIELD IN CDB (pointing at the
//!   transfer length) and nothing is moved. Parameter data (INQUIRY, MODE SENSE, ...) is cut to
//!   the allocation length and then to the buffer, and the real count is reported.
//! * A command that would move data in a direction the SRB flags do not allow is ILLEGAL
//!   REQUEST / INVALID FIELD IN CDB (no field pointer); [`DataDirection::Unspecified`] allows
//!   both. A zero-byte transfer is accepted with any flags.
//! * A CDB shorter than its opcode's group length is INVALID COMMAND OPERATION CODE; longer CDBs
//!   (padded by the port) are fine.
//! * REPORT LUNS answers "LUN 0 only": the port gives each image its own target id with LUN 0,
//!   or answers REPORT LUNS itself if it groups LUNs under one target.
//! * The target is stateless: no unit attention, no pending sense (REQUEST SENSE returns NO
//!   SENSE), eject/lock are accepted without effect — a RAM medium cannot leave.

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
    /// The bytes cannot be reached (mapping failed permanently, or the backing disk failed the
    /// I/O): MEDIUM ERROR / UNRECOVERED READ ERROR for reads, WRITE ERROR for writes.
    Unreadable,
    /// The disk holding a disk-backed image was removed: NOT READY / MEDIUM NOT PRESENT.
    Removed,
    /// The backing disk did not complete the I/O in time and it was cancelled: ABORTED COMMAND.
    TimedOut,
}

impl MediumError {
    /// The sense data of a failed medium access; the one place that maps these errors
    /// (`docs/driver.md` "Disk-backed images"). `Busy` has none (the request is retried).
    pub const fn sense(self, write: bool) -> Option<SenseData> {
        match self {
            MediumError::Busy => None,
            MediumError::Unreadable if write => Some(SenseData::write_error()),
            MediumError::Unreadable => Some(SenseData::unrecovered_read_error()),
            MediumError::Removed => Some(SenseData::medium_not_present()),
            MediumError::TimedOut => Some(SenseData::aborted_command()),
        }
    }

    /// The outcome of a command that failed with this error.
    pub const fn outcome(self, write: bool) -> Outcome {
        match self.sense(write) {
            Some(sense) => Outcome::check_condition(sense),
            None => Outcome::busy(),
        }
    }
}

/// Byte access to one image. Offsets are relative to the image start; callers guarantee
/// `offset + len <= image.length` (the target checks bounds before calling).
pub trait Medium {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError>;
    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError>;
    /// Gives the bytes `[offset, offset + len)` back (UNMAP, only on a target built with an
    /// unmap granularity). Their content is unspecified afterwards (LBPRZ is not reported);
    /// the default keeps everything.
    fn unmap(&self, offset: u64, len: u64) -> Result<(), MediumError> {
        let _ = (offset, len);
        Ok(())
    }
}

/// SCSI status of a completed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    Good,
    CheckCondition,
    /// Transient: the port should ask for a retry (SRB_STATUS_BUSY).
    Busy,
}

impl DataDirection {
    /// True when an SRB flagged `self` may carry data moving in direction `want`.
    pub fn allows(self, want: DataDirection) -> bool {
        self == DataDirection::Unspecified || self == want
    }
}

pub(crate) fn allows(dir: DataDirection, want: DataDirection) -> bool {
    dir.allows(want)
}

/// What [`ScsiTarget::execute`] did. The constructors keep the invariants: sense data exists
/// exactly for CHECK CONDITION, and only GOOD moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    status: CommandStatus,
    transferred: usize,
    sense: Option<SenseData>,
}

impl Outcome {
    /// GOOD with `transferred` bytes moved (fewer than the buffer is an under-run).
    pub const fn good(transferred: usize) -> Self {
        Self {
            status: CommandStatus::Good,
            transferred,
            sense: None,
        }
    }

    /// CHECK CONDITION; no data counts as transferred.
    pub const fn check_condition(sense: SenseData) -> Self {
        Self {
            status: CommandStatus::CheckCondition,
            transferred: 0,
            sense: Some(sense),
        }
    }

    /// Transient failure; the port retries (SRB_STATUS_BUSY).
    pub const fn busy() -> Self {
        Self {
            status: CommandStatus::Busy,
            transferred: 0,
            sense: None,
        }
    }

    pub const fn status(&self) -> CommandStatus {
        self.status
    }

    /// Bytes really moved to or from the data buffer; never more than its length.
    pub const fn transferred(&self) -> usize {
        self.transferred
    }

    pub const fn sense(&self) -> Option<&SenseData> {
        self.sense.as_ref()
    }
}

mod block;
pub mod buf;
pub mod cdb;
pub mod inquiry;
mod mmc;
mod mode;
pub mod sense;
mod target;

pub use mmc::{current_profile, lba_to_msf, CD_MAX_BYTES, PROFILE_CD_ROM, PROFILE_DVD_ROM};
pub use sense::{AdditionalSense, FieldPointer, SenseData, SenseKey, FIXED_SENSE_LEN};
pub use target::ScsiTarget;
