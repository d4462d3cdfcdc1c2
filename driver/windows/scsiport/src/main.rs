//! `rvblkxp.sys`: a legacy (non-PnP) SCSIPORT miniport for Windows XP/2003 text-mode and
//! GUI-mode setup and installed systems (x86; x64 for XP x64 / Server 2003 x64), built from the
//! same core as `rvblk.sys` (`docs/windows-integration.md` §2).
//!
//! * `entry.rs` — DriverEntry, ScsiPortInitialize with the XP-sized structure.
//! * `adapter.rs` — HwFindAdapter (6 parameters; finds the loader's images, claims no hardware),
//!   HwInitialize, HwInterrupt, HwResetBus, HwAdapterControl.
//! * `io.rs` — HwStartIo: SCSIPORT serialises it; complete synchronously, then NextRequest.
//! * `scsiport.rs` — the scsiport.sys imports.
#![no_std]
#![no_main]

mod adapter;
mod entry;
mod io;
mod scsiport;
