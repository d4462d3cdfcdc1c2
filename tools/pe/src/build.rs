//! A small writer of valid PE images, for tests (fixtures for the checks in this crate and for the
//! signer). It lays out user sections, then optional generated `.idata` (imports), `.edata`
//! (exports) and `.reloc` sections, and writes a correct checksum.

use crate::{
    characteristics as ch, dll_characteristics as dc, section_flags as sf, update_checksum,
    MACHINE_AMD64, MACHINE_ARM64, SUBSYSTEM_NATIVE,
};

/// How a test image imports a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSpec {
    /// By name (hint 0).
    Name(String),
    /// By ordinal.
    Ordinal(u16),
}

impl From<&str> for ImportSpec {
    fn from(s: &str) -> Self {
        ImportSpec::Name(s.to_string())
    }
}

/// A location inside a user section: `(section index, offset)`.
pub type SectionRef = (usize, u32);

#[derive(Debug, Clone)]
struct BSection {
    name: [u8; 8],
    characteristics: u32,
    data: Vec<u8>,
    virtual_size: u32,
}

/// Sections laid out one after another at section-aligned RVAs.
struct Placement {
    sections: Vec<BSection>,
    /// RVA of each section, by index.
    rvas: Vec<u32>,
    /// Where the next section goes.
    next_rva: u32,
    alignment: u32,
}

impl Placement {
    /// Appends `s` at [`Placement::next_rva`] (where a generated section's contents assumed it).
    fn place(&mut self, s: BSection) {
        self.rvas.push(self.next_rva);
        self.next_rva += align(s.virtual_size, self.alignment);
        self.sections.push(s);
    }
}

/// Builder of PE images. Defaults: a native-subsystem x64 driver-like image with NX_COMPAT and
/// DYNAMIC_BASE, section alignment 0x1000, file alignment 0x200, subsystem version 6.1.
#[derive(Debug, Clone)]
pub struct PeBuilder {
    /// COFF machine.
    pub machine: u16,
    /// Subsystem.
    pub subsystem: u16,
    /// Subsystem version.
    pub subsystem_version: (u16, u16),
    /// DllCharacteristics.
    pub dll_characteristics: u16,
    /// Extra COFF characteristics (EXECUTABLE_IMAGE and the machine-width bit are always set).
    pub characteristics: u16,
    /// Image base.
    pub image_base: u64,
    /// Section alignment.
    pub section_alignment: u32,
    /// File alignment.
    pub file_alignment: u32,
    /// Write a correct checksum (otherwise 0).
    pub write_checksum: bool,
    /// Entry point.
    pub entry: Option<SectionRef>,
    sections: Vec<BSection>,
    imports: Vec<(String, Vec<ImportSpec>)>,
    exports: Option<(String, Vec<(String, SectionRef)>)>,
    relocations: Vec<SectionRef>,
}

fn align(v: u32, a: u32) -> u32 {
    v.div_ceil(a) * a
}

impl PeBuilder {
    /// A new builder for `machine`.
    pub fn new(machine: u16) -> Self {
        PeBuilder {
            machine,
            subsystem: SUBSYSTEM_NATIVE,
            subsystem_version: (6, 1),
            dll_characteristics: dc::NX_COMPAT | dc::DYNAMIC_BASE,
            characteristics: 0,
            image_base: if machine == MACHINE_AMD64 || machine == MACHINE_ARM64 {
                0x1_4000_0000
            } else {
                0x1_0000
            },
            section_alignment: 0x1000,
            file_alignment: 0x200,
            write_checksum: true,
            entry: None,
            sections: Vec::new(),
            imports: Vec::new(),
            exports: None,
            relocations: Vec::new(),
        }
    }

    fn is64(&self) -> bool {
        self.machine == MACHINE_AMD64 || self.machine == MACHINE_ARM64
    }

    /// Add a section; returns its index.
    pub fn section(&mut self, name: &str, characteristics: u32, data: &[u8]) -> usize {
        let mut n = [0u8; 8];
        n[..name.len().min(8)].copy_from_slice(&name.as_bytes()[..name.len().min(8)]);
        self.sections.push(BSection {
            name: n,
            characteristics,
            data: data.to_vec(),
            virtual_size: data.len().max(1) as u32,
        });
        self.sections.len() - 1
    }

    /// Add a `.text` section (CODE|EXECUTE|READ); returns its index.
    pub fn text(&mut self, code: &[u8]) -> usize {
        self.section(".text", sf::CNT_CODE | sf::MEM_EXECUTE | sf::MEM_READ, code)
    }

    /// Import `functions` from `dll`.
    pub fn import<I, S>(&mut self, dll: &str, functions: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<ImportSpec>,
    {
        self.imports.push((
            dll.to_string(),
            functions.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Export `name` at `at`.
    pub fn export(&mut self, dll_name: &str, name: &str, at: SectionRef) -> &mut Self {
        let e = self
            .exports
            .get_or_insert_with(|| (dll_name.to_string(), Vec::new()));
        e.1.push((name.to_string(), at));
        self
    }

    /// Add a base relocation (HIGHLOW on 32-bit, DIR64 on 64-bit) at `at`.
    pub fn relocation(&mut self, at: SectionRef) -> &mut Self {
        self.relocations.push(at);
        self
    }

    /// Write the image.
    pub fn build(&self) -> Vec<u8> {
        let is64 = self.is64();
        let ptr = if is64 { 8u32 } else { 4 };
        let opt_size: u32 = if is64 { 240 } else { 224 };
        let nsect = self.sections.len()
            + usize::from(!self.imports.is_empty())
            + usize::from(self.exports.is_some())
            + usize::from(!self.relocations.is_empty());
        let headers_len = 0x80 + 4 + 20 + opt_size + 40 * nsect as u32;
        let size_of_headers = align(headers_len, self.file_alignment);

        // Pass 1: RVAs of user sections.
        let mut layout = Placement {
            sections: Vec::new(),
            rvas: Vec::new(),
            next_rva: align(size_of_headers, self.section_alignment),
            alignment: self.section_alignment,
        };
        for s in &self.sections {
            layout.place(s.clone());
        }
        let resolve = |r: SectionRef, rvas: &[u32]| rvas[r.0] + r.1;
        let mut dirs = [(0u32, 0u32); 16];

        if !self.imports.is_empty() {
            let base = layout.next_rva;
            let ndll = self.imports.len() as u32;
            let desc_len = (ndll + 1) * 20;
            let mut thunk_tables = Vec::new(); // (ilt_off, iat_off)
            let mut off = desc_len;
            for (_, f) in &self.imports {
                let len = (f.len() as u32 + 1) * ptr;
                thunk_tables.push((off, off + len));
                off += 2 * len;
            }
            let mut buf = vec![0u8; off as usize];
            let mut iat_start = u32::MAX;
            let mut iat_end = 0;
            for (i, (dll, funcs)) in self.imports.iter().enumerate() {
                let (ilt, iat) = thunk_tables[i];
                iat_start = iat_start.min(iat);
                iat_end = iat_end.max(iat + (funcs.len() as u32 + 1) * ptr);
                let name_off = buf.len() as u32;
                buf.extend_from_slice(dll.as_bytes());
                buf.push(0);
                if buf.len() % 2 == 1 {
                    buf.push(0);
                }
                let d = i * 20;
                buf[d..d + 4].copy_from_slice(&(base + ilt).to_le_bytes());
                buf[d + 12..d + 16].copy_from_slice(&(base + name_off).to_le_bytes());
                buf[d + 16..d + 20].copy_from_slice(&(base + iat).to_le_bytes());
                for (j, f) in funcs.iter().enumerate() {
                    let value: u64 = match f {
                        ImportSpec::Ordinal(o) => {
                            (*o as u64) | if is64 { 1 << 63 } else { 1 << 31 }
                        }
                        ImportSpec::Name(n) => {
                            let hn = buf.len() as u32;
                            buf.extend_from_slice(&[0, 0]);
                            buf.extend_from_slice(n.as_bytes());
                            buf.push(0);
                            if buf.len() % 2 == 1 {
                                buf.push(0);
                            }
                            (base + hn) as u64
                        }
                    };
                    for table in [ilt, iat] {
                        let at = (table + j as u32 * ptr) as usize;
                        buf[at..at + ptr as usize]
                            .copy_from_slice(&value.to_le_bytes()[..ptr as usize]);
                    }
                }
            }
            dirs[crate::dir::IMPORT] = (base, desc_len);
            dirs[crate::dir::IAT] = (base + iat_start, iat_end - iat_start);
            let vs = buf.len() as u32;
            layout.place(BSection {
                name: *b".idata\0\0",
                characteristics: sf::CNT_INITIALIZED_DATA | sf::MEM_READ | sf::MEM_WRITE,
                data: buf,
                virtual_size: vs,
            });
        }

        if let Some((dll_name, exports)) = &self.exports {
            let base = layout.next_rva;
            let mut sorted: Vec<_> = exports.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let n = sorted.len() as u32;
            let eat = 40;
            let names = eat + 4 * n;
            let ords = names + 4 * n;
            let mut buf = vec![0u8; (ords + 2 * n) as usize];
            let name_rva = base + buf.len() as u32;
            buf.extend_from_slice(dll_name.as_bytes());
            buf.push(0);
            let put = |buf: &mut Vec<u8>, at: u32, v: u32| {
                buf[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes())
            };
            put(&mut buf, 12, name_rva);
            put(&mut buf, 16, 1);
            put(&mut buf, 20, n);
            put(&mut buf, 24, n);
            put(&mut buf, 28, base + eat);
            put(&mut buf, 32, base + names);
            put(&mut buf, 36, base + ords);
            for (i, (name, at)) in sorted.iter().enumerate() {
                let i = i as u32;
                let target = resolve(*at, &layout.rvas);
                put(&mut buf, eat + 4 * i, target);
                let nrva = base + buf.len() as u32;
                buf.extend_from_slice(name.as_bytes());
                buf.push(0);
                put(&mut buf, names + 4 * i, nrva);
                let o = (ords + 2 * i) as usize;
                buf[o..o + 2].copy_from_slice(&(i as u16).to_le_bytes());
            }
            let vs = buf.len() as u32;
            dirs[crate::dir::EXPORT] = (base, vs);
            layout.place(BSection {
                name: *b".edata\0\0",
                characteristics: sf::CNT_INITIALIZED_DATA | sf::MEM_READ,
                data: buf,
                virtual_size: vs,
            });
        }

        if !self.relocations.is_empty() {
            let base = layout.next_rva;
            let mut targets: Vec<u32> = self
                .relocations
                .iter()
                .map(|r| resolve(*r, &layout.rvas))
                .collect();
            targets.sort_unstable();
            let mut buf = Vec::new();
            let mut i = 0;
            while i < targets.len() {
                let page = targets[i] & !0xfff;
                let mut entries: Vec<u16> = Vec::new();
                while i < targets.len() && targets[i] & !0xfff == page {
                    let ty: u16 = if is64 { 10 } else { 3 };
                    entries.push((ty << 12) | (targets[i] & 0xfff) as u16);
                    i += 1;
                }
                if entries.len() % 2 == 1 {
                    entries.push(0);
                }
                buf.extend_from_slice(&page.to_le_bytes());
                buf.extend_from_slice(&(8 + 2 * entries.len() as u32).to_le_bytes());
                for e in entries {
                    buf.extend_from_slice(&e.to_le_bytes());
                }
            }
            let vs = buf.len() as u32;
            dirs[crate::dir::BASERELOC] = (base, vs);
            layout.place(BSection {
                name: *b".reloc\0\0",
                characteristics: sf::CNT_INITIALIZED_DATA | sf::MEM_READ | sf::MEM_DISCARDABLE,
                data: buf,
                virtual_size: vs,
            });
        }
        let size_of_image = layout.next_rva;
        let Placement { sections, rvas, .. } = layout;

        // Pass 2: file layout.
        let mut out = vec![0u8; size_of_headers as usize];
        let mut raw_ptrs = Vec::new();
        for s in &sections {
            let raw_size = align(s.data.len() as u32, self.file_alignment);
            raw_ptrs.push((out.len() as u32, raw_size));
            out.extend_from_slice(&s.data);
            out.resize(out.len() + (raw_size as usize - s.data.len()), 0);
        }

        let w16 = |out: &mut Vec<u8>, at: u32, v: u16| {
            out[at as usize..at as usize + 2].copy_from_slice(&v.to_le_bytes())
        };
        let w32 = |out: &mut Vec<u8>, at: u32, v: u32| {
            out[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes())
        };
        out[0..2].copy_from_slice(b"MZ");
        w32(&mut out, 0x3c, 0x80);
        out[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        w16(&mut out, coff, self.machine);
        w16(&mut out, coff + 2, nsect as u16);
        w32(&mut out, coff + 4, 0x5f5e_1000);
        w16(&mut out, coff + 16, opt_size as u16);
        let width = if is64 {
            ch::LARGE_ADDRESS_AWARE
        } else {
            ch::MACHINE_32BIT
        };
        w16(
            &mut out,
            coff + 18,
            ch::EXECUTABLE_IMAGE | width | self.characteristics,
        );
        let opt = coff + 20;
        w16(&mut out, opt, if is64 { 0x20b } else { 0x10b });
        out[opt as usize + 2] = 14; // linker version
        let code_size: u32 = sections
            .iter()
            .zip(&raw_ptrs)
            .filter(|(s, _)| s.characteristics & sf::CNT_CODE != 0)
            .map(|(_, r)| r.1)
            .sum();
        let idata_size: u32 = sections
            .iter()
            .zip(&raw_ptrs)
            .filter(|(s, _)| s.characteristics & sf::CNT_INITIALIZED_DATA != 0)
            .map(|(_, r)| r.1)
            .sum();
        w32(&mut out, opt + 4, code_size);
        w32(&mut out, opt + 8, idata_size);
        let entry = self.entry.map(|e| resolve(e, &rvas)).unwrap_or(0);
        w32(&mut out, opt + 16, entry);
        let base_of_code = sections
            .iter()
            .zip(&rvas)
            .find(|(s, _)| s.characteristics & sf::CNT_CODE != 0)
            .map(|(_, r)| *r)
            .unwrap_or(0);
        w32(&mut out, opt + 20, base_of_code);
        let tail = opt + 72;
        if is64 {
            out[opt as usize + 24..opt as usize + 32]
                .copy_from_slice(&self.image_base.to_le_bytes());
        } else {
            w32(&mut out, opt + 28, self.image_base as u32);
        }
        w32(&mut out, opt + 32, self.section_alignment);
        w32(&mut out, opt + 36, self.file_alignment);
        w16(&mut out, opt + 40, self.subsystem_version.0);
        w16(&mut out, opt + 42, self.subsystem_version.1);
        w16(&mut out, opt + 48, self.subsystem_version.0);
        w16(&mut out, opt + 50, self.subsystem_version.1);
        w32(&mut out, opt + 56, size_of_image);
        w32(&mut out, opt + 60, size_of_headers);
        w16(&mut out, opt + 68, self.subsystem);
        w16(&mut out, opt + 70, self.dll_characteristics);
        // Stack/heap reserve and commit.
        let (nrva_off, dd_off) = if is64 {
            for (i, v) in [0x40000u64, 0x1000, 0x100000, 0x1000].iter().enumerate() {
                let at = (tail + i as u32 * 8) as usize;
                out[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            (opt + 108, opt + 112)
        } else {
            for (i, v) in [0x40000u32, 0x1000, 0x100000, 0x1000].iter().enumerate() {
                w32(&mut out, tail + i as u32 * 4, *v);
            }
            (opt + 92, opt + 96)
        };
        w32(&mut out, nrva_off, 16);
        for (i, (a, s)) in dirs.iter().enumerate() {
            w32(&mut out, dd_off + i as u32 * 8, *a);
            w32(&mut out, dd_off + i as u32 * 8 + 4, *s);
        }
        let st = opt + opt_size;
        for (i, s) in sections.iter().enumerate() {
            let h = st + i as u32 * 40;
            out[h as usize..h as usize + 8].copy_from_slice(&s.name);
            w32(&mut out, h + 8, s.virtual_size);
            w32(&mut out, h + 12, rvas[i]);
            w32(&mut out, h + 16, raw_ptrs[i].1);
            w32(&mut out, h + 20, raw_ptrs[i].0);
            w32(&mut out, h + 36, s.characteristics);
        }
        if self.write_checksum {
            update_checksum(&mut out).expect("builder writes a parseable image");
        }
        out
    }
}

/// Compiles `src` (a `#![no_std] #![no_main]` Rust file) into a native-subsystem kernel-style PE
/// for `target` with rustc and rust-lld, in `dir`, and returns the image bytes. A real linker's
/// output for tests that must not rely on [`PeBuilder`]'s own idea of the format.
pub fn compile_native_driver(
    dir: &std::path::Path,
    target: &str,
    src: &str,
) -> Result<Vec<u8>, String> {
    let rs = dir.join(format!("drv-{target}.rs"));
    let out = dir.join(format!("drv-{target}.sys"));
    std::fs::write(&rs, src).map_err(|e| format!("{}: {e}", rs.display()))?;
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--target",
            target,
            "-O",
            "-C",
            "panic=abort",
        ])
        .args(["-C", "linker=rust-lld", "--crate-type", "bin"])
        .args(["-C", "link-arg=/SUBSYSTEM:NATIVE", "-C", "link-arg=/DRIVER"])
        .args([
            "-C",
            "link-arg=/ENTRY:DriverEntry",
            "-C",
            "link-arg=/RELEASE",
        ])
        .args(["-C", "link-arg=/NODEFAULTLIB", "-C", "link-arg=/DEBUG:NONE"])
        .arg(&rs)
        .arg("-o")
        .arg(&out)
        .status()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    if !status.success() {
        return Err(format!(
            "rustc failed for {target} (is the rustup target installed?)"
        ));
    }
    std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pe, MACHINE_I386};

    #[test]
    fn roundtrip_x86() {
        let mut b = PeBuilder::new(MACHINE_I386);
        let t = b.text(&[0x90, 0xc3, 0, 0, 0, 0]);
        b.entry = Some((t, 0));
        b.import("ntoskrnl.exe", ["DbgPrint", "memcpy"])
            .import(
                "HAL.dll",
                [ImportSpec::Ordinal(7), "@KfAcquireSpinLock@4".into()],
            )
            .export("test.sys", "Foo", (t, 1))
            .relocation((t, 2));
        let img = b.build();
        let pe = Pe::parse(&img).unwrap();
        assert_eq!(pe.machine, MACHINE_I386);
        assert!(!pe.is_pe32_plus);
        assert!(pe.checksum_valid());
        assert_eq!(pe.imports.len(), 2);
        assert_eq!(pe.imports[0].dll, "ntoskrnl.exe");
        assert_eq!(pe.imports[0].functions[1].name(), Some("memcpy"));
        assert!(pe.imports[1].functions[0].is_ordinal());
        assert!(pe.imports[1].functions[1].is_decorated());
        assert_eq!(pe.exports.len(), 1);
        assert_eq!(pe.exports[0].name.as_deref(), Some("Foo"));
        assert_eq!(pe.exports[0].rva, 0x1001);
        assert_eq!(pe.export_dll_name.as_deref(), Some("test.sys"));
        assert_eq!(pe.relocation_count, 1);
        assert!(pe.has_relocations());
        assert_eq!(pe.entry_point, 0x1000);
    }
}
