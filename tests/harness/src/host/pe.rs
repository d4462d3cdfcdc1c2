//! PE32/PE32+ loader: maps a kernel image into this process, applies base relocations, binds
//! every import to a harness implementation (failing loudly on any it lacks) and then applies
//! the section protections. The headers, sections, imports and relocations are read by
//! `rvblk-pe`, the project's one PE reader; this module only loads.

use crate::checks::guard::{self, PAGE};
use rvblk_pe::{section_flags, Pe, REL_BASED_DIR64, REL_BASED_HIGHLOW};
use std::fmt;

pub use rvblk_pe::{MACHINE_AMD64, MACHINE_ARM64, MACHINE_I386};

#[derive(Debug)]
pub struct PeError(pub String);

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeError {}

impl From<rvblk_pe::PeError> for PeError {
    fn from(e: rvblk_pe::PeError) -> Self {
        PeError(e.to_string())
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, PeError> {
    Err(PeError(s.into()))
}

#[derive(Clone, Debug)]
pub struct Import {
    pub dll: String,
    pub name: String,
    /// RVA of the IAT slot.
    pub iat_rva: u32,
}

/// Reads only the machine field (to pick the host process).
pub fn machine_of(bytes: &[u8]) -> Result<u16, PeError> {
    Ok(rvblk_pe::machine(bytes)?)
}

/// A mapped, relocated, bound image. Unmapped on drop.
pub struct LoadedImage {
    size_of_image: u32,
    entry_rva: u32,
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
        self.size_of_image as usize
    }

    pub fn entry(&self) -> usize {
        self.base() + self.entry_rva as usize
    }

    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.base() && addr < self.base() + self.size()
    }
}

impl Drop for LoadedImage {
    fn drop(&mut self) {
        guard::unregister_guards(self.base as usize, self.base as usize + self.total);
        guard::unmap(self.base, self.total);
    }
}

/// Lists the imports of a PE file without loading it; every import must be by name.
pub fn list_imports(bytes: &[u8]) -> Result<Vec<Import>, PeError> {
    imports(&Pe::parse(bytes)?)
}

fn imports(pe: &Pe<'_>) -> Result<Vec<Import>, PeError> {
    let step = if pe.is_pe32_plus { 8 } else { 4 };
    let mut out = Vec::new();
    for dll in &pe.imports {
        for (i, f) in dll.functions.iter().enumerate() {
            let Some(name) = f.name() else {
                return err(format!(
                    "{}: import by ordinal {f} is not supported",
                    dll.dll
                ));
            };
            out.push(Import {
                dll: dll.dll.clone(),
                name: name.to_string(),
                iat_rva: dll.iat_rva + (i * step) as u32,
            });
        }
    }
    Ok(out)
}

/// The image as the loader lays it out: headers, then each section's raw data at its RVA.
fn layout_image(bytes: &[u8], pe: &Pe<'_>) -> Result<Vec<u8>, PeError> {
    let mut img = vec![0u8; pe.size_of_image as usize];
    let hdr = (pe.size_of_headers as usize)
        .min(bytes.len())
        .min(img.len());
    img[..hdr].copy_from_slice(&bytes[..hdr]);
    for s in &pe.sections {
        let n = if s.virtual_size != 0 {
            s.size_of_raw_data.min(s.virtual_size)
        } else {
            s.size_of_raw_data
        } as usize;
        let (raw, rva) = (s.pointer_to_raw_data as usize, s.virtual_address as usize);
        let src = bytes
            .get(raw..raw + n)
            .ok_or_else(|| PeError(format!("section {} raw data outside the file", s.name)))?;
        let dst = img
            .get_mut(rva..rva + n)
            .ok_or_else(|| PeError(format!("section {} outside SizeOfImage", s.name)))?;
        dst.copy_from_slice(src);
    }
    Ok(img)
}

/// Adds `delta` to every relocated field of the staged image.
fn relocate(img: &mut [u8], pe: &Pe<'_>, delta: u64) -> Result<(), PeError> {
    for r in pe.relocations()? {
        let at = r.rva as usize;
        let width = match r.kind {
            REL_BASED_HIGHLOW if pe.machine != MACHINE_ARM64 => 4,
            REL_BASED_DIR64 => 8,
            // ARM64 images carry only DIR64 (ADRP/ADD and branches are PC-relative); the types
            // in between are ARM32/MIPS/RISC-V instruction fix-ups (`docs/arm64.md` §5).
            t if pe.machine == MACHINE_ARM64 => {
                return err(format!(
                    "relocation type {t} at RVA {at:#x} in an ARM64 image (only DIR64 is valid)"
                ))
            }
            t => return err(format!("unsupported relocation type {t} at RVA {at:#x}")),
        };
        let field = img
            .get_mut(at..at + width)
            .ok_or_else(|| PeError(format!("relocation at RVA {at:#x} outside the image")))?;
        if width == 4 {
            let v =
                u32::from_le_bytes(field.try_into().expect("4 bytes")).wrapping_add(delta as u32);
            field.copy_from_slice(&v.to_le_bytes());
        } else {
            let v = u64::from_le_bytes(field.try_into().expect("8 bytes")).wrapping_add(delta);
            field.copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(())
}

/// Loads `bytes` for execution in this process. `resolve(dll, name)` returns the address of
/// the harness implementation. All missing imports are reported at once, before anything runs.
pub fn load(
    bytes: &[u8],
    resolve: &dyn Fn(&str, &str) -> Option<usize>,
) -> Result<LoadedImage, PeError> {
    let pe = Pe::parse(bytes)?;
    let host = if cfg!(target_arch = "x86_64") {
        MACHINE_AMD64
    } else if cfg!(target_arch = "aarch64") {
        MACHINE_ARM64
    } else {
        MACHINE_I386
    };
    if pe.machine != host {
        return err(format!(
            "image machine {:#x} does not match this host process ({host:#x})",
            pe.machine
        ));
    }
    if !(pe.section_alignment as usize).is_multiple_of(PAGE) {
        return err(format!(
            "SectionAlignment {:#x} is not a multiple of the page size (HVCI requires it)",
            pe.section_alignment
        ));
    }
    let mut img = layout_image(bytes, &pe)?;
    let imports = imports(&pe)?;
    let size = guard::round_up(pe.size_of_image as usize, PAGE);
    let total = size + 2 * PAGE;
    let base = guard::reserve(total);
    // SAFETY: inside the reservation.
    let image = unsafe { base.add(PAGE) };

    // Base relocations (applied to the staging copy). An image without them is fine only if
    // it has no absolute addresses (RIP-relative x64).
    if let Err(e) = relocate(&mut img, &pe, (image as u64).wrapping_sub(pe.image_base)) {
        guard::unmap(base, total);
        return Err(e);
    }

    // Imports.
    let mut missing = Vec::new();
    for imp in &imports {
        match resolve(&imp.dll.to_ascii_lowercase(), &imp.name) {
            Some(addr) => {
                let at = imp.iat_rva as usize;
                if pe.is_pe32_plus {
                    img[at..at + 8].copy_from_slice(&(addr as u64).to_le_bytes());
                } else {
                    img[at..at + 4].copy_from_slice(&(addr as u32).to_le_bytes());
                }
            }
            None => missing.push(format!("{}!{}", imp.dll, imp.name)),
        }
    }
    if !missing.is_empty() {
        guard::unmap(base, total);
        return err(format!(
            "the driver imports functions the harness does not implement: {}",
            missing.join(", ")
        ));
    }

    guard::protect(image, size, libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: `image` has `size >= img.len()` writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(img.as_ptr(), image, img.len()) };
    // Protections: headers read-only, each section per its characteristics.
    let hdr = guard::round_up(pe.size_of_headers as usize, PAGE).min(size);
    guard::protect(image, hdr, libc::PROT_READ);
    for s in &pe.sections {
        let start = s.virtual_address as usize & !(PAGE - 1);
        let end = s.virtual_address as usize + s.virtual_size.max(s.size_of_raw_data) as usize;
        let len = guard::round_up(end, PAGE) - start;
        let c = s.characteristics;
        let mut prot = 0;
        if c & section_flags::MEM_READ != 0 {
            prot |= libc::PROT_READ;
        }
        if c & section_flags::MEM_WRITE != 0 {
            prot |= libc::PROT_WRITE;
        }
        if c & section_flags::MEM_EXECUTE != 0 {
            prot |= libc::PROT_EXEC | libc::PROT_READ;
        }
        if start + len <= size {
            // SAFETY: inside the image mapping.
            guard::protect(unsafe { image.add(start) }, len, prot);
        }
    }
    guard::register_guard(base as usize, PAGE, "guard page before the driver image");
    guard::register_guard(
        image as usize + size,
        PAGE,
        "guard page after the driver image",
    );
    Ok(LoadedImage {
        size_of_image: pe.size_of_image,
        entry_rva: pe.entry_point,
        base,
        total,
        imports,
    })
}
