//! Running Windows-on-ARM64 drivers in the aarch64 Linux build of the harness: the platform
//! register x18 and the export thunks that honour it (`docs/arm64.md` §2).
//!
//! Windows reserves x18 (the KPCR in kernel mode) and compiles every driver never to write it;
//! Linux code, glibc included, uses it as a scratch register. So: x18 holds the address of an
//! emulated KPCR while driver code runs (set by the kernel-stack trampoline in `stack.rs`), every
//! harness export the driver calls saves and restores it around the Rust body, and an export
//! that finds something else in x18 reports the driver (or the call path into it) as having
//! clobbered it.

use crate::checks::guard::{self, PAGE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Address loaded into x18 before driver code runs: a reserved, inaccessible page, so a driver
/// that reads the processor control region (which the harness does not emulate) faults with a
/// named guard region instead of reading host memory. 0 until [`ensure_kpcr`] ran.
pub static KPCR: AtomicUsize = AtomicUsize::new(0);

static INIT: Once = Once::new();

/// Reserves the emulated KPCR page (once per process).
pub fn ensure_kpcr() {
    INIT.call_once(|| {
        let p = guard::reserve(PAGE) as usize;
        guard::register_guard(
            p,
            PAGE,
            "emulated KPCR (x18): the driver read the processor control region, which the \
             harness does not provide",
        );
        KPCR.store(p, Ordering::SeqCst);
    });
}

/// Called by an export thunk that found x18 != KPCR on entry.
pub extern "C" fn x18_clobbered(found: usize, lr: usize) {
    let want = KPCR.load(Ordering::SeqCst);
    crate::emu::kernel::current().fail(format!(
        "x18 (the Windows arm64 platform register, KPCR in kernel mode) was {found:#x} on a \
         call into the kernel from {}, expected the KPCR {want:#x}: driver code must never \
         write x18",
        crate::checks::crash::describe_ip(lr)
    ));
}

/// Defines `$name` as the address the driver calls: a thunk that checks x18 against the KPCR,
/// saves it, calls `$name::imp` (an AAPCS64 function: the Windows arm64 convention for these
/// signatures, at most eight integer/pointer arguments, all in x0-x7) and restores x18 before
/// returning to the driver.
#[macro_export]
#[doc(hidden)]
macro_rules! aarch64_export {
    ($name:ident, $imp:path) => {
        // The thunk touches only x9 (scratch), its own 96-byte frame and x18, then calls `$imp`
        // with x0-x7 as the driver passed them; the caller's stack arguments are not forwarded,
        // so `$imp` takes at most eight register arguments (`docs/arm64.md` §3).
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            std::arch::naked_asm!(
                "stp x29, x30, [sp, #-96]!",
                "mov x29, sp",
                "str x18, [sp, #16]",
                "adrp x9, {kpcr}",
                "ldr x9, [x9, :lo12:{kpcr}]",
                "cbz x9, 2f",
                "cmp x9, x18",
                "b.eq 2f",
                "stp x0, x1, [sp, #32]",
                "stp x2, x3, [sp, #48]",
                "stp x4, x5, [sp, #64]",
                "stp x6, x7, [sp, #80]",
                "mov x0, x18",
                "mov x1, x30",
                "bl {report}",
                "ldp x0, x1, [sp, #32]",
                "ldp x2, x3, [sp, #48]",
                "ldp x4, x5, [sp, #64]",
                "ldp x6, x7, [sp, #80]",
                "2:",
                "bl {imp}",
                "ldr x18, [sp, #16]",
                "ldp x29, x30, [sp], #96",
                "ret",
                kpcr = sym $crate::emu::arch::aarch64::KPCR,
                report = sym $crate::emu::arch::aarch64::x18_clobbered,
                imp = sym $imp,
            )
        }
    };
}
