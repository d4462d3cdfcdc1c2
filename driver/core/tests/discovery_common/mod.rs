//! Shared helpers for the discovery tests (included with `#[path]` by each `discovery_*.rs`).
#![allow(dead_code)]

use rvblk_core::discovery::{
    discover, Discovered, DiscoveryInput, DiscoveryLog, Event, Firmware, PhysRange,
};
use rvblk_core::image::DiskEvidence;
use rvblk_memimage::scenarios::Scenario;
use rvblk_memimage::PhysMem;

/// Records every event (refusals are leaked to get `'static`; fine in tests) and its text.
#[derive(Default, Debug)]
pub struct Log {
    pub events: Vec<Event<'static>>,
    pub lines: Vec<String>,
}

impl DiscoveryLog for Log {
    fn event(&mut self, event: &Event<'_>) {
        self.lines.push(event.to_string());
        let owned: Event<'static> = match *event {
            Event::Refused(r) => Event::Refused(Box::leak(Box::new(*r))),
            Event::HookFound { hook, vendor } => Event::HookFound { hook, vendor },
            Event::UnknownVendor { hook, vendor } => Event::UnknownVendor { hook, vendor },
            Event::BadVendor { hook } => Event::BadVendor { hook },
            Event::ChainLoop { hook } => Event::ChainLoop { hook },
            Event::ChainTooLong => Event::ChainTooLong,
            Event::ChainEnd { vector } => Event::ChainEnd { vector },
            Event::HookInFreeMemory { hook, bda_top } => Event::HookInFreeMemory { hook, bda_top },
            Event::Grub4DosNonStandard { hook, why } => Event::Grub4DosNonStandard { hook, why },
            Event::Grub4DosHeader { base, what } => Event::Grub4DosHeader { base, what },
            Event::SixteenSlotTable { base, table } => Event::SixteenSlotTable { base, table },
            Event::SecondTableRejected { base, table, why } => {
                Event::SecondTableRejected { base, table, why }
            }
            Event::DiskBacked {
                source,
                emulated_drive,
                bios_drive,
                extents,
                length,
            } => Event::DiskBacked {
                source,
                emulated_drive,
                bios_drive,
                extents,
                length,
            },
            Event::DiskRefused(r) => Event::DiskRefused(Box::leak(Box::new(*r))),
            Event::VentoyParam { addr } => Event::VentoyParam { addr },
            Event::VentoyRejected { addr, why } => Event::VentoyRejected { addr, why },
            Event::VentoyRamDisk { phys, size } => Event::VentoyRamDisk { phys, size },
            Event::SlotSkipped {
                table,
                slot,
                from_drive,
                why,
            } => Event::SlotSkipped {
                table,
                slot,
                from_drive,
                why,
            },
            Event::StaleCopySkipped { signature } => Event::StaleCopySkipped { signature },
            Event::UnchainedBlock { base } => Event::UnchainedBlock { base },
            Event::UefiPage { page, grub4efi } => Event::UefiPage { page, grub4efi },
            Event::ExtraUefiPage { page } => Event::ExtraUefiPage { page },
            Event::NonAlignedBase { base, source } => Event::NonAlignedBase { base, source },
            Event::MbftRejected { mbft, why } => Event::MbftRejected { mbft, why },
            Event::MbftWarning { mbft, what } => Event::MbftWarning { mbft, what },
            Event::MemdiskKindMismatch {
                mbft,
                driveno,
                shift,
            } => Event::MemdiskKindMismatch {
                mbft,
                driveno,
                shift,
            },
            Event::NfitProblem { offset, what } => Event::NfitProblem { offset, what },
            Event::LengthCapped {
                base,
                from,
                to,
                why,
            } => Event::LengthCapped {
                base,
                from,
                to,
                why,
            },
            Event::ContentWarning { base, kind, what } => {
                Event::ContentWarning { base, kind, what }
            }
            Event::Merged {
                base,
                length,
                kept,
                dropped,
            } => Event::Merged {
                base,
                length,
                kept,
                dropped,
            },
            Event::RefusalListFull => Event::RefusalListFull,
        };
        self.events.push(owned);
    }
}

impl Log {
    pub fn any(&self, pred: impl Fn(&Event<'static>) -> bool) -> bool {
        self.events.iter().any(pred)
    }

    pub fn count(&self, pred: impl Fn(&Event<'static>) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }
}

pub fn run(mem: &PhysMem, input: &DiscoveryInput<'_>) -> (Discovered, Log) {
    let mut log = Log::default();
    let d = discover(mem, input, &mut log);
    check_invariants(&d, input);
    (d, log)
}

pub fn run_scenario(s: &Scenario) -> (Discovered, Log) {
    run(&s.mem, &s.input())
}

/// A BIOS input with the given OS RAM.
pub fn bios_input(os_ram: &[PhysRange]) -> DiscoveryInput<'_> {
    DiscoveryInput {
        os_ram,
        nfit: None,
        firmware: Firmware::Bios,
        max_phys_end: 1 << 52,
        total_ram_bytes: 0,
    }
}

/// The invariants every result must satisfy (also asserted by the fuzz target).
pub fn check_invariants(d: &Discovered, input: &DiscoveryInput<'_>) {
    for img in &d.disk_backed {
        let ss = u64::from(img.sector_size);
        let bs = u64::from(img.block_size());
        assert!(matches!(img.sector_size, 512 | 2048 | 4096), "{img:?}");
        assert!(img.length >= bs && img.length % bs == 0, "{img:?}");
        assert!(!img.extents.is_empty(), "{img:?}");
        let mut total = 0u64;
        for (i, e) in img.extents.iter().enumerate() {
            assert!(e.sectors > 0, "{img:?}");
            let end = e
                .start
                .checked_add(e.sectors)
                .expect("extent end overflows");
            let end_byte = end.checked_mul(ss).expect("extent byte end overflows");
            if let DiskEvidence::Ventoy { disk_size, .. } = img.evidence {
                assert!(end_byte <= disk_size, "{img:?}");
            }
            for o in &img.extents[..i] {
                assert!(end <= o.start || o.start + o.sectors <= e.start, "{img:?}");
            }
            total = total.checked_add(e.sectors * ss).expect("total overflows");
        }
        assert!(total >= img.length, "{img:?}");
        assert_eq!(img.extent_bytes(), total);
    }
    for (i, f) in d.images.iter().enumerate() {
        let img = f.image;
        let bs = u64::from(img.block_size());
        assert!(img.length >= bs, "image shorter than a block: {img:?}");
        assert_eq!(img.length % bs, 0, "not whole blocks: {img:?}");
        let end = img
            .phys_base
            .checked_add(img.length)
            .expect("end overflows");
        assert!(img.phys_base >= 0x10_0000, "below 1 MiB: {img:?}");
        assert!(
            !input
                .os_ram
                .iter()
                .any(|r| r.intersects(img.phys_base, end)),
            "overlaps OS RAM: {img:?}"
        );
        for g in &d.images[..i] {
            assert!(
                end <= g.image.phys_base || g.image.phys_end() <= img.phys_base,
                "images overlap: {img:?} {g:?}"
            );
        }
    }
}
