//! The adapter's LUN table: one LUN per accepted image, built at PASSIVE_LEVEL, read-only during
//! I/O.

use crate::discovery;
use crate::medium::ImageMedium;
use crate::rvblk_log;
use arrayvec::ArrayVec;
use rvblk_core::image::MemoryImage;
use rvblk_core::scsi::{Medium, ScsiTarget};

pub const MAX_LUNS: usize = rvblk_core::discovery::MAX_IMAGES;
/// LUNs per target: SCSIPORT on XP addresses at most 8 logical units per target, so image `n`
/// sits at target `n / 8`, LUN `n % 8` on both ports.
pub const LUNS_PER_TARGET: usize = 8;
pub const MAX_TARGETS: usize = MAX_LUNS.div_ceil(LUNS_PER_TARGET);

pub struct Lun {
    pub target: ScsiTarget,
    pub medium: ImageMedium,
    /// First bytes of the image as discovery saw them, re-checked before the first I/O
    /// (`loaders.md` §10 rule 29).
    first_bytes: [u8; 64],
    /// Set when the re-check failed: the LUN then answers NOT READY-style errors via NO_DEVICE.
    offline: bool,
}

/// Which images to expose (the XP SCSIPORT flavour hides hard-disk images during text-mode setup
/// unless asked, `anchors.md` §6).
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
        Self { luns: ArrayVec::new_const() }
    }

    /// Discovers and maps every image into `self` (built in place: the table is too big for a
    /// kernel stack). Contract: PASSIVE_LEVEL, `self` empty.
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
            adapter.luns.push(Lun { target: ScsiTarget::new(image), medium, first_bytes, offline: false });
        }
        rvblk_log!("{} image(s) exposed", adapter.luns.len());
    }

    /// Rule 29: the image must still hold what discovery saw. Called once before I/O starts
    /// (HwInitialize); a changed image is taken offline.
    pub fn verify_images(&mut self) {
        for (i, lun) in self.luns.iter_mut().enumerate() {
            let n = (lun.target.image().length as usize).min(64);
            let mut now = [0u8; 64];
            if lun.medium.read(0, &mut now[..n]).is_err() || now[..n] != lun.first_bytes[..n] {
                rvblk_log!("lun {}: image changed since discovery; taking it offline", i);
                lun.offline = true;
            }
        }
    }

    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// The LUN at a SCSI address, if it exists and is online.
    pub fn lun(&self, path: u8, target: u8, lun: u8) -> Option<&Lun> {
        if path != 0 || usize::from(lun) >= LUNS_PER_TARGET {
            return None;
        }
        let index = usize::from(target) * LUNS_PER_TARGET + usize::from(lun);
        self.luns.get(index).filter(|l| !l.offline)
    }

    /// ScsiStopAdapter: unmap every image but remember the LUN table. Contract: no I/O in flight,
    /// IRQL ≤ DISPATCH_LEVEL.
    pub fn suspend(&mut self) {
        for lun in &mut self.luns {
            lun.medium.unmap();
        }
    }

    /// ScsiRestartAdapter: map the images again (MmMapIoSpace allows DISPATCH_LEVEL). An image
    /// that cannot be mapped goes offline.
    pub fn resume(&mut self) {
        for (i, lun) in self.luns.iter_mut().enumerate() {
            match ImageMedium::map(lun.target.image()) {
                Some(m) => lun.medium = m,
                None => {
                    rvblk_log!("lun {}: cannot map the image again after restart; offline", i);
                    lun.offline = true;
                }
            }
        }
    }

    /// Unmaps every image and forgets them. Contract: no I/O in flight, IRQL ≤ DISPATCH_LEVEL.
    pub fn release(&mut self) {
        for lun in &mut self.luns {
            lun.medium.unmap();
        }
        self.luns.clear();
    }
}
