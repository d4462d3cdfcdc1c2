//! Helpers shared by the control-protocol tests.
#![allow(dead_code)]

use rvblk_core::control::{encode, NtPath, Request, HEADER_LEN};

/// UTF-16LE bytes of `s`.
pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A DeviceIoControl buffer holding `request` with `room` payload bytes in total (at least the
/// request's own).
pub fn encoded(request: &Request<'_>, room: usize) -> Vec<u8> {
    let mut buf = vec![0xEEu8; HEADER_LEN + room.max(request.body_len())];
    encode(request, 30, &mut buf).expect("encode");
    buf
}

pub fn path(bytes: &[u8]) -> NtPath<'_> {
    NtPath::new(bytes).expect("valid path")
}

pub fn set_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn set_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
