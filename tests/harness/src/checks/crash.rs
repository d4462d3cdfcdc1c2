//! Turns a fault inside driver code (SIGSEGV/SIGBUS/SIGILL/SIGFPE) into a reported verifier
//! failure naming the faulting address, which guard it hit and where the instruction was, then
//! ends the process with exit status 3 (the driver's state is unknown after such a fault).
//!
//! `emergency_report` is the report itself, also printed by the spin-lock watchdog and by a
//! session that stops at its first verifier failure.

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub static JSON: AtomicBool = AtomicBool::new(false);
static IMAGE_BASE: AtomicUsize = AtomicUsize::new(0);
static IMAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
pub const CRASH_EXIT: i32 = 3;

pub fn set_image(base: usize, size: usize) {
    IMAGE_BASE.store(base, Ordering::SeqCst);
    IMAGE_SIZE.store(size, Ordering::SeqCst);
}

thread_local! {
    static ALT: Cell<bool> = const { Cell::new(false) };
}

/// Gives the current thread its own signal stack (faults on a kernel-stack guard page need it).
pub fn ensure_altstack() {
    if ALT.with(|a| a.get()) {
        return;
    }
    let size = 64 * 1024;
    let p = crate::checks::guard::reserve(size);
    crate::checks::guard::protect(p, size, libc::PROT_READ | libc::PROT_WRITE);
    let st = libc::stack_t {
        ss_sp: p as *mut libc::c_void,
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: `st` describes a live, writable, never-freed area of `size` bytes.
    unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) };
    ALT.with(|a| a.set(true));
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    ensure_altstack();
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
        // SAFETY: a zeroed sigaction is a valid starting point; we fill handler and flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is a valid sigset_t inside `sa`.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is fully initialised; the old action is not wanted (null).
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    }
}

fn ip_of(ctx: *mut libc::c_void) -> usize {
    let uc = ctx as *const libc::ucontext_t;
    // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler.
    #[cfg(target_arch = "x86_64")]
    let ip = unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize };
    // SAFETY: as above.
    #[cfg(target_arch = "x86")]
    let ip = unsafe { (*uc).uc_mcontext.gregs[libc::REG_EIP as usize] as usize };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    let ip = unsafe { (*uc).uc_mcontext.pc as usize };
    ip
}

/// Describes where an instruction pointer lies.
pub fn describe_ip(ip: usize) -> String {
    let b = IMAGE_BASE.load(Ordering::SeqCst);
    let s = IMAGE_SIZE.load(Ordering::SeqCst);
    if b != 0 && ip >= b && ip < b + s {
        format!("{ip:#x} (driver image RVA {:#x})", ip - b)
    } else {
        format!("{ip:#x} (harness code)")
    }
}

extern "C" fn handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: `info` is valid in an SA_SIGINFO handler.
    let info = unsafe { &*info };
    // SAFETY: si_addr is meaningful for the signals this handler is installed for.
    let addr = unsafe { info.si_addr() } as usize;
    let ip = ip_of(ctx);
    let name = match sig {
        libc::SIGSEGV => "access violation (SIGSEGV)",
        libc::SIGBUS => "bus error (SIGBUS)",
        libc::SIGILL => "illegal instruction (SIGILL)",
        _ => "arithmetic fault (SIGFPE)",
    };
    let what = crate::checks::guard::describe_addr(addr)
        .unwrap_or_else(|| "not inside any harness guard region".to_string());
    let msg = format!(
        "crash: {name} at address {addr:#x} [{what}], instruction at {}",
        describe_ip(ip)
    );
    emergency_report(&msg, JSON.load(Ordering::SeqCst));
    let _ = std::io::stderr().flush();
    // SAFETY: immediate process exit; nothing else may run after a fault in driver code.
    unsafe { libc::_exit(CRASH_EXIT) };
}

/// Printed from the crash handler / watchdog: all failures so far plus `msg`.
pub fn emergency_report(msg: &str, json: bool) {
    let (mut fails, log_tail) = crate::emu::kernel::crash_snapshot();
    fails.push(msg.to_string());
    if json {
        println!("{}", rvblk_report::Report::failed(fails.clone()).to_json());
    }
    for l in &log_tail {
        eprintln!("  log: {l}");
    }
    for f in &fails {
        eprintln!("VERIFIER FAILURE: {f}");
    }
}

/// Ends the process with a report naming `what` unless the returned sender is dropped within
/// `limit` (a driver call that never returns: a hang).
pub fn watchdog(limit: std::time::Duration, what: String) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            emergency_report(
                &format!(
                    "{what} has not returned after {} s (a hang)",
                    limit.as_secs()
                ),
                JSON.load(Ordering::Relaxed),
            );
            // SAFETY: immediate exit after a hang; the driver's state is unknown.
            unsafe { libc::_exit(CRASH_EXIT) };
        }
    });
    tx
}
