//! One or more golden tests per validation rule of `docs/loaders.md` §10 (named `ruleNN_*`), plus the
//! firmware gating and scan rules of §9.

#[path = "discovery_common/mod.rs"]
mod common;

use common::{bios_input, run, Log};
use rvblk_core::discovery::{
    image_fingerprint, Discovered, DiscoveryInput, Event, Firmware, FoundVia, MbftProblem,
    PhysRange, RefusalReason, SlotSkip, MAX_REFUSED,
};
use rvblk_core::image::{DeviceKind, LoaderSource, WritePolicy};
use rvblk_memimage::nfit::{Spa, NFIT_GUID_PERSISTENT_MEMORY};
use rvblk_memimage::{
    plant_gpt, plant_iso9660, plant_mbr, plant_observed_hdd_mbr, plant_udf_vrs, G4dSlot,
    Grub4DosBlock, Grub4EfiPage, MemdiskBlock, NfitBuilder, PhysMem,
    NFIT_GUID_PERSISTENT_VIRTUAL_CD, NFIT_GUID_VIRTUAL_CD, NFIT_GUID_VIRTUAL_DISK,
};

const ISO: u64 = 0x0FBC_E000;
const IMG: u64 = 0x0F3C_E000;
const ISO_BYTES: u64 = 2083 * 2048;
const MIB8: u64 = 8 << 20;

fn bios_mem() -> PhysMem {
    let mut m = PhysMem::new();
    m.with_bios_defaults();
    m
}

/// A hooked 0.4.6a block at 0x9CC00 with `slots`; ISO content planted for CD memdrives and an
/// MBR for HDD memdrives.
fn g4d(slots: Vec<G4dSlot>) -> PhysMem {
    let mut m = bios_mem();
    g4d_into(&mut m, slots);
    m
}

fn g4d_into(m: &mut PhysMem, slots: Vec<G4dSlot>) -> Grub4DosBlock {
    for s in &slots {
        if s.to_drive == 0xFF && s.to_cylinder & 0x2000 != 0 {
            plant_iso9660(m, s.phys(), 2083);
        } else if s.to_drive == 0xFF && s.from_drive & 0x80 != 0 {
            plant_observed_hdd_mbr(m, s.phys());
        }
    }
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = slots;
    blk.install(m);
    blk
}

fn memdisk(md: &MemdiskBlock) -> PhysMem {
    let mut m = bios_mem();
    md.install(&mut m);
    match md.driveno {
        0xE0 => plant_iso9660(&mut m, u64::from(md.diskbuf), 2083),
        0x80..=0xFE => plant_observed_hdd_mbr(&mut m, u64::from(md.diskbuf)),
        _ => {}
    }
    m
}

fn go(m: &PhysMem) -> (Discovered, Log) {
    let (d, log) = run(m, &bios_input(&[]));
    (d, log)
}

fn bases(d: &Discovered) -> Vec<u64> {
    d.images.iter().map(|f| f.image.phys_base).collect()
}

fn reasons(d: &Discovered) -> Vec<RefusalReason> {
    d.refused.iter().map(|r| r.reason).collect()
}

fn mbft_problem(log: &Log) -> Option<MbftProblem> {
    log.events.iter().find_map(|e| match e {
        Event::MbftRejected { why, .. } => Some(*why),
        _ => None,
    })
}

/// Plant a raw safe hook at `lin` with `vendor` and `prev`.
fn raw_hook(m: &mut PhysMem, lin: u64, vendor: &[u8; 8], prev: u32) {
    m.write(lin, &[0xEB, 0x1C, 0x90]);
    m.write(lin + 3, b"$INT13SF");
    m.write(lin + 11, vendor);
    m.write_u32(lin + 0x13, prev);
}

// ---------------------------------------------------------------- general (rules 1–4)

#[test]
fn rule01_reads_only_low_memory_and_candidate_content() {
    let m = g4d(vec![
        G4dSlot::memdrive_cd(ISO, ISO_BYTES),
        G4dSlot::memdrive_hdd(0x81, IMG, MIB8),
    ]);
    let (d, _) = go(&m);
    assert_eq!(d.images.len(), 2);
    for r in m.reads() {
        let low = r.end() <= 0xA_0000;
        let in_image = d
            .images
            .iter()
            .any(|f| r.phys >= f.image.phys_base && r.end() <= f.image.phys_base + 0x1_0000);
        assert!(low || in_image, "unexpected read {r:x?}");
        assert!(r.len <= 1024, "large read {r:x?}");
    }
}

#[test]
fn rule02_far_pointer_0x10ffef_and_structures_at_0xa0000_are_bounds_checked() {
    let mut m = bios_mem();
    m.plant_ivt13(0xFFFF, 0xFFFF);
    let (d, log) = go(&m);
    assert!(d.images.is_empty());
    assert!(log.any(|e| matches!(
        e,
        Event::ChainEnd {
            vector: 0xFFFF_FFFF
        }
    )));
    // A hook whose 31 bytes would cross 0xA0000.
    let mut m = bios_mem();
    m.plant_ivt13(0x9FFF, 0x0005);
    raw_hook(&mut m, 0x9FFF5, b"MEMDISK ", 0);
    go(&m);
    assert!(
        m.reads().iter().all(|r| r.end() <= 0xA_0000),
        "{:x?}",
        m.reads()
    );
    // A mBFT pointer at the very end of low memory.
    let mut md = MemdiskBlock::observed_iso();
    md.hook_mbft_override = Some(0x9FFF0);
    let mut m = memdisk(&md);
    m.write(0x9FFF0, &md.mbft_bytes()[..16]);
    let (d, log) = go(&m);
    assert!(d.images.is_empty());
    assert_eq!(mbft_problem(&log), Some(MbftProblem::OutOfLowMemory));
    assert!(m.reads().iter().all(|r| r.end() <= 0xA_0000));
}

#[test]
fn rule03_memory_is_never_written() {
    let m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    let before = m.clone();
    go(&m);
    for p in before.pages().chain(m.pages()) {
        assert_eq!(
            before.bytes(p, 4096),
            m.bytes(p, 4096),
            "page {p:#x} changed"
        );
    }
    assert_eq!(before.pages().count(), m.pages().count());
}

#[test]
fn rule04_checked_arithmetic_overflow_refused() {
    let huge_start = G4dSlot::memdrive_hdd(0x80, 0, MIB8).with_count(16384);
    let mut s1 = huge_start;
    s1.start_sector = u64::MAX / 256; // × 512 overflows
    let mut s2 = G4dSlot::memdrive_hdd(0x81, IMG, MIB8);
    s2.sector_count = u64::MAX / 2; // × 512 overflows
    let mut s3 = G4dSlot::memdrive_hdd(0x82, 0, 0);
    s3.start_sector = (u64::MAX - (1 << 20)) / 512; // base fine, base + length overflows
    s3.sector_count = 1 << 20;
    let m = g4d(vec![s1, s2, s3]);
    let input = DiscoveryInput {
        max_phys_end: u64::MAX,
        ..bios_input(&[])
    };
    let (d, _) = run(&m, &input);
    assert!(d.images.is_empty());
    assert_eq!(reasons(&d), vec![RefusalReason::Overflow; 3]);
}

// ---------------------------------------------------------------- chain (rules 5–8)

#[test]
fn rule05_signature_must_match_exactly() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    m.write(0x9CD03, b"$INT13SG");
    let (d, _) = go(&m);
    assert!(d.images.is_empty());
}

#[test]
fn rule05_unknown_vendor_logged_and_walk_continues() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    raw_hook(&mut m, 0x9C800, b"FOOBAR  ", 0x9CC0_0100);
    m.plant_ivt13(0x9C80, 0x0000);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
    assert!(log.any(
        |e| matches!(e, Event::UnknownVendor { hook: 0x9C800, vendor } if vendor == b"FOOBAR  ")
    ));
}

#[test]
fn rule05_non_printable_vendor_stops_walk() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    raw_hook(&mut m, 0x9C800, b"BAD\x00\x01VND", 0x9CC0_0100);
    m.plant_ivt13(0x9C80, 0x0000);
    m.set_bda_basemem_kib((0x9C800u32 / 1024) as u16);
    let (d, log) = go(&m);
    assert!(log.any(|e| matches!(e, Event::BadVendor { hook: 0x9C800 })));
    // The GRUB4DOS block behind it is not on the walked chain and not at the BDA top.
    assert!(d.images.is_empty());
}

#[test]
fn rule06_hook_in_ivt_bda_ends_walk_and_hook_below_bda_top_warns() {
    let mut m = bios_mem();
    m.plant_ivt13(0x0000, 0x0400);
    raw_hook(&mut m, 0x400, b"MEMDISK ", 0);
    let (_, log) = go(&m);
    assert!(!log.any(|e| matches!(e, Event::HookFound { .. })));
    // A genuine block below the BDA top: parsed, with a warning.
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    m.set_bda_basemem_kib(639);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
    assert!(log.any(|e| matches!(
        e,
        Event::HookInFreeMemory {
            hook: 0x9CD00,
            bda_top: 0x9FC00
        }
    )));
}

#[test]
fn rule07_loop_protection() {
    // GRUB4DOS whose prev points back at itself.
    let mut m = bios_mem();
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.prev_int13 = 0x9CC0_0100;
    blk.slots = vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)];
    blk.install(&mut m);
    plant_iso9660(&mut m, ISO, 2083);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
    assert!(log.any(|e| matches!(e, Event::ChainLoop { hook: 0x9CD00 })));
    // Two hooks pointing at each other.
    let mut m = bios_mem();
    raw_hook(&mut m, 0x9C000, b"OTHERVND", 0x9C10_0000);
    raw_hook(&mut m, 0x9C100, b"OTHERVND", 0x9C00_0000);
    m.plant_ivt13(0x9C00, 0);
    let (_, log) = go(&m);
    assert_eq!(log.count(|e| matches!(e, Event::HookFound { .. })), 2);
    assert!(log.any(|e| matches!(e, Event::ChainLoop { hook: 0x9C000 })));
}

#[test]
fn rule07_at_most_16_hops() {
    let mut m = bios_mem();
    for i in 0..20u64 {
        let lin = 0x90000 + i * 0x100;
        raw_hook(
            &mut m,
            lin,
            b"OTHERVND",
            (((lin + 0x100) >> 4) as u32) << 16,
        );
    }
    m.plant_ivt13(0x9000, 0);
    let (_, log) = go(&m);
    assert_eq!(log.count(|e| matches!(e, Event::HookFound { .. })), 16);
    assert!(log.any(|e| matches!(e, Event::ChainTooLong)));
}

#[test]
fn rule08_rom_vector_ends_walk_silently() {
    let mut m = bios_mem();
    m.plant_ivt13(0xC000, 0x0010);
    m.write(0xC0013, b"$INT13SFGRUB4DOS");
    let (d, log) = go(&m);
    assert!(d.images.is_empty());
    assert!(log.any(|e| matches!(
        e,
        Event::ChainEnd {
            vector: 0xC000_0010
        }
    )));
    assert!(m.reads().iter().all(|r| r.end() <= 0xA_0000));
}

// ---------------------------------------------------------------- GRUB4DOS (rules 9–14)

#[test]
fn rule09_offset_must_be_0x100_and_base_kib_aligned() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    m.plant_ivt13(0x9CB0, 0x0200); // same linear address, different seg:off
    let (d, log) = go(&m);
    assert!(
        d.images.iter().all(|f| f.via == FoundVia::PAGE_SCAN),
        "not parsed via the chain"
    );
    assert!(log.any(|e| matches!(e, Event::Grub4DosNonStandard { hook: 0x9CD00, .. })));
    // Block at a non-KiB-aligned base 0x9CD00 with vector 9CD0:0100.
    let mut m = bios_mem();
    let mut blk = Grub4DosBlock::new(0x9CD00);
    blk.slots = vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)];
    blk.install(&mut m);
    let (d, log) = go(&m);
    assert!(d.images.is_empty());
    assert!(log.any(|e| matches!(
        e,
        Event::Grub4DosNonStandard {
            why: "base not KiB-aligned",
            ..
        }
    )));
}

#[test]
fn rule09_header_oddities_warn_only() {
    let mut m = bios_mem();
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.size_kib = 0;
    blk.version = 7;
    blk.slots = vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)];
    blk.install(&mut m);
    plant_iso9660(&mut m, ISO, 2083);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
    assert_eq!(log.count(|e| matches!(e, Event::Grub4DosHeader { .. })), 2);
}

#[test]
fn rule10_stop_at_all_zero_slot() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    // A slot after the terminator must be ignored.
    m.write(
        0x9CC20 + 2 * 24,
        &G4dSlot::memdrive_hdd(0x81, IMG, MIB8).to_bytes(),
    );
    plant_observed_hdd_mbr(&mut m, IMG);
    let (d, _) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
}

#[test]
fn rule10_at_most_8_slots_in_an_8_slot_build() {
    let slots: Vec<_> = (0..8u64)
        .map(|i| G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * MIB8, MIB8))
        .collect();
    let mut m = g4d(slots);
    // A 9th slot in the terminator position is not read.
    m.write(
        0x9CC20 + 8 * 24,
        &G4dSlot::memdrive_hdd(0x90, 0x2000_0000, MIB8).to_bytes(),
    );
    let (d, _) = go(&m);
    assert_eq!(d.images.len(), 8);
}

#[test]
fn rule10_sixteen_slot_build_reads_second_array() {
    // Current source with MAP_NUM_16 (second table ends at `int13end`) and the 2014–2021 builds
    // (second table right before `FRAGMENT`), `docs/loaders.md` §3.3.
    for (blk, table) in [
        (Grub4DosBlock::sixteen(0x9CC00), 0x9CC00 + 0x3020),
        (Grub4DosBlock::sixteen_old(0x9CC00), 0x9CC00 + 0x2A40 - 216),
    ] {
        let mut m = bios_mem();
        let mut blk = blk;
        blk.slots = (0..12u64)
            .map(|i| G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * MIB8, MIB8))
            .collect();
        blk.install(&mut m);
        let (d, log) = go(&m);
        assert_eq!(d.images.len(), 12, "{:?}", blk.layout);
        assert_eq!(d.images[11].image.slot, 11);
        assert!(log.any(
            |e| matches!(e, Event::SixteenSlotTable { base: 0x9CC00, table: t } if *t == table)
        ));
    }
}

#[test]
fn rule10_duplicate_from_drive_zero_count_special_drives_and_in_situ_skipped() {
    let m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8),
        G4dSlot::memdrive_hdd(0x80, 0x2000_0000, MIB8),
        G4dSlot::memdrive_hdd(0x81, 0x2100_0000, MIB8).with_count(0),
        G4dSlot::memdrive_floppy(0x21, 0x2200_0000, 1_474_560),
        G4dSlot::memdrive_floppy(0x22, 0x2300_0000, 1_474_560),
        G4dSlot::memdrive_floppy(0x23, 0x2400_0000, 1_474_560),
        G4dSlot::memdrive_hdd(0x82, 0x2500_0000, MIB8).in_situ(),
    ]);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![IMG]);
    let skips: Vec<SlotSkip> = log
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SlotSkipped { why, .. } => Some(*why),
            _ => None,
        })
        .collect();
    use SlotSkip::*;
    assert_eq!(
        skips,
        vec![
            DuplicateDrive,
            ZeroCount,
            SpecialDrive,
            SpecialDrive,
            SpecialDrive,
            InSitu
        ]
    );
}

#[test]
fn rule11_only_memdrives_are_ram() {
    let m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8).with_to_cylinder(0x4020), // TO is a CD: bit 14
        G4dSlot::disk_backed_cd(0xFF, 0x80, 0x8E4, 8332),
        G4dSlot::swap(0x81, 0x80).with_count(5),
    ]);
    let (d, log) = go(&m);
    assert!(d.images.is_empty() && d.refused.is_empty());
    assert_eq!(
        log.count(|e| matches!(
            e,
            Event::SlotSkipped {
                why: SlotSkip::DiskBacked,
                ..
            }
        )),
        3
    );
    // They are disk-backed images instead (`docs/loaders.md` §3.9): TO sectors of
    // 2048 bytes for the CD drive (bit 14), 512 otherwise.
    assert_eq!(
        d.disk_backed
            .iter()
            .map(|i| (i.bios_drive, i.sector_size, i.kind, i.length))
            .collect::<Vec<_>>(),
        vec![
            (0xFF, 2048, DeviceKind::Disk, MIB8 / 512 * 2048),
            (0x80, 512, DeviceKind::CdRom, 8332 * 512),
            (0x80, 512, DeviceKind::Disk, 5 * 512),
        ]
    );
}

#[test]
fn rule12_memdrive_below_1mib_refused_and_unaligned_base_warns() {
    let m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, 0x8_0000, 0x1_0000),
        G4dSlot::memdrive_hdd(0x81, IMG + 0x200, MIB8),
    ]);
    let (d, log) = go(&m);
    assert_eq!(reasons(&d), vec![RefusalReason::LowMemory]);
    assert_eq!(bases(&d), vec![IMG + 0x200]);
    assert!(log.any(|e| matches!(e, Event::NonAlignedBase { base, source: LoaderSource::Grub4Dos } if *base == IMG + 0x200)));
}

#[test]
fn rule13_cd_memdrive_needs_4_sectors_and_drops_remainder() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES).with_count(3)]);
    let (d, _) = go(&m);
    assert_eq!(reasons(&d), vec![RefusalReason::CdTooShort]);
    // UDF content (no ISO size cap): 8339 sectors → 2084 blocks.
    m = bios_mem();
    plant_udf_vrs(&mut m, ISO, false);
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = vec![G4dSlot::memdrive_cd(ISO, 0).with_count(8339)];
    blk.install(&mut m);
    let (d, _) = go(&m);
    assert_eq!(d.images[0].image.blocks(), 2084);
    assert_eq!(d.images[0].image.kind, DeviceKind::CdRom);
}

#[test]
fn rule14_fragment_map_ignored_for_ram_and_fragmented_maps_not_ram() {
    let mut m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8),
        G4dSlot::disk_backed_cd(0xFF, 0x80, 0x100, 8332).with_to_cylinder(0xA406), // bit 10
    ]);
    // A hostile fragment map (slot_len not 4 + 16n, runs past the map).
    m.write(0x9CC00 + 0x148, &[0xFF, 0xFF, 0xFF, 0x80, 1, 2, 3, 4]);
    let (d, _) = go(&m);
    assert_eq!(bases(&d), vec![IMG]);
    assert!(d.disk_backed.is_empty());
    assert_eq!(
        d.disk_refused.iter().map(|r| r.reason).collect::<Vec<_>>(),
        vec![rvblk_core::discovery::DiskRefusalReason::BadFragmentRecord]
    );
}

// ---------------------------------------------------------------- MEMDISK (rules 15–19)

#[test]
fn rule15_mbft_signature_length_checksum_and_bounds() {
    let cases: Vec<(MemdiskBlock, MbftProblem)> = vec![
        (
            MemdiskBlock {
                signature: *b"    ",
                ..MemdiskBlock::observed_iso()
            },
            MbftProblem::NoSignature,
        ),
        (
            MemdiskBlock {
                length_override: Some(65),
                ..MemdiskBlock::observed_iso()
            },
            MbftProblem::BadLength,
        ),
        (
            MemdiskBlock {
                length_override: Some(257),
                ..MemdiskBlock::observed_iso()
            },
            MbftProblem::BadLength,
        ),
        (
            MemdiskBlock {
                length_override: Some(72),
                ..MemdiskBlock::observed_iso()
            },
            MbftProblem::LengthMismatch,
        ),
        (
            MemdiskBlock {
                checksum_override: Some(0x6A),
                ..MemdiskBlock::observed_iso()
            },
            MbftProblem::BadChecksum,
        ),
    ];
    for (md, want) in cases {
        let (d, log) = go(&memdisk(&md));
        assert!(d.images.is_empty(), "{want:?}");
        assert_eq!(mbft_problem(&log), Some(want));
    }
}

#[test]
fn rule15_alignment_and_oem_id_warn_only() {
    let md = MemdiskBlock {
        oem_id: *b"OTHER!",
        ..MemdiskBlock::observed_hdd()
    };
    let mut m = memdisk(&md);
    // Move the mBFT to a non-16-byte-aligned address.
    let bytes = md.mbft_and_patch_bytes();
    m.fill(md.mbft_addr(), 0x68, 0);
    let moved = md.mbft_addr() + 4;
    m.write(moved, &bytes);
    m.write_u32(md.hook_addr() + 0x1B, moved as u32);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![0x0F7E_0000]);
    assert_eq!(log.count(|e| matches!(e, Event::MbftWarning { .. })), 2);
}

#[test]
fn rule16_cross_links_checked_on_chain_and_scan() {
    // Chain: the mBFT's safe_hook points elsewhere.
    let md = MemdiskBlock {
        safe_hook_override: Some(0x9F10A),
        ..MemdiskBlock::observed_iso()
    };
    let (d, log) = go(&memdisk(&md));
    assert!(d.images.is_empty());
    assert_eq!(mbft_problem(&log), Some(MbftProblem::CrossLink));
    // Scan: a resident but unchained MEMDISK is found via the mBFT scan...
    let md = MemdiskBlock::observed_iso();
    let mut m = memdisk(&md);
    m.plant_ivt13(0xF000, 0xE3FE);
    let (d, _) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
    assert_eq!(d.images[0].via, FoundVia::MBFT_SCAN);
    // ...but not when its hook's +0x1B points elsewhere.
    m.write_u32(md.hook_addr() + 0x1B, 0x9F670);
    let (d, log) = go(&m);
    assert!(d.images.is_empty());
    assert_eq!(mbft_problem(&log), Some(MbftProblem::CrossLink));
}

#[test]
fn rule17_short_mdi_and_legacy_zero_shift() {
    // MDI.bytes 27 (3.00–3.70): shift byte not trusted → 9 for an HDD.
    let md = MemdiskBlock {
        mdi_bytes: 27,
        sector_shift: 11,
        ..MemdiskBlock::observed_hdd()
    };
    let (d, _) = go(&memdisk(&md));
    assert_eq!(
        (d.images[0].image.kind, d.images[0].image.length),
        (DeviceKind::Disk, MIB8)
    );
    // Pre-2010-06 ISO: shift 0 and driveno 0xE0 → 2048-byte units.
    let md = MemdiskBlock {
        sector_shift: 0,
        ..MemdiskBlock::observed_iso()
    };
    let (d, _) = go(&memdisk(&md));
    assert_eq!(
        (d.images[0].image.kind, d.images[0].image.length),
        (DeviceKind::CdRom, ISO_BYTES)
    );
    // Any other shift is invalid.
    let md = MemdiskBlock {
        sector_shift: 10,
        ..MemdiskBlock::observed_hdd()
    };
    let (d, log) = go(&memdisk(&md));
    assert!(d.images.is_empty());
    assert_eq!(mbft_problem(&log), Some(MbftProblem::BadShift));
}

#[test]
fn rule18_diskbuf_bounds() {
    let cases = [
        (
            MemdiskBlock {
                diskbuf: 0x8_0000,
                ..MemdiskBlock::observed_hdd()
            },
            RefusalReason::LowMemory,
        ),
        (
            MemdiskBlock {
                disksize: 0,
                ..MemdiskBlock::observed_hdd()
            },
            RefusalReason::TooSmall,
        ),
        (
            MemdiskBlock {
                diskbuf: 0xFFF0_0000,
                ..MemdiskBlock::observed_hdd()
            },
            RefusalReason::AboveFourGiB,
        ),
    ];
    for (md, want) in cases {
        let (d, _) = go(&memdisk(&md));
        assert!(d.images.is_empty());
        assert_eq!(reasons(&d), vec![want]);
    }
}

#[test]
fn rule19_driveno_and_shift() {
    let md = MemdiskBlock {
        driveno: 0xFF,
        ..MemdiskBlock::observed_hdd()
    };
    let (_, log) = go(&memdisk(&md));
    assert_eq!(mbft_problem(&log), Some(MbftProblem::BadDriveNumber));
    // driveno 0xE0 but shift 9: the checksummed shift wins → a 512-byte disk.
    let md = MemdiskBlock {
        sector_shift: 9,
        disksize: 8332,
        ..MemdiskBlock::observed_iso()
    };
    let mut m = memdisk(&md);
    plant_observed_hdd_mbr(&mut m, ISO);
    let (d, log) = go(&m);
    assert_eq!(d.images[0].image.kind, DeviceKind::Disk);
    assert!(log.any(|e| matches!(
        e,
        Event::MemdiskKindMismatch {
            driveno: 0xE0,
            shift: 9,
            ..
        }
    )));
    // driveno 0x80 with shift 11 → CD.
    let md = MemdiskBlock {
        driveno: 0x80,
        ..MemdiskBlock::observed_iso()
    };
    let mut m = memdisk(&md);
    plant_iso9660(&mut m, ISO, 2083);
    let (d, _) = go(&m);
    assert_eq!(d.images[0].image.kind, DeviceKind::CdRom);
}

#[test]
fn rule19_floppy_size_capped_at_chs() {
    // El Torito floppy emulation: disksize runs to the end of the ISO.
    let md = MemdiskBlock {
        disksize: 8000,
        ..MemdiskBlock::observed_floppy()
    };
    let (d, log) = go(&memdisk(&md));
    assert_eq!(d.images[0].image.length, 80 * 2 * 18 * 512);
    assert!(log.any(|e| matches!(
        e,
        Event::LengthCapped {
            why: "MEMDISK floppy C/H/S",
            ..
        }
    )));
}

#[test]
fn memdisk_configflags_ro_is_read_only() {
    let md = MemdiskBlock {
        configflags: 0x05,
        ..MemdiskBlock::observed_hdd()
    };
    let (d, _) = go(&memdisk(&md));
    assert_eq!(d.images[0].image.write_policy, WritePolicy::ReadOnly);
}

#[test]
fn grub4dos_read_only_and_fake_write_bits() {
    let m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8).read_only(),
        G4dSlot::memdrive_hdd(0x81, 0x2000_0000, MIB8).fake_write(),
        G4dSlot::memdrive_hdd(0x82, 0x2100_0000, MIB8),
    ]);
    let (d, _) = go(&m);
    let p: Vec<_> = d.images.iter().map(|f| f.image.write_policy).collect();
    assert_eq!(
        p,
        vec![
            WritePolicy::ReadOnly,
            WritePolicy::DiscardWrites,
            WritePolicy::ReadWrite
        ]
    );
}

// ---------------------------------------------------------------- NFIT (rules 20–22)

fn nfit_input<'a>(table: &'a [u8], os_ram: &'a [PhysRange]) -> DiscoveryInput<'a> {
    DiscoveryInput {
        os_ram,
        nfit: Some(table),
        firmware: Firmware::Uefi,
        max_phys_end: 0,
        total_ram_bytes: 0,
    }
}

fn nfit_mem() -> PhysMem {
    let mut m = PhysMem::new();
    plant_iso9660(&mut m, 0x7F00_0000, 2083);
    plant_observed_hdd_mbr(&mut m, 0x7E00_0000);
    m
}

#[test]
fn rule20_nfit_header() {
    let m = nfit_mem();
    let good = NfitBuilder::new().ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7E00_0000, MIB8);
    let mut bad_sig = good.build();
    bad_sig[0] = b'X';
    let bad_sum = NfitBuilder {
        checksum_override: Some(1),
        ..good.clone()
    }
    .build();
    let too_long = NfitBuilder {
        length_override: Some(200),
        ..good.clone()
    }
    .build();
    let short = good.build()[..30].to_vec();
    for t in [bad_sig, bad_sum, too_long, short] {
        let (d, log) = run(&m, &nfit_input(&t, &[]));
        assert!(d.images.is_empty());
        assert!(log.any(|e| matches!(e, Event::NfitProblem { .. })));
    }
    let rev0 = NfitBuilder {
        revision: 0,
        ..good
    }
    .build();
    let (d, log) = run(&m, &nfit_input(&rev0, &[]));
    assert_eq!(d.images.len(), 1, "revision 0 warns only");
    assert!(log.any(|e| matches!(
        e,
        Event::NfitProblem {
            what: "revision 0",
            ..
        }
    )));
}

#[test]
fn rule21_nfit_structure_walk() {
    let m = nfit_mem();
    // Zero-length structure ends the walk (the SPA after it is not reached).
    let t = NfitBuilder::new()
        .raw(vec![1, 0, 0, 0])
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7E00_0000, MIB8)
        .build();
    assert!(run(&m, &nfit_input(&t, &[])).0.images.is_empty());
    // Structure running past the table.
    let t = NfitBuilder::new()
        .raw(vec![0, 0, 0xFF, 0x00, 0, 0, 0, 0])
        .build();
    assert!(run(&m, &nfit_input(&t, &[])).0.images.is_empty());
    // SPA shorter than 56 bytes is ignored; other structure types are skipped; a 64-byte SPA with
    // a cookie works.
    let mut short = Spa::ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7E00_0000, MIB8).to_bytes();
    short.truncate(48);
    short[2] = 48;
    let mut region = vec![0u8; 48];
    region[0] = 1;
    region[2] = 48;
    let cookie = Spa {
        cookie: Some(7),
        flags: 4,
        ..Spa::ram_disk(NFIT_GUID_VIRTUAL_CD, 0x7F00_0000, ISO_BYTES)
    };
    let t = NfitBuilder::new()
        .raw(short)
        .raw(region)
        .spa(cookie)
        .build();
    let (d, _) = run(&m, &nfit_input(&t, &[]));
    assert_eq!(bases(&d), vec![0x7F00_0000]);
}

#[test]
fn rule22_nfit_spa_checks_and_guids() {
    let m = nfit_mem();
    let t = NfitBuilder::new()
        .spa(Spa {
            index: 3,
            ..Spa::ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7E00_0000, MIB8)
        })
        .spa(Spa {
            flags: 1,
            ..Spa::ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7D00_0000, MIB8)
        })
        .ram_disk(NFIT_GUID_PERSISTENT_MEMORY, 0x7C00_0000, MIB8)
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7B00_0000, 0)
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, u64::MAX - 10, MIB8)
        .ram_disk(NFIT_GUID_PERSISTENT_VIRTUAL_CD, 0x7F00_0000, ISO_BYTES)
        // The byte-swapped (string-order) GUID must not match.
        .ram_disk(
            [
                0x77, 0xAB, 0x53, 0x5A, 0x45, 0xFC, 0x62, 0x4B, 0x55, 0x60, 0xF7, 0xB2, 0x81, 0xD1,
                0xF9, 0x6E,
            ],
            0x7A00_0000,
            MIB8,
        )
        .build();
    let (d, log) = run(&m, &nfit_input(&t, &[]));
    let got: Vec<_> = d
        .images
        .iter()
        .map(|f| (f.image.phys_base, f.image.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            (0x7E00_0000, DeviceKind::Disk),
            (0x7F00_0000, DeviceKind::CdRom)
        ]
    );
    assert_eq!(
        reasons(&d),
        vec![RefusalReason::TooSmall, RefusalReason::Overflow]
    );
    assert!(log.any(|e| matches!(
        e,
        Event::NfitProblem {
            what: "RAM-disk SPA index is not 0",
            ..
        }
    )));
}

// ---------------------------------------------------------------- memory map (rules 23–30)

#[test]
fn rule23_os_ram_overlap_refused_without_reading_it() {
    let mut m = g4d(vec![
        G4dSlot::memdrive_cd(ISO, ISO_BYTES),
        G4dSlot::memdrive_hdd(0x81, IMG, MIB8),
    ]);
    plant_udf_vrs(&mut m, ISO, true);
    // OS RAM covers the last page of the HDD image and the PVD page of the CD.
    let os = [
        PhysRange::new(IMG + MIB8 - 0x1000, 0x1000),
        PhysRange::new(ISO + 0x8000, 0x1000),
    ];
    let (d, _) = run(&m, &bios_input(&os));
    assert!(d.images.is_empty());
    assert_eq!(d.refused.len(), 2);
    assert!(d
        .refused
        .iter()
        .all(|r| matches!(r.reason, RefusalReason::OverlapsOsRam { .. })));
    m.assert_no_reads_in(&os);
    assert!(
        m.reads().iter().all(|r| r.end() <= 0xA_0000),
        "nothing above low memory was read"
    );
}

#[test]
fn rule23_stale_grub4efi_page_into_os_ram() {
    let mut m = PhysMem::new();
    Grub4EfiPage::grub4efi(0x9F000)
        .slot(G4dSlot::efi_memdrive(0x80, 0x2000_0000, MIB8, false))
        .plant(&mut m);
    let os = [PhysRange::new(0x10_0000, 0x7FF0_0000)];
    let input = DiscoveryInput {
        firmware: Firmware::Uefi,
        ..bios_input(&os)
    };
    let (d, _) = run(&m, &input);
    assert!(d.images.is_empty());
    m.assert_no_reads_in(&os);
}

#[test]
fn rule24_max_physical_address() {
    let m = g4d(vec![G4dSlot::memdrive_hdd(0x80, 0x1_0000_0000, MIB8)]);
    let input = DiscoveryInput {
        max_phys_end: 1 << 32,
        ..bios_input(&[])
    };
    let (d, _) = run(&m, &input);
    assert_eq!(
        reasons(&d),
        vec![RefusalReason::AboveMaxPhys {
            max_phys_end: 1 << 32
        }]
    );
    let input = DiscoveryInput {
        max_phys_end: 0,
        ..bios_input(&[])
    };
    assert_eq!(run(&m, &input).0.images.len(), 1, "0 = default 2^52");
}

#[test]
fn rule25_size_bounds() {
    let m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8),
        G4dSlot::memdrive_hdd(0x81, 0x1_0000_0000, 0).with_count(3 << 30 >> 9),
        G4dSlot::memdrive_hdd(0x82, 0x10_0000_0000, 0).with_count((1u64 << 41) >> 9),
        G4dSlot::memdrive_floppy(0x00, 0x2000_0000, 0).with_count(8192),
    ]);
    let input = DiscoveryInput {
        total_ram_bytes: 2 << 30,
        max_phys_end: 1 << 52,
        ..bios_input(&[])
    };
    let (d, log) = run(&m, &input);
    assert_eq!(bases(&d), vec![IMG, 0x2000_0000]);
    assert_eq!(
        reasons(&d),
        vec![
            RefusalReason::TooLarge { limit: 2 << 30 },
            RefusalReason::TooLarge { limit: 2 << 30 }
        ]
    );
    assert!(log.any(|e| matches!(
        e,
        Event::ContentWarning {
            what: "larger than a 2.88 MB floppy",
            ..
        }
    )));
    // Without a RAM figure the 1 TiB cap still applies.
    let (d, _) = run(&m, &bios_input(&[]));
    assert_eq!(
        reasons(&d),
        vec![RefusalReason::TooLarge { limit: 1 << 40 }]
    );
    // Less than one block.
    let m2 = nfit_mem();
    let t = NfitBuilder::new()
        .ram_disk(NFIT_GUID_VIRTUAL_CD, 0x7F00_0000, 2047)
        .build();
    assert_eq!(
        reasons(&run(&m2, &nfit_input(&t, &[])).0),
        vec![RefusalReason::TooSmall]
    );
}

#[test]
fn rule26_exact_duplicates_merged_partial_overlaps_refused() {
    // The MEMDISK HDD image also published as an NFIT virtual disk: merged into the chain entry.
    let md = MemdiskBlock::observed_hdd();
    let mut m = memdisk(&md);
    plant_iso9660(&mut m, 0x0F7E_0000, 2083); // so the CD entry passes rule 28
    let t = NfitBuilder::new()
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x0F7E_0000, MIB8)
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x0F7E_1000, MIB8) // partial overlap
        .ram_disk(NFIT_GUID_VIRTUAL_CD, 0x0F7E_0000, MIB8) // same range, other kind
        .build();
    let input = DiscoveryInput {
        nfit: Some(&t),
        ..bios_input(&[])
    };
    let (d, log) = run(&m, &input);
    assert_eq!(d.images.len(), 1);
    assert_eq!(d.images[0].image.source, LoaderSource::Memdisk);
    assert_eq!(d.images[0].via, FoundVia::IVT_CHAIN | FoundVia::NFIT);
    assert!(log.any(|e| matches!(
        e,
        Event::Merged {
            kept: LoaderSource::Memdisk,
            dropped: LoaderSource::Nfit,
            ..
        }
    )));
    assert_eq!(d.refused.len(), 2);
    assert!(d.refused.iter().all(|r| matches!(
        r.reason,
        RefusalReason::Overlap {
            other_base: 0x0F7E_0000,
            ..
        }
    )));
}

#[test]
fn rule26_overlapping_grub4dos_slots() {
    let m = g4d(vec![
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8),
        G4dSlot::memdrive_hdd(0x81, IMG + 0x10_0000, MIB8),
    ]);
    let (d, _) = go(&m);
    assert_eq!(bases(&d), vec![IMG]);
    assert_eq!(
        reasons(&d),
        vec![RefusalReason::Overlap {
            other_base: IMG,
            other_length: MIB8
        }]
    );
}

#[test]
fn rule27_images_over_low_memory_structures_refused() {
    let md = MemdiskBlock {
        diskbuf: 0x9_0000,
        disksize: 0x100,
        ..MemdiskBlock::observed_hdd()
    };
    let (d, _) = go(&memdisk(&md));
    assert_eq!(reasons(&d), vec![RefusalReason::LowMemory]);
    let m = nfit_mem();
    let t = NfitBuilder::new()
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0xF_0000, MIB8)
        .build();
    assert_eq!(
        reasons(&run(&m, &nfit_input(&t, &[])).0),
        vec![RefusalReason::LowMemory]
    );
}

#[test]
fn rule28_cd_needs_iso9660_or_udf_hdd_only_warns() {
    let mut m = bios_mem();
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = vec![
        G4dSlot::memdrive_cd(ISO, ISO_BYTES), // nothing planted
        G4dSlot::memdrive_cd(0x2000_0000, ISO_BYTES).from(0xFE), // UDF only
        G4dSlot::memdrive_hdd(0x80, IMG, MIB8), // no MBR
        G4dSlot::memdrive_hdd(0x81, 0x3000_0000, MIB8), // GPT
        G4dSlot::memdrive_hdd(0x82, 0x4000_0000, MIB8), // partition past the end
        G4dSlot::memdrive_cd(0x5000_0000, ISO_BYTES).from(0xFD), // unreadable
    ];
    blk.install(&mut m);
    plant_udf_vrs(&mut m, 0x2000_0000, false);
    plant_gpt(&mut m, 0x3000_0000, MIB8 / 512);
    plant_mbr(&mut m, 0x4000_0000, 1, &[(0x07, 2048, 16384)]);
    m.mark_unreadable(0x5000_0000, ISO_BYTES);
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![0x2000_0000, IMG, 0x3000_0000, 0x4000_0000]);
    assert_eq!(
        reasons(&d),
        vec![
            RefusalReason::NoCdFilesystem,
            RefusalReason::ContentUnreadable
        ]
    );
    let warns: Vec<&str> = log
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ContentWarning { what, .. } => Some(*what),
            _ => None,
        })
        .collect();
    assert_eq!(
        warns,
        vec![
            "no MBR/boot-sector signature and no GPT header",
            "MBR partition extends past the end of the image"
        ]
    );
}

#[test]
fn rule29_fingerprint_detects_changes() {
    let mut m = g4d(vec![G4dSlot::memdrive_hdd(0x80, IMG, MIB8)]);
    let (d, _) = go(&m);
    let img = d.images[0].image;
    let a = image_fingerprint(&m, &img, &[]).unwrap();
    assert_eq!(image_fingerprint(&m, &img, &[]), Some(a));
    m.write_u8(IMG + 3, 0x42);
    assert_ne!(image_fingerprint(&m, &img, &[]), Some(a));
    assert_eq!(
        image_fingerprint(&m, &img, &[PhysRange::new(IMG, 0x1000)]),
        None
    );
}

#[test]
fn rule30_every_refusal_logged_and_list_bounded() {
    // 40 slots over 5 chained GRUB4DOS blocks, all in OS RAM.
    let mut m = bios_mem();
    let mut prev = 0xF000_E3FEu32;
    for b in 0..5u64 {
        let base = 0x90000 + b * 0x1000;
        let mut blk = Grub4DosBlock::new(base);
        blk.prev_int13 = prev;
        blk.slots = (0..8u64)
            .map(|i| G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + (b * 8 + i) * MIB8, MIB8))
            .collect();
        blk.install(&mut m);
        prev = (((base >> 4) as u32) << 16) | 0x100;
    }
    let os = [PhysRange::new(0x10_0000, 0x7000_0000)];
    let (d, log) = run(&m, &bios_input(&os));
    assert_eq!(d.refused.len(), MAX_REFUSED);
    assert_eq!(log.count(|e| matches!(e, Event::Refused(_))), 40);
    assert_eq!(log.count(|e| matches!(e, Event::RefusalListFull)), 8);
    assert!(log
        .lines
        .iter()
        .any(|l| l.contains("overlaps OS RAM") && l.contains("grub4dos")));
}

// ---------------------------------------------------------------- §9 gating and scans

#[test]
fn scan_d1_accepts_unchained_block_only_at_bda_top() {
    let mut m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    m.plant_ivt13(0xF000, 0xE3FE); // an unsafe hook replaced the vector; BDA still 627
    let (d, log) = go(&m);
    assert_eq!(bases(&d), vec![ISO]);
    assert_eq!(d.images[0].via, FoundVia::PAGE_SCAN);
    assert!(log.any(|e| matches!(e, Event::UnchainedBlock { base: 0x9CC00 })));
}

#[test]
fn firmware_gating() {
    // UEFI: the IVT chain and the BIOS layout are ignored.
    let m = g4d(vec![G4dSlot::memdrive_cd(ISO, ISO_BYTES)]);
    let input = DiscoveryInput {
        firmware: Firmware::Uefi,
        ..bios_input(&[])
    };
    assert!(run(&m, &input).0.images.is_empty());
    let md = MemdiskBlock::observed_iso();
    assert!(run(&memdisk(&md), &input).0.images.is_empty());
    // BIOS: the UEFI page layout is ignored; Unknown runs everything.
    let mut m = bios_mem();
    Grub4EfiPage::grub4efi(0x9F000)
        .slot(G4dSlot::efi_memdrive(0x80, IMG, MIB8, false))
        .plant(&mut m);
    plant_observed_hdd_mbr(&mut m, IMG);
    assert!(go(&m).0.images.is_empty());
    let input = DiscoveryInput {
        firmware: Firmware::Unknown,
        ..bios_input(&[])
    };
    assert_eq!(bases(&run(&m, &input).0), vec![IMG]);
}

#[test]
fn multiple_uefi_pages_warn() {
    let mut m = PhysMem::new();
    Grub4EfiPage::grub4efi(0x9F000)
        .slot(G4dSlot::efi_memdrive(0x80, IMG, MIB8, false))
        .plant(&mut m);
    Grub4EfiPage::grub4efi(0x60000)
        .slot(G4dSlot::efi_memdrive(0x80, IMG, MIB8, false))
        .plant(&mut m);
    plant_observed_hdd_mbr(&mut m, IMG);
    let input = DiscoveryInput {
        firmware: Firmware::Uefi,
        ..bios_input(&[])
    };
    let (d, log) = run(&m, &input);
    assert_eq!(bases(&d), vec![IMG], "identical stale copy merged");
    assert!(log.any(|e| matches!(e, Event::ExtraUefiPage { page: 0x60000 })));
}

#[test]
fn display_strings_are_short_and_informative() {
    let r = rvblk_core::discovery::Refusal {
        phys_base: 0x1000_0000,
        length: 0x800000,
        source: LoaderSource::Memdisk,
        reason: RefusalReason::NoCdFilesystem,
    };
    assert_eq!(
        r.to_string(),
        "refused memdisk image 0x10000000+0x800000: CD without ISO9660/UDF descriptors (rule 28)"
    );
    assert_eq!(
        Event::HookFound {
            hook: 0x9F00A,
            vendor: *b"MEMDISK "
        }
        .to_string(),
        "safe hook at 0x9f00a vendor 'MEMDISK '"
    );
    assert_eq!(
        (FoundVia::IVT_CHAIN | FoundVia::NFIT).to_string(),
        "ivt-chain+nfit"
    );
}
