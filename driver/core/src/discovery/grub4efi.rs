//! GRUB4DOS-compatible page scan (`docs/loaders.md` §4, §4.5 observed, §9 D).
//!
//! * D1, BIOS layout (1 KiB steps): `$INT13SFGRUB4DOS` at q + 0x103, table at q + 0x20. A block
//!   is accepted **only** when it sits at the BDA-derived base (`BDA[0x413] × 1024`) — a resident
//!   handler that is no longer reachable from IVT[0x13]. Blocks on the chain were parsed in §9 B;
//!   every other hit is a stale copy (GRUB4DOS's own stage2 template, string literals, previous
//!   boots: observed at 0x08FE3 and 0x57E2B) and is only logged.
//! * D2, UEFI layout (4 KiB pages): signature at q + 0xE3, table at q; `GRUB4EFI` at q + 0x100
//!   identifies grub4efi, its absence a1ive's GRUB2 `g4d` module. Stale pages survive warm
//!   reboots (§4.1); their images are caught by rule 23 (and by duplicate merging).

use crate::image::LoaderSource;

use super::grub4dos::{parse_block, parse_slots, DriveSet, TableInfo, COMBINED_SIGNATURE};
use super::memory::LOW_END;
use super::{Ctx, DiscoveryLog, Event, Firmware, FoundVia, PhysicalMemory, Seen};

/// Lowest page scanned (above IVT/BDA).
const SCAN_START: u32 = 0x1000;

#[inline(never)] // one step per frame: see `discover_with`
pub(crate) fn scan<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    seen: &Seen,
) {
    let firmware = ctx.input.firmware;
    let bios_layout = firmware != Firmware::Uefi;
    let uefi_layout = firmware != Firmware::Bios;
    let mut uefi_pages = 0u32;
    let mut q = (LOW_END as u32) - 0x400;
    while q >= SCAN_START {
        if bios_layout && ctx.mem.low_eq(u64::from(q) + 0x103, COMBINED_SIGNATURE) {
            if seen.grub4dos_bases.contains(&q) {
                // Already parsed through the chain (§9 B2).
            } else if ctx.bda_top != 0 && q == ctx.bda_top {
                ctx.log(Event::UnchainedBlock { base: q });
                parse_block(ctx, q, FoundVia::PAGE_SCAN);
            } else {
                ctx.log(Event::StaleCopySkipped {
                    signature: q + 0x103,
                });
            }
        }
        if uefi_layout
            && q.is_multiple_of(0x1000)
            && ctx.mem.low_eq(u64::from(q) + 0xE3, COMBINED_SIGNATURE)
        {
            let grub4efi = ctx.mem.low_eq(u64::from(q) + 0x100, b"GRUB4EFI");
            ctx.log(Event::UefiPage { page: q, grub4efi });
            if uefi_pages > 0 {
                ctx.log(Event::ExtraUefiPage { page: q });
            }
            uefi_pages += 1;
            let info = TableInfo {
                source: LoaderSource::Grub4Efi,
                via: FoundVia::PAGE_SCAN,
                allow_unaligned: !grub4efi,
                disk_backed: None,
            };
            parse_slots(ctx, q, 0, &mut DriveSet::default(), info);
        }
        q -= 0x400;
    }
}
