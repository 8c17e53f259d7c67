//! A partition log's settings, typed, from Kafka's topic configs.
//!
//! The broker builds a [`LogConfig`] from its broker defaults (`log.retention.ms`, ... mapped
//! by the broker) and a topic's overrides with [`LogConfig::from_kafka_configs`], and hands it
//! to the partition log; [`super::PartitionLog::set_config`] applies a change without restart.
//!
//! Names, types, defaults and bounds are the catalog's (`ferry_kafka_config::CATALOG`, after
//! Kafka's `LogConfig` validators); this module only maps each storage config onto its field.
//! Like Kafka, any negative `retention.bytes` means unlimited. `segment.bytes` is an INT, so at
//! most `i32::MAX`; that keeps every file position of a segment inside the u32 index entries.
//!
//! Topic configs of other layers (`min.insync.replicas`, `compression.type`, ...) and those
//! accepted without effect (`segment.index.bytes`, `preallocate`, ...) are checked and then
//! ignored here, so a broker can pass a topic's whole config map. Unknown names are refused.
//! `cleanup.policy=compact` is refused: compaction is not implemented yet.

use std::fmt;

pub use ferry_kafka_config::ConfigError;
use ferry_kafka_config::{Config, validate_topic};

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

/// A partition log's configuration. Field docs give the Kafka name; defaults are the
/// catalog's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment when its first batch is this old.
    pub segment_ms: i64,
    /// `retention.ms` (-1 unlimited): delete segments whose newest timestamp is older.
    pub retention_ms: i64,
    /// `retention.bytes` (negative: unlimited): delete oldest segments while the log is larger.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest record batch a producer may append.
    pub max_message_bytes: usize,
    /// `index.interval.bytes`: bytes appended between two offset index entries.
    pub index_interval_bytes: u64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `message.timestamp.type`.
    pub message_timestamp_type: MessageTimestampType,
    /// `flush.messages` (i64::MAX, i.e. never): fsync after this many appended records.
    pub flush_messages: i64,
    /// `flush.ms` (i64::MAX, i.e. never): fsync when the last flush is this old.
    pub flush_ms: i64,
}

/// The catalog row of topic config `name` (one of this module's).
fn catalog(name: &str) -> Config {
    ferry_kafka_config::topic(name).expect("the log's configs are in the catalog")
}

impl Default for LogConfig {
    fn default() -> Self {
        let int = |name| catalog(name).default_int();
        let text = |name| catalog(name).default_text();
        LogConfig {
            segment_bytes: int("segment.bytes") as u64,
            segment_ms: int("segment.ms"),
            retention_ms: int("retention.ms"),
            retention_bytes: int("retention.bytes"),
            max_message_bytes: int("max.message.bytes") as usize,
            index_interval_bytes: int("index.interval.bytes") as u64,
            cleanup_policy: CleanupPolicy::from_word(text("cleanup.policy")),
            message_timestamp_type: MessageTimestampType::from_word(text("message.timestamp.type")),
            flush_messages: int("flush.messages"),
            flush_ms: int("flush.ms"),
        }
    }
}

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
        let config = validate_topic(name, value)?;
        let int = || config.int(value);
        match name {
            "segment.bytes" => self.segment_bytes = int()? as u64,
            "segment.ms" => self.segment_ms = int()?,
            "retention.ms" => self.retention_ms = int()?,
            "retention.bytes" => self.retention_bytes = int()?,
            "max.message.bytes" => self.max_message_bytes = int()? as usize,
            "index.interval.bytes" => self.index_interval_bytes = int()? as u64,
            "flush.messages" => self.flush_messages = int()?,
            "flush.ms" => self.flush_ms = int()?,
            "cleanup.policy" => {
                self.cleanup_policy = CleanupPolicy::from_word(config.words(value)?[0])
            }
            "message.timestamp.type" => {
                self.message_timestamp_type =
                    MessageTimestampType::from_word(config.words(value)?[0])
            }
            // Another layer's config, or one accepted without effect.
            _ => {}
        }
        Ok(())
    }

    /// The value of one of the log's configs in Kafka's string form; `None` for other names.
    pub fn value(&self, name: &str) -> Option<String> {
        Some(match name {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "cleanup.policy" => self.cleanup_policy.to_string(),
            "message.timestamp.type" => self.message_timestamp_type.to_string(),
            _ => return None,
        })
    }

    /// The log's configs with their current values, in Kafka's string form (DescribeConfigs),
    /// sorted by name.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        ferry_kafka_config::topic_configs()
            .into_iter()
            .filter_map(|c| Some((c.name, self.value(c.name)?)))
            .collect()
    }
}

impl CleanupPolicy {
    /// The policy a word the catalog accepts names.
    fn from_word(word: &str) -> Self {
        match word {
            "delete" => CleanupPolicy::Delete,
            other => unreachable!("the catalog accepts no cleanup.policy {other:?}"),
        }
    }
}

impl MessageTimestampType {
    /// The type a word the catalog accepts names.
    fn from_word(word: &str) -> Self {
        match word {
            "LogAppendTime" => MessageTimestampType::LogAppendTime,
            _ => MessageTimestampType::CreateTime,
        }
    }
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
