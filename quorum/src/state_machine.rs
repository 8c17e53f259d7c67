//! The replicated state: whatever sits on the quorum implements [`StateMachine`].
//!
//! The quorum feeds committed commands to [`StateMachine::apply`] in log order, exactly once
//! per incarnation of the state machine. The state machine is *volatile*: it lives in memory and
//! is rebuilt on restart from the latest snapshot ([`StateMachine::restore`]) followed by the
//! committed log after it. So it needs no durability of its own, and `apply` must not do I/O
//! whose effects would survive a restart (that would happen twice).
//!
//! # Determinism
//!
//! Every voter applies the same commands in the same order and must reach the same state.
//! `apply` must therefore be a pure function of the current state and the command: no clock,
//! no randomness, no iteration over hash maps with random seeds, no environment. When `apply`
//! meets a condition it cannot handle deterministically (a bug, an impossible command), it must
//! **panic** rather than return something that would make this voter diverge from the others.
//! A command that is merely invalid for the current state (a topic that already exists) is not
//! such a condition: encode the refusal in the response, identically on every voter.

/// A deterministic state machine replicated by the quorum.
pub trait StateMachine: Send + 'static {
    /// Applies one committed command at raft log `index` and returns the response given to the
    /// proposer (empty if nobody cares). Indexes increase strictly; commands are never empty.
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8>;

    /// Serializes the whole state, as of the last applied index, into bytes that
    /// [`StateMachine::restore`] accepts on any voter.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot taken by [`StateMachine::snapshot`] (possibly on
    /// another voter). Panics if `data` is not a valid snapshot: it passed a CRC check, so a
    /// failure here is a bug, not bad input.
    fn restore(&mut self, data: &[u8]);

    /// Answers a read-only query against the current state. The quorum calls it only after a
    /// ReadIndex round has confirmed that the state includes every write committed before the
    /// read began, so the answer is linearizable. Must not change the state.
    fn query(&self, query: &[u8]) -> Vec<u8>;
}
