//! OffsetCommit (key 8): stores a group's consumed positions.
//!
//! The commit is checked against the group (see [`crate::group::coordinator`] for the rules:
//! simple commits, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
//! REBALANCE_IN_PROGRESS), written to the group's `__consumer_offsets` partition, and answered
//! once the in-sync replicas have it. A partition of a topic that does not exist gets
//! UNKNOWN_TOPIC_OR_PARTITION and is not stored; the rest of the request still is.
//!
//! A commit the in-sync replicas do not acknowledge within `offsets.commit.timeout.ms` gets
//! REQUEST_TIMED_OUT (it may or may not be stored; the client retries), and one whose
//! coordinator lost the partition meanwhile gets NOT_COORDINATOR.
//!
//! v2–9 are served; `retention_time_ms` (v2–4) is ignored as in Kafka ≥2.1, where the broker's
//! `offsets.retention.minutes` decides. Topic ids (v10+) are not served.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::group_coordinator::GroupCoordinator;
use crate::group::coordinator::{OffsetToCommit, Output, PartitionResults};

impl GroupCoordinator {
    /// Answers an OffsetCommit request.
    pub(super) async fn offset_commit(&self, request: OffsetCommitRequest) -> OffsetCommitResponse {
        let group_id = request.group_id.0.to_string();
        let image = self.image();
        // Which partitions exist; the others are answered without being stored.
        let mut to_commit = Vec::new();
        let mut known = Vec::new();
        for topic in &request.topics {
            for p in &topic.partitions {
                let exists = image.topics.get(topic.name.0.as_str()).is_some_and(|t| {
                    p.partition_index >= 0 && (p.partition_index as usize) < t.partitions.len()
                });
                known.push(exists);
                if exists {
                    to_commit.push(OffsetToCommit {
                        topic: topic.name.0.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    });
                }
            }
        }
        let member_id = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        let generation = request.generation_id_or_member_epoch;
        let outcome: Result<PartitionResults, ResponseError> = if group_id.is_empty() {
            Err(ResponseError::InvalidGroupId)
        } else {
            self.with_group(&group_id, |coordinator, now| {
                if let Err(code) = coordinator.validate_commit(
                    &group_id,
                    &member_id,
                    instance.as_deref(),
                    generation,
                ) {
                    return (Err(code), Output::default());
                }
                let (results, records) = coordinator.commit(now, &group_id, to_commit);
                let output = Output {
                    records,
                    ..Output::default()
                };
                (Ok(results), output)
            })
            .await
            .and_then(|r| r)
        };
        let mut results = match &outcome {
            Ok(results) => results.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let mut known = known.into_iter();
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = if !known.next().expect("one flag per partition") {
                            ResponseError::UnknownTopicOrPartition.code()
                        } else {
                            match &outcome {
                                Ok(_) => results
                                    .next()
                                    .expect("one result per stored partition")
                                    .err()
                                    .map_or(0, |e| e.code()),
                                Err(code) => code.code(),
                            }
                        };
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }
}
