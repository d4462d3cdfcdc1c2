//! RAM for RAM disks (`docs/harness-runtime.md` §3): MmAllocatePagesForMdlEx with a real MDL
//! header (ByteCount etc. at the contract's offsets, a PFN array), MmMapLockedPagesSpecifyCache
//! / MmUnmapLockedPages, MmFreePagesFromMdl and ExFreePool of the MDL, within the emulated RAM
//! (`--ram-limit-mib`). The pages are host memory that is inaccessible while unmapped, so a
//! driver using a mapping after MmUnmapLockedPages faults with a named guard region.
//!
//! Verifier: an MDL freed while mapped, ExFreePool of an MDL whose pages were not freed, an
//! unknown or twice-mapped MDL, an unmap with the wrong address, and at removal every MDL still
//! mapped, holding pages or not freed.

use super::{Kernel, APC_LEVEL, DISPATCH_LEVEL};
use crate::checks::guard::{self, GuardedBuf, PAGE};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const P: usize = std::mem::size_of::<usize>();
/// MDL field offsets (RUNTIME.md): x86 / x64.
pub const MDL_SIZE: usize = if P == 8 { 8 } else { 4 };
pub const MDL_FLAGS: usize = if P == 8 { 10 } else { 6 };
pub const MDL_MAPPED_VA: usize = if P == 8 { 24 } else { 12 };
pub const MDL_START_VA: usize = if P == 8 { 32 } else { 16 };
pub const MDL_BYTE_COUNT: usize = if P == 8 { 40 } else { 20 };
pub const MDL_BYTE_OFFSET: usize = if P == 8 { 44 } else { 24 };
pub const MDL_PFNS: usize = if P == 8 { 48 } else { 28 };

pub const MDL_MAPPED_TO_SYSTEM_VA: u16 = 0x0001;
pub const MDL_PAGES_LOCKED: u16 = 0x0002;
pub const MM_DONT_ZERO_ALLOCATION: u32 = 0x1;
pub const MM_ALLOCATE_FULLY_REQUIRED: u32 = 0x4;

struct Mdl {
    /// The MDL structure (read-only to the driver).
    header: GuardedBuf,
    header_len: usize,
    /// The pages; inaccessible while unmapped; None once MmFreePagesFromMdl freed them.
    pages: Option<GuardedBuf>,
    bytes: usize,
    mapped: Option<usize>,
}

#[derive(Default)]
pub(crate) struct MdlState {
    mdls: Mutex<HashMap<usize, Mdl>>,
    /// Bytes of pages allocated now and at most.
    pub(crate) live: AtomicU64,
    pub(crate) peak: AtomicU64,
    next_pfn: AtomicU64,
}

impl Mdl {
    fn put<T: Copy>(&self, off: usize, v: T) {
        let p = self.header.tail(self.header_len);
        guard::protect(
            self.header.start(),
            self.header.cap(),
            libc::PROT_READ | libc::PROT_WRITE,
        );
        let at = p.wrapping_add(off) as *mut T;
        // SAFETY: `off + size_of::<T>()` lies inside the header (callers use the MDL offsets).
        unsafe { at.write_unaligned(v) };
        guard::protect(self.header.start(), self.header.cap(), libc::PROT_READ);
    }

    fn flags(&self) -> u16 {
        let at = self.header.tail(self.header_len).wrapping_add(MDL_FLAGS) as *const u16;
        // SAFETY: MdlFlags lies inside the (readable) header.
        unsafe { at.read_unaligned() }
    }
}

impl Kernel {
    fn mdl_table(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Mdl>> {
        self.mdls.mdls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of MDL pages the driver holds now, and at most so far.
    pub fn mdl_bytes(&self) -> (u64, u64) {
        (
            self.mdls.live.load(Ordering::SeqCst),
            self.mdls.peak.load(Ordering::SeqCst),
        )
    }

    /// Whether `p` is an MDL from MmAllocatePagesForMdlEx (ExFreePool is routed here).
    pub(crate) fn is_mdl(&self, p: usize) -> bool {
        self.mdl_table().contains_key(&p)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn allocate_pages_for_mdl(
        &self,
        low: i64,
        high: i64,
        skip: i64,
        bytes: usize,
        cache: u32,
        flags: u32,
    ) -> usize {
        let api = "MmAllocatePagesForMdlEx";
        self.check_irql(api, APC_LEVEL);
        let _ = (low, high, skip);
        if cache != 1 {
            self.log_line(format!(
                "[harness] {api}: CacheType {cache} (the contract: MmCached 1)"
            ));
        }
        if flags & !(MM_DONT_ZERO_ALLOCATION | MM_ALLOCATE_FULLY_REQUIRED | 0x2 | 0x20) != 0 {
            self.log_line(format!("[harness] {api}: Flags {flags:#x}"));
        }
        // Pages are pool-like for fault injection (the `faults` sweep fails them too).
        let n = self.pool_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_pool_at.load(Ordering::SeqCst) == n {
            self.log_line(format!("[harness] fault injection: {api} #{n} fails"));
            return 0;
        }
        let want = bytes.div_ceil(PAGE) * PAGE;
        if want == 0 {
            return 0;
        }
        let limit = self.cfg.machine.ram_limit_mib << 20;
        let live = self.mdls.live.load(Ordering::SeqCst);
        let free = limit.saturating_sub(live) as usize / PAGE * PAGE;
        let give = if want <= free {
            want
        } else if flags & MM_ALLOCATE_FULLY_REQUIRED != 0 || free == 0 {
            self.log_line(format!(
                "[harness] {api}({bytes:#x}): the emulated RAM ({} MiB) has {free:#x} bytes left: NULL",
                limit >> 20
            ));
            return 0;
        } else {
            // As on Windows: what can be had, fewer bytes than asked (ByteCount says so).
            self.log_line(format!(
                "[harness] {api}({bytes:#x}): only {free:#x} bytes left of the emulated RAM: a short MDL"
            ));
            free
        };
        let npages = give / PAGE;
        let header_len = MDL_PFNS + npages * P;
        let header = GuardedBuf::new(
            header_len,
            "an MDL (MmAllocatePagesForMdlEx; read-only to the driver)",
        );
        let pages = GuardedBuf::new(give, "the pages of an MDL (MmAllocatePagesForMdlEx)");
        if flags & MM_DONT_ZERO_ALLOCATION != 0 {
            // Not zeroed: what a previous owner left.
            // SAFETY: `give` writable bytes.
            unsafe { std::ptr::write_bytes(pages.start(), 0xC7, give) };
        }
        guard::protect(pages.start(), pages.cap(), libc::PROT_NONE);
        guard::register_guard(
            pages.start() as usize,
            pages.cap(),
            "the pages of an MDL that is not mapped (MmMapLockedPagesSpecifyCache first, none after MmUnmapLockedPages)",
        );
        let mut h = vec![0u8; header_len];
        let size = header_len as u16;
        h[MDL_SIZE..MDL_SIZE + 2].copy_from_slice(&size.to_le_bytes());
        h[MDL_FLAGS..MDL_FLAGS + 2].copy_from_slice(&MDL_PAGES_LOCKED.to_le_bytes());
        h[MDL_BYTE_COUNT..MDL_BYTE_COUNT + 4].copy_from_slice(&(give as u32).to_le_bytes());
        // Page frame numbers above any emulated physical memory.
        let first = self
            .mdls
            .next_pfn
            .fetch_add(npages as u64, Ordering::SeqCst)
            + (1 << 27);
        for i in 0..npages {
            let pfn = (first + i as u64).to_le_bytes();
            h[MDL_PFNS + i * P..MDL_PFNS + (i + 1) * P].copy_from_slice(&pfn[..P]);
        }
        let p = header.tail(header_len);
        // SAFETY: `header_len` writable bytes at `p`.
        unsafe { std::ptr::copy_nonoverlapping(h.as_ptr(), p, header_len) };
        guard::protect(header.start(), header.cap(), libc::PROT_READ);
        let live = self.mdls.live.fetch_add(give as u64, Ordering::SeqCst) + give as u64;
        self.mdls.peak.fetch_max(live, Ordering::SeqCst);
        self.mdl_table().insert(
            p as usize,
            Mdl {
                header,
                header_len,
                pages: Some(pages),
                bytes: give,
                mapped: None,
            },
        );
        p as usize
    }

    pub(crate) fn map_locked_pages(
        &self,
        mdl: usize,
        mode: u8,
        cache: u32,
        base: usize,
        bugcheck: u32,
        priority: u32,
    ) -> usize {
        let api = "MmMapLockedPagesSpecifyCache";
        self.check_irql(api, DISPATCH_LEVEL);
        if mode != 0 {
            self.fail(format!(
                "{api}(AccessMode {mode}): a system mapping is KernelMode (0); UserMode maps into the current process"
            ));
            return 0;
        }
        if base != 0 || cache != 1 || bugcheck != 0 {
            self.log_line(format!(
                "[harness] {api}: CacheType {cache}, RequestedAddress {base:#x}, BugCheckOnFailure {bugcheck} (the contract: 1, NULL, 0)"
            ));
        }
        let _ = priority;
        let n = self.map_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_map_at.load(Ordering::SeqCst) == n {
            self.log_line(format!("[harness] fault injection: {api} #{n} fails"));
            return 0;
        }
        let mut t = self.mdl_table();
        let Some(m) = t.get_mut(&mdl) else {
            drop(t);
            self.fail(format!(
                "{api}({mdl:#x}): not an MDL from MmAllocatePagesForMdlEx (or already freed)"
            ));
            return 0;
        };
        if m.mapped.is_some() {
            drop(t);
            self.fail(format!(
                "{api}({mdl:#x}): the MDL is already mapped [bug check 0x41 MUST_SUCCEED_POOL_EMPTY / 0xC4]"
            ));
            return 0;
        }
        let Some(pages) = &m.pages else {
            drop(t);
            self.fail(format!(
                "{api}({mdl:#x}): its pages were freed (MmFreePagesFromMdl)"
            ));
            return 0;
        };
        let va = pages.start() as usize;
        guard::unregister_guards(va, va + pages.cap());
        guard::protect(
            pages.start(),
            pages.cap(),
            libc::PROT_READ | libc::PROT_WRITE,
        );
        m.mapped = Some(va);
        m.put(MDL_MAPPED_VA, va);
        m.put(MDL_FLAGS, m.flags() | MDL_MAPPED_TO_SYSTEM_VA);
        va
    }

    pub(crate) fn unmap_locked_pages(&self, va: usize, mdl: usize) {
        let api = "MmUnmapLockedPages";
        self.check_irql(api, DISPATCH_LEVEL);
        let mut t = self.mdl_table();
        let Some(m) = t.get_mut(&mdl) else {
            drop(t);
            self.fail(format!("{api}({va:#x}, {mdl:#x}): not a live MDL"));
            return;
        };
        if m.mapped != Some(va) {
            let was = m.mapped;
            drop(t);
            self.fail(format!(
                "{api}({va:#x}, {mdl:#x}): the MDL is {} [bug check 0xC4]",
                was.map_or("not mapped".to_string(), |v| format!("mapped at {v:#x}"))
            ));
            return;
        }
        if let Some(pages) = &m.pages {
            guard::protect(pages.start(), pages.cap(), libc::PROT_NONE);
            guard::register_guard(
                va,
                pages.cap(),
                "the pages of an MDL after MmUnmapLockedPages (use after unmap)",
            );
        }
        m.mapped = None;
        m.put(MDL_MAPPED_VA, 0usize);
        m.put(MDL_FLAGS, m.flags() & !MDL_MAPPED_TO_SYSTEM_VA);
    }

    pub(crate) fn free_pages_from_mdl(&self, mdl: usize) {
        let api = "MmFreePagesFromMdl";
        self.check_irql(api, DISPATCH_LEVEL);
        let mut t = self.mdl_table();
        let Some(m) = t.get_mut(&mdl) else {
            drop(t);
            self.fail(format!("{api}({mdl:#x}): not a live MDL"));
            return;
        };
        if m.mapped.is_some() {
            drop(t);
            self.fail(format!(
                "{api}({mdl:#x}) while the MDL is still mapped: MmUnmapLockedPages first [bug check 0x4E PFN_LIST_CORRUPT]"
            ));
            return;
        }
        match m.pages.take() {
            Some(p) => {
                guard::unregister_guards(p.start() as usize, p.start() as usize + p.cap());
                self.mdls.live.fetch_sub(m.bytes as u64, Ordering::SeqCst);
                drop(p);
            }
            None => {
                drop(t);
                self.fail(format!(
                    "{api}({mdl:#x}) twice: its pages were already freed [bug check 0x4E]"
                ));
            }
        }
    }

    /// ExFreePool of an MDL: its pages must be gone.
    pub(crate) fn free_mdl(&self, mdl: usize) {
        let mut t = self.mdl_table();
        let Some(m) = t.remove(&mdl) else {
            return;
        };
        drop(t);
        if m.mapped.is_some() || m.pages.is_some() {
            self.fail(format!(
                "ExFreePool of MDL {mdl:#x} that is {}: MmUnmapLockedPages and MmFreePagesFromMdl come first (its {} bytes of pages leak)",
                if m.mapped.is_some() { "still mapped" } else { "still holding its pages" },
                m.bytes
            ));
            if let Some(p) = &m.pages {
                guard::unregister_guards(p.start() as usize, p.start() as usize + p.cap());
                self.mdls.live.fetch_sub(m.bytes as u64, Ordering::SeqCst);
            }
        }
    }

    /// MDLs the driver still holds, as verifier lines.
    pub(crate) fn mdl_leaks(&self) -> Vec<String> {
        let t = self.mdl_table();
        let mut v: Vec<String> = t
            .iter()
            .map(|(a, m)| {
                let state = match (m.mapped, &m.pages) {
                    (Some(_), _) => "still mapped, its pages never freed and the MDL never freed",
                    (None, Some(_)) => {
                        "its pages never freed (MmFreePagesFromMdl) and the MDL never freed"
                    }
                    (None, None) => "never freed with ExFreePool",
                };
                format!("MDL leaked: {a:#x} ({} bytes): {state}", m.bytes)
            })
            .collect();
        v.sort();
        v
    }

    /// Forgets every MDL (after reporting them).
    pub(crate) fn drop_mdls(&self) {
        let mut t = self.mdl_table();
        for (_, m) in t.drain() {
            if let Some(p) = &m.pages {
                guard::unregister_guards(p.start() as usize, p.start() as usize + p.cap());
            }
        }
        self.mdls.live.store(0, Ordering::SeqCst);
    }
}
