//! The crate's one error type: categories a caller acts on, not the places errors come from.
//!
//! | variant | was the command applied? | what to do |
//! |---|---|---|
//! | [`Error::NotLeader`] | no | retry at `leader_hint` (the handle does this itself) |
//! | [`Error::Unavailable`] | no | retry later: no leader, queue full, timed out before the log |
//! | [`Error::Indeterminate`] | maybe | read back, or retry only if the command is idempotent |
//! | [`Error::InvalidInput`] | no | fix the request |
//! | [`Error::Stopped`] | maybe | the local node is gone; use another one |
//! | [`Error::Io`], [`Error::Corrupt`] | maybe | the node stopped; an operator must look |

use crate::RaftId;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the quorum, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This node is not the leader, so it refused the proposal before it entered the log.
    #[error("this node is not the leader{}", match leader_hint {
        Some(id) => format!("; node {id} is"),
        None => String::new(),
    })]
    NotLeader {
        /// The leader this node believes in, if it knows one.
        leader_hint: Option<RaftId>,
    },
    /// The quorum cannot serve the request now (no leader, no majority, a full queue, or a
    /// timeout before the command entered the log). Nothing was applied; retrying is safe.
    #[error("the quorum is unavailable: {0}")]
    Unavailable(String),
    /// The command entered the log but its fate is unknown (leadership changed, or the caller's
    /// timeout expired first). It may still be applied.
    #[error("the outcome of the proposal is unknown: {0}")]
    Indeterminate(String),
    /// The request is malformed (for example an empty command, or invalid options).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The node was shut down (or failed) while the request was in flight.
    #[error("the quorum node has stopped")]
    Stopped,
    /// A disk operation failed. The node stops: raft cannot continue safely after a failed
    /// write or fsync, so it must restart from what is on disk.
    #[error("disk I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// Data on disk or from a peer failed validation (bad CRC, bad length, impossible index).
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl Error {
    /// Whether retrying the same request is safe and may succeed: the command was certainly
    /// not applied.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::NotLeader { .. } | Error::Unavailable(_))
    }
}

impl From<raft::Error> for Error {
    /// Maps raft-rs errors. Storage errors only come from our own storage, which reports its
    /// I/O failures through [`Error::Io`] before raft sees them, so the rest are bugs or
    /// corruption.
    fn from(err: raft::Error) -> Self {
        match err {
            raft::Error::ProposalDropped => {
                Error::Unavailable("raft dropped the proposal (no leader or transfer)".into())
            }
            raft::Error::Io(io) => Error::Io(io),
            raft::Error::ConfigInvalid(msg) => Error::InvalidInput(msg),
            other => Error::Corrupt(other.to_string()),
        }
    }
}
