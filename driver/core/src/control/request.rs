//! Requests: parsing what the driver receives and encoding what the CLI sends
//! (`docs/control.md` §2, §3).

use super::wire::{put, put_u16, put_u32, put_u64, u16_at, u32_at, u64_at, u8_at};
use super::{
    header, kind_from_wire, kind_to_wire, ControlCode, ControlError, LunFlags, HEADER_LEN,
    MAX_PATH_UNITS, SIGNATURE, VERSION,
};
use crate::image::DeviceKind;

/// Offsets inside the payload (the bytes after the 28-byte header), §2 and §3.
mod body {
    pub const VERSION: usize = 0;
    pub const RESERVED: usize = 2;
    /// Every payload starts with version + reserved.
    pub const COMMON: usize = 4;

    pub const KIND: usize = 4;
    pub const FLAGS: usize = 5;
    pub const PATH_BYTES: usize = 6;
    /// MOUNT FILE: the path follows the fixed part.
    pub const MOUNT_FIXED: usize = 8;
    /// CREATE RAM DISK: size in bytes, then the optional source path.
    pub const RAM_SIZE: usize = 8;
    pub const RAM_FIXED: usize = 16;
    /// REMOVE: target id and three reserved bytes.
    pub const TARGET: usize = 4;
    pub const REMOVE_FIXED: usize = 8;
}

/// An NT path (`\??\C:\images\a.iso`, `\Device\HarddiskVolume2\a.iso`) as UTF-16LE bytes,
/// validated: non-empty, even length, at most [`MAX_PATH_UNITS`] units, no NUL, starting with
/// `\` (§3.2). The bytes may sit at any alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtPath<'a> {
    bytes: &'a [u8],
}

impl<'a> NtPath<'a> {
    /// Validates UTF-16LE bytes as an NT path. The CLI uses the same check before it sends.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ControlError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(2) || bytes.len() > MAX_PATH_UNITS * 2 {
            return Err(ControlError::BadPathLength);
        }
        let path = NtPath { bytes };
        if path.units().any(|u| u == 0) {
            return Err(ControlError::PathHasNul);
        }
        if path.units().next() != Some(u16::from(b'\\')) {
            return Err(ControlError::PathNotAbsolute);
        }
        Ok(path)
    }

    /// The UTF-16LE bytes, as received.
    pub fn as_le_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length in UTF-16 units.
    pub fn len_units(&self) -> usize {
        self.bytes.len() / 2
    }

    /// The UTF-16 code units, decoded from the bytes whatever their alignment.
    pub fn units(&self) -> impl Iterator<Item = u16> + 'a {
        self.bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
    }

    /// Copies the units into `dst` (for a `UNICODE_STRING` buffer); `None` when it is too short.
    pub fn copy_units(&self, dst: &mut [u16]) -> Option<usize> {
        let n = self.len_units();
        for (d, u) in dst.get_mut(..n)?.iter_mut().zip(self.units()) {
            *d = u;
        }
        Some(n)
    }
}

/// A decoded control request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    ListLuns,
    /// Serve the file as a LUN of `kind`; CDs are read-only whatever `read_only` says.
    MountFile {
        kind: DeviceKind,
        read_only: bool,
        path: NtPath<'a>,
    },
    /// A RAM disk of `size_bytes`, zero-filled or with `source`'s content at its start.
    CreateRamDisk {
        kind: DeviceKind,
        read_only: bool,
        size_bytes: u64,
        source: Option<NtPath<'a>>,
    },
    /// Remove the LUN at `target_id` (path 0, LUN 0).
    Remove {
        target_id: u8,
    },
}

impl Request<'_> {
    pub const fn code(&self) -> ControlCode {
        match self {
            Request::ListLuns => ControlCode::ListLuns,
            Request::MountFile { .. } => ControlCode::MountFile,
            Request::CreateRamDisk { .. } => ControlCode::CreateRamDisk,
            Request::Remove { .. } => ControlCode::Remove,
        }
    }

    /// Payload bytes the request itself takes.
    pub fn body_len(&self) -> usize {
        match self {
            Request::ListLuns => body::COMMON,
            Request::MountFile { path, .. } => body::MOUNT_FIXED + path.as_le_bytes().len(),
            Request::CreateRamDisk { source, .. } => {
                body::RAM_FIXED + source.map_or(0, |p| p.as_le_bytes().len())
            }
            Request::Remove { .. } => body::REMOVE_FIXED,
        }
    }

    /// Path the request names, if any.
    pub fn path(&self) -> Option<NtPath<'_>> {
        match *self {
            Request::MountFile { path, .. } => Some(path),
            Request::CreateRamDisk { source, .. } => source,
            _ => None,
        }
    }
}

/// A parsed request with the header fields the port needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// `SRB_IO_CONTROL.Timeout`, seconds.
    pub timeout: u32,
    /// `SRB_IO_CONTROL.Length`: the payload area, which is also the room for the reply.
    pub length: u32,
    pub request: Request<'a>,
}

/// Validates the header and returns (timeout, Length). Errors are header-level.
pub(crate) fn parse_header(buf: &[u8]) -> Result<(u32, u32, u32), ControlError> {
    if buf.len() < HEADER_LEN {
        return Err(ControlError::ShortBuffer);
    }
    // Signature first: a foreign request (another miniport's, disk.sys's SMART) is simply not
    // ours, whatever the rest of its header says (srb.h rule, §1).
    if buf[header::SIGNATURE..header::SIGNATURE + 8] != SIGNATURE {
        return Err(ControlError::WrongSignature);
    }
    let field = |at| u32_at(buf, at).ok_or(ControlError::ShortBuffer);
    if field(header::HEADER_LENGTH)? != HEADER_LEN as u32 {
        return Err(ControlError::BadHeaderLength);
    }
    let length = field(header::LENGTH)?;
    let end = HEADER_LEN
        .checked_add(length as usize)
        .ok_or(ControlError::LengthPastBuffer)?;
    if end > buf.len() {
        return Err(ControlError::LengthPastBuffer);
    }
    Ok((
        field(header::TIMEOUT)?,
        field(header::CONTROL_CODE)?,
        length,
    ))
}

/// Parses `DataBuffer[..DataTransferLength]` of an SRB_FUNCTION_IO_CONTROL. Every length in the
/// request is checked against the buffer given; nothing is assumed about alignment. Checks run in
/// the order of `docs/control.md` §4, so each malformed request has exactly one answer.
pub fn parse(buf: &[u8]) -> Result<Parsed<'_>, ControlError> {
    let (timeout, code, length) = parse_header(buf)?;
    let body = &buf[HEADER_LEN..HEADER_LEN + length as usize];
    // Every version keeps the 4-byte common part (version + reserved).
    if body.len() < body::COMMON {
        return Err(ControlError::Truncated);
    }
    let version = u16_at(body, body::VERSION).ok_or(ControlError::Truncated)?;
    if version != VERSION {
        return Err(ControlError::UnsupportedVersion);
    }
    let code = ControlCode::from_u32(code).ok_or(ControlError::UnknownCode)?;
    if u16_at(body, body::RESERVED) != Some(0) {
        return Err(ControlError::ReservedNotZero);
    }
    let request = match code {
        ControlCode::ListLuns => Request::ListLuns,
        ControlCode::MountFile => {
            let (kind, read_only, path_bytes) = kind_flags_path(body, body::MOUNT_FIXED)?;
            let path =
                path_at(body, body::MOUNT_FIXED, path_bytes)?.ok_or(ControlError::BadPathLength)?;
            Request::MountFile {
                kind,
                read_only,
                path,
            }
        }
        ControlCode::CreateRamDisk => {
            let (kind, read_only, path_bytes) = kind_flags_path(body, body::RAM_FIXED)?;
            let size_bytes = u64_at(body, body::RAM_SIZE).ok_or(ControlError::Truncated)?;
            Request::CreateRamDisk {
                kind,
                read_only,
                size_bytes,
                source: path_at(body, body::RAM_FIXED, path_bytes)?,
            }
        }
        ControlCode::Remove => {
            if body.len() < body::REMOVE_FIXED {
                return Err(ControlError::Truncated);
            }
            if body[body::TARGET + 1..body::REMOVE_FIXED] != [0; 3] {
                return Err(ControlError::ReservedNotZero);
            }
            Request::Remove {
                target_id: body[body::TARGET],
            }
        }
    };
    Ok(Parsed {
        timeout,
        length,
        request,
    })
}

/// Kind, read-only flag and path byte count of MOUNT FILE / CREATE RAM DISK.
fn kind_flags_path(body: &[u8], fixed: usize) -> Result<(DeviceKind, bool, usize), ControlError> {
    if body.len() < fixed {
        return Err(ControlError::Truncated);
    }
    let kind = u8_at(body, body::KIND).ok_or(ControlError::Truncated)?;
    let flags = u8_at(body, body::FLAGS).ok_or(ControlError::Truncated)?;
    let path_bytes = u16_at(body, body::PATH_BYTES).ok_or(ControlError::Truncated)?;
    let flags = LunFlags::from_bits(flags).ok_or(ControlError::ReservedNotZero)?;
    let kind = kind_from_wire(kind).ok_or(ControlError::BadKind)?;
    Ok((
        kind,
        flags.contains(LunFlags::READ_ONLY),
        usize::from(path_bytes),
    ))
}

/// The path of `path_bytes` bytes at `at`, `None` when `path_bytes` is 0.
fn path_at(body: &[u8], at: usize, path_bytes: usize) -> Result<Option<NtPath<'_>>, ControlError> {
    if path_bytes == 0 {
        return Ok(None);
    }
    let bytes = body
        .get(at..at + path_bytes)
        .ok_or(ControlError::BadPathLength)?;
    NtPath::new(bytes).map(Some)
}

/// Encodes `request` into `buf`, which becomes the whole DeviceIoControl buffer: the header's
/// Length is `buf.len() - 28`, so everything after the request's own bytes is room for the reply
/// (zeroed). Returns the bytes the request itself used. Refuses (writing nothing) a buffer too
/// short for the request ([`ControlError::BufferTooSmall`] with the payload size needed) or too
/// long for a u32 Length.
pub fn encode(request: &Request<'_>, timeout: u32, buf: &mut [u8]) -> Result<usize, ControlError> {
    let body_len = request.body_len();
    let used = HEADER_LEN + body_len;
    if buf.len() < used {
        return Err(ControlError::BufferTooSmall {
            needed: body_len as u32,
        });
    }
    let length =
        u32::try_from(buf.len() - HEADER_LEN).map_err(|_| ControlError::LengthPastBuffer)?;
    buf.fill(0);
    let ok = (|| {
        put_u32(buf, header::HEADER_LENGTH, HEADER_LEN as u32)?;
        put(buf, header::SIGNATURE, &SIGNATURE)?;
        put_u32(buf, header::TIMEOUT, timeout)?;
        put_u32(buf, header::CONTROL_CODE, request.code() as u32)?;
        put_u32(buf, header::LENGTH, length)?;
        let body = &mut buf[HEADER_LEN..used];
        put_u16(body, body::VERSION, VERSION)?;
        match *request {
            Request::ListLuns => {}
            Request::MountFile {
                kind,
                read_only,
                path,
            } => {
                kind_flags_path_out(body, kind, read_only, Some(path))?;
                put(body, body::MOUNT_FIXED, path.as_le_bytes())?;
            }
            Request::CreateRamDisk {
                kind,
                read_only,
                size_bytes,
                source,
            } => {
                kind_flags_path_out(body, kind, read_only, source)?;
                put_u64(body, body::RAM_SIZE, size_bytes)?;
                if let Some(p) = source {
                    put(body, body::RAM_FIXED, p.as_le_bytes())?;
                }
            }
            Request::Remove { target_id } => body[body::TARGET] = target_id,
        }
        Some(())
    })();
    // Every offset above lies inside `used`, checked at the top.
    debug_assert!(ok.is_some());
    Ok(body_len)
}

fn kind_flags_path_out(
    body: &mut [u8],
    kind: DeviceKind,
    read_only: bool,
    path: Option<NtPath<'_>>,
) -> Option<()> {
    *body.get_mut(body::KIND)? = kind_to_wire(kind);
    *body.get_mut(body::FLAGS)? = if read_only {
        LunFlags::READ_ONLY.bits()
    } else {
        0
    };
    // NtPath guarantees at most MAX_PATH_UNITS units, i.e. ≤ 65534 bytes.
    let n = path.map_or(0, |p| p.as_le_bytes().len());
    put_u16(body, body::PATH_BYTES, u16::try_from(n).ok()?)
}
