//! gRPC transport between the voters: the `ferry.quorum.v1.Raft` service and one sender task
//! per peer.
//!
//! # Wire format
//!
//! ```text
//! Raft.Send(SendRequest { messages: [eraftpb.Message protobuf bytes, ...] }) -> SendResponse
//! Raft.Propose(ProposeRequest { command, timeout_ms }) -> ProposeResponse { response | error }
//! ```
//!
//! Each peer gets a bounded queue ([`crate::Options::peer_queue_capacity`]) drained by one
//! task that sends batches of up to [`PEER_BATCH_MESSAGES_MAX`] messages with one unary call at
//! a time, so messages to a peer arrive in order. A failed call is reported to raft as
//! "unreachable" (and a snapshot in it as failed) and the task pauses for
//! [`PEER_RETRY_BACKOFF`]; raft retransmits whatever was lost.
//!
//! Inbound messages are decoded and checked to be addressed to this voter before they reach
//! the node (which also drops messages from non-voters and local-only message types);
//! malformed input is refused with a status, never a panic.
//!
//! With [`crate::Options::tls`] set, only voters reach the service at all: the listener
//! requires a client certificate chained to the CA, a policy layer lets only identities that
//! map to a voter call `Raft/*`, and `Send` refuses a message whose `from` is not the caller's
//! own voter id. Voters are otherwise trusted.

use std::time::Duration;

use ferry_proto::quorum::v1 as pb;
use ferry_proto::quorum::v1::propose_error::Kind;
use ferry_proto::quorum::v1::raft_client::RaftClient;
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::server::ClientRequest;
use crate::{Error, NodeId, Result};

/// The gRPC path prefix of every service of the quorum's package (`Raft` and any other
/// service between voters): with TLS, only voters may call them.
pub const QUORUM_PACKAGE_PREFIX: &str = "/ferry.quorum.v1.";

/// Most raft messages sent to one peer in one `Raft.Send` call.
pub const PEER_BATCH_MESSAGES_MAX: usize = 64;
/// Pause after a failed `Raft.Send` before the next attempt to that peer.
pub const PEER_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long one `Raft.Send` call may take before it counts as failed.
pub const PEER_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What a peer sender tells the node task about delivery.
#[derive(Debug)]
pub(crate) enum Feedback {
    /// A call to this peer failed.
    Unreachable(NodeId),
    /// A snapshot message to this peer was delivered (`true`) or lost (`false`).
    Snapshot(NodeId, bool),
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

/// Sends the messages queued for `peer` until the queue's sender (the node task) is dropped.
pub(crate) async fn run_peer(
    peer: NodeId,
    mut client: RaftClient<Channel>,
    mut queue: mpsc::Receiver<Message>,
    feedback: mpsc::Sender<Feedback>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < PEER_BATCH_MESSAGES_MAX {
            match queue.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        let snapshots = batch
            .iter()
            .filter(|m| m.get_msg_type() == MessageType::MsgSnapshot)
            .count();
        let request = pb::SendRequest {
            messages: batch.iter().map(encode_message).collect(),
        };
        let result = tokio::time::timeout(PEER_SEND_TIMEOUT, client.send(request)).await;
        let delivered = matches!(result, Ok(Ok(_)));
        if !delivered {
            tracing::debug!(peer, ?result, "raft send failed");
        }
        // The node task drains feedback continuously; if it is gone, so is the reason to send.
        for _ in 0..snapshots {
            if feedback
                .send(Feedback::Snapshot(peer, delivered))
                .await
                .is_err()
            {
                return;
            }
        }
        if !delivered {
            if feedback.send(Feedback::Unreachable(peer)).await.is_err() {
                return;
            }
            tokio::time::sleep(PEER_RETRY_BACKOFF).await;
        }
    }
}

/// The `ferry.quorum.v1.Raft` service of one voter.
pub struct RaftService {
    /// This voter's id: inbound messages must be addressed to it.
    id: NodeId,
    /// Into the node task's inbound queue.
    inbound: mpsc::Sender<Message>,
    /// Into the node task's client request queue (for forwarded proposals).
    requests: mpsc::Sender<ClientRequest>,
    /// Cap on a forwarded proposal's wait.
    propose_timeout: Duration,
    /// With mutual TLS: the voter a caller's verified identity is. Each message a caller sends
    /// must come `from` that voter, so one voter cannot speak for another.
    voter_of: Option<crate::VoterOf>,
}

impl RaftService {
    /// A service feeding the node task through these queues.
    pub(crate) fn new(
        id: NodeId,
        inbound: mpsc::Sender<Message>,
        requests: mpsc::Sender<ClientRequest>,
        propose_timeout: Duration,
    ) -> Self {
        RaftService {
            id,
            inbound,
            requests,
            propose_timeout,
            voter_of: None,
        }
    }

    /// Requires each inbound message to come from the caller's own voter id (mutual TLS).
    pub(crate) fn with_voter_of(mut self, voter_of: Option<crate::VoterOf>) -> Self {
        self.voter_of = voter_of;
        self
    }

    /// The voter id the caller may send as, when the transport is authenticated.
    fn sender(
        &self,
        request: &Request<pb::SendRequest>,
    ) -> std::result::Result<Option<NodeId>, Status> {
        let Some(voter_of) = &self.voter_of else {
            return Ok(None);
        };
        let peer = ferry_identity::peer_identity(request)?;
        match voter_of(&peer) {
            Some(id) => Ok(Some(id)),
            None => Err(Status::permission_denied(format!("{peer} is not a voter"))),
        }
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
        for msg in messages {
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
