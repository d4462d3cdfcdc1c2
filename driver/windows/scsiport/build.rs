//! rvblkxp.sys: subsystem version 5.01 so Windows XP loads it (`anchors.md` §6).
include!("../link-driver.rs");

fn main() {
    link_as_driver("5.01");
}
