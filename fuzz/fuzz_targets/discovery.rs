#![no_main]
//! Fuzz target: arbitrary physical memory through discovery (owner: discovery).
//!
//! Memory starts either empty or as one of the real loader layouts of
//! `rvblk_memimage::scenarios` (GRUB4DOS, MEMDISK, grub4efi, NFIT; the mutator then starts from
//! structures discovery accepts), then gets IVT[0x13]/BDA values (empty start only), arbitrary
//! low-memory patches, a few arbitrary high pages, extra OS RAM ranges, optional NFIT bytes and
//! optional Ventoy UEFI variable bytes. Asserts: no panic, every exposed image satisfies the
//! invariants (whole blocks, ≥ 1 block, ≥ 1 MiB, no overlap with OS RAM or another image), every
//! disk-backed image has sane extents (non-empty, disjoint, no overflow, covering its length),
//! and no read above low memory touched OS RAM.

use std::cell::RefCell;
use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rvblk_core::discovery::{
    discover_with, Discovered, DiscoveryInput, DiscoveryLog, Event, Firmware, Handoff, PhysRange,
    PhysicalMemory, Unreadable,
};

const PAGE: u64 = 4096;
const LOW_END: u64 = 0xA0000;

/// A real loader layout, flattened once: its non-zero pages and platform inputs.
struct Base {
    pages: Vec<(u64, Vec<u8>)>,
    os_ram: Vec<PhysRange>,
    nfit: Option<Vec<u8>>,
    firmware: Firmware,
    max_phys_end: u64,
    total_ram: u64,
}

thread_local! {
    static BASES: Vec<Base> = rvblk_memimage::scenarios::all()
        .into_iter()
        .map(|s| Base {
            pages: s.mem.pages().map(|p| (p, s.mem.bytes(p, PAGE as usize))).collect(),
            os_ram: s.os_ram.clone(),
            nfit: s.nfit.clone(),
            firmware: s.firmware,
            max_phys_end: s.max_phys_end,
            total_ram: s.total_ram_bytes,
        })
        .collect();
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Which layout to start from (`BASES`), or an empty machine.
    base: u8,
    ivt13: u32,
    bda_kib: u16,
    low_patches: Vec<(u32, Vec<u8>)>,
    high_pages: Vec<(u32, Vec<u8>)>,
    os_ram: Vec<(u64, u64)>,
    nfit: Option<Vec<u8>>,
    firmware: u8,
    max_phys_end: u64,
    total_ram: u64,
    ventoy_os_param: Option<Vec<u8>>,
    ventoy_ram_disk: Option<Vec<u8>>,
}

/// Physical memory as the fuzz input describes it. Low memory is a flat 640 KiB array and the
/// storage is reused across inputs (only the bytes written by the last input are cleared), so
/// an input costs what discovery reads, not 640 KiB of zeroing or a map lookup per byte
/// (`docs/fuzzing.md`).
struct Mem {
    s: Storage,
}

#[derive(Default)]
struct Storage {
    low: Vec<u8>,
    /// Low-memory ranges written by this input: cleared when the storage is reused.
    dirty: Vec<(usize, usize)>,
    high: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    reads: RefCell<Vec<(u64, u64)>>,
}

thread_local! {
    static STORAGE: RefCell<Storage> = RefCell::default();
}

impl Mem {
    /// All-zero memory, reusing the previous input's storage.
    fn take() -> Mem {
        let mut s = STORAGE.with(|st| std::mem::take(&mut *st.borrow_mut()));
        if s.low.is_empty() {
            s.low = vec![0; LOW_END as usize];
        }
        for (start, end) in s.dirty.drain(..) {
            s.low[start..end].fill(0);
        }
        s.high.clear();
        s.reads.get_mut().clear();
        Mem { s }
    }

    fn write(&mut self, phys: u64, bytes: &[u8]) {
        let s = &mut self.s;
        let end = phys + bytes.len() as u64;
        if end <= LOW_END {
            let (start, end) = (phys as usize, end as usize);
            s.low[start..end].copy_from_slice(bytes);
            s.dirty.push((start, end));
            return;
        }
        // Page by page (a map lookup per page, not per byte).
        let mut p = phys;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = ((PAGE - p % PAGE) as usize).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            // LOW_END is page-aligned, so a chunk is wholly below or above it.
            if p < LOW_END {
                s.low[p as usize..p as usize + n].copy_from_slice(chunk);
                s.dirty.push((p as usize, p as usize + n));
            } else {
                let off = (p % PAGE) as usize;
                s.high
                    .entry(p & !(PAGE - 1))
                    .or_insert_with(|| Box::new([0; PAGE as usize]))[off..off + n]
                    .copy_from_slice(chunk);
            }
            p += n as u64;
            rest = tail;
        }
    }

    fn reads(&self) -> std::cell::Ref<'_, Vec<(u64, u64)>> {
        self.s.reads.borrow()
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        let s = std::mem::take(&mut self.s);
        // `try_with`: during thread teardown the storage is simply freed.
        let _ = STORAGE.try_with(|st| *st.borrow_mut() = s);
    }
}

impl PhysicalMemory for Mem {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.s.reads.borrow_mut().push((phys, buf.len() as u64));
        let end = phys.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if end <= LOW_END {
            buf.copy_from_slice(&self.s.low[phys as usize..end as usize]);
            return Ok(());
        }
        // Page by page: low memory, the ROM hole (zeros) or a high page.
        let mut p = phys;
        for chunk in buf.chunks_mut(PAGE as usize) {
            let mut done = 0;
            while done < chunk.len() {
                let in_page = ((PAGE - p % PAGE) as usize).min(chunk.len() - done);
                let dst = &mut chunk[done..done + in_page];
                if p < LOW_END {
                    let n = in_page.min((LOW_END - p) as usize);
                    dst[..n].copy_from_slice(&self.s.low[p as usize..p as usize + n]);
                    dst[n..].fill(0);
                } else if let Some(pg) = self.s.high.get(&(p & !(PAGE - 1))) {
                    let off = (p % PAGE) as usize;
                    dst.copy_from_slice(&pg[off..off + in_page]);
                } else {
                    dst.fill(0);
                }
                done += in_page;
                p += in_page as u64;
            }
        }
        Ok(())
    }
}

/// Formats every event (exercising `Display`) into a sink that keeps nothing.
struct Sink;

struct Discard;

impl std::fmt::Write for Discard {
    fn write_str(&mut self, _: &str) -> std::fmt::Result {
        Ok(())
    }
}

impl DiscoveryLog for Sink {
    fn event(&mut self, event: &Event<'_>) {
        let _ = std::fmt::Write::write_fmt(&mut Discard, format_args!("{event}"));
    }
}

fuzz_target!(|input: Input| BASES.with(|bases| {
    let base = bases.get(usize::from(input.base) % (bases.len() + 1));
    let mut mem = Mem::take();
    if let Some(b) = base {
        for (phys, page) in &b.pages {
            mem.write(*phys, page);
        }
    } else {
        mem.write(0x4C, &input.ivt13.to_le_bytes());
        mem.write(0x413, &input.bda_kib.to_le_bytes());
    }
    for (off, bytes) in input.low_patches.iter().take(16) {
        let off = u64::from(*off) % 0xA0000;
        let n = bytes.len().min(2048).min((0xA0000 - off) as usize);
        mem.write(off, &bytes[..n]);
    }
    for (page, bytes) in input.high_pages.iter().take(4) {
        // Pages anywhere in the first 16 TiB, above 1 MiB.
        let base = 0x10_0000 + u64::from(*page) * PAGE;
        mem.write(base, &bytes[..bytes.len().min(PAGE as usize * 2)]);
    }
    let os_ram: Vec<PhysRange> = base
        .map_or(&[][..], |b| &b.os_ram[..])
        .iter()
        .copied()
        .chain(
            input
                .os_ram
                .iter()
                .take(8)
                .map(|&(s, l)| PhysRange::new(s, l)),
        )
        .collect();
    let firmware = match (input.firmware % 4, base) {
        (0, _) => Firmware::Bios,
        (1, _) => Firmware::Uefi,
        (3, Some(b)) => b.firmware,
        _ => Firmware::Unknown,
    };
    // 0 keeps the layout's value (or means "unknown" on an empty machine).
    let or_base = |v: u64, f: fn(&Base) -> u64| match (v, base) {
        (0, Some(b)) => f(b),
        _ => v,
    };
    let di = DiscoveryInput {
        os_ram: &os_ram,
        nfit: input
            .nfit
            .as_deref()
            .or(base.and_then(|b| b.nfit.as_deref())),
        firmware,
        max_phys_end: or_base(input.max_phys_end, |b| b.max_phys_end),
        total_ram_bytes: or_base(input.total_ram, |b| b.total_ram),
    };
    let handoff = Handoff {
        ventoy_os_param: input.ventoy_os_param.as_deref(),
        ventoy_ram_disk: input.ventoy_ram_disk.as_deref(),
    };
    let mut d = Discovered::default();
    discover_with(&mem, &di, &handoff, &mut Sink, &mut d);
    for img in &d.disk_backed {
        let ss = u64::from(img.sector_size);
        let bs = u64::from(img.block_size());
        assert!(img.length >= bs && img.length % bs == 0, "{img:?}");
        assert!(!img.extents.is_empty(), "{img:?}");
        let mut total = 0u64;
        for (i, e) in img.extents.iter().enumerate() {
            assert!(e.sectors > 0, "{img:?}");
            let end = e.start.checked_add(e.sectors).expect("extent end overflows");
            end.checked_mul(ss).expect("extent byte end overflows");
            for o in &img.extents[..i] {
                assert!(end <= o.start || o.start + o.sectors <= e.start, "{img:?}");
            }
            total = total.checked_add(e.sectors * ss).expect("total overflows");
        }
        assert!(total >= img.length, "{img:?}");
    }
    for (i, f) in d.images.iter().enumerate() {
        let img = f.image;
        let bs = u64::from(img.block_size());
        assert!(img.length >= bs && img.length % bs == 0, "{img:?}");
        let end = img
            .phys_base
            .checked_add(img.length)
            .expect("end overflows");
        assert!(img.phys_base >= 0x10_0000, "{img:?}");
        assert!(
            !os_ram.iter().any(|r| r.intersects(img.phys_base, end)),
            "{img:?}"
        );
        for g in &d.images[..i] {
            assert!(
                end <= g.image.phys_base || g.image.phys_end() <= img.phys_base,
                "{img:?} {g:?}"
            );
        }
    }
    for &(phys, len) in mem.reads().iter() {
        let end = phys.saturating_add(len);
        if end > 0xA0000 {
            assert!(
                !os_ram.iter().any(|r| r.intersects(phys, end)),
                "read {phys:#x}+{len:#x} in OS RAM"
            );
        }
    }
}));
