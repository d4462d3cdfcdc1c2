//! Guarded memory: every buffer the harness hands to the driver ends exactly at a PROT_NONE page,
//! and starts one page after another, like Driver Verifier's special pool. A registry of guard
//! ranges lets the crash handler say which buffer a stray access hit.

use std::ptr;
use std::sync::Mutex;

pub const PAGE: usize = 4096;

pub fn round_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

#[derive(Clone, Debug)]
pub struct GuardRange {
    pub start: usize,
    pub end: usize,
    pub label: String,
}

/// Every guard page (and other no-access region) the harness created, with a label.
pub static GUARDS: Mutex<Vec<GuardRange>> = Mutex::new(Vec::new());

/// Registers a no-access range so a fault inside it can be named.
pub fn register_guard(start: usize, len: usize, label: &str) {
    let mut g = GUARDS.lock().unwrap_or_else(|e| e.into_inner());
    g.push(GuardRange {
        start,
        end: start + len,
        label: label.to_string(),
    });
}

pub fn unregister_guards(start: usize, end: usize) {
    let mut g = GUARDS.lock().unwrap_or_else(|e| e.into_inner());
    g.retain(|r| r.end <= start || r.start >= end);
}

/// Best-effort lookup used from the crash handler (never blocks).
pub fn describe_addr(addr: usize) -> Option<String> {
    let g = GUARDS.try_lock().ok()?;
    g.iter()
        .find(|r| addr >= r.start && addr < r.end)
        .map(|r| r.label.clone())
}

/// Anonymous mapping with `PROT_NONE` everywhere; returns the base.
pub fn reserve(len: usize) -> *mut u8 {
    // SAFETY: anonymous private mapping with no address hint; the kernel picks a free range.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap({len}) failed");
    p as *mut u8
}

pub fn protect(p: *mut u8, len: usize, prot: i32) {
    if len == 0 {
        return;
    }
    // SAFETY: `p..p+len` lies inside a mapping this module created (callers pass their own ranges).
    let r = unsafe { libc::mprotect(p as *mut libc::c_void, len, prot) };
    assert!(
        r == 0,
        "mprotect failed: {}",
        std::io::Error::last_os_error()
    );
}

pub fn unmap(p: *mut u8, len: usize) {
    // SAFETY: releases a mapping created by `reserve` with the same length.
    unsafe { libc::munmap(p as *mut libc::c_void, len) };
}

/// A buffer of up to `cap` bytes between two guard pages. `tail(len)` gives a pointer whose
/// `len` bytes end exactly at the trailing guard page.
pub struct GuardedBuf {
    base: *mut u8,
    total: usize,
    data: *mut u8,
    cap_pages: usize,
    label: String,
}

// SAFETY: the buffer is plain memory owned by this value; synchronisation is the user's concern.
unsafe impl Send for GuardedBuf {}
// SAFETY: as above; shared references only hand out raw pointers.
unsafe impl Sync for GuardedBuf {}

impl GuardedBuf {
    pub fn new(cap: usize, label: &str) -> GuardedBuf {
        let cap_pages = round_up(cap.max(1), PAGE) / PAGE;
        let total = (cap_pages + 2) * PAGE;
        let base = reserve(total);
        // SAFETY: within the reservation of `total` bytes.
        let data = unsafe { base.add(PAGE) };
        protect(data, cap_pages * PAGE, libc::PROT_READ | libc::PROT_WRITE);
        register_guard(base as usize, PAGE, &format!("guard page before {label}"));
        register_guard(
            data as usize + cap_pages * PAGE,
            PAGE,
            &format!("guard page after {label}"),
        );
        GuardedBuf {
            base,
            total,
            data,
            cap_pages,
            label: label.to_string(),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap_pages * PAGE
    }

    pub fn start(&self) -> *mut u8 {
        self.data
    }

    pub fn end(&self) -> *mut u8 {
        // SAFETY: one past the accessible area, inside the reservation.
        unsafe { self.data.add(self.cap()) }
    }

    /// Pointer to `len` bytes ending at the trailing guard page.
    pub fn tail(&self, len: usize) -> *mut u8 {
        assert!(len <= self.cap(), "{}: {len} > capacity", self.label);
        // SAFETY: len <= capacity, so the result stays inside the accessible area.
        unsafe { self.end().sub(len) }
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}

impl Drop for GuardedBuf {
    fn drop(&mut self) {
        unregister_guards(self.base as usize, self.base as usize + self.total);
        unmap(self.base, self.total);
    }
}
