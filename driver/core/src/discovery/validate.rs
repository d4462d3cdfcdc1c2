//! Normalisation and validation of candidates (`docs/loaders.md` §9 F, rules 4, 23–28).
//!
//! * [`offer`] runs when a loader parser produces a candidate: whole blocks, overflow (rule 4),
//!   below 1 MiB (rules 12, 18, 27), maximum physical address (rule 24), size bounds (rule 25)
//!   and **OS RAM (rule 23), before any content read**. Only survivors enter the list.
//! * [`finish`] then sniffs content (rule 28; CD length capped at the ISO9660 volume size) and
//!   resolves duplicates and overlaps (rule 26, §9 F1): exact duplicates merge into the entry
//!   found first (chain before scans before NFIT); any other overlap refuses the later one.
//!
//! * [`offer_disk`] checks a disk-backed candidate's extents (`docs/loaders.md`
//!   §3.10): at least one, none empty, no overflow, inside the plausible disk size (and the
//!   recorded disk size for Ventoy), pairwise disjoint, covering the image, which is whole
//!   blocks and within the size cap.
//!
//! Rule 27's ACPI/MMIO part is not checked here: the NFIT's own physical address and the PnP
//! MMIO list are not inputs (MMIO is never in `os_ram`, and images there would fail the sniff
//! for CDs). Rule 29 is the port's job (see `image_fingerprint`).

use crate::image::{DeviceKind, DiskBackedImage, DiskEvidence};

use super::content::{check_non_cd, sniff_cd, CdContent};
use super::memory::{os_ram_hit, ONE_MIB};
use super::{
    Ctx, DiscoveryLog, DiskRefusal, DiskRefusalReason, Event, Found, PhysicalMemory, RefusalReason,
    MAX_IMAGE_BYTES,
};

/// No backing disk is larger than this (1 PiB): an extent past it is corrupt, whatever disk the
/// port later finds (`docs/loaders.md` §3.10).
pub const MAX_BACKING_DISK_BYTES: u64 = 1 << 50;

pub(crate) fn offer_disk<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    mut img: DiskBackedImage,
) {
    let refusal = |reason| DiskRefusal {
        source: img.source,
        emulated_drive: img.emulated_drive,
        bios_drive: img.bios_drive,
        table_address: img.table_address,
        slot: img.slot,
        reason,
    };
    match check_extents(&img) {
        Err(reason) => ctx.refuse_disk(refusal(reason)),
        Ok(()) => {
            // Parsers already produce whole blocks; keep the invariant here too.
            let bs = u64::from(img.kind.block_size());
            img.length = img.length / bs * bs;
            let event = Event::DiskBacked {
                source: img.source,
                emulated_drive: img.emulated_drive,
                bios_drive: img.bios_drive,
                extents: img.extents.len() as u8,
                length: img.length,
            };
            let r = refusal(DiskRefusalReason::TooManyImages);
            if ctx.out.disk_backed.try_push(img).is_err() {
                ctx.refuse_disk(r);
            } else {
                ctx.log(event);
            }
        }
    }
}

fn check_extents(img: &DiskBackedImage) -> Result<(), DiskRefusalReason> {
    let ss = u64::from(img.sector_size);
    if !matches!(img.sector_size, 512 | 2048 | 4096) {
        return Err(DiskRefusalReason::SectorSize {
            size: img.sector_size,
        });
    }
    if img.extents.is_empty() {
        return Err(DiskRefusalReason::TooSmall);
    }
    let disk_limit = match img.evidence {
        DiskEvidence::Ventoy { disk_size, .. } => Some(disk_size),
        DiskEvidence::BiosDrive => None,
    };
    let mut total = 0u64;
    for (i, e) in img.extents.iter().enumerate() {
        if e.sectors == 0 {
            return Err(DiskRefusalReason::EmptyExtent);
        }
        let end_byte = e
            .start
            .checked_add(e.sectors)
            .and_then(|end| end.checked_mul(ss))
            .filter(|&b| b <= MAX_BACKING_DISK_BYTES)
            .ok_or(DiskRefusalReason::Overflow)?;
        if let Some(disk_size) = disk_limit {
            if end_byte > disk_size {
                return Err(DiskRefusalReason::PastDiskEnd { disk_size });
            }
        }
        // Both ends are < 2^50, so these cannot overflow.
        let end = e.start + e.sectors;
        if img.extents[..i]
            .iter()
            .any(|o| e.start < o.start + o.sectors && o.start < end)
        {
            return Err(DiskRefusalReason::OverlappingExtents);
        }
        total = total
            .checked_add(e.sectors * ss)
            .ok_or(DiskRefusalReason::Overflow)?;
    }
    let bs = u64::from(img.kind.block_size());
    if img.length < bs {
        return Err(DiskRefusalReason::TooSmall);
    }
    if img.length > MAX_IMAGE_BYTES {
        return Err(DiskRefusalReason::TooLarge);
    }
    // The extents must cover the image, and not by more than one backing sector of slack
    // (Ventoy rounds the last run up to a whole image sector; GRUB4DOS CDs drop < 2048 bytes).
    if total < img.length || total - img.length >= ss.max(bs) {
        return Err(DiskRefusalReason::ExtentTotal {
            extents_bytes: total,
            image_bytes: img.length,
        });
    }
    Ok(())
}

pub(crate) fn offer<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    mut found: Found,
) {
    let img = found.image;
    let src = img.source;
    let bs = u64::from(img.kind.block_size());
    let whole = img.length / bs * bs;
    if whole == 0 {
        return ctx.refuse(img.phys_base, img.length, src, RefusalReason::TooSmall);
    }
    if whole != img.length {
        ctx.log(Event::LengthCapped {
            base: img.phys_base,
            from: img.length,
            to: whole,
            why: "whole blocks",
        });
    }
    let Some(end) = img.phys_base.checked_add(whole) else {
        return ctx.refuse(img.phys_base, whole, src, RefusalReason::Overflow);
    };
    if img.phys_base < ONE_MIB {
        return ctx.refuse(img.phys_base, whole, src, RefusalReason::LowMemory);
    }
    let max_phys_end = ctx.input.effective_max_phys_end();
    if end > max_phys_end {
        return ctx.refuse(
            img.phys_base,
            whole,
            src,
            RefusalReason::AboveMaxPhys { max_phys_end },
        );
    }
    let limit = match ctx.input.total_ram_bytes {
        0 => MAX_IMAGE_BYTES,
        ram => ram.min(MAX_IMAGE_BYTES),
    };
    if whole > limit {
        return ctx.refuse(img.phys_base, whole, src, RefusalReason::TooLarge { limit });
    }
    if let Some(r) = os_ram_hit(ctx.input.os_ram, img.phys_base, end) {
        let reason = RefusalReason::OverlapsOsRam {
            ram_start: r.start,
            ram_end: r.end(),
        };
        return ctx.refuse(img.phys_base, whole, src, reason);
    }
    found.image.length = whole;
    if ctx.out.images.try_push(found).is_err() {
        ctx.refuse(img.phys_base, whole, src, RefusalReason::TooManyImages);
    }
}

#[inline(never)] // one step per frame: see `discover_with`
pub(crate) fn finish<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
) {
    sniff_all(ctx);
    resolve_overlaps(ctx);
}

/// Rule 28 and the CD size cap (§9 F3, observed §4.4: GRUB4DOS pads 8332 → 8336 sectors).
fn sniff_all<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(ctx: &mut Ctx<'_, M, L>) {
    let mut i = 0;
    while i < ctx.out.images.len() {
        let img = ctx.out.images[i].image;
        if img.kind != DeviceKind::CdRom {
            if let Some(what) = check_non_cd(&ctx.mem, &img) {
                ctx.log(Event::ContentWarning {
                    base: img.phys_base,
                    kind: img.kind,
                    what,
                });
            }
            i += 1;
            continue;
        }
        match sniff_cd(&ctx.mem, &img) {
            CdContent::Iso { volume_blocks } => {
                let iso_len = u64::from(volume_blocks) * 2048;
                if volume_blocks != 0 && iso_len < img.length {
                    ctx.log(Event::LengthCapped {
                        base: img.phys_base,
                        from: img.length,
                        to: iso_len,
                        why: "ISO9660 volume space size",
                    });
                    ctx.out.images[i].image.length = iso_len;
                } else if iso_len > img.length {
                    ctx.log(Event::ContentWarning {
                        base: img.phys_base,
                        kind: img.kind,
                        what: "ISO9660 volume larger than the image",
                    });
                }
                i += 1;
            }
            CdContent::Udf => i += 1,
            other => {
                let reason = if other == CdContent::Unreadable {
                    RefusalReason::ContentUnreadable
                } else {
                    RefusalReason::NoCdFilesystem
                };
                ctx.out.images.remove(i);
                ctx.refuse(img.phys_base, img.length, img.source, reason);
            }
        }
    }
}

/// Rule 26 / §9 F1: merge exact duplicates, refuse later partial overlaps.
fn resolve_overlaps<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(ctx: &mut Ctx<'_, M, L>) {
    let mut i = 1;
    'outer: while i < ctx.out.images.len() {
        let b = ctx.out.images[i];
        let (bs, be) = (b.image.phys_base, b.image.phys_end());
        for j in 0..i {
            let a = ctx.out.images[j];
            let (as_, ae) = (a.image.phys_base, a.image.phys_end());
            if bs >= ae || as_ >= be {
                continue;
            }
            ctx.out.images.remove(i);
            if as_ == bs && ae == be && a.image.kind == b.image.kind {
                ctx.out.images[j].via |= b.via;
                ctx.log(Event::Merged {
                    base: bs,
                    length: b.image.length,
                    kept: a.image.source,
                    dropped: b.image.source,
                });
            } else {
                let reason = RefusalReason::Overlap {
                    other_base: as_,
                    other_length: a.image.length,
                };
                ctx.refuse(bs, b.image.length, b.image.source, reason);
            }
            continue 'outer;
        }
        i += 1;
    }
}
