//! `AgentService`: the one door host agents use, over the store's host methods.
//!
//! ```text
//! agent                                  control plane
//!   RegisterHost(id, zone, address, ports, capacity)  -> Store::register_host
//!   GetAssignments(host_id, known_generation)         -> Store::get_host (generation, assignments)
//!   ReportStatus(host_id, applied_generation, nodes)  -> Store::report_host (also the heartbeat)
//! ```
//!
//! It is served on the peer listener only ([`crate::server`]), to clients presenting a host
//! certificate (`Identity::Host`, issued at enrollment, [`super::enroll`]). Every call is
//! scoped to the certificate's host: RegisterHost, GetAssignments and ReportStatus name that
//! host id or are refused (PERMISSION_DENIED), a report names only nodes assigned to that host
//! (or being released by it), and IssueNodeCertificate signs only for a node assigned to it,
//! with the node's assigned cluster, id and role.
//!
//! Assignments are stored without the host's zone (the host has one), so the wire
//! [`pb::Assignment`] is completed here from the host: its zone, its id.

use std::time::Duration;

use ferry_identity::{Identity, NodeRoles};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::agent_service_server::AgentService;
use tonic::{Request, Response, Status};

use super::{Api, convert, status, violation};
use crate::enroll::CSR_PEM_BYTES_MAX;
use crate::model::{Host, HostAssignment, HostCapacity, HostRegistration, NodeReport, NodeState};
use crate::placement::{PortRange, Role};
use crate::store::Store;

/// How long a node certificate is valid. Agents renew a node's certificate when less than a
/// third of this is left (`ferry_agent`'s renewal threshold).
pub const NODE_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// Most node reports in one ReportStatus (a host runs far fewer nodes).
pub const REPORT_NODES_MAX: usize = 1024;

#[tonic::async_trait]
impl<S: Store> AgentService for Api<S> {
    async fn register_host(
        &self,
        request: Request<pb::RegisterHostRequest>,
    ) -> Result<Response<pb::RegisterHostResponse>, Status> {
        let host_id = caller_host(&request)?;
        let registration = registration_from_proto(request.into_inner())?;
        same_host(&host_id, &registration.id)?;
        let host = self.store().register_host(registration).await?;
        Ok(Response::new(pb::RegisterHostResponse {
            host: Some(convert::host_to_proto(&host)),
        }))
    }

    async fn get_assignments(
        &self,
        request: Request<pb::GetAssignmentsRequest>,
    ) -> Result<Response<pb::GetAssignmentsResponse>, Status> {
        let host_id = caller_host(&request)?;
        let request = request.into_inner();
        super::require_id("host_id", &request.host_id)?;
        same_host(&host_id, &request.host_id)?;
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
        let host_id = caller_host(&request)?;
        let request = request.into_inner();
        super::require_id("host_id", &request.host_id)?;
        same_host(&host_id, &request.host_id)?;
        if request.nodes.len() > REPORT_NODES_MAX {
            return Err(status::invalid_argument(&[violation(
                "nodes",
                format!("at most {REPORT_NODES_MAX} per report"),
            )]));
        }
        let nodes = request
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| report_from_proto(i, node))
            .collect::<Result<Vec<_>, _>>()?;
        // Only this host's nodes: another host's node reported RUNNING would let anyone with
        // a host certificate pass the rolling-restart safety gate for it, so naming a node
        // assigned to another host is refused. A node assigned nowhere (a host whose control
        // plane lost its store still runs its old nodes) is left out of the report. The check
        // reads the hosts first; an assignment that moves in between is caught by the next
        // report.
        let host = self.store().get_host(&host_id).await?;
        let (nodes, foreign): (Vec<_>, Vec<_>) = nodes
            .into_iter()
            .partition(|n| is_assigned_or_released(&host, n));
        if !foreign.is_empty() {
            for other in self.all_hosts().await? {
                if let Some(node) = foreign.iter().find(|n| is_assigned_or_released(&other, n)) {
                    return Err(status::permission_denied(format!(
                        "node {} of cluster {} is assigned to another host than {host_id}",
                        node.node_id, node.cluster_id
                    )));
                }
            }
        }
        let host = self
            .store()
            .report_host(&request.host_id, request.applied_generation, nodes)
            .await?;
        Ok(Response::new(pb::ReportStatusResponse {
            generation: host.generation,
        }))
    }

    async fn issue_node_certificate(
        &self,
        request: Request<pb::IssueNodeCertificateRequest>,
    ) -> Result<Response<pb::IssueNodeCertificateResponse>, Status> {
        let host_id = caller_host(&request)?;
        let request = request.into_inner();
        super::require_id("cluster_id", &request.cluster_id)?;
        if request.csr_pem.is_empty() || request.csr_pem.len() > CSR_PEM_BYTES_MAX {
            return Err(status::invalid_argument(&[violation(
                "csr_pem",
                format!("is required, with at most {CSR_PEM_BYTES_MAX} bytes"),
            )]));
        }
        let host = self.store().get_host(&host_id).await?;
        let Some(assignment) = host
            .assignments
            .iter()
            .find(|a| a.cluster_id == request.cluster_id && a.node_id == request.node_id)
        else {
            return Err(status::permission_denied(format!(
                "node {} of cluster {} is not assigned to host {host_id}",
                request.node_id, request.cluster_id
            )));
        };
        let identity = Identity::Node {
            cluster_id: assignment.cluster_id.clone(),
            node_id: assignment.node_id,
            roles: match assignment.role {
                Role::Broker => NodeRoles::BROKER,
                Role::Controller => NodeRoles::CONTROLLER,
            },
        };
        let ca = self.ca().await?;
        let cert_pem = ca
            .sign_csr(&request.csr_pem, &identity, NODE_CERT_VALIDITY)
            .map_err(|err| status::invalid_argument(&[violation("csr_pem", err.to_string())]))?;
        let validity_ms = i64::try_from(NODE_CERT_VALIDITY.as_millis()).unwrap_or(i64::MAX);
        Ok(Response::new(pb::IssueNodeCertificateResponse {
            cert_pem,
            ca_pem: ca.cert_pem().to_string(),
            not_after_ms: self.store().now_ms().saturating_add(validity_ms),
        }))
    }
}

/// The host the caller's certificate speaks for. The peer listener's policy already admits
/// only host certificates; this is the handler's own check, and gives the host id.
fn caller_host<T>(request: &Request<T>) -> Result<String, Status> {
    match ferry_identity::peer_identity(request)? {
        Identity::Host { host_id } => Ok(host_id),
        other => Err(status::permission_denied(format!(
            "{other:?} may not call the agent service (only an enrolled host may)"
        ))),
    }
}

/// Refuses a request naming another host than the caller's certificate.
fn same_host(caller: &str, named: &str) -> Result<(), Status> {
    if caller != named {
        return Err(status::permission_denied(format!(
            "the certificate of host {caller} may not act for host {named}"
        )));
    }
    Ok(())
}

/// Whether `host` runs, or is stopping, the reported node.
fn is_assigned_or_released(host: &Host, node: &NodeReport) -> bool {
    host.assignments
        .iter()
        .chain(&host.releasing)
        .any(|a| a.cluster_id == node.cluster_id && a.node_id == node.node_id)
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
