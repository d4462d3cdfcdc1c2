//! Physical-memory access for discovery: the platform trait and the guard every read goes
//! through (`docs/loaders.md` §8, §10 rules 1–3 and 23).
//!
//! Two kinds of reads exist:
//!
//! * **Low memory**, `[0, 0xA0000)`: IVT, BDA and the loaders' resident blocks. The kernel port
//!   serves these from a private snapshot taken once (§8, rule 1), so they are always allowed.
//!   Every structure access is bounds-checked against `LOW_END` before the read (rule 2).
//! * **Image content** (≥ 1 MiB): only the few KiB needed for content sniffing (§9 F3), and only
//!   inside a candidate range that has already passed the OS-RAM test (rule 23). The guard below
//!   re-checks that test on every such read, so even a logic error elsewhere cannot make the port
//!   map a page Windows owns (mapping OS RAM bugchecks on real Windows).
//!
//! The trait has no write: discovery never writes loader or firmware memory (rule 3).

/// End of conventional memory: everything discovery parses lives below this address.
pub const LOW_END: u64 = 0xA_0000;
/// Start of "high" memory; images must lie at or above it (rules 12, 18, 27).
pub const ONE_MIB: u64 = 0x10_0000;

/// A read the platform could not do (page not mappable, outside the snapshot, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unreadable;

/// Read access to physical memory. Implemented by the kernel port (low-memory snapshot +
/// bounded `MmMapIoSpace` windows), by `rvblk-memimage` for tests and by the fuzz target.
pub trait PhysicalMemory {
    /// Fill `buf` with the bytes at `phys .. phys + buf.len()`. Discovery calls this only for
    /// ranges inside `[0, 0xA0000)` or inside a candidate image that does not intersect any
    /// OS RAM range; reads are small (≤ 1 KiB).
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable>;
}

impl<T: PhysicalMemory + ?Sized> PhysicalMemory for &T {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        (**self).read(phys, buf)
    }
}

/// A physical range Windows manages as RAM (`MmGetPhysicalMemoryRanges`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhysRange {
    pub start: u64,
    pub length: u64,
}

impl PhysRange {
    pub const fn new(start: u64, length: u64) -> Self {
        PhysRange { start, length }
    }

    /// One past the last byte, saturating (a hostile or huge range cannot wrap).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.length)
    }

    /// Whether `[start, end)` intersects this range. Empty ranges intersect nothing.
    pub const fn intersects(&self, start: u64, end: u64) -> bool {
        self.length != 0 && start < end && start < self.end() && self.start < end
    }
}

/// First OS RAM range intersecting `[start, end)`, if any (rule 23).
pub(crate) fn os_ram_hit(os_ram: &[PhysRange], start: u64, end: u64) -> Option<PhysRange> {
    os_ram.iter().copied().find(|r| r.intersects(start, end))
}

/// The guarded view of physical memory every discovery module uses.
pub(crate) struct Mem<'a, M: ?Sized> {
    inner: &'a M,
    os_ram: &'a [PhysRange],
}

impl<'a, M: PhysicalMemory + ?Sized> Mem<'a, M> {
    pub(crate) fn new(inner: &'a M, os_ram: &'a [PhysRange]) -> Self {
        Mem { inner, os_ram }
    }

    /// Guarded read: allowed when wholly inside low memory, or wholly ≥ 1 MiB and clear of OS
    /// RAM. Anything else (the ROM/VGA hole, OS RAM, wrap-around) is refused without touching
    /// the platform.
    pub(crate) fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = phys.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if buf.is_empty() {
            return Ok(());
        }
        let allowed =
            end <= LOW_END || (phys >= ONE_MIB && os_ram_hit(self.os_ram, phys, end).is_none());
        if !allowed {
            return Err(Unreadable);
        }
        self.inner.read(phys, buf)
    }

    /// Read a fixed-size array from low memory; `None` if it would cross `LOW_END` (rule 2) or
    /// the platform cannot read it.
    pub(crate) fn low<const N: usize>(&self, phys: u64) -> Option<[u8; N]> {
        let end = phys.checked_add(N as u64)?;
        if end > LOW_END {
            return None;
        }
        let mut buf = [0u8; N];
        self.read(phys, &mut buf).ok()?;
        Some(buf)
    }

    /// Read into `buf` from low memory with the same bounds as [`Mem::low`].
    pub(crate) fn low_into(&self, phys: u64, buf: &mut [u8]) -> bool {
        match phys.checked_add(buf.len() as u64) {
            Some(end) if end <= LOW_END => self.read(phys, buf).is_ok(),
            _ => false,
        }
    }

    pub(crate) fn low_u16(&self, phys: u64) -> Option<u16> {
        self.low::<2>(phys).map(u16::from_le_bytes)
    }

    pub(crate) fn low_u32(&self, phys: u64) -> Option<u32> {
        self.low::<4>(phys).map(u32::from_le_bytes)
    }

    /// Whether low memory at `phys` holds exactly `pat` (≤ 32 bytes).
    pub(crate) fn low_eq(&self, phys: u64, pat: &[u8]) -> bool {
        let mut buf = [0u8; 32];
        let n = pat.len().min(32);
        self.low_into(phys, &mut buf[..n]) && &buf[..n] == pat
    }
}

/// Little-endian field helpers over a byte slice; out-of-bounds offsets read as 0 (callers
/// always size their buffers to cover the fields they read).
pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    match b.get(off..off + 8) {
        Some(s) => u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        None => 0,
    }
}

/// Linear address of a real-mode far pointer stored as offset:u16, segment:u16 (§ conventions).
/// At most 0x10FFEF.
pub(crate) fn far_to_linear(far: u32) -> u32 {
    ((far >> 16) << 4) + (far & 0xFFFF)
}
