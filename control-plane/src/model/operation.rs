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
    /// A stable code a program can branch on (`INSUFFICIENT_CAPACITY`).
    pub code: String,
    /// A human sentence.
    pub message: String,
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
