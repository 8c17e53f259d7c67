//! The metadata authority: where a broker's metadata comes from and its admin changes go.
//!
//! [`Authority`] is the one interface the broker uses: the latest [`Image`], a subscription to
//! new images, and [`Authority::execute`] for controller [`Command`]s. It sits between the
//! metadata types ([`crate::metadata`]) and the controller's state machine
//! ([`crate::controller`]), and depends on both; neither depends on it.
//!
//! - [`local::LocalAuthority`]: the single-node case, where the node is its own metadata
//!   authority, runs the controller's state machine in process and keeps the image in its
//!   data directory (development and tests).
//! - [`quorum::QuorumAuthority`]: a broker of a KRaft-style controller quorum; admin requests
//!   are forwarded to the active controller and the image follows the committed metadata log.

pub mod local;
pub mod quorum;

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use tokio::sync::watch;

use crate::controller::{Command, CommandResult};
use crate::metadata::{AdminError, Image, NewTopic, Topic, TopicId, TopicRef};

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
