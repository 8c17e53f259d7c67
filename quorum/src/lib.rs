//! `ferry-quorum`: raft-rs made usable — a replicated, durable log under any deterministic
//! [`StateMachine`].
//!
//! Ferry runs two kinds of quorum on this crate: the KRaft-style controllers of each Kafka
//! cluster (3 or 5 voters, the metadata log) and the control plane's own store (1 or 3
//! voters). Both hand it a state machine and get back a [`QuorumHandle`] to propose commands
//! and read linearizably.
//!
//! # Layout
//!
//! ```text
//! QuorumHandle ──requests──▶ node task (server.rs) ◀──raft messages── gRPC Raft.Send
//!                              │ owns Node (node.rs, sans-IO)          (transport.rs)
//!                              │   ├─ raft-rs RawNode
//!                              │   ├─ LogStore (storage.rs) over Disk (disk.rs)
//!                              │   └─ your StateMachine
//!                              └──▶ one sender task per peer ──gRPC──▶ peers
//! ```
//!
//! - [`node`]: the sans-IO core. Inputs (tick, step, propose, read) in, outputs (messages,
//!   outcomes) out; no clock, no sockets. The simulation in `tests/integration/simulation.rs` drives it.
//! - [`storage`]: durable raft storage, our own two-file format (see its docs for why).
//! - [`server`]: the thin tokio shell: one task owns the node and `select!`s over a ticker,
//!   peer messages and client requests.
//! - [`transport`]: the gRPC service and per-peer senders.
//! - `request`: the client requests both of them hand to the node task.
//! - [`metrics`]: the raft numbers the node task publishes (term, commit, role, commit
//!   latency), registered by the quorum's owner under its prefix.
//!
//! # The Ready order
//!
//! [`Node::ready`] handles raft's `Ready` exactly as raft-rs documents: send messages; install
//! a snapshot; apply committed entries; persist entries and HardState in one fsynced write;
//! send persisted messages; `advance`; handle the light ready (commit index, messages,
//! committed entries); `advance_apply`.
//!
//! # Guarantees
//!
//! - Committed entries are applied once per state machine incarnation, in log order, on every
//!   voter; state machines are rebuilt on restart from the latest snapshot plus the log, with
//!   raft's `applied` set to the snapshot index.
//! - Every accepted proposal gets exactly one outcome; proposals on a follower are refused
//!   with [`Error::NotLeader`] (and the handle forwards them to the leader), never dropped.
//! - [`QuorumHandle::read`] is linearizable (raft ReadIndex, `ReadOnlyOption::Safe`).
//! - pre_vote and check_quorum are always on.
//!
//! # Differences from plain raft-rs
//!
//! - The state machine is volatile and snapshotted by the quorum itself every
//!   [`Options::snapshot_entries`] entries or [`Options::snapshot_bytes`] bytes; the log is
//!   compacted behind each snapshot, and a lagging follower catches up by snapshot, sent in
//!   chunks of [`Options::snapshot_chunk_bytes`] (`Raft.SendSnapshot`), so the state is bounded
//!   by [`Options::snapshot_bytes_max`], not by one gRPC message.
//! - Membership is static: the voter set given at bootstrap. ConfChangeV2 (KIP-853 style
//!   single-voter changes via learners) is future work; a membership change entry is refused
//!   from peers and, should one be in the log, skipped as a logged no-op.
//! - Empty commands are refused: raft uses empty entries as its own no-ops.
//! - Input never crashes a voter. Every proposal (local or through `Raft.Propose`) is checked by
//!   [`StateMachine::validate`] first, so a command the state machine cannot apply never
//!   enters the log ([`Error::InvalidInput`], KIND_INVALID_INPUT on the wire); a state machine
//!   applies an entry that still does not decode as a recorded no-op, identically on every
//!   voter. Every raft message that would trip one of raft-rs 0.7's fatal checks (a heartbeat
//!   committing past the log, a gap in an append, a term that could overflow, …) is dropped
//!   before raft sees it and its sender logged; the full list is in [`node`]'s docs. Damaged
//!   files on disk (a log record, a snapshot, a voter set, state machine data) stop the node
//!   with [`Error::Corrupt`], never a panic.
//! - What this does not do: authenticate peers. A voter that can reach the transport is
//!   trusted as raft trusts its peers (a forged heartbeat within the log still advances the
//!   commit index), so the transport must only be reachable by authenticated members.

pub mod disk;
mod error;
pub mod logger;
pub mod metrics;
pub mod node;
mod options;
mod request;
pub mod server;
mod state_machine;
pub mod storage;
pub mod transport;

pub use disk::{Disk, FsDisk, MemDisk};
pub use error::{Error, Result};
pub use node::{Node, Outcome, Role, Status, VoterStatus};
pub use options::{
    CLIENT_QUEUE_CAPACITY, DEFAULT_ELECTION_TICK, DEFAULT_HEARTBEAT_TICK, DEFAULT_TICK_INTERVAL,
    INBOUND_QUEUE_CAPACITY, MESSAGE_BYTES_MAX, Options, PEER_QUEUE_CAPACITY, SNAPSHOT_BYTES_MAX,
    SNAPSHOT_CHUNK_BYTES, TlsOptions, VoterOf,
};

pub use metrics::QuorumMetrics;
pub use server::{Quorum, QuorumHandle};
pub use state_machine::StateMachine;
pub use storage::LogStore;

/// A voter's id as raft-rs numbers voters: nonzero, unique within its quorum (raft-rs reserves
/// 0 for "none"). A Kafka node id (`ferry_kafka_config::ids::NodeId`, an i32) converts at this
/// crate's boundary with [`raft_id`] and [`node_id`]; the control plane's members have raft
/// ids of their own and no Kafka node id.
pub type RaftId = u64;

/// The raft id of Kafka node id `node` (`n >= 0` maps to `n + 1`).
pub fn raft_id(node: ferry_kafka_config::ids::NodeId) -> RaftId {
    RaftId::try_from(node).expect("node ids are validated non-negative") + 1
}

/// The Kafka node id of a raft id that [`raft_id`] made.
pub fn node_id(raft: RaftId) -> ferry_kafka_config::ids::NodeId {
    ferry_kafka_config::ids::NodeId::try_from(raft - 1).expect("raft ids come from node ids")
}

/// Raft messages as raft-rs defines them (`eraftpb.Message`), for drivers of [`Node`].
pub use raft::prelude::Message;
