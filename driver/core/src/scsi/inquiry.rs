//! INQUIRY: standard data (SPC-4 §6.4.2) and the VPD pages 00h, 80h, 83h (SPC-4 §7.8) plus
//! B0h/B1h for direct-access LUNs (SBC-3 §6.5).
//!
//! Identifiers are derived from the image identity (source, phys_base, length, kind) so they are
//! stable across boots with the same loader command line and distinct between images
//! (docs/peers.md §5 item 4: unique IDs; §6: a valid serial number).

use crate::image::{DeviceKind, DiskBackedImage, MemoryImage};

use super::buf::{Be64, Response};
use super::sense::SenseData;

pub(crate) const VENDOR: [u8; 8] = *b"RVBLK   ";
const REVISION: [u8; 4] = pad(env!("CARGO_PKG_VERSION"));
/// VERSION field: SPC-4 (SPC-4 §6.4.2, table 142).
const VERSION_SPC4: u8 = 0x06;
/// HISUP | RESPONSE DATA FORMAT 2 (SPC-4 §6.4.2).
const HISUP_FORMAT2: u8 = 0x12;
/// CMDQUE (byte 7): the LUN accepts many commands at once (docs/windows-integration.md §1.9).
const CMDQUE: u8 = 0x02;
const RMB: u8 = 0x80;
const STANDARD_LEN: usize = 36;

pub(super) const PAGE_SUPPORTED: u8 = 0x00;
pub(super) const PAGE_SERIAL: u8 = 0x80;
pub(super) const PAGE_DEVICE_ID: u8 = 0x83;
pub(super) const PAGE_BLOCK_LIMITS: u8 = 0xB0;
pub(super) const PAGE_BLOCK_CHARACTERISTICS: u8 = 0xB1;
/// Logical Block Provisioning (SBC-3 §6.5.13), only on thin-provisioned LUNs.
pub(super) const PAGE_LOGICAL_BLOCK_PROVISIONING: u8 = 0xB2;

/// Designation descriptor header bytes (SPC-4 §7.8.6.1, table 460): CODE SET, then
/// ASSOCIATION (00b: the logical unit) | DESIGNATOR TYPE.
const CODE_SET_BINARY: u8 = 0x01;
const CODE_SET_ASCII: u8 = 0x02;
const DESIGNATOR_T10_VENDOR: u8 = 0x01;
const DESIGNATOR_NAA: u8 = 0x03;
/// NAA 3h, locally assigned (SPC-4 §7.8.6.6.3): no IEEE OUI is needed.
const NAA_LOCAL: u64 = 0x3000_0000_0000_0000;
const NAA_VALUE_MASK: u64 = 0x0FFF_FFFF_FFFF_FFFF;
/// Block limits and block device characteristics pages are 64 bytes (SBC-3 tables 201, 203).
const SBC_VPD_PAGE_LENGTH: u16 = 0x3C;
/// Block Limits: UNMAP GRANULARITY ALIGNMENT valid (byte 32 bit 7).
const UGAVALID: u32 = 0x8000_0000;
/// Logical Block Provisioning byte 5: LBPU, the LUN accepts UNMAP.
const LBPU: u8 = 0x80;
/// Logical Block Provisioning byte 6: PROVISIONING TYPE thin.
const PROVISIONING_THIN: u8 = 0x02;
/// MEDIUM ROTATION RATE 0001h: non-rotating medium (SBC-3 §6.5.2, table 204).
const NON_ROTATING: u16 = 0x0001;

const fn pad<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let b = s.as_bytes();
    let mut i = 0;
    while i < N && i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Peripheral device type (SPC-4 §6.4.2, table 141) with qualifier 000b.
pub(super) const fn device_type(kind: DeviceKind) -> u8 {
    match kind {
        DeviceKind::Disk | DeviceKind::Floppy => 0x00,
        DeviceKind::CdRom => 0x05,
    }
}

const fn product(kind: DeviceKind) -> [u8; 16] {
    match kind {
        DeviceKind::Disk => pad("RAM DISK"),
        DeviceKind::CdRom => pad("RAM CD-ROM"),
        DeviceKind::Floppy => pad("RAM FLOPPY"),
    }
}

pub(super) const fn removable(kind: DeviceKind) -> bool {
    matches!(kind, DeviceKind::CdRom | DeviceKind::Floppy)
}

/// The stable identity of one image: a 64-bit FNV-1a hash and its 16-digit hex form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub hash: u64,
    /// Uppercase hex of `hash`: the unit serial number (VPD 80h) and T10 vendor id suffix.
    pub serial: [u8; 16],
}

impl Identity {
    pub fn of(image: &MemoryImage) -> Self {
        Self::hashed(&[
            image.source.name().as_bytes(),
            &image.phys_base.to_le_bytes(),
            &image.length.to_le_bytes(),
            image.kind.name().as_bytes(),
        ])
    }

    /// A disk-backed image's identity: its loader, first extent and length, so the same image
    /// keeps its serial number across boots whatever RAM address its tables had.
    pub fn of_disk_backed(image: &DiskBackedImage) -> Self {
        let first = image.extents.first().map_or(0, |e| e.start);
        Self::hashed(&[
            image.source.name().as_bytes(),
            &first.to_le_bytes(),
            &image.length.to_le_bytes(),
            image.kind.name().as_bytes(),
        ])
    }

    /// A runtime LUN's identity (`ScsiTarget::for_runtime`).
    pub fn of_runtime(kind: crate::image::DeviceKind, length: u64, seed: u64) -> Self {
        Self::hashed(&[
            b"runtime",
            &seed.to_le_bytes(),
            &length.to_le_bytes(),
            kind.name().as_bytes(),
        ])
    }

    fn hashed(parts: &[&[u8]]) -> Self {
        const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
        const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;
        let mut hash = FNV_OFFSET;
        for part in parts {
            for &b in part.iter() {
                hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
            }
        }
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut serial = [0u8; 16];
        for (pair, byte) in serial.chunks_exact_mut(2).zip(Be64::new(hash).0) {
            pair[0] = HEX[usize::from(byte / 16)];
            pair[1] = HEX[usize::from(byte % 16)];
        }
        Self { hash, serial }
    }

    /// The NAA locally assigned designator value (VPD 83h).
    pub fn naa(&self) -> u64 {
        NAA_LOCAL | (self.hash & NAA_VALUE_MASK)
    }
}

/// Standard INQUIRY data, 36 bytes (SPC-4 §6.4.2).
pub(super) fn standard(kind: DeviceKind) -> Response {
    let mut r = Response::new();
    r.u8(device_type(kind))
        .u8(if removable(kind) { RMB } else { 0 })
        .u8(VERSION_SPC4)
        .u8(HISUP_FORMAT2)
        .u8((STANDARD_LEN - 5) as u8)
        .u8(0)
        .u8(0)
        .u8(CMDQUE)
        .push(&VENDOR)
        .push(&product(kind))
        .push(&REVISION);
    r
}

fn supported_pages(kind: DeviceKind, thin: bool) -> &'static [u8] {
    match kind {
        DeviceKind::Disk if thin => &[
            PAGE_SUPPORTED,
            PAGE_SERIAL,
            PAGE_DEVICE_ID,
            PAGE_BLOCK_LIMITS,
            PAGE_BLOCK_CHARACTERISTICS,
            PAGE_LOGICAL_BLOCK_PROVISIONING,
        ],
        DeviceKind::Disk | DeviceKind::Floppy => &[
            PAGE_SUPPORTED,
            PAGE_SERIAL,
            PAGE_DEVICE_ID,
            PAGE_BLOCK_LIMITS,
            PAGE_BLOCK_CHARACTERISTICS,
        ],
        // B0h/B1h are SBC pages; MMC-6 devices do not report them.
        DeviceKind::CdRom => &[PAGE_SUPPORTED, PAGE_SERIAL, PAGE_DEVICE_ID],
    }
}

/// One VPD page, or INVALID FIELD IN CDB pointing at PAGE CODE when it is not supported.
/// `unmap_granularity` (blocks; 0 = not thin provisioned) adds the UNMAP limits and the
/// Logical Block Provisioning page.
pub(super) fn vpd(
    kind: DeviceKind,
    id: &Identity,
    page: u8,
    unmap_granularity: u32,
) -> Result<Response, SenseData> {
    let thin = unmap_granularity != 0;
    let pages = supported_pages(kind, thin);
    if !pages.contains(&page) {
        return Err(SenseData::invalid_field(2, Some(7)));
    }
    let mut r = Response::new();
    // Page header (SPC-4 §7.8.1): device type, page code, PAGE LENGTH filled in below.
    r.u8(device_type(kind)).u8(page).be16(0);
    match page {
        PAGE_SUPPORTED => {
            r.push(pages);
        }
        PAGE_SERIAL => {
            r.push(&id.serial);
        }
        PAGE_DEVICE_ID => {
            r.u8(CODE_SET_BINARY)
                .u8(DESIGNATOR_NAA)
                .u8(0)
                .u8(8)
                .be64(id.naa());
            // T10 vendor ID designator (SPC-4 §7.8.6.4): vendor + vendor-specific serial.
            r.u8(CODE_SET_ASCII)
                .u8(DESIGNATOR_T10_VENDOR)
                .u8(0)
                .u8((VENDOR.len() + id.serial.len()) as u8)
                .push(&VENDOR)
                .push(&id.serial);
        }
        PAGE_BLOCK_LIMITS if thin => {
            // Transfer limits "not reported" (the port's MaximumTransferLength bounds them);
            // MAXIMUM UNMAP LBA COUNT unlimited, MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT,
            // OPTIMAL UNMAP GRANULARITY = the medium's unit, aligned at LBA 0 (UGAVALID).
            r.zeros(16)
                .be32(u32::MAX)
                .be32(super::block::MAX_UNMAP_DESCRIPTORS as u32)
                .be32(unmap_granularity)
                .be32(UGAVALID)
                .zeros(usize::from(SBC_VPD_PAGE_LENGTH) - 32);
        }
        PAGE_BLOCK_LIMITS => {
            // All limits "not reported": the port's MaximumTransferLength bounds transfers and
            // UNMAP is not offered.
            r.zeros(usize::from(SBC_VPD_PAGE_LENGTH));
        }
        PAGE_LOGICAL_BLOCK_PROVISIONING => {
            // No threshold; LBPU (UNMAP supported); no WRITE SAME unmapping, LBPRZ 0; thin
            // provisioned.
            r.u8(0).u8(LBPU).u8(PROVISIONING_THIN).u8(0);
        }
        PAGE_BLOCK_CHARACTERISTICS => {
            r.be16(NON_ROTATING)
                .zeros(usize::from(SBC_VPD_PAGE_LENGTH) - 2);
        }
        _ => return Err(SenseData::invalid_field(2, Some(7))),
    }
    let page_len = (r.len() - 4) as u16;
    r.set_be16(2, page_len);
    Ok(r)
}
