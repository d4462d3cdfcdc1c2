//! Golden tests: the real-world layouts of `docs/loaders-observed.md` (§3 MEMDISK, §4 GRUB4DOS,
//! §4.5 stale copies, §5 chained loaders) and the UEFI cases of `docs/loaders.md` §4/§6.

#[path = "discovery_common/mod.rs"]
mod common;

use common::{run, run_scenario};
use rvblk_core::discovery::{Event, FoundVia};
use rvblk_core::image::{DeviceKind, LoaderSource, WritePolicy};
use rvblk_memimage::scenarios::{self, Scenario};
use rvblk_memimage::{G4dSlot, Grub4DosBlock, MemdiskBlock};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `docs/loaders-observed.md` §3.1: the full ISO-case mBFT bytes.
#[test]
fn memdisk_iso_mbft_bytes_match_observed_hex() {
    let expected = hex(
        "6d42465446000000016b4d454d44534b5379736c696e75780000000000000000000000000af009001e000406\
         00e0bc0f23080000e007009ffee300f059f800f07f02b00b0000",
    );
    let md = MemdiskBlock::observed_iso();
    assert_eq!(md.mbft_bytes(), expected);
    assert_eq!(md.mbft_addr(), 0x9F660);
    assert_eq!(md.hook_addr(), 0x9F00A);
    // Safe hook bytes (§3.1): e9 1c 00 $INT13SF MEMDISK  fe e3 00 f0 00000000 60 f6 09 00.
    let mut hook = hex("e91c00");
    hook.extend_from_slice(b"$INT13SFMEMDISK ");
    hook.extend(hex("fee300f0 00000000 60f60900"));
    assert_eq!(md.hook_bytes().to_vec(), hook);
    assert_eq!(MemdiskBlock::observed_hdd().mbft_addr(), 0x9F600);
    assert_eq!(MemdiskBlock::observed_floppy().mbft_addr(), 0x9F8C0);
    assert_eq!(
        MemdiskBlock::observed_floppy().hook_bytes()[0x1B..],
        0x9F8C0u32.to_le_bytes()
    );
}

/// `docs/loaders-observed.md` §4.1–§4.2: header, hook and slot bytes of the 0.4.6a block.
#[test]
fn grub4dos_block_bytes_match_observed() {
    let blk = Grub4DosBlock::new(0x9CC00);
    assert_eq!(blk.header_bytes()[..0x10].to_vec(), {
        let mut v = hex("0c0000c0");
        v.extend_from_slice(b"G4DS");
        v.extend(hex("0100 27 01 59f800f0"));
        v
    });
    assert_eq!(blk.header_bytes()[0x1C..], hex("fee300f0")[..]);
    let mut hook = hex("e91909");
    hook.extend_from_slice(b"$INT13SFGRUB4DOS");
    hook.extend(hex("fee300f0 01000000 01000000"));
    assert_eq!(blk.hook_bytes().to_vec(), hook);

    let iso = G4dSlot::memdrive_cd(0x0FBC_E000, 2083 * 2048);
    assert_eq!(
        iso.to_bytes().to_vec(),
        hex("ffff fe3f 20a0 fe7f 70de070000000000 9020000000000000")
    );
    let img = G4dSlot::memdrive_hdd(0x81, 0x0F3C_E000, 8 << 20);
    assert_eq!(
        img.to_bytes().to_vec(),
        hex("81ff 0320 2080 fe7f 709e070000000000 0040000000000000")
    );
    assert_eq!(
        G4dSlot::swap(0x81, 0x80).to_bytes()[..8],
        hex("81800001 0680fe7f")[..]
    );
    // §3.2 worked example `63 FF 01 12 83FF FE 7F 43fff0 8`.
    let ex = G4dSlot::from_bytes(
        hex("63ff0112ff83fe7f f0ff430000000000 0800000000000000")
            .try_into()
            .unwrap(),
    );
    assert_eq!(ex.phys(), 0x87FF_E000);

    let mut mem = rvblk_memimage::PhysMem::new();
    blk.install(&mut mem);
    assert_eq!(mem.u32_at(0x4C), 0x9CC0_0100);
    assert_eq!(mem.u32_at(0x54), 0x9CC0_20FC);
    assert_eq!(mem.u16_at(0x413), 627);
    assert_eq!(mem.bytes(0x9CD03, 16), b"$INT13SFGRUB4DOS");
    assert_eq!(mem.bytes(0x9CC00 + 0xF8, 8), hex("0000000010000000"));
    assert_eq!(mem.bytes(0x9CC00 + 0x140, 8), b"FRAGMENT");
}

fn check(s: &Scenario) {
    let (d, _log) = run_scenario(s);
    let got: Vec<_> = d
        .images
        .iter()
        .map(|f| {
            (
                f.image.kind,
                f.image.phys_base,
                f.image.length,
                f.image.source,
                f.image.write_policy,
            )
        })
        .collect();
    let want: Vec<_> = s
        .expected
        .iter()
        .map(|e| (e.kind, e.phys_base, e.length, e.source, e.write_policy))
        .collect();
    assert_eq!(got, want, "scenario {}: refused {:?}", s.name, d.refused);
    s.mem.assert_no_reads_in(&s.os_ram);
}

#[test]
fn observed_memdisk_iso() {
    let s = scenarios::memdisk_iso();
    check(&s);
    let (d, log) = run_scenario(&s);
    let f = d.images[0];
    assert_eq!(f.image.table_address, 0x9F660);
    assert_eq!(f.image.bios_drive, 0xE0);
    assert_eq!(f.image.blocks(), 2083);
    assert!(f.image.is_read_only());
    assert_eq!(
        f.via,
        FoundVia::IVT_CHAIN,
        "the scan must not re-add the chained mBFT"
    );
    assert!(log.any(|e| matches!(e, Event::HookFound { hook: 0x9F00A, .. })));
}

#[test]
fn observed_memdisk_hdd() {
    let s = scenarios::memdisk_hdd();
    check(&s);
    let (d, _) = run_scenario(&s);
    assert_eq!(d.images[0].image.bios_drive, 0x80);
    assert_eq!(d.images[0].image.blocks(), 16384);
}

#[test]
fn observed_memdisk_floppy() {
    let s = scenarios::memdisk_floppy();
    check(&s);
    let (d, log) = run_scenario(&s);
    assert_eq!(d.images[0].image.bios_drive, 0x00);
    // The observed floppy image has no BPB: a warning, not a refusal (rule 28).
    assert!(log.any(|e| matches!(
        e,
        Event::ContentWarning {
            kind: DeviceKind::Floppy,
            ..
        }
    )));
}

#[test]
fn observed_g4d_iso_and_img_with_padding_capped() {
    let s = scenarios::g4d_both();
    check(&s);
    let (d, log) = run_scenario(&s);
    assert_eq!(
        d.images[0].image.blocks(),
        2083,
        "8336 sectors padded → capped at the 2083-block volume"
    );
    assert_eq!(d.images[0].image.bios_drive, 0xFF);
    assert_eq!(d.images[0].image.table_address, 0x9CC20);
    assert_eq!(
        (d.images[1].image.slot, d.images[1].image.bios_drive),
        (1, 0x81)
    );
    assert!(log.any(|e| matches!(
        e,
        Event::LengthCapped {
            from: 4_268_032,
            to: 4_265_984,
            ..
        }
    )));
}

#[test]
fn observed_g4d_hd0_swap_slot_skipped() {
    let s = scenarios::g4d_hd0();
    check(&s);
    let (_, log) = run_scenario(&s);
    assert!(log.any(|e| matches!(
        e,
        Event::SlotSkipped {
            slot: 1,
            from_drive: 0x81,
            ..
        }
    )));
}

#[test]
fn observed_g4d_fd0() {
    check(&scenarios::g4d_fd0());
}

#[test]
fn observed_g4d_no_mem_disk_backed_slot_is_a_disk_backed_cd() {
    let s = scenarios::g4d_nomem();
    check(&s);
    let (d, log) = run_scenario(&s);
    assert!(d.images.is_empty() && d.refused.is_empty());
    assert!(log.any(|e| matches!(
        e,
        Event::SlotSkipped {
            why: rvblk_core::discovery::SlotSkip::DiskBacked,
            from_drive: 0xFF,
            ..
        }
    )));
    // Observed slot: from 0xFF, to 0x80, to_cylinder 0xA006, the file's LBA 0x8E4, 8332 sectors
    // (`docs/loaders.md` §3.9).
    use rvblk_core::image::{BackingSource, DiskEvidence, Extent};
    assert_eq!(d.disk_backed.len(), 1);
    let img = &d.disk_backed[0];
    assert_eq!(img.source, BackingSource::Grub4Dos);
    assert_eq!((img.emulated_drive, img.bios_drive), (0xFF, 0x80));
    assert_eq!(img.kind, rvblk_core::image::DeviceKind::CdRom);
    assert_eq!(img.sector_size, 512);
    assert_eq!(
        img.extents.to_vec(),
        vec![Extent {
            start: 0x8E4,
            sectors: 8332
        }]
    );
    assert_eq!(img.blocks(), 2083);
    assert!(img.is_read_only());
    assert_eq!(img.evidence, DiskEvidence::BiosDrive);
    assert_eq!((img.table_address, img.slot), (0x9CC20, 0));
}

#[test]
fn observed_g4d_6gib_below_4g() {
    check(&scenarios::g4d_6g_below_4g());
}

#[test]
fn observed_g4d_6gib_top_above_4g() {
    let s = scenarios::g4d_6g_top();
    check(&s);
    // On a non-PAE 32-bit kernel both are refused (rule 24).
    let mut input = s.input();
    input.max_phys_end = 1 << 32;
    let (d, _) = run(&s.mem, &input);
    assert!(d.images.is_empty());
    assert_eq!(d.refused.len(), 2);
}

#[test]
fn observed_chained_memdisk_then_grub4dos() {
    let s = scenarios::chained_memdisk_g4d();
    check(&s);
    let (_, log) = run_scenario(&s);
    let hooks: Vec<u32> = log
        .events
        .iter()
        .filter_map(|e| match e {
            Event::HookFound { hook, .. } => Some(*hook),
            _ => None,
        })
        .collect();
    assert_eq!(hooks, vec![0x9C00A, 0x9CD00]);
}

#[test]
fn observed_stale_copies_never_accepted() {
    // The template at 0x08EE0 (signature 0x08FE3) has the live slot table; the literal at
    // 0x57E2B is followed by garbage. With the live block gone (IVT back to the BIOS, BDA at
    // 639), nothing may be found.
    let mut s = scenarios::g4d_both();
    s.mem.plant_ivt13(0xF000, 0xE3FE).set_bda_basemem_kib(639);
    s.mem.fill(0x9CC00, 0x400, 0); // wipe the live block
                                   // Make the stale targets pass every other test: no OS RAM over the images.
    s.os_ram.clear();
    let (d, log) = run_scenario(&s);
    assert!(d.images.is_empty(), "{:?}", d.images);
    // Stale copies at KiB-aligned addresses are also skipped, and logged.
    let mut blk = Grub4DosBlock::new(0x50000);
    blk.slots = vec![G4dSlot::memdrive_cd(0x0FBC_E000, 2083 * 2048)];
    blk.plant(&mut s.mem);
    let (d, log2) = run_scenario(&s);
    assert!(d.images.is_empty());
    assert!(log2.any(|e| matches!(e, Event::StaleCopySkipped { signature: 0x50103 })));
    drop(log);
}

#[test]
fn observed_grub4efi_page() {
    let s = scenarios::grub4efi_page();
    check(&s);
    let (d, log) = run_scenario(&s);
    assert_eq!(d.images[0].via, FoundVia::PAGE_SCAN);
    assert!(log.any(|e| matches!(
        e,
        Event::UefiPage {
            page: 0x9F000,
            grub4efi: true
        }
    )));
    // The IVT planted under UEFI was ignored.
    assert!(!log.any(|e| matches!(e, Event::HookFound { .. } | Event::ChainEnd { .. })));
}

#[test]
fn observed_a1ive_page_unaligned_base() {
    let s = scenarios::a1ive_page();
    check(&s);
    let (_, log) = run_scenario(&s);
    assert!(log.any(|e| matches!(
        e,
        Event::UefiPage {
            grub4efi: false,
            ..
        }
    )));
    assert!(!log.any(|e| matches!(e, Event::NonAlignedBase { .. })));
}

#[test]
fn observed_nfit_ramdisks() {
    let s = scenarios::nfit_ramdisks();
    check(&s);
    let (d, _) = run_scenario(&s);
    assert!(d
        .images
        .iter()
        .all(|f| f.via == FoundVia::NFIT && f.image.write_policy == WritePolicy::ReadWrite));
    assert_eq!(d.images[0].image.source, LoaderSource::Nfit);
}

#[test]
fn all_scenarios_pass_and_dump_round_trips() {
    let dir = std::env::temp_dir().join(format!("rvblk-discovery-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for s in scenarios::all() {
        check(&s);
        // Round-trip only the 256 MiB guests (loading reads the whole sparse file).
        if s.mem.pages().last().unwrap_or(0) >= 256 << 20 {
            continue;
        }
        let path = dir.join(format!("{}.raw", s.name));
        s.mem.write_dump(&path).unwrap();
        let loaded = rvblk_memimage::PhysMem::load_dump(&path).unwrap();
        let (a, _) = run_scenario(&s);
        let (b, _) = run(&loaded, &s.input());
        assert_eq!(a.images, b.images, "{}", s.name);
        std::fs::remove_file(&path).unwrap();
    }
    let _ = std::fs::remove_dir(&dir);
}
