//! The one sense-data builder (fixed format, SPC-4 §4.5.3).
//!
//! Every CHECK CONDITION the targets raise goes through [`SenseData`]; the port copies
//! [`SenseData::to_bytes`] into the SRB's sense buffer (autosense, `docs/windows-integration.md` §1.8).

use super::buf::Be16;

/// Length of fixed-format sense data with ADDITIONAL SENSE LENGTH = 10 (Windows SENSE_BUFFER_SIZE).
pub const FIXED_SENSE_LEN: usize = 18;

/// Fixed-format, current error (SPC-4 §4.5.3, RESPONSE CODE 70h).
const RESPONSE_CODE_CURRENT_FIXED: u8 = 0x70;

/// SPC-4 §4.5.6, table 40.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SenseKey {
    NoSense = 0x0,
    NotReady = 0x2,
    MediumError = 0x3,
    IllegalRequest = 0x5,
    UnitAttention = 0x6,
    DataProtect = 0x7,
    AbortedCommand = 0xB,
    Miscompare = 0xE,
}

/// An ASC/ASCQ pair (SPC-4 §4.5.6, table 41). Only the codes rvblk raises are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdditionalSense {
    pub asc: u8,
    pub ascq: u8,
}

impl AdditionalSense {
    pub const NONE: Self = Self::new(0x00, 0x00);
    pub const WRITE_ERROR: Self = Self::new(0x0C, 0x00);
    pub const UNRECOVERED_READ_ERROR: Self = Self::new(0x11, 0x00);
    pub const MISCOMPARE_DURING_VERIFY: Self = Self::new(0x1D, 0x00);
    pub const INVALID_COMMAND_OPERATION_CODE: Self = Self::new(0x20, 0x00);
    pub const LBA_OUT_OF_RANGE: Self = Self::new(0x21, 0x00);
    pub const INVALID_FIELD_IN_CDB: Self = Self::new(0x24, 0x00);
    /// SPC-4: the parameter list length does not fit the command (UNMAP).
    pub const PARAMETER_LIST_LENGTH_ERROR: Self = Self::new(0x1A, 0x00);
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Self = Self::new(0x26, 0x00);
    pub const WRITE_PROTECTED: Self = Self::new(0x27, 0x00);
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Self = Self::new(0x39, 0x00);
    pub const MEDIUM_NOT_PRESENT: Self = Self::new(0x3A, 0x00);
    /// MMC-6 table F.1: READ CD asked for a sector type the track does not have.
    pub const ILLEGAL_MODE_FOR_THIS_TRACK: Self = Self::new(0x64, 0x00);

    pub const fn new(asc: u8, ascq: u8) -> Self {
        Self { asc, ascq }
    }
}

/// Which CDB byte (and optionally bit) was wrong: the sense-key-specific field pointer of
/// SPC-4 §4.5.2.4.2, always with C/D = 1 (the error is in the CDB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldPointer {
    pub byte: u16,
    /// Bit 0..=7 of `byte` that is the most significant bit of the bad field, if known.
    pub bit: Option<u8>,
}

/// One CHECK CONDITION's sense data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenseData {
    pub key: SenseKey,
    pub code: AdditionalSense,
    pub field: Option<FieldPointer>,
}

impl SenseData {
    pub const fn new(key: SenseKey, code: AdditionalSense) -> Self {
        Self {
            key,
            code,
            field: None,
        }
    }

    /// The stateless "nothing to report" answer to REQUEST SENSE (SPC-4 §6.29): errors already
    /// went out by autosense with their command.
    pub const fn no_sense() -> Self {
        Self::new(SenseKey::NoSense, AdditionalSense::NONE)
    }

    pub const fn invalid_opcode() -> Self {
        Self::new(
            SenseKey::IllegalRequest,
            AdditionalSense::INVALID_COMMAND_OPERATION_CODE,
        )
    }

    /// INVALID FIELD IN CDB pointing at `byte` (and `bit`, the field's most significant bit).
    pub const fn invalid_field(byte: u16, bit: Option<u8>) -> Self {
        Self {
            key: SenseKey::IllegalRequest,
            code: AdditionalSense::INVALID_FIELD_IN_CDB,
            field: Some(FieldPointer { byte, bit }),
        }
    }

    /// INVALID FIELD IN CDB without a pointer: the CDB is fine on its own but does not fit the
    /// SRB (direction flags).
    pub const fn invalid_request() -> Self {
        Self::new(
            SenseKey::IllegalRequest,
            AdditionalSense::INVALID_FIELD_IN_CDB,
        )
    }

    /// PARAMETER LIST LENGTH ERROR (UNMAP with a list shorter than its header).
    pub const fn parameter_list_length() -> Self {
        Self::new(
            SenseKey::IllegalRequest,
            AdditionalSense::PARAMETER_LIST_LENGTH_ERROR,
        )
    }

    /// INVALID FIELD IN PARAMETER LIST (UNMAP with more descriptors than the LUN accepts).
    pub const fn invalid_parameter() -> Self {
        Self::new(
            SenseKey::IllegalRequest,
            AdditionalSense::INVALID_FIELD_IN_PARAMETER_LIST,
        )
    }

    pub const fn lba_out_of_range() -> Self {
        Self::new(SenseKey::IllegalRequest, AdditionalSense::LBA_OUT_OF_RANGE)
    }

    pub const fn write_protected() -> Self {
        Self::new(SenseKey::DataProtect, AdditionalSense::WRITE_PROTECTED)
    }

    pub const fn unrecovered_read_error() -> Self {
        Self::new(
            SenseKey::MediumError,
            AdditionalSense::UNRECOVERED_READ_ERROR,
        )
    }

    pub const fn write_error() -> Self {
        Self::new(SenseKey::MediumError, AdditionalSense::WRITE_ERROR)
    }

    /// NOT READY / MEDIUM NOT PRESENT: the disk holding a disk-backed image is gone
    /// (`docs/driver.md` "Disk-backed images").
    pub const fn medium_not_present() -> Self {
        Self::new(SenseKey::NotReady, AdditionalSense::MEDIUM_NOT_PRESENT)
    }

    /// ABORTED COMMAND without a more specific code: the backing disk did not answer in time
    /// and the request was cancelled; the host may retry.
    pub const fn aborted_command() -> Self {
        Self::new(SenseKey::AbortedCommand, AdditionalSense::NONE)
    }

    pub const fn miscompare() -> Self {
        Self::new(
            SenseKey::Miscompare,
            AdditionalSense::MISCOMPARE_DURING_VERIFY,
        )
    }

    /// Fixed-format sense data, 18 bytes (SPC-4 §4.5.3, table 45). VALID = 0: no INFORMATION.
    pub fn to_bytes(&self) -> [u8; FIXED_SENSE_LEN] {
        let mut b = [0u8; FIXED_SENSE_LEN];
        b[0] = RESPONSE_CODE_CURRENT_FIXED;
        b[2] = self.key as u8;
        b[7] = (FIXED_SENSE_LEN - 8) as u8;
        b[12] = self.code.asc;
        b[13] = self.code.ascq;
        if let Some(field) = self.field {
            // SKSV | C/D (SPC-4 §4.5.2.4.2, table 48); BPV + BIT POINTER when the bit is known.
            let mut sks = 0x80 | 0x40;
            if let Some(bit) = field.bit {
                sks |= 0x08 | (bit & 0x07);
            }
            b[15] = sks;
            b[16..18].copy_from_slice(&Be16::new(field.byte).0);
        }
        b
    }

    /// Copies as much of the fixed-format sense data as fits into `dst`; returns the bytes written.
    pub fn write_to(&self, dst: &mut [u8]) -> usize {
        let bytes = self.to_bytes();
        let n = bytes.len().min(dst.len());
        dst[..n].copy_from_slice(&bytes[..n]);
        n
    }
}
