//! Which of the disks Windows enumerated holds a disk-backed image (`docs/loaders.md`
//! §3.11, `docs/ventoy.md` §2.4 step 6). Decided by evidence only: exactly one disk must match
//! and none may contradict the loader's record, otherwise the image is refused with the reason.
//!
//! * **Ventoy** records the 16 bytes at LBA 0 + 0x180, the NT signature at LBA 0 + 0x1B8 and the
//!   disk size. A disk matches when its LBA 0 carries that ID; it then must also have the
//!   signature (if recorded), the size, the sector size the extents use and room for every
//!   extent, or the evidence contradicts.
//! * **GRUB4DOS** records only the BIOS drive. A disk matches when every extent fits on it and
//!   the image's own content reads back through the extents: "CD001" (or a UDF "BEA01") in the
//!   volume descriptor at image sector 16 for a CD, the 0x55AA boot signature at image offset
//!   510 for a hard disk or floppy. If the port knows the BIOS number Windows associated with a
//!   disk, a different number excludes it, and the same number without the content contradicts.
//!
//! A GPT disk GUID is not evidence for either loader (neither records one; Ventoy's ID lives in
//! the protective MBR of GPT installs too), so it is not an input.

use core::fmt;

use crate::image::{DeviceKind, DiskBackedImage, DiskEvidence};

use super::memory::le32;
use super::Unreadable;

/// A disk the port saw arrive (a disk-class device), as far as identification needs it.
pub trait BackingDisk {
    /// Size in bytes.
    fn size_bytes(&self) -> u64;
    /// Logical sector size in bytes.
    fn sector_size(&self) -> u32;
    /// The BIOS drive number Windows associated with this disk (firmware disk information), if
    /// the port has it.
    fn bios_drive(&self) -> Option<u8> {
        None
    }
    /// Read `buf.len()` bytes at byte `offset` (the port reads whole sectors underneath).
    /// Identification reads at most two 512-byte pieces per disk.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Unreadable>;
}

impl<T: BackingDisk + ?Sized> BackingDisk for &T {
    fn size_bytes(&self) -> u64 {
        (**self).size_bytes()
    }
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn bios_drive(&self) -> Option<u8> {
        (**self).bios_drive()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        (**self).read(offset, buf)
    }
}

/// Why no disk was picked. Indices refer to the candidate slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentifyRefusal {
    /// The port has no candidate disks (yet).
    NoCandidates,
    /// No candidate carries the evidence.
    NoneMatched,
    /// No candidate matched, and these could not be read (so none can be ruled in).
    Unreadable { disk: usize },
    /// Two candidates carry the evidence: refusing is the only safe choice.
    Ambiguous { first: usize, second: usize },
    /// A candidate carries part of the evidence and contradicts the rest.
    Contradicts { disk: usize, what: &'static str },
}

impl fmt::Display for IdentifyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdentifyRefusal::NoCandidates => f.write_str("no disk has arrived"),
            IdentifyRefusal::NoneMatched => f.write_str("no disk matches the loader's record"),
            IdentifyRefusal::Unreadable { disk } => {
                write!(f, "no disk matched; disk {disk} could not be read")
            }
            IdentifyRefusal::Ambiguous { first, second } => {
                write!(f, "disks {first} and {second} both match")
            }
            IdentifyRefusal::Contradicts { disk, what } => {
                write!(f, "disk {disk} contradicts the loader's record: {what}")
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verdict {
    Match,
    NoMatch,
    Unreadable,
    Contradiction(&'static str),
}

/// Pick the one disk among `disks` that holds `image`, or say why not.
pub fn identify_backing_disk<D: BackingDisk>(
    image: &DiskBackedImage,
    disks: &[D],
) -> Result<usize, IdentifyRefusal> {
    if disks.is_empty() {
        return Err(IdentifyRefusal::NoCandidates);
    }
    let mut matched: Option<usize> = None;
    let mut unreadable: Option<usize> = None;
    for (i, d) in disks.iter().enumerate() {
        let v = match image.evidence {
            DiskEvidence::Ventoy {
                disk_id,
                mbr_signature,
                disk_size,
            } => ventoy_verdict(image, d, &disk_id, mbr_signature, disk_size),
            DiskEvidence::BiosDrive => grub4dos_verdict(image, d),
        };
        match v {
            Verdict::Match => {
                if let Some(first) = matched {
                    return Err(IdentifyRefusal::Ambiguous { first, second: i });
                }
                matched = Some(i);
            }
            Verdict::Contradiction(what) => {
                return Err(IdentifyRefusal::Contradicts { disk: i, what })
            }
            Verdict::Unreadable => unreadable = unreadable.or(Some(i)),
            Verdict::NoMatch => {}
        }
    }
    match (matched, unreadable) {
        (Some(i), _) => Ok(i),
        (None, Some(disk)) => Err(IdentifyRefusal::Unreadable { disk }),
        (None, None) => Err(IdentifyRefusal::NoneMatched),
    }
}

/// Every extent fits on `d` in the sector size the extents count in.
fn extents_fit<D: BackingDisk>(image: &DiskBackedImage, d: &D) -> bool {
    d.sector_size() == image.sector_size
        && image.extents.iter().all(|e| {
            e.start
                .checked_add(e.sectors)
                .and_then(|end| end.checked_mul(u64::from(image.sector_size)))
                .is_some_and(|end| end <= d.size_bytes())
        })
}

fn ventoy_verdict<D: BackingDisk>(
    image: &DiskBackedImage,
    d: &D,
    disk_id: &[u8; 16],
    mbr_signature: Option<u32>,
    disk_size: u64,
) -> Verdict {
    let mut lba0 = [0u8; 512];
    if d.read(0, &mut lba0).is_err() {
        return Verdict::Unreadable;
    }
    if &lba0[0x180..0x190] != disk_id {
        return Verdict::NoMatch;
    }
    if let Some(sig) = mbr_signature {
        if le32(&lba0, 0x1B8) != sig {
            return Verdict::Contradiction("NT disk signature differs");
        }
    }
    if d.size_bytes() != disk_size {
        return Verdict::Contradiction("disk size differs");
    }
    if !extents_fit(image, d) {
        return Verdict::Contradiction("extents do not fit the disk");
    }
    Verdict::Match
}

fn grub4dos_verdict<D: BackingDisk>(image: &DiskBackedImage, d: &D) -> Verdict {
    if !extents_fit(image, d) {
        return Verdict::NoMatch;
    }
    let hint = d.bios_drive();
    if hint.is_some_and(|h| h != image.bios_drive) {
        return Verdict::NoMatch;
    }
    let content = match image.kind {
        DeviceKind::CdRom => read_image(image, d, 16 * 2048, 6).map(|b| {
            let id = &b[1..6];
            id == b"CD001" || id == b"BEA01"
        }),
        DeviceKind::Disk | DeviceKind::Floppy => {
            read_image(image, d, 510, 2).map(|b| b[0] == 0x55 && b[1] == 0xAA)
        }
    };
    match (content, hint) {
        (Err(Unreadable), _) => Verdict::Unreadable,
        (Ok(true), _) => Verdict::Match,
        (Ok(false), Some(_)) => {
            Verdict::Contradiction("the BIOS disk the loader named does not hold the image")
        }
        (Ok(false), None) => Verdict::NoMatch,
    }
}

/// Read `len` (≤ 8) image bytes at image offset `off` through the extents. Extents are whole
/// sectors and the fields read lie within one 512-byte sector, so they never straddle two.
fn read_image<D: BackingDisk>(
    image: &DiskBackedImage,
    d: &D,
    off: u64,
    len: usize,
) -> Result<[u8; 8], Unreadable> {
    let mut buf = [0u8; 8];
    match image.locate(off) {
        Some((disk_off, run)) if run >= len as u64 => {
            d.read(disk_off, &mut buf[..len])?;
            Ok(buf)
        }
        _ => Err(Unreadable),
    }
}
