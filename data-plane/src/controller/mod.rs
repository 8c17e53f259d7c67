//! The KRaft-style controller: a deterministic metadata state machine on the quorum.
//!
//! A cluster's controllers (3 or 5 `ferry node`s with the controller role) replicate one
//! metadata log with [`ferry_quorum`]. This module is the state machine they replicate; it is
//! sans-IO and deterministic. The controller *process* (gRPC service, heartbeats and session
//! timers, broker-side client) lives elsewhere and calls into it.
//!
//! # Flow
//!
//! ```text
//! admin request / heartbeat ─▶ Command ─propose─▶ raft log (entry at index i)
//!                                                    │ committed, on every voter
//!                                                    ▼
//!            execute(image, i, command) ─▶ (records, CommandResult ─▶ proposer)
//!                                                    │
//!            image.apply(i, record) for each record ◀┘ ─▶ history[(i, records)]
//!                                                                 │
//!      brokers: MetadataLog::read_since(offset) ─▶ Delta::Records | Delta::Snapshot
//!               and MetadataImage::apply on their own copy (the same code)
//! ```
//!
//! - [`command`]: what is proposed ([`Command`]) and answered ([`CommandResult`]).
//! - [`execute()`]: validation and the broker lifecycle; [`topics`] for topics and configs.
//! - [`security`]: SCRAM credentials and ACLs (AlterUserScramCredentials, CreateAcls,
//!   DeleteAcls).
//! - [`replication`]: AlterPartition (ISR changes from leaders) and preferred-leader election.
//! - [`heartbeat()`]: the pure part of a broker heartbeat (unfence when caught up, shut down).
//! - [`placement`]: rack-aware, balanced replica placement.
//! - [`records`]: the typed metadata records ([`Record`]), after KIP-631.
//! - [`image`]: [`MetadataImage`], the state the records build; also the snapshot.
//! - [`state_machine`]: [`MetadataStateMachine`] for the quorum, [`MetadataLog`] for readers.
//!
//! # Offsets
//!
//! **The metadata offset of a batch is the raft index of the entry that produced it.** All
//! records of one command share that offset, and are applied in order. Offsets therefore have
//! gaps (raft's own empty entries, commands that were refused or changed nothing), which
//! brokers never need to see. A broker's epoch is the offset of its registration, so "caught
//! up" (KIP-631: metadata offset ≥ registration offset) compares numbers of the same space.
//!
//! # Determinism
//!
//! Every voter executes every command against the same image and must derive the same records.
//! So [`execute()`] reads only its arguments: no clock, no randomness (topic ids are hashed from
//! the cluster id, offset and name), only `BTreeMap`s and sorted iteration, and [`Limits`] that
//! are the same on every voter. [`MetadataImage::apply`] panics on a record that contradicts
//! the image instead of skipping it, because skipping on one replica would diverge.
//!
//! # Differences from Kafka's KRaft
//!
//! - Kafka's active controller turns requests into records *before* appending them; here the
//!   log holds commands and every voter derives the records. It saves a round of bookkeeping
//!   (no uncommitted-state overlay on the leader), at a price: the log is replayed with the
//!   replaying process's [`Limits`], so the shell fills in defaults before proposing.
//! - Records are JSON, not Kafka's binary framing; snapshots are one JSON image, not records.
//! - No eligible leader replicas (KIP-966), no unclean election, no reassignment
//!   (adding/removing replicas). Preferred-leader rebalancing moves a leader back as soon as
//!   its preferred replica is in the ISR (Kafka waits for a 10 % imbalance, checked every
//!   5 minutes).
//! - Duplicate-registration detection uses the fenced flag, not session liveness, because
//!   sessions are timing and timing is not in the log.

pub mod command;
pub mod execute;
#[cfg(test)]
mod golden;
pub mod heartbeat;
pub mod image;
pub mod limits;
pub mod placement;
pub mod records;
pub mod replication;
pub mod security;
pub mod state_machine;
#[cfg(test)]
pub(crate) mod testing;
pub mod topics;

pub use command::{
    AlteredPartition, ApiError, Command, CommandResult, ConfigOp, ProducerIdBlock, ScramDeletion,
    ScramUpsertion,
};
pub use execute::{execute, precheck};
pub use heartbeat::{Heartbeat, heartbeat};
pub use image::{BrokerRegistration, MetadataImage, PartitionImage, SnapshotError, TopicImage};
pub use limits::{Limits, PRODUCER_ID_BLOCK_SIZE};
pub use placement::Placer;
pub use records::{
    BrokerEpoch, ConfigResource, LeaderChange, LeaderEpoch, Listener, NO_LEADER, PartitionEpoch,
    ProducerId, Record, StoredCredential,
};
pub use state_machine::{
    Delta, HISTORY_BATCHES_MAX, HISTORY_RECORDS_MAX, MetadataLog, MetadataStateMachine, Query,
};
