//! [`Node`]: the sans-IO core — one raft-rs `RawNode`, its storage and the state machine,
//! driven by explicit inputs and producing explicit outputs.
//!
//! Inputs are [`Node::tick`], [`Node::step`] (a message from a peer), [`Node::propose`],
//! [`Node::read`] and the peer reports ([`Node::report_unreachable`],
//! [`Node::report_snapshot`]). After any input the driver calls [`Node::ready`], which handles
//! raft's `Ready` in the documented order, hands messages to a `send` callback, and queues an
//! [`Outcome`] for each proposal or read that finished; [`Node::take_outcomes`] drains them.
//! The node never reads a clock or sleeps; its only randomness is the `incarnation` passed in
//! (and raft-rs's own election jitter, which [`crate::Options::election_tick_range`] can pin).
//! Disk writes happen inside `ready` through [`LogStore`], so a simulation drives the very same
//! code over [`crate::MemDisk`].
//!
//! # Proposals
//!
//! Only the leader accepts proposals; a follower refuses with [`Error::NotLeader`] and a hint
//! (raft-rs would forward silently, leaving the proposer blind to the outcome). An accepted
//! proposal is tracked by the (index, term) raft gave its entry, and gets exactly one outcome
//! when that index is applied: the state machine's response if the entry there has that term,
//! otherwise [`Error::Unavailable`] (another entry was committed there, so this one never will
//! be). If a snapshot replaces that index before it is applied locally, the outcome is
//! [`Error::Indeterminate`]. The driver times out proposals whose index is never reached.
//!
//! # Reads
//!
//! [`Node::read`] starts a ReadIndex round with context `incarnation | read id`. When raft
//! reports the read index and the state machine has applied up to it, the query runs against
//! the state machine. raft-rs silently ignores ReadIndex when there is no leader, or on a new
//! leader that has not yet committed an entry of its term, so an unanswered read is re-issued
//! every election timeout until the driver gives up.
//!
//! # Inbound messages
//!
//! raft-rs 0.7 trusts its peers: several checks in `RawNode::step` are `fatal!` (a panic), and
//! a few paths index or unwrap what a message carries. [`Node::step`] refuses, before raft
//! sees it, every message that could reach one of them, and the driver logs the sender:
//!
//! | raft-rs 0.7 (reached from `step`) | message that reaches it | refused when |
//! |---|---|---|
//! | `RaftLog::commit_to`: "to_commit is out of range" (`handle_heartbeat`) | MsgHeartbeat | `commit` > local last index |
//! | `RaftLog::maybe_append`: "entry conflict with committed entry", underflow of `conflict - (index + 1)`; `Unstable::truncate_and_append`: "unstable.slice out of bound" | MsgAppend | entries not numbered `index + 1, index + 2, …`; `log_term` 0 at a nonzero index or an entry of term 0 (term 0 "matches" any index past the log, so nothing is appended and the commit goes past the log); index overflow |
//! | `Raft::restore` → `commit_to` (snapshot term 0 "matches" past the log); `confchange::restore`, "invalid restore" | MsgSnapshot | snapshot index or term 0, term above the message's; voter set other than this quorum's |
//! | `Node::install_snapshot` (this crate): restore at the applied index | MsgSnapshot | snapshot at the commit index with another term than the local entry |
//! | `Raft::send`: "term should be set / should not be set" (votes answered with the request's term; forwarded messages keep theirs) | vote messages with term 0; MsgReadIndex, MsgPropose, MsgTransferLeader with a term | term 0 (except MsgReadIndex, which must have none) |
//! | `campaign`: `term + 1` overflows; `Unstable::restore`, `Progress::maybe_decr_to`: `index + 1` overflows | any | a term above [`TERM_MAX`] or an index above [`INDEX_MAX`] (any term or index field) |
//! | `step_leader` MsgReadIndex: `entries[0]`; `handle_ready_read_index`: `take_entries()[0]` | MsgReadIndex, MsgReadIndexResp | not exactly one entry |
//! | `step_leader` MsgPropose: "stepped empty MsgProp"; a conf change entry applied | MsgPropose | always (Ferry never forwards proposals as raft messages) |
//! | `maybe_send_append`: "need non-empty snapshot" | MsgAppendResponse with `request_snapshot` | always (Ferry never requests snapshots) |
//! | `Progress::maybe_update` past the log, then probing past it | MsgAppendResponse | acknowledges an index past the local last index |
//! | this crate's `apply`: membership changes are not supported | MsgAppend | an entry that is not `EntryNormal` |
//! | `RawNode::step`: local types (`StepLocalMsg`) | MsgHup, MsgBeat, MsgUnreachable, MsgSnapStatus, MsgCheckQuorum | always, as well as MsgTimeoutNow and MsgTransferLeader (leadership transfer is unused) |
//!
//! Messages from a non-voter, from this node itself, or addressed to another node are refused
//! first. The other `fatal!`s of raft-rs (`load_state`, `applied_to`, `stable_entries`,
//! `stable_snap`, `maybe_persist_snap`, storage errors other than Compacted/Unavailable, "not
//! leader but has new msg after advance") guard its own bookkeeping and are reached only by a
//! bug in this driver or storage, not by a message; what storage reads from disk is checked
//! when it opens ([`LogStore::open`]). None of this makes a peer trustworthy: a forged
//! heartbeat within the local log can still advance the commit index, which is why only
//! authenticated peers may reach the transport.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use raft::prelude::{Entry, EntryType, Message, MessageType, Snapshot};
use raft::{RawNode, ReadState, SnapshotStatus, StateRole};

use crate::disk::Disk;
use crate::storage::LogStore;
use crate::{Error, Options, RaftId, Result, StateMachine};

/// Largest term accepted from a peer. No real quorum gets near it (a term per election), and
/// a message above it could make this node's own term overflow at its next campaign.
pub const TERM_MAX: u64 = u64::MAX / 2;
/// Largest log index accepted from a peer, for the same reason as [`TERM_MAX`].
pub const INDEX_MAX: u64 = u64::MAX / 2;

/// A caller-chosen id for one proposal, unique among the node's pending proposals.
pub type ProposalId = u64;
/// A caller-chosen id for one read, unique for the lifetime of the node (incarnation).
pub type ReadId = u64;

/// The result of a proposal or read, produced by [`Node::ready`].
#[derive(Debug)]
pub enum Outcome {
    /// A proposal finished: the state machine's response, or why it was not applied.
    Proposal {
        /// The id given to [`Node::propose`].
        id: ProposalId,
        /// The response or the error.
        result: Result<Vec<u8>>,
    },
    /// A linearizable read finished with the state machine's answer.
    Read {
        /// The id given to [`Node::read`].
        id: ReadId,
        /// The state machine's answer to the query.
        result: Result<Vec<u8>>,
    },
}

/// A node's role in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks whether it could win an election, without bumping the term (pre-vote).
    PreCandidate,
    /// Campaigns in a new term.
    Candidate,
    /// Leads the current term: accepts proposals and replicates the log.
    Leader,
}

/// What one voter knows about the quorum, for `status` and DescribeQuorum.
#[derive(Clone, Debug)]
pub struct Status {
    /// This voter's id.
    pub id: RaftId,
    /// This voter's role.
    pub role: Role,
    /// The leader of the current term, if known.
    pub leader: Option<RaftId>,
    /// The current term (KRaft's leader epoch).
    pub term: u64,
    /// The highest index known committed (KRaft's high watermark).
    pub commit: u64,
    /// The highest index applied to the local state machine.
    pub applied: u64,
    /// The index of the last entry in the local log.
    pub last_index: u64,
    /// The index of the latest local snapshot; the log before it is compacted.
    pub snapshot_index: u64,
    /// Every voter, sorted by id.
    pub voters: Vec<VoterStatus>,
}

/// One voter as seen from the node reporting the [`Status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterStatus {
    /// The voter's id.
    pub id: RaftId,
    /// The highest index known replicated on it; only the leader knows (`None` elsewhere).
    pub matched: Option<u64>,
    /// How long ago the leader last heard from it (rounded to ticks); only on the leader,
    /// `None` if never. Zero for the leader itself.
    pub last_contact: Option<Duration>,
}

/// A read waiting for its ReadIndex or for the state machine to catch up.
#[derive(Debug)]
struct PendingRead {
    /// The query to run once the read index is applied.
    query: Vec<u8>,
    /// The read index, once raft has confirmed it.
    index: Option<u64>,
    /// The tick at which the ReadIndex request was last sent.
    sent_at_tick: u64,
}

/// The sans-IO raft node. See the module docs.
pub struct Node<S: StateMachine, D: Disk> {
    /// raft-rs itself, owning the storage.
    raw: RawNode<LogStore<D>>,
    /// The replicated state.
    state_machine: S,
    /// Options this node was built with.
    options: Options,
    /// Random per-start value that makes read contexts unique across restarts.
    incarnation: u64,
    /// The last index applied to the state machine.
    applied: u64,
    /// Entries applied since the last snapshot.
    entries_since_snapshot: u64,
    /// Command bytes applied since the last snapshot.
    bytes_since_snapshot: u64,
    /// Accepted proposals by log index: (term of their entry, id).
    proposals: BTreeMap<u64, (u64, ProposalId)>,
    /// Reads in flight, by id.
    reads: HashMap<ReadId, PendingRead>,
    /// Finished proposals and reads not yet taken by the driver.
    outcomes: Vec<Outcome>,
    /// Ticks since the node started.
    ticks: u64,
    /// On the leader: the tick at which each peer last answered an append or heartbeat.
    last_contact: BTreeMap<RaftId, u64>,
    /// Set when `ready` failed; the node must then be dropped.
    failed: bool,
}

impl<S: StateMachine, D: Disk> Node<S, D> {
    /// Starts a node over opened storage, restoring the state machine from the storage's
    /// snapshot. The log after the snapshot is re-applied through the first `ready` calls.
    pub fn new(
        options: &Options,
        mut state_machine: S,
        store: LogStore<D>,
        incarnation: u64,
        logger: &slog::Logger,
    ) -> Result<Self> {
        options.validate()?;
        let snapshot = store.latest_snapshot();
        let applied = snapshot.get_metadata().index;
        if applied > 0 {
            state_machine.restore(&snapshot.data).map_err(|why| {
                Error::Corrupt(format!(
                    "the snapshot at index {applied} does not restore: {why}"
                ))
            })?;
        }
        let raw = RawNode::new(&options.raft_config(applied), store, logger)?;
        Ok(Node {
            raw,
            state_machine,
            options: options.clone(),
            incarnation,
            applied,
            entries_since_snapshot: 0,
            bytes_since_snapshot: 0,
            proposals: BTreeMap::new(),
            reads: HashMap::new(),
            outcomes: Vec::new(),
            ticks: 0,
            last_contact: BTreeMap::new(),
            failed: false,
        })
    }

    /// Advances logical time by one tick, and re-sends reads unanswered for an election
    /// timeout.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.ticks += 1;
        let timeout = self.options.election_tick as u64;
        let mut resend = Vec::new();
        for (id, read) in &mut self.reads {
            if read.index.is_none() && self.ticks >= read.sent_at_tick + timeout {
                read.sent_at_tick = self.ticks;
                resend.push(*id);
            }
        }
        resend.sort_unstable(); // HashMap order is random; keep output deterministic.
        for id in resend {
            self.raw.read_index(self.read_context(id));
        }
    }

    /// Steps a message received from a peer. Refuses (without panicking, and without raft
    /// seeing it) a message that is not addressed to this node, comes from a non-voter, is of
    /// a type peers never send, or would trip one of raft-rs's fatal checks; see
    /// [the module docs](self#inbound-messages).
    pub fn step(&mut self, msg: Message) -> Result<()> {
        if msg.to != self.id() {
            return Err(Error::InvalidInput(format!(
                "message for {} sent to {}",
                msg.to,
                self.id()
            )));
        }
        if !self.raw.store().conf_state().voters.contains(&msg.from) || msg.from == msg.to {
            return Err(Error::InvalidInput(format!(
                "message from non-voter {}",
                msg.from
            )));
        }
        let from = msg.from;
        if let Err(why) = self.check_inbound(&msg) {
            return Err(Error::InvalidInput(format!(
                "{:?} from {from} refused: {why}",
                msg.get_msg_type()
            )));
        }
        let is_response = matches!(
            msg.get_msg_type(),
            MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse
        );
        match self.raw.step(msg) {
            Ok(()) => {}
            Err(raft::Error::StepLocalMsg | raft::Error::StepPeerNotFound) => {
                return Err(Error::InvalidInput(format!(
                    "unexpected message from {from}"
                )));
            }
            Err(err) => return Err(err.into()),
        }
        if is_response && self.is_leader() {
            self.last_contact.insert(from, self.ticks);
        }
        Ok(())
    }

    /// Checks a peer's message against what raft-rs 0.7 assumes of it, so that stepping it
    /// cannot reach a `fatal!` or a panic. Each check names the raft-rs code it guards; the
    /// list is in [the module docs](self#inbound-messages).
    fn check_inbound(&self, msg: &Message) -> std::result::Result<(), String> {
        let log = &self.raw.raft.raft_log;
        let kind = msg.get_msg_type();
        // Only these types travel between Ferry voters. The rest are local (raft-rs refuses
        // them too), forwarded proposals (Ferry refuses proposals on followers instead of
        // forwarding them as MsgPropose) or leadership transfer (unused); a peer's
        // MsgPropose, MsgTransferLeader or MsgReadIndex with a term would be re-sent by a
        // follower with the term set, which `Raft::send` treats as fatal.
        let peer_type = matches!(
            kind,
            MessageType::MsgAppend
                | MessageType::MsgAppendResponse
                | MessageType::MsgRequestVote
                | MessageType::MsgRequestVoteResponse
                | MessageType::MsgRequestPreVote
                | MessageType::MsgRequestPreVoteResponse
                | MessageType::MsgSnapshot
                | MessageType::MsgHeartbeat
                | MessageType::MsgHeartbeatResponse
                | MessageType::MsgReadIndex
                | MessageType::MsgReadIndexResp
        );
        if !peer_type {
            return Err("not a message type voters exchange".into());
        }
        // raft-rs treats term 0 as a local message: a vote request at term 0 would be answered
        // with term 0 (fatal in `Raft::send`) and recorded as a vote in the current term. Only
        // a forwarded MsgReadIndex travels without a term, and it must have none.
        if kind == MessageType::MsgReadIndex {
            if msg.term != 0 {
                return Err("a forwarded read index carries no term".into());
            }
        } else if msg.term == 0 {
            return Err("term 0".into());
        }
        // A term near u64::MAX would overflow `term + 1` at the next election; an index near
        // it overflows `index + 1` in `Unstable::restore`, `Progress::maybe_decr_to`, ….
        let terms = [msg.term, msg.log_term, msg.commit_term];
        let snapshot = msg.get_snapshot().get_metadata();
        let indexes = [msg.index, msg.commit, msg.reject_hint, snapshot.index];
        if terms.iter().any(|t| *t > TERM_MAX) || snapshot.term > TERM_MAX {
            return Err(format!("a term above {TERM_MAX}"));
        }
        if indexes.iter().any(|i| *i > INDEX_MAX) {
            return Err(format!("an index above {INDEX_MAX}"));
        }
        match kind {
            // `step_leader` and `handle_ready_read_index` index `entries[0]`.
            MessageType::MsgReadIndex | MessageType::MsgReadIndexResp if msg.entries.len() != 1 => {
                Err(format!("{} entries instead of 1", msg.entries.len()))
            }
            // `handle_heartbeat` calls `commit_to(m.commit)`, fatal past the last index. A
            // leader sends min(matched, committed), never more than the follower holds.
            MessageType::MsgHeartbeat if msg.commit > log.last_index() => Err(format!(
                "commit {} is past the last index {}",
                msg.commit,
                log.last_index()
            )),
            MessageType::MsgAppend => self.check_append(msg),
            // A follower's answer never reaches past the leader's log, and Ferry never asks for
            // a snapshot (`request_snapshot`): a forged request makes the leader send its
            // bootstrap snapshot, fatal ("need non-empty snapshot").
            MessageType::MsgAppendResponse if msg.request_snapshot != 0 => {
                Err("snapshot requests are not used".into())
            }
            // (Only raft's leader acts on one; a node that led before a restart may still get
            // answers about the longer log it had.)
            MessageType::MsgAppendResponse
                if self.is_leader()
                    && msg.term == self.term()
                    && !msg.reject
                    && msg.index > log.last_index() =>
            {
                Err(format!(
                    "acknowledges index {} past the last index {}",
                    msg.index,
                    log.last_index()
                ))
            }
            MessageType::MsgSnapshot => self.check_snapshot(msg),
            _ => Ok(()),
        }
    }

    /// The checks of [`Node::check_inbound`] for MsgAppend.
    fn check_append(&self, msg: &Message) -> std::result::Result<(), String> {
        // `maybe_append` computes `conflict - (index + 1)` and `append` slices the unstable
        // log assuming entries follow `index` one by one; a gap or a repeat is fatal
        // ("entry conflicts with committed entry", "unstable.slice out of bound").
        let count = msg.entries.len() as u64;
        if msg
            .index
            .checked_add(count)
            .is_none_or(|last| last > INDEX_MAX)
        {
            return Err(format!("index {} overflows", msg.index));
        }
        // `term(i)` answers 0 past the last index, so a previous term of 0 would "match" any
        // index and append after a gap. Only the index-0 bootstrap point has term 0.
        if msg.log_term == 0 && msg.index != 0 {
            return Err(format!("index {} with term 0", msg.index));
        }
        if msg.log_term > msg.term {
            return Err(format!(
                "previous term {} above the message's term {}",
                msg.log_term, msg.term
            ));
        }
        let mut previous_term = msg.log_term;
        for (i, entry) in msg.entries.iter().enumerate() {
            let want = msg.index + 1 + i as u64;
            if entry.index != want {
                return Err(format!("entry {} where {want} was due", entry.index));
            }
            // An entry of term 0 "matches" the term 0 that `term(i)` answers past the last
            // index, so raft-rs appends nothing and then commits it: fatal in `commit_to`.
            if entry.term == 0 {
                return Err(format!("entry {} with term 0", entry.index));
            }
            if entry.term < previous_term || entry.term > msg.term {
                return Err(format!(
                    "entry {} of term {} out of order (previous {previous_term}, message {})",
                    entry.index, entry.term, msg.term
                ));
            }
            previous_term = entry.term;
            // Membership is static: a committed conf change could not be applied.
            if entry.get_entry_type() != EntryType::EntryNormal {
                return Err(format!("entry {} is a membership change", entry.index));
            }
        }
        // An index below the commit is answered without appending, and entries after an index
        // at or above it cannot touch committed entries once they are contiguous.
        Ok(())
    }

    /// The checks of [`Node::check_inbound`] for MsgSnapshot.
    fn check_snapshot(&self, msg: &Message) -> std::result::Result<(), String> {
        let log = &self.raw.raft.raft_log;
        let meta = msg.get_snapshot().get_metadata();
        // Term 0 "matches" any index past the log (see `check_append`), and `restore` then
        // calls `commit_to(index)`, fatal past the last index.
        if meta.index == 0 || meta.term == 0 || meta.term > msg.term {
            return Err(format!(
                "snapshot at index {} of term {} in a message of term {}",
                meta.index, meta.term, msg.term
            ));
        }
        // A snapshot exactly at the commit index that disagrees with the local log would be
        // installed at the applied index (an assertion in `install_snapshot`); older ones
        // raft answers by itself.
        if meta.index == log.committed && !log.match_term(meta.index, meta.term) {
            return Err(format!(
                "snapshot at the commit index {} with another term {}",
                meta.index, meta.term
            ));
        }
        // Membership is static, and `restore` is fatal on a voter set it cannot rebuild.
        let sorted = |voters: &[RaftId]| {
            let mut voters = voters.to_vec();
            voters.sort_unstable();
            voters
        };
        let (theirs, ours) = (meta.get_conf_state(), self.raw.store().conf_state());
        let same_voters = sorted(&theirs.voters) == sorted(&ours.voters);
        let static_set = theirs.learners.is_empty()
            && theirs.voters_outgoing.is_empty()
            && theirs.learners_next.is_empty()
            && !theirs.auto_leave;
        if !same_voters || !static_set {
            return Err(format!(
                "voter set {:?} differs from this quorum's",
                meta.get_conf_state().voters
            ));
        }
        self.state_machine
            .validate_snapshot(&msg.get_snapshot().data)
            .map_err(|why| format!("snapshot data refused by the state machine: {why}"))
    }

    /// Proposes `command`. On success the proposal is in the leader's log and its outcome will
    /// come from [`Node::take_outcomes`]; an error means it was refused and not applied.
    pub fn propose(&mut self, id: ProposalId, command: Vec<u8>) -> Result<()> {
        if command.is_empty() {
            // Empty entries are raft's own no-ops; they never reach the state machine.
            return Err(Error::InvalidInput("a command must not be empty".into()));
        }
        // Whatever enters the log is applied on every voter: refuse here what apply could not
        // (on a follower too, so a handle does not forward what the leader would refuse).
        self.state_machine
            .validate(&command)
            .map_err(|why| Error::InvalidInput(format!("the state machine refused it: {why}")))?;
        if !self.is_leader() {
            return Err(Error::NotLeader {
                leader_hint: self.leader(),
            });
        }
        self.raw.propose(Vec::new(), command)?;
        let index = self.raw.raft.raft_log.last_index();
        let term = self.raw.raft.term;
        if let Some((old_term, old_id)) = self.proposals.insert(index, (term, id)) {
            // This node led an earlier term, proposed at this index, lost the entry to a
            // conflicting leader and now leads again. The old entry might still survive on
            // another voter and be committed by a later leader, so its fate is unknown.
            assert!(
                old_term < term,
                "two proposals at index {index} in term {term}"
            );
            let reason = format!("entry {index} of term {old_term} left this node's log");
            let result = Err(Error::Indeterminate(reason));
            self.outcomes.push(Outcome::Proposal { id: old_id, result });
        }
        Ok(())
    }

    /// Starts a linearizable read of `query`; its answer comes from [`Node::take_outcomes`].
    pub fn read(&mut self, id: ReadId, query: Vec<u8>) {
        let read = PendingRead {
            query,
            index: None,
            sent_at_tick: self.ticks,
        };
        let previous = self.reads.insert(id, read);
        assert!(previous.is_none(), "read id {id} reused");
        self.raw.read_index(self.read_context(id));
    }

    /// Forgets a read the driver gave up on.
    pub fn cancel_read(&mut self, id: ReadId) {
        self.reads.remove(&id);
    }

    /// Tells raft that a message to `peer` could not be delivered.
    pub fn report_unreachable(&mut self, peer: RaftId) {
        self.raw.report_unreachable(peer);
    }

    /// Tells raft whether a snapshot message to `peer` was delivered.
    pub fn report_snapshot(&mut self, peer: RaftId, delivered: bool) {
        let status = if delivered {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer, status);
    }

    /// Whether [`Node::ready`] has work to do.
    pub fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Handles every pending raft `Ready`, in the order raft-rs documents:
    ///
    /// 1. send the messages that may leave before persistence (leader appends, heartbeats);
    /// 2. install a received snapshot into storage and the state machine;
    /// 3. apply committed entries;
    /// 4. persist new entries and the HardState with one write and one fsync;
    /// 5. send the messages that must wait for persistence (votes, append responses);
    /// 6. `advance`, then record the new commit index, send the light ready's messages and
    ///    apply its committed entries; finally serve reads and maybe take a snapshot.
    ///
    /// On an error (disk I/O) the node is unusable and must be dropped: raft cannot continue
    /// after a failed write, and restarting from disk is the recovery.
    pub fn ready(&mut self, send: &mut impl FnMut(Message)) -> Result<()> {
        assert!(!self.failed, "Node::ready called after a failed ready");
        while self.raw.has_ready() {
            if let Err(err) = self.ready_once(send) {
                self.failed = true;
                return Err(err);
            }
        }
        self.serve_reads();
        if let Err(err) = self.maybe_snapshot() {
            self.failed = true;
            return Err(err);
        }
        Ok(())
    }

    /// Handles one `Ready`; see [`Node::ready`].
    fn ready_once(&mut self, send: &mut impl FnMut(Message)) -> Result<()> {
        let mut rd = self.raw.ready();
        rd.take_messages().into_iter().for_each(&mut *send);
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone())?;
        }
        self.apply(rd.take_committed_entries());
        let entries = rd.take_entries();
        self.raw.mut_store().append(&entries, rd.hs())?;
        rd.take_persisted_messages()
            .into_iter()
            .for_each(&mut *send);
        self.on_read_states(rd.take_read_states());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
        }
        light.take_messages().into_iter().for_each(&mut *send);
        self.apply(light.take_committed_entries());
        self.raw.advance_apply();
        Ok(())
    }

    /// Installs a snapshot from the leader. Pending proposals at or below its index can no
    /// longer be matched to their entries, so their outcome is unknown.
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let index = snapshot.get_metadata().index;
        assert!(
            index > self.applied,
            "snapshot {index} is not past applied {}",
            self.applied
        );
        // `step` had the state machine validate the data, so this fails only on a state
        // machine without `validate_snapshot`; stopping the node leaves the disk as it was.
        self.state_machine.restore(&snapshot.data).map_err(|why| {
            Error::Corrupt(format!(
                "the leader's snapshot at {index} does not restore: {why}"
            ))
        })?;
        self.raw.mut_store().install_snapshot(snapshot)?;
        self.applied = index;
        self.entries_since_snapshot = 0;
        self.bytes_since_snapshot = 0;
        let covered: Vec<u64> = self.proposals.range(..=index).map(|(i, _)| *i).collect();
        for i in covered {
            let (_, id) = self.proposals.remove(&i).expect("key was just listed");
            let reason = format!("entry {i} was replaced by a snapshot from the leader");
            self.outcomes.push(Outcome::Proposal {
                id,
                result: Err(Error::Indeterminate(reason)),
            });
        }
        Ok(())
    }

    /// Applies committed entries to the state machine and resolves their proposals.
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            assert_eq!(
                entry.index,
                self.applied + 1,
                "committed entries must be contiguous"
            );
            let response = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => Ok(Vec::new()),
                EntryType::EntryNormal => {
                    self.bytes_since_snapshot += entry.data.len() as u64;
                    Ok(self.state_machine.apply(entry.index, &entry.data))
                }
                // Never proposed by Ferry and refused from peers (`check_append`), so it can
                // only come from a damaged or foreign log. Skipping it is the same on every
                // voter; membership stays the voter set of the snapshot.
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    tracing::error!(
                        index = entry.index,
                        "skipped a membership change entry: membership is static"
                    );
                    Err(Error::InvalidInput(format!(
                        "entry {} is a membership change, which this version does not support",
                        entry.index
                    )))
                }
            };
            self.applied = entry.index;
            self.entries_since_snapshot += 1;
            let Some((term, id)) = self.proposals.remove(&entry.index) else {
                continue;
            };
            let result = if term == entry.term {
                response
            } else {
                Err(Error::Unavailable(format!(
                    "leadership changed and another entry was committed at index {}",
                    entry.index
                )))
            };
            self.outcomes.push(Outcome::Proposal { id, result });
        }
    }

    /// Records read indexes confirmed by raft; contexts from other incarnations are ignored.
    fn on_read_states(&mut self, states: Vec<ReadState>) {
        for state in states {
            let Some(id) = self.parse_read_context(&state.request_ctx) else {
                continue;
            };
            if let Some(read) = self.reads.get_mut(&id) {
                read.index.get_or_insert(state.index);
            }
        }
    }

    /// Answers reads whose read index has been applied.
    fn serve_reads(&mut self) {
        let applied = self.applied;
        let mut done: Vec<ReadId> = self
            .reads
            .iter()
            .filter(|(_, read)| read.index.is_some_and(|index| index <= applied))
            .map(|(id, _)| *id)
            .collect();
        done.sort_unstable();
        for id in done {
            let read = self.reads.remove(&id).expect("id was just listed");
            let answer = self.state_machine.query(&read.query);
            self.outcomes.push(Outcome::Read {
                id,
                result: Ok(answer),
            });
        }
    }

    /// Snapshots the state machine and compacts the log once enough was applied.
    fn maybe_snapshot(&mut self) -> Result<()> {
        let due = self.entries_since_snapshot >= self.options.snapshot_entries
            || self.bytes_since_snapshot >= self.options.snapshot_bytes;
        if !due || self.applied <= self.raw.store().snapshot_index() {
            return Ok(());
        }
        let data = self.state_machine.snapshot();
        let applied = self.applied;
        self.raw.mut_store().save_snapshot(applied, data)?;
        self.entries_since_snapshot = 0;
        self.bytes_since_snapshot = 0;
        Ok(())
    }

    /// Finished proposals and reads since the last call, in completion order.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// The read context for `id`: `incarnation | id`, both big-endian u64.
    fn read_context(&self, id: ReadId) -> Vec<u8> {
        let mut ctx = self.incarnation.to_be_bytes().to_vec();
        ctx.extend(id.to_be_bytes());
        ctx
    }

    /// The read id in a context made by this incarnation, if it is one.
    fn parse_read_context(&self, ctx: &[u8]) -> Option<ReadId> {
        let (incarnation, id) = ctx.split_at_checked(8)?;
        if incarnation != self.incarnation.to_be_bytes() {
            return None;
        }
        Some(ReadId::from_be_bytes(id.try_into().ok()?))
    }

    /// This node's id.
    pub fn id(&self) -> RaftId {
        self.raw.raft.id
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<RaftId> {
        Some(self.raw.raft.leader_id).filter(|id| *id != raft::INVALID_ID)
    }

    /// Whether this node is the leader of its current term.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The last index applied to the state machine.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The highest index known committed (KRaft's high watermark).
    pub fn commit(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// The index of the last entry in the local log.
    pub fn last_index(&self) -> u64 {
        self.raw.raft.raft_log.last_index()
    }

    /// This node's role in its current term.
    pub fn role(&self) -> Role {
        match self.raw.raft.state {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }

    /// The state machine, for inspection.
    pub fn state_machine(&self) -> &S {
        &self.state_machine
    }

    /// The storage, for inspection.
    pub fn store(&self) -> &LogStore<D> {
        self.raw.store()
    }

    /// Number of proposals accepted and not yet resolved.
    pub fn pending_proposals(&self) -> usize {
        self.proposals.len()
    }

    /// A snapshot of this node's view of the quorum.
    pub fn status(&self) -> Status {
        let raft = &self.raw.raft;
        let role = self.role();
        let mut voters: Vec<RaftId> = self.store().conf_state().voters.clone();
        voters.sort_unstable();
        let voters = voters
            .into_iter()
            .map(|id| self.voter_status(id, role == Role::Leader))
            .collect();
        Status {
            id: self.id(),
            role,
            leader: self.leader(),
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: self.applied,
            last_index: raft.raft_log.last_index(),
            snapshot_index: self.store().snapshot_index(),
            voters,
        }
    }

    /// One voter's replication state; only meaningful on the leader.
    fn voter_status(&self, id: RaftId, leader: bool) -> VoterStatus {
        if !leader {
            return VoterStatus {
                id,
                matched: None,
                last_contact: None,
            };
        }
        let matched = self.raw.raft.prs().get(id).map(|progress| progress.matched);
        let last_contact = if id == self.id() {
            Some(Duration::ZERO)
        } else {
            self.last_contact.get(&id).map(|tick| {
                self.options.tick_interval * (self.ticks - tick).min(u32::MAX as u64) as u32
            })
        };
        VoterStatus {
            id,
            matched,
            last_contact,
        }
    }
}
