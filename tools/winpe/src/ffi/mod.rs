//! Thin raw FFI declarations for the two C libraries this crate links: wimlib (`libwim`) and
//! hivex (`libhivex`). Only the functions and structure prefixes the crate uses are declared;
//! the safe wrappers live in [`crate::wim`] and [`crate::hive`].

pub mod hivex;
pub mod wimlib;
