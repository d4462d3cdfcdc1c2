//! Runs driver callbacks on a stack no bigger than a Windows kernel stack (12 KiB on x86,
//! 24 KiB on x64) with a guard page below it, and measures the high-water mark.

use crate::checks::guard::{self, PAGE};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(target_arch = "x86_64")]
pub const KERNEL_STACK: usize = 24 * 1024;
#[cfg(target_arch = "x86")]
pub const KERNEL_STACK: usize = 12 * 1024;
// Windows on ARM64 gives kernel threads the x64 size (`docs/arm64.md` §4).
#[cfg(target_arch = "aarch64")]
pub const KERNEL_STACK: usize = 24 * 1024;

const PAINT: u8 = 0x5a;

/// Highest stack use seen on any thread (bytes), over the threads that have finished or been
/// measured.
pub static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".text",
    ".globl rvblk_harness_call_on_stack",
    ".type rvblk_harness_call_on_stack,@function",
    "rvblk_harness_call_on_stack:",
    // rdi = arg, rsi = fn, rdx = 16-byte aligned stack top
    "push rbp",
    "mov rbp, rsp",
    "mov rsp, rdx",
    "call rsi",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
);

#[cfg(target_arch = "x86")]
std::arch::global_asm!(
    ".text",
    ".globl rvblk_harness_call_on_stack",
    ".type rvblk_harness_call_on_stack,@function",
    "rvblk_harness_call_on_stack:",
    // cdecl: [esp+4] = arg, [esp+8] = fn, [esp+12] = 16-byte aligned stack top
    "push ebp",
    "mov ebp, esp",
    "mov eax, [ebp+8]",
    "mov ecx, [ebp+12]",
    "mov esp, [ebp+16]",
    "sub esp, 12",
    "push eax",
    "call ecx",
    "mov esp, ebp",
    "pop ebp",
    "ret",
);

// The x86 Windows ABI keeps the stack 4-byte aligned; i686 Linux code assumes 16 and may use
// aligned SSE stores on locals. Kernel exports the driver calls realign first (same stack).
#[cfg(target_arch = "x86")]
std::arch::global_asm!(
    ".text",
    ".globl rvblk_harness_call_aligned",
    ".type rvblk_harness_call_aligned,@function",
    "rvblk_harness_call_aligned:",
    // cdecl: [esp+4] = arg, [esp+8] = fn
    "push ebp",
    "mov ebp, esp",
    "mov eax, [ebp+8]",
    "mov ecx, [ebp+12]",
    "and esp, -16",
    "sub esp, 12",
    "push eax",
    "call ecx",
    "mov esp, ebp",
    "pop ebp",
    "ret",
);

// x0 = arg, x1 = fn, x2 = 16-byte aligned stack top. Loads the emulated KPCR pointer into x18
// for the driver (`docs/arm64.md` §2) and restores the host's x18 afterwards.
#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".globl rvblk_harness_call_on_stack",
    ".type rvblk_harness_call_on_stack,%function",
    "rvblk_harness_call_on_stack:",
    "stp x29, x30, [sp, #-32]!",
    "mov x29, sp",
    "str x18, [sp, #16]",
    "adrp x18, {kpcr}",
    "add x18, x18, :lo12:{kpcr}",
    "ldr x18, [x18]",
    "mov sp, x2",
    "blr x1",
    "mov sp, x29",
    "ldr x18, [sp, #16]",
    "ldp x29, x30, [sp], #32",
    "ret",
    kpcr = sym crate::emu::arch::aarch64::KPCR,
);

unsafe extern "C" {
    fn rvblk_harness_call_on_stack(arg: *mut u8, f: unsafe extern "C" fn(*mut u8), top: *mut u8);
    #[cfg(target_arch = "x86")]
    fn rvblk_harness_call_aligned(arg: *mut u8, f: unsafe extern "C" fn(*mut u8));
}

/// Runs `f` with the stack aligned as the host ABI expects (x86: 16 bytes; a no-op on x64,
/// whose Windows ABI already guarantees it). For harness code the driver calls into.
pub fn realigned<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86")]
    {
        // SAFETY: the trampoline calls `tramp(arg)` once on this stack, realigned, and restores
        // the caller's stack pointer.
        through(f, |arg| unsafe { rvblk_harness_call_aligned(arg, tramp) })
    }
    #[cfg(not(target_arch = "x86"))]
    f()
}

struct KStack {
    base: *mut u8,
    total: usize,
    low: *mut u8,
}

impl KStack {
    fn new() -> KStack {
        let total = KERNEL_STACK + PAGE;
        let base = guard::reserve(total);
        // SAFETY: inside the reservation.
        let low = unsafe { base.add(PAGE) };
        guard::protect(low, KERNEL_STACK, libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: the range was just made writable.
        unsafe { std::ptr::write_bytes(low, PAINT, KERNEL_STACK) };
        guard::register_guard(
            base as usize,
            PAGE,
            &format!(
                "guard page below a {} KiB kernel stack (stack overflow)",
                KERNEL_STACK / 1024
            ),
        );
        KStack { base, total, low }
    }

    fn top(&self) -> *mut u8 {
        // SAFETY: one past the end of the stack area.
        unsafe { self.low.add(KERNEL_STACK) }
    }

    fn used(&self) -> usize {
        // SAFETY: the whole area is readable.
        let s = unsafe { std::slice::from_raw_parts(self.low, KERNEL_STACK) };
        let untouched = s.iter().position(|&b| b != PAINT).unwrap_or(KERNEL_STACK);
        KERNEL_STACK - untouched
    }
}

impl Drop for KStack {
    fn drop(&mut self) {
        HIGH_WATER.fetch_max(self.used(), Ordering::Relaxed);
        guard::unregister_guards(self.base as usize, self.base as usize + self.total);
        guard::unmap(self.base, self.total);
    }
}

thread_local! {
    static STACK: RefCell<Option<KStack>> = const { RefCell::new(None) };
    static ON_KSTACK: Cell<bool> = const { Cell::new(false) };
}

/// Records the current thread's stack use into `HIGH_WATER` and returns the global maximum.
pub fn measure() -> usize {
    STACK.with(|s| {
        if let Some(k) = s.borrow().as_ref() {
            HIGH_WATER.fetch_max(k.used(), Ordering::Relaxed);
        }
    });
    HIGH_WATER.load(Ordering::Relaxed)
}

struct Payload<'a> {
    f: &'a mut dyn FnMut(),
    panic: Option<Box<dyn std::any::Any + Send>>,
}

/// Runs `f` through an assembly trampoline: `invoke(arg)` must call `tramp(arg)` exactly once.
/// A panic in `f` is carried across the foreign frames and resumed here.
fn through<R>(f: impl FnOnce() -> R, invoke: impl FnOnce(*mut u8)) -> R {
    let mut f = Some(f);
    let mut result = None;
    let mut call = || {
        if let Some(f) = f.take() {
            result = Some(f());
        }
    };
    let mut payload = Payload {
        f: &mut call,
        panic: None,
    };
    invoke(&mut payload as *mut Payload<'_> as *mut u8);
    if let Some(p) = payload.panic {
        std::panic::resume_unwind(p);
    }
    result.expect("callback did not run")
}

unsafe extern "C" fn tramp(arg: *mut u8) {
    // SAFETY: `arg` is the `Payload` passed by `on_kernel_stack`, alive for the whole call.
    let p = unsafe { &mut *(arg as *mut Payload<'_>) };
    let f = &mut p.f;
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        p.panic = Some(e);
    }
}

/// IoGetRemainingStackSize: the bytes left below the current stack pointer on this thread's
/// emulated kernel stack (the whole kernel stack's size when the caller is not on it).
pub fn remaining() -> usize {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    if !ON_KSTACK.with(|c| c.get()) {
        return KERNEL_STACK;
    }
    STACK.with(|s| {
        s.borrow()
            .as_ref()
            .map_or(KERNEL_STACK, |k| sp.saturating_sub(k.low as usize))
    })
}

/// Runs `f` on this thread's emulated kernel stack.
pub fn on_kernel_stack<R>(f: impl FnOnce() -> R) -> R {
    if ON_KSTACK.with(|c| c.get()) {
        return f();
    }
    crate::checks::crash::ensure_altstack();
    #[cfg(target_arch = "aarch64")]
    crate::emu::arch::aarch64::ensure_kpcr();
    let top = STACK.with(|s| {
        let mut s = s.borrow_mut();
        s.get_or_insert_with(KStack::new).top()
    });
    through(f, |arg| {
        ON_KSTACK.with(|c| c.set(true));
        // SAFETY: `top` is the 16-byte aligned top of a live stack owned by this thread, not in
        // use (ON_KSTACK was false); `tramp` only touches the payload, which outlives the call.
        unsafe { rvblk_harness_call_on_stack(arg, tramp, top) };
        ON_KSTACK.with(|c| c.set(false));
    })
}
