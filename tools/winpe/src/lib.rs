//! Offline injection of rvblk into WinPE/Setup `boot.wim` images and BCD stores, from Linux.
//!
//! * [`inject`]: add the driver, its INF and the SYSTEM hive entries of
//!   `docs/windows-integration.md` §5 to the images of a WIM, or remove them again.
//! * [`bcd`]: set or clear test-signing / nointegritychecks in a BCD store.
//! * [`prepare`]: the whole job on an extracted ISO tree.
//! * [`info`]: what rvblk finds in a WIM, BCD store or SYSTEM hive.
//! * [`verifier`]: Driver Verifier for rvblk.sys, switched on offline (`docs/verifier.md`).
//!
//! Formats are handled by wimlib and hivex ([`wim::Wim`], [`hive::Hive`]) behind the
//! [`store::WimStore`] and [`store::RegistryHive`] traits.

pub mod bcd;
pub mod cli;
pub mod error;
mod ffi;
pub mod hive;
pub mod info;
pub mod inject;
pub mod package;
pub mod prepare;
pub mod store;
pub mod system;
pub mod verifier;
pub mod wim;

pub use error::{Error, ErrorKind, Result};
