//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.

use std::ffi::OsString;
use std::process::ExitCode;

/// `rvblk xp ...` (placeholder until implemented).
pub fn xp(_args: Vec<OsString>) -> ExitCode {
    eprintln!("rvblk xp: not implemented yet");
    ExitCode::from(2)
}
