//! Fuzz target `kafka_request`: see [`ferry_fuzz::kafka::kafka_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::kafka::kafka_request(data));
