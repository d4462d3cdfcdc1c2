//! IRQL as the emulated kernel tracks it (one level per thread), the port-to-miniport call
//! marker SCSIPORT's notification rule needs, the IRQL check every export with a limit makes,
//! and the spin locks (KeAcquireSpinLockRaiseToDpc / KfAcquireSpinLock and their releases).

use super::Kernel;
use crate::checks::crash::emergency_report;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const PASSIVE_LEVEL: u8 = 0;
pub const APC_LEVEL: u8 = 1;
pub const DISPATCH_LEVEL: u8 = 2;
/// Stand-in for a device IRQL (HwInitialize runs at DIRQL).
pub const DIRQL: u8 = 5;

thread_local! {
    static IRQL: Cell<u8> = const { Cell::new(PASSIVE_LEVEL) };
    /// Inside a miniport entry point the port called (ScsiPortNotification is only legal there).
    pub(super) static IN_MINIPORT: Cell<bool> = const { Cell::new(false) };
    static TID: Cell<usize> = const { Cell::new(0) };
    /// Inside an emulated guarded region (`KeEnterGuardedRegion`): special kernel APCs are off
    /// at any IRQL ([`with_apcs_disabled`]).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}
static NEXT_TID: AtomicUsize = AtomicUsize::new(1);

pub fn irql() -> u8 {
    IRQL.with(|c| c.get())
}

pub fn set_irql(l: u8) {
    IRQL.with(|c| c.set(l));
}

/// Runs `f` at IRQL `l` (restoring the previous level).
pub fn at_irql<R>(l: u8, f: impl FnOnce() -> R) -> R {
    let old = irql();
    set_irql(l);
    let r = f();
    set_irql(old);
    r
}

/// Whether the thread can take no special kernel APCs (`KeAreAllApcsDisabled`): at APC_LEVEL
/// and above, or inside a guarded region.
pub fn apcs_disabled() -> bool {
    irql() >= APC_LEVEL || GUARDED.with(|c| c.get())
}

/// Runs `f` inside a guarded region: special kernel APCs disabled, IRQL unchanged (how a
/// caller holding a guarded mutex reaches a driver at PASSIVE_LEVEL).
pub fn with_apcs_disabled<R>(f: impl FnOnce() -> R) -> R {
    let old = GUARDED.with(|c| c.replace(true));
    let r = f();
    GUARDED.with(|c| c.set(old));
    r
}

/// Runs `f` as a port-to-miniport call (HwStartIo, HwFindAdapter, ...).
pub fn in_miniport<R>(f: impl FnOnce() -> R) -> R {
    let old = IN_MINIPORT.with(|c| c.replace(true));
    let r = f();
    IN_MINIPORT.with(|c| c.set(old));
    r
}

pub(super) fn tid() -> usize {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_TID.fetch_add(1, Ordering::Relaxed) * 2 + 1);
        }
        t.get()
    })
}

impl Kernel {
    pub(crate) fn check_irql(&self, api: &str, max: u8) -> bool {
        let l = irql();
        if l > max {
            self.fail(format!(
                "{api} called at IRQL {l} (allowed: <= {max}){}",
                if api == "MmMapIoSpace" {
                    " [Driver Verifier bug check 0xC4/0x73]"
                } else {
                    ""
                }
            ));
            return false;
        }
        true
    }
}

impl Kernel {
    pub(super) fn acquire(&self, lock: *mut usize) -> u8 {
        let old = irql();
        if old > DISPATCH_LEVEL {
            self.fail(format!("spin lock acquired at IRQL {old}"));
        }
        set_irql(DISPATCH_LEVEL);
        // SAFETY: a KSPIN_LOCK is a pointer-sized, pointer-aligned word in driver memory.
        let a = unsafe { &*(lock as *const AtomicUsize) };
        let me = tid();
        if a.load(Ordering::Relaxed) == me {
            self.fail(format!(
                "spin lock {lock:p} acquired recursively (deadlock on Windows)"
            ));
            return old;
        }
        // The clock is read only once the lock turns out to be contended.
        let mut start = None;
        let mut spins = 0u32;
        while a
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            let since = *start.get_or_insert_with(std::time::Instant::now);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
                if since.elapsed().as_secs() > 20 {
                    emergency_report(
                        &format!("spin lock {lock:p} held for over 20 s (deadlock)"),
                        crate::checks::crash::JSON.load(Ordering::Relaxed),
                    );
                    // SAFETY: immediate exit after a deadlock.
                    unsafe { libc::_exit(crate::checks::crash::CRASH_EXIT) };
                }
            }
            std::hint::spin_loop();
        }
        old
    }

    pub(super) fn release(&self, lock: *mut usize, old: u8) {
        // SAFETY: as in `acquire`.
        let a = unsafe { &*(lock as *const AtomicUsize) };
        let me = tid();
        let v = a.load(Ordering::Relaxed);
        if v != me {
            self.fail(format!(
                "spin lock {lock:p} released by a thread that does not hold it (value {v:#x})"
            ));
        }
        a.store(0, Ordering::Release);
        if old > irql() {
            self.fail(format!(
                "KeReleaseSpinLock lowers to IRQL {old} > current {}",
                irql()
            ));
        }
        set_irql(old);
    }
}
