//! The fast path of a disk-backed LUN (`docs/driver.md` "The fast path"): which READ/WRITE
//! HwStartIo may send to the backing disk itself as one asynchronous IRP, and what the IRP's
//! final status means for the SRB. Everything else (partial sectors, transfers split across
//! extents, every error answer) stays on the worker, so the SCSI answers are the worker's.
//!
//! * [`fast_plan`] runs the LUN's target on the SRB with a medium that only records the one
//!   access the command makes (every check of the command — range, buffer, direction, write
//!   protection — is the target's own), then asks [`Plan`] whether that access is one direct
//!   piece of one extent.
//! * [`irp_result`] maps the IRP's status through the worker's mapping
//!   ([`medium_error`](crate::backed::medium_error)) and the one sense builder
//!   ([`MediumError::outcome`], [`complete`]).

use crate::backed::{medium_error, Plan, Step, MAX_DIRECT};
use crate::image::DiskBackedImage;
use crate::scsi::cdb::Opcode;
use crate::scsi::{CommandStatus, DataDirection, Medium, MediumError, ScsiTarget};
use crate::srb::{complete, SrbCompletion, SrbFlags};
use core::cell::Cell;

/// One asynchronous disk transfer for a whole SRB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastIo {
    /// WRITE (true) or READ.
    pub write: bool,
    /// Disk byte offset: whole disk sectors.
    pub disk: u64,
    /// Where the bytes start in the SRB's data buffer.
    pub buf: usize,
    /// Bytes to move: whole disk sectors, at most [`MAX_DIRECT`].
    pub len: usize,
    /// The SRB's completion when the disk moved all `len` bytes.
    pub done: SrbCompletion,
}

/// The one medium access a command made: (write, image offset, buffer address, length).
type Access = (bool, u64, usize, usize);

/// A medium that records what the target asks of it and moves nothing.
struct Probe {
    seen: Cell<Option<Access>>,
    calls: Cell<u32>,
}

impl Probe {
    fn note(&self, a: Access) -> Result<(), MediumError> {
        self.calls.set(self.calls.get() + 1);
        self.seen.set(Some(a));
        Ok(())
    }
}

impl Medium for Probe {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        self.note((false, offset, dst.as_ptr() as usize, dst.len()))
    }
    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        self.note((true, offset, src.as_ptr() as usize, src.len()))
    }
    fn unmap(&self, _offset: u64, _len: u64) -> Result<(), MediumError> {
        // Never a fast candidate: counted so the plan refuses it.
        self.calls.set(self.calls.get() + 2);
        Ok(())
    }
}

/// Whether the SRB for `target` (a disk-backed LUN's target for `image`) with `cdb`, `flags`
/// and its whole data buffer `data` is a fast candidate on a disk with `disk_sector`-byte
/// sectors: a READ or WRITE (6/10/12/16) the target accepts, moving a non-empty range that is
/// one [`Step::Direct`] piece of one extent. `None`: the worker serves it (errors, bounce
/// sectors, splits, discarded or refused writes, every other command). `data` is not touched.
pub fn fast_plan(
    target: &ScsiTarget,
    image: &DiskBackedImage,
    cdb: &[u8],
    flags: SrbFlags,
    data: &mut [u8],
    disk_sector: u32,
) -> Option<FastIo> {
    let op = cdb.first().copied().and_then(Opcode::from_u8)?;
    let write = match op {
        Opcode::Read6 | Opcode::Read10 | Opcode::Read12 | Opcode::Read16 => false,
        Opcode::Write6 | Opcode::Write10 | Opcode::Write12 | Opcode::Write16 => true,
        _ => return None,
    };
    // A read-only image (CD, Ventoy, write-protected) is never written; a discarded write
    // (GRUB4DOS fake write) never reaches the disk. The target refuses or drops both itself;
    // this only keeps them off the fast path whatever the target decides.
    if write && !image.writes_reach_disk() {
        return None;
    }
    let base = data.as_ptr() as usize;
    let probe = Probe {
        seen: Cell::new(None),
        calls: Cell::new(0),
    };
    let dir = DataDirection::from_srb_flags(flags);
    let outcome = target.execute(cdb, data, dir, &probe);
    let (w, offset, at, len) = probe.seen.get()?;
    if probe.calls.get() != 1
        || w != write
        || outcome.status() != CommandStatus::Good
        || outcome.transferred() != len
        || len == 0
        || len > MAX_DIRECT
    {
        return None;
    }
    let buf = at.checked_sub(base)?;
    let mut plan = Plan::new(image, offset, len, disk_sector).ok()?;
    let first = plan.next()?.ok()?;
    if plan.next().is_some() {
        return None;
    }
    match first {
        Step::Direct {
            disk,
            buf: 0,
            len: n,
        } if n == len => Some(FastIo {
            write,
            disk,
            buf,
            len,
            done: complete(&outcome, flags, &mut []),
        }),
        _ => None,
    }
}

/// What an asynchronous IRP's end means for its SRB: the completion to write (sense data, if
/// any, written into `sense`), and the medium error when it failed (a removal changes the LUN's
/// state, as on the worker: [`LunState::after_failure`](crate::backed::LunState::after_failure)).
/// `status` is the IRP's NTSTATUS as its 32-bit pattern, `information` its byte count.
pub fn irp_result(
    io: &FastIo,
    status: u32,
    information: usize,
    flags: SrbFlags,
    sense: &mut [u8],
) -> (SrbCompletion, Option<MediumError>) {
    let failure = if (status as i32) < 0 {
        Some(medium_error(status))
    } else if information < io.len {
        // A short transfer is an error for a disk: the bytes past it are not there (the
        // worker's rule, `OpenDisk::transfer`).
        Some(MediumError::Unreadable)
    } else {
        None
    };
    match failure {
        None => (io.done, None),
        Some(e) => (complete(&e.outcome(io.write), flags, sense), Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backed::ntstatus;
    use crate::image::{DeviceKind, WritePolicy};
    use crate::scsi::SenseData;
    use crate::srb::{status, SrbFlags};
    use std::vec;

    fn image(kind: DeviceKind, policy: WritePolicy, extents: &[(u64, u64)]) -> DiskBackedImage {
        let sector = if kind == DeviceKind::CdRom { 2048 } else { 512 };
        let length = extents.iter().map(|e| e.1 * sector as u64).sum();
        crate::backed::tests::image_with(kind, policy, sector, extents, length)
    }

    fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
        let l = lba.to_be_bytes();
        let b = blocks.to_be_bytes();
        [op, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
    }

    fn plan(
        img: &DiskBackedImage,
        cdb: &[u8],
        flags: SrbFlags,
        len: usize,
        ss: u32,
    ) -> Option<FastIo> {
        let target = ScsiTarget::for_disk_backed(img);
        let mut data = vec![0x5Au8; len];
        let r = fast_plan(&target, img, cdb, flags, &mut data, ss);
        assert!(
            data.iter().all(|&b| b == 0x5A),
            "the plan touched the buffer"
        );
        r
    }

    const IN: SrbFlags = SrbFlags::DATA_IN;
    const OUT: SrbFlags = SrbFlags::DATA_OUT;

    #[test]
    fn one_piece_read_and_write_are_fast() {
        // Two extents: sectors 100..164 of the disk, then 1000..1064.
        let img = image(
            DeviceKind::Disk,
            WritePolicy::ReadWrite,
            &[(100, 64), (1000, 64)],
        );
        let r = plan(&img, &rw10(0x28, 4, 8), IN, 4096, 512).unwrap();
        assert_eq!((r.write, r.disk, r.buf, r.len), (false, 104 * 512, 0, 4096));
        assert_eq!(r.done.srb_status, status::SUCCESS);
        assert_eq!(r.done.data_transfer_length, 4096);
        // In the second extent.
        let r = plan(&img, &rw10(0x2A, 64, 16), OUT, 8192, 512).unwrap();
        assert_eq!((r.write, r.disk, r.len), (true, 1000 * 512, 8192));
        // READ(16) too.
        let mut c16 = [0u8; 16];
        c16[0] = 0x88;
        c16[9] = 10;
        c16[13] = 2;
        let r = plan(&img, &c16, IN, 1024, 512).unwrap();
        assert_eq!(r.disk, 110 * 512);
    }

    #[test]
    fn splits_bounces_errors_and_others_stay_on_the_worker() {
        let img = image(
            DeviceKind::Disk,
            WritePolicy::ReadWrite,
            &[(100, 64), (1000, 64)],
        );
        // Across the extent boundary: two pieces.
        assert_eq!(plan(&img, &rw10(0x28, 60, 8), IN, 4096, 512), None);
        // A 4096-byte-sector disk under 512-byte extents: partial sectors.
        assert_eq!(plan(&img, &rw10(0x28, 1, 1), IN, 512, 4096), None);
        // Out of range: the worker answers it.
        assert_eq!(plan(&img, &rw10(0x28, 200, 1), IN, 512, 512), None);
        // Buffer too small, wrong direction.
        assert_eq!(plan(&img, &rw10(0x28, 0, 8), IN, 512, 512), None);
        assert_eq!(plan(&img, &rw10(0x28, 0, 1), OUT, 512, 512), None);
        // Zero blocks; another command.
        assert_eq!(plan(&img, &rw10(0x28, 0, 0), IN, 0, 512), None);
        assert_eq!(
            plan(&img, &[0x00, 0, 0, 0, 0, 0], SrbFlags::empty(), 0, 512),
            None
        );
        let verify = [0x2F, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(plan(&img, &verify, SrbFlags::empty(), 0, 512), None);
    }

    #[test]
    fn read_only_images_are_never_written_fast() {
        for policy in [WritePolicy::ReadOnly, WritePolicy::DiscardWrites] {
            let img = image(DeviceKind::Disk, policy, &[(100, 64)]);
            assert_eq!(plan(&img, &rw10(0x2A, 0, 1), OUT, 512, 512), None);
            assert!(plan(&img, &rw10(0x28, 0, 1), IN, 512, 512).is_some());
        }
        let cd = image(DeviceKind::CdRom, WritePolicy::ReadWrite, &[(100, 64)]);
        assert_eq!(plan(&cd, &rw10(0x2A, 0, 1), OUT, 2048, 512), None);
        let r = plan(&cd, &rw10(0x28, 1, 1), IN, 2048, 512).unwrap();
        assert_eq!((r.disk, r.len), (100 * 2048 + 2048, 2048));
    }

    #[test]
    fn irp_status_maps_like_the_worker() {
        let img = image(DeviceKind::Disk, WritePolicy::ReadWrite, &[(100, 64)]);
        let rd = plan(&img, &rw10(0x28, 0, 2), IN, 1024, 512).unwrap();
        let wr = plan(&img, &rw10(0x2A, 0, 2), OUT, 1024, 512).unwrap();
        let mut sense = [0u8; 18];
        assert_eq!(irp_result(&rd, 0, 1024, IN, &mut sense), (rd.done, None));
        // Short: MEDIUM ERROR.
        let (c, e) = irp_result(&rd, 0, 512, IN, &mut sense);
        assert_eq!(e, Some(MediumError::Unreadable));
        assert_eq!(c.srb_status, status::ERROR | status::AUTOSENSE_VALID);
        let mut want = [0u8; 18];
        SenseData::unrecovered_read_error().write_to(&mut want);
        assert_eq!(sense, want);
        // Write failure: WRITE ERROR.
        let (_, e) = irp_result(&wr, 0xC000_0185, 0, OUT, &mut sense);
        assert_eq!(e, Some(MediumError::Unreadable));
        SenseData::write_error().write_to(&mut want);
        assert_eq!(sense, want);
        // Removal: NOT READY / MEDIUM NOT PRESENT.
        let (_, e) = irp_result(&rd, ntstatus::STATUS_NO_SUCH_DEVICE, 0, IN, &mut sense);
        assert_eq!(e, Some(MediumError::Removed));
        SenseData::medium_not_present().write_to(&mut want);
        assert_eq!(sense, want);
        // Cancelled by the 10 s timeout: ABORTED COMMAND.
        let (_, e) = irp_result(&rd, ntstatus::STATUS_CANCELLED, 0, IN, &mut sense);
        assert_eq!(e, Some(MediumError::TimedOut));
        SenseData::aborted_command().write_to(&mut want);
        assert_eq!(sense, want);
        // No memory: BUSY, no sense.
        let (c, e) = irp_result(
            &rd,
            ntstatus::STATUS_INSUFFICIENT_RESOURCES,
            0,
            IN,
            &mut sense,
        );
        assert_eq!((c.srb_status, e), (status::BUSY, Some(MediumError::Busy)));
        // Autosense disabled: no sense bytes.
        let mut none = [0u8; 18];
        let (c, _) = irp_result(
            &rd,
            0xC000_0185,
            0,
            IN | SrbFlags::DISABLE_AUTOSENSE,
            &mut none,
        );
        assert_eq!((c.srb_status, c.sense_length), (status::ERROR, 0));
        assert_eq!(none, [0u8; 18]);
    }
}
