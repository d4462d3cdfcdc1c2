//! rvblk.sys: Vista SP1 and later.
include!("../link-driver.rs");

fn main() {
    link_as_driver("6.00");
}
