//! Topic configuration: Kafka's topic config names, their defaults, and validation.
//!
//! Storage settings (`segment.bytes`, `retention.ms`, …) belong to the partition log and are
//! parsed by [`crate::log::LogConfig`]; this module adds the settings that concern replication
//! and produce semantics, and is the one place that says which names a topic may carry.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::log::LogConfig;

/// `min.insync.replicas`: the ISR size below which acks=all produce fails.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
/// `unclean.leader.election.enable`: whether a replica outside the ISR may become leader.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";
/// `compression.type`: Ferry keeps batches as producers compressed them (`producer`).
pub const COMPRESSION_TYPE: &str = "compression.type";

/// The effective configuration of one topic: the broker's defaults with the topic's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// Storage settings of each partition's log.
    pub log: LogConfig,
    /// Smallest ISR that still accepts acks=all writes.
    pub min_insync_replicas: i32,
    /// Whether an out-of-sync replica may be elected leader (loses data; off by default).
    pub unclean_leader_election_enable: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
        }
    }
}

impl TopicConfig {
    /// Applies a topic's `overrides` on top of `self` (the broker defaults).
    ///
    /// Every name must be a topic config Ferry knows; the error is INVALID_CONFIG with a
    /// sentence naming the config and the problem.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<Self, AdminError> {
        let invalid = |name: &str, why: String| {
            AdminError::new(
                ResponseError::InvalidConfig,
                format!("Invalid value for {name}: {why}"),
            )
        };
        let mut out = self.clone();
        let mut log_overrides = Vec::new();
        for (name, value) in overrides {
            match name.as_str() {
                MIN_INSYNC_REPLICAS => {
                    out.min_insync_replicas = match value.trim().parse::<i32>() {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            return Err(invalid(name, format!("{value:?} is not an integer >= 1")));
                        }
                    }
                }
                UNCLEAN_LEADER_ELECTION_ENABLE => {
                    out.unclean_leader_election_enable = match value.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(name, format!("{value:?} is not true or false"))),
                    }
                }
                COMPRESSION_TYPE => {
                    if value.trim() != "producer" {
                        return Err(invalid(
                            name,
                            format!(
                                "{value:?} is not supported; Ferry stores batches as the producer \
                                 compressed them (compression.type=producer)"
                            ),
                        ));
                    }
                }
                _ => log_overrides.push((name.as_str(), value.as_str())),
            }
        }
        out.log = LogConfig::from_kafka_configs(&self.log, log_overrides)
            .map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
        Ok(out)
    }
}

/// Cluster-wide defaults and limits for new topics, by their Kafka names.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDefaults {
    /// `num.partitions`: partitions of a topic created without a count (and auto-created ones).
    pub num_partitions: i32,
    /// `default.replication.factor`: replication factor when none is given.
    pub default_replication_factor: i16,
    /// Broker-level defaults of every topic config.
    pub config: TopicConfig,
    /// Most partitions one CreateTopics request may create; a larger request is refused whole.
    pub partitions_per_request_max: usize,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            num_partitions: 1,
            default_replication_factor: 1,
            config: TopicConfig::default(),
            partitions_per_request_max: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn applies_replication_and_log_overrides() {
        let config = TopicConfig::default()
            .with_overrides(&overrides(&[
                ("min.insync.replicas", "2"),
                ("unclean.leader.election.enable", "true"),
                ("retention.ms", "1000"),
                ("compression.type", "producer"),
            ]))
            .unwrap();
        assert_eq!(config.min_insync_replicas, 2);
        assert!(config.unclean_leader_election_enable);
        assert_ne!(config.log, LogConfig::default());
    }

    #[test]
    fn refuses_bad_values_and_unknown_names_with_invalid_config() {
        for (name, value) in [
            ("min.insync.replicas", "0"),
            ("min.insync.replicas", "two"),
            ("unclean.leader.election.enable", "yes"),
            ("compression.type", "gzip"),
            ("retention.ms", "soon"),
            ("no.such.config", "1"),
        ] {
            let err = TopicConfig::default().with_overrides(&overrides(&[(name, value)]));
            let err = err.expect_err(name);
            assert_eq!(err.code, ResponseError::InvalidConfig, "{name}={value}");
            assert!(!err.message.is_empty());
        }
    }
}
