//! Emulated physical memory as the driver sees it: MmMapIoSpace / MmUnmapIoSpace over guarded
//! mappings (fault injection, IRQL and size checks), MmGetPhysicalMemoryRanges, and the ACPI
//! firmware tables (NFIT) ZwQuerySystemInformation returns.

use super::{
    Kernel, Personality, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};
use crate::checks::guard::{self, PAGE};
use rvblk_abi::status::{STATUS_BUFFER_TOO_SMALL, STATUS_NOT_FOUND};
use std::sync::atomic::Ordering;

pub(super) struct IoMap {
    pub(super) base: *mut u8,
    pub(super) total: usize,
    pub(super) pa: u64,
    pub(super) size: usize,
}

// SAFETY: plain bookkeeping of a mapping owned by the kernel object.
unsafe impl Send for IoMap {}

impl Kernel {
    pub(super) fn map_io(&self, pa: i64, size: usize, cache: u32) -> *mut u8 {
        let n = self.map_calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.check_irql("MmMapIoSpace", DISPATCH_LEVEL);
        if self.fail_map_at.load(Ordering::SeqCst) == n {
            self.log_line(format!(
                "[harness] fault injection: MmMapIoSpace #{n} fails"
            ));
            return std::ptr::null_mut();
        }
        if size == 0 || pa < 0 {
            self.fail(format!(
                "MmMapIoSpace({pa:#x}, {size:#x}): invalid arguments"
            ));
            return std::ptr::null_mut();
        }
        if cache > 2 {
            self.fail(format!("MmMapIoSpace: invalid MEMORY_CACHING_TYPE {cache}"));
        }
        let pa = pa as u64;
        let end = pa.saturating_add(size as u64);
        for &(b, l) in &self.cfg.os_ram {
            let (s, e) = (b.max(0x10_0000), b + l);
            if pa < e && end > s {
                let ov = pa.max(s);
                self.fail(format!(
                    "MmMapIoSpace({pa:#x}, {size:#x}) maps RAM managed by the OS (range {b:#x}+{l:#x}, first page {ov:#x}) [bug check 0x1A/0x1233; Driver Verifier 0xC4/0x83]"
                ));
                return std::ptr::null_mut();
            }
        }
        if end > self.phys.size() {
            self.log_line(format!(
                "[harness] MmMapIoSpace({pa:#x}, {size:#x}) beyond emulated physical memory ({:#x}): returning NULL",
                self.phys.size()
            ));
            return std::ptr::null_mut();
        }
        let off = (pa % PAGE as u64) as usize;
        let pages_len = guard::round_up(off + size, PAGE);
        let total = pages_len + 2 * PAGE;
        let base = guard::reserve(total);
        // SAFETY: inside the reservation.
        let win = unsafe { base.add(PAGE) };
        if let Err(e) = self.phys.map_at(win, pa - off as u64, pages_len) {
            guard::unmap(base, total);
            self.log_line(format!("[harness] MmMapIoSpace failed: {e}"));
            return std::ptr::null_mut();
        }
        let label = format!("MmMapIoSpace({pa:#x}, {size:#x})");
        guard::register_guard(base as usize, PAGE, &format!("guard page before {label}"));
        guard::register_guard(
            win as usize + pages_len,
            PAGE,
            &format!("guard page after {label}"),
        );
        // SAFETY: inside the window.
        let va = unsafe { win.add(off) };
        let live = self
            .live_map_bytes
            .fetch_add(size as u64, Ordering::Relaxed)
            + size as u64;
        self.peak_map_bytes.fetch_max(live, Ordering::Relaxed);
        self.max_map_bytes.fetch_max(size as u64, Ordering::Relaxed);
        self.maps.lock().unwrap_or_else(|e| e.into_inner()).insert(
            va as usize,
            IoMap {
                base,
                total,
                pa,
                size,
            },
        );
        va
    }

    pub(super) fn unmap_io(&self, va: *mut u8, size: usize) {
        // Microsoft's DDI page for MmUnmapIoSpace gives IRQL <= DISPATCH_LEVEL (the spec's
        // "0xC4/0x7B above APC_LEVEL" has no primary source behind it).
        self.check_irql("MmUnmapIoSpace", DISPATCH_LEVEL);
        let m = self
            .maps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(va as usize));
        match m {
            None => self.fail(format!(
                "MmUnmapIoSpace({va:p}, {size:#x}): not a live MmMapIoSpace result"
            )),
            Some(m) => {
                if m.size != size {
                    self.fail(format!(
                        "MmUnmapIoSpace({va:p}, {size:#x}): mapped with size {:#x}",
                        m.size
                    ));
                }
                self.live_map_bytes
                    .fetch_sub(m.size as u64, Ordering::Relaxed);
                guard::unregister_guards(m.base as usize, m.base as usize + m.total);
                guard::unmap(m.base, m.total);
            }
        }
    }

    pub(super) fn physical_memory_ranges(&self) -> *mut u8 {
        self.check_irql("MmGetPhysicalMemoryRanges", PASSIVE_LEVEL);
        let n = self.cfg.os_ram.len() + 1;
        let p = self.pool_alloc(
            0,
            n * 16,
            u32::from_le_bytes(*b"MmPh"),
            "MmGetPhysicalMemoryRanges",
        );
        if p.is_null() {
            return p;
        }
        for (i, &(b, l)) in self
            .cfg
            .os_ram
            .iter()
            .chain(std::iter::once(&(0, 0)))
            .enumerate()
        {
            // SAFETY: `p` has room for `n` 16-byte entries.
            unsafe { std::ptr::write_unaligned(p.wrapping_add(i * 16) as *mut u64, b) };
            // SAFETY: as above.
            unsafe { std::ptr::write_unaligned(p.wrapping_add(i * 16 + 8) as *mut u64, l) };
        }
        p
    }

    pub(super) fn query_system_information(
        &self,
        class: u32,
        buf: *mut u8,
        len: u32,
        ret: *mut u32,
    ) -> i32 {
        self.check_irql("ZwQuerySystemInformation", PASSIVE_LEVEL);
        // SystemFirmwareTableInformation arrived with Server 2003 SP1 / XP x64; 32-bit XP, the
        // main SCSIPORT target, rejects it (so no NFIT there).
        if class != rvblk_abi::SYSTEM_FIRMWARE_TABLE_INFORMATION_CLASS
            || self.cfg.personality == Personality::Xp
        {
            self.log_line(format!(
                "[harness] ZwQuerySystemInformation class {class} not emulated"
            ));
            return STATUS_INVALID_INFO_CLASS;
        }
        if buf.is_null() || len < 16 {
            return STATUS_INFO_LENGTH_MISMATCH;
        }
        // SAFETY: the caller passes `len >= 16` bytes at `buf`.
        let hdr = unsafe { std::slice::from_raw_parts_mut(buf, len as usize) };
        let rd = |o: usize| u32::from_le_bytes(hdr[o..o + 4].try_into().unwrap());
        let (prov, action, id) = (rd(0), rd(4), rd(8));
        if prov != rvblk_abi::FIRMWARE_PROVIDER_ACPI || action != rvblk_abi::FIRMWARE_TABLE_GET {
            self.log_line(format!(
                "[harness] firmware table query provider {prov:#x} action {action} not emulated"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let table = if id == rvblk_abi::ACPI_TABLE_NFIT {
            self.cfg.nfit.as_ref()
        } else {
            None
        };
        let Some(t) = table else {
            return STATUS_NOT_FOUND;
        };
        let need = 16 + t.len() as u32;
        hdr[12..16].copy_from_slice(&(t.len() as u32).to_le_bytes());
        if !ret.is_null() {
            // SAFETY: caller-provided out pointer.
            unsafe { ret.write_unaligned(need) };
        }
        if len < need {
            return STATUS_BUFFER_TOO_SMALL;
        }
        hdr[16..16 + t.len()].copy_from_slice(t);
        STATUS_SUCCESS
    }
}
