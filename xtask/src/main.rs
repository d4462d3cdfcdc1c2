//! Project tasks: package, test, bench
fn main() {}
