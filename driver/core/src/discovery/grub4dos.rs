//! GRUB4DOS BIOS handler block and drive-map slots (`docs/loaders.md` §3, §9 B2, rules 9–14).
//!
//! The slot parser is shared with the UEFI grub4efi/a1ive page (§4), which uses the same slot
//! layout.

use crate::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};

use super::memory::{le16, le64, LOW_END};
use super::{
    Ctx, DiscoveryLog, Event, Found, FoundVia, PhysicalMemory, RefusalReason, Seen, SlotSkip,
};

/// `$INT13SFGRUB4DOS`: the 16-byte combined signature at base + 0x103 (BIOS) or page + 0xE3
/// (UEFI).
pub(crate) const COMBINED_SIGNATURE: &[u8; 16] = b"$INT13SFGRUB4DOS";
/// Offset of the drive-map table in the BIOS handler block (§3.1).
pub(crate) const TABLE_OFFSET: u32 = 0x20;
/// Offset of the safe hook (INT 13h entry) in the BIOS handler block (§3.1).
pub(crate) const HOOK_OFFSET: u32 = 0x100;
/// `FRAGMENT` marker offset in 8-slot builds from 2021-12 on (§3.1).
pub(crate) const FRAGMENT_OFFSET: u32 = 0x140;
pub(crate) const FRAGMENT: &[u8; 8] = b"FRAGMENT";
pub(crate) const SLOT_LEN: usize = 24;
/// Slots per array (plus one all-zero terminator slot) (§3.3).
pub(crate) const SLOTS_PER_TABLE: usize = 8;

/// One decoded 24-byte drive-map slot (§3.2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) from_drive: u8,
    pub(crate) to_drive: u8,
    pub(crate) max_sector: u8,
    pub(crate) to_cylinder: u16,
    pub(crate) to_sector: u8,
    pub(crate) start_sector: u64,
    pub(crate) sector_count: u64,
}

impl Slot {
    pub(crate) fn decode(b: &[u8; SLOT_LEN]) -> Slot {
        Slot {
            from_drive: b[0],
            to_drive: b[1],
            max_sector: b[3],
            to_cylinder: le16(b, 4),
            to_sector: b[7],
            start_sector: le64(b, 8),
            sector_count: le64(b, 16),
        }
    }

    /// §3.4 / rule 11: memory only if to_drive 0xFF and TO is not a CD (bit 14).
    pub(crate) fn is_memdrive(&self) -> bool {
        self.to_drive == 0xFF && self.to_cylinder & 0x4000 == 0
    }

    /// §3.4: bit 13 (FROM is a CD) first, then the drive number's bit 7.
    pub(crate) fn kind(&self) -> DeviceKind {
        if self.to_cylinder & 0x2000 != 0 {
            DeviceKind::CdRom
        } else if self.from_drive & 0x80 != 0 {
            DeviceKind::Disk
        } else {
            DeviceKind::Floppy
        }
    }

    /// §3.2 X/Y decoding: max_sector bit 7 = X, to_sector bit 6 = Y.
    pub(crate) fn write_policy(&self) -> WritePolicy {
        match (self.max_sector & 0x80 != 0, self.to_sector & 0x40 != 0) {
            (true, true) => WritePolicy::DiscardWrites,
            (true, false) => WritePolicy::ReadOnly,
            _ => WritePolicy::ReadWrite, // safe boot or none
        }
    }
}

/// Per-table parse settings.
#[derive(Clone, Copy)]
pub(crate) struct TableInfo {
    pub(crate) source: LoaderSource,
    pub(crate) via: FoundVia,
    /// a1ive's module may produce 512-byte-aligned bases: no alignment warning (rule 12).
    pub(crate) allow_unaligned: bool,
}

/// Bitmap of from_drive values already used in one logical table (rule 10).
#[derive(Default)]
pub(crate) struct DriveSet([u32; 8]);

impl DriveSet {
    /// Insert; false if already present.
    fn insert(&mut self, d: u8) -> bool {
        let (w, bit) = (usize::from(d >> 5), 1u32 << (d & 31));
        let new = self.0[w] & bit == 0;
        self.0[w] |= bit;
        new
    }
}

/// Parse up to 8 slots at `table` (stop at an all-zero slot, rule 10). `first_index` numbers the
/// slots (8 for the second array of a 16-slot build).
pub(crate) fn parse_slots<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    table: u32,
    first_index: u8,
    drives: &mut DriveSet,
    info: TableInfo,
) {
    for i in 0..SLOTS_PER_TABLE as u8 {
        let addr = u64::from(table) + u64::from(i) * SLOT_LEN as u64;
        let Some(raw) = ctx.mem.low::<SLOT_LEN>(addr) else {
            return;
        };
        if raw.iter().all(|&b| b == 0) {
            return; // §3.3: an all-zero slot ends the table
        }
        let slot = Slot::decode(&raw);
        let index = first_index + i;
        let skip = |why| Event::SlotSkipped {
            table: u64::from(table),
            slot: index,
            from_drive: slot.from_drive,
            why,
        };
        // Rule 10: special drives, unique from_drive, zero count, in-situ memdrive.
        if matches!(slot.from_drive, 0x21..=0x23) {
            ctx.log(skip(SlotSkip::SpecialDrive));
            continue;
        }
        if !drives.insert(slot.from_drive) {
            ctx.log(skip(SlotSkip::DuplicateDrive));
            continue;
        }
        if slot.sector_count == 0 {
            ctx.log(skip(SlotSkip::ZeroCount));
            continue;
        }
        // Rule 11: only memdrives are RAM.
        if !slot.is_memdrive() {
            ctx.log(skip(SlotSkip::DiskBacked));
            continue;
        }
        if slot.to_sector & 0x80 != 0 {
            ctx.log(skip(SlotSkip::InSitu));
            continue;
        }
        offer_slot(ctx, table, index, &slot, info);
    }
}

/// §3.5 conversion: base = start × 512, bytes = count × 512; CD blocks = count / 4 (rule 13).
fn offer_slot<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    table: u32,
    index: u8,
    slot: &Slot,
    info: TableInfo,
) {
    let kind = slot.kind();
    // Rule 4: checked arithmetic; the refusal records saturated values.
    let (Some(base), Some(bytes)) = (
        slot.start_sector.checked_mul(512),
        slot.sector_count.checked_mul(512),
    ) else {
        let base = slot.start_sector.saturating_mul(512);
        let bytes = slot.sector_count.saturating_mul(512);
        ctx.refuse(base, bytes, info.source, RefusalReason::Overflow);
        return;
    };
    let length = if kind == DeviceKind::CdRom {
        if slot.sector_count < 4 {
            ctx.refuse(base, bytes, info.source, RefusalReason::CdTooShort);
            return;
        }
        (slot.sector_count / 4) * 2048
    } else {
        bytes
    };
    // Rule 12: GRUB4DOS and grub4efi always page-align; a1ive may not.
    if !base.is_multiple_of(4096) && !info.allow_unaligned {
        ctx.log(Event::NonAlignedBase {
            base,
            source: info.source,
        });
    }
    let image = MemoryImage {
        kind,
        phys_base: base,
        length,
        write_policy: slot.write_policy(),
        source: info.source,
        table_address: u64::from(table),
        slot: index,
        bios_drive: slot.from_drive,
    };
    ctx.offer(Found {
        image,
        via: info.via,
    });
}

/// A `GRUB4DOS` hook reached on the chain at `lin` through `vector` (§9 B2, rule 9).
pub(crate) fn from_hook<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    vector: u32,
    lin: u32,
    seen: &mut Seen,
) {
    // The table is found from the segment (§3.1); a genuine hook has offset 0x100 and a
    // KiB-aligned base.
    let base = (vector >> 16) << 4;
    if vector & 0xFFFF != HOOK_OFFSET {
        ctx.log(Event::Grub4DosNonStandard {
            hook: lin,
            why: "vector offset is not 0x100",
        });
        return;
    }
    if !base.is_multiple_of(0x400) {
        ctx.log(Event::Grub4DosNonStandard {
            hook: lin,
            why: "base not KiB-aligned",
        });
        return;
    }
    if !ctx.mem.low_eq(u64::from(base + 0x103), COMBINED_SIGNATURE) {
        ctx.log(Event::Grub4DosNonStandard {
            hook: lin,
            why: "no $INT13SFGRUB4DOS at base+0x103",
        });
        return;
    }
    if seen.grub4dos_bases.contains(&base) {
        return;
    }
    let _ = seen.grub4dos_bases.try_push(base);
    parse_block(ctx, base, FoundVia::IVT_CHAIN);
}

/// Parse a verified BIOS handler block at `base` (signature already checked at +0x103).
pub(crate) fn parse_block<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    base: u32,
    via: FoundVia,
) {
    // Rule 9 optional checks: warn only (older builds may differ).
    let size_kib = ctx.mem.low::<1>(u64::from(base)).map_or(0, |b| b[0]);
    let block_end = u64::from(base) + u64::from(size_kib) * 1024;
    if size_kib == 0 || block_end > LOW_END {
        ctx.log(Event::Grub4DosHeader {
            base,
            what: "size byte at +0 is 0 or runs past 0xA0000",
        });
    }
    if ctx.mem.low_u16(u64::from(base) + 8) != Some(1) {
        ctx.log(Event::Grub4DosHeader {
            base,
            what: "version word at +8 is not 1",
        });
    }
    let info = TableInfo {
        source: LoaderSource::Grub4Dos,
        via,
        allow_unaligned: false,
    };
    let mut drives = DriveSet::default();
    parse_slots(ctx, base + TABLE_OFFSET, 0, &mut drives, info);
    // §3.3: 16-slot builds (2014-08..2021-12) keep slots 9–16 in a second 9-slot array right
    // before a `FRAGMENT` marker that is not at +0x140.
    if ctx.mem.low_eq(u64::from(base + FRAGMENT_OFFSET), FRAGMENT) {
        return;
    }
    let search_end = if size_kib == 0 {
        LOW_END.min(u64::from(base) + 0x4000)
    } else {
        block_end.min(LOW_END)
    };
    if let Some(marker) = find_second_table(ctx, base, search_end) {
        let table = marker - (SLOTS_PER_TABLE as u32 + 1) * SLOT_LEN as u32;
        ctx.log(Event::SixteenSlotTable { base, table });
        parse_slots(ctx, table, SLOTS_PER_TABLE as u8, &mut drives, info);
    }
}

/// Find a `FRAGMENT` marker in `[base + 0x148 + 216, search_end)` whose preceding 24 bytes (the
/// second array's terminator slot) are zero.
fn find_second_table<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    base: u32,
    search_end: u64,
) -> Option<u32> {
    const ARRAY: u64 = ((SLOTS_PER_TABLE + 1) * SLOT_LEN) as u64;
    let mut pos = u64::from(base) + 0x148 + ARRAY;
    let mut buf = [0u8; 512];
    while pos + 8 <= search_end {
        let n = ((search_end - pos) as usize).min(buf.len());
        if !ctx.mem.low_into(pos, &mut buf[..n]) {
            return None;
        }
        for i in 0..n.saturating_sub(7) {
            if &buf[i..i + 8] == FRAGMENT {
                let marker = pos + i as u64;
                let mut term = [0u8; SLOT_LEN];
                if ctx.mem.low_into(marker - SLOT_LEN as u64, &mut term)
                    && term.iter().all(|&b| b == 0)
                {
                    return Some(marker as u32);
                }
            }
        }
        // Overlap by 7 bytes so a marker across the chunk boundary is seen.
        pos += (n as u64).saturating_sub(7).max(1);
    }
    None
}
