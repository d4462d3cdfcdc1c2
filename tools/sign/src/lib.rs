//! Authenticode signing of rvblk's drivers and catalogs, in pure Rust

pub mod cli;
