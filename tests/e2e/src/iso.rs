//! A minimal, deterministic ISO 9660 image with an El Torito no-emulation boot entry.
//!
//! Written here rather than by xorriso so the bytes depend on nothing but this code, and so every
//! 512-byte block outside the volume structures carries the `PATISO` tag of its *absolute* block
//! number within the ISO (the system area, the rest of the boot image and the data file), which
//! makes a misplaced block nameable.
//!
//! Layout, in 2048-byte logical blocks:
//!
//! | LBA | Contents |
//! |---|---|
//! | 0–15 | system area: pattern |
//! | 16 | primary volume descriptor (`CD001`) |
//! | 17 | El Torito boot record volume descriptor → catalog at LBA 22 |
//! | 18 | volume descriptor set terminator |
//! | 19, 20 | type L and type M path tables (root only) |
//! | 21 | root directory: `BOOT.BIN;1`, `BOOT.CAT;1`, `PATTERN.BIN;1` |
//! | 22 | boot catalog: validation entry + no-emulation initial entry, load segment 0, 4 sectors |
//! | 23 | `BOOT.BIN`: the boot program (first 512 bytes), pattern after it |
//! | 24… | `PATTERN.BIN`: pattern to the end of the image |

use crate::pattern;

/// ISO 9660 logical block size.
pub const SECTOR: usize = 2048;
const PVD_LBA: u32 = 16;
const BRVD_LBA: u32 = 17;
const TERM_LBA: u32 = 18;
const LPATH_LBA: u32 = 19;
const MPATH_LBA: u32 = 20;
const ROOT_LBA: u32 = 21;
const CATALOG_LBA: u32 = 22;
/// Where the El Torito boot image lives.
pub const BOOT_LBA: u32 = 23;
/// Where the pattern file starts.
pub const DATA_LBA: u32 = 24;
/// Volume identifier.
pub const VOLUME_ID: &str = "RVBLK_E2E";

/// Builds an ISO of `total_sectors` 2048-byte blocks (> `DATA_LBA`) whose El Torito boot image is
/// `boot_sector` (at most 510 bytes; 0x55AA follows; loaded as 4 × 512 bytes at 0000:7C00).
pub fn build(boot_sector: &[u8], total_sectors: u32) -> Vec<u8> {
    assert!(boot_sector.len() <= 510, "boot sector too long");
    assert!(total_sectors > DATA_LBA, "ISO too small");
    let mut iso = vec![0u8; total_sectors as usize * SECTOR];
    pattern::fill("PATISO", 0, &mut iso);
    let data_len = (total_sectors - DATA_LBA) * SECTOR as u32;

    // Volume descriptors and tables are structures, not pattern.
    for lba in PVD_LBA..=CATALOG_LBA {
        sector(&mut iso, lba).fill(0);
    }
    let boot = sector(&mut iso, BOOT_LBA);
    boot[..512].fill(0);
    boot[..boot_sector.len()].copy_from_slice(boot_sector);
    boot[510] = 0x55;
    boot[511] = 0xAA;

    // Primary volume descriptor (ECMA-119 8.4).
    let pvd = sector(&mut iso, PVD_LBA);
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    padded(&mut pvd[8..40], b"RVBLK-E2E");
    padded(&mut pvd[40..72], VOLUME_ID.as_bytes());
    both32(&mut pvd[80..88], total_sectors);
    both16(&mut pvd[120..124], 1);
    both16(&mut pvd[124..128], 1);
    both16(&mut pvd[128..132], SECTOR as u16);
    both32(&mut pvd[132..140], 10);
    pvd[140..144].copy_from_slice(&LPATH_LBA.to_le_bytes());
    pvd[148..152].copy_from_slice(&MPATH_LBA.to_be_bytes());
    dir_record(&mut pvd[156..190], &[0], ROOT_LBA, SECTOR as u32, true);
    padded(&mut pvd[190..813], b"");
    for date in [813, 830] {
        pvd[date..date + 16].copy_from_slice(b"2020010100000000");
    }
    for date in [847, 864] {
        pvd[date..date + 16].copy_from_slice(b"0000000000000000");
    }
    pvd[881] = 1;

    // El Torito boot record volume descriptor.
    let brvd = sector(&mut iso, BRVD_LBA);
    brvd[0] = 0;
    brvd[1..6].copy_from_slice(b"CD001");
    brvd[6] = 1;
    brvd[7..7 + 23].copy_from_slice(b"EL TORITO SPECIFICATION");
    brvd[71..75].copy_from_slice(&CATALOG_LBA.to_le_bytes());

    let term = sector(&mut iso, TERM_LBA);
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;

    // Path tables: one record, the root (directory number 1, its own parent).
    let lpath = sector(&mut iso, LPATH_LBA);
    lpath[0] = 1;
    lpath[2..6].copy_from_slice(&ROOT_LBA.to_le_bytes());
    lpath[6..8].copy_from_slice(&1u16.to_le_bytes());
    let mpath = sector(&mut iso, MPATH_LBA);
    mpath[0] = 1;
    mpath[2..6].copy_from_slice(&ROOT_LBA.to_be_bytes());
    mpath[6..8].copy_from_slice(&1u16.to_be_bytes());

    // Root directory.
    let root = sector(&mut iso, ROOT_LBA);
    let mut at = 0;
    for (name, lba, len, dir) in [
        (&b"\0"[..], ROOT_LBA, SECTOR as u32, true),
        (&b"\x01"[..], ROOT_LBA, SECTOR as u32, true),
        (&b"BOOT.BIN;1"[..], BOOT_LBA, SECTOR as u32, false),
        (&b"BOOT.CAT;1"[..], CATALOG_LBA, SECTOR as u32, false),
        (&b"PATTERN.BIN;1"[..], DATA_LBA, data_len, false),
    ] {
        at += dir_record(&mut root[at..], name, lba, len, dir);
    }

    // Boot catalog: validation entry, then the initial/default entry.
    let cat = sector(&mut iso, CATALOG_LBA);
    cat[0] = 1; // header ID
    cat[1] = 0; // platform: 80x86
    cat[4..4 + 9].copy_from_slice(b"RVBLK E2E");
    cat[30] = 0x55;
    cat[31] = 0xAA;
    let sum = cat[..32].chunks(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    cat[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    cat[32] = 0x88; // bootable
    cat[33] = 0; // no emulation
    cat[34..36].copy_from_slice(&0u16.to_le_bytes()); // load segment 0 = 0x7C0
    cat[36] = 0; // system type
    cat[38..40].copy_from_slice(&4u16.to_le_bytes()); // 4 virtual 512-byte sectors
    cat[40..44].copy_from_slice(&BOOT_LBA.to_le_bytes());
    iso
}

fn sector(iso: &mut [u8], lba: u32) -> &mut [u8] {
    let at = lba as usize * SECTOR;
    &mut iso[at..at + SECTOR]
}

fn padded(field: &mut [u8], text: &[u8]) {
    field.fill(b' ');
    field[..text.len()].copy_from_slice(text);
}

fn both16(field: &mut [u8], v: u16) {
    field[..2].copy_from_slice(&v.to_le_bytes());
    field[2..4].copy_from_slice(&v.to_be_bytes());
}

fn both32(field: &mut [u8], v: u32) {
    field[..4].copy_from_slice(&v.to_le_bytes());
    field[4..8].copy_from_slice(&v.to_be_bytes());
}

/// Writes one directory record (ECMA-119 9.1) and returns its length.
fn dir_record(out: &mut [u8], name: &[u8], lba: u32, len: u32, dir: bool) -> usize {
    let rec_len = (33 + name.len() + 1) & !1;
    let r = &mut out[..rec_len];
    r.fill(0);
    r[0] = rec_len as u8;
    both32(&mut r[2..10], lba);
    both32(&mut r[10..18], len);
    r[18..25].copy_from_slice(&[120, 1, 1, 0, 0, 0, 0]); // 2020-01-01 00:00:00 UTC
    r[25] = if dir { 2 } else { 0 };
    both16(&mut r[28..32], 1);
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    rec_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_where_readers_look() {
        let iso = build(&[0xEA; 440], 100);
        assert_eq!(&iso[16 * SECTOR + 1..16 * SECTOR + 6], b"CD001");
        assert_eq!(
            u32::from_le_bytes(iso[16 * SECTOR + 80..][..4].try_into().unwrap()),
            100
        );
        assert_eq!(
            &iso[17 * SECTOR + 7..17 * SECTOR + 30],
            b"EL TORITO SPECIFICATION"
        );
        let cat = &iso[22 * SECTOR..][..64];
        let sum = cat[..32].chunks(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!(pattern::tag_of(&iso[..512]), Some("PATISO-00000000-"));
        assert_eq!(
            pattern::tag_of(&iso[24 * SECTOR..]),
            Some("PATISO-00000060-")
        );
        assert_eq!(
            pattern::tag_of(&iso[23 * SECTOR + 512..]),
            Some("PATISO-0000005D-")
        );
        assert_eq!(build(&[1, 2, 3], 100), build(&[1, 2, 3], 100));
    }
}
