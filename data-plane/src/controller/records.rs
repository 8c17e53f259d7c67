//! Metadata records: the typed changes the controller writes to the metadata log.
//!
//! Each record mirrors one of Kafka's KIP-631 metadata records (`RegisterBrokerRecord`,
//! `PartitionChangeRecord`, …; see `metadata/src/main/resources/common/metadata/*.json` in
//! apache/kafka), reduced to the fields Ferry uses. Records are *facts*: they were validated
//! when the controller produced them, so [`super::MetadataImage::apply`] trusts them and panics
//! on one that contradicts the image (a bug, never bad input).
//!
//! # Encoding
//!
//! Records travel to brokers as JSON, one value per record, externally tagged by the variant
//! name. The encoding is stable: fields are only ever added (with a serde default), never
//! renamed or removed.
//!
//! ```text
//! {"RegisterBroker":{"broker_id":1,"incarnation_id":"…","broker_epoch":7,"listeners":[…],
//!                    "rack":"a","fenced":true}}
//! {"PartitionChange":{"topic_id":"…","partition":0,"isr":[2,3],"leader":{"Broker":2},
//!                     "replicas":null}}
//! "NoOp"
//! ```
//!
//! A batch (all records of one metadata offset) is a JSON array; see [`encode_batch`].

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::{NodeId, TopicId};
use crate::security::acl::AclBinding;
use crate::security::scram::{CredentialError, ScramCredential, ScramMechanism};

/// A broker's epoch: the metadata offset of its latest registration. A broker proves it is the
/// current incarnation by presenting it (heartbeats, producer-id requests, ISR changes).
pub type BrokerEpoch = i64;

/// A partition's leader epoch (increases every time the partition's leader changes) and a
/// producer id (handed to brokers in blocks by the controller).
pub use ferry_kafka_config::ids::{LeaderEpoch, ProducerId};

/// A partition's epoch: increases on every change of the partition (leader, ISR, replicas).
pub type PartitionEpoch = i32;

/// The leader value Kafka writes for "no leader".
pub const NO_LEADER: NodeId = -1;

/// One listener a broker advertises (Kafka's `EndPoints` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Listener name, e.g. `PLAINTEXT`; clients are served the one named `PLAINTEXT`.
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Security protocol, e.g. `PLAINTEXT`, `SSL`, `SASL_SSL`.
    pub security_protocol: String,
}

/// How a [`Record::PartitionChange`] changes the leader (Kafka encodes these as -2, -1, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderChange {
    /// The leader stays; the leader epoch stays too.
    Unchanged,
    /// The partition has no leader any more (Kafka's -1).
    None,
    /// This broker becomes leader.
    Broker(NodeId),
}

/// What a config record applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    /// One broker's dynamic config.
    Broker(NodeId),
    /// The cluster-wide default of every broker (Kafka's broker resource with an empty name).
    Cluster,
    /// A topic's overrides, by topic name (as Kafka keys them).
    Topic(String),
}

/// A SCRAM credential as the metadata log and snapshots carry it (Kafka's
/// `UserScramCredentialRecord` without the name and mechanism): the salt, the derived keys and
/// the iteration count. Never a password or a salted password: the proposing shell derives
/// the keys before anything reaches the log.
///
/// Serde builds it without checks; [`Self::to_credential`] checks it against the bounds of
/// [`ScramCredential`]. The bytes are base64 in JSON. `Debug` shows no key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    /// The salt sent to clients in server-first.
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
}

impl StoredCredential {
    /// The stored form of a checked credential.
    pub fn from_credential(credential: &ScramCredential) -> Self {
        Self {
            salt: credential.salt().to_vec(),
            stored_key: credential.stored_key().to_vec(),
            server_key: credential.server_key().to_vec(),
            iterations: credential.iterations(),
        }
    }

    /// The credential for `mechanism`, checked against the bounds (salt length, iterations,
    /// key lengths).
    pub fn to_credential(
        &self,
        mechanism: ScramMechanism,
    ) -> Result<ScramCredential, CredentialError> {
        ScramCredential::from_parts(
            mechanism,
            self.salt.clone(),
            self.stored_key.clone(),
            self.server_key.clone(),
            self.iterations,
        )
    }
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("salt_bytes", &self.salt.len())
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// Serde for byte strings as standard base64 text.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the bytes as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// One change to the cluster metadata. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A broker registered (or registered again); it starts fenced.
    RegisterBroker {
        /// The broker's node id.
        broker_id: NodeId,
        /// Random per process start; tells a restarted broker from a duplicate.
        incarnation_id: Uuid,
        /// The new broker epoch (the metadata offset of this record).
        broker_epoch: BrokerEpoch,
        /// Advertised listeners.
        listeners: Vec<Listener>,
        /// Failure domain, if known.
        rack: Option<String>,
        /// Whether the broker starts fenced (always true when the controller registers one).
        fenced: bool,
    },
    /// A broker left the cluster for good.
    UnregisterBroker {
        /// The broker's node id.
        broker_id: NodeId,
        /// Its epoch when it was removed.
        broker_epoch: BrokerEpoch,
    },
    /// A broker was fenced: it leads nothing and clients do not see it.
    FenceBroker {
        /// The broker's node id.
        broker_id: NodeId,
        /// Its current epoch.
        broker_epoch: BrokerEpoch,
    },
    /// A broker caught up with the metadata log and may lead partitions.
    UnfenceBroker {
        /// The broker's node id.
        broker_id: NodeId,
        /// Its current epoch.
        broker_epoch: BrokerEpoch,
    },
    /// A broker asked to shut down; leadership has moved away from it.
    BrokerControlledShutdown {
        /// The broker's node id.
        broker_id: NodeId,
        /// Its current epoch.
        broker_epoch: BrokerEpoch,
    },
    /// A topic was created; its partitions follow as [`Record::Partition`] records.
    Topic {
        /// Topic name.
        name: String,
        /// Topic id, never reused.
        topic_id: TopicId,
    },
    /// A partition was created, numbered after the topic's existing partitions.
    Partition {
        /// The topic.
        topic_id: TopicId,
        /// Partition index.
        partition: i32,
        /// Brokers holding a replica, preferred leader first.
        replicas: Vec<NodeId>,
        /// In-sync replicas.
        isr: Vec<NodeId>,
        /// Leader, or [`NO_LEADER`].
        leader: NodeId,
        /// Initial leader epoch.
        leader_epoch: LeaderEpoch,
        /// Initial partition epoch.
        partition_epoch: PartitionEpoch,
    },
    /// A partition's leader, ISR or replicas changed. Applying it bumps the partition epoch,
    /// and the leader epoch too when the leader changes, as Kafka does.
    PartitionChange {
        /// The topic.
        topic_id: TopicId,
        /// Partition index.
        partition: i32,
        /// The new ISR, or `None` to keep it.
        isr: Option<Vec<NodeId>>,
        /// The new leader.
        leader: LeaderChange,
        /// The new replica list, or `None` to keep it.
        replicas: Option<Vec<NodeId>>,
    },
    /// A topic and all its partitions (and its config overrides) were deleted.
    RemoveTopic {
        /// The topic.
        topic_id: TopicId,
    },
    /// A config was set (`Some`) or removed (`None`).
    Config {
        /// What it applies to.
        resource: ConfigResource,
        /// Kafka config name.
        name: String,
        /// New value, or `None` to delete the override.
        value: Option<String>,
    },
    /// A block of producer ids was handed to a broker; ids below `next_producer_id` are used.
    ProducerIds {
        /// The broker that got the block.
        broker_id: NodeId,
        /// Its epoch at the time.
        broker_epoch: BrokerEpoch,
        /// First id not yet handed out.
        next_producer_id: ProducerId,
    },
    /// A feature's finalized level changed (level 0 removes it).
    FeatureLevel {
        /// Feature name, e.g. `metadata.version`.
        name: String,
        /// New level.
        level: i16,
    },
    /// A user's SCRAM credential for one mechanism was set (Kafka's
    /// `UserScramCredentialRecord`); it replaces any earlier one for the same pair.
    ScramCredential {
        /// The user name (the principal is `User:<name>`).
        name: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The salt, keys and iterations.
        credential: StoredCredential,
    },
    /// A user's SCRAM credential for one mechanism was removed (Kafka's
    /// `RemoveUserScramCredentialRecord`).
    RemoveScramCredential {
        /// The user name.
        name: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
    /// An ACL binding was added (Kafka's `AccessControlEntryRecord`, without the random id:
    /// a binding is its own key).
    Acl {
        /// The binding.
        binding: AclBinding,
    },
    /// An ACL binding was removed (Kafka's `RemoveAccessControlEntryRecord`).
    RemoveAcl {
        /// The binding.
        binding: AclBinding,
    },
    /// Nothing changed; the offset advanced (Kafka's `NoOpRecord`).
    NoOp,
}

/// Encodes the records of one metadata offset as a JSON array.
pub fn encode_batch(records: &[Record]) -> Vec<u8> {
    serde_json::to_vec(records).expect("records always serialize: every key is a string")
}

/// Decodes a batch written by [`encode_batch`].
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Record>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_encoding_is_stable() {
        let records = vec![
            Record::FenceBroker {
                broker_id: 1,
                broker_epoch: 7,
            },
            Record::PartitionChange {
                topic_id: Uuid::nil(),
                partition: 0,
                isr: Some(vec![2, 3]),
                leader: LeaderChange::Broker(2),
                replicas: None,
            },
            Record::Config {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: None,
            },
            Record::NoOp,
        ];
        let json = String::from_utf8(encode_batch(&records)).unwrap();
        assert_eq!(
            json,
            r#"[{"FenceBroker":{"broker_id":1,"broker_epoch":7}},{"PartitionChange":{"topic_id":"00000000-0000-0000-0000-000000000000","partition":0,"isr":[2,3],"leader":{"Broker":2},"replicas":null}},{"Config":{"resource":{"Topic":"t"},"name":"retention.ms","value":null}},"NoOp"]"#
        );
        assert_eq!(decode_batch(json.as_bytes()).unwrap(), records);
    }

    #[test]
    fn a_garbled_batch_is_an_error() {
        assert!(decode_batch(b"[{\"NoSuchRecord\":{}}]").is_err());
        assert!(decode_batch(b"not json").is_err());
    }
}
