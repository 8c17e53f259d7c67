//! LeaveGroup (key 13): members leave, and the rest rebalance.
//!
//! v0–2 name one member; v3+ a batch of members, each by member id or (static members, with an
//! empty member id) by `group.instance.id`, with an error per member.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::group_coordinator::GroupCoordinator;

impl GroupCoordinator {
    /// Answers a LeaveGroup request.
    pub(super) async fn leave_group(
        &self,
        request: LeaveGroupRequest,
        version: i16,
    ) -> LeaveGroupResponse {
        let group_id = request.group_id.0.to_string();
        let members: Vec<(String, Option<String>)> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(request.member_id.to_string(), None)]
        };
        if group_id.is_empty() {
            return LeaveGroupResponse::default()
                .with_error_code(ResponseError::InvalidGroupId.code());
        }
        let routed = self
            .with_group(&group_id, |coordinator, now| {
                coordinator.leave(now, &group_id, &members)
            })
            .await;
        let results = match routed {
            Ok(results) => results,
            Err(code) => return LeaveGroupResponse::default().with_error_code(code.code()),
        };
        if version < 3 {
            let code = results[0].err().map_or(0, |e| e.code());
            return LeaveGroupResponse::default().with_error_code(code);
        }
        let responses = request
            .members
            .into_iter()
            .zip(results)
            .map(|(m, result)| {
                MemberResponse::default()
                    .with_member_id(m.member_id)
                    .with_group_instance_id(m.group_instance_id)
                    .with_error_code(result.err().map_or(0, |e| e.code()))
            })
            .collect();
        LeaveGroupResponse::default().with_members(responses)
    }
}
