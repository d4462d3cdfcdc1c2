//! Block commands: READ/WRITE(6/10/12/16), VERIFY, READ CAPACITY, SYNCHRONIZE CACHE (SBC-3 §5)
//! and READ CD's user-data-only form (MMC-6 §6.19).
//!
//! The READ/WRITE path is the hot one: range check with checked arithmetic, one buffer check,
//! one [`Medium`] call for the whole transfer.

use crate::image::{MemoryImage, WritePolicy};

use super::buf::Response;
use super::cdb::Transfer;
use super::sense::SenseData;
use super::{allows, DataDirection, Medium, MediumError, Outcome};

/// READ CAPACITY(10) reports this when the last LBA does not fit 32 bits (SBC-3 §5.15.2), which
/// tells the host to use READ CAPACITY(16).
const RC10_OVERFLOW: u32 = 0xFFFF_FFFF;
/// Verify-compare works through a stack buffer of this many bytes (no allocation).
const COMPARE_CHUNK: usize = 2048;

/// Image byte offset and length of `t`, or LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3 §4.5).
/// A zero-length transfer is valid at any LBA up to the capacity.
fn byte_range(image: &MemoryImage, t: &Transfer) -> Result<(u64, usize), SenseData> {
    let end = t
        .lba
        .checked_add(u64::from(t.blocks))
        .ok_or(SenseData::lba_out_of_range())?;
    if end > image.blocks() {
        return Err(SenseData::lba_out_of_range());
    }
    let bs = u64::from(image.block_size());
    // lba <= blocks and blocks * bs == length, so neither product can overflow; stay checked
    // anyway so a malformed image cannot turn into a panic.
    let offset = t.lba.checked_mul(bs).ok_or(SenseData::lba_out_of_range())?;
    let len = u64::from(t.blocks)
        .checked_mul(bs)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(SenseData::invalid_field(t.length_field, Some(7)))?;
    Ok((offset, len))
}

/// The first `len` bytes of the SRB buffer, provided the SRB moves data in direction `want`.
/// A CDB asking for more than DataTransferLength is an INVALID FIELD in its transfer length;
/// the buffer is never overrun.
fn window(
    data: &mut [u8],
    dir: DataDirection,
    want: DataDirection,
    len: usize,
    length_field: u16,
) -> Result<&mut [u8], SenseData> {
    if len == 0 {
        return Ok(&mut data[..0]);
    }
    if !allows(dir, want) {
        return Err(SenseData::invalid_request());
    }
    data.get_mut(..len)
        .ok_or(SenseData::invalid_field(length_field, Some(7)))
}

/// What READ and WRITE check before touching the medium: the image byte offset of `t` and the
/// SRB buffer window it moves in direction `want`, or the outcome that already ends the command
/// (range or buffer refused, or nothing to move).
fn transfer<'d>(
    image: &MemoryImage,
    t: &Transfer,
    data: &'d mut [u8],
    dir: DataDirection,
    want: DataDirection,
) -> Result<(u64, &'d mut [u8]), Outcome> {
    let (offset, len) = byte_range(image, t).map_err(Outcome::check_condition)?;
    let window = window(data, dir, want, len, t.length_field).map_err(Outcome::check_condition)?;
    if len == 0 {
        return Err(Outcome::good(0));
    }
    Ok((offset, window))
}

fn read_error(e: MediumError) -> Outcome {
    e.outcome(false)
}

pub(super) fn read(
    image: &MemoryImage,
    t: &Transfer,
    data: &mut [u8],
    dir: DataDirection,
    medium: &impl Medium,
) -> Outcome {
    let (offset, dst) = match transfer(image, t, data, dir, DataDirection::In) {
        Ok(w) => w,
        Err(done) => return done,
    };
    match medium.read(offset, dst) {
        Ok(()) => Outcome::good(dst.len()),
        Err(e) => read_error(e),
    }
}

pub(super) fn write(
    image: &MemoryImage,
    t: &Transfer,
    data: &mut [u8],
    dir: DataDirection,
    medium: &impl Medium,
) -> Outcome {
    // SBC-3 §4.11: a write-protected medium rejects writes before anything else is checked.
    if image.is_read_only() {
        return Outcome::check_condition(SenseData::write_protected());
    }
    let (offset, src) = match transfer(image, t, data, dir, DataDirection::Out) {
        Ok(w) => w,
        Err(done) => return done,
    };
    if image.write_policy == WritePolicy::DiscardWrites {
        // GRUB4DOS "fake write" (docs/loaders.md §3.2): accepted, consumed and dropped.
        return Outcome::good(src.len());
    }
    match medium.write(offset, src) {
        Ok(()) => Outcome::good(src.len()),
        Err(e) => e.outcome(true),
    }
}

/// VERIFY(10/12/16), SBC-3 §5.28. BYTCHK = 0 only checks the range (RAM has no media defects);
/// BYTCHK = 01b compares the data-out buffer with the medium.
pub(super) fn verify(
    image: &MemoryImage,
    t: &Transfer,
    compare: bool,
    data: &mut [u8],
    dir: DataDirection,
    medium: &impl Medium,
) -> Outcome {
    let (offset, len) = match byte_range(image, t) {
        Ok(r) => r,
        Err(s) => return Outcome::check_condition(s),
    };
    if !compare {
        return Outcome::good(0);
    }
    let expected = match window(data, dir, DataDirection::Out, len, t.length_field) {
        Ok(d) => &*d,
        Err(s) => return Outcome::check_condition(s),
    };
    let mut scratch = [0u8; COMPARE_CHUNK];
    let mut pos = offset;
    for chunk in expected.chunks(COMPARE_CHUNK) {
        let got = &mut scratch[..chunk.len()];
        if let Err(e) = medium.read(pos, got) {
            return read_error(e);
        }
        if got != chunk {
            return Outcome::check_condition(SenseData::miscompare());
        }
        pos += chunk.len() as u64;
    }
    Outcome::good(len)
}

/// SYNCHRONIZE CACHE(10/16), SBC-3 §5.22: nothing is cached, but the range is still checked.
/// NUMBER OF LOGICAL BLOCKS = 0 means "to the end of the medium".
pub(super) fn synchronize_cache(image: &MemoryImage, t: &Transfer) -> Outcome {
    match byte_range(image, t) {
        Ok(_) => Outcome::good(0),
        Err(s) => Outcome::check_condition(s),
    }
}

/// Last LBA; an empty image (never produced by discovery) reports LBA 0.
fn last_lba(image: &MemoryImage) -> u64 {
    image.blocks().saturating_sub(1)
}

/// READ CAPACITY(10) parameter data (SBC-3 §5.15.2, table 64): 8 bytes.
pub(super) fn read_capacity10(image: &MemoryImage) -> Response {
    let last = u32::try_from(last_lba(image)).unwrap_or(RC10_OVERFLOW);
    let mut r = Response::new();
    r.be32(last).be32(image.block_size());
    r
}

/// READ CAPACITY(16) parameter data (SBC-3 §5.16.2, table 66): 32 bytes, no protection, one
/// logical block per physical block; LBPME (byte 14 bit 7) when the LUN is thin provisioned
/// (`thin`: it accepts UNMAP), LBPRZ never (unmapped blocks are not promised to read zero).
pub(super) fn read_capacity16(image: &MemoryImage, thin: bool) -> Response {
    let mut r = Response::new();
    r.be64(last_lba(image))
        .be32(image.block_size())
        .zeros(2)
        .u8(if thin { LBPME } else { 0 })
        .zeros(17);
    r
}

/// READ CAPACITY(16) byte 14: logical block provisioning management enabled.
const LBPME: u8 = 0x80;
/// UNMAP parameter list: an 8-byte header, then 16-byte block descriptors (SBC-3 §5.28.2).
const UNMAP_HEADER: usize = 8;
const UNMAP_DESCRIPTOR: usize = 16;
/// Block descriptors one UNMAP may carry (reported in the Block Limits VPD page).
pub(super) const MAX_UNMAP_DESCRIPTORS: usize = 256;

/// UNMAP (SBC-3 §5.28): checks the whole parameter list first (write protection, every range
/// inside the medium, the descriptor count), then hands each range to the medium. A list of
/// length 0 unmaps nothing; one shorter than its header is a PARAMETER LIST LENGTH ERROR.
pub(super) fn unmap(
    image: &MemoryImage,
    param_len: usize,
    data: &mut [u8],
    dir: DataDirection,
    medium: &impl Medium,
) -> Outcome {
    if image.is_read_only() {
        return Outcome::check_condition(SenseData::write_protected());
    }
    if param_len == 0 {
        return Outcome::good(0);
    }
    if param_len < UNMAP_HEADER {
        return Outcome::check_condition(SenseData::parameter_list_length());
    }
    let list = match window(data, dir, DataDirection::Out, param_len, 7) {
        Ok(w) => &*w,
        Err(sense) => return Outcome::check_condition(sense),
    };
    let declared = usize::from(u16::from_be_bytes([list[2], list[3]]));
    let descriptors = declared.min(param_len - UNMAP_HEADER) / UNMAP_DESCRIPTOR;
    if descriptors > MAX_UNMAP_DESCRIPTORS {
        return Outcome::check_condition(SenseData::invalid_parameter());
    }
    let range = |i: usize| {
        let d = &list[UNMAP_HEADER + i * UNMAP_DESCRIPTOR..][..UNMAP_DESCRIPTOR];
        let lba = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let blocks = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
        let end = lba.checked_add(u64::from(blocks));
        match end {
            Some(end) if end <= image.blocks() => {
                let bs = u64::from(image.block_size());
                Ok((lba * bs, u64::from(blocks) * bs))
            }
            _ => Err(SenseData::lba_out_of_range()),
        }
    };
    for i in 0..descriptors {
        if let Err(sense) = range(i) {
            return Outcome::check_condition(sense);
        }
    }
    for i in 0..descriptors {
        let Ok((offset, len)) = range(i) else {
            continue;
        };
        if len == 0 {
            continue;
        }
        if let Err(e) = medium.unmap(offset, len) {
            return e.outcome(true);
        }
    }
    Outcome::good(param_len)
}
