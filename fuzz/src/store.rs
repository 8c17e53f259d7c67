//! The control plane's replicated store: commands as they arrive in committed raft entries
//! (from `ferry.quorum.v1.Raft/Propose` or a leader's append), applied by its state machine.

use ferry_control_plane::store::{Command, State};
use ferry_quorum::StateMachine;

/// Validates each line of `data` as a proposal would be, then applies it as one command, at
/// raft indexes 1, 2, ..., to a fresh store state (a follower applies what a leader appended,
/// validated or not), then checks that the state's snapshot restores. A refused command is a
/// response and a line that does not decode as a [`Command`] a recorded no-op; a panic is a
/// finding.
pub fn store_command(data: &[u8]) {
    let mut state = State::default();
    for (line, index) in crate::lines(data).zip(1..) {
        let valid = state.validate(line);
        if valid.is_ok() {
            assert!(
                serde_json::from_slice::<Command>(line).is_ok(),
                "a command that validates decodes"
            );
        }
        let _response = state.apply(index, line);
    }
    let snapshot = state.snapshot();
    State::default()
        .restore(&snapshot)
        .expect("a store snapshot restores");
}
