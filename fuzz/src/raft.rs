//! The raft transport's inbound path: a `Raft.Send` request, its raft messages decoded, and
//! each one stepped into a voter of a three-voter quorum, as `ferry.quorum.v1.Raft/Send` and
//! the node task do.

use std::collections::BTreeMap;

use ferry_proto::quorum::v1 as pb;
use ferry_quorum::logger::discard_logger;
use ferry_quorum::transport::decode_message;
use ferry_quorum::{LogStore, MemDisk, Message, Node, Options, RaftId, StateMachine};
use prost::Message as _;
use raft::prelude::MessageType;

/// The voter under test.
const SELF_ID: RaftId = 1;
/// The quorum's voters.
const VOTERS: [RaftId; 3] = [1, 2, 3];
/// Ticks given to the voter to start an election before it is made leader.
const ELECTION_TICKS_MAX: usize = 100;

/// A state machine that accepts every command and snapshot (the quorum is under test here, not
/// a state machine: those have targets of their own).
#[derive(Default)]
struct Sink {
    applied: u64,
}

impl StateMachine for Sink {
    fn validate(&self, _command: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn apply(&mut self, index: u64, _command: &[u8]) -> Vec<u8> {
        self.applied = index;
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.applied.to_be_bytes().to_vec()
    }

    fn restore(&mut self, _data: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn query(&self, _query: &[u8]) -> Vec<u8> {
        Vec::new()
    }
}

/// `data[0]`'s low bit chooses the voter's role (0: a fresh follower, 1: the leader of term
/// 2 after winning an election); the rest is a `SendRequest` as a peer sends it. Every message
/// that decodes and is addressed to the voter is stepped, and the voter's `ready` runs after
/// each, as the node task does. Refusals are errors; a panic is a finding.
pub fn raft_message(data: &[u8]) {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    let Ok(request) = pb::SendRequest::decode(rest) else {
        return;
    };
    let mut messages = Vec::new();
    for bytes in &request.messages {
        let Ok(msg) = decode_message(bytes) else {
            return; // the transport refuses the whole call
        };
        if msg.to != SELF_ID {
            return; // likewise
        }
        messages.push(msg);
    }
    let mut node = voter();
    if role & 1 == 1 {
        elect(&mut node);
    }
    for msg in messages {
        if node.step(msg).is_err() {
            continue;
        }
        node.ready(&mut |_| {})
            .expect("a memory disk does not fail");
    }
}

/// A fresh voter 1 of {1, 2, 3} over a memory disk.
fn voter() -> Node<Sink, MemDisk> {
    let peers: BTreeMap<RaftId, String> = VOTERS
        .iter()
        .map(|id| (*id, format!("voter-{id}:9093")))
        .collect();
    let options = Options {
        id: SELF_ID,
        peers,
        ..Options::default()
    };
    let store = LogStore::open(MemDisk::new(), &VOTERS).expect("a memory disk opens");
    Node::new(&options, Sink::default(), store, 0, &discard_logger()).expect("valid options")
}

/// Ticks `node` into an election and answers its (pre-)vote requests to voter 2 with a grant.
fn elect(node: &mut Node<Sink, MemDisk>) {
    let mut asked = Vec::new();
    for _ in 0..ELECTION_TICKS_MAX {
        node.tick();
        node.ready(&mut |msg: Message| asked.push(msg))
            .expect("a memory disk does not fail");
        while let Some(request) = asked.pop() {
            let kind = match request.get_msg_type() {
                MessageType::MsgRequestPreVote => MessageType::MsgRequestPreVoteResponse,
                MessageType::MsgRequestVote => MessageType::MsgRequestVoteResponse,
                _ => continue,
            };
            if request.to != 2 {
                continue;
            }
            let mut grant = Message::default();
            grant.set_msg_type(kind);
            grant.from = 2;
            grant.to = SELF_ID;
            grant.term = request.term;
            node.step(grant).expect("a vote from a voter is accepted");
            node.ready(&mut |msg: Message| asked.push(msg))
                .expect("a memory disk does not fail");
        }
        if node.is_leader() {
            return;
        }
    }
    panic!("a voter granted every vote becomes leader within {ELECTION_TICKS_MAX} ticks");
}
