//! DeleteRecords (key 21): moves partitions' log start offsets forward, dropping older records.
//!
//! # Expected flow
//! For each partition, on its leader:
//! 1. Find it (UNKNOWN_TOPIC_OR_PARTITION) and check this broker leads it
//!    (NOT_LEADER_OR_FOLLOWER).
//! 2. Resolve the offset: -1 means the high watermark; any other negative offset, or one past
//!    the high watermark, is OFFSET_OUT_OF_RANGE (as Kafka answers).
//! 3. Advance the leader's log start offset: segments entirely below it are deleted and the new
//!    start is checkpointed (`log-start-offset`), so it survives a restart. An offset at or
//!    below the current start changes nothing.
//! 4. Wait, up to the request's `timeout_ms`, until the partition's *low watermark* reaches
//!    the offset: the smallest log start offset of the leader and of the followers on live
//!    brokers, as their fetches report it. Followers learn the leader's log start offset from
//!    every Fetch response and advance their own (`fetcher.rs`), then report it in their next
//!    fetch.
//!
//! # Guarantees
//! - Success means every live replica has moved its log start offset; `low_watermark` is then
//!   the partition's low watermark (at least the requested offset).
//! - Consumers fetching below the new start get OFFSET_OUT_OF_RANGE at once (the leader moved
//!   first), and ListOffsets earliest answers the new start.
//!
//! # Errors
//! A partition whose followers do not report the new start within `timeout_ms` answers
//! REQUEST_TIMED_OUT with the leader's new log start offset as low watermark; the records are
//! deleted on the leader regardless (Kafka behaves the same: the delayed operation only
//! waits). A follower on a broker that died but is not fenced yet still counts, so the wait
//! may time out until its session expires.
//!
//! # Caveats
//! The wait polls the replica state every [`LOW_WATERMARK_POLL`]; Kafka completes its delayed
//! operation from the fetch path instead.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::partitions::Partitions;
use crate::log::Offset;

/// How often a waiting DeleteRecords looks at its partitions' low watermarks again.
const LOW_WATERMARK_POLL: Duration = Duration::from_millis(20);

/// Longest a DeleteRecords waits for the followers, whatever `timeout_ms` asks (bounds the
/// time a connection's request slot is held).
const DELETE_RECORDS_WAIT_MAX: Duration = Duration::from_secs(60);

/// Kafka's "delete up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

/// One partition's answer while the request is in progress.
struct Pending {
    /// While waiting for the replicas: the offset every live replica's log must start at.
    /// `None` once the partition is answered.
    waiting_for: Option<Offset>,
    /// The answer; while waiting, the one given if the wait times out (REQUEST_TIMED_OUT with
    /// the leader's new log start offset, as Kafka answers).
    result: DeleteRecordsPartitionResult,
}

/// Answers a DeleteRecords request.
pub(super) async fn handle(
    held: &Partitions,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    // Topic name -> partitions in request order.
    let mut answers: Vec<(TopicName, Vec<Pending>)> = Vec::new();
    for topic in &request.topics {
        let partitions = topic
            .partitions
            .iter()
            .map(|asked| {
                delete_partition_records(held, &topic.name.0, asked.partition_index, asked.offset)
            })
            .collect();
        answers.push((topic.name.clone(), partitions));
    }
    let timeout =
        Duration::from_millis(request.timeout_ms.max(0) as u64).min(DELETE_RECORDS_WAIT_MAX);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut waiting = false;
        for (topic, partitions) in &mut answers {
            for pending in partitions.iter_mut() {
                let Some(target) = pending.waiting_for else {
                    continue; // answered already (success or a final error)
                };
                match low_watermark(held, &topic.0, pending.result.partition_index) {
                    Some(low) if low >= target => {
                        pending.result.low_watermark = low;
                        pending.result.error_code = 0;
                        pending.waiting_for = None;
                    }
                    Some(_) => waiting = true,
                    None => {
                        pending.result.error_code = ResponseError::NotLeaderOrFollower.code();
                        pending.waiting_for = None;
                    }
                }
            }
        }
        if !waiting || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(LOW_WATERMARK_POLL).await;
    }
    let topics = answers
        .into_iter()
        .map(|(name, partitions)| {
            DeleteRecordsTopicResult::default()
                .with_name(name)
                .with_partitions(partitions.into_iter().map(|p| p.result).collect())
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Steps 1–3 of the module docs for one partition.
fn delete_partition_records(
    held: &Partitions,
    topic: &StrBytes,
    index: i32,
    offset: i64,
) -> Pending {
    let result = DeleteRecordsPartitionResult::default()
        .with_partition_index(index)
        .with_low_watermark(-1);
    let fail = |code: ResponseError| Pending {
        waiting_for: None,
        result: result.clone().with_error_code(code.code()),
    };
    let Some(partition) = held.get(topic.as_str(), index) else {
        return fail(ResponseError::UnknownTopicOrPartition);
    };
    let mut inner = partition.lock();
    if !inner.is_leader(held.node_id()) {
        return fail(ResponseError::NotLeaderOrFollower);
    }
    let high_watermark = inner.high_watermark;
    let target = match offset {
        HIGH_WATERMARK => high_watermark,
        o if o < 0 || o > high_watermark => return fail(ResponseError::OffsetOutOfRange),
        o => o,
    };
    if let Err(e) = inner.log.advance_log_start(target) {
        tracing::warn!(partition = ?partition.id, error = %e, "DeleteRecords failed");
        return fail(ResponseError::KafkaStorageError);
    }
    tracing::info!(partition = ?partition.id, log_start = inner.log.log_start_offset(),
        "DeleteRecords advanced the log start offset");
    Pending {
        waiting_for: Some(target),
        result: result
            .with_low_watermark(inner.log.log_start_offset())
            .with_error_code(ResponseError::RequestTimedOut.code()),
    }
}

/// The low watermark of a partition this broker leads (see the module docs), or `None` if
/// it no longer leads it.
fn low_watermark(held: &Partitions, topic: &str, index: i32) -> Option<Offset> {
    let partition = held.get(topic, index)?;
    let image = held.image();
    let inner = partition.lock();
    if !inner.is_leader(held.node_id()) {
        return None;
    }
    let leader_start = inner.log.log_start_offset();
    Some(match &inner.tracker {
        Some(tracker) => tracker.low_watermark(leader_start, |id| image.brokers.contains_key(&id)),
        None => leader_start,
    })
}
