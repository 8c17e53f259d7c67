//! Broker configuration, by Kafka's broker config names.
//!
//! Operators and the control plane speak Kafka's names (`num.partitions`, `log.retention.ms`,
//! …), so existing configurations carry over. [`BrokerConfig::apply_kafka_configs`] maps them
//! onto typed settings; the broker-level `log.*` names become the defaults of the topic configs
//! they correspond to (`log.retention.ms` is the default of `retention.ms`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::metadata::NodeId;
use crate::metadata::topic_config::TopicDefaults;

/// Broker settings, with Kafka's names in the docs.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: NodeId,
    /// `log.dirs` (one directory): where partition directories live.
    pub log_dir: PathBuf,
    /// `auto.create.topics.enable`: Metadata requests for unknown topics create them.
    pub auto_create_topics_enable: bool,
    /// Defaults for new topics (`num.partitions`, `default.replication.factor`, topic configs).
    pub topic_defaults: TopicDefaults,
    /// `log.retention.check.interval.ms`: how often retention and time-based rolls run.
    pub retention_check_interval: Duration,
    /// `replica.lag.time.max.ms` (Kafka's default 30 s): a follower that has not been caught
    /// up to its leader's log end for this long is removed from the ISR.
    pub replica_lag_time_max: Duration,
    /// `producer.id.expiration.ms` (Kafka's default one day): a partition forgets an
    /// idempotent producer this long after its last batch.
    pub producer_id_expiration_ms: i64,
    /// `connections.max.idle.ms` (Kafka's default 10 minutes): the Kafka listener closes a
    /// connection idle this long ([`crate::server`]).
    pub connections_max_idle: Duration,
    /// `max.connections.per.ip` (Ferry's default [`DEFAULT_MAX_CONNECTIONS_PER_IP`]): client
    /// connections from one address.
    pub max_connections_per_ip: usize,
    /// The broker configs given at startup by Kafka name, as given (DescribeConfigs reports
    /// them as STATIC_BROKER_CONFIG).
    pub static_configs: BTreeMap<String, String>,
    /// The consumer-group coordinator's settings (`group.*`, `offsets.*`).
    pub groups: crate::group::GroupOptions,
}

/// Default of `connections.max.idle.ms`: Kafka's, 10 minutes.
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: u64 = 600_000;

/// Default of `max.connections.per.ip`. Kafka's is unbounded (`Integer.MAX_VALUE`); Ferry's is
/// a tenth of [`crate::server::DEFAULT_MAX_CONNECTIONS`], so no single address can take the
/// listener and at least ten must cooperate to fill it, while a host running many clients (or,
/// in `ferry dev`, every client and broker on 127.0.0.1) stays far from it. Raise it for a NAT
/// gateway with more than a thousand clients behind it.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1_000;

impl BrokerConfig {
    /// Defaults for a broker with `node_id` keeping its logs in `log_dir`.
    pub fn new(node_id: NodeId, log_dir: PathBuf) -> Self {
        Self {
            node_id,
            log_dir,
            auto_create_topics_enable: true,
            topic_defaults: TopicDefaults::default(),
            retention_check_interval: Duration::from_millis(300_000),
            replica_lag_time_max: Duration::from_millis(30_000),
            producer_id_expiration_ms:
                crate::log::producer_state::DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            connections_max_idle: Duration::from_millis(DEFAULT_CONNECTIONS_MAX_IDLE_MS),
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            static_configs: BTreeMap::new(),
            groups: crate::group::GroupOptions::default(),
        }
    }
}

/// Broker-level names that set the default of a topic config, as Kafka maps them.
const TOPIC_DEFAULT_NAMES: &[(&str, &str)] = &[
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("message.max.bytes", "max.message.bytes"),
    ("min.insync.replicas", "min.insync.replicas"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

impl BrokerConfig {
    /// Applies broker configs given by Kafka name. Unknown names and bad values are refused
    /// with a sentence naming the config.
    pub fn apply_kafka_configs<'a>(
        &mut self,
        configs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        let mut topic_overrides = BTreeMap::new();
        for (name, value) in configs {
            self.static_configs
                .insert(name.to_string(), value.to_string());
            let bad = |why: &str| format!("invalid value {value:?} for {name}: {why}");
            match name {
                "num.partitions" => {
                    self.topic_defaults.num_partitions = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected an integer > 0"))?;
                }
                "default.replication.factor" => {
                    self.topic_defaults.default_replication_factor = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected an integer > 0"))?;
                }
                "auto.create.topics.enable" => {
                    self.auto_create_topics_enable =
                        value.parse().map_err(|_| bad("expected true or false"))?;
                }
                "log.retention.check.interval.ms" => {
                    let ms: u64 = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected an integer > 0"))?;
                    self.retention_check_interval = Duration::from_millis(ms);
                }
                "replica.lag.time.max.ms" => {
                    let ms: u64 = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected an integer > 0"))?;
                    self.replica_lag_time_max = Duration::from_millis(ms);
                }
                "producer.id.expiration.ms" => {
                    self.producer_id_expiration_ms =
                        value
                            .parse()
                            .ok()
                            .filter(|n: &i64| *n >= 1)
                            .ok_or_else(|| bad("expected an integer >= 1"))?;
                }
                "connections.max.idle.ms" => {
                    let ms: u64 = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected an integer > 0"))?;
                    self.connections_max_idle = Duration::from_millis(ms);
                }
                "max.connections.per.ip" => {
                    self.max_connections_per_ip = value
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad("expected an integer >= 0"))?
                        as usize;
                }
                _ if crate::group::GroupOptions::is_config(name) => {
                    self.groups.apply_config(name, value)?;
                }
                _ => match TOPIC_DEFAULT_NAMES
                    .iter()
                    .find(|(broker, _)| *broker == name)
                {
                    Some((_, topic)) => {
                        topic_overrides.insert(topic.to_string(), value.to_string());
                    }
                    None => return Err(format!("unknown broker config {name:?}")),
                },
            }
        }
        self.topic_defaults.config = self
            .topic_defaults
            .config
            .with_overrides(&topic_overrides)
            .map_err(|e| e.message)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_broker_names_onto_settings_and_topic_defaults() {
        let mut config = BrokerConfig::new(1, PathBuf::from("/tmp/x"));
        config
            .apply_kafka_configs([
                ("num.partitions", "3"),
                ("auto.create.topics.enable", "false"),
                ("log.retention.ms", "60000"),
                ("min.insync.replicas", "2"),
                ("log.retention.check.interval.ms", "1000"),
                ("replica.lag.time.max.ms", "5000"),
                ("producer.id.expiration.ms", "60000"),
                ("connections.max.idle.ms", "250"),
                ("max.connections.per.ip", "3"),
            ])
            .unwrap();
        assert_eq!(config.connections_max_idle, Duration::from_millis(250));
        assert_eq!(config.max_connections_per_ip, 3);
        assert_eq!(config.replica_lag_time_max, Duration::from_secs(5));
        assert_eq!(config.producer_id_expiration_ms, 60_000);
        assert_eq!(config.topic_defaults.num_partitions, 3);
        assert!(!config.auto_create_topics_enable);
        assert_eq!(config.topic_defaults.config.min_insync_replicas, 2);
        assert_eq!(config.retention_check_interval, Duration::from_secs(1));
        let described = config.topic_defaults.config.log.describe();
        assert!(
            described.contains(&("retention.ms", "60000".to_string())),
            "{described:?}"
        );
    }

    #[test]
    fn refuses_unknown_names_and_bad_values() {
        let mut config = BrokerConfig::new(1, PathBuf::from("/tmp/x"));
        assert!(
            config
                .apply_kafka_configs([("no.such", "1")])
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            config
                .apply_kafka_configs([("num.partitions", "0")])
                .is_err()
        );
        assert!(
            config
                .apply_kafka_configs([("log.retention.ms", "x")])
                .is_err()
        );
    }
}
