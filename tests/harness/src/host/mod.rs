//! Process-level plumbing: loading the driver's PE image into this process (`pe`) and handing
//! x86 and arm64 drivers to the matching helper build of the harness (`helper`).

pub mod helper;
pub mod pe;
