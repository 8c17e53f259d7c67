//! DescribeConfigs (key 32), AlterConfigs (key 33) and IncrementalAlterConfigs (key 44).
//!
//! Topic configs live in the metadata image as overrides of the broker defaults; changes go
//! through the metadata authority and take effect on every broker without a restart, when it
//! applies the new image (the partition logs get their new settings then).
//!
//! ```text
//! resource type 2 = TOPIC (name = topic), 4 = BROKER (name = broker id, "" = cluster default)
//! config source 1 = DYNAMIC_TOPIC_CONFIG, 4 = STATIC_BROKER_CONFIG, 5 = DEFAULT_CONFIG
//! ```
//!
//! # Caveats
//! Dynamic broker configs are not applied yet: altering a BROKER resource is refused with
//! INVALID_REQUEST, and DescribeConfigs for a broker reports its static configuration.
//! APPEND and SUBTRACT (for list-valued configs) are refused with INVALID_CONFIG.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::controller::{Command, CommandResult, ConfigOp, ConfigResource};
use crate::metadata::AdminError;
use crate::metadata::topic_config::{
    COMPRESSION_TYPE, MIN_INSYNC_REPLICAS, TopicConfig, UNCLEAN_LEADER_ELECTION_ENABLE,
};

/// Kafka's resource type codes.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's config source codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Every topic config with its effective value.
fn topic_config_values(config: &TopicConfig) -> Vec<(&'static str, String)> {
    let mut values = config.log.describe();
    values.push((MIN_INSYNC_REPLICAS, config.min_insync_replicas.to_string()));
    values.push((
        UNCLEAN_LEADER_ELECTION_ENABLE,
        config.unclean_leader_election_enable.to_string(),
    ));
    values.push((COMPRESSION_TYPE, "producer".to_string()));
    values.sort();
    values
}

impl Broker {
    /// Answers a DescribeConfigs request.
    pub(super) fn describe_configs(
        &self,
        request: DescribeConfigsRequest,
        version: i16,
    ) -> DescribeConfigsResponse {
        let image = self.image();
        let results = request
            .resources
            .iter()
            .map(|resource| {
                let keys: Option<BTreeSet<&str>> = resource
                    .configuration_keys
                    .as_ref()
                    .map(|keys| keys.iter().map(|k| k.as_str()).collect());
                let wanted = |name: &str| keys.as_ref().is_none_or(|k| k.contains(name));
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                let entries = match resource.resource_type {
                    TOPIC => match image.topics.get(resource.resource_name.as_str()) {
                        Some(topic) => self.topic_entries(&topic.configs),
                        None => {
                            return error_result(
                                result,
                                ResponseError::UnknownTopicOrPartition,
                                "Topic does not exist",
                            );
                        }
                    },
                    BROKER => {
                        let name = resource.resource_name.as_str();
                        if !name.is_empty() && name.parse() != Ok(self.node_id()) {
                            return error_result(
                                result,
                                ResponseError::InvalidRequest,
                                "DescribeConfigs for another broker must be sent to that broker",
                            );
                        }
                        self.broker_entries()
                    }
                    other => {
                        let message = format!("Unsupported resource type {other}");
                        return error_result(result, ResponseError::InvalidRequest, &message);
                    }
                };
                let configs = entries
                    .into_iter()
                    .filter(|(name, _, _)| wanted(name))
                    .map(|(name, value, source)| {
                        let entry = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_string(name))
                            .with_value(Some(StrBytes::from_string(value)))
                            .with_config_source(source);
                        if version >= 3 {
                            entry.with_config_type(0)
                        } else {
                            entry
                        }
                    })
                    .collect();
                result.with_configs(configs)
            })
            .collect();
        DescribeConfigsResponse::default().with_results(results)
    }

    /// A topic's configs: (name, effective value, source).
    fn topic_entries(&self, overrides: &BTreeMap<String, String>) -> Vec<(String, String, i8)> {
        let defaults = &self.config.topic_defaults.config;
        let effective = defaults
            .with_overrides(overrides)
            .unwrap_or_else(|_| defaults.clone());
        topic_config_values(&effective)
            .into_iter()
            .map(|(name, value)| {
                let source = if overrides.contains_key(name) {
                    DYNAMIC_TOPIC_CONFIG
                } else {
                    DEFAULT_CONFIG
                };
                (name.to_string(), value, source)
            })
            .collect()
    }

    /// This broker's static configuration, by Kafka broker config names.
    fn broker_entries(&self) -> Vec<(String, String, i8)> {
        let config = &self.config;
        let defaults = &config.topic_defaults;
        let mut entries = vec![
            ("node.id".to_string(), config.node_id.to_string()),
            ("broker.id".to_string(), config.node_id.to_string()),
            (
                "num.partitions".to_string(),
                defaults.num_partitions.to_string(),
            ),
            (
                "default.replication.factor".to_string(),
                defaults.default_replication_factor.to_string(),
            ),
            (
                "auto.create.topics.enable".to_string(),
                config.auto_create_topics_enable.to_string(),
            ),
            (
                "log.retention.check.interval.ms".to_string(),
                config.retention_check_interval.as_millis().to_string(),
            ),
        ];
        for (name, value) in topic_config_values(&defaults.config) {
            entries.push((broker_name_of(name), value));
        }
        entries.sort();
        entries
            .into_iter()
            .map(|(n, v)| (n, v, STATIC_BROKER_CONFIG))
            .collect()
    }

    /// Answers an AlterConfigs request (every given config set, the others removed).
    pub(super) async fn alter_configs(&self, request: AlterConfigsRequest) -> AlterConfigsResponse {
        use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
        let mut responses = Vec::with_capacity(request.resources.len());
        for resource in &request.resources {
            let changes = resource
                .configs
                .iter()
                .map(|c| {
                    let op = c
                        .value
                        .as_ref()
                        .map_or(ConfigOp::Delete, |v| ConfigOp::Set(v.to_string()));
                    Ok((c.name.to_string(), op))
                })
                .collect();
            let outcome = self
                .alter(
                    resource.resource_type,
                    &resource.resource_name,
                    changes,
                    false,
                    request.validate_only,
                )
                .await;
            let (code, message) = error_fields(outcome);
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        self.refresh_image();
        AlterConfigsResponse::default().with_responses(responses)
    }

    /// Answers an IncrementalAlterConfigs request (only the named configs change).
    pub(super) async fn incremental_alter_configs(
        &self,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
        let mut responses = Vec::with_capacity(request.resources.len());
        for resource in &request.resources {
            let changes = resource
                .configs
                .iter()
                .map(|c| match (c.config_operation, &c.value) {
                    (0, Some(value)) => Ok((c.name.to_string(), ConfigOp::Set(value.to_string()))),
                    (0, None) => Err(AdminError::new(
                        ResponseError::InvalidConfig,
                        format!("A SET of {} needs a value", c.name.as_str()),
                    )),
                    (1, _) => Ok((c.name.to_string(), ConfigOp::Delete)),
                    (2 | 3, _) => Err(AdminError::new(
                        ResponseError::InvalidConfig,
                        format!(
                            "APPEND and SUBTRACT are not supported for {}",
                            c.name.as_str()
                        ),
                    )),
                    (op, _) => Err(AdminError::new(
                        ResponseError::InvalidRequest,
                        format!("Unknown config operation {op}"),
                    )),
                })
                .collect();
            let outcome = self
                .alter(
                    resource.resource_type,
                    &resource.resource_name,
                    changes,
                    true,
                    request.validate_only,
                )
                .await;
            let (code, message) = error_fields(outcome);
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        self.refresh_image();
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    }

    /// Sends one resource's config changes to the authority.
    async fn alter(
        &self,
        resource_type: i8,
        resource_name: &StrBytes,
        changes: Vec<Result<(String, ConfigOp), AdminError>>,
        incremental: bool,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let changes = changes.into_iter().collect::<Result<Vec<_>, _>>()?;
        let resource = match resource_type {
            TOPIC => ConfigResource::Topic(resource_name.to_string()),
            BROKER => {
                return Err(AdminError::new(
                    ResponseError::InvalidRequest,
                    "Dynamic broker configs are not supported yet; set them with --set at startup",
                ));
            }
            other => {
                return Err(AdminError::new(
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                ));
            }
        };
        let command = Command::AlterConfigs {
            resource,
            changes,
            incremental,
            validate_only,
        };
        match self.authority.execute(command).await? {
            CommandResult::AlterConfigs(result) => result.map_err(|e| e.into_admin_error()),
            other => Err(AdminError::new(
                ResponseError::UnknownServerError,
                format!("unexpected result {other:?}"),
            )),
        }
    }
}

/// The broker-level name of a topic config (`retention.ms` → `log.retention.ms`).
fn broker_name_of(topic_name: &str) -> String {
    match topic_name {
        "segment.bytes" => "log.segment.bytes".into(),
        "segment.ms" => "log.roll.ms".into(),
        "retention.ms" => "log.retention.ms".into(),
        "retention.bytes" => "log.retention.bytes".into(),
        "cleanup.policy" => "log.cleanup.policy".into(),
        "index.interval.bytes" => "log.index.interval.bytes".into(),
        "message.timestamp.type" => "log.message.timestamp.type".into(),
        "flush.messages" => "log.flush.interval.messages".into(),
        "flush.ms" => "log.flush.interval.ms".into(),
        "max.message.bytes" => "message.max.bytes".into(),
        other => other.into(),
    }
}

/// The error code and message of an outcome (0 and null on success).
fn error_fields(outcome: Result<(), AdminError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code.code(), Some(StrBytes::from_string(e.message))),
    }
}

fn error_result(
    result: DescribeConfigsResult,
    code: ResponseError,
    message: &str,
) -> DescribeConfigsResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}
