//! DescribeLogDirs (key 35): the broker's log directory and the partitions stored in it.
//!
//! A Ferry broker has one log directory (`log.dirs` with one entry), so the answer has one
//! result. Every partition replica held here is listed (or only the asked ones), with:
//!
//! ```text
//! partition_size  bytes of all its segment files
//! offset_lag      max(high watermark - log end offset, 0), as Kafka computes it for a current
//!                 (non-future) replica; 0 whenever the replica has everything committed
//! is_future_key   false: Ferry never moves replicas between directories
//! total_bytes     (v4) size of the file system holding the directory (statvfs)
//! usable_bytes    (v4) bytes available to the broker's user on it
//! ```
//!
//! A replica asked for that this broker does not hold is left out, as Kafka does.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::partitions::Partitions;

/// Answers a DescribeLogDirs request.
pub(super) fn handle(
    held: &Partitions,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let asked: Option<BTreeSet<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for partition in held.all() {
        let id = &partition.id;
        if let Some(asked) = &asked
            && !asked.contains(&(id.topic.clone(), id.partition))
        {
            continue;
        }
        let inner = partition.lock();
        let lag = (inner.high_watermark - inner.log.log_end_offset()).max(0);
        topics.entry(id.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(id.partition)
                .with_partition_size(inner.log.size_bytes() as i64)
                .with_offset_lag(lag)
                .with_is_future_key(false),
        );
    }
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    let log_dir = held.log_dir();
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(log_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    if version >= 4 {
        match held.log_dir_space() {
            Ok((total, usable)) => {
                result = result.with_total_bytes(total).with_usable_bytes(usable);
            }
            Err(e) => {
                tracing::warn!(dir = %log_dir.display(), error = %e, "statvfs failed");
                result = result.with_error_code(ResponseError::KafkaStorageError.code());
            }
        }
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
