//! `rvblk.sys`: the StorPort virtual miniport (Vista SP1 … Windows 11, x86/x64/arm64).
//!
//! Files by execution context:
//! * `entry.rs` — DriverEntry and StorPortInitialize (PASSIVE_LEVEL, once).
//! * `adapter.rs` — HwFindAdapter, HwInitialize, HwAdapterControl, HwFreeAdapterResources,
//!   HwResetBus (PASSIVE/DISPATCH, serialised by StorPort).
//! * `io.rs` — HwStartIo (≤ DISPATCH_LEVEL, unsynchronised, many CPUs).
//! * `storport.rs` — the storport.sys imports.
#![no_std]
#![no_main]

mod adapter;
mod entry;
mod io;
mod storport;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Kernel code cannot unwind. The core is written to return errors, not panic; reaching this
    // is a bug, and spinning keeps it visible under a debugger rather than corrupting state.
    loop {
        core::hint::spin_loop();
    }
}

// The MSVC toolchain expects this symbol whenever floating point appears; rvblk uses none, but
// core's formatting code references it.
#[no_mangle]
#[used]
static _fltused: i32 = 0;
