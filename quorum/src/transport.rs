//! gRPC transport between the voters: the `ferry.quorum.v1.Raft` service and one sender task
//! per peer.
//!
//! # Wire format
//!
//! ```text
//! Raft.Send(SendRequest { messages: [eraftpb.Message protobuf bytes, ...] }) -> SendResponse
//! RaftSnapshot.Send(stream SnapshotChunk { message (first only), data_bytes (first only), data })
//!     -> SendResponse
//! Raft.Propose(ProposeRequest { command, timeout_ms }) -> ProposeResponse { response | error }
//! ```
//!
//! Each peer gets a bounded queue ([`crate::Options::peer_queue_capacity`]) drained by one
//! task that sends batches of up to [`PEER_BATCH_MESSAGES_MAX`] messages with one unary call at
//! a time, so messages to a peer arrive in order. A snapshot message leaves the batch and goes
//! alone through `RaftSnapshot.Send`, its data cut into chunks of
//! [`crate::Options::snapshot_chunk_bytes`], so the state is not capped by one gRPC message;
//! whether that call succeeded is raft's snapshot report. A failed call is reported to raft as
//! "unreachable" and the task pauses for [`PEER_RETRY_BACKOFF`]; raft retransmits whatever was
//! lost.
//!
//! Inbound messages are decoded and checked to be addressed to this voter before they reach
//! the node; malformed input is refused with a status, never a panic. A chunked snapshot is
//! reassembled only up to its announced size, which is checked against
//! [`crate::Options::snapshot_bytes_max`] before anything is allocated, and stepped only once
//! complete. The node then drops messages from non-voters, of types voters do not exchange,
//! and every message that would trip one of raft-rs's fatal checks (see
//! [`crate::node`](crate::node#inbound-messages)), logging the sender: a voter that sends
//! impossible messages is not obeyed and cannot make this one panic. A voter is still trusted
//! with what raft trusts its peers with (a forged heartbeat within the log can advance the
//! commit index); only authenticated peers may reach this service.
//!
//! With [`crate::Options::tls`] set, only voters reach the services at all: the listener
//! requires a client certificate chained to the CA, a policy layer lets only identities that
//! map to a voter call `Raft/*` and `RaftSnapshot/*`, and both refuse a message whose `from`
//! is not the caller's own voter id.

use std::time::Duration;

use bytes::Bytes;
use ferry_proto::quorum::v1 as pb;
use ferry_proto::quorum::v1::propose_error::Kind;
use ferry_proto::quorum::v1::raft_client::RaftClient;
use ferry_proto::quorum::v1::raft_snapshot_client::RaftSnapshotClient;
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::request::ClientRequest;
use crate::{Error, RaftId, Result};

/// The gRPC path prefix of every service of the quorum's package (`Raft` and any other
/// service between voters): with TLS, only voters may call them.
pub const QUORUM_PACKAGE_PREFIX: &str = "/ferry.quorum.v1.";

/// Most raft messages sent to one peer in one `Raft.Send` call.
pub const PEER_BATCH_MESSAGES_MAX: usize = 64;
/// Pause after a failed `Raft.Send` before the next attempt to that peer.
pub const PEER_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long one `Raft.Send` call may take before it counts as failed.
pub const PEER_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one `RaftSnapshot.Send` call (every chunk of one snapshot) may take before it
/// counts as failed; raft then retries with a fresh snapshot. Messages to that peer wait in its
/// queue meanwhile (and are dropped at its bound, like any).
pub const PEER_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);

/// What a peer sender tells the node task about delivery.
#[derive(Debug)]
pub(crate) enum Feedback {
    /// A call to this peer failed.
    Unreachable(RaftId),
    /// A snapshot message to this peer was delivered (`true`) or lost (`false`).
    Snapshot(RaftId, bool),
}

/// Encodes a raft message for the wire.
pub fn encode_message(msg: &Message) -> Vec<u8> {
    msg.write_to_bytes()
        .expect("encoding a raft Message cannot fail")
}

/// Decodes a raft message from the wire.
pub fn decode_message(bytes: &[u8]) -> Result<Message> {
    Message::parse_from_bytes(bytes)
        .map_err(|err| Error::Corrupt(format!("bad raft message: {err}")))
}

/// How one peer sender cuts batches and snapshots; from [`crate::Options`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct SnapshotLimits {
    /// Largest gRPC message: a batch of plain messages is split to stay below it.
    pub(crate) message_bytes_max: usize,
    /// Bytes of snapshot data per chunk.
    pub(crate) chunk_bytes: usize,
    /// Largest snapshot data sent or accepted.
    pub(crate) bytes_max: usize,
}

/// The clients of one peer's two services, over one channel.
#[derive(Clone, Debug)]
pub(crate) struct PeerClient {
    /// `ferry.quorum.v1.Raft`.
    pub(crate) raft: RaftClient<Channel>,
    /// `ferry.quorum.v1.RaftSnapshot`.
    pub(crate) snapshots: RaftSnapshotClient<Channel>,
}

/// Sends the messages queued for `peer` until the queue's sender (the node task) is dropped.
pub(crate) async fn run_peer(
    peer: RaftId,
    client: PeerClient,
    mut queue: mpsc::Receiver<Message>,
    feedback: mpsc::Sender<Feedback>,
    limits: SnapshotLimits,
) {
    let PeerClient {
        raft: mut client,
        snapshots: mut snapshot_client,
    } = client;
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < PEER_BATCH_MESSAGES_MAX {
            match queue.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        // Messages before a snapshot go first, then the snapshot alone, then the rest: the
        // order raft produced them in.
        let mut plain = Vec::new();
        let mut delivered = true;
        for msg in batch {
            if msg.get_msg_type() != MessageType::MsgSnapshot {
                plain.push(msg);
                continue;
            }
            if !plain.is_empty() {
                let batch = std::mem::take(&mut plain);
                delivered &= send_batch(peer, &mut client, batch, limits).await;
            }
            let ok = send_snapshot(peer, &mut snapshot_client, msg, limits).await;
            delivered &= ok;
            // The node task drains feedback continuously; if it is gone, so is the reason to
            // send.
            if feedback.send(Feedback::Snapshot(peer, ok)).await.is_err() {
                return;
            }
        }
        if !plain.is_empty() {
            delivered &= send_batch(peer, &mut client, plain, limits).await;
        }
        if !delivered {
            if feedback.send(Feedback::Unreachable(peer)).await.is_err() {
                return;
            }
            tokio::time::sleep(PEER_RETRY_BACKOFF).await;
        }
    }
}

/// Sends a batch of messages with `Raft.Send`, in as many calls as keep each request below
/// half of the message size limit; whether all were delivered (it stops at the first failure).
async fn send_batch(
    peer: RaftId,
    client: &mut RaftClient<Channel>,
    batch: Vec<Message>,
    limits: SnapshotLimits,
) -> bool {
    let bound = limits.message_bytes_max / 2;
    let mut encoded = batch.iter().map(encode_message).peekable();
    while encoded.peek().is_some() {
        let mut messages = Vec::new();
        let mut bytes = 0;
        while let Some(next) = encoded.next_if(|m| messages.is_empty() || bytes + m.len() <= bound)
        {
            bytes += next.len();
            messages.push(next);
        }
        let request = pb::SendRequest { messages };
        let result = tokio::time::timeout(PEER_SEND_TIMEOUT, client.send(request)).await;
        if !matches!(result, Ok(Ok(_))) {
            tracing::debug!(peer, ?result, "raft send failed");
            return false;
        }
    }
    true
}

/// Sends one MsgSnapshot in chunks with `RaftSnapshot.Send`; whether it was delivered.
async fn send_snapshot(
    peer: RaftId,
    client: &mut RaftSnapshotClient<Channel>,
    mut msg: Message,
    limits: SnapshotLimits,
) -> bool {
    let data = std::mem::take(&mut msg.mut_snapshot().data);
    if data.len() > limits.bytes_max {
        tracing::error!(
            peer,
            bytes = data.len(),
            max = limits.bytes_max,
            "the snapshot is larger than snapshot_bytes_max: the peer cannot catch up"
        );
        return false;
    }
    let chunks = snapshot_chunks(&msg, data, limits.chunk_bytes);
    let call = client.send(futures::stream::iter(chunks));
    let result = tokio::time::timeout(PEER_SNAPSHOT_TIMEOUT, call).await;
    let delivered = matches!(result, Ok(Ok(_)));
    if !delivered {
        tracing::warn!(peer, ?result, "raft snapshot send failed");
    }
    delivered
}

/// Cuts a snapshot message (its data taken out as `data`) into the chunks of
/// `RaftSnapshot.Send`: the first carries the message and the total size, each carries up to
/// `chunk_bytes` of data (at least one chunk, even for empty data). Chunks are made as the
/// stream is polled, so only a few are in memory at once.
pub fn snapshot_chunks(
    msg: &Message,
    data: Bytes,
    chunk_bytes: usize,
) -> impl Iterator<Item = pb::SnapshotChunk> + Send + 'static {
    let chunk_bytes = chunk_bytes.max(1);
    let count = data.len().div_ceil(chunk_bytes).max(1);
    let mut first = Some((encode_message(msg), data.len() as u64));
    (0..count).map(move |i| {
        let start = i * chunk_bytes;
        let end = (start + chunk_bytes).min(data.len());
        let (message, data_bytes) = first.take().unwrap_or_default();
        pb::SnapshotChunk {
            message,
            data_bytes,
            data: data[start..end].to_vec(),
        }
    })
}

/// Reassembles a snapshot message from its chunks, refusing (before allocating) a total over
/// `bytes_max`, any chunk over `chunk_bytes`, and data past the announced total or short of it.
async fn receive_snapshot(
    mut chunks: tonic::Streaming<pb::SnapshotChunk>,
    chunk_bytes: usize,
    bytes_max: usize,
) -> std::result::Result<Message, Status> {
    let bad = |text: String| Status::invalid_argument(text);
    let Some(first) = chunks.message().await? else {
        return Err(bad("a snapshot stream without chunks".into()));
    };
    let mut msg =
        decode_message(&first.message).map_err(|err| Status::invalid_argument(err.to_string()))?;
    if msg.get_msg_type() != MessageType::MsgSnapshot || !msg.get_snapshot().data.is_empty() {
        return Err(bad(
            "the first chunk must carry a MsgSnapshot without data".into()
        ));
    }
    let total = first.data_bytes;
    if total > bytes_max as u64 {
        return Err(bad(format!(
            "a snapshot of {total} bytes is over this voter's maximum of {bytes_max}"
        )));
    }
    let total = total as usize;
    let mut data = Vec::with_capacity(total.min(chunk_bytes));
    let mut next = Some(first);
    while let Some(chunk) = next {
        if chunk.data.len() > chunk_bytes {
            return Err(bad(format!(
                "a chunk of {} bytes is over the chunk size of {chunk_bytes}",
                chunk.data.len()
            )));
        }
        if chunk.data.len() > total - data.len() {
            return Err(bad(format!(
                "snapshot data past the announced {total} bytes"
            )));
        }
        data.extend_from_slice(&chunk.data);
        next = chunks.message().await?;
    }
    if data.len() != total {
        return Err(bad(format!(
            "the snapshot stream ended after {} of {total} bytes",
            data.len()
        )));
    }
    msg.mut_snapshot().data = data.into();
    Ok(msg)
}

/// The `ferry.quorum.v1.Raft` and `RaftSnapshot` services of one voter.
#[derive(Clone)]
pub struct RaftService {
    /// This voter's id: inbound messages must be addressed to it.
    id: RaftId,
    /// Into the node task's inbound queue.
    inbound: mpsc::Sender<Message>,
    /// Into the node task's client request queue (for forwarded proposals).
    requests: mpsc::Sender<ClientRequest>,
    /// Cap on a forwarded proposal's wait.
    propose_timeout: Duration,
    /// Largest chunk and total of an inbound snapshot.
    snapshot_limits: SnapshotLimits,
    /// With mutual TLS: the voter a caller's verified identity is. Each message a caller sends
    /// must come `from` that voter, so one voter cannot speak for another.
    voter_of: Option<crate::VoterOf>,
}

impl RaftService {
    /// A service feeding the node task through these queues.
    pub(crate) fn new(
        id: RaftId,
        inbound: mpsc::Sender<Message>,
        requests: mpsc::Sender<ClientRequest>,
        propose_timeout: Duration,
        snapshot_limits: SnapshotLimits,
    ) -> Self {
        RaftService {
            id,
            inbound,
            requests,
            propose_timeout,
            snapshot_limits,
            voter_of: None,
        }
    }

    /// Requires each inbound message to come from the caller's own voter id (mutual TLS).
    pub(crate) fn with_voter_of(mut self, voter_of: Option<crate::VoterOf>) -> Self {
        self.voter_of = voter_of;
        self
    }

    /// The voter id the caller may send as, when the transport is authenticated.
    fn sender<T>(&self, request: &Request<T>) -> std::result::Result<Option<RaftId>, Status> {
        let Some(voter_of) = &self.voter_of else {
            return Ok(None);
        };
        let peer = ferry_identity::peer_identity(request)?;
        match voter_of(&peer) {
            Some(id) => Ok(Some(id)),
            None => Err(Status::permission_denied(format!("{peer} is not a voter"))),
        }
    }

    /// Queues decoded messages for the node task, all or (at the first failure) the rest not.
    fn enqueue(&self, messages: Vec<Message>) -> std::result::Result<(), Status> {
        for msg in messages {
            if msg.to != self.id {
                let text = format!("message for node {} reached node {}", msg.to, self.id);
                return Err(Status::invalid_argument(text));
            }
            match self.inbound.try_send(msg) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(Status::resource_exhausted("inbound raft queue is full"));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(Status::unavailable("the quorum node has stopped"));
                }
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn send(
        &self,
        request: Request<pb::SendRequest>,
    ) -> std::result::Result<Response<pb::SendResponse>, Status> {
        let sender = self.sender(&request)?;
        let mut messages = Vec::new();
        for bytes in request.into_inner().messages {
            let msg =
                decode_message(&bytes).map_err(|err| Status::invalid_argument(err.to_string()))?;
            if msg.to != self.id {
                let text = format!("message for node {} reached node {}", msg.to, self.id);
                return Err(Status::invalid_argument(text));
            }
            if let Some(sender) = sender
                && msg.from != sender
            {
                let text = format!("voter {sender} sent a message from node {}", msg.from);
                return Err(Status::permission_denied(text));
            }
            messages.push(msg);
        }
        self.enqueue(messages)?;
        Ok(Response::new(pb::SendResponse {}))
    }

    async fn propose(
        &self,
        request: Request<pb::ProposeRequest>,
    ) -> std::result::Result<Response<pb::ProposeResponse>, Status> {
        let request = request.into_inner();
        let timeout = Duration::from_millis(request.timeout_ms).min(self.propose_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let result = propose_local(&self.requests, request.command, deadline).await;
        Ok(Response::new(propose_response(result)))
    }
}

#[tonic::async_trait]
impl pb::raft_snapshot_server::RaftSnapshot for RaftService {
    async fn send(
        &self,
        request: Request<tonic::Streaming<pb::SnapshotChunk>>,
    ) -> std::result::Result<Response<pb::SendResponse>, Status> {
        let sender = self.sender(&request)?;
        let limits = self.snapshot_limits;
        let msg =
            receive_snapshot(request.into_inner(), limits.chunk_bytes, limits.bytes_max).await?;
        if let Some(sender) = sender
            && msg.from != sender
        {
            let text = format!("voter {sender} sent a snapshot from node {}", msg.from);
            return Err(Status::permission_denied(text));
        }
        self.enqueue(vec![msg])?;
        Ok(Response::new(pb::SendResponse {}))
    }
}

/// Proposes through the local node task, waiting until `deadline`. Does not forward.
pub(crate) async fn propose_local(
    requests: &mpsc::Sender<ClientRequest>,
    command: Vec<u8>,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>> {
    let (reply, outcome) = oneshot::channel();
    let request = ClientRequest::Propose { command, reply };
    match tokio::time::timeout_at(deadline, requests.send(request)).await {
        Err(_) => {
            return Err(Error::Unavailable(
                "the node's request queue stayed full".into(),
            ));
        }
        Ok(Err(_)) => return Err(Error::Stopped),
        Ok(Ok(())) => {}
    }
    match tokio::time::timeout_at(deadline, outcome).await {
        Err(_) => Err(Error::Indeterminate(
            "timed out waiting for the commit".into(),
        )),
        Ok(Err(_)) => Err(Error::Stopped),
        Ok(Ok(result)) => result,
    }
}

/// Proposes on `leader` over gRPC, waiting until `deadline`.
pub(crate) async fn propose_remote(
    mut client: RaftClient<Channel>,
    command: Vec<u8>,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>> {
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let request = pb::ProposeRequest {
        command,
        timeout_ms: remaining.as_millis() as u64,
    };
    match tokio::time::timeout_at(deadline, client.propose(request)).await {
        Err(_) => Err(Error::Indeterminate(
            "timed out waiting for the leader".into(),
        )),
        Ok(Err(status)) if never_sent(&status) => Err(Error::Unavailable(format!(
            "cannot reach the leader: {}",
            status.message()
        ))),
        Ok(Err(status)) => Err(Error::Indeterminate(format!("forwarding failed: {status}"))),
        Ok(Ok(response)) => propose_result(response.into_inner()),
    }
}

/// Whether a failed call certainly never reached the server: the connection was refused.
fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// Encodes a proposal's outcome for the wire.
fn propose_response(result: Result<Vec<u8>>) -> pb::ProposeResponse {
    use pb::propose_response::Outcome;
    let (kind, leader_hint) = match &result {
        Ok(response) => {
            return pb::ProposeResponse {
                outcome: Some(Outcome::Response(response.clone())),
            };
        }
        Err(Error::NotLeader { leader_hint }) => (Kind::NotLeader, leader_hint.unwrap_or(0)),
        Err(Error::Unavailable(_)) => (Kind::Unavailable, 0),
        Err(Error::Indeterminate(_)) => (Kind::Indeterminate, 0),
        Err(Error::InvalidInput(_)) => (Kind::InvalidInput, 0),
        Err(Error::Stopped) => (Kind::Stopped, 0),
        Err(Error::Io(_) | Error::Corrupt(_)) => (Kind::Internal, 0),
    };
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    let error = pb::ProposeError {
        kind: kind as i32,
        leader_hint,
        message,
    };
    pb::ProposeResponse {
        outcome: Some(Outcome::Error(error)),
    }
}

/// Decodes a proposal's outcome from the wire.
fn propose_result(response: pb::ProposeResponse) -> Result<Vec<u8>> {
    use pb::propose_response::Outcome;
    let error = match response.outcome {
        Some(Outcome::Response(bytes)) => return Ok(bytes),
        Some(Outcome::Error(error)) => error,
        None => {
            return Err(Error::Indeterminate(
                "the leader sent an empty outcome".into(),
            ));
        }
    };
    let message = format!("at the leader: {}", error.message);
    Err(
        match Kind::try_from(error.kind).unwrap_or(Kind::Unspecified) {
            Kind::NotLeader => Error::NotLeader {
                leader_hint: Some(error.leader_hint).filter(|id| *id != 0),
            },
            Kind::Unavailable => Error::Unavailable(message),
            Kind::InvalidInput => Error::InvalidInput(message),
            Kind::Indeterminate | Kind::Stopped | Kind::Internal | Kind::Unspecified => {
                Error::Indeterminate(message)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        let cases = vec![
            Ok(b"done".to_vec()),
            Err(Error::NotLeader {
                leader_hint: Some(3),
            }),
            Err(Error::NotLeader { leader_hint: None }),
            Err(Error::Unavailable("x".into())),
            Err(Error::Indeterminate("x".into())),
            Err(Error::InvalidInput("x".into())),
        ];
        for case in cases {
            let want = format!("{:?}", case.as_ref().map_err(std::mem::discriminant));
            let got = propose_result(propose_response(case));
            assert_eq!(
                format!("{:?}", got.as_ref().map_err(std::mem::discriminant)),
                want
            );
        }
        let hint = propose_result(propose_response(Err(Error::NotLeader {
            leader_hint: Some(3),
        })));
        assert!(matches!(
            hint,
            Err(Error::NotLeader {
                leader_hint: Some(3)
            })
        ));
    }

    #[test]
    fn snapshot_chunks_carry_the_message_once_and_the_data_in_order() {
        let mut msg = Message {
            to: 2,
            from: 1,
            ..Default::default()
        };
        msg.set_msg_type(MessageType::MsgSnapshot);
        let data = Bytes::from((0..10u8).collect::<Vec<_>>());
        let chunks: Vec<_> = snapshot_chunks(&msg, data.clone(), 4).collect();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.data.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(decode_message(&chunks[0].message).unwrap(), msg);
        assert_eq!(chunks[0].data_bytes, 10);
        assert!(
            chunks[1..]
                .iter()
                .all(|c| c.message.is_empty() && c.data_bytes == 0)
        );
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, data);
        let empty: Vec<_> = snapshot_chunks(&msg, Bytes::new(), 4).collect();
        assert_eq!((empty.len(), empty[0].data_bytes), (1, 0));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode_message(&[0xff, 0xff, 0xff]).is_err());
        let mut msg = Message {
            to: 2,
            from: 1,
            ..Default::default()
        };
        msg.set_msg_type(MessageType::MsgHeartbeat);
        assert_eq!(decode_message(&encode_message(&msg)).unwrap(), msg);
    }
}
