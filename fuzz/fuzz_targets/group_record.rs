//! Fuzz target `group_record`: see [`ferry_fuzz::group::group_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::group::group_record(data));
