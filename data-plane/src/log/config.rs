//! Topic-level log configuration with Kafka's names, types, defaults and bounds.
//!
//! The broker builds a [`LogConfig`] from its broker defaults (`log.retention.ms`, ... mapped
//! by the broker) and a topic's overrides with [`LogConfig::from_kafka_configs`], and hands it
//! to the partition log; [`super::PartitionLog::set_config`] applies a change without restart.
//!
//! Bounds follow Kafka's `LogConfig` validators: `segment.bytes >= 14`, `segment.ms >= 1`,
//! `retention.ms >= -1`, `max.message.bytes >= 0`, `index.interval.bytes >= 0`,
//! `flush.messages >= 1`, `flush.ms >= 0`. Like Kafka, any negative `retention.bytes` means
//! unlimited. `segment.bytes` is an INT in Kafka, so it is also at most `i32::MAX`; that keeps
//! every file position of a segment inside the u32 index entries.
//!
//! Other Kafka topic configs that belong to other layers (`min.insync.replicas`,
//! `compression.type`, ...) or are accepted without effect here (`segment.index.bytes`,
//! `segment.jitter.ms`, `preallocate`, ...) are listed in [`OTHER_TOPIC_CONFIGS`] and ignored,
//! so a broker can pass a topic's whole config map. Unknown names are refused.
//! `cleanup.policy=compact` is refused: compaction is not implemented yet.

use std::fmt;

/// Why a configuration was refused; names the config so the broker can report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for configuration {name}: {reason}")]
pub struct ConfigError {
    /// The Kafka config name.
    pub name: String,
    /// The value given.
    pub value: String,
    /// Why it was refused, as a sentence fragment.
    pub reason: String,
}

/// What to do with old segments (`cleanup.policy`). Only `delete` is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments past retention.
    Delete,
}

/// Which timestamp the log keeps in maxTimestamp (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTimestampType {
    /// Keep the producer's timestamps.
    CreateTime,
    /// Stamp each batch with the broker's append time.
    LogAppendTime,
}

/// A partition log's configuration. Field docs give the Kafka name and default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes` (1 GiB): roll the active segment before it would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms` (7 days): roll the active segment when its first batch is this old.
    pub segment_ms: i64,
    /// `retention.ms` (7 days; -1 unlimited): delete segments whose newest timestamp is older.
    pub retention_ms: i64,
    /// `retention.bytes` (-1 unlimited): delete oldest segments while the log is larger.
    pub retention_bytes: i64,
    /// `max.message.bytes` (1048588): largest record batch a producer may append.
    pub max_message_bytes: usize,
    /// `index.interval.bytes` (4096): bytes appended between two offset index entries.
    pub index_interval_bytes: u64,
    /// `cleanup.policy` (delete).
    pub cleanup_policy: CleanupPolicy,
    /// `message.timestamp.type` (CreateTime).
    pub message_timestamp_type: MessageTimestampType,
    /// `flush.messages` (i64::MAX, i.e. never): fsync after this many appended records.
    pub flush_messages: i64,
    /// `flush.ms` (i64::MAX, i.e. never): fsync when the last flush is this old.
    pub flush_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            cleanup_policy: CleanupPolicy::Delete,
            message_timestamp_type: MessageTimestampType::CreateTime,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
        }
    }
}

/// Kafka topic configs that other layers own or that the log accepts without effect.
pub const OTHER_TOPIC_CONFIGS: &[&str] = &[
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

/// Smallest `segment.bytes` Kafka accepts (a v0 record's overhead).
pub const SEGMENT_BYTES_MIN: u64 = 14;

impl LogConfig {
    /// Applies Kafka-named `overrides` on top of `defaults`, validating each value.
    pub fn from_kafka_configs<'a>(
        defaults: &LogConfig,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LogConfig, ConfigError> {
        let mut config = defaults.clone();
        for (name, value) in overrides {
            config.apply(name, value)?;
        }
        Ok(config)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let fail = |reason: &str| ConfigError {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let int = |min: i64, max: i64| -> Result<i64, ConfigError> {
            let n: i64 = value.trim().parse().map_err(|_| fail("not an integer"))?;
            if n < min {
                return Err(fail(&format!("must be at least {min}")));
            }
            if n > max {
                return Err(fail(&format!("must be at most {max}")));
            }
            Ok(n)
        };
        let int32 = i64::from(i32::MAX);
        match name {
            "segment.bytes" => self.segment_bytes = int(SEGMENT_BYTES_MIN as i64, int32)? as u64,
            "segment.ms" => self.segment_ms = int(1, i64::MAX)?,
            "retention.ms" => self.retention_ms = int(-1, i64::MAX)?,
            "retention.bytes" => self.retention_bytes = int(i64::MIN, i64::MAX)?,
            "max.message.bytes" => self.max_message_bytes = int(0, int32)? as usize,
            "index.interval.bytes" => self.index_interval_bytes = int(0, int32)? as u64,
            "flush.messages" => self.flush_messages = int(1, i64::MAX)?,
            "flush.ms" => self.flush_ms = int(0, i64::MAX)?,
            "cleanup.policy" => self.cleanup_policy = parse_cleanup_policy(value).map_err(fail)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => MessageTimestampType::CreateTime,
                    "LogAppendTime" => MessageTimestampType::LogAppendTime,
                    _ => return Err(fail("must be CreateTime or LogAppendTime")),
                }
            }
            "segment.index.bytes" => {
                int(4, int32)?;
            }
            _ if OTHER_TOPIC_CONFIGS.contains(&name) => {}
            _ => return Err(fail("unknown topic configuration")),
        }
        Ok(())
    }

    /// The log's configs with their current values, in Kafka's string form (DescribeConfigs).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cleanup.policy", self.cleanup_policy.to_string()),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.type",
                self.message_timestamp_type.to_string(),
            ),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ]
    }
}

fn parse_cleanup_policy(value: &str) -> Result<CleanupPolicy, &'static str> {
    let mut policy = None;
    for part in value.split(',').map(str::trim) {
        match part {
            "delete" => policy = Some(CleanupPolicy::Delete),
            "compact" => return Err("compaction is not supported yet; use cleanup.policy=delete"),
            _ => return Err("must be delete (compact is not supported yet)"),
        }
    }
    policy.ok_or("must be delete")
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CleanupPolicy::Delete => f.write_str("delete"),
        }
    }
}

impl fmt::Display for MessageTimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageTimestampType::CreateTime => f.write_str("CreateTime"),
            MessageTimestampType::LogAppendTime => f.write_str("LogAppendTime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<LogConfig, ConfigError> {
        LogConfig::from_kafka_configs(&LogConfig::default(), pairs.iter().copied())
    }

    #[test]
    fn defaults_match_kafka() {
        let d = LogConfig::default();
        assert_eq!(d.segment_bytes, 1_073_741_824);
        assert_eq!(d.segment_ms, 604_800_000);
        assert_eq!(d.retention_ms, 604_800_000);
        assert_eq!(d.retention_bytes, -1);
        assert_eq!(d.max_message_bytes, 1_048_588);
        assert_eq!(d.index_interval_bytes, 4096);
        assert_eq!(d.flush_messages, i64::MAX);
        assert_eq!(parse(&[]).unwrap(), d);
    }

    #[test]
    fn overrides_apply() {
        let c = parse(&[
            ("segment.bytes", "1024"),
            ("segment.ms", "60000"),
            ("retention.ms", "-1"),
            ("retention.bytes", "5000"),
            ("max.message.bytes", "100"),
            ("index.interval.bytes", "0"),
            ("cleanup.policy", "delete"),
            ("message.timestamp.type", "LogAppendTime"),
            ("flush.messages", "1"),
            ("flush.ms", "1000"),
            ("min.insync.replicas", "2"),
            ("segment.index.bytes", "10485760"),
        ])
        .unwrap();
        assert_eq!(c.segment_bytes, 1024);
        assert_eq!(c.segment_ms, 60_000);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.retention_bytes, 5000);
        assert_eq!(c.max_message_bytes, 100);
        assert_eq!(c.index_interval_bytes, 0);
        assert_eq!(
            c.message_timestamp_type,
            MessageTimestampType::LogAppendTime
        );
        assert_eq!((c.flush_messages, c.flush_ms), (1, 1000));
    }

    #[test]
    fn bad_values_name_the_config() {
        let cases = [
            ("segment.bytes", "13", "at least 14"),
            ("segment.bytes", "4294967296", "at most"),
            ("segment.ms", "0", "at least 1"),
            ("retention.ms", "-2", "at least -1"),
            ("retention.ms", "soon", "not an integer"),
            ("max.message.bytes", "-1", "at least 0"),
            ("flush.messages", "0", "at least 1"),
            (
                "cleanup.policy",
                "compact",
                "compaction is not supported yet",
            ),
            (
                "cleanup.policy",
                "delete,compact",
                "compaction is not supported yet",
            ),
            ("cleanup.policy", "shred", "must be delete"),
            (
                "message.timestamp.type",
                "Now",
                "CreateTime or LogAppendTime",
            ),
            ("segment.index.bytes", "x", "not an integer"),
            ("retention.hours", "1", "unknown topic configuration"),
        ];
        for (name, value, reason) in cases {
            let err = parse(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name);
            assert_eq!(err.value, value);
            assert!(err.reason.contains(reason), "{name}={value}: {err}");
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn describe_round_trips() {
        let c = parse(&[
            ("retention.bytes", "77"),
            ("message.timestamp.type", "LogAppendTime"),
        ])
        .unwrap();
        let described = c.describe();
        assert_eq!(described.len(), 10);
        let pairs: Vec<(&str, &str)> = described.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            LogConfig::from_kafka_configs(&LogConfig::default(), pairs).unwrap(),
            c
        );
    }
}
