//! Benchmarks (filled in below).
pub fn main(_d: &std::path::Path, _s: u64, _p: &str, _v: bool) -> i32 {
    0
}
