//! Fuzz target `grpc_message`: see [`ferry_fuzz::grpc::grpc_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::grpc::grpc_message(data));
