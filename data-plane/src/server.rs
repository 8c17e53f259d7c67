//! The Kafka listener: accepts connections and serves requests on each.
//!
//! One task per connection reads frames, decodes them, hands each request to the [`Broker`] and
//! writes the response before reading the next request. Handling one request at a time per
//! connection is what Kafka does (it mutes a connection until its response is sent), and it is
//! what keeps responses in request order, which clients rely on when they pipeline.
//!
//! # Limits
//! - [`ServerOptions::max_frame_bytes`] (Kafka's `socket.request.max.bytes`): a larger frame is
//!   refused from its 4-byte size prefix, before anything is buffered, and the connection closed.
//! - [`ServerOptions::max_connections`] client connections at once, at most
//!   [`ServerOptions::max_connections_per_ip`] (`max.connections.per.ip`) from one address.
//!   A connection over either bound is still accepted into the replica reserve (below) if it
//!   has room, else closed at once, as Kafka closes a connection over `max.connections.per.ip`.
//! - [`ServerOptions::connections_max_idle`] (`connections.max.idle.ms`, Kafka's default 10
//!   minutes): a connection that has neither sent a byte nor been answered for that long is
//!   closed, so the slots of clients that went away without closing (a NAT dropped them, a
//!   process froze) come back. A request being handled (a Fetch long-poll) is not idle.
//! - Bytes are buffered only as they arrive, [`READ_CHUNK_BYTES`] at a time.
//!
//! # Replica fetchers never starve behind clients
//! Followers fetch from their leaders on this same listener (Fetch with `replica_id >= 0`),
//! one connection per follower broker. When the client bounds are full, up to
//! [`REPLICA_CONNECTIONS_RESERVED`] more connections are accepted, and each of them may only
//! send replica Fetch requests: any other request closes it. So clients that fill the
//! listener (or one address, such as a host running brokers and clients) cannot stop
//! replication, and what gets past the bounds can only fetch. Caveat: a replica id is not
//! authenticated yet (inter-broker mutual TLS comes later), so a client that claims one can
//! occupy a reserved slot, but only one of a bounded few, and only until it goes idle.
//!
//! # Errors
//! A frame that cannot be decoded (unknown API key, unsupported version, malformed body) or a
//! response that cannot be encoded closes that connection only, after a log line; every other
//! connection carries on. Nothing a client sends can panic the server.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{
    Broker, DEFAULT_CONNECTIONS_MAX_IDLE_MS, DEFAULT_MAX_CONNECTIONS_PER_IP, Reply,
};
use crate::metrics::broker::{CloseReason, RejectReason};
use crate::protocol::frame::{DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError};
use crate::protocol::request::{self, DecodeError, Decoded};
use crate::protocol::response::{self, EncodeError};

/// Most bytes read from a socket at once; a frame's buffer grows by at most this per read.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Default bound on concurrent client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Connections accepted beyond the client bounds for replica fetchers only. A broker has at
/// most one fetcher connection to each leader, and a cluster at most 60 brokers, so 64 leaves
/// every follower a slot.
pub const REPLICA_CONNECTIONS_RESERVED: usize = 64;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// Most client connections served at once; beyond it only the replica reserve is left.
    pub max_connections: usize,
    /// `max.connections.per.ip`: most client connections from one address.
    pub max_connections_per_ip: usize,
    /// `connections.max.idle.ms`: a connection silent this long is closed.
    pub connections_max_idle: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connections_max_idle: Duration::from_millis(DEFAULT_CONNECTIONS_MAX_IDLE_MS),
        }
    }
}

/// What a connection was admitted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Within the client bounds: any request.
    Client,
    /// In the replica reserve: replica Fetch requests only.
    ReplicaOnly,
}

/// Client connections per address; a [`PerIpSlot`] gives its slot back when dropped.
#[derive(Debug, Default)]
struct PerIp {
    /// Open client connections by peer address; entries at zero are removed.
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    /// Takes a slot for `ip` if it has fewer than `max` connections.
    fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let mut counts = self.counts.lock().expect("per-ip lock poisoned");
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(PerIpSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One client connection's slot in [`PerIp`].
#[derive(Debug)]
struct PerIpSlot {
    /// The table to give the slot back to.
    table: Arc<PerIp>,
    /// The peer address.
    ip: IpAddr,
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().expect("per-ip lock poisoned");
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What a connection holds while it is open: its admission and the slots it took.
#[derive(Debug)]
struct Slots {
    /// Client or replica reserve.
    admission: Admission,
    /// A permit of the client or the reserve semaphore.
    _permit: OwnedSemaphorePermit,
    /// The per-address slot (client connections only).
    _per_ip: Option<PerIpSlot>,
}

/// The connection bounds of a listener, shared by the accept loop.
#[derive(Debug)]
struct Admissions {
    /// Client connections ([`ServerOptions::max_connections`]).
    clients: Arc<Semaphore>,
    /// Replica-only connections beyond the client bounds.
    reserve: Arc<Semaphore>,
    /// Client connections per address.
    per_ip: Arc<PerIp>,
    /// [`ServerOptions::max_connections_per_ip`].
    max_per_ip: usize,
}

impl Admissions {
    fn new(options: &ServerOptions) -> Self {
        Self {
            clients: Arc::new(Semaphore::new(options.max_connections)),
            reserve: Arc::new(Semaphore::new(REPLICA_CONNECTIONS_RESERVED)),
            per_ip: Arc::default(),
            max_per_ip: options.max_connections_per_ip,
        }
    }

    /// Admits a connection from `ip` as a client, else into the replica reserve, else says
    /// which client bound it is over.
    fn admit(&self, ip: IpAddr) -> Result<Slots, RejectReason> {
        let per_ip = self.per_ip.try_take(ip, self.max_per_ip);
        let over = if per_ip.is_none() {
            RejectReason::PerIpLimit
        } else {
            RejectReason::ConnectionLimit
        };
        if let Some(per_ip) = per_ip
            && let Ok(permit) = self.clients.clone().try_acquire_owned()
        {
            return Ok(Slots {
                admission: Admission::Client,
                _permit: permit,
                _per_ip: Some(per_ip),
            });
        }
        let permit = self.reserve.clone().try_acquire_owned().map_err(|_| over)?;
        Ok(Slots {
            admission: Admission::ReplicaOnly,
            _permit: permit,
            _per_ip: None,
        })
    }
}

/// When a connection last active at `last_active` becomes idle; a limit too large for the
/// clock (a configured `Long.MAX_VALUE`) means a year, which is never in practice.
fn idle_deadline(last_active: Instant, idle: Duration) -> Instant {
    const NEVER: Duration = Duration::from_secs(365 * 24 * 60 * 60);
    last_active
        .checked_add(idle.min(NEVER))
        .unwrap_or(last_active + NEVER)
}

/// Whether `body` is a Fetch from a follower (a replica id set), the only request a
/// connection in the replica reserve may send.
fn is_replica_fetch(body: &RequestKind) -> bool {
    matches!(body, RequestKind::Fetch(r) if r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0)
}

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("idle for longer than connections.max.idle.ms ({0:?})")]
    Idle(Duration),
    #[error("a connection in the replica reserve sent a request other than a replica Fetch")]
    NotReplicaFetch,
}

impl ConnectionError {
    /// The reason the metrics count the close under.
    fn close_reason(&self) -> CloseReason {
        match self {
            Self::Frame(_) => CloseReason::Frame,
            Self::Decode(_) => CloseReason::Decode,
            Self::Encode(_) => CloseReason::Encode,
            Self::Io(_) => CloseReason::Io,
            Self::Idle(_) => CloseReason::Idle,
            Self::NotReplicaFetch => CloseReason::NotReplicaFetch,
        }
    }
}

/// Serves Kafka clients on `listener` until `shutdown` resolves, then waits for open
/// connections to finish their current request.
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let admissions = Admissions::new(&options);
    let decoder = FrameDecoder::new(options.max_frame_bytes);
    let idle = options.connections_max_idle;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slots = match admissions.admit(peer.ip()) {
            Ok(slots) => slots,
            Err(reason) => {
                tracing::debug!(%peer, ?reason, "refused a connection: connection limits and replica reserve are full");
                if let Some(metrics) = broker.metrics() {
                    metrics.connection_rejected(reason);
                }
                drop(stream);
                continue;
            }
        };
        let broker = broker.clone();
        let decoder = decoder.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let admission = slots.admission;
            let mut open = broker
                .metrics()
                .map(|m| m.connection_opened(admission == Admission::ReplicaOnly));
            let closed = serve(stream, peer, &broker, &decoder, &cancel, idle, admission).await;
            let reason = match closed {
                Ok(reason) => reason,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "closed connection");
                    e.close_reason()
                }
            };
            if let Some(open) = &mut open {
                open.close(reason);
            }
            drop(open);
            drop(slots);
        });
    }
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection until the client closes it, an error closes it, or shutdown; says
/// which of those it was.
///
/// Each request is timed for the metrics from the moment its frame is complete: until its
/// handler starts (queue time), and until its response is written (total time).
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: &Broker,
    decoder: &FrameDecoder,
    cancel: &CancellationToken,
    idle: Duration,
    admission: Admission,
) -> Result<CloseReason, ConnectionError> {
    let metrics = broker.metrics().map(Arc::as_ref);
    stream.set_nodelay(true)?;
    tracing::debug!(%peer, ?admission, "accepted connection");
    let mut buf = BytesMut::with_capacity(4096);
    let mut last_active = Instant::now();
    loop {
        let frame = loop {
            if let Some(frame) = decoder.decode(&mut buf)? {
                break frame;
            }
            buf.reserve(decoder.missing_bytes(&buf).clamp(1, READ_CHUNK_BYTES));
            let read = tokio::select! {
                read = stream.read_buf(&mut buf) => read?,
                _ = tokio::time::sleep_until(idle_deadline(last_active, idle)) => {
                    return Err(ConnectionError::Idle(idle));
                }
                _ = cancel.cancelled() => return Ok(CloseReason::Shutdown),
            };
            if read == 0 {
                return Ok(CloseReason::Client);
            }
            last_active = Instant::now();
        };
        let received = Instant::now();
        let (reply, api) = match request::decode(frame)? {
            Decoded::UnsupportedApiVersions {
                correlation_id,
                version,
            } => {
                tracing::debug!(%peer, version, "ApiVersions version unsupported; answering v0");
                let api = metrics.and_then(|m| m.api_of(ApiKey::ApiVersions));
                if let (Some(metrics), Some(api)) = (metrics, api) {
                    metrics.count_error(api, ResponseError::UnsupportedVersion.code());
                }
                let reply = Some(response::unsupported_api_versions(correlation_id));
                (reply, api.map(|api| (api, Duration::ZERO)))
            }
            Decoded::Request(request) => {
                if admission == Admission::ReplicaOnly && !is_replica_fetch(&request.body) {
                    return Err(ConnectionError::NotReplicaFetch);
                }
                let (api_key, version) = (request.api_key, request.version);
                let correlation_id = request.header.correlation_id;
                let api = metrics.and_then(|m| m.api(api_key, &request.body));
                let queued = received.elapsed();
                let body = tokio::select! {
                    body = broker.handle(*request) => body,
                    _ = cancel.cancelled() => return Ok(CloseReason::Shutdown),
                };
                let api = api.map(|api| (api, queued));
                match body {
                    Reply::Respond(body) => {
                        if let (Some(metrics), Some((api, _))) = (metrics, api) {
                            metrics.count_errors(api, &body);
                        }
                        let bytes = response::encode(correlation_id, api_key, version, &body)?;
                        (Some(bytes), api)
                    }
                    Reply::Silent => (None, api),
                    Reply::Close(reason) => {
                        tracing::debug!(%peer, reason, "closing connection");
                        if let (Some(metrics), Some((api, queued))) = (metrics, api) {
                            metrics.request_done(api, queued, received.elapsed());
                        }
                        return Ok(CloseReason::ProduceFailed);
                    }
                }
            }
        };
        if let Some(bytes) = reply {
            stream.write_all(&bytes).await?;
        }
        if let (Some(metrics), Some((api, queued))) = (metrics, api) {
            metrics.request_done(api, queued, received.elapsed());
        }
        last_active = Instant::now();
    }
}
