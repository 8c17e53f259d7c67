//! The broker's side of the controller quorum: a metadata [`Authority`] backed by controllers.
//!
//! # Expected flow
//! 1. On start the broker loads the image it kept on disk (so it can serve at once with the
//!    last metadata it knew: static stability), then follows the controllers' committed
//!    metadata log from that offset over a gRPC stream ([`QuorumAuthority::run_follower`]).
//! 2. It registers (node id, a fresh incarnation id, listeners, rack) with the active
//!    controller and gets its broker epoch; it starts fenced.
//! 3. It heartbeats every `heartbeat_interval`, reporting the metadata offset it applied. Once
//!    that reaches its registration, the controller unfences it and clients see it.
//! 4. Admin requests (CreateTopics, DeleteTopics) become controller commands; the answer comes
//!    once the command committed *and* this broker applied it, so the client can use the topic
//!    on this broker immediately.
//! 5. On shutdown it asks for a controlled shutdown, so leadership moves away first.
//!
//! # Guarantees
//! The image only moves forward: batches are applied in offset order, and a snapshot replaces
//! the image only when it is newer. Input from the stream never panics the broker: a snapshot
//! or batch that does not decode, or a batch that contradicts the image, is logged and
//! dropped whole, and the image stays as it was.
//!
//! # Authentication
//! Every call goes over mutual TLS: the broker presents its node certificate and accepts only
//! a server whose certificate names it a controller of this cluster
//! ([`ferry_identity::controller_server_name`]), so a broker never sends its registration or
//! admin commands to anything else.
//!
//! # Caveats
//! Any controller can serve the stream; only the active one takes registrations, heartbeats
//! and commands. The client tries the controllers in turn and remembers which one answered.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_identity::TlsMaterial;
use ferry_proto::controller::v1 as pb;
use ferry_proto::controller::v1::controller_service_client::ControllerServiceClient;
use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::local::write_atomically;
use super::{Authority, QuorumState};
use crate::controller::records::decode_batch;
use crate::controller::{Command, CommandResult, Listener, MetadataImage};
use crate::metadata::{AdminError, BrokerInfo, Image, NodeId};

/// How long a call to the controllers keeps trying other controllers before giving up.
pub const CONTROLLER_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between two rounds over all controllers when none answered.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How often a broker writes its latest metadata image to disk (when it changed).
pub const IMAGE_PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Kafka's default `broker.heartbeat.interval.ms`.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2_000);

/// A client of the controller quorum that finds the active controller by trying each in turn.
#[derive(Clone)]
pub struct ControllerClient {
    /// One lazily connected channel per controller, by node id.
    controllers: Arc<Vec<(NodeId, ControllerServiceClient<Channel>)>>,
    /// Index of the controller that answered last.
    preferred: Arc<AtomicUsize>,
    /// The TLS config every channel uses (also for a leader found by address).
    tls: ClientTlsConfig,
}

impl ControllerClient {
    /// A client of the controllers of `cluster_id` at `voters` (node id → `host:port`),
    /// presenting `tls`'s certificate and trusting only controllers of `cluster_id` certified
    /// by `tls`'s CA.
    pub fn new(
        voters: &BTreeMap<NodeId, String>,
        cluster_id: &str,
        tls: &TlsMaterial,
    ) -> Result<Self, String> {
        let tls = ferry_identity::client_tls_config(
            tls,
            &ferry_identity::controller_server_name(cluster_id),
        );
        let controllers = voters
            .iter()
            .map(|(id, addr)| {
                let endpoint = controller_endpoint(addr, &tls)
                    .map_err(|e| format!("controller {id} address {addr:?}: {e}"))?;
                Ok((*id, ControllerServiceClient::new(endpoint.connect_lazy())))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if controllers.is_empty() {
            return Err("no controllers given".into());
        }
        Ok(Self {
            controllers: Arc::new(controllers),
            preferred: Arc::new(AtomicUsize::new(0)),
            tls,
        })
    }

    /// Calls `call` on the active controller: tries each controller in turn (the last one that
    /// answered first) while they answer "not active" or are unreachable, for up to `timeout`.
    pub async fn call<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, tonic::Status>
    where
        F: Fn(ControllerServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + timeout;
        let count = self.controllers.len();
        let mut last_error = tonic::Status::unavailable("no controller answered");
        loop {
            // One round: the preferred controller first, then a hinted one, then the rest.
            let mut index = self.preferred.load(Ordering::Relaxed);
            let mut tried = vec![false; count];
            while let Some(next) = (!tried[index])
                .then_some(index)
                .or_else(|| tried.iter().position(|t| !t))
            {
                tried[next] = true;
                let client = self.controllers[next].1.clone();
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, call(client)).await {
                    Ok(Ok(response)) => {
                        self.preferred.store(next, Ordering::Relaxed);
                        return Ok(response.into_inner());
                    }
                    Ok(Err(status)) if retryable(&status) => {
                        // "not the active controller; the active controller is N at …": ask
                        // that one next rather than in order.
                        index = self.hinted_leader(&status).unwrap_or(next);
                        last_error = status;
                    }
                    Ok(Err(status)) => return Err(status),
                    Err(_) => return Err(tonic::Status::deadline_exceeded(last_error.message())),
                }
            }
            if Instant::now() + RETRY_BACKOFF >= deadline {
                return Err(last_error);
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// The index of the controller a "not the active controller" answer names, if any.
    fn hinted_leader(&self, status: &tonic::Status) -> Option<usize> {
        let rest = status.message().split("the active controller is ").nth(1)?;
        let id: NodeId = rest.split_whitespace().next()?.parse().ok()?;
        self.controllers.iter().position(|(c, _)| *c == id)
    }

    /// Runs an admin command on the active controller; returns its result and the offset at
    /// which it is visible.
    pub async fn execute(&self, command: &Command) -> Result<(CommandResult, u64), tonic::Status> {
        let bytes = command.encode();
        let response = self
            .call(CONTROLLER_CALL_TIMEOUT, |mut c| {
                let command = bytes.clone();
                async move { c.execute(pb::ExecuteRequest { command }).await }
            })
            .await?;
        let result = CommandResult::decode(&response.result)
            .map_err(|e| tonic::Status::internal(format!("undecodable result: {e}")))?;
        Ok((result, response.offset))
    }

    /// The quorum's state as the active controller sees it (the only one that knows every
    /// voter's progress and the brokers' sessions). Asks any controller, then the leader its
    /// answer names (one more call, even when the first answer was the leader's, because
    /// callers may know controllers only by address); falls back to the first answer if the
    /// leader cannot be reached.
    pub async fn describe_quorum(&self) -> Result<pb::DescribeQuorumResponse, tonic::Status> {
        let first = self
            .call(CONTROLLER_CALL_TIMEOUT, |mut c| async move {
                c.describe_quorum(pb::DescribeQuorumRequest {}).await
            })
            .await?;
        if first.leader_id < 0 {
            return Ok(first);
        }
        // The leader's address comes from the answer itself, so this works also when the
        // caller only knew some controllers' addresses (`--bootstrap-controller`).
        let Some(endpoint) = first
            .endpoints
            .iter()
            .find(|e| e.node_id == first.leader_id)
        else {
            return Ok(first);
        };
        let address = format!("{}:{}", endpoint.host, endpoint.port);
        let Ok(endpoint) = controller_endpoint(&address, &self.tls) else {
            return Ok(first);
        };
        let mut leader = ControllerServiceClient::new(endpoint.connect_lazy());
        let ask = leader.describe_quorum(pb::DescribeQuorumRequest {});
        match tokio::time::timeout(Duration::from_secs(5), ask).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            _ => Ok(first),
        }
    }

    /// The channels, for a follower stream that may use any controller.
    fn clients(&self) -> impl Iterator<Item = ControllerServiceClient<Channel>> + '_ {
        let start = self.preferred.load(Ordering::Relaxed);
        let count = self.controllers.len();
        (0..count).map(move |i| self.controllers[(start + i) % count].1.clone())
    }
}

/// The endpoint of a controller listener at `address` (`host:port`), over mutual TLS.
fn controller_endpoint(address: &str, tls: &ClientTlsConfig) -> Result<Endpoint, String> {
    Endpoint::from_shared(format!("https://{address}"))
        .and_then(|e| e.tls_config(tls.clone()))
        .map(|e| e.connect_timeout(Duration::from_secs(2)).tcp_nodelay(true))
        .map_err(|e| e.to_string())
}

/// Whether another controller (or a later try) may succeed.
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::FailedPrecondition | tonic::Code::Unknown
    ) && !status.message().starts_with("stale broker epoch")
        && !status.message().contains("belongs to cluster")
}

/// Settings of the broker's quorum-backed authority.
#[derive(Debug, Clone)]
pub struct QuorumAuthorityOptions {
    /// The cluster.
    pub cluster_id: String,
    /// This broker as clients reach it.
    pub broker: BrokerInfo,
    /// The controllers: node id → `host:port`.
    pub controllers: BTreeMap<NodeId, String>,
    /// Where the broker keeps its last image.
    pub image_path: PathBuf,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// This broker's certificate (a broker of `cluster_id`, node `broker.node_id`), its key and
    /// the CA it trusts.
    pub tls: TlsMaterial,
}

/// The broker's registration state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerState {
    /// The broker epoch from the last registration (-1 before the first).
    pub broker_epoch: i64,
    /// Whether the controller reported the broker fenced at the last heartbeat.
    pub fenced: bool,
}

/// The quorum-backed authority of a broker. See the module docs.
pub struct QuorumAuthority {
    /// Settings.
    options: QuorumAuthorityOptions,
    /// The controllers.
    client: ControllerClient,
    /// The full image as followed from the controllers.
    image: Mutex<Arc<MetadataImage>>,
    /// The client view, republished after every change.
    published: watch::Sender<Arc<Image>>,
    /// The broker epoch (-1 before registration).
    broker_epoch: AtomicI64,
    /// Registration and fencing, for status reports.
    state: watch::Sender<BrokerState>,
}

impl QuorumAuthority {
    /// Builds the authority, starting from the image kept at `image_path` if there is one.
    pub fn open(options: QuorumAuthorityOptions) -> Result<Arc<Self>, String> {
        let client =
            ControllerClient::new(&options.controllers, &options.cluster_id, &options.tls)?;
        let image = match std::fs::read(&options.image_path) {
            Ok(bytes) => MetadataImage::decode(&bytes).map_err(|e| {
                format!(
                    "metadata image {} is unreadable: {e}",
                    options.image_path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                MetadataImage::new(options.cluster_id.clone())
            }
            Err(e) => return Err(format!("{}: {e}", options.image_path.display())),
        };
        if image.cluster_id() != options.cluster_id {
            return Err(format!(
                "metadata image {} belongs to cluster {}, not {}",
                options.image_path.display(),
                image.cluster_id(),
                options.cluster_id
            ));
        }
        let client_image = Arc::new(client_view(&image, &options.broker));
        let authority = Arc::new(Self {
            options,
            client,
            image: Mutex::new(Arc::new(image)),
            published: watch::channel(client_image).0,
            broker_epoch: AtomicI64::new(-1),
            state: watch::channel(BrokerState {
                broker_epoch: -1,
                fenced: true,
            })
            .0,
        });
        Ok(authority)
    }

    /// The controllers' client.
    pub fn client(&self) -> &ControllerClient {
        &self.client
    }

    /// The offset of the last metadata batch applied here.
    pub fn applied_offset(&self) -> u64 {
        self.image.lock().expect("image lock poisoned").offset()
    }

    /// Registration and fencing state.
    pub fn broker_state(&self) -> BrokerState {
        *self.state.borrow()
    }

    /// Follows the committed metadata log until `shutdown` resolves, reconnecting to another
    /// controller whenever a stream ends.
    pub async fn run_follower(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            for mut client in self.client.clients().collect::<Vec<_>>() {
                let after = self.applied_offset();
                let request = pb::FollowMetadataRequest {
                    after_offset: after,
                };
                let follow = async {
                    let mut stream = client.follow_metadata(request).await?.into_inner();
                    while let Some(delta) = stream.message().await? {
                        self.apply_delta(delta);
                    }
                    Ok::<(), tonic::Status>(())
                };
                tokio::select! {
                    result = follow => if let Err(e) = result {
                        tracing::debug!(error = %e, "metadata stream ended");
                    },
                    _ = &mut shutdown => return,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY_BACKOFF) => {}
                _ = &mut shutdown => return,
            }
        }
    }

    /// Applies one delta from the stream and publishes the new image.
    fn apply_delta(&self, delta: pb::MetadataDelta) {
        let mut image = self.image.lock().expect("image lock poisoned");
        match delta.delta {
            Some(pb::metadata_delta::Delta::Snapshot(bytes)) => match MetadataImage::decode(&bytes)
            {
                Ok(snapshot) if snapshot.offset() > image.offset() => *image = Arc::new(snapshot),
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable metadata snapshot");
                    return;
                }
            },
            Some(pb::metadata_delta::Delta::Batch(batch)) => {
                if batch.offset <= image.offset() {
                    return;
                }
                let records = match decode_batch(&batch.records) {
                    Ok(records) => records,
                    Err(e) => {
                        tracing::error!(error = %e, offset = batch.offset, "undecodable batch");
                        return;
                    }
                };
                // Applied to a copy, kept only if every record applies: a batch that
                // contradicts the image (only a faulty controller sends one) is logged and
                // dropped, and the broker goes on serving the image it had.
                let mut next = MetadataImage::clone(&image);
                for record in &records {
                    if let Err(e) = next.try_apply(batch.offset, record) {
                        tracing::error!(error = %e, offset = batch.offset, "inapplicable batch");
                        return;
                    }
                }
                *image = Arc::new(next);
            }
            None => return,
        }
        self.published
            .send_replace(Arc::new(client_view(&image, &self.options.broker)));
    }

    /// Keeps the latest image on disk, at most every [`IMAGE_PERSIST_INTERVAL`] and once more
    /// at shutdown, so a restarted broker serves from it at once (static stability) and
    /// resumes following from its offset. Writing on every batch would rewrite a large image
    /// many times a second.
    pub async fn run_image_keeper(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut ticker = tokio::time::interval(IMAGE_PERSIST_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut persisted = None;
        tokio::pin!(shutdown);
        loop {
            let stop = tokio::select! {
                _ = ticker.tick() => false,
                _ = &mut shutdown => true,
            };
            let image = self.image.lock().expect("image lock poisoned").clone();
            if persisted != Some(image.offset()) {
                let path = self.options.image_path.clone();
                let bytes = image.encode();
                let written =
                    tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
                match written {
                    Ok(Ok(())) => persisted = Some(image.offset()),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not keep the metadata image on disk")
                    }
                    Err(e) => tracing::warn!(error = %e, "image writer panicked"),
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Registers, then heartbeats until `shutdown` resolves; registers again whenever the
    /// controller no longer knows this broker's epoch.
    pub async fn run_heartbeats(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let incarnation_id = uuid::Uuid::new_v4();
        loop {
            if self.broker_epoch.load(Ordering::Relaxed) < 0 {
                match self.register(incarnation_id).await {
                    Ok(epoch) => {
                        tracing::info!(broker_epoch = epoch, "registered with the controllers");
                        self.broker_epoch.store(epoch, Ordering::Relaxed);
                        self.state.send_replace(BrokerState {
                            broker_epoch: epoch,
                            fenced: true,
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "registration failed; retrying"),
                }
            } else if let Err(e) = self.heartbeat(false).await {
                tracing::warn!(error = %e, "heartbeat failed");
                if e.message().starts_with("stale broker epoch") {
                    self.broker_epoch.store(-1, Ordering::Relaxed);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.options.heartbeat_interval) => {}
                _ = &mut shutdown => return,
            }
        }
    }

    async fn register(&self, incarnation_id: uuid::Uuid) -> Result<i64, String> {
        let broker = &self.options.broker;
        let command = Command::RegisterBroker {
            broker_id: broker.node_id,
            incarnation_id,
            listeners: vec![Listener {
                name: crate::controller::image::CLIENT_LISTENER.to_string(),
                host: broker.host.clone(),
                port: broker.port,
                security_protocol: "PLAINTEXT".to_string(),
            }],
            rack: broker.rack.clone(),
            cluster_id: self.options.cluster_id.clone(),
        };
        let bytes = command.encode();
        let response = self
            .client
            .call(CONTROLLER_CALL_TIMEOUT, |mut c| {
                let command = bytes.clone();
                async move {
                    c.register_broker(pb::RegisterBrokerRequest { command })
                        .await
                }
            })
            .await
            .map_err(|e| e.message().to_string())?;
        match CommandResult::decode(&response.result) {
            Ok(CommandResult::RegisterBroker(Ok(epoch))) => Ok(epoch),
            Ok(CommandResult::RegisterBroker(Err(e))) => Err(e.message),
            Ok(other) => Err(format!("unexpected result {other:?}")),
            Err(e) => Err(format!("undecodable result: {e}")),
        }
    }

    /// Sends one heartbeat; returns whether the controller allows the broker to stop.
    async fn heartbeat(&self, want_shutdown: bool) -> Result<bool, tonic::Status> {
        let request = pb::BrokerHeartbeatRequest {
            broker_id: self.options.broker.node_id,
            broker_epoch: self.broker_epoch.load(Ordering::Relaxed),
            metadata_offset: self.applied_offset(),
            want_shutdown,
        };
        let timeout = self.options.heartbeat_interval.max(Duration::from_secs(1));
        let response = self
            .client
            .call(
                timeout,
                |mut c| async move { c.broker_heartbeat(request).await },
            )
            .await?;
        let broker_epoch = request.broker_epoch;
        self.state.send_replace(BrokerState {
            broker_epoch,
            fenced: response.is_fenced,
        });
        Ok(response.should_shut_down)
    }

    /// Controlled shutdown: asks the controller to move leadership away and waits until it
    /// says the broker may stop, for up to `timeout`.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        if self.broker_epoch.load(Ordering::Relaxed) < 0 {
            return;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.heartbeat(true).await {
                Ok(true) => {
                    tracing::info!("controlled shutdown complete");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "controlled shutdown heartbeat failed"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!("controlled shutdown did not complete in time; stopping anyway");
    }

    /// Waits until this broker has applied `offset`, for up to `timeout`.
    async fn wait_for_offset(&self, offset: u64, timeout: Duration) {
        let mut images = self.published.subscribe();
        let deadline = Instant::now() + timeout;
        while self.applied_offset() < offset {
            if tokio::time::timeout_at(deadline, images.changed())
                .await
                .is_err()
            {
                tracing::warn!(offset, "metadata did not arrive in time");
                return;
            }
        }
    }

    /// DescribeQuorum, asked of the active controller.
    async fn quorum_state(&self) -> Result<QuorumState, AdminError> {
        self.client.describe_quorum().await.map_err(|status| {
            AdminError::new(
                ResponseError::NotController,
                format!("the controller quorum did not answer: {}", status.message()),
            )
        })
    }

    /// Runs a command and waits until this broker applied it.
    async fn run(&self, command: Command) -> Result<CommandResult, AdminError> {
        let (result, offset) = self.client.execute(&command).await.map_err(|status| {
            let code = match status.code() {
                tonic::Code::InvalidArgument => ResponseError::InvalidRequest,
                tonic::Code::DeadlineExceeded => ResponseError::RequestTimedOut,
                _ => ResponseError::NotController,
            };
            AdminError::new(
                code,
                format!("the controller quorum did not answer: {}", status.message()),
            )
        })?;
        self.wait_for_offset(offset, CONTROLLER_CALL_TIMEOUT).await;
        Ok(result)
    }
}

impl Authority for QuorumAuthority {
    fn image(&self) -> Arc<Image> {
        self.published.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.published.subscribe()
    }

    fn metadata_image(&self) -> Arc<MetadataImage> {
        self.image.lock().expect("metadata lock poisoned").clone()
    }

    fn execute(&self, command: Command) -> BoxFuture<'_, Result<CommandResult, AdminError>> {
        Box::pin(self.run(command))
    }

    fn describe_quorum(&self) -> BoxFuture<'_, Result<QuorumState, AdminError>> {
        Box::pin(self.quorum_state())
    }

    fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Relaxed)
    }
}

/// The view clients get: unfenced brokers only; the "controller" is the lowest live broker id
/// (KRaft names a live broker, since controllers are not reachable on client listeners). This
/// broker always appears with its current address, which the image may not know yet (it
/// restarted on another port while the quorum was down).
fn client_view(image: &MetadataImage, me: &BrokerInfo) -> Image {
    let controller = image
        .brokers()
        .filter(|b| !b.fenced)
        .map(|b| b.broker_id)
        .min()
        .unwrap_or(-1);
    let mut view = image.to_client_image(controller);
    if let Some(entry) = view.brokers.get_mut(&me.node_id) {
        *entry = me.clone();
    }
    view
}
