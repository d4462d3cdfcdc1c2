//! A small, independent reader of MEMDISK's structures in a low-memory dump (`docs/loaders.md` §5,
//! `docs/loaders-observed.md` §3). It serves the smart dump and checks the experiment itself (that
//! MEMDISK put what we expect where it says); it is deliberately *not* the driver's discovery.

/// What one MEMDISK instance says about its image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memdisk {
    /// Physical address of the safe hook (`$INT13SF` structure) the mBFT points back to.
    pub hook: u32,
    /// Physical address of the mBFT.
    pub mbft: u32,
    pub diskbuf: u32,
    pub disksize: u32,
    pub sector_shift: u8,
    pub driveno: u8,
    pub configflags: u8,
}

impl Memdisk {
    pub fn image_bytes(&self) -> u64 {
        u64::from(self.disksize) << self.sector_shift
    }
    pub fn read_only(&self) -> bool {
        self.configflags & 1 != 0
    }
}

fn u16_at(m: &[u8], a: usize) -> Option<u16> {
    Some(u16::from_le_bytes(m.get(a..a + 2)?.try_into().ok()?))
}
fn u32_at(m: &[u8], a: usize) -> Option<u32> {
    Some(u32::from_le_bytes(m.get(a..a + 4)?.try_into().ok()?))
}

/// The MEMDISK safe hook at `addr`, if that is one; returns its mBFT pointer (+0x1B).
fn hook_mbft(low: &[u8], addr: usize) -> Option<u32> {
    (low.get(addr + 3..addr + 19)? == b"$INT13SFMEMDISK ").then(|| u32_at(low, addr + 0x1B))?
}

/// Parses and validates the mBFT at `addr` (signature, length = MDI.bytes + 40, checksum, the
/// safe-hook cross-link) and the MDI/patch area after it.
pub fn parse_mbft(low: &[u8], addr: usize) -> Result<Memdisk, String> {
    let t = low
        .get(addr..addr + 0x60)
        .ok_or_else(|| format!("mBFT {addr:#x} out of range"))?;
    if &t[..4] != b"mBFT" {
        return Err(format!("no mBFT signature at {addr:#x}"));
    }
    let len = u32_at(t, 4).unwrap() as usize;
    let mdi_bytes = u16_at(t, 0x28).unwrap() as usize;
    if !(66..=256).contains(&len) || len != mdi_bytes + 40 {
        return Err(format!(
            "mBFT {addr:#x}: length {len}, MDI bytes {mdi_bytes}"
        ));
    }
    let sum = low[addr..addr + len]
        .iter()
        .fold(0u8, |s, b| s.wrapping_add(*b));
    if sum != 0 {
        return Err(format!("mBFT {addr:#x}: checksum {sum:#x}"));
    }
    let hook = u32_at(t, 0x24).unwrap();
    if hook_mbft(low, hook as usize) != Some(addr as u32) {
        return Err(format!(
            "mBFT {addr:#x}: safe hook {hook:#x} does not point back"
        ));
    }
    let mdi = 0x28;
    let shift = t[mdi + 0x1B];
    let driveno = t[mdi + 0x34];
    let shift = match shift {
        0 if driveno == 0xE0 => 11,
        0 => 9,
        s => s,
    };
    Ok(Memdisk {
        hook,
        mbft: addr as u32,
        diskbuf: u32_at(t, mdi + 4).unwrap(),
        disksize: u32_at(t, mdi + 8).unwrap(),
        sector_shift: shift,
        driveno,
        configflags: t[mdi + 0x37],
    })
}

/// IVT[0x13] → `$INT13SF` safe hooks (following `prev` at +0x13 through other vendors, at most
/// 16 hops) → the `MEMDISK ` hook → +0x1B → mBFT.
pub fn from_chain(low: &[u8]) -> Result<Memdisk, String> {
    let mut far = u32_at(low, 0x4C).ok_or("no IVT")?;
    for _ in 0..16 {
        let (seg, off) = ((far >> 16) as usize, (far & 0xFFFF) as usize);
        let hook = seg * 16 + off;
        if let Some(mbft) = hook_mbft(low, hook) {
            return parse_mbft(low, mbft as usize);
        }
        if low.get(hook + 3..hook + 11) != Some(&b"$INT13SF"[..]) {
            return Err(format!(
                "INT 13h chain ends at {seg:04X}:{off:04X} without a MEMDISK safe hook"
            ));
        }
        far = u32_at(low, hook + 0x13).ok_or("hook out of range")?;
    }
    Err("INT 13h chain longer than 16 hooks".into())
}

/// Every valid mBFT in conventional memory, 16-byte steps from 0x500 to 0xA0000.
pub fn scan(low: &[u8]) -> Vec<Memdisk> {
    (0x500..0xA0000usize.min(low.len().saturating_sub(70)))
        .step_by(16)
        .filter(|&a| &low[a..a + 4] == b"mBFT")
        .filter_map(|a| parse_mbft(low, a).ok())
        .collect()
}
