//! Deterministic fuzz smoke test (always run by `cargo test`): the body of
//! `fuzz/fuzz_targets/discovery.rs` over inputs from a seeded xorshift PRNG, biased towards
//! interesting memory: every observed layout from `rvblk_memimage::scenarios` (plus a 16-slot
//! GRUB4DOS block and hostile chains), mutated in the bytes discovery parses — structure
//! fields, pointers, counts, checksums, content sectors, OS RAM ranges and NFIT bytes.

#[path = "discovery_common/mod.rs"]
mod common;

use common::run;
use rvblk_core::discovery::{Firmware, PhysRange};
use rvblk_memimage::scenarios::{self, Scenario};
use rvblk_memimage::{plant_observed_hdd_mbr, G4dSlot, Grub4DosBlock};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

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

fn sixteen_slot() -> Scenario {
    let mut s = scenarios::g4d_nomem();
    let mut blk = Grub4DosBlock::sixteen(0x9CC00);
    blk.slots = (0..12u64)
        .map(|i| G4dSlot::memdrive_hdd(0x80 + i as u8, 0x1000_0000 + i * (8 << 20), 8 << 20))
        .collect();
    blk.install(&mut s.mem);
    for i in 0..12u64 {
        plant_observed_hdd_mbr(&mut s.mem, 0x1000_0000 + i * (8 << 20));
    }
    s.os_ram = vec![PhysRange::new(0x1000, 0x9B000)];
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

#[test]
fn discovery_fuzz_smoke() {
    let mut bases = scenarios::all();
    bases.push(sixteen_slot());
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
            found += d.images.len();
            s.mem.assert_no_reads_in(&s.os_ram);
        }
    }
    // The mutations are light enough that most inputs still describe images.
    assert!(
        found > bases.len() * iterations / 2,
        "only {found} images found"
    );
}
