//! syslinux MEMDISK resident block (`docs/loaders.md` §5; observed bytes from
//! `docs/loaders-observed.md` §3.1, MEMDISK 6.04).

use crate::PhysMem;

/// Which of MEMDISK's three hooks was installed; fixes the driver header words and the mBFT
/// offset (observed §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemdiskHook {
    /// El Torito / ISO hook.
    Iso,
    /// EDD hook (hard disk).
    Edd,
    /// CHS hook (floppy).
    Chs,
}

impl MemdiskHook {
    /// (int13_offs, int15_offs, patch_offs, total_size, iret_offs).
    pub fn header(self) -> [u16; 5] {
        match self {
            MemdiskHook::Iso => [0x000A, 0x03FD, 0x0688, 0x0744, 0x00BD],
            MemdiskHook::Edd => [0x000A, 0x03BA, 0x0628, 0x06D0, 0x00B4],
            MemdiskHook::Chs => [0x000A, 0x02D1, 0x04E8, 0x0544, 0x00B4],
        }
    }

    /// mBFT offset from the driver base (= patch_offs − 0x28).
    pub fn mbft_offset(self) -> u64 {
        u64::from(self.header()[2]) - 0x28
    }
}

/// A MEMDISK instance. Constructors give the observed 256 MiB `pc` layouts; every field can be
/// changed, and the checksum is recomputed unless `checksum_override` is set.
#[derive(Clone, Debug)]
pub struct MemdiskBlock {
    /// KiB-aligned driver base (IVT segment × 16).
    pub driveraddr: u64,
    pub hook_kind: MemdiskHook,
    /// Jump at the safe hook (observed `e9 1c 00`).
    pub jump: [u8; 3],
    pub vendor: [u8; 8],
    /// Safe-hook prev (far pointer seg << 16 | off); also MDI oldint13.
    pub prev_int13: u32,
    pub flags: u32,
    /// mBFT fields.
    pub signature: [u8; 4],
    /// `None` = 40 + mdi_bytes.
    pub length_override: Option<u32>,
    pub revision: u8,
    pub checksum_override: Option<u8>,
    pub oem_id: [u8; 6],
    pub oem_table_id: [u8; 8],
    /// +0x24; `None` = driveraddr + 0x0A.
    pub safe_hook_override: Option<u32>,
    /// Hook +0x1B; `None` = the mBFT address.
    pub hook_mbft_override: Option<u32>,
    /// MDI.
    pub mdi_bytes: u16,
    pub version_minor: u8,
    pub version_major: u8,
    pub diskbuf: u32,
    pub disksize: u32,
    pub cmdline: u32,
    pub oldint15: u32,
    pub olddosmem: u16,
    pub bootloaderid: u8,
    pub sector_shift: u8,
    pub dpt_ptr: u16,
    /// Patch area (outside the checksum).
    pub driveshiftlimit: u8,
    pub memint1588: u16,
    pub cylinders: u16,
    pub heads: u16,
    pub sectors: u32,
    pub mem1mb: u32,
    pub mem16mb: u32,
    pub driveno: u8,
    pub drivetype: u8,
    pub drivecnt: u8,
    pub configflags: u8,
}

impl MemdiskBlock {
    fn base(hook_kind: MemdiskHook, driveraddr: u64) -> Self {
        MemdiskBlock {
            driveraddr,
            hook_kind,
            jump: [0xE9, 0x1C, 0x00],
            vendor: *b"MEMDISK ",
            prev_int13: 0xF000_E3FE,
            flags: 0,
            signature: *b"mBFT",
            length_override: None,
            revision: 1,
            checksum_override: None,
            oem_id: *b"MEMDSK",
            oem_table_id: *b"Syslinux",
            safe_hook_override: None,
            hook_mbft_override: None,
            mdi_bytes: 30,
            version_minor: 0x04,
            version_major: 0x06,
            diskbuf: 0,
            disksize: 0,
            cmdline: 0,
            oldint15: 0xF000_F859,
            olddosmem: 639,
            bootloaderid: 0xB0,
            sector_shift: 9,
            dpt_ptr: 0,
            driveshiftlimit: 0,
            memint1588: 0,
            cylinders: 0,
            heads: 0,
            sectors: 0,
            mem1mb: 0,
            mem16mb: 0,
            driveno: 0x80,
            drivetype: 0,
            drivecnt: 1,
            configflags: 0x04,
        }
    }

    /// `memdisk iso raw` with the 2083-block test ISO at 0x0FBCE000, driver at 0x9F000
    /// (observed §3.1; its mBFT bytes are the hex quoted there).
    pub fn observed_iso() -> Self {
        MemdiskBlock {
            diskbuf: 0x0FBC_E000,
            disksize: 2083,
            sector_shift: 11,
            cmdline: 0x9F00_07E0,
            driveshiftlimit: 0xE2,
            cylinders: 65535,
            heads: 255,
            sectors: 15,
            driveno: 0xE0,
            drivetype: 0,
            drivecnt: 97,
            configflags: 0x02,
            ..Self::base(MemdiskHook::Iso, 0x9F000)
        }
    }

    /// `memdisk` with the 8 MiB test HDD image at 0x0F7E0000 (observed §3.1).
    pub fn observed_hdd() -> Self {
        MemdiskBlock {
            diskbuf: 0x0F7E_0000,
            disksize: 16384,
            sector_shift: 9,
            driveshiftlimit: 0x81,
            cylinders: 128,
            heads: 4,
            sectors: 32,
            driveno: 0x80,
            drivetype: 0,
            drivecnt: 1,
            ..Self::base(MemdiskHook::Edd, 0x9F000)
        }
    }

    /// `memdisk` with the 1.44 MB floppy image at 0x0FE78000, driver at 0x9F400 (observed §3.1).
    pub fn observed_floppy() -> Self {
        MemdiskBlock {
            diskbuf: 0x0FE7_8000,
            disksize: 2880,
            sector_shift: 9,
            driveshiftlimit: 0x02,
            cylinders: 80,
            heads: 2,
            sectors: 18,
            driveno: 0x00,
            drivetype: 0x04,
            drivecnt: 2,
            ..Self::base(MemdiskHook::Chs, 0x9F400)
        }
    }

    pub fn hook_addr(&self) -> u64 {
        self.driveraddr + 0x0A
    }

    pub fn mbft_addr(&self) -> u64 {
        self.driveraddr + self.hook_kind.mbft_offset()
    }

    /// The mBFT length field value.
    pub fn length(&self) -> u32 {
        self.length_override
            .unwrap_or(40 + u32::from(self.mdi_bytes))
    }

    /// mBFT (36-byte header + safe_hook + MDI, 70 bytes for a 30-byte MDI) followed by the patch
    /// area, 0x68 bytes in all. Checksum over [0, length) (clamped to what is generated).
    pub fn mbft_and_patch_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; 0x68];
        b[0..4].copy_from_slice(&self.signature);
        b[4..8].copy_from_slice(&self.length().to_le_bytes());
        b[8] = self.revision;
        b[0x0A..0x10].copy_from_slice(&self.oem_id);
        b[0x10..0x18].copy_from_slice(&self.oem_table_id);
        let hook = self.safe_hook_override.unwrap_or(self.hook_addr() as u32);
        b[0x24..0x28].copy_from_slice(&hook.to_le_bytes());
        let m = 0x28;
        b[m..m + 2].copy_from_slice(&self.mdi_bytes.to_le_bytes());
        b[m + 2] = self.version_minor;
        b[m + 3] = self.version_major;
        b[m + 4..m + 8].copy_from_slice(&self.diskbuf.to_le_bytes());
        b[m + 8..m + 12].copy_from_slice(&self.disksize.to_le_bytes());
        b[m + 0x0C..m + 0x10].copy_from_slice(&self.cmdline.to_le_bytes());
        b[m + 0x10..m + 0x14].copy_from_slice(&self.prev_int13.to_le_bytes());
        b[m + 0x14..m + 0x18].copy_from_slice(&self.oldint15.to_le_bytes());
        b[m + 0x18..m + 0x1A].copy_from_slice(&self.olddosmem.to_le_bytes());
        b[m + 0x1A] = self.bootloaderid;
        b[m + 0x1B] = self.sector_shift;
        b[m + 0x1C..m + 0x1E].copy_from_slice(&self.dpt_ptr.to_le_bytes());
        // Patch area (§5.4).
        b[0x46] = self.driveshiftlimit;
        b[0x4A..0x4C].copy_from_slice(&self.memint1588.to_le_bytes());
        b[0x4C..0x4E].copy_from_slice(&self.cylinders.to_le_bytes());
        b[0x4E..0x50].copy_from_slice(&self.heads.to_le_bytes());
        b[0x50..0x54].copy_from_slice(&self.sectors.to_le_bytes());
        b[0x54..0x58].copy_from_slice(&self.mem1mb.to_le_bytes());
        b[0x58..0x5C].copy_from_slice(&self.mem16mb.to_le_bytes());
        b[0x5C] = self.driveno;
        b[0x5D] = self.drivetype;
        b[0x5E] = self.drivecnt;
        b[0x5F] = self.configflags;
        let n = (self.length() as usize).min(b.len());
        let sum = b[..n].iter().fold(0u8, |s, &x| s.wrapping_add(x));
        b[9] = self.checksum_override.unwrap_or(0u8.wrapping_sub(sum));
        b
    }

    /// Just the checksummed mBFT (`length` bytes, at most 0x68).
    pub fn mbft_bytes(&self) -> Vec<u8> {
        let mut b = self.mbft_and_patch_bytes();
        b.truncate((self.length() as usize).min(0x68));
        b
    }

    /// The 31-byte safe hook.
    pub fn hook_bytes(&self) -> [u8; 31] {
        let mut h = [0u8; 31];
        h[0..3].copy_from_slice(&self.jump);
        h[3..11].copy_from_slice(b"$INT13SF");
        h[11..19].copy_from_slice(&self.vendor);
        h[0x13..0x17].copy_from_slice(&self.prev_int13.to_le_bytes());
        h[0x17..0x1B].copy_from_slice(&self.flags.to_le_bytes());
        let mbft = self.hook_mbft_override.unwrap_or(self.mbft_addr() as u32);
        h[0x1B..0x1F].copy_from_slice(&mbft.to_le_bytes());
        h
    }

    /// Write driver header, safe hook, mBFT and patch area. No IVT/BDA change.
    pub fn plant(&self, mem: &mut PhysMem) {
        let mut hdr = Vec::new();
        for w in self.hook_kind.header() {
            hdr.extend_from_slice(&w.to_le_bytes());
        }
        mem.write(self.driveraddr, &hdr);
        mem.write(self.hook_addr(), &self.hook_bytes());
        mem.write(self.mbft_addr(), &self.mbft_and_patch_bytes());
    }

    /// Plant and hook: IVT[0x13] = (driveraddr >> 4):int13_offs, IVT[0x15] likewise, BDA 0x413
    /// = driveraddr / 1024 (§5.1).
    pub fn install(&self, mem: &mut PhysMem) {
        self.plant(mem);
        let seg = (self.driveraddr >> 4) as u16;
        let h = self.hook_kind.header();
        mem.plant_ivt13(seg, h[0]);
        mem.plant_ivt(0x15, seg, h[1]);
        mem.set_bda_basemem_kib((self.driveraddr / 1024) as u16);
    }

    /// Image length in bytes as MEMDISK describes it.
    pub fn image_bytes(&self) -> u64 {
        u64::from(self.disksize) << self.sector_shift
    }
}
