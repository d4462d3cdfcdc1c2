//! `rvblkxp.sys`: a legacy (non-PnP) SCSIPORT miniport for Windows XP/2003 text-mode and
//! GUI-mode setup and installed systems (x86; x64 for XP x64 / Server 2003 x64), built from the
//! same core as `rvblk.sys` (`docs/windows-integration.md` §2).
//!
//! * `trampolines.rs` — DriverEntry and every `unsafe extern "system"` callback SCSIPORT calls,
//!   generic over the safe [`trampolines::ScsiMiniport`] trait.
//! * `miniport.rs` — the driver's SCSIPORT logic, safe Rust: which images to expose (setup
//!   phase, service, `disks=`), the adapter it declares.
//! * `scsiport.rs` — the scsiport.sys imports and their wrappers.
#![no_std]
#![no_main]
// Enforced: unsafe code only in the trampolines and the scsiport.sys wrappers.
#![deny(unsafe_code)]

mod miniport;
#[allow(unsafe_code)]
mod scsiport;
#[allow(unsafe_code)]
mod trampolines;
