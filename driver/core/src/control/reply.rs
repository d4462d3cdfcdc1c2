//! Replies: what the driver writes back into the request's buffer, and how the CLI reads it
//! (`docs/control.md` §3, §4).
//!
//! The reply overwrites the payload area in place (IOCTL_SCSI_MINIPORT is METHOD_BUFFERED: one
//! system buffer for input and output). It never goes past the Length the requester declared nor
//! past the buffer; when it would not fit, the answer is [`ControlError::BufferTooSmall`] with the
//! Length needed in the header's Length field.

use super::request::parse_header;
use super::wire::{put, put_u16, put_u32, put_u64, u16_at, u32_at, u64_at, u8_at};
use super::{
    header, kind_from_wire, kind_to_wire, ControlCode, ControlError, LunFlags, NtPath, Origin,
    Request, HEADER_LEN, SIGNATURE, VERSION,
};
use crate::image::{DeviceKind, MemoryImage};
use crate::srb::status;

mod body {
    pub const VERSION: usize = 0;
    pub const RESERVED: usize = 2;
    /// LIST LUNS reply: number of entries, then the entries (all LUNs, or a BUFFER TOO SMALL
    /// error instead).
    pub const LIST_COUNT: usize = 4;
    pub const LIST_ENTRIES: usize = 8;
    /// MOUNT FILE / CREATE RAM DISK reply: one entry after version + reserved.
    pub const LUN_ENTRY: usize = 4;
    /// REMOVE reply: target id, three reserved bytes.
    pub const REMOVED_TARGET: usize = 4;
    pub const REMOVED_LEN: usize = 8;
}

/// Offsets inside one LUN entry (§3.1).
mod entry {
    pub const TARGET: usize = 0;
    pub const KIND: usize = 1;
    pub const ORIGIN: usize = 2;
    pub const FLAGS: usize = 3;
    pub const BLOCK_SIZE: usize = 4;
    pub const BLOCKS: usize = 8;
    pub const PATH_BYTES: usize = 16;
    pub const RESERVED: usize = 18;
    pub const FIXED: usize = 20;
}

/// One LUN as the driver reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LunInfo<'a> {
    pub target_id: u8,
    pub kind: DeviceKind,
    pub origin: Origin,
    pub read_only: bool,
    pub block_size: u32,
    pub blocks: u64,
    /// The file of a file mount (or a RAM disk's source image), as the requester gave it.
    pub path: Option<NtPath<'a>>,
}

impl LunInfo<'static> {
    /// A LUN a loader left at boot, at `target_id`, serving `image` (for a disk-backed LUN, the
    /// target's view of the image: kind, block size and blocks as Windows sees them).
    pub const fn loader(target_id: u8, image: &MemoryImage) -> Self {
        LunInfo {
            target_id,
            kind: image.kind,
            origin: Origin::Loader,
            read_only: image.is_read_only(),
            block_size: image.block_size(),
            blocks: image.blocks(),
            path: None,
        }
    }
}

impl LunInfo<'_> {
    fn wire_len(&self) -> usize {
        entry::FIXED + self.path.map_or(0, |p| p.as_le_bytes().len())
    }

    fn write(&self, out: &mut [u8]) -> Option<usize> {
        let path = self.path.map_or(&[][..], |p| p.as_le_bytes());
        let flags = if self.read_only || self.kind == DeviceKind::CdRom {
            LunFlags::READ_ONLY
        } else {
            LunFlags::empty()
        };
        put(
            out,
            entry::TARGET,
            &[
                self.target_id,
                kind_to_wire(self.kind),
                self.origin.to_wire(),
                flags.bits(),
            ],
        )?;
        put_u32(out, entry::BLOCK_SIZE, self.block_size)?;
        put_u64(out, entry::BLOCKS, self.blocks)?;
        put_u16(out, entry::PATH_BYTES, u16::try_from(path.len()).ok()?)?;
        put_u16(out, entry::RESERVED, 0)?;
        put(out, entry::FIXED, path)?;
        Some(self.wire_len())
    }

    /// Decodes one entry; returns it and its length.
    fn read(b: &[u8]) -> Option<(LunInfo<'_>, usize)> {
        let kind = kind_from_wire(u8_at(b, entry::KIND)?)?;
        let origin = Origin::from_wire(u8_at(b, entry::ORIGIN)?)?;
        let flags = LunFlags::from_bits(u8_at(b, entry::FLAGS)?)?;
        let path_bytes = usize::from(u16_at(b, entry::PATH_BYTES)?);
        if u16_at(b, entry::RESERVED)? != 0 {
            return None;
        }
        let path = match path_bytes {
            0 => None,
            n => Some(NtPath::new(b.get(entry::FIXED..entry::FIXED + n)?).ok()?),
        };
        let info = LunInfo {
            target_id: u8_at(b, entry::TARGET)?,
            kind,
            origin,
            read_only: flags.contains(LunFlags::READ_ONLY),
            block_size: u32_at(b, entry::BLOCK_SIZE)?,
            blocks: u64_at(b, entry::BLOCKS)?,
            path,
        };
        Some((info, entry::FIXED + path_bytes))
    }
}

/// The payload Length the reply to `request` needs. For LIST LUNS it depends on the driver's
/// LUNs: this is the size for an empty adapter, and the CLI grows the buffer to the size a
/// [`ControlError::BufferTooSmall`] reply names.
pub fn reply_len(request: &Request<'_>) -> usize {
    match *request {
        Request::ListLuns => body::LIST_ENTRIES,
        Request::MountFile { path, .. } => {
            body::LUN_ENTRY + entry::FIXED + path.as_le_bytes().len()
        }
        Request::CreateRamDisk { source, .. } => {
            body::LUN_ENTRY + entry::FIXED + source.map_or(0, |p| p.as_le_bytes().len())
        }
        Request::Remove { .. } => body::REMOVED_LEN,
    }
}

/// The DeviceIoControl buffer size for `request`: the header plus room for the request and for
/// its reply (which overwrites the request in place).
pub fn buffer_len(request: &Request<'_>) -> usize {
    HEADER_LEN + request.body_len().max(reply_len(request))
}

/// How the port completes the SRB after a reply was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub srb_status: u8,
    /// New DataTransferLength: header plus the reply payload (0 when nothing was written).
    pub data_transfer_length: u32,
    /// What was written into ReturnCode (`None` when the header was not touched).
    pub return_code: Option<u32>,
}

/// The payload room of a buffer whose header was already accepted by `parse`: the declared Length,
/// never more than the buffer holds. `None` when the header is not an rvblk one.
fn room(buf: &[u8]) -> Option<usize> {
    parse_header(buf).ok()?;
    let length = u32_at(buf, header::LENGTH)? as usize;
    Some(length.min(buf.len() - HEADER_LEN))
}

fn finish(buf: &mut [u8], return_code: u32, length: u32, written: usize) -> Completion {
    // `room` has checked the header, so both fields are inside `buf`.
    let ok = put_u32(buf, header::RETURN_CODE, return_code)
        .and_then(|()| put_u32(buf, header::LENGTH, length));
    debug_assert!(ok.is_some());
    Completion {
        srb_status: status::SUCCESS,
        data_transfer_length: (HEADER_LEN + written) as u32,
        return_code: Some(return_code),
    }
}

/// Answers a refused request (§4): header-level errors leave the buffer untouched and complete
/// INVALID_REQUEST; every other error is written to ReturnCode (Length 0, or the Length needed for
/// [`ControlError::BufferTooSmall`]) and completes SUCCESS so the requester receives it.
pub fn reply_error(buf: &mut [u8], error: ControlError) -> Completion {
    if !error.reaches_requester() || room(buf).is_none() {
        return Completion {
            srb_status: status::INVALID_REQUEST,
            data_transfer_length: 0,
            return_code: None,
        };
    }
    let needed = match error {
        ControlError::BufferTooSmall { needed } => needed,
        _ => 0,
    };
    finish(buf, error.return_code(), needed, 0)
}

/// Writes a reply payload produced by `write` into the room, or BUFFER TOO SMALL.
fn reply_with(
    buf: &mut [u8],
    needed: usize,
    write: impl FnOnce(&mut [u8]) -> Option<()>,
) -> Completion {
    let Some(room) = room(buf) else {
        return reply_error(buf, ControlError::ShortBuffer);
    };
    if needed > room {
        let needed = u32::try_from(needed).unwrap_or(u32::MAX);
        return reply_error(buf, ControlError::BufferTooSmall { needed });
    }
    let out = &mut buf[HEADER_LEN..HEADER_LEN + needed];
    out.fill(0);
    let ok = put_u16(out, body::VERSION, VERSION).and_then(|()| write(out));
    if ok.is_none() {
        // Only a LUN path longer than a u16 byte count could get here; NtPath rules it out.
        return reply_error(buf, ControlError::BadPathLength);
    }
    finish(buf, 0, needed as u32, needed)
}

/// LIST LUNS reply: all LUNs or, if they do not all fit, BUFFER TOO SMALL with the size needed.
pub fn reply_luns(buf: &mut [u8], luns: &[LunInfo<'_>]) -> Completion {
    let needed = body::LIST_ENTRIES + luns.iter().map(LunInfo::wire_len).sum::<usize>();
    reply_with(buf, needed, |out| {
        put_u32(out, body::LIST_COUNT, u32::try_from(luns.len()).ok()?)?;
        let mut at = body::LIST_ENTRIES;
        for lun in luns {
            at += lun.write(out.get_mut(at..)?)?;
        }
        Some(())
    })
}

/// MOUNT FILE / CREATE RAM DISK reply: the new LUN.
pub fn reply_lun(buf: &mut [u8], lun: &LunInfo<'_>) -> Completion {
    reply_with(buf, body::LUN_ENTRY + lun.wire_len(), |out| {
        lun.write(out.get_mut(body::LUN_ENTRY..)?).map(|_| ())
    })
}

/// REMOVE reply: the target that is going away.
pub fn reply_removed(buf: &mut [u8], target_id: u8) -> Completion {
    reply_with(buf, body::REMOVED_LEN, |out| {
        *out.get_mut(body::REMOVED_TARGET)? = target_id;
        Some(())
    })
}

/// A decoded successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    Luns(LunEntries<'a>),
    Lun(LunInfo<'a>),
    Removed { target_id: u8 },
}

/// The entries of a LIST LUNS reply, validated by [`read_reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LunEntries<'a> {
    bytes: &'a [u8],
    remaining: u32,
}

impl LunEntries<'_> {
    pub fn len(&self) -> usize {
        self.remaining as usize
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for LunEntries<'a> {
    type Item = LunInfo<'a>;

    fn next(&mut self) -> Option<LunInfo<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let (info, n) = LunInfo::read(self.bytes)?;
        self.bytes = &self.bytes[n..];
        self.remaining -= 1;
        Some(info)
    }
}

/// Why the CLI could not use a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The driver refused the request.
    Refused(ControlError),
    /// A ReturnCode this build does not know (a newer driver).
    UnknownReturnCode(u32),
    /// The reply does not follow the format (§3); names the part that is wrong.
    Malformed(&'static str),
}

/// Decodes the buffer DeviceIoControl returned for a request with `code` (`buf` = the bytes the
/// call reported, header included).
pub fn read_reply(code: ControlCode, buf: &[u8]) -> Result<Reply<'_>, ReplyError> {
    if buf.len() < HEADER_LEN || buf[header::SIGNATURE..header::SIGNATURE + 8] != SIGNATURE {
        return Err(ReplyError::Malformed("header"));
    }
    let field = |at| u32_at(buf, at).ok_or(ReplyError::Malformed("header"));
    let return_code = field(header::RETURN_CODE)?;
    let length = field(header::LENGTH)?;
    if return_code != 0 {
        return Err(match ControlError::from_return_code(return_code, length) {
            Some(e) => ReplyError::Refused(e),
            None => ReplyError::UnknownReturnCode(return_code),
        });
    }
    let body = buf
        .get(HEADER_LEN..HEADER_LEN.saturating_add(length as usize))
        .ok_or(ReplyError::Malformed("Length past the returned bytes"))?;
    if u16_at(body, body::VERSION) != Some(VERSION) || u16_at(body, body::RESERVED) != Some(0) {
        return Err(ReplyError::Malformed("version"));
    }
    match code {
        ControlCode::ListLuns => {
            let count = u32_at(body, body::LIST_COUNT).ok_or(ReplyError::Malformed("count"))?;
            let bytes = body.get(body::LIST_ENTRIES..).unwrap_or(&[]);
            let entries = LunEntries {
                bytes,
                remaining: count,
            };
            // Validate every entry now, so iterating cannot stop early.
            let mut check = entries;
            let mut used = 0;
            for _ in 0..count {
                let (_, n) =
                    LunInfo::read(check.bytes).ok_or(ReplyError::Malformed("LUN entry"))?;
                check.bytes = &check.bytes[n..];
                used += n;
            }
            Ok(Reply::Luns(LunEntries {
                bytes: &bytes[..used],
                remaining: count,
            }))
        }
        ControlCode::MountFile | ControlCode::CreateRamDisk => {
            let (info, _) = body
                .get(body::LUN_ENTRY..)
                .and_then(LunInfo::read)
                .ok_or(ReplyError::Malformed("LUN entry"))?;
            Ok(Reply::Lun(info))
        }
        ControlCode::Remove => {
            if body.len() < body::REMOVED_LEN {
                return Err(ReplyError::Malformed("target"));
            }
            Ok(Reply::Removed {
                target_id: body[body::REMOVED_TARGET],
            })
        }
    }
}
