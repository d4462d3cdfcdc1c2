//! SRB decisions that do not depend on StorPort or SCSIPORT (`docs/windows-integration.md` §1.6–1.8):
//! what to do with each SRB function, and how a target's [`Outcome`] becomes the SRB's
//! SrbStatus, ScsiStatus, DataTransferLength and sense bytes.
//!
//! The port crates read the raw SRB, call [`action`] and, for EXECUTE_SCSI, [`execute_scsi`]
//! (the target's [`execute`](crate::scsi::ScsiTarget::execute) followed by [`complete`]), then
//! write the [`SrbCompletion`] fields back and notify the port. The port hands over its data
//! buffer through [`DataBuffer`]: only the core knows which commands move data and which of
//! them are READ/WRITE, the distinction StorPort's MapBuffers modes make (§1.10).

use bitflags::bitflags;

use crate::scsi::cdb::Opcode;
use crate::scsi::{CommandStatus, DataDirection, Medium, Outcome, ScsiTarget};

/// SRB_FUNCTION_* codes (srb.h; `docs/windows-integration.md` §1.7).
pub mod function {
    pub const EXECUTE_SCSI: u8 = 0x00;
    pub const CLAIM_DEVICE: u8 = 0x01;
    pub const IO_CONTROL: u8 = 0x02;
    pub const RECEIVE_EVENT: u8 = 0x03;
    pub const RELEASE_QUEUE: u8 = 0x04;
    pub const ATTACH_DEVICE: u8 = 0x05;
    pub const RELEASE_DEVICE: u8 = 0x06;
    pub const SHUTDOWN: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const ABORT_COMMAND: u8 = 0x10;
    pub const RELEASE_RECOVERY: u8 = 0x11;
    pub const RESET_BUS: u8 = 0x12;
    pub const RESET_DEVICE: u8 = 0x13;
    pub const TERMINATE_IO: u8 = 0x14;
    pub const FLUSH_QUEUE: u8 = 0x15;
    pub const REMOVE_DEVICE: u8 = 0x16;
    pub const WMI: u8 = 0x17;
    pub const LOCK_QUEUE: u8 = 0x18;
    pub const UNLOCK_QUEUE: u8 = 0x19;
    pub const RESET_LOGICAL_UNIT: u8 = 0x20;
    pub const SET_LINK_TIMEOUT: u8 = 0x21;
    pub const LINK_TIMEOUT_OCCURRED: u8 = 0x22;
    pub const LINK_TIMEOUT_COMPLETE: u8 = 0x23;
    pub const POWER: u8 = 0x24;
    pub const PNP: u8 = 0x25;
    pub const DUMP_POINTERS: u8 = 0x26;
    pub const FREE_DUMP_POINTERS: u8 = 0x27;
    /// Extended SRB wrapper; rvblk advertises classic SRBs only (§1.6), so it never arrives.
    pub const STORAGE_REQUEST_BLOCK: u8 = 0x28;
}

/// SrbStatus values (`docs/windows-integration.md` §1.8).
pub mod status {
    pub const PENDING: u8 = 0x00;
    pub const SUCCESS: u8 = 0x01;
    pub const ABORTED: u8 = 0x02;
    pub const ABORT_FAILED: u8 = 0x03;
    pub const ERROR: u8 = 0x04;
    pub const BUSY: u8 = 0x05;
    pub const INVALID_REQUEST: u8 = 0x06;
    pub const INVALID_PATH_ID: u8 = 0x07;
    pub const NO_DEVICE: u8 = 0x08;
    pub const TIMEOUT: u8 = 0x09;
    pub const SELECTION_TIMEOUT: u8 = 0x0A;
    pub const COMMAND_TIMEOUT: u8 = 0x0B;
    pub const DATA_OVERRUN: u8 = 0x12;
    pub const INVALID_LUN: u8 = 0x20;
    pub const INVALID_TARGET_ID: u8 = 0x21;
    pub const BAD_FUNCTION: u8 = 0x22;
    pub const INSUFFICIENT_RESOURCES: u8 = 0x26;
    pub const THROTTLED_REQUEST: u8 = 0x27;
    pub const INTERNAL_ERROR: u8 = 0x30;
    /// Flag set by the port only; a miniport never sets it.
    pub const QUEUE_FROZEN: u8 = 0x40;
    /// Flag: sense data was written to SenseInfoBuffer.
    pub const AUTOSENSE_VALID: u8 = 0x80;
}

/// SCSI status byte values (SAM-5 §5.3.1, table 22).
pub mod scsi_status {
    pub const GOOD: u8 = 0x00;
    pub const CHECK_CONDITION: u8 = 0x02;
    pub const BUSY: u8 = 0x08;
}

bitflags! {
    /// SRB_FLAGS_* (srb.h; `docs/windows-integration.md` §1.6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SrbFlags: u32 {
        const QUEUE_ACTION_ENABLE = 0x0000_0002;
        const DISABLE_DISCONNECT = 0x0000_0004;
        const DISABLE_SYNCH_TRANSFER = 0x0000_0008;
        const BYPASS_FROZEN_QUEUE = 0x0000_0010;
        const DISABLE_AUTOSENSE = 0x0000_0020;
        const DATA_IN = 0x0000_0040;
        const DATA_OUT = 0x0000_0080;
        /// Both direction bits: SRB_FLAGS_UNSPECIFIED_DIRECTION.
        const UNSPECIFIED_DIRECTION = 0x0000_00C0;
        const NO_QUEUE_FREEZE = 0x0000_0100;
        const ADAPTER_CACHE_ENABLE = 0x0000_0200;
        const FREE_SENSE_BUFFER = 0x0000_0400;
    }
}

impl DataDirection {
    /// Direction from the SRB flags: DATA_IN, DATA_OUT, both (unspecified) or neither.
    pub fn from_srb_flags(flags: SrbFlags) -> Self {
        match (
            flags.contains(SrbFlags::DATA_IN),
            flags.contains(SrbFlags::DATA_OUT),
        ) {
            (false, false) => DataDirection::None,
            (true, false) => DataDirection::In,
            (false, true) => DataDirection::Out,
            (true, true) => DataDirection::Unspecified,
        }
    }
}

/// What the miniport does with an SRB, by function code (`docs/windows-integration.md` §1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrbAction {
    /// Address check, then [`ScsiTarget::execute`](crate::scsi::ScsiTarget::execute) and
    /// [`complete`].
    ExecuteScsi,
    /// A control request: [`control::serve`](crate::control::serve) (INVALID_REQUEST when the
    /// signature is not ours, `docs/control.md` §4).
    IoControl,
    /// Inspect the PnP action: fill STOR_DEVICE_CAPABILITIES for QueryCapabilities (Removable for
    /// CD/floppy, SurpriseRemovalOK), SUCCESS otherwise.
    Pnp,
    /// Nothing to do but complete with this SrbStatus.
    Complete(u8),
}

/// Decides what an SRB function means for a RAM-disk miniport.
pub const fn action(code: u8) -> SrbAction {
    use self::function as f;
    match code {
        f::EXECUTE_SCSI => SrbAction::ExecuteScsi,
        f::IO_CONTROL => SrbAction::IoControl,
        f::PNP => SrbAction::Pnp,
        // Writes land in RAM before completion: there is never anything to flush.
        f::SHUTDOWN | f::FLUSH => SrbAction::Complete(status::SUCCESS),
        // Every command completes inside StartIo, so nothing is ever outstanding to abort: the
        // truthful answer is "not found".
        f::ABORT_COMMAND => SrbAction::Complete(status::ABORT_FAILED),
        // No bus, no device state to reset; power transitions need nothing from RAM.
        f::RESET_BUS | f::RESET_DEVICE | f::RESET_LOGICAL_UNIT | f::POWER => {
            SrbAction::Complete(status::SUCCESS)
        }
        // Not a WMI provider; not a crash-dump target (§1.7, dump stack behaviour UNCONFIRMED);
        // extended SRBs are never advertised; everything else is not ours either.
        _ => SrbAction::Complete(status::INVALID_REQUEST),
    }
}

/// The fields a port writes back into an EXECUTE_SCSI SRB before completing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrbCompletion {
    /// SrbStatus, including [`status::AUTOSENSE_VALID`] when sense bytes were copied.
    pub srb_status: u8,
    pub scsi_status: u8,
    /// New DataTransferLength: the bytes really moved.
    pub data_transfer_length: u32,
    /// New SenseInfoBufferLength: the sense bytes written (0 when none).
    pub sense_length: u8,
}

/// Maps a target's outcome onto the SRB; copies sense data into `sense_buffer` (the SRB's
/// SenseInfoBuffer, `SenseInfoBufferLength` bytes; empty if the pointer is NULL) unless
/// autosense is disabled.
///
/// Under-run (fewer bytes than DataTransferLength, e.g. INQUIRY or MODE SENSE answering less
/// than asked) completes as SUCCESS with the reduced length: classpnp treats SUCCESS plus a
/// smaller DataTransferLength as the normal short answer, while DATA_OVERRUN sends it through
/// its error interpretation and retries. DATA_OVERRUN is therefore never produced: the targets
/// reject a CDB asking to move more than the buffer holds (ILLEGAL REQUEST) instead of overrunning.
pub fn complete(outcome: &Outcome, flags: SrbFlags, sense_buffer: &mut [u8]) -> SrbCompletion {
    match outcome.status() {
        CommandStatus::Good => SrbCompletion {
            srb_status: status::SUCCESS,
            scsi_status: scsi_status::GOOD,
            data_transfer_length: u32::try_from(outcome.transferred()).unwrap_or(u32::MAX),
            sense_length: 0,
        },
        CommandStatus::CheckCondition => {
            let mut srb_status = status::ERROR;
            let mut sense_length = 0;
            if let Some(sense) = outcome.sense() {
                if !flags.contains(SrbFlags::DISABLE_AUTOSENSE) {
                    // SenseInfoBufferLength is a UCHAR: never write past 255 bytes.
                    let room = sense_buffer.len().min(usize::from(u8::MAX));
                    let n = sense.write_to(&mut sense_buffer[..room]);
                    if n > 0 {
                        srb_status |= status::AUTOSENSE_VALID;
                        sense_length = n as u8;
                    }
                }
            }
            SrbCompletion {
                srb_status,
                scsi_status: scsi_status::CHECK_CONDITION,
                data_transfer_length: 0,
                sense_length,
            }
        }
        CommandStatus::Busy => SrbCompletion {
            srb_status: status::BUSY,
            scsi_status: scsi_status::BUSY,
            data_transfer_length: 0,
            sense_length: 0,
        },
    }
}

/// What an SRB's data buffer holds, as far as the port's buffer mapping cares
/// (`docs/windows-integration.md` §1.10: StorPort before Windows 8 maps every buffer except those of
/// READ/WRITE commands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferUse {
    /// Medium data of a READ/WRITE-family command.
    MediumData,
    /// Parameter data of any other command (INQUIRY, MODE SENSE, …).
    Parameters,
}

/// How the core obtains an SRB's data buffer from the port.
pub trait DataBuffer {
    /// A system-space view of the whole data buffer (`DataTransferLength` bytes), or `None`
    /// when the port cannot provide one right now (the request is then answered BUSY and the
    /// port retries it).
    fn get(&mut self, usage: BufferUse) -> Option<&mut [u8]>;
}

/// Executes an EXECUTE_SCSI SRB: asks `buffer` for the data buffer only for a command that
/// moves data (a known opcode with a non-zero `transfer_length`), runs the target and maps the
/// outcome onto the completion fields. `sense` as in [`complete`].
pub fn execute_scsi(
    target: &ScsiTarget,
    cdb: &[u8],
    flags: SrbFlags,
    transfer_length: u32,
    buffer: &mut impl DataBuffer,
    sense: &mut [u8],
    medium: &impl Medium,
) -> SrbCompletion {
    let dir = DataDirection::from_srb_flags(flags);
    let opcode = cdb.first().copied().and_then(Opcode::from_u8);
    let outcome = match opcode {
        // Unknown opcodes are rejected before any data moves; nothing to map for them.
        Some(op) if transfer_length > 0 => {
            let usage = if op.moves_medium_data() {
                BufferUse::MediumData
            } else {
                BufferUse::Parameters
            };
            match buffer.get(usage) {
                Some(data) => target.execute(cdb, data, dir, medium),
                None => {
                    return SrbCompletion {
                        srb_status: status::BUSY,
                        scsi_status: scsi_status::GOOD,
                        data_transfer_length: 0,
                        sense_length: 0,
                    }
                }
            }
        }
        _ => target.execute(cdb, &mut [], dir, medium),
    };
    complete(&outcome, flags, sense)
}
