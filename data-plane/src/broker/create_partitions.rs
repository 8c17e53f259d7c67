//! CreatePartitions (key 37): adds partitions to existing topics through the metadata authority.
//!
//! Each topic is one controller command, answered in request order. Errors per topic, as
//! response data: UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (a count that does not grow
//! the topic), INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST (a topic named twice).

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::controller::{Command, CommandResult};
use crate::metadata::AdminError;

impl Broker {
    /// Answers a CreatePartitions request.
    pub(super) async fn create_partitions(
        &self,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for topic in &request.topics {
            *seen.entry(topic.name.0.as_str()).or_default() += 1;
        }
        let mut results = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let name = topic.name.0.to_string();
            let outcome = if seen[name.as_str()] > 1 {
                Err(AdminError::new(
                    ResponseError::InvalidRequest,
                    format!("Duplicate topic in request: {name}"),
                ))
            } else {
                let command = Command::CreatePartitions {
                    topic: name,
                    new_total_count: topic.count,
                    assignments: topic
                        .assignments
                        .iter()
                        .flatten()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect(),
                    validate_only: request.validate_only,
                };
                match self.authority.execute(command).await {
                    Ok(CommandResult::CreatePartitions(result)) => {
                        result.map_err(|e| e.into_admin_error())
                    }
                    Ok(other) => Err(AdminError::new(
                        ResponseError::UnknownServerError,
                        format!("unexpected result {other:?}"),
                    )),
                    Err(e) => Err(e),
                }
            };
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            results.push(match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code.code())
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            });
        }
        self.refresh_image();
        CreatePartitionsResponse::default().with_results(results)
    }
}
