//! HwStartIo's logic, port independent and safe: address check, rule 29, then the core
//! (`rvblk_core::srb::execute_scsi`), which asks the port for the data buffer only when the
//! command moves data.

use crate::adapter::LunLookup;
use crate::backed::{DiskPath, Route};
use crate::port::DeviceState;
use crate::srb::{DataAccess, Srb};
use rvblk_core::backed::{admit, Admission};
use rvblk_core::scsi::{Medium, MediumError, Outcome};
use rvblk_core::srb::SrbCompletion;
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

/// What HwStartIo did with a request.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// The completion fields are filled: the trampoline completes it now.
    Done,
    /// Handed to the disk worker, which completes it (the trampoline must not).
    Pending,
}

/// HwStartIo with the worker (StorPort): control requests go to `crate::runtime::io_control`,
/// requests for a runtime LUN to `crate::runtime::start_io`, requests for a disk-backed LUN
/// through the core's admission (`rvblk_core::backed::admit`); every other request is served
/// at once as by [`start_io_now`]. `P` is the port's worker calls (what it serves, `P::RUNTIME_LUNS`).
pub fn start_io<P: crate::backed::PortCalls>(
    state: &DeviceState,
    mut srb: Srb<'_>,
    port: &impl PortBuffers,
    irql: &Dispatch,
) -> Started {
    let disk = state.disk.as_ref().filter(|_| state.live);
    let Some(path) = disk.map(|d| d.path()) else {
        start_io_now(state, &mut srb, port, irql);
        return Started::Done;
    };
    if srb.function() == rvblk_core::srb::function::IO_CONTROL && path.runtime().is_some() {
        return match crate::runtime::io_control(state, path, srb, irql) {
            Ok(()) => Started::Pending,
            Err(_) => Started::Done,
        };
    }
    let (p, t, l) = srb.address();
    if srb.function() == rvblk_core::srb::function::EXECUTE_SCSI {
        let slot = path.runtime().and_then(|rt| rt.slot(p, t, l));
        if let Some(lun) = slot.and_then(|s| s.pin()) {
            return match crate::runtime::start_io::<P>(path, t, lun, srb, port, irql) {
                Ok(()) => Started::Pending,
                Err(_) => Started::Done,
            };
        }
    }
    let lun_at = path.lun_at(p, t, l);
    let Some((index, lun)) =
        lun_at.filter(|_| srb.function() == rvblk_core::srb::function::EXECUTE_SCSI)
    else {
        start_io_now(state, &mut srb, port, irql);
        return Started::Done;
    };
    let (cdb, cdb_len) = srb.cdb();
    match admit(lun.state(), &cdb[..cdb_len]) {
        Admission::NoDevice => srb.set_status(status::NO_DEVICE),
        Admission::Refuse(sense) => {
            let flags = srb.flags();
            let (_, sense_buf) = srb.buffers();
            let done = srb::complete(&Outcome::check_condition(sense), flags, sense_buf);
            srb.finish(&done);
        }
        Admission::Now => {
            let (flags, length) = (srb.flags(), srb.transfer_length());
            let (mut access, sense) = srb.buffers();
            let mut buffer = Buffer::new(&mut access, port, irql);
            let done = srb::execute_scsi(
                &lun.target,
                &cdb[..cdb_len],
                flags,
                length,
                &mut buffer,
                sense,
                &Untouched,
            );
            srb.finish(&done);
        }
        Admission::Queue => {
            // One whole-sector piece of one extent goes to the disk from here as an
            // asynchronous IRP (`docs/driver.md` "The fast path"); the rest to the worker.
            let mut srb = match path.fast().try_start(index, lun, srb, port, irql) {
                Ok(()) => return Started::Pending,
                Err(srb) => srb,
            };
            // Where the fast path does not serve it (DISPATCH_LEVEL, SCSIPORT), a READ that a
            // read-ahead buffer holds is served here (`docs/driver.md` "Read-ahead of
            // disk-backed images").
            if let Some(ahead) = &lun.ahead {
                let access =
                    rvblk_core::readahead::classify(&cdb[..cdb_len], lun.image.block_size());
                if serve_read_ahead_hit(ahead, &lun.target, access, &mut srb, path, port, irql) {
                    return Started::Done;
                }
            }
            return match queue(path, Route::Disk(index), srb, port, irql) {
                Ok(()) => Started::Pending,
                Err(_) => Started::Done,
            };
        }
    }
    Started::Done
}

/// Hands `srb` to the worker for `route`, with its data buffer's system address taken here,
/// where the port allows it; it stays valid until completion (`docs/windows-integration.md`
/// §8.3). A buffer that cannot be reached or a full queue: BUSY, given back for completion.
pub(crate) fn queue<'a>(
    path: &DiskPath,
    route: Route,
    mut srb: Srb<'a>,
    port: &impl PortBuffers,
    irql: &Dispatch,
) -> Result<(), Srb<'a>> {
    let data = if srb.transfer_length() == 0 {
        Some(core::ptr::null_mut())
    } else {
        let (mut access, _) = srb.buffers();
        let mut buffer = Buffer::new(&mut access, port, irql);
        srb::DataBuffer::get(&mut buffer, BufferUse::MediumData).map(|b| b.as_mut_ptr())
    };
    let Some(data) = data else {
        srb.set_status(status::BUSY);
        return Err(srb);
    };
    path.enqueue_route(route, srb, data, irql)
        .map_err(|(mut srb, _route)| {
            srb.set_status(status::BUSY);
            srb
        })
}

/// Runs `f` with the SRB's data buffer (as the core reaches it) and sense buffer.
pub(crate) fn execute_with<P: PortBuffers>(
    srb: &mut Srb<'_>,
    port: &P,
    irql: &Dispatch,
    f: impl FnOnce(&mut Buffer<'_, '_, P>, &mut [u8]) -> SrbCompletion,
) -> SrbCompletion {
    let (mut access, sense) = srb.buffers();
    let mut buffer = Buffer::new(&mut access, port, irql);
    f(&mut buffer, sense)
}

/// HwStartIo: serves `srb` (a command for `target` that `access` describes) from `ahead` when
/// it is a READ a filled buffer holds — executed by the core's target with the buffer as the
/// medium and completed in place — and nudges the worker when a fill has become possible.
/// False (the SRB untouched, but the READ recorded for stream detection) otherwise.
pub(crate) fn serve_read_ahead_hit(
    ahead: &crate::readahead::ReadAheadBuffers,
    target: &rvblk_core::scsi::ScsiTarget,
    access: rvblk_core::readahead::Access,
    srb: &mut Srb<'_>,
    path: &DiskPath,
    port: &impl PortBuffers,
    irql: &Dispatch,
) -> bool {
    let rvblk_core::readahead::Access::Read { offset, len } = access else {
        return false;
    };
    let Some(hit) = ahead.read(offset, len, irql) else {
        return false;
    };
    let (cdb, cdb_len) = srb.cdb();
    let (flags, length) = (srb.flags(), srb.transfer_length());
    let done = execute_with(srb, port, irql, |b, sense| {
        srb::execute_scsi(target, &cdb[..cdb_len], flags, length, b, sense, &hit)
    });
    srb.finish(&done);
    if hit.release(irql) {
        path.nudge(irql);
    }
    true
}

/// The medium of a disk-backed LUN for the commands answered in HwStartIo, which never touch
/// it (`rvblk_core::backed::Admission::Now`); a read or write here would be a core bug and
/// fails as unreadable.
pub(crate) struct Untouched;

impl Medium for Untouched {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), MediumError> {
        Err(MediumError::Unreadable)
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), MediumError> {
        Err(MediumError::Unreadable)
    }
}

/// Executes `srb` and fills its completion fields (RAM images, every non-SCSI function). The
/// caller completes it afterwards, once.
pub fn start_io_now(
    state: &DeviceState,
    srb: &mut Srb<'_>,
    port: &impl PortBuffers,
    irql: &Dispatch,
) {
    if !state.live {
        srb.set_status(status::NO_DEVICE);
        return;
    }
    match srb::action(srb.function()) {
        SrbAction::ExecuteScsi => execute_scsi(state, srb, port, irql),
        SrbAction::IoControl => {
            let disk = state.disk.as_ref().map(|d| d.path());
            crate::control::io_control(&state.adapter, disk, state.ram_bytes, srb)
        }
        // No PnP capabilities beyond the defaults: StorPort treats INVALID_REQUEST as "not
        // handled".
        SrbAction::Pnp => srb.set_status(status::INVALID_REQUEST),
        SrbAction::Complete(s) => srb.set_status(s),
    }
}

/// The core's view of the SRB's data buffer: mapped by the port, or reached through it.
pub(crate) struct Buffer<'s, 'a, P> {
    access: &'s mut DataAccess<'a>,
    port: &'s P,
    irql: &'s Dispatch,
}

impl<'s, 'a, P> Buffer<'s, 'a, P> {
    pub(crate) fn new(access: &'s mut DataAccess<'a>, port: &'s P, irql: &'s Dispatch) -> Self {
        Self { access, port, irql }
    }
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
    let mut buffer = Buffer::new(&mut access, port, irql);
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
