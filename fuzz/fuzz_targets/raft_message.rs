//! Fuzz target `raft_message`: see [`ferry_fuzz::raft::raft_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::raft::raft_message(data));
