//! A RAM image that a boot loader left in physical memory, as the driver will present it.

use core::fmt;

/// What kind of SCSI device an image becomes (`loaders.md` §3.4, §5.4, §6.3).
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

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which loader table described the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoaderSource {
    /// GRUB4DOS BIOS build: handler block reached from IVT[0x13] or found by the page scan.
    Grub4Dos,
    /// grub4efi or a1ive's GRUB2 `g4d` page below 640 KiB (`loaders.md` §4).
    Grub4Efi,
    /// syslinux MEMDISK mBFT (`loaders.md` §5).
    Memdisk,
    /// ACPI NFIT SPA range with a RAM-disk GUID (`loaders.md` §6).
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

impl fmt::Display for LoaderSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the loader says about writes (`loaders.md` §3.2 X/Y bits, §5.4 configflags bit 0).
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
        self.length / self.kind.block_size() as u64
    }

    /// CDs are always read-only; otherwise the loader's flag decides.
    pub const fn is_read_only(&self) -> bool {
        matches!(self.kind, DeviceKind::CdRom) || matches!(self.write_policy, WritePolicy::ReadOnly)
    }

    /// One past the last physical byte.
    pub const fn phys_end(&self) -> u64 {
        self.phys_base + self.length
    }
}
