//! OffsetForLeaderEpoch (key 23): "where did leader epoch E end?", from the leader-epoch cache.
//!
//! Consumers ask it to detect log truncation after a leader change (KIP-320: librdkafka
//! validates its position with it), and followers may ask it before fetching (KIP-101; Ferry's
//! followers use DivergingEpoch in Fetch instead, but the answer is the same).
//!
//! # Expected flow
//! For each partition: find it (UNKNOWN_TOPIC_OR_PARTITION), check this broker leads it in
//! `current_leader_epoch` (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH;
//! -1 skips the epoch check), then answer `(largest epoch ≤ E, end offset of E)`: the start
//! of the next larger epoch, or the log end offset when E is the latest; (-1, -1) when the log
//! knows no epoch at or below E. A consumer (replica id < 0) gets the end offset capped at
//! the high watermark, since it may only read below it; a follower gets the log's.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::partitions::Partitions;

/// Answers an OffsetForLeaderEpoch request.
pub(super) fn handle(
    held: &Partitions,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let consumer = request.replica_id.0 < 0;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|asked| {
                    let answer = EpochEndOffset::default()
                        .with_partition(asked.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = held.get(&topic.topic.0, asked.partition) else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let inner = partition.lock();
                    if let Err(code) =
                        inner.check_leader(held.node_id(), asked.current_leader_epoch)
                    {
                        return answer.with_error_code(code.code());
                    }
                    match inner.log.end_offset_for_epoch(asked.leader_epoch) {
                        Some((epoch, end)) => {
                            let end = if consumer {
                                end.min(inner.high_watermark)
                            } else {
                                end
                            };
                            answer.with_leader_epoch(epoch).with_end_offset(end)
                        }
                        None => answer,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
