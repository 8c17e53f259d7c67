//! [`Options`]: everything a quorum member is told by its caller, with defaults and checks.
//!
//! Timing is in ticks of [`Options::tick_interval`]: with the defaults a follower starts an
//! election after 10–20 ticks (1–2 s) without hearing from a leader, and a leader sends a
//! heartbeat every 2 ticks (200 ms). This matches KRaft's `controller.quorum.election.timeout.ms`
//! of 1000 ms. A leader that hears from no majority for an election timeout steps down
//! (check_quorum), and a node only campaigns after a pre-vote round shows it could win
//! (pre_vote), so a partitioned node does not disrupt the quorum when it returns.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferry_identity::{Identity, Policy, TlsMaterial};

use crate::{Error, RaftId, Result};

/// Default time between two raft ticks.
pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_millis(100);
/// Default ticks a follower waits for a leader before it (pre-)campaigns.
pub const DEFAULT_ELECTION_TICK: usize = 10;
/// Default ticks between two leader heartbeats.
pub const DEFAULT_HEARTBEAT_TICK: usize = 2;

// raft-rs requires heartbeat < election and suggests election ≈ 10 × heartbeat; at least 5
// heartbeats per election timeout keeps one or two lost heartbeats from causing an election.
const _: () = assert!(DEFAULT_HEARTBEAT_TICK < DEFAULT_ELECTION_TICK);
const _: () = assert!(DEFAULT_ELECTION_TICK >= 5 * DEFAULT_HEARTBEAT_TICK);

/// Default bound of the queue of client requests (propose, read, status) into the node task.
/// At the bound a caller waits, up to its own timeout, then gets [`Error::Unavailable`].
pub const CLIENT_QUEUE_CAPACITY: usize = 1024;
/// Default bound of each per-peer outbound queue of raft messages. At the bound new messages
/// to that peer are dropped and raft is told the peer is unreachable (it then probes slowly).
pub const PEER_QUEUE_CAPACITY: usize = 1024;
/// Default bound of the queue of raft messages received from peers. At the bound an incoming
/// batch is refused with RESOURCE_EXHAUSTED; raft retransmits.
pub const INBOUND_QUEUE_CAPACITY: usize = 4096;
/// Default largest raft message accepted over gRPC. Snapshots travel in chunks
/// ([`SNAPSHOT_CHUNK_BYTES`]), so this bounds batches of ordinary messages, not the state.
pub const MESSAGE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Default size of one chunk of snapshot data in `Raft.SendSnapshot`. Must stay below
/// [`MESSAGE_BYTES_MAX`]; a larger chunk only saves per-message overhead.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;
/// Default largest snapshot a voter sends or accepts, in bytes of state machine data. The
/// receiver checks the announced size against it before allocating; a leader whose state is
/// larger cannot bring a lagging follower up to date and logs an error each time it tries.
pub const SNAPSHOT_BYTES_MAX: usize = 4 * 1024 * 1024 * 1024;

const _: () = assert!(SNAPSHOT_CHUNK_BYTES < MESSAGE_BYTES_MAX);

/// How a quorum member runs. Build with `Options { id, peers, ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct Options {
    /// This voter's id: nonzero and unique in the quorum.
    pub id: RaftId,
    /// Every voter of the quorum, this one included: id → `host:port` of its quorum gRPC
    /// listener. Used to bootstrap a fresh directory (the voter set) and to reach peers. The
    /// voter set is fixed at bootstrap; a directory that already holds a log keeps its own.
    pub peers: BTreeMap<RaftId, String>,
    /// Time between two raft ticks.
    pub tick_interval: Duration,
    /// Ticks without a leader before a follower campaigns (the election timeout's lower bound).
    pub election_tick: usize,
    /// Ticks between leader heartbeats; must be less than `election_tick`.
    pub heartbeat_tick: usize,
    /// The randomized election timeout is drawn from `[min, max)` ticks; `None` means
    /// `[election_tick, 2 × election_tick)`. The simulation pins it (`max = min + 1`) because
    /// raft-rs draws it from an unseeded thread RNG.
    pub election_tick_range: Option<(usize, usize)>,
    /// Take a snapshot (and compact the log behind it) once this many entries were applied
    /// since the last one.
    pub snapshot_entries: u64,
    /// ... or once this many bytes of commands were applied since the last one.
    pub snapshot_bytes: u64,
    /// Largest batch of entries in one append message, in bytes.
    pub max_size_per_msg: u64,
    /// Most append messages in flight to one follower.
    pub max_inflight_msgs: usize,
    /// Largest total size of proposed-but-uncommitted entries on a leader; proposals beyond it
    /// are refused with [`Error::Unavailable`].
    pub max_uncommitted_bytes: u64,
    /// How long [`crate::QuorumHandle::propose`] tries (including waiting for a leader and
    /// forwarding) before giving up.
    pub propose_timeout: Duration,
    /// How long [`crate::QuorumHandle::read`] waits for a ReadIndex round.
    pub read_timeout: Duration,
    /// Whether a follower's handle forwards proposals to the leader over gRPC (otherwise it
    /// returns [`Error::NotLeader`] to the caller).
    pub forward_proposals: bool,
    /// Bound of the client request queue; see [`CLIENT_QUEUE_CAPACITY`].
    pub client_queue_capacity: usize,
    /// Bound of each per-peer outbound queue; see [`PEER_QUEUE_CAPACITY`].
    pub peer_queue_capacity: usize,
    /// Bound of the inbound raft message queue; see [`INBOUND_QUEUE_CAPACITY`].
    pub inbound_queue_capacity: usize,
    /// Largest raft message sent or accepted over gRPC; see [`MESSAGE_BYTES_MAX`].
    pub message_bytes_max: usize,
    /// Size of one chunk of snapshot data sent, and the largest accepted; see
    /// [`SNAPSHOT_CHUNK_BYTES`].
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot data sent or accepted; see [`SNAPSHOT_BYTES_MAX`].
    pub snapshot_bytes_max: usize,
    /// Mutual TLS on the quorum's listener and its connections to peers. `None` serves and
    /// dials plaintext, which is only for tests in one process: anything that listens on a
    /// network sets it.
    pub tls: Option<TlsOptions>,
}

/// The voter id a verified peer identity speaks for, if it is a voter of this quorum.
pub type VoterOf = Arc<dyn Fn(&Identity) -> Option<RaftId> + Send + Sync>;

/// Mutual TLS of a quorum member: who it is, whom it trusts, who may call what.
///
/// With TLS the listener refuses plaintext and certificate-less clients at the handshake;
/// every service of `ferry.quorum.v1` (Raft: Send and Propose) answers only identities that
/// [`Self::voter_of`] maps to a voter of [`Options::peers`], and Send accepts only messages
/// `from` that voter's own id. The other services on the listener follow [`Self::policy`].
/// The listener then speaks HTTP/2 over TLS only (no HTTP/1.1, so no REST face beside raft).
#[derive(Clone)]
pub struct TlsOptions {
    /// This member's CA, certificate and key.
    pub material: TlsMaterial,
    /// The server name every voter's certificate carries; checked when dialling a peer (for
    /// a cluster's controllers, [`ferry_identity::controller_server_name`]).
    pub server_name: String,
    /// Which voter a verified peer identity is (e.g. a controller of this cluster with node
    /// id `n` is voter `n + 1`); `None` for every other identity.
    pub voter_of: VoterOf,
    /// Who may call the other services served next to raft
    /// ([`crate::Quorum::start_with_services`]); deny-by-default.
    pub policy: Policy,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("material", &self.material)
            .field("server_name", &self.server_name)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            id: 1,
            peers: BTreeMap::new(),
            tick_interval: DEFAULT_TICK_INTERVAL,
            election_tick: DEFAULT_ELECTION_TICK,
            heartbeat_tick: DEFAULT_HEARTBEAT_TICK,
            election_tick_range: None,
            snapshot_entries: 10_000,
            snapshot_bytes: 64 * 1024 * 1024,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            max_uncommitted_bytes: 64 * 1024 * 1024,
            propose_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            forward_proposals: true,
            client_queue_capacity: CLIENT_QUEUE_CAPACITY,
            peer_queue_capacity: PEER_QUEUE_CAPACITY,
            inbound_queue_capacity: INBOUND_QUEUE_CAPACITY,
            message_bytes_max: MESSAGE_BYTES_MAX,
            snapshot_chunk_bytes: SNAPSHOT_CHUNK_BYTES,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX,
            tls: None,
        }
    }
}

impl Options {
    /// Checks the options, naming the first field that is wrong and why.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::InvalidInput(msg));
        if self.id == 0 {
            return invalid("id must be nonzero (raft reserves 0 for \"none\")".into());
        }
        if !self.peers.contains_key(&self.id) {
            return invalid(format!("peers must include this node's own id {}", self.id));
        }
        if let Some((id, addr)) = self.peers.iter().find(|(id, a)| **id == 0 || a.is_empty()) {
            return invalid(format!(
                "peer {id} at {addr:?}: ids must be nonzero, addresses set"
            ));
        }
        if self.tick_interval.is_zero() {
            return invalid("tick_interval must be positive".into());
        }
        if self.heartbeat_tick == 0 || self.heartbeat_tick >= self.election_tick {
            return invalid(format!(
                "heartbeat_tick ({}) must be in 1..election_tick ({})",
                self.heartbeat_tick, self.election_tick
            ));
        }
        if let Some((min, max)) = self.election_tick_range
            && (min < self.election_tick || max <= min)
        {
            return invalid(format!(
                "election_tick_range [{min}, {max}) must start at or above election_tick ({}) \
                 and not be empty",
                self.election_tick
            ));
        }
        if self.snapshot_entries == 0 || self.snapshot_bytes == 0 {
            return invalid("snapshot_entries and snapshot_bytes must be positive".into());
        }
        if self.max_size_per_msg == 0 || self.max_inflight_msgs == 0 {
            return invalid("max_size_per_msg and max_inflight_msgs must be positive".into());
        }
        if self.max_size_per_msg as usize >= self.message_bytes_max {
            return invalid("max_size_per_msg must be below message_bytes_max".into());
        }
        // A chunk travels with the encoded message header in the first one, so leave room.
        if self.snapshot_chunk_bytes == 0
            || self.snapshot_chunk_bytes >= self.message_bytes_max / 2
            || self.snapshot_bytes_max == 0
        {
            return invalid(
                "snapshot_chunk_bytes must be positive and below half of message_bytes_max, \
                 snapshot_bytes_max positive"
                    .into(),
            );
        }
        let capacities = [
            self.client_queue_capacity,
            self.peer_queue_capacity,
            self.inbound_queue_capacity,
        ];
        if capacities.contains(&0) {
            return invalid("queue capacities must be positive".into());
        }
        Ok(())
    }

    /// The raft-rs configuration for these options, restarting with `applied` already applied.
    pub(crate) fn raft_config(&self, applied: u64) -> raft::Config {
        let (min, max) = self
            .election_tick_range
            .unwrap_or((self.election_tick, 2 * self.election_tick));
        raft::Config {
            id: self.id,
            election_tick: self.election_tick,
            heartbeat_tick: self.heartbeat_tick,
            min_election_tick: min,
            max_election_tick: max,
            applied,
            max_size_per_msg: self.max_size_per_msg,
            max_inflight_msgs: self.max_inflight_msgs,
            max_uncommitted_size: self.max_uncommitted_bytes,
            check_quorum: true,
            pre_vote: true,
            read_only_option: raft::ReadOnlyOption::Safe,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Options {
        let peers = (1..=3)
            .map(|id| (id, format!("127.0.0.1:{}", 9000 + id)))
            .collect();
        Options {
            id: 1,
            peers,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_with_peers_validate() {
        three().validate().unwrap();
        three().raft_config(0).validate().unwrap();
    }

    /// A change that makes options invalid, and what the error must mention.
    type Case = (&'static str, Box<dyn Fn(&mut Options)>);

    #[test]
    fn rejects_bad_fields() {
        let cases: Vec<Case> = vec![
            ("id must be nonzero", Box::new(|o| o.id = 0)),
            ("own id", Box::new(|o| o.id = 9)),
            ("heartbeat_tick", Box::new(|o| o.heartbeat_tick = 10)),
            (
                "election_tick_range",
                Box::new(|o| o.election_tick_range = Some((10, 10))),
            ),
            ("capacities", Box::new(|o| o.peer_queue_capacity = 0)),
            (
                "snapshot_chunk_bytes",
                Box::new(|o| o.snapshot_chunk_bytes = 0),
            ),
            (
                "snapshot_chunk_bytes",
                Box::new(|o| o.snapshot_chunk_bytes = o.message_bytes_max),
            ),
            ("snapshot_bytes_max", Box::new(|o| o.snapshot_bytes_max = 0)),
        ];
        for (want, mutate) in cases {
            let mut options = three();
            mutate(&mut options);
            let err = options.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }
}
