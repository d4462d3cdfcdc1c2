//! MODE SENSE(6/10): header, block descriptor and the pages each kind offers (SPC-4 §7.5).
//!
//! Disk: caching (08h). Floppy: flexible disk (05h) + caching. CD-ROM: MM capabilities (2Ah).
//! 3Fh returns all of them. No page is changeable (MODE SELECT is not implemented), so the
//! changeable-values form returns the pages with zeroed bodies.

use crate::image::{DeviceKind, MemoryImage};

use super::buf::{Be24, Response};
use super::cdb::{ModeSense, PageControl};
use super::sense::SenseData;

const PAGE_FLEXIBLE_DISK: u8 = 0x05;
const PAGE_CACHING: u8 = 0x08;
const PAGE_CAPABILITIES: u8 = 0x2A;
const PAGE_ALL: u8 = 0x3F;
/// SUBPAGE CODE FFh: all subpages (SPC-4 §6.11.1); these pages have only subpage 0.
const SUBPAGE_ALL: u8 = 0xFF;

/// DEVICE-SPECIFIC PARAMETER for direct-access devices (SBC-3 §6.4.1, table 182).
const DSP_WP: u8 = 0x80;
const DSP_DPOFUA: u8 = 0x10;
/// MODE SENSE(10) header byte 4 (SPC-4 §7.5.5, table 354).
const LONGLBA: u8 = 0x01;

const SHORT_DESCRIPTOR_LEN: u16 = 8;
const LONG_DESCRIPTOR_LEN: u16 = 16;

/// The pages of `kind`, in ascending page-code order (SPC-4 §6.11.1 for page 3Fh).
fn pages(kind: DeviceKind) -> &'static [u8] {
    match kind {
        DeviceKind::Disk => &[PAGE_CACHING],
        DeviceKind::Floppy => &[PAGE_FLEXIBLE_DISK, PAGE_CACHING],
        DeviceKind::CdRom => &[PAGE_CAPABILITIES],
    }
}

/// CHS geometry of the PC floppy formats (cylinders, heads, sectors per track, kbit/s, rpm).
struct FloppyGeometry {
    cylinders: u16,
    heads: u8,
    sectors: u8,
    rate_kbps: u16,
    rpm: u16,
}

fn floppy_geometry(blocks: u64) -> FloppyGeometry {
    let g = |cylinders, heads, sectors, rate_kbps, rpm| FloppyGeometry {
        cylinders,
        heads,
        sectors,
        rate_kbps,
        rpm,
    };
    match blocks {
        320 => g(40, 1, 8, 250, 300),
        360 => g(40, 1, 9, 250, 300),
        640 => g(40, 2, 8, 250, 300),
        720 => g(40, 2, 9, 250, 300),
        1440 => g(80, 2, 9, 250, 300),
        2400 => g(80, 2, 15, 500, 360),
        2880 => g(80, 2, 18, 500, 300),
        3360 => g(80, 2, 21, 500, 300),
        3444 => g(82, 2, 21, 500, 300),
        5760 => g(80, 2, 36, 1000, 300),
        // Not a PC format (e.g. a "super floppy" image): report a 2-head, 18-sector layout
        // that covers the image, the cylinder count saturating at the 16-bit field.
        n => {
            let cylinders = u16::try_from(n.div_ceil(36)).unwrap_or(u16::MAX);
            g(cylinders, 2, 18, 500, 300)
        }
    }
}

/// Appends one page; with `changeable` only the page code and length are kept (nothing can be
/// changed).
fn push_page(r: &mut Response, image: &MemoryImage, page: u8, changeable: bool) {
    let start = r.len();
    match page {
        PAGE_FLEXIBLE_DISK => {
            // SBC-2 §6.3.3 (flexible disk page, table 103): 32 bytes.
            let g = floppy_geometry(image.blocks());
            r.u8(PAGE_FLEXIBLE_DISK)
                .u8(0x1E)
                .be16(g.rate_kbps)
                .u8(g.heads)
                .u8(g.sectors)
                .be16(image.block_size() as u16)
                .be16(g.cylinders)
                .zeros(18)
                .be16(g.rpm)
                .zeros(2);
        }
        PAGE_CACHING => {
            // SBC-3 §6.4.5, 20 bytes. WCE = 0: writes reach RAM before completion, so the host
            // never needs SYNCHRONIZE CACHE; RCD = 0.
            r.u8(PAGE_CACHING).u8(0x12).zeros(18);
        }
        PAGE_CAPABILITIES => {
            // MM Capabilities and Mechanical Status (MMC-2 §5.5.10 layout, 22 bytes): reads
            // CD-ROM and DVD-ROM, no writing, lockable tray that can eject.
            r.u8(PAGE_CAPABILITIES)
                .u8(0x14)
                .u8(0x08) // DVD-ROM read (CD-ROM read is implied)
                .u8(0x00) // no write capability
                .u8(0x10) // Mode 2 Form 1 (multi-session not claimed)
                .u8(0x00)
                .u8(0x29) // loading mechanism: tray (001b), eject, lock
                .u8(0x00)
                .be16(1765) // obsolete max read speed, kB/s (~10x DVD)
                .be16(0) // volume levels
                .be16(0) // buffer size
                .be16(1765) // obsolete current read speed
                .zeros(6);
        }
        _ => {}
    }
    if changeable {
        r.clear_from(start + 2);
    }
}

pub(super) fn mode_sense(image: &MemoryImage, ms: &ModeSense) -> Result<Response, SenseData> {
    let available = pages(image.kind);
    let selected: &[u8] = match ms.page {
        PAGE_ALL => available,
        p => match available.iter().position(|&a| a == p) {
            Some(i) => &available[i..=i],
            None => return Err(SenseData::invalid_field(2, Some(5))),
        },
    };
    if ms.subpage != 0 && ms.subpage != SUBPAGE_ALL {
        return Err(SenseData::invalid_field(3, Some(7)));
    }

    let is_cd = image.kind == DeviceKind::CdRom;
    let device_specific = if is_cd {
        // MMC-6 §7.2.3: reserved for MM devices.
        0
    } else if image.is_read_only() {
        DSP_WP | DSP_DPOFUA
    } else {
        DSP_DPOFUA
    };
    // MM devices return no block descriptor (MMC-6 §7.2.2); SPC-4 lets DBD = 0 still yield none.
    let descriptor_len = match (is_cd || ms.dbd, ms.llbaa) {
        (true, _) => 0,
        (false, true) => LONG_DESCRIPTOR_LEN,
        (false, false) => SHORT_DESCRIPTOR_LEN,
    };

    let mut r = Response::new();
    if ms.ten {
        // SPC-4 §7.5.5 table 354: MODE DATA LENGTH (2), medium type, DSP, LONGLBA, rsvd, BDL.
        r.be16(0)
            .u8(0)
            .u8(device_specific)
            .u8(if descriptor_len == LONG_DESCRIPTOR_LEN {
                LONGLBA
            } else {
                0
            })
            .u8(0)
            .be16(descriptor_len);
    } else {
        // Table 353: MODE DATA LENGTH (1), medium type, DSP, BDL.
        r.u8(0).u8(0).u8(device_specific).u8(descriptor_len as u8);
    }
    let blocks = image.blocks();
    let block_size = image.block_size();
    match descriptor_len {
        SHORT_DESCRIPTOR_LEN => {
            // SBC-3 §6.4.2.2: NUMBER OF LOGICAL BLOCKS saturates at FFFFFFFFh.
            r.be32(u32::try_from(blocks).unwrap_or(u32::MAX))
                .u8(0)
                .push(&Be24::new(block_size).0);
        }
        LONG_DESCRIPTOR_LEN => {
            r.be64(blocks).be32(0).be32(block_size);
        }
        _ => {}
    }
    for &page in selected {
        push_page(&mut r, image, page, ms.pc == PageControl::Changeable);
    }
    if ms.ten {
        let len = (r.len() - 2) as u16;
        r.set_be16(0, len);
    } else {
        let len = (r.len() - 1) as u8;
        r.set_u8(0, len);
    }
    Ok(r)
}
