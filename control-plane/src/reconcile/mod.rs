//! Reconcilers: the control-plane loops that drive what the store observes toward what it
//! desires.
//!
//! One task, the [`Reconciler`], owns the loop. Every tick, and only while this control
//! plane's store voter leads ([`Leadership`]), it makes one pass:
//!
//! 1. **Hosts.** A host whose agent has been silent longer than the host timeout is marked
//!    UNREACHABLE ([`silent_hosts`]); placement then leaves it out.
//! 2. **Operations.** For every running operation (all tenants, oldest first) it reads the
//!    cluster and the hosts, asks [`plan::decide`] for the next effects, and applies them in
//!    order. A refused effect (a version moved on) ends that operation's turn; the next pass
//!    decides again on fresh state.
//!
//! Everything is derived from the store on each pass, so an operation interrupted by a restart
//! or a leader change resumes on the next leader's first pass. The only memory kept between
//! passes is how long each node has been UNHEALTHY (a grace period, which starts over after a
//! restart). A pass that changed something is followed at once by another, so an operation
//! moves through its steps without waiting a tick per step.

pub mod plan;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{
    ClusterId, Host, HostHealth, NodeState, Operation, PAGE_SIZE_MAX, PageRequest, TimestampMs,
};
use crate::placement::{HostId, NodeId};
use crate::store::Store;
use crate::{Error, Result};

pub use plan::{Effect, Settings, View};

/// How the reconciler runs.
#[derive(Debug, Clone)]
pub struct ReconcilerOptions {
    /// Pause between passes.
    pub tick: Duration,
    /// A host whose agent is silent this long is UNREACHABLE.
    pub host_timeout: Duration,
    /// Most passes made back to back while they keep changing things.
    pub passes_per_tick: usize,
    /// What the decisions need.
    pub settings: Settings,
}

impl Default for ReconcilerOptions {
    fn default() -> Self {
        ReconcilerOptions {
            tick: Duration::from_millis(200),
            host_timeout: Duration::from_secs(15),
            passes_per_tick: 8,
            settings: Settings::default(),
        }
    }
}

/// Whether this control plane may reconcile now: only the store's leader does, so two
/// control planes never drive the same operation.
pub trait Leadership: Send + Sync + 'static {
    /// Whether this process leads the store now.
    fn is_leader(&self) -> impl Future<Output = bool> + Send;
}

/// Leads always: a single control plane over a store nobody else writes (tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysLeader;

impl Leadership for AlwaysLeader {
    async fn is_leader(&self) -> bool {
        true
    }
}

impl Leadership for ferry_quorum::QuorumHandle {
    async fn is_leader(&self) -> bool {
        matches!(self.status().await, Ok(status) if status.role == ferry_quorum::Role::Leader)
    }
}

/// The reconciler loop over one store. See the module docs.
pub struct Reconciler<S: Store, L: Leadership> {
    store: Arc<S>,
    leadership: L,
    options: ReconcilerOptions,
    /// Since when each node has been UNHEALTHY without a break, by cluster.
    unhealthy_since: BTreeMap<ClusterId, BTreeMap<NodeId, TimestampMs>>,
}

impl<S: Store, L: Leadership> std::fmt::Debug for Reconciler<S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: Store, L: Leadership> Reconciler<S, L> {
    /// A reconciler over `store`, acting while `leadership` says so.
    pub fn new(store: Arc<S>, leadership: L, options: ReconcilerOptions) -> Self {
        Reconciler {
            store,
            leadership,
            options,
            unhealthy_since: BTreeMap::new(),
        }
    }

    /// Runs passes every tick until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut leading = false;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.options.tick) => {}
            }
            let leader = self.leadership.is_leader().await;
            if leader != leading {
                leading = leader;
                if leader {
                    tracing::info!("this control plane leads the store: reconciling");
                } else {
                    tracing::info!("this control plane no longer leads the store");
                }
            }
            if !leader {
                self.unhealthy_since.clear();
                continue;
            }
            for _ in 0..self.options.passes_per_tick {
                match self.pass().await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "reconcile pass failed; retrying next tick");
                        break;
                    }
                }
            }
        }
    }

    /// One pass over hosts and running operations. Returns whether it changed anything.
    pub async fn pass(&mut self) -> Result<bool> {
        let now_ms = self.store.now_ms();
        let mut changed = false;
        let mut hosts = self.all_hosts().await?;

        let timeout_ms = self.options.host_timeout.as_millis() as i64;
        for host_id in silent_hosts(&hosts, now_ms, timeout_ms) {
            tracing::warn!(host = %host_id, "host's agent is silent; marking it unreachable");
            self.store
                .set_host_health(&host_id, HostHealth::Unreachable)
                .await?;
            changed = true;
        }
        if changed {
            hosts = self.all_hosts().await?;
        }

        let operations = self.store.active_operations().await?;
        self.unhealthy_since
            .retain(|cluster, _| operations.iter().any(|op| &op.cluster_id == cluster));
        for operation in operations {
            changed |= self.reconcile(&operation, &hosts, now_ms).await?;
        }
        Ok(changed)
    }

    /// Decides and applies the next effects of one operation. Returns whether anything
    /// changed. A refused effect is not an error: the next pass decides again.
    async fn reconcile(
        &mut self,
        operation: &Operation,
        hosts: &[Host],
        now_ms: TimestampMs,
    ) -> Result<bool> {
        let store = &*self.store;
        let tenant = &operation.tenant;
        let mut cluster = match store.get_cluster(tenant, &operation.cluster_id).await {
            Ok(cluster) => cluster,
            Err(Error::NotFound(_)) => return Ok(false),
            Err(err) => return Err(err),
        };

        let since = self.unhealthy_since.entry(cluster.id.clone()).or_default();
        let reports = hosts
            .iter()
            .flat_map(|h| &h.nodes)
            .filter(|n| n.cluster_id == cluster.id);
        let mut unhealthy = BTreeMap::new();
        for report in reports {
            if report.state == NodeState::Unhealthy {
                let first = since.get(&report.node_id).copied().unwrap_or(now_ms);
                unhealthy.insert(report.node_id, first);
            }
        }
        *since = unhealthy;

        let view = View {
            cluster: &cluster,
            operation,
            hosts,
            now_ms,
            unhealthy_since: since,
        };
        let effects = plan::decide(&view, &self.options.settings);
        let changed = !effects.is_empty();
        for effect in effects {
            let applied = match effect {
                Effect::SetStatus(status) => store
                    .update_cluster_status(tenant, &cluster.id, cluster.current_version, status)
                    .await
                    .map(|updated| cluster = updated),
                Effect::SetAssignments {
                    host_id,
                    assignments,
                    expected_generation,
                } => store
                    .set_assignments(&host_id, assignments, Some(expected_generation))
                    .await
                    .map(drop),
                Effect::UpdateOperation(update) => store
                    .update_operation(tenant, &operation.id, update)
                    .await
                    .map(drop),
                Effect::RemoveCluster => {
                    store
                        .remove_cluster(tenant, &cluster.id, Some(cluster.current_version))
                        .await
                }
            };
            match applied {
                Ok(()) => {}
                Err(Error::Conflict(conflict)) => {
                    tracing::debug!(operation = %operation.id, %conflict, "effect refused; deciding again");
                    return Ok(true);
                }
                Err(err) => return Err(err),
            }
        }
        if changed {
            tracing::debug!(operation = %operation.id, "reconciled");
        }
        Ok(changed)
    }

    async fn all_hosts(&self) -> Result<Vec<Host>> {
        let mut hosts = Vec::new();
        let mut page = PageRequest::first(PAGE_SIZE_MAX);
        loop {
            let got = self.store.list_hosts(page.clone()).await?;
            hosts.extend(got.items);
            match got.next_page_token {
                Some(token) => page.page_token = Some(token),
                None => return Ok(hosts),
            }
        }
    }
}

/// The hosts not yet UNREACHABLE whose agents were last heard from more than `timeout_ms`
/// before `now_ms`.
pub fn silent_hosts(hosts: &[Host], now_ms: TimestampMs, timeout_ms: i64) -> Vec<HostId> {
    hosts
        .iter()
        .filter(|h| h.health != HostHealth::Unreachable)
        .filter(|h| now_ms - h.last_seen_at_ms > timeout_ms)
        .map(|h| h.id.clone())
        .collect()
}

#[cfg(test)]
mod tests;
