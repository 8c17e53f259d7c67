//! OffsetDelete (key 47): removes a group's committed offsets for some partitions.
//!
//! # Errors
//! GROUP_SUBSCRIBED_TO_TOPIC per partition of a topic the group's members subscribe to (its
//! offset stays); GROUP_ID_NOT_FOUND for an unknown group; NON_EMPTY_GROUP for an active group
//! that is not a consumer group (its subscriptions cannot be read).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::group_coordinator::GroupCoordinator;
use crate::group::coordinator::Output;

impl GroupCoordinator {
    /// Answers an OffsetDelete request.
    pub(super) async fn offset_delete(&self, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
        let group_id = request.group_id.0.to_string();
        let partitions: Vec<(String, i32)> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index))
            })
            .collect();
        let outcome = if group_id.is_empty() {
            Err(ResponseError::InvalidGroupId)
        } else {
            self.with_group(&group_id, |coordinator, _| {
                match coordinator.delete_offsets(&group_id, partitions) {
                    Ok((results, records)) => (
                        Ok(results),
                        Output {
                            records,
                            ..Output::default()
                        },
                    ),
                    Err(code) => (Err(code), Output::default()),
                }
            })
            .await
            .and_then(|r| r)
        };
        let mut results = match outcome {
            Ok(results) => results.into_iter(),
            Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
        };
        let topics = request
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = results.next().expect("one result per partition");
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code.err().map_or(0, |e| e.code()))
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetDeleteResponse::default().with_topics(topics)
    }
}
