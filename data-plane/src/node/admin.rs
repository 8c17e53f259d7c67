//! The node's admin endpoint: the `ferry.node.v1.NodeService` gRPC service, and the node's
//! metrics at `GET /metrics` on the same port (gRPC over h2c, `/metrics` over HTTP/1.1 too).
//!
//! It reports what the node is and holds (`ferry node status`, readiness checks in `ferry dev`
//! and the tests, and the host agent's health reports: a broker is ready when registered and
//! unfenced, a controller when its voter knows a quorum leader). A broker also counts the
//! cluster's under-replicated and offline partitions from its metadata image, one pass over
//! the partitions per call: the control plane's rolling restart waits on those counts.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::node::v1::node_service_server::{NodeService, NodeServiceServer};
use ferry_proto::node::v1::{GetStatusRequest, NodeStatus, PartitionStatus, ReplicationStatus};
use ferry_telemetry::http::metrics_router;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use super::Role;
use super::controller::{ControllerRole, node_id};
use crate::authority::quorum::QuorumAuthority;
use crate::broker::Broker;
use crate::metadata::NodeId;
use crate::metrics::Registry;

/// What the status call reads from.
#[derive(Clone)]
pub struct StatusSource {
    /// The broker, if the node has the role.
    pub broker: Option<Arc<Broker>>,
    /// The broker's quorum-backed authority, in quorum mode.
    pub quorum: Option<Arc<QuorumAuthority>>,
    /// The controller role, in quorum mode.
    pub controller: Option<ControllerRole>,
    /// The cluster.
    pub cluster_id: String,
    /// This node.
    pub node_id: NodeId,
    /// Roles of the node.
    pub roles: Vec<Role>,
    /// When the node started.
    pub started: Instant,
}

#[tonic::async_trait]
impl NodeService for StatusSource {
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        let partitions = self
            .broker
            .iter()
            .flat_map(|b| b.partitions().all())
            .map(|p| {
                let inner = p.lock();
                PartitionStatus {
                    topic: p.id.topic.clone(),
                    partition: p.id.partition,
                    log_start_offset: inner.log.log_start_offset(),
                    log_end_offset: inner.log.log_end_offset(),
                    high_watermark: inner.high_watermark,
                    size_bytes: inner.log.size_bytes(),
                    segment_count: inner.log.segment_count() as u32,
                    duplicate_batches: inner.producers.duplicate_batches,
                }
            })
            .collect();
        let advertised = self
            .broker
            .as_ref()
            .and_then(|b| {
                b.image()
                    .brokers
                    .get(&self.node_id)
                    .map(|i| format!("{}:{}", i.host, i.port))
            })
            .unwrap_or_default();
        let replication = self.broker.as_ref().map(|b| {
            let health = b.image().replication_health();
            ReplicationStatus {
                partitions: health.partitions,
                under_replicated_partitions: health.under_replicated,
                offline_partitions: health.offline,
            }
        });
        let (broker_epoch, fenced, metadata_offset) = match &self.quorum {
            Some(q) => {
                let state = q.broker_state();
                (state.broker_epoch, state.fenced, q.applied_offset())
            }
            None => (
                -1,
                false,
                self.broker.as_ref().map_or(0, |b| b.image().offset),
            ),
        };
        let (quorum_role, quorum_leader_id, quorum_term) = match &self.controller {
            Some(controller) => match controller.quorum().status().await {
                Ok(status) => (
                    quorum_role_name(status.role).to_string(),
                    status.leader.map_or(-1, node_id),
                    status.term,
                ),
                Err(e) => return Err(Status::unavailable(format!("quorum status: {e}"))),
            },
            None => (String::new(), -1, 0),
        };
        Ok(Response::new(NodeStatus {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id,
            roles: self.roles.iter().map(|r| r.as_str().to_string()).collect(),
            advertised_kafka_address: advertised,
            broker_epoch,
            fenced,
            metadata_offset,
            uptime_seconds: self.started.elapsed().as_secs(),
            partitions,
            quorum_role,
            quorum_leader_id,
            quorum_term,
            replication,
        }))
    }
}

/// The wire name of a voter's role.
fn quorum_role_name(role: ferry_quorum::Role) -> &'static str {
    match role {
        ferry_quorum::Role::Leader => "leader",
        ferry_quorum::Role::Follower => "follower",
        ferry_quorum::Role::Candidate => "candidate",
        ferry_quorum::Role::PreCandidate => "pre-candidate",
    }
}

/// Serves the admin endpoint on `listener` until `shutdown` resolves: `NodeService` and
/// `GET /metrics` from `metrics` (unauthenticated, like the status: the port is for the host's
/// agent and the operator's scraper).
pub async fn serve(
    listener: TcpListener,
    status: StatusSource,
    metrics: Arc<Registry>,
    shutdown: impl Future<Output = ()>,
) {
    let incoming = tokio_stream_from(listener);
    let router = Routes::new(NodeServiceServer::new(status))
        .into_axum_router()
        .merge(metrics_router(metrics, None));
    if let Err(e) = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(Routes::from(router))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
    {
        tracing::error!(error = %e, "admin endpoint failed");
    }
}

/// Adapts a bound listener into the stream of connections tonic serves.
fn tokio_stream_from(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}
