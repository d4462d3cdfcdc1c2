//! The images the driver presents: RAM images a boot loader left in physical memory
//! ([`MemoryImage`]) and images that stay on a real disk ([`DiskBackedImage`]).

use core::fmt;

use arrayvec::ArrayVec;

/// `Display` as the type's `name()`: logs and the harness's JSON report print that name.
macro_rules! display_by_name {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// What kind of SCSI device an image becomes (`docs/loaders.md` §3.4, §5.4, §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Fixed hard disk, 512-byte blocks, peripheral device type 0.
    Disk,
    /// CD/DVD-ROM, 2048-byte blocks, peripheral device type 5, removable, always read-only.
    CdRom,
    /// Floppy image presented as a removable direct-access device, 512-byte blocks.
    Floppy,
}

impl DeviceKind {
    /// Logical block size in bytes.
    pub const fn block_size(self) -> u32 {
        match self {
            DeviceKind::CdRom => 2048,
            DeviceKind::Disk | DeviceKind::Floppy => 512,
        }
    }

    /// Whether an image of this kind under `policy` refuses writes: CDs always, other kinds when
    /// the loader marked them read-only.
    pub const fn is_read_only(self, policy: WritePolicy) -> bool {
        matches!(self, DeviceKind::CdRom) || matches!(policy, WritePolicy::ReadOnly)
    }

    /// Number of whole logical blocks in `length` bytes.
    pub const fn blocks(self, length: u64) -> u64 {
        length / self.block_size() as u64
    }

    /// Name used in logs and the harness's JSON report.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceKind::Disk => "disk",
            DeviceKind::CdRom => "cdrom",
            DeviceKind::Floppy => "floppy",
        }
    }

    /// The kind whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [DeviceKind::Disk, DeviceKind::CdRom, DeviceKind::Floppy]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

display_by_name!(DeviceKind);

/// Which loader table described the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoaderSource {
    /// GRUB4DOS BIOS build: handler block reached from IVT[0x13] or found by the page scan.
    Grub4Dos,
    /// grub4efi or a1ive's GRUB2 `g4d` page below 640 KiB (`docs/loaders.md` §4).
    Grub4Efi,
    /// syslinux MEMDISK mBFT (`docs/loaders.md` §5).
    Memdisk,
    /// ACPI NFIT SPA range with a RAM-disk GUID (`docs/loaders.md` §6).
    Nfit,
}

impl LoaderSource {
    /// Name used in logs and the harness's JSON report.
    pub const fn name(self) -> &'static str {
        match self {
            LoaderSource::Grub4Dos => "grub4dos",
            LoaderSource::Grub4Efi => "grub4efi",
            LoaderSource::Memdisk => "memdisk",
            LoaderSource::Nfit => "nfit",
        }
    }

    /// The source whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            LoaderSource::Grub4Dos,
            LoaderSource::Grub4Efi,
            LoaderSource::Memdisk,
            LoaderSource::Nfit,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

display_by_name!(LoaderSource);

/// What the loader says about writes (`docs/loaders.md` §3.2 X/Y bits, §5.4 configflags bit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WritePolicy {
    ReadWrite,
    /// Writes fail with DATA PROTECT / WRITE PROTECTED; MODE SENSE reports WP.
    ReadOnly,
    /// GRUB4DOS "fake write": writes succeed and are discarded.
    DiscardWrites,
}

/// One image found in physical memory, validated and ready to be served as a LUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryImage {
    pub kind: DeviceKind,
    /// Physical address of the first byte of the image.
    pub phys_base: u64,
    /// Bytes exposed to Windows: a whole number of `kind.block_size()` blocks.
    pub length: u64,
    pub write_policy: WritePolicy,
    pub source: LoaderSource,
    /// Physical address of the table that described the image (slot table, mBFT, NFIT SPA).
    pub table_address: u64,
    /// Index of the slot/SPA structure within that table (0 for MEMDISK).
    pub slot: u8,
    /// BIOS drive number the loader emulated (0xFF when not applicable, e.g. NFIT).
    pub bios_drive: u8,
}

impl MemoryImage {
    pub const fn block_size(&self) -> u32 {
        self.kind.block_size()
    }

    /// Number of logical blocks; the exposed length is always whole blocks.
    pub const fn blocks(&self) -> u64 {
        self.kind.blocks(self.length)
    }

    /// See [`DeviceKind::is_read_only`].
    pub const fn is_read_only(&self) -> bool {
        self.kind.is_read_only(self.write_policy)
    }

    /// One past the last physical byte.
    pub const fn phys_end(&self) -> u64 {
        self.phys_base + self.length
    }
}

/// Which loader handed over a disk-backed image (`docs/loaders.md` §3.9,
/// `docs/ventoy.md` §1). Separate from [`LoaderSource`], which names RAM-image sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackingSource {
    /// A GRUB4DOS drive-map slot whose TO drive is a real BIOS disk (`map` without `--mem`).
    Grub4Dos,
    /// Ventoy's `ventoy_os_param` record and its image-location extent list.
    Ventoy,
}

impl BackingSource {
    pub const fn name(self) -> &'static str {
        match self {
            BackingSource::Grub4Dos => "grub4dos",
            BackingSource::Ventoy => "ventoy",
        }
    }
}

display_by_name!(BackingSource);

/// Most extents one disk-backed image may have. A GRUB4DOS fragment map holds at most 127 in
/// its larger (2 KiB) form and 39 in the older one; Ventoy files are usually 1–4 runs.
pub const MAX_EXTENTS: usize = 64;

/// A run of consecutive sectors on the backing disk. Extents are listed in image order: the
/// image is their concatenation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Extent {
    /// First sector on the backing disk (absolute LBA, in `DiskBackedImage::sector_size` units).
    pub start: u64,
    /// Number of backing-disk sectors (≥ 1).
    pub sectors: u64,
}

/// What the loader recorded about the disk that holds the image, used to pick that disk among
/// the ones Windows enumerates (`docs/loaders.md` §3.11, `docs/ventoy.md` §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskEvidence {
    /// GRUB4DOS records only the BIOS drive number (the slot's TO drive): the disk is found by
    /// the image's own content read through the extents and by its size.
    BiosDrive,
    /// Ventoy records the 16 bytes at LBA 0 + 0x180, the NT disk signature at LBA 0 + 0x1B8
    /// (`None` when the record predates it or holds zero) and the disk size in bytes.
    Ventoy {
        disk_id: [u8; 16],
        mbr_signature: Option<u32>,
        disk_size: u64,
    },
}

/// An image that stays on a real disk (a USB stick, usually): a GRUB4DOS direct map or Ventoy's
/// hand-off. Validated by discovery (extents non-empty, non-overlapping, inside the recorded
/// bounds, summing to at least `length`); the port still has to find the disk
/// ([`crate::discovery::identify_backing_disk`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiskBackedImage {
    pub kind: DeviceKind,
    pub write_policy: WritePolicy,
    pub source: BackingSource,
    /// BIOS number of the backing disk (GRUB4DOS TO drive); 0xFF when unknown (Ventoy).
    pub bios_drive: u8,
    /// BIOS drive number the loader emulated (GRUB4DOS FROM drive; Ventoy: 0xE0 for a CD,
    /// 0x80 for a disk image).
    pub emulated_drive: u8,
    /// Logical sector size of the backing disk that `extents` count in (512, 2048 or 4096).
    pub sector_size: u32,
    pub extents: ArrayVec<Extent, MAX_EXTENTS>,
    /// Bytes exposed to Windows: whole `kind.block_size()` blocks, ≤ the extents' total.
    pub length: u64,
    pub evidence: DiskEvidence,
    /// Physical address of the loader structure (slot table or os_param record; 0 when it came
    /// from a UEFI variable).
    pub table_address: u64,
    /// Slot index in the GRUB4DOS table (0 for Ventoy).
    pub slot: u8,
}

impl DiskBackedImage {
    pub const fn block_size(&self) -> u32 {
        self.kind.block_size()
    }

    pub const fn blocks(&self) -> u64 {
        self.kind.blocks(self.length)
    }

    /// See [`DeviceKind::is_read_only`].
    pub const fn is_read_only(&self) -> bool {
        self.kind.is_read_only(self.write_policy)
    }

    /// Whether a WRITE of this image can change the bytes on its disk: not for a read-only
    /// image (CD, Ventoy, write-protected), nor for GRUB4DOS "fake write", whose writes are
    /// discarded. The disk under any other image never changes through rvblk.
    pub const fn writes_reach_disk(&self) -> bool {
        !self.is_read_only() && !matches!(self.write_policy, WritePolicy::DiscardWrites)
    }

    /// Total bytes the extents cover (≥ `length`; validated not to overflow).
    pub fn extent_bytes(&self) -> u64 {
        self.extents
            .iter()
            .map(|e| e.sectors.saturating_mul(u64::from(self.sector_size)))
            .fold(0u64, u64::saturating_add)
    }

    /// Where image byte `offset` lives on the backing disk: `(disk byte offset, bytes that
    /// follow contiguously on the disk within this extent and the image)`. `None` past the end.
    pub fn locate(&self, offset: u64) -> Option<(u64, u64)> {
        if offset >= self.length {
            return None;
        }
        let ss = u64::from(self.sector_size);
        let mut image_pos = 0u64;
        for e in &self.extents {
            let len = e.sectors.checked_mul(ss)?;
            let end = image_pos.checked_add(len)?;
            if offset < end {
                let within = offset - image_pos;
                let disk = e.start.checked_mul(ss)?.checked_add(within)?;
                let run = (end - offset).min(self.length - offset);
                return Some((disk, run));
            }
            image_pos = end;
        }
        None
    }
}
