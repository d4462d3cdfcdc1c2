//! GRUB4DOS-compatible pages under UEFI (`docs/loaders.md` §4): grub4efi (`GRUB4EFI` at +0x100) and
//! a1ive's GRUB2 `g4d` module (`"   $INT13SFGRUB4DOS"` at +0xE0, no marker).

use crate::{G4dSlot, PhysMem};

#[derive(Clone, Debug)]
pub struct Grub4EfiPage {
    /// 4 KiB-aligned page below 0x9F000 (grub4efi: usually 0x9F000 or the top of the first
    /// usable region).
    pub page: u64,
    pub slots: Vec<G4dSlot>,
    /// true = grub4efi layout, false = a1ive's module.
    pub grub4efi: bool,
    /// grub4efi's internal-data pointer at +0x110.
    pub internal_ptr: u64,
}

impl Grub4EfiPage {
    pub fn grub4efi(page: u64) -> Self {
        Grub4EfiPage {
            page,
            slots: Vec::new(),
            grub4efi: true,
            internal_ptr: 0x7F5A_1000,
        }
    }

    pub fn a1ive(page: u64) -> Self {
        Grub4EfiPage {
            page,
            slots: Vec::new(),
            grub4efi: false,
            internal_ptr: 0,
        }
    }

    pub fn slot(mut self, s: G4dSlot) -> Self {
        self.slots.push(s);
        self
    }

    /// Write the page: up to 8 slots at +0 (zero-filled to 0xC0), the signature at +0xE3 and, for
    /// grub4efi, `GRUB4EFI` at +0x100, the pointer at +0x110 and `FRAGMENT` at +0x140.
    pub fn plant(&self, mem: &mut PhysMem) {
        let p = self.page;
        let mut table = vec![0u8; 0xC0];
        for (i, s) in self.slots.iter().take(8).enumerate() {
            table[i * 24..i * 24 + 24].copy_from_slice(&s.to_bytes());
        }
        mem.write(p, &table);
        if self.grub4efi {
            mem.write(p + 0xE3, b"$INT13SFGRUB4DOS");
            mem.write(p + 0x100, b"GRUB4EFI");
            mem.write_u64(p + 0x110, self.internal_ptr);
            mem.write(p + 0x140, b"FRAGMENT");
        } else {
            mem.write(p + 0xE0, b"   $INT13SFGRUB4DOS");
        }
    }
}
