//! GRUB4DOS BIOS handler block and drive-map slots (`docs/loaders.md` §3; observed bytes from
//! `docs/loaders-observed.md` §4.1–§4.2, GRUB4DOS 0.4.6a 2024-02-26).

use crate::PhysMem;

/// One 24-byte drive-map slot (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct G4dSlot {
    pub from_drive: u8,
    pub to_drive: u8,
    pub max_head: u8,
    pub max_sector: u8,
    pub to_cylinder: u16,
    pub to_head: u8,
    pub to_sector: u8,
    pub start_sector: u64,
    pub sector_count: u64,
}

/// GRUB4DOS rounds memdrive lengths up to 4 KiB (§3.5, observed 8332 → 8336 sectors).
pub fn g4d_sectors(bytes: u64) -> u64 {
    bytes.div_ceil(4096) * 4096 / 512
}

impl G4dSlot {
    /// Raw slot from its 24 bytes.
    pub fn from_bytes(b: [u8; 24]) -> Self {
        G4dSlot {
            from_drive: b[0],
            to_drive: b[1],
            max_head: b[2],
            max_sector: b[3],
            to_cylinder: u16::from_le_bytes([b[4], b[5]]),
            to_head: b[6],
            to_sector: b[7],
            start_sector: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            sector_count: u64::from_le_bytes(b[16..24].try_into().unwrap()),
        }
    }

    pub fn to_bytes(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0] = self.from_drive;
        b[1] = self.to_drive;
        b[2] = self.max_head;
        b[3] = self.max_sector;
        b[4..6].copy_from_slice(&self.to_cylinder.to_le_bytes());
        b[6] = self.to_head;
        b[7] = self.to_sector;
        b[8..16].copy_from_slice(&self.start_sector.to_le_bytes());
        b[16..24].copy_from_slice(&self.sector_count.to_le_bytes());
        b
    }

    /// `map --mem file.iso (0xFF)` as observed: `ff ff fe 3f 20 a0 fe 7f` + start + count,
    /// count rounded up to 4 KiB. Use [`G4dSlot::from`] to change the drive number.
    pub fn memdrive_cd(phys: u64, bytes: u64) -> Self {
        G4dSlot {
            from_drive: 0xFF,
            to_drive: 0xFF,
            max_head: 0xFE,
            max_sector: 0x3F,
            to_cylinder: 0xA020,
            to_head: 0xFE,
            to_sector: 0x7F,
            start_sector: phys / 512,
            sector_count: g4d_sectors(bytes),
        }
    }

    /// `map --mem file.img (hdN)` as observed: `81 ff 03 20 20 80 fe 7f` (geometry 4 heads ×
    /// 32 sectors from the image's MBR).
    pub fn memdrive_hdd(from: u8, phys: u64, bytes: u64) -> Self {
        G4dSlot {
            from_drive: from,
            to_drive: 0xFF,
            max_head: 0x03,
            max_sector: 0x20,
            to_cylinder: 0x8020,
            to_head: 0xFE,
            to_sector: 0x7F,
            start_sector: phys / 512,
            sector_count: g4d_sectors(bytes),
        }
    }

    /// `map --mem fd.img (fdN)`: 2 heads × 18 sectors.
    pub fn memdrive_floppy(from: u8, phys: u64, bytes: u64) -> Self {
        G4dSlot {
            from_drive: from,
            to_drive: 0xFF,
            max_head: 0x01,
            max_sector: 0x12,
            to_cylinder: 0x8020,
            to_head: 0xFE,
            to_sector: 0x7F,
            start_sector: phys / 512,
            sector_count: g4d_sectors(bytes),
        }
    }

    /// The drive-swap slot observed with `(hd0)` mapped: `81 80 00 01 06 80 fe 7f` + zeros.
    pub fn swap(from: u8, to: u8) -> Self {
        G4dSlot {
            from_drive: from,
            to_drive: to,
            max_head: 0x00,
            max_sector: 0x01,
            to_cylinder: 0x8006,
            to_head: 0xFE,
            to_sector: 0x7F,
            start_sector: 0,
            sector_count: 0,
        }
    }

    /// An HDD image mapped from a disk without `--mem` (`map /x.img (hd1)`): TO the BIOS disk
    /// `to`, LBA start, 512-byte sectors.
    pub fn disk_backed_hdd(from: u8, to: u8, lba: u64, sectors: u64) -> Self {
        G4dSlot {
            from_drive: from,
            to_drive: to,
            max_head: 0x03,
            max_sector: 0x20,
            to_cylinder: 0x8006,
            to_head: 0xFE,
            to_sector: 0x7F,
            start_sector: lba,
            sector_count: sectors,
        }
    }

    /// Mark the map fragmented (to_cylinder bit 10): the extents are in the fragment map.
    pub fn fragmented(mut self) -> Self {
        self.to_cylinder |= 0x0400;
        self
    }

    /// An ISO mapped from a disk without `--mem` (observed: to 0x80, to_cylinder 0xA006, start
    /// = the file's LBA, exact count). Not RAM.
    pub fn disk_backed_cd(from: u8, to: u8, lba: u64, sectors: u64) -> Self {
        G4dSlot {
            from_drive: from,
            to_drive: to,
            max_head: 0xFE,
            max_sector: 0x3F,
            to_cylinder: 0xA006,
            to_head: 0xFE,
            to_sector: 0x7F,
            start_sector: lba,
            sector_count: sectors,
        }
    }

    /// grub4efi slot (§4.1): max_head 0xFE, to_sector 0x3F dummies, bit 13 for a CD, the rest 0.
    pub fn efi_memdrive(from: u8, phys: u64, bytes: u64, cd: bool) -> Self {
        G4dSlot {
            from_drive: from,
            to_drive: 0xFF,
            max_head: 0xFE,
            max_sector: 0,
            to_cylinder: if cd { 0x2000 } else { 0 },
            to_head: 0,
            to_sector: 0x3F,
            start_sector: phys / 512,
            sector_count: g4d_sectors(bytes),
        }
    }

    /// a1ive GRUB2 `g4d` slot (§4.2): from 0x80 always, to_sector 0x02, start = addr >> 9
    /// (truncating), count = ⌈size / 512⌉.
    pub fn a1ive_memdrive(phys: u64, size: u64, cd: bool) -> Self {
        G4dSlot {
            from_drive: 0x80,
            to_drive: 0xFF,
            max_head: 0xFE,
            max_sector: 0,
            to_cylinder: if cd { 0x2000 } else { 0 },
            to_head: 0,
            to_sector: 0x02,
            start_sector: phys >> 9,
            sector_count: size.div_ceil(512),
        }
    }

    /// Change the emulated drive number.
    pub fn from(mut self, drive: u8) -> Self {
        self.from_drive = drive;
        self
    }

    /// Read-only: max_sector bit 7 set, to_sector bit 6 clear.
    pub fn read_only(mut self) -> Self {
        self.max_sector |= 0x80;
        self.to_sector &= !0x40;
        self
    }

    /// Fake write: max_sector bit 7 and to_sector bit 6.
    pub fn fake_write(mut self) -> Self {
        self.max_sector |= 0x80;
        self.to_sector |= 0x40;
        self
    }

    /// In-situ flag (to_sector bit 7).
    pub fn in_situ(mut self) -> Self {
        self.to_sector |= 0x80;
        self
    }

    pub fn with_to_cylinder(mut self, c: u16) -> Self {
        self.to_cylinder = c;
        self
    }

    pub fn with_count(mut self, sectors: u64) -> Self {
        self.sector_count = sectors;
        self
    }

    pub fn phys(&self) -> u64 {
        self.start_sector.wrapping_mul(512)
    }
}

/// Where a build keeps slots 9–16 (`docs/loaders.md` §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum G4dLayout {
    /// 8 slots; `FRAGMENT` at +0x140.
    Eight,
    /// Current source with `MAP_NUM_16`: `FRAGMENT` at +0x140, second table ends at `int13end`.
    Sixteen,
    /// 2014-08..2021-12 builds: second table right before `FRAGMENT` at `old_fragment_offset`.
    SixteenOld,
}

/// One fragment-map record: `{u16 len = 4 + 16n, from, to, n × {start, count}}` (§3.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentRecord {
    pub from: u8,
    pub to: u8,
    pub extents: Vec<(u64, u64)>,
}

impl FragmentRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = 4 + 16 * self.extents.len();
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&(len as u16).to_le_bytes());
        b.push(self.from);
        b.push(self.to);
        for &(start, count) in &self.extents {
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
        }
        b
    }
}

/// A GRUB4DOS BIOS handler block (§3.1). [`Grub4DosBlock::new`] gives the observed 0.4.6a
/// values; every field can be changed to build corrupt variants.
#[derive(Clone, Debug)]
pub struct Grub4DosBlock {
    /// Physical base (KiB-aligned for a genuine block; anything for stale copies).
    pub base: u64,
    /// +0x00 size in KiB (observed 0x0C).
    pub size_kib: u8,
    pub atapi_dev_count: u8,
    /// +0x03 (observed 0xC0 at runtime).
    pub min_cdrom_id: u8,
    /// +0x08 version word (1).
    pub version: u16,
    pub orig_410: u8,
    pub orig_475: u8,
    /// +0x0C original INT 15h (far pointer as u32, seg << 16 | off).
    pub orig_int15: u32,
    /// +0x1C and +0x113: previous INT 13h (far pointer).
    pub prev_int13: u32,
    /// The jump at +0x100 (observed `e9 19 09`).
    pub jump: [u8; 3],
    /// +0x10B vendor (`GRUB4DOS`).
    pub vendor: [u8; 8],
    /// +0x117 safe-hook flags (1).
    pub flags: u32,
    /// +0x11B int13_scheme (1).
    pub int13_scheme: u32,
    /// Up to 8 slots (16 with a 16-slot `layout`).
    pub slots: Vec<G4dSlot>,
    /// Write `FRAGMENT` (at +0x140, or at `old_fragment_offset` for [`G4dLayout::SixteenOld`]).
    pub fragment: bool,
    /// Where slots 9–16 and `FRAGMENT` live (`docs/loaders.md` §3.3).
    pub layout: G4dLayout,
    /// Handler offset of the ASCII `int13end` marker (written when `Some`).
    pub int13end_offset: Option<u64>,
    /// Bytes planted right before `int13end` in an 8-slot build (the tail of the 2 KiB CD
    /// sector buffer, which may hold anything).
    pub cd_buffer_tail: Vec<u8>,
    /// [`G4dLayout::SixteenOld`]: where `FRAGMENT` sits (8-aligned, in 0x2800..0x3000).
    pub old_fragment_offset: u64,
    /// Fragment-map records written after the `FRAGMENT` marker (§3.6).
    pub fragments: Vec<FragmentRecord>,
    /// +0xFC u32 = 16 (0.4.6a builds).
    pub marker_fc: bool,
    /// INT 15h handler offset used by [`Grub4DosBlock::install`] (observed 0x20FC).
    pub int15_offset: u16,
}

impl Grub4DosBlock {
    /// The observed 0.4.6a block (`docs/loaders-observed.md` §4.1) at `base` with no slots.
    pub fn new(base: u64) -> Self {
        Grub4DosBlock {
            base,
            size_kib: 0x0C,
            atapi_dev_count: 0,
            min_cdrom_id: 0xC0,
            version: 1,
            orig_410: 0x27,
            orig_475: 1,
            orig_int15: 0xF000_F859,
            prev_int13: 0xF000_E3FE,
            jump: [0xE9, 0x19, 0x09],
            vendor: *b"GRUB4DOS",
            flags: 1,
            int13_scheme: 1,
            slots: Vec::new(),
            fragment: true,
            layout: G4dLayout::Eight,
            int13end_offset: None,
            cd_buffer_tail: Vec::new(),
            old_fragment_offset: 0x2A40,
            fragments: Vec::new(),
            marker_fc: true,
            int15_offset: 0x20FC,
        }
    }

    /// A 2024 build of current source with `MAP_NUM_16`: 13 KiB, `int13end` at +0x30F8 (the
    /// second table at +0x3020).
    pub fn sixteen(base: u64) -> Self {
        Grub4DosBlock {
            size_kib: 13,
            layout: G4dLayout::Sixteen,
            int13end_offset: Some(0x30F8),
            ..Grub4DosBlock::new(base)
        }
    }

    /// The matching 8-slot build: `int13end` at +0x3020, preceded by the CD buffer's tail.
    pub fn eight_with_int13end(base: u64, cd_buffer_tail: Vec<u8>) -> Self {
        Grub4DosBlock {
            size_kib: 13,
            int13end_offset: Some(0x3020),
            cd_buffer_tail,
            ..Grub4DosBlock::new(base)
        }
    }

    /// A 2014-08..2021-12 16-slot build: second table before `FRAGMENT` at +0x2A40.
    pub fn sixteen_old(base: u64) -> Self {
        Grub4DosBlock {
            layout: G4dLayout::SixteenOld,
            ..Grub4DosBlock::new(base)
        }
    }

    pub fn fragment_record(mut self, r: FragmentRecord) -> Self {
        self.fragments.push(r);
        self
    }

    pub fn slot(mut self, s: G4dSlot) -> Self {
        self.slots.push(s);
        self
    }

    /// The safe-hook address (base + 0x100).
    pub fn hook_addr(&self) -> u64 {
        self.base + 0x100
    }

    /// The first 0x20 header bytes.
    pub fn header_bytes(&self) -> [u8; 0x20] {
        let mut h = [0u8; 0x20];
        h[0] = self.size_kib;
        h[2] = self.atapi_dev_count;
        h[3] = self.min_cdrom_id;
        h[4..8].copy_from_slice(b"G4DS");
        h[8..10].copy_from_slice(&self.version.to_le_bytes());
        h[0x0A] = self.orig_410;
        h[0x0B] = self.orig_475;
        h[0x0C..0x10].copy_from_slice(&self.orig_int15.to_le_bytes());
        h[0x1C..0x20].copy_from_slice(&self.prev_int13.to_le_bytes());
        h
    }

    /// The 0x1F-byte safe hook at +0x100.
    pub fn hook_bytes(&self) -> [u8; 0x1F] {
        let mut h = [0u8; 0x1F];
        h[0..3].copy_from_slice(&self.jump);
        h[3..11].copy_from_slice(b"$INT13SF");
        h[11..19].copy_from_slice(&self.vendor);
        h[0x13..0x17].copy_from_slice(&self.prev_int13.to_le_bytes());
        h[0x17..0x1B].copy_from_slice(&self.flags.to_le_bytes());
        h[0x1B..0x1F].copy_from_slice(&self.int13_scheme.to_le_bytes());
        h
    }

    /// Write the block (header, slot tables with terminators, safe hook, `FRAGMENT`). Does not
    /// touch the IVT or BDA: use [`Grub4DosBlock::install`] for a live, hooked block, or this
    /// for a stale copy.
    pub fn plant(&self, mem: &mut PhysMem) {
        let b = self.base;
        mem.write(b, &self.header_bytes());
        let first = self.slots.len().min(8);
        let mut table = vec![0u8; 9 * 24];
        for (i, s) in self.slots[..first].iter().enumerate() {
            table[i * 24..i * 24 + 24].copy_from_slice(&s.to_bytes());
        }
        mem.write(b + 0x20, &table);
        if self.marker_fc {
            mem.write_u32(b + 0xFC, 16);
        }
        mem.write(b + 0x100, &self.hook_bytes());
        let mut second = vec![0u8; 9 * 24];
        for (i, s) in self.slots.iter().skip(8).take(8).enumerate() {
            second[i * 24..i * 24 + 24].copy_from_slice(&s.to_bytes());
        }
        if let Some(end) = self.int13end_offset {
            match self.layout {
                G4dLayout::Sixteen => {
                    mem.write(b + end - 216, &second);
                }
                _ => {
                    let tail = &self.cd_buffer_tail;
                    mem.write(b + end - tail.len() as u64, tail);
                }
            }
            mem.write(b + end, b"int13end");
        }
        let fragment_at = match self.layout {
            G4dLayout::SixteenOld => {
                mem.write(b + self.old_fragment_offset - 216, &second);
                b + self.old_fragment_offset
            }
            _ => b + 0x140,
        };
        if self.fragment {
            mem.write(fragment_at, b"FRAGMENT");
            let mut map: Vec<u8> = self.fragments.iter().flat_map(|r| r.to_bytes()).collect();
            map.extend_from_slice(&[0, 0]);
            mem.write(fragment_at + 8, &map);
        }
    }

    /// Plant and hook: IVT[0x13] = (base >> 4):0x0100, IVT[0x15] = (base >> 4):int15_offset,
    /// BDA 0x413 = base / 1024 (§3.1). `prev_int13` should already hold the previous vector.
    pub fn install(&self, mem: &mut PhysMem) {
        self.plant(mem);
        let seg = (self.base >> 4) as u16;
        mem.plant_ivt13(seg, 0x0100);
        mem.plant_ivt(0x15, seg, self.int15_offset);
        mem.set_bda_basemem_kib((self.base / 1024) as u16);
    }
}

/// Plant the `$INT13SFGRUB4DOS` string literal at `phys` followed by text that decodes as
/// garbage slots (the stale hit at 0x57E2B, observed §4.5).
pub fn plant_signature_literal(mem: &mut PhysMem, phys: u64) {
    mem.write(phys, b"$INT13SFGRUB4DOS");
    mem.write(
        phys + 16,
        b"\0map: drive %x: start %lx count %lx (0x%X) to=%x\0",
    );
    // "Slots" at signature - 0xE3 in the UEFI interpretation: plausible-looking garbage.
    mem.write(
        phys - 0xE3,
        &G4dSlot::memdrive_cd(0x0200_0000, 0x40_0000).to_bytes(),
    );
}
