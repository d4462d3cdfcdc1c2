#![no_main]
// Fuzz target: arbitrary physical memory through discovery (owner: discovery).
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
