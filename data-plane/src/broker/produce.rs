//! Produce (key 0): appends record batches to partition logs.
//!
//! # Expected flow
//! For each partition: find it (UNKNOWN_TOPIC_OR_PARTITION), check this broker leads it
//! (NOT_LEADER_OR_FOLLOWER), for acks=all check the ISR against `min.insync.replicas` before
//! writing anything (NOT_ENOUGH_REPLICAS), then append: the log validates every batch (CRC,
//! magic, sizes) and refuses the whole partition's data if one is bad (CORRUPT_MESSAGE,
//! MESSAGE_TOO_LARGE, INVALID_RECORD).
//!
//! # Guarantees
//! - acks=1: answered after the leader's append (page cache; see the flush policy).
//! - acks=all (-1): answered once the high watermark covers the batch. With this broker as the
//!   only in-sync replica that is right after the append.
//! - acks=0: no response at all, as Kafka does; errors are only logged.

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Broker, now_ms};

/// acks values Kafka defines.
const ACKS_NONE: i16 = 0;
const ACKS_LEADER: i16 = 1;
const ACKS_ALL: i16 = -1;

impl Broker {
    /// Answers a Produce request; `None` for acks=0.
    pub(super) async fn produce(
        &self,
        request: ProduceRequest,
        _version: i16,
    ) -> Option<ProduceResponse> {
        let acks = request.acks;
        let mut responses = Vec::with_capacity(request.topic_data.len());
        let mut appended = false;
        for topic in request.topic_data {
            let name = topic.name.0.to_string();
            let mut partitions = Vec::with_capacity(topic.partition_data.len());
            for data in topic.partition_data {
                let response = if ![ACKS_NONE, ACKS_LEADER, ACKS_ALL].contains(&acks) {
                    error(
                        data.index,
                        ResponseError::InvalidRequiredAcks,
                        "acks must be 0, 1 or -1",
                    )
                } else {
                    let outcome = self.append(&name, data.index, data.records, acks);
                    appended |= outcome.error_code == 0;
                    outcome
                };
                if response.error_code != 0 && acks == ACKS_NONE {
                    tracing::debug!(
                        topic = name,
                        partition = data.index,
                        code = response.error_code,
                        "acks=0 produce failed"
                    );
                }
                partitions.push(response);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_partition_responses(partitions),
            );
        }
        if appended {
            self.notify_appended();
        }
        (acks != ACKS_NONE).then(|| ProduceResponse::default().with_responses(responses))
    }

    /// Appends one partition's records and builds its response.
    fn append(
        &self,
        topic: &str,
        index: i32,
        records: Option<bytes::Bytes>,
        acks: i16,
    ) -> PartitionProduceResponse {
        let Some(partition) = self.partition(topic, index) else {
            return error(
                index,
                ResponseError::UnknownTopicOrPartition,
                "unknown topic or partition",
            );
        };
        let Some(records) = records.filter(|r| !r.is_empty()) else {
            return error(
                index,
                ResponseError::CorruptMessage,
                "the request carries no records",
            );
        };
        let mut inner = partition.lock();
        if !inner.is_leader(self.node_id()) {
            return error(
                index,
                ResponseError::NotLeaderOrFollower,
                "this broker does not lead the partition",
            );
        }
        if acks == ACKS_ALL && (inner.state.isr.len() as i32) < inner.config.min_insync_replicas {
            let message = format!(
                "the in-sync replica set has {} member(s), below min.insync.replicas={}",
                inner.state.isr.len(),
                inner.config.min_insync_replicas
            );
            return error(index, ResponseError::NotEnoughReplicas, &message);
        }
        let epoch = inner.state.leader_epoch;
        match inner
            .log
            .append_as_leader(BytesMut::from(records), epoch, now_ms())
        {
            Ok(info) => {
                inner.after_append(self.node_id());
                PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(info.first_offset)
                    .with_log_append_time_ms(info.log_append_time)
                    .with_log_start_offset(inner.log.log_start_offset())
            }
            Err(e) => {
                tracing::debug!(topic, partition = index, error = %e, "append refused");
                let code = e.kafka_code();
                PartitionProduceResponse::default()
                    .with_index(index)
                    .with_error_code(code)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
                    .with_error_message(Some(StrBytes::from_string(e.to_string())))
            }
        }
    }
}

fn error(index: i32, code: ResponseError, message: &str) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}
