//! HwStartIo: StorPort calls it for virtual miniports without any lock, at IRQL ≤
//! DISPATCH_LEVEL, on several CPUs at once (`docs/windows-integration.md` §1.9). A RAM disk finishes
//! every request here and completes it at once.

use crate::entry::MAPS_READ_WRITE_BUFFERS;
use core::ffi::c_void;
use core::sync::atomic::Ordering;
use rvblk_abi::ScsiRequestBlock;
use rvblk_core::scsi::cdb::Opcode;
use rvblk_kernel::io::{execute, DataBuffers};

struct StorPortBuffers {
    ext: *mut c_void,
}

impl DataBuffers for StorPortBuffers {
    fn system_address(&self, srb: &mut ScsiRequestBlock) -> Option<*mut u8> {
        // Unknown opcodes never reach the buffer (the core rejects them first), so only the
        // commands the core serves with medium data need the Win7 path.
        let medium_data = Opcode::from_u8(srb.cdb[0]).is_some_and(Opcode::moves_medium_data);
        if MAPS_READ_WRITE_BUFFERS.load(Ordering::Relaxed) || !medium_data {
            return (!srb.data_buffer.is_null()).then_some(srb.data_buffer.cast());
        }
        // SAFETY: `srb` is the live SRB of this HwStartIo call; IRQL ≤ DISPATCH_LEVEL.
        unsafe { crate::storport::get_system_address(self.ext, srb) }
    }
}

/// # Safety
/// StorPort contract: `ext` is our device extension, `srb` a live SRB now owned by us.
pub unsafe extern "system" fn hw_start_io(ext: *mut c_void, srb: *mut ScsiRequestBlock) -> u8 {
    // SAFETY: StorPort serialises adapter callbacks against StartIo only for stop/remove, when no
    // I/O is in flight; during I/O the state is read-only (shared reference).
    let st = unsafe { &*ext.cast::<rvblk_kernel::port::DeviceState>() };
    // SAFETY: `srb` is live and ours until completion (StorPort contract).
    let r = unsafe { &mut *srb };
    if st.live {
        // SAFETY: SRB contract as above; buffers come from StorPort.
        unsafe { execute(&st.adapter, r, &StorPortBuffers { ext }) };
    } else {
        r.srb_status = rvblk_core::srb::status::NO_DEVICE;
        r.data_transfer_length = 0;
    }
    // SAFETY: the SRB is complete and handed back exactly once.
    unsafe { crate::storport::request_complete(ext, srb) };
    #[cfg(feature = "selftest-double-complete")]
    if r.cdb[0] == 0x28 {
        // Deliberate fault for the harness's verifier self-test.
        // SAFETY: none — this build exists only to prove the verifier catches it.
        unsafe { crate::storport::request_complete(ext, srb) };
    }
    1
}
