//! The tokio shell: [`Quorum::start`] opens storage, starts the node task, the per-peer
//! senders and the gRPC server, and returns a [`QuorumHandle`].
//!
//! # The node task
//!
//! One task owns the [`Node`] and `select!`s over:
//!
//! - the ticker, every [`Options::tick_interval`] (missed ticks are delayed, not bunched);
//! - the inbound queue of raft messages from the gRPC service
//!   ([`Options::inbound_queue_capacity`]; at the bound the service refuses the batch with
//!   RESOURCE_EXHAUSTED and raft retransmits);
//! - the client queue of propose/read/status requests ([`Options::client_queue_capacity`];
//!   at the bound callers wait, up to their timeout);
//! - delivery feedback from the peer senders (bounded by the peer queue capacity; at the bound
//!   a sender waits, which is fine because this task drains it on every turn);
//! - the shutdown signal.
//!
//! After each input it calls [`Node::ready`], which routes messages into the per-peer queues
//! ([`Options::peer_queue_capacity`]; at the bound the message is dropped and raft is told the
//! peer is unreachable), then answers finished proposals and reads.
//!
//! # Errors
//!
//! A disk error stops the node task: every waiting caller gets [`Error::Stopped`] and the
//! handle refuses new requests. Restart from the same directory to recover.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proto::quorum::v1::raft_client::RaftClient;
use ferry_proto::quorum::v1::raft_server::RaftServer;
use ferry_proto::quorum::v1::raft_snapshot_client::RaftSnapshotClient;
use ferry_proto::quorum::v1::raft_snapshot_server::RaftSnapshotServer;
use raft::prelude::{Message, MessageType};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};

use crate::disk::FsDisk;
use crate::metrics::QuorumMetrics;
use crate::node::{Outcome, ProposalId, ReadId};
use crate::request::ClientRequest;
use crate::storage::LogStore;
use crate::transport::{self, Feedback, PeerClient, RaftService, SnapshotLimits};
use crate::{Error, Node, Options, RaftId, Result, StateMachine, Status};

/// Pause between attempts while a proposal waits for a leader to be elected or to move.
pub const PROPOSE_RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Most inbound raft messages stepped before the node task handles a `Ready`.
const INBOUND_BATCH_MAX: usize = 256;

/// Starts quorum members. See the module docs.
pub struct Quorum;

impl Quorum {
    /// Starts this voter: opens (or bootstraps) the log in `dir`, serves the `Raft` gRPC
    /// service on `listener` (bind it yourself; port 0 in tests), connects lazily to the other
    /// voters in `options.peers`, and starts the node task.
    ///
    /// Errors: [`Error::InvalidInput`] for bad options, [`Error::Io`] or [`Error::Corrupt`]
    /// for the directory.
    pub async fn start<S: StateMachine>(
        options: Options,
        state_machine: S,
        dir: impl AsRef<Path>,
        listener: TcpListener,
    ) -> Result<QuorumHandle> {
        Self::start_with_services(options, state_machine, dir, listener, Routes::default()).await
    }

    /// Like [`Quorum::start`], and also serves `services` (other gRPC services of the same
    /// process, such as a controller's API for brokers) on the same listener, so a voter needs
    /// one port.
    pub async fn start_with_services<S: StateMachine>(
        options: Options,
        state_machine: S,
        dir: impl AsRef<Path>,
        listener: TcpListener,
        services: Routes,
    ) -> Result<QuorumHandle> {
        options.validate()?;
        if let Some(tls) = &options.tls {
            // Fail here, not in the server task, when the material cannot serve TLS.
            tonic::transport::Server::builder()
                .tls_config(ferry_identity::server_tls_config(&tls.material))
                .map_err(|e| Error::InvalidInput(format!("TLS material: {e}")))?;
        }
        let voters: Vec<RaftId> = options.peers.keys().copied().collect();
        let store = LogStore::open(FsDisk::open(dir)?, &voters)?;
        let logger = crate::logger::tracing_logger();
        let node = Node::new(&options, state_machine, store, rand::random(), &logger)?;
        let local_addr = listener.local_addr()?;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (requests_tx, requests_rx) = mpsc::channel(options.client_queue_capacity);
        let (inbound_tx, inbound_rx) = mpsc::channel(options.inbound_queue_capacity);
        let (feedback_tx, feedback_rx) = mpsc::channel(options.peer_queue_capacity);

        let snapshot_limits = SnapshotLimits {
            message_bytes_max: options.message_bytes_max,
            chunk_bytes: options.snapshot_chunk_bytes,
            bytes_max: options.snapshot_bytes_max,
        };
        let mut clients = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for (&id, address) in options.peers.iter().filter(|(id, _)| **id != options.id) {
            let client = connect_lazy(address, &options)?;
            let (tx, rx) = mpsc::channel(options.peer_queue_capacity);
            tokio::spawn(transport::run_peer(
                id,
                client.clone(),
                rx,
                feedback_tx.clone(),
                snapshot_limits,
            ));
            clients.insert(id, client.raft);
            peers.insert(id, tx);
        }
        drop(feedback_tx);

        let service = RaftService::new(
            options.id,
            inbound_tx,
            requests_tx.clone(),
            options.propose_timeout,
            snapshot_limits,
        )
        .with_voter_of(options.tls.as_ref().map(|tls| tls.voter_of.clone()));
        let server = tokio::spawn(serve(
            service,
            services,
            listener,
            shutdown_rx.clone(),
            &options,
        ));
        let metrics = Arc::new(QuorumMetrics::default());
        metrics.observe(&node);
        let task = NodeTask {
            node,
            metrics: metrics.clone(),
            options: options.clone(),
            peers,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            next_id: 1,
        };
        let node_task = tokio::spawn(task.run(requests_rx, inbound_rx, feedback_rx, shutdown_rx));
        tracing::info!(id = options.id, %local_addr, "quorum member started");
        Ok(QuorumHandle {
            inner: Arc::new(Inner {
                id: options.id,
                options,
                local_addr,
                metrics,
                requests: requests_tx,
                clients,
                shutdown: shutdown_tx,
                tasks: Mutex::new(vec![node_task, server]),
            }),
        })
    }
}

/// Lazily connecting gRPC clients for a peer at `address` (`host:port`), over one channel: over
/// mutual TLS (presenting this member's certificate, requiring the peer's to carry
/// [`TlsOptions::server_name`](crate::TlsOptions::server_name)) when [`Options::tls`] is set.
fn connect_lazy(address: &str, options: &Options) -> Result<PeerClient> {
    let invalid = |err: tonic::transport::Error| {
        Error::InvalidInput(format!("peer address {address:?}: {err}"))
    };
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(invalid)?
        .connect_timeout(options.tick_interval * options.election_tick as u32);
    if let Some(tls) = &options.tls {
        endpoint = endpoint
            .tls_config(ferry_identity::client_tls_config(
                &tls.material,
                &tls.server_name,
            ))
            .map_err(invalid)?;
    }
    let channel = endpoint.connect_lazy();
    Ok(PeerClient {
        raft: RaftClient::new(channel.clone())
            .max_decoding_message_size(options.message_bytes_max)
            .max_encoding_message_size(options.message_bytes_max),
        snapshots: RaftSnapshotClient::new(channel)
            .max_decoding_message_size(options.message_bytes_max)
            .max_encoding_message_size(options.message_bytes_max),
    })
}

/// Serves the Raft service until shutdown.
fn serve(
    service: RaftService,
    services: Routes,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    options: &Options,
) -> impl Future<Output = ()> + use<> {
    let snapshots = RaftSnapshotServer::new(service.clone())
        .max_decoding_message_size(options.message_bytes_max)
        .max_encoding_message_size(options.message_bytes_max);
    let service = RaftServer::new(service)
        .max_decoding_message_size(options.message_bytes_max)
        .max_encoding_message_size(options.message_bytes_max);
    let tls = options.tls.as_ref().map(|tls| {
        (
            ferry_identity::server_tls_config(&tls.material),
            raft_policy(&options.peers, tls.voter_of.clone()).extend(tls.policy.clone()),
        )
    });
    async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let signal = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        // HTTP/1.1 too, not only h2c: processes that serve other services next to raft may
        // serve REST on them (the control plane's REST API), which curl and browsers reach
        // over HTTP/1.1. gRPC clients still speak h2c; the server tells them apart per
        // connection.
        let routes = services.add_service(service).add_service(snapshots);
        let result = match tls {
            // Mutual TLS: the handshake refuses plaintext and certificate-less clients, and
            // the policy layer refuses every call its rules do not allow, before any handler.
            Some((tls_config, policy)) => {
                match tonic::transport::Server::builder().tls_config(tls_config) {
                    Ok(builder) => {
                        builder
                            .layer(policy.layer())
                            .add_routes(routes)
                            .serve_with_incoming_shutdown(incoming, signal)
                            .await
                    }
                    Err(err) => Err(err),
                }
            }
            None => {
                tonic::transport::Server::builder()
                    .accept_http1(true)
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(incoming, signal)
                    .await
            }
        };
        if let Err(err) = result {
            tracing::error!(%err, "quorum gRPC server failed");
        }
    }
}

/// Who may call the services of `ferry.quorum.v1` (`Raft` and any other service between
/// voters): identities that are voters of this quorum.
fn raft_policy(
    peers: &BTreeMap<RaftId, String>,
    voter_of: crate::VoterOf,
) -> ferry_identity::Policy {
    let voters: Vec<RaftId> = peers.keys().copied().collect();
    let is_voter = move |peer: &ferry_identity::Identity| {
        voter_of(peer).is_some_and(|id| voters.contains(&id))
    };
    ferry_identity::Policy::new().allow(transport::QUORUM_PACKAGE_PREFIX, is_voter)
}

/// A caller waiting for its proposal's outcome, and when the node accepted the proposal.
type ProposalWaiter = (std::time::Instant, oneshot::Sender<Result<Vec<u8>>>);

/// The state of the one task that owns the node.
struct NodeTask<S: StateMachine> {
    /// The sans-IO node.
    node: Node<S, FsDisk>,
    /// Its numbers, updated after every `Ready`.
    metrics: Arc<QuorumMetrics>,
    /// The options it runs with.
    options: Options,
    /// Per-peer outbound queues.
    peers: BTreeMap<RaftId, mpsc::Sender<Message>>,
    /// Callers waiting for proposals, by proposal id, with when the node accepted each (for
    /// the commit latency).
    proposals: HashMap<ProposalId, ProposalWaiter>,
    /// Callers waiting for reads, by read id.
    reads: HashMap<ReadId, oneshot::Sender<Result<Vec<u8>>>>,
    /// Next proposal or read id.
    next_id: u64,
}

impl<S: StateMachine> NodeTask<S> {
    /// The loop; see the module docs. Returns on shutdown or a disk error.
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<ClientRequest>,
        mut inbound: mpsc::Receiver<Message>,
        mut feedback: mpsc::Receiver<Feedback>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(self.options.tick_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = ticker.tick() => {
                    self.node.tick();
                    self.forget_abandoned();
                }
                Some(msg) = inbound.recv() => {
                    self.step(msg);
                    for _ in 1..INBOUND_BATCH_MAX {
                        let Ok(msg) = inbound.try_recv() else { break };
                        self.step(msg);
                    }
                }
                Some(request) = requests.recv() => self.handle(request),
                Some(report) = feedback.recv() => match report {
                    Feedback::Unreachable(peer) => self.node.report_unreachable(peer),
                    Feedback::Snapshot(peer, ok) => self.node.report_snapshot(peer, ok),
                },
            }
            if let Err(err) = self.ready() {
                tracing::error!(id = self.options.id, %err, "quorum node stopped by an error");
                break;
            }
        }
        tracing::info!(id = self.options.id, "quorum node task stopped");
    }

    /// Steps one inbound message; bad messages are logged and dropped.
    fn step(&mut self, msg: Message) {
        let from = msg.from;
        if let Err(err) = self.node.step(msg) {
            tracing::warn!(from, %err, "dropped a raft message");
        }
    }

    /// Handles one client request.
    fn handle(&mut self, request: ClientRequest) {
        let id = self.next_id;
        self.next_id += 1;
        match request {
            ClientRequest::Propose { command, reply } => match self.node.propose(id, command) {
                Ok(()) => {
                    self.metrics.proposal_accepted();
                    self.proposals
                        .insert(id, (std::time::Instant::now(), reply));
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            },
            ClientRequest::Read { query, reply } => {
                self.node.read(id, query);
                self.reads.insert(id, reply);
            }
            ClientRequest::Status { reply } => {
                let _ = reply.send(self.node.status());
            }
        }
    }

    /// Runs the node's Ready handling, routes its messages and answers finished requests.
    fn ready(&mut self) -> Result<()> {
        let mut dropped = Vec::new();
        let peers = &self.peers;
        let result = self.node.ready(&mut |msg: Message| {
            let to = msg.to;
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let Some(queue) = peers.get(&to) else { return };
            if queue.try_send(msg).is_err() {
                dropped.push((to, is_snapshot));
            }
        });
        for (peer, is_snapshot) in dropped {
            self.node.report_unreachable(peer);
            if is_snapshot {
                self.node.report_snapshot(peer, false);
            }
        }
        self.metrics.observe(&self.node);
        for outcome in self.node.take_outcomes() {
            let (waiter, result) = match outcome {
                Outcome::Proposal { id, result } => {
                    let waiter = self.proposals.remove(&id).map(|(accepted, reply)| {
                        self.metrics.proposal_finished(accepted.elapsed());
                        reply
                    });
                    (waiter, result)
                }
                Outcome::Read { id, result } => (self.reads.remove(&id), result),
            };
            if let Some(waiter) = waiter {
                let _ = waiter.send(result);
            }
        }
        result
    }

    /// Forgets callers that gave up (their receiver is gone), so the maps stay bounded.
    fn forget_abandoned(&mut self) {
        self.proposals.retain(|_, (_, reply)| !reply.is_closed());
        let abandoned: Vec<ReadId> = self
            .reads
            .iter()
            .filter(|(_, r)| r.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.reads.remove(&id);
            self.node.cancel_read(id);
        }
    }
}

/// A cheap, cloneable handle to a running quorum member.
#[derive(Clone)]
pub struct QuorumHandle {
    /// Shared state of all clones.
    inner: Arc<Inner>,
}

/// What the clones of a [`QuorumHandle`] share.
struct Inner {
    /// This voter's id.
    id: RaftId,
    /// The options it was started with.
    options: Options,
    /// The address its gRPC server listens on.
    local_addr: SocketAddr,
    /// The node task's raft numbers.
    metrics: Arc<QuorumMetrics>,
    /// Into the node task.
    requests: mpsc::Sender<ClientRequest>,
    /// gRPC clients of the other voters, for forwarding proposals.
    clients: BTreeMap<RaftId, RaftClient<Channel>>,
    /// Set to `true` to stop the node task and the server.
    shutdown: watch::Sender<bool>,
    /// The node task and the server task, awaited by `shutdown`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl QuorumHandle {
    /// This voter's id.
    pub fn id(&self) -> RaftId {
        self.inner.id
    }

    /// The address the quorum gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// This voter's raft numbers (term, commit, role, …), kept current by the node task;
    /// register them with [`QuorumMetrics::register`] under the owner's prefix.
    pub fn metrics(&self) -> &Arc<QuorumMetrics> {
        &self.inner.metrics
    }

    /// Proposes `command` and returns the state machine's response once it is applied here
    /// (on the leader, or on this node if it is the leader).
    ///
    /// Waits for a leader while there is none, and on a follower forwards to the leader (when
    /// [`Options::forward_proposals`] is set), retrying as leadership moves, for up to
    /// [`Options::propose_timeout`]. Errors: [`Error::Unavailable`] if no leader accepted it in
    /// time (not applied), [`Error::Indeterminate`] if it entered the log but its outcome is
    /// unknown, [`Error::NotLeader`] without forwarding, [`Error::Stopped`].
    pub async fn propose(&self, command: Vec<u8>) -> Result<Vec<u8>> {
        let deadline = Instant::now() + self.inner.options.propose_timeout;
        loop {
            let local = transport::propose_local(&self.inner.requests, command.clone(), deadline);
            let error = match local.await {
                Err(Error::NotLeader {
                    leader_hint: Some(leader),
                }) if self.inner.options.forward_proposals && leader != self.inner.id => {
                    let Some(client) = self.inner.clients.get(&leader) else {
                        return Err(Error::NotLeader {
                            leader_hint: Some(leader),
                        });
                    };
                    match transport::propose_remote(client.clone(), command.clone(), deadline).await
                    {
                        Err(err) if err.is_retryable() => err,
                        other => return other,
                    }
                }
                Err(err @ Error::NotLeader { .. }) if !self.inner.options.forward_proposals => {
                    return Err(err);
                }
                Err(err) if err.is_retryable() => err,
                other => return other,
            };
            if Instant::now() + PROPOSE_RETRY_BACKOFF >= deadline {
                return Err(match error {
                    Error::NotLeader { .. } => Error::Unavailable("no leader accepted it".into()),
                    other => other,
                });
            }
            tokio::time::sleep(PROPOSE_RETRY_BACKOFF).await;
        }
    }

    /// Runs `query` against the state machine linearizably: the answer reflects every
    /// proposal that completed before this call began. Works on followers too (raft's
    /// ReadIndex asks the leader). Errors: [`Error::Unavailable`] if no ReadIndex round
    /// completed within [`Options::read_timeout`] (no leader, or a new leader that has not
    /// committed in its term yet), [`Error::Stopped`].
    pub async fn read(&self, query: Vec<u8>) -> Result<Vec<u8>> {
        let deadline = Instant::now() + self.inner.options.read_timeout;
        let (reply, answer) = oneshot::channel();
        let request = ClientRequest::Read { query, reply };
        match tokio::time::timeout_at(deadline, self.inner.requests.send(request)).await {
            Err(_) => {
                return Err(Error::Unavailable(
                    "the node's request queue stayed full".into(),
                ));
            }
            Ok(Err(_)) => return Err(Error::Stopped),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(Error::Unavailable(
                "no ReadIndex confirmation in time".into(),
            )),
            Ok(Err(_)) => Err(Error::Stopped),
            Ok(Ok(result)) => result,
        }
    }

    /// This voter's view of the quorum: role, leader, term, commit and applied indexes, and
    /// (on the leader) each voter's matched index and last contact.
    pub async fn status(&self) -> Result<Status> {
        let (reply, status) = oneshot::channel();
        let request = ClientRequest::Status { reply };
        self.inner
            .requests
            .send(request)
            .await
            .map_err(|_| Error::Stopped)?;
        status.await.map_err(|_| Error::Stopped)
    }

    /// Stops the node task and the gRPC server and waits for both. Callers still waiting get
    /// [`Error::Stopped`]. Everything acknowledged is already on disk. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock poisoned"));
        for task in tasks {
            if let Err(err) = task.await {
                tracing::error!(%err, "a quorum task panicked");
            }
        }
    }
}
