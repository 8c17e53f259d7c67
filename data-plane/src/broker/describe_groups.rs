//! DescribeGroups (key 15): state, protocol and members of groups.
//!
//! A group the coordinator does not know is described as `Dead` with no members and no error,
//! as Kafka does up to v5. Member assignments are reported once the group is Stable.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_coordinator::GroupCoordinator;
use crate::group::state::GroupState;

/// `authorized_operations` when the client did not ask (Kafka's INT32_MIN sentinel).
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

impl GroupCoordinator {
    /// Answers a DescribeGroups request.
    pub(super) fn describe_groups(&self, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
        let groups = request
            .groups
            .into_iter()
            .map(|group_id| {
                let described = DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
                if group_id.0.is_empty() {
                    return described.with_error_code(ResponseError::InvalidGroupId.code());
                }
                let result = self.read_group(group_id.0.as_str(), |coordinator, _| {
                    coordinator.group(group_id.0.as_str()).cloned()
                });
                match result {
                    Err(code) => described.with_error_code(code.code()),
                    Ok(None) => described
                        .with_group_state(StrBytes::from_static_str(GroupState::Dead.name())),
                    Ok(Some(group)) => {
                        let protocol = group.protocol.clone().unwrap_or_default();
                        let stable = group.state == GroupState::Stable;
                        let members = group
                            .members
                            .values()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_group_instance_id(
                                        m.group_instance_id.clone().map(StrBytes::from_string),
                                    )
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_member_metadata(
                                        m.metadata(&protocol).cloned().unwrap_or_default(),
                                    )
                                    .with_member_assignment(if stable {
                                        m.assignment.clone()
                                    } else {
                                        Default::default()
                                    })
                            })
                            .collect();
                        described
                            .with_group_state(StrBytes::from_static_str(group.state.name()))
                            .with_protocol_type(StrBytes::from_string(
                                group.protocol_type.clone().unwrap_or_default(),
                            ))
                            .with_protocol_data(StrBytes::from_string(protocol))
                            .with_members(members)
                    }
                }
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
