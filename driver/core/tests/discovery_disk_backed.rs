//! GRUB4DOS 16-slot layouts, disk-backed slots and fragment maps
//! (`docs/loaders.md` §3.3, §3.6, §3.9–§3.10), and backing-disk identification
//! (§3.11).

#[path = "discovery_common/mod.rs"]
mod common;

use common::{bios_input, run, Log};
use rvblk_core::discovery::{
    identify_backing_disk, Discovered, DiskRefusalReason, Event, IdentifyRefusal, MAX_DISK_IMAGES,
};
use rvblk_core::image::{
    BackingSource, DeviceKind, DiskBackedImage, DiskEvidence, Extent, WritePolicy,
};
use rvblk_memimage::{
    plant_observed_hdd_mbr, FragmentRecord, G4dSlot, Grub4DosBlock, PhysMem, SparseDisk,
};

const MIB8: u64 = 8 << 20;
const ISO_SECTORS: u64 = 8332; // 2083 × 2048 bytes in 512-byte TO sectors (observed, no --mem)

fn bios_mem() -> PhysMem {
    let mut m = PhysMem::new();
    m.with_bios_defaults();
    m
}

fn ram_hdd(i: u64) -> G4dSlot {
    G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * MIB8, MIB8)
}

/// Install `blk` with an MBR planted for every RAM hard-disk slot.
fn install(blk: &Grub4DosBlock) -> PhysMem {
    let mut m = bios_mem();
    for s in &blk.slots {
        if s.to_drive == 0xFF && s.to_cylinder & 0x6000 == 0 {
            plant_observed_hdd_mbr(&mut m, s.phys());
        }
    }
    blk.install(&mut m);
    m
}

fn go(m: &PhysMem) -> (Discovered, Log) {
    run(m, &bios_input(&[]))
}

fn disk_reasons(d: &Discovered) -> Vec<DiskRefusalReason> {
    d.disk_refused.iter().map(|r| r.reason).collect()
}

fn ext(start: u64, sectors: u64) -> Extent {
    Extent { start, sectors }
}

fn extents(img: &DiskBackedImage) -> Vec<Extent> {
    img.extents.to_vec()
}

// ------------------------------------------------------------------ 8 vs 16 slots (§3.3)

/// Eight full RAM slots in the first table, so the second-table candidate is examined.
fn eight_full() -> Vec<G4dSlot> {
    (0..8).map(ram_hdd).collect()
}

#[test]
fn eight_slot_build_cd_buffer_tail_is_not_taken_as_slots() {
    let plausible = |from: u8| G4dSlot::disk_backed_hdd(from, 0x80, 0x800, 0x1000).to_bytes();
    let mut not_packed = vec![0u8; 24];
    not_packed.extend_from_slice(&plausible(0x90));
    not_packed.resize(216, 0);
    let mut bad_terminator: Vec<u8> = (0..8).flat_map(|i| plausible(0x90 + i)).collect();
    bad_terminator.extend_from_slice(&plausible(0x98));
    let mut repeats = plausible(0x83).to_vec(); // 0x83 is in the first table
    repeats.resize(216, 0);
    // Directory records / file data of an ISO: bytes that decode as huge sector numbers.
    let text: Vec<u8> = b"ISOLINUX.BIN;1 BOOT.CAT;1 README.TXT;1 "
        .iter()
        .cycle()
        .take(216)
        .copied()
        .collect();
    for (tail, why) in [
        (text, "entry is not a plausible slot"),
        (not_packed, "slots not packed"),
        (bad_terminator, "terminator slot not zero"),
        (repeats, "from_drive repeats"),
    ] {
        let mut blk = Grub4DosBlock::eight_with_int13end(0x9CC00, tail);
        blk.slots = eight_full();
        let m = install(&blk);
        let (d, log) = go(&m);
        assert_eq!(d.images.len(), 8, "{why}");
        assert!(
            d.disk_backed.is_empty() && d.disk_refused.is_empty(),
            "{why}"
        );
        assert!(
            !log.any(|e| matches!(e, Event::SixteenSlotTable { .. })),
            "{why}"
        );
        assert!(
            log.any(
                |e| matches!(e, Event::SecondTableRejected { table, why: w, .. }
                if *table == 0x9CC00 + 0x3020 - 216 && *w == why)
            ),
            "{why}: {:?}",
            log.lines
        );
    }
}

#[test]
fn second_table_not_read_unless_the_first_is_full() {
    // Valid slots before `int13end`, but only 3 in the first table: GRUB4DOS packs slots, so
    // slot 9 cannot be in use.
    let tail: Vec<u8> = (0..2)
        .flat_map(|i| ram_hdd(10 + i).to_bytes())
        .chain(std::iter::repeat_n(0, 216 - 48))
        .collect();
    let mut blk = Grub4DosBlock::eight_with_int13end(0x9CC00, tail);
    blk.slots = (0..3).map(ram_hdd).collect();
    let mut m = install(&blk);
    plant_observed_hdd_mbr(&mut m, ram_hdd(10).phys());
    plant_observed_hdd_mbr(&mut m, ram_hdd(11).phys());
    let (d, log) = go(&m);
    assert_eq!(d.images.len(), 3);
    assert!(!log.any(|e| matches!(
        e,
        Event::SixteenSlotTable { .. } | Event::SecondTableRejected { .. }
    )));
}

#[test]
fn eight_slot_build_with_zero_tail_has_eight_slots() {
    let mut blk = Grub4DosBlock::eight_with_int13end(0x9CC00, vec![0; 216]);
    blk.slots = eight_full();
    let (d, log) = go(&install(&blk));
    assert_eq!(d.images.len(), 8);
    assert!(!log.any(|e| matches!(e, Event::SixteenSlotTable { .. })));
}

/// RAM and disk-backed slots in both tables, contiguous and fragmented, for both 16-slot
/// layouts (the fragment map sits at +0x148 in current builds, after the old `FRAGMENT` marker
/// in 2014–2021 builds).
fn mixed_sixteen(mut blk: Grub4DosBlock) -> Grub4DosBlock {
    let mut slots: Vec<G4dSlot> = (0..6).map(ram_hdd).collect();
    // Slot 6: an ISO mapped from (hd0) without --mem, contiguous (observed bytes).
    slots.push(G4dSlot::disk_backed_cd(0xFF, 0x80, 0x8E4, ISO_SECTORS));
    // Slot 7: an HDD image on (hd0), fragmented into two runs.
    slots.push(G4dSlot::disk_backed_hdd(0x86, 0x80, 0x4000, 0x3000).fragmented());
    // Second table: two RAM disks, a fragmented CD on (hd1), a contiguous HDD on (hd1).
    slots.push(ram_hdd(8));
    slots.push(ram_hdd(9));
    slots.push(G4dSlot::disk_backed_cd(0xA0, 0x81, 0, ISO_SECTORS).fragmented());
    slots.push(G4dSlot::disk_backed_hdd(0x8B, 0x81, 0x20_0000, 0x1_0000).fake_write());
    blk.slots = slots;
    blk.fragments = vec![
        FragmentRecord {
            from: 0x86,
            to: 0x80,
            extents: vec![(0x4000, 0x1000), (0x9000, 0x2000)],
        },
        FragmentRecord {
            from: 0xA0,
            to: 0x81,
            // Three runs; the last two continue each other and merge into one extent.
            extents: vec![(0x7_0000, 4000), (0x1_0000, 4000), (0x1_0000 + 4000, 332)],
        },
    ];
    blk
}

#[test]
fn sixteen_slot_builds_with_ram_and_disk_backed_slots_in_both_tables() {
    for blk in [
        mixed_sixteen(Grub4DosBlock::sixteen(0x9CC00)),
        mixed_sixteen(Grub4DosBlock::sixteen_old(0x9CC00)),
    ] {
        let m = install(&blk);
        let (d, log) = go(&m);
        let ctx = format!("{:?}: {:#?}", blk.layout, log.lines);
        assert_eq!(d.images.len(), 8, "{ctx}");
        assert_eq!(
            d.images.iter().map(|f| f.image.slot).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5, 8, 9]
        );
        assert!(d.disk_refused.is_empty(), "{ctx} {:?}", d.disk_refused);
        let db = &d.disk_backed;
        assert_eq!(db.len(), 4, "{ctx}");
        assert_eq!(
            db.iter()
                .map(|i| (i.slot, i.emulated_drive, i.bios_drive, i.kind))
                .collect::<Vec<_>>(),
            vec![
                (6, 0xFF, 0x80, DeviceKind::CdRom),
                (7, 0x86, 0x80, DeviceKind::Disk),
                (10, 0xA0, 0x81, DeviceKind::CdRom),
                (11, 0x8B, 0x81, DeviceKind::Disk),
            ]
        );
        assert_eq!(extents(&db[0]), vec![ext(0x8E4, ISO_SECTORS)]);
        assert_eq!(db[0].length, 2083 * 2048);
        assert_eq!(db[0].blocks(), 2083);
        assert!(db[0].is_read_only());
        assert_eq!(
            extents(&db[1]),
            vec![ext(0x4000, 0x1000), ext(0x9000, 0x2000)]
        );
        assert_eq!(db[1].length, 0x3000 * 512);
        assert_eq!(db[1].write_policy, WritePolicy::ReadWrite);
        assert_eq!(
            extents(&db[2]),
            vec![ext(0x7_0000, 4000), ext(0x1_0000, 4332)]
        );
        assert_eq!(db[3].write_policy, WritePolicy::DiscardWrites);
        for i in db {
            assert_eq!(i.source, BackingSource::Grub4Dos);
            assert_eq!(i.sector_size, 512);
            assert_eq!(i.evidence, DiskEvidence::BiosDrive);
            assert!(i.table_address >= 0x9CC00);
        }
        assert_eq!(
            log.count(|e| matches!(e, Event::DiskBacked { .. })),
            4,
            "{ctx}"
        );
    }
}

#[test]
fn disk_backed_locate_maps_image_offsets_through_extents() {
    let blk = mixed_sixteen(Grub4DosBlock::sixteen(0x9CC00));
    let (d, _) = go(&install(&blk));
    let img = &d.disk_backed[1]; // 0x1000 sectors at 0x4000, then 0x2000 at 0x9000
    assert_eq!(img.locate(0), Some((0x4000 * 512, 0x1000 * 512)));
    assert_eq!(img.locate(0x1000 * 512 - 1), Some((0x5000 * 512 - 1, 1)));
    assert_eq!(img.locate(0x1000 * 512), Some((0x9000 * 512, 0x2000 * 512)));
    assert_eq!(img.locate(img.length), None);
}

// ------------------------------------------------------------------ slot rules (§3.9)

#[test]
fn disk_backed_slot_kinds_sector_sizes_and_refusals() {
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = vec![
        // CD image on a 512-byte disk with a count that is not a multiple of 4: 2083 blocks.
        G4dSlot::disk_backed_cd(0xFF, 0x80, 0x8E4, ISO_SECTORS + 1),
        // TO is a CD drive (bit 14): 2048-byte TO sectors.
        G4dSlot::disk_backed_cd(0xA1, 0x9F, 100, 2083).with_to_cylinder(0xE006),
        // Floppy image on a disk.
        G4dSlot::disk_backed_hdd(0x00, 0x80, 0x100, 2880),
        // In-situ and bifurcate mappings are not images.
        G4dSlot::disk_backed_hdd(0x81, 0x80, 0x3F, 0x1000).in_situ(),
        G4dSlot::disk_backed_hdd(0x82, 0x80, 0x3F, 0x1000).with_to_cylinder(0x9006),
        // A drive swap (count 0) is neither RAM nor an image.
        G4dSlot::swap(0x83, 0x80),
    ];
    let (d, _) = go(&install(&blk));
    let db = &d.disk_backed;
    assert_eq!(db.len(), 3);
    assert_eq!((db[0].kind, db[0].length), (DeviceKind::CdRom, 2083 * 2048));
    assert_eq!((db[1].kind, db[1].sector_size), (DeviceKind::CdRom, 2048));
    assert_eq!(db[1].length, 2083 * 2048);
    assert_eq!((db[2].kind, db[2].length), (DeviceKind::Floppy, 2880 * 512));
    assert_eq!(
        disk_reasons(&d),
        vec![DiskRefusalReason::InSitu, DiskRefusalReason::Bifurcate]
    );
    assert_eq!(d.disk_refused[0].emulated_drive, 0x81);
    assert_eq!(d.disk_refused[0].slot, 3);
}

#[test]
fn disk_backed_overflow_and_size_cap() {
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = vec![
        G4dSlot::disk_backed_hdd(0x80, 0x81, u64::MAX - 2, 0x10),
        G4dSlot::disk_backed_hdd(0x81, 0x82, 0x100, u64::MAX / 256),
        G4dSlot::disk_backed_hdd(0x82, 0x83, 1 << 41, 1 << 40),
        // 2 TiB image: above the 1 TiB cap.
        G4dSlot::disk_backed_hdd(0x84, 0x83, 0x800, 1 << 32),
        // A CD under one block.
        G4dSlot::disk_backed_cd(0xFF, 0x80, 0x800, 3),
    ];
    let (d, _) = go(&install(&blk));
    assert!(d.disk_backed.is_empty());
    use DiskRefusalReason::*;
    assert_eq!(
        disk_reasons(&d),
        vec![Overflow, Overflow, Overflow, TooLarge, TooSmall]
    );
}

// ------------------------------------------------------------------ fragment map (§3.6)

fn fragmented_with(records: Vec<FragmentRecord>, raw_map: Option<&[u8]>) -> Discovered {
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = vec![G4dSlot::disk_backed_hdd(0x81, 0x80, 0x4000, 0x3000).fragmented()];
    blk.fragments = records;
    let mut m = install(&blk);
    if let Some(raw) = raw_map {
        m.write(0x9CC00 + 0x148, raw);
    }
    go(&m).0
}

fn rec(from: u8, to: u8, extents: Vec<(u64, u64)>) -> FragmentRecord {
    FragmentRecord { from, to, extents }
}

#[test]
fn fragment_map_record_found_after_other_drives_records() {
    let d = fragmented_with(
        vec![
            rec(0x90, 0x80, vec![(1, 1)]),
            rec(0x81, 0x80, vec![(0x4000, 0x1000), (0x9000, 0x2000)]),
        ],
        None,
    );
    assert_eq!(
        extents(&d.disk_backed[0]),
        vec![ext(0x4000, 0x1000), ext(0x9000, 0x2000)]
    );
}

#[test]
fn fragment_map_validation() {
    use DiskRefusalReason::*;
    let cases: Vec<(Vec<FragmentRecord>, Option<Vec<u8>>, DiskRefusalReason)> = vec![
        // No record for the drive.
        (vec![rec(0x90, 0x80, vec![(1, 1)])], None, NoFragmentRecord),
        // The record names another TO drive.
        (
            vec![rec(0x81, 0x82, vec![(0x4000, 0x3000)])],
            None,
            BadFragmentRecord,
        ),
        // slot_len not 4 + 16n.
        (
            vec![],
            Some(vec![0x15, 0, 0x81, 0x80, 1, 2, 3]),
            BadFragmentRecord,
        ),
        // slot_len running past the 2 KiB map.
        (
            vec![],
            Some(vec![0xF4, 0x7F, 0x81, 0x80]),
            BadFragmentRecord,
        ),
        // Extents that do not add up to the slot's count.
        (
            vec![rec(0x81, 0x80, vec![(0x4000, 0x1000), (0x9000, 0x1000)])],
            None,
            ExtentTotal {
                extents_bytes: 0x2000 * 512,
                image_bytes: 0x3000 * 512,
            },
        ),
        // Overlapping extents.
        (
            vec![rec(0x81, 0x80, vec![(0x4000, 0x2000), (0x5000, 0x1000)])],
            None,
            OverlappingExtents,
        ),
        // An empty extent.
        (
            vec![rec(0x81, 0x80, vec![(0x4000, 0x3000), (0x9000, 0)])],
            None,
            EmptyExtent,
        ),
        // An extent whose end overflows.
        (
            vec![rec(
                0x81,
                0x80,
                vec![(u64::MAX - 5, 0x1000), (0x9000, 0x2000)],
            )],
            None,
            Overflow,
        ),
        // More extents than the driver keeps: 65 separate runs (the last one long enough for
        // the total to match the slot).
        (
            vec![rec(
                0x81,
                0x80,
                (0..65u64)
                    .map(|i| (0x10_0000 + 2 * i, if i == 64 { 0x3000 - 64 } else { 1 }))
                    .collect(),
            )],
            None,
            TooManyExtents { count: 65 },
        ),
    ];
    for (records, raw, want) in cases {
        let d = fragmented_with(records.clone(), raw.as_deref());
        assert!(d.disk_backed.is_empty(), "{records:?}");
        assert_eq!(disk_reasons(&d), vec![want], "{records:?} {raw:?}");
    }
}

#[test]
fn fragmented_slot_without_fragment_marker_is_refused() {
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.fragment = false;
    blk.slots = vec![G4dSlot::disk_backed_hdd(0x81, 0x80, 0x4000, 0x3000).fragmented()];
    let (d, _) = go(&install(&blk));
    assert_eq!(disk_reasons(&d), vec![DiskRefusalReason::NoFragmentRecord]);
}

#[test]
fn too_many_disk_backed_images_are_refused_not_dropped() {
    let mut blk = Grub4DosBlock::sixteen(0x9CC00);
    blk.slots = (0..12u64)
        .map(|i| G4dSlot::disk_backed_hdd(0x80 + i as u8, 0x90, 0x1000 * (i + 1), 0x800))
        .collect();
    let (d, _) = go(&install(&blk));
    assert_eq!(d.disk_backed.len(), MAX_DISK_IMAGES);
    assert_eq!(
        disk_reasons(&d),
        vec![DiskRefusalReason::TooManyImages; 12 - MAX_DISK_IMAGES]
    );
}

// ------------------------------------------------------------------ identification (§3.11)

fn g4d_image(kind: DeviceKind, extents: &[Extent], bios: u8) -> DiskBackedImage {
    let sectors: u64 = extents.iter().map(|e| e.sectors).sum();
    DiskBackedImage {
        kind,
        write_policy: WritePolicy::ReadOnly,
        source: BackingSource::Grub4Dos,
        bios_drive: bios,
        emulated_drive: 0xFF,
        sector_size: 512,
        extents: extents.iter().copied().collect(),
        length: sectors * 512 / u64::from(kind.block_size()) * u64::from(kind.block_size()),
        evidence: DiskEvidence::BiosDrive,
        table_address: 0x9CC20,
        slot: 0,
    }
}

const STICK: u64 = 16 << 30;

#[test]
fn identify_grub4dos_iso_by_its_volume_descriptor() {
    let ex = [ext(0x8E4, ISO_SECTORS)];
    let img = g4d_image(DeviceKind::CdRom, &ex, 0x80);
    let mut stick = SparseDisk::new(STICK);
    stick.plant_iso(&ex, 2083);
    let other = SparseDisk::new(500 << 30);
    assert_eq!(identify_backing_disk(&img, &[&other, &stick]), Ok(1));
    assert_eq!(identify_backing_disk(&img, &[&stick, &other]), Ok(0));
    assert_eq!(
        identify_backing_disk(&img, &[&other]),
        Err(IdentifyRefusal::NoneMatched)
    );
    assert_eq!(
        identify_backing_disk::<SparseDisk>(&img, &[]),
        Err(IdentifyRefusal::NoCandidates)
    );
}

#[test]
fn identify_two_matching_disks_is_ambiguous_unless_the_bios_number_decides() {
    let ex = [ext(0x8E4, ISO_SECTORS)];
    let img = g4d_image(DeviceKind::CdRom, &ex, 0x80);
    let mut stick = SparseDisk::new(STICK);
    stick.plant_iso(&ex, 2083);
    let clone = stick.clone();
    assert_eq!(
        identify_backing_disk(&img, &[&stick, &clone]),
        Err(IdentifyRefusal::Ambiguous {
            first: 0,
            second: 1
        })
    );
    let (a, b) = (stick.clone().bios(0x81), clone.bios(0x80));
    assert_eq!(identify_backing_disk(&img, &[&a, &b]), Ok(1));
    // The disk recorded as BIOS 0x80 without the image contradicts the loader's record.
    let empty80 = SparseDisk::new(STICK).bios(0x80);
    assert!(matches!(
        identify_backing_disk(&img, &[&stick, &empty80]),
        Err(IdentifyRefusal::Contradicts { disk: 1, .. })
    ));
}

#[test]
fn identify_fragmented_hdd_image_reads_content_through_the_extents() {
    // The boot signature at image offset 510 is in a one-sector first extent far from the rest.
    let ex = [ext(0x9000, 1), ext(0x4000, 0x2FFF)];
    let img = g4d_image(DeviceKind::Disk, &ex, 0x80);
    let mut stick = SparseDisk::new(STICK);
    stick.plant_boot_signature(&ex);
    // A decoy with the signature where an unfragmented image would have it.
    let mut decoy = SparseDisk::new(STICK);
    decoy.plant_boot_signature(&[ext(0x4000, 1)]);
    assert_eq!(identify_backing_disk(&img, &[&decoy, &stick]), Ok(1));

    // A CD whose volume descriptor (image byte 0x8000) is the first byte of the second extent.
    let cd_ex = [ext(0x100, 64), ext(0x5000, ISO_SECTORS - 64)];
    let cd = g4d_image(DeviceKind::CdRom, &cd_ex, 0x80);
    let mut s2 = SparseDisk::new(STICK);
    s2.plant_iso(&cd_ex, 2083);
    assert_eq!(identify_backing_disk(&cd, &[&s2]), Ok(0));
}

#[test]
fn identify_extents_past_the_disk_end_or_other_sector_size_do_not_match() {
    let ex = [ext(0x8E4, ISO_SECTORS)];
    let img = g4d_image(DeviceKind::CdRom, &ex, 0x80);
    let mut small = SparseDisk::new((0x8E4 + ISO_SECTORS - 1) * 512);
    small.plant_iso(&ex, 2083);
    let mut four_k = SparseDisk::new(STICK);
    four_k.sector_size = 4096;
    assert_eq!(
        identify_backing_disk(&img, &[&small, &four_k]),
        Err(IdentifyRefusal::NoneMatched)
    );
    // Exactly fitting is fine.
    let mut exact = SparseDisk::new((0x8E4 + ISO_SECTORS) * 512);
    exact.plant_iso(&ex, 2083);
    assert_eq!(identify_backing_disk(&img, &[&exact]), Ok(0));
}

#[test]
fn identify_unreadable_disk_is_reported_when_nothing_matches() {
    let ex = [ext(0x8E4, ISO_SECTORS)];
    let img = g4d_image(DeviceKind::CdRom, &ex, 0x80);
    let mut gone = SparseDisk::new(STICK);
    gone.broken = true;
    let other = SparseDisk::new(STICK);
    assert_eq!(
        identify_backing_disk(&img, &[&other, &gone]),
        Err(IdentifyRefusal::Unreadable { disk: 1 })
    );
    let mut stick = SparseDisk::new(STICK);
    stick.plant_iso(&ex, 2083);
    assert_eq!(identify_backing_disk(&img, &[&gone, &stick]), Ok(1));
}
