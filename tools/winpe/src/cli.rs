//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.

use std::ffi::OsString;
use std::process::ExitCode;

/// `rvblk winpe ...` (placeholder until implemented).
pub fn winpe(_args: Vec<OsString>) -> ExitCode {
    eprintln!("rvblk winpe: not implemented yet");
    ExitCode::from(2)
}

/// `rvblk info ...` (placeholder until implemented).
pub fn info(_args: Vec<OsString>) -> ExitCode {
    eprintln!("rvblk info: not implemented yet");
    ExitCode::from(2)
}
