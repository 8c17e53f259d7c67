//! The control plane's resources, as the store keeps them: each is a desired part (a spec, set
//! by the API) and an observed part (a status, set by reconcilers and agents).
//!
//! These are our own structs, not the prost types of `ferry.controlplane.v1`. The store's
//! state must be serde (commands, responses and snapshots are JSON) and deterministic
//! (`BTreeMap`s, no `HashMap`s), and it holds things the API never shows (a cluster's
//! `client_request_id`, a host's assignment generation). Keeping the wire types out of the
//! store also lets the API evolve without a store migration. The `api/` layer converts between
//! the two; the shapes match one for one, so those conversions are mechanical.
//!
//! Timestamps are milliseconds since the Unix epoch ([`TimestampMs`]), always chosen by whoever
//! proposes a change and carried in the command, never read by the state machine.
//!
//! - [`cluster`]: [`Cluster`] = [`ClusterSpec`](crate::spec::ClusterSpec) + [`ClusterStatus`].
//! - [`operation`]: [`Operation`], its [`Step`]s and outcome ([`OperationErrorCode`] when it fails).
//! - [`host`]: [`Host`] (what its agent registered and reports) and its [`HostAssignment`]s.
//! - [`configuration`]: [`Configuration`], named broker properties with immutable
//!   [`Revision`]s that clusters reference.
//! - [`limits`]: how much of the store one tenant may take.

pub mod ca;
pub mod cluster;
pub mod configuration;
pub mod host;
pub mod limits;
pub mod operation;

pub use cluster::{Cluster, ClusterId, ClusterState, ClusterStatus, StateInfo};
pub use configuration::{
    Configuration, ConfigurationId, ConfigurationSummary, Revision, RevisionInfo,
};
pub use host::{
    Host, HostAssignment, HostCapacity, HostHealth, HostRegistration, NodeProbe, NodeReport,
    NodeState, ReplicationHealth, placement_hosts,
};
pub use operation::{
    Operation, OperationError, OperationErrorCode, OperationId, OperationState, OperationType,
    OperationUpdate, Step, StepState,
};

/// The owner of clusters and configurations; every API call acts inside one tenant (from the caller's token).
pub type Tenant = String;

/// Milliseconds since the Unix epoch (UTC).
pub type TimestampMs = i64;

/// One page of a list, in the list's stable order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The page size used when a request asks for 0.
pub const PAGE_SIZE_DEFAULT: u32 = 100;
/// The largest page size served; larger requests are capped to it.
pub const PAGE_SIZE_MAX: u32 = 1000;

/// How a list request asks for one page.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PageRequest {
    /// Most items wanted; 0 for [`PAGE_SIZE_DEFAULT`], capped at [`PAGE_SIZE_MAX`].
    pub page_size: u32,
    /// `None` for the first page, else a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl PageRequest {
    /// The first page of at most `page_size` items.
    pub fn first(page_size: u32) -> Self {
        PageRequest {
            page_size,
            page_token: None,
        }
    }

    /// The effective page size: the default for 0, capped at the maximum.
    pub fn size(&self) -> usize {
        match self.page_size {
            0 => PAGE_SIZE_DEFAULT as usize,
            n => n.min(PAGE_SIZE_MAX) as usize,
        }
    }
}
