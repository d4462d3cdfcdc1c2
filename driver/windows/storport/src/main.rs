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
