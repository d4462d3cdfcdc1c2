// Shared by the kernel binaries' build scripts (`include!`d): link as a kernel driver with
// rust-lld (`docs/windows-integration.md` §6). `subsystem` is the minimum NT version, e.g. "6.00".
fn link_as_driver(subsystem: &str) {
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("windows") {
        return;
    }
    let subsystem = format!("/SUBSYSTEM:NATIVE,{subsystem}");
    for arg in [
        "/DRIVER",
        subsystem.as_str(),
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
    println!("cargo:rerun-if-changed=../link-driver.rs");
}
