//! DeleteTopics (key 20): deletes topics, by name (v1+) or by topic id (v6).
//!
//! The broker answers after the authority committed the deletion and the broker removed the
//! topics' partition directories.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::metadata::TopicRef;

impl Broker {
    /// Answers a DeleteTopics request.
    pub(super) async fn delete_topics(
        &self,
        request: DeleteTopicsRequest,
        version: i16,
    ) -> DeleteTopicsResponse {
        let refs: Vec<TopicRef> = if version >= 6 {
            request
                .topics
                .iter()
                .map(|t| match &t.name {
                    Some(name) => TopicRef::Name(name.0.to_string()),
                    None => TopicRef::Id(t.topic_id),
                })
                .collect()
        } else {
            request
                .topic_names
                .iter()
                .map(|n| TopicRef::Name(n.0.to_string()))
                .collect()
        };
        let outcomes = self.authority.delete_topics(refs.clone()).await;
        let latest = self.authority.image();
        if let Err(e) = self.partitions.apply_image(&latest) {
            tracing::error!(error = %e, "could not apply metadata after DeleteTopics");
        }
        let responses =
            refs.iter()
                .zip(outcomes)
                .map(|(asked, outcome)| {
                    let result = DeletableTopicResult::default();
                    match (outcome, asked) {
                        (Ok((name, id)), _) => result
                            .with_name(Some(TopicName(StrBytes::from_string(name))))
                            .with_topic_id(id),
                        (Err(e), asked) => {
                            let result = match asked {
                                TopicRef::Name(n) => result
                                    .with_name(Some(TopicName(StrBytes::from_string(n.clone())))),
                                TopicRef::Id(id) => result.with_topic_id(*id),
                            };
                            let code = if e.code == ResponseError::UnknownTopicId && version < 6 {
                                ResponseError::UnknownTopicOrPartition
                            } else {
                                e.code
                            };
                            result
                                .with_error_code(code.code())
                                .with_error_message(Some(StrBytes::from_string(e.message)))
                        }
                    }
                })
                .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    }
}
