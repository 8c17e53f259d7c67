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
//! - [`ServerOptions::max_connections`]: at the bound, accepting waits until a connection
//!   closes (back-pressure on the listen backlog rather than refusal).
//! - Bytes are buffered only as they arrive, [`READ_CHUNK_BYTES`] at a time.
//!
//! # Errors
//! A frame that cannot be decoded (unknown API key, unsupported version, malformed body) or a
//! response that cannot be encoded closes that connection only, after a log line; every other
//! connection carries on. Nothing a client sends can panic the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{Broker, Reply};
use crate::protocol::frame::{DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError};
use crate::protocol::request::{self, DecodeError, Decoded};
use crate::protocol::response::{self, EncodeError};

/// Most bytes read from a socket at once; a frame's buffer grows by at most this per read.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Default bound on concurrent connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// Most connections served at once; accepting waits at the bound.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
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
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let decoder = FrameDecoder::new(options.max_frame_bytes);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("semaphore never closed"),
            _ = &mut shutdown => break,
        };
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
        let broker = broker.clone();
        let decoder = decoder.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            if let Err(e) = serve(stream, peer, &broker, &decoder, &cancel).await {
                tracing::info!(%peer, error = %e, "closed connection");
            }
            drop(permit);
        });
    }
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection until the client closes it, an error closes it, or shutdown.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: &Broker,
    decoder: &FrameDecoder,
    cancel: &CancellationToken,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true)?;
    tracing::debug!(%peer, "accepted connection");
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let frame = loop {
            if let Some(frame) = decoder.decode(&mut buf)? {
                break frame;
            }
            buf.reserve(decoder.missing_bytes(&buf).clamp(1, READ_CHUNK_BYTES));
            let read = tokio::select! {
                read = stream.read_buf(&mut buf) => read?,
                _ = cancel.cancelled() => return Ok(()),
            };
            if read == 0 {
                return Ok(()); // the client closed the connection
            }
        };
        let reply = match request::decode(frame)? {
            Decoded::UnsupportedApiVersions {
                correlation_id,
                version,
            } => {
                tracing::debug!(%peer, version, "ApiVersions version unsupported; answering v0");
                Some(response::unsupported_api_versions(correlation_id))
            }
            Decoded::Request(request) => {
                let (api_key, version) = (request.api_key, request.version);
                let correlation_id = request.header.correlation_id;
                let body = tokio::select! {
                    body = broker.handle(*request) => body,
                    _ = cancel.cancelled() => return Ok(()),
                };
                match body {
                    Reply::Respond(body) => {
                        Some(response::encode(correlation_id, api_key, version, &body)?)
                    }
                    Reply::Silent => None,
                    Reply::Close(reason) => {
                        tracing::debug!(%peer, reason, "closing connection");
                        return Ok(());
                    }
                }
            }
        };
        if let Some(bytes) = reply {
            stream.write_all(&bytes).await?;
        }
    }
}
