//! Deterministic fuzz smoke test (always run by `cargo test`): the body of
//! `fuzz/fuzz_targets/discovery.rs` over inputs from a seeded xorshift PRNG, biased towards
//! interesting memory: every observed layout from `rvblk_memimage::scenarios` (plus 16-slot
//! GRUB4DOS blocks of both layouts with disk-backed slots and fragment maps, an 8-slot block
//! with a CD-buffer tail, and Ventoy hand-offs), mutated in the bytes discovery parses —
//! structure fields, pointers, counts, checksums, content sectors, OS RAM ranges, NFIT bytes and
//! the Ventoy UEFI variables. Every disk-backed result is also run through backing-disk
//! identification against mutated candidate disks.

#[path = "discovery_common/mod.rs"]
mod common;
mod rng;

use common::{check_invariants, run, Log};
use rng::XorShift;
use rvblk_core::discovery::{
    discover_with, identify_backing_disk, Discovered, Firmware, Handoff, IdentifyRefusal, PhysRange,
};
use rvblk_core::image::DiskEvidence;
use rvblk_memimage::scenarios::{self, Scenario};
use rvblk_memimage::{
    plant_observed_hdd_mbr, FragmentRecord, G4dSlot, Grub4DosBlock, PhysMem, SparseDisk,
    VentoyLocation, VentoyParam,
};

/// Values that hit boundaries in the parsers.
const INTERESTING: [u64; 16] = [
    0,
    1,
    3,
    4,
    0xFF,
    0x100,
    0x9CC0_0100,
    0x9F00_000A,
    0xFFFF_FFFF,
    0xFFFF_FFFF_FFFF_FFFF,
    0x7FFF_FFFF_FFFF_FFFF,
    0x10_0000 / 512,
    0x8000_0000,
    0x0FBC_E000,
    0x9F660,
    0xA_0000,
];

/// A 16-slot block with RAM and disk-backed (contiguous and fragmented) slots in both tables.
fn sixteen_slot(mut blk: Grub4DosBlock) -> Scenario {
    let mut s = scenarios::g4d_nomem();
    blk.slots = (0..12u64)
        .map(|i| match i {
            6 | 10 => {
                G4dSlot::disk_backed_hdd(0x80 + i as u8, 0x80, 0x4000 * i, 0x3000).fragmented()
            }
            7 | 11 => G4dSlot::disk_backed_cd(0x80 + i as u8, 0x81, 0x800 * i, 8332),
            _ => G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * (8 << 20), 8 << 20),
        })
        .collect();
    blk.fragments = [6u64, 10]
        .iter()
        .map(|&i| FragmentRecord {
            from: 0x80 + i as u8,
            to: 0x80,
            extents: vec![(0x4000 * i, 0x1000), (0x4000 * i + 0x2000, 0x2000)],
        })
        .collect();
    blk.install(&mut s.mem);
    for i in 0..12u64 {
        plant_observed_hdd_mbr(&mut s.mem, 0x1000_0000 + i * (8 << 20));
    }
    s.os_ram = vec![PhysRange::new(0x1000, 0x9B000)];
    s
}

/// An 8-slot block (all slots used) whose CD-buffer tail before `int13end` holds slot-like bytes.
fn eight_slot_cd_tail() -> Scenario {
    let mut s = scenarios::g4d_nomem();
    let tail: Vec<u8> = (0..9u8)
        .flat_map(|i| G4dSlot::disk_backed_hdd(0xA0 + i, 0x80, 0x100, 0x100).to_bytes())
        .collect();
    let mut blk = Grub4DosBlock::eight_with_int13end(0x9CC00, tail);
    blk.slots = (0..8u64)
        .map(|i| G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * (8 << 20), 8 << 20))
        .collect();
    blk.install(&mut s.mem);
    for i in 0..8u64 {
        plant_observed_hdd_mbr(&mut s.mem, 0x1000_0000 + i * (8 << 20));
    }
    s.os_ram = vec![PhysRange::new(0x1000, 0x9B000)];
    s
}

/// Ventoy's BIOS hand-off: the record at 0x9E6F0 and a 4-run extent list in the E820 hole.
fn ventoy_bios() -> Scenario {
    let mut s = scenarios::g4d_nomem();
    s.mem = PhysMem::new();
    s.mem.with_bios_defaults().set_bda_basemem_kib(624);
    let loc = VentoyLocation::runs(
        2048,
        &[(256, 7360), (256, 9408), (256, 11456), (1315, 14528)],
    );
    let p = VentoyParam::observed_iso().with_location(&loc);
    p.plant(&mut s.mem, 0x9E6F0);
    loc.plant(&mut s.mem, p.location_addr);
    s.os_ram = vec![
        PhysRange::new(0x1000, 0x9B000),
        PhysRange::new(0x10_0000, 0x0F00_0000),
    ];
    s.expected.clear();
    s
}

fn mutate(rng: &mut XorShift, s: &mut Scenario) {
    let pages: Vec<u64> = s.mem.pages().collect();
    let n = 1 + rng.below(6);
    for _ in 0..n {
        match rng.below(6) {
            // A random byte in a page that holds data (structures or content sectors).
            0 | 1 if !pages.is_empty() => {
                let p = pages[rng.below(pages.len() as u64) as usize];
                let off = rng.below(4096);
                let v = rng.next() as u8;
                s.mem.write_u8(p + off, v);
            }
            // An interesting u16/u32/u64 at an aligned offset of a data page.
            2 if !pages.is_empty() => {
                let p = pages[rng.below(pages.len() as u64) as usize];
                let off = rng.below(4096 / 4) * 4;
                let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                match rng.below(3) {
                    0 => s.mem.write(p + off, &(v as u16).to_le_bytes()),
                    1 => s.mem.write(p + off.min(4092), &(v as u32).to_le_bytes()),
                    _ => s.mem.write(p + off.min(4088), &v.to_le_bytes()),
                };
            }
            // IVT[0x13] or BDA 0x413.
            3 => {
                if rng.chance(2) {
                    let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize] as u32;
                    s.mem.write_u32(0x4C, v);
                } else {
                    s.mem.write_u16(0x413, 600 + rng.below(40) as u16);
                }
            }
            // OS RAM: add a range near an expected image (or anywhere), or drop the list.
            4 => {
                if rng.chance(4) {
                    s.os_ram.clear();
                } else {
                    let near = s
                        .expected
                        .get(rng.below(s.expected.len() as u64 + 1) as usize)
                        .map(|e| e.phys_base);
                    let start = match near {
                        Some(b) => {
                            b.saturating_add(rng.below(0x90_0000))
                                .saturating_sub(0x10_0000)
                                & !0xFFF
                        }
                        None => rng.below(1 << 34) & !0xFFF,
                    };
                    s.os_ram
                        .push(PhysRange::new(start, (1 + rng.below(0x400)) * 0x1000));
                }
            }
            // NFIT bytes, firmware.
            _ => {
                if let Some(t) = s.nfit.as_mut() {
                    let i = rng.below(t.len() as u64) as usize;
                    t[i] = rng.next() as u8;
                    if rng.chance(2) {
                        // Keep the checksum valid so the structure walk is reached.
                        t[9] = 0;
                        let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
                        t[9] = 0u8.wrapping_sub(sum);
                    }
                }
                if rng.chance(8) {
                    s.firmware =
                        [Firmware::Bios, Firmware::Uefi, Firmware::Unknown][rng.below(3) as usize];
                }
            }
        }
    }
}

/// Candidate disks for identification: the right one, a clone, a stranger, a broken one, with
/// a few random bytes changed.
fn candidate_disks(
    rng: &mut XorShift,
    img: &rvblk_core::image::DiskBackedImage,
) -> Vec<SparseDisk> {
    let mut good = match img.evidence {
        DiskEvidence::Ventoy {
            disk_id,
            mbr_signature,
            disk_size,
        } => SparseDisk::new(disk_size).ventoy_mbr(&disk_id, mbr_signature.unwrap_or(0)),
        DiskEvidence::BiosDrive => SparseDisk::new(1 << 40),
    };
    let extents = img.extents.to_vec();
    good.plant_iso(&extents, 2083);
    good.plant_boot_signature(&extents);
    let mut disks = vec![good.clone(), SparseDisk::new(rng.below(1 << 36))];
    if rng.chance(3) {
        disks.push(good.clone().bios(rng.next() as u8));
    }
    if rng.chance(4) {
        let mut broken = good;
        broken.broken = true;
        disks.push(broken);
    }
    for d in &mut disks {
        if rng.chance(2) {
            let off = rng.below(0x200);
            d.data.write_u8(off + 0x100, rng.next() as u8);
        }
    }
    disks
}

#[test]
fn discovery_fuzz_smoke() {
    let mut bases = scenarios::all();
    bases.push(sixteen_slot(Grub4DosBlock::sixteen(0x9CC00)));
    bases.push(sixteen_slot(Grub4DosBlock::sixteen_old(0x9CC00)));
    bases.push(eight_slot_cd_tail());
    bases.push(ventoy_bios());
    // RVBLK_FUZZ_SEED / RVBLK_FUZZ_ITERS allow longer local runs.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut rng = XorShift(env("RVBLK_FUZZ_SEED", 0x005E_ED0F_D15C_0BE5) | 1);
    let iterations = env("RVBLK_FUZZ_ITERS", 250) as usize;
    let mut found = 0usize;
    for base in &bases {
        for _ in 0..iterations {
            let mut s = base.clone();
            s.mem.set_read_logging(true);
            mutate(&mut rng, &mut s);
            // `run` asserts the invariants (whole blocks, ≥ 1 block, ≥ 1 MiB, no overlap with OS
            // RAM or another image).
            let (d, _) = run(&s.mem, &s.input());
            found += d.images.len() + d.disk_backed.len();
            s.mem.assert_no_reads_in(&s.os_ram);
            for img in &d.disk_backed {
                let disks = candidate_disks(&mut rng, img);
                match identify_backing_disk(img, &disks) {
                    Ok(i) => assert!(i < disks.len()),
                    Err(IdentifyRefusal::Ambiguous { first, second }) => {
                        assert!(first < second && second < disks.len())
                    }
                    Err(_) => {}
                }
            }
        }
    }
    // The mutations are light enough that most inputs still describe images.
    assert!(
        found > bases.len() * iterations / 2,
        "only {found} images found"
    );
}

/// The Ventoy UEFI variables as untrusted bytes: a valid record and extent list, mutated.
#[test]
fn ventoy_uefi_variables_fuzz_smoke() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut rng = XorShift(env("RVBLK_FUZZ_SEED", 0x0BAD_5EED_1234_5678) | 1);
    let loc = VentoyLocation::runs(2048, &[(1000, 4000), (1083, 9000)]);
    let param = VentoyParam::observed_iso().with_location(&loc).to_bytes();
    let os_ram = vec![PhysRange::new(0x10_0000, 0x0E00_0000)];
    let mut accepted = 0;
    for _ in 0..env("RVBLK_FUZZ_ITERS", 250) * 4 {
        let mut mem = PhysMem::new();
        let mut loc_bytes = loc.to_bytes();
        let mut p = param.to_vec();
        for _ in 0..rng.below(4) {
            match rng.below(4) {
                0 if !p.is_empty() => {
                    let i = rng.below(p.len() as u64) as usize;
                    p[i] = rng.next() as u8;
                }
                1 => {
                    let i = rng.below(loc_bytes.len() as u64) as usize;
                    loc_bytes[i] = rng.next() as u8;
                }
                2 if p.len() >= 8 => {
                    let i = (rng.below(p.len() as u64 / 8) * 8) as usize;
                    p[i..i + 8].copy_from_slice(&INTERESTING[rng.below(16) as usize].to_le_bytes());
                }
                3 => p.truncate(rng.below(600) as usize),
                _ => {}
            }
            if rng.chance(2) && p.len() >= 512 {
                // Keep the checksum valid so the deeper checks are reached.
                p[0x10] = 0;
                let sum = p[..512].iter().fold(0u8, |a, &b| a.wrapping_add(b));
                p[0x10] = 0u8.wrapping_sub(sum);
            }
        }
        mem.write(0x0FF3_C000, &loc_bytes);
        let ram_disk: Vec<u8> = (0..rng.below(20)).map(|_| rng.next() as u8).collect();
        let input = rvblk_core::discovery::DiscoveryInput {
            os_ram: &os_ram,
            nfit: None,
            firmware: Firmware::Uefi,
            max_phys_end: 1 << 52,
            total_ram_bytes: 0,
        };
        let handoff = Handoff {
            ventoy_os_param: Some(&p),
            ventoy_ram_disk: rng.chance(3).then_some(&ram_disk[..]),
        };
        let mut d = Discovered::default();
        discover_with(&mem, &input, &handoff, &mut Log::default(), &mut d);
        check_invariants(&d, &input);
        mem.assert_no_reads_in(&os_ram);
        accepted += d.disk_backed.len();
    }
    // Light mutations leave many records valid.
    assert!(accepted > 100, "only {accepted} accepted");
}
