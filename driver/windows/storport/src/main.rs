//! `rvblk.sys`: the StorPort virtual miniport (Vista SP1 … Windows 11, x86/x64/arm64).
//!
//! * `trampolines.rs` — DriverEntry and every `unsafe extern "system"` callback StorPort calls,
//!   generic over the safe [`trampolines::StorMiniport`] trait; the only place raw callback
//!   arguments become typed values (with their IRQL token).
//! * `miniport.rs` — the driver's StorPort logic, safe Rust.
//! * `storport.rs` — the storport.sys imports and their wrappers.
#![no_std]
#![no_main]
// Enforced: unsafe code only in the trampolines and the storport.sys wrappers.
#![deny(unsafe_code)]

mod miniport;
#[allow(unsafe_code)]
mod storport;
#[allow(unsafe_code)]
mod trampolines;
