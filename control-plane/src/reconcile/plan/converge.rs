//! CREATE and UPDATE_BROKER_COUNT: place the nodes the spec asks for, tell the hosts, and
//! wait until they run.
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

use super::{Decision, Effect, Next, View, assignment_writes, describe, reports_of};
use crate::model::{
    Cluster, ClusterState, ClusterStatus, NodeState, OperationErrorCode, StateInfo, placement_hosts,
};
use crate::placement::{self, Assignment, NodeId, Placement, Role};

/// Where the steps of an operation that converges on the spec's placement are, matching its
/// type's `step_names()`.
#[derive(Clone, Copy)]
pub(super) struct ConvergeSteps {
    plan: usize,
    assign: usize,
    /// The controllers' own step (CREATE only; an update leaves them as they are).
    controllers: Option<usize>,
    brokers: usize,
    healthy: usize,
}

pub(super) const CREATE: ConvergeSteps = ConvergeSteps {
    plan: 0,
    assign: 1,
    controllers: Some(2),
    brokers: 3,
    healthy: 4,
};

pub(super) const UPDATE_BROKER_COUNT: ConvergeSteps = ConvergeSteps {
    plan: 0,
    assign: 1,
    controllers: None,
    brokers: 2,
    healthy: 3,
};

/// CREATE and UPDATE_BROKER_COUNT: place what the spec asks for (keeping every placed node
/// where it is), tell the hosts, and wait until every node runs.
pub(super) fn converge(decision: Decision<'_>, rows: ConvergeSteps) -> Vec<Effect> {
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
