//! Commands: the requests the active controller proposes to the quorum, and their results.
//!
//! A [`Command`] is what a raft entry carries. It is a *request*, not a change: every voter runs
//! [`super::execute()`] on it against the committed image and derives the same records and the
//! same [`CommandResult`]. Results carry Kafka error codes as plain numbers ([`ApiError`]) so
//! they survive serialization; convert with [`ApiError::into_admin_error`].
//!
//! # Encoding
//!
//! Commands and results are JSON (externally tagged enums), like the records. A command is
//! decoded only by code of the same cluster that encoded it, so a decode failure is a bug.

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::{
    BrokerEpoch, ConfigResource, LeaderEpoch, Listener, PartitionEpoch, ProducerId,
    StoredCredential,
};
use crate::metadata::{AdminError, NewTopic, NodeId, Topic, TopicId, TopicRef};
use crate::security::acl::{AclBinding, AclFilter};

/// One deletion of an AlterUserScramCredentials request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramDeletion {
    /// The user name.
    pub name: String,
    /// Kafka's mechanism code as the request carried it (1 SHA-256, 2 SHA-512; anything else
    /// is refused with UNSUPPORTED_SASL_MECHANISM when executed).
    pub mechanism: i8,
}

/// One upsertion of an AlterUserScramCredentials request, after the proposing shell derived
/// the keys. It never carries the salted password: a command stays in the log for good, and a
/// salted password there would be password-equivalent on disk forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpsertion {
    /// The user name.
    pub name: String,
    /// Kafka's mechanism code as the request carried it.
    pub mechanism: i8,
    /// The derived credential, or the error the shell met deriving it (a salted password of
    /// the wrong length, a salt or iteration count out of bounds). Executing reports that
    /// error in its place, after the checks Kafka makes first.
    pub credential: Result<StoredCredential, ApiError>,
}

/// How one config changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    /// Set the override to this value.
    Set(String),
    /// Remove the override (back to the default).
    Delete,
}

/// A request to the controller. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A broker starts: record it, fenced, with a new broker epoch.
    RegisterBroker {
        /// Its node id.
        broker_id: NodeId,
        /// Random per process start.
        incarnation_id: Uuid,
        /// Advertised listeners.
        listeners: Vec<Listener>,
        /// Failure domain.
        rack: Option<String>,
        /// The cluster the broker believes it belongs to; must match.
        cluster_id: String,
    },
    /// Proposed by the active controller when a heartbeat shows the broker has caught up with
    /// the metadata log (its offset ≥ its broker epoch).
    UnfenceBroker {
        /// The broker.
        broker_id: NodeId,
        /// The epoch the heartbeat carried.
        broker_epoch: BrokerEpoch,
    },
    /// Proposed by the active controller when the broker's session expired.
    FenceBroker {
        /// The broker.
        broker_id: NodeId,
        /// The epoch whose session expired.
        broker_epoch: BrokerEpoch,
    },
    /// The broker wants to shut down: move leadership away first.
    ControlledShutdown {
        /// The broker.
        broker_id: NodeId,
        /// Its epoch.
        broker_epoch: BrokerEpoch,
    },
    /// Remove a broker from the cluster for good.
    UnregisterBroker {
        /// The broker.
        broker_id: NodeId,
    },
    /// CreateTopics.
    CreateTopics {
        /// Topics to create, each validated on its own.
        #[serde(with = "serde_new_topics")]
        topics: Vec<NewTopic>,
        /// Check everything, change nothing.
        validate_only: bool,
    },
    /// DeleteTopics.
    DeleteTopics {
        /// Topics to delete, by name or id.
        #[serde(with = "serde_topic_refs")]
        topics: Vec<TopicRef>,
    },
    /// CreatePartitions: grow one topic to `new_total_count` partitions.
    CreatePartitions {
        /// Topic name.
        topic: String,
        /// Partition count after the change; must be larger than today's.
        new_total_count: i32,
        /// Replicas of each new partition, or empty to let the controller place them.
        assignments: Vec<Vec<NodeId>>,
        /// Check everything, change nothing.
        validate_only: bool,
    },
    /// AlterConfigs / IncrementalAlterConfigs for one resource.
    AlterConfigs {
        /// The resource.
        resource: ConfigResource,
        /// Changes by config name.
        changes: Vec<(String, ConfigOp)>,
        /// Incremental changes touch only the named configs; otherwise (legacy AlterConfigs)
        /// the given `Set`s replace every override of the resource.
        incremental: bool,
        /// Check everything, change nothing.
        validate_only: bool,
    },
    /// AllocateProducerIds: hand the broker the next block of producer ids.
    AllocateProducerIds {
        /// The broker.
        broker_id: NodeId,
        /// Its epoch.
        broker_epoch: BrokerEpoch,
    },
    /// Finalize a feature level (0 removes the feature).
    SetFeatureLevel {
        /// Feature name.
        name: String,
        /// New level.
        level: i16,
    },
    /// A partition leader asks to change its ISR (Kafka's AlterPartition); see
    /// [`super::replication`].
    AlterPartition {
        /// The leader.
        broker_id: NodeId,
        /// Its broker epoch.
        broker_epoch: BrokerEpoch,
        /// The partition's topic.
        topic_id: TopicId,
        /// The partition's index.
        partition: i32,
        /// The leader epoch the leader is in.
        leader_epoch: LeaderEpoch,
        /// The partition epoch the new ISR was computed from.
        partition_epoch: PartitionEpoch,
        /// The ISR asked for.
        new_isr: Vec<NodeId>,
    },
    /// Move leadership back to each partition's preferred replica where it is in the ISR and
    /// usable; proposed periodically by the active controller.
    ElectPreferredLeaders,
    /// AlterUserScramCredentials: delete and set SCRAM credentials. See
    /// [`super::security`] for the rules.
    AlterScramCredentials {
        /// Credentials to remove, in request order.
        deletions: Vec<ScramDeletion>,
        /// Credentials to set, in request order.
        upsertions: Vec<ScramUpsertion>,
    },
    /// CreateAcls: add bindings (the shell has already refused the ones that do not
    /// validate).
    CreateAcls {
        /// Bindings to add, in request order.
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: remove every binding some filter matches, all at once.
    DeleteAcls {
        /// Filters, in request order.
        filters: Vec<AclFilter>,
    },
    /// Advance the metadata offset (the active controller's idle heartbeat).
    NoOp,
}

/// An error carried in a [`CommandResult`]: a Kafka error code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The Kafka error code (never 0).
    pub code: i16,
    /// A human sentence.
    pub message: String,
}

impl ApiError {
    /// An error with a Kafka code and a message.
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
        }
    }

    /// The error as the broker's admin paths carry it.
    pub fn into_admin_error(self) -> AdminError {
        let code = ResponseError::try_from_code(self.code).unwrap_or(ResponseError::Unknown(0));
        AdminError::new(code, self.message)
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        Self {
            code: error.code.code(),
            message: error.message,
        }
    }
}

/// A block of producer ids: `first .. first + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    /// First id of the block.
    pub first: ProducerId,
    /// Number of ids.
    pub size: i32,
}

/// A partition after an accepted AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlteredPartition {
    /// The ISR now.
    pub isr: Vec<NodeId>,
    /// The leader epoch (unchanged by AlterPartition).
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch now.
    pub partition_epoch: PartitionEpoch,
}

/// The outcome of a [`Command`], one variant per command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// The new broker epoch.
    RegisterBroker(Result<BrokerEpoch, ApiError>),
    /// Unfenced (or already unfenced).
    UnfenceBroker(Result<(), ApiError>),
    /// Fenced (or already fenced).
    FenceBroker(Result<(), ApiError>),
    /// In controlled shutdown; leadership has moved away.
    ControlledShutdown(Result<(), ApiError>),
    /// Unregistered.
    UnregisterBroker(Result<(), ApiError>),
    /// One result per requested topic, in request order. A validate-only creation answers
    /// the topic it would create, with the nil id.
    CreateTopics(Vec<Result<Topic, ApiError>>),
    /// One result per requested topic, in request order: its name and id.
    DeleteTopics(Vec<Result<(String, TopicId), ApiError>>),
    /// Partitions created (or would be).
    CreatePartitions(Result<(), ApiError>),
    /// Configs changed (or would be).
    AlterConfigs(Result<(), ApiError>),
    /// The block handed to the broker.
    AllocateProducerIds(Result<ProducerIdBlock, ApiError>),
    /// The feature level is set.
    SetFeatureLevel(Result<(), ApiError>),
    /// The partition's ISR as committed, or why the request was refused.
    AlterPartition(Result<AlteredPartition, ApiError>),
    /// How many partitions changed leader.
    ElectPreferredLeaders(usize),
    /// One result per distinct user, in the order each user first appears in the request
    /// (deletions, then upsertions), as Kafka answers one entry per user.
    AlterScramCredentials(Vec<(String, Result<(), ApiError>)>),
    /// One result per requested binding, in request order (a duplicate is a success).
    CreateAcls(Vec<Result<(), ApiError>>),
    /// The bindings each filter matched and removed, in request order; a binding matched by
    /// several filters is listed under each; or why the whole request was refused (over
    /// the per-request bound).
    DeleteAcls(Result<Vec<Vec<AclBinding>>, ApiError>),
    /// Nothing to report.
    NoOp,
}

impl Command {
    /// Encodes the command for a raft entry.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("commands always serialize: every key is a string")
    }

    /// Decodes a command written by [`Self::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

impl CommandResult {
    /// Encodes the result for the proposer.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("results always serialize: every key is a string")
    }

    /// Decodes a result written by [`Self::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Serde for `Vec<NewTopic>`, which lives in [`crate::metadata`] without serde derives.
mod serde_new_topics {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::metadata::{NewTopic, NodeId};

    /// [`NewTopic`]'s fields, for serde's remote derive.
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "NewTopic")]
    struct Def {
        name: String,
        num_partitions: Option<i32>,
        replication_factor: Option<i16>,
        assignments: Vec<Vec<NodeId>>,
        configs: Vec<(String, String)>,
    }

    /// One borrowed topic, serialized through [`Def`].
    #[derive(Serialize)]
    struct Out<'a>(#[serde(with = "Def")] &'a NewTopic);

    /// One owned topic, deserialized through [`Def`].
    #[derive(Deserialize)]
    struct In(#[serde(with = "Def")] NewTopic);

    /// Writes the topics as a JSON array.
    pub fn serialize<S: Serializer>(topics: &[NewTopic], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(topics.iter().map(Out))
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NewTopic>, D::Error> {
        Ok(Vec::<In>::deserialize(d)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }
}

/// Serde for `Vec<TopicRef>`, which lives in [`crate::metadata`] without serde derives.
mod serde_topic_refs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::metadata::{TopicId, TopicRef};

    /// [`TopicRef`]'s variants, for serde's remote derive.
    #[derive(Serialize, Deserialize)]
    #[serde(remote = "TopicRef")]
    enum Def {
        Name(String),
        Id(TopicId),
    }

    /// One borrowed reference, serialized through [`Def`].
    #[derive(Serialize)]
    struct Out<'a>(#[serde(with = "Def")] &'a TopicRef);

    /// One owned reference, deserialized through [`Def`].
    #[derive(Deserialize)]
    struct In(#[serde(with = "Def")] TopicRef);

    /// Writes the references as a JSON array.
    pub fn serialize<S: Serializer>(topics: &[TopicRef], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(topics.iter().map(Out))
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TopicRef>, D::Error> {
        Ok(Vec::<In>::deserialize(d)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_results_round_trip() {
        let commands = [
            Command::CreateTopics {
                topics: vec![NewTopic {
                    name: "t".into(),
                    num_partitions: Some(3),
                    replication_factor: None,
                    assignments: vec![vec![1, 2]],
                    configs: vec![("retention.ms".into(), "1".into())],
                }],
                validate_only: true,
            },
            Command::DeleteTopics {
                topics: vec![TopicRef::Name("t".into()), TopicRef::Id(Uuid::nil())],
            },
            Command::AlterConfigs {
                resource: ConfigResource::Cluster,
                changes: vec![
                    ("a".into(), ConfigOp::Set("1".into())),
                    ("b".into(), ConfigOp::Delete),
                ],
                incremental: true,
                validate_only: false,
            },
            Command::NoOp,
        ];
        for command in commands {
            assert_eq!(Command::decode(&command.encode()).unwrap(), command);
        }
        let result = CommandResult::DeleteTopics(vec![
            Ok(("t".into(), Uuid::nil())),
            Err(ApiError::new(ResponseError::UnknownTopicId, "no")),
        ]);
        assert_eq!(CommandResult::decode(&result.encode()).unwrap(), result);
    }

    #[test]
    fn api_errors_convert_to_admin_errors_and_back() {
        let admin = AdminError::new(ResponseError::PolicyViolation, "too many");
        let api = ApiError::from(admin.clone());
        assert_eq!(api.code, 44);
        assert_eq!(api.into_admin_error(), admin);
    }
}
