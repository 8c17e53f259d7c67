//! DescribeQuorum (key 55): the state of the metadata quorum, for `kafka-metadata-quorum` and
//! `ferry quorum describe`.
//!
//! A broker forwards the question to the controllers (as Kafka forwards it to the active
//! controller) and reports the single partition of `__cluster_metadata`: leader, leader epoch
//! (the raft term), high watermark (the commit index), voters and observers (brokers) with
//! their log end offsets and last fetch times.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::authority::Authority;

/// The name Kafka gives the metadata log's topic.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Answers a DescribeQuorum request.
pub(super) async fn handle(
    authority: &dyn Authority,
    _request: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let state = match authority.describe_quorum().await {
        Ok(state) => state,
        Err(e) => {
            return DescribeQuorumResponse::default()
                .with_error_code(e.code.code())
                .with_error_message((version >= 2).then(|| StrBytes::from_string(e.message)));
        }
    };
    let replica = |r: &ferry_proto::controller::v1::ReplicaState| {
        ReplicaState::default()
            .with_replica_id(BrokerId(r.replica_id))
            .with_log_end_offset(r.log_end_offset)
            .with_last_fetch_timestamp(r.last_fetch_timestamp)
            .with_last_caught_up_timestamp(r.last_caught_up_timestamp)
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(if state.leader_id < 0 {
            ResponseError::NotLeaderOrFollower.code()
        } else {
            0
        })
        .with_leader_id(BrokerId(state.leader_id))
        .with_leader_epoch(i32::try_from(state.leader_epoch).unwrap_or(i32::MAX))
        .with_high_watermark(state.high_watermark as i64)
        .with_current_voters(state.voters.iter().map(replica).collect())
        .with_observers(state.observers.iter().map(replica).collect());
    let nodes = if version >= 2 {
        state
            .endpoints
            .iter()
            .map(|e| {
                Node::default()
                    .with_node_id(BrokerId(e.node_id))
                    .with_listeners(vec![
                        Listener::default()
                            .with_name(StrBytes::from_static_str("CONTROLLER"))
                            .with_host(StrBytes::from_string(e.host.clone()))
                            .with_port(u16::try_from(e.port).unwrap_or(0)),
                    ])
            })
            .collect()
    } else {
        vec![]
    };
    DescribeQuorumResponse::default()
        .with_topics(vec![
            TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![partition]),
        ])
        .with_nodes(nodes)
}
