//! The driver's log lines that tools read back (the LUN table and refusals). The kernel writes them through `DbgPrint` with
//! [`PREFIX`]; the harness and the end-to-end tests parse the same lines with the same types,
//! so the text protocol has exactly one definition.

use core::fmt;

use crate::image::{BackingSource, DeviceKind, DiskBackedImage, LoaderSource, MemoryImage};

/// Every driver log line starts with this.
pub const PREFIX: &str = "rvblk: ";

/// One row of the LUN table, logged when an image becomes a LUN:
/// `lun N: kind=K block_size=B blocks=N read_only=0|1 source=S phys_base=0x… length=0x…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LunLine {
    /// Index in the adapter's LUN table (= SCSI target id).
    pub index: u32,
    pub kind: DeviceKind,
    pub block_size: u32,
    pub blocks: u64,
    pub read_only: bool,
    pub source: LoaderSource,
    pub phys_base: u64,
    pub length: u64,
}

impl LunLine {
    pub fn of(index: u32, image: &MemoryImage) -> Self {
        Self {
            index,
            kind: image.kind,
            block_size: image.block_size(),
            blocks: image.blocks(),
            read_only: image.is_read_only(),
            source: image.source,
            phys_base: image.phys_base,
            length: image.length,
        }
    }

    /// Parses a line without [`PREFIX`]. `None` when it is not a LUN-table line at all (other
    /// `lun N: …` messages included); `Some(Err)` when it is one but a field is missing or bad.
    pub fn parse(line: &str) -> Option<Result<Self, MalformedLine>> {
        let rest = line.strip_prefix("lun ")?;
        let (n, fields) = rest.split_once(": ")?;
        let index = n.parse::<u32>().ok()?;
        if !fields.starts_with("kind=") {
            return None;
        }
        Some(Self::parse_fields(index, fields).ok_or(MalformedLine))
    }

    fn parse_fields(index: u32, fields: &str) -> Option<Self> {
        let read_only = match field(fields, "read_only")? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        Some(Self {
            index,
            kind: DeviceKind::from_name(field(fields, "kind")?)?,
            block_size: u32::try_from(number(field(fields, "block_size")?)?).ok()?,
            blocks: number(field(fields, "blocks")?)?,
            read_only,
            source: LoaderSource::from_name(field(fields, "source")?)?,
            phys_base: number(field(fields, "phys_base")?)?,
            length: number(field(fields, "length")?)?,
        })
    }
}

impl fmt::Display for LunLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lun {}: kind={} block_size={} blocks={} read_only={} source={} phys_base={:#x} length={:#x}",
            self.index,
            self.kind,
            self.block_size,
            self.blocks,
            u8::from(self.read_only),
            self.source,
            self.phys_base,
            self.length
        )
    }
}

/// A refused candidate (`docs/loaders.md` §10 rule 30), logged with its reason:
/// `refused: source=S phys_base=0x… length=0x… reason=…` (the reason runs to the end of the
/// line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusalLine<R> {
    pub source: LoaderSource,
    pub phys_base: u64,
    pub length: u64,
    pub reason: R,
}

impl<'a> RefusalLine<&'a str> {
    /// Parses a line without [`PREFIX`]; `None` when it is not a refusal line.
    pub fn parse(line: &'a str) -> Option<Result<Self, MalformedLine>> {
        let rest = line.strip_prefix("refused: ")?;
        let (fields, reason) = rest.split_once(" reason=").unwrap_or((rest, ""));
        let parse = || -> Option<Self> {
            Some(Self {
                source: LoaderSource::from_name(field(fields, "source")?)?,
                phys_base: number(field(fields, "phys_base")?)?,
                length: number(field(fields, "length")?)?,
                reason,
            })
        };
        Some(parse().ok_or(MalformedLine))
    }
}

impl<R: fmt::Display> fmt::Display for RefusalLine<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused: source={} phys_base={:#x} length={:#x} reason={}",
            self.source, self.phys_base, self.length, self.reason
        )
    }
}

/// A disk-backed LUN going live once its disk is identified (`docs/driver.md` "Disk-backed
/// images"): `disk lun T: kind=K block_size=B blocks=N read_only=0|1 source=S length=0x…
/// extents=E`, T being the SCSI target id. Distinct from [`LunLine`] (which starts with `lun `):
/// the image has no physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLunLine {
    pub target: u32,
    pub kind: DeviceKind,
    pub block_size: u32,
    pub blocks: u64,
    pub read_only: bool,
    pub source: BackingSource,
    pub length: u64,
    pub extents: u32,
}

impl DiskLunLine {
    pub fn of(target: u32, image: &DiskBackedImage) -> Self {
        Self {
            target,
            kind: image.kind,
            block_size: image.block_size(),
            blocks: image.blocks(),
            read_only: image.is_read_only(),
            source: image.source,
            length: image.length,
            extents: image.extents.len() as u32,
        }
    }

    /// Parses a line without [`PREFIX`]; `None` when it is not such a line, `Some(Err)` when a
    /// field is missing or bad.
    pub fn parse(line: &str) -> Option<Result<Self, MalformedLine>> {
        let rest = line.strip_prefix("disk lun ")?;
        let (n, fields) = rest.split_once(": ")?;
        let target = n.parse::<u32>().ok()?;
        if !fields.starts_with("kind=") {
            return None;
        }
        Some(Self::parse_fields(target, fields).ok_or(MalformedLine))
    }

    fn parse_fields(target: u32, fields: &str) -> Option<Self> {
        let read_only = match field(fields, "read_only")? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let source = match field(fields, "source")? {
            "grub4dos" => BackingSource::Grub4Dos,
            "ventoy" => BackingSource::Ventoy,
            _ => return None,
        };
        Some(Self {
            target,
            kind: DeviceKind::from_name(field(fields, "kind")?)?,
            block_size: u32::try_from(number(field(fields, "block_size")?)?).ok()?,
            blocks: number(field(fields, "blocks")?)?,
            read_only,
            source,
            length: number(field(fields, "length")?)?,
            extents: u32::try_from(number(field(fields, "extents")?)?).ok()?,
        })
    }
}

impl fmt::Display for DiskLunLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "disk lun {}: kind={} block_size={} blocks={} read_only={} source={} length={:#x} extents={}",
            self.target,
            self.kind,
            self.block_size,
            self.blocks,
            u8::from(self.read_only),
            self.source,
            self.length,
            self.extents
        )
    }
}

/// A LUN-table or refusal line with a missing or unparsable field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedLine;

/// The value of ` name=value` in a space-separated field list.
fn field<'a>(fields: &'a str, name: &str) -> Option<&'a str> {
    fields
        .split(' ')
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

/// Decimal, or hexadecimal with `0x`.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::WritePolicy;
    use std::string::ToString;

    fn image() -> MemoryImage {
        MemoryImage {
            kind: DeviceKind::CdRom,
            phys_base: 0xf3c_e000,
            length: 0x80_0000,
            write_policy: WritePolicy::ReadWrite,
            source: LoaderSource::Memdisk,
            table_address: 0,
            slot: 0,
            bios_drive: 0xe0,
        }
    }

    #[test]
    fn renders_the_documented_line() {
        assert_eq!(
            LunLine::of(2, &image()).to_string(),
            "lun 2: kind=cdrom block_size=2048 blocks=4096 read_only=1 source=memdisk phys_base=0xf3ce000 length=0x800000"
        );
    }

    #[test]
    fn parses_what_it_renders() {
        let l = LunLine::of(7, &image());
        assert_eq!(LunLine::parse(&l.to_string()), Some(Ok(l)));
    }

    #[test]
    fn refusal_lines_round_trip() {
        let r = RefusalLine {
            source: LoaderSource::Grub4Dos,
            phys_base: 0x100000,
            length: 0x800,
            reason: "overlaps OS RAM 0x100000-0xffe0000 (rule 23)",
        };
        let text = r.to_string();
        assert_eq!(
            text,
            "refused: source=grub4dos phys_base=0x100000 length=0x800 reason=overlaps OS RAM 0x100000-0xffe0000 (rule 23)"
        );
        assert_eq!(RefusalLine::parse(&text), Some(Ok(r)));
        assert_eq!(RefusalLine::parse("lun 0: kind=disk"), None);
        assert_eq!(
            RefusalLine::parse("refused: source=floppy phys_base=0x0 length=0x0 reason=x"),
            Some(Err(MalformedLine))
        );
    }

    #[test]
    fn disk_lun_lines_round_trip_and_are_not_lun_lines() {
        use crate::image::{DiskEvidence, Extent};
        let mut extents = arrayvec::ArrayVec::new();
        extents.push(Extent {
            start: 3868,
            sectors: 8332,
        });
        let image = DiskBackedImage {
            kind: DeviceKind::CdRom,
            write_policy: WritePolicy::ReadOnly,
            source: BackingSource::Ventoy,
            bios_drive: 0xFF,
            emulated_drive: 0xE0,
            sector_size: 512,
            extents,
            length: 2083 * 2048,
            evidence: DiskEvidence::BiosDrive,
            table_address: 0,
            slot: 0,
        };
        let l = DiskLunLine::of(3, &image);
        let text = l.to_string();
        assert_eq!(
            text,
            "disk lun 3: kind=cdrom block_size=2048 blocks=2083 read_only=1 source=ventoy length=0x411800 extents=1"
        );
        assert_eq!(DiskLunLine::parse(&text), Some(Ok(l)));
        assert_eq!(LunLine::parse(&text), None);
        assert_eq!(
            DiskLunLine::parse(&LunLine::of(0, &self::image()).to_string()),
            None
        );
        assert_eq!(
            DiskLunLine::parse("disk lun 3: kind=cdrom block_size=2048 blocks=1 read_only=1 source=memdisk length=0x800 extents=1"),
            Some(Err(MalformedLine))
        );
    }

    #[test]
    fn other_lines_and_malformed_ones() {
        assert_eq!(LunLine::parse("3 image(s) exposed"), None);
        assert_eq!(
            LunLine::parse("lun 0: image changed since discovery; refusing I/O to it"),
            None
        );
        assert_eq!(
            LunLine::parse("lun 0: kind=tape block_size=512 blocks=1 read_only=0 source=memdisk phys_base=0x0 length=0x200"),
            Some(Err(MalformedLine))
        );
        assert_eq!(
            LunLine::parse("lun 0: kind=disk block_size=512 blocks=1 read_only=2 source=memdisk phys_base=0x0 length=0x200"),
            Some(Err(MalformedLine))
        );
        assert_eq!(
            LunLine::parse("lun 0: kind=disk block_size=512 read_only=0 source=memdisk phys_base=0x0 length=0x200"),
            Some(Err(MalformedLine)),
            "blocks missing"
        );
    }
}
