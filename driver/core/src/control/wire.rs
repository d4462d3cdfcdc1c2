//! Little-endian field access at byte offsets. Buffers come from user mode through the port
//! with no alignment promise (`docs/control.md` §2), so every field is read and written byte by
//! byte; every access is bounds-checked and reports failure instead of panicking.

pub(crate) fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes(b, at).map(u64::from_le_bytes)
}

/// Writes `src` at `at`; `None` (and nothing written) when it does not fit.
pub(crate) fn put(b: &mut [u8], at: usize, src: &[u8]) -> Option<()> {
    b.get_mut(at..at.checked_add(src.len())?)?
        .copy_from_slice(src);
    Some(())
}

pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    put(b, at, &v.to_le_bytes())
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) -> Option<()> {
    put(b, at, &v.to_le_bytes())
}

pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) -> Option<()> {
    put(b, at, &v.to_le_bytes())
}
