//! The controller role of a node: a voter of the cluster's metadata quorum.
//!
//! A controller runs a [`ferry_quorum`] voter whose state machine is the
//! [`MetadataStateMachine`], and serves `ferry.controller.v1.ControllerService` on the same
//! listener as the raft traffic. The active controller (the raft leader) is the only one that
//! accepts changes and tracks broker sessions; every controller streams the committed metadata
//! log to brokers that follow it.
//!
//! # Broker sessions
//! Sessions live only in the active controller's memory, as in KRaft: a new active controller
//! gives every registered broker a fresh session of `session_timeout` before it fences anyone.
//! [`ControllerRole::run_session_checks`] fences a broker whose heartbeats stopped for longer
//! than the session timeout; a heartbeat that shows the broker caught up with its registration
//! unfences it.
//!
//! # Who may call what
//! The listener serves only over mutual TLS ([`ControllerOptions::tls`]): a client must present
//! a certificate of the cluster's CA, or the handshake fails. Then, by the identity in that
//! certificate ([`ferry_identity::Identity::Node`]):
//!
//! | method | who |
//! |---|---|
//! | `ferry.quorum.v1.Raft/*` | controllers of this cluster whose node id is a voter, each sending only as itself |
//! | `RegisterBroker`, `BrokerHeartbeat` | a broker of this cluster, for its own node id only |
//! | `FollowMetadata`, `Execute` | brokers of this cluster |
//! | `DescribeQuorum` | any node of this cluster (also `ferry quorum describe` with a node's certificate) |
//!
//! Everything else, and every certificate of another cluster, gets PERMISSION_DENIED before a
//! handler runs.
//!
//! # Ids
//! Raft ids must be nonzero while Kafka node ids start at 0, so the raft id of node `n` is
//! `n + 1`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferry_identity::{Identity, Policy, TlsMaterial};
use ferry_proto::controller::v1 as pb;
use ferry_proto::controller::v1::controller_service_server::{
    ControllerService, ControllerServiceServer,
};
use ferry_quorum::{Quorum, QuorumHandle};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::broker::now_ms;
use crate::controller::heartbeat::heartbeat;
use crate::controller::records::encode_batch;
use crate::controller::{
    Command, CommandResult, Delta, Limits, MetadataLog, MetadataStateMachine, precheck,
};
use crate::metadata::NodeId;

/// How many metadata deltas may wait to be sent on one follower's stream; the producer task
/// waits when it is full, so a slow follower slows only its own stream.
pub const FOLLOW_STREAM_CAPACITY: usize = 64;

/// How often the active controller checks broker sessions.
pub const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Kafka's default `broker.session.timeout.ms`.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_millis(9_000);

/// Settings of the controller role.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// This node's id.
    pub node_id: NodeId,
    /// The cluster id; a registration for another cluster is refused.
    pub cluster_id: String,
    /// Every voter: node id → `host:port` of its controller listener (Kafka's
    /// `controller.quorum.voters`).
    pub voters: BTreeMap<NodeId, String>,
    /// Where the quorum keeps its log and snapshots.
    pub dir: PathBuf,
    /// A broker without a heartbeat for this long is fenced (`broker.session.timeout.ms`).
    pub session_timeout: Duration,
    /// Topic defaults and bounds every voter applies identically.
    pub limits: Limits,
    /// Raft timing and bounds; `id`, `peers` and `tls` are filled in from the fields above.
    pub quorum: ferry_quorum::Options,
    /// This controller's certificate (a controller of `cluster_id`, node `node_id`), the CA
    /// it and every peer trust, and its key. The listener serves only over mutual TLS.
    pub tls: TlsMaterial,
}

/// The gRPC path prefix of the controller service.
pub const CONTROLLER_SERVICE: &str = "/ferry.controller.v1.ControllerService/";

/// Who may call which controller method (see the module docs). Raft's rules are the quorum's.
pub fn controller_policy(cluster_id: &str) -> Policy {
    let broker = |cluster: String| move |peer: &Identity| peer.is_broker_of(&cluster);
    let node = |cluster: String| move |peer: &Identity| peer.node_of(&cluster).is_some();
    let method = |name: &str| format!("{CONTROLLER_SERVICE}{name}");
    let cluster = cluster_id.to_string();
    Policy::new()
        .allow(method("RegisterBroker"), broker(cluster.clone()))
        .allow(method("BrokerHeartbeat"), broker(cluster.clone()))
        .allow(method("FollowMetadata"), broker(cluster.clone()))
        .allow(method("Execute"), broker(cluster.clone()))
        .allow(method("DescribeQuorum"), node(cluster))
}

/// The quorum's mutual TLS for a controller of `cluster_id`: voters are the controllers of
/// this cluster, by node id.
fn quorum_tls(cluster_id: &str, material: TlsMaterial) -> ferry_quorum::TlsOptions {
    let cluster = cluster_id.to_string();
    ferry_quorum::TlsOptions {
        material,
        server_name: ferry_identity::controller_server_name(cluster_id),
        voter_of: Arc::new(move |peer: &Identity| match peer.node_of(&cluster) {
            Some(node) if peer.is_controller_of(&cluster) => Some(raft_id(node)),
            _ => None,
        }),
        policy: controller_policy(cluster_id),
    }
}

pub use ferry_quorum::{node_id, raft_id};

/// What the controller's metrics read at scrape time.
impl crate::metrics::controller::ControllerView for ControllerRole {
    fn image(&self) -> Arc<crate::controller::MetadataImage> {
        self.shared.log.image()
    }

    fn reported_metadata_offsets(&self, term: u64) -> Vec<(NodeId, u64)> {
        let sessions = self.shared.sessions.lock().expect("sessions lock poisoned");
        if sessions.term != term {
            return Vec::new();
        }
        sessions
            .by_broker
            .iter()
            .map(|(id, session)| (*id, session.metadata_offset))
            .collect()
    }
}

/// A broker's session as the active controller sees it.
#[derive(Debug, Clone)]
struct Session {
    /// When the session expires without another heartbeat.
    expires: Instant,
    /// The metadata offset the broker last reported.
    metadata_offset: u64,
    /// Wall-clock time of the last heartbeat, ms since the epoch (DescribeQuorum observers).
    last_heartbeat_ms: i64,
}

/// Sessions of the current term.
#[derive(Debug, Default)]
struct Sessions {
    /// The raft term in which these sessions were granted; a new term starts them afresh.
    term: u64,
    /// By broker id.
    by_broker: BTreeMap<NodeId, Session>,
}

/// What the gRPC service and the session checker share.
struct Shared {
    /// Settings.
    options: ControllerOptions,
    /// The voter, set once it started (the service is built before the voter exists).
    quorum: OnceLock<QuorumHandle>,
    /// The committed metadata, read by follower streams.
    log: MetadataLog,
    /// Broker sessions, on the active controller.
    sessions: Mutex<Sessions>,
    /// Brokers this controller fenced because their sessions expired (a metric).
    fences: ferry_telemetry::metrics::Counter,
}

/// A running controller. Cheap to clone.
#[derive(Clone)]
pub struct ControllerRole {
    shared: Arc<Shared>,
}

impl ControllerRole {
    /// Starts the voter on `listener` (raft and the controller service share it).
    pub async fn start(
        options: ControllerOptions,
        listener: TcpListener,
    ) -> Result<ControllerRole, ferry_quorum::Error> {
        let state_machine =
            MetadataStateMachine::new(options.cluster_id.clone(), options.limits.clone());
        let log = state_machine.log();
        let mut quorum_options = options.quorum.clone();
        quorum_options.id = raft_id(options.node_id);
        quorum_options.peers = options
            .voters
            .iter()
            .map(|(id, addr)| (raft_id(*id), addr.clone()))
            .collect();
        quorum_options.tls = Some(quorum_tls(&options.cluster_id, options.tls.clone()));
        let shared = Arc::new(Shared {
            options: options.clone(),
            quorum: OnceLock::new(),
            log,
            sessions: Mutex::new(Sessions::default()),
            fences: ferry_telemetry::metrics::Counter::default(),
        });
        let role = ControllerRole { shared };
        let services = tonic::service::Routes::new(ControllerServiceServer::new(role.clone()));
        let quorum = Quorum::start_with_services(
            quorum_options,
            state_machine,
            &options.dir,
            listener,
            services,
        )
        .await?;
        role.shared
            .quorum
            .set(quorum)
            .unwrap_or_else(|_| unreachable!("set once, here"));
        Ok(role)
    }

    /// The committed metadata this controller has applied.
    pub fn log(&self) -> &MetadataLog {
        &self.shared.log
    }

    /// The voter handle (set once `start` returns).
    pub fn quorum(&self) -> &QuorumHandle {
        self.shared.quorum.get().expect("set in start")
    }

    /// The voter handle for request handlers: the service starts serving a moment before
    /// `start` stores the handle, and a request in that window is told to retry.
    fn voter(&self) -> Result<&QuorumHandle, Status> {
        self.shared
            .quorum
            .get()
            .ok_or_else(|| Status::unavailable("the controller is starting"))
    }

    /// Fences brokers whose sessions expired, while this controller is active, until
    /// `shutdown` resolves.
    pub async fn run_session_checks(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut ticker = tokio::time::interval(SESSION_CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = self.check_sessions().await {
                        tracing::debug!(error = %e, "session check skipped");
                    }
                }
                _ = &mut shutdown => return,
            }
        }
    }

    /// Counts the brokers this controller fenced because their sessions expired (a metric;
    /// clones share the count).
    pub fn fences(&self) -> &ferry_telemetry::metrics::Counter {
        &self.shared.fences
    }

    /// Stops the voter.
    pub async fn shutdown(&self) {
        self.quorum().shutdown().await;
    }

    /// One pass of the session checker: fence every unfenced broker whose session expired.
    async fn check_sessions(&self) -> Result<(), Status> {
        let term = self.active_term().await?;
        let image = self.shared.log.image();
        let now = Instant::now();
        let expired: Vec<(NodeId, i64)> = {
            let mut sessions = self.sessions_for(term);
            image
                .brokers()
                .filter(|b| !b.fenced)
                .filter(|b| {
                    let session = sessions.by_broker.entry(b.broker_id).or_insert(Session {
                        expires: now + self.shared.options.session_timeout,
                        metadata_offset: 0,
                        last_heartbeat_ms: -1,
                    });
                    session.expires <= now
                })
                .map(|b| (b.broker_id, b.broker_epoch))
                .collect()
        };
        for (broker_id, broker_epoch) in expired {
            tracing::warn!(broker_id, "broker session expired; fencing it");
            self.propose(&Command::FenceBroker {
                broker_id,
                broker_epoch,
            })
            .await?;
            self.shared.fences.inc();
        }
        // Preferred-leader rebalancing: proposed only when the committed image has work, so an
        // idle cluster writes nothing.
        let image = self.shared.log.image();
        if !crate::controller::replication::preferred_leader_changes(&image).is_empty() {
            tracing::info!("moving leadership back to preferred replicas");
            self.propose(&Command::ElectPreferredLeaders).await?;
        }
        Ok(())
    }

    /// The sessions of `term`, started afresh if the term changed (a new active controller
    /// grants every broker a full session before fencing anyone).
    fn sessions_for(&self, term: u64) -> std::sync::MutexGuard<'_, Sessions> {
        let mut sessions = self.shared.sessions.lock().expect("sessions lock poisoned");
        if sessions.term != term {
            *sessions = Sessions {
                term,
                by_broker: BTreeMap::new(),
            };
        }
        sessions
    }

    /// The current term if this controller is the active one, else FAILED_PRECONDITION
    /// naming the active controller.
    async fn active_term(&self) -> Result<u64, Status> {
        let voter = self.voter()?;
        let status = voter.status().await.map_err(quorum_status)?;
        match status.leader {
            Some(leader) if leader == voter.id() => Ok(status.term),
            Some(leader) => {
                let id = node_id(leader);
                let addr = self
                    .shared
                    .options
                    .voters
                    .get(&id)
                    .cloned()
                    .unwrap_or_default();
                Err(Status::failed_precondition(format!(
                    "not the active controller; the active controller is {id} at {addr}"
                )))
            }
            None => Err(Status::unavailable("the controller quorum has no leader")),
        }
    }

    /// Fills in this controller's defaults (`num.partitions`, `default.replication.factor`)
    /// before proposing, so that the logged command means the same thing on every replay.
    fn with_defaults(&self, command: Command) -> Command {
        let defaults = &self.shared.options.limits.topics;
        match command {
            Command::CreateTopics {
                mut topics,
                validate_only,
            } => {
                for topic in topics.iter_mut().filter(|t| t.assignments.is_empty()) {
                    topic.num_partitions.get_or_insert(defaults.num_partitions);
                    topic
                        .replication_factor
                        .get_or_insert(defaults.default_replication_factor);
                }
                Command::CreateTopics {
                    topics,
                    validate_only,
                }
            }
            other => other,
        }
    }

    /// Proposes a command and decodes its result.
    async fn propose(&self, command: &Command) -> Result<CommandResult, Status> {
        let bytes = self
            .voter()?
            .propose(command.encode())
            .await
            .map_err(quorum_status)?;
        CommandResult::decode(&bytes)
            .map_err(|e| Status::internal(format!("undecodable command result: {e}")))
    }

    async fn register(&self, command: Command) -> Result<pb::RegisterBrokerResponse, Status> {
        let Command::RegisterBroker {
            broker_id,
            cluster_id,
            ..
        } = &command
        else {
            return Err(Status::invalid_argument(
                "expected a RegisterBroker command",
            ));
        };
        if *cluster_id != self.shared.options.cluster_id {
            return Err(Status::failed_precondition(format!(
                "broker {broker_id} belongs to cluster {cluster_id}, this quorum to cluster {}",
                self.shared.options.cluster_id
            )));
        }
        let broker_id = *broker_id;
        let term = self.active_term().await?;
        let result = self.propose(&command).await?;
        let offset = match &result {
            CommandResult::RegisterBroker(Ok(epoch)) => {
                let mut sessions = self.sessions_for(term);
                sessions.by_broker.insert(
                    broker_id,
                    Session {
                        expires: Instant::now() + self.shared.options.session_timeout,
                        metadata_offset: 0,
                        last_heartbeat_ms: now_ms(),
                    },
                );
                u64::try_from(*epoch).unwrap_or(0)
            }
            _ => 0,
        };
        Ok(pb::RegisterBrokerResponse {
            result: result.encode(),
            offset,
        })
    }

    async fn heartbeat(
        &self,
        request: pb::BrokerHeartbeatRequest,
    ) -> Result<pb::BrokerHeartbeatResponse, Status> {
        let term = self.active_term().await?;
        let broker_id = request.broker_id;
        let image = self.shared.log.image();
        let answer = heartbeat(
            &image,
            broker_id,
            request.broker_epoch,
            request.metadata_offset,
            request.want_shutdown,
        )
        .map_err(|e| Status::failed_precondition(format!("stale broker epoch: {}", e.message)))?;
        self.sessions_for(term).by_broker.insert(
            broker_id,
            Session {
                expires: Instant::now() + self.shared.options.session_timeout,
                metadata_offset: request.metadata_offset,
                last_heartbeat_ms: now_ms(),
            },
        );
        let (mut fenced, mut should_shut_down) = (answer.is_fenced, answer.should_shut_down);
        if let Some(command) = &answer.propose {
            // Answer from the image that includes the change, as Kafka does.
            self.propose(command).await?;
            let image = self.shared.log.image();
            let after = heartbeat(
                &image,
                broker_id,
                request.broker_epoch,
                request.metadata_offset,
                request.want_shutdown,
            )
            .map_err(|e| {
                Status::failed_precondition(format!("stale broker epoch: {}", e.message))
            })?;
            (fenced, should_shut_down) = (after.is_fenced, after.should_shut_down);
        }
        Ok(pb::BrokerHeartbeatResponse {
            is_fenced: fenced,
            is_caught_up: answer.is_caught_up,
            should_shut_down,
        })
    }

    /// The node id of the caller's verified certificate (a node of this cluster; the policy
    /// layer let only such callers through).
    fn caller_node<T>(&self, request: &Request<T>) -> Result<NodeId, Status> {
        let peer = ferry_identity::peer_identity(request)?;
        peer.node_of(&self.shared.options.cluster_id)
            .ok_or_else(|| Status::permission_denied(format!("{peer} is not of this cluster")))
    }

    /// A broker registers and heartbeats only as itself: its certificate's node id.
    fn check_own_id(&self, caller: NodeId, broker_id: NodeId) -> Result<(), Status> {
        if caller == broker_id {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "node {caller} may not speak for broker {broker_id}"
            )))
        }
    }

    async fn describe(&self) -> Result<pb::DescribeQuorumResponse, Status> {
        // Any controller answers with what it knows; only the active one knows each voter's
        // progress and the brokers' sessions (the others report -1 and no observers), so
        // clients that want the full picture ask the leader the answer names.
        let status = self.voter()?.status().await.map_err(quorum_status)?;
        let now = now_ms();
        let voters = status
            .voters
            .iter()
            .map(|v| pb::ReplicaState {
                replica_id: node_id(v.id),
                log_end_offset: v.matched.map_or(-1, |m| m as i64),
                last_fetch_timestamp: v
                    .last_contact
                    .map_or(-1, |ago| now - ago.as_millis() as i64),
                last_caught_up_timestamp: match (v.matched, v.last_contact) {
                    (Some(m), Some(ago)) if m >= status.commit => now - ago.as_millis() as i64,
                    _ => -1,
                },
            })
            .collect();
        let observers = {
            let sessions = self.shared.sessions.lock().expect("sessions lock poisoned");
            sessions
                .by_broker
                .iter()
                .map(|(id, s)| pb::ReplicaState {
                    replica_id: *id,
                    log_end_offset: s.metadata_offset as i64,
                    last_fetch_timestamp: s.last_heartbeat_ms,
                    last_caught_up_timestamp: -1,
                })
                .collect()
        };
        let endpoints = self
            .shared
            .options
            .voters
            .iter()
            .filter_map(|(id, addr)| {
                let (host, port) = addr.rsplit_once(':')?;
                Some(pb::Endpoint {
                    node_id: *id,
                    host: host.to_string(),
                    port: port.parse().ok()?,
                })
            })
            .collect();
        Ok(pb::DescribeQuorumResponse {
            leader_id: status.leader.map_or(-1, node_id),
            leader_epoch: status.term,
            high_watermark: status.commit,
            voters,
            observers,
            endpoints,
            cluster_id: self.shared.options.cluster_id.clone(),
        })
    }

    /// Streams deltas after `after` into `tx` until the receiver goes away.
    async fn stream_deltas(
        log: MetadataLog,
        mut after: u64,
        tx: mpsc::Sender<Result<pb::MetadataDelta, Status>>,
    ) {
        let mut applied = log.subscribe();
        loop {
            applied.borrow_and_update();
            let deltas = match log.read_since(after) {
                Delta::Snapshot(image) => {
                    after = image.offset();
                    vec![pb::metadata_delta::Delta::Snapshot(image.encode())]
                }
                Delta::Records(batches) => batches
                    .into_iter()
                    .map(|(offset, records)| {
                        after = offset;
                        pb::metadata_delta::Delta::Batch(pb::RecordBatch {
                            offset,
                            records: encode_batch(&records),
                        })
                    })
                    .collect(),
            };
            for delta in deltas {
                if tx
                    .send(Ok(pb::MetadataDelta { delta: Some(delta) }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if applied.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Type of the follower stream.
type DeltaStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::MetadataDelta, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ControllerService for ControllerRole {
    async fn register_broker(
        &self,
        request: Request<pb::RegisterBrokerRequest>,
    ) -> Result<Response<pb::RegisterBrokerResponse>, Status> {
        let caller = self.caller_node(&request)?;
        let command = Command::decode(&request.into_inner().command)
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        if let Command::RegisterBroker { broker_id, .. } = &command {
            self.check_own_id(caller, *broker_id)?;
        }
        self.register(command).await.map(Response::new)
    }

    async fn broker_heartbeat(
        &self,
        request: Request<pb::BrokerHeartbeatRequest>,
    ) -> Result<Response<pb::BrokerHeartbeatResponse>, Status> {
        let caller = self.caller_node(&request)?;
        self.check_own_id(caller, request.get_ref().broker_id)?;
        self.heartbeat(request.into_inner())
            .await
            .map(Response::new)
    }

    type FollowMetadataStream = DeltaStream;

    async fn follow_metadata(
        &self,
        request: Request<pb::FollowMetadataRequest>,
    ) -> Result<Response<Self::FollowMetadataStream>, Status> {
        let (tx, rx) = mpsc::channel(FOLLOW_STREAM_CAPACITY);
        let log = self.shared.log.clone();
        tokio::spawn(Self::stream_deltas(
            log,
            request.into_inner().after_offset,
            tx,
        ));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let command = Command::decode(&request.into_inner().command)
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        if matches!(command, Command::RegisterBroker { .. }) {
            return Err(Status::invalid_argument(
                "use RegisterBroker to register brokers",
            ));
        }
        self.active_term().await?;
        let command = self.with_defaults(command);
        // A request that can never succeed (too many partitions) never reaches the log.
        if let Some(refused) = precheck(&command, &self.shared.options.limits) {
            let offset = self.shared.log.image().offset();
            return Ok(Response::new(pb::ExecuteResponse {
                result: refused.encode(),
                offset,
            }));
        }
        let result = self.propose(&command).await?;
        // The offset of the image that includes the command's records. (The applied raft
        // index can be higher — refused commands and a new leader's empty entry write no
        // records — and brokers never see such offsets in the stream they wait on.)
        let offset = self.shared.log.image().offset();
        Ok(Response::new(pb::ExecuteResponse {
            result: result.encode(),
            offset,
        }))
    }

    async fn describe_quorum(
        &self,
        _request: Request<pb::DescribeQuorumRequest>,
    ) -> Result<Response<pb::DescribeQuorumResponse>, Status> {
        self.describe().await.map(Response::new)
    }
}

/// Maps a quorum error to the gRPC status callers act on.
fn quorum_status(error: ferry_quorum::Error) -> Status {
    use ferry_quorum::Error;
    match error {
        Error::NotLeader { .. } | Error::Unavailable(_) | Error::Stopped => {
            Status::unavailable(error.to_string())
        }
        Error::Indeterminate(_) => Status::deadline_exceeded(error.to_string()),
        Error::InvalidInput(_) => Status::invalid_argument(error.to_string()),
        Error::Io(_) | Error::Corrupt(_) => Status::internal(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use ferry_proto::quorum::v1 as raft_pb;
    use ferry_proto::quorum::v1::propose_error::Kind;
    use ferry_proto::quorum::v1::raft_client::RaftClient;
    use ferry_quorum::Role;

    use super::*;

    const CLUSTER: &str = "poison-test";

    /// Three controllers on port 0, each over its own directory.
    struct Controllers {
        ca: ferry_identity::CertificateAuthority,
        voters: BTreeMap<NodeId, String>,
        dirs: BTreeMap<NodeId, tempfile::TempDir>,
        roles: BTreeMap<NodeId, ControllerRole>,
    }

    impl Controllers {
        async fn start() -> Controllers {
            let mut listeners = BTreeMap::new();
            for id in 0..3 {
                listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
            }
            let voters = listeners
                .iter()
                .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
                .collect();
            let dirs = (0..3)
                .map(|id| (id, tempfile::tempdir().unwrap()))
                .collect();
            let mut controllers = Controllers {
                ca: ferry_identity::CertificateAuthority::generate("poison test CA").unwrap(),
                voters,
                dirs,
                roles: BTreeMap::new(),
            };
            for (id, listener) in listeners {
                controllers.start_one(id, listener).await;
            }
            controllers
        }

        async fn start_one(&mut self, id: NodeId, listener: TcpListener) {
            let options = ControllerOptions {
                node_id: id,
                cluster_id: CLUSTER.into(),
                voters: self.voters.clone(),
                dir: self.dirs[&id].path().to_path_buf(),
                session_timeout: DEFAULT_SESSION_TIMEOUT,
                limits: Limits::default(),
                quorum: ferry_quorum::Options {
                    tick_interval: Duration::from_millis(20),
                    ..Default::default()
                },
                tls: self.material(id),
            };
            let role = ControllerRole::start(options, listener).await.unwrap();
            self.roles.insert(id, role);
        }

        /// Certificate and key of controller `id` of [`CLUSTER`].
        fn material(&self, id: NodeId) -> TlsMaterial {
            let identity = ferry_identity::Identity::Node {
                cluster_id: CLUSTER.into(),
                node_id: id,
                roles: ferry_identity::NodeRoles::CONTROLLER,
            };
            self.ca
                .issue(&identity, &[], ferry_identity::CERT_VALIDITY_DEFAULT)
                .unwrap()
        }

        async fn leader(&self) -> NodeId {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                for (id, role) in &self.roles {
                    if role.quorum().status().await.unwrap().role == Role::Leader {
                        return *id;
                    }
                }
                assert!(Instant::now() < deadline, "no leader");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poison_command_sent_to_the_raft_service_is_refused_by_every_controller() {
        let mut controllers = Controllers::start().await;
        let leader = controllers.leader().await;
        // Once the leader's first entry of its term reached everyone, the logs stand still.
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = loop {
            let mut last = BTreeMap::new();
            for (id, role) in &controllers.roles {
                let status = role.quorum().status().await.unwrap();
                last.insert(*id, (status.last_index, status.commit));
            }
            let first = last.values().next().copied();
            if first.is_some_and(|(index, _)| index > 0) && last.values().all(|v| Some(*v) == first)
            {
                break last;
            }
            assert!(Instant::now() < deadline, "logs did not settle: {last:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        // As the strongest attacker left once the transport is authenticated: a voter of this
        // cluster (its certificate stolen, or its code broken) sending raw Raft.Propose to every
        // voter. Peers without such a certificate are refused at the handshake (tests/
        // controller_auth.rs).
        let insider = controllers.material(0);
        let poisons = [
            b"garbage".to_vec(),
            br#"{"NotACommand":1}"#.to_vec(),
            Vec::new(),
        ];
        for address in controllers.voters.values() {
            let channel = tonic::transport::Endpoint::from_shared(format!("https://{address}"))
                .unwrap()
                .tls_config(ferry_identity::client_tls_config(
                    &insider,
                    &ferry_identity::controller_server_name(CLUSTER),
                ))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = RaftClient::new(channel);
            for poison in &poisons {
                let request = raft_pb::ProposeRequest {
                    command: poison.clone(),
                    timeout_ms: 2_000,
                };
                let response = client.propose(request).await.unwrap().into_inner();
                let Some(raft_pb::propose_response::Outcome::Error(error)) = response.outcome
                else {
                    panic!("{poison:?} accepted by {address}: {response:?}");
                };
                assert_eq!(error.kind, Kind::InvalidInput as i32, "{error:?}");
            }
        }

        // Nothing entered any log; every voter answers; a real command still commits.
        for (id, role) in &controllers.roles {
            let status = role.quorum().status().await.unwrap();
            assert_eq!(status.last_index, before[id].0, "voter {id}");
            assert_eq!(role.log().applied_offset(), 0);
        }
        let command = Command::RegisterBroker {
            broker_id: 7,
            incarnation_id: uuid::Uuid::from_u128(7),
            listeners: Vec::new(),
            rack: None,
            cluster_id: CLUSTER.into(),
        };
        let response = controllers.roles[&leader]
            .quorum()
            .propose(command.encode())
            .await
            .unwrap();
        assert!(
            matches!(
                CommandResult::decode(&response),
                Ok(CommandResult::RegisterBroker(Ok(_)))
            ),
            "{:?}",
            CommandResult::decode(&response)
        );

        // A voter restarts on its directory and catches up.
        let restarted = (leader + 1) % 3;
        controllers
            .roles
            .remove(&restarted)
            .unwrap()
            .shutdown()
            .await;
        let listener = TcpListener::bind(&controllers.voters[&restarted])
            .await
            .unwrap();
        controllers.start_one(restarted, listener).await;
        let role = controllers.roles[&restarted].clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while role.log().image().brokers().count() != 1 {
            assert!(
                Instant::now() < deadline,
                "the restarted voter did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(role.log().image().undecodable_entries().0, 0);
        for role in controllers.roles.values() {
            role.shutdown().await;
        }
    }
}
