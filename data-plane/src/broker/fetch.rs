//! Fetch (key 1): reads record batches for consumers, long-polling until enough data arrives.
//!
//! # Expected flow
//! 1. Read every requested partition from its log, as raw batch bytes (no decoding), within
//!    `partition_max_bytes` per partition and `max_bytes` in total. Like Kafka (KIP-74), the first
//!    batch of the first partition that has data is returned whole even if it exceeds the limits,
//!    so a consumer always makes progress.
//! 2. If fewer than `min_bytes` were found, no partition had an error and `max_wait_ms` has not
//!    passed, wait for the next append on this broker and read again.
//!
//! # Followers (replica_id ≥ 0)
//! A follower of the partition fetches with the same handler and reads up to the leader's log
//! end offset instead of the high watermark. Before reading, its `last_fetched_epoch` is
//! checked against the leader-epoch cache (v12+, KIP-320/KIP-595 style): if the follower's log
//! diverges (the epoch ended earlier here, or is unknown), the answer carries
//! `DivergingEpoch{epoch, end_offset}` and no records, and the follower truncates. Otherwise
//! its fetch offset is its log end offset: the leader records it ([`super::replica`]),
//! advances the high watermark, and wakes waiting acks=all produce requests.
//!
//! Consumers see only offsets below the high watermark. Without transactions the last stable
//! offset equals the high watermark, so `read_committed` and `read_uncommitted` read the same. Fetch sessions (KIP-227) are declined
//! by answering session id 0, which every client handles by sending full fetches.
//!
//! # Errors (per partition, as response data)
//! UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER (with the current leader and epoch in
//! `CurrentLeader`, v12+, KIP-951), OFFSET_OUT_OF_RANGE (outside
//! `[log_start_offset, high_watermark]`), FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH (KIP-320),
//! and at the top level FETCH_SESSION_ID_NOT_FOUND for a session this broker never created.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::partitions::Partitions;
use super::{divergence, now_ms};
use crate::metadata::NodeId;
use crate::metrics::broker::Purgatory;

/// Longest a fetch may wait, whatever the client asks: bounds how long a connection is parked.
const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// A read of all requested partitions.
struct FetchRead {
    /// The response body.
    response: FetchResponse,
    /// Record bytes gathered.
    bytes: usize,
    /// Whether any partition answered with an error (which ends the wait, as in Kafka).
    any_error: bool,
}

/// Who reads one partition, and within what limits.
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// The follower's broker id, or negative for a consumer.
    replica: NodeId,
    /// What remains of the response's `max_bytes`.
    budget: usize,
    /// No earlier partition returned data (so one whole batch may exceed the limits).
    first: bool,
}

/// Answers a Fetch request, waiting up to `max_wait_ms` for `min_bytes`, and counts the record
/// bytes it returns (per topic for consumers, in total for followers).
pub(super) async fn handle(
    held: &Partitions,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let follower = request.replica_id.0 >= 0;
    let response = answer(held, request, version).await;
    if let Some(metrics) = held.metrics() {
        for topic in &response.responses {
            let bytes: usize = topic
                .partitions
                .iter()
                .filter_map(|p| p.records.as_ref().map(Bytes::len))
                .sum();
            if bytes == 0 {
                continue;
            }
            if follower {
                metrics.replication_out(bytes as u64);
            } else {
                // Only partitions held here return records, so the topic is one of ours.
                metrics.count_bytes_out(&topic.topic.0, bytes as u64);
            }
        }
    }
    response
}

/// [`handle`] without the counting.
async fn answer(held: &Partitions, request: FetchRequest, version: i16) -> FetchResponse {
    if version >= 7 && request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MAX);
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut appended = held.subscribe_appended();
    let mut waiting = None;
    loop {
        appended.borrow_and_update();
        let read = read_for_fetch(held, &request);
        if read.bytes >= min_bytes.max(1) || read.any_error || Instant::now() >= deadline {
            return read.response;
        }
        if waiting.is_none() {
            waiting = held.metrics().map(|m| m.waiting(Purgatory::Fetch));
        }
        // Woken by any append on this broker; re-reading is cheap and keeps this simple.
        if tokio::time::timeout_at(deadline, appended.changed())
            .await
            .is_err()
        {
            return read_for_fetch(held, &request).response;
        }
    }
}

fn read_for_fetch(held: &Partitions, request: &FetchRequest) -> FetchRead {
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut any_error = false;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|asked| {
                    let first = total == 0;
                    let reader = Reader {
                        replica: request.replica_id.0,
                        budget: remaining,
                        first,
                    };
                    let data = read_partition(held, &topic.topic.0, asked, &reader);
                    let taken = data.records.as_ref().map_or(0, Bytes::len);
                    total += taken;
                    remaining = remaining.saturating_sub(taken);
                    any_error |= data.error_code != 0;
                    data
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    FetchRead {
        response: FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        bytes: total,
        any_error,
    }
}

/// Reads one partition for a consumer or a follower (see the module docs).
fn read_partition(
    held: &Partitions,
    topic: &str,
    asked: &FetchPartition,
    reader: &Reader,
) -> PartitionData {
    let Reader {
        replica,
        budget,
        first,
    } = *reader;
    let index = asked.partition;
    let empty = PartitionData::default()
        .with_partition_index(index)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica((-1).into())
        .with_aborted_transactions(Some(vec![]))
        .with_records(Some(Bytes::new()));
    let error = |code: ResponseError| empty.clone().with_error_code(code.code());
    let Some(partition) = held.get(topic, index) else {
        return error(ResponseError::UnknownTopicOrPartition);
    };
    let mut inner = partition.lock();
    if let Err(code) = inner.check_leader(held.node_id(), asked.current_leader_epoch) {
        // KIP-951: tell the client who leads now, so it need not wait for Metadata.
        let current = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(inner.state.leader))
            .with_leader_epoch(inner.state.leader_epoch);
        return error(code).with_current_leader(current);
    }
    let follower = replica >= 0;
    if follower && !inner.state.replicas.contains(&replica) {
        // A broker that holds no replica of this partition has nothing to follow.
        return error(ResponseError::NotLeaderOrFollower);
    }
    let log_start = inner.log.log_start_offset();
    let log_end = inner.log.log_end_offset();
    if follower && asked.last_fetched_epoch >= 0 {
        let diverging = divergence::diverging_epoch(
            asked.last_fetched_epoch,
            asked.fetch_offset,
            inner.log.end_offset_for_epoch(asked.last_fetched_epoch),
            inner.log.latest_epoch(),
            log_end,
        );
        if let Some((epoch, end_offset)) = diverging {
            let high_watermark = inner.high_watermark;
            return empty
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(high_watermark)
                .with_log_start_offset(log_start)
                .with_diverging_epoch(
                    EpochEndOffset::default()
                        .with_epoch(epoch)
                        .with_end_offset(end_offset),
                );
        }
    }
    let limit = if follower {
        log_end
    } else {
        inner.high_watermark
    };
    if asked.fetch_offset < log_start || asked.fetch_offset > limit {
        let high_watermark = inner.high_watermark;
        return empty
            .with_high_watermark(high_watermark)
            .with_last_stable_offset(high_watermark)
            .with_log_start_offset(log_start)
            .with_error_code(ResponseError::OffsetOutOfRange.code());
    }
    if follower {
        let now = now_ms();
        let recorded = inner.tracker.as_mut().is_some_and(|t| {
            t.record_log_start(replica, asked.log_start_offset);
            t.record_fetch(replica, asked.fetch_offset, log_end, now)
        });
        if recorded && inner.advance_high_watermark() {
            held.notify_appended();
        }
    }
    let high_watermark = inner.high_watermark;
    let with_offsets = empty
        .clone()
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(log_start);
    let max_bytes = (asked.partition_max_bytes.max(0) as usize).min(budget);
    match inner.log.read(asked.fetch_offset, max_bytes, limit, first) {
        Ok(read) => with_offsets.with_records(Some(read.records)),
        Err(e) => {
            tracing::warn!(topic, partition = index, error = %e, "fetch read failed");
            with_offsets.with_error_code(e.kafka_code())
        }
    }
}
