//! Bad input against the sans-IO [`Node`]: forged raft messages that raft-rs 0.7 would panic
//! on, and an entry the state machine cannot decode that nevertheless reached the log.
//!
//! Three nodes over [`MemDisk`] and a lossless, ordered in-memory network; node 1 has the
//! shortest election timeout, so it leads. Nothing is random.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_quorum::logger::discard_logger;
use ferry_quorum::{Error, LogStore, MemDisk, Message, Node, Options, RaftId, Role, StateMachine};
use raft::prelude::{Entry, EntryType, MessageType, Snapshot};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A list of UTF-8 commands. Commands that are not UTF-8 are refused by `validate`, and applied
/// as no-ops that count and record the error.
#[derive(Debug, Default)]
struct Ledger {
    /// Commands in apply order.
    entries: Vec<String>,
    /// Entries applied as no-ops because they did not decode.
    rejected: u64,
    /// The last such error.
    last_error: String,
    /// Test-only hole: while set, `validate` lets everything through, which stands for a
    /// command that reached the log some other way (another version, a bug).
    skip_validation: Arc<AtomicBool>,
}

impl StateMachine for Ledger {
    fn validate(&self, command: &[u8]) -> Result<(), String> {
        if self.skip_validation.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::str::from_utf8(command)
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(command) {
            Ok(text) => self.entries.push(text.to_string()),
            Err(err) => {
                self.rejected += 1;
                self.last_error = format!("entry {index}: {err}");
            }
        }
        self.entries.len().to_string().into_bytes()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut lines = vec![self.rejected.to_string(), self.last_error.clone()];
        lines.extend(self.entries.iter().cloned());
        lines.join("\n").into_bytes()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(data).map_err(|err| err.to_string())?;
        let mut lines = text.split('\n');
        let rejected = lines.next().unwrap_or_default();
        self.rejected = rejected
            .parse()
            .map_err(|_| format!("count {rejected:?}"))?;
        self.last_error = lines.next().unwrap_or_default().to_string();
        self.entries = lines.map(str::to_string).collect();
        Ok(())
    }

    fn validate_snapshot(&self, data: &[u8]) -> Result<(), String> {
        Ledger::default().restore(data)
    }

    fn query(&self, _query: &[u8]) -> Vec<u8> {
        Vec::new()
    }
}

/// Three nodes and the messages between them.
struct Net {
    /// Running nodes.
    nodes: BTreeMap<RaftId, Node<Ledger, MemDisk>>,
    /// Each node's disk, kept across restarts.
    disks: BTreeMap<RaftId, MemDisk>,
    /// Messages in flight, in send order.
    queue: VecDeque<Message>,
    /// The validation hole shared by every node's ledger.
    skip_validation: Arc<AtomicBool>,
    /// Next proposal id.
    next_id: u64,
    /// Whether every delivered message must step (false once forgeries have made honest
    /// messages look impossible to some node).
    strict: bool,
}

impl Net {
    fn new() -> Net {
        let mut net = Net {
            nodes: BTreeMap::new(),
            disks: (1..=3).map(|id| (id, MemDisk::new())).collect(),
            queue: VecDeque::new(),
            skip_validation: Arc::default(),
            next_id: 1,
            strict: true,
        };
        for id in 1..=3 {
            net.start(id);
        }
        net
    }

    fn options(id: RaftId) -> Options {
        let timeout = 10 + 5 * (id as usize - 1);
        Options {
            id,
            peers: (1..=3).map(|id| (id, format!("node-{id}:1"))).collect(),
            election_tick_range: Some((timeout, timeout + 1)),
            snapshot_entries: 4,
            ..Default::default()
        }
    }

    fn start(&mut self, id: RaftId) {
        let store = LogStore::open(self.disks[&id].clone(), &[1, 2, 3]).unwrap();
        let ledger = Ledger {
            skip_validation: self.skip_validation.clone(),
            ..Default::default()
        };
        let node = Node::new(&Self::options(id), ledger, store, id, &discard_logger()).unwrap();
        self.nodes.insert(id, node);
    }

    /// Runs `ready` on `id` and queues what it sends.
    fn ready(&mut self, id: RaftId) {
        let queue = &mut self.queue;
        let node = self.nodes.get_mut(&id).unwrap();
        node.ready(&mut |msg| queue.push_back(msg)).unwrap();
        node.take_outcomes();
    }

    /// Delivers every queued message (and what they cause) in order.
    fn deliver(&mut self) {
        while let Some(msg) = self.queue.pop_front() {
            let to = msg.to;
            if self.nodes.contains_key(&to) {
                let result = self.nodes.get_mut(&to).unwrap().step(msg);
                assert!(result.is_ok() || !self.strict, "{result:?}");
                self.ready(to);
            }
        }
    }

    /// Ticks every node `ticks` times, delivering after each.
    fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            let ids: Vec<RaftId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.nodes.get_mut(&id).unwrap().tick();
                self.ready(id);
            }
            self.deliver();
        }
    }

    fn leader(&self) -> RaftId {
        let leaders: Vec<RaftId> = self
            .nodes
            .values()
            .filter(|n| n.is_leader())
            .map(|n| n.id())
            .collect();
        assert_eq!(leaders.len(), 1, "one leader: {leaders:?}");
        leaders[0]
    }

    /// Proposes on the leader and runs until every node applied it.
    fn commit(&mut self, command: &[u8]) {
        let leader = self.leader();
        let id = self.next_id;
        self.next_id += 1;
        let node = self.nodes.get_mut(&leader).unwrap();
        node.propose(id, command.to_vec()).unwrap();
        self.ready(leader);
        self.deliver();
        self.run(3);
        let applied = self.nodes[&leader].applied();
        for node in self.nodes.values() {
            assert_eq!(node.applied(), applied, "node {} caught up", node.id());
        }
    }

    /// Every node's state as its snapshot bytes.
    fn states(&self) -> Vec<Vec<u8>> {
        self.nodes
            .values()
            .map(|n| n.state_machine().snapshot())
            .collect()
    }
}

/// A message of `kind` from `from` to `to` at `term`.
fn message(kind: MessageType, from: RaftId, to: RaftId, term: u64) -> Message {
    let mut msg = Message {
        from,
        to,
        term,
        ..Default::default()
    };
    msg.set_msg_type(kind);
    msg
}

/// A normal entry at `index` of `term`.
fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: b"forged".to_vec().into(),
        ..Default::default()
    }
}

/// Every forged message of the module docs of `ferry_quorum::node`, for node `to`, whose log
/// ends at `last` and commits `commit` in `term` (as the leader if `leader`), from voter `from`.
fn forgeries(
    from: RaftId,
    to: RaftId,
    leader: bool,
    term: u64,
    last: u64,
    commit: u64,
) -> Vec<(&'static str, Message)> {
    use MessageType::*;
    let mut cases = Vec::new();
    let mut m = message(MsgHeartbeat, from, to, term + 1_000_000);
    m.commit = last + 1_000;
    cases.push(("heartbeat committing past the log in a huge term", m));
    let mut m = message(MsgHeartbeat, from, to, term);
    m.commit = last + 1;
    cases.push(("heartbeat committing past the log", m));
    cases.push((
        "term near u64::MAX",
        message(MsgHeartbeat, from, to, u64::MAX),
    ));
    cases.push((
        "vote request at term 0",
        message(MsgRequestVote, from, to, 0),
    ));
    cases.push((
        "pre-vote request at term 0",
        message(MsgRequestPreVote, from, to, 0),
    ));
    let mut m = message(MsgAppend, from, to, term);
    (m.index, m.log_term) = (last, term);
    m.entries = vec![entry(last + 1, term), entry(last + 3, term)].into();
    cases.push(("append with a gap", m));
    let mut m = message(MsgAppend, from, to, term);
    (m.index, m.log_term) = (commit, term);
    m.entries = vec![entry(commit - 1, term)].into();
    cases.push(("append rewriting a committed entry", m));
    let mut m = message(MsgAppend, from, to, term);
    (m.index, m.log_term) = (last + 10, 0);
    m.entries = vec![entry(last + 11, term)].into();
    cases.push(("append after a gap with previous term 0", m));
    // Found by the raft_message fuzz target (on a fresh voter): after the bootstrap point an
    // entry of term 0 either "matches" past the log, so nothing is appended and the commit
    // moves past it, or conflicts with a committed entry.
    let mut m = message(MsgAppend, from, to, term);
    (m.index, m.log_term) = (0, 0);
    m.entries = vec![entry(1, 0)].into();
    m.commit = 1;
    cases.push(("append of an entry of term 0 committing it", m));
    let mut m = message(MsgAppend, from, to, term);
    (m.index, m.log_term) = (last, term);
    let mut change = entry(last + 1, term);
    change.set_entry_type(EntryType::EntryConfChangeV2);
    m.entries = vec![change].into();
    cases.push(("append of a membership change", m));
    let mut m = message(MsgSnapshot, from, to, term);
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = last + 100;
    snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
    m.set_snapshot(snapshot.clone());
    cases.push(("snapshot of term 0 past the log", m));
    let mut m = message(MsgSnapshot, from, to, term);
    snapshot.mut_metadata().term = term;
    snapshot.mut_metadata().mut_conf_state().voters = vec![2, 2, to];
    snapshot.mut_metadata().mut_conf_state().learners = vec![to];
    m.set_snapshot(snapshot.clone());
    cases.push(("snapshot with an impossible voter set", m));
    let mut m = message(MsgSnapshot, from, to, term);
    snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
    snapshot.mut_metadata().mut_conf_state().learners = vec![];
    snapshot.data = vec![0xff].into();
    m.set_snapshot(snapshot);
    cases.push(("snapshot whose data the state machine refuses", m));
    cases.push((
        "read index without entries",
        message(MsgReadIndex, from, to, 0),
    ));
    cases.push((
        "read index with a term",
        message(MsgReadIndex, from, to, term),
    ));
    let mut m = message(MsgPropose, from, to, term);
    m.entries = vec![].into();
    cases.push(("empty proposal", m));
    let mut m = message(MsgAppendResponse, from, to, term);
    m.request_snapshot = 1;
    m.reject = true;
    cases.push(("snapshot request", m));
    if leader {
        let mut m = message(MsgAppendResponse, from, to, term);
        m.index = last + 1_000;
        cases.push(("acknowledgement past the leader's log", m));
    }
    cases.push((
        "leader transfer",
        message(MsgTransferLeader, from, to, term),
    ));
    cases.push(("timeout now", message(MsgTimeoutNow, from, to, term)));
    cases.push(("local hup", message(MsgHup, from, to, term)));
    cases.push(("from itself", message(MsgHeartbeat, to, to, term)));
    cases.push(("from a non-voter", message(MsgHeartbeat, 9, to, term)));
    cases
}

#[test]
fn forged_messages_are_refused_and_the_quorum_goes_on() {
    let mut net = Net::new();
    net.run(20);
    let leader = net.leader();
    assert_eq!(leader, 1);
    for i in 0..6 {
        net.commit(format!("before-{i}").as_bytes());
    }
    let states = net.states();

    for to in 1..=3 {
        for from in (1..=3).filter(|from| *from != to) {
            let node = &net.nodes[&to];
            let status = node.status();
            let leader = status.role == Role::Leader;
            let cases = forgeries(
                from,
                to,
                leader,
                status.term,
                status.last_index,
                status.commit,
            );
            for (what, msg) in cases {
                let node = net.nodes.get_mut(&to).unwrap();
                let result = node.step(msg);
                assert!(
                    matches!(result, Err(Error::InvalidInput(_))),
                    "{what} from {from} to {to}: {result:?}"
                );
            }
            net.ready(to);
        }
    }

    // Nothing changed, and the quorum still commits, with the same leader.
    net.queue.clear();
    assert_eq!(net.states(), states);
    net.run(5);
    assert_eq!(net.leader(), leader);
    net.commit(b"after");
    assert!(net.states().windows(2).all(|w| w[0] == w[1]));

    // Restarts from disk work.
    net.nodes.clear();
    for id in 1..=3 {
        net.start(id);
    }
    net.run(40);
    net.commit(b"restarted");
    assert!(net.states().windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_proposal_the_state_machine_refuses_never_enters_the_log() {
    let mut net = Net::new();
    net.run(20);
    net.commit(b"first");
    let leader = net.leader();
    let last = net.nodes[&leader].status().last_index;
    let node = net.nodes.get_mut(&leader).unwrap();
    let result = node.propose(99, vec![0xff, 0xfe]);
    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    assert_eq!(node.status().last_index, last);
    assert_eq!(node.pending_proposals(), 0);
}

#[test]
fn an_undecodable_entry_in_the_log_is_a_recorded_no_op_on_every_voter() {
    let mut net = Net::new();
    net.run(20);
    net.commit(b"first");

    // Through the test-only hole, an entry that is not UTF-8 reaches the log.
    net.skip_validation.store(true, Ordering::Relaxed);
    net.commit(&[0xff, 0xfe]);
    net.skip_validation.store(false, Ordering::Relaxed);
    net.commit(b"second");

    for node in net.nodes.values() {
        let ledger = node.state_machine();
        assert_eq!(ledger.entries, ["first", "second"], "node {}", node.id());
        assert_eq!(ledger.rejected, 1);
        assert!(
            ledger.last_error.starts_with("entry "),
            "{}",
            ledger.last_error
        );
    }
    let states = net.states();
    assert!(states.windows(2).all(|w| w[0] == w[1]));

    // Restart every node: the log (and the snapshots taken over it) replay to the same state.
    net.nodes.clear();
    for id in 1..=3 {
        net.start(id);
    }
    net.run(40);
    assert_eq!(net.states(), states);
    net.commit(b"third");
    for node in net.nodes.values() {
        assert_eq!(node.state_machine().entries.len(), 3);
        assert_eq!(node.state_machine().rejected, 1);
    }
}

#[test]
fn a_snapshot_on_disk_that_does_not_restore_is_a_clear_error() {
    // A well-formed snapshot file (its CRC matches) whose state machine data the ledger
    // cannot restore, as another version or a bug could leave it.
    let disk = MemDisk::new();
    let mut store = LogStore::open(disk.clone(), &[1, 2, 3]).unwrap();
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = 5;
    snapshot.mut_metadata().term = 1;
    snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
    snapshot.data = b"not a count\n".to_vec().into();
    store.install_snapshot(snapshot).unwrap();

    let store = LogStore::open(disk, &[1, 2, 3]).unwrap();
    let result = Node::new(
        &Net::options(1),
        Ledger::default(),
        store,
        1,
        &discard_logger(),
    );
    let err = result.err().expect("the node must not start");
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
}

/// A random message from a voter to `to`, with fields drawn near the edges of `to`'s log.
fn random_message(rng: &mut StdRng, to: RaftId, status: &ferry_quorum::Status) -> Message {
    use MessageType::*;
    let kinds = [
        MsgHup,
        MsgBeat,
        MsgPropose,
        MsgAppend,
        MsgAppendResponse,
        MsgRequestVote,
        MsgRequestVoteResponse,
        MsgSnapshot,
        MsgHeartbeat,
        MsgHeartbeatResponse,
        MsgUnreachable,
        MsgSnapStatus,
        MsgCheckQuorum,
        MsgTransferLeader,
        MsgTimeoutNow,
        MsgReadIndex,
        MsgReadIndexResp,
        MsgRequestPreVote,
        MsgRequestPreVoteResponse,
    ];
    let kind = kinds[rng.random_range(0..kinds.len())];
    let (term, last, commit) = (status.term, status.last_index, status.commit);
    let mut pick = |values: &[u64]| values[rng.random_range(0..values.len())];
    let terms = [
        0,
        1,
        term.saturating_sub(1),
        term,
        term + 1,
        term + 1000,
        u64::MAX,
    ];
    let indexes = [
        0,
        1,
        commit.saturating_sub(1),
        commit,
        last,
        last + 1,
        last + 50,
        u64::MAX,
    ];
    let from = pick(
        &[1, 2, 3]
            .into_iter()
            .filter(|id| *id != to)
            .collect::<Vec<_>>(),
    );
    let mut msg = Message {
        from,
        to,
        term: pick(&terms),
        index: pick(&indexes),
        log_term: pick(&terms),
        commit: pick(&indexes),
        commit_term: pick(&terms),
        reject: pick(&[0, 1]) == 1,
        reject_hint: pick(&indexes),
        request_snapshot: pick(&[0, 0, 0, 1]),
        ..Default::default()
    };
    msg.set_msg_type(kind);
    let count = pick(&[0, 1, 2, 3]);
    let first = pick(&indexes).min(u64::MAX - 10);
    let contiguous = pick(&[0, 1]) == 1;
    let entries: Vec<Entry> = (0..count)
        .map(|i| {
            let mut e = entry(
                if contiguous {
                    first + i
                } else {
                    pick(&indexes)
                },
                pick(&terms),
            );
            if pick(&[0, 0, 0, 1]) == 1 {
                e.set_entry_type(EntryType::EntryConfChange);
            }
            e
        })
        .collect();
    msg.entries = entries.into();
    if msg.get_msg_type() == MsgSnapshot {
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = pick(&indexes);
        snapshot.mut_metadata().term = pick(&terms);
        snapshot.mut_metadata().mut_conf_state().voters = match pick(&[0, 1, 2]) {
            0 => vec![1, 2, 3],
            1 => vec![3, 2, 1],
            _ => vec![1, 1],
        };
        snapshot.data = match pick(&[0, 1]) {
            0 => b"0\n\nfrom-a-snapshot".to_vec().into(),
            _ => vec![0xff].into(),
        };
        msg.set_snapshot(snapshot);
    }
    msg
}

/// Seeds of `random_forged_messages_never_panic_a_node`: `QUORUM_FORGERY_SEEDS`, default 40.
fn forgery_seeds() -> u64 {
    std::env::var("QUORUM_FORGERY_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

#[test]
fn random_forged_messages_never_panic_a_node() {
    for seed in 0..forgery_seeds() {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut net = Net::new();
        net.run(20);
        for i in 0..3 {
            net.commit(format!("seed-{seed}-{i}").as_bytes());
        }
        net.strict = false;
        for _ in 0..300 {
            let to = rng.random_range(1..=3);
            let status = net.nodes[&to].status();
            let msg = random_message(&mut rng, to, &status);
            let _ = net.nodes.get_mut(&to).unwrap().step(msg);
            net.ready(to);
            if rng.random_bool(0.3) {
                net.run(1);
            }
        }
        // Whatever the forgeries did to terms and leadership, the nodes restart from disk.
        net.queue.clear();
        net.nodes.clear();
        for id in 1..=3 {
            net.start(id);
        }
    }
}
