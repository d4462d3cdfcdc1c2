//! rvblk: slipstream, inject and sign tool for the rvblk driver
fn main() {}
