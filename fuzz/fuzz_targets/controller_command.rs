//! Fuzz target `controller_command`: see [`ferry_fuzz::controller::controller_command`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::controller::controller_command(data));
