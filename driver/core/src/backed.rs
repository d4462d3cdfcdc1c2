//! Serving a disk-backed image (`docs/driver.md` "Disk-backed images"): the decisions the
//! ports' asynchronous path makes without Windows.
//!
//! * [`LunState`] — the exposure state machine of one disk-backed LUN: waiting for its disk,
//!   identified, live, removed; and [`admit`], what HwStartIo does with a command in each state.
//! * [`Plan`] — how an image byte range becomes disk I/O through the extent list: direct
//!   transfers where the disk offset and length are whole disk sectors, one-sector bounce
//!   transfers for the rest (never a byte outside the extents).
//! * [`medium_error`] — which NTSTATUS of a failed disk I/O means what for the SCSI answer
//!   ([`MediumError::sense`] builds the sense data).

use crate::image::DiskBackedImage;
use crate::scsi::cdb::Opcode;
use crate::scsi::{MediumError, SenseData};

/// Exposure of one disk-backed LUN. Transitions only go forward: waiting → identified → live →
/// removed (identified or live → removed when the disk leaves). A removed disk stays removed
/// for this adapter's life: a stick that comes back is a new disk, and exposing it again under
/// the old LUN without a fresh identification could serve another stick's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LunState {
    /// Discovered; no disk identified yet. Invisible (no device at its target).
    Waiting = 0,
    /// Its disk is identified and opened; the port has not announced it yet. Invisible.
    Identified = 1,
    /// Announced (bus change): served.
    Live = 2,
    /// Its disk is gone: the LUN stays visible and answers NOT READY / MEDIUM NOT PRESENT.
    Removed = 3,
}

impl LunState {
    /// The state stored as `v` (e.g. in an atomic byte); unknown values read as `Removed`, the
    /// state that serves nothing.
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => LunState::Waiting,
            1 => LunState::Identified,
            2 => LunState::Live,
            _ => LunState::Removed,
        }
    }

    /// Whether the LUN answers INQUIRY / REPORT LUNS at its target.
    pub const fn visible(self) -> bool {
        matches!(self, LunState::Live | LunState::Removed)
    }

    /// Whether `self → next` is allowed.
    pub const fn may_become(self, next: LunState) -> bool {
        matches!(
            (self, next),
            (LunState::Waiting, LunState::Identified)
                | (LunState::Identified, LunState::Live)
                | (LunState::Identified | LunState::Live, LunState::Removed)
        )
    }

    /// The state after a medium access failed with `e`: only a removal changes it.
    pub const fn after_failure(self, e: MediumError) -> Self {
        match e {
            MediumError::Removed if self.may_become(LunState::Removed) => LunState::Removed,
            _ => self,
        }
    }
}

/// What HwStartIo does with an EXECUTE_SCSI command for a disk-backed LUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not exposed: SRB_STATUS_NO_DEVICE (as an empty target).
    NoDevice,
    /// Answered at once by the target, like a RAM image (INQUIRY, READ CAPACITY, MODE SENSE,
    /// TEST UNIT READY, …): the medium is not touched.
    Now,
    /// Moves medium data: handed to the worker, completed later.
    Queue,
    /// CHECK CONDITION with this sense at once.
    Refuse(SenseData),
}

/// Decides [`Admission`] for `cdb` in `state`. A removed LUN still identifies itself (INQUIRY,
/// REPORT LUNS, REQUEST SENSE) so that the class driver sees a unit without medium, and answers
/// everything else NOT READY / MEDIUM NOT PRESENT, never touching the disk again.
pub fn admit(state: LunState, cdb: &[u8]) -> Admission {
    let op = cdb.first().copied().and_then(Opcode::from_u8);
    match state {
        LunState::Waiting | LunState::Identified => Admission::NoDevice,
        LunState::Live => match op {
            Some(op) if op.moves_medium_data() => Admission::Queue,
            _ => Admission::Now,
        },
        LunState::Removed => match op {
            Some(Opcode::Inquiry | Opcode::ReportLuns | Opcode::RequestSense) | None => {
                Admission::Now
            }
            Some(_) => Admission::Refuse(SenseData::medium_not_present()),
        },
    }
}

/// NTSTATUS values a failed disk I/O may carry that mean something specific here.
pub mod ntstatus {
    pub const STATUS_NO_SUCH_DEVICE: u32 = 0xC000_000E;
    pub const STATUS_NO_MEDIA_IN_DEVICE: u32 = 0xC000_0013;
    pub const STATUS_DELETE_PENDING: u32 = 0xC000_0056;
    pub const STATUS_DEVICE_NOT_CONNECTED: u32 = 0xC000_009D;
    pub const STATUS_INSUFFICIENT_RESOURCES: u32 = 0xC000_009A;
    pub const STATUS_DEVICE_DOES_NOT_EXIST: u32 = 0xC000_00C0;
    pub const STATUS_CANCELLED: u32 = 0xC000_0120;
    pub const STATUS_DEVICE_REMOVED: u32 = 0xC000_02B6;
    /// A file whose volume went away fails every later I/O with this (file-backed LUNs,
    /// `docs/control.md` §10.1).
    pub const STATUS_FILE_INVALID: u32 = 0xC000_0098;
}

/// What a failed disk I/O's NTSTATUS (`status` as its 32-bit pattern, not a success) means:
/// the disk is gone (removal, no such device, delete pending, …) → [`MediumError::Removed`];
/// no memory for the IRP → [`MediumError::Busy`] (retried); cancelled → `TimedOut` (only the
/// port's own timeout cancels); anything else → `Unreadable` (MEDIUM ERROR).
pub const fn medium_error(status: u32) -> MediumError {
    use ntstatus::*;
    match status {
        STATUS_NO_SUCH_DEVICE
        | STATUS_NO_MEDIA_IN_DEVICE
        | STATUS_DELETE_PENDING
        | STATUS_DEVICE_NOT_CONNECTED
        | STATUS_DEVICE_DOES_NOT_EXIST
        | STATUS_DEVICE_REMOVED
        | STATUS_FILE_INVALID => MediumError::Removed,
        STATUS_INSUFFICIENT_RESOURCES => MediumError::Busy,
        STATUS_CANCELLED => MediumError::TimedOut,
        _ => MediumError::Unreadable,
    }
}

/// The vendor string of a STORAGE_DEVICE_DESCRIPTOR (`bytes` as returned by
/// IOCTL_STORAGE_QUERY_PROPERTY; VendorIdOffset at byte 12, 0 = none; the string is
/// NUL-terminated inside the returned bytes), without surrounding spaces. `None` when absent or
/// malformed.
pub fn descriptor_vendor(bytes: &[u8]) -> Option<&[u8]> {
    let at = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?) as usize;
    if at == 0 {
        return None;
    }
    let tail = bytes.get(at..)?;
    let s = &tail[..tail.iter().position(|&b| b == 0)?];
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    Some(&s[start..end])
}

/// Whether a disk is one of rvblk's own LUNs (its vendor is rvblk's INQUIRY vendor): such a disk
/// never backs an image, and reading it to identify another image would only recurse into the
/// driver.
pub fn is_own_disk(descriptor: &[u8]) -> bool {
    let ours = crate::scsi::inquiry::VENDOR;
    let end = ours.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    descriptor_vendor(descriptor).is_some_and(|v| v.eq_ignore_ascii_case(&ours[..end]))
}

/// Largest direct transfer in one disk request: keeps each IRP's time bounded, so one timeout
/// value fits every request.
pub const MAX_DIRECT: usize = 1 << 20;

/// One disk request of a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `len` bytes between the caller's buffer at `buf` and the disk at byte `disk`; `disk` and
    /// `len` are whole disk sectors.
    Direct { disk: u64, buf: usize, len: usize },
    /// One disk sector at byte `disk` (aligned) through a bounce buffer; the request's bytes are
    /// the sector's `[skip, skip + len)` and the caller's buffer at `buf`. A write reads the
    /// sector, patches those bytes and writes it back; the sector lies inside the extent.
    Bounce {
        disk: u64,
        skip: usize,
        buf: usize,
        len: usize,
    },
}

/// Why a range cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The range reaches past the image.
    OutsideImage,
    /// The disk's sector size does not divide the extents' sector size (a bounce sector could
    /// then straddle an extent's end), or is not a power of two.
    SectorSize,
}

/// The disk requests that move image bytes `[offset, offset + len)`, in image order.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    image: &'a DiskBackedImage,
    pos: u64,
    end: u64,
    buf: usize,
    sector: u64,
}

impl<'a> Plan<'a> {
    /// Plans `len` bytes at image offset `offset` on a disk with `disk_sector`-byte sectors.
    pub fn new(
        image: &'a DiskBackedImage,
        offset: u64,
        len: usize,
        disk_sector: u32,
    ) -> Result<Self, PlanError> {
        if !disk_sector.is_power_of_two() || !image.sector_size.is_multiple_of(disk_sector) {
            return Err(PlanError::SectorSize);
        }
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= image.length)
            .ok_or(PlanError::OutsideImage)?;
        Ok(Self {
            image,
            pos: offset,
            end,
            buf: 0,
            sector: u64::from(disk_sector),
        })
    }
}

impl Iterator for Plan<'_> {
    type Item = Result<Step, PlanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let Some((disk, run)) = self.image.locate(self.pos) else {
            self.pos = self.end;
            return Some(Err(PlanError::OutsideImage));
        };
        let run = run.min(self.end - self.pos);
        // `sector` is a power of two (checked in `new`): a mask, not a 64-bit division, which
        // on x86 is a call into the kernel's `_aullrem` for every request.
        let within_sector = self.sector - 1;
        let skip = disk & within_sector;
        let step = if skip == 0 && run >= self.sector {
            let len = (run & !within_sector).min(MAX_DIRECT as u64) as usize;
            Step::Direct {
                disk,
                buf: self.buf,
                len,
            }
        } else {
            // Up to the sector's end only: the next step then starts aligned.
            let len = run.min(self.sector - skip) as usize;
            Step::Bounce {
                disk: disk - skip,
                skip: skip as usize,
                buf: self.buf,
                len,
            }
        };
        let moved = match step {
            Step::Direct { len, .. } | Step::Bounce { len, .. } => len,
        };
        self.pos += moved as u64;
        self.buf += moved;
        Some(Ok(step))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::{
        BackingSource, DeviceKind, DiskBackedImage, DiskEvidence, Extent, WritePolicy,
    };
    use crate::scsi::{AdditionalSense, SenseKey};
    use arrayvec::ArrayVec;
    use std::vec::Vec;

    /// A GRUB4DOS disk-backed image for unit tests (also `crate::fastio`'s and `crate::readahead`'s).
    pub(crate) fn image_with(
        kind: DeviceKind,
        write_policy: WritePolicy,
        sector: u32,
        extents: &[(u64, u64)],
        length: u64,
    ) -> DiskBackedImage {
        DiskBackedImage {
            kind,
            write_policy,
            source: BackingSource::Grub4Dos,
            bios_drive: 0x80,
            emulated_drive: 0x81,
            sector_size: sector,
            extents: extents
                .iter()
                .map(|&(start, sectors)| Extent { start, sectors })
                .collect::<ArrayVec<_, 64>>(),
            length,
            evidence: DiskEvidence::BiosDrive,
            table_address: 0x1000,
            slot: 0,
        }
    }

    fn image(
        kind: DeviceKind,
        sector: u32,
        extents: &[(u64, u64)],
        length: u64,
    ) -> DiskBackedImage {
        image_with(kind, WritePolicy::ReadWrite, sector, extents, length)
    }

    fn steps(img: &DiskBackedImage, off: u64, len: usize, ss: u32) -> Vec<Step> {
        Plan::new(img, off, len, ss)
            .unwrap()
            .map(|s| s.unwrap())
            .collect()
    }

    /// Every byte of the request appears exactly once, at the right disk offset, inside an
    /// extent; every disk request is sector-aligned.
    fn check_cover(img: &DiskBackedImage, off: u64, len: usize, ss: u32) {
        let mut expect_buf = 0usize;
        for s in steps(img, off, len, ss) {
            let (disk_first, span, buf, n) = match s {
                Step::Direct { disk, buf, len } => (disk, len, buf, len),
                Step::Bounce {
                    disk,
                    skip,
                    buf,
                    len,
                } => {
                    assert!(skip + len <= ss as usize);
                    (disk, ss as usize, buf, len)
                }
            };
            assert_eq!(disk_first % u64::from(ss), 0);
            assert_eq!(span % ss as usize, 0);
            assert_eq!(buf, expect_buf);
            // The whole disk span lies inside one extent.
            let inside = img.extents.iter().any(|e| {
                let a = e.start * u64::from(img.sector_size);
                let b = a + e.sectors * u64::from(img.sector_size);
                disk_first >= a && disk_first + span as u64 <= b
            });
            assert!(inside, "{s:?} leaves the extents");
            // The first request byte maps where locate says.
            let (want, _) = img.locate(off + buf as u64).unwrap();
            let got = match s {
                Step::Direct { disk, .. } => disk,
                Step::Bounce { disk, skip, .. } => disk + skip as u64,
            };
            assert_eq!(got, want);
            expect_buf += n;
        }
        assert_eq!(expect_buf, len);
    }

    #[test]
    fn aligned_contiguous_is_one_direct_request() {
        let img = image(DeviceKind::CdRom, 512, &[(100, 4000)], 4000 * 512);
        assert_eq!(
            steps(&img, 2048, 65536, 512),
            [Step::Direct {
                disk: 100 * 512 + 2048,
                buf: 0,
                len: 65536
            }]
        );
    }

    #[test]
    fn fragments_split_at_extent_ends() {
        let img = image(DeviceKind::Disk, 512, &[(10, 3), (50, 5)], 8 * 512);
        assert_eq!(
            steps(&img, 512, 4 * 512, 512),
            [
                Step::Direct {
                    disk: 11 * 512,
                    buf: 0,
                    len: 1024
                },
                Step::Direct {
                    disk: 50 * 512,
                    buf: 1024,
                    len: 1024
                },
            ]
        );
        check_cover(&img, 0, 8 * 512, 512);
    }

    #[test]
    fn small_blocks_on_big_sectors_bounce_head_and_tail() {
        // A 512-byte-block disk image on a 4096-byte-sector disk (Ventoy IMG on a 4Kn stick).
        let img = image(DeviceKind::Disk, 4096, &[(8, 4), (100, 4)], 8 * 4096);
        let s = steps(&img, 512, 4096 * 2, 4096);
        assert_eq!(
            s[0],
            Step::Bounce {
                disk: 8 * 4096,
                skip: 512,
                buf: 0,
                len: 3584
            }
        );
        assert_eq!(
            s[1],
            Step::Direct {
                disk: 9 * 4096,
                buf: 3584,
                len: 4096
            }
        );
        assert_eq!(
            s[2],
            Step::Bounce {
                disk: 10 * 4096,
                skip: 0,
                buf: 3584 + 4096,
                len: 512
            }
        );
        assert_eq!(s.len(), 3);
        for off in (0..8 * 4096u64).step_by(512) {
            for len in [512usize, 1024, 4096, 5120, 12288] {
                if off + len as u64 <= 8 * 4096 {
                    check_cover(&img, off, len, 4096);
                }
            }
        }
    }

    #[test]
    fn long_transfers_are_cut_into_bounded_requests() {
        let img = image(DeviceKind::Disk, 512, &[(0, 8192)], 8192 * 512);
        let s = steps(&img, 0, 4 << 20, 512);
        assert_eq!(s.len(), 4);
        assert!(s
            .iter()
            .all(|s| matches!(s, Step::Direct { len, .. } if *len == MAX_DIRECT)));
    }

    #[test]
    fn bad_ranges_and_sector_sizes_are_refused() {
        let img = image(DeviceKind::Disk, 512, &[(0, 16)], 16 * 512);
        assert_eq!(
            Plan::new(&img, 15 * 512, 1024, 512).unwrap_err(),
            PlanError::OutsideImage
        );
        assert_eq!(
            Plan::new(&img, u64::MAX, 1, 512).unwrap_err(),
            PlanError::OutsideImage
        );
        // A 4096-byte disk under 512-byte extents: a bounce sector could leave the extent.
        assert_eq!(
            Plan::new(&img, 0, 512, 4096).unwrap_err(),
            PlanError::SectorSize
        );
        assert_eq!(
            Plan::new(&img, 0, 512, 0).unwrap_err(),
            PlanError::SectorSize
        );
        assert_eq!(Plan::new(&img, 0, 0, 512).unwrap().count(), 0);
    }

    fn descriptor(vendor: &[u8]) -> Vec<u8> {
        let mut d = std::vec![0u8; 40];
        d[12..16].copy_from_slice(&40u32.to_le_bytes());
        d.extend_from_slice(vendor);
        d.push(0);
        d
    }

    #[test]
    fn own_disks_are_recognised_by_vendor() {
        assert!(is_own_disk(&descriptor(b"RVBLK   ")));
        assert!(is_own_disk(&descriptor(b"rvblk")));
        assert!(!is_own_disk(&descriptor(b"Harness")));
        assert!(!is_own_disk(&descriptor(b"RVBLKX")));
        assert_eq!(
            descriptor_vendor(&descriptor(b"  Harness ")),
            Some(&b"Harness"[..])
        );
        // No offset, an offset past the buffer, no NUL: no vendor, not ours.
        assert_eq!(descriptor_vendor(&[0u8; 40]), None);
        let mut past = descriptor(b"RVBLK");
        past[12] = 200;
        assert!(!is_own_disk(&past));
        let mut unterminated = descriptor(b"RVBLK");
        unterminated.pop();
        assert!(!is_own_disk(&unterminated));
        assert!(!is_own_disk(&[1, 2, 3]));
    }

    #[test]
    fn state_machine_goes_forward_only() {
        use LunState::*;
        let all = [Waiting, Identified, Live, Removed];
        let allowed = [
            (Waiting, Identified),
            (Identified, Live),
            (Identified, Removed),
            (Live, Removed),
        ];
        for a in all {
            for b in all {
                assert_eq!(a.may_become(b), allowed.contains(&(a, b)), "{a:?} -> {b:?}");
            }
            assert_eq!(LunState::from_u8(a as u8), a);
        }
        assert_eq!(LunState::from_u8(200), Removed);
        assert!(!Waiting.visible() && !Identified.visible());
        assert!(Live.visible() && Removed.visible());
        assert_eq!(Live.after_failure(MediumError::Removed), Removed);
        assert_eq!(Live.after_failure(MediumError::Unreadable), Live);
        assert_eq!(Live.after_failure(MediumError::TimedOut), Live);
        assert_eq!(Waiting.after_failure(MediumError::Removed), Waiting);
    }

    #[test]
    fn admission_per_state() {
        let read10 = [0x28u8, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let write10 = [0x2Au8, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let inquiry = [0x12u8, 0, 0, 0, 36, 0];
        let tur = [0u8; 6];
        let capacity = [0x25u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for s in [LunState::Waiting, LunState::Identified] {
            for cdb in [&read10[..], &inquiry, &tur] {
                assert_eq!(admit(s, cdb), Admission::NoDevice);
            }
        }
        assert_eq!(admit(LunState::Live, &read10), Admission::Queue);
        assert_eq!(admit(LunState::Live, &write10), Admission::Queue);
        assert_eq!(admit(LunState::Live, &inquiry), Admission::Now);
        assert_eq!(admit(LunState::Live, &tur), Admission::Now);
        assert_eq!(admit(LunState::Live, &capacity), Admission::Now);
        assert_eq!(admit(LunState::Live, &[0xFF]), Admission::Now);
        let gone = Admission::Refuse(SenseData::medium_not_present());
        assert_eq!(admit(LunState::Removed, &read10), gone);
        assert_eq!(admit(LunState::Removed, &tur), gone);
        assert_eq!(admit(LunState::Removed, &capacity), gone);
        assert_eq!(admit(LunState::Removed, &inquiry), Admission::Now);
    }

    #[test]
    fn failure_statuses_become_the_contracted_sense() {
        let key = |st: u32, write: bool| {
            let s = medium_error(st).sense(write).unwrap();
            (s.key, s.code)
        };
        let not_present = (SenseKey::NotReady, AdditionalSense::MEDIUM_NOT_PRESENT);
        for st in [0xC000_000E, 0xC000_02B6, 0xC000_0056, 0xC000_0013] {
            assert_eq!(key(st, false), not_present);
            assert_eq!(key(st, true), not_present);
        }
        assert_eq!(
            key(0xC000_0185, false),
            (
                SenseKey::MediumError,
                AdditionalSense::UNRECOVERED_READ_ERROR
            )
        );
        assert_eq!(
            key(0xC000_0185, true),
            (SenseKey::MediumError, AdditionalSense::WRITE_ERROR)
        );
        assert_eq!(
            key(0xC000_0120, false),
            (SenseKey::AbortedCommand, AdditionalSense::NONE)
        );
        assert_eq!(medium_error(0xC000_009A), MediumError::Busy);
        assert_eq!(MediumError::Busy.sense(false), None);
        let bytes = SenseData::medium_not_present().to_bytes();
        assert_eq!((bytes[2], bytes[12], bytes[13]), (0x02, 0x3A, 0x00));
    }
}
