//! Fuzz target `record_batch`: see [`ferry_fuzz::kafka::record_batch`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::kafka::record_batch(data));
