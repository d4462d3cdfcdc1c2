//! Content sniffing (`docs/loaders.md` §9 F3, rule 28).
//!
//! Every read stays inside the candidate's own range, which already passed the OS-RAM test
//! (rule 23), and reads at most a few hundred bytes: the volume descriptors at blocks 16…47 for
//! a CD, sector 0 and the GPT header at sector 1 for a disk.

use crate::image::{DeviceKind, MemoryImage};

use super::memory::{le16, le32, le64, Mem};
use super::PhysicalMemory;

/// Volume descriptors examined from block 16 on (ISO9660 set, then a UDF VRS).
const MAX_DESCRIPTORS: u64 = 32;

/// What a CD candidate holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CdContent {
    /// ISO9660 descriptors; `volume_blocks` = PVD volume space size (0 if no PVD seen).
    Iso { volume_blocks: u32 },
    /// A UDF volume recognition sequence (BEA01 then NSR02/NSR03), no ISO9660 PVD.
    Udf,
    /// Neither.
    Nothing,
    /// Block 16 could not be read.
    Unreadable,
}

/// Read `buf.len()` bytes at `off` within the image, never past its end.
fn read_in<M: PhysicalMemory + ?Sized>(
    mem: &Mem<'_, M>,
    img: &MemoryImage,
    off: u64,
    buf: &mut [u8],
) -> bool {
    match off.checked_add(buf.len() as u64) {
        Some(end) if end <= img.length => match img.phys_base.checked_add(off) {
            Some(p) => mem.read(p, buf).is_ok(),
            None => false,
        },
        _ => false,
    }
}

pub(crate) fn sniff_cd<M: PhysicalMemory + ?Sized>(
    mem: &Mem<'_, M>,
    img: &MemoryImage,
) -> CdContent {
    let mut iso = false;
    let mut volume_blocks = 0u32;
    let mut bea = false;
    let mut udf = false;
    for block in 16..16 + MAX_DESCRIPTORS {
        let mut d = [0u8; 88];
        if !read_in(mem, img, block * 2048, &mut d) {
            if block == 16 && img.length >= 17 * 2048 {
                return CdContent::Unreadable;
            }
            break;
        }
        match &d[1..6] {
            b"CD001" => {
                iso = true;
                // Type 1 = primary volume descriptor; volume space size (LE) at offset 80.
                if d[0] == 1 && volume_blocks == 0 {
                    volume_blocks = le32(&d, 80);
                }
            }
            b"BEA01" => bea = true,
            b"NSR02" | b"NSR03" if bea => udf = true,
            b"BOOT2" | b"CDW02" => {}
            b"TEA01" => break,
            _ => break,
        }
    }
    if iso {
        CdContent::Iso { volume_blocks }
    } else if udf {
        CdContent::Udf
    } else {
        CdContent::Nothing
    }
}

/// Warnings for a hard-disk image (rule 28: never a refusal). Returns a description of the
/// first problem, if any.
///
/// The exposed size is **not** derived from the MBR/GPT: partitions need not end at the end of
/// the disk (free space, a GPT backup header placed by the tool that wrote the image), so the
/// loader's size is kept and only a partition or GPT header reaching past it is reported (such
/// an image was probably truncated; the SCSI layer fails reads beyond the capacity).
pub(crate) fn check_disk<M: PhysicalMemory + ?Sized>(
    mem: &Mem<'_, M>,
    img: &MemoryImage,
) -> Option<&'static str> {
    let sectors = img.length / 512;
    let mut mbr = [0u8; 512];
    if !read_in(mem, img, 0, &mut mbr) {
        return Some("sector 0 unreadable");
    }
    let boot_sig = mbr[510] == 0x55 && mbr[511] == 0xAA;
    let mut hdr = [0u8; 92];
    let gpt = read_in(mem, img, 512, &mut hdr) && &hdr[0..8] == b"EFI PART";
    if gpt {
        let alternate = le64(&hdr, 32);
        let last_usable = le64(&hdr, 48);
        if last_usable >= sectors || alternate >= sectors {
            return Some("GPT describes more sectors than the image holds");
        }
    }
    if !boot_sig && !gpt {
        return Some("no MBR/boot-sector signature and no GPT header");
    }
    // A partition table: all four status bytes are 0x00 or 0x80.
    let entries = (0..4).map(|i| &mbr[446 + 16 * i..462 + 16 * i]);
    if boot_sig && entries.clone().all(|e| e[0] == 0 || e[0] == 0x80) {
        for e in entries {
            let ty = e[4];
            let start = u64::from(le32(e, 8));
            let count = u64::from(le32(e, 12));
            if ty != 0 && ty != 0xEE && count != 0 && start + count > sectors {
                return Some("MBR partition extends past the end of the image");
            }
        }
    }
    None
}

/// Warnings for a floppy image (rule 28: never a refusal; rule 25 size warning).
pub(crate) fn check_floppy<M: PhysicalMemory + ?Sized>(
    mem: &Mem<'_, M>,
    img: &MemoryImage,
) -> Option<&'static str> {
    if img.length > FLOPPY_WARN_BYTES {
        return Some("larger than a 2.88 MB floppy");
    }
    let mut b = [0u8; 512];
    if !read_in(mem, img, 0, &mut b) {
        return Some("sector 0 unreadable");
    }
    let boot_sig = b[510] == 0x55 && b[511] == 0xAA;
    let bps = le16(&b, 11);
    let spc = b[13];
    let bpb = matches!(bps, 512 | 1024 | 2048 | 4096) && spc != 0 && spc.is_power_of_two();
    if !boot_sig && !bpb {
        return Some("no boot signature and no plausible BPB");
    }
    None
}

/// Rule 25: floppies above 2.88 MB plus slack are unusual (warning only).
pub(crate) const FLOPPY_WARN_BYTES: u64 = 3 * 1024 * 1024;

/// Kind-dispatch for the warning checks.
pub(crate) fn check_non_cd<M: PhysicalMemory + ?Sized>(
    mem: &Mem<'_, M>,
    img: &MemoryImage,
) -> Option<&'static str> {
    match img.kind {
        DeviceKind::Disk => check_disk(mem, img),
        DeviceKind::Floppy => check_floppy(mem, img),
        DeviceKind::CdRom => None,
    }
}
