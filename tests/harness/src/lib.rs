//! Runs the real rvblk .sys binaries under an emulated StorPort or SCSIPORT/ntoskrnl kernel, with
//! Driver-Verifier-like checks (guard pages, SRB completion rules, IRQL, leaks, small kernel
//! stacks, fault injection), a SCSI compliance suite, a stress test and benchmarks.
//!
//! x64 drivers run in a 64-bit process; x86 drivers run in the i686 build of the same crate
//! (see `helper`); arm64 drivers in the aarch64 build, run under `qemu-aarch64` when the
//! host is not arm64 (`docs/arm64.md`).

pub mod arch;
pub mod bench;
pub mod compliance;
pub mod crash;
pub mod faults;
pub mod helper;
pub mod kernel;
pub mod mem;
pub mod oracle;
pub mod pe;
pub mod phys;
pub mod report;
pub mod scenario;
pub mod scsi;
pub mod scsiport;
pub mod stack;
pub mod storport;
pub mod torture;
