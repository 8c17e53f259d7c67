//! ListGroups (key 16): the groups this broker coordinates.
//!
//! Clients ask every broker and merge the answers. v4+ filter by state (case-insensitive, as
//! Kafka compares), v5+ by group type: every group here is `classic`. While an offsets
//! partition led here is still loading the answer carries COORDINATOR_LOAD_IN_PROGRESS with the
//! groups known so far.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_coordinator::GroupCoordinator;

/// The only group type Ferry serves.
const GROUP_TYPE_CLASSIC: &str = "classic";

impl GroupCoordinator {
    /// Answers a ListGroups request.
    pub(super) fn list_groups(&self, request: ListGroupsRequest) -> ListGroupsResponse {
        let states: Vec<String> = request
            .states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let types: Vec<String> = request
            .types_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let mut groups = Vec::new();
        if types.is_empty() || types.iter().any(|t| t == GROUP_TYPE_CLASSIC) {
            self.each_coordinator(|coordinator| {
                for g in coordinator.list() {
                    if !states.is_empty() && !states.contains(&g.state.name().to_ascii_lowercase())
                    {
                        continue;
                    }
                    groups.push(
                        ListedGroup::default()
                            .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                            .with_protocol_type(StrBytes::from_string(g.protocol_type))
                            .with_group_state(StrBytes::from_static_str(g.state.name()))
                            .with_group_type(StrBytes::from_static_str(GROUP_TYPE_CLASSIC)),
                    );
                }
            });
        }
        groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        let error = if self.coordinator_loading() {
            ResponseError::CoordinatorLoadInProgress.code()
        } else {
            0
        };
        ListGroupsResponse::default()
            .with_error_code(error)
            .with_groups(groups)
    }
}
