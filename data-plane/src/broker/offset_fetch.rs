//! OffsetFetch (key 9): a group's committed positions.
//!
//! v1–7 ask for one group (v2+: `topics = null` means every committed partition), v8+ for a
//! batch of groups. A partition without a commit answers offset -1. Group-level errors
//! (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, …) are the top-level error from v2 and per
//! partition in v1, as Kafka does. `require_stable` (v7+) needs no waiting: Ferry has no
//! transactional commits, so no offset is ever pending.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::group_coordinator::GroupCoordinator;
use crate::group::records::CommittedOffset;

/// One group's answer: per topic, per partition, the commit or an error.
type Fetched = Vec<(
    String,
    Vec<(i32, Result<Option<CommittedOffset>, ResponseError>)>,
)>;

impl GroupCoordinator {
    /// Answers an OffsetFetch request.
    pub(super) fn offset_fetch(
        &self,
        request: OffsetFetchRequest,
        version: i16,
    ) -> OffsetFetchResponse {
        if version >= 8 {
            let groups = request
                .groups
                .into_iter()
                .map(|g| {
                    let wanted = g.topics.map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes))
                            .collect()
                    });
                    let (error, fetched) = self.fetch_group(g.group_id.0.as_str(), wanted);
                    let topics = fetched
                        .into_iter()
                        .map(|(topic, partitions)| {
                            let partitions = partitions
                                .into_iter()
                                .map(|(index, result)| {
                                    let (offset, epoch, metadata, code) = fields(result);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(metadata)
                                        .with_error_code(code)
                                })
                                .collect();
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(topic)))
                                .with_partitions(partitions)
                        })
                        .collect();
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_topics(topics)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            return OffsetFetchResponse::default().with_groups(groups);
        }
        let wanted = request.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let (error, fetched) = self.fetch_group(request.group_id.0.as_str(), wanted.clone());
        // v1 has no top-level error: a group-level error goes on every partition asked for.
        let fetched = match (error, version) {
            (Some(code), 1) => wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, Err(code))).collect()))
                .collect(),
            _ => fetched,
        };
        let topics = fetched
            .into_iter()
            .map(|(topic, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, result)| {
                        let (offset, epoch, metadata, code) = fields(result);
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_metadata(metadata)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(partitions)
            })
            .collect();
        OffsetFetchResponse::default()
            .with_topics(topics)
            .with_error_code(error.map_or(0, |e| e.code()))
    }

    /// One group's committed offsets, or a group-level error.
    fn fetch_group(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> (Option<ResponseError>, Fetched) {
        if group_id.is_empty() {
            return (Some(ResponseError::InvalidGroupId), vec![]);
        }
        let flat = wanted.as_ref().map(|ts| {
            ts.iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect()
        });
        let result = self.read_group(group_id, |coordinator, _| coordinator.fetch(group_id, flat));
        let found = match result {
            Ok(found) => found,
            Err(code) => return (Some(code), vec![]),
        };
        let mut fetched: Fetched = Vec::new();
        for ((topic, partition), value) in found {
            match fetched.last_mut() {
                Some((t, ps)) if *t == topic => ps.push((partition, Ok(value))),
                _ => fetched.push((topic, vec![(partition, Ok(value))])),
            }
        }
        (None, fetched)
    }
}

/// Offset, leader epoch, metadata and error code of one partition's answer.
fn fields(
    result: Result<Option<CommittedOffset>, ResponseError>,
) -> (i64, i32, Option<StrBytes>, i16) {
    match result {
        Ok(Some(c)) => (
            c.offset,
            c.leader_epoch,
            Some(StrBytes::from_string(c.metadata)),
            0,
        ),
        Ok(None) => (-1, -1, Some(StrBytes::default()), 0),
        Err(code) => (-1, -1, Some(StrBytes::default()), code.code()),
    }
}
