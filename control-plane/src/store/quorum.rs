//! [`QuorumStore`]: the store replicated by `ferry-quorum`.
//!
//! Commands are proposed through a [`QuorumHandle`] (forwarded to the leader from a follower)
//! and answered once applied; queries are linearizable ReadIndex reads. The state machine is
//! [`State`]; start the quorum with `State::new()` and wrap its handle:
//!
//! ```text
//! let handle = Quorum::start(options, State::new(), dir, listener).await?;
//! let store = QuorumStore::new(handle);
//! ```
//!
//! Durability is the quorum's: the log and snapshots on disk rebuild the state on restart.
//! Reconcilers run only where [`QuorumStore::is_leader`] holds and resume
//! [`super::Store::active_operations`] when they take over.

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_quorum::{QuorumHandle, Role};

#[cfg(doc)]
use super::state::State;
use super::state::{self, Command, Query, Response};
use super::{Result, Store};
use crate::model::TimestampMs;

/// The system clock in ms since the Unix epoch.
pub(crate) fn system_now_ms() -> TimestampMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as TimestampMs)
        .unwrap_or(0)
}

/// A [`Store`] on a running quorum member. Cheap to clone.
#[derive(Clone)]
pub struct QuorumStore {
    /// The local quorum member.
    handle: QuorumHandle,
}

impl QuorumStore {
    /// Wraps the handle of a quorum started with the store's [`State`].
    pub fn new(handle: QuorumHandle) -> Self {
        QuorumStore { handle }
    }

    /// The underlying quorum handle (for status and shutdown).
    pub fn handle(&self) -> &QuorumHandle {
        &self.handle
    }

    /// Whether the local member is the quorum's leader now (reconcilers run only there).
    pub async fn is_leader(&self) -> Result<bool> {
        Ok(self.handle.status().await?.role == Role::Leader)
    }
}

impl Store for QuorumStore {
    async fn execute(&self, command: Command) -> Result<Response> {
        let response = self.handle.propose(state::encode_command(&command)).await?;
        state::decode_response(&response)
    }

    async fn query(&self, query: Query) -> Result<Response> {
        let response = self.handle.read(state::encode_query(&query)).await?;
        state::decode_response(&response)
    }

    fn now_ms(&self) -> TimestampMs {
        system_now_ms()
    }
}
