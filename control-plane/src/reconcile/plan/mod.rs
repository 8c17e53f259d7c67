//! The cluster reconciler's decisions, without I/O: from what the store holds now (a cluster,
//! its running operation, the hosts with their assignments and their agents' reports, the
//! time) to the next [`Effect`]s that move the cluster toward what the operation asks.
//!
//! [`decide`] is called again after its effects are applied, and after every restart or
//! leader change: it derives everything from the store, so an interrupted operation resumes
//! where the store says it is. Each call makes one transition (place, write assignments, mark
//! progress, finish), so the shell applies a short list and reads back before the next.
//!
//! Each operation is a list of steps, one function per row of the table in its module
//! ([`converge`] for CREATE and UPDATE_BROKER_COUNT, [`update_configuration`], [`delete`]),
//! that `Decision::walk` runs in order. A step returns a `Next`: `Continue` (its row is done,
//! the next row runs in the same call), `Wait` (effects to apply, or none while agents work),
//! `Succeed`, `Release` (DELETE's end) or `Fail` with an [`OperationErrorCode`]. The first step
//! that does not continue ends the call, so the operation's body reads like its table.

pub mod converge;
pub mod delete;
pub mod update_configuration;

use std::collections::BTreeMap;

use crate::configuration;
use crate::model::{
    Cluster, ClusterState, ClusterStatus, Host, HostAssignment, NodeReport, Operation,
    OperationError, OperationErrorCode, OperationState, OperationType, OperationUpdate, StateInfo,
    Step, StepState, TimestampMs,
};
use crate::placement::{Assignment, HostId, NodeId, Role};

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
        OperationType::Create => converge::converge(decision, converge::CREATE),
        OperationType::UpdateBrokerCount => {
            converge::converge(decision, converge::UPDATE_BROKER_COUNT)
        }
        OperationType::Delete => delete::delete(decision),
        OperationType::UpdateConfiguration => update_configuration::update_configuration(decision),
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
