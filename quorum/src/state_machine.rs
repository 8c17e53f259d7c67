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
//! no randomness, no iteration over hash maps with random seeds, no environment. A command
//! that is merely invalid for the current state (a topic that already exists) is not a
//! failure: encode the refusal in the response, identically on every voter.
//!
//! # Input that cannot be applied
//!
//! A command is checked twice. Before it is proposed, the leader calls
//! [`StateMachine::validate`], and a refusal keeps it out of the log ([`crate::Error::InvalidInput`]
//! to the proposer, KIND_INVALID_INPUT over gRPC). Should an entry that does not decode reach
//! the log anyway (a log written by another version, a bug), `apply` must not panic: a panic
//! would repeat on every restart and on every voter, and the quorum would stay down for good.
//! It applies such an entry as a **no-op that records the error in the state** (a counter and
//! the last error, say), so the record is identical on every voter and covered by snapshots,
//! and logs it.
//!
//! Likewise a snapshot that does not decode is an error, never a panic:
//! [`StateMachine::validate_snapshot`] lets the quorum refuse a leader's snapshot before raft
//! installs it, and [`StateMachine::restore`] reports a damaged one on disk, which stops the
//! node with [`crate::Error::Corrupt`] for an operator to look at.

/// A deterministic state machine replicated by the quorum.
pub trait StateMachine: Send + 'static {
    /// Checks, before it is proposed, that `command` decodes and can be applied (checks that do
    /// not depend on the state; those stay in `apply`). An error keeps it out of the log and
    /// is returned to the proposer as invalid input.
    fn validate(&self, command: &[u8]) -> Result<(), String>;

    /// Applies one committed command at raft log `index` and returns the response given to the
    /// proposer (empty if nobody cares). Indexes increase strictly; commands are never empty.
    /// Never panics on the command's bytes: an entry that does not decode (one proposed by
    /// another version, say) is applied as a no-op that records its error in the state,
    /// identically on every voter and covered by snapshots.
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8>;

    /// Serializes the whole state, as of the last applied index, into bytes that
    /// [`StateMachine::restore`] accepts on any voter.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot taken by [`StateMachine::snapshot`] (possibly on
    /// another voter). On an error (data that does not decode) the state is left as it was.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;

    /// Checks that a snapshot from the leader would restore, before raft accepts it. The
    /// default accepts everything, and a snapshot that then fails to restore stops the node.
    fn validate_snapshot(&self, data: &[u8]) -> Result<(), String> {
        let _ = data;
        Ok(())
    }

    /// Answers a read-only query against the current state. The quorum calls it only after a
    /// ReadIndex round has confirmed that the state includes every write committed before the
    /// read began, so the answer is linearizable. Must not change the state.
    fn query(&self, query: &[u8]) -> Vec<u8>;
}
