//! An operation: a long-running change to one cluster, with steps, progress and an outcome.
//!
//! # Lifecycle
//!
//! ```text
//! PENDING ──reconciler picks it up──▶ RUNNING ──▶ SUCCEEDED
//!    └───────────────────────────────────┴──────▶ FAILED
//! ```
//!
//! The store creates an operation in PENDING with the steps of its [`OperationType`], all
//! PENDING, and marks it as the cluster's active operation. Reconcilers update its steps and
//! progress; when it reaches SUCCEEDED or FAILED the store records `ended_at_ms` and frees the
//! cluster for the next operation. An ended operation never changes again.

use super::{ClusterId, ClusterState, Tenant, TimestampMs};

/// An operation's id, derived from the store's log index: `op-<16 hex digits>`. Ids therefore
/// sort in creation order.
pub type OperationId = String;

/// A long-running change to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// Unique id, never reused.
    pub id: OperationId,
    /// The cluster it changes.
    pub cluster_id: ClusterId,
    /// The cluster's tenant (operations are tenant-scoped like their cluster).
    pub tenant: Tenant,
    /// What it does.
    pub kind: OperationType,
    /// Where it is.
    pub state: OperationState,
    /// Its steps, in the order they run.
    pub steps: Vec<Step>,
    /// Rough completion, 0..=100.
    pub progress_percent: u32,
    /// Why it failed; set only when FAILED.
    pub error: Option<OperationError>,
    /// When it was stored.
    pub started_at_ms: TimestampMs,
    /// When it succeeded or failed.
    pub ended_at_ms: Option<TimestampMs>,
}

impl Operation {
    /// Whether it has not ended yet.
    pub fn is_active(&self) -> bool {
        !self.state.is_terminal()
    }
}

/// The kind of change an operation makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    /// Creating a cluster.
    Create,
    /// Deleting a cluster.
    Delete,
    /// Changing the number of brokers.
    UpdateBrokerCount,
    /// Applying a new broker configuration.
    UpdateConfiguration,
    /// Restarting one broker.
    RebootBroker,
    /// Replacing the nodes of a lost host.
    Heal,
}

impl OperationType {
    /// The state a cluster is in while an operation of this type runs.
    pub fn cluster_state(self) -> ClusterState {
        match self {
            OperationType::Create => ClusterState::Creating,
            OperationType::Delete => ClusterState::Deleting,
            OperationType::UpdateBrokerCount | OperationType::UpdateConfiguration => {
                ClusterState::Updating
            }
            OperationType::RebootBroker => ClusterState::RebootingBroker,
            OperationType::Heal => ClusterState::Healing,
        }
    }

    /// The names of the steps an operation of this type goes through, in order.
    pub fn step_names(self) -> &'static [&'static str] {
        match self {
            OperationType::Create => &[
                "plan placement",
                "write assignments",
                "start controllers",
                "start brokers",
                "wait until healthy",
            ],
            OperationType::Delete => &["stop nodes", "remove data", "release placement"],
            OperationType::UpdateBrokerCount => &[
                "plan placement",
                "write assignments",
                "start new brokers",
                "wait until healthy",
            ],
            OperationType::UpdateConfiguration => &[
                "restart controllers",
                "restart brokers",
                "wait until healthy",
            ],
            OperationType::RebootBroker => &["stop broker", "start broker", "wait until healthy"],
            OperationType::Heal => &[
                "plan placement",
                "write assignments",
                "start replacement nodes",
                "wait until healthy",
            ],
        }
    }
}

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationState {
    /// Stored; no reconciler has picked it up yet.
    Pending,
    /// A reconciler is working through its steps.
    Running,
    /// Every step finished.
    Succeeded,
    /// A step failed; see the error.
    Failed,
}

impl OperationState {
    /// Whether the operation has ended (and may never change again).
    pub fn is_terminal(self) -> bool {
        matches!(self, OperationState::Succeeded | OperationState::Failed)
    }
}

/// One step of an operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// What the step does.
    pub name: String,
    /// Where it is.
    pub state: StepState,
    /// When it started.
    pub started_at_ms: Option<TimestampMs>,
    /// When it finished, failed or was skipped.
    pub ended_at_ms: Option<TimestampMs>,
    /// A human sentence about its progress or failure; may be empty.
    pub message: String,
}

impl Step {
    /// A step named `name` that has not started.
    pub fn pending(name: impl Into<String>) -> Self {
        Step {
            name: name.into(),
            state: StepState::Pending,
            started_at_ms: None,
            ended_at_ms: None,
            message: String::new(),
        }
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    /// Not started.
    Pending,
    /// In progress.
    Running,
    /// Finished.
    Done,
    /// Failed; the operation fails with it.
    Failed,
    /// Not needed this time.
    Skipped,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperationError {
    /// A stable code a program can branch on (`INSUFFICIENT_CAPACITY`): the wire string of an
    /// [`OperationErrorCode`]. It stays a string in the store, the API and the snapshots so
    /// that a code this build does not know (written by a newer control plane, or by a test
    /// script) still loads and is shown as it is.
    pub code: String,
    /// A human sentence.
    pub message: String,
}

impl OperationError {
    /// An error with `code`'s wire string and `message`.
    pub fn new(code: OperationErrorCode, message: impl Into<String>) -> Self {
        OperationError {
            code: code.as_str().to_owned(),
            message: message.into(),
        }
    }
}

/// Why the reconciler failed an operation: the codes it sets on a FAILED operation's
/// [`OperationError`] and, for most of them, on its FAILED cluster's
/// [`StateInfo`](super::StateInfo). Clients, the REST API and Terraform branch on the wire
/// string ([`OperationErrorCode::as_str`]), so a variant's string never changes once released.
///
/// The serde form is the same string, so a code stored as this enum or as its string reads
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationErrorCode {
    /// Placement found the healthy hosts short: a zone with no host, no room or no storage, or
    /// a host out of ports. Also the reason the API refuses a create it can tell is too big.
    InsufficientCapacity,
    /// Placement refused the cluster's spec as a request it cannot place at all.
    InvalidSpec,
    /// A host the cluster's placement uses is no longer registered.
    HostLost,
    /// A node being created stayed UNHEALTHY past the grace period; the message names the
    /// node, its host and its agent's reason.
    NodeStartFailed,
    /// Not every node of a new placement was ready within the node timeout; the message names
    /// each node not ready and how it is.
    NodeStartTimeout,
    /// A node restarted by a rolling restart stayed UNHEALTHY past the grace period.
    NodeRestartFailed,
    /// The rolling restart took longer than the node timeout per node.
    NodeRestartTimeout,
    /// During a rolling restart the cluster was not fully replicated (brokers reporting
    /// under-replicated or offline partitions) within the in-sync timeout, so the next node
    /// was not restarted.
    ReplicasNotInSync,
    /// A deletion's hosts still reported nodes of the cluster after the node timeout.
    NodeStopTimeout,
    /// The operation's type is not carried out by this control plane.
    NotSupported,
}

impl OperationErrorCode {
    /// Every code, in declaration order. A new variant goes here too (the wire-string test
    /// lists them all).
    pub const ALL: [OperationErrorCode; 10] = [
        OperationErrorCode::InsufficientCapacity,
        OperationErrorCode::InvalidSpec,
        OperationErrorCode::HostLost,
        OperationErrorCode::NodeStartFailed,
        OperationErrorCode::NodeStartTimeout,
        OperationErrorCode::NodeRestartFailed,
        OperationErrorCode::NodeRestartTimeout,
        OperationErrorCode::ReplicasNotInSync,
        OperationErrorCode::NodeStopTimeout,
        OperationErrorCode::NotSupported,
    ];

    /// The code as clients, the REST API, Terraform and the store see it.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationErrorCode::InsufficientCapacity => "INSUFFICIENT_CAPACITY",
            OperationErrorCode::InvalidSpec => "INVALID_SPEC",
            OperationErrorCode::HostLost => "HOST_LOST",
            OperationErrorCode::NodeStartFailed => "NODE_START_FAILED",
            OperationErrorCode::NodeStartTimeout => "NODE_START_TIMEOUT",
            OperationErrorCode::NodeRestartFailed => "NODE_RESTART_FAILED",
            OperationErrorCode::NodeRestartTimeout => "NODE_RESTART_TIMEOUT",
            OperationErrorCode::ReplicasNotInSync => "REPLICAS_NOT_IN_SYNC",
            OperationErrorCode::NodeStopTimeout => "NODE_STOP_TIMEOUT",
            OperationErrorCode::NotSupported => "NOT_SUPPORTED",
        }
    }

    /// The code whose wire string is `code`, if this build knows it.
    pub fn parse(code: &str) -> Option<OperationErrorCode> {
        OperationErrorCode::ALL
            .into_iter()
            .find(|known| known.as_str() == code)
    }
}

impl std::fmt::Display for OperationErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to an operation, as a reconciler reports progress. `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct OperationUpdate {
    /// The new state. SUCCEEDED or FAILED ends the operation and frees its cluster.
    pub state: Option<OperationState>,
    /// The whole new list of steps.
    pub steps: Option<Vec<Step>>,
    /// The new progress, 0..=100.
    pub progress_percent: Option<u32>,
    /// Why it failed; required with FAILED, refused otherwise.
    pub error: Option<OperationError>,
}

#[cfg(test)]
mod tests {
    use super::OperationErrorCode;

    /// The wire strings, written out: renaming one breaks clients, so it must break this too.
    #[test]
    fn error_codes_keep_their_wire_strings() {
        let wire: Vec<&str> = OperationErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            wire,
            [
                "INSUFFICIENT_CAPACITY",
                "INVALID_SPEC",
                "HOST_LOST",
                "NODE_START_FAILED",
                "NODE_START_TIMEOUT",
                "NODE_RESTART_FAILED",
                "NODE_RESTART_TIMEOUT",
                "REPLICAS_NOT_IN_SYNC",
                "NODE_STOP_TIMEOUT",
                "NOT_SUPPORTED",
            ]
        );
    }

    /// Parsing, Display and serde all agree with `as_str`.
    #[test]
    fn error_codes_round_trip() {
        for code in OperationErrorCode::ALL {
            assert_eq!(OperationErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(
                serde_json::from_str::<OperationErrorCode>(&json).unwrap(),
                code
            );
        }
        assert_eq!(OperationErrorCode::parse("NODE_START_FAILED "), None);
        assert_eq!(OperationErrorCode::parse(""), None);
    }
}
