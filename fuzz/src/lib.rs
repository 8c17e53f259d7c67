//! Ferry's fuzz harnesses: one function per fuzz target, each feeding attacker-controlled bytes
//! to the code that decodes them off the network, exactly as the server would.
//!
//! The targets in `fuzz_targets/` are one-line `fuzz_target!` wrappers around these functions;
//! [`seeds`] builds their starting corpora (`fuzz/corpus/<target>/`). A harness returns
//! normally for any input the server would refuse with an error; a panic, an abort (a failed
//! allocation) or running out of memory is a finding. `docs/fuzzing.md` lists the targets,
//! how to run them and what they found; `scripts/fuzz.sh` runs them.
//!
//! | target | what the bytes are | the code under test |
//! |---|---|---|
//! | `kafka_request` | a Kafka request frame | frame decoder, header + body decode with the guard |
//! | `record_batch` | the records of a Produce partition | produce validation; timestamp lookup and offsets replay of stored batches |
//! | `raft_message` | a `ferry.quorum.v1.SendRequest` | raft message decode, then a voter's `step` |
//! | `store_command` | control-plane store commands, one per line | the store's `apply` |
//! | `controller_command` | metadata commands, one per line | the controller's `apply` |
//! | `rest_request` | `METHOD /path?query`, a newline, a JSON body | the REST face over a memory store |
//! | `grpc_message` | a selector byte and a protobuf message | prost decode of every request |
//! | `group_record` | `__consumer_offsets` key/value records | record decode, coordinator replay |

pub mod controller;
pub mod group;
pub mod grpc;
pub mod kafka;
pub mod raft;
pub mod rest;
pub mod seeds;
pub mod store;

/// Splits `data` into the lines of a line-oriented input (commands as compact JSON, which never
/// contains a raw newline), skipping empty lines. At most [`LINES_MAX`] lines are returned so
/// one input stays cheap.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .take(LINES_MAX)
}

/// Most commands one input of a line-oriented target applies.
pub const LINES_MAX: usize = 64;
