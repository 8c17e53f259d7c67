//! ListOffsets (key 2): finds offsets by time, or the earliest / latest / max-timestamp offset.
//!
//! ```text
//! timestamp -2  earliest: the log start offset
//! timestamp -1  latest: the high watermark (also the last stable offset: no transactions)
//! timestamp -3  the offset of the record with the largest timestamp (v7+)
//! timestamp >=0 the first offset whose timestamp is >= it, or -1 if there is none
//! ```

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::partitions::Partitions;

/// Special timestamps of ListOffsets.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// Answers a ListOffsets request.
pub(super) fn handle(
    held: &Partitions,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|asked| list_partition_offset(held, &topic.name.0, asked, version))
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn list_partition_offset(
    held: &Partitions,
    topic: &str,
    asked: &ListOffsetsPartition,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let response = ListOffsetsPartitionResponse::default()
        .with_partition_index(asked.partition_index)
        .with_timestamp(-1)
        .with_offset(-1)
        .with_leader_epoch(-1);
    let error = |code: ResponseError| response.clone().with_error_code(code.code());
    let Some(partition) = held.get(topic, asked.partition_index) else {
        return error(ResponseError::UnknownTopicOrPartition);
    };
    let mut inner = partition.lock();
    if let Err(code) = inner.check_leader(held.node_id(), asked.current_leader_epoch) {
        return error(code);
    }
    let epoch = inner.state.leader_epoch;
    // The leader epoch field exists from v4 on; the codec refuses it before.
    let response = if version >= 4 {
        response.clone().with_leader_epoch(epoch)
    } else {
        response.clone()
    };
    let found = match asked.timestamp {
        LATEST => Ok(Some((inner.high_watermark, -1))),
        EARLIEST => Ok(Some((inner.log.log_start_offset(), -1))),
        MAX_TIMESTAMP => inner.log.max_timestamp(),
        ts if ts >= 0 => inner.log.offset_for_timestamp(ts),
        _ => return error(ResponseError::InvalidRequest),
    };
    match found {
        Ok(Some((offset, timestamp))) if offset <= inner.high_watermark => {
            response.with_offset(offset).with_timestamp(timestamp)
        }
        Ok(_) => response,
        Err(e) => response.with_error_code(e.kafka_code()),
    }
}
