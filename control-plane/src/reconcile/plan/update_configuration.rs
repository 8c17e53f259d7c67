//! UPDATE_CONFIGURATION: a rolling restart onto the configuration the cluster now asks for.
//!
//! A rolling restart, one node at a time: each node's assignment is rewritten with the
//! config the cluster now asks for ([`crate::configuration::node_config`]: the configuration
//! revision's properties, then the spec's `broker_config`), its agent restarts it, and the
//! next node's assignment is written only once that node reports RUNNING (a broker registered
//! and unfenced, a controller seeing a quorum leader) *with the new config's fingerprint*,
//! and every other node of the cluster is RUNNING too, *and the cluster is fully replicated*:
//! every broker's latest report, received after the most recent moment a node of the cluster
//! became RUNNING (so after the previous node came back; and no earlier than the operation's
//! start), counts 0 under-replicated and 0 offline partitions in its metadata image. This is
//! the MSK / Strimzi rule: a restart takes one replica of every partition it hosts out of the
//! ISR, so restarting another broker before they rejoined could leave `acks=all` producers
//! short of `min.insync.replicas`, or a partition without a leader. Controllers go first, in
//! id order, and only those whose config changed (most broker-only properties leave them
//! alone); then the brokers in id order.
//!
//! | step | function | done when |
//! |---|---|---|
//! | restart controllers | `restart` (controllers) | every controller's assignment carries its new config and it runs it |
//! | restart brokers | `restart` (brokers) | the same for every broker |
//! | wait until healthy | `wait_until_rolled` | every node RUNNING with its new config: the cluster is ACTIVE and its status records the revision |
//!
//! Nothing is remembered between calls but the store: which node is "in flight" is the one
//! whose assignment already carries the new fingerprint while its report does not show it
//! running, so a control plane restarted mid-roll resumes with that node. It fails, with the
//! cluster FAILED, when the restarted node stays UNHEALTHY for the grace period
//! (`NODE_RESTART_FAILED`, with its agent's reason), a host of the placement is gone
//! (`HOST_LOST`), the cluster is not fully replicated within
//! [`super::Settings::replicas_in_sync_timeout_ms`] of the last node coming back
//! (`REPLICAS_NOT_IN_SYNC`, with the partition counts; nothing unsafe is restarted meanwhile),
//! or the roll takes longer than the node timeout per node (`NODE_RESTART_TIMEOUT`). Another
//! UpdateClusterConfiguration may then be started on the FAILED cluster (the same revision to
//! retry, or the previous one to roll back).

use std::collections::BTreeMap;

use super::{
    Decision, Effect, Next, Settings, View, controller_quorum_voters, describe, host_assignment,
    reports_of,
};
use crate::model::{
    ClusterState, ClusterStatus, Host, HostAssignment, NodeReport, NodeState, OperationErrorCode,
    ReplicationHealth, StateInfo, TimestampMs,
};
use crate::placement::{Assignment, NodeId, Role};

// UPDATE_CONFIGURATION step indexes, matching its `step_names()`.
const RESTART_CONTROLLERS: usize = 0;
const RESTART_BROKERS: usize = 1;
const ROLLED: usize = 2;

/// Where one node of a rolling update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Roll {
    /// Its assignment still carries the old config.
    Stale,
    /// Its assignment carries the new config; it is not reported running it yet.
    Restarting,
    /// It runs the new config and is RUNNING.
    Done,
}

/// One node of a rolling update.
struct RollingNode<'a> {
    /// Where it is placed.
    node: &'a Assignment,
    /// Its host.
    host: &'a Host,
    /// Its assignment with the config the cluster now asks for.
    want: HostAssignment,
    /// Where it is.
    roll: Roll,
}

/// A rolling update as the store shows it: every node of the placement, controllers first
/// (ids 1..), then brokers (101..), since the placement is sorted by node id.
struct Rolling<'a> {
    nodes: Vec<RollingNode<'a>>,
    /// The latest report of each node of the cluster.
    reports: BTreeMap<NodeId, &'a NodeReport>,
}

impl<'a> Rolling<'a> {
    /// Where each node is; a host of the placement that is gone fails the roll (`HOST_LOST`).
    fn observe(view: View<'a>, settings: &Settings) -> Result<Self, Next> {
        let cluster = view.cluster;
        let placement = &cluster.status.placement;
        let voters = controller_quorum_voters(placement);
        let reports = reports_of(view.hosts, &cluster.id);
        let mut nodes = Vec::with_capacity(placement.len());
        for node in placement {
            let want = host_assignment(cluster, settings, node, &voters);
            let Some(host) = view.hosts.iter().find(|h| h.id == node.host) else {
                return Err(Next::fail_cluster(
                    step_of(node.role),
                    OperationErrorCode::HostLost,
                    format!(
                        "host {} of {} is no longer registered",
                        node.host,
                        describe(node)
                    ),
                ));
            };
            let current = host
                .assignments
                .iter()
                .find(|a| a.cluster_id == cluster.id && a.node_id == node.node_id);
            let running_new = reports.get(&node.node_id).is_some_and(|r| {
                r.state == NodeState::Running && r.config_fingerprint == want.config_fingerprint
            });
            let roll = match current {
                Some(current) if *current == want && running_new => Roll::Done,
                Some(current) if *current == want => Roll::Restarting,
                _ => Roll::Stale,
            };
            nodes.push(RollingNode {
                node,
                host,
                want,
                roll,
            });
        }
        Ok(Rolling { nodes, reports })
    }

    /// How many nodes of `role` are at `roll` (any, for `None`).
    fn count(&self, role: Role, roll: Option<Roll>) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.node.role == role && roll.is_none_or(|roll| n.roll == roll))
            .count()
    }

    /// The node restarting now, if any (there is at most one but after a bug).
    fn in_flight(&self) -> Option<&RollingNode<'a>> {
        self.nodes.iter().find(|n| n.roll == Roll::Restarting)
    }

    /// The next node of `role` still on the old config.
    fn next_stale(&self, role: Role) -> Option<&RollingNode<'a>> {
        self.nodes
            .iter()
            .find(|n| n.node.role == role && n.roll == Roll::Stale)
    }

    /// "(2 of 3 brokers run the new configuration)" for `node`'s role.
    fn tally(&self, node: &Assignment) -> String {
        format!(
            "({} of {} {}s run the new configuration)",
            self.count(node.role, Some(Roll::Done)),
            self.count(node.role, None),
            node.role
        )
    }
}

/// UPDATE_CONFIGURATION: a rolling restart, one node at a time (see the module docs).
pub(super) fn update_configuration(mut decision: Decision<'_>) -> Vec<Effect> {
    let roll = match Rolling::observe(decision.view, decision.settings) {
        Ok(roll) => roll,
        Err(host_lost) => return decision.finish(host_lost),
    };
    let total = roll.nodes.len().max(1);
    let done = roll.nodes.iter().filter(|n| n.roll == Roll::Done).count();
    decision
        .progress
        .set_percent(5 + (90 * done / total) as u32);
    for role in [Role::Controller, Role::Broker] {
        let all = roll.count(role, None);
        if roll.count(role, Some(Roll::Done)) == all {
            decision.progress.done(
                step_of(role),
                format!("{all} {role}s run the new configuration"),
            );
        }
    }
    decision.walk(&[
        &|d| restart(d, &roll, Role::Controller),
        &|d| restart(d, &roll, Role::Broker),
        &|d| wait_until_rolled(d),
    ])
}

/// Restart controllers, restart brokers: done once every node of `role` runs its new config.
/// One node at a time: a node already restarting (of either role) is waited for first;
/// otherwise the next node of `role` on the old config is restarted.
fn restart(d: &mut Decision<'_>, roll: &Rolling<'_>, role: Role) -> Next {
    if let Some(node) = roll.in_flight() {
        return await_restart(d, roll, node.node);
    }
    match roll.next_stale(role) {
        Some(node) => restart_next(d, roll, node),
        None => Next::Continue,
    }
}

/// A node restarting: wait for it, or fail if it does not come back.
fn await_restart(d: &mut Decision<'_>, roll: &Rolling<'_>, node: &Assignment) -> Next {
    if let Some(&since) = d.view.unhealthy_since.get(&node.node_id)
        && d.view.now_ms - since >= d.settings.unhealthy_grace_ms
    {
        return Next::fail_cluster(
            step_of(node.role),
            OperationErrorCode::NodeRestartFailed,
            format!(
                "{} did not come back with the new configuration: {}",
                describe(node),
                d.reason_of(node.node_id)
            ),
        );
    }
    if let Some(timeout) = roll_timeout(d, roll, node) {
        return timeout;
    }
    d.progress.run(
        step_of(node.role),
        format!(
            "restarting {} {} {}",
            node.role,
            node.node_id,
            roll.tally(node)
        ),
    );
    Next::wait()
}

/// The next node on the old config: its new assignment is written once every node of the
/// cluster is RUNNING and the cluster is fully replicated.
fn restart_next(d: &mut Decision<'_>, roll: &Rolling<'_>, next: &RollingNode<'_>) -> Next {
    let node = next.node;
    let not_running: Vec<String> = d
        .view
        .cluster
        .status
        .placement
        .iter()
        .filter(|n| {
            roll.reports
                .get(&n.node_id)
                .is_none_or(|r| r.state != NodeState::Running)
        })
        .map(|n| format!("{} {}", n.role, n.node_id))
        .collect();
    if !not_running.is_empty() {
        if let Some(timeout) = roll_timeout(d, roll, node) {
            return timeout;
        }
        d.progress.run(
            step_of(node.role),
            format!(
                "waiting for {} to be running before restarting {} {}",
                not_running.join(", "),
                node.role,
                node.node_id
            ),
        );
        return Next::wait();
    }
    if let Replication::Waiting { since, why } = replication(&d.view, &roll.reports) {
        if let Some(timeout) = roll_timeout(d, roll, node) {
            return timeout;
        }
        if d.view.now_ms - since > d.settings.replicas_in_sync_timeout_ms {
            return Next::fail_cluster(
                step_of(node.role),
                OperationErrorCode::ReplicasNotInSync,
                format!(
                    "the cluster was not fully replicated within {} s of its last node \
                     coming back, so {} {} was not restarted: {why}",
                    d.settings.replicas_in_sync_timeout_ms / 1000,
                    node.role,
                    node.node_id
                ),
            );
        }
        d.progress.run(
            step_of(node.role),
            format!(
                "waiting for the cluster to be fully replicated before restarting {} {}: \
                 {why}",
                node.role, node.node_id
            ),
        );
        return Next::wait();
    }
    let host = next.host;
    let mut assignments: Vec<HostAssignment> = host
        .assignments
        .iter()
        .filter(|a| !(a.cluster_id == d.view.cluster.id && a.node_id == node.node_id))
        .cloned()
        .chain([next.want.clone()])
        .collect();
    assignments.sort_by(|a, b| (&a.cluster_id, a.node_id).cmp(&(&b.cluster_id, b.node_id)));
    d.progress.run(
        step_of(node.role),
        format!(
            "restarting {} {} {}",
            node.role,
            node.node_id,
            roll.tally(node)
        ),
    );
    Next::Wait(vec![Effect::SetAssignments {
        host_id: host.id.clone(),
        assignments,
        expected_generation: host.generation,
    }])
}

/// Wait until healthy: every node runs the new configuration, so the cluster is ACTIVE and
/// its status records the revision.
fn wait_until_rolled(d: &mut Decision<'_>) -> Next {
    d.progress
        .done(ROLLED, "every node runs the new configuration");
    let cluster = d.view.cluster;
    Next::Succeed(ClusterStatus {
        state: ClusterState::Active,
        state_info: StateInfo::default(),
        placement: cluster.status.placement.clone(),
        configuration: cluster.spec.configuration.clone(),
    })
}

/// Whether a rolling restart may take another replica out of the ISR.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Replication {
    /// Every broker's fresh report counts no under-replicated and no offline partition.
    InSync,
    /// Not yet.
    Waiting {
        /// Since when the wait counts: the later of the operation's start and the last time
        /// a node of the cluster became RUNNING. Reports must be newer than this.
        since: TimestampMs,
        /// Why, in a sentence: the partition counts, or the brokers without a fresh report.
        why: String,
    },
}

/// Whether the cluster is fully replicated by its brokers' reports. Only a report received
/// after `since` (see [`Replication::Waiting`]) counts: one from before the last node came
/// back may describe the cluster before that node left the ISR. Every broker of the
/// placement must have one, so one broker's lagging metadata image cannot speak for all.
fn replication(view: &View<'_>, reports: &BTreeMap<NodeId, &NodeReport>) -> Replication {
    let placement = &view.cluster.status.placement;
    let since = placement
        .iter()
        .filter_map(|n| reports.get(&n.node_id).and_then(|r| r.running_since_ms))
        .fold(view.operation.started_at_ms, TimestampMs::max);
    let mut stale = Vec::new();
    // The worst counts any broker reports, and which broker reports them.
    let mut worst: Option<(NodeId, ReplicationHealth)> = None;
    for broker in placement.iter().filter(|n| n.role == Role::Broker) {
        let fresh = reports
            .get(&broker.node_id)
            .filter(|r| r.reported_at_ms > since)
            .and_then(|r| r.probe.as_ref())
            .and_then(|p| p.replication);
        match fresh {
            None => stale.push(broker.node_id.to_string()),
            Some(health) if !health.is_in_sync() => {
                let key = |h: &ReplicationHealth| (h.offline, h.under_replicated);
                if worst.is_none_or(|(_, w)| key(&health) > key(&w)) {
                    worst = Some((broker.node_id, health));
                }
            }
            Some(_) => {}
        }
    }
    let why = match (worst, stale.is_empty()) {
        (None, true) => return Replication::InSync,
        (Some((id, health)), _) => format!(
            "{} under-replicated and {} offline of {} partitions (broker {id}'s report)",
            health.under_replicated, health.offline, health.partitions
        ),
        (None, false) => format!(
            "no partition counts reported since the last node came back from broker {}",
            stale.join(", ")
        ),
    };
    Replication::Waiting { since, why }
}

/// The UPDATE_CONFIGURATION step that restarts nodes of `role`.
fn step_of(role: Role) -> usize {
    match role {
        Role::Controller => RESTART_CONTROLLERS,
        Role::Broker => RESTART_BROKERS,
    }
}

/// Fails the roll if it has taken longer than the node timeout for each of its nodes.
fn roll_timeout(d: &Decision<'_>, roll: &Rolling<'_>, waiting_on: &Assignment) -> Option<Next> {
    let budget = d
        .settings
        .node_timeout_ms
        .saturating_mul(roll.nodes.len().max(1) as i64);
    if !d.past(budget) {
        return None;
    }
    let report = roll
        .reports
        .get(&waiting_on.node_id)
        .map(|r| format!("{:?}: {}", r.state, r.message))
        .unwrap_or_else(|| "never reported".into());
    Some(Next::fail_cluster(
        step_of(waiting_on.role),
        OperationErrorCode::NodeRestartTimeout,
        format!(
            "the rolling restart did not finish within {} s ({} s per node); waiting on {} ({report})",
            budget / 1000,
            d.settings.node_timeout_ms / 1000,
            describe(waiting_on)
        ),
    ))
}
