//! Fuzz target `rest_request`: see [`ferry_fuzz::rest::rest_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::rest::rest_request(data));
