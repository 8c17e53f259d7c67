//! Topic configuration: the effective settings of one topic, from Kafka's topic configs.
//!
//! Names, types, defaults and validation are the catalog's (`ferry_kafka_config`): a topic
//! may carry exactly the topic configs it lists. Storage settings (`segment.bytes`,
//! `retention.ms`, …) belong to the partition log and are mapped by [`crate::log::LogConfig`];
//! this module adds the settings that concern replication and produce semantics.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::log::{ConfigError, LogConfig};

/// `min.insync.replicas`: the ISR size below which acks=all produce fails.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
/// `unclean.leader.election.enable`: whether a replica outside the ISR may become leader.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";
/// `compression.type`: Ferry keeps batches as producers compressed them (`producer`).
pub const COMPRESSION_TYPE: &str = "compression.type";

/// The catalog row of topic config `name` (one this module maps).
fn catalog(name: &str) -> ferry_kafka_config::Config {
    ferry_kafka_config::topic(name).expect("the topic's configs are in the catalog")
}

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
            min_insync_replicas: catalog(MIN_INSYNC_REPLICAS).default_int() as i32,
            unclean_leader_election_enable: catalog(UNCLEAN_LEADER_ELECTION_ENABLE).default_bool(),
        }
    }
}

/// A refused topic config as the admin APIs report it: INVALID_CONFIG with the sentence.
fn invalid(e: ConfigError) -> AdminError {
    AdminError::new(ResponseError::InvalidConfig, e.to_string())
}

impl TopicConfig {
    /// Applies a topic's `overrides` on top of `self` (the broker defaults).
    ///
    /// Every name must be a topic config Ferry knows; the error is INVALID_CONFIG with a
    /// sentence naming the config and the problem.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<Self, AdminError> {
        let mut out = self.clone();
        for (name, value) in overrides {
            let config = ferry_kafka_config::validate_topic(name, value).map_err(invalid)?;
            match name.as_str() {
                MIN_INSYNC_REPLICAS => {
                    out.min_insync_replicas = config.int(value).map_err(invalid)? as i32
                }
                UNCLEAN_LEADER_ELECTION_ENABLE => {
                    out.unclean_leader_election_enable = config.boolean(value).map_err(invalid)?
                }
                // compression.type accepts only `producer`: nothing to set.
                _ => {}
            }
        }
        out.log = LogConfig::from_kafka_configs(
            &self.log,
            overrides.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .map_err(invalid)?;
        Ok(out)
    }

    /// Every topic config Ferry applies with its effective value, sorted by name
    /// (DescribeConfigs).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        ferry_kafka_config::topic_configs()
            .into_iter()
            .filter_map(|c| {
                let value = match c.name {
                    MIN_INSYNC_REPLICAS => self.min_insync_replicas.to_string(),
                    UNCLEAN_LEADER_ELECTION_ENABLE => {
                        self.unclean_leader_election_enable.to_string()
                    }
                    COMPRESSION_TYPE => c.default_text().to_string(),
                    name => self.log.value(name)?,
                };
                Some((c.name, value))
            })
            .collect()
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
        let int = |name| {
            ferry_kafka_config::broker(name)
                .expect("a catalog broker config")
                .default_int()
        };
        Self {
            num_partitions: int("num.partitions") as i32,
            default_replication_factor: int("default.replication.factor") as i16,
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
