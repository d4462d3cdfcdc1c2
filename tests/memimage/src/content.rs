//! Image-content markers that discovery sniffs (`docs/loaders.md` §9 F3): only the few sectors it
//! reads are planted, so multi-GiB images stay sparse.

use crate::PhysMem;

/// ISO9660: primary volume descriptor at image + 16 × 2048 with `volume_blocks` as the volume
/// space size, and the set terminator at block 17.
pub fn plant_iso9660(mem: &mut PhysMem, phys: u64, volume_blocks: u32) {
    let mut pvd = vec![0u8; 2048];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[40..51].copy_from_slice(b"MEMTEST_ISO");
    pvd[80..84].copy_from_slice(&volume_blocks.to_le_bytes());
    pvd[84..88].copy_from_slice(&volume_blocks.to_be_bytes());
    pvd[128..130].copy_from_slice(&2048u16.to_le_bytes());
    pvd[130..132].copy_from_slice(&2048u16.to_be_bytes());
    mem.write(phys + 16 * 2048, &pvd);
    let mut term = vec![0u8; 2048];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    mem.write(phys + 17 * 2048, &term);
}

/// El Torito boot record descriptor at block 17 and the terminator moved to block 18 (for a
/// bootable ISO; call after [`plant_iso9660`]).
pub fn plant_el_torito_brvd(mem: &mut PhysMem, phys: u64, catalog_lba: u32) {
    let mut brvd = vec![0u8; 2048];
    brvd[1..6].copy_from_slice(b"CD001");
    brvd[6] = 1;
    brvd[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
    brvd[0x47..0x4B].copy_from_slice(&catalog_lba.to_le_bytes());
    mem.write(phys + 17 * 2048, &brvd);
    let mut term = vec![0u8; 2048];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    mem.write(phys + 18 * 2048, &term);
}

/// A UDF-only volume recognition sequence: BEA01, NSR02 (or NSR03), TEA01 at blocks 16–18.
pub fn plant_udf_vrs(mem: &mut PhysMem, phys: u64, nsr03: bool) {
    for (i, id) in [
        &b"BEA01"[..],
        if nsr03 { b"NSR03" } else { b"NSR02" },
        b"TEA01",
    ]
    .iter()
    .enumerate()
    {
        let mut d = [0u8; 8];
        d[1..6].copy_from_slice(id);
        d[6] = 1;
        mem.write(phys + (16 + i as u64) * 2048, &d);
    }
}

/// MBR with NT disk signature and up to 4 partitions `(type, first_lba, sectors)`, 0x55AA.
pub fn plant_mbr(mem: &mut PhysMem, phys: u64, disk_signature: u32, partitions: &[(u8, u32, u32)]) {
    let mut s = vec![0u8; 512];
    s[0] = 0xEB;
    s[1] = 0x3C;
    s[2] = 0x90;
    s[0x1B8..0x1BC].copy_from_slice(&disk_signature.to_le_bytes());
    for (i, &(ty, lba, count)) in partitions.iter().take(4).enumerate() {
        let e = 446 + 16 * i;
        s[e] = if i == 0 { 0x80 } else { 0 };
        s[e + 4] = ty;
        s[e + 8..e + 12].copy_from_slice(&lba.to_le_bytes());
        s[e + 12..e + 16].copy_from_slice(&count.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    mem.write(phys, &s);
}

/// The observed 8 MiB test HDD's MBR (`docs/loaders-observed.md` §1): one type 0x83 partition,
/// LBA 128…16383, disk signature 0x4D454D54.
pub fn plant_observed_hdd_mbr(mem: &mut PhysMem, phys: u64) {
    plant_mbr(mem, phys, 0x4D45_4D54, &[(0x83, 128, 16384 - 128)]);
}

/// Protective MBR + primary GPT header at LBA 1.
pub fn plant_gpt(mem: &mut PhysMem, phys: u64, total_sectors: u64) {
    plant_mbr(
        mem,
        phys,
        0,
        &[(
            0xEE,
            1,
            u32::try_from(total_sectors - 1).unwrap_or(u32::MAX),
        )],
    );
    let mut h = vec![0u8; 92];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&(total_sectors - 1).to_le_bytes());
    h[40..48].copy_from_slice(&34u64.to_le_bytes());
    h[48..56].copy_from_slice(&(total_sectors - 34).to_le_bytes());
    mem.write(phys + 512, &h);
}

/// A FAT12 1.44 MB boot sector with BPB and 0x55AA.
pub fn plant_fat12_floppy_bpb(mem: &mut PhysMem, phys: u64) {
    let mut s = vec![0u8; 512];
    s[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    s[3..11].copy_from_slice(b"MSDOS5.0");
    s[11..13].copy_from_slice(&512u16.to_le_bytes());
    s[13] = 1;
    s[14..16].copy_from_slice(&1u16.to_le_bytes());
    s[16] = 2;
    s[17..19].copy_from_slice(&224u16.to_le_bytes());
    s[19..21].copy_from_slice(&2880u16.to_le_bytes());
    s[21] = 0xF0;
    s[510] = 0x55;
    s[511] = 0xAA;
    mem.write(phys, &s);
}

/// The observed test image tag at the start of each 512-byte block (`PATISO-%08X-` etc.): writes
/// it to the first block only, so the image is recognisable in dumps.
pub fn plant_pattern_tag(mem: &mut PhysMem, phys: u64, tag: &str, block: u32) {
    mem.write(phys, format!("{tag}-{block:08X}-").as_bytes());
}
