//! HwStartIo under SCSIPORT: serialised by the port; complete synchronously, then ask for the
//! next request (`docs/windows-integration.md` §2.3). MapBuffers = TRUE makes DataBuffer a system
//! address for every SRB (§1.10).

use core::ffi::c_void;
use rvblk_abi::ScsiRequestBlock;
use rvblk_kernel::io::{execute, DataBuffers};
use rvblk_kernel::port::DeviceState;

struct MappedBuffers;

impl DataBuffers for MappedBuffers {
    fn system_address(&self, srb: &mut ScsiRequestBlock) -> Option<*mut u8> {
        (!srb.data_buffer.is_null()).then_some(srb.data_buffer.cast())
    }
}

/// # Safety
/// SCSIPORT contract: `ext` is our device extension, `srb` a live SRB now owned by us.
pub unsafe extern "system" fn hw_start_io(ext: *mut c_void, srb: *mut ScsiRequestBlock) -> u8 {
    // SAFETY: SCSIPORT serialises HwStartIo with the adapter callbacks; shared access suffices.
    let st = unsafe { &*ext.cast::<DeviceState>() };
    // SAFETY: `srb` is live and ours until completion.
    let r = unsafe { &mut *srb };
    if st.live {
        // SAFETY: SRB contract as above; MapBuffers gives system addresses.
        unsafe { execute(&st.adapter, r, &MappedBuffers) };
    } else {
        r.srb_status = rvblk_core::srb::status::NO_DEVICE;
        r.data_transfer_length = 0;
    }
    // SAFETY: the SRB is complete and handed back exactly once.
    unsafe { crate::scsiport::complete_and_ask_next(ext, srb) };
    1
}
