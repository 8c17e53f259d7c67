//! DescribeCluster (key 60): the cluster id, the brokers clients can reach, and a "controller".
//!
//! The Java AdminClient's `describeCluster` and `kafka-metadata-quorum` use it. Brokers come
//! from the image (only unfenced ones are in it), with the host, port and rack they advertise.
//!
//! ```text
//! controller_id                  a random live broker, as KRaft brokers answer: the real
//!                                controllers are not reachable on client listeners
//! cluster_authorized_operations  -2147483648 unless asked for; when asked, every operation
//!                                Kafka defines on the CLUSTER resource (Ferry has no ACLs yet,
//!                                which is what Kafka answers without an authorizer)
//! endpoint_type (v1)             1 = brokers; 2 = controllers is refused (Kafka answers
//!                                UNSUPPORTED_ENDPOINT_TYPE to brokers asked for controllers)
//! ```

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::{Image, NodeId};

/// Kafka's "authorized operations were not requested" value.
pub(super) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// `endpoint_type` values of DescribeCluster v1.
const ENDPOINT_BROKERS: i8 = 1;

/// The operations Kafka defines on the CLUSTER resource, as an `AclOperation` bit set:
/// CREATE (5), ALTER (7), DESCRIBE (8), CLUSTER_ACTION (9), DESCRIBE_CONFIGS (10),
/// ALTER_CONFIGS (11), IDEMPOTENT_WRITE (12).
pub(super) const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Answers a DescribeCluster request.
pub(super) fn handle(image: &Image, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(image.cluster_id.clone()))
        .with_endpoint_type(request.endpoint_type)
        .with_controller_id(BrokerId(-1))
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "The request was sent to an endpoint of type BROKER, but we wanted an \
                 endpoint of type CONTROLLER",
            )));
    }
    let brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .values()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    let ids: Vec<NodeId> = image.brokers.keys().copied().collect();
    let controller = random_choice(&ids).unwrap_or(-1);
    let operations = if request.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    response
        .with_controller_id(BrokerId(controller))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(operations)
}

/// One of `ids` chosen at random (a v4 UUID is the randomness at hand without a new
/// dependency), or `None` if there is none.
fn random_choice(ids: &[NodeId]) -> Option<NodeId> {
    if ids.is_empty() {
        return None;
    }
    let index = uuid::Uuid::new_v4().as_u128() % ids.len() as u128;
    Some(ids[index as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_random_controller_is_always_one_of_the_brokers() {
        assert_eq!(random_choice(&[]), None);
        let ids = [3, 5, 9];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let id = random_choice(&ids).unwrap();
            assert!(ids.contains(&id));
            seen.insert(id);
        }
        // 200 draws of 3 leave one out with probability ~3 * (2/3)^200: never in practice.
        assert_eq!(seen.len(), 3);
    }
}
