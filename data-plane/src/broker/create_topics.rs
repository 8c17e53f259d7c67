//! CreateTopics (key 19): creates topics through the metadata authority.
//!
//! # Expected flow
//! The request is checked for names given twice (INVALID_REQUEST for each, as Kafka does), the
//! rest go to the authority in one call, and the broker applies the resulting image before
//! answering, so a client that sees success can produce to the topic on this broker at once.
//!
//! # Errors
//! Per topic, as response data: INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS,
//! INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG,
//! INVALID_REQUEST, POLICY_VIOLATION (too many partitions in one request).

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::metadata::{AdminError, NewTopic};

impl Broker {
    /// Answers a CreateTopics request.
    pub(super) async fn create_topics(
        &self,
        request: CreateTopicsRequest,
        version: i16,
    ) -> CreateTopicsResponse {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for topic in &request.topics {
            *seen.entry(topic.name.0.to_string()).or_default() += 1;
        }
        let mut to_create = Vec::new();
        for topic in &request.topics {
            let name = topic.name.0.to_string();
            if seen[&name] > 1 {
                continue;
            }
            to_create.push(NewTopic {
                name,
                num_partitions: (topic.num_partitions != -1).then_some(topic.num_partitions),
                replication_factor: (topic.replication_factor != -1)
                    .then_some(topic.replication_factor),
                assignments: topic
                    .assignments
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect(),
                configs: topic
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect(),
            });
        }
        let mut outcomes = self
            .authority
            .create_topics(to_create, request.validate_only)
            .await;
        if !request.validate_only {
            let latest = self.authority.image();
            if let Err(e) = self.partitions.apply_image(&latest) {
                tracing::error!(error = %e, "could not apply metadata after CreateTopics");
            }
        }
        let mut outcomes = outcomes.drain(..);
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                let result = CreatableTopicResult::default().with_name(topic.name.clone());
                if seen[topic.name.0.as_str()] > 1 {
                    let message = format!(
                        "Create topics request from client contains a duplicate topic: {}",
                        topic.name.0.as_str()
                    );
                    return with_error(
                        result,
                        &AdminError::new(ResponseError::InvalidRequest, message),
                    );
                }
                match outcomes.next() {
                    Some(Ok(created)) => self.describe_created(result, &created, version),
                    Some(Err(e)) => with_error(result, &e),
                    None => unreachable!("the authority answers every topic"),
                }
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }

    /// Fills in what v5+ reports about a created topic: id, counts and effective configs.
    fn describe_created(
        &self,
        result: CreatableTopicResult,
        topic: &crate::metadata::Topic,
        version: i16,
    ) -> CreatableTopicResult {
        if version < 5 {
            return result.with_topic_id(topic.id);
        }
        // The same values and sources DescribeConfigs reports (topic override, dynamic broker
        // default, static, default).
        let configs = self
            .topic_config_sources(&self.image(), &topic.configs)
            .into_iter()
            .map(|(name, value, source)| {
                CreatableTopicConfigs::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_config_source(source)
            })
            .collect();
        result
            .with_topic_id(topic.id)
            .with_num_partitions(topic.partitions.len() as i32)
            .with_replication_factor(topic.replication_factor())
            .with_configs(Some(configs))
    }
}

fn with_error(result: CreatableTopicResult, error: &AdminError) -> CreatableTopicResult {
    result
        .with_error_code(error.code.code())
        .with_error_message(Some(StrBytes::from_string(error.message.clone())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}
