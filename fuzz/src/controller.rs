//! The controller's metadata state machine: commands as they arrive in committed raft entries
//! (`ferry.controller.v1.Controller/Execute` carries one as JSON), applied to the metadata image.

use ferry_data_plane::controller::{Command, Limits, MetadataStateMachine};
use ferry_quorum::StateMachine;

/// The cluster id of the state machine under test; seeds register brokers with it.
pub const CLUSTER_ID: &str = "fuzz-cluster";

/// Validates each line of `data` as a proposal would be, then applies it as one command, at
/// raft indexes 1, 2, ..., to a fresh metadata state machine (whose image is checked after
/// every change in builds with debug assertions; a follower applies what a leader appended,
/// validated or not), then checks that its snapshot restores. A refused command is a result
/// and a line that does not decode as a [`Command`] a recorded no-op; a panic is a finding.
pub fn controller_command(data: &[u8]) {
    let mut state = MetadataStateMachine::new(CLUSTER_ID, Limits::default());
    for (line, index) in crate::lines(data).zip(1..) {
        if state.validate(line).is_ok() {
            assert!(
                Command::decode(line).is_ok(),
                "a command that validates decodes"
            );
        }
        let _result = state.apply(index, line);
    }
    let snapshot = state.snapshot();
    MetadataStateMachine::new(CLUSTER_ID, Limits::default())
        .restore(&snapshot)
        .expect("a metadata snapshot restores");
}
