//! Metadata (key 3): brokers, topics and partition leaders, from the broker's image.
//!
//! A request for topics that do not exist creates them when both the client allows it
//! (`allow_auto_topic_creation`, v4+; always allowed before) and the broker does
//! (`auto.create.topics.enable`). As in Kafka, a topic name that is not valid is reported with
//! INVALID_TOPIC_EXCEPTION and never created.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::metadata::{Image, NewTopic, Topic, validate};

impl Broker {
    /// Answers a Metadata request.
    pub(super) async fn metadata(
        &self,
        request: MetadataRequest,
        version: i16,
    ) -> MetadataResponse {
        // Topics are asked for by name, or by id (v10+); an unknown id is answered with a
        // name-less entry carrying UNKNOWN_TOPIC_ID.
        let known = self.image();
        let mut unknown_ids = Vec::new();
        let wanted: Option<Vec<String>> = request.topics.map(|topics| {
            topics
                .into_iter()
                .filter_map(
                    |t| match t.name.filter(|n| t.topic_id.is_nil() || !n.0.is_empty()) {
                        Some(name) => Some(name.0.to_string()),
                        None => match known.topic_by_id(t.topic_id) {
                            Some(topic) => Some(topic.name.clone()),
                            None => {
                                unknown_ids.push(t.topic_id);
                                None
                            }
                        },
                    },
                )
                .collect()
        });
        // v0 had no flag: an empty list meant "all topics" and creation was always allowed.
        let wanted = if version == 0 && wanted.as_ref().is_some_and(|w| w.is_empty()) {
            None
        } else {
            wanted
        };
        let allow_create = version < 4 || request.allow_auto_topic_creation;
        if let Some(names) = wanted.as_ref().filter(|_| allow_create)
            && self.config.auto_create_topics_enable
        {
            self.auto_create(names).await;
        }
        let image = self.image();
        let mut topics: Vec<MetadataResponseTopic> = match wanted {
            None => image
                .topics
                .values()
                .map(|t| self.describe_topic(&image, t))
                .collect(),
            Some(names) => names
                .iter()
                .map(|name| self.topic_or_error(&image, name))
                .collect(),
        };
        topics.extend(unknown_ids.into_iter().map(|id| {
            MetadataResponseTopic::default()
                .with_topic_id(id)
                .with_error_code(ResponseError::UnknownTopicId.code())
        }));
        MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_string(image.cluster_id.clone())))
            .with_controller_id(BrokerId(image.controller_id))
            .with_brokers(
                image
                    .brokers
                    .values()
                    .map(|b| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(b.node_id))
                            .with_host(StrBytes::from_string(b.host.clone()))
                            .with_port(i32::from(b.port))
                            .with_rack(b.rack.clone().map(StrBytes::from_string))
                    })
                    .collect(),
            )
            .with_topics(topics)
    }

    /// Creates the valid, missing topics among `names` with the broker defaults.
    async fn auto_create(&self, names: &[String]) {
        let image = self.image();
        let missing: Vec<NewTopic> = names
            .iter()
            .filter(|n| !image.topics.contains_key(*n) && validate::topic_name(n).is_ok())
            .map(|name| NewTopic {
                name: name.clone(),
                num_partitions: None,
                replication_factor: None,
                assignments: vec![],
                configs: vec![],
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        for result in self.authority.create_topics(missing, false).await {
            if let Err(e) = result {
                tracing::debug!(error = %e, "auto-creation refused");
            }
        }
        let latest = self.authority.image();
        if let Err(e) = self.partitions.apply_image(&latest) {
            tracing::error!(error = %e, "could not apply metadata after auto-creation");
        }
    }

    fn topic_or_error(&self, image: &Image, name: &str) -> MetadataResponseTopic {
        if let Some(topic) = image.topics.get(name) {
            return self.describe_topic(image, topic);
        }
        let code = match validate::topic_name(name) {
            Err(e) => e.code,
            Ok(()) => ResponseError::UnknownTopicOrPartition,
        };
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
            .with_error_code(code.code())
    }

    fn describe_topic(&self, image: &Image, topic: &Topic) -> MetadataResponseTopic {
        let partitions = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let offline: Vec<BrokerId> = p
                    .replicas
                    .iter()
                    .filter(|r| !image.brokers.contains_key(r))
                    .map(|r| BrokerId(*r))
                    .collect();
                let leader_known = p.leader >= 0 && image.brokers.contains_key(&p.leader);
                let code = if leader_known {
                    0
                } else {
                    ResponseError::LeaderNotAvailable.code()
                };
                MetadataResponsePartition::default()
                    .with_error_code(code)
                    .with_partition_index(index as i32)
                    .with_leader_id(BrokerId(if leader_known { p.leader } else { -1 }))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                    .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect())
                    .with_offline_replicas(offline)
            })
            .collect();
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
            .with_topic_id(topic.id)
            .with_is_internal(topic.internal)
            .with_partitions(partitions)
    }
}
