//! Produce (key 0): appends record batches to partition logs.
//!
//! # Expected flow
//! For each partition: refuse internal topics (INVALID_TOPIC_EXCEPTION, see below), find it
//! (UNKNOWN_TOPIC_OR_PARTITION), check this broker leads it
//! (NOT_LEADER_OR_FOLLOWER), for acks=all check the ISR against `min.insync.replicas` before
//! writing anything (NOT_ENOUGH_REPLICAS), then append: the log validates every batch (CRC,
//! magic, sizes) and refuses the whole partition's data if one is bad (CORRUPT_MESSAGE,
//! MESSAGE_TOO_LARGE, INVALID_RECORD).
//!
//! # Guarantees
//! - acks=1: answered after the leader's append (page cache; see the flush policy).
//! - acks=all (-1): answered once the high watermark covers the batch, that is once every
//!   member of the (maximal) ISR has copied it, or REQUEST_TIMED_OUT after the request's
//!   `timeout_ms`. With this broker as the only in-sync replica that is right after the
//!   append. If the ISR shrank below `min.insync.replicas` meanwhile the answer is
//!   NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in Kafka; if this broker lost the leadership (a new
//!   leader epoch) it is NOT_LEADER_OR_FOLLOWER, because its tail may be truncated and the high
//!   watermark it later learns as a follower says nothing about *this* batch.
//! - Idempotent producers (a producer id in the batch): the batch's sequence is checked
//!   under the partition lock before the append ([`super::idempotence`]). A retry of one of the
//!   producer's last five batches is answered with the original base offset and appends
//!   nothing (with acks=all it still waits until the original is replicated); a gap is
//!   OUT_OF_ORDER_SEQUENCE_NUMBER, a fenced epoch INVALID_PRODUCER_EPOCH, and more than one
//!   batch in the partition's records INVALID_RECORD, all with nothing appended.
//! - Internal topics ([`crate::metadata::INTERNAL_TOPICS`]: `__consumer_offsets`,
//!   `__transaction_state`) are never written by a Produce request: the partition is answered
//!   INVALID_TOPIC_EXCEPTION ("Cannot append to internal topic …") and nothing is appended,
//!   which is what Kafka's `ReplicaManager.appendToLocalLog` answers when internal topics are
//!   not allowed. Kafka allows them for the client id `__admin_client`; Ferry does not, since
//!   a client id is not a credential. The group coordinator writes `__consumer_offsets`
//!   through the log directly, not through Produce, so it is not affected.
//! - acks=0: no response at all, as Kafka does; if a partition fails, the connection is closed
//!   so the client notices and refreshes its metadata (Kafka's behaviour too).

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use std::sync::Arc;
use std::time::Duration;

use super::idempotence::ProducerCheck;
use super::partition::Partition;
use super::partitions::Partitions;
use super::{Reply, now_ms};
use crate::log::{LeaderEpoch, Offset};
use crate::metadata::is_internal_topic;
use crate::metrics::broker::Purgatory;

/// acks values Kafka defines.
const ACKS_NONE: i16 = 0;
const ACKS_LEADER: i16 = 1;
const ACKS_ALL: i16 = -1;

/// Answers a Produce request. With acks=0 nothing is sent back, and a failure closes the
/// connection instead.
pub(super) async fn handle(held: &Partitions, request: ProduceRequest, _version: i16) -> Reply {
    let acks = request.acks;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended = false;
    let mut waits: Vec<Wait> = Vec::new();
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let response = if ![ACKS_NONE, ACKS_LEADER, ACKS_ALL].contains(&acks) {
                error(
                    data.index,
                    ResponseError::InvalidRequiredAcks,
                    "acks must be 0, 1 or -1",
                )
            } else {
                let (outcome, wait) = append(held, &name, data.index, data.records, acks);
                appended |= outcome.error_code == 0;
                if let Some((partition, required, leader_epoch)) = wait {
                    waits.push(Wait {
                        topic: t,
                        partition_index: p,
                        partition,
                        required,
                        leader_epoch,
                    });
                }
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
        held.notify_appended();
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    for (failed, code) in wait_for_high_watermark(held, waits, timeout).await {
        let response = &mut responses[failed.topic].partition_responses[failed.partition_index];
        let message = match code {
            ResponseError::RequestTimedOut => {
                "the in-sync replicas did not acknowledge the write within the request timeout"
            }
            ResponseError::NotLeaderOrFollower => {
                "this broker lost the leadership before the write was replicated"
            }
            _ => "the in-sync replica set shrank below min.insync.replicas after the append",
        };
        *response = error(response.index, code, message);
    }
    if acks != ACKS_NONE {
        return Reply::Respond(Box::new(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        )));
    }
    let failed = responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.error_code != 0);
    match failed {
        Some(p) => Reply::Close(format!(
            "acks=0 produce failed with error code {}",
            p.error_code
        )),
        None => Reply::Silent,
    }
}

/// Waits until the high watermark of every partition in `waits` covers its write, for up
/// to `timeout`; returns the writes that failed, with the error to answer. The high
/// watermark moves when followers catch up, and whoever moves it (or installs new
/// metadata) notifies `appended`.
async fn wait_for_high_watermark(
    held: &Partitions,
    waits: Vec<Wait>,
    timeout: Duration,
) -> Vec<(Wait, ResponseError)> {
    let mut failed = Vec::new();
    if waits.is_empty() {
        return failed;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let _waiting = held.metrics().map(|m| m.waiting(Purgatory::Produce));
    let mut changed = held.subscribe_appended();
    let mut pending = waits;
    loop {
        changed.borrow_and_update();
        let mut still = Vec::with_capacity(pending.len());
        for wait in pending {
            match wait.outcome(held.node_id()) {
                None => still.push(wait),
                Some(Ok(())) => {}
                Some(Err(code)) => failed.push((wait, code)),
            }
        }
        pending = still;
        if pending.is_empty() {
            return failed;
        }
        if tokio::time::timeout_at(deadline, changed.changed())
            .await
            .is_err()
        {
            failed.extend(
                pending
                    .into_iter()
                    .map(|w| (w, ResponseError::RequestTimedOut)),
            );
            return failed;
        }
    }
}

/// Appends one partition's records and builds its response, with what an acks=all write
/// must wait for (the partition and the high watermark that covers the write).
fn append(
    held: &Partitions,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> (
    PartitionProduceResponse,
    Option<(Arc<Partition>, Offset, LeaderEpoch)>,
) {
    if is_internal_topic(topic) {
        let message = format!("Cannot append to internal topic {topic}");
        return (
            error(index, ResponseError::InvalidTopicException, &message),
            None,
        );
    }
    let Some(partition) = held.get(topic, index) else {
        return (
            error(
                index,
                ResponseError::UnknownTopicOrPartition,
                "unknown topic or partition",
            ),
            None,
        );
    };
    let bytes = records.as_ref().map_or(0, |r| r.len() as u64);
    let (response, wait, appended) = append_held(held, topic, index, &partition, records, acks);
    // Counted only for topics held here, so a client cannot mint series with made-up names.
    if let Some(traffic) = &partition.traffic {
        if response.error_code != 0 {
            traffic.failed_produce.inc();
        } else if let Some(records) = appended {
            traffic.bytes_in.inc_by(bytes);
            traffic.messages_in.inc_by(records.max(0) as u64);
        }
    }
    (response, wait)
}

/// What [`append_held`] answers: the partition's response, what an acks=all write waits for,
/// and the number of records appended (`None` when nothing was: an error or a duplicate).
type HeldAppend = (
    PartitionProduceResponse,
    Option<(Arc<Partition>, Offset, LeaderEpoch)>,
    Option<i64>,
);

/// Appends to a partition held here (see [`append`]).
fn append_held(
    held: &Partitions,
    topic: &str,
    index: i32,
    partition: &Arc<Partition>,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> HeldAppend {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return (
            error(
                index,
                ResponseError::CorruptMessage,
                "the request carries no records",
            ),
            None,
            None,
        );
    };
    let mut inner = partition.lock();
    if !inner.is_leader(held.node_id()) {
        let message = "this broker does not lead the partition";
        return (
            error(index, ResponseError::NotLeaderOrFollower, message),
            None,
            None,
        );
    }
    if acks == ACKS_ALL && (inner.state.isr.len() as i32) < inner.config.min_insync_replicas {
        let message = format!(
            "the in-sync replica set has {} member(s), below min.insync.replicas={}",
            inner.state.isr.len(),
            inner.config.min_insync_replicas
        );
        return (
            error(index, ResponseError::NotEnoughReplicas, &message),
            None,
            None,
        );
    }
    let epoch = inner.state.leader_epoch;
    // Idempotent producers: checked under the partition lock, right before the append.
    let producer_check = inner.check_producer_batch(&records);
    match producer_check {
        ProducerCheck::Refused(refusal) => {
            tracing::debug!(topic, partition = index, error = %refusal, "idempotent produce refused");
            let code = ResponseError::try_from_code(refusal.kafka_code())
                .expect("producer refusals use known codes");
            return (error(index, code, &refusal.to_string()), None, None);
        }
        ProducerCheck::Duplicate {
            first_offset,
            last_offset,
        } => {
            inner.producers.duplicate_batches += 1;
            // Answered like the original write, once the original is replicated as well.
            let required = last_offset + 1;
            let wait = (acks == ACKS_ALL && inner.high_watermark < required)
                .then(|| (partition.clone(), required, epoch));
            let response = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(first_offset)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(inner.log.log_start_offset());
            return (response, wait, None);
        }
        ProducerCheck::Plain | ProducerCheck::Append(_) => {}
    }
    match inner
        .log
        .append_as_leader(BytesMut::from(records), epoch, now_ms())
    {
        Ok(info) => {
            if let ProducerCheck::Append(batch) = &producer_check {
                inner.record_appended(batch, &info);
            }
            inner.after_append();
            let required = info.last_offset + 1;
            let wait = (acks == ACKS_ALL && inner.high_watermark < required)
                .then(|| (partition.clone(), required, epoch));
            let response = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time)
                .with_log_start_offset(inner.log.log_start_offset());
            (response, wait, Some(info.record_count))
        }
        Err(e) => {
            tracing::debug!(topic, partition = index, error = %e, "append refused");
            let code = e.kafka_code();
            let response = PartitionProduceResponse::default()
                .with_index(index)
                .with_error_code(code)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(Some(StrBytes::from_string(e.to_string())));
            (response, None, None)
        }
    }
}

/// An acks=all write waiting for the high watermark.
struct Wait {
    /// Index of the topic in the request (and response).
    topic: usize,
    /// Index of the partition within the topic in the request.
    partition_index: usize,
    /// The partition written.
    partition: Arc<Partition>,
    /// The high watermark that covers the write (last offset + 1).
    required: Offset,
    /// The leader epoch the write was appended in.
    leader_epoch: LeaderEpoch,
}

impl Wait {
    /// `None` while the write waits; `Ok` once the high watermark covers it in the same
    /// leader epoch with enough in-sync replicas; the error to answer otherwise.
    fn outcome(&self, node: crate::metadata::NodeId) -> Option<Result<(), ResponseError>> {
        let inner = self.partition.lock();
        if !inner.is_leader(node) || inner.state.leader_epoch != self.leader_epoch {
            return Some(Err(ResponseError::NotLeaderOrFollower));
        }
        if inner.high_watermark < self.required {
            return None;
        }
        if (inner.state.isr.len() as i32) < inner.config.min_insync_replicas {
            return Some(Err(ResponseError::NotEnoughReplicasAfterAppend));
        }
        Some(Ok(()))
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
