//! rvblkxp.sys: subsystem version 5.01 on x86 so Windows XP loads it; 5.02 on x64, whose oldest
//! Windows is XP x64 / Server 2003 x64, NT 5.2 (`docs/windows-integration.md` §6, Subsystem row).
include!("../link-driver.rs");

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let subsystem = match arch.as_str() {
        "x86" => "5.01",
        "x86_64" => "5.02",
        // SCSIPORT miniports exist for XP/2003 on x86 and x64 only.
        other => panic!("rvblkxp.sys is built for x86 and x86_64 only, not {other:?}"),
    };
    link_as_driver(subsystem);
}
