//! ACPI NFIT builder (`docs/loaders.md` §6.2): 36-byte header + 4 reserved bytes, then structures.

pub use rvblk_core::discovery::{
    NFIT_GUID_PERSISTENT_VIRTUAL_CD, NFIT_GUID_PERSISTENT_VIRTUAL_DISK, NFIT_GUID_VIRTUAL_CD,
    NFIT_GUID_VIRTUAL_DISK,
};

/// Byte-addressable persistent memory (real NVDIMM; must never be exposed), as stored.
pub const NFIT_GUID_PERSISTENT_MEMORY: [u8; 16] = [
    0x79, 0xD3, 0xF0, 0x66, 0xF3, 0xB4, 0x74, 0x40, 0xAC, 0x43, 0x0D, 0x33, 0x18, 0xB7, 0x8C, 0xDB,
];

/// One SPA range structure (type 0).
#[derive(Clone, Copy, Debug)]
pub struct Spa {
    pub index: u16,
    pub flags: u16,
    pub proximity: u32,
    pub guid: [u8; 16],
    pub base: u64,
    pub length: u64,
    pub attributes: u64,
    /// 64-byte form with the location cookie.
    pub cookie: Option<u64>,
}

impl Spa {
    /// What EDK2 RamDiskDxe writes: index 0, flags 0, attributes 0, 56 bytes.
    pub fn ram_disk(guid: [u8; 16], base: u64, length: u64) -> Self {
        Spa {
            index: 0,
            flags: 0,
            proximity: 0,
            guid,
            base,
            length,
            attributes: 0,
            cookie: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let len: u16 = if self.cookie.is_some() { 64 } else { 56 };
        let mut b = vec![0u8; len as usize];
        b[2..4].copy_from_slice(&len.to_le_bytes());
        b[4..6].copy_from_slice(&self.index.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[0x0C..0x10].copy_from_slice(&self.proximity.to_le_bytes());
        b[0x10..0x20].copy_from_slice(&self.guid);
        b[0x20..0x28].copy_from_slice(&self.base.to_le_bytes());
        b[0x28..0x30].copy_from_slice(&self.length.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&self.attributes.to_le_bytes());
        if let Some(c) = self.cookie {
            b[0x38..0x40].copy_from_slice(&c.to_le_bytes());
        }
        b
    }
}

/// Builds a complete NFIT with a valid checksum (unless overridden).
#[derive(Clone, Debug)]
pub struct NfitBuilder {
    pub revision: u8,
    pub structures: Vec<Vec<u8>>,
    pub checksum_override: Option<u8>,
    /// Header length field override (e.g. to lie about the length).
    pub length_override: Option<u32>,
}

impl Default for NfitBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl NfitBuilder {
    pub fn new() -> Self {
        NfitBuilder {
            revision: 1,
            structures: Vec::new(),
            checksum_override: None,
            length_override: None,
        }
    }

    pub fn spa(mut self, spa: Spa) -> Self {
        self.structures.push(spa.to_bytes());
        self
    }

    /// A RamDiskDxe-style SPA.
    pub fn ram_disk(self, guid: [u8; 16], base: u64, length: u64) -> Self {
        self.spa(Spa::ram_disk(guid, base, length))
    }

    /// Any raw structure bytes (type/length included by the caller).
    pub fn raw(mut self, bytes: Vec<u8>) -> Self {
        self.structures.push(bytes);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut t = vec![0u8; 40];
        for s in &self.structures {
            t.extend_from_slice(s);
        }
        t[0..4].copy_from_slice(b"NFIT");
        let len = self.length_override.unwrap_or(t.len() as u32);
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[8] = self.revision;
        t[10..16].copy_from_slice(b"EDK2  ");
        t[16..24].copy_from_slice(b"RAMDISK ");
        t[24..28].copy_from_slice(&1u32.to_le_bytes());
        t[28..32].copy_from_slice(b"EDK2");
        t[32..36].copy_from_slice(&1u32.to_le_bytes());
        let n = (len as usize).min(t.len());
        let sum = t[..n].iter().fold(0u8, |s, &x| s.wrapping_add(x));
        t[9] = self.checksum_override.unwrap_or(0u8.wrapping_sub(sum));
        t
    }
}
