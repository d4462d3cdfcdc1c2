//! The adapter's LUN table: one LUN per exposed image, built at PASSIVE_LEVEL, read-only during
//! I/O. Which images are exposed is the core's decision ([`Exposure`]); rule 29 is the core's
//! [`FirstIoCheck`].

use crate::discovery;
use crate::medium::ImageMedium;
use crate::physmem::PoolBox;
use crate::rvblk_log;
use arrayvec::ArrayVec;
use rvblk_core::discovery::Discovered;
use rvblk_core::integrity::{Fingerprint, FirstIoCheck, Verdict};
use rvblk_core::log::{LunLine, RefusalLine};
use rvblk_core::policy::Exposure;
use rvblk_core::scsi::ScsiTarget;
use rvblk_irql::Passive;

pub const MAX_LUNS: usize = rvblk_core::discovery::MAX_IMAGES;
/// Image `n` is target `n`, LUN 0 on path 0: each target answers REPORT LUNS with LUN 0 only
/// (`rvblk_core::scsi`), and class drivers enumerate LUNs from that answer.
pub const LUNS_PER_TARGET: usize = 1;
/// RAM images first, then the disk-backed ones (`crate::backed`).
pub const MAX_TARGETS: usize = MAX_LUNS + rvblk_core::discovery::MAX_DISK_IMAGES;

pub struct Lun {
    pub target: ScsiTarget,
    pub medium: ImageMedium,
    /// Rule 29 (`docs/loaders.md` §10): the image must be unchanged at its first I/O.
    first_io: FirstIoCheck,
}

/// What a SCSI address leads to.
pub enum LunLookup<'a> {
    Ready(&'a Lun),
    /// Rule 29 could not be checked just now; the port retries the request.
    Busy,
    /// No LUN there, or its image changed since discovery.
    NoDevice,
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

    /// Discovers and maps every exposed image into `self` (built in place: the table is too big
    /// for a kernel stack). `self` is empty. Returns the discovery result, whose disk-backed
    /// images the port serves separately (`crate::backed`).
    #[inline(never)]
    pub fn discover(&mut self, exposure: Exposure, irql: &Passive) -> Option<PoolBox<Discovered>> {
        let found = discovery::run(irql)?;
        for f in found.images.iter() {
            let image = f.image;
            if !exposure.exposes(image.kind) {
                rvblk_log!(
                    "not exposing {} image at phys_base={:#x} in setup mode (set disks=on to expose it)",
                    image.kind,
                    image.phys_base
                );
                continue;
            }
            let Some(mut medium) = ImageMedium::map(&image, irql) else {
                rvblk_log!(
                    "{}",
                    RefusalLine {
                        source: image.source,
                        phys_base: image.phys_base,
                        length: image.length,
                        reason: "cannot map the image (MmMapIoSpace failed)",
                    }
                );
                continue;
            };
            let Ok(fingerprint) = Fingerprint::read(&medium, image.length) else {
                medium.unmap();
                continue;
            };
            let index = self.luns.len();
            rvblk_log!("{}", LunLine::of(index as u32, &image));
            self.luns.push(Lun {
                target: ScsiTarget::new(image),
                medium,
                first_io: FirstIoCheck::new(fingerprint, image.length),
            });
        }
        rvblk_log!("{} image(s) exposed", self.luns.len());
        Some(found)
    }

    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// Every LUN's target, in table order (image `n` is target `n`), for the control
    /// interface's LIST LUNS.
    pub fn targets(&self) -> impl Iterator<Item = &ScsiTarget> {
        self.luns.iter().map(|l| &l.target)
    }

    /// The LUN at a SCSI address, if it exists and still holds what discovery saw.
    pub fn lun(&self, path: u8, target: u8, lun: u8) -> LunLookup<'_> {
        let index = usize::from(target);
        let Some(l) = self.luns.get(index).filter(|_| path == 0 && lun == 0) else {
            return LunLookup::NoDevice;
        };
        match l.first_io.verify(&l.medium) {
            Verdict::Intact => LunLookup::Ready(l),
            Verdict::Retry => LunLookup::Busy,
            Verdict::Changed { first_report } => {
                if first_report {
                    rvblk_log!(
                        "lun {}: image changed since discovery; refusing I/O to it",
                        index
                    );
                }
                LunLookup::NoDevice
            }
        }
    }

    /// Unmaps every image and forgets them. No I/O in flight, IRQL ≤ DISPATCH_LEVEL.
    pub fn release(&mut self) {
        for lun in &mut self.luns {
            lun.medium.unmap();
        }
        self.luns.clear();
    }
}
