//! One partition replica held by this broker: its log and its replication state.
//!
//! The log sits behind [`PartitionLog`], so the broker code is the same over the file-backed log
//! and the in-memory one. A single mutex guards the log together with the state derived from it
//! (high watermark, leader epoch), so readers never see a high watermark the log has not reached.
//! Critical sections are short: an append writes to the page cache, a read copies from it.

use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;

use crate::log::{Offset, PartitionLog};
use crate::metadata::topic_config::TopicConfig;
use crate::metadata::{NodeId, PartitionState, TopicId};

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
}

/// A partition replica on this broker.
pub struct Partition {
    /// Name and index.
    pub id: TopicPartition,
    /// Topic id, to tell a re-created topic of the same name apart.
    pub topic_id: TopicId,
    /// This broker's node id.
    pub node_id: NodeId,
    /// Log and state.
    inner: Mutex<PartitionInner>,
}

impl Partition {
    /// A replica over `log` with the placement in `state`.
    pub fn new(
        id: TopicPartition,
        topic_id: TopicId,
        node_id: NodeId,
        log: Box<dyn PartitionLog>,
        config: TopicConfig,
        state: PartitionState,
    ) -> Self {
        let mut inner = PartitionInner {
            log,
            config,
            state,
            high_watermark: 0,
        };
        inner.high_watermark = inner.committed_end(node_id);
        Self {
            id,
            topic_id,
            node_id,
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
        inner.state = state;
        let committed = inner.committed_end(self.node_id);
        inner.high_watermark = inner.high_watermark.max(committed);
    }
}

impl PartitionInner {
    /// Whether `node` leads this partition.
    pub fn is_leader(&self, node: NodeId) -> bool {
        self.state.leader == node
    }

    /// The offset up to which the log is known committed: with this broker as the only
    /// in-sync replica, everything it holds. With followers, replication advances the high
    /// watermark instead (it stays where it is here).
    fn committed_end(&self, node: NodeId) -> Offset {
        if self.state.isr == [node] {
            self.log.log_end_offset()
        } else {
            self.high_watermark
        }
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

    /// Advances the high watermark after a local append.
    pub fn after_append(&mut self, node: NodeId) {
        self.high_watermark = self.committed_end(node);
    }
}
