//! PE32/PE32+ loader: maps a kernel image into this process, applies base relocations, binds
//! every import to a harness implementation (failing loudly on any it lacks) and then applies
//! the section protections.

use crate::mem::{self, PAGE};
use std::fmt;

pub const MACHINE_I386: u16 = 0x14c;
pub const MACHINE_AMD64: u16 = 0x8664;
pub const MACHINE_ARM64: u16 = 0xaa64;

#[derive(Debug)]
pub struct PeError(pub String);

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeError {}

fn err<T>(s: impl Into<String>) -> Result<T, PeError> {
    Err(PeError(s.into()))
}

fn rd16(b: &[u8], o: usize) -> Result<u16, PeError> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| PeError(format!("truncated PE at offset {o:#x}")))
}

fn rd32(b: &[u8], o: usize) -> Result<u32, PeError> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| PeError(format!("truncated PE at offset {o:#x}")))
}

fn rd64(b: &[u8], o: usize) -> Result<u64, PeError> {
    Ok(rd32(b, o)? as u64 | (rd32(b, o + 4)? as u64) << 32)
}

#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub rva: u32,
    pub vsize: u32,
    pub raw_off: u32,
    pub raw_size: u32,
    pub characteristics: u32,
}

#[derive(Clone, Debug)]
pub struct Import {
    pub dll: String,
    pub name: String,
    /// RVA of the IAT slot.
    pub iat_rva: u32,
}

/// Parsed headers of a PE file.
#[derive(Clone, Debug)]
pub struct PeInfo {
    pub machine: u16,
    pub pe32plus: bool,
    pub image_base: u64,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub entry_rva: u32,
    pub section_alignment: u32,
    pub sections: Vec<Section>,
    pub import_dir: (u32, u32),
    pub reloc_dir: (u32, u32),
    pub subsystem: u16,
}

/// Reads only the machine field (to pick the host process).
pub fn machine_of(bytes: &[u8]) -> Result<u16, PeError> {
    if bytes.get(0..2) != Some(b"MZ") {
        return err("not a PE file (no MZ)");
    }
    let pe = rd32(bytes, 0x3c)? as usize;
    if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
        return err("not a PE file (no PE signature)");
    }
    rd16(bytes, pe + 4)
}

pub fn parse(bytes: &[u8]) -> Result<PeInfo, PeError> {
    let machine = machine_of(bytes)?;
    let pe = rd32(bytes, 0x3c)? as usize;
    let nsec = rd16(bytes, pe + 6)? as usize;
    let opt_size = rd16(bytes, pe + 20)? as usize;
    let opt = pe + 24;
    let magic = rd16(bytes, opt)?;
    let pe32plus = match magic {
        0x10b => false,
        0x20b => true,
        m => return err(format!("unknown optional header magic {m:#x}")),
    };
    let entry_rva = rd32(bytes, opt + 16)?;
    let image_base = if pe32plus {
        rd64(bytes, opt + 24)?
    } else {
        rd32(bytes, opt + 28)? as u64
    };
    let section_alignment = rd32(bytes, opt + 32)?;
    let size_of_image = rd32(bytes, opt + 56)?;
    let size_of_headers = rd32(bytes, opt + 60)?;
    let subsystem = rd16(bytes, opt + 68)?;
    let (ndir_off, dir_off) = if pe32plus { (108, 112) } else { (92, 96) };
    let ndirs = rd32(bytes, opt + ndir_off)? as usize;
    let dir = |i: usize| -> Result<(u32, u32), PeError> {
        if i >= ndirs {
            return Ok((0, 0));
        }
        Ok((
            rd32(bytes, opt + dir_off + i * 8)?,
            rd32(bytes, opt + dir_off + i * 8 + 4)?,
        ))
    };
    let import_dir = dir(1)?;
    let reloc_dir = dir(5)?;
    let mut sections = Vec::new();
    let sec0 = opt + opt_size;
    for i in 0..nsec {
        let s = sec0 + i * 40;
        let raw_name = bytes
            .get(s..s + 8)
            .ok_or_else(|| PeError("truncated section table".into()))?;
        let name = String::from_utf8_lossy(raw_name)
            .trim_end_matches('\0')
            .to_string();
        sections.push(Section {
            name,
            vsize: rd32(bytes, s + 8)?,
            rva: rd32(bytes, s + 12)?,
            raw_size: rd32(bytes, s + 16)?,
            raw_off: rd32(bytes, s + 20)?,
            characteristics: rd32(bytes, s + 36)?,
        });
    }
    Ok(PeInfo {
        machine,
        pe32plus,
        image_base,
        size_of_image,
        size_of_headers,
        entry_rva,
        section_alignment,
        sections,
        import_dir,
        reloc_dir,
        subsystem,
    })
}

/// A mapped, relocated, bound image. Unmapped on drop.
pub struct LoadedImage {
    pub info: PeInfo,
    base: *mut u8,
    total: usize,
    pub imports: Vec<Import>,
}

// SAFETY: the image memory is owned by this value; the driver code synchronises itself.
unsafe impl Send for LoadedImage {}
// SAFETY: as above.
unsafe impl Sync for LoadedImage {}

impl LoadedImage {
    pub fn base(&self) -> usize {
        self.base as usize + PAGE
    }

    pub fn size(&self) -> usize {
        self.info.size_of_image as usize
    }

    pub fn entry(&self) -> usize {
        self.base() + self.info.entry_rva as usize
    }

    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.base() && addr < self.base() + self.size()
    }
}

impl Drop for LoadedImage {
    fn drop(&mut self) {
        mem::unregister_guards(self.base as usize, self.base as usize + self.total);
        mem::unmap(self.base, self.total);
    }
}

fn read_cstr(img: &[u8], rva: usize) -> Result<String, PeError> {
    let tail = img
        .get(rva..)
        .ok_or_else(|| PeError(format!("string RVA {rva:#x} outside image")))?;
    let end = tail
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| PeError("unterminated string".into()))?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// Lists the imports of a PE file without loading it.
pub fn list_imports(bytes: &[u8]) -> Result<Vec<Import>, PeError> {
    let info = parse(bytes)?;
    let img = layout_image(bytes, &info)?;
    walk_imports(&img, &info)
}

fn layout_image(bytes: &[u8], info: &PeInfo) -> Result<Vec<u8>, PeError> {
    let mut img = vec![0u8; info.size_of_image as usize];
    let hdr = (info.size_of_headers as usize)
        .min(bytes.len())
        .min(img.len());
    img[..hdr].copy_from_slice(&bytes[..hdr]);
    for s in &info.sections {
        let n = (s.raw_size.min(s.vsize.max(s.raw_size))) as usize;
        let n = if s.vsize != 0 {
            n.min(s.vsize as usize)
        } else {
            n
        };
        let src = bytes
            .get(s.raw_off as usize..s.raw_off as usize + n)
            .ok_or_else(|| PeError(format!("section {} raw data outside the file", s.name)))?;
        let dst = img
            .get_mut(s.rva as usize..s.rva as usize + n)
            .ok_or_else(|| PeError(format!("section {} outside SizeOfImage", s.name)))?;
        dst.copy_from_slice(src);
    }
    Ok(img)
}

fn walk_imports(img: &[u8], info: &PeInfo) -> Result<Vec<Import>, PeError> {
    let mut out = Vec::new();
    let (rva, size) = info.import_dir;
    if rva == 0 || size == 0 {
        return Ok(out);
    }
    let mut d = rva as usize;
    loop {
        let ilt = rd32(img, d)?;
        let name_rva = rd32(img, d + 12)?;
        let iat = rd32(img, d + 16)?;
        if ilt == 0 && name_rva == 0 && iat == 0 {
            break;
        }
        let dll = read_cstr(img, name_rva as usize)?;
        let lookup = if ilt != 0 { ilt } else { iat } as usize;
        let step = if info.pe32plus { 8 } else { 4 };
        let mut i = 0;
        loop {
            let (entry, ordinal) = if info.pe32plus {
                let v = rd64(img, lookup + i * step)?;
                (v & 0x7fff_ffff, v >> 63 == 1)
            } else {
                let v = rd32(img, lookup + i * step)? as u64;
                (v & 0x7fff_ffff, v >> 31 == 1)
            };
            if entry == 0 && !ordinal {
                break;
            }
            if ordinal {
                return err(format!("{dll}: import by ordinal {entry} is not supported"));
            }
            let name = read_cstr(img, entry as usize + 2)?;
            out.push(Import {
                dll: dll.clone(),
                name,
                iat_rva: iat + (i * step) as u32,
            });
            i += 1;
        }
        d += 20;
    }
    Ok(out)
}

/// Loads `bytes` for execution in this process. `resolve(dll, name)` returns the address of
/// the harness implementation. All missing imports are reported at once, before anything runs.
pub fn load(
    bytes: &[u8],
    resolve: &dyn Fn(&str, &str) -> Option<usize>,
) -> Result<LoadedImage, PeError> {
    let info = parse(bytes)?;
    let host = if cfg!(target_arch = "x86_64") {
        MACHINE_AMD64
    } else if cfg!(target_arch = "aarch64") {
        MACHINE_ARM64
    } else {
        MACHINE_I386
    };
    if info.machine != host {
        return err(format!(
            "image machine {:#x} does not match this host process ({host:#x})",
            info.machine
        ));
    }
    if !(info.section_alignment as usize).is_multiple_of(PAGE) {
        return err(format!(
            "SectionAlignment {:#x} is not a multiple of the page size (HVCI requires it)",
            info.section_alignment
        ));
    }
    let mut img = layout_image(bytes, &info)?;
    let imports = walk_imports(&img, &info)?;
    let size = mem::round_up(info.size_of_image as usize, PAGE);
    let total = size + 2 * PAGE;
    let base = mem::reserve(total);
    // SAFETY: inside the reservation.
    let image = unsafe { base.add(PAGE) };
    let actual = image as u64;

    // Base relocations (applied to the staging copy).
    let delta = actual.wrapping_sub(info.image_base);
    let (rrva, rsize) = info.reloc_dir;
    if delta != 0 && (rrva == 0 || rsize == 0) && info.image_base != 0 {
        // No relocations: fine only if the image has no absolute addresses (RIP-relative x64).
    }
    let mut off = rrva as usize;
    let end = rrva as usize + rsize as usize;
    while rrva != 0 && off + 8 <= end {
        let page = rd32(&img, off)? as usize;
        let block = rd32(&img, off + 4)? as usize;
        if block < 8 {
            mem::unmap(base, total);
            return err("malformed relocation block");
        }
        for k in 0..(block - 8) / 2 {
            let e = rd16(&img, off + 8 + k * 2)?;
            let t = e >> 12;
            let at = page + (e & 0xfff) as usize;
            match t {
                0 => {}
                3 => {
                    let v = rd32(&img, at)?.wrapping_add(delta as u32);
                    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                10 => {
                    let v = rd64(&img, at)?.wrapping_add(delta);
                    img[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                // ARM64 images carry only DIR64 (ADRP/ADD and branches are PC-relative); the
                // types in between are ARM32/MIPS/RISC-V instruction fix-ups (`docs/arm64.md` §5).
                _ if info.machine == MACHINE_ARM64 => {
                    mem::unmap(base, total);
                    return err(format!(
                        "relocation type {t} at RVA {at:#x} in an ARM64 image (only DIR64 is valid)"
                    ));
                }
                _ => {
                    mem::unmap(base, total);
                    return err(format!("unsupported relocation type {t} at RVA {at:#x}"));
                }
            }
        }
        off += block;
    }

    // Imports.
    let mut missing = Vec::new();
    for imp in &imports {
        match resolve(&imp.dll.to_ascii_lowercase(), &imp.name) {
            Some(addr) => {
                let at = imp.iat_rva as usize;
                if info.pe32plus {
                    img[at..at + 8].copy_from_slice(&(addr as u64).to_le_bytes());
                } else {
                    img[at..at + 4].copy_from_slice(&(addr as u32).to_le_bytes());
                }
            }
            None => missing.push(format!("{}!{}", imp.dll, imp.name)),
        }
    }
    if !missing.is_empty() {
        mem::unmap(base, total);
        return err(format!(
            "the driver imports functions the harness does not implement: {}",
            missing.join(", ")
        ));
    }

    mem::protect(image, size, libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: `image` has `size >= img.len()` writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(img.as_ptr(), image, img.len()) };
    // Protections: headers read-only, each section per its characteristics.
    let hdr = mem::round_up(info.size_of_headers as usize, PAGE).min(size);
    mem::protect(image, hdr, libc::PROT_READ);
    for s in &info.sections {
        let start = s.rva as usize & !(PAGE - 1);
        let len = mem::round_up(s.rva as usize + s.vsize.max(s.raw_size) as usize, PAGE) - start;
        let c = s.characteristics;
        let mut prot = 0;
        if c & 0x4000_0000 != 0 {
            prot |= libc::PROT_READ;
        }
        if c & 0x8000_0000 != 0 {
            prot |= libc::PROT_WRITE;
        }
        if c & 0x2000_0000 != 0 {
            prot |= libc::PROT_EXEC | libc::PROT_READ;
        }
        if start + len <= size {
            // SAFETY: inside the image mapping.
            mem::protect(unsafe { image.add(start) }, len, prot);
        }
    }
    mem::register_guard(base as usize, PAGE, "guard page before the driver image");
    mem::register_guard(
        image as usize + size,
        PAGE,
        "guard page after the driver image",
    );
    Ok(LoadedImage {
        info,
        base,
        total,
        imports,
    })
}
