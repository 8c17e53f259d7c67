//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin.
//!
//! # Errors
//! REBALANCE_IN_PROGRESS (rejoin), ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID
//! (v3+ static members), and the routing errors NOT_COORDINATOR and
//! COORDINATOR_LOAD_IN_PROGRESS.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::group_coordinator::GroupCoordinator;

impl GroupCoordinator {
    /// Answers a Heartbeat request.
    pub(super) fn heartbeat(&self, request: HeartbeatRequest) -> HeartbeatResponse {
        let group_id = request.group_id.0.to_string();
        let result = if group_id.is_empty() {
            Err(ResponseError::InvalidGroupId)
        } else {
            let instance = request.group_instance_id.as_ref().map(|i| i.as_str());
            self.read_group(&group_id, |coordinator, now| {
                coordinator.heartbeat(
                    now,
                    &group_id,
                    request.member_id.as_str(),
                    instance,
                    request.generation_id,
                )
            })
            .and_then(|r| r)
        };
        HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
    }
}
