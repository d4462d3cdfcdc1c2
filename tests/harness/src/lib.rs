//! Runs the real rvblk .sys binaries under an emulated StorPort or SCSIPORT/ntoskrnl kernel, with
//! Driver-Verifier-like checks (guard pages, SRB completion rules, IRQL, leaks, small kernel
//! stacks, fault injection), a SCSI compliance suite, a stress test and benchmarks.
//!
//! x64 drivers run in a 64-bit process; x86 drivers run in the i686 build of the same crate
//! (see `host::helper`); arm64 drivers in the aarch64 build, run under `qemu-aarch64` when the
//! host is not arm64 (`docs/arm64.md`).
//!
//! Laid out by responsibility:
//! - [`emu`]: what the harness emulates — the kernel exports, both port drivers, physical
//!   memory and the driver's kernel stack.
//! - [`checks`]: what it checks beyond the ports' own rules — guarded (special-pool) memory and
//!   the crash report a fault inside driver code becomes.
//! - [`commands`]: what it runs — one module per CLI command, plus the scenarios and CDB
//!   helpers they share.
//! - [`host`]: process-level plumbing — loading the PE image, delegating to the x86/arm64
//!   helper builds.

pub mod checks;
pub mod commands;
pub mod emu;
pub mod host;
