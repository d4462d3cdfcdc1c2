//! Per-architecture pieces of the harness that have no x86 counterpart.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
