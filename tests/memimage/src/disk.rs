//! A sparse disk for backing-disk identification tests: a [`PhysMem`] used as byte storage,
//! with a size, a sector size and optionally the BIOS number Windows associated with it.

use rvblk_core::discovery::{BackingDisk, Unreadable};
use rvblk_core::image::Extent;

use crate::PhysMem;

#[derive(Clone, Debug)]
pub struct SparseDisk {
    pub data: PhysMem,
    pub size: u64,
    pub sector_size: u32,
    pub bios: Option<u8>,
    /// Every read fails (a disk that went away).
    pub broken: bool,
}

impl SparseDisk {
    pub fn new(size: u64) -> Self {
        SparseDisk {
            data: PhysMem::new(),
            size,
            sector_size: 512,
            bios: None,
            broken: false,
        }
    }

    pub fn bios(mut self, drive: u8) -> Self {
        self.bios = Some(drive);
        self
    }

    /// A Ventoy MBR: the 16-byte ID at 0x180, the NT signature at 0x1B8, 0x55AA.
    pub fn ventoy_mbr(mut self, disk_id: &[u8; 16], signature: u32) -> Self {
        self.data.write(0x180, disk_id);
        self.data.write_u32(0x1B8, signature);
        self.data.write(510, &[0x55, 0xAA]);
        self
    }

    /// Write image bytes at `image_offset` through `extents` (in `sector_size` units).
    pub fn write_image(&mut self, extents: &[Extent], image_offset: u64, bytes: &[u8]) {
        let ss = u64::from(self.sector_size);
        for (i, &b) in bytes.iter().enumerate() {
            let mut off = image_offset + i as u64;
            for e in extents {
                let len = e.sectors * ss;
                if off < len {
                    self.data.write_u8(e.start * ss + off, b);
                    break;
                }
                off -= len;
            }
        }
    }

    /// The ISO9660 markers (PVD at image sector 16) through `extents`.
    pub fn plant_iso(&mut self, extents: &[Extent], volume_blocks: u32) {
        let mut tmp = PhysMem::new();
        crate::plant_iso9660(&mut tmp, 0, volume_blocks);
        let pvd = tmp.bytes(16 * 2048, 2 * 2048);
        self.write_image(extents, 16 * 2048, &pvd);
    }

    /// An MBR boot signature at image offset 510 through `extents`.
    pub fn plant_boot_signature(&mut self, extents: &[Extent]) {
        self.write_image(extents, 510, &[0x55, 0xAA]);
    }
}

impl BackingDisk for SparseDisk {
    fn size_bytes(&self) -> u64 {
        self.size
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn bios_drive(&self) -> Option<u8> {
        self.bios
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = offset.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if self.broken || end > self.size {
            return Err(Unreadable);
        }
        buf.copy_from_slice(&self.data.bytes(offset, buf.len()));
        Ok(())
    }
}
