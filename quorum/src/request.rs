//! The requests a [`QuorumHandle`](crate::QuorumHandle) and the gRPC `Raft.Propose` service
//! send to the node task over its client queue.
//!
//! Both the tokio shell ([`server`](crate::server)) and the transport
//! ([`transport`](crate::transport)) produce these, and only the node task consumes them, so
//! the type lives apart from both and neither imports the other for it.

use tokio::sync::oneshot;

use crate::{Result, Status};

/// A request from a handle (or the gRPC Propose service) to the node task.
pub(crate) enum ClientRequest {
    /// Propose a command; the reply comes when it is applied or refused.
    Propose {
        /// The command.
        command: Vec<u8>,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
    /// Run a linearizable read.
    Read {
        /// The query for [`StateMachine::query`](crate::StateMachine::query).
        query: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
    /// Report the node's status.
    Status {
        /// Where the status goes.
        reply: oneshot::Sender<Status>,
    },
}
