//! What discovery tells its caller besides the images: refusals (rule 30) and log events.

use core::fmt;

use crate::image::{BackingSource, DeviceKind, LoaderSource};

/// Why a candidate image was not exposed (`docs/loaders.md` §10). Short `Display` for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// Rule 23: the range intersects OS-managed RAM `[ram_start, ram_end)`.
    OverlapsOsRam { ram_start: u64, ram_end: u64 },
    /// Rules 12, 18, 27: the range reaches below 1 MiB (IVT/BDA/loader blocks/ROM).
    LowMemory,
    /// Rule 24: the range ends above the platform's maximum physical address.
    AboveMaxPhys { max_phys_end: u64 },
    /// Rule 18: a MEMDISK image must end at or below 4 GiB.
    AboveFourGiB,
    /// Rule 25: longer than the installed memory / the absolute cap.
    TooLarge { limit: u64 },
    /// Rule 25: shorter than one block (or zero sectors).
    TooSmall,
    /// Rule 4: `start × 512`, `count << shift` or `base + length` overflowed.
    Overflow,
    /// Rule 13: a GRUB4DOS CD memdrive with fewer than 4 sectors.
    CdTooShort,
    /// Rule 28: a CD candidate without an ISO9660 or UDF volume descriptor.
    NoCdFilesystem,
    /// Rule 28: the content needed to validate a CD could not be read.
    ContentUnreadable,
    /// Rule 26: partially overlaps (or conflicts in kind with) an earlier, higher-priority image.
    Overlap { other_base: u64, other_length: u64 },
    /// More images than `MAX_IMAGES`.
    TooManyImages,
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RefusalReason::OverlapsOsRam { ram_start, ram_end } => {
                write!(f, "overlaps OS RAM {ram_start:#x}-{ram_end:#x} (rule 23)")
            }
            RefusalReason::LowMemory => f.write_str("below 1 MiB (rule 27)"),
            RefusalReason::AboveMaxPhys { max_phys_end } => {
                write!(
                    f,
                    "ends above max physical address {max_phys_end:#x} (rule 24)"
                )
            }
            RefusalReason::AboveFourGiB => f.write_str("MEMDISK image ends above 4 GiB (rule 18)"),
            RefusalReason::TooLarge { limit } => {
                write!(f, "larger than {limit:#x} bytes (rule 25)")
            }
            RefusalReason::TooSmall => f.write_str("shorter than one block (rule 25)"),
            RefusalReason::Overflow => f.write_str("address arithmetic overflow (rule 4)"),
            RefusalReason::CdTooShort => f.write_str("CD memdrive under 4 sectors (rule 13)"),
            RefusalReason::NoCdFilesystem => {
                f.write_str("CD without ISO9660/UDF descriptors (rule 28)")
            }
            RefusalReason::ContentUnreadable => f.write_str("content unreadable (rule 28)"),
            RefusalReason::Overlap {
                other_base,
                other_length,
            } => {
                write!(
                    f,
                    "overlaps image {other_base:#x}+{other_length:#x} (rule 26)"
                )
            }
            RefusalReason::TooManyImages => f.write_str("too many images"),
        }
    }
}

/// A candidate that was found in a loader table but not exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// Physical base the table claimed (saturated if the computation overflowed).
    pub phys_base: u64,
    /// Length in bytes the table claimed (saturated if the computation overflowed).
    pub length: u64,
    pub source: LoaderSource,
    pub reason: RefusalReason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {} image {:#x}+{:#x}: {}",
            self.source, self.phys_base, self.length, self.reason
        )
    }
}

/// Why a GRUB4DOS-style drive-map slot produced no candidate (§3.3, §3.4, rules 10–11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotSkip {
    /// from_drive 0x21 (PXE), 0x22 (initrd) or 0x23 (FB).
    SpecialDrive,
    /// The from_drive already appeared in an earlier slot of the same table.
    DuplicateDrive,
    /// sector_count == 0 (e.g. a drive-swap slot).
    ZeroCount,
    /// Backed by a real drive (to_drive ≠ 0xFF or to_cylinder bit 14): not RAM (rule 11).
    DiskBacked,
    /// In-situ bit on a memdrive (rule 10).
    InSitu,
}

impl fmt::Display for SlotSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotSkip::SpecialDrive => "special drive (PXE/initrd/FB)",
            SlotSkip::DuplicateDrive => "duplicate from_drive",
            SlotSkip::ZeroCount => "zero sector count",
            SlotSkip::DiskBacked => "disk-backed mapping, not RAM (see disk-backed list)",
            SlotSkip::InSitu => "in-situ flag on a memdrive",
        })
    }
}

/// Why an mBFT (MEMDISK) was not used (§5.3, rules 15–19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MbftProblem {
    /// The structure (or its patch area) does not fit below 0xA0000 or could not be read.
    OutOfLowMemory,
    /// No `mBFT` signature at the address the hook gave.
    NoSignature,
    /// length outside 66..=256.
    BadLength,
    /// length ≠ MDI.bytes + 40.
    LengthMismatch,
    /// Byte sum over `length` is not 0.
    BadChecksum,
    /// sector_shift not in {0, 9, 11}.
    BadShift,
    /// driveno 0xFF.
    BadDriveNumber,
    /// Hook ↔ mBFT pointers do not point at each other (rule 16).
    CrossLink,
}

impl fmt::Display for MbftProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MbftProblem::OutOfLowMemory => "outside low memory",
            MbftProblem::NoSignature => "no mBFT signature",
            MbftProblem::BadLength => "length out of range",
            MbftProblem::LengthMismatch => "length != MDI.bytes + 40",
            MbftProblem::BadChecksum => "bad checksum",
            MbftProblem::BadShift => "bad sector_shift",
            MbftProblem::BadDriveNumber => "bad driveno",
            MbftProblem::CrossLink => "hook/mBFT cross-link mismatch",
        })
    }
}

/// Why a disk-backed candidate (GRUB4DOS direct map, Ventoy hand-off) was not accepted
/// (`docs/loaders.md` §3.9–§3.10, `docs/ventoy.md` §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskRefusalReason {
    /// GRUB4DOS in-situ mapping (to_sector bit 7): a partition re-labelled in place, not an image.
    InSitu,
    /// GRUB4DOS "bifurcate" TO drive (to_cylinder bit 12): a drive number above 0xFF.
    Bifurcate,
    /// to_cylinder bit 10 (fragmented) but no `FRAGMENT` map, or no record for this drive.
    NoFragmentRecord,
    /// The fragment record is malformed (length not 4 + 16n, runs past the map, TO drive differs).
    BadFragmentRecord,
    /// More extents than `MAX_EXTENTS`.
    TooManyExtents { count: u32 },
    /// An extent with zero sectors.
    EmptyExtent,
    /// Sector or byte arithmetic overflowed, or an extent ends past the plausible disk size.
    Overflow,
    /// Two extents share backing-disk sectors.
    OverlappingExtents,
    /// The extents do not add up to the image size the loader recorded.
    ExtentTotal {
        extents_bytes: u64,
        image_bytes: u64,
    },
    /// An extent ends past the disk size the loader recorded (Ventoy).
    PastDiskEnd { disk_size: u64 },
    /// Shorter than one block of the emulated device.
    TooSmall,
    /// Longer than the absolute cap (`MAX_IMAGE_BYTES`).
    TooLarge,
    /// Ventoy chain type 2: a WIM boot whose list maps memory, not a file on the disk.
    VentoyWimChain,
    /// A Ventoy region with disk start 0 (data that came from memory, not from the disk).
    VentoyMemoryRegion,
    /// Ventoy's image sectors are not consecutive, or do not convert to whole disk sectors.
    VentoyRegionLayout,
    /// Backing sector size the driver cannot address (not 512, 2048 or 4096).
    SectorSize { size: u32 },
    /// More disk-backed images than `MAX_DISK_IMAGES`.
    TooManyImages,
}

impl fmt::Display for DiskRefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DiskRefusalReason::InSitu => f.write_str("in-situ mapping is not an image"),
            DiskRefusalReason::Bifurcate => f.write_str("bifurcate TO drive (number above 0xFF)"),
            DiskRefusalReason::NoFragmentRecord => {
                f.write_str("fragmented map without a FRAGMENT record for its drive")
            }
            DiskRefusalReason::BadFragmentRecord => f.write_str("malformed fragment record"),
            DiskRefusalReason::TooManyExtents { count } => {
                write!(f, "{count} extents, more than the driver keeps")
            }
            DiskRefusalReason::EmptyExtent => f.write_str("extent with zero sectors"),
            DiskRefusalReason::Overflow => f.write_str("extent arithmetic overflow"),
            DiskRefusalReason::OverlappingExtents => f.write_str("extents overlap on the disk"),
            DiskRefusalReason::ExtentTotal {
                extents_bytes,
                image_bytes,
            } => write!(
                f,
                "extents cover {extents_bytes:#x} bytes, image is {image_bytes:#x}"
            ),
            DiskRefusalReason::PastDiskEnd { disk_size } => {
                write!(f, "extent past the recorded disk end {disk_size:#x}")
            }
            DiskRefusalReason::TooSmall => f.write_str("shorter than one block"),
            DiskRefusalReason::TooLarge => f.write_str("larger than the image size cap"),
            DiskRefusalReason::VentoyWimChain => {
                f.write_str("Ventoy WIM chain (list maps memory, not the file)")
            }
            DiskRefusalReason::VentoyMemoryRegion => {
                f.write_str("Ventoy region at disk sector 0 (memory-backed)")
            }
            DiskRefusalReason::VentoyRegionLayout => {
                f.write_str("Ventoy regions not consecutive or not whole disk sectors")
            }
            DiskRefusalReason::SectorSize { size } => {
                write!(f, "unsupported backing sector size {size}")
            }
            DiskRefusalReason::TooManyImages => f.write_str("too many disk-backed images"),
        }
    }
}

/// A disk-backed candidate that was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiskRefusal {
    pub source: BackingSource,
    /// Emulated (FROM) drive of a GRUB4DOS slot; 0xFF for Ventoy.
    pub emulated_drive: u8,
    /// Backing (TO) BIOS drive; 0xFF when unknown.
    pub bios_drive: u8,
    /// Physical address of the slot table / os_param record (0 for a UEFI variable).
    pub table_address: u64,
    pub slot: u8,
    pub reason: DiskRefusalReason,
}

impl fmt::Display for DiskRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {} disk-backed image (drive {:#04x} on BIOS disk {:#04x}, table {:#x} slot {}): {}",
            self.source,
            self.emulated_drive,
            self.bios_drive,
            self.table_address,
            self.slot,
            self.reason
        )
    }
}

/// Why a Ventoy `ventoy_os_param` candidate was not used (`docs/ventoy.md` §1, §2.4 steps 1–2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VentoyProblem {
    /// Fewer than 512 bytes (UEFI variable) or the record does not fit below 0xA0000.
    Short,
    /// The first 16 bytes are not Ventoy's GUID.
    NoGuid,
    /// The byte sum of the 512 bytes is not 0.
    BadChecksum,
    /// No image-location list (address 0: GRUB's own heap copy, or the ACPI-table form).
    NoLocation,
    /// Location address not 4 KiB-aligned.
    LocationUnaligned,
    /// Location length is not 28 + 16n with n ≥ 1.
    BadLocationLength,
    /// The location list could not be read (below 1 MiB, in OS RAM, or unmapped).
    LocationUnreadable,
    /// The location list does not start with Ventoy's GUID.
    LocationGuid,
    /// Image sector size not 512/2048 or disk sector size not 512/4096.
    BadSectorSize,
    /// Chain type above 2.
    BadChainType,
    /// The image path has no NUL terminator within its 384 bytes.
    PathNotTerminated,
    /// Image size 0, or disk size 0.
    BadSize,
}

impl fmt::Display for VentoyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VentoyProblem::Short => "record truncated",
            VentoyProblem::NoGuid => "no Ventoy GUID",
            VentoyProblem::BadChecksum => "bad checksum",
            VentoyProblem::NoLocation => "no image-location list",
            VentoyProblem::LocationUnaligned => "location list not 4 KiB-aligned",
            VentoyProblem::BadLocationLength => "location length is not 28 + 16n",
            VentoyProblem::LocationUnreadable => "location list unreadable",
            VentoyProblem::LocationGuid => "location list without Ventoy GUID",
            VentoyProblem::BadSectorSize => "bad image/disk sector size",
            VentoyProblem::BadChainType => "bad chain type",
            VentoyProblem::PathNotTerminated => "image path not NUL-terminated",
            VentoyProblem::BadSize => "zero image or disk size",
        })
    }
}

/// Informational and warning events. Nothing here changes the result; refusals also appear in
/// [`Discovered::refused`](super::Discovered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Info: a `$INT13SF` safe hook was reached on the INT 13h chain (§2.4).
    HookFound { hook: u32, vendor: [u8; 8] },
    /// Warning (rule 5): the vendor is not a loader rvblk parses; the walk continues.
    UnknownVendor { hook: u32, vendor: [u8; 8] },
    /// Warning (rule 5): vendor bytes are not printable ASCII; the walk stops here.
    BadVendor { hook: u32 },
    /// Warning (rule 7): the chain loops back to an already visited hook.
    ChainLoop { hook: u32 },
    /// Warning (rule 7): more than 16 hooks; the walk stops.
    ChainTooLong,
    /// Info: the safe-hook chain ended at `vector` (seg:off), usually the BIOS ROM.
    ChainEnd { vector: u32 },
    /// Warning (rule 6): a hook lies below the BDA-reserved top of conventional memory.
    HookInFreeMemory { hook: u32, bda_top: u32 },
    /// Warning (rule 9): a GRUB4DOS hook that is not the genuine BIOS layout; not parsed.
    Grub4DosNonStandard { hook: u32, why: &'static str },
    /// Warning (rule 9): header oddity in a GRUB4DOS block that is still parsed.
    Grub4DosHeader { base: u32, what: &'static str },
    /// Info (§3.3): a 16-slot build; slots 9–16 read from `table`.
    SixteenSlotTable { base: u32, table: u32 },
    /// Info (`docs/loaders.md` §3.3): a candidate second slot table that does not
    /// hold valid slots (in 8-slot builds those bytes are a CD sector buffer); not used.
    SecondTableRejected {
        base: u32,
        table: u32,
        why: &'static str,
    },
    /// Info: a disk-backed image was accepted (the port must still find its disk).
    DiskBacked {
        source: BackingSource,
        emulated_drive: u8,
        bios_drive: u8,
        extents: u8,
        length: u64,
    },
    /// Warning: a disk-backed candidate was refused (also in `Discovered::disk_refused`).
    DiskRefused(&'a DiskRefusal),
    /// Info (`docs/ventoy.md` §3): a valid `ventoy_os_param` record (`addr` 0: UEFI variable).
    VentoyParam { addr: u64 },
    /// Warning: a `ventoy_os_param` candidate with a valid GUID was not used.
    VentoyRejected { addr: u64, why: VentoyProblem },
    /// Info (`docs/ventoy.md` §4): Ventoy's UEFI memdisk (`VentoyRamDisk`) at `phys`.
    VentoyRamDisk { phys: u64, size: u64 },
    /// Info: a drive-map slot that is not a RAM image.
    SlotSkipped {
        table: u64,
        slot: u8,
        from_drive: u8,
        why: SlotSkip,
    },
    /// Warning (observed §4.5, §9 D1): a GRUB4DOS signature not on the chain and not at the BDA top:
    /// a stale copy (template in GRUB4DOS's own image, string literal, previous boot). Ignored.
    StaleCopySkipped { signature: u32 },
    /// Info (§9 D1): GRUB4DOS block at the BDA top accepted although not on the chain.
    UnchainedBlock { base: u32 },
    /// Info (§9 D2): a grub4efi (`grub4efi = true`) or a1ive GRUB2 page.
    UefiPage { page: u32, grub4efi: bool },
    /// Warning (§4.1): more than one UEFI GRUB4DOS-compatible page; older ones may be stale.
    ExtraUefiPage { page: u32 },
    /// Warning (rule 12): a GRUB4DOS/grub4efi base that is not 4 KiB-aligned.
    NonAlignedBase { base: u64, source: LoaderSource },
    /// Warning: an mBFT that was not accepted.
    MbftRejected { mbft: u32, why: MbftProblem },
    /// Warning (rule 15): oddity in an accepted mBFT (alignment, OEM ID, below BDA top).
    MbftWarning { mbft: u32, what: &'static str },
    /// Warning (rule 19): driveno and sector_shift disagree; the kind follows the shift.
    MemdiskKindMismatch { mbft: u32, driveno: u8, shift: u8 },
    /// Warning (rule 20/21/22): the NFIT or one of its structures was not usable.
    NfitProblem { offset: u32, what: &'static str },
    /// Info: the image length was reduced (`why` names the rule: CD volume size, floppy CHS,
    /// whole blocks).
    LengthCapped {
        base: u64,
        from: u64,
        to: u64,
        why: &'static str,
    },
    /// Warning (rule 25, 28): the content looks odd but the image is still exposed.
    ContentWarning {
        base: u64,
        kind: DeviceKind,
        what: &'static str,
    },
    /// Info (§9 F1): an exact duplicate was merged into the image found first.
    Merged {
        base: u64,
        length: u64,
        kept: LoaderSource,
        dropped: LoaderSource,
    },
    /// Warning (rule 30): a candidate was refused.
    Refused(&'a Refusal),
    /// Warning: more refusals than `MAX_REFUSED`; this one is only logged.
    RefusalListFull,
}

struct Vendor<'b>(&'b [u8; 8]);

impl fmt::Display for Vendor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if (0x20..0x7F).contains(&b) {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::HookFound { hook, vendor } => {
                write!(f, "safe hook at {hook:#x} vendor '{}'", Vendor(vendor))
            }
            Event::UnknownVendor { hook, vendor } => {
                write!(
                    f,
                    "safe hook at {hook:#x}: unknown vendor '{}', skipped",
                    Vendor(vendor)
                )
            }
            Event::BadVendor { hook } => write!(
                f,
                "safe hook at {hook:#x}: non-ASCII vendor, chain walk stops"
            ),
            Event::ChainLoop { hook } => write!(f, "INT 13h chain loops at {hook:#x}"),
            Event::ChainTooLong => f.write_str("INT 13h chain longer than 16 hooks, walk stopped"),
            Event::ChainEnd { vector } => write!(
                f,
                "INT 13h chain ends at {:04x}:{:04x}",
                vector >> 16,
                vector & 0xFFFF
            ),
            Event::HookInFreeMemory { hook, bda_top } => {
                write!(
                    f,
                    "safe hook at {hook:#x} lies below the BDA top {bda_top:#x}"
                )
            }
            Event::Grub4DosNonStandard { hook, why } => {
                write!(f, "GRUB4DOS hook at {hook:#x} not parsed: {why}")
            }
            Event::Grub4DosHeader { base, what } => {
                write!(f, "GRUB4DOS block at {base:#x}: {what}")
            }
            Event::SixteenSlotTable { base, table } => {
                write!(
                    f,
                    "GRUB4DOS block at {base:#x}: 16-slot build, second table at {table:#x}"
                )
            }
            Event::SecondTableRejected { base, table, why } => write!(
                f,
                "GRUB4DOS block at {base:#x}: no second slot table at {table:#x} ({why})"
            ),
            Event::DiskBacked {
                source,
                emulated_drive,
                bios_drive,
                extents,
                length,
            } => write!(
                f,
                "{source} disk-backed image: drive {emulated_drive:#04x} on BIOS disk {bios_drive:#04x}, {extents} extent(s), {length:#x} bytes"
            ),
            Event::DiskRefused(r) => fmt::Display::fmt(r, f),
            Event::VentoyParam { addr } => {
                if *addr == 0 {
                    f.write_str("Ventoy os_param from the UEFI variable")
                } else {
                    write!(f, "Ventoy os_param at {addr:#x}")
                }
            }
            Event::VentoyRejected { addr, why } => {
                write!(f, "Ventoy os_param at {addr:#x} rejected: {why}")
            }
            Event::VentoyRamDisk { phys, size } => {
                write!(f, "Ventoy UEFI memdisk at {phys:#x}, {size:#x} bytes")
            }
            Event::SlotSkipped {
                table,
                slot,
                from_drive,
                why,
            } => {
                write!(
                    f,
                    "slot {slot} (drive {from_drive:#04x}) of table {table:#x} skipped: {why}"
                )
            }
            Event::StaleCopySkipped { signature } => {
                write!(f, "stale GRUB4DOS signature at {signature:#x} ignored (not on chain, not at BDA top)")
            }
            Event::UnchainedBlock { base } => write!(
                f,
                "GRUB4DOS block at BDA top {base:#x} used although not on the INT 13h chain"
            ),
            Event::UefiPage { page, grub4efi } => {
                write!(
                    f,
                    "{} page at {page:#x}",
                    if *grub4efi {
                        "grub4efi"
                    } else {
                        "a1ive GRUB2 g4d"
                    }
                )
            }
            Event::ExtraUefiPage { page } => write!(
                f,
                "additional GRUB4DOS-compatible UEFI page at {page:#x} (possibly stale)"
            ),
            Event::NonAlignedBase { base, source } => {
                write!(f, "{source} image base {base:#x} not 4 KiB-aligned")
            }
            Event::MbftRejected { mbft, why } => write!(f, "mBFT at {mbft:#x} rejected: {why}"),
            Event::MbftWarning { mbft, what } => write!(f, "mBFT at {mbft:#x}: {what}"),
            Event::MemdiskKindMismatch {
                mbft,
                driveno,
                shift,
            } => {
                write!(f, "mBFT at {mbft:#x}: driveno {driveno:#04x} disagrees with sector_shift {shift}; using the shift")
            }
            Event::NfitProblem { offset, what } => write!(f, "NFIT at offset {offset:#x}: {what}"),
            Event::LengthCapped {
                base,
                from,
                to,
                why,
            } => {
                write!(
                    f,
                    "image {base:#x}: length {from:#x} reduced to {to:#x} ({why})"
                )
            }
            Event::ContentWarning { base, kind, what } => {
                write!(f, "{kind} image {base:#x}: {what}")
            }
            Event::Merged {
                base,
                length,
                kept,
                dropped,
            } => {
                write!(
                    f,
                    "image {base:#x}+{length:#x} from {dropped} merged into the {kept} entry"
                )
            }
            Event::Refused(r) => fmt::Display::fmt(r, f),
            Event::RefusalListFull => {
                f.write_str("refusal list full; further refusals only logged")
            }
        }
    }
}

/// Receives discovery's events (the kernel port forwards them to the event log/registry).
pub trait DiscoveryLog {
    fn event(&mut self, event: &Event<'_>);
}

/// A log that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLog;

impl DiscoveryLog for NoLog {
    fn event(&mut self, _event: &Event<'_>) {}
}

impl<L: DiscoveryLog + ?Sized> DiscoveryLog for &mut L {
    fn event(&mut self, event: &Event<'_>) {
        (**self).event(event)
    }
}
