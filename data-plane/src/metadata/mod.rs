//! Cluster metadata as the broker sees it: the image and the admin requests that change it.
//!
//! A broker serves Metadata, Produce and Fetch from an immutable [`Image`]: which brokers exist,
//! which topics, and where each partition's replicas live. The image changes only through an
//! authority ([`crate::authority::Authority`]); the broker subscribes to it and reconciles its
//! local partitions with every new image (creating logs for new partitions, deleting the logs
//! of removed topics). This module holds the data both sides speak: the image, the topics to
//! create or delete ([`NewTopic`], [`TopicRef`]), [`AdminError`], topic and dynamic broker
//! configs, and name validation. It depends on neither the controller nor the authorities.

pub mod broker_configs;
pub mod image;
pub mod topic_config;
pub mod validate;

use kafka_protocol::ResponseError;

pub use image::{BrokerInfo, Image, NodeId, PartitionState, Topic, TopicId};

/// The internal topic of the transaction coordinator (Ferry has none yet; the name is
/// reserved so clients cannot write it before one exists).
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's internal topics (its `Topic.isInternal`): only the broker itself writes them, never
/// a Produce request. This is the one list; everything that asks uses [`is_internal_topic`].
pub const INTERNAL_TOPICS: [&str; 2] = [crate::group::OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC];

/// Whether `name` is one of [`INTERNAL_TOPICS`].
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// A topic to create, as asked for by a CreateTopics request (or by auto-creation).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTopic {
    /// Topic name; validated by the authority.
    pub name: String,
    /// Number of partitions, or `None` for the cluster default (`num.partitions`).
    pub num_partitions: Option<i32>,
    /// Replication factor, or `None` for the cluster default (`default.replication.factor`).
    pub replication_factor: Option<i16>,
    /// Explicit replica assignment per partition (index = partition); empty to let the
    /// authority place replicas.
    pub assignments: Vec<Vec<NodeId>>,
    /// Topic config overrides by Kafka name.
    pub configs: Vec<(String, String)>,
}

/// How a topic to delete is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By topic id.
    Id(TopicId),
}

/// An admin request failed for one topic; carried back to the client as response data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AdminError {
    /// The Kafka error code the client receives.
    pub code: ResponseError,
    /// A human sentence, sent as the error message where the API has one.
    pub message: String,
}

impl AdminError {
    /// An error with a code and a message.
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
