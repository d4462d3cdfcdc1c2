//! Ventoy hand-off structures (`docs/ventoy.md` §1, §2.1, §3.1) and the values observed with
//! Ventoy 1.0.73 in QEMU (§7).

use crate::PhysMem;

/// Ventoy's GUID as stored: the ASCII text "  www.ventoy.net".
pub const VENTOY_GUID: [u8; 16] = *b"  www.ventoy.net";

/// A `ventoy_os_param` record. [`VentoyParam::observed_iso`] gives the 1.0.73 values; every
/// field can be changed to build corrupt variants.
#[derive(Clone, Debug)]
pub struct VentoyParam {
    pub guid: [u8; 16],
    pub disk_id: [u8; 16],
    pub disk_size: u64,
    pub part_id: u16,
    pub part_type: u16,
    pub path: Vec<u8>,
    /// Written as is (no NUL added when it fills all 384 bytes).
    pub image_size: u64,
    pub location_addr: u64,
    /// `None`: 28 + 16 × the planted location's regions ([`VentoyParam::with_location`]).
    pub location_len: u32,
    /// `vtoy_reserved` (32 bytes at 0x1C1); [2] is the chain type.
    pub reserved: [u8; 32],
    pub disk_signature: u32,
    /// Fix the checksum byte so the 512-byte sum is 0 (set false for a bad-checksum record).
    pub fix_checksum: bool,
}

impl VentoyParam {
    /// test.iso (2083 × 2048 bytes) on a 64 MiB FAT32 stick, location list at 0x0FF3C000 with one
    /// region (§7, run vt1073_fat32).
    pub fn observed_iso() -> Self {
        VentoyParam {
            guid: VENTOY_GUID,
            disk_id: *b"\x5e\x11\xd0\x0d\xca\xfe\xba\xbe\x01\x23\x45\x67\x89\xab\xcd\xef",
            disk_size: 64 << 20,
            part_id: 1,
            part_type: 5,
            path: b"/test.iso".to_vec(),
            image_size: 2083 * 2048,
            location_addr: 0x0FF3_C000,
            location_len: 28 + 16,
            reserved: [0; 32],
            disk_signature: 0x1234_5678,
            fix_checksum: true,
        }
    }

    pub fn chain_type(mut self, t: u8) -> Self {
        self.reserved[2] = t;
        self
    }

    pub fn with_location(mut self, loc: &VentoyLocation) -> Self {
        self.location_len = 28 + 16 * loc.regions.len() as u32;
        self
    }

    pub fn to_bytes(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..16].copy_from_slice(&self.guid);
        b[0x11..0x21].copy_from_slice(&self.disk_id);
        b[0x21..0x29].copy_from_slice(&self.disk_size.to_le_bytes());
        b[0x29..0x2B].copy_from_slice(&self.part_id.to_le_bytes());
        b[0x2B..0x2D].copy_from_slice(&self.part_type.to_le_bytes());
        let n = self.path.len().min(384);
        b[0x2D..0x2D + n].copy_from_slice(&self.path[..n]);
        b[0x1AD..0x1B5].copy_from_slice(&self.image_size.to_le_bytes());
        b[0x1B5..0x1BD].copy_from_slice(&self.location_addr.to_le_bytes());
        b[0x1BD..0x1C1].copy_from_slice(&self.location_len.to_le_bytes());
        b[0x1C1..0x1E1].copy_from_slice(&self.reserved);
        b[0x1E1..0x1E5].copy_from_slice(&self.disk_signature.to_le_bytes());
        if self.fix_checksum {
            let sum = b.iter().fold(0u8, |s, &x| s.wrapping_add(x));
            b[0x10] = 0u8.wrapping_sub(sum);
        } else {
            let sum = b.iter().fold(0u8, |s, &x| s.wrapping_add(x));
            b[0x10] = 1u8.wrapping_sub(sum);
        }
        b
    }

    /// The plain BIOS hand-off: the record at `addr` (observed 0x9E6F0, BDA 0x413 = 624 KiB).
    pub fn plant(&self, mem: &mut PhysMem, addr: u64) {
        mem.write(addr, &self.to_bytes());
    }

    /// The `iBFT`-wrapped form (§3.1): a 36-byte ACPI header at `addr` (length 592, OEM
    /// `ventoy`/`runtime`, valid checksum), zeros, and the record at `addr + 80`.
    pub fn plant_ibft(&self, mem: &mut PhysMem, addr: u64) {
        let mut t = vec![0u8; 592];
        t[0..4].copy_from_slice(b"iBFT");
        t[4..8].copy_from_slice(&592u32.to_le_bytes());
        t[8] = 1;
        t[10..16].copy_from_slice(b"ventoy");
        t[16..23].copy_from_slice(b"runtime");
        t[80..592].copy_from_slice(&self.to_bytes());
        let sum = t.iter().fold(0u8, |s, &x| s.wrapping_add(x));
        t[9] = 0u8.wrapping_sub(sum);
        mem.write(addr, &t);
    }
}

/// A `ventoy_image_location` list (§2.1).
#[derive(Clone, Debug)]
pub struct VentoyLocation {
    pub guid: [u8; 16],
    pub image_sector_size: u32,
    pub disk_sector_size: u32,
    /// `(image_sectors, image_start, disk_start)`.
    pub regions: Vec<(u32, u32, u64)>,
}

impl VentoyLocation {
    /// Consecutive image runs at the given disk LBAs: `runs` = `(image_sectors, disk_start)`.
    pub fn runs(image_sector_size: u32, runs: &[(u32, u64)]) -> Self {
        let mut start = 0u32;
        let regions = runs
            .iter()
            .map(|&(n, disk)| {
                let r = (n, start, disk);
                start += n;
                r
            })
            .collect();
        VentoyLocation {
            guid: VENTOY_GUID,
            image_sector_size,
            disk_sector_size: 512,
            regions,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(28 + 16 * self.regions.len());
        b.extend_from_slice(&self.guid);
        b.extend_from_slice(&self.image_sector_size.to_le_bytes());
        b.extend_from_slice(&self.disk_sector_size.to_le_bytes());
        b.extend_from_slice(&(self.regions.len() as u32).to_le_bytes());
        for &(n, start, disk) in &self.regions {
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&disk.to_le_bytes());
        }
        b
    }

    pub fn plant(&self, mem: &mut PhysMem, addr: u64) {
        mem.write(addr, &self.to_bytes());
    }
}
