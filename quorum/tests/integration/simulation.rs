//! Deterministic simulation of a quorum: 3 or 5 sans-IO [`Node`]s over the real [`LogStore`]
//! on [`MemDisk`], a seeded network that delays, reorders and drops messages, partitions that
//! come and go, crashes (some in the middle of a disk write) and restarts, and clients that
//! propose and read.
//!
//! Checked after every step:
//! - at most one leader per term;
//! - every node applies the same command at the same index (a global committed log), so no
//!   committed entry ever changes or disappears, across crashes and snapshot installs;
//! - state machines are identical at the same applied index (a hash chain over the log);
//! - a proposal answered `Ok` is in the committed log at the index it reports, one refused as
//!   not applied never appears in it, and a read sees every write acknowledged before it began.
//!
//! At the end the network heals and every node restarts; a leader must emerge, commit a final
//! proposal, and every node must apply it with an identical state.
//!
//! Time is logical: one step is one unit, nodes tick about every 10 units, messages take 1–8
//! units. `QUORUM_SIM_SEEDS` (default 250) and `QUORUM_SIM_STEPS` (default 3000) scale the run;
//! `QUORUM_SIM_SEED` runs one seed (to reproduce a failure).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferry_quorum::logger::discard_logger;
use ferry_quorum::{
    Error, LogStore, MemDisk, Message, Node, Options, Outcome, RaftId, StateMachine,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Every apply of one node, for the checker: (index, command).
type Journal = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// The state machine under test: a hash chain over every applied (index, command).
struct Chain {
    /// Index of the last applied command.
    index: u64,
    /// Hash of every applied (index, command), in order.
    hash: u64,
    /// Every apply, for the checker: (index, command).
    journal: Journal,
}

impl StateMachine for Chain {
    fn validate(&self, _command: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        assert!(index > self.index, "apply {index} after {}", self.index);
        self.index = index;
        self.hash = fnv(self.hash, &index.to_le_bytes());
        self.hash = fnv(self.hash, command);
        self.journal.lock().unwrap().push((index, command.to_vec()));
        index.to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        [self.index.to_le_bytes(), self.hash.to_le_bytes()].concat()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.index = u64::from_le_bytes(data[0..8].try_into().unwrap());
        self.hash = u64::from_le_bytes(data[8..16].try_into().unwrap());
        Ok(())
    }

    fn query(&self, _query: &[u8]) -> Vec<u8> {
        self.index.to_le_bytes().to_vec()
    }
}

/// FNV-1a, continuing from `hash`.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

/// A message in flight.
struct Flight {
    /// Step at which it arrives.
    at: u64,
    /// The message.
    msg: Message,
}

/// A proposal or read the simulated client is waiting for.
enum Waiting {
    /// A proposal of this command.
    Propose(Vec<u8>),
    /// A read that must see at least this applied index.
    Read(u64),
}

/// The whole simulated world for one seed.
struct Sim {
    /// The seeded randomness for everything.
    rng: StdRng,
    /// Voter ids, 1..=n.
    ids: Vec<RaftId>,
    /// Options per node (election timeouts differ).
    options: BTreeMap<RaftId, Options>,
    /// Running nodes; a missing id is crashed.
    nodes: BTreeMap<RaftId, Node<Chain, MemDisk>>,
    /// Each node's disk, surviving crashes.
    disks: BTreeMap<RaftId, MemDisk>,
    /// Each node's apply journal, drained by the checker.
    journals: BTreeMap<RaftId, Journal>,
    /// Messages in flight, in send order.
    network: Vec<Flight>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(RaftId, RaftId)>,
    /// Probability that a message is lost.
    loss: f64,
    /// The current step.
    now: u64,
    /// Term → its leader.
    leaders: HashMap<u64, RaftId>,
    /// The global committed log: index → command.
    committed: BTreeMap<u64, Vec<u8>>,
    /// Index → hash of the state after applying it.
    hashes: HashMap<u64, u64>,
    /// What the client waits for: (node, id) → expectation.
    waiting: HashMap<(RaftId, u64), Waiting>,
    /// Commands refused as certainly not applied.
    refused: BTreeSet<Vec<u8>>,
    /// Highest index acknowledged to a client so far.
    acked_index: u64,
    /// Next command number / request id.
    next_id: u64,
    /// Step at which the final proposal was last made (0 for never or refused).
    final_proposed_at: u64,
    /// Counters for the summary.
    stats: Stats,
}

/// What happened in a run, to show the simulation exercises what it claims to.
#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    /// Proposals acknowledged Ok.
    acked: u64,
    /// Reads answered.
    reads: u64,
    /// Crashes (clean and torn).
    crashes: u64,
    /// Crashes in the middle of a write.
    torn: u64,
    /// Snapshots installed from a leader (MsgSnap).
    snapshot_sends: u64,
    /// Distinct terms with a leader.
    terms: u64,
}

impl Sim {
    fn new(seed: u64, n: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let ids: Vec<RaftId> = (1..=n).collect();
        let peers: BTreeMap<RaftId, String> =
            ids.iter().map(|id| (*id, format!("n{id}"))).collect();
        let snapshot_entries = rng.random_range(3..60);
        let options = ids
            .iter()
            .map(|id| {
                let min = 10 + rng.random_range(0..10);
                let options = Options {
                    id: *id,
                    peers: peers.clone(),
                    election_tick_range: Some((min, min + 1)),
                    snapshot_entries,
                    max_size_per_msg: rng.random_range(64..4096),
                    max_inflight_msgs: rng.random_range(1..8),
                    ..Default::default()
                };
                (*id, options)
            })
            .collect();
        let mut sim = Sim {
            rng,
            ids: ids.clone(),
            options,
            nodes: BTreeMap::new(),
            disks: ids.iter().map(|id| (*id, MemDisk::new())).collect(),
            journals: BTreeMap::new(),
            network: Vec::new(),
            cut: BTreeSet::new(),
            loss: 0.0,
            now: 0,
            leaders: HashMap::new(),
            committed: BTreeMap::new(),
            hashes: HashMap::new(),
            waiting: HashMap::new(),
            refused: BTreeSet::new(),
            acked_index: 0,
            next_id: 1,
            final_proposed_at: 0,
            stats: Stats::default(),
        };
        for id in ids {
            sim.start(id);
        }
        sim
    }

    /// Starts (or restarts) a node from its disk.
    fn start(&mut self, id: RaftId) {
        let journal = Arc::new(Mutex::new(Vec::new()));
        let chain = Chain {
            index: 0,
            hash: 0,
            journal: journal.clone(),
        };
        let store = LogStore::open(self.disks[&id].clone(), &self.ids).unwrap();
        let incarnation = self.rng.random();
        let node = Node::new(
            &self.options[&id],
            chain,
            store,
            incarnation,
            &discard_logger(),
        );
        self.nodes.insert(id, node.unwrap());
        self.journals.insert(id, journal);
        self.check_state(id);
    }

    fn crash(&mut self, id: RaftId) {
        if self.nodes.remove(&id).is_some() {
            self.stats.crashes += 1;
            self.waiting.retain(|(node, _), _| *node != id);
        }
    }

    /// Runs `ready` on a node and puts its messages on the network.
    fn ready(&mut self, id: RaftId) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        let result = node.ready(&mut |msg| out.push(msg));
        let outcomes = node.take_outcomes();
        for msg in out {
            self.send(msg);
        }
        self.drain_journal(id);
        if let Err(err) = result {
            assert!(
                matches!(err, Error::Io(_)),
                "only injected I/O errors expected: {err}"
            );
            self.stats.torn += 1;
            self.crash(id);
            return;
        }
        for outcome in outcomes {
            self.check_outcome(id, outcome);
        }
        self.check_state(id);
        let node = &self.nodes[&id];
        if node.is_leader() {
            let leader = *self.leaders.entry(node.term()).or_insert(id);
            assert_eq!(leader, id, "two leaders in term {}", node.term());
        }
    }

    fn send(&mut self, msg: Message) {
        let (from, to) = (msg.from, msg.to);
        let lost = self.cut.contains(&(from, to)) || self.rng.random_bool(self.loss);
        if msg.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
            self.stats.snapshot_sends += 1;
            if let Some(node) = self.nodes.get_mut(&from) {
                node.report_snapshot(to, !lost);
            }
        }
        if lost {
            if self.rng.random_bool(0.1)
                && let Some(node) = self.nodes.get_mut(&from)
            {
                node.report_unreachable(to);
            }
            return;
        }
        let at = self.now + self.rng.random_range(1..=8);
        self.network.push(Flight { at, msg });
    }

    fn deliver_due(&mut self) {
        let (due, later): (Vec<Flight>, Vec<Flight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|f| f.at <= self.now);
        self.network = later;
        for flight in due {
            let to = flight.msg.to;
            let Some(node) = self.nodes.get_mut(&to) else {
                continue;
            };
            node.step(flight.msg)
                .expect("a well-formed message from a voter must step");
            self.ready(to);
        }
    }

    fn propose(&mut self) {
        let Some(mut id) = self.random_up_node() else {
            return;
        };
        let command = format!("cmd-{}", self.next_id).into_bytes();
        let request = self.next_id;
        self.next_id += 1;
        for _ in 0..2 {
            let node = self.nodes.get_mut(&id).unwrap();
            match node.propose(request, command.clone()) {
                Ok(()) => {
                    self.waiting
                        .insert((id, request), Waiting::Propose(command));
                    self.ready(id);
                    return;
                }
                Err(Error::NotLeader {
                    leader_hint: Some(leader),
                }) if self.nodes.contains_key(&leader) => {
                    id = leader; // the client follows the hint once
                }
                Err(err) => {
                    assert!(err.is_retryable(), "refusal must be retryable: {err}");
                    self.refused.insert(command);
                    return;
                }
            }
        }
    }

    fn read(&mut self) {
        let Some(id) = self.random_up_node() else {
            return;
        };
        let request = self.next_id;
        self.next_id += 1;
        self.waiting
            .insert((id, request), Waiting::Read(self.acked_index));
        self.nodes.get_mut(&id).unwrap().read(request, Vec::new());
        self.ready(id);
    }

    fn random_up_node(&mut self) -> Option<RaftId> {
        let up: Vec<RaftId> = self.nodes.keys().copied().collect();
        (!up.is_empty()).then(|| up[self.rng.random_range(0..up.len())])
    }

    fn check_outcome(&mut self, id: RaftId, outcome: Outcome) {
        let (request, result) = match outcome {
            Outcome::Proposal { id, result } | Outcome::Read { id, result } => (id, result),
        };
        let Some(waiting) = self.waiting.remove(&(id, request)) else {
            return;
        };
        match (waiting, result) {
            (Waiting::Propose(command), Ok(response)) => {
                let index = u64::from_le_bytes(response.try_into().unwrap());
                assert_eq!(
                    self.committed.get(&index),
                    Some(&command),
                    "acked at {index}"
                );
                self.acked_index = self.acked_index.max(index);
                self.stats.acked += 1;
            }
            (Waiting::Propose(command), Err(Error::Unavailable(_))) => {
                self.refused.insert(command);
            }
            (Waiting::Propose(_), Err(Error::Indeterminate(_))) => {}
            (Waiting::Read(min), Ok(answer)) => {
                let index = u64::from_le_bytes(answer.try_into().unwrap());
                assert!(index >= min, "stale read on {id}: saw {index}, acked {min}");
                self.stats.reads += 1;
            }
            (_, Err(err)) => panic!("unexpected outcome on {id}: {err}"),
        }
    }

    /// Checks every apply against the global committed log.
    fn drain_journal(&mut self, id: RaftId) {
        let applied = std::mem::take(&mut *self.journals[&id].lock().unwrap());
        for (index, command) in applied {
            let known = self
                .committed
                .entry(index)
                .or_insert_with(|| command.clone());
            assert_eq!(
                *known, command,
                "node {id} applied a different command at {index}"
            );
        }
    }

    /// Checks that the node's state equals every other state seen at the same index.
    fn check_state(&mut self, id: RaftId) {
        let chain = self.nodes[&id].state_machine();
        let (index, hash) = (chain.index, chain.hash);
        if index == 0 {
            return;
        }
        let known = *self.hashes.entry(index).or_insert(hash);
        assert_eq!(known, hash, "node {id} state differs at index {index}");
    }

    /// One step: deliver, tick, and in the chaos phase maybe a client request and a fault.
    fn step(&mut self, chaos: bool) {
        self.now += 1;
        self.deliver_due();
        for id in self.ids.clone() {
            if self.nodes.contains_key(&id) && self.rng.random_bool(0.1) {
                self.nodes.get_mut(&id).unwrap().tick();
                self.ready(id);
            }
        }
        if !chaos {
            return;
        }
        if self.rng.random_bool(0.08) {
            self.propose();
        }
        if self.rng.random_bool(0.02) {
            self.read();
        }
        self.fault();
    }

    fn fault(&mut self) {
        let roll: f64 = self.rng.random();
        let id = self.ids[self.rng.random_range(0..self.ids.len())];
        match roll {
            r if r < 0.002 => self.crash(id),
            r if r < 0.003 => self.disks[&id].tear_next_append(self.rng.random_range(0.0..1.0)),
            r if r < 0.010 && !self.nodes.contains_key(&id) => self.start(id),
            r if r < 0.012 => self.partition(),
            r if r < 0.016 => self.cut.clear(),
            r if r < 0.017 => self.loss = [0.0, 0.05, 0.2, 0.5][self.rng.random_range(0..4)],
            _ => {}
        }
    }

    /// Splits the voters into two random sides (sometimes one-directional).
    fn partition(&mut self) {
        let side: BTreeSet<RaftId> = self
            .ids
            .iter()
            .copied()
            .filter(|_| self.rng.random_bool(0.5))
            .collect();
        let one_way = self.rng.random_bool(0.2);
        for a in &self.ids {
            for b in &self.ids {
                if side.contains(a) && !side.contains(b) {
                    self.cut.insert((*a, *b));
                    if !one_way {
                        self.cut.insert((*b, *a));
                    }
                }
            }
        }
    }

    /// Heals everything, restarts every node, and requires a final proposal to commit and
    /// be applied everywhere with identical state.
    fn converge(&mut self, seed: u64) {
        self.cut.clear();
        self.loss = 0.0;
        for id in self.ids.clone() {
            self.disks[&id].clear_faults();
            if !self.nodes.contains_key(&id) {
                self.start(id);
            }
        }
        let mut final_index = None;
        for _ in 0..20_000 {
            self.step(false);
            if final_index.is_none() {
                final_index = self.try_final();
            }
            let states: BTreeSet<(u64, u64)> = self
                .nodes
                .values()
                .map(|n| (n.state_machine().index, n.state_machine().hash))
                .collect();
            if let Some(index) = final_index
                && states.len() == 1
                && states.first().unwrap().0 >= index
            {
                return;
            }
        }
        panic!(
            "seed {seed}: no convergence after healing: {:?}",
            self.describe()
        );
    }

    /// Proposes a final command on the leader, if there is one, and returns the index of the
    /// first final command committed. Each attempt is a distinct command, so an abandoned
    /// attempt that commits later is not mistaken for a refused one.
    fn try_final(&mut self) -> Option<u64> {
        if let Some(index) = self
            .committed
            .iter()
            .find(|(_, c)| c.starts_with(b"final-"))
            .map(|(i, _)| *i)
        {
            return Some(index);
        }
        let leader = self
            .nodes
            .iter()
            .find(|(_, n)| n.is_leader())
            .map(|(id, _)| *id)?;
        // A proposal whose entry was cut from the log gets no outcome until its index is
        // reached again, which may never happen; like a real client, give up on it after a
        // while (about 40 ticks) and propose again.
        let pending = self.final_proposed_at + 400 > self.now;
        if !pending {
            self.final_proposed_at = self.now;
            let request = self.next_id;
            self.next_id += 1;
            let command = format!("final-{request}").into_bytes();
            let node = self.nodes.get_mut(&leader).unwrap();
            match node.propose(request, command.clone()) {
                Ok(()) => {
                    let waiting = Waiting::Propose(command);
                    self.waiting.insert((leader, request), waiting);
                    self.ready(leader);
                }
                Err(err) => {
                    assert!(err.is_retryable(), "final proposal refused: {err}");
                    self.final_proposed_at = 0;
                }
            }
        }
        None
    }

    fn describe(&self) -> Vec<String> {
        self.nodes
            .values()
            .map(|n| {
                let s = n.status();
                format!(
                    "{}:{:?} t{} c{} a{} l{:?}",
                    s.id, s.role, s.term, s.commit, s.applied, s.leader
                )
            })
            .collect()
    }

    fn finish(&mut self) -> Stats {
        for command in &self.refused {
            assert!(
                !self.committed.values().any(|c| c == command),
                "a command refused as not applied was committed"
            );
        }
        self.stats.terms = self.leaders.len() as u64;
        self.stats
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_seed(seed: u64, steps: u64) -> Stats {
    let n = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut sim = Sim::new(seed, n);
    for _ in 0..steps {
        sim.step(true);
    }
    sim.converge(seed);
    sim.finish()
}

#[test]
fn simulation_many_seeds() {
    let steps = env("QUORUM_SIM_STEPS", 3000);
    let seeds: Vec<u64> = match std::env::var("QUORUM_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("QUORUM_SIM_SEED must be a number")],
        Err(_) => (0..env("QUORUM_SIM_SEEDS", 250)).collect(),
    };
    let mut total = Stats::default();
    for seed in seeds {
        let result = std::panic::catch_unwind(|| run_seed(seed, steps));
        let stats =
            result.unwrap_or_else(|_| panic!("seed {seed} failed (QUORUM_SIM_SEED={seed})"));
        total.acked += stats.acked;
        total.reads += stats.reads;
        total.crashes += stats.crashes;
        total.torn += stats.torn;
        total.snapshot_sends += stats.snapshot_sends;
        total.terms += stats.terms;
    }
    println!("simulation totals: {total:?}");
    assert!(total.acked > 0 && total.reads > 0 && total.crashes > 0);
    assert!(
        total.torn > 0 && total.snapshot_sends > 0,
        "faults must be exercised: {total:?}"
    );
}

#[test]
fn same_seed_same_history() {
    let a = run_seed(7, 1500);
    let b = run_seed(7, 1500);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
