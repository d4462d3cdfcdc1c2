//! Kernel-side glue shared by `rvblk.sys` (StorPort) and `rvblkxp.sys` (SCSIPORT).
//!
//! Everything here runs inside Windows and is the only place, with the port crates' entry
//! files, where `unsafe` lives. Execution contexts, by file:
//!
//! * [`discovery`] — PASSIVE_LEVEL only (HwFindAdapter): low-memory snapshot, OS RAM ranges,
//!   NFIT, then the core's discovery and the mapping of every accepted image.
//! * [`medium`] — the I/O path (HwStartIo, up to DISPATCH_LEVEL, many CPUs at once): byte access
//!   to a mapped image (`rvblk_core::scsi::Medium`).
//! * [`io`] — SRB → core → SRB completion fields, port independent.
//! * [`nt`] — the ntoskrnl/HAL imports and their contracts.
//! * [`log`] — `DbgPrint` lines with the `rvblk:` prefix.
#![no_std]

pub mod adapter;
pub mod discovery;
pub mod io;
pub mod log;
pub mod medium;
pub mod nt;
pub mod port;
