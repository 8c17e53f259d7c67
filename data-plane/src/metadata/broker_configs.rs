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
//! Which broker configs exist, their types, defaults and documentation are the catalog's
//! (`ferry_kafka_config::CATALOG`). Only the configs Kafka lists as dynamically updatable
//! (its `DynamicBrokerConfig`, cluster-wide mode) and that Ferry applies are dynamic there; the
//! others are read-only, and changing them is refused with INVALID_REQUEST, as Kafka refuses
//! non-dynamic configs. Unknown names and bad values are INVALID_CONFIG.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

pub use ferry_kafka_config::{broker as find, source};

use super::topic_config::TopicConfig;
use super::{AdminError, NodeId};

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
            let topic = find(name)?.topic_name()?;
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
            Some(config) if config.read_only() => read_only.push(name),
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
        let Some(config) = find(name) else {
            continue;
        };
        // Checked by the broker name, so the message names it rather than its topic synonym.
        config
            .validate(value)
            .map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
        if let Some(topic_name) = config.topic_name() {
            topic_overrides.insert(topic_name.to_string(), value.clone());
        }
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
        let names: Vec<&str> = ferry_kafka_config::broker_configs()
            .map(|d| d.name)
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for def in ferry_kafka_config::broker_configs() {
            if let Some(topic) = def.topic_name() {
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
