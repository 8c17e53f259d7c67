//! Broker configs by Kafka name: which exist, which may change without a restart, and the
//! dynamic values the controllers store for them.
//!
//! A broker config has up to four layers, highest first (Kafka's config sources):
//!
//! ```text
//! DYNAMIC_BROKER_CONFIG          (2)  set for one broker through the controllers
//! DYNAMIC_DEFAULT_BROKER_CONFIG  (3)  set cluster-wide (the BROKER resource named "")
//! STATIC_BROKER_CONFIG           (4)  the broker's startup configuration (--set, node config)
//! DEFAULT_CONFIG                 (5)  Kafka's default
//! ```
//!
//! Dynamic values are metadata: `Record::Config` with a `ConfigResource::Broker(id)` or
//! `ConfigResource::Cluster` resource, committed by the controller quorum and carried in the
//! broker's [`super::Image`] as [`DynamicConfigs`]. Every broker applies a new image without a
//! restart, so a dynamic topic default (`log.retention.ms`, …) reaches every partition that has
//! no topic override at once.
//!
//! [`BROKER_CONFIGS`] is the catalog. Only the configs Kafka lists as dynamically updatable
//! (its `DynamicBrokerConfig`, cluster-wide mode) and that Ferry applies are `dynamic`; the
//! others are read-only here, and changing them is refused with INVALID_REQUEST, as Kafka
//! refuses non-dynamic configs. Unknown names and bad values are INVALID_CONFIG.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::topic_config::TopicConfig;
use super::{AdminError, NodeId};

/// Kafka's `ConfigSource` codes (DescribeConfigs).
pub mod source {
    /// A topic's own override.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// Set dynamically for one broker.
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// Set dynamically as the cluster-wide default.
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// From the broker's startup configuration.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Kafka's `ConfigType` codes (DescribeConfigs v3+).
pub mod config_type {
    /// BOOLEAN.
    pub const BOOLEAN: i8 = 1;
    /// STRING.
    pub const STRING: i8 = 2;
    /// INT.
    pub const INT: i8 = 3;
    /// SHORT.
    pub const SHORT: i8 = 4;
    /// LONG.
    pub const LONG: i8 = 5;
    /// LIST.
    pub const LIST: i8 = 7;
}

/// One broker config Ferry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfigDef {
    /// Kafka's broker config name.
    pub name: &'static str,
    /// The topic config it is the default of, if any (`log.retention.ms` → `retention.ms`).
    pub topic_config: Option<&'static str>,
    /// Whether it may change without a restart (cluster-wide or per broker).
    pub dynamic: bool,
    /// Kafka's type code ([`config_type`]).
    pub config_type: i8,
    /// One sentence, sent when DescribeConfigs asks for documentation.
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    topic_config: Option<&'static str>,
    dynamic: bool,
    config_type: i8,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        topic_config,
        dynamic,
        config_type,
        doc,
    }
}

use config_type::{BOOLEAN, INT, LIST, LONG, SHORT, STRING};

/// Every broker config Ferry serves, sorted by name.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    def(
        "auto.create.topics.enable",
        None,
        false,
        BOOLEAN,
        "Enable auto creation of topic on the server.",
    ),
    def(
        "broker.id",
        None,
        false,
        INT,
        "The broker id of this server (the same as node.id).",
    ),
    def(
        "compression.type",
        Some("compression.type"),
        true,
        STRING,
        "The final compression type of a topic; Ferry keeps batches as the producer sent them \
         (producer).",
    ),
    def(
        "connections.max.idle.ms",
        None,
        false,
        LONG,
        "Idle connections timeout: the server socket processor threads close the connections \
         that idle more than this.",
    ),
    def(
        "default.replication.factor",
        None,
        false,
        SHORT,
        "The replication factor for automatically created topics, and for topics created with \
         -1 as the replication factor.",
    ),
    def(
        "group.initial.rebalance.delay.ms",
        None,
        false,
        INT,
        "How long the coordinator waits for more members to join a new (empty) group before \
         the first rebalance.",
    ),
    def(
        "group.max.session.timeout.ms",
        None,
        false,
        INT,
        "The largest session timeout a group member may ask for.",
    ),
    def(
        "group.max.size",
        None,
        false,
        INT,
        "The most members a consumer group may have.",
    ),
    def(
        "group.min.session.timeout.ms",
        None,
        false,
        INT,
        "The smallest session timeout a group member may ask for.",
    ),
    def(
        "log.cleanup.policy",
        Some("cleanup.policy"),
        true,
        LIST,
        "The default cleanup policy for segments beyond the retention window (delete).",
    ),
    def(
        "log.flush.interval.messages",
        Some("flush.messages"),
        true,
        LONG,
        "The number of messages accumulated on a log partition before messages are flushed to \
         disk.",
    ),
    def(
        "log.flush.interval.ms",
        Some("flush.ms"),
        true,
        LONG,
        "The maximum time in ms that a message in any topic is kept in memory before flushed \
         to disk.",
    ),
    def(
        "log.index.interval.bytes",
        Some("index.interval.bytes"),
        true,
        INT,
        "The interval with which we add an entry to the offset index.",
    ),
    def(
        "log.message.timestamp.type",
        Some("message.timestamp.type"),
        true,
        STRING,
        "Define whether the timestamp in the message is message create time or log append time.",
    ),
    def(
        "log.retention.bytes",
        Some("retention.bytes"),
        true,
        LONG,
        "The maximum size of the log before deleting it.",
    ),
    def(
        "log.retention.check.interval.ms",
        None,
        false,
        LONG,
        "The frequency in milliseconds that the log cleaner checks whether any log is eligible \
         for deletion.",
    ),
    def(
        "log.retention.ms",
        Some("retention.ms"),
        true,
        LONG,
        "The number of milliseconds to keep a log file before deleting it; -1 means no time \
         limit.",
    ),
    def(
        "log.roll.ms",
        Some("segment.ms"),
        true,
        LONG,
        "The maximum time before a new log segment is rolled out (in milliseconds).",
    ),
    def(
        "log.segment.bytes",
        Some("segment.bytes"),
        true,
        INT,
        "The maximum size of a single log file.",
    ),
    def(
        "max.connections.per.ip",
        None,
        false,
        INT,
        "The maximum number of client connections allowed from each ip address; Ferry's \
         default is 1000 (Kafka's is unbounded), and replica fetchers have a reserve beyond it.",
    ),
    def(
        "message.max.bytes",
        Some("max.message.bytes"),
        true,
        INT,
        "The largest record batch size allowed by Kafka.",
    ),
    def(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        true,
        INT,
        "The minimum number of replicas that must acknowledge a write for an acks=all write to \
         be considered successful.",
    ),
    def(
        "node.id",
        None,
        false,
        INT,
        "The node id of this server in its cluster.",
    ),
    def(
        "num.partitions",
        None,
        false,
        INT,
        "The default number of log partitions per topic.",
    ),
    def(
        "offset.metadata.max.bytes",
        None,
        false,
        INT,
        "The largest metadata string an offset commit may carry.",
    ),
    def(
        "offsets.retention.check.interval.ms",
        None,
        false,
        LONG,
        "How often the coordinator looks for expired committed offsets.",
    ),
    def(
        "offsets.retention.minutes",
        None,
        false,
        INT,
        "How long committed offsets of a group without members are kept.",
    ),
    def(
        "offsets.topic.num.partitions",
        None,
        false,
        INT,
        "The number of partitions of the __consumer_offsets topic (fixed once it exists).",
    ),
    def(
        "offsets.topic.replication.factor",
        None,
        false,
        SHORT,
        "The replication factor of the __consumer_offsets topic, capped at the live brokers \
         when it is created.",
    ),
    def(
        "producer.id.expiration.ms",
        None,
        false,
        LONG,
        "The time in ms that a partition keeps an idempotent producer's state after its last \
         batch.",
    ),
    def(
        "replica.lag.time.max.ms",
        None,
        false,
        LONG,
        "If a follower has not caught up to the leader's log end offset for at least this \
         time, the leader removes the follower from the ISR.",
    ),
    def(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        true,
        BOOLEAN,
        "Whether replicas not in the ISR may be elected as leader as a last resort, even though \
         doing so may result in data loss.",
    ),
];

/// The catalog entry of a broker config.
pub fn find(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// The broker config whose value is the default of topic config `topic_name`.
pub fn for_topic_config(topic_name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS
        .iter()
        .find(|d| d.topic_config == Some(topic_name))
}

/// Dynamic broker configs by Kafka name, as committed by the controllers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    /// The cluster-wide defaults (Kafka's BROKER resource with an empty name).
    pub cluster: BTreeMap<String, String>,
    /// Per-broker values, by broker id.
    pub brokers: BTreeMap<NodeId, BTreeMap<String, String>>,
}

impl DynamicConfigs {
    /// The dynamic value of `name` for `broker` and where it comes from: the broker's own
    /// value, else the cluster-wide default.
    pub fn value(&self, broker: NodeId, name: &str) -> Option<(&str, i8)> {
        let own = self
            .brokers
            .get(&broker)
            .and_then(|configs| configs.get(name))
            .map(|v| (v.as_str(), source::DYNAMIC_BROKER_CONFIG));
        own.or_else(|| {
            self.cluster
                .get(name)
                .map(|v| (v.as_str(), source::DYNAMIC_DEFAULT_BROKER_CONFIG))
        })
    }

    /// The topic defaults of `broker`: `base` (its static defaults) with the cluster-wide and
    /// then the broker's own dynamic topic defaults applied.
    pub fn topic_defaults(
        &self,
        broker: NodeId,
        base: &TopicConfig,
    ) -> Result<TopicConfig, AdminError> {
        let mut defaults = base.clone();
        let layers = [Some(&self.cluster), self.brokers.get(&broker)];
        for layer in layers.into_iter().flatten() {
            defaults = defaults.with_overrides(&as_topic_overrides(layer))?;
        }
        Ok(defaults)
    }
}

/// The topic-config form (`retention.ms`) of the dynamic topic defaults in `configs`
/// (`log.retention.ms`); other names are left out.
pub fn as_topic_overrides(configs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    configs
        .iter()
        .filter_map(|(name, value)| {
            let topic = find(name)?.topic_config?;
            Some((topic.to_string(), value.clone()))
        })
        .collect()
}

/// Validates a dynamic change of broker configs, as the controller does before committing it.
///
/// `changed` are the names being set or deleted; `resulting` is the resource's whole set of
/// dynamic configs after the change, whose values are checked against `base` (any topic
/// defaults: only the values' types and bounds matter).
///
/// # Errors
/// - an unknown name: INVALID_CONFIG;
/// - a config that cannot change without a restart: INVALID_REQUEST, with Kafka's message
///   ("Cannot update these configs dynamically: …");
/// - a bad value: INVALID_CONFIG naming the config.
pub fn validate_dynamic<'a>(
    changed: impl IntoIterator<Item = &'a str>,
    resulting: &BTreeMap<String, String>,
    base: &TopicConfig,
) -> Result<(), AdminError> {
    let mut read_only = Vec::new();
    for name in changed {
        match find(name) {
            None => {
                return Err(AdminError::new(
                    ResponseError::InvalidConfig,
                    format!("Unknown broker config {name}."),
                ));
            }
            Some(def) if !def.dynamic => read_only.push(name),
            Some(_) => {}
        }
    }
    if !read_only.is_empty() {
        return Err(AdminError::new(
            ResponseError::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: Set({})",
                read_only.join(", ")
            ),
        ));
    }
    let mut topic_overrides = BTreeMap::new();
    for (name, value) in resulting {
        let Some(topic_name) = find(name).and_then(|d| d.topic_config) else {
            continue;
        };
        topic_overrides.insert(topic_name.to_string(), value.clone());
        // Check one at a time so the message names the broker config, not its topic synonym.
        base.with_overrides(&BTreeMap::from([(topic_name.to_string(), value.clone())]))
            .map_err(|e| {
                AdminError::new(
                    ResponseError::InvalidConfig,
                    format!(
                        "Invalid value {value} for configuration {name}: {}",
                        e.message
                    ),
                )
            })?;
    }
    base.with_overrides(&topic_overrides)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_catalog_is_sorted_and_its_topic_synonyms_are_topic_configs() {
        let names: Vec<&str> = BROKER_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for def in BROKER_CONFIGS {
            if let Some(topic) = def.topic_config {
                let one = map(&[(topic, "1")]);
                // Known topic names parse (a value may be refused, the name may not).
                if let Err(e) = TopicConfig::default().with_overrides(&one) {
                    assert!(
                        !e.message.contains("unknown"),
                        "{}: {}",
                        def.name,
                        e.message
                    );
                }
            }
        }
    }

    #[test]
    fn broker_values_win_over_cluster_defaults_which_win_over_static_ones() {
        let dynamic = DynamicConfigs {
            cluster: map(&[("log.retention.ms", "1000"), ("log.segment.bytes", "2048")]),
            brokers: BTreeMap::from([(2, map(&[("log.retention.ms", "5000")]))]),
        };
        let base = TopicConfig::default();
        let one = dynamic.topic_defaults(1, &base).unwrap();
        let two = dynamic.topic_defaults(2, &base).unwrap();
        assert_eq!((one.log.retention_ms, one.log.segment_bytes), (1000, 2048));
        assert_eq!((two.log.retention_ms, two.log.segment_bytes), (5000, 2048));
        assert_eq!(
            dynamic.value(2, "log.retention.ms"),
            Some(("5000", source::DYNAMIC_BROKER_CONFIG))
        );
        assert_eq!(
            dynamic.value(1, "log.retention.ms"),
            Some(("1000", source::DYNAMIC_DEFAULT_BROKER_CONFIG))
        );
        assert_eq!(dynamic.value(1, "message.max.bytes"), None);
    }

    #[test]
    fn validation_refuses_unknown_read_only_and_bad_values_with_kafkas_codes() {
        let base = TopicConfig::default();
        let ok = map(&[("log.retention.ms", "60000"), ("min.insync.replicas", "2")]);
        assert_eq!(validate_dynamic(["log.retention.ms"], &ok, &base), Ok(()));
        let cases: [(&str, &str, ResponseError, &str); 4] = [
            (
                "no.such.config",
                "1",
                ResponseError::InvalidConfig,
                "Unknown",
            ),
            (
                "num.partitions",
                "3",
                ResponseError::InvalidRequest,
                "dynamically",
            ),
            (
                "log.retention.ms",
                "soon",
                ResponseError::InvalidConfig,
                "log.retention.ms",
            ),
            (
                "log.segment.bytes",
                "1",
                ResponseError::InvalidConfig,
                "log.segment.bytes",
            ),
        ];
        for (name, value, code, needle) in cases {
            let err = validate_dynamic([name], &map(&[(name, value)]), &base).unwrap_err();
            assert_eq!(err.code, code, "{name}={value}");
            assert!(
                err.message.contains(needle),
                "{name}={value}: {}",
                err.message
            );
        }
    }
}
