//! Fuzz target `store_command`: see [`ferry_fuzz::store::store_command`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::store::store_command(data));
