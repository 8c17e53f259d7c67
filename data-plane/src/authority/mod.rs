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

use crate::controller::{Command, CommandResult, MetadataImage, ScramDeletion, ScramUpsertion};
use crate::metadata::{AdminError, Image, NewTopic, Topic, TopicId, TopicRef};
use crate::security::acl::{AclBinding, AclFilter};

/// The outcome of creating one topic.
pub type CreateResult = Result<Topic, AdminError>;

/// The outcome of deleting one topic: its name and id.
pub type DeleteResult = Result<(String, TopicId), AdminError>;

/// The outcome of an AlterUserScramCredentials: one result per user, in the order each user
/// first appears in the request.
pub type ScramResults = Vec<(String, Result<(), AdminError>)>;

/// The source of truth for cluster metadata.
///
/// [`Authority::execute`] runs a controller [`Command`] and answers once the change is durable
/// at the authority (for the quorum: committed) and applied to this broker's image, so a client
/// that sees success can use the result on this broker at once. The typed helpers
/// ([`Authority::create_topics`], …) are built on it.
pub trait Authority: Send + Sync + 'static {
    /// The latest image.
    fn image(&self) -> Arc<Image>;

    /// The controllers' image the latest [`Self::image`] was derived from. The security admin
    /// APIs read SCRAM credentials and ACLs from it, which the client image does not carry.
    fn metadata_image(&self) -> Arc<MetadataImage>;

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

/// The security commands (SCRAM credentials and ACLs), each answering once the change is
/// applied to this broker's image. An error means the authority could not be asked.
impl dyn Authority {
    /// Deletes and sets SCRAM credentials; the upsertions carry derived keys only.
    pub async fn alter_scram_credentials(
        &self,
        deletions: Vec<ScramDeletion>,
        upsertions: Vec<ScramUpsertion>,
    ) -> Result<ScramResults, AdminError> {
        let command = Command::AlterScramCredentials {
            deletions,
            upsertions,
        };
        match self.execute(command).await? {
            CommandResult::AlterScramCredentials(results) => Ok(results
                .into_iter()
                .map(|(user, r)| (user, r.map_err(|e| e.into_admin_error())))
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds ACL bindings, one result per binding in request order.
    pub async fn create_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> Result<Vec<Result<(), AdminError>>, AdminError> {
        match self.execute(Command::CreateAcls { bindings }).await? {
            CommandResult::CreateAcls(results) => Ok(results
                .into_iter()
                .map(|r| r.map_err(|e| e.into_admin_error()))
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes every binding a filter matches; answers the bindings each filter matched.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, AdminError> {
        match self.execute(Command::DeleteAcls { filters }).await? {
            CommandResult::DeleteAcls(result) => result.map_err(|e| e.into_admin_error()),
            other => Err(unexpected(&other)),
        }
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
