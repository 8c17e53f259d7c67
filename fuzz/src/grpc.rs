//! Every protobuf message a Ferry gRPC server decodes from a peer or client (and the metadata
//! deltas a broker decodes from its controller), through prost, plus the JSON they carry where
//! the receiver decodes it right away.

use ferry_data_plane::controller::records::decode_batch;
use ferry_data_plane::controller::{Command, Limits, MetadataImage, precheck};
use ferry_proto::controller::v1 as controller;
use ferry_proto::controlplane::v1 as controlplane;
use ferry_proto::node::v1 as node;
use ferry_proto::quorum::v1 as quorum;
use prost::Message;

/// Decodes `bytes` as `M`, discarding the result.
fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

/// The messages, in selector order: `data[0] % MESSAGES` picks one.
pub const MESSAGES: u8 = 33;

/// `data[0]` selects the message type (see the match below: requests of `ferry.quorum.v1`,
/// `ferry.controller.v1`, `ferry.controlplane.v1`, `ferry.node.v1`, and the controller's
/// `MetadataDelta`); the rest is the message. Decode errors are refusals; a panic or an
/// allocation beyond the input's size is a finding.
pub fn grpc_message(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % MESSAGES {
        0 => _ = decode::<quorum::SendRequest>(bytes),
        1 => _ = decode::<quorum::ProposeRequest>(bytes),
        2 => _ = decode::<controller::RegisterBrokerRequest>(bytes),
        3 => _ = decode::<controller::BrokerHeartbeatRequest>(bytes),
        4 => _ = decode::<controller::FollowMetadataRequest>(bytes),
        5 => {
            // The controller decodes the command and prechecks it before proposing.
            if let Some(request) = decode::<controller::ExecuteRequest>(bytes)
                && let Ok(command) = Command::decode(&request.command)
            {
                let _ = precheck(&command, &Limits::default());
            }
        }
        6 => _ = decode::<controller::DescribeQuorumRequest>(bytes),
        7 => {
            // A broker following the metadata log decodes each delta's JSON.
            if let Some(delta) = decode::<controller::MetadataDelta>(bytes) {
                match delta.delta {
                    Some(controller::metadata_delta::Delta::Snapshot(json)) => {
                        let _ = MetadataImage::decode(&json);
                    }
                    Some(controller::metadata_delta::Delta::Batch(batch)) => {
                        let _ = decode_batch(&batch.records);
                    }
                    None => {}
                }
            }
        }
        8 => _ = decode::<controlplane::CreateClusterRequest>(bytes),
        9 => _ = decode::<controlplane::GetClusterRequest>(bytes),
        10 => _ = decode::<controlplane::ListClustersRequest>(bytes),
        11 => _ = decode::<controlplane::DeleteClusterRequest>(bytes),
        12 => _ = decode::<controlplane::GetBootstrapBrokersRequest>(bytes),
        13 => _ = decode::<controlplane::ListNodesRequest>(bytes),
        14 => _ = decode::<controlplane::UpdateBrokerCountRequest>(bytes),
        15 => _ = decode::<controlplane::UpdateTagsRequest>(bytes),
        16 => _ = decode::<controlplane::UpdateClusterConfigurationRequest>(bytes),
        17 => _ = decode::<controlplane::CreateConfigurationRequest>(bytes),
        18 => _ = decode::<controlplane::GetConfigurationRequest>(bytes),
        19 => _ = decode::<controlplane::ListConfigurationsRequest>(bytes),
        20 => _ = decode::<controlplane::UpdateConfigurationRequest>(bytes),
        21 => _ = decode::<controlplane::ListConfigurationRevisionsRequest>(bytes),
        22 => _ = decode::<controlplane::GetConfigurationRevisionRequest>(bytes),
        23 => _ = decode::<controlplane::DeleteConfigurationRequest>(bytes),
        24 => _ = decode::<controlplane::GetOperationRequest>(bytes),
        25 => _ = decode::<controlplane::ListOperationsRequest>(bytes),
        26 => _ = decode::<controlplane::ListHostsRequest>(bytes),
        27 => _ = decode::<controlplane::RegisterHostRequest>(bytes),
        28 => _ = decode::<controlplane::GetAssignmentsRequest>(bytes),
        29 => _ = decode::<controlplane::ReportStatusRequest>(bytes),
        30 => _ = decode::<node::GetStatusRequest>(bytes),
        31 => _ = decode::<controlplane::GetAssignmentsResponse>(bytes),
        _ => _ = decode::<controller::RegisterBrokerResponse>(bytes),
    }
}
