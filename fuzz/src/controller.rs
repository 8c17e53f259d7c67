//! The controller's metadata state machine: commands as they arrive in committed raft entries
//! (`ferry.controller.v1.Controller/Execute` carries one as JSON), applied to the metadata image.

use ferry_data_plane::controller::{Command, Limits, MetadataStateMachine};
use ferry_quorum::StateMachine;

/// The cluster id of the state machine under test; seeds register brokers with it.
pub const CLUSTER_ID: &str = "fuzz-cluster";

/// Applies each line of `data` as one command, at raft indexes 1, 2, ..., to a fresh metadata
/// state machine (whose image is checked after every change in builds with debug assertions),
/// then checks that its snapshot restores. A refused command is a result; a panic is a finding.
///
/// Lines that do not decode as a [`Command`] are skipped: today `apply` panics on them by
/// design (issue 13's poison command). When `apply` turns them into a recorded no-op, drop
/// the filter so the target covers that path too.
pub fn controller_command(data: &[u8]) {
    let mut state = MetadataStateMachine::new(CLUSTER_ID, Limits::default());
    let mut index = 0;
    for line in crate::lines(data) {
        if Command::decode(line).is_err() {
            continue;
        }
        index += 1;
        let _result = state.apply(index, line);
    }
    let snapshot = state.snapshot();
    MetadataStateMachine::new(CLUSTER_ID, Limits::default()).restore(&snapshot);
}
