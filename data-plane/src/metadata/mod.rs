//! Cluster metadata as the broker sees it, and the authority that changes it.
//!
//! A broker serves Metadata, Produce and Fetch from an immutable [`Image`]: which brokers exist,
//! which topics, and where each partition's replicas live. The image changes only through an
//! [`Authority`]; the broker subscribes to it and reconciles its local partitions with every new
//! image (creating logs for new partitions, deleting the logs of removed topics).
//!
//! Today the only authority is [`local::LocalAuthority`], the single-node case where the node is
//! its own metadata authority and keeps the image in its data directory. The KRaft-style
//! controller quorum will be a second implementation of the same trait: admin requests are then
//! forwarded to the active controller and the image follows the committed metadata log.

pub mod broker_configs;
pub mod image;
pub mod local;
pub mod quorum;
pub mod topic_config;
pub mod validate;

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::controller::{Command, CommandResult};
use kafka_protocol::ResponseError;
use tokio::sync::watch;

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

/// The outcome of creating one topic.
pub type CreateResult = Result<Topic, AdminError>;

/// The outcome of deleting one topic: its name and id.
pub type DeleteResult = Result<(String, TopicId), AdminError>;

/// The source of truth for cluster metadata.
///
/// [`Authority::execute`] runs a controller [`Command`] and answers once the change is durable
/// at the authority (for the quorum: committed) and applied to this broker's image, so a client
/// that sees success can use the result on this broker at once. The typed helpers
/// ([`Authority::create_topics`], …) are built on it.
pub trait Authority: Send + Sync + 'static {
    /// The latest image.
    fn image(&self) -> Arc<Image>;

    /// A receiver that sees every new image (and the current one first).
    fn subscribe(&self) -> watch::Receiver<Arc<Image>>;

    /// Runs a metadata command. An error means the authority could not be asked (no quorum,
    /// timeout); a refusal of the command itself is inside the [`CommandResult`].
    fn execute(&self, command: Command) -> BoxFuture<'_, Result<CommandResult, AdminError>>;

    /// The state of the metadata quorum (DescribeQuorum).
    fn describe_quorum(&self) -> BoxFuture<'_, Result<QuorumState, AdminError>>;

    /// This broker's epoch (the offset of its registration), which commands that speak for
    /// the broker carry (AlterPartition); -1 when unknown or not registered.
    fn broker_epoch(&self) -> i64 {
        -1
    }

    /// Creates topics, one result per topic in request order. With `validate_only`, checks
    /// everything and changes nothing.
    fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> BoxFuture<'_, Vec<CreateResult>> {
        Box::pin(async move {
            let count = topics.len();
            match self
                .execute(Command::CreateTopics {
                    topics,
                    validate_only,
                })
                .await
            {
                Ok(CommandResult::CreateTopics(results)) => results
                    .into_iter()
                    .map(|r| r.map_err(|e| e.into_admin_error()))
                    .collect(),
                Ok(other) => vec![Err(unexpected(&other)); count],
                Err(e) => vec![Err(e); count],
            }
        })
    }

    /// Deletes topics, one result per topic in request order.
    fn delete_topics(&self, topics: Vec<TopicRef>) -> BoxFuture<'_, Vec<DeleteResult>> {
        Box::pin(async move {
            let count = topics.len();
            match self.execute(Command::DeleteTopics { topics }).await {
                Ok(CommandResult::DeleteTopics(results)) => results
                    .into_iter()
                    .map(|r| r.map_err(|e| e.into_admin_error()))
                    .collect(),
                Ok(other) => vec![Err(unexpected(&other)); count],
                Err(e) => vec![Err(e); count],
            }
        })
    }
}

/// A result of the wrong kind: a bug in the authority.
fn unexpected(result: &CommandResult) -> AdminError {
    AdminError::new(
        ResponseError::UnknownServerError,
        format!("unexpected result {result:?}"),
    )
}

/// The metadata quorum as DescribeQuorum reports it (the controllers' own gRPC answer).
pub type QuorumState = ferry_proto::controller::v1::DescribeQuorumResponse;
