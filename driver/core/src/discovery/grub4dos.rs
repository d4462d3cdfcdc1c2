//! GRUB4DOS BIOS handler block and drive-map slots (`docs/loaders.md` §3, §9 B2, rules 9–14;
//! `docs/loaders.md` §3.3 for the 16-slot layouts, §3.6 for the fragment map,
//! §3.9 for disk-backed slots).
//!
//! The slot parser is shared with the UEFI grub4efi/a1ive page (§4), which uses the same slot
//! layout; only BIOS blocks produce disk-backed images (their TO drives are BIOS disks).

use arrayvec::ArrayVec;

use crate::image::{
    BackingSource, DeviceKind, DiskBackedImage, DiskEvidence, Extent, LoaderSource, MemoryImage,
    WritePolicy, MAX_EXTENTS,
};

use super::memory::{le16, le64, LOW_END};
use super::{
    Ctx, DiscoveryLog, DiskRefusal, DiskRefusalReason, Event, Found, FoundVia, PhysicalMemory,
    RefusalReason, Seen, SlotSkip,
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
/// The ASCII marker that follows the second slot table in current 16-slot builds
/// (`docs/loaders.md` §3.3).
pub(crate) const INT13END: &[u8; 8] = b"int13end";
/// Older 16-slot builds: `FRAGMENT` directly after the second table, 8-byte aligned, somewhere in
/// this handler-offset window (GRUB4DOS's own restart code searches exactly there).
pub(crate) const OLD_FRAGMENT_WINDOW: (u32, u32) = (0x2800, 0x3000);
/// Largest fragment map (2023-06 on; 0x280 bytes before).
pub(crate) const FRAGMENT_MAP_MAX: u32 = 0x800;
pub(crate) const SLOT_LEN: usize = 24;
/// Slots per array (plus one all-zero terminator slot) (§3.3).
pub(crate) const SLOTS_PER_TABLE: usize = 8;
/// One slot array including its terminator: 9 × 24 = 216 bytes.
pub(crate) const TABLE_BYTES: u32 = ((SLOTS_PER_TABLE + 1) * SLOT_LEN) as u32;

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

    /// Whether 24 bytes that are not all zero look like a slot GRUB4DOS wrote
    /// (`docs/loaders.md` §3.3): start and count below 2^40 sectors, a swap or
    /// whole-drive slot has start 0, and a memdrive has a count and lies above 1 MiB. Used only
    /// to accept or reject a whole second table, never to accept a single image.
    pub(crate) fn plausible(&self) -> bool {
        const LIMIT: u64 = 1 << 40;
        if self.start_sector >= LIMIT || self.sector_count >= LIMIT {
            return false;
        }
        if self.sector_count == 0 {
            return self.start_sector == 0 && !self.is_memdrive();
        }
        !self.is_memdrive() || self.start_sector >= 0x10_0000 / 512
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
    /// `Some` for a BIOS block: its disk-backed slots become [`DiskBackedImage`] candidates,
    /// fragmented ones through this fragment map. `None` (UEFI pages): they are only logged.
    pub(crate) disk_backed: Option<FragmentMap>,
}

/// Where a block's fragment map lies: `[start, end)` in low memory, after the `FRAGMENT` marker
/// (`start` is `None` when the block has no marker).
#[derive(Clone, Copy, Default)]
pub(crate) struct FragmentMap {
    pub(crate) start: Option<u32>,
    pub(crate) end: u32,
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
        // Rule 11: only memdrives are RAM; BIOS disk-backed slots go to their own list.
        if !slot.is_memdrive() {
            ctx.log(skip(SlotSkip::DiskBacked));
            if let Some(map) = info.disk_backed {
                disk_backed_slot(ctx, table, index, &slot, map);
            }
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
    let search_end = if size_kib == 0 || block_end > LOW_END {
        LOW_END.min(u64::from(base) + 0x4000)
    } else {
        block_end
    } as u32;
    let info = TableInfo {
        source: LoaderSource::Grub4Dos,
        via,
        allow_unaligned: false,
        disk_backed: Some(fragment_map(ctx, base, search_end)),
    };
    let mut drives = DriveSet::default();
    let first = base + TABLE_OFFSET;
    parse_slots(ctx, first, 0, &mut drives, info);
    if let Some(table) = second_table(ctx, base, first, search_end) {
        ctx.log(Event::SixteenSlotTable { base, table });
        parse_slots(ctx, table, SLOTS_PER_TABLE as u8, &mut drives, info);
    }
}

/// The fragment map of the block at `base` (`docs/loaders.md` §3.6): after the
/// `FRAGMENT` marker at +0x140 (builds from 2021-12 on), else after a marker at an 8-aligned
/// offset in the older window (2014-08..2021-12 builds, where it follows the second table).
fn fragment_map<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    base: u32,
    search_end: u32,
) -> FragmentMap {
    let marker = if ctx.mem.low_eq(u64::from(base + FRAGMENT_OFFSET), FRAGMENT) {
        Some(base + FRAGMENT_OFFSET)
    } else {
        old_fragment_marker(ctx, base, search_end)
    };
    match marker {
        Some(m) => FragmentMap {
            start: Some(m + 8),
            end: (m + 8 + FRAGMENT_MAP_MAX).min(search_end),
        },
        None => FragmentMap::default(),
    }
}

/// A `FRAGMENT` marker at an 8-aligned handler offset in [0x2800, 0x3000) (older 16-slot builds).
fn old_fragment_marker<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    base: u32,
    search_end: u32,
) -> Option<u32> {
    let (lo, hi) = OLD_FRAGMENT_WINDOW;
    (lo..hi)
        .step_by(8)
        .map(|off| base + off)
        .take_while(|&a| a + 8 <= search_end)
        .find(|&a| ctx.mem.low_eq(u64::from(a), FRAGMENT))
}

/// The second slot array of a 16-slot build (`docs/loaders.md` §3.3), if the block
/// has one. Current builds put it right before `int13end`; older ones right before a `FRAGMENT`
/// marker in the 0x2800..0x3000 window. No header field tells 8- from 16-slot builds apart, and
/// in 8-slot builds the bytes before `int13end` are the tail of a CD sector buffer, so a
/// candidate is used only when:
/// * the first table is full (GRUB4DOS keeps slots packed, so slot 9 is used only after 1–8);
/// * every entry is a plausible slot ([`Slot::plausible`]) or zero, packed, with new from_drives;
/// * the terminator (9th entry) is zero;
/// * it holds at least one slot (an all-zero candidate is skipped in favour of the other layout);
/// * for the older layout, the dword at +0xFC is 16.
fn second_table<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    base: u32,
    first: u32,
    search_end: u32,
) -> Option<u32> {
    let mut first_drives = [0u8; SLOTS_PER_TABLE];
    for (i, d) in first_drives.iter_mut().enumerate() {
        let raw = ctx
            .mem
            .low::<SLOT_LEN>(u64::from(first) + (i * SLOT_LEN) as u64)?;
        if raw.iter().all(|&b| b == 0) {
            return None;
        }
        *d = raw[0];
    }
    let current =
        find_marker(ctx, base + 0x200 + TABLE_BYTES, search_end, INT13END).map(|m| m - TABLE_BYTES);
    // GRUB4DOS's own restart code takes the older layout's second table only when the dword at
    // +0xFC is 16; so does rvblk.
    let older = old_fragment_marker(ctx, base, search_end)
        .filter(|_| ctx.mem.low_u32(u64::from(base) + 0xFC) == Some(16))
        .map(|m| m - TABLE_BYTES);
    for table in [current, older].into_iter().flatten() {
        match check_second_table(ctx, table, &first_drives) {
            Ok(true) => return Some(table),
            Ok(false) => {}
            Err(why) => ctx.log(Event::SecondTableRejected { base, table, why }),
        }
    }
    None
}

/// `Ok(true)`: a valid non-empty table; `Ok(false)`: all zero; `Err`: not a slot table.
fn check_second_table<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    table: u32,
    first_drives: &[u8; SLOTS_PER_TABLE],
) -> Result<bool, &'static str> {
    let mut buf = [0u8; TABLE_BYTES as usize];
    if !ctx.mem.low_into(u64::from(table), &mut buf) {
        return Err("unreadable");
    }
    let mut seen_zero = false;
    let mut used = 0;
    let mut drives = [0u8; SLOTS_PER_TABLE];
    for (i, raw) in buf.chunks_exact(SLOT_LEN).enumerate() {
        let zero = raw.iter().all(|&b| b == 0);
        if i == SLOTS_PER_TABLE {
            if !zero {
                return Err("terminator slot not zero");
            }
            break;
        }
        if zero {
            seen_zero = true;
            continue;
        }
        if seen_zero {
            return Err("slots not packed");
        }
        let mut b = [0u8; SLOT_LEN];
        b.copy_from_slice(raw);
        let slot = Slot::decode(&b);
        if !slot.plausible() {
            return Err("entry is not a plausible slot");
        }
        if first_drives.contains(&slot.from_drive) || drives[..used].contains(&slot.from_drive) {
            return Err("from_drive repeats");
        }
        drives[used] = slot.from_drive;
        used += 1;
    }
    Ok(used > 0)
}

/// First occurrence of `pat` in low memory `[from, end)`.
fn find_marker<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    from: u32,
    end: u32,
    pat: &[u8; 8],
) -> Option<u32> {
    let mut pos = u64::from(from);
    let end = u64::from(end);
    let mut buf = [0u8; 512];
    while pos + 8 <= end {
        let n = ((end - pos) as usize).min(buf.len());
        if !ctx.mem.low_into(pos, &mut buf[..n]) {
            return None;
        }
        if let Some(i) = buf[..n].windows(8).position(|w| w == pat) {
            return Some((pos + i as u64) as u32);
        }
        // Overlap by 7 bytes so a marker across the chunk boundary is seen.
        pos += (n as u64).saturating_sub(7).max(1);
    }
    None
}

/// A BIOS slot whose TO drive is a real disk (`docs/loaders.md` §3.9): one extent
/// `[start, start + count)` in TO sectors, or the fragment record of its FROM drive when
/// to_cylinder bit 10 is set (§3.6). In-situ and bifurcate mappings are refused.
fn disk_backed_slot<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    table: u32,
    index: u8,
    slot: &Slot,
    map: FragmentMap,
) {
    let refuse = |ctx: &mut Ctx<'_, M, L>, reason| {
        ctx.refuse_disk(DiskRefusal {
            source: BackingSource::Grub4Dos,
            emulated_drive: slot.from_drive,
            bios_drive: slot.to_drive,
            table_address: u64::from(table),
            slot: index,
            reason,
        })
    };
    if slot.to_sector & 0x80 != 0 {
        return refuse(ctx, DiskRefusalReason::InSitu);
    }
    if slot.to_cylinder & 0x1000 != 0 {
        return refuse(ctx, DiskRefusalReason::Bifurcate);
    }
    // TO sectors: 2048 bytes when TO is a CD (bit 14), else 512.
    let sector_size: u32 = if slot.to_cylinder & 0x4000 != 0 {
        2048
    } else {
        512
    };
    let mut extents = ArrayVec::<Extent, MAX_EXTENTS>::new();
    if slot.to_cylinder & 0x0400 != 0 {
        if let Err(reason) = fragment_extents(ctx, map, slot, &mut extents) {
            return refuse(ctx, reason);
        }
        let total = extents
            .iter()
            .fold(0u64, |t, e| t.saturating_add(e.sectors));
        if total != slot.sector_count {
            let ss = u64::from(sector_size);
            return refuse(
                ctx,
                DiskRefusalReason::ExtentTotal {
                    extents_bytes: total.saturating_mul(ss),
                    image_bytes: slot.sector_count.saturating_mul(ss),
                },
            );
        }
    } else {
        extents.push(Extent {
            start: slot.start_sector,
            sectors: slot.sector_count,
        });
    }
    let Some(bytes) = slot.sector_count.checked_mul(u64::from(sector_size)) else {
        return refuse(ctx, DiskRefusalReason::Overflow);
    };
    let kind = slot.kind();
    let bs = u64::from(kind.block_size());
    ctx.offer_disk(DiskBackedImage {
        kind,
        write_policy: slot.write_policy(),
        source: BackingSource::Grub4Dos,
        bios_drive: slot.to_drive,
        emulated_drive: slot.from_drive,
        sector_size,
        extents,
        length: bytes / bs * bs,
        evidence: DiskEvidence::BiosDrive,
        table_address: u64::from(table),
        slot: index,
    });
}

/// The extents of `slot` from the fragment map (§3.6, rule 14): records `{u16 len, u8 from,
/// u8 to, n × {u64 start, u64 count}}` with len = 4 + 16n, ended by len 0 or the map end.
/// Adjacent extents that continue each other on the disk are merged.
fn fragment_extents<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    map: FragmentMap,
    slot: &Slot,
    out: &mut ArrayVec<Extent, MAX_EXTENTS>,
) -> Result<(), DiskRefusalReason> {
    let Some(mut pos) = map.start else {
        return Err(DiskRefusalReason::NoFragmentRecord);
    };
    while pos + 4 <= map.end {
        let hdr = ctx
            .mem
            .low::<4>(u64::from(pos))
            .ok_or(DiskRefusalReason::BadFragmentRecord)?;
        let len = u32::from(u16::from_le_bytes([hdr[0], hdr[1]]));
        if len == 0 {
            break;
        }
        if len < 4 + 16 || (len - 4) % 16 != 0 || pos + len > map.end {
            return Err(DiskRefusalReason::BadFragmentRecord);
        }
        if hdr[2] == slot.from_drive {
            if hdr[3] != slot.to_drive {
                return Err(DiskRefusalReason::BadFragmentRecord);
            }
            let n = (len - 4) / 16;
            for k in 0..n {
                let raw = ctx
                    .mem
                    .low::<16>(u64::from(pos + 4 + 16 * k))
                    .ok_or(DiskRefusalReason::BadFragmentRecord)?;
                let e = Extent {
                    start: le64(&raw, 0),
                    sectors: le64(&raw, 8),
                };
                match out.last_mut() {
                    Some(last) if last.start.checked_add(last.sectors) == Some(e.start) => {
                        last.sectors = last
                            .sectors
                            .checked_add(e.sectors)
                            .ok_or(DiskRefusalReason::Overflow)?;
                    }
                    _ => out
                        .try_push(e)
                        .map_err(|_| DiskRefusalReason::TooManyExtents { count: n })?,
                }
            }
            return Ok(());
        }
        pos += len;
    }
    Err(DiskRefusalReason::NoFragmentRecord)
}
