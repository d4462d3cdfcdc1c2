//! Fault injection.
pub fn main(_d: &std::path::Path, _p: crate::kernel::Personality, _v: bool) -> i32 {
    0
}
