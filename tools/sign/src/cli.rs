//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.

use std::ffi::OsString;
use std::process::ExitCode;

/// `rvblk sign ...` (placeholder until implemented).
pub fn sign(_args: Vec<OsString>) -> ExitCode {
    eprintln!("rvblk sign: not implemented yet");
    ExitCode::from(2)
}
