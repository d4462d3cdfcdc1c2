//! Corrupt and hostile tables: length lies, structures at the edge of low memory, pointers into
//! OS RAM, many copies of the same table, and images planted in OS RAM with reads instrumented.

#[path = "discovery_common/mod.rs"]
mod common;

use common::{bios_input, run};
use rvblk_core::discovery::{
    DiscoveryInput, Event, Firmware, FoundVia, MbftProblem, PhysRange, RefusalReason,
};
use rvblk_memimage::scenarios;
use rvblk_memimage::{
    plant_iso9660, G4dSlot, Grub4DosBlock, MemdiskBlock, NfitBuilder, PhysMem,
    NFIT_GUID_VIRTUAL_DISK,
};

fn bios_mem() -> PhysMem {
    let mut m = PhysMem::new();
    m.with_bios_defaults();
    m
}

#[test]
fn mbft_length_lie_with_valid_checksum_is_bounded() {
    // length 256 and MDI.bytes 216 agree and the checksum is fixed up: the table is "valid", and
    // every field still comes from fixed, bounds-checked offsets.
    let md = MemdiskBlock {
        mdi_bytes: 216,
        ..MemdiskBlock::observed_iso()
    };
    let mut m = bios_mem();
    md.install(&mut m);
    plant_iso9660(&mut m, 0x0FBC_E000, 2083);
    let (d, _) = run(&m, &bios_input(&[]));
    assert_eq!(d.images.len(), 1);
    // The same mBFT moved so that its 256 bytes would cross 0xA0000.
    let mut m = bios_mem();
    let md = MemdiskBlock {
        hook_mbft_override: Some(0x9FF40),
        ..md
    };
    md.install(&mut m);
    m.write(0x9FF40, &md.mbft_and_patch_bytes());
    let (d, log) = run(&m, &bios_input(&[]));
    assert!(d.images.is_empty());
    assert!(log.any(|e| matches!(
        e,
        Event::MbftRejected {
            why: MbftProblem::OutOfLowMemory,
            ..
        }
    )));
    assert!(m.reads().iter().all(|r| r.end() <= 0xA_0000));
}

#[test]
fn grub4dos_size_byte_runs_past_low_memory() {
    let mut m = bios_mem();
    let mut blk = Grub4DosBlock::new(0x9F000);
    blk.size_kib = 0xFF;
    blk.fragment = false; // forces the older-layout FRAGMENT search over the (bounded) block
    blk.slots = vec![G4dSlot::memdrive_cd(0x0FBC_E000, 2083 * 2048)];
    blk.install(&mut m);
    plant_iso9660(&mut m, 0x0FBC_E000, 2083);
    let (d, log) = run(&m, &bios_input(&[]));
    assert_eq!(d.images.len(), 1);
    assert!(log.any(|e| matches!(e, Event::Grub4DosHeader { .. })));
    assert!(m
        .reads()
        .iter()
        .all(|r| r.end() <= 0xA_0000 || r.phys >= 0x0FBC_E000));
}

#[test]
fn many_hooks_sharing_one_mbft_yield_one_image() {
    let md = MemdiskBlock::observed_hdd();
    let mut m = bios_mem();
    md.install(&mut m);
    rvblk_memimage::plant_observed_hdd_mbr(&mut m, u64::from(md.diskbuf));
    // Three copies of the hook at other addresses, chained in front, all pointing at the mBFT.
    let mut prev = 0x9F00_000Au32;
    for i in 0..3u64 {
        let lin = 0x9E000 + i * 0x100;
        let mut h = md.hook_bytes();
        h[0x13..0x17].copy_from_slice(&prev.to_le_bytes());
        m.write(lin, &h);
        prev = ((lin >> 4) as u32) << 16;
    }
    m.write_u32(0x4C, prev);
    let (d, log) = run(&m, &bios_input(&[]));
    assert_eq!(d.images.len(), 1);
    // The copies fail the cross-link (the mBFT names 0x9F00A); the real hook matches.
    assert_eq!(
        log.count(|e| matches!(
            e,
            Event::MbftRejected {
                why: MbftProblem::CrossLink,
                ..
            }
        )),
        3
    );
    assert_eq!(d.images[0].via, FoundVia::IVT_CHAIN);
}

#[test]
fn tables_pointing_into_os_ram_and_kernel_memory() {
    // A fabricated GRUB4DOS table pointing at "kernel memory" (OS RAM everywhere above 1 MiB).
    let mut s = scenarios::g4d_both();
    let os = vec![
        PhysRange::new(0x1000, 0x9B000),
        PhysRange::new(0x10_0000, 0xFFF0_0000),
    ];
    s.os_ram = os.clone();
    let (d, _) = run(&s.mem, &s.input());
    assert!(d.images.is_empty());
    assert!(d
        .refused
        .iter()
        .all(|r| matches!(r.reason, RefusalReason::OverlapsOsRam { .. })));
    s.mem.assert_no_reads_in(&os);
    // Same for MEMDISK and NFIT.
    let mut s = scenarios::memdisk_iso();
    s.os_ram = os.clone();
    let t = NfitBuilder::new()
        .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x2000_0000, 8 << 20)
        .build();
    s.nfit = Some(t);
    let (d, _) = run(&s.mem, &s.input());
    assert!(d.images.is_empty());
    assert_eq!(d.refused.len(), 2);
    s.mem.assert_no_reads_in(&os);
}

#[test]
fn os_ram_ranges_that_are_huge_or_wrap() {
    let s = scenarios::g4d_6g_top();
    let os = [
        PhysRange::new(u64::MAX - 0x1000, u64::MAX),
        PhysRange::new(0x1_BFBE_E000 + 0x8000, 0),
    ];
    let input = DiscoveryInput {
        os_ram: &os,
        ..s.input()
    };
    let (d, _) = run(&s.mem, &input);
    // The wrapping range saturates (covers nothing we use); the empty range intersects nothing.
    assert_eq!(d.images.len(), 2);
}

#[test]
fn ivt_pointing_into_the_middle_of_structures() {
    let s = scenarios::chained_memdisk_g4d();
    for vec in [
        0x9CC0_0103u32,
        0x9C00_0000,
        0x9C66_0000,
        0x0000_0000,
        0xA000_0000,
        0x9FFF_FFF0,
    ] {
        let mut m = s.mem.clone();
        m.write_u32(0x4C, vec);
        let (d, _) = run(&m, &s.input());
        // Whatever survives still comes from the genuine structures (found by the scans).
        assert!(d.images.len() <= 2);
        m.assert_no_reads_in(&s.os_ram);
    }
}

#[test]
fn nfit_with_many_tiny_structures_terminates() {
    let mut t = NfitBuilder::new();
    for _ in 0..2000 {
        t = t.raw(vec![7, 0, 4, 0]);
    }
    let table = t.build();
    let m = PhysMem::new();
    let input = DiscoveryInput {
        nfit: Some(&table),
        firmware: Firmware::Uefi,
        ..bios_input(&[])
    };
    let (d, _) = run(&m, &input);
    assert!(d.images.is_empty());
}

#[test]
fn older_16_slot_layout_needs_the_0xfc_marker() {
    let mut m = bios_mem();
    let mut blk = rvblk_memimage::Grub4DosBlock::sixteen_old(0x9CC00);
    blk.marker_fc = false;
    blk.slots = (0..10u64)
        .map(|i| G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * (8 << 20), 8 << 20))
        .collect();
    blk.install(&mut m);
    for i in 0..10u64 {
        rvblk_memimage::plant_observed_hdd_mbr(&mut m, 0x1000_0000 + i * (8 << 20));
    }
    let (d, _) = run(&m, &bios_input(&[]));
    assert_eq!(d.images.len(), 8);
}

#[test]
fn ventoy_region_count_in_the_hundreds_of_millions_is_refused_without_reading_it() {
    use rvblk_core::discovery::DiskRefusalReason;
    use rvblk_memimage::{VentoyLocation, VentoyParam};
    let mut m = bios_mem();
    m.set_bda_basemem_kib(624);
    let n: u32 = (u32::MAX - 28) / 16;
    let p = VentoyParam {
        location_len: 28 + 16 * n,
        ..VentoyParam::observed_iso()
    };
    p.plant(&mut m, 0x9E6F0);
    let mut loc = VentoyLocation::runs(2048, &[(2083, 3868)]);
    loc.plant(&mut m, p.location_addr);
    m.write_u32(p.location_addr + 0x18, n);
    let (d, _) = run(&m, &bios_input(&[]));
    assert!(d.disk_backed.is_empty());
    assert_eq!(
        d.disk_refused.iter().map(|r| r.reason).collect::<Vec<_>>(),
        vec![DiskRefusalReason::TooManyExtents { count: n }]
    );
    assert!(m.reads().iter().all(|r| r.phys < p.location_addr + 4096));
    // A list whose regions (merging into one extent) run into an unreadable page.
    let mut m2 = bios_mem();
    m2.set_bda_basemem_kib(624);
    loc = VentoyLocation::runs(
        2048,
        &(0..400u32)
            .map(|i| (1, 5000 + 4 * u64::from(i)))
            .collect::<Vec<_>>(),
    );
    let p2 = VentoyParam {
        image_size: 400 * 2048,
        ..VentoyParam::observed_iso()
    }
    .with_location(&loc);
    p2.plant(&mut m2, 0x9E6F0);
    loc.plant(&mut m2, p2.location_addr);
    m2.mark_unreadable(p2.location_addr + 0x1000, 0x1000);
    let (d, log) = run(&m2, &bios_input(&[]));
    assert!(d.disk_backed.is_empty() && d.disk_refused.is_empty());
    assert!(log.any(|e| matches!(
        e,
        Event::VentoyRejected {
            why: rvblk_core::discovery::VentoyProblem::LocationUnreadable,
            ..
        }
    )));
}
