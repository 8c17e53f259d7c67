//! DescribeConfigs (key 32), AlterConfigs (key 33) and IncrementalAlterConfigs (key 44).
//!
//! Which configs exist, their types, defaults, synonyms and documentation come from the catalog
//! (`ferry_kafka_config`). Topic configs live in the metadata image as overrides of the broker
//! defaults; dynamic broker configs live there too ([`crate::metadata::broker_configs`]). Changes go through the metadata
//! authority and take effect on every broker without a restart, when it applies the new image
//! (the partition logs get their new settings then).
//!
//! ```text
//! resource type 2 = TOPIC (name = topic), 4 = BROKER (name = broker id, "" = cluster default)
//! config source 1 = DYNAMIC_TOPIC_CONFIG, 2 = DYNAMIC_BROKER_CONFIG,
//!               3 = DYNAMIC_DEFAULT_BROKER_CONFIG, 4 = STATIC_BROKER_CONFIG, 5 = DEFAULT_CONFIG
//! ```
//!
//! A config's synonyms (DescribeConfigs v1+, when asked) are its values at every layer that
//! sets one, highest precedence first: a topic's `retention.ms` override, then
//! `log.retention.ms` for this broker, cluster-wide, static and by default. Its source is that
//! of the first synonym.
//!
//! As in Kafka, a BROKER resource names the broker the request is sent to (its id) or the
//! cluster-wide default (""); describing "" lists only the cluster-wide dynamic configs.
//!
//! # Caveats
//! APPEND and SUBTRACT (for list-valued configs) are refused with INVALID_CONFIG.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use ferry_kafka_config::{Config, source};

use super::Broker;
use crate::controller::{Command, CommandResult, ConfigOp, ConfigResource};
use crate::metadata::{AdminError, Image};

/// Kafka's resource type codes.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// One config as DescribeConfigs reports it.
struct Described {
    /// Config name.
    name: String,
    /// Synonyms, highest precedence first; the first is the effective value and source.
    synonyms: Vec<(String, String, i8)>,
    /// Whether it cannot be changed (without a restart).
    read_only: bool,
    /// Kafka's config type code.
    config_type: i8,
    /// Documentation, if Ferry has some.
    doc: Option<&'static str>,
}

impl Described {
    /// The wire form at `version`: synonyms and documentation only when asked (and the version
    /// has them), the config type from v3.
    fn into_wire(
        self,
        version: i16,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> DescribeConfigsResourceResult {
        let (_, value, source) = self
            .synonyms
            .first()
            .cloned()
            .expect("every described config has at least its default or static layer");
        let mut out = DescribeConfigsResourceResult::default()
            .with_name(StrBytes::from_string(self.name))
            .with_value(Some(StrBytes::from_string(value)))
            .with_config_source(source)
            .with_read_only(self.read_only)
            .with_is_sensitive(false);
        if include_synonyms {
            let synonyms = self
                .synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_string(name))
                        .with_value(Some(StrBytes::from_string(value)))
                        .with_source(source)
                })
                .collect();
            out = out.with_synonyms(synonyms);
        }
        if version >= 3 {
            out = out.with_config_type(self.config_type);
        }
        if include_documentation {
            out = out.with_documentation(self.doc.map(StrBytes::from_static_str));
        }
        out
    }
}

impl Broker {
    /// Answers a DescribeConfigs request.
    pub(super) fn describe_configs(
        &self,
        request: DescribeConfigsRequest,
        version: i16,
    ) -> DescribeConfigsResponse {
        let image = self.image();
        let include_synonyms = version >= 1 && request.include_synonyms;
        let include_documentation = version >= 3 && request.include_documentation;
        let results = request
            .resources
            .iter()
            .map(|resource| {
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                let entries = match self.resource_entries(&image, resource) {
                    Ok(entries) => entries,
                    Err((code, message)) => return error_result(result, code, &message),
                };
                let keys: Option<BTreeSet<&str>> = resource
                    .configuration_keys
                    .as_ref()
                    .map(|keys| keys.iter().map(|k| k.as_str()).collect());
                let configs = entries
                    .into_iter()
                    .filter(|entry| {
                        keys.as_ref()
                            .is_none_or(|k| k.contains(entry.name.as_str()))
                    })
                    .map(|entry| entry.into_wire(version, include_synonyms, include_documentation))
                    .collect();
                result.with_configs(configs)
            })
            .collect();
        DescribeConfigsResponse::default().with_results(results)
    }

    /// Every config of one resource, or why it cannot be described.
    fn resource_entries(
        &self,
        image: &Image,
        resource: &DescribeConfigsResource,
    ) -> Result<Vec<Described>, (ResponseError, String)> {
        let name = resource.resource_name.as_str();
        match resource.resource_type {
            TOPIC => match image.topics.get(name) {
                Some(topic) => Ok(self.topic_entries(image, &topic.configs)),
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    "Topic does not exist".into(),
                )),
            },
            BROKER if name.is_empty() => Ok(self.cluster_default_entries(image)),
            BROKER if name.parse() == Ok(self.node_id()) => Ok(self.broker_entries(image)),
            BROKER => Err((
                ResponseError::InvalidRequest,
                "DescribeConfigs for another broker must be sent to that broker".into(),
            )),
            other => Err((
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )),
        }
    }

    /// The layers below a topic override of broker config `def` for this broker: dynamic
    /// (own, then cluster-wide), static, default; each with the value it sets.
    fn broker_synonyms(&self, image: &Image, def: &Config) -> Vec<(String, String, i8)> {
        let name = def.name.to_string();
        let mut synonyms = Vec::new();
        let dynamic = &image.broker_configs;
        if let Some(value) = dynamic
            .brokers
            .get(&self.node_id())
            .and_then(|configs| configs.get(def.name))
        {
            synonyms.push((name.clone(), value.clone(), source::DYNAMIC_BROKER_CONFIG));
        }
        if let Some(value) = dynamic.cluster.get(def.name) {
            synonyms.push((
                name.clone(),
                value.clone(),
                source::DYNAMIC_DEFAULT_BROKER_CONFIG,
            ));
        }
        // A config without a default (the node's ids) is set for each node at startup.
        let default = def.default_value();
        if default.is_none() || self.config.static_configs.contains_key(def.name) {
            let value = self.config.value(def.name).unwrap_or_default();
            synonyms.push((name.clone(), value, source::STATIC_BROKER_CONFIG));
        }
        if let Some(value) = default {
            synonyms.push((name, value, source::DEFAULT_CONFIG));
        }
        synonyms
    }

    /// A topic's configs as (name, effective value, source), for CreateTopics v5+.
    pub(super) fn topic_config_sources(
        &self,
        image: &Image,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<(String, String, i8)> {
        self.topic_entries(image, overrides)
            .into_iter()
            .filter_map(|entry| {
                let (_, value, source) = entry.synonyms.into_iter().next()?;
                Some((entry.name, value, source))
            })
            .collect()
    }

    /// A topic's configs, with the topic's overrides over this broker's layered defaults.
    fn topic_entries(&self, image: &Image, overrides: &BTreeMap<String, String>) -> Vec<Described> {
        let defaults = self.partitions.topic_defaults(image);
        let effective = defaults
            .with_overrides(overrides)
            .unwrap_or_else(|_| defaults.clone());
        effective
            .describe()
            .into_iter()
            .map(|(name, value)| {
                let def = ferry_kafka_config::synonym_of_topic(name);
                let mut synonyms = Vec::new();
                if let Some(value) = overrides.get(name) {
                    synonyms.push((
                        name.to_string(),
                        value.clone(),
                        source::DYNAMIC_TOPIC_CONFIG,
                    ));
                }
                if let Some(def) = def {
                    synonyms.extend(self.broker_synonyms(image, def));
                }
                if synonyms.is_empty() {
                    synonyms.push((name.to_string(), value.clone(), source::DEFAULT_CONFIG));
                }
                // The effective value is authoritative (normalised, e.g. "delete").
                synonyms[0].1 = value;
                Described {
                    name: name.to_string(),
                    synonyms,
                    read_only: false,
                    config_type: def
                        .map_or(ferry_kafka_config::Type::String, |d| d.kind)
                        .code(),
                    doc: def.map(|d| d.doc),
                }
            })
            .collect()
    }

    /// Every broker config of this broker, with its layers.
    fn broker_entries(&self, image: &Image) -> Vec<Described> {
        ferry_kafka_config::broker_configs()
            .map(|def| Described {
                name: def.name.to_string(),
                synonyms: self.broker_synonyms(image, def),
                read_only: def.read_only(),
                config_type: def.kind.code(),
                doc: Some(def.doc),
            })
            .collect()
    }

    /// The cluster-wide dynamic broker configs (the BROKER resource named "").
    fn cluster_default_entries(&self, image: &Image) -> Vec<Described> {
        image
            .broker_configs
            .cluster
            .iter()
            .map(|(name, value)| {
                let def = ferry_kafka_config::broker(name);
                Described {
                    name: name.clone(),
                    synonyms: vec![(
                        name.clone(),
                        value.clone(),
                        source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                    )],
                    read_only: def.is_none_or(|d| d.read_only()),
                    config_type: def
                        .map_or(ferry_kafka_config::Type::String, |d| d.kind)
                        .code(),
                    doc: def.map(|d| d.doc),
                }
            })
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
            BROKER => match resource_name.as_str() {
                "" => ConfigResource::Cluster,
                name if name.parse() == Ok(self.node_id()) => {
                    ConfigResource::Broker(self.node_id())
                }
                name => {
                    return Err(AdminError::new(
                        ResponseError::InvalidRequest,
                        format!(
                            "Unexpected broker id, expected {} or empty string, but received {name}",
                            self.node_id()
                        ),
                    ));
                }
            },
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
