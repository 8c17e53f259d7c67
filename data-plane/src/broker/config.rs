//! Broker configuration, by Kafka's broker config names.
//!
//! Operators and the control plane speak Kafka's names (`num.partitions`, `log.retention.ms`,
//! …), so existing configurations carry over. Names, types, defaults and validation are the
//! catalog's (`ferry_kafka_config`); [`BrokerConfig::apply_kafka_configs`] maps each onto its
//! typed setting, and the broker configs with a topic synonym become the defaults of those
//! topic configs (`log.retention.ms` is the default of `retention.ms`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::group::GroupOptions;
use crate::metadata::NodeId;
use crate::metadata::topic_config::TopicDefaults;
use crate::metrics::broker::MetricsLimits;

/// Broker settings, with Kafka's names in the docs (defaults and bounds are the catalog's).
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
    /// `replica.lag.time.max.ms`: a follower that has not been caught
    /// up to its leader's log end for this long is removed from the ISR.
    pub replica_lag_time_max: Duration,
    /// `producer.id.expiration.ms`: a partition forgets an
    /// idempotent producer this long after its last batch.
    pub producer_id_expiration_ms: i64,
    /// `connections.max.idle.ms`: the Kafka listener closes a
    /// connection idle this long ([`crate::server`]).
    pub connections_max_idle: Duration,
    /// `max.connections.per.ip`: client connections from one address.
    pub max_connections_per_ip: usize,
    /// The broker configs given at startup by Kafka name, as given (DescribeConfigs reports
    /// them as STATIC_BROKER_CONFIG).
    pub static_configs: BTreeMap<String, String>,
    /// The consumer-group coordinator's settings (`group.*`, `offsets.*`).
    pub groups: GroupOptions,
    /// Bounds on the series the broker's metrics report (not a Kafka config).
    pub metrics: MetricsLimits,
}

/// Default of `connections.max.idle.ms` (the catalog's: Kafka's, 10 minutes).
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: u64 =
    ferry_kafka_config::default_int("connections.max.idle.ms") as u64;

/// Default of `max.connections.per.ip` (the catalog's, 1,000). Kafka's is unbounded (`Integer.MAX_VALUE`); Ferry's is
/// a tenth of [`crate::server::DEFAULT_MAX_CONNECTIONS`], so no single address can take the
/// listener and at least ten must cooperate to fill it, while a host running many clients (or,
/// in `ferry dev`, every client and broker on 127.0.0.1) stays far from it. Raise it for a NAT
/// gateway with more than a thousand clients behind it.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize =
    ferry_kafka_config::default_int("max.connections.per.ip") as usize;

impl BrokerConfig {
    /// Defaults (the catalog's) for a broker with `node_id` keeping its logs in `log_dir`.
    pub fn new(node_id: NodeId, log_dir: PathBuf) -> Self {
        let int = |name| catalog(name).default_int();
        let millis = |name| Duration::from_millis(int(name) as u64);
        Self {
            node_id,
            log_dir,
            auto_create_topics_enable: catalog("auto.create.topics.enable").default_bool(),
            topic_defaults: TopicDefaults::default(),
            retention_check_interval: millis("log.retention.check.interval.ms"),
            replica_lag_time_max: millis("replica.lag.time.max.ms"),
            producer_id_expiration_ms: int("producer.id.expiration.ms"),
            connections_max_idle: millis("connections.max.idle.ms"),
            max_connections_per_ip: int("max.connections.per.ip") as usize,
            static_configs: BTreeMap::new(),
            metrics: MetricsLimits::default(),
            groups: GroupOptions::default(),
        }
    }

    /// Applies broker configs given by Kafka name. Unknown names and bad values are refused
    /// with a sentence naming the config (the catalog's checks, the same the control plane
    /// runs on a configuration: `ferry_kafka_config::validate_broker_configs`).
    pub fn apply_kafka_configs<'a>(
        &mut self,
        configs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        let configs: Vec<(&str, &str)> = configs.into_iter().collect();
        let mut all = self.static_configs.clone();
        all.extend(configs.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        ferry_kafka_config::validate_broker_configs(
            all.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .map_err(|e| e.to_string())?;
        let mut topic_overrides = BTreeMap::new();
        for (name, value) in configs {
            let config = catalog(name);
            if let Some(topic) = config.topic_name() {
                topic_overrides.insert(topic.to_string(), value.to_string());
                continue;
            }
            if GroupOptions::is_config(name) {
                self.groups.apply_config(name, value)?;
                continue;
            }
            let int = || config.int(value).map_err(|e| e.to_string());
            let millis = || Ok::<_, String>(Duration::from_millis(int()? as u64));
            match name {
                "num.partitions" => self.topic_defaults.num_partitions = int()? as i32,
                "default.replication.factor" => {
                    self.topic_defaults.default_replication_factor = int()? as i16
                }
                "auto.create.topics.enable" => {
                    self.auto_create_topics_enable =
                        config.boolean(value).map_err(|e| e.to_string())?
                }
                "log.retention.check.interval.ms" => self.retention_check_interval = millis()?,
                "replica.lag.time.max.ms" => self.replica_lag_time_max = millis()?,
                "producer.id.expiration.ms" => self.producer_id_expiration_ms = int()?,
                "connections.max.idle.ms" => self.connections_max_idle = millis()?,
                "max.connections.per.ip" => self.max_connections_per_ip = int()? as usize,
                other => unreachable!("broker config {other} is in the catalog but has no setting"),
            }
        }
        self.topic_defaults.config = self
            .topic_defaults
            .config
            .with_overrides(&topic_overrides)
            .map_err(|e| e.message)?;
        self.static_configs = all;
        Ok(())
    }

    /// The value of broker config `name` in Kafka's string form (DescribeConfigs); `None` for a
    /// name the catalog does not know.
    pub fn value(&self, name: &str) -> Option<String> {
        let config = ferry_kafka_config::broker(name)?;
        if let Some(topic_name) = config.topic_name() {
            return self
                .topic_defaults
                .config
                .describe()
                .into_iter()
                .find(|(n, _)| *n == topic_name)
                .map(|(_, v)| v);
        }
        Some(match name {
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "broker.id" | "node.id" => self.node_id.to_string(),
            "connections.max.idle.ms" => self.connections_max_idle.as_millis().to_string(),
            "max.connections.per.ip" => self.max_connections_per_ip.to_string(),
            "default.replication.factor" => {
                self.topic_defaults.default_replication_factor.to_string()
            }
            "log.retention.check.interval.ms" => {
                self.retention_check_interval.as_millis().to_string()
            }
            "num.partitions" => self.topic_defaults.num_partitions.to_string(),
            "producer.id.expiration.ms" => self.producer_id_expiration_ms.to_string(),
            "replica.lag.time.max.ms" => self.replica_lag_time_max.as_millis().to_string(),
            name if GroupOptions::is_config(name) => self.groups.config_value(name)?,
            other => unreachable!("broker config {other} is in the catalog but has no value"),
        })
    }
}

/// The catalog row of broker config `name` (one this module maps).
fn catalog(name: &str) -> &'static ferry_kafka_config::Config {
    ferry_kafka_config::broker(name).expect("the broker's settings are catalog configs")
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
    fn typed_defaults_read_back_as_the_catalog_defaults() {
        // DescribeConfigs reports DEFAULT_CONFIG from the catalog and every other layer from
        // the typed settings; both must agree on every default.
        let config = BrokerConfig::new(1, PathBuf::from("/tmp/x"));
        for def in ferry_kafka_config::broker_configs() {
            let Some(default) = def.default_value() else {
                continue;
            };
            assert_eq!(config.value(def.name), Some(default), "{}", def.name);
        }
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
