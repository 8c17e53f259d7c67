//! FindCoordinator (key 10): which broker coordinates a consumer group.
//!
//! v0–3 ask for one key, v4 for a batch (`coordinator_keys`). The first question about any
//! group starts creating `__consumer_offsets` through the metadata authority in the background
//! (as Kafka does); the answer
//! is the leader of the group's offsets partition, or COORDINATOR_NOT_AVAILABLE while it has
//! none, which clients retry.
//!
//! # Errors
//! - key type 1 (transaction coordinator): INVALID_REQUEST, because Ferry has no transaction
//!   coordinator yet; other unknown key types likewise.
//! - an empty group id: INVALID_REQUEST, as Kafka answers.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_coordinator::GroupCoordinator;

/// `key_type` of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

impl GroupCoordinator {
    /// Answers a FindCoordinator request.
    pub(super) fn find_coordinator(
        &self,
        request: FindCoordinatorRequest,
        version: i16,
    ) -> FindCoordinatorResponse {
        if version >= 4 {
            let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
            for key in &request.coordinator_keys {
                coordinators.push(self.locate(key.as_str(), request.key_type));
            }
            return FindCoordinatorResponse::default().with_coordinators(coordinators);
        }
        let found = self.locate(request.key.as_str(), request.key_type);
        FindCoordinatorResponse::default()
            .with_error_code(found.error_code)
            .with_error_message(found.error_message)
            .with_node_id(found.node_id)
            .with_host(found.host)
            .with_port(found.port)
    }

    /// The coordinator of one key, or an error entry.
    fn locate(&self, key: &str, key_type: i8) -> Coordinator {
        let entry = Coordinator::default().with_key(StrBytes::from_string(key.to_string()));
        let failed = |code: ResponseError, message: &str| {
            entry
                .clone()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message.to_string())))
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::from_static_str(""))
                .with_port(-1)
        };
        match key_type {
            KEY_TYPE_GROUP if key.is_empty() => {
                return failed(ResponseError::InvalidRequest, "the group id is empty");
            }
            KEY_TYPE_GROUP => {}
            KEY_TYPE_TRANSACTION => {
                return failed(
                    ResponseError::InvalidRequest,
                    "this broker has no transaction coordinator (transactions are not supported)",
                );
            }
            other => {
                return failed(
                    ResponseError::InvalidRequest,
                    &format!("unknown coordinator key type {other}"),
                );
            }
        }
        match self.find_group_coordinator(key) {
            Ok(leader) => {
                let image = self.image();
                let broker = &image.brokers[&leader];
                entry
                    .with_node_id(BrokerId(leader))
                    .with_host(StrBytes::from_string(broker.host.clone()))
                    .with_port(i32::from(broker.port))
            }
            Err(code) => failed(code, "the group's coordinator is not available yet"),
        }
    }
}
