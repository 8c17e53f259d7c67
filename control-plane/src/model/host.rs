//! A host: a machine running one agent, what it offers, what it should run and what it
//! reports.
//!
//! Hosts are not tenant resources: every tenant's nodes share them. Through the API a tenant
//! admin sees every host with only its own tenant's nodes on it, and a service operator sees
//! every node (`HostService` in `api/host.rs`).

use std::collections::BTreeMap;

use crate::placement::{self, HostId, NodeId, Occupant, PortRange, Role};

use super::{ClusterId, TimestampMs};

/// A host as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Host {
    /// Its id, as its agent registered it.
    pub id: HostId,
    /// Its failure domain.
    pub zone: String,
    /// The address its nodes listen on.
    pub address: String,
    /// The ports nodes may use.
    pub ports: PortRange,
    /// How much it can take.
    pub capacity: HostCapacity,
    /// Whether its agent is heard from.
    pub health: HostHealth,
    /// When it first registered.
    pub registered_at_ms: TimestampMs,
    /// When its agent last registered or reported.
    pub last_seen_at_ms: TimestampMs,
    /// The nodes it should run (desired), sorted by cluster id then node id.
    pub assignments: Vec<HostAssignment>,
    /// Nodes taken off the host that its agent still reports (stopping, or removing their
    /// data): their ports and storage stay taken, so placement gives them to no new node
    /// until the agent stops reporting them.
    #[serde(default)]
    pub releasing: Vec<HostAssignment>,
    /// Increases whenever `assignments` change, so agents can poll cheaply.
    pub generation: u64,
    /// The generation the agent last said it applied.
    pub applied_generation: u64,
    /// The nodes as the agent last reported them (observed), sorted by cluster id then node id.
    pub nodes: Vec<NodeReport>,
}

/// What an agent says about its host when it registers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostRegistration {
    /// The host's id, stable across agent restarts.
    pub id: HostId,
    /// Its failure domain.
    pub zone: String,
    /// The address its nodes listen on.
    pub address: String,
    /// The ports nodes may use.
    pub ports: PortRange,
    /// How much it can take.
    pub capacity: HostCapacity,
}

/// What a host can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostCapacity {
    /// Most nodes (all clusters) at once.
    pub max_nodes: u32,
    /// Storage offered to node data directories, in bytes.
    pub storage_bytes: u64,
}

/// Whether a host's agent is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HostHealth {
    /// Registered, no report yet.
    Unknown,
    /// Reports regularly.
    Healthy,
    /// Silent too long (judged by the host reconciler, which has a clock).
    Unreachable,
}

/// One node a host should run, with everything its agent needs to write the node's config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostAssignment {
    /// The node's cluster.
    pub cluster_id: ClusterId,
    /// The node's id in its cluster.
    pub node_id: NodeId,
    /// Broker or controller.
    pub role: Role,
    /// The address it listens on.
    pub address: String,
    /// Its Kafka listener port (brokers).
    pub kafka_port: Option<u16>,
    /// Its controller port (controllers).
    pub controller_port: Option<u16>,
    /// Its admin port: the health endpoint the agent polls.
    pub admin_port: u16,
    /// The Kafka version it presents.
    pub kafka_version: String,
    /// Storage reserved for its data directory, in bytes.
    pub storage_bytes: u64,
    /// Broker config overrides by Kafka name.
    pub broker_config: BTreeMap<String, String>,
    /// The cluster's controller quorum, `id@host:port` per controller, sorted by id.
    pub controller_quorum_voters: Vec<String>,
    /// A hash of `broker_config` ([`crate::configuration::fingerprint`]): the agent reports
    /// it back for the process it runs, so the reconciler can tell a node that runs this
    /// configuration from one still running an older one.
    #[serde(default)]
    pub config_fingerprint: String,
}

impl HostAssignment {
    /// The ports the node takes on its host's address.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.kafka_port
            .into_iter()
            .chain(self.controller_port)
            .chain(std::iter::once(self.admin_port))
    }
}

/// How a node is, as its agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeState {
    /// Assigned, not started yet.
    Pending,
    /// Running but not ready.
    Starting,
    /// Ready and serving.
    Running,
    /// Down or unhealthy.
    Unhealthy,
    /// Stopped on purpose.
    Stopped,
}

/// One node in an agent's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeReport {
    /// Its cluster.
    pub cluster_id: ClusterId,
    /// Its node id.
    pub node_id: NodeId,
    /// How it is.
    pub state: NodeState,
    /// Why, in a sentence.
    pub message: String,
    /// The `config_fingerprint` of the assignment its process was started with; empty if
    /// none runs or it is unknown.
    #[serde(default)]
    pub config_fingerprint: String,
    /// What its admin endpoint said at its agent's last probe; `None` when no process runs,
    /// it did not answer, or the agent is older than the field.
    #[serde(default)]
    pub probe: Option<NodeProbe>,
    /// When the store received this report (the proposer's clock); set by the store, so an
    /// agent's value is ignored.
    #[serde(default)]
    pub reported_at_ms: TimestampMs,
    /// Since when the node has been reported RUNNING with this `config_fingerprint` without a
    /// break; `None` when it is not RUNNING. Set by the store from the previous report.
    #[serde(default)]
    pub running_since_ms: Option<TimestampMs>,
}

/// What a node's admin endpoint said when its agent last probed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeProbe {
    /// Brokers: the epoch of its registration; -1 when not registered.
    pub broker_epoch: i64,
    /// Brokers: whether the controllers fence it.
    pub fenced: bool,
    /// Offset of the last metadata change it applied.
    pub metadata_offset: u64,
    /// Controllers: its role in the metadata quorum; empty for a broker-only node.
    pub quorum_role: String,
    /// Controllers: the quorum leader it knows of; -1 when none.
    pub quorum_leader_id: i32,
    /// Brokers: the whole cluster's partition replication by its metadata image; `None` for a
    /// controller or a node that does not count it.
    pub replication: Option<ReplicationHealth>,
}

/// Partition counts over the whole cluster, from one broker's metadata image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicationHealth {
    /// Partitions in the image.
    pub partitions: u32,
    /// Partitions whose in-sync replica set is smaller than their replica set.
    pub under_replicated: u32,
    /// Partitions without a leader.
    pub offline: u32,
}

impl ReplicationHealth {
    /// Whether every partition has a leader and its full replica set in sync.
    pub fn is_in_sync(&self) -> bool {
        self.under_replicated == 0 && self.offline == 0
    }
}

/// The hosts placement may use: every registered host not known to be unreachable, with the
/// nodes already assigned to it as occupants, except those of `except_cluster` (the cluster
/// being placed, whose own nodes are not in its way).
pub fn placement_hosts(hosts: &[Host], except_cluster: Option<&str>) -> Vec<placement::Host> {
    hosts
        .iter()
        .filter(|h| h.health != HostHealth::Unreachable)
        .map(|h| placement::Host {
            id: h.id.clone(),
            zone: h.zone.clone(),
            address: h.address.clone(),
            ports: h.ports,
            max_nodes: h.capacity.max_nodes,
            storage_bytes: h.capacity.storage_bytes,
            occupants: h
                .assignments
                .iter()
                .chain(&h.releasing)
                .filter(|a| Some(a.cluster_id.as_str()) != except_cluster)
                .map(|a| Occupant {
                    ports: a.ports().collect(),
                    storage_bytes: a.storage_bytes,
                })
                .collect(),
        })
        .collect()
}
