//! The adapter's LUN table: one LUN per accepted image, built at PASSIVE_LEVEL, read-only during
//! I/O.

use crate::discovery;
use crate::medium::ImageMedium;
use crate::rvblk_log;
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicU8, Ordering};
use rvblk_core::image::MemoryImage;
use rvblk_core::scsi::{Medium, ScsiTarget};

pub const MAX_LUNS: usize = rvblk_core::discovery::MAX_IMAGES;
/// Image `n` is target `n`, LUN 0 on path 0: each target answers REPORT LUNS with LUN 0 only
/// (`rvblk_core::scsi`), and class drivers enumerate LUNs from that answer.
pub const LUNS_PER_TARGET: usize = 1;
pub const MAX_TARGETS: usize = MAX_LUNS;

pub struct Lun {
    pub target: ScsiTarget,
    pub medium: ImageMedium,
    /// First bytes of the image as discovery saw them, re-checked at the first I/O
    /// (`docs/loaders.md` §10 rule 29).
    first_bytes: [u8; 64],
    /// Rule 29 state: UNVERIFIED until the first I/O, then VERIFIED or CHANGED.
    verified: AtomicU8,
    /// An image that changed since discovery, or could not be mapped again, stays offline.
    offline: bool,
}

const UNVERIFIED: u8 = 0;
const VERIFIED: u8 = 1;
const CHANGED: u8 = 2;

impl Lun {
    /// Rule 29, at the first I/O (any IRQL ≤ DISPATCH_LEVEL: only reads the mapped image). Two
    /// CPUs racing here both compare; the result is the same.
    pub fn still_intact(&self, index: usize) -> bool {
        match self.verified.load(Ordering::Acquire) {
            VERIFIED => return true,
            CHANGED => return false,
            _ => {}
        }
        let n = (self.target.image().length as usize).min(64);
        let mut now = [0u8; 64];
        let same = self.medium.read(0, &mut now[..n]).is_ok() && now[..n] == self.first_bytes[..n];
        if same {
            self.verified.store(VERIFIED, Ordering::Release);
        } else if self.verified.swap(CHANGED, Ordering::AcqRel) != CHANGED {
            rvblk_log!(
                "lun {}: image changed since discovery; refusing I/O to it",
                index
            );
        }
        same
    }
}

/// Which images to expose (the XP SCSIPORT flavour hides hard-disk images during text-mode setup
/// unless asked, `docs/peers.md` §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExposePolicy {
    pub disks: bool,
}

impl ExposePolicy {
    pub const ALL: Self = Self { disks: true };
}

pub struct Adapter {
    luns: ArrayVec<Lun, MAX_LUNS>,
}

impl Adapter {
    pub const fn empty() -> Self {
        Self {
            luns: ArrayVec::new_const(),
        }
    }

    /// Discovers and maps every image into `self` (built in place: the table is too big for a
    /// kernel stack). Contract: PASSIVE_LEVEL, `self` empty.
    #[inline(never)]
    pub fn discover(&mut self, policy: ExposePolicy) {
        let adapter = self;
        let Some(found) = discovery::run() else {
            return;
        };
        for f in found.images.iter() {
            let image: MemoryImage = f.image;
            if !policy.disks && image.kind == rvblk_core::image::DeviceKind::Disk {
                rvblk_log!(
                    "not exposing disk image at phys_base={:#x} in setup mode (set disks=on to expose it)",
                    image.phys_base
                );
                continue;
            }
            let Some(medium) = ImageMedium::map(&image) else {
                rvblk_log!(
                    "refused: source={} phys_base={:#x} length={:#x} reason=cannot map the image (MmMapIoSpace failed)",
                    image.source,
                    image.phys_base,
                    image.length
                );
                continue;
            };
            let mut first_bytes = [0u8; 64];
            let n = (image.length as usize).min(64);
            if medium.read(0, &mut first_bytes[..n]).is_err() {
                let mut m = medium;
                m.unmap();
                continue;
            }
            let n_lun = adapter.luns.len();
            rvblk_log!(
                "lun {}: kind={} block_size={} blocks={} read_only={} source={} phys_base={:#x} length={:#x}",
                n_lun,
                image.kind,
                image.block_size(),
                image.blocks(),
                u8::from(image.is_read_only()),
                image.source,
                image.phys_base,
                image.length
            );
            adapter.luns.push(Lun {
                target: ScsiTarget::new(image),
                medium,
                first_bytes,
                verified: AtomicU8::new(UNVERIFIED),
                offline: false,
            });
        }
        rvblk_log!("{} image(s) exposed", adapter.luns.len());
    }

    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// The LUN at a SCSI address, if it exists, is online and still holds what discovery saw.
    pub fn lun(&self, path: u8, target: u8, lun: u8) -> Option<&Lun> {
        if path != 0 || lun != 0 {
            return None;
        }
        let index = usize::from(target);
        self.luns
            .get(index)
            .filter(|l| !l.offline && l.still_intact(index))
    }

    /// Unmaps every image and forgets them. Contract: no I/O in flight, IRQL ≤ DISPATCH_LEVEL.
    pub fn release(&mut self) {
        for lun in &mut self.luns {
            lun.medium.unmap();
        }
        self.luns.clear();
    }
}
