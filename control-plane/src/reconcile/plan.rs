//! The cluster reconciler's decisions, without I/O: from what the store holds now (a cluster,
//! its running operation, the hosts with their assignments and their agents' reports, the
//! time) to the next [`Effect`]s that move the cluster toward what the operation asks.
//!
//! [`decide`] is called again after its effects are applied, and after every restart or
//! leader change: it derives everything from the store, so an interrupted operation resumes
//! where the store says it is. Each call makes one transition (place, write assignments, mark
//! progress, finish), so the shell applies a short list and reads back before the next.
//!
//! # CREATE
//!
//! | step | done when |
//! |---|---|
//! | plan placement | the cluster's status holds a placement ([`crate::placement::plan`] over the healthy hosts) |
//! | write assignments | every host of the placement lists the cluster's nodes on it |
//! | start controllers | every controller reports RUNNING (its agent saw a quorum leader) |
//! | start brokers | every broker reports RUNNING (registered and unfenced) |
//! | wait until healthy | all of the above at once: the cluster becomes ACTIVE |
//!
//! It fails, with the cluster FAILED and a code a program can branch on (an
//! [`OperationErrorCode`], named below by its wire string), when placement finds
//! the hosts short (`INSUFFICIENT_CAPACITY`), a node stays UNHEALTHY for the grace period
//! (`NODE_START_FAILED`, naming the node, its host and its agent's reason), a host of the
//! placement disappears (`HOST_LOST`), or the nodes are not all ready within the start timeout
//! (`NODE_START_TIMEOUT`, naming every node not ready and how it is).
//!
//! # DELETE
//!
//! | step | done when |
//! |---|---|
//! | stop nodes | no host lists a node of the cluster any more |
//! | remove data | no reachable host reports a node of the cluster (agents report a node until they stopped it and removed its directory) |
//! | release placement | the cluster is removed, which ends the operation |
//!
//! An unreachable host is not waited for: its agent drops the nodes when it returns, since its
//! assignments no longer list them. The step's message says so.
//!
//! # UPDATE_CONFIGURATION
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
//! | step | done when |
//! |---|---|
//! | restart controllers | every controller's assignment carries its new config and it runs it |
//! | restart brokers | the same for every broker |
//! | wait until healthy | every node RUNNING with its new config: the cluster is ACTIVE and its status records the revision |
//!
//! Nothing is remembered between calls but the store: which node is "in flight" is the one
//! whose assignment already carries the new fingerprint while its report does not show it
//! running, so a control plane restarted mid-roll resumes with that node. It fails, with the
//! cluster FAILED, when the restarted node stays UNHEALTHY for the grace period
//! (`NODE_RESTART_FAILED`, with its agent's reason), a host of the placement is gone
//! (`HOST_LOST`), the cluster is not fully replicated within
//! [`Settings::replicas_in_sync_timeout_ms`] of the last node coming back
//! (`REPLICAS_NOT_IN_SYNC`, with the partition counts; nothing unsafe is restarted meanwhile),
//! or the roll takes longer than the node timeout per node (`NODE_RESTART_TIMEOUT`). Another UpdateClusterConfiguration may then be started on the
//! FAILED cluster (the same revision to retry, or the previous one to roll back).

use std::collections::BTreeMap;

use crate::configuration;
use crate::model::{
    Cluster, ClusterState, ClusterStatus, Host, HostAssignment, HostHealth, NodeReport, NodeState,
    Operation, OperationError, OperationErrorCode, OperationState, OperationType, OperationUpdate,
    ReplicationHealth, StateInfo, Step, StepState, TimestampMs, placement_hosts,
};
use crate::placement::{self, Assignment, HostId, NodeId, Placement, Role};

/// What the decisions need to know besides the store's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Storage each controller takes on its host (placement).
    pub controller_storage_bytes: u64,
    /// How long a node may stay UNHEALTHY while its cluster is created before the operation
    /// fails (its agent restarts it meanwhile).
    pub unhealthy_grace_ms: i64,
    /// How long an operation may wait for its nodes to start or stop before it fails.
    pub node_timeout_ms: i64,
    /// How long a rolling restart waits for the cluster to be fully replicated (every broker
    /// reporting 0 under-replicated and 0 offline partitions) before restarting the next node,
    /// counted from the last time a node of the cluster came back; past it the operation fails
    /// with `REPLICAS_NOT_IN_SYNC` rather than restart a broker while replicas lag.
    pub replicas_in_sync_timeout_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            controller_storage_bytes: crate::api::CONTROLLER_STORAGE_BYTES_DEFAULT,
            unhealthy_grace_ms: 10_000,
            node_timeout_ms: 300_000,
            // Generous: a restarted broker replays what it missed from the leaders, which
            // under heavy traffic takes a while; an operator would rather wait than have the
            // roll give up on a cluster that is only catching up.
            replicas_in_sync_timeout_ms: 600_000,
        }
    }
}

/// What [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The cluster the operation changes.
    pub cluster: &'a Cluster,
    /// The cluster's running operation.
    pub operation: &'a Operation,
    /// Every registered host.
    pub hosts: &'a [Host],
    /// Now, by the reconciler's clock.
    pub now_ms: TimestampMs,
    /// Since when each node of the cluster has been reported UNHEALTHY without a break (the
    /// shell remembers it between calls; after a restart the grace starts over).
    pub unhealthy_since: &'a BTreeMap<NodeId, TimestampMs>,
}

/// One change for the shell to make, in order; if one is refused, the rest are dropped and
/// [`decide`] runs again on fresh state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Replace the cluster's status (at the version the shell last saw).
    SetStatus(ClusterStatus),
    /// Replace what a host should run.
    SetAssignments {
        /// The host.
        host_id: HostId,
        /// Everything it should run, all clusters.
        assignments: Vec<HostAssignment>,
        /// The host's generation the decision was made on.
        expected_generation: u64,
    },
    /// Record progress on the operation (or end it).
    UpdateOperation(OperationUpdate),
    /// Forget the cluster, ending its DELETE operation.
    RemoveCluster,
}

/// The next effects for the view's operation; empty while waiting on agents.
pub fn decide(view: &View<'_>, settings: &Settings) -> Vec<Effect> {
    let progress = Progress::new(view.operation, view.now_ms);
    match view.operation.kind {
        OperationType::Create => converge(view, settings, progress, CREATE_STEPS),
        OperationType::UpdateBrokerCount => {
            converge(view, settings, progress, UPDATE_BROKER_COUNT_STEPS)
        }
        OperationType::Delete => delete(view, settings, progress),
        OperationType::UpdateConfiguration => update_configuration(view, settings, progress),
        other => progress.fail(
            0,
            OperationErrorCode::NotSupported,
            format!("{other:?} operations are not supported by this control plane yet"),
        ),
    }
}

/// The steps of the operation as they change during one decision.
struct Progress {
    steps: Vec<Step>,
    percent: u32,
    now_ms: TimestampMs,
    changed: bool,
}

impl Progress {
    fn new(operation: &Operation, now_ms: TimestampMs) -> Self {
        Progress {
            steps: operation.steps.clone(),
            percent: operation.progress_percent,
            now_ms,
            changed: operation.state == OperationState::Pending,
        }
    }

    fn step(&mut self, index: usize) -> Option<&mut Step> {
        self.steps.get_mut(index)
    }

    /// Marks step `index` running (if it was not) with `message`.
    fn run(&mut self, index: usize, message: impl Into<String>) {
        let now = self.now_ms;
        let message = message.into();
        let Some(step) = self.step(index) else { return };
        let before = step.clone();
        if step.state == StepState::Pending {
            step.state = StepState::Running;
            step.started_at_ms = Some(now);
        }
        step.message = message;
        let changed = *step != before;
        self.changed |= changed;
    }

    /// Marks step `index` done (if it was not) with `message`.
    fn done(&mut self, index: usize, message: impl Into<String>) {
        let now = self.now_ms;
        let message = message.into();
        let Some(step) = self.step(index) else { return };
        if step.state == StepState::Done {
            return;
        }
        step.started_at_ms.get_or_insert(now);
        step.state = StepState::Done;
        step.ended_at_ms = Some(now);
        step.message = message;
        self.changed = true;
    }

    fn is_done(&self, index: usize) -> bool {
        self.steps
            .get(index)
            .is_some_and(|s| s.state == StepState::Done)
    }

    fn set_percent(&mut self, percent: u32) {
        let percent = percent.min(100);
        if percent != self.percent {
            self.percent = percent;
            self.changed = true;
        }
    }

    /// The operation update recording the steps so far (RUNNING), if anything changed.
    fn update(&self) -> Option<Effect> {
        self.changed.then(|| {
            Effect::UpdateOperation(OperationUpdate {
                state: Some(OperationState::Running),
                steps: Some(self.steps.clone()),
                progress_percent: Some(self.percent),
                error: None,
            })
        })
    }

    /// `effects` followed by the progress update, if any.
    fn with(self, mut effects: Vec<Effect>) -> Vec<Effect> {
        effects.extend(self.update());
        effects
    }

    /// Fails step `index` and the operation with `code` and `message`.
    fn fail(mut self, index: usize, code: OperationErrorCode, message: String) -> Vec<Effect> {
        let now = self.now_ms;
        if let Some(step) = self.step(index) {
            step.started_at_ms.get_or_insert(now);
            step.state = StepState::Failed;
            step.ended_at_ms = Some(now);
            step.message = message.clone();
        }
        vec![Effect::UpdateOperation(OperationUpdate {
            state: Some(OperationState::Failed),
            steps: Some(self.steps),
            progress_percent: Some(self.percent),
            error: Some(OperationError::new(code, message)),
        })]
    }

    /// Fails the operation and puts the cluster in FAILED with the same code and message.
    fn fail_cluster(
        self,
        view: &View<'_>,
        index: usize,
        code: OperationErrorCode,
        message: String,
    ) -> Vec<Effect> {
        let status = ClusterStatus {
            state: ClusterState::Failed,
            state_info: StateInfo::new(code.as_str(), message.clone()),
            placement: view.cluster.status.placement.clone(),
            configuration: view.cluster.status.configuration.clone(),
        };
        let mut effects = vec![Effect::SetStatus(status)];
        effects.extend(self.fail(index, code, message));
        effects
    }
}

/// Where the steps of an operation that converges on the spec's placement are, matching its
/// type's `step_names()`.
#[derive(Clone, Copy)]
struct ConvergeSteps {
    plan: usize,
    assign: usize,
    /// The controllers' own step (CREATE only; an update leaves them as they are).
    controllers: Option<usize>,
    brokers: usize,
    healthy: usize,
}

const CREATE_STEPS: ConvergeSteps = ConvergeSteps {
    plan: 0,
    assign: 1,
    controllers: Some(2),
    brokers: 3,
    healthy: 4,
};

const UPDATE_BROKER_COUNT_STEPS: ConvergeSteps = ConvergeSteps {
    plan: 0,
    assign: 1,
    controllers: None,
    brokers: 2,
    healthy: 3,
};

/// The node ids the spec asks for: controllers `1..=C`, brokers `101..`.
fn wanted_ids(cluster: &Cluster) -> Vec<NodeId> {
    let spec = &cluster.spec;
    (0..spec.controller_count as NodeId)
        .map(|k| placement::FIRST_CONTROLLER_ID + k)
        .chain((0..spec.broker_count as NodeId).map(|i| placement::FIRST_BROKER_ID + i))
        .collect()
}

/// CREATE and UPDATE_BROKER_COUNT: place what the spec asks for (keeping every placed node
/// where it is), tell the hosts, and wait until every node runs.
fn converge(
    view: &View<'_>,
    settings: &Settings,
    mut progress: Progress,
    steps: ConvergeSteps,
) -> Vec<Effect> {
    let cluster = view.cluster;
    let spec = &cluster.spec;

    // Plan placement.
    let placed: Vec<NodeId> = cluster.status.placement.iter().map(|a| a.node_id).collect();
    if placed != wanted_ids(cluster) {
        progress.run(steps.plan, "placing nodes");
        let request = placement::Request::for_spec(spec, settings.controller_storage_bytes);
        let hosts = placement_hosts(view.hosts, Some(&cluster.id));
        let current = Placement {
            nodes: cluster.status.placement.clone(),
        };
        return match placement::plan(&request, &hosts, &current) {
            Ok(planned) => {
                let host_count = planned
                    .nodes
                    .iter()
                    .map(|a| a.host.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                progress.done(
                    steps.plan,
                    format!("{} nodes on {host_count} hosts", planned.nodes.len()),
                );
                progress.set_percent(10);
                let status = ClusterStatus {
                    state: cluster.status.state,
                    state_info: StateInfo::default(),
                    placement: planned.nodes,
                    configuration: cluster.status.configuration.clone(),
                };
                progress.with(vec![Effect::SetStatus(status)])
            }
            Err(placement::Error::Insufficient(shortage)) => progress.fail_cluster(
                view,
                steps.plan,
                OperationErrorCode::InsufficientCapacity,
                shortage.to_string(),
            ),
            Err(err @ placement::Error::InvalidRequest(_)) => progress.fail_cluster(
                view,
                steps.plan,
                OperationErrorCode::InvalidSpec,
                err.to_string(),
            ),
        };
    }
    progress.done(steps.plan, "placed");

    // Write assignments.
    let placement = &cluster.status.placement;
    let writes = match assignment_writes(view, settings, placement) {
        Ok(writes) => writes,
        Err(message) => {
            return progress.fail_cluster(
                view,
                steps.assign,
                OperationErrorCode::HostLost,
                message,
            );
        }
    };
    if !writes.is_empty() {
        progress.run(
            steps.assign,
            format!("writing assignments to {} hosts", writes.len()),
        );
        return progress.with(writes);
    }
    let hosts_used = placement
        .iter()
        .map(|a| a.host.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    progress.done(
        steps.assign,
        format!("assignments written to {hosts_used} hosts"),
    );

    // Start the nodes: the agents start them all at once; brokers become ready after the
    // controllers elect a leader.
    let reports = reports_of(view.hosts, &cluster.id);
    for node in placement {
        if let Some(&since) = view.unhealthy_since.get(&node.node_id)
            && view.now_ms - since >= settings.unhealthy_grace_ms
        {
            let why = reports
                .get(&node.node_id)
                .map(|r| r.message.as_str())
                .filter(|m| !m.is_empty())
                .unwrap_or("no reason given");
            return progress.fail_cluster(
                view,
                match (node.role, steps.controllers) {
                    (Role::Controller, Some(index)) => index,
                    _ => steps.brokers,
                },
                OperationErrorCode::NodeStartFailed,
                format!("{} could not start: {why}", describe(node)),
            );
        }
    }
    let ready = |role: Role| -> (usize, usize) {
        let nodes: Vec<&Assignment> = placement.iter().filter(|a| a.role == role).collect();
        let running = nodes
            .iter()
            .filter(|a| {
                reports
                    .get(&a.node_id)
                    .is_some_and(|r| r.state == NodeState::Running)
            })
            .count();
        (running, nodes.len())
    };
    let (controllers_up, controllers) = ready(Role::Controller);
    let (brokers_up, brokers) = ready(Role::Broker);
    let all = controllers + brokers;
    progress.set_percent(20 + (70 * (controllers_up + brokers_up) / all.max(1)) as u32);

    if let Some(index) = steps.controllers {
        if controllers_up == controllers {
            progress.done(
                index,
                format!("{controllers} controllers running with a quorum leader"),
            );
        } else {
            progress.run(
                index,
                format!("{controllers_up} of {controllers} controllers ready"),
            );
        }
    }
    if brokers_up == brokers {
        progress.done(
            steps.brokers,
            format!("{brokers} brokers registered and unfenced"),
        );
    } else {
        progress.run(
            steps.brokers,
            format!("{brokers_up} of {brokers} brokers ready"),
        );
    }

    if controllers_up == controllers && progress.is_done(steps.brokers) {
        progress.done(steps.healthy, "every node is running");
        // Every node started with the assignments just written, so they run the spec's
        // configuration.
        let status = ClusterStatus {
            state: ClusterState::Active,
            state_info: StateInfo::default(),
            placement: placement.clone(),
            configuration: spec.configuration.clone(),
        };
        let mut done = progress.steps.clone();
        for step in &mut done {
            if step.state != StepState::Done {
                step.state = StepState::Done;
                step.started_at_ms.get_or_insert(view.now_ms);
                step.ended_at_ms = Some(view.now_ms);
            }
        }
        return vec![
            Effect::SetStatus(status),
            Effect::UpdateOperation(OperationUpdate {
                state: Some(OperationState::Succeeded),
                steps: Some(done),
                progress_percent: Some(100),
                error: None,
            }),
        ];
    }

    if view.now_ms - view.operation.started_at_ms > settings.node_timeout_ms {
        let waiting: Vec<String> = placement
            .iter()
            .filter_map(|node| {
                let report = reports.get(&node.node_id);
                match report {
                    Some(r) if r.state == NodeState::Running => None,
                    Some(r) if !r.message.is_empty() => Some(format!(
                        "{} is {:?}: {}",
                        describe(node),
                        r.state,
                        r.message
                    )),
                    Some(r) => Some(format!("{} is {:?}", describe(node), r.state)),
                    None => Some(format!(
                        "{} was never reported by its agent",
                        describe(node)
                    )),
                }
            })
            .collect();
        let index = match steps.controllers {
            Some(index) if controllers_up < controllers => index,
            _ => steps.brokers,
        };
        return progress.fail_cluster(
            view,
            index,
            OperationErrorCode::NodeStartTimeout,
            format!(
                "not every node was ready after {} s: {}",
                settings.node_timeout_ms / 1000,
                waiting.join("; ")
            ),
        );
    }
    progress.with(Vec::new())
}

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

/// UPDATE_CONFIGURATION: a rolling restart, one node at a time (see the module docs).
fn update_configuration(
    view: &View<'_>,
    settings: &Settings,
    mut progress: Progress,
) -> Vec<Effect> {
    let cluster = view.cluster;
    let placement = &cluster.status.placement;
    let voters = controller_quorum_voters(placement);
    let reports = reports_of(view.hosts, &cluster.id);
    // Controllers first (ids 1..), then brokers (101..): the placement is sorted by node id.
    let mut nodes = Vec::with_capacity(placement.len());
    for node in placement {
        let want = host_assignment(cluster, settings, node, &voters);
        let Some(host) = view.hosts.iter().find(|h| h.id == node.host) else {
            let index = step_of(node.role);
            return progress.fail_cluster(
                view,
                index,
                OperationErrorCode::HostLost,
                format!(
                    "host {} of {} is no longer registered",
                    node.host,
                    describe(node)
                ),
            );
        };
        let current = host
            .assignments
            .iter()
            .find(|a| a.cluster_id == cluster.id && a.node_id == node.node_id);
        let report = reports.get(&node.node_id);
        let running_new = report.is_some_and(|r| {
            r.state == NodeState::Running && r.config_fingerprint == want.config_fingerprint
        });
        let roll = match current {
            Some(current) if *current == want && running_new => Roll::Done,
            Some(current) if *current == want => Roll::Restarting,
            _ => Roll::Stale,
        };
        nodes.push((node, host, want, roll));
    }
    let count = |role: Role, roll: Option<Roll>| {
        nodes
            .iter()
            .filter(|(n, _, _, r)| n.role == role && roll.is_none_or(|roll| *r == roll))
            .count()
    };
    let total = nodes.len().max(1);
    let done = nodes.iter().filter(|(.., r)| *r == Roll::Done).count();
    progress.set_percent(5 + (90 * done / total) as u32);
    for role in [Role::Controller, Role::Broker] {
        let (all, finished) = (count(role, None), count(role, Some(Roll::Done)));
        let index = step_of(role);
        if finished == all {
            progress.done(index, format!("{all} {role}s run the new configuration"));
        }
    }

    // A node restarting: wait for it, or fail if it does not come back.
    if let Some((node, _, _, _)) = nodes.iter().find(|(.., r)| *r == Roll::Restarting) {
        if let Some(&since) = view.unhealthy_since.get(&node.node_id)
            && view.now_ms - since >= settings.unhealthy_grace_ms
        {
            let why = reports
                .get(&node.node_id)
                .map(|r| r.message.as_str())
                .filter(|m| !m.is_empty())
                .unwrap_or("no reason given");
            return progress.fail_cluster(
                view,
                step_of(node.role),
                OperationErrorCode::NodeRestartFailed,
                format!(
                    "{} did not come back with the new configuration: {why}",
                    describe(node)
                ),
            );
        }
        if let Some(effects) = roll_timeout(view, settings, &mut progress, node, total) {
            return effects;
        }
        progress.run(
            step_of(node.role),
            format!(
                "restarting {} {} ({} of {} {}s run the new configuration)",
                node.role,
                node.node_id,
                count(node.role, Some(Roll::Done)),
                count(node.role, None),
                node.role
            ),
        );
        return progress.with(Vec::new());
    }

    // The next stale node, once every node of the cluster is RUNNING.
    if let Some((node, host, want, _)) = nodes.iter().find(|(.., r)| *r == Roll::Stale) {
        let not_running: Vec<String> = placement
            .iter()
            .filter(|n| {
                reports
                    .get(&n.node_id)
                    .is_none_or(|r| r.state != NodeState::Running)
            })
            .map(|n| format!("{} {}", n.role, n.node_id))
            .collect();
        if !not_running.is_empty() {
            if let Some(effects) = roll_timeout(view, settings, &mut progress, node, total) {
                return effects;
            }
            progress.run(
                step_of(node.role),
                format!(
                    "waiting for {} to be running before restarting {} {}",
                    not_running.join(", "),
                    node.role,
                    node.node_id
                ),
            );
            return progress.with(Vec::new());
        }
        match replication(view, &reports) {
            Replication::InSync => {}
            Replication::Waiting { since, why } => {
                if let Some(effects) = roll_timeout(view, settings, &mut progress, node, total) {
                    return effects;
                }
                if view.now_ms - since > settings.replicas_in_sync_timeout_ms {
                    return progress.fail_cluster(
                        view,
                        step_of(node.role),
                        OperationErrorCode::ReplicasNotInSync,
                        format!(
                            "the cluster was not fully replicated within {} s of its last node \
                             coming back, so {} {} was not restarted: {why}",
                            settings.replicas_in_sync_timeout_ms / 1000,
                            node.role,
                            node.node_id
                        ),
                    );
                }
                progress.run(
                    step_of(node.role),
                    format!(
                        "waiting for the cluster to be fully replicated before restarting {} {}: \
                         {why}",
                        node.role, node.node_id
                    ),
                );
                return progress.with(Vec::new());
            }
        }
        let mut assignments: Vec<HostAssignment> = host
            .assignments
            .iter()
            .filter(|a| !(a.cluster_id == cluster.id && a.node_id == node.node_id))
            .cloned()
            .chain([want.clone()])
            .collect();
        assignments.sort_by(|a, b| (&a.cluster_id, a.node_id).cmp(&(&b.cluster_id, b.node_id)));
        progress.run(
            step_of(node.role),
            format!(
                "restarting {} {} ({} of {} {}s run the new configuration)",
                node.role,
                node.node_id,
                count(node.role, Some(Roll::Done)),
                count(node.role, None),
                node.role
            ),
        );
        return progress.with(vec![Effect::SetAssignments {
            host_id: host.id.clone(),
            assignments,
            expected_generation: host.generation,
        }]);
    }

    // Every node runs the new configuration.
    progress.done(ROLLED, "every node runs the new configuration");
    let status = ClusterStatus {
        state: ClusterState::Active,
        state_info: StateInfo::default(),
        placement: placement.clone(),
        configuration: cluster.spec.configuration.clone(),
    };
    let mut steps = progress.steps.clone();
    for step in &mut steps {
        if step.state != StepState::Done {
            step.state = StepState::Done;
            step.started_at_ms.get_or_insert(view.now_ms);
            step.ended_at_ms = Some(view.now_ms);
        }
    }
    vec![
        Effect::SetStatus(status),
        Effect::UpdateOperation(OperationUpdate {
            state: Some(OperationState::Succeeded),
            steps: Some(steps),
            progress_percent: Some(100),
            error: None,
        }),
    ]
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

/// Fails the roll if it has taken longer than the node timeout for each of its `nodes`.
fn roll_timeout(
    view: &View<'_>,
    settings: &Settings,
    progress: &mut Progress,
    waiting_on: &Assignment,
    nodes: usize,
) -> Option<Vec<Effect>> {
    let budget = settings.node_timeout_ms.saturating_mul(nodes as i64);
    if view.now_ms - view.operation.started_at_ms <= budget {
        return None;
    }
    let progress = std::mem::replace(
        progress,
        Progress {
            steps: Vec::new(),
            percent: 0,
            now_ms: view.now_ms,
            changed: false,
        },
    );
    let report = reports_of(view.hosts, &view.cluster.id)
        .get(&waiting_on.node_id)
        .map(|r| format!("{:?}: {}", r.state, r.message))
        .unwrap_or_else(|| "never reported".into());
    Some(progress.fail_cluster(
        view,
        step_of(waiting_on.role),
        OperationErrorCode::NodeRestartTimeout,
        format!(
            "the rolling restart did not finish within {} s ({} s per node); waiting on {} ({report})",
            budget / 1000,
            settings.node_timeout_ms / 1000,
            describe(waiting_on)
        ),
    ))
}

// DELETE step indexes, matching `OperationType::Delete.step_names()`.
const STOP: usize = 0;
const REMOVE_DATA: usize = 1;
const RELEASE: usize = 2;

fn delete(view: &View<'_>, settings: &Settings, mut progress: Progress) -> Vec<Effect> {
    let cluster_id = &view.cluster.id;

    // Stop nodes: take the cluster's nodes out of every host's assignments, brokers first, so
    // their controlled shutdown still finds the controllers; the controllers go once no
    // reachable host reports a broker of the cluster any more.
    let brokers_left = view.hosts.iter().any(|h| {
        h.health != HostHealth::Unreachable
            && h.nodes
                .iter()
                .any(|n| &n.cluster_id == cluster_id && n.node_id >= placement::FIRST_BROKER_ID)
    });
    let assigned_brokers = view.hosts.iter().any(|h| {
        h.assignments
            .iter()
            .any(|a| &a.cluster_id == cluster_id && a.role == Role::Broker)
    });
    let remove = |a: &HostAssignment| {
        &a.cluster_id == cluster_id && (a.role == Role::Broker || !brokers_left)
    };
    let writes: Vec<Effect> = view
        .hosts
        .iter()
        .filter(|h| h.assignments.iter().any(remove))
        .map(|h| Effect::SetAssignments {
            host_id: h.id.clone(),
            assignments: h
                .assignments
                .iter()
                .filter(|a| !remove(a))
                .cloned()
                .collect(),
            expected_generation: h.generation,
        })
        .collect();
    if !writes.is_empty() {
        let what = if assigned_brokers {
            "brokers"
        } else {
            "controllers"
        };
        progress.run(
            STOP,
            format!("telling {} hosts to stop the {what}", writes.len()),
        );
        progress.set_percent(if assigned_brokers { 10 } else { 30 });
        return progress.with(writes);
    }
    let controllers_assigned = view
        .hosts
        .iter()
        .any(|h| h.assignments.iter().any(|a| &a.cluster_id == cluster_id));
    if controllers_assigned {
        progress.run(
            STOP,
            "waiting for the brokers to stop before the controllers",
        );
        return progress.with(Vec::new());
    }
    progress.done(STOP, "no host runs the cluster's nodes any more");

    // Remove data: wait until reachable agents no longer report the cluster's nodes.
    let reporting = |h: &&Host| h.nodes.iter().any(|n| &n.cluster_id == cluster_id);
    let waiting: Vec<&Host> = view
        .hosts
        .iter()
        .filter(reporting)
        .filter(|h| h.health != HostHealth::Unreachable)
        .collect();
    let unreachable: Vec<&str> = view
        .hosts
        .iter()
        .filter(reporting)
        .filter(|h| h.health == HostHealth::Unreachable)
        .map(|h| h.id.as_str())
        .collect();
    if !waiting.is_empty() {
        if view.now_ms - view.operation.started_at_ms > settings.node_timeout_ms {
            let ids: Vec<&str> = waiting.iter().map(|h| h.id.as_str()).collect();
            return progress.fail(
                REMOVE_DATA,
                OperationErrorCode::NodeStopTimeout,
                format!(
                    "hosts {} still report nodes of the cluster after {} s",
                    ids.join(", "),
                    settings.node_timeout_ms / 1000
                ),
            );
        }
        let nodes: usize = waiting
            .iter()
            .map(|h| {
                h.nodes
                    .iter()
                    .filter(|n| &n.cluster_id == cluster_id)
                    .count()
            })
            .sum();
        progress.run(
            REMOVE_DATA,
            format!(
                "waiting for {} hosts to stop {nodes} nodes and remove their data",
                waiting.len()
            ),
        );
        progress.set_percent(40);
        return progress.with(Vec::new());
    }
    if unreachable.is_empty() {
        progress.done(REMOVE_DATA, "every node stopped and its data removed");
    } else {
        progress.done(
            REMOVE_DATA,
            format!(
                "hosts {} are unreachable; their agents remove the nodes when they return",
                unreachable.join(", ")
            ),
        );
    }

    // Release placement: forget the cluster (this ends the operation).
    progress.run(RELEASE, "removing the cluster");
    progress.set_percent(90);
    progress
        .with(Vec::new())
        .into_iter()
        .chain([Effect::RemoveCluster])
        .collect()
}

/// The assignment writes that make every host of `placement` list exactly the cluster's nodes
/// placed on it (leaving other clusters' nodes alone). Errors name a host that is gone.
fn assignment_writes(
    view: &View<'_>,
    settings: &Settings,
    placement: &[Assignment],
) -> Result<Vec<Effect>, String> {
    let cluster = view.cluster;
    let mut by_host: BTreeMap<&str, Vec<HostAssignment>> = BTreeMap::new();
    let voters = controller_quorum_voters(placement);
    for node in placement {
        by_host
            .entry(node.host.as_str())
            .or_default()
            .push(host_assignment(cluster, settings, node, &voters));
    }
    let mut writes = Vec::new();
    for (host_id, mine) in by_host {
        let Some(host) = view.hosts.iter().find(|h| h.id == host_id) else {
            let nodes: Vec<String> = mine.iter().map(|a| a.node_id.to_string()).collect();
            return Err(format!(
                "host {host_id} of nodes {} is no longer registered",
                nodes.join(", ")
            ));
        };
        let mut want: Vec<HostAssignment> = host
            .assignments
            .iter()
            .filter(|a| a.cluster_id != cluster.id)
            .cloned()
            .chain(mine)
            .collect();
        want.sort_by(|a, b| (&a.cluster_id, a.node_id).cmp(&(&b.cluster_id, b.node_id)));
        if want != host.assignments {
            writes.push(Effect::SetAssignments {
                host_id: host.id.clone(),
                assignments: want,
                expected_generation: host.generation,
            });
        }
    }
    Ok(writes)
}

/// The cluster's controller quorum as Kafka's `controller.quorum.voters`: `id@host:port`, by id.
pub fn controller_quorum_voters(placement: &[Assignment]) -> Vec<String> {
    placement
        .iter()
        .filter_map(|a| {
            a.controller_port
                .map(|port| format!("{}@{}:{port}", a.node_id, a.address))
        })
        .collect()
}

/// What the agent of `node`'s host needs to run it.
fn host_assignment(
    cluster: &Cluster,
    settings: &Settings,
    node: &Assignment,
    voters: &[String],
) -> HostAssignment {
    let spec = &cluster.spec;
    let broker_config = configuration::node_config(
        node.role,
        &cluster.configuration_properties,
        &spec.broker_config,
    );
    HostAssignment {
        cluster_id: cluster.id.clone(),
        node_id: node.node_id,
        role: node.role,
        address: node.address.clone(),
        kafka_port: node.kafka_port,
        controller_port: node.controller_port,
        admin_port: node.admin_port,
        kafka_version: spec.kafka_version.clone(),
        storage_bytes: match node.role {
            Role::Broker => spec.storage_per_broker_bytes,
            Role::Controller => settings.controller_storage_bytes,
        },
        config_fingerprint: configuration::fingerprint(&broker_config),
        broker_config,
        controller_quorum_voters: voters.to_vec(),
    }
}

/// The latest report of each node of `cluster_id`, over every host.
fn reports_of<'a>(hosts: &'a [Host], cluster_id: &str) -> BTreeMap<NodeId, &'a NodeReport> {
    hosts
        .iter()
        .flat_map(|h| &h.nodes)
        .filter(|n| n.cluster_id == cluster_id)
        .map(|n| (n.node_id, n))
        .collect()
}

/// "broker 102 on host h2 (10.0.0.2:40002)".
fn describe(node: &Assignment) -> String {
    let port = node
        .kafka_port
        .or(node.controller_port)
        .unwrap_or(node.admin_port);
    format!(
        "{} {} on host {} ({}:{port})",
        node.role, node.node_id, node.host, node.address
    )
}
