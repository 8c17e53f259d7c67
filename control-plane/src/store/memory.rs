//! [`MemoryStore`]: the store's state machine behind a mutex, for tests.
//!
//! Commands go through the same JSON bytes and [`StateMachine::apply`] as on the quorum, with
//! log indexes counted locally, so behaviour (ids included) matches a fresh quorum store fed
//! the same commands. The clock is the system's unless a test pins it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use ferry_quorum::StateMachine;

use super::state::{self, Command, Query, Response, State};
use super::{Result, Store};
use crate::model::TimestampMs;

/// An in-memory [`Store`]. See the module docs.
#[derive(Debug)]
pub struct MemoryStore {
    /// The state; the lock is held only while applying or answering, never across an await.
    state: Mutex<State>,
    /// A pinned clock in ms, or [`SYSTEM_CLOCK`] for the system clock.
    pinned_now_ms: AtomicI64,
}

/// The value of [`MemoryStore::pinned_now_ms`] meaning "use the system clock".
const SYSTEM_CLOCK: i64 = i64::MIN;

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        MemoryStore {
            state: Mutex::new(State::new()),
            pinned_now_ms: AtomicI64::new(SYSTEM_CLOCK),
        }
    }

    /// Pins the clock at `now_ms` (for deterministic timestamps in tests).
    pub fn set_now_ms(&self, now_ms: TimestampMs) {
        assert_ne!(now_ms, SYSTEM_CLOCK, "that value means the system clock");
        self.pinned_now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// A copy of the whole state (for tests comparing states).
    pub fn state(&self) -> State {
        self.state.lock().expect("store lock poisoned").clone()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl Store for MemoryStore {
    async fn execute(&self, command: Command) -> Result<Response> {
        let bytes = state::encode_command(&command);
        let response = {
            let mut state = self.state.lock().expect("store lock poisoned");
            let index = state.applied_index() + 1;
            state.apply(index, &bytes)
        };
        state::decode_response(&response)
    }

    async fn query(&self, query: Query) -> Result<Response> {
        let bytes = state::encode_query(&query);
        let response =
            StateMachine::query(&*self.state.lock().expect("store lock poisoned"), &bytes);
        state::decode_response(&response)
    }

    fn now_ms(&self) -> TimestampMs {
        match self.pinned_now_ms.load(Ordering::SeqCst) {
            SYSTEM_CLOCK => super::quorum::system_now_ms(),
            pinned => pinned,
        }
    }
}
