//! One SRB through the core: address check, data buffer, `ScsiTarget::execute`, completion
//! fields. Runs in HwStartIo (IRQL ≤ DISPATCH_LEVEL, possibly on several CPUs at once).

use crate::adapter::Adapter;
use rvblk_abi::ScsiRequestBlock;
use rvblk_core::scsi::DataDirection;
use rvblk_core::srb::{self, status, SrbAction, SrbFlags};

/// How the port reaches an SRB's data buffer (StorPort Win7 needs StorPortGetSystemAddress for
/// READ/WRITE, `docs/windows-integration.md` §1.10).
pub trait DataBuffers {
    /// A system-space address for the SRB's data buffer, valid for `DataTransferLength` bytes.
    fn system_address(&self, srb: &mut ScsiRequestBlock) -> Option<*mut u8>;
}

/// Executes `srb` and fills SrbStatus, ScsiStatus, DataTransferLength and the sense buffer. The
/// caller completes it (RequestComplete) afterwards, exactly once.
///
/// # Safety
/// `srb` is the port's live SRB, owned by the miniport until completion; its SenseInfoBuffer is
/// valid for SenseInfoBufferLength bytes, and `buffers` returns addresses valid for
/// DataTransferLength bytes.
pub unsafe fn execute(adapter: &Adapter, srb: &mut ScsiRequestBlock, buffers: &impl DataBuffers) {
    srb.srb_status = match srb::action(srb.function) {
        SrbAction::ExecuteScsi => {
            // SAFETY: forwarded contract.
            unsafe { execute_scsi(adapter, srb, buffers) };
            return;
        }
        // No private IOCTLs and no PnP capabilities beyond the defaults: StorPort treats
        // INVALID_REQUEST as "not handled" for both.
        SrbAction::IoControl | SrbAction::Pnp => status::INVALID_REQUEST,
        SrbAction::Complete(s) => s,
    };
}

unsafe fn execute_scsi(adapter: &Adapter, srb: &mut ScsiRequestBlock, buffers: &impl DataBuffers) {
    let Some(lun) = adapter.lun(srb.path_id, srb.target_id, srb.lun) else {
        srb.srb_status = status::NO_DEVICE;
        srb.data_transfer_length = 0;
        return;
    };
    let flags = SrbFlags::from_bits_retain(srb.srb_flags);
    let len = srb.data_transfer_length as usize;
    let data: &mut [u8] = if len == 0 {
        &mut []
    } else {
        match buffers.system_address(srb) {
            // SAFETY: the port's buffer is valid for DataTransferLength bytes (contract) and
            // owned by us until completion.
            Some(p) => unsafe { core::slice::from_raw_parts_mut(p, len) },
            None => {
                // The port could not map the buffer (low memory); it retries BUSY requests.
                srb.srb_status = status::BUSY;
                srb.data_transfer_length = 0;
                return;
            }
        }
    };
    let cdb_len = usize::from(srb.cdb_length).min(srb.cdb.len());
    let cdb = srb.cdb;
    let outcome = lun.target.execute(
        &cdb[..cdb_len],
        data,
        DataDirection::from_srb_flags(flags),
        &lun.medium,
    );
    #[cfg(feature = "selftest-overread")]
    if outcome.status() == rvblk_core::scsi::CommandStatus::Good && cdb[0] == 0x28 && len > 0 {
        // Deliberate fault for the harness's verifier self-test: one byte past the buffer.
        // SAFETY: none — this build exists only to prove the verifier catches it.
        let _ = unsafe { core::ptr::read_volatile(data.as_ptr().add(len)) };
    }
    let sense: &mut [u8] = if srb.sense_info_buffer.is_null() {
        &mut []
    } else {
        // SAFETY: valid for SenseInfoBufferLength bytes (contract).
        unsafe {
            core::slice::from_raw_parts_mut(
                srb.sense_info_buffer.cast(),
                usize::from(srb.sense_info_buffer_length),
            )
        }
    };
    let done = srb::complete(&outcome, flags, sense);
    srb.srb_status = done.srb_status;
    srb.scsi_status = done.scsi_status;
    srb.data_transfer_length = done.data_transfer_length;
    if done.sense_length > 0 || done.srb_status & status::AUTOSENSE_VALID != 0 {
        srb.sense_info_buffer_length = done.sense_length;
    }
}
