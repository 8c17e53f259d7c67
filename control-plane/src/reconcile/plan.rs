//! The cluster reconciler's decisions, without I/O: from what the store holds now (a cluster,
//! its running operation, the hosts with their assignments and their agents' reports, the
//! time) to the next [`Effect`]s that move the cluster toward what the operation asks.
//!
//! [`decide`] is called again after its effects are applied, and after every restart or
//! leader change: it derives everything from the store, so an interrupted operation resumes
//! where the store says it is. Each call makes one transition (place, write assignments, mark
//! progress, finish), so the shell applies a short list and reads back before the next.
//!
//! Each operation is a list of steps, one function per row of its table below, that
//! `Decision::walk` runs in order. A step returns a `Next`: `Continue` (its row is done,
//! the next row runs in the same call), `Wait` (effects to apply, or none while agents work),
//! `Succeed`, `Release` (DELETE's end) or `Fail` with an [`OperationErrorCode`]. The first step
//! that does not continue ends the call, so the operation's body reads like its table.
//!
//! # CREATE
//!
//! | step | function | done when |
//! |---|---|---|
//! | plan placement | `plan_placement` | the cluster's status holds a placement ([`crate::placement::plan`] over the healthy hosts) |
//! | write assignments | `write_assignments` | every host of the placement lists the cluster's nodes on it |
//! | | `fail_nodes_past_grace` | (a check before the start rows: the agents start every node at once) |
//! | start controllers | `start_controllers` | every controller reports RUNNING (its agent saw a quorum leader) |
//! | start brokers | `start_brokers` | every broker reports RUNNING (registered and unfenced) |
//! | wait until healthy | `wait_until_healthy` | all of the above at once: the cluster becomes ACTIVE |
//!
//! UPDATE_BROKER_COUNT runs the same steps without the controllers' row.
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
//! | step | function | done when |
//! |---|---|---|
//! | stop nodes | `stop_nodes` | no host lists a node of the cluster any more |
//! | remove data | `remove_data` | no reachable host reports a node of the cluster (agents report a node until they stopped it and removed its directory) |
//! | release placement | `release_placement` | the cluster is removed, which ends the operation |
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
    let decision = Decision::new(view, settings);
    match view.operation.kind {
        OperationType::Create => converge(decision, CREATE_STEPS),
        OperationType::UpdateBrokerCount => converge(decision, UPDATE_BROKER_COUNT_STEPS),
        OperationType::Delete => delete(decision),
        OperationType::UpdateConfiguration => update_configuration(decision),
        other => decision.finish(Next::fail(
            0,
            OperationErrorCode::NotSupported,
            format!("{other:?} operations are not supported by this control plane yet"),
        )),
    }
}

/// What one step of an operation tells the operation: go on to the next step, or end this
/// decision (and how).
#[derive(Debug)]
enum Next {
    /// The step is done: the next one runs in this same decision.
    Continue,
    /// The step is under way: these effects (none while it waits on agents), then the
    /// progress recorded so far. [`decide`] runs again once they are applied or agents report.
    Wait(Vec<Effect>),
    /// The operation succeeded: the cluster takes this status and every step is done.
    Succeed(ClusterStatus),
    /// The progress so far, then the cluster is forgotten, which ends its DELETE operation.
    Release,
    /// The operation failed.
    Fail(Failure),
}

/// Where and why an operation failed.
#[derive(Debug)]
struct Failure {
    /// The index of the step that failed.
    step: usize,
    /// What a program branches on.
    code: OperationErrorCode,
    /// What a person reads.
    message: String,
    /// Whether the cluster goes FAILED too, with the same code and message.
    cluster_fails: bool,
}

impl Next {
    /// Waiting on agents: no effect but the progress.
    fn wait() -> Next {
        Next::Wait(Vec::new())
    }

    /// Fails the operation at `step`; the cluster keeps its state.
    fn fail(step: usize, code: OperationErrorCode, message: impl Into<String>) -> Next {
        Next::Fail(Failure {
            step,
            code,
            message: message.into(),
            cluster_fails: false,
        })
    }

    /// Fails the operation at `step` and puts the cluster in FAILED with the same code and
    /// message.
    fn fail_cluster(step: usize, code: OperationErrorCode, message: impl Into<String>) -> Next {
        Next::Fail(Failure {
            step,
            code,
            message: message.into(),
            cluster_fails: true,
        })
    }
}

/// One step of an operation, as [`Decision::walk`] runs it.
type StepFn<'s, 'a> = &'s dyn Fn(&mut Decision<'a>) -> Next;

/// One call of [`decide`]: what it looks at, and the operation's steps as they change.
struct Decision<'a> {
    /// The store's contents and the time.
    view: View<'a>,
    /// The timeouts and sizes.
    settings: &'a Settings,
    /// The operation's steps and percentage, as this decision leaves them.
    progress: Progress,
}

impl<'a> Decision<'a> {
    fn new(view: &View<'a>, settings: &'a Settings) -> Self {
        Decision {
            view: *view,
            settings,
            progress: Progress::new(view.operation, view.now_ms),
        }
    }

    /// Runs `steps` in order while each continues; the first that does not ends the decision
    /// with its effects. (Every operation's last step ends it; were all to continue, only the
    /// progress would be recorded.)
    fn walk(mut self, steps: &[StepFn<'_, 'a>]) -> Vec<Effect> {
        for step in steps {
            match step(&mut self) {
                Next::Continue => {}
                next => return self.finish(next),
            }
        }
        self.finish(Next::wait())
    }

    /// The effects that carry out `next`.
    fn finish(self, next: Next) -> Vec<Effect> {
        let mut progress = self.progress;
        match next {
            Next::Continue => progress.with(Vec::new()),
            Next::Wait(effects) => progress.with(effects),
            Next::Succeed(status) => {
                let now = progress.now_ms;
                for step in &mut progress.steps {
                    if step.state != StepState::Done {
                        step.state = StepState::Done;
                        step.started_at_ms.get_or_insert(now);
                        step.ended_at_ms = Some(now);
                    }
                }
                vec![
                    Effect::SetStatus(status),
                    Effect::UpdateOperation(OperationUpdate {
                        state: Some(OperationState::Succeeded),
                        steps: Some(progress.steps),
                        progress_percent: Some(100),
                        error: None,
                    }),
                ]
            }
            Next::Release => {
                let mut effects = progress.with(Vec::new());
                effects.push(Effect::RemoveCluster);
                effects
            }
            Next::Fail(failure) => {
                let mut effects = Vec::new();
                if failure.cluster_fails {
                    let status = &self.view.cluster.status;
                    effects.push(Effect::SetStatus(ClusterStatus {
                        state: ClusterState::Failed,
                        state_info: StateInfo::new(failure.code.as_str(), failure.message.clone()),
                        placement: status.placement.clone(),
                        configuration: status.configuration.clone(),
                    }));
                }
                effects.push(progress.fail(failure));
                effects
            }
        }
    }

    /// The first node of the placement that has been UNHEALTHY for the grace period, with its
    /// agent's reason.
    fn node_past_grace(&self) -> Option<(&'a Assignment, String)> {
        let view = self.view;
        let node = view.cluster.status.placement.iter().find(|node| {
            view.unhealthy_since
                .get(&node.node_id)
                .is_some_and(|&since| view.now_ms - since >= self.settings.unhealthy_grace_ms)
        })?;
        Some((node, self.reason_of(node.node_id)))
    }

    /// The message of the node's latest report, or "no reason given".
    fn reason_of(&self, node_id: NodeId) -> String {
        reports_of(self.view.hosts, &self.view.cluster.id)
            .get(&node_id)
            .map(|r| r.message.as_str())
            .filter(|m| !m.is_empty())
            .unwrap_or("no reason given")
            .to_string()
    }

    /// Whether the operation has run longer than `budget_ms`.
    fn past(&self, budget_ms: i64) -> bool {
        self.view.now_ms - self.view.operation.started_at_ms > budget_ms
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

    /// `effects` followed by the operation update recording the steps so far (RUNNING), if
    /// anything changed.
    fn with(self, mut effects: Vec<Effect>) -> Vec<Effect> {
        if self.changed {
            effects.push(Effect::UpdateOperation(OperationUpdate {
                state: Some(OperationState::Running),
                steps: Some(self.steps),
                progress_percent: Some(self.percent),
                error: None,
            }));
        }
        effects
    }

    /// The operation update failing `failure.step` and the operation.
    fn fail(mut self, failure: Failure) -> Effect {
        let now = self.now_ms;
        if let Some(step) = self.step(failure.step) {
            step.started_at_ms.get_or_insert(now);
            step.state = StepState::Failed;
            step.ended_at_ms = Some(now);
            step.message = failure.message.clone();
        }
        Effect::UpdateOperation(OperationUpdate {
            state: Some(OperationState::Failed),
            steps: Some(self.steps),
            progress_percent: Some(self.percent),
            error: Some(OperationError::new(failure.code, failure.message)),
        })
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

/// CREATE and UPDATE_BROKER_COUNT: place what the spec asks for (keeping every placed node
/// where it is), tell the hosts, and wait until every node runs.
fn converge(decision: Decision<'_>, rows: ConvergeSteps) -> Vec<Effect> {
    decision.walk(&[
        &|d| plan_placement(d, rows),
        &|d| write_assignments(d, rows),
        &|d| fail_nodes_past_grace(d, rows),
        &|d| start_controllers(d, rows),
        &|d| start_brokers(d, rows),
        &|d| wait_until_healthy(d, rows),
    ])
}

/// The node ids the spec asks for: controllers `1..=C`, brokers `101..`.
fn wanted_ids(cluster: &Cluster) -> Vec<NodeId> {
    let spec = &cluster.spec;
    (0..spec.controller_count as NodeId)
        .map(|k| placement::FIRST_CONTROLLER_ID + k)
        .chain((0..spec.broker_count as NodeId).map(|i| placement::FIRST_BROKER_ID + i))
        .collect()
}

/// How many hosts `placement` uses.
fn host_count(placement: &[Assignment]) -> usize {
    placement
        .iter()
        .map(|a| a.host.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Plan placement: done once the status places every node the spec asks for; else places
/// them over the healthy hosts and records the placement in the status.
fn plan_placement(d: &mut Decision<'_>, rows: ConvergeSteps) -> Next {
    let cluster = d.view.cluster;
    let placed: Vec<NodeId> = cluster.status.placement.iter().map(|a| a.node_id).collect();
    if placed == wanted_ids(cluster) {
        d.progress.done(rows.plan, "placed");
        return Next::Continue;
    }
    d.progress.run(rows.plan, "placing nodes");
    let request = placement::Request::for_spec(&cluster.spec, d.settings.controller_storage_bytes);
    let hosts = placement_hosts(d.view.hosts, Some(&cluster.id));
    let current = Placement {
        nodes: cluster.status.placement.clone(),
    };
    match placement::plan(&request, &hosts, &current) {
        Ok(planned) => {
            d.progress.done(
                rows.plan,
                format!(
                    "{} nodes on {} hosts",
                    planned.nodes.len(),
                    host_count(&planned.nodes)
                ),
            );
            d.progress.set_percent(10);
            Next::Wait(vec![Effect::SetStatus(ClusterStatus {
                state: cluster.status.state,
                state_info: StateInfo::default(),
                placement: planned.nodes,
                configuration: cluster.status.configuration.clone(),
            })])
        }
        Err(placement::Error::Insufficient(shortage)) => Next::fail_cluster(
            rows.plan,
            OperationErrorCode::InsufficientCapacity,
            shortage.to_string(),
        ),
        Err(err @ placement::Error::InvalidRequest(_)) => {
            Next::fail_cluster(rows.plan, OperationErrorCode::InvalidSpec, err.to_string())
        }
    }
}

/// Write assignments: done once every host of the placement lists the cluster's nodes on it.
fn write_assignments(d: &mut Decision<'_>, rows: ConvergeSteps) -> Next {
    let placement = &d.view.cluster.status.placement;
    let writes = match assignment_writes(&d.view, d.settings, placement) {
        Ok(writes) => writes,
        Err(message) => {
            return Next::fail_cluster(rows.assign, OperationErrorCode::HostLost, message);
        }
    };
    if !writes.is_empty() {
        d.progress.run(
            rows.assign,
            format!("writing assignments to {} hosts", writes.len()),
        );
        return Next::Wait(writes);
    }
    d.progress.done(
        rows.assign,
        format!("assignments written to {} hosts", host_count(placement)),
    );
    Next::Continue
}

/// Before the start rows: the agents start every node at once, so a node of either role that
/// stayed UNHEALTHY for the grace period fails the start, at its role's row.
fn fail_nodes_past_grace(d: &mut Decision<'_>, rows: ConvergeSteps) -> Next {
    let Some((node, why)) = d.node_past_grace() else {
        return Next::Continue;
    };
    let row = match (node.role, rows.controllers) {
        (Role::Controller, Some(row)) => row,
        _ => rows.brokers,
    };
    Next::fail_cluster(
        row,
        OperationErrorCode::NodeStartFailed,
        format!("{} could not start: {why}", describe(node)),
    )
}

/// How many of the placement's nodes of `role` report RUNNING, and how many there are.
fn running(view: &View<'_>, role: Role) -> (usize, usize) {
    let reports = reports_of(view.hosts, &view.cluster.id);
    let nodes: Vec<&Assignment> = view
        .cluster
        .status
        .placement
        .iter()
        .filter(|a| a.role == role)
        .collect();
    let up = nodes
        .iter()
        .filter(|a| {
            reports
                .get(&a.node_id)
                .is_some_and(|r| r.state == NodeState::Running)
        })
        .count();
    (up, nodes.len())
}

/// Start controllers (CREATE only): done once every controller reports RUNNING (its agent saw
/// a quorum leader). Always continues: the brokers start at the same time.
fn start_controllers(d: &mut Decision<'_>, rows: ConvergeSteps) -> Next {
    let Some(row) = rows.controllers else {
        return Next::Continue;
    };
    let (up, all) = running(&d.view, Role::Controller);
    if up == all {
        d.progress.done(
            row,
            format!("{all} controllers running with a quorum leader"),
        );
    } else {
        d.progress
            .run(row, format!("{up} of {all} controllers ready"));
    }
    Next::Continue
}

/// Start brokers: done once every broker reports RUNNING (registered and unfenced). Always
/// continues: [`wait_until_healthy`] decides whether the start is over.
fn start_brokers(d: &mut Decision<'_>, rows: ConvergeSteps) -> Next {
    let (up, all) = running(&d.view, Role::Broker);
    if up == all {
        d.progress.done(
            rows.brokers,
            format!("{all} brokers registered and unfenced"),
        );
    } else {
        d.progress
            .run(rows.brokers, format!("{up} of {all} brokers ready"));
    }
    Next::Continue
}

/// Wait until healthy: every node running at once makes the cluster ACTIVE; past the start
/// timeout the operation fails naming every node not ready.
fn wait_until_healthy(d: &mut Decision<'_>, rows: ConvergeSteps) -> Next {
    let view = d.view;
    let placement = &view.cluster.status.placement;
    let (controllers_up, controllers) = running(&view, Role::Controller);
    let (brokers_up, brokers) = running(&view, Role::Broker);
    let all = controllers + brokers;
    d.progress
        .set_percent(20 + (70 * (controllers_up + brokers_up) / all.max(1)) as u32);

    if controllers_up == controllers && d.progress.is_done(rows.brokers) {
        d.progress.done(rows.healthy, "every node is running");
        // Every node started with the assignments just written, so they run the spec's
        // configuration.
        return Next::Succeed(ClusterStatus {
            state: ClusterState::Active,
            state_info: StateInfo::default(),
            placement: placement.clone(),
            configuration: view.cluster.spec.configuration.clone(),
        });
    }
    if !d.past(d.settings.node_timeout_ms) {
        return Next::wait();
    }
    let reports = reports_of(view.hosts, &view.cluster.id);
    let waiting: Vec<String> = placement
        .iter()
        .filter_map(|node| match reports.get(&node.node_id) {
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
        })
        .collect();
    let row = match rows.controllers {
        Some(row) if controllers_up < controllers => row,
        _ => rows.brokers,
    };
    Next::fail_cluster(
        row,
        OperationErrorCode::NodeStartTimeout,
        format!(
            "not every node was ready after {} s: {}",
            d.settings.node_timeout_ms / 1000,
            waiting.join("; ")
        ),
    )
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
fn update_configuration(mut decision: Decision<'_>) -> Vec<Effect> {
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

// DELETE step indexes, matching `OperationType::Delete.step_names()`.
const STOP: usize = 0;
const REMOVE_DATA: usize = 1;
const RELEASE: usize = 2;

/// DELETE: stop the nodes, wait until their data is removed, forget the cluster.
fn delete(decision: Decision<'_>) -> Vec<Effect> {
    decision.walk(&[&stop_nodes, &remove_data, &release_placement])
}

/// Stop nodes: take the cluster's nodes out of every host's assignments, brokers first, so
/// their controlled shutdown still finds the controllers; the controllers go once no
/// reachable host reports a broker of the cluster any more. Done once no host lists a node of
/// the cluster.
fn stop_nodes(d: &mut Decision<'_>) -> Next {
    let hosts = d.view.hosts;
    let cluster_id = &d.view.cluster.id;
    let brokers_left = hosts.iter().any(|h| {
        h.health != HostHealth::Unreachable
            && h.nodes
                .iter()
                .any(|n| &n.cluster_id == cluster_id && n.node_id >= placement::FIRST_BROKER_ID)
    });
    let assigned_brokers = hosts.iter().any(|h| {
        h.assignments
            .iter()
            .any(|a| &a.cluster_id == cluster_id && a.role == Role::Broker)
    });
    let remove = |a: &HostAssignment| {
        &a.cluster_id == cluster_id && (a.role == Role::Broker || !brokers_left)
    };
    let writes: Vec<Effect> = hosts
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
        d.progress.run(
            STOP,
            format!("telling {} hosts to stop the {what}", writes.len()),
        );
        d.progress
            .set_percent(if assigned_brokers { 10 } else { 30 });
        return Next::Wait(writes);
    }
    let controllers_assigned = hosts
        .iter()
        .any(|h| h.assignments.iter().any(|a| &a.cluster_id == cluster_id));
    if controllers_assigned {
        d.progress.run(
            STOP,
            "waiting for the brokers to stop before the controllers",
        );
        return Next::wait();
    }
    d.progress
        .done(STOP, "no host runs the cluster's nodes any more");
    Next::Continue
}

/// Remove data: done once no reachable host reports a node of the cluster (agents report a
/// node until they stopped it and removed its directory). Unreachable hosts are not waited
/// for: their agents drop the nodes when they return.
fn remove_data(d: &mut Decision<'_>) -> Next {
    let cluster_id = &d.view.cluster.id;
    let reporting = |h: &&Host| h.nodes.iter().any(|n| &n.cluster_id == cluster_id);
    let waiting: Vec<&Host> = d
        .view
        .hosts
        .iter()
        .filter(reporting)
        .filter(|h| h.health != HostHealth::Unreachable)
        .collect();
    let unreachable: Vec<&str> = d
        .view
        .hosts
        .iter()
        .filter(reporting)
        .filter(|h| h.health == HostHealth::Unreachable)
        .map(|h| h.id.as_str())
        .collect();
    if !waiting.is_empty() {
        if d.past(d.settings.node_timeout_ms) {
            let ids: Vec<&str> = waiting.iter().map(|h| h.id.as_str()).collect();
            return Next::fail(
                REMOVE_DATA,
                OperationErrorCode::NodeStopTimeout,
                format!(
                    "hosts {} still report nodes of the cluster after {} s",
                    ids.join(", "),
                    d.settings.node_timeout_ms / 1000
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
        d.progress.run(
            REMOVE_DATA,
            format!(
                "waiting for {} hosts to stop {nodes} nodes and remove their data",
                waiting.len()
            ),
        );
        d.progress.set_percent(40);
        return Next::wait();
    }
    if unreachable.is_empty() {
        d.progress
            .done(REMOVE_DATA, "every node stopped and its data removed");
    } else {
        d.progress.done(
            REMOVE_DATA,
            format!(
                "hosts {} are unreachable; their agents remove the nodes when they return",
                unreachable.join(", ")
            ),
        );
    }
    Next::Continue
}

/// Release placement: forget the cluster, which ends the operation.
fn release_placement(d: &mut Decision<'_>) -> Next {
    d.progress.run(RELEASE, "removing the cluster");
    d.progress.set_percent(90);
    Next::Release
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
