//! One partition replica held by this broker: its log and its replication state.
//!
//! The log sits behind [`PartitionLog`], so the broker code is the same over the file-backed log
//! and the in-memory one. A single mutex guards the log together with the state derived from it
//! (high watermark, leader epoch), so readers never see a high watermark the log has not reached.
//! Critical sections are short: an append writes to the page cache, a read copies from it.
//!
//! # Roles
//! The metadata image says who leads. On the leader the partition carries a
//! [`ReplicaTracker`] (followers' log end offsets, the high watermark rule, ISR changes to ask
//! for); it is created afresh in every leader epoch. On a follower there is none: the fetcher
//! appends what the leader sends and takes the leader's high watermark, capped by its own log
//! end offset.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;

use super::idempotence::{ProducerCheck, Producers};
use super::now_ms;
use super::replica::ReplicaTracker;
use crate::log::producer_state::ProducerBatch;
use crate::log::{AppendInfo, Offset, PartitionLog};
use crate::metadata::topic_config::TopicConfig;
use crate::metadata::{NodeId, PartitionState, TopicId};
use crate::metrics::broker::TopicTraffic;

/// Identifies a partition by topic name and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// What a partition replica knows about itself, under one lock with its log.
pub struct PartitionInner {
    /// The records.
    pub log: Box<dyn PartitionLog>,
    /// Effective topic configuration.
    pub config: TopicConfig,
    /// Replica placement and leadership from the latest metadata image.
    pub state: PartitionState,
    /// Offsets below this are committed and visible to consumers.
    pub high_watermark: Offset,
    /// Followers' progress, on the leader only (see the module docs).
    pub tracker: Option<ReplicaTracker>,
    /// Idempotent producers' state, built from the log on every replica
    /// ([`super::idempotence`]).
    pub producers: Producers,
}

/// A partition replica on this broker.
pub struct Partition {
    /// Name and index.
    pub id: TopicPartition,
    /// Topic id, to tell a re-created topic of the same name apart.
    pub topic_id: TopicId,
    /// This broker's node id.
    pub node_id: NodeId,
    /// The topic's traffic counters (shared by its partitions), when metrics are on: cached
    /// here so a produce counts with two atomic adds and no lookup.
    pub traffic: Option<TopicTraffic>,
    /// Log and state.
    inner: Mutex<PartitionInner>,
}

impl Partition {
    /// A replica over `log` with the placement in `state`, counting its traffic in `traffic`.
    pub fn new(
        id: TopicPartition,
        topic_id: TopicId,
        node_id: NodeId,
        log: Box<dyn PartitionLog>,
        config: TopicConfig,
        state: PartitionState,
        traffic: Option<TopicTraffic>,
    ) -> Self {
        let mut inner = PartitionInner {
            log,
            config,
            state: state.clone(),
            high_watermark: 0,
            tracker: None,
            producers: Producers::default(),
        };
        inner.install(node_id, state);
        Self {
            id,
            topic_id,
            node_id,
            traffic,
            inner: Mutex::new(inner),
        }
    }

    /// Locks the partition. Hold the guard only for in-memory work and page-cache I/O.
    pub fn lock(&self) -> MutexGuard<'_, PartitionInner> {
        self.inner.lock().expect("partition lock poisoned")
    }

    /// Installs new placement and configuration from a metadata image.
    pub fn update(&self, state: PartitionState, config: TopicConfig) {
        let mut inner = self.lock();
        inner.log.set_config(config.log.clone());
        inner.config = config;
        inner.install(self.node_id, state);
    }
}

impl PartitionInner {
    /// A follower replica over `log` with no placement, for unit tests of per-partition logic.
    #[cfg(test)]
    pub fn for_tests(log: Box<dyn PartitionLog>) -> Self {
        Self {
            log,
            config: TopicConfig::default(),
            state: PartitionState {
                replicas: vec![],
                isr: vec![],
                leader: -1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
            high_watermark: 0,
            tracker: None,
            producers: Producers::default(),
        }
    }

    /// Whether `node` leads this partition.
    pub fn is_leader(&self, node: NodeId) -> bool {
        self.state.leader == node
    }

    /// Takes a new partition state: becoming leader (a new leader epoch) starts a fresh
    /// [`ReplicaTracker`] from the log end offset; becoming a follower drops it and caps the
    /// high watermark at the log end offset; within the same epoch the tracker follows the
    /// replica list and settles an AlterPartition the new partition epoch answers.
    fn install(&mut self, node: NodeId, state: PartitionState) {
        let now = now_ms();
        let new_epoch = state.leader_epoch != self.state.leader_epoch;
        let leads = state.leader == node;
        self.state = state;
        match (&mut self.tracker, leads) {
            (Some(tracker), true) if !new_epoch => {
                tracker.set_replicas(&self.state.replicas, &self.state.isr, now);
                tracker.observe_partition_epoch(self.state.partition_epoch);
            }
            (_, true) => {
                let end = self.log.log_end_offset();
                self.tracker = Some(ReplicaTracker::new(
                    node,
                    &self.state.replicas,
                    &self.state.isr,
                    end,
                    now,
                ));
            }
            (_, false) => {
                self.tracker = None;
                self.high_watermark = self.high_watermark.min(self.log.log_end_offset());
            }
        }
        self.advance_high_watermark();
    }

    /// On the leader, moves the high watermark to what the maximal ISR holds; returns whether
    /// it moved (the caller wakes waiting produce and fetch requests).
    pub fn advance_high_watermark(&mut self) -> bool {
        let Some(tracker) = &self.tracker else {
            return false;
        };
        let end = self.log.log_end_offset();
        let next = tracker
            .high_watermark(&self.state.isr, end, self.high_watermark)
            .min(end);
        let moved = next > self.high_watermark;
        self.high_watermark = next;
        moved
    }

    /// On a follower, takes the leader's high watermark, capped by the local log end offset.
    pub fn follow_high_watermark(&mut self, leader_high_watermark: Offset) {
        self.high_watermark = leader_high_watermark.min(self.log.log_end_offset()).max(0);
    }

    /// Checks that `node` leads the partition in the leader epoch the client believes current
    /// (KIP-320; -1 skips the epoch check), with the error Kafka answers otherwise.
    pub fn check_leader(&self, node: NodeId, client_epoch: i32) -> Result<(), ResponseError> {
        if !self.is_leader(node) {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let epoch = self.state.leader_epoch;
        match client_epoch {
            e if e < 0 || e == epoch => Ok(()),
            e if e < epoch => Err(ResponseError::FencedLeaderEpoch),
            _ => Err(ResponseError::UnknownLeaderEpoch),
        }
    }

    /// Advances the high watermark after a local append (a lone leader commits at once).
    pub fn after_append(&mut self) {
        self.advance_high_watermark();
    }
}

/// Idempotent producers, under the partition lock with the log ([`super::idempotence`] has the
/// flow; each method hands [`Producers`] this partition's log).
impl PartitionInner {
    /// Checks produced `records` against the producer state: [`Producers::check_batch`].
    pub fn check_producer_batch(&self, records: &[u8]) -> ProducerCheck {
        self.producers.check_batch(records)
    }

    /// Records a batch the leader just appended: [`Producers::record_appended`].
    pub fn record_appended(&mut self, batch: &ProducerBatch, info: &AppendInfo) {
        self.producers
            .record_appended(self.log.as_ref(), batch, info);
    }

    /// Records the batches a follower copied from its leader: [`Producers::record_replicated`].
    pub fn record_replicated(&mut self, records: &[u8]) {
        self.producers.record_replicated(self.log.as_ref(), records);
    }

    /// Rebuilds the producer state after a restart: [`Producers::recover`].
    pub fn recover_producers(&mut self, snapshot_dir: Option<PathBuf>) {
        self.producers.recover(self.log.as_mut(), snapshot_dir);
    }

    /// Rebuilds the producer state after the log was truncated: [`Producers::after_truncation`].
    pub fn producers_after_truncation(&mut self) {
        self.producers.after_truncation(self.log.as_mut());
    }

    /// Expires idle producers and snapshots after a time-based roll: [`Producers::maintain`].
    pub fn maintain_producers(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .maintain(self.log.as_ref(), now_ms, expiration_ms);
    }

    /// Writes a durable snapshot at the log end offset (clean shutdown).
    pub fn snapshot_producers(&mut self) {
        self.producers.snapshot_at_end(self.log.as_ref());
    }
}
