//! The metadata image: the controller's whole state, and its snapshot.
//!
//! A [`MetadataImage`] is what the metadata log says at one offset: registered brokers (fenced
//! or not), topics and their partitions (replicas, ISR, leader, epochs), config overrides, the
//! next producer id, finalized feature levels, SCRAM credentials (salts and derived keys, never
//! passwords) and ACL bindings. It changes only through [`MetadataImage::apply`],
//! one [`Record`] at a time, on controllers and brokers alike, so every copy that has applied the
//! same records is the same image (every map is a `BTreeMap`; nothing depends on the clock).
//!
//! Brokers serve clients from the smaller [`crate::metadata::Image`], derived with
//! [`MetadataImage::to_client_image`].
//!
//! # Snapshot encoding
//!
//! ```text
//! +---------+------------------------------------------+
//! | version | JSON of the image (see `SNAPSHOT_VERSION`) |
//! | 1 byte  |                                          |
//! +---------+------------------------------------------+
//! ```
//!
//! The name → id index is not stored; it is rebuilt on decode. Decoding checks the invariants
//! listed on [`MetadataImage::check`], so a snapshot that decodes is an image `apply` accepts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::{
    BrokerEpoch, ConfigResource, LeaderChange, LeaderEpoch, Listener, NO_LEADER, PartitionEpoch,
    ProducerId, Record, StoredCredential,
};
use crate::metadata::broker_configs::DynamicConfigs;
use crate::metadata::{BrokerInfo, Image, NodeId, PartitionState, Topic, TopicId};
use crate::security::acl::{self, AclBinding};
use crate::security::scram::ScramMechanism;

/// Version byte of the snapshot encoding written by [`MetadataImage::encode`].
pub const SNAPSHOT_VERSION: u8 = 1;

/// The listener whose address clients are given, when a broker has one by this name.
pub const CLIENT_LISTENER: &str = "PLAINTEXT";

/// A registered broker, as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Node id.
    pub broker_id: NodeId,
    /// Process incarnation that registered.
    pub incarnation_id: Uuid,
    /// Metadata offset of the registration; the broker is unfenced once it has caught up to it.
    pub broker_epoch: BrokerEpoch,
    /// Advertised listeners.
    pub listeners: Vec<Listener>,
    /// Failure domain, if known.
    pub rack: Option<String>,
    /// A fenced broker leads nothing, joins no ISR and is hidden from clients.
    pub fenced: bool,
    /// The broker is shutting down; leadership has moved away and it gets no new replicas.
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    /// Whether the broker may lead partitions and receive new replicas.
    pub fn is_usable(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    /// The listener clients use: the one named [`CLIENT_LISTENER`], else the first.
    pub fn client_listener(&self) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| l.name == CLIENT_LISTENER)
            .or_else(|| self.listeners.first())
    }
}

/// One partition's replicas, ISR, leader and epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Brokers holding a replica, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas; never empty (Kafka keeps the last member when it is fenced).
    pub isr: Vec<NodeId>,
    /// Leader, or [`NO_LEADER`].
    pub leader: NodeId,
    /// Bumped on every leader change.
    pub leader_epoch: LeaderEpoch,
    /// Bumped on every change.
    pub partition_epoch: PartitionEpoch,
}

impl PartitionImage {
    /// Checks leader ∈ ISR ⊆ replicas (or no leader), distinct replicas, non-empty ISR.
    pub fn check(&self) -> Result<(), String> {
        let replicas: BTreeSet<_> = self.replicas.iter().collect();
        let isr: BTreeSet<_> = self.isr.iter().collect();
        if self.replicas.is_empty() || replicas.len() != self.replicas.len() {
            return Err(format!("replicas {:?} are empty or repeat", self.replicas));
        }
        if self.isr.is_empty() || isr.len() != self.isr.len() || !isr.is_subset(&replicas) {
            return Err(format!(
                "ISR {:?} is empty, repeats, or is not within replicas {:?}",
                self.isr, self.replicas
            ));
        }
        if self.leader != NO_LEADER && !isr.contains(&self.leader) {
            return Err(format!(
                "leader {} is not in ISR {:?}",
                self.leader, self.isr
            ));
        }
        Ok(())
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id.
    pub id: TopicId,
    /// Partitions by index.
    pub partitions: Vec<PartitionImage>,
}

/// The cluster metadata at one offset. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Offset of the last applied record batch (the raft index of its entry).
    offset: u64,
    /// The cluster every member shares.
    cluster_id: String,
    /// Registered brokers by id.
    brokers: BTreeMap<NodeId, BrokerRegistration>,
    /// Topics by id.
    topics: BTreeMap<TopicId, TopicImage>,
    /// Topic ids by name; derived from `topics`.
    #[serde(skip)]
    topic_ids: BTreeMap<String, TopicId>,
    /// Config overrides per resource; a resource without overrides has no entry.
    #[serde(with = "as_pairs")]
    configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// First producer id not yet handed out.
    next_producer_id: ProducerId,
    /// Finalized feature levels by name.
    features: BTreeMap<String, i16>,
    /// Raft entries the controllers applied as no-ops because they did not decode (see
    /// [`super::state_machine`]); kept here so snapshots carry them.
    #[serde(default)]
    undecodable_entries: u64,
    /// The error of the last such entry, naming its index.
    #[serde(default)]
    last_undecodable_entry: Option<String>,
    /// SCRAM credentials by user, then mechanism. Absent from snapshots written before
    /// credentials existed, hence the default.
    #[serde(default)]
    scram: BTreeMap<String, BTreeMap<ScramMechanism, StoredCredential>>,
    /// ACL bindings. Absent from snapshots written before ACLs existed, hence the default.
    #[serde(default)]
    acls: BTreeSet<AclBinding>,
}

impl MetadataImage {
    /// The empty image of a cluster, at offset 0.
    pub fn new(cluster_id: impl Into<String>) -> Self {
        Self {
            offset: 0,
            cluster_id: cluster_id.into(),
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            configs: BTreeMap::new(),
            next_producer_id: 0,
            features: BTreeMap::new(),
            undecodable_entries: 0,
            last_undecodable_entry: None,
            scram: BTreeMap::new(),
            acls: BTreeSet::new(),
        }
    }

    /// Counts a raft entry that did not decode, keeping its error. Changes nothing else (not
    /// the offset: no records were applied).
    pub fn record_undecodable(&mut self, error: String) {
        self.undecodable_entries += 1;
        self.last_undecodable_entry = Some(error);
    }

    /// How many raft entries did not decode, and the error of the last one.
    pub fn undecodable_entries(&self) -> (u64, Option<&str>) {
        (
            self.undecodable_entries,
            self.last_undecodable_entry.as_deref(),
        )
    }

    /// Offset of the last applied batch.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// A registered broker.
    pub fn broker(&self, id: NodeId) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// All registered brokers, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    /// A topic by id.
    pub fn topic(&self, id: TopicId) -> Option<&TopicImage> {
        self.topics.get(&id)
    }

    /// A topic by name.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).map(|id| &self.topics[id])
    }

    /// All topics, by id.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Total partitions of all topics.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// Config overrides of a resource (empty if it has none).
    pub fn configs(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.get(resource)
    }

    /// First producer id not yet handed out.
    pub fn next_producer_id(&self) -> ProducerId {
        self.next_producer_id
    }

    /// A feature's finalized level (0 when it has none).
    pub fn feature_level(&self, name: &str) -> i16 {
        self.features.get(name).copied().unwrap_or(0)
    }

    /// A user's SCRAM credentials by mechanism, if the user has any.
    pub fn scram_credentials(
        &self,
        user: &str,
    ) -> Option<&BTreeMap<ScramMechanism, StoredCredential>> {
        self.scram.get(user)
    }

    /// A user's SCRAM credential for one mechanism.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&StoredCredential> {
        self.scram.get(user)?.get(&mechanism)
    }

    /// Every user with SCRAM credentials, in name order, with them.
    pub fn scram_users(
        &self,
    ) -> impl Iterator<Item = (&str, &BTreeMap<ScramMechanism, StoredCredential>)> {
        self.scram
            .iter()
            .map(|(user, creds)| (user.as_str(), creds))
    }

    /// How many users have SCRAM credentials.
    pub fn scram_user_count(&self) -> usize {
        self.scram.len()
    }

    /// Every ACL binding.
    pub fn acls(&self) -> &BTreeSet<AclBinding> {
        &self.acls
    }

    /// How many partitions `broker` leads. A broker in controlled shutdown may shut down once
    /// this is 0.
    pub fn leader_count(&self, broker: NodeId) -> usize {
        self.topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader == broker)
            .count()
    }

    /// Applies one record at `offset`. All records of a batch share its offset.
    ///
    /// # Panics
    /// On a record that contradicts the image (an unknown topic, a stale broker epoch, a
    /// partition state that breaks leader ∈ ISR ⊆ replicas): the controller validated every
    /// record it wrote, so this is a bug, and continuing would let replicas diverge. Code that
    /// applies records it received (a broker following the controllers) uses
    /// [`Self::try_apply`] instead.
    pub fn apply(&mut self, offset: u64, record: &Record) {
        if let Err(why) = self.try_apply(offset, record) {
            panic!("{why}");
        }
    }

    /// Applies one record at `offset`, or says why it contradicts the image (see
    /// [`Self::apply`]). On an error the image may hold part of the record's change: apply a
    /// batch to a copy and keep it only if every record applied.
    pub fn try_apply(&mut self, offset: u64, record: &Record) -> Result<(), String> {
        if offset < self.offset {
            return Err(format!(
                "metadata offset went back from {} to {offset} applying {record:?}",
                self.offset
            ));
        }
        self.offset = offset;
        match record {
            Record::RegisterBroker {
                broker_id,
                incarnation_id,
                broker_epoch,
                listeners,
                rack,
                fenced,
            } => {
                if let Some(old) = self.brokers.get(broker_id)
                    && *broker_epoch <= old.broker_epoch
                {
                    return Err(format!(
                        "broker {broker_id} registered with epoch {broker_epoch}, not above {}",
                        old.broker_epoch
                    ));
                }
                let registration = BrokerRegistration {
                    broker_id: *broker_id,
                    incarnation_id: *incarnation_id,
                    broker_epoch: *broker_epoch,
                    listeners: listeners.clone(),
                    rack: rack.clone(),
                    fenced: *fenced,
                    in_controlled_shutdown: false,
                };
                self.brokers.insert(*broker_id, registration);
            }
            Record::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                self.broker_mut(*broker_id, *broker_epoch, record)?;
                self.brokers.remove(broker_id);
            }
            Record::FenceBroker {
                broker_id,
                broker_epoch,
            } => {
                let broker = self.broker_mut(*broker_id, *broker_epoch, record)?;
                broker.fenced = true;
                broker.in_controlled_shutdown = false;
            }
            Record::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => self.broker_mut(*broker_id, *broker_epoch, record)?.fenced = false,
            Record::BrokerControlledShutdown {
                broker_id,
                broker_epoch,
            } => {
                let broker = self.broker_mut(*broker_id, *broker_epoch, record)?;
                broker.in_controlled_shutdown = true;
            }
            _ => return self.apply_topic_record(record),
        }
        Ok(())
    }

    /// [`Self::apply`] for records about topics, partitions, configs and counters.
    fn apply_topic_record(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::Topic { name, topic_id } => {
                if self.topic_ids.contains_key(name) || self.topics.contains_key(topic_id) {
                    return Err(format!("topic {name} ({topic_id}) created twice"));
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                let topic = TopicImage {
                    name: name.clone(),
                    id: *topic_id,
                    partitions: Vec::new(),
                };
                self.topics.insert(*topic_id, topic);
            }
            Record::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let topic = self.topic_mut(*topic_id, record)?;
                if *partition as usize != topic.partitions.len() {
                    return Err(format!(
                        "partitions of topic {} are created in order, not {record:?}",
                        topic.name
                    ));
                }
                let state = PartitionImage {
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                };
                if let Err(why) = state.check() {
                    return Err(format!("{record:?} is impossible: {why}"));
                }
                topic.partitions.push(state);
            }
            Record::PartitionChange { .. } => return self.apply_partition_change(record),
            Record::RemoveTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or_else(|| format!("{record:?} names an unknown topic"))?;
                self.topic_ids.remove(&topic.name);
                self.configs.remove(&ConfigResource::Topic(topic.name));
            }
            Record::Config {
                resource,
                name,
                value,
            } => return self.apply_config(resource, name, value.as_deref()),
            Record::ProducerIds {
                next_producer_id, ..
            } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(format!(
                        "producer ids go back from {} in {record:?}",
                        self.next_producer_id
                    ));
                }
                self.next_producer_id = *next_producer_id;
            }
            Record::FeatureLevel { name, level } => {
                if *level == 0 {
                    self.features.remove(name);
                } else {
                    self.features.insert(name.clone(), *level);
                }
            }
            Record::NoOp => {}
            Record::ScramCredential { .. }
            | Record::RemoveScramCredential { .. }
            | Record::Acl { .. }
            | Record::RemoveAcl { .. } => return self.apply_security_record(record),
            Record::RegisterBroker { .. }
            | Record::UnregisterBroker { .. }
            | Record::FenceBroker { .. }
            | Record::UnfenceBroker { .. }
            | Record::BrokerControlledShutdown { .. } => {
                unreachable!("broker records are applied by apply")
            }
        }
        Ok(())
    }

    /// Applies a [`Record::PartitionChange`]: bumps the partition epoch, and the leader epoch
    /// when the leader changes.
    /// The partition's new state is checked before it replaces the old one.
    fn apply_partition_change(&mut self, record: &Record) -> Result<(), String> {
        let Record::PartitionChange {
            topic_id,
            partition,
            isr,
            leader,
            replicas,
        } = record
        else {
            unreachable!("called with a PartitionChange");
        };
        let topic = self.topic_mut(*topic_id, record)?;
        let current = usize::try_from(*partition)
            .ok()
            .and_then(|p| topic.partitions.get_mut(p))
            .ok_or_else(|| format!("{record:?} names an unknown partition"))?;
        let mut state = current.clone();
        if let Some(replicas) = replicas {
            state.replicas = replicas.clone();
        }
        if let Some(isr) = isr {
            state.isr = isr.clone();
        }
        match leader {
            LeaderChange::Unchanged => {}
            LeaderChange::None => state.leader = NO_LEADER,
            LeaderChange::Broker(id) => state.leader = *id,
        }
        if *leader != LeaderChange::Unchanged {
            state.leader_epoch += 1;
        }
        state.partition_epoch += 1;
        if let Err(why) = state.check() {
            return Err(format!("{record:?} is impossible: {why}"));
        }
        *current = state;
        Ok(())
    }

    /// Applies a SCRAM credential or ACL record, checking it as a snapshot would be checked.
    fn apply_security_record(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::ScramCredential {
                name,
                mechanism,
                credential,
            } => {
                check_credential(name, *mechanism, credential)?;
                let credentials = self.scram.entry(name.clone()).or_default();
                credentials.insert(*mechanism, credential.clone());
            }
            Record::RemoveScramCredential { name, mechanism } => {
                let credentials = self
                    .scram
                    .get_mut(name)
                    .filter(|c| c.contains_key(mechanism))
                    .ok_or_else(|| format!("{record:?} names a credential that does not exist"))?;
                credentials.remove(mechanism);
                if credentials.is_empty() {
                    self.scram.remove(name);
                }
            }
            Record::Acl { binding } => {
                acl::check_binding(binding).map_err(|e| format!("{record:?}: {e}"))?;
                if !self.acls.insert(binding.clone()) {
                    return Err(format!("{record:?} adds a binding the image holds"));
                }
            }
            Record::RemoveAcl { binding } => {
                if !self.acls.remove(binding) {
                    return Err(format!("{record:?} removes a binding the image lacks"));
                }
            }
            _ => unreachable!("called with a security record"),
        }
        Ok(())
    }

    /// Sets or removes one config override, dropping a resource left without overrides.
    fn apply_config(
        &mut self,
        resource: &ConfigResource,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), String> {
        if let ConfigResource::Topic(topic) = resource
            && !self.topic_ids.contains_key(topic)
        {
            return Err(format!("config {name} for unknown topic {topic}"));
        }
        match value {
            Some(value) => {
                let configs = self.configs.entry(resource.clone()).or_default();
                configs.insert(name.to_string(), value.to_string());
            }
            None => {
                if let Some(configs) = self.configs.get_mut(resource) {
                    configs.remove(name);
                    if configs.is_empty() {
                        self.configs.remove(resource);
                    }
                }
            }
        }
        Ok(())
    }

    /// The broker a broker record names, checking its epoch.
    fn broker_mut(
        &mut self,
        id: NodeId,
        epoch: BrokerEpoch,
        record: &Record,
    ) -> Result<&mut BrokerRegistration, String> {
        let broker = self
            .brokers
            .get_mut(&id)
            .ok_or_else(|| format!("{record:?} names an unregistered broker"))?;
        if broker.broker_epoch != epoch {
            return Err(format!("{record:?} has a stale broker epoch"));
        }
        Ok(broker)
    }

    /// The topic a record names.
    fn topic_mut(&mut self, id: TopicId, record: &Record) -> Result<&mut TopicImage, String> {
        self.topics
            .get_mut(&id)
            .ok_or_else(|| format!("{record:?} names an unknown topic"))
    }

    /// The image brokers serve clients from. Only unfenced brokers appear (with the address of
    /// their [`CLIENT_LISTENER`] listener, or their first); `controller_id` is the live broker
    /// the caller names as "controller", as KRaft answers with a random live broker.
    pub fn to_client_image(&self, controller_id: NodeId) -> Image {
        let brokers = self
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let listener = b.client_listener()?;
                let info = BrokerInfo {
                    node_id: b.broker_id,
                    host: listener.host.clone(),
                    port: listener.port,
                    rack: b.rack.clone(),
                };
                Some((b.broker_id, info))
            })
            .collect();
        let topics = self
            .topics
            .values()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| PartitionState {
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                    })
                    .collect();
                let configs = self
                    .configs
                    .get(&ConfigResource::Topic(t.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                let topic = Topic {
                    name: t.name.clone(),
                    id: t.id,
                    partitions,
                    configs,
                    internal: t.name.starts_with("__"),
                };
                (t.name.clone(), topic)
            })
            .collect();
        let mut broker_configs = DynamicConfigs::default();
        for (resource, configs) in &self.configs {
            match resource {
                ConfigResource::Cluster => broker_configs.cluster = configs.clone(),
                ConfigResource::Broker(id) => {
                    broker_configs.brokers.insert(*id, configs.clone());
                }
                ConfigResource::Topic(_) => {}
            }
        }
        Image {
            cluster_id: self.cluster_id.clone(),
            offset: self.offset,
            controller_id,
            brokers,
            topics,
            broker_configs,
        }
    }

    /// Checks the image's invariants: every partition's leader ∈ ISR ⊆ replicas (or no leader),
    /// every leader an unfenced registered broker, topic names unique, configs only for
    /// existing topics.
    pub fn check(&self) -> Result<(), String> {
        for topic in self.topics.values() {
            if self.topic_ids.get(&topic.name) != Some(&topic.id) {
                return Err(format!(
                    "topic {} is missing from the name index",
                    topic.name
                ));
            }
            for (index, partition) in topic.partitions.iter().enumerate() {
                let context = |why: String| format!("partition {}-{index}: {why}", topic.name);
                partition.check().map_err(context)?;
                let leader = partition.leader;
                if leader != NO_LEADER && self.brokers.get(&leader).is_none_or(|b| b.fenced) {
                    return Err(context(format!(
                        "leader {leader} is fenced or unregistered"
                    )));
                }
            }
        }
        if self.topic_ids.len() != self.topics.len() {
            return Err("the topic name index has stale entries".into());
        }
        for resource in self.configs.keys() {
            if let ConfigResource::Topic(name) = resource
                && !self.topic_ids.contains_key(name)
            {
                return Err(format!("configs for unknown topic {name}"));
            }
        }
        for (user, credentials) in &self.scram {
            if credentials.is_empty() {
                return Err(format!("user {user:?} is listed without credentials"));
            }
            for (mechanism, credential) in credentials {
                check_credential(user, *mechanism, credential)?;
            }
        }
        for binding in &self.acls {
            acl::check_binding(binding).map_err(|e| format!("ACL {binding}: {e}"))?;
        }
        Ok(())
    }

    /// Encodes the image as a snapshot. See the module docs.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![SNAPSHOT_VERSION];
        serde_json::to_writer(&mut bytes, self).expect("an image always serializes");
        bytes
    }

    /// Decodes a snapshot written by [`Self::encode`] and checks its invariants.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (&version, json) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(version));
        }
        let mut image: Self = serde_json::from_slice(json).map_err(SnapshotError::Json)?;
        image.topic_ids = image
            .topics
            .values()
            .map(|t| (t.name.clone(), t.id))
            .collect();
        image.check().map_err(SnapshotError::Invariant)?;
        Ok(image)
    }
}

/// Checks a stored credential and its user name against the bounds the controller enforces.
fn check_credential(
    user: &str,
    mechanism: ScramMechanism,
    credential: &StoredCredential,
) -> Result<(), String> {
    crate::security::scram::validate_user_name(user)
        .and_then(|()| credential.to_credential(mechanism).map(drop))
        .map_err(|e| format!("the {mechanism} credential of user {user:?}: {e}"))
}

/// Why a snapshot could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No bytes at all.
    #[error("the metadata snapshot is empty")]
    Empty,
    /// Written by a version of Ferry this one does not read.
    #[error("the metadata snapshot has version {0}, but this build reads {SNAPSHOT_VERSION}")]
    Version(u8),
    /// The JSON does not parse as an image.
    #[error("the metadata snapshot does not parse: {0}")]
    Json(serde_json::Error),
    /// It parses, but breaks an invariant of the image.
    #[error("the metadata snapshot is inconsistent: {0}")]
    Invariant(String),
}

/// Serializes a map whose keys are not strings (which JSON objects need) as a list of pairs.
mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the map as `[[key, value], …]` in key order.
    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::{Cluster, listeners, register};

    #[test]
    fn a_snapshot_written_before_credentials_and_acls_still_decodes() {
        // The JSON an image had before it held SCRAM credentials and ACLs.
        let old = br#"{"offset":4,"cluster_id":"ferry-test","brokers":{},"topics":{},"configs":[],"next_producer_id":0,"features":{"metadata.version":1}}"#;
        let mut bytes = vec![SNAPSHOT_VERSION];
        bytes.extend_from_slice(old);
        let image = MetadataImage::decode(&bytes).expect("an old snapshot decodes");
        assert_eq!(image.offset(), 4);
        assert_eq!(image.scram_user_count(), 0);
        assert!(image.acls().is_empty());
        assert_eq!(image.feature_level("metadata.version"), 1);
    }

    #[test]
    fn a_snapshot_with_a_credential_out_of_bounds_is_refused() {
        let mut image = MetadataImage::new("ferry-test");
        let credential = StoredCredential {
            salt: vec![0; 16],
            stored_key: vec![1; 32],
            server_key: vec![2; 32],
            iterations: 4096,
        };
        image.apply(
            1,
            &Record::ScramCredential {
                name: "alice".into(),
                mechanism: ScramMechanism::Sha256,
                credential,
            },
        );
        let good = image.encode();
        assert_eq!(MetadataImage::decode(&good).unwrap(), image);
        let text = String::from_utf8(good[1..].to_vec()).unwrap();
        let bad = text.replace("\"iterations\":4096", "\"iterations\":1");
        assert_ne!(bad, text);
        let mut bytes = vec![SNAPSHOT_VERSION];
        bytes.extend_from_slice(bad.as_bytes());
        let error = MetadataImage::decode(&bytes).unwrap_err();
        assert!(matches!(error, SnapshotError::Invariant(_)), "{error}");
    }

    #[test]
    fn a_snapshot_round_trips_byte_for_byte() {
        let mut cluster = Cluster::with_brokers(&[(1, "a"), (2, "b"), (3, "c")]);
        // 10,000 partitions: large enough to matter, small enough for a unit test (the
        // million-partition case is a benchmark).
        for i in 0..10 {
            cluster.create(&format!("topic-{i}"), 1_000, 3);
        }
        cluster.fence(2);
        let bytes = cluster.image.encode();
        assert_eq!(bytes[0], SNAPSHOT_VERSION);
        let decoded = MetadataImage::decode(&bytes).unwrap();
        assert_eq!(decoded, cluster.image);
        assert_eq!(decoded.encode(), bytes);
        assert_eq!(
            decoded.topic_by_name("topic-3").unwrap().partitions.len(),
            1_000
        );
    }

    #[test]
    fn a_bad_snapshot_is_an_error_not_a_panic() {
        let image = MetadataImage::new("c");
        let mut wrong_version = image.encode();
        wrong_version[0] = 9;
        assert!(matches!(
            MetadataImage::decode(&[]),
            Err(SnapshotError::Empty)
        ));
        assert!(matches!(
            MetadataImage::decode(&wrong_version),
            Err(SnapshotError::Version(9))
        ));
        assert!(matches!(
            MetadataImage::decode(b"\x01{"),
            Err(SnapshotError::Json(_))
        ));
        let mut cluster = Cluster::with_brokers(&[(1, "a")]);
        cluster.create("t", 1, 1);
        let json = String::from_utf8(cluster.image.encode()[1..].to_vec()).unwrap();
        let broken = json.replace("\"isr\":[1]", "\"isr\":[7]");
        let mut bytes = vec![SNAPSHOT_VERSION];
        bytes.extend(broken.as_bytes());
        let err = MetadataImage::decode(&bytes).unwrap_err();
        assert!(matches!(err, SnapshotError::Invariant(_)), "{err}");
    }

    #[test]
    fn clients_see_unfenced_brokers_on_their_plaintext_listener() {
        let mut cluster = Cluster::with_brokers(&[(1, "a"), (2, "b")]);
        cluster.create("t", 2, 2);
        cluster.fence(2);
        let mut image = cluster.image.clone();
        let mut listeners = listeners(3);
        listeners.insert(
            0,
            Listener {
                name: "INTERNAL".into(),
                host: "internal-3".into(),
                port: 19092,
                security_protocol: "PLAINTEXT".into(),
            },
        );
        let register = Record::RegisterBroker {
            broker_id: 3,
            incarnation_id: Uuid::nil(),
            broker_epoch: 100,
            listeners,
            rack: None,
            fenced: false,
        };
        image.apply(100, &register);
        let client = image.to_client_image(1);
        assert_eq!(client.brokers.keys().collect::<Vec<_>>(), vec![&1, &3]);
        assert_eq!(
            (client.brokers[&3].host.as_str(), client.brokers[&3].port),
            ("broker-3", 9092)
        );
        assert_eq!((client.offset, client.controller_id), (100, 1));
        let partition = &client.topics["t"].partitions[0];
        assert_eq!((partition.leader, &partition.isr[..]), (1, &[1][..]));
    }

    #[test]
    fn try_apply_says_why_a_record_contradicts_the_image() {
        let mut cluster = Cluster::new();
        cluster.run(register(1, None));
        let unknown = Record::RemoveTopic {
            topic_id: TopicId::from_u128(42),
        };
        let mut image = cluster.image.clone();
        let err = image.try_apply(image.offset() + 1, &unknown).unwrap_err();
        assert!(err.contains("names an unknown topic"), "{err}");
        let stale = Record::FenceBroker {
            broker_id: 1,
            broker_epoch: 999,
        };
        let err = image.try_apply(image.offset() + 1, &stale).unwrap_err();
        assert!(err.contains("stale broker epoch"), "{err}");
    }

    #[test]
    #[should_panic(expected = "names an unknown topic")]
    fn a_partition_of_an_unknown_topic_is_a_bug() {
        MetadataImage::new("c").apply(
            1,
            &Record::Partition {
                topic_id: Uuid::nil(),
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
        );
    }

    #[test]
    #[should_panic(expected = "is impossible: leader 3 is not in ISR")]
    fn a_leader_outside_the_isr_is_a_bug() {
        let mut cluster = Cluster::with_brokers(&[(1, "a"), (2, "b")]);
        let topic = cluster.create("t", 1, 2);
        cluster.image.apply(
            cluster.offset + 1,
            &Record::PartitionChange {
                topic_id: topic.id,
                partition: 0,
                isr: None,
                leader: LeaderChange::Broker(3),
                replicas: None,
            },
        );
    }

    #[test]
    #[should_panic(expected = "metadata offset went back")]
    fn offsets_never_go_back() {
        let mut image = MetadataImage::new("c");
        image.apply(5, &Record::NoOp);
        image.apply(4, &Record::NoOp);
    }
}
