//! DELETE: stop the nodes, wait until their data is gone, forget the cluster.
//!
//! | step | function | done when |
//! |---|---|---|
//! | stop nodes | `stop_nodes` | no host lists a node of the cluster any more |
//! | remove data | `remove_data` | no reachable host reports a node of the cluster (agents report a node until they stopped it and removed its directory) |
//! | release placement | `release_placement` | the cluster is removed, which ends the operation |
//!
//! An unreachable host is not waited for: its agent drops the nodes when it returns, since its
//! assignments no longer list them. The step's message says so.

use super::{Decision, Effect, Next};
use crate::model::{Host, HostAssignment, HostHealth, OperationErrorCode};
use crate::placement::{self, Role};

// DELETE step indexes, matching `OperationType::Delete.step_names()`.
const STOP: usize = 0;
const REMOVE_DATA: usize = 1;
const RELEASE: usize = 2;

/// DELETE: stop the nodes, wait until their data is removed, forget the cluster.
pub(super) fn delete(decision: Decision<'_>) -> Vec<Effect> {
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
