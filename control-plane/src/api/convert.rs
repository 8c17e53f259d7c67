//! Conversions between the wire types of `ferry.controlplane.v1` (prost) and the store's model
//! types.
//!
//! The shapes match one for one (see [`crate::model`]); the differences are mechanical:
//! `Option` timestamps become 0, `HashMap`s become `BTreeMap`s, enums become their `i32` wire
//! values, and store-only fields (a cluster's `client_request_id`, a host's generations) are
//! dropped. A node's observed state is not part of a cluster's placement: it comes from the
//! agents' reports on the hosts, passed in as [`NodeStates`].

use std::collections::BTreeMap;

use ferry_proto::controlplane::v1 as pb;

use crate::model::{
    Cluster, ClusterState, Host, HostHealth, NodeProbe, NodeReport, NodeState, Operation,
    OperationState, OperationType, ReplicationHealth, StepState,
};
use crate::model::{Configuration, ConfigurationSummary, Revision, RevisionInfo};
use crate::placement::{Assignment, NodeId, Role};
use crate::spec::{ClusterSpec, ConfigurationRef};

/// Each placed node's last report (state, message, config fingerprint, probe details), by
/// cluster id and node id (from the hosts' agent reports). A node missing here has not been
/// reported yet (PENDING).
pub type NodeStates = BTreeMap<(String, NodeId), NodeReport>;

/// The agents' reports of every host in `hosts`, as [`NodeStates`].
pub fn node_states<'a>(hosts: impl IntoIterator<Item = &'a Host>) -> NodeStates {
    hosts
        .into_iter()
        .flat_map(|host| &host.nodes)
        .map(|report| ((report.cluster_id.clone(), report.node_id), report.clone()))
        .collect()
}

/// The model probe for a wire one.
pub fn probe_from_proto(probe: pb::NodeProbe) -> NodeProbe {
    NodeProbe {
        broker_epoch: probe.broker_epoch,
        fenced: probe.fenced,
        metadata_offset: probe.metadata_offset,
        quorum_role: probe.quorum_role,
        quorum_leader_id: probe.quorum_leader_id,
        replication: probe.replication.map(|r| ReplicationHealth {
            partitions: r.partitions,
            under_replicated: r.under_replicated_partitions,
            offline: r.offline_partitions,
        }),
    }
}

/// The wire probe for a model one.
pub fn probe_to_proto(probe: &NodeProbe) -> pb::NodeProbe {
    pb::NodeProbe {
        broker_epoch: probe.broker_epoch,
        fenced: probe.fenced,
        metadata_offset: probe.metadata_offset,
        quorum_role: probe.quorum_role.clone(),
        quorum_leader_id: probe.quorum_leader_id,
        replication: probe.replication.map(|r| pb::ReplicationHealth {
            partitions: r.partitions,
            under_replicated_partitions: r.under_replicated,
            offline_partitions: r.offline,
        }),
    }
}

/// The model spec for a wire spec.
pub fn spec_from_proto(spec: pb::ClusterSpec) -> ClusterSpec {
    ClusterSpec {
        name: spec.name,
        kafka_version: spec.kafka_version,
        broker_count: spec.broker_count,
        controller_count: spec.controller_count,
        zones: spec.zones,
        storage_per_broker_bytes: spec.storage_per_broker_bytes,
        broker_config: spec.broker_config.into_iter().collect(),
        tags: spec.tags.into_iter().collect(),
        configuration: spec.configuration.map(configuration_ref_from_proto),
    }
}

/// The model reference for a wire one.
pub fn configuration_ref_from_proto(info: pb::ConfigurationInfo) -> ConfigurationRef {
    ConfigurationRef {
        id: info.id,
        revision: info.revision,
    }
}

/// The wire reference for a model one.
pub fn configuration_ref_to_proto(reference: &ConfigurationRef) -> pb::ConfigurationInfo {
    pb::ConfigurationInfo {
        id: reference.id.clone(),
        revision: reference.revision,
    }
}

/// The wire configuration for a model one; its latest revision without the properties.
pub fn configuration_to_proto(configuration: &Configuration) -> pb::Configuration {
    configuration_summary_to_proto(&configuration.summary())
}

/// The wire configuration for a summary: its latest revision without the properties.
pub fn configuration_summary_to_proto(summary: &ConfigurationSummary) -> pb::Configuration {
    pb::Configuration {
        id: summary.id.clone(),
        tenant: summary.tenant.clone(),
        name: summary.name.clone(),
        description: summary.latest.description.clone(),
        kafka_versions: summary.kafka_versions.clone(),
        latest_revision: Some(revision_info_to_proto(&summary.latest)),
        created_at: summary.created_at_ms,
    }
}

/// The wire revision for a revision's metadata (no properties text).
pub fn revision_info_to_proto(info: &RevisionInfo) -> pb::ConfigurationRevision {
    pb::ConfigurationRevision {
        revision: info.revision,
        description: info.description.clone(),
        created_at: info.created_at_ms,
        server_properties: String::new(),
    }
}

/// The wire revision for a model one, with its properties text.
pub fn revision_to_proto(revision: &Revision) -> pb::ConfigurationRevision {
    pb::ConfigurationRevision {
        server_properties: revision.server_properties.clone(),
        ..revision_info_to_proto(&revision.info())
    }
}

/// The wire spec for a model spec.
pub fn spec_to_proto(spec: &ClusterSpec) -> pb::ClusterSpec {
    pb::ClusterSpec {
        name: spec.name.clone(),
        kafka_version: spec.kafka_version.clone(),
        broker_count: spec.broker_count,
        controller_count: spec.controller_count,
        zones: spec.zones.clone(),
        storage_per_broker_bytes: spec.storage_per_broker_bytes,
        broker_config: spec
            .broker_config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tags: spec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        configuration: spec.configuration.as_ref().map(configuration_ref_to_proto),
    }
}

/// The wire cluster for a model cluster, its nodes' states taken from `states`.
pub fn cluster_to_proto(cluster: &Cluster, states: &NodeStates) -> pb::Cluster {
    pb::Cluster {
        id: cluster.id.clone(),
        tenant: cluster.tenant.clone(),
        spec: Some(spec_to_proto(&cluster.spec)),
        status: Some(pb::ClusterStatus {
            state: cluster_state_to_proto(cluster.status.state) as i32,
            state_info: Some(pb::StateInfo {
                code: cluster.status.state_info.code.clone(),
                message: cluster.status.state_info.message.clone(),
            }),
            nodes: cluster
                .status
                .placement
                .iter()
                .map(|a| node_to_proto(&cluster.id, a, states))
                .collect(),
            bootstrap_brokers: cluster.bootstrap_brokers(),
            configuration: cluster
                .status
                .configuration
                .as_ref()
                .map(configuration_ref_to_proto),
        }),
        current_version: cluster.current_version,
        created_at: cluster.created_at_ms,
        updated_at: cluster.updated_at_ms,
        active_operation_id: cluster.active_operation.clone().unwrap_or_default(),
    }
}

/// The wire node for one placed node of cluster `cluster_id`.
pub fn node_to_proto(cluster_id: &str, node: &Assignment, states: &NodeStates) -> pb::Node {
    let report = states.get(&(cluster_id.to_owned(), node.node_id));
    let state = report.map_or(NodeState::Pending, |r| r.state);
    pb::Node {
        node_id: node.node_id,
        role: role_to_proto(node.role) as i32,
        host_id: node.host.clone(),
        zone: node.zone.clone(),
        address: node.address.clone(),
        kafka_port: node.kafka_port.map_or(0, u32::from),
        controller_port: node.controller_port.map_or(0, u32::from),
        admin_port: u32::from(node.admin_port),
        state: node_state_to_proto(state) as i32,
        state_message: report.map(|r| r.message.clone()).unwrap_or_default(),
        config_fingerprint: report
            .map(|r| r.config_fingerprint.clone())
            .unwrap_or_default(),
        probe: report.and_then(|r| r.probe.as_ref()).map(probe_to_proto),
        reported_at_ms: report.map_or(0, |r| r.reported_at_ms),
        running_since_ms: report.and_then(|r| r.running_since_ms).unwrap_or(0),
    }
}

/// The wire operation for a model operation.
pub fn operation_to_proto(operation: &Operation) -> pb::Operation {
    pb::Operation {
        id: operation.id.clone(),
        cluster_id: operation.cluster_id.clone(),
        r#type: operation_type_to_proto(operation.kind) as i32,
        state: operation_state_to_proto(operation.state) as i32,
        steps: operation
            .steps
            .iter()
            .map(|step| pb::OperationStep {
                name: step.name.clone(),
                state: step_state_to_proto(step.state) as i32,
                started_at: step.started_at_ms.unwrap_or(0),
                ended_at: step.ended_at_ms.unwrap_or(0),
                message: step.message.clone(),
            })
            .collect(),
        progress_percent: operation.progress_percent,
        error: operation.error.as_ref().map(|e| pb::OperationError {
            code: e.code.clone(),
            message: e.message.clone(),
        }),
        started_at: operation.started_at_ms,
        ended_at: operation.ended_at_ms.unwrap_or(0),
    }
}

/// The wire host for a model host: its assignments, with their reported states, become its
/// nodes.
pub fn host_to_proto(host: &Host) -> pb::Host {
    let states = node_states([host]);
    pb::Host {
        id: host.id.clone(),
        zone: host.zone.clone(),
        address: host.address.clone(),
        ports: Some(pb::PortRange {
            lo: u32::from(host.ports.lo),
            hi: u32::from(host.ports.hi),
        }),
        capacity: Some(pb::HostCapacity {
            max_nodes: host.capacity.max_nodes,
            storage_bytes: host.capacity.storage_bytes,
        }),
        health: host_health_to_proto(host.health) as i32,
        last_seen_at: host.last_seen_at_ms,
        nodes: host
            .assignments
            .iter()
            .map(|a| {
                let node = Assignment {
                    node_id: a.node_id,
                    role: a.role,
                    host: host.id.clone(),
                    zone: host.zone.clone(),
                    address: a.address.clone(),
                    kafka_port: a.kafka_port,
                    controller_port: a.controller_port,
                    admin_port: a.admin_port,
                };
                pb::HostNode {
                    cluster_id: a.cluster_id.clone(),
                    node: Some(node_to_proto(&a.cluster_id, &node, &states)),
                }
            })
            .collect(),
    }
}

/// The wire value of a cluster state.
pub fn cluster_state_to_proto(state: ClusterState) -> pb::ClusterState {
    match state {
        ClusterState::Creating => pb::ClusterState::Creating,
        ClusterState::Active => pb::ClusterState::Active,
        ClusterState::Updating => pb::ClusterState::Updating,
        ClusterState::RebootingBroker => pb::ClusterState::RebootingBroker,
        ClusterState::Healing => pb::ClusterState::Healing,
        ClusterState::Deleting => pb::ClusterState::Deleting,
        ClusterState::Failed => pb::ClusterState::Failed,
    }
}

/// The wire value of a node role.
pub fn role_to_proto(role: Role) -> pb::NodeRole {
    match role {
        Role::Controller => pb::NodeRole::Controller,
        Role::Broker => pb::NodeRole::Broker,
    }
}

/// The wire value of a node state.
pub fn node_state_to_proto(state: NodeState) -> pb::NodeState {
    match state {
        NodeState::Pending => pb::NodeState::Pending,
        NodeState::Starting => pb::NodeState::Starting,
        NodeState::Running => pb::NodeState::Running,
        NodeState::Unhealthy => pb::NodeState::Unhealthy,
        NodeState::Stopped => pb::NodeState::Stopped,
    }
}

/// The wire value of an operation type.
pub fn operation_type_to_proto(kind: OperationType) -> pb::OperationType {
    match kind {
        OperationType::Create => pb::OperationType::Create,
        OperationType::Delete => pb::OperationType::Delete,
        OperationType::UpdateBrokerCount => pb::OperationType::UpdateBrokerCount,
        OperationType::UpdateConfiguration => pb::OperationType::UpdateConfiguration,
        OperationType::RebootBroker => pb::OperationType::RebootBroker,
        OperationType::Heal => pb::OperationType::Heal,
    }
}

/// The wire value of an operation state.
pub fn operation_state_to_proto(state: OperationState) -> pb::OperationState {
    match state {
        OperationState::Pending => pb::OperationState::Pending,
        OperationState::Running => pb::OperationState::Running,
        OperationState::Succeeded => pb::OperationState::Succeeded,
        OperationState::Failed => pb::OperationState::Failed,
    }
}

/// The wire value of a step state.
pub fn step_state_to_proto(state: StepState) -> pb::StepState {
    match state {
        StepState::Pending => pb::StepState::Pending,
        StepState::Running => pb::StepState::Running,
        StepState::Done => pb::StepState::Done,
        StepState::Failed => pb::StepState::Failed,
        StepState::Skipped => pb::StepState::Skipped,
    }
}

/// The wire value of a host's health.
pub fn host_health_to_proto(health: HostHealth) -> pb::HostHealth {
    match health {
        HostHealth::Unknown => pb::HostHealth::Unknown,
        HostHealth::Healthy => pb::HostHealth::Healthy,
        HostHealth::Unreachable => pb::HostHealth::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        let spec = ClusterSpec {
            name: "orders".into(),
            kafka_version: "3.9.0".into(),
            broker_count: 3,
            controller_count: 3,
            zones: vec!["a".into(), "b".into(), "c".into()],
            storage_per_broker_bytes: 1 << 30,
            broker_config: BTreeMap::from([("num.partitions".into(), "3".into())]),
            tags: BTreeMap::from([("team".into(), "payments".into())]),
            configuration: Some(ConfigurationRef {
                id: "cfg-1".into(),
                revision: 2,
            }),
        };
        assert_eq!(spec_from_proto(spec_to_proto(&spec)), spec);
    }
}
