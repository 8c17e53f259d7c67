//! How much of the store one tenant may take: every per-tenant limit, named once.
//!
//! The store's state is replicated to every control-plane member and written whole into each
//! snapshot, so nothing a tenant can do may grow it without bound. The state machine checks
//! these limits when it applies a command (deterministically: the same counts on every
//! replica), and the API checks the same counts before proposing, so that a request over a
//! limit normally never reaches the raft log. A request over a limit is refused as
//! [`Error::ResourceExhausted`] (gRPC RESOURCE_EXHAUSTED, REST
//! 429), naming the limit, and changes nothing.
//!
//! | limit | default | at the bound |
//! |---|---|---|
//! | [`CLUSTERS_PER_TENANT_MAX`] | 100 | CreateCluster refused |
//! | [`CONFIGURATIONS_PER_TENANT_MAX`] | 100 | CreateConfiguration refused |
//! | [`REVISIONS_MAX`] | 50 per configuration | UpdateConfiguration refused |
//! | [`FINISHED_OPERATIONS_PER_CLUSTER_MAX`] | 100 per cluster | the oldest finished ones are forgotten |
//! | [`REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX`] | 100 per tenant | the oldest ones are forgotten |
//!
//! The limits are constants rather than options: every replica must apply the same ones, and a
//! per-deployment setting would have to be replicated with the state to stay deterministic.

/// Most clusters a tenant may have at once (clusters being deleted count until they are gone).
pub const CLUSTERS_PER_TENANT_MAX: usize = 100;
/// Most configurations a tenant may have at once.
pub const CONFIGURATIONS_PER_TENANT_MAX: usize = 100;
/// Most revisions one configuration keeps (MSK's limit): no revision is ever removed, so an
/// update beyond it is refused and a new configuration is the way on.
pub const REVISIONS_MAX: usize = 50;
/// Most finished (SUCCEEDED or FAILED) operations kept per cluster. When an operation ends
/// beyond it, the cluster's oldest finished operations are forgotten; the running operation
/// and the CREATE operation that a `client_request_id` points to are always kept.
pub const FINISHED_OPERATIONS_PER_CLUSTER_MAX: usize = 100;

use crate::error::{Error, Result};

/// Most operations of removed clusters a tenant keeps (so that a finished DELETE stays readable
/// for a while). When a cluster is removed beyond it, the tenant's oldest operations of removed
/// clusters are forgotten: creating and deleting clusters in a loop cannot grow the store.
pub const REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX: usize = 100;

const _: () = assert!(REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX > 0);
const _: () = assert!(CLUSTERS_PER_TENANT_MAX > 0 && CONFIGURATIONS_PER_TENANT_MAX > 0);
const _: () = assert!(REVISIONS_MAX > 0 && FINISHED_OPERATIONS_PER_CLUSTER_MAX > 0);

/// A limit on how many of something a tenant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantLimit {
    /// [`CLUSTERS_PER_TENANT_MAX`].
    Clusters,
    /// [`CONFIGURATIONS_PER_TENANT_MAX`].
    Configurations,
}

impl TenantLimit {
    /// The most a tenant may hold.
    pub fn max(self) -> usize {
        match self {
            TenantLimit::Clusters => CLUSTERS_PER_TENANT_MAX,
            TenantLimit::Configurations => CONFIGURATIONS_PER_TENANT_MAX,
        }
    }

    /// Refuses one more when `tenant` already holds `held`.
    ///
    /// # Errors
    ///
    /// [`Error::ResourceExhausted`] naming the limit and its value.
    pub fn check_one_more(self, tenant: &str, held: usize) -> Result<()> {
        let (noun, name) = match self {
            TenantLimit::Clusters => ("clusters", "CLUSTERS_PER_TENANT_MAX"),
            TenantLimit::Configurations => ("configurations", "CONFIGURATIONS_PER_TENANT_MAX"),
        };
        let max = self.max();
        if held >= max {
            return Err(Error::ResourceExhausted(format!(
                "tenant {tenant} has {held} {noun}, the most a tenant may have ({name} = {max}); \
                 delete one first"
            )));
        }
        Ok(())
    }
}

/// Refuses another revision of `configuration_id`, which has `held`.
///
/// # Errors
///
/// [`Error::ResourceExhausted`] naming [`REVISIONS_MAX`].
pub fn check_one_more_revision(configuration_id: &str, held: usize) -> Result<()> {
    if held >= REVISIONS_MAX {
        return Err(Error::ResourceExhausted(format!(
            "configuration {configuration_id} has {held} revisions, the most one may have \
             (REVISIONS_MAX = {REVISIONS_MAX}); create a new configuration"
        )));
    }
    Ok(())
}
