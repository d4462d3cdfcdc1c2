//! Disk-backed scenarios: the image stays on a USB stick and the loader leaves only a map of its
//! sectors in RAM (`docs/loaders.md` §3.9–§3.11, `docs/ventoy.md`). Each [`BackedScenario`] is
//! three inputs of `rvblk-harness run` plus the answer:
//!
//! * the RAM dump (`--ram`) with the loader's tables as the loader leaves them — a GRUB4DOS
//!   0.4.6a handler block with a drive-map slot whose TO drive is BIOS disk 0x80 (and the
//!   fragment map for a fragmented file), or Ventoy's `ventoy_os_param` in hidden conventional
//!   memory with its image-location list in an E820 hole; for UEFI the record is a firmware
//!   variable instead ([`BackedScenario::uefi_vars`], `--uefi-var NAME=FILE`);
//! * the stick (`--disk`): an MBR-partitioned disk whose every sector outside the image's
//!   extents holds a non-zero, per-sector filler, so that any stray write is visible;
//! * the image file as the user copied it to the stick (`--expect`), every 512-byte sector
//!   tagged with its index, so that a misplaced extent reads back as wrong bytes.
//!
//! Sizes are a few MiB so that the harness tests stay fast; the Ventoy stick has Ventoy's real
//! layout (partition 1 from sector 2048, the 32 MiB `VTOYEFI` partition at the end) and is
//! written sparsely.

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rvblk_core::discovery::{
    BackingDisk, DiscoveryInput, Firmware, Handoff, PhysRange, Unreadable,
};
use rvblk_core::image::{BackingSource, DeviceKind, Extent};

use crate::scenarios::plant_g4d_stale_copies;
use crate::{
    os_ram_from_e820, FragmentRecord, G4dSlot, Grub4DosBlock, PhysMem, VentoyLocation, VentoyParam,
};

/// Sector size of every stick here (USB sticks report 512).
pub const SECTOR: u64 = 512;
/// Guest RAM of every scenario (the dump is sparse).
pub const RAM_BYTES: u64 = 64 << 20;
/// The test ISO's size in 2048-byte blocks (the observed test ISO, `docs/ventoy.md` §7).
pub const ISO_BLOCKS: u64 = 2083;
/// The writable hard-disk image: 4 MiB.
pub const HDD_SECTORS: u64 = 8192;
/// The GRUB4DOS stick: 16 MiB (more for a bigger ISO), one FAT32 partition from sector 2048.
pub const G4D_STICK_SECTORS: u64 = 32768;
/// The NT disk signature of the GRUB4DOS stick.
pub const G4D_STICK_SIGNATURE: u32 = 0x4B43_5453;
/// Ventoy's stick: 1 MiB of MBR + GRUB, a 12 MiB data partition, the 32 MiB `VTOYEFI`
/// partition (`docs/ventoy.md` §6).
pub const VENTOY_DATA_SECTORS: u64 = 24576;
pub const VENTOY_EFI_SECTORS: u64 = 65536;
pub const VENTOY_STICK_SECTORS: u64 = 2048 + VENTOY_DATA_SECTORS + VENTOY_EFI_SECTORS;
/// Where Ventoy's copy of the record lives (observed, BDA 0x413 = 624 KiB; `docs/ventoy.md`
/// §3.1, §7).
pub const VENTOY_PARAM_AT: u64 = 0x9E6F0;
/// The image-location list: the first page after usable RAM, in an E820 hole (§2.3).
pub const VENTOY_LIST_AT: u64 = RAM_BYTES - 0xC4000;
/// GRUB4DOS's live handler block (observed 0.4.6a, `docs/loaders-observed.md` §4.1).
pub const G4D_BLOCK_AT: u64 = 0x9CC00;

/// Whether the file is one run on the stick or several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Contiguous,
    Fragmented,
}

/// A disk-backed image, the stick holding it and the loader tables pointing at it.
#[derive(Clone, Debug)]
pub struct BackedScenario {
    pub name: String,
    pub source: BackingSource,
    pub mem: PhysMem,
    pub os_ram: Vec<PhysRange>,
    pub firmware: Firmware,
    pub total_ram_bytes: u64,
    /// Firmware variables under Ventoy's vendor GUID: (name, bytes).
    pub uefi_vars: Vec<(&'static str, Vec<u8>)>,
    /// The whole stick, [`SECTOR`]-byte sectors.
    pub disk: Vec<u8>,
    /// The image's runs on the stick in file order, in [`SECTOR`] units.
    pub extents: Vec<Extent>,
    /// The image file.
    pub image: Vec<u8>,
    pub kind: DeviceKind,
    /// Writes go through to the stick (GRUB4DOS hard-disk map without the read-only bits).
    pub writable: bool,
}

/// The files of one scenario on disk, for the harness command line.
#[derive(Clone, Debug)]
pub struct BackedFiles {
    pub ram: PathBuf,
    pub disk: PathBuf,
    pub image: PathBuf,
    /// (variable name, file) for `--uefi-var NAME=FILE`.
    pub uefi_vars: Vec<(String, PathBuf)>,
}

impl BackedScenario {
    /// The discovery input for the core's own tests.
    pub fn input(&self) -> DiscoveryInput<'_> {
        DiscoveryInput {
            os_ram: &self.os_ram,
            nfit: None,
            firmware: self.firmware,
            max_phys_end: 1 << 52,
            total_ram_bytes: self.total_ram_bytes,
        }
    }

    /// The firmware-variable hand-offs (`docs/ventoy.md` §3.2, §4).
    pub fn handoff(&self) -> Handoff<'_> {
        let var = |n: &str| {
            self.uefi_vars
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, b)| &b[..])
        };
        Handoff {
            ventoy_os_param: var("VentoyOsParam"),
            ventoy_ram_disk: var("VentoyRamDisk"),
        }
    }

    /// `--os-ram START:LEN` values.
    pub fn os_ram_args(&self) -> Vec<String> {
        self.os_ram
            .iter()
            .map(|r| format!("{:#x}:{:#x}", r.start, r.length))
            .collect()
    }

    /// The image's byte ranges on the stick `(offset, len)`, in file order.
    pub fn image_ranges(&self) -> Vec<(u64, u64)> {
        self.extents
            .iter()
            .map(|e| (e.start * SECTOR, e.sectors * SECTOR))
            .collect()
    }

    /// The bytes of `disk` (this stick after a run) at the image's extents, `image.len()` long.
    pub fn image_on(&self, disk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.image.len());
        for (off, len) in self.image_ranges() {
            let end = (off + len).min(disk.len() as u64);
            out.extend_from_slice(&disk[off.min(end) as usize..end as usize]);
        }
        out.truncate(self.image.len());
        out
    }

    /// The first byte offset outside the image's extents where `after` differs from this
    /// scenario's stick (or `after` has another length): `None` when everything outside the
    /// extents is unchanged.
    pub fn first_change_outside(&self, after: &[u8]) -> Option<u64> {
        if after.len() != self.disk.len() {
            return Some(self.disk.len().min(after.len()) as u64);
        }
        let mut inside = self.image_ranges();
        inside.sort_unstable();
        let mut pos = 0u64;
        for (off, len) in inside.into_iter().chain([(self.disk.len() as u64, 0)]) {
            let (a, b) = (pos as usize, off as usize);
            if let Some(i) = self.disk[a..b]
                .iter()
                .zip(&after[a..b])
                .position(|(x, y)| x != y)
            {
                return Some(pos + i as u64);
            }
            pos = off + len;
        }
        None
    }

    /// Writes `ram.dump` (sparse, the guest's RAM size), `disk.img` (sparse), the image file
    /// (`image.iso` / `image.img`) and one file per firmware variable into `dir`.
    pub fn write_files(&self, dir: &Path) -> io::Result<BackedFiles> {
        fs::create_dir_all(dir)?;
        let ram = dir.join("ram.dump");
        self.mem.write_dump_len(&ram, self.total_ram_bytes)?;
        let disk = dir.join("disk.img");
        write_sparse(&disk, &self.disk)?;
        let image = dir.join(match self.kind {
            DeviceKind::CdRom => "image.iso",
            _ => "image.img",
        });
        fs::write(&image, &self.image)?;
        let mut uefi_vars = Vec::new();
        for (name, bytes) in &self.uefi_vars {
            let f = dir.join(format!("{name}.var"));
            fs::write(&f, bytes)?;
            uefi_vars.push((name.to_string(), f));
        }
        Ok(BackedFiles {
            ram,
            disk,
            image,
            uefi_vars,
        })
    }
}

/// A file with `bytes`, leaving all-zero 4 KiB pages as holes.
pub fn write_sparse(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.set_len(bytes.len() as u64)?;
    for (i, page) in bytes.chunks(4096).enumerate() {
        if page.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start(i as u64 * 4096))?;
            f.write_all(page)?;
        }
    }
    f.flush()
}

/// A stick held in memory, for the core's identification (`docs/loaders.md` §3.11).
#[derive(Clone, Copy, Debug)]
pub struct BytesDisk<'a>(pub &'a [u8]);

impl BackingDisk for BytesDisk<'_> {
    fn size_bytes(&self) -> u64 {
        self.0.len() as u64
    }
    fn sector_size(&self) -> u32 {
        SECTOR as u32
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = offset.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if end > self.size_bytes() {
            return Err(Unreadable);
        }
        buf.copy_from_slice(&self.0[offset as usize..end as usize]);
        Ok(())
    }
}

// ------------------------------------------------------------------ content

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    x |= 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// One 512-byte sector: `TAG-%08X-` and then bytes that depend on tag and index (never all
/// zero), so every sector of every file and of the filler differs from every other.
fn tagged_sector(tag: &str, index: u64, out: &mut [u8]) {
    let seed = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut r = xorshift(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for w in out.chunks_mut(8) {
        let v = r().to_le_bytes();
        w.copy_from_slice(&v[..w.len()]);
    }
    let head = format!("{tag}-{index:08X}-");
    out[..head.len()].copy_from_slice(head.as_bytes());
}

fn tagged(tag: &str, sectors: u64) -> Vec<u8> {
    let mut v = vec![0u8; (sectors * SECTOR) as usize];
    for (i, s) in v.chunks_mut(SECTOR as usize).enumerate() {
        tagged_sector(tag, i as u64, s);
    }
    v
}

/// A test ISO of `blocks` 2048-byte blocks: tagged sectors, an ISO 9660 primary volume
/// descriptor at block 16 whose volume size is `blocks`, and the set terminator at block 17
/// (what identification and the CD path read, `docs/loaders.md` §3.11).
pub fn test_iso(blocks: u64) -> Vec<u8> {
    let mut iso = tagged("PATISO", blocks * 4);
    let mut pvd = PhysMem::new();
    crate::plant_iso9660(&mut pvd, 0, blocks as u32);
    let descriptors = pvd.bytes(16 * 2048, 2 * 2048);
    iso[16 * 2048..18 * 2048].copy_from_slice(&descriptors);
    iso
}

/// A test hard-disk image of `sectors` 512-byte sectors: an MBR with one FAT32 partition from
/// sector 128 and the 0x55AA boot signature, then tagged sectors.
pub fn test_hdd(sectors: u64) -> Vec<u8> {
    let mut img = tagged("PATHDD", sectors);
    let mut mbr = PhysMem::new();
    crate::plant_mbr(
        &mut mbr,
        0,
        0x4D45_4D54,
        &[(0x0C, 128, (sectors - 128) as u32)],
    );
    img[..512].copy_from_slice(&mbr.bytes(0, 512));
    img
}

/// An MBR sector with boot-code filler, the NT signature and partitions `(type, lba, count)`.
fn stick_mbr(signature: u32, partitions: &[(u8, u32, u32)]) -> Vec<u8> {
    let mut s = vec![0u8; 512];
    tagged_sector("BOOTCODE", 0, &mut s[..0x1B8]);
    s[0x1B8..0x1BC].copy_from_slice(&signature.to_le_bytes());
    s[0x1BC..0x1BE].fill(0);
    s[0x1BE..0x1FE].fill(0);
    for (i, &(ty, lba, count)) in partitions.iter().enumerate() {
        let e = 0x1BE + 16 * i;
        s[e] = if i == 0 { 0x80 } else { 0 };
        s[e + 1..e + 4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        s[e + 4] = ty;
        s[e + 5..e + 8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        s[e + 8..e + 12].copy_from_slice(&lba.to_le_bytes());
        s[e + 12..e + 16].copy_from_slice(&count.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// A stick of `sectors` sectors: every sector tagged `STICK` with its LBA (the filler), then
/// `mbr` at LBA 0 and the image's bytes at `extents`.
fn stick(sectors: u64, mbr: &[u8], extents: &[Extent], image: &[u8]) -> Vec<u8> {
    let mut d = tagged("STICK", sectors);
    d[..512].copy_from_slice(mbr);
    place(&mut d, extents, image);
    d
}

/// Copy `image` onto `disk` through `extents` (file order), the last run possibly partial.
fn place(disk: &mut [u8], extents: &[Extent], image: &[u8]) {
    let mut rest = image;
    for e in extents {
        let off = (e.start * SECTOR) as usize;
        let n = ((e.sectors * SECTOR) as usize).min(rest.len());
        disk[off..off + n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    assert!(rest.is_empty(), "extents shorter than the image");
}

fn runs(r: &[(u64, u64)]) -> Vec<Extent> {
    r.iter()
        .map(|&(start, sectors)| Extent { start, sectors })
        .collect()
}

// ------------------------------------------------------------------ GRUB4DOS (§3.9)

/// The RAM of a BIOS machine after GRUB4DOS hooked INT 13h with `slots` (and `fragments`):
/// the live block at 0x9CC00, its stale copies, and no memdrive (nothing hidden above 1 MiB).
fn g4d_ram(slots: Vec<G4dSlot>, fragments: Vec<FragmentRecord>) -> (PhysMem, Vec<PhysRange>) {
    let mut mem = PhysMem::new();
    mem.with_bios_defaults();
    let mut blk = Grub4DosBlock::new(G4D_BLOCK_AT);
    blk.slots = slots;
    blk.fragments = fragments;
    blk.install(&mut mem);
    plant_g4d_stale_copies(&mut mem, &blk);
    let os_ram = os_ram_from_e820(&[
        (0, G4D_BLOCK_AT, 1),
        (G4D_BLOCK_AT, 0xA0000 - G4D_BLOCK_AT, 2),
        (0xF0000, 0x10000, 2),
        (0x10_0000, RAM_BYTES - 0x10_0000 - 0x2_0000, 1),
        (RAM_BYTES - 0x2_0000, 0x2_0000, 2),
    ]);
    (mem, os_ram)
}

/// A GRUB4DOS stick of `sectors`: one bootable FAT32 (LBA) partition from sector 2048 to the
/// end.
fn g4d_stick_mbr(sectors: u64) -> Vec<u8> {
    stick_mbr(
        G4D_STICK_SIGNATURE,
        &[(0x0C, 2048, (sectors - 2048) as u32)],
    )
}

#[allow(clippy::too_many_arguments)]
fn g4d_scenario(
    name: String,
    slots: Vec<G4dSlot>,
    fragments: Vec<FragmentRecord>,
    stick_sectors: u64,
    extents: Vec<Extent>,
    image: Vec<u8>,
    kind: DeviceKind,
    writable: bool,
) -> BackedScenario {
    let (mem, os_ram) = g4d_ram(slots, fragments);
    BackedScenario {
        name,
        source: BackingSource::Grub4Dos,
        mem,
        os_ram,
        firmware: Firmware::Bios,
        total_ram_bytes: RAM_BYTES,
        uefi_vars: Vec::new(),
        disk: stick(
            stick_sectors,
            &g4d_stick_mbr(stick_sectors),
            &extents,
            &image,
        ),
        extents,
        image,
        kind,
        writable,
    }
}

/// `map /test.iso (0xff)` + `map --hook` without `--mem` (`docs/loaders.md` §3.9): a CD slot
/// FROM 0xFF TO BIOS disk 0x80 with the file's LBA and its exact 512-byte sector count
/// (observed: `ff 80 fe 3f 06 a0 fe 7f`, start 0x8E4, count 8332). Fragmented: to_cylinder
/// bit 10 and a fragment record for (0xFF → 0x80) with three runs out of disk order (§3.6).
pub fn g4d_direct_iso(layout: Layout) -> BackedScenario {
    g4d_direct_iso_sized(ISO_BLOCKS, layout)
}

/// [`g4d_direct_iso`] with an ISO of `blocks` 2048-byte blocks, on a stick of 16 MiB or, for
/// a bigger ISO, of the ISO's size plus 4 MiB (whole MiB).
pub fn g4d_direct_iso_sized(blocks: u64, layout: Layout) -> BackedScenario {
    let sectors = blocks * 4;
    let stick_sectors = G4D_STICK_SECTORS.max((sectors + 8192).next_multiple_of(2048));
    let (slot, fragments, extents) = match layout {
        Layout::Contiguous => (
            G4dSlot::disk_backed_cd(0xFF, 0x80, 0x8E4, sectors),
            Vec::new(),
            runs(&[(0x8E4, sectors)]),
        ),
        Layout::Fragmented => {
            // Three runs of whole 4 KiB clusters (the file's tail aside); the file's second run
            // lies first on the disk, and gaps of other data separate them.
            let a = sectors / 3 / 8 * 8;
            let b = a - 8;
            let c = sectors - a - b;
            let b_at = 3000;
            let a_at = b_at + b + 1000;
            let c_at = a_at + a + 2000;
            let r = [(a_at, a), (b_at, b), (c_at, c)];
            (
                G4dSlot::disk_backed_cd(0xFF, 0x80, a_at, sectors).fragmented(),
                vec![FragmentRecord {
                    from: 0xFF,
                    to: 0x80,
                    extents: r.to_vec(),
                }],
                runs(&r),
            )
        }
    };
    g4d_scenario(
        format!("g4d_direct_iso_{}_{blocks}", layout_name(layout)),
        vec![slot],
        fragments,
        stick_sectors,
        extents,
        test_iso(blocks),
        DeviceKind::CdRom,
        false,
    )
}

/// `map /disk.img (hd0)`, `map (hd0) (hd1)`, `map --hook` without `--mem`: a hard-disk slot
/// FROM 0x80 TO BIOS disk 0x80 (writable: no read-only bits) and the drive-swap slot
/// 0x81 → 0x80 (count 0, not an image). Fragmented: three runs; the run `rvblk-harness run`'s
/// write test lands in (image sector `HDD_SECTORS / 2`) is the third, so a write that ignores
/// the fragment map lands outside the image.
pub fn g4d_direct_hdd(layout: Layout) -> BackedScenario {
    let (start, fragments, extents, fragmented) = match layout {
        Layout::Contiguous => (6144, Vec::new(), runs(&[(6144, HDD_SECTORS)]), false),
        Layout::Fragmented => {
            let r = [(20000, 1000), (4096, 3000), (26000, HDD_SECTORS - 4000)];
            (
                20000,
                vec![FragmentRecord {
                    from: 0x80,
                    to: 0x80,
                    extents: r.to_vec(),
                }],
                runs(&r),
                true,
            )
        }
    };
    let mut slot = G4dSlot::disk_backed_hdd(0x80, 0x80, start, HDD_SECTORS);
    if fragmented {
        slot = slot.fragmented();
    }
    g4d_scenario(
        format!("g4d_direct_hdd_{}", layout_name(layout)),
        vec![slot, G4dSlot::swap(0x81, 0x80)],
        fragments,
        G4D_STICK_SECTORS,
        extents,
        test_hdd(HDD_SECTORS),
        DeviceKind::Disk,
        true,
    )
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Contiguous => "contiguous",
        Layout::Fragmented => "fragmented",
    }
}

// ------------------------------------------------------------------ Ventoy (docs/ventoy.md)

/// The random 16 bytes Ventoy's installer put at LBA 0 + 0x180 of this stick.
pub const VENTOY_DISK_ID: [u8; 16] =
    *b"\x5e\x11\xd0\x0d\xca\xfe\xba\xbe\x01\x23\x45\x67\x89\xab\xcd\xef";
pub const VENTOY_SIGNATURE: u32 = 0x1234_5678;

/// How Ventoy handed the record over (`docs/ventoy.md` §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VentoyBoot {
    /// Legacy BIOS, the plain copy at 0x9E6F0.
    Bios,
    /// Legacy BIOS, wrapped in the `iBFT`-style header (Windows ISOs up to 2022-05).
    BiosIbft,
    /// UEFI: the `VentoyOsParam` variable; nothing in low memory.
    Uefi,
}

/// Ventoy's MBR (§6): boot code, the ID at 0x180, "VT\0Ge\0HD" at 0x190, the NT signature,
/// partition 1 (the files, from 2048) of `part_type` and partition 2, `VTOYEFI` (type 0xEF).
fn ventoy_mbr(part_type: u8) -> Vec<u8> {
    let mut s = stick_mbr(
        VENTOY_SIGNATURE,
        &[
            (part_type, 2048, VENTOY_DATA_SECTORS as u32),
            (
                0xEF,
                (2048 + VENTOY_DATA_SECTORS) as u32,
                VENTOY_EFI_SECTORS as u32,
            ),
        ],
    );
    s[0x180..0x190].copy_from_slice(&VENTOY_DISK_ID);
    s[0x190..0x198].copy_from_slice(b"VT\0Ge\0HD");
    s
}

/// A Ventoy stick: MBR, GRUB's core image in sectors 1–2047 (filler), partition 1 filler with
/// the image at `extents`, and `VTOYEFI`: a FAT16 boot sector then zeros (Ventoy writes a
/// small file system there; its free space stays zero, and keeps the file sparse).
fn ventoy_stick(part_type: u8, extents: &[Extent], image: &[u8]) -> Vec<u8> {
    let mut d = tagged("STICK", 2048 + VENTOY_DATA_SECTORS);
    d.resize((VENTOY_STICK_SECTORS * SECTOR) as usize, 0);
    d[..512].copy_from_slice(&ventoy_mbr(part_type));
    let efi = ((2048 + VENTOY_DATA_SECTORS) * SECTOR) as usize;
    let mut vbr = vec![0u8; 512];
    vbr[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    vbr[3..11].copy_from_slice(b"MSDOS5.0");
    vbr[11..13].copy_from_slice(&512u16.to_le_bytes());
    vbr[0x2B..0x36].copy_from_slice(b"VTOYEFI    ");
    vbr[0x36..0x3E].copy_from_slice(b"FAT16   ");
    vbr[510] = 0x55;
    vbr[511] = 0xAA;
    d[efi..efi + 512].copy_from_slice(&vbr);
    place(&mut d, extents, image);
    d
}

/// A Windows ISO booted by Ventoy in normal mode (chain type 1, `docs/ventoy.md` §5):
/// contiguous on a FAT32 partition (observed: one region at LBA 3868), or fragmented on exFAT
/// (observed: 256 + 256 + 256 + 1315 image sectors at LBA 7360 / 9408 / 11456 / 14528, §7).
/// BIOS: the record at 0x9E6F0 (BDA 0x413 = 624 KiB), plain or `iBFT`-wrapped; UEFI: the
/// `VentoyOsParam` variable. Either way the location list is at [`VENTOY_LIST_AT`], in memory
/// Windows does not own.
pub fn ventoy_iso(boot: VentoyBoot, layout: Layout) -> BackedScenario {
    ventoy_normal(boot, layout, false)
}

/// An IMG file (a hard-disk image) booted by Ventoy in normal mode (chain type 0, 512-byte image
/// sectors, `docs/ventoy.md` §5, §7: observed one region at LBA 14720): served as a read-only
/// disk (§2.4 step 5). Fragmented: two regions, the second before the first on the disk.
pub fn ventoy_img(boot: VentoyBoot, layout: Layout) -> BackedScenario {
    ventoy_normal(boot, layout, true)
}

fn ventoy_normal(boot: VentoyBoot, layout: Layout, img: bool) -> BackedScenario {
    let (location, part_type, fs) = match (layout, img) {
        (Layout::Contiguous, false) => (
            VentoyLocation::runs(2048, &[(ISO_BLOCKS as u32, 3868)]),
            0x0C,
            5,
        ),
        (Layout::Fragmented, false) => (
            VentoyLocation::runs(
                2048,
                &[(256, 7360), (256, 9408), (256, 11456), (1315, 14528)],
            ),
            0x07,
            0,
        ),
        (Layout::Contiguous, true) => (
            VentoyLocation::runs(512, &[(HDD_SECTORS as u32, 14720)]),
            0x07,
            0,
        ),
        (Layout::Fragmented, true) => (
            VentoyLocation::runs(512, &[(5192, 14720), (3000, 5000)]),
            0x07,
            0,
        ),
    };
    let per_sector = u64::from(location.image_sector_size) / SECTOR;
    let extents: Vec<Extent> = location
        .regions
        .iter()
        .map(|&(n, _, disk)| Extent {
            start: disk,
            sectors: u64::from(n) * per_sector,
        })
        .collect();
    let (image, kind, path, chain) = if img {
        (
            test_hdd(HDD_SECTORS),
            DeviceKind::Disk,
            &b"/IMG/winpe.img"[..],
            0,
        )
    } else {
        (
            test_iso(ISO_BLOCKS),
            DeviceKind::CdRom,
            &b"/ISO/Win10_22H2_x64.iso"[..],
            1,
        )
    };
    let disk = ventoy_stick(part_type, &extents, &image);
    let param = VentoyParam {
        disk_id: VENTOY_DISK_ID,
        disk_size: disk.len() as u64,
        part_id: 1,
        part_type: fs,
        path: path.to_vec(),
        image_size: image.len() as u64,
        location_addr: VENTOY_LIST_AT,
        disk_signature: VENTOY_SIGNATURE,
        ..VentoyParam::observed_iso()
    }
    .with_location(&location)
    .chain_type(chain);
    let mut mem = PhysMem::new();
    let mut uefi_vars = Vec::new();
    let (firmware, os_ram) = match boot {
        VentoyBoot::Bios | VentoyBoot::BiosIbft => {
            mem.with_bios_defaults();
            mem.set_bda_basemem_kib(624);
            if boot == VentoyBoot::Bios {
                param.plant(&mut mem, VENTOY_PARAM_AT);
            } else {
                param.plant_ibft(&mut mem, VENTOY_PARAM_AT);
            }
            let os_ram = os_ram_from_e820(&[
                (0, 0x9C000, 1),
                (0x9C000, 0x4000, 2),
                (0xF0000, 0x10000, 2),
                (0x10_0000, VENTOY_LIST_AT - 0x1000 - 0x10_0000, 1),
                (RAM_BYTES - 0x2_0000, 0x2_0000, 2),
            ]);
            (Firmware::Bios, os_ram)
        }
        VentoyBoot::Uefi => {
            uefi_vars.push(("VentoyOsParam", param.to_bytes().to_vec()));
            // Runtime-services data (the list) is not RAM Windows manages.
            let os_ram = os_ram_from_e820(&[
                (0, 0x9F000, 1),
                (0x10_0000, VENTOY_LIST_AT - 0x10_0000, 1),
                (
                    VENTOY_LIST_AT + 0x1000,
                    RAM_BYTES - VENTOY_LIST_AT - 0x1000,
                    1,
                ),
            ]);
            (Firmware::Uefi, os_ram)
        }
    };
    location.plant(&mut mem, VENTOY_LIST_AT);
    let boot_name = match boot {
        VentoyBoot::Bios => "bios",
        VentoyBoot::BiosIbft => "bios_ibft",
        VentoyBoot::Uefi => "uefi",
    };
    BackedScenario {
        name: format!(
            "ventoy_{}_{boot_name}_{}",
            if img { "img" } else { "iso" },
            layout_name(layout)
        ),
        source: BackingSource::Ventoy,
        mem,
        os_ram,
        firmware,
        total_ram_bytes: RAM_BYTES,
        uefi_vars,
        disk,
        extents,
        image,
        kind,
        writable: false,
    }
}

/// Ventoy's memdisk mode under UEFI (`docs/ventoy.md` §4): the ISO in reserved RAM at
/// `VENTOY_RAMDISK_AT`, GRUB's chain head (a record carrying the real file size, checksum not
/// fixed) 2616 bytes before it, and the `VentoyRamDisk` variable = {address, size − 2616}.
/// Served as a RAM image; there is no stick to read (`disk` is empty).
pub const VENTOY_RAMDISK_AT: u64 = 0x0200_0000;

/// The memdisk-mode scenario; see [`VENTOY_RAMDISK_AT`].
pub fn ventoy_memdisk_uefi() -> BackedScenario {
    let image = test_iso(ISO_BLOCKS);
    let mut mem = PhysMem::new();
    mem.write(VENTOY_RAMDISK_AT, &image);
    let head = VentoyParam {
        image_size: image.len() as u64,
        location_addr: 0,
        fix_checksum: false,
        ..VentoyParam::observed_iso()
    };
    mem.write(VENTOY_RAMDISK_AT - 2616, &head.to_bytes());
    let mut var = Vec::with_capacity(16);
    var.extend_from_slice(&VENTOY_RAMDISK_AT.to_le_bytes());
    var.extend_from_slice(&(image.len() as u64 - 2616).to_le_bytes());
    let reserved_at = VENTOY_RAMDISK_AT - 0x1000;
    let reserved_len = (image.len() as u64 + 0x1FFF) & !0xFFF;
    let os_ram = os_ram_from_e820(&[
        (0, 0x9F000, 1),
        (0x10_0000, reserved_at - 0x10_0000, 1),
        (
            reserved_at + reserved_len,
            RAM_BYTES - reserved_at - reserved_len,
            1,
        ),
    ]);
    BackedScenario {
        name: "ventoy_memdisk_uefi".into(),
        source: BackingSource::Ventoy,
        mem,
        os_ram,
        firmware: Firmware::Uefi,
        total_ram_bytes: RAM_BYTES,
        uefi_vars: vec![("VentoyRamDisk", var)],
        disk: Vec::new(),
        extents: Vec::new(),
        image,
        kind: DeviceKind::CdRom,
        writable: false,
    }
}

/// Every disk-backed scenario the harness tests run (each served from the stick).
pub fn all() -> Vec<BackedScenario> {
    let mut v = Vec::new();
    for layout in [Layout::Contiguous, Layout::Fragmented] {
        v.push(g4d_direct_iso(layout));
        v.push(g4d_direct_hdd(layout));
        v.push(ventoy_iso(VentoyBoot::Bios, layout));
        v.push(ventoy_iso(VentoyBoot::Uefi, layout));
    }
    v.push(ventoy_iso(VentoyBoot::BiosIbft, Layout::Contiguous));
    v.push(ventoy_img(VentoyBoot::Bios, Layout::Contiguous));
    v.push(ventoy_img(VentoyBoot::Uefi, Layout::Fragmented));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvblk_core::discovery::{
        discover_with, identify_backing_disk, Discovered, IdentifyRefusal, NoLog,
    };
    use rvblk_core::image::{LoaderSource, WritePolicy};

    fn discover(s: &BackedScenario) -> Discovered {
        let mut d = Discovered::default();
        discover_with(&s.mem, &s.input(), &s.handoff(), &mut NoLog, &mut d);
        s.mem.assert_no_reads_in(&s.os_ram);
        d
    }

    /// The core finds exactly the image the scenario describes, picks this stick out of a set
    /// with a foreign disk, and reads the image file back through its own extent lookup.
    #[test]
    fn the_core_finds_and_locates_every_scenario() {
        let foreign = stick(G4D_STICK_SECTORS, &stick_mbr(7, &[]), &[], &[]);
        let mut every = all();
        // The pulled-stick test's ISO and one bigger than the default stick (the bench's kind).
        every.push(g4d_direct_iso_sized(6000, Layout::Fragmented));
        every.push(g4d_direct_iso_sized(12000, Layout::Contiguous));
        for s in every {
            let d = discover(&s);
            assert!(d.images.is_empty(), "{}: RAM images {:?}", s.name, d.images);
            assert!(
                d.disk_refused.is_empty(),
                "{}: {:?}",
                s.name,
                d.disk_refused
            );
            assert_eq!(d.disk_backed.len(), 1, "{}", s.name);
            let img = &d.disk_backed[0];
            assert_eq!(img.source, s.source, "{}", s.name);
            assert_eq!(img.kind, s.kind, "{}", s.name);
            assert_eq!(img.length, s.image.len() as u64, "{}", s.name);
            assert_eq!(img.sector_size, SECTOR as u32, "{}", s.name);
            assert_eq!(
                img.write_policy == WritePolicy::ReadWrite && !img.is_read_only(),
                s.writable,
                "{}",
                s.name
            );
            // The core merges runs that continue each other; these never do.
            assert_eq!(img.extents.to_vec(), s.extents, "{}", s.name);
            if s.source == BackingSource::Grub4Dos {
                assert_eq!(img.bios_drive, 0x80, "{}", s.name);
            }
            let disks = [BytesDisk(&foreign), BytesDisk(&s.disk)];
            assert_eq!(identify_backing_disk(img, &disks), Ok(1), "{}", s.name);
            let mut read = Vec::new();
            let mut off = 0;
            while off < img.length {
                let (at, run) = img.locate(off).expect("inside the image");
                read.extend_from_slice(&s.disk[at as usize..(at + run) as usize]);
                off += run;
            }
            assert!(read == s.image, "{}: image bytes differ", s.name);
            assert!(s.image_on(&s.disk) == s.image, "{}", s.name);
        }
    }

    /// Two copies of the stick are ambiguous and no stick is "no disk has arrived" — the
    /// refusal cases of the harness tests.
    #[test]
    fn a_cloned_stick_is_ambiguous_and_no_stick_is_refused() {
        for s in all() {
            let d = discover(&s);
            let img = &d.disk_backed[0];
            let two = [BytesDisk(&s.disk), BytesDisk(&s.disk)];
            assert_eq!(
                identify_backing_disk(img, &two),
                Err(IdentifyRefusal::Ambiguous {
                    first: 0,
                    second: 1
                }),
                "{}",
                s.name
            );
            assert_eq!(
                IdentifyRefusal::Ambiguous {
                    first: 0,
                    second: 1
                }
                .to_string(),
                "disks 0 and 1 both match"
            );
            let none: [BytesDisk<'_>; 0] = [];
            assert_eq!(
                identify_backing_disk(img, &none),
                Err(IdentifyRefusal::NoCandidates)
            );
        }
    }

    /// Every sector outside the extents is non-zero filler (Ventoy's VTOYEFI free space
    /// aside) and unique, so a stray write is seen; changes inside the extents are not
    /// reported, changes outside are, at the right offset.
    #[test]
    fn filler_is_nonzero_and_changes_outside_are_found() {
        for s in [
            g4d_direct_hdd(Layout::Fragmented),
            ventoy_iso(VentoyBoot::Bios, Layout::Fragmented),
        ] {
            let data_end = match s.source {
                BackingSource::Grub4Dos => s.disk.len(),
                BackingSource::Ventoy => ((2048 + VENTOY_DATA_SECTORS) * SECTOR) as usize,
            };
            let mut seen = std::collections::HashSet::new();
            let inside = |lba: u64| {
                s.extents
                    .iter()
                    .any(|e| (e.start..e.start + e.sectors).contains(&lba))
            };
            for (i, sec) in s.disk[..data_end].chunks(512).enumerate() {
                if inside(i as u64) {
                    continue;
                }
                assert!(
                    sec.iter().any(|&b| b != 0),
                    "{}: sector {i} is zero",
                    s.name
                );
                assert!(seen.insert(sec.to_vec()), "{}: sector {i} repeats", s.name);
            }
            assert_eq!(s.first_change_outside(&s.disk), None);
            let mut after = s.disk.clone();
            let (off, len) = s.image_ranges()[1];
            after[(off + len / 2) as usize] ^= 0xFF;
            assert_eq!(s.first_change_outside(&after), None, "{}", s.name);
            let stray = off + len + 3;
            after[stray as usize] ^= 0x01;
            assert_eq!(s.first_change_outside(&after), Some(stray), "{}", s.name);
            assert_eq!(
                s.first_change_outside(&after[1..]),
                Some(s.disk.len() as u64 - 1)
            );
        }
    }

    /// The fragmented scenarios really are fragmented out of disk order, and the HDD's
    /// write-test sector (`blocks / 2`) is not in its first run.
    #[test]
    fn fragmented_layouts_are_out_of_order() {
        for s in [
            g4d_direct_iso(Layout::Fragmented),
            g4d_direct_hdd(Layout::Fragmented),
        ] {
            assert_eq!(s.extents.len(), 3, "{}", s.name);
            assert!(s.extents[1].start < s.extents[0].start, "{}", s.name);
        }
        let hdd = g4d_direct_hdd(Layout::Fragmented);
        let first_two: u64 = hdd.extents[..2].iter().map(|e| e.sectors).sum();
        assert!(HDD_SECTORS / 2 >= first_two);
        assert_eq!(
            ventoy_iso(VentoyBoot::Uefi, Layout::Fragmented)
                .extents
                .len(),
            4
        );
    }

    /// Memdisk mode under UEFI is a RAM image found through `VentoyRamDisk` with the real size
    /// from the chain head.
    #[test]
    fn ventoy_memdisk_uefi_is_a_ram_cd() {
        let s = ventoy_memdisk_uefi();
        let d = discover(&s);
        assert!(d.disk_backed.is_empty());
        assert_eq!(d.images.len(), 1, "{:?}", d.refused);
        let img = &d.images[0].image;
        assert_eq!(img.kind, DeviceKind::CdRom);
        assert_eq!(img.phys_base, VENTOY_RAMDISK_AT);
        assert_eq!(img.length, s.image.len() as u64);
        assert_eq!(img.source, LoaderSource::Memdisk);
        assert_eq!(s.mem.bytes(VENTOY_RAMDISK_AT, s.image.len()), s.image);
    }

    #[test]
    fn files_are_written_sparse_and_whole() {
        let dir = std::env::temp_dir().join(format!("rvblk-backed-{}", std::process::id()));
        let s = ventoy_iso(VentoyBoot::Uefi, Layout::Contiguous);
        let f = s.write_files(&dir).unwrap();
        assert!(fs::read(&f.disk).unwrap() == s.disk);
        assert!(fs::read(&f.image).unwrap() == s.image);
        assert_eq!(f.uefi_vars.len(), 1);
        assert_eq!(fs::read(&f.uefi_vars[0].1).unwrap(), s.uefi_vars[0].1);
        assert_eq!(fs::metadata(&f.ram).unwrap().len(), RAM_BYTES);
        let back = PhysMem::load_dump(&f.ram).unwrap();
        assert_eq!(
            back.bytes(VENTOY_LIST_AT, 16),
            crate::ventoy::VENTOY_GUID.to_vec()
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
