//! Synthetic physical-memory images with planted loader structures, for tests.
//!
//! * [`PhysMem`] (alias [`PhysMemBuilder`]): a sparse physical address space (a `BTreeMap` of
//!   4 KiB pages). It implements [`rvblk_core::discovery::PhysicalMemory`] and records every
//!   read, so tests can assert that discovery never touched OS RAM. **Unbacked pages read as
//!   zero** by default (like a hole in a sparse `pmemsave` dump); [`PhysMem::set_unbacked`] and
//!   [`PhysMem::mark_unreadable`] make reads fail instead.
//! * Typed planters reproducing the structures of `docs/loaders.md` and the bytes
//!   observed in `docs/loaders-observed.md`: [`g4d`] (GRUB4DOS BIOS block and slots), [`memdisk`]
//!   (driver header, safe hook, mBFT, MDI, patch area), [`efi`] (grub4efi / a1ive pages),
//!   [`nfit`] (NFIT table builder), [`ventoy`] (os_param, iBFT wrapper, extent list),
//!   [`disk`] (a sparse backing disk for identification tests), [`content`]
//!   (ISO9660/UDF/MBR/GPT/BPB markers), plus IVT/BDA helpers here.
//! * [`scenarios`]: complete observed layouts (memory + OS RAM ranges + expected images).
//! * [`backed`]: disk-backed layouts (GRUB4DOS direct maps, Ventoy): the RAM dump, the USB
//!   stick holding the image and the image file, for the harness's disk-backed tests.
//! * [`PhysMem::write_dump`] / [`PhysMem::load_dump`]: a sparse raw file whose offsets are
//!   physical addresses (the format of QEMU's `pmemsave`).

pub mod backed;
pub mod content;
pub mod disk;
pub mod efi;
pub mod g4d;
pub mod memdisk;
pub mod nfit;
pub mod scenarios;
pub mod ventoy;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use rvblk_core::discovery::{PhysRange, PhysicalMemory, Unreadable};

pub use content::*;
pub use disk::SparseDisk;
pub use efi::Grub4EfiPage;
pub use g4d::{FragmentRecord, G4dLayout, G4dSlot, Grub4DosBlock};
pub use memdisk::{MemdiskBlock, MemdiskHook};
pub use nfit::{
    NfitBuilder, Spa, NFIT_GUID_PERSISTENT_MEMORY, NFIT_GUID_PERSISTENT_VIRTUAL_CD,
    NFIT_GUID_PERSISTENT_VIRTUAL_DISK, NFIT_GUID_VIRTUAL_CD, NFIT_GUID_VIRTUAL_DISK,
};
pub use ventoy::{VentoyLocation, VentoyParam};

/// Page size of the sparse store.
pub const PAGE: u64 = 4096;

/// What a read of a page that was never written returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Unbacked {
    /// Zeros (default).
    #[default]
    Zero,
    /// `Err(Unreadable)`.
    Unreadable,
}

/// One recorded `PhysicalMemory::read` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    pub phys: u64,
    pub len: u64,
}

impl ReadRecord {
    pub fn end(&self) -> u64 {
        self.phys.saturating_add(self.len)
    }
}

/// Sparse physical memory. See the crate docs.
#[derive(Debug, Default)]
pub struct PhysMem {
    pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    unbacked: Unbacked,
    unreadable: Vec<(u64, u64)>,
    reads: RefCell<Vec<ReadRecord>>,
    log_reads: bool,
}

/// The name the test plan uses for the planting side; it is the same type.
pub type PhysMemBuilder = PhysMem;

impl Clone for PhysMem {
    fn clone(&self) -> Self {
        PhysMem {
            pages: self.pages.clone(),
            unbacked: self.unbacked,
            unreadable: self.unreadable.clone(),
            reads: RefCell::new(Vec::new()),
            log_reads: self.log_reads,
        }
    }
}

impl PhysMem {
    /// Empty memory (all zero), read logging on.
    pub fn new() -> Self {
        PhysMem {
            log_reads: true,
            ..Default::default()
        }
    }

    pub fn set_unbacked(&mut self, policy: Unbacked) -> &mut Self {
        self.unbacked = policy;
        self
    }

    /// Make reads touching `[start, start + len)` fail.
    pub fn mark_unreadable(&mut self, start: u64, len: u64) -> &mut Self {
        self.unreadable.push((start, start.saturating_add(len)));
        self
    }

    /// Turn the read log on or off (off for big fuzz runs).
    pub fn set_read_logging(&mut self, on: bool) -> &mut Self {
        self.log_reads = on;
        self
    }

    /// Write bytes at a physical address (pages are created as needed).
    pub fn write(&mut self, phys: u64, bytes: &[u8]) -> &mut Self {
        let mut p = phys;
        let mut rest = bytes;
        while !rest.is_empty() {
            let page = p & !(PAGE - 1);
            let off = (p - page) as usize;
            let n = rest.len().min(PAGE as usize - off);
            let buf = self
                .pages
                .entry(page)
                .or_insert_with(|| Box::new([0u8; PAGE as usize]));
            buf[off..off + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            p = match p.checked_add(n as u64) {
                Some(v) => v,
                None => break,
            };
        }
        self
    }

    pub fn write_u8(&mut self, phys: u64, v: u8) -> &mut Self {
        self.write(phys, &[v])
    }

    pub fn write_u16(&mut self, phys: u64, v: u16) -> &mut Self {
        self.write(phys, &v.to_le_bytes())
    }

    pub fn write_u32(&mut self, phys: u64, v: u32) -> &mut Self {
        self.write(phys, &v.to_le_bytes())
    }

    pub fn write_u64(&mut self, phys: u64, v: u64) -> &mut Self {
        self.write(phys, &v.to_le_bytes())
    }

    /// `len` copies of `byte` at `phys`.
    pub fn fill(&mut self, phys: u64, len: u64, byte: u8) -> &mut Self {
        self.write(phys, &vec![byte; len as usize])
    }

    /// Bytes at `phys` regardless of policies (unbacked = 0); not logged.
    pub fn bytes(&self, phys: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.copy_out(phys, &mut out);
        out
    }

    pub fn u8_at(&self, phys: u64) -> u8 {
        self.bytes(phys, 1)[0]
    }

    pub fn u16_at(&self, phys: u64) -> u16 {
        u16::from_le_bytes(self.bytes(phys, 2).try_into().unwrap())
    }

    pub fn u32_at(&self, phys: u64) -> u32 {
        u32::from_le_bytes(self.bytes(phys, 4).try_into().unwrap())
    }

    fn copy_out(&self, phys: u64, out: &mut [u8]) -> bool {
        let mut all_backed = true;
        let mut p = phys;
        let mut done = 0;
        while done < out.len() {
            let page = p & !(PAGE - 1);
            let off = (p - page) as usize;
            let n = (out.len() - done).min(PAGE as usize - off);
            match self.pages.get(&page) {
                Some(buf) => out[done..done + n].copy_from_slice(&buf[off..off + n]),
                None => {
                    out[done..done + n].fill(0);
                    all_backed = false;
                }
            }
            done += n;
            p = match p.checked_add(n as u64) {
                Some(v) => v,
                None => break,
            };
        }
        all_backed
    }

    /// Physical page addresses that hold data, ascending.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.keys().copied()
    }

    /// Every read recorded so far.
    pub fn reads(&self) -> Vec<ReadRecord> {
        self.reads.borrow().clone()
    }

    pub fn clear_reads(&self) {
        self.reads.borrow_mut().clear();
    }

    /// Reads that intersect any of `ranges` and are not wholly inside low memory
    /// `[0, 0xA0000)` (which the kernel port serves from a snapshot).
    pub fn reads_touching(&self, ranges: &[PhysRange]) -> Vec<ReadRecord> {
        self.reads
            .borrow()
            .iter()
            .copied()
            .filter(|r| r.end() > 0xA_0000 && ranges.iter().any(|o| o.intersects(r.phys, r.end())))
            .collect()
    }

    /// Panic if discovery read OS RAM outside low memory (rule 23's "never map OS RAM").
    #[track_caller]
    pub fn assert_no_reads_in(&self, ranges: &[PhysRange]) {
        let bad = self.reads_touching(ranges);
        assert!(bad.is_empty(), "reads touched OS RAM: {bad:x?}");
    }

    // ---- IVT / BDA (docs/loaders.md §1) ----

    /// Set IVT entry `vector` to `seg:off`.
    pub fn plant_ivt(&mut self, vector: u8, seg: u16, off: u16) -> &mut Self {
        let a = u64::from(vector) * 4;
        self.write_u16(a, off).write_u16(a + 2, seg)
    }

    /// IVT[0x13] = `seg:off` (the INT 13h chain head).
    pub fn plant_ivt13(&mut self, seg: u16, off: u16) -> &mut Self {
        self.plant_ivt(0x13, seg, off)
    }

    /// BDA 0x413: base memory size in KiB.
    pub fn set_bda_basemem_kib(&mut self, kib: u16) -> &mut Self {
        self.write_u16(0x413, kib)
    }

    /// A pristine SeaBIOS-like low memory: IVT[0x13] = F000:E3FE, IVT[0x15] = F000:F859,
    /// BDA 0x413 = 639 KiB, 0x410 = 0x27, 0x475 = 1 (values observed in docs/loaders-observed.md).
    pub fn with_bios_defaults(&mut self) -> &mut Self {
        self.plant_ivt(0x13, 0xF000, 0xE3FE)
            .plant_ivt(0x15, 0xF000, 0xF859)
            .set_bda_basemem_kib(639)
            .write_u8(0x410, 0x27)
            .write_u8(0x475, 1)
    }

    // ---- dumps ----

    /// Write a sparse raw dump: file offset = physical address, only backed pages written.
    /// The file length is the end of the highest backed page (at least `min_len`).
    pub fn write_dump(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.write_dump_len(path, 0)
    }

    /// [`PhysMem::write_dump`] with a minimum file length (e.g. the guest RAM size).
    pub fn write_dump_len(&self, path: impl AsRef<Path>, min_len: u64) -> io::Result<()> {
        let mut f = File::create(path)?;
        let end = self
            .pages
            .keys()
            .next_back()
            .map_or(0, |p| p + PAGE)
            .max(min_len);
        f.set_len(end)?;
        for (page, buf) in &self.pages {
            if buf.iter().all(|&b| b == 0) {
                continue;
            }
            f.seek(SeekFrom::Start(*page))?;
            f.write_all(&buf[..])?;
        }
        f.flush()
    }

    /// Load a raw dump (file offset = physical address). All-zero pages are not stored.
    pub fn load_dump(path: impl AsRef<Path>) -> io::Result<PhysMem> {
        let mut f = File::open(path)?;
        let mut mem = PhysMem::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        loop {
            let mut got = 0;
            while got < buf.len() {
                let n = f.read(&mut buf[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf[got..].fill(0);
            for (i, page) in buf[..got.div_ceil(PAGE as usize) * PAGE as usize]
                .chunks_exact(PAGE as usize)
                .enumerate()
            {
                let nonzero = page
                    .chunks_exact(16)
                    .any(|c| u128::from_ne_bytes(c.try_into().unwrap()) != 0);
                if nonzero {
                    mem.write(pos + i as u64 * PAGE, page);
                }
            }
            pos += got as u64;
            if got < buf.len() {
                break;
            }
        }
        Ok(mem)
    }
}

impl PhysicalMemory for PhysMem {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        if self.log_reads {
            self.reads.borrow_mut().push(ReadRecord {
                phys,
                len: buf.len() as u64,
            });
        }
        let end = phys.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if self.unreadable.iter().any(|&(s, e)| phys < e && s < end) {
            return Err(Unreadable);
        }
        let backed = self.copy_out(phys, buf);
        if !backed && self.unbacked == Unbacked::Unreadable {
            return Err(Unreadable);
        }
        Ok(())
    }
}

/// Build OS RAM ranges the way Windows reports them from an E820 map: type-1 ranges, shrunk
/// inward to whole pages, page 0 excluded. Input: `(start, length, type)`.
pub fn os_ram_from_e820(e820: &[(u64, u64, u32)]) -> Vec<PhysRange> {
    let mut out = Vec::new();
    for &(start, len, ty) in e820 {
        if ty != 1 {
            continue;
        }
        let s = start.div_ceil(PAGE).max(1) * PAGE;
        let e = (start + len) / PAGE * PAGE;
        if e > s {
            out.push(PhysRange {
                start: s,
                length: e - s,
            });
        }
    }
    out
}
