//! Pool: ExAllocatePoolWithTag / ExFreePool(WithTag) backed by guarded buffers, with fault
//! injection, paged-pool-at-DISPATCH and tag-mismatch checks and byte accounting.

use super::{irql, Kernel, APC_LEVEL};
use crate::checks::guard::{self, GuardedBuf};
use std::sync::atomic::Ordering;

pub(super) struct PoolAlloc {
    pub(super) buf: GuardedBuf,
    pub(super) size: usize,
    pub(super) tag: u32,
    pub(super) slack: usize,
}

impl Kernel {
    pub(super) fn pool_alloc(&self, pool_type: u32, size: usize, tag: u32, what: &str) -> *mut u8 {
        let n = self.pool_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_pool_at.load(Ordering::SeqCst) == n {
            self.log_line(format!("[harness] fault injection: {what} #{n} fails"));
            return std::ptr::null_mut();
        }
        // Paged pool (odd types other than the Nx/session variants) must not be used at DISPATCH.
        if pool_type & 1 == 1 && irql() > APC_LEVEL {
            self.fail(format!(
                "{what}: paged pool (type {pool_type}) at IRQL {}",
                irql()
            ));
        }
        let align = if cfg!(target_pointer_width = "64") {
            16
        } else {
            8
        };
        let rounded = guard::round_up(size.max(1), align);
        let buf = GuardedBuf::new(
            rounded,
            &format!("pool allocation of {size} bytes (tag {:?})", tag_str(tag)),
        );
        let p = buf.tail(rounded);
        // SAFETY: `p..p+rounded` is writable; fill with garbage like a fresh pool block and
        // mark the alignment slack so overruns into it are found at free time.
        unsafe { std::ptr::write_bytes(p, 0xC5, size) };
        // SAFETY: as above, the slack after the `size` bytes.
        unsafe { std::ptr::write_bytes(p.wrapping_add(size), 0xAB, rounded - size) };
        let total = self.pool_bytes.fetch_add(size as u64, Ordering::Relaxed) + size as u64;
        self.peak_pool_bytes.fetch_max(total, Ordering::Relaxed);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).insert(
            p as usize,
            PoolAlloc {
                buf,
                size,
                tag,
                slack: rounded - size,
            },
        );
        p
    }

    pub(super) fn pool_free(&self, p: *mut u8, tag: u32) {
        if p.is_null() {
            self.fail("ExFreePoolWithTag(NULL) [bug check 0xC2]");
            return;
        }
        let a = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(p as usize));
        match a {
            None => self.fail(format!(
                "ExFreePoolWithTag({p:p}) of memory that is not an outstanding pool allocation (double free or wild pointer) [bug check 0xC2/0xC4]"
            )),
            Some(a) => {
                if tag != 0 && tag != a.tag {
                    self.fail(format!(
                        "ExFreePoolWithTag({p:p}, {:?}) but allocated with tag {:?}",
                        tag_str(tag),
                        tag_str(a.tag)
                    ));
                }
                // SAFETY: the slack lies inside the allocation's accessible pages.
                let slack = unsafe { std::slice::from_raw_parts(p.wrapping_add(a.size), a.slack) };
                if slack.iter().any(|&b| b != 0xAB) {
                    self.fail(format!(
                        "pool block {p:p} ({} bytes) was overrun (alignment slack modified) [bug check 0xC1]",
                        a.size
                    ));
                }
                self.pool_bytes.fetch_sub(a.size as u64, Ordering::Relaxed);
                let _ = a.buf.label();
            }
        }
    }
}

pub fn tag_str(t: u32) -> String {
    t.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}
