//! The control plane's replicated store: commands as they arrive in committed raft entries
//! (from `ferry.quorum.v1.Raft/Propose` or a leader's append), applied by its state machine.

use ferry_control_plane::store::{Command, State};
use ferry_quorum::StateMachine;

/// Applies each line of `data` as one command, at raft indexes 1, 2, ..., to a fresh store
/// state, then checks that the state's snapshot restores. A refused command is a response; a
/// panic is a finding.
///
/// Lines that do not decode as a [`Command`] are skipped: today `apply` panics on them by
/// design (issue 13's poison command). When `apply` turns them into a recorded no-op, drop
/// the filter so the target covers that path too.
pub fn store_command(data: &[u8]) {
    let mut state = State::default();
    let mut index = 0;
    for line in crate::lines(data) {
        if serde_json::from_slice::<Command>(line).is_err() {
            continue;
        }
        index += 1;
        let _response = state.apply(index, line);
    }
    let snapshot = state.snapshot();
    State::default().restore(&snapshot);
}
