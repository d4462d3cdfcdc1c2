//! ACPI NFIT RAM-disk SPA ranges (`docs/loaders.md` §6, §9 E, rules 20–22).
//!
//! The table comes from the caller as bytes (it is not read from physical memory), so
//! `MemoryImage::table_address` holds the **byte offset of the SPA structure within the NFIT**
//! and `slot` the SPA range structure's ordinal among RAM-disk SPAs.

use crate::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};

use super::memory::{le16, le32, le64};
use super::{Ctx, DiscoveryLog, Event, Found, FoundVia, PhysicalMemory, RefusalReason};

/// `gEfiVirtualDiskGuid` 77AB535A-45FC-624B-5560-F7B281D1F96E, as stored (§6.3).
pub const NFIT_GUID_VIRTUAL_DISK: [u8; 16] = [
    0x5A, 0x53, 0xAB, 0x77, 0xFC, 0x45, 0x4B, 0x62, 0x55, 0x60, 0xF7, 0xB2, 0x81, 0xD1, 0xF9, 0x6E,
];
/// `gEfiVirtualCdGuid` 3D5ABD30-4175-87CE-6D64-D2ADE523C4BB, as stored.
pub const NFIT_GUID_VIRTUAL_CD: [u8; 16] = [
    0x30, 0xBD, 0x5A, 0x3D, 0x75, 0x41, 0xCE, 0x87, 0x6D, 0x64, 0xD2, 0xAD, 0xE5, 0x23, 0xC4, 0xBB,
];
/// `gEfiPersistentVirtualDiskGuid` 5CEA02C9-4D07-69D3-269F-4496FBE096F9, as stored.
pub const NFIT_GUID_PERSISTENT_VIRTUAL_DISK: [u8; 16] = [
    0xC9, 0x02, 0xEA, 0x5C, 0x07, 0x4D, 0xD3, 0x69, 0x26, 0x9F, 0x44, 0x96, 0xFB, 0xE0, 0x96, 0xF9,
];
/// `gEfiPersistentVirtualCdGuid` 08018188-42CD-BB48-100F-5387D53DED3D, as stored.
pub const NFIT_GUID_PERSISTENT_VIRTUAL_CD: [u8; 16] = [
    0x88, 0x81, 0x01, 0x08, 0xCD, 0x42, 0x48, 0xBB, 0x10, 0x0F, 0x53, 0x87, 0xD5, 0x3D, 0xED, 0x3D,
];

const HEADER_LEN: usize = 40;
const SPA_MIN_LEN: usize = 56;

fn problem<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    offset: usize,
    what: &'static str,
) {
    ctx.log(Event::NfitProblem {
        offset: offset as u32,
        what,
    });
}

/// Rule 20 header checks, rule 21 structure walk, rule 22 SPA checks.
#[inline(never)] // one step per frame: see `discover_with`
pub(crate) fn parse<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    buf: &[u8],
) {
    if buf.len() < HEADER_LEN || &buf[0..4] != b"NFIT" {
        return problem(ctx, 0, "no NFIT signature or shorter than 40 bytes");
    }
    let len = le32(buf, 4) as usize;
    if len < HEADER_LEN || len > buf.len() {
        return problem(ctx, 4, "header length out of range");
    }
    let table = &buf[..len];
    if table.iter().fold(0u8, |s, &b| s.wrapping_add(b)) != 0 {
        return problem(ctx, 9, "bad checksum");
    }
    if table[8] < 1 {
        problem(ctx, 8, "revision 0");
    }
    let mut off = HEADER_LEN;
    let mut ordinal: u8 = 0;
    while off + 4 <= len {
        let ty = le16(table, off);
        let slen = usize::from(le16(table, off + 2));
        if slen < 4 {
            // Rule 21: a zero (or < 4) length ends the walk.
            if slen != 0 {
                problem(ctx, off, "structure shorter than 4 bytes");
            }
            return;
        }
        if off + slen > len {
            return problem(ctx, off, "structure runs past the table");
        }
        if ty == 0 {
            if slen < SPA_MIN_LEN {
                problem(ctx, off, "SPA structure shorter than 56 bytes");
            } else {
                spa(ctx, &table[off..off + slen], off, &mut ordinal);
            }
        }
        off += slen;
    }
}

fn spa<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    s: &[u8],
    off: usize,
    ordinal: &mut u8,
) {
    let guid = &s[0x10..0x20];
    let kind = if guid == NFIT_GUID_VIRTUAL_CD || guid == NFIT_GUID_PERSISTENT_VIRTUAL_CD {
        DeviceKind::CdRom
    } else if guid == NFIT_GUID_VIRTUAL_DISK || guid == NFIT_GUID_PERSISTENT_VIRTUAL_DISK {
        DeviceKind::Disk
    } else {
        return; // other GUIDs (real persistent memory, control regions) are never exposed
    };
    let index = le16(s, 4);
    let flags = le16(s, 6);
    let base = le64(s, 0x20);
    let length = le64(s, 0x28);
    if flags & 1 != 0 {
        return problem(ctx, off, "RAM-disk SPA flagged management-only, ignored");
    }
    if index != 0 {
        problem(ctx, off, "RAM-disk SPA index is not 0");
    }
    if length == 0 {
        ctx.refuse(base, 0, LoaderSource::Nfit, RefusalReason::TooSmall);
        return;
    }
    if base.checked_add(length).is_none() {
        ctx.refuse(base, length, LoaderSource::Nfit, RefusalReason::Overflow);
        return;
    }
    let image = MemoryImage {
        kind,
        phys_base: base,
        length,
        // §9: NFIT virtual disks are writable (RamDiskDxe exposes them read-write).
        write_policy: WritePolicy::ReadWrite,
        source: LoaderSource::Nfit,
        table_address: off as u64,
        slot: *ordinal,
        bios_drive: 0xFF,
    };
    *ordinal = ordinal.saturating_add(1);
    ctx.offer(Found {
        image,
        via: FoundVia::NFIT,
    });
}
