//! The agent's client of the control plane's `AgentService`, with its bearer token on every
//! call and a timeout on each.
//!
//! The channel connects lazily and reconnects by itself, so a control plane that goes away
//! and comes back (a restart, a leader change behind a load balancer) needs nothing here: calls
//! fail with UNAVAILABLE while it is gone and succeed once it is back.

use std::time::Duration;

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::agent_service_client::AgentServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::assignment::{Assignment, Assignments};
use crate::error::{Error, Result};
use crate::supervisor::{NodeReport, NodeState};

/// What the agent tells the control plane about its host when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The host's id.
    pub host_id: String,
    /// Its zone.
    pub zone: String,
    /// The address its nodes listen on.
    pub address: String,
    /// The lowest port nodes may use.
    pub ports_lo: u16,
    /// The highest port nodes may use (inclusive).
    pub ports_hi: u16,
    /// Most nodes at once.
    pub max_nodes: u32,
    /// Storage offered to node data, in bytes.
    pub storage_bytes: u64,
}

/// A client of `AgentService`.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// The lazily connected client.
    client: AgentServiceClient<Channel>,
    /// `Bearer <token>`.
    authorization: MetadataValue<Ascii>,
}

impl ControlPlane {
    /// A client of the control plane at `url` (`http://host:port`) presenting `token`; each
    /// call gives up after `timeout`. Connects on first use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad URL or a token that is not a header value.
    pub fn new(url: &str, token: &str, timeout: Duration) -> Result<ControlPlane> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::InvalidInput(format!("control plane URL {url:?}: {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let mut authorization: MetadataValue<Ascii> = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| Error::InvalidInput("the token is not a valid header value".into()))?;
        // Debug output (and tonic's own logging) shows "Sensitive" instead of the token.
        authorization.set_sensitive(true);
        Ok(ControlPlane {
            client: AgentServiceClient::new(endpoint.connect_lazy()),
            authorization,
        })
    }

    /// A request carrying the token.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }

    /// Registers (or re-registers) the host.
    pub async fn register(&mut self, r: &Registration) -> std::result::Result<(), Status> {
        let request = self.request(pb::RegisterHostRequest {
            host_id: r.host_id.clone(),
            zone: r.zone.clone(),
            address: r.address.clone(),
            ports: Some(pb::PortRange {
                lo: u32::from(r.ports_lo),
                hi: u32::from(r.ports_hi),
            }),
            capacity: Some(pb::HostCapacity {
                max_nodes: r.max_nodes,
                storage_bytes: r.storage_bytes,
            }),
        });
        self.client.register_host(request).await?;
        Ok(())
    }

    /// The host's assignments if their generation is not `known`; `None` if unchanged.
    ///
    /// An assignment the agent cannot use is an INVALID_ARGUMENT status naming it (the whole
    /// list is refused: running half of it could be worse than running the old one).
    pub async fn assignments(
        &mut self,
        host_id: &str,
        known: u64,
    ) -> std::result::Result<Option<Assignments>, Status> {
        let request = self.request(pb::GetAssignmentsRequest {
            host_id: host_id.to_string(),
            known_generation: known,
        });
        let response = self.client.get_assignments(request).await?.into_inner();
        if !response.changed {
            return Ok(None);
        }
        let mut nodes = response
            .assignments
            .into_iter()
            .map(Assignment::from_proto)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|why| Status::invalid_argument(format!("unusable assignment: {why}")))?;
        nodes.sort_by_key(Assignment::key);
        Ok(Some(Assignments {
            generation: response.generation,
            nodes,
        }))
    }

    /// Reports how the nodes are (the agent's heartbeat); returns the host's current
    /// assignment generation.
    pub async fn report(
        &mut self,
        host_id: &str,
        applied_generation: u64,
        nodes: &[NodeReport],
    ) -> std::result::Result<u64, Status> {
        let request = self.request(pb::ReportStatusRequest {
            host_id: host_id.to_string(),
            applied_generation,
            nodes: nodes.iter().map(report_to_proto).collect(),
        });
        Ok(self
            .client
            .report_status(request)
            .await?
            .into_inner()
            .generation)
    }
}

/// The wire report of one node.
fn report_to_proto(report: &NodeReport) -> pb::NodeReport {
    let state = match report.state {
        NodeState::Pending => pb::NodeState::Pending,
        NodeState::Starting => pb::NodeState::Starting,
        NodeState::Running => pb::NodeState::Running,
        NodeState::Unhealthy => pb::NodeState::Unhealthy,
        NodeState::Stopped => pb::NodeState::Stopped,
    };
    pb::NodeReport {
        cluster_id: report.key.cluster_id.clone(),
        node_id: report.key.node_id,
        state: state as i32,
        message: report.message.clone(),
        config_fingerprint: report.config_fingerprint.clone(),
        probe: report.details.as_ref().map(|d| pb::NodeProbe {
            broker_epoch: d.broker_epoch,
            fenced: d.fenced,
            metadata_offset: d.metadata_offset,
            quorum_role: d.quorum_role.clone(),
            quorum_leader_id: d.quorum_leader_id,
            replication: d.replication.map(|r| pb::ReplicationHealth {
                partitions: r.partitions,
                under_replicated_partitions: r.under_replicated,
                offline_partitions: r.offline,
            }),
        }),
    }
}
