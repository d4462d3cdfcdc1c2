//! The oracle's images, the same bytes for QEMU and the harness: a 4 MiB ISO 9660 image (CD
//! profile territory: far below `CD_MAX_BYTES`), a 16 MiB MBR disk and a 1.44 MB FAT12
//! floppy. Content is a position-dependent pattern, so any misplaced READ shows, with the
//! structures discovery sniffs planted at their places (`tests/memimage` content helpers).

use crate::script::DeviceKind;
use rvblk_memimage::{content, PhysMem};

pub const CD_BYTES: u64 = 4 << 20;
pub const DISK_BYTES: u64 = 16 << 20;
pub const FLOPPY_BYTES: u64 = 1440 << 10;

fn pattern(len: u64, tag: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len as usize);
    for i in 0..len / 8 {
        let x = ((i * 8) ^ tag).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 3);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// The image bytes for `kind` (the empty CD has none).
pub fn image(kind: DeviceKind) -> Option<Vec<u8>> {
    let mut mem = PhysMem::new();
    let (len, tag) = match kind {
        DeviceKind::Cd => {
            content::plant_iso9660(&mut mem, 0, (CD_BYTES / 2048) as u32);
            (CD_BYTES, 1)
        }
        DeviceKind::Disk => {
            content::plant_mbr(&mut mem, 0, 0x4F52_4143, &[(0x0C, 2048, 30720)]);
            (DISK_BYTES, 2)
        }
        DeviceKind::Floppy => {
            content::plant_fat12_floppy_bpb(&mut mem, 0);
            (FLOPPY_BYTES, 3)
        }
        DeviceKind::EmptyCd => return None,
    };
    let mut v = pattern(len, tag);
    for p in mem.pages() {
        let b = mem.bytes(p, 4096);
        v[p as usize..p as usize + 4096].copy_from_slice(&b);
    }
    Some(v)
}

/// Logical blocks the script addresses. The empty CD gets the CD's script: its answers are
/// compared with rvblk's CD.
pub fn blocks(kind: DeviceKind) -> u64 {
    match kind {
        DeviceKind::Cd | DeviceKind::EmptyCd => CD_BYTES / 2048,
        DeviceKind::Disk => DISK_BYTES / 512,
        DeviceKind::Floppy => FLOPPY_BYTES / 512,
    }
}
