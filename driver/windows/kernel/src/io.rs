//! HwStartIo's logic, port independent and safe: address check, rule 29, then the core
//! (`rvblk_core::srb::execute_scsi`), which asks the port for the data buffer only when the
//! command moves data.

use crate::adapter::LunLookup;
use crate::port::DeviceState;
use crate::srb::{DataAccess, Srb};
use rvblk_core::srb::{self, status, BufferUse, SrbAction};
use rvblk_irql::Dispatch;

/// How a port reaches a data buffer that it did not map (StorPort on Vista/7 for READ/WRITE,
/// `docs/windows-integration.md` §1.10). The default reaches only mapped buffers.
pub trait PortBuffers {
    fn unmapped<'b>(
        &self,
        _access: &'b mut DataAccess<'_>,
        _usage: BufferUse,
        _irql: &Dispatch,
    ) -> Option<&'b mut [u8]> {
        None
    }
}

/// Executes `srb` and fills its completion fields. The caller completes it afterwards, once.
pub fn start_io(state: &DeviceState, srb: &mut Srb<'_>, port: &impl PortBuffers, irql: &Dispatch) {
    if !state.live {
        srb.set_status(status::NO_DEVICE);
        return;
    }
    match srb::action(srb.function()) {
        SrbAction::ExecuteScsi => execute_scsi(state, srb, port, irql),
        SrbAction::IoControl => crate::control::io_control(&state.adapter, state.ram_bytes, srb),
        // No PnP capabilities beyond the defaults: StorPort treats INVALID_REQUEST as "not
        // handled".
        SrbAction::Pnp => srb.set_status(status::INVALID_REQUEST),
        SrbAction::Complete(s) => srb.set_status(s),
    }
}

/// The core's view of the SRB's data buffer: mapped by the port, or reached through it.
struct Buffer<'s, 'a, P> {
    access: &'s mut DataAccess<'a>,
    port: &'s P,
    irql: &'s Dispatch,
}

impl<P: PortBuffers> srb::DataBuffer for Buffer<'_, '_, P> {
    fn get(&mut self, usage: BufferUse) -> Option<&mut [u8]> {
        // A buffer the port maps but left NULL (it could not map it) is not looked up another
        // way: the request is answered BUSY and retried.
        if self.access.is_mapped(usage) {
            return self.access.mapped(usage);
        }
        self.port.unmapped(self.access, usage, self.irql)
    }
}

fn execute_scsi(state: &DeviceState, srb: &mut Srb<'_>, port: &impl PortBuffers, irql: &Dispatch) {
    let (path, target, lun) = srb.address();
    let lun = match state.adapter.lun(path, target, lun) {
        LunLookup::Ready(lun) => lun,
        LunLookup::Busy => return srb.set_status(status::BUSY),
        LunLookup::NoDevice => return srb.set_status(status::NO_DEVICE),
    };
    let (cdb, cdb_len) = srb.cdb();
    let (flags, length) = (srb.flags(), srb.transfer_length());
    let (mut access, sense) = srb.buffers();
    let mut buffer = Buffer {
        access: &mut access,
        port,
        irql,
    };
    let done = srb::execute_scsi(
        &lun.target,
        &cdb[..cdb_len],
        flags,
        length,
        &mut buffer,
        sense,
        &lun.medium,
    );
    srb.finish(&done);
    #[cfg(feature = "selftest-overread")]
    if done.srb_status == status::SUCCESS && cdb[0] == 0x28 {
        srb.selftest_overread();
    }
}
