//! `AgentService`: the one door host agents use, over the store's host methods.
//!
//! ```text
//! agent                                  control plane
//!   RegisterHost(id, zone, address, ports, capacity)  -> Store::register_host
//!   GetAssignments(host_id, known_generation)         -> Store::get_host (generation, assignments)
//!   ReportStatus(host_id, applied_generation, nodes)  -> Store::report_host (also the heartbeat)
//! ```
//!
//! Only tokens with the [`Role::Agent`] role may call it, and that role may call nothing else
//! (see [`crate::auth`]): agents act for the fleet, in no tenant. Any agent token may speak for
//! any host id; per-host credentials are future work (DESIGN.md section 8).
//!
//! Assignments are stored without the host's zone (the host has one), so the wire
//! [`pb::Assignment`] is completed here from the host: its zone, its id.

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::agent_service_server::AgentService;
use tonic::{Request, Response, Status};

use super::{Api, convert, status, violation};
use crate::auth::{Principal, Role};
use crate::model::{Host, HostAssignment, HostCapacity, HostRegistration, NodeReport, NodeState};
use crate::placement::PortRange;
use crate::store::Store;

#[tonic::async_trait]
impl<S: Store> AgentService for Api<S> {
    async fn register_host(
        &self,
        request: Request<pb::RegisterHostRequest>,
    ) -> Result<Response<pb::RegisterHostResponse>, Status> {
        self.authorize_agent(&request)?;
        let registration = registration_from_proto(request.into_inner())?;
        let host = self.store().register_host(registration).await?;
        Ok(Response::new(pb::RegisterHostResponse {
            host: Some(convert::host_to_proto(&host)),
        }))
    }

    async fn get_assignments(
        &self,
        request: Request<pb::GetAssignmentsRequest>,
    ) -> Result<Response<pb::GetAssignmentsResponse>, Status> {
        self.authorize_agent(&request)?;
        let request = request.into_inner();
        super::require_id("host_id", &request.host_id)?;
        let host = self.store().get_host(&request.host_id).await?;
        let changed = host.generation != request.known_generation;
        let assignments = if changed {
            host.assignments
                .iter()
                .map(|a| assignment_to_proto(&host, a))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Response::new(pb::GetAssignmentsResponse {
            generation: host.generation,
            changed,
            assignments,
        }))
    }

    async fn report_status(
        &self,
        request: Request<pb::ReportStatusRequest>,
    ) -> Result<Response<pb::ReportStatusResponse>, Status> {
        self.authorize_agent(&request)?;
        let request = request.into_inner();
        super::require_id("host_id", &request.host_id)?;
        let nodes = request
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| report_from_proto(i, node))
            .collect::<Result<Vec<_>, _>>()?;
        let host = self
            .store()
            .report_host(&request.host_id, request.applied_generation, nodes)
            .await?;
        Ok(Response::new(pb::ReportStatusResponse {
            generation: host.generation,
        }))
    }
}

impl<S: Store> Api<S> {
    /// Authenticates the request and checks that it comes from an agent.
    fn authorize_agent<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let principal = self.authenticate(request)?;
        if principal.role != Role::Agent {
            return Err(status::permission_denied(format!(
                "the {} role may not call the agent service (only agent tokens may)",
                principal.role
            )));
        }
        Ok(principal)
    }
}

/// The store's registration for a wire request, with every field violation at once.
fn registration_from_proto(request: pb::RegisterHostRequest) -> Result<HostRegistration, Status> {
    let mut violations = Vec::new();
    for (field, value) in [
        ("host_id", &request.host_id),
        ("zone", &request.zone),
        ("address", &request.address),
    ] {
        if value.is_empty() {
            violations.push(violation(field, "is required"));
        }
    }
    let port = |field: &str, value: u32, violations: &mut Vec<_>| match u16::try_from(value) {
        Ok(port) if port > 0 => port,
        _ => {
            violations.push(violation(field, "must be a port from 1 to 65535"));
            0
        }
    };
    let ports = match request.ports {
        Some(range) => {
            let lo = port("ports.lo", range.lo, &mut violations);
            let hi = port("ports.hi", range.hi, &mut violations);
            if lo > hi {
                violations.push(violation("ports", "lo must not be above hi"));
            }
            PortRange { lo, hi }
        }
        None => {
            violations.push(violation("ports", "is required"));
            PortRange { lo: 0, hi: 0 }
        }
    };
    let capacity = request.capacity.unwrap_or_default();
    if capacity.max_nodes == 0 {
        violations.push(violation("capacity.max_nodes", "must be at least 1"));
    }
    if !violations.is_empty() {
        return Err(status::invalid_argument(&violations));
    }
    Ok(HostRegistration {
        id: request.host_id,
        zone: request.zone,
        address: request.address,
        ports,
        capacity: HostCapacity {
            max_nodes: capacity.max_nodes,
            storage_bytes: capacity.storage_bytes,
        },
    })
}

/// The wire assignment for one of `host`'s assignments.
pub fn assignment_to_proto(host: &Host, a: &HostAssignment) -> pb::Assignment {
    pb::Assignment {
        cluster_id: a.cluster_id.clone(),
        node: Some(pb::Node {
            node_id: a.node_id,
            role: convert::role_to_proto(a.role) as i32,
            host_id: host.id.clone(),
            zone: host.zone.clone(),
            address: a.address.clone(),
            kafka_port: a.kafka_port.map_or(0, u32::from),
            controller_port: a.controller_port.map_or(0, u32::from),
            state: pb::NodeState::Unspecified as i32,
            state_message: String::new(),
            admin_port: u32::from(a.admin_port),
            config_fingerprint: a.config_fingerprint.clone(),
            ..Default::default()
        }),
        kafka_version: a.kafka_version.clone(),
        storage_bytes: a.storage_bytes,
        broker_config: a
            .broker_config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        controller_quorum_voters: a.controller_quorum_voters.clone(),
        config_fingerprint: a.config_fingerprint.clone(),
    }
}

/// The store's report for the `i`th wire node report.
fn report_from_proto(i: usize, node: pb::NodeReport) -> Result<NodeReport, Status> {
    let state = match pb::NodeState::try_from(node.state) {
        Ok(pb::NodeState::Pending) => NodeState::Pending,
        Ok(pb::NodeState::Starting) => NodeState::Starting,
        Ok(pb::NodeState::Running) => NodeState::Running,
        Ok(pb::NodeState::Unhealthy) => NodeState::Unhealthy,
        Ok(pb::NodeState::Stopped) => NodeState::Stopped,
        Ok(pb::NodeState::Unspecified) | Err(_) => {
            return Err(status::invalid_argument(&[violation(
                &format!("nodes[{i}].state"),
                format!("{} is not a node state", node.state),
            )]));
        }
    };
    if node.cluster_id.is_empty() {
        return Err(status::invalid_argument(&[violation(
            &format!("nodes[{i}].cluster_id"),
            "is required",
        )]));
    }
    Ok(NodeReport {
        cluster_id: node.cluster_id,
        node_id: node.node_id,
        state,
        message: node.message,
        config_fingerprint: node.config_fingerprint,
        probe: node.probe.map(convert::probe_from_proto),
        // Stamped by the store.
        reported_at_ms: 0,
        running_since_ms: None,
    })
}
