//! Link as a kernel driver with rust-lld; subsystem version 5.01 so XP loads it
//! (`windows-integration.md` §6, `anchors.md` §6).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("windows") {
        return;
    }
    for arg in [
        "/DRIVER",
        "/SUBSYSTEM:NATIVE,5.01",
        "/ENTRY:DriverEntry",
        "/NODEFAULTLIB",
        "/RELEASE",
        "/NXCOMPAT",
        "/DYNAMICBASE",
        "/TSAWARE:NO",
        "/INCREMENTAL:NO",
        "/DEBUG:NONE",
        "/MANIFEST:NO",
        "/ALIGN:4096",
        "/FILEALIGN:512",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
