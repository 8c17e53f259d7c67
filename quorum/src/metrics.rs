//! What a quorum member reports about its raft state: term, commit and applied indexes, log
//! and snapshot indexes, role, leader, leader changes, and how long proposals take to apply.
//!
//! The node task ([`crate::server`]) owns the numbers and writes them after every `Ready`
//! with plain atomic stores ([`QuorumMetrics::observe`]): the raft loop never takes a lock for
//! them. Scrapes read the atomics through [`QuorumMetrics::register`]'s collector.
//!
//! The quorum does not choose its metric names' prefix: its owner does, because one process
//! may run two quorums (a node's controller reports `ferry_controller_raft_*`, the control
//! plane's store `ferry_store_raft_*`). The owner passes a sub-registry with its prefix.
//!
//! The families (after the owner's prefix):
//! ```text
//! term                       gauge    the current raft term (KRaft's epoch)
//! commit_index               gauge    highest index known committed (KRaft's high watermark)
//! applied_index              gauge    highest index applied to the local state machine
//! last_index                 gauge    index of the last entry in the local log
//! snapshot_index             gauge    index of the latest local snapshot
//! role{role}                 gauge    1 for this member's role, 0 for the others
//! leader                     gauge    the leader's id as the owner numbers it, -1 without one
//! leader_changes_total       counter  leaders seen (a new leader, or a new term's leader)
//! proposals_total            counter  proposals accepted into the local node
//! commit_duration_seconds    histogram  from accepting a proposal to its outcome here
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use ferry_telemetry::metrics::{
    AtomicHistogram, Collector, DescriptorEncoder, MetricType, Registry,
};
use prometheus_client::encoding::{EncodeMetric, NoLabelSet};

use crate::node::{Role, Status};
use crate::{Node, RaftId, StateMachine, disk::Disk};

/// Raft numbers of one quorum member, written by its node task and read at scrape time.
/// Share it with [`Arc`]; every field is an atomic.
pub struct QuorumMetrics {
    /// The current term.
    term: AtomicU64,
    /// The highest index known committed.
    commit: AtomicU64,
    /// The highest index applied here.
    applied: AtomicU64,
    /// The last index in the local log.
    last_index: AtomicU64,
    /// The latest snapshot's index.
    snapshot_index: AtomicU64,
    /// The role, as [`role_code`] numbers it.
    role: AtomicU8,
    /// The leader's raft id; 0 (raft's "none") without one.
    leader: AtomicU64,
    /// Leaders seen: counted when the known leader or the term it leads changes.
    leader_changes: AtomicU64,
    /// Proposals accepted into the local node.
    proposals: AtomicU64,
    /// From accepting a proposal to its outcome (applied, or failed) on this member.
    commit_duration: AtomicHistogram,
}

/// Every role, in the order the `role` family lists them, with its label value.
const ROLES: [(Role, &str); 4] = [
    (Role::Follower, "follower"),
    (Role::PreCandidate, "precandidate"),
    (Role::Candidate, "candidate"),
    (Role::Leader, "leader"),
];

/// A role as the `role` atomic stores it.
fn role_code(role: Role) -> u8 {
    match role {
        Role::Follower => 0,
        Role::PreCandidate => 1,
        Role::Candidate => 2,
        Role::Leader => 3,
    }
}

impl Default for QuorumMetrics {
    fn default() -> Self {
        Self {
            term: AtomicU64::new(0),
            commit: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            last_index: AtomicU64::new(0),
            snapshot_index: AtomicU64::new(0),
            role: AtomicU8::new(role_code(Role::Follower)),
            leader: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            proposals: AtomicU64::new(0),
            commit_duration: AtomicHistogram::latency(),
        }
    }
}

impl fmt::Debug for QuorumMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuorumMetrics")
            .field("term", &self.term())
            .field("commit", &self.commit())
            .field("applied", &self.applied())
            .field("role", &self.role())
            .field("leader", &self.leader())
            .finish_non_exhaustive()
    }
}

impl QuorumMetrics {
    /// Records the node's state after a `Ready` (called by the node task; atomic stores only).
    pub fn observe<S: StateMachine, D: Disk>(&self, node: &Node<S, D>) {
        self.record(&Status {
            id: node.id(),
            role: node.role(),
            leader: node.leader(),
            term: node.term(),
            commit: node.commit(),
            applied: node.applied(),
            last_index: node.last_index(),
            snapshot_index: node.store().snapshot_index(),
            voters: Vec::new(),
        });
    }

    /// Records a member's [`Status`] (what [`crate::QuorumHandle::status`] returns), for
    /// owners and tests that hold one rather than the node.
    pub fn observe_status(&self, status: &Status) {
        self.record(status);
    }

    /// Stores `status`'s numbers and counts a new leader (its voters are ignored).
    fn record(&self, status: &Status) {
        let leader = status.leader.unwrap_or(raft::INVALID_ID);
        let previous_term = self.term.swap(status.term, Ordering::Relaxed);
        let previous_leader = self.leader.swap(leader, Ordering::Relaxed);
        if leader != raft::INVALID_ID && (leader != previous_leader || status.term != previous_term)
        {
            self.leader_changes.fetch_add(1, Ordering::Relaxed);
        }
        self.commit.store(status.commit, Ordering::Relaxed);
        self.applied.store(status.applied, Ordering::Relaxed);
        self.last_index.store(status.last_index, Ordering::Relaxed);
        self.snapshot_index
            .store(status.snapshot_index, Ordering::Relaxed);
        self.role.store(role_code(status.role), Ordering::Relaxed);
    }

    /// Counts a proposal the local node accepted.
    pub fn proposal_accepted(&self) {
        self.proposals.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long an accepted proposal took to get its outcome.
    pub fn proposal_finished(&self, elapsed: Duration) {
        self.commit_duration.observe_duration(elapsed);
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Relaxed)
    }

    /// The highest index known committed.
    pub fn commit(&self) -> u64 {
        self.commit.load(Ordering::Relaxed)
    }

    /// The highest index applied here.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// The role.
    pub fn role(&self) -> Role {
        let code = self.role.load(Ordering::Relaxed);
        ROLES
            .iter()
            .map(|(role, _)| *role)
            .find(|role| role_code(*role) == code)
            .expect("only role_code writes the role")
    }

    /// The leader's raft id, if one is known.
    pub fn leader(&self) -> Option<RaftId> {
        Some(self.leader.load(Ordering::Relaxed)).filter(|id| *id != raft::INVALID_ID)
    }

    /// Leaders seen so far.
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.load(Ordering::Relaxed)
    }

    /// Registers these metrics in `registry` (a sub-registry with the owner's prefix, e.g.
    /// `controller_raft`). `leader_id` turns a raft id into the id the owner's operators know
    /// (a Kafka node id for controllers).
    pub fn register(self: &Arc<Self>, registry: &mut Registry, leader_id: fn(RaftId) -> i64) {
        registry.register_collector(Box::new(QuorumCollector {
            metrics: self.clone(),
            leader_id,
        }));
    }
}

/// Encodes a [`QuorumMetrics`] at scrape time.
struct QuorumCollector {
    /// The numbers.
    metrics: Arc<QuorumMetrics>,
    /// Maps the leader's raft id for the `leader` gauge.
    leader_id: fn(RaftId) -> i64,
}

impl fmt::Debug for QuorumCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuorumCollector")
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// A gauge without labels.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A counter without labels (the encoder appends `_total`).
fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// An index as a gauge value (indexes stay far below `i64::MAX`; saturate rather than wrap).
fn index(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for QuorumCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let m = &self.metrics;
        let e = &mut encoder;
        gauge(e, "term", "The current raft term.", index(m.term()))?;
        gauge(
            e,
            "commit_index",
            "The highest log index known committed.",
            index(m.commit()),
        )?;
        gauge(
            e,
            "applied_index",
            "The highest log index applied to this member's state machine.",
            index(m.applied()),
        )?;
        gauge(
            e,
            "last_index",
            "The index of the last entry in this member's log.",
            index(m.last_index.load(Ordering::Relaxed)),
        )?;
        gauge(
            e,
            "snapshot_index",
            "The index of this member's latest snapshot.",
            index(m.snapshot_index.load(Ordering::Relaxed)),
        )?;
        {
            let role = m.role();
            let mut family = e.encode_descriptor(
                "role",
                "1 for this member's raft role, 0 for the others.",
                None,
                MetricType::Gauge,
            )?;
            for (each, label) in ROLES {
                family
                    .encode_family(&[("role", label)])?
                    .encode_gauge(&i64::from(each == role))?;
            }
        }
        let leader = m.leader().map_or(-1, self.leader_id);
        gauge(e, "leader", "The leader's id; -1 without a leader.", leader)?;
        counter(
            e,
            "leader_changes",
            "Leaders this member has seen (a new leader, or a leader of a new term).",
            m.leader_changes(),
        )?;
        counter(
            e,
            "proposals",
            "Proposals accepted into this member's log while it led.",
            m.proposals.load(Ordering::Relaxed),
        )?;
        let histogram = e.encode_descriptor(
            "commit_duration_seconds",
            "From accepting a proposal to its outcome on this member.",
            None,
            MetricType::Histogram,
        )?;
        m.commit_duration.encode(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::discard_logger;
    use crate::{LogStore, MemDisk, Options};

    /// Counts applied commands.
    #[derive(Default)]
    struct Count(u64);

    impl StateMachine for Count {
        fn validate(&self, _command: &[u8]) -> std::result::Result<(), String> {
            Ok(())
        }
        fn apply(&mut self, _index: u64, _command: &[u8]) -> Vec<u8> {
            self.0 += 1;
            Vec::new()
        }
        fn snapshot(&self) -> Vec<u8> {
            self.0.to_be_bytes().to_vec()
        }
        fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
            self.0 = u64::from_be_bytes(data.try_into().map_err(|_| "8 bytes".to_string())?);
            Ok(())
        }
        fn query(&self, _query: &[u8]) -> Vec<u8> {
            Vec::new()
        }
    }

    /// A single voter on a memory disk, with its messages discarded (it has no peers).
    fn single_voter(disk: MemDisk) -> Node<Count, MemDisk> {
        let options = Options {
            id: 1,
            peers: [(1, "127.0.0.1:1".to_string())].into(),
            ..Default::default()
        };
        let store = LogStore::open(disk, &[1]).unwrap();
        Node::new(&options, Count::default(), store, 7, &discard_logger()).unwrap()
    }

    /// Ticks (running `ready` and `observe` after each, as the node task does) until `done`.
    fn run_until(
        node: &mut Node<Count, MemDisk>,
        metrics: &QuorumMetrics,
        done: impl Fn(&QuorumMetrics) -> bool,
    ) {
        for _ in 0..1000 {
            node.tick();
            node.ready(&mut |_| {}).unwrap();
            metrics.observe(node);
            if done(metrics) {
                return;
            }
        }
        panic!("never reached the expected state: {metrics:?}");
    }

    fn text(metrics: &Arc<QuorumMetrics>) -> String {
        let mut registry = ferry_telemetry::metrics::registry();
        metrics.register(registry.sub_registry_with_prefix("test_raft"), |id| {
            id as i64 - 1
        });
        ferry_telemetry::metrics::encode(&registry)
    }

    #[test]
    fn metrics_follow_election_commits_and_a_restart() {
        let disk = MemDisk::new();
        let mut node = single_voter(disk.clone());
        let metrics = Arc::new(QuorumMetrics::default());
        metrics.observe(&node);
        assert_eq!(metrics.role(), Role::Follower);
        assert_eq!(metrics.leader(), None);
        assert!(text(&metrics).contains("ferry_test_raft_leader -1\n"));

        run_until(&mut node, &metrics, |m| m.role() == Role::Leader);
        let term = metrics.term();
        assert!(term >= 1);
        assert_eq!(metrics.leader(), Some(1));
        assert_eq!(metrics.leader_changes(), 1);
        // A new leader commits an empty entry of its term.
        run_until(&mut node, &metrics, |m| m.commit() >= 1 && m.applied() >= 1);
        let commit = metrics.commit();

        for id in 1..=3 {
            node.propose(id, b"x".to_vec()).unwrap();
            metrics.proposal_accepted();
        }
        run_until(&mut node, &metrics, |m| m.applied() >= commit + 3);
        assert_eq!(metrics.commit(), commit + 3);
        assert_eq!(node.state_machine().0, 3);
        metrics.proposal_finished(Duration::from_millis(3));

        let text = text(&metrics);
        for expected in [
            format!("ferry_test_raft_term {term}\n"),
            format!("ferry_test_raft_commit_index {}\n", commit + 3),
            format!("ferry_test_raft_applied_index {}\n", commit + 3),
            format!("ferry_test_raft_last_index {}\n", commit + 3),
            "ferry_test_raft_snapshot_index 0\n".to_string(),
            "ferry_test_raft_role{role=\"leader\"} 1\n".to_string(),
            "ferry_test_raft_role{role=\"follower\"} 0\n".to_string(),
            "ferry_test_raft_leader 0\n".to_string(),
            "ferry_test_raft_leader_changes_total 1\n".to_string(),
            "ferry_test_raft_proposals_total 3\n".to_string(),
            "ferry_test_raft_commit_duration_seconds_count 1\n".to_string(),
        ] {
            assert!(text.contains(&expected), "{expected}: {text}");
        }

        // Restarted from its disk, the voter campaigns again: a later term, a new leader seen.
        drop(node);
        let mut node = single_voter(disk);
        metrics.observe(&node);
        assert_eq!(metrics.role(), Role::Follower);
        run_until(&mut node, &metrics, |m| m.role() == Role::Leader);
        assert!(metrics.term() > term, "{metrics:?}");
        assert_eq!(metrics.leader_changes(), 2);
    }
}
