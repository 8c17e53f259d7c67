//! `limits`: the cluster-wide defaults and bounds every command is executed under.
//!
//! [`super::execute()`] and the topic commands in [`super::topics`] both read them, and the
//! shells that run the state machine ([`crate::node`], [`crate::authority::local`]) fill them
//! in, so they live apart from the code that uses them.

use crate::metadata::topic_config::TopicDefaults;

/// Producer ids handed out per AllocateProducerIds, as Kafka's controller does.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// Cluster-wide defaults and limits that decide what commands do.
///
/// They are an input of [`execute`](super::execute()), so every voter must run with the same
/// limits, and the log is replayed with the limits of the replaying process. The shell should
/// therefore fill in defaults (partition count, replication factor) before proposing, so that a
/// command means the same thing whenever it is executed.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Topic defaults (`num.partitions`, `default.replication.factor`, topic config defaults)
    /// and the per-request partition bound (default 10,000).
    pub topics: TopicDefaults,
    /// Producer ids per block.
    pub producer_id_block_size: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            topics: TopicDefaults::default(),
            producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        }
    }
}

/// The most users with SCRAM credentials a cluster holds (each may have one credential per
/// mechanism). An upsertion that would add a user past it is refused with POLICY_VIOLATION,
/// so the image and every broker's credential table stay bounded.
pub const SCRAM_USERS_MAX: usize = 10_000;

/// The most deletions plus upsertions one AlterUserScramCredentials request may carry. A
/// larger request is refused whole, before it is proposed.
pub const SCRAM_ALTERATIONS_PER_REQUEST_MAX: usize = 1000;

/// The ACL bounds, defined beside the ACL types and enforced by the controller: the most
/// bindings a cluster holds, and the most creations or filters per request.
pub use crate::security::acl::{ACL_CHANGES_PER_REQUEST_MAX, ACLS_MAX};
