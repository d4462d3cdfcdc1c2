//! PE image inspection for rvblk's drivers: headers, checksum, sections, imports, instruction scan.
//!
//! The parser is hand-written (PE/COFF spec, "PE Format" in the Windows docs) so that it can
//! report the exact file offsets that signing needs: the `CheckSum` field, the security
//! (certificate table) data-directory entry and the end of the headers.
//!
//! * [`Pe::parse`] reads PE32 and PE32+ images (x86, x64, arm64, anything else by number).
//! * [`checksum`] computes the PE checksum per the spec's algorithm; [`update_checksum`] writes it.
//! * [`scan::instruction_scan`] disassembles executable sections with iced-x86 and reports
//!   x87/MMX/SSE/AVX instructions.
//! * [`build::PeBuilder`] writes small but valid PE images (used by the tests of this crate and
//!   of `rvblk-sign`).

use std::fmt;

pub mod build;
pub mod scan;

/// `IMAGE_FILE_MACHINE_I386`.
pub const MACHINE_I386: u16 = 0x014c;
/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
pub const MACHINE_ARM64: u16 = 0xaa64;

/// `IMAGE_SUBSYSTEM_NATIVE`.
pub const SUBSYSTEM_NATIVE: u16 = 1;

/// COFF `Characteristics` bits.
pub mod characteristics {
    /// `IMAGE_FILE_RELOCS_STRIPPED`.
    pub const RELOCS_STRIPPED: u16 = 0x0001;
    /// `IMAGE_FILE_EXECUTABLE_IMAGE`.
    pub const EXECUTABLE_IMAGE: u16 = 0x0002;
    /// `IMAGE_FILE_LARGE_ADDRESS_AWARE`.
    pub const LARGE_ADDRESS_AWARE: u16 = 0x0020;
    /// `IMAGE_FILE_32BIT_MACHINE`.
    pub const MACHINE_32BIT: u16 = 0x0100;
    /// `IMAGE_FILE_DEBUG_STRIPPED`.
    pub const DEBUG_STRIPPED: u16 = 0x0200;
    /// `IMAGE_FILE_SYSTEM`.
    pub const SYSTEM: u16 = 0x1000;
    /// `IMAGE_FILE_DLL`.
    pub const DLL: u16 = 0x2000;
}

/// Optional-header `DllCharacteristics` bits.
pub mod dll_characteristics {
    /// `IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA`.
    pub const HIGH_ENTROPY_VA: u16 = 0x0020;
    /// `IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE`.
    pub const DYNAMIC_BASE: u16 = 0x0040;
    /// `IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY`.
    pub const FORCE_INTEGRITY: u16 = 0x0080;
    /// `IMAGE_DLLCHARACTERISTICS_NX_COMPAT`.
    pub const NX_COMPAT: u16 = 0x0100;
    /// `IMAGE_DLLCHARACTERISTICS_NO_ISOLATION`.
    pub const NO_ISOLATION: u16 = 0x0200;
    /// `IMAGE_DLLCHARACTERISTICS_NO_SEH`.
    pub const NO_SEH: u16 = 0x0400;
    /// `IMAGE_DLLCHARACTERISTICS_NO_BIND`.
    pub const NO_BIND: u16 = 0x0800;
    /// `IMAGE_DLLCHARACTERISTICS_APPCONTAINER`.
    pub const APPCONTAINER: u16 = 0x1000;
    /// `IMAGE_DLLCHARACTERISTICS_WDM_DRIVER`.
    pub const WDM_DRIVER: u16 = 0x2000;
    /// `IMAGE_DLLCHARACTERISTICS_GUARD_CF`.
    pub const GUARD_CF: u16 = 0x4000;
    /// `IMAGE_DLLCHARACTERISTICS_TERMINAL_SERVER_AWARE`.
    pub const TERMINAL_SERVER_AWARE: u16 = 0x8000;
}

/// Section `Characteristics` bits.
pub mod section_flags {
    /// `IMAGE_SCN_CNT_CODE`.
    pub const CNT_CODE: u32 = 0x0000_0020;
    /// `IMAGE_SCN_CNT_INITIALIZED_DATA`.
    pub const CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
    /// `IMAGE_SCN_CNT_UNINITIALIZED_DATA`.
    pub const CNT_UNINITIALIZED_DATA: u32 = 0x0000_0080;
    /// `IMAGE_SCN_MEM_DISCARDABLE`.
    pub const MEM_DISCARDABLE: u32 = 0x0200_0000;
    /// `IMAGE_SCN_MEM_NOT_PAGED`.
    pub const MEM_NOT_PAGED: u32 = 0x0800_0000;
    /// `IMAGE_SCN_MEM_EXECUTE`.
    pub const MEM_EXECUTE: u32 = 0x2000_0000;
    /// `IMAGE_SCN_MEM_READ`.
    pub const MEM_READ: u32 = 0x4000_0000;
    /// `IMAGE_SCN_MEM_WRITE`.
    pub const MEM_WRITE: u32 = 0x8000_0000;
}

/// Data-directory indices.
pub mod dir {
    /// Export table.
    pub const EXPORT: usize = 0;
    /// Import table.
    pub const IMPORT: usize = 1;
    /// Resource table.
    pub const RESOURCE: usize = 2;
    /// Exception table (`.pdata`).
    pub const EXCEPTION: usize = 3;
    /// Certificate table. Its "RVA" is a **file offset**.
    pub const SECURITY: usize = 4;
    /// Base relocation table.
    pub const BASERELOC: usize = 5;
    /// Debug directory.
    pub const DEBUG: usize = 6;
    /// Load configuration.
    pub const LOAD_CONFIG: usize = 10;
    /// Import address table.
    pub const IAT: usize = 12;
}

/// Errors from parsing a PE image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeError {
    /// The file is too short or a structure runs past its end.
    Truncated(&'static str),
    /// A magic number (`MZ`, `PE\0\0`, optional-header magic) is wrong.
    BadMagic(&'static str),
    /// An RVA does not fall inside any section or the headers.
    BadRva(&'static str, u32),
    /// Some other malformation.
    Malformed(String),
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeError::Truncated(what) => write!(f, "truncated PE image: {what} runs past the end"),
            PeError::BadMagic(what) => write!(f, "not a PE image: bad {what}"),
            PeError::BadRva(what, rva) => write!(f, "{what}: RVA {rva:#x} is outside the image"),
            PeError::Malformed(msg) => write!(f, "malformed PE image: {msg}"),
        }
    }
}

impl std::error::Error for PeError {}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, PeError>;

/// One data-directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataDirectory {
    /// RVA (for [`dir::SECURITY`]: file offset).
    pub virtual_address: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Name, NUL padding removed (`/n` long names are kept as written).
    pub name: String,
    /// `VirtualSize`.
    pub virtual_size: u32,
    /// `VirtualAddress` (RVA).
    pub virtual_address: u32,
    /// `SizeOfRawData`.
    pub size_of_raw_data: u32,
    /// `PointerToRawData` (file offset).
    pub pointer_to_raw_data: u32,
    /// `Characteristics` ([`section_flags`]).
    pub characteristics: u32,
}

impl Section {
    /// Executable (`MEM_EXECUTE`).
    pub fn is_executable(&self) -> bool {
        self.characteristics & section_flags::MEM_EXECUTE != 0
    }
    /// Writable (`MEM_WRITE`).
    pub fn is_writable(&self) -> bool {
        self.characteristics & section_flags::MEM_WRITE != 0
    }
    /// Both writable and executable (refused under HVCI).
    pub fn is_write_execute(&self) -> bool {
        self.is_executable() && self.is_writable()
    }
    /// Discardable (`MEM_DISCARDABLE`, e.g. `INIT`, `.reloc`).
    pub fn is_discardable(&self) -> bool {
        self.characteristics & section_flags::MEM_DISCARDABLE != 0
    }
    /// Contains code (`CNT_CODE`).
    pub fn contains_code(&self) -> bool {
        self.characteristics & section_flags::CNT_CODE != 0
    }
    /// The size of the section's data present in the file that belongs to the image
    /// (`min(VirtualSize, SizeOfRawData)`, or `SizeOfRawData` when `VirtualSize` is 0).
    pub fn file_data_len(&self) -> u32 {
        if self.virtual_size == 0 {
            self.size_of_raw_data
        } else {
            self.virtual_size.min(self.size_of_raw_data)
        }
    }
}

/// How a function is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportKind {
    /// By name, with the hint from the hint/name table.
    Name {
        /// The name as stored.
        name: String,
        /// Hint (export-name-table index guess).
        hint: u16,
    },
    /// By ordinal.
    Ordinal(u16),
}

/// One imported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedFunction {
    /// Name or ordinal.
    pub kind: ImportKind,
}

impl ImportedFunction {
    /// The name, if imported by name.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            ImportKind::Name { name, .. } => Some(name),
            ImportKind::Ordinal(_) => None,
        }
    }
    /// Imported by ordinal.
    pub fn is_ordinal(&self) -> bool {
        matches!(self.kind, ImportKind::Ordinal(_))
    }
    /// The name carries x86 calling-convention decoration (`_Foo@16`, `@Foo@8`, `Foo@0`) or C++
    /// mangling (`?Foo@@...`). Kernel export tables contain none of these.
    pub fn is_decorated(&self) -> bool {
        self.name().is_some_and(is_decorated_name)
    }
}

impl fmt::Display for ImportedFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ImportKind::Name { name, .. } => f.write_str(name),
            ImportKind::Ordinal(o) => write!(f, "#{o}"),
        }
    }
}

/// True for `_Foo@16`, `@Foo@8`, `Foo@4`, `?Foo@@YAXXZ` — names a linker decorated.
pub fn is_decorated_name(name: &str) -> bool {
    if name.starts_with('@') || name.starts_with('?') {
        return true;
    }
    match name.rfind('@') {
        Some(at) => {
            let tail = &name[at + 1..];
            !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// All functions imported from one DLL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDll {
    /// DLL name as stored (case preserved).
    pub dll: String,
    /// Functions, in table order.
    pub functions: Vec<ImportedFunction>,
    /// RVA of the DLL's import address table (`FirstThunk`): function `i`'s slot is at
    /// `iat_rva + i * pointer size`, which a loader overwrites with the bound address.
    pub iat_rva: u32,
}

/// One base relocation: the image address at `rva` must be adjusted by the load delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// RVA of the field to patch.
    pub rva: u32,
    /// `IMAGE_REL_BASED_*` type (3 = HIGHLOW, 32-bit; 10 = DIR64, 64-bit; others as stored).
    pub kind: u8,
}

/// `IMAGE_REL_BASED_HIGHLOW`.
pub const REL_BASED_HIGHLOW: u8 = 3;
/// `IMAGE_REL_BASED_DIR64`.
pub const REL_BASED_DIR64: u8 = 10;

/// The COFF `Machine` of a PE image, reading only the DOS header and the PE signature (to pick a
/// process or refuse an architecture before a full [`Pe::parse`]).
pub fn machine(data: &[u8]) -> Result<u16> {
    rd_u16(data, coff_header_offset(data)?, "COFF header")
}

/// File offset of the COFF header (after `MZ`, `e_lfanew` and `PE\0\0`).
fn coff_header_offset(data: &[u8]) -> Result<usize> {
    if data.len() < 0x40 || &data[0..2] != b"MZ" {
        return Err(PeError::BadMagic("DOS header (MZ)"));
    }
    let pe_offset = rd_u32(data, 0x3c, "e_lfanew")? as usize;
    if data.get(pe_offset..pe_offset.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(PeError::BadMagic("PE signature"));
    }
    Ok(pe_offset + 4)
}

/// One exported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Name, if exported by name.
    pub name: Option<String>,
    /// Biased ordinal.
    pub ordinal: u32,
    /// RVA of the function (or of the forwarder string).
    pub rva: u32,
    /// Forwarder (`DLL.Func`) if the RVA points into the export directory.
    pub forwarder: Option<String>,
}

/// A parsed PE image. Borrows the file bytes.
#[derive(Debug, Clone)]
pub struct Pe<'a> {
    data: &'a [u8],
    /// File offset of the `PE\0\0` signature (`e_lfanew`).
    pub pe_offset: usize,
    /// COFF `Machine`.
    pub machine: u16,
    /// COFF `TimeDateStamp`.
    pub timestamp: u32,
    /// COFF `Characteristics` ([`characteristics`]).
    pub characteristics: u16,
    /// PE32+ (64-bit optional header).
    pub is_pe32_plus: bool,
    /// `AddressOfEntryPoint`.
    pub entry_point: u32,
    /// `ImageBase`.
    pub image_base: u64,
    /// `SectionAlignment`.
    pub section_alignment: u32,
    /// `FileAlignment`.
    pub file_alignment: u32,
    /// `MajorOperatingSystemVersion`, `MinorOperatingSystemVersion`.
    pub os_version: (u16, u16),
    /// `MajorSubsystemVersion`, `MinorSubsystemVersion`.
    pub subsystem_version: (u16, u16),
    /// `SizeOfImage`.
    pub size_of_image: u32,
    /// `SizeOfHeaders`.
    pub size_of_headers: u32,
    /// `CheckSum` as stored.
    pub checksum: u32,
    /// File offset of the `CheckSum` field.
    pub checksum_offset: usize,
    /// `Subsystem`.
    pub subsystem: u16,
    /// `DllCharacteristics` ([`dll_characteristics`]).
    pub dll_characteristics: u16,
    /// Data directories (`NumberOfRvaAndSizes` entries, at most 16).
    pub data_directories: Vec<DataDirectory>,
    /// File offset of the first data-directory entry.
    pub data_directories_offset: usize,
    /// Section table.
    pub sections: Vec<Section>,
    /// File offset of the section table.
    pub section_table_offset: usize,
    /// Imports, in table order.
    pub imports: Vec<ImportedDll>,
    /// Exports (empty when there is no export directory).
    pub exports: Vec<Export>,
    /// Name in the export directory, if any.
    pub export_dll_name: Option<String>,
    /// Number of base-relocation entries (excluding `ABSOLUTE` padding entries).
    pub relocation_count: usize,
}

pub(crate) fn rd_u16(d: &[u8], off: usize, what: &'static str) -> Result<u16> {
    d.get(off..off + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(PeError::Truncated(what))
}

pub(crate) fn rd_u32(d: &[u8], off: usize, what: &'static str) -> Result<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(PeError::Truncated(what))
}

pub(crate) fn rd_u64(d: &[u8], off: usize, what: &'static str) -> Result<u64> {
    d.get(off..off + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or(PeError::Truncated(what))
}

impl<'a> Pe<'a> {
    /// Parse the headers, section table, imports, exports and relocations.
    pub fn parse(data: &'a [u8]) -> Result<Pe<'a>> {
        let coff = coff_header_offset(data)?;
        let pe_offset = coff - 4;
        let machine = rd_u16(data, coff, "COFF header")?;
        let nsections = rd_u16(data, coff + 2, "COFF header")? as usize;
        let timestamp = rd_u32(data, coff + 4, "COFF header")?;
        let opt_size = rd_u16(data, coff + 16, "COFF header")? as usize;
        let characteristics = rd_u16(data, coff + 18, "COFF header")?;
        let opt = coff + 20;
        let magic = rd_u16(data, opt, "optional header")?;
        let is_pe32_plus = match magic {
            0x10b => false,
            0x20b => true,
            _ => return Err(PeError::BadMagic("optional header magic")),
        };
        let oh = "optional header";
        let entry_point = rd_u32(data, opt + 16, oh)?;
        let image_base = if is_pe32_plus {
            rd_u64(data, opt + 24, oh)?
        } else {
            rd_u32(data, opt + 28, oh)? as u64
        };
        let section_alignment = rd_u32(data, opt + 32, oh)?;
        let file_alignment = rd_u32(data, opt + 36, oh)?;
        let os_version = (rd_u16(data, opt + 40, oh)?, rd_u16(data, opt + 42, oh)?);
        let subsystem_version = (rd_u16(data, opt + 48, oh)?, rd_u16(data, opt + 50, oh)?);
        let size_of_image = rd_u32(data, opt + 56, oh)?;
        let size_of_headers = rd_u32(data, opt + 60, oh)?;
        let checksum_offset = opt + 64;
        let checksum = rd_u32(data, checksum_offset, oh)?;
        let subsystem = rd_u16(data, opt + 68, oh)?;
        let dll_characteristics = rd_u16(data, opt + 70, oh)?;
        let (nrva_off, dd_off) = if is_pe32_plus {
            (opt + 108, opt + 112)
        } else {
            (opt + 92, opt + 96)
        };
        let nrva = (rd_u32(data, nrva_off, oh)? as usize).min(16);
        if dd_off + nrva * 8 > opt + opt_size {
            return Err(PeError::Malformed(
                "data directories run past SizeOfOptionalHeader".into(),
            ));
        }
        let mut data_directories = Vec::with_capacity(nrva);
        for i in 0..nrva {
            data_directories.push(DataDirectory {
                virtual_address: rd_u32(data, dd_off + i * 8, "data directory")?,
                size: rd_u32(data, dd_off + i * 8 + 4, "data directory")?,
            });
        }
        let section_table_offset = opt + opt_size;
        let mut sections = Vec::with_capacity(nsections);
        for i in 0..nsections {
            let s = section_table_offset + i * 40;
            let raw = data
                .get(s..s + 40)
                .ok_or(PeError::Truncated("section table"))?;
            let name_end = raw[..8].iter().position(|&b| b == 0).unwrap_or(8);
            sections.push(Section {
                name: String::from_utf8_lossy(&raw[..name_end]).into_owned(),
                virtual_size: rd_u32(raw, 8, "section")?,
                virtual_address: rd_u32(raw, 12, "section")?,
                size_of_raw_data: rd_u32(raw, 16, "section")?,
                pointer_to_raw_data: rd_u32(raw, 20, "section")?,
                characteristics: rd_u32(raw, 36, "section")?,
            });
        }
        let mut pe = Pe {
            data,
            pe_offset,
            machine,
            timestamp,
            characteristics,
            is_pe32_plus,
            entry_point,
            image_base,
            section_alignment,
            file_alignment,
            os_version,
            subsystem_version,
            size_of_image,
            size_of_headers,
            checksum,
            checksum_offset,
            subsystem,
            dll_characteristics,
            data_directories,
            data_directories_offset: dd_off,
            sections,
            section_table_offset,
            imports: Vec::new(),
            exports: Vec::new(),
            export_dll_name: None,
            relocation_count: 0,
        };
        pe.imports = pe.parse_imports()?;
        let (name, exports) = pe.parse_exports()?;
        pe.export_dll_name = name;
        pe.exports = exports;
        pe.relocation_count = pe.relocations()?.len();
        Ok(pe)
    }

    /// The file bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Data directory `index`, or an empty one if absent.
    pub fn directory(&self, index: usize) -> DataDirectory {
        self.data_directories
            .get(index)
            .copied()
            .unwrap_or_default()
    }

    /// File offset of data-directory entry `index` (8 bytes: address, size), if present.
    pub fn directory_entry_offset(&self, index: usize) -> Option<usize> {
        (index < self.data_directories.len()).then(|| self.data_directories_offset + index * 8)
    }

    /// The certificate table (`WIN_CERTIFICATE`s) as `(file offset, size)`, if any.
    pub fn security_directory(&self) -> Option<(usize, usize)> {
        let d = self.directory(dir::SECURITY);
        (d.virtual_address != 0 && d.size != 0)
            .then_some((d.virtual_address as usize, d.size as usize))
    }

    /// Human-readable machine name.
    pub fn machine_name(&self) -> &'static str {
        match self.machine {
            MACHINE_I386 => "x86",
            MACHINE_AMD64 => "x64",
            MACHINE_ARM64 => "arm64",
            _ => "unknown",
        }
    }

    /// Sections that are both writable and executable.
    pub fn write_execute_sections(&self) -> Vec<&Section> {
        self.sections
            .iter()
            .filter(|s| s.is_write_execute())
            .collect()
    }

    /// `RELOCS_STRIPPED` is set.
    pub fn relocs_stripped(&self) -> bool {
        self.characteristics & characteristics::RELOCS_STRIPPED != 0
    }

    /// A non-empty base-relocation directory exists.
    pub fn has_relocations(&self) -> bool {
        self.directory(dir::BASERELOC).size != 0
    }

    /// `DllCharacteristics` has all bits of `flags`.
    pub fn has_dll_characteristics(&self, flags: u16) -> bool {
        self.dll_characteristics & flags == flags
    }

    /// The checksum computed over the file (see [`checksum`]).
    pub fn computed_checksum(&self) -> u32 {
        checksum(self.data, self.checksum_offset)
    }

    /// The stored checksum equals the computed one (a zero stored checksum is invalid too).
    pub fn checksum_valid(&self) -> bool {
        self.checksum != 0 && self.checksum == self.computed_checksum()
    }

    /// Map an RVA to a file offset (headers or a section's raw data).
    pub fn rva_to_offset(&self, rva: u32) -> Option<usize> {
        if rva < self.size_of_headers {
            return Some(rva as usize);
        }
        self.sections.iter().find_map(|s| {
            let size = s.virtual_size.max(s.size_of_raw_data);
            if rva >= s.virtual_address && rva - s.virtual_address < size {
                let delta = rva - s.virtual_address;
                (delta < s.size_of_raw_data).then(|| (s.pointer_to_raw_data + delta) as usize)
            } else {
                None
            }
        })
    }

    /// The section containing `rva`.
    pub fn section_for_rva(&self, rva: u32) -> Option<&Section> {
        self.sections.iter().find(|s| {
            let size = s.virtual_size.max(s.size_of_raw_data);
            rva >= s.virtual_address && rva - s.virtual_address < size
        })
    }

    fn cstr_at_rva(&self, rva: u32, what: &'static str) -> Result<String> {
        let off = self.rva_to_offset(rva).ok_or(PeError::BadRva(what, rva))?;
        let rest = &self.data[off.min(self.data.len())..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(PeError::Truncated(what))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn u32_at_rva(&self, rva: u32, what: &'static str) -> Result<u32> {
        let off = self.rva_to_offset(rva).ok_or(PeError::BadRva(what, rva))?;
        rd_u32(self.data, off, what)
    }

    fn parse_imports(&self) -> Result<Vec<ImportedDll>> {
        let d = self.directory(dir::IMPORT);
        if d.virtual_address == 0 || d.size == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut desc = d.virtual_address;
        loop {
            let what = "import descriptor";
            let off = self
                .rva_to_offset(desc)
                .ok_or(PeError::BadRva(what, desc))?;
            let raw = self
                .data
                .get(off..off + 20)
                .ok_or(PeError::Truncated(what))?;
            if raw.iter().all(|&b| b == 0) {
                break;
            }
            let original_first_thunk = rd_u32(raw, 0, what)?;
            let name_rva = rd_u32(raw, 12, what)?;
            let first_thunk = rd_u32(raw, 16, what)?;
            let dll = self.cstr_at_rva(name_rva, "import DLL name")?;
            let mut thunk = if original_first_thunk != 0 {
                original_first_thunk
            } else {
                first_thunk
            };
            let mut functions = Vec::new();
            loop {
                let what = "import thunk";
                let toff = self
                    .rva_to_offset(thunk)
                    .ok_or(PeError::BadRva(what, thunk))?;
                let (value, by_ordinal) = if self.is_pe32_plus {
                    let v = rd_u64(self.data, toff, what)?;
                    (v, v & (1 << 63) != 0)
                } else {
                    let v = rd_u32(self.data, toff, what)? as u64;
                    (v, v & (1 << 31) != 0)
                };
                if value == 0 {
                    break;
                }
                let kind = if by_ordinal {
                    ImportKind::Ordinal(value as u16)
                } else {
                    let hn = (value & 0x7fff_ffff) as u32;
                    let hoff = self
                        .rva_to_offset(hn)
                        .ok_or(PeError::BadRva("import hint/name", hn))?;
                    let hint = rd_u16(self.data, hoff, "import hint/name")?;
                    let name = self.cstr_at_rva(hn + 2, "import name")?;
                    ImportKind::Name { name, hint }
                };
                functions.push(ImportedFunction { kind });
                thunk += if self.is_pe32_plus { 8 } else { 4 };
                if functions.len() > 100_000 {
                    return Err(PeError::Malformed("unterminated import thunk table".into()));
                }
            }
            out.push(ImportedDll {
                dll,
                functions,
                iat_rva: first_thunk,
            });
            desc += 20;
            if out.len() > 10_000 {
                return Err(PeError::Malformed("unterminated import directory".into()));
            }
        }
        Ok(out)
    }

    fn parse_exports(&self) -> Result<(Option<String>, Vec<Export>)> {
        let d = self.directory(dir::EXPORT);
        if d.virtual_address == 0 || d.size == 0 {
            return Ok((None, Vec::new()));
        }
        let base = d.virtual_address;
        let what = "export directory";
        let name_rva = self.u32_at_rva(base + 12, what)?;
        let ordinal_base = self.u32_at_rva(base + 16, what)?;
        let nfuncs = self.u32_at_rva(base + 20, what)?;
        let nnames = self.u32_at_rva(base + 24, what)?;
        let funcs = self.u32_at_rva(base + 28, what)?;
        let names = self.u32_at_rva(base + 32, what)?;
        let ords = self.u32_at_rva(base + 36, what)?;
        if nfuncs > 65536 || nnames > 65536 {
            return Err(PeError::Malformed("export directory too large".into()));
        }
        let dll_name = if name_rva != 0 {
            Some(self.cstr_at_rva(name_rva, "export DLL name")?)
        } else {
            None
        };
        let mut by_index: Vec<Option<String>> = vec![None; nfuncs as usize];
        for i in 0..nnames {
            let nrva = self.u32_at_rva(names + i * 4, "export name table")?;
            let ooff = self
                .rva_to_offset(ords + i * 2)
                .ok_or(PeError::BadRva("export ordinal table", ords + i * 2))?;
            let idx = rd_u16(self.data, ooff, "export ordinal table")? as usize;
            if let Some(slot) = by_index.get_mut(idx) {
                *slot = Some(self.cstr_at_rva(nrva, "export name")?);
            }
        }
        let mut out = Vec::new();
        for (i, name) in by_index.into_iter().enumerate() {
            let rva = self.u32_at_rva(funcs + i as u32 * 4, "export address table")?;
            if rva == 0 {
                continue;
            }
            let forwarder = if rva >= base && rva - base < d.size {
                Some(self.cstr_at_rva(rva, "export forwarder")?)
            } else {
                None
            };
            out.push(Export {
                name,
                ordinal: ordinal_base + i as u32,
                rva,
                forwarder,
            });
        }
        Ok((dll_name, out))
    }

    /// The base relocations (absolute-type padding entries left out).
    pub fn relocations(&self) -> Result<Vec<Relocation>> {
        let d = self.directory(dir::BASERELOC);
        if d.virtual_address == 0 || d.size == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut pos = 0u32;
        while pos + 8 <= d.size {
            let page = self.u32_at_rva(d.virtual_address + pos, "relocation block")?;
            let block_size = self.u32_at_rva(d.virtual_address + pos + 4, "relocation block")?;
            if block_size < 8 {
                return Err(PeError::Malformed(format!(
                    "relocation block at +{pos:#x} has size {block_size}"
                )));
            }
            let entries = (block_size - 8) / 2;
            for e in 0..entries {
                let rva = d.virtual_address + pos + 8 + e * 2;
                let off = self
                    .rva_to_offset(rva)
                    .ok_or(PeError::BadRva("relocation entry", rva))?;
                let v = rd_u16(self.data, off, "relocation entry")?;
                let kind = (v >> 12) as u8;
                if kind != 0 {
                    out.push(Relocation {
                        rva: page.wrapping_add(u32::from(v & 0xfff)),
                        kind,
                    });
                }
            }
            pos += block_size;
        }
        Ok(out)
    }
}

/// The PE checksum of `data` per the PE/COFF algorithm (`CheckSumMappedFile`): the one's-complement
/// style 16-bit sum of the whole file with carries folded back, skipping the 4-byte `CheckSum`
/// field at `checksum_offset`, a trailing odd byte taken as a word with a zero high byte, plus the
/// file length.
pub fn checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if i != checksum_offset && i != checksum_offset + 2 {
            sum += u16::from_le_bytes([data[i], data[i + 1]]) as u64;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        i += 2;
    }
    if data.len() % 2 == 1 {
        sum += data[data.len() - 1] as u64;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

/// Recompute the checksum of a PE image in place. Returns the new value.
pub fn update_checksum(data: &mut [u8]) -> Result<u32> {
    let off = Pe::parse(data)?.checksum_offset;
    let sum = checksum(data, off);
    data[off..off + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_needs_only_the_dos_header_and_pe_signature() {
        let mut d = vec![0u8; 0x100];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c] = 0x80;
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        d[0x84..0x86].copy_from_slice(&MACHINE_AMD64.to_le_bytes());
        assert_eq!(machine(&d).unwrap(), MACHINE_AMD64);
        assert!(Pe::parse(&d).is_err(), "no optional header: not a whole PE");
        d[0x80] = b'X';
        assert!(matches!(machine(&d), Err(PeError::BadMagic(_))));
        assert!(machine(b"MZ").is_err());
        d[0x3c] = 0xff;
        d[0x3d] = 0xff;
        d[0x3e] = 0xff;
        d[0x3f] = 0xff;
        assert!(machine(&d).is_err(), "e_lfanew past the end");
    }

    #[test]
    fn decorated_names() {
        for n in [
            "_Foo@16",
            "@Foo@8",
            "Foo@0",
            "?Foo@@YAXXZ",
            "@KfAcquireSpinLock@4",
        ] {
            assert!(is_decorated_name(n), "{n}");
        }
        for n in ["Foo", "_aulldiv", "StorPortInitialize", "a@b", "memcpy"] {
            assert!(!is_decorated_name(n), "{n}");
        }
    }

    #[test]
    fn checksum_known_values() {
        // Hand-computed: words 0x0201, 0x0403 (the field at offset 4 is skipped), odd byte 0x09,
        // plus length 9: 0x0201 + 0x0403 + 0x0009 + 9 = 0x0616.
        let data = [1u8, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 9];
        assert_eq!(checksum(&data, 4), 0x0616);
        // Carry folding: 0xffff + 0x0002 = 0x1_0001 → 0x0002, plus length 8 = 0x000a.
        let data = [0xff, 0xff, 2, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        assert_eq!(checksum(&data, 4), 0x000a);
    }
}
