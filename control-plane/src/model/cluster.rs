//! A cluster: the user's [`ClusterSpec`] and the observed [`ClusterStatus`].

use crate::placement::Assignment;
use crate::spec::{ClusterSpec, ConfigurationRef};

use super::{OperationId, Tenant, TimestampMs};

/// A cluster's id, derived from the store's log index at creation: `cl-<16 hex digits>`. Ids
/// therefore sort in creation order.
pub type ClusterId = String;

/// A Kafka cluster as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cluster {
    /// Unique id, never reused.
    pub id: ClusterId,
    /// The owning tenant.
    pub tenant: Tenant,
    /// The desired cluster.
    pub spec: ClusterSpec,
    /// The observed cluster.
    pub status: ClusterStatus,
    /// Increases by one with every change to the cluster (optimistic concurrency).
    pub current_version: u64,
    /// When it was created.
    pub created_at_ms: TimestampMs,
    /// When it last changed.
    pub updated_at_ms: TimestampMs,
    /// The operation running on it, if any (at most one at a time).
    pub active_operation: Option<OperationId>,
    /// The idempotency key of the create, if the client gave one.
    pub client_request_id: Option<String>,
    /// The properties of the configuration revision `spec.configuration` names, copied by the
    /// store when the spec starts referencing it (revisions never change, so the copy never
    /// goes stale); empty without a configuration. The reconciler reads them from here, so
    /// its decisions need nothing but the cluster.
    #[serde(default)]
    pub configuration_properties: std::collections::BTreeMap<String, String>,
}

impl Cluster {
    /// The bootstrap string for clients: every placed broker's `address:kafka_port`, in node id
    /// order, comma-separated. Empty before placement.
    pub fn bootstrap_brokers(&self) -> String {
        self.status
            .placement
            .iter()
            .filter_map(|a| a.kafka_port.map(|port| format!("{}:{port}", a.address)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What the control plane observed about a cluster; written by the cluster reconciler.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterStatus {
    /// The lifecycle state.
    pub state: ClusterState,
    /// Why it is in this state.
    pub state_info: StateInfo,
    /// Where each node runs, sorted by node id; empty until placed.
    pub placement: Vec<Assignment>,
    /// The configuration revision the nodes run, recorded when an operation finished
    /// applying one; `None` for the defaults.
    #[serde(default)]
    pub configuration: Option<ConfigurationRef>,
}

impl ClusterStatus {
    /// A status in `state` with no explanation and no placement.
    pub fn new(state: ClusterState) -> Self {
        ClusterStatus {
            state,
            state_info: StateInfo::default(),
            placement: Vec::new(),
            configuration: None,
        }
    }
}

/// The lifecycle state of a cluster (DESIGN.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterState {
    /// The CREATE operation is running.
    Creating,
    /// Every node is up; clients may connect.
    Active,
    /// An update operation is running.
    Updating,
    /// A broker is being restarted.
    RebootingBroker,
    /// A lost host's nodes are being replaced.
    Healing,
    /// The DELETE operation is running.
    Deleting,
    /// An operation failed; see the state info.
    Failed,
}

/// A machine-readable explanation of a state.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StateInfo {
    /// A stable code a program can branch on (`INSUFFICIENT_CAPACITY`), the wire string of an
    /// [`OperationErrorCode`](super::OperationErrorCode); empty if none. A string, like
    /// [`OperationError::code`](super::OperationError::code), so unknown codes still load.
    pub code: String,
    /// A human sentence.
    pub message: String,
}

impl StateInfo {
    /// A state info with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        StateInfo {
            code: code.into(),
            message: message.into(),
        }
    }
}
