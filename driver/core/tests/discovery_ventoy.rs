//! Ventoy's hand-off (`docs/ventoy.md`): `ventoy_os_param` in low memory (BIOS, plain and
//! `iBFT`-wrapped) and from the UEFI variable, the image-location extent list, memdisk mode,
//! and identification of the Ventoy disk. Values follow the Ventoy 1.0.73 QEMU runs (§7).

#[path = "discovery_common/mod.rs"]
mod common;

use common::{bios_input, check_invariants, Log};
use rvblk_core::discovery::{
    discover_with, identify_backing_disk, parse_image_location, parse_os_param, Discovered,
    DiscoveryInput, DiskRefusalReason, Event, Firmware, FoundVia, Handoff, IdentifyRefusal,
    PhysRange, RefusalReason, VentoyProblem, VentoyRegion,
};
use rvblk_core::image::{
    BackingSource, DeviceKind, DiskBackedImage, DiskEvidence, Extent, LoaderSource, WritePolicy,
};
use rvblk_memimage::{
    os_ram_from_e820, plant_iso9660, plant_observed_hdd_mbr, MemdiskBlock, PhysMem, SparseDisk,
    VentoyLocation, VentoyParam,
};

/// The hand-off copy observed at 0x9E6F0 with BDA 0x413 = 624 KiB.
const PARAM_AT: u64 = 0x9E6F0;
const LOC_AT: u64 = 0x0FF3_C000;
const ISO_BLOCKS: u32 = 2083;

/// E820 as the booted OS saw it: usable RAM ends at 0x0FF3B000, the list is in the hole.
fn os_ram() -> Vec<PhysRange> {
    os_ram_from_e820(&[
        (0, 0x9C000, 1),
        (0x10_0000, 0x0FF3_B000 - 0x10_0000, 1),
        (0x0FFE_0000, 0x2_0000, 2),
    ])
}

fn bios_mem() -> PhysMem {
    let mut m = PhysMem::new();
    m.with_bios_defaults();
    m.set_bda_basemem_kib(624);
    m
}

/// test.iso on FAT32: one region, 2083 image sectors at LBA 3868 (run vt1073_fat32).
fn fat32_location() -> VentoyLocation {
    VentoyLocation::runs(2048, &[(ISO_BLOCKS, 3868)])
}

/// The fragmented exFAT run: 256 + 256 + 256 + 1315 sectors (run vt1073_exfat_frag).
fn frag_location() -> VentoyLocation {
    VentoyLocation::runs(
        2048,
        &[(256, 7360), (256, 9408), (256, 11456), (1315, 14528)],
    )
}

fn planted(param: &VentoyParam, loc: &VentoyLocation) -> PhysMem {
    let mut m = bios_mem();
    param.plant(&mut m, PARAM_AT);
    loc.plant(&mut m, param.location_addr);
    m
}

fn run_with(m: &PhysMem, input: &DiscoveryInput<'_>, handoff: &Handoff<'_>) -> (Discovered, Log) {
    let mut log = Log::default();
    let mut d = Discovered::default();
    discover_with(m, input, handoff, &mut log, &mut d);
    check_invariants(&d, input);
    (d, log)
}

fn go(m: &PhysMem) -> (Discovered, Log) {
    let ram = os_ram();
    let (d, log) = run_with(m, &bios_input(&ram), &Handoff::default());
    m.assert_no_reads_in(&ram);
    (d, log)
}

fn ext(start: u64, sectors: u64) -> Extent {
    Extent { start, sectors }
}

fn refusal(d: &Discovered) -> Vec<DiskRefusalReason> {
    d.disk_refused.iter().map(|r| r.reason).collect()
}

fn rejected(log: &Log) -> Vec<VentoyProblem> {
    log.events
        .iter()
        .filter_map(|e| match e {
            Event::VentoyRejected { why, .. } => Some(*why),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ BIOS (§3.1)

#[test]
fn bios_plain_record_gives_a_read_only_cd_on_the_ventoy_disk() {
    let p = VentoyParam::observed_iso();
    let (d, log) = go(&planted(&p, &fat32_location()));
    assert!(d.images.is_empty() && d.refused.is_empty());
    assert_eq!(d.disk_backed.len(), 1, "{:#?}", log.lines);
    let img = &d.disk_backed[0];
    assert_eq!(img.source, BackingSource::Ventoy);
    assert_eq!(img.kind, DeviceKind::CdRom);
    assert_eq!(img.emulated_drive, 0xE0);
    assert_eq!(img.bios_drive, 0xFF);
    assert_eq!(img.write_policy, WritePolicy::ReadOnly);
    assert_eq!(img.sector_size, 512);
    assert_eq!(img.extents.to_vec(), vec![ext(3868, 2083 * 4)]);
    assert_eq!(img.length, 2083 * 2048);
    assert_eq!(img.table_address, PARAM_AT);
    assert_eq!(
        img.evidence,
        DiskEvidence::Ventoy {
            disk_id: p.disk_id,
            mbr_signature: Some(0x1234_5678),
            disk_size: 64 << 20,
        }
    );
    assert!(log.any(|e| matches!(e, Event::VentoyParam { addr: PARAM_AT })));
}

#[test]
fn bios_ibft_wrapped_record_is_found_at_plus_80() {
    let p = VentoyParam::observed_iso().chain_type(1);
    let mut m = bios_mem();
    p.plant_ibft(&mut m, PARAM_AT);
    fat32_location().plant(&mut m, LOC_AT);
    let (d, _) = go(&m);
    assert_eq!(d.disk_backed.len(), 1);
    assert_eq!(d.disk_backed[0].table_address, PARAM_AT + 80);
}

#[test]
fn bios_four_fragment_exfat_file_keeps_image_order() {
    let loc = frag_location();
    let p = VentoyParam {
        part_type: 0,
        ..VentoyParam::observed_iso()
    }
    .with_location(&loc);
    let (d, _) = go(&planted(&p, &loc));
    assert_eq!(
        d.disk_backed[0].extents.to_vec(),
        vec![
            ext(7360, 1024),
            ext(9408, 1024),
            ext(11456, 1024),
            ext(14528, 1315 * 4)
        ]
    );
    assert_eq!(
        d.disk_backed[0].locate(256 * 2048),
        Some((9408 * 512, 1024 * 512))
    );
}

#[test]
fn bios_img_file_with_512_byte_image_sectors_is_a_disk() {
    let loc = VentoyLocation::runs(512, &[(16384, 14720)]);
    let p = VentoyParam {
        path: b"/test.img".to_vec(),
        image_size: 8 << 20,
        ..VentoyParam::observed_iso()
    };
    let (d, _) = go(&planted(&p, &loc));
    let img = &d.disk_backed[0];
    assert_eq!((img.kind, img.emulated_drive), (DeviceKind::Disk, 0x80));
    assert_eq!(img.extents.to_vec(), vec![ext(14720, 16384)]);
    assert_eq!(img.length, 8 << 20);
}

#[test]
fn bios_guid_text_hits_and_stale_copies_are_skipped() {
    let p = VentoyParam::observed_iso();
    let mut m = planted(&p, &fat32_location());
    // Menu text ("...BIOS  www.ventoy.net") in the scanned window, below the real record.
    m.write(0x9C000, b"Ventoy 1.0.73 BIOS  www.ventoy.net");
    m.write(
        0x9C100,
        b"  www.ventoy.net and more text after the GUID-like bytes",
    );
    // A copy with location address 0 (GRUB's heap copy / the ACPI form) at a lower address.
    let stale = VentoyParam {
        location_addr: 0,
        ..p.clone()
    };
    stale.plant(&mut m, 0x9D000);
    let (d, log) = go(&m);
    assert_eq!(d.disk_backed.len(), 1);
    assert_eq!(d.disk_backed[0].table_address, PARAM_AT);
    // Only the checksummed stale copy is reported; plain text hits are not.
    assert_eq!(rejected(&log), vec![VentoyProblem::NoLocation]);
}

#[test]
fn bios_bad_checksum_and_records_below_the_bda_top_are_not_used() {
    let bad = VentoyParam {
        fix_checksum: false,
        ..VentoyParam::observed_iso()
    };
    let (d, log) = go(&planted(&bad, &fat32_location()));
    assert!(d.disk_backed.is_empty() && d.disk_refused.is_empty());
    assert!(rejected(&log).is_empty());
    // A valid record in free conventional memory (below BDA 0x413 × 1 KiB) is not scanned.
    let mut m = bios_mem();
    VentoyParam::observed_iso().plant(&mut m, 0x9_0000);
    fat32_location().plant(&mut m, LOC_AT);
    let (d, _) = go(&m);
    assert!(d.disk_backed.is_empty());
}

#[test]
fn uefi_firmware_never_scans_low_memory() {
    let m = planted(&VentoyParam::observed_iso(), &fat32_location());
    let ram = os_ram();
    let input = DiscoveryInput {
        firmware: Firmware::Uefi,
        ..bios_input(&ram)
    };
    let (d, _) = run_with(&m, &input, &Handoff::default());
    assert!(d.disk_backed.is_empty());
}

// ------------------------------------------------------------------ UEFI variable (§3.2)

#[test]
fn uefi_variable_bytes_give_the_same_image() {
    let p = VentoyParam::observed_iso();
    let bytes = p.to_bytes();
    let mut m = PhysMem::new();
    fat32_location().plant(&mut m, LOC_AT);
    let ram = os_ram();
    let input = DiscoveryInput {
        firmware: Firmware::Uefi,
        ..bios_input(&ram)
    };
    let handoff = Handoff {
        ventoy_os_param: Some(&bytes),
        ..Handoff::default()
    };
    let (d, log) = run_with(&m, &input, &handoff);
    assert_eq!(d.disk_backed.len(), 1);
    assert_eq!(d.disk_backed[0].table_address, 0);
    assert!(log.any(|e| matches!(e, Event::VentoyParam { addr: 0 })));
    // Truncated or corrupt variables are rejected with a reason.
    for (bytes, why) in [
        (bytes[..511].to_vec(), VentoyProblem::Short),
        (
            {
                let mut b = bytes.to_vec();
                b[0x100] ^= 1;
                b
            },
            VentoyProblem::BadChecksum,
        ),
    ] {
        let handoff = Handoff {
            ventoy_os_param: Some(&bytes),
            ..Handoff::default()
        };
        let (d, log) = run_with(&m, &input, &handoff);
        assert!(d.disk_backed.is_empty());
        assert_eq!(rejected(&log), vec![why]);
    }
}

// ------------------------------------------------------------------ record checks (§1, §2.4)

#[test]
fn parse_os_param_fields_and_step1_checks() {
    let p = VentoyParam::observed_iso();
    let got = parse_os_param(&p.to_bytes()).unwrap();
    assert_eq!(got.path(), b"/test.iso");
    assert_eq!((got.part_id, got.part_type), (1, 5));
    assert_eq!(got.image_size, 2083 * 2048);
    assert_eq!((got.location_addr, got.location_len), (LOC_AT, 44));
    assert_eq!(got.region_count(), 1);
    assert_eq!(got.mbr_signature, Some(0x1234_5678));
    let old = VentoyParam {
        disk_signature: 0,
        ..p.clone()
    };
    assert_eq!(parse_os_param(&old.to_bytes()).unwrap().mbr_signature, None);

    let cases: Vec<(VentoyParam, VentoyProblem)> = vec![
        (
            VentoyParam {
                guid: *b"  www.ventoy.nex",
                ..p.clone()
            },
            VentoyProblem::NoGuid,
        ),
        (
            VentoyParam {
                location_addr: LOC_AT + 0x200,
                ..p.clone()
            },
            VentoyProblem::LocationUnaligned,
        ),
        (
            VentoyParam {
                location_len: 28,
                ..p.clone()
            },
            VentoyProblem::BadLocationLength,
        ),
        (
            VentoyParam {
                location_len: 28 + 17,
                ..p.clone()
            },
            VentoyProblem::BadLocationLength,
        ),
        (p.clone().chain_type(3), VentoyProblem::BadChainType),
        (
            VentoyParam {
                path: vec![b'a'; 384],
                ..p.clone()
            },
            VentoyProblem::PathNotTerminated,
        ),
        (
            VentoyParam {
                image_size: 0,
                ..p.clone()
            },
            VentoyProblem::BadSize,
        ),
        (
            VentoyParam {
                disk_size: 0,
                ..p.clone()
            },
            VentoyProblem::BadSize,
        ),
    ];
    for (param, want) in cases {
        assert_eq!(parse_os_param(&param.to_bytes()), Err(want), "{param:?}");
    }
}

#[test]
fn parse_image_location_checks_guid_sizes_and_length() {
    let loc = frag_location();
    let bytes = loc.to_bytes();
    let (iss, dss, regions) = parse_image_location(&bytes).unwrap();
    assert_eq!((iss, dss), (2048, 512));
    let regions: Vec<VentoyRegion> = regions.collect();
    assert_eq!(regions.len(), 4);
    assert_eq!(
        regions[3],
        VentoyRegion {
            image_sectors: 1315,
            image_start: 768,
            disk_start: 14528
        }
    );
    assert!(matches!(
        parse_image_location(&bytes[..bytes.len() - 1]),
        Err(VentoyProblem::BadLocationLength)
    ));
    let mut bad = loc.clone();
    bad.image_sector_size = 1024;
    assert!(matches!(
        parse_image_location(&bad.to_bytes()),
        Err(VentoyProblem::BadSectorSize)
    ));
    bad = loc.clone();
    bad.guid[0] = 0;
    assert!(matches!(
        parse_image_location(&bad.to_bytes()),
        Err(VentoyProblem::LocationGuid)
    ));
}

#[test]
fn location_list_must_be_readable_outside_os_ram_and_match_the_record() {
    let p = VentoyParam::observed_iso();
    // In OS RAM, below 1 MiB, wrong GUID, region count differing from the record's length.
    let in_ram = VentoyParam {
        location_addr: 0x0800_0000,
        ..p.clone()
    };
    let low = VentoyParam {
        location_addr: 0x8_0000,
        ..p.clone()
    };
    let mut wrong_guid = fat32_location();
    wrong_guid.guid[15] = b'x';
    for (param, loc, want) in [
        (in_ram, fat32_location(), VentoyProblem::LocationUnreadable),
        (low, fat32_location(), VentoyProblem::LocationUnreadable),
        (p.clone(), wrong_guid, VentoyProblem::LocationGuid),
        (p.clone(), frag_location(), VentoyProblem::BadLocationLength),
    ] {
        let (d, log) = go(&planted(&param, &loc));
        assert!(d.disk_backed.is_empty(), "{want:?}");
        assert_eq!(rejected(&log), vec![want]);
    }
}

#[test]
fn extent_rules_refuse_with_reasons() {
    use DiskRefusalReason::*;
    let p = VentoyParam::observed_iso();
    let with = |regions: Vec<(u32, u32, u64)>| VentoyLocation {
        regions,
        ..fat32_location()
    };
    let cases: Vec<(VentoyParam, VentoyLocation, DiskRefusalReason)> = vec![
        // WIM chain: the list maps ventoy_wimboot.img from memory.
        (p.clone().chain_type(2), fat32_location(), VentoyWimChain),
        // A region at disk sector 0 (memory-backed data).
        (
            p.clone(),
            with(vec![(100, 0, 0), (1983, 100, 5000)]),
            VentoyMemoryRegion,
        ),
        // Image sectors not consecutive.
        (
            p.clone(),
            with(vec![(100, 0, 4000), (1983, 101, 5000)]),
            VentoyRegionLayout,
        ),
        // The runs do not cover the file.
        (
            p.clone(),
            with(vec![(100, 0, 4000), (1982, 100, 5000)]),
            ExtentTotal {
                extents_bytes: 2082 * 2048,
                image_bytes: 2083 * 2048,
            },
        ),
        // Past the end of the disk Ventoy recorded (64 MiB).
        (
            p.clone(),
            with(vec![(2083, 0, (64 << 20) / 512 - 100)]),
            PastDiskEnd {
                disk_size: 64 << 20,
            },
        ),
        // Two runs sharing disk sectors.
        (
            p.clone(),
            with(vec![(1000, 0, 4000), (1083, 1000, 6000)]),
            OverlappingExtents,
        ),
        // 4 KiB disk sectors with 512-byte image sectors that do not fill them.
        (
            VentoyParam {
                image_size: 3 * 512,
                ..p.clone()
            },
            VentoyLocation {
                image_sector_size: 512,
                disk_sector_size: 4096,
                ..with(vec![(3, 0, 100)])
            },
            VentoyRegionLayout,
        ),
    ];
    for (param, loc, want) in cases {
        let param = param.with_location(&loc);
        let (d, log) = go(&planted(&param, &loc));
        assert!(d.disk_backed.is_empty(), "{want:?}");
        assert_eq!(refusal(&d), vec![want], "{:#?}", log.lines);
        assert_eq!(d.disk_refused[0].source, BackingSource::Ventoy);
        assert_eq!(d.disk_refused[0].table_address, PARAM_AT);
    }
}

// ------------------------------------------------------------------ memdisk mode (§4)

#[test]
fn bios_memdisk_mode_is_syslinux_memdisk() {
    // Ventoy's BIOS memdisk runs stock MEMDISK 6.03 `iso raw`: the mBFT path finds it.
    let md = MemdiskBlock::observed_iso();
    let mut m = bios_mem();
    md.install(&mut m);
    plant_iso9660(&mut m, u64::from(md.diskbuf), ISO_BLOCKS);
    let (d, _) = run_with(&m, &bios_input(&[]), &Handoff::default());
    assert_eq!(d.images.len(), 1);
    assert_eq!(d.images[0].image.source, LoaderSource::Memdisk);
    assert!(d.disk_backed.is_empty());
}

#[test]
fn uefi_memdisk_variable_gives_a_ram_image() {
    const PHYS: u64 = 0x0EC8_0000 + 2616;
    let mut m = PhysMem::new();
    plant_iso9660(&mut m, PHYS, ISO_BLOCKS);
    // GRUB's chain head in front: an os_param whose checksum need not hold (§4).
    VentoyParam {
        fix_checksum: false,
        ..VentoyParam::observed_iso()
    }
    .plant(&mut m, PHYS - 2616);
    plant_observed_hdd_mbr(&mut m, 0x2000_0000);
    let ram = vec![PhysRange::new(0x10_0000, 0x0E00_0000)];
    let input = DiscoveryInput {
        firmware: Firmware::Uefi,
        ..bios_input(&ram)
    };
    // DiskSize is 2616 bytes short of the image (§4); the chain head's image size restores it.
    let iso_var = [PHYS.to_le_bytes(), (2083 * 2048 - 2616u64).to_le_bytes()].concat();
    let (d, log) = run_with(
        &m,
        &input,
        &Handoff {
            ventoy_ram_disk: Some(&iso_var),
            ..Handoff::default()
        },
    );
    assert_eq!(d.images.len(), 1, "{:#?}", log.lines);
    let img = d.images[0].image;
    assert_eq!((img.kind, img.phys_base), (DeviceKind::CdRom, PHYS));
    assert_eq!(img.length, 2083 * 2048);
    assert_eq!(d.images[0].via, FoundVia::FIRMWARE_VARIABLE);
    assert!(log.any(|e| matches!(e, Event::VentoyRamDisk { phys: PHYS, .. })));

    // An IMG is a hard disk. Without a chain head (VHD boot) the variable's size is exact.
    let img_var = [0x2000_0000u64.to_le_bytes(), (8u64 << 20).to_le_bytes()].concat();
    let (d, _) = run_with(
        &m,
        &input,
        &Handoff {
            ventoy_ram_disk: Some(&img_var),
            ..Handoff::default()
        },
    );
    assert_eq!(d.images[0].image.kind, DeviceKind::Disk);
    assert_eq!(d.images[0].image.length, 8 << 20);

    // In OS RAM: refused like any RAM image (rule 23); a short variable is rejected.
    let in_ram = [0x0100_0000u64.to_le_bytes(), 4096u64.to_le_bytes()].concat();
    let (d, log) = run_with(
        &m,
        &input,
        &Handoff {
            ventoy_ram_disk: Some(&in_ram),
            ..Handoff::default()
        },
    );
    assert!(d.images.is_empty());
    assert!(matches!(
        d.refused[0].reason,
        RefusalReason::OverlapsOsRam { .. }
    ));
    m.assert_no_reads_in(&ram);
    let (_, log2) = run_with(
        &m,
        &input,
        &Handoff {
            ventoy_ram_disk: Some(&in_ram[..15]),
            ..Handoff::default()
        },
    );
    assert!(log.any(|e| matches!(e, Event::VentoyRamDisk { .. })));
    assert_eq!(rejected(&log2), vec![VentoyProblem::Short]);
}

// ------------------------------------------------------------------ identification (§2.4)

fn ventoy_image(p: &VentoyParam) -> DiskBackedImage {
    let (d, _) = go(&planted(p, &fat32_location()));
    d.disk_backed[0].clone()
}

#[test]
fn identify_ventoy_disk_by_its_mbr_id_signature_and_size() {
    let p = VentoyParam::observed_iso();
    let img = ventoy_image(&p);
    let stick = SparseDisk::new(64 << 20).ventoy_mbr(&p.disk_id, 0x1234_5678);
    let other = SparseDisk::new(64 << 20).ventoy_mbr(b"another-ventoy!!", 0x1234_5678);
    let plain = SparseDisk::new(500 << 30);
    assert_eq!(
        identify_backing_disk(&img, &[&plain, &other, &stick]),
        Ok(2)
    );
    assert_eq!(
        identify_backing_disk(&img, &[&plain, &other]),
        Err(IdentifyRefusal::NoneMatched)
    );
    // Same ID, other signature or size: the evidence contradicts itself.
    let resig = SparseDisk::new(64 << 20).ventoy_mbr(&p.disk_id, 0xDEAD_BEEF);
    let resized = SparseDisk::new(128 << 20).ventoy_mbr(&p.disk_id, 0x1234_5678);
    for bad in [&resig, &resized] {
        assert!(matches!(
            identify_backing_disk(&img, &[&plain, bad]),
            Err(IdentifyRefusal::Contradicts { disk: 1, .. })
        ));
    }
    // Two identical sticks (a clone): refuse.
    let clone = stick.clone();
    assert_eq!(
        identify_backing_disk(&img, &[&stick, &clone]),
        Err(IdentifyRefusal::Ambiguous {
            first: 0,
            second: 1
        })
    );
    // A record without a signature (Ventoy before 2020-09) matches on ID and size alone.
    let unsigned = ventoy_image(&VentoyParam {
        disk_signature: 0,
        ..p.clone()
    });
    let stick2 = SparseDisk::new(64 << 20).ventoy_mbr(&p.disk_id, 0x0BAD_F00D);
    assert_eq!(identify_backing_disk(&unsigned, &[&stick2]), Ok(0));
}
