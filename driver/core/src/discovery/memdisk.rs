//! syslinux MEMDISK: safe hook +0x1B → mBFT → MDI + patch area (`docs/loaders.md` §5, §9 B3 and C,
//! rules 15–19).

use crate::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};

use super::memory::{le16, le32, LOW_END, ONE_MIB};
use super::safehook::{read_hook, vendor, HOOK_LEN, MIN_HOOK};
use super::{
    Ctx, DiscoveryLog, Event, Found, FoundVia, MbftProblem, PhysicalMemory, RefusalReason, Seen,
};

pub(crate) const MBFT_SIGNATURE: &[u8; 4] = b"mBFT";
/// Rule 15 bounds on the mBFT length (current MEMDISK: 70).
pub(crate) const MBFT_MIN_LEN: u32 = 66;
pub(crate) const MBFT_MAX_LEN: u32 = 256;
/// Offset of the MDI in the mBFT (§5.3).
const MDI: usize = 0x28;
/// Bytes of mBFT + patch area read: up to configflags at +0x5F plus C/H/S (§5.4).
const PATCH_END: usize = 0x68;
const VENDOR: &[u8; 8] = b"MEMDISK ";

/// A validated mBFT (§5.3, §5.4).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mbft {
    pub(crate) addr: u32,
    pub(crate) safe_hook: u32,
    pub(crate) diskbuf: u32,
    pub(crate) disksize: u32,
    /// Normalised: 9 or 11.
    pub(crate) shift: u8,
    pub(crate) kind: DeviceKind,
    pub(crate) driveno: u8,
    pub(crate) read_only: bool,
    /// cylinders × heads × sectors × 512 from the patch area (0 if any is 0).
    pub(crate) chs_bytes: u64,
}

/// Validate the mBFT at `addr` (rules 15, 17, 19). Cross-links (rule 16) are checked by the
/// callers.
pub(crate) fn parse_mbft<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    addr: u32,
) -> Result<Mbft, MbftProblem> {
    let a = u64::from(addr);
    let header = ctx.mem.low::<8>(a).ok_or(MbftProblem::OutOfLowMemory)?;
    if &header[0..4] != MBFT_SIGNATURE {
        return Err(MbftProblem::NoSignature);
    }
    let length = le32(&header, 4);
    if !(MBFT_MIN_LEN..=MBFT_MAX_LEN).contains(&length) {
        return Err(MbftProblem::BadLength);
    }
    let length = length as usize;
    // The mBFT (and, for driveno/configflags/CHS, the unchecksummed patch area) must lie wholly
    // below 0xA0000.
    let span = length.max(PATCH_END);
    let mut b = [0u8; MBFT_MAX_LEN as usize];
    if !ctx.mem.low_into(a, &mut b[..span]) {
        return Err(MbftProblem::OutOfLowMemory);
    }
    if b[..length].iter().fold(0u8, |s, &x| s.wrapping_add(x)) != 0 {
        return Err(MbftProblem::BadChecksum);
    }
    let mdi_bytes = le16(&b, MDI);
    if usize::from(mdi_bytes) + 40 != length {
        return Err(MbftProblem::LengthMismatch);
    }
    // Rule 19: driveno (outside the checksum) 0xFF is invalid.
    let driveno = b[0x5C];
    if driveno == 0xFF {
        return Err(MbftProblem::BadDriveNumber);
    }
    // Rule 17: trust sector_shift only when the MDI is long enough; 0 = pre-2010-06 build.
    let raw_shift = if mdi_bytes >= 28 { b[MDI + 0x1B] } else { 0 };
    let shift = match raw_shift {
        0 if driveno == 0xE0 => 11,
        0 => 9,
        9 | 11 => raw_shift,
        _ => return Err(MbftProblem::BadShift),
    };
    // Rule 19: 0xE0 ⇔ shift 11; on disagreement the checksummed shift wins.
    let kind = if shift == 11 {
        DeviceKind::CdRom
    } else if driveno & 0x80 != 0 {
        DeviceKind::Disk
    } else {
        DeviceKind::Floppy
    };
    if raw_shift != 0 && (driveno == 0xE0) != (shift == 11) {
        ctx.log(Event::MemdiskKindMismatch {
            mbft: addr,
            driveno,
            shift,
        });
    }
    // Rule 15 warnings.
    if !addr.is_multiple_of(16) {
        ctx.log(Event::MbftWarning {
            mbft: addr,
            what: "not 16-byte aligned",
        });
    }
    if &b[0x0A..0x10] != b"MEMDSK" {
        ctx.log(Event::MbftWarning {
            mbft: addr,
            what: "OEM ID is not MEMDSK",
        });
    }
    let chs_bytes = u64::from(le16(&b, 0x4C))
        .checked_mul(u64::from(le16(&b, 0x4E)))
        .and_then(|x| x.checked_mul(u64::from(le32(&b, 0x50))))
        .and_then(|x| x.checked_mul(512))
        .unwrap_or(0);
    Ok(Mbft {
        addr,
        safe_hook: le32(&b, 0x24),
        diskbuf: le32(&b, MDI + 4),
        disksize: le32(&b, MDI + 8),
        shift,
        kind,
        driveno,
        read_only: b[0x5F] & 1 != 0,
        chs_bytes,
    })
}

/// Build and offer the image of a validated mBFT (rules 18, 19).
fn offer_mbft<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    m: &Mbft,
    via: FoundVia,
) {
    let base = u64::from(m.diskbuf);
    // u32 << 11 cannot overflow u64.
    let mut bytes = u64::from(m.disksize) << m.shift;
    let src = LoaderSource::Memdisk;
    if base < ONE_MIB {
        ctx.refuse(base, bytes, src, RefusalReason::LowMemory);
        return;
    }
    if m.disksize == 0 {
        ctx.refuse(base, 0, src, RefusalReason::TooSmall);
        return;
    }
    if base + bytes > 1 << 32 {
        ctx.refuse(base, bytes, src, RefusalReason::AboveFourGiB);
        return;
    }
    // Rule 19: El Torito floppy emulation reports the rest of the ISO; C/H/S give the floppy.
    if m.kind == DeviceKind::Floppy && m.chs_bytes != 0 && m.chs_bytes < bytes {
        ctx.log(Event::LengthCapped {
            base,
            from: bytes,
            to: m.chs_bytes,
            why: "MEMDISK floppy C/H/S",
        });
        bytes = m.chs_bytes;
    }
    let image = MemoryImage {
        kind: m.kind,
        phys_base: base,
        length: bytes,
        write_policy: if m.read_only {
            WritePolicy::ReadOnly
        } else {
            WritePolicy::ReadWrite
        },
        source: src,
        table_address: u64::from(m.addr),
        slot: 0,
        bios_drive: m.driveno,
    };
    ctx.offer(Found { image, via });
}

/// A `MEMDISK ` hook on the chain (§9 B3, rule 16).
pub(crate) fn from_hook<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    lin: u32,
    hook: &[u8; HOOK_LEN],
    seen: &mut Seen,
) {
    let addr = le32(hook, 0x1B);
    if u64::from(addr) >= LOW_END {
        ctx.log(Event::MbftRejected {
            mbft: addr,
            why: MbftProblem::OutOfLowMemory,
        });
        return;
    }
    if seen.mbfts.contains(&addr) {
        return;
    }
    match parse_mbft(ctx, addr) {
        Ok(m) if m.safe_hook == lin => {
            let _ = seen.mbfts.try_push(addr);
            offer_mbft(ctx, &m, FoundVia::IVT_CHAIN);
        }
        Ok(_) => ctx.log(Event::MbftRejected {
            mbft: addr,
            why: MbftProblem::CrossLink,
        }),
        Err(why) => ctx.log(Event::MbftRejected { mbft: addr, why }),
    }
}

/// §9 C: scan [0x500, 0xA0000) in 16-byte steps for mBFTs not reached through the chain.
#[inline(never)] // one step per frame: see `discover_with`
pub(crate) fn scan<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    seen: &Seen,
) {
    let mut chunk = [0u8; 1024];
    let mut pos: u64 = MIN_HOOK.into();
    while pos < LOW_END {
        let n = ((LOW_END - pos) as usize).min(chunk.len());
        let ok = ctx.mem.low_into(pos, &mut chunk[..n]);
        if ok {
            for off in (0..n.saturating_sub(3)).step_by(16) {
                if &chunk[off..off + 4] != MBFT_SIGNATURE {
                    continue;
                }
                let addr = (pos + off as u64) as u32;
                if !seen.mbfts.contains(&addr) {
                    scanned(ctx, addr);
                }
            }
        }
        pos += n as u64;
    }
}

fn scanned<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    addr: u32,
) {
    let m = match parse_mbft(ctx, addr) {
        Ok(m) => m,
        Err(why) => {
            ctx.log(Event::MbftRejected { mbft: addr, why });
            return;
        }
    };
    // Rule 16: safe_hook points at a MEMDISK hook whose +0x1B points back.
    let linked = read_hook(ctx, m.safe_hook)
        .is_some_and(|h| &vendor(&h) == VENDOR && le32(&h, 0x1B) == addr);
    if !linked {
        ctx.log(Event::MbftRejected {
            mbft: addr,
            why: MbftProblem::CrossLink,
        });
        return;
    }
    // §9 C: mBFTs below the reserved top are probably stale; rule 23 decides.
    if addr < ctx.bda_top {
        ctx.log(Event::MbftWarning {
            mbft: addr,
            what: "below the BDA top (possibly stale)",
        });
    }
    offer_mbft(ctx, &m, FoundVia::MBFT_SCAN);
}
