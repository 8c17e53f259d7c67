//! DeleteGroups (key 42): removes empty groups and their committed offsets.
//!
//! # Errors (per group)
//! NON_EMPTY_GROUP while the group has members (nothing changes), GROUP_ID_NOT_FOUND for an
//! unknown group, INVALID_GROUP_ID for an empty id, and the routing errors.
//!
//! # Guarantees
//! Success is answered once the tombstones of the group and of each offset are replicated.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::group_coordinator::GroupCoordinator;
use crate::group::coordinator::Output;

impl GroupCoordinator {
    /// Answers a DeleteGroups request.
    pub(super) async fn delete_groups(&self, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for group_id in request.groups_names {
            let id = group_id.0.to_string();
            let outcome = if id.is_empty() {
                Err(ResponseError::InvalidGroupId)
            } else {
                self.with_group(&id, |coordinator, now| {
                    match coordinator.delete_group(now, &id) {
                        Ok(output) => (Ok(()), output),
                        Err(code) => (Err(code), Output::default()),
                    }
                })
                .await
                .and_then(|r| r)
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(outcome.err().map_or(0, |e| e.code())),
            );
        }
        DeleteGroupsResponse::default().with_results(results)
    }
}
