//! JoinGroup (key 11): a member joins a group and waits for the rebalance to complete.
//!
//! The request is parked in the group's state machine ([`crate::group::state`]) until every
//! member has joined (or the rebalance timeout passes); the leader's answer lists the members
//! with their subscriptions so it can compute the assignment client-side.
//!
//! # Versions
//! - v0 has no rebalance timeout: the session timeout is used, as Kafka does.
//! - v4+: a first join without a member id is answered MEMBER_ID_REQUIRED with the id to use.
//! - v5+: `group.instance.id` (static membership).
//! - v7+: the response names the protocol type.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_coordinator::GroupCoordinator;
use crate::group::state::{JoinRequest, JoinResponse, Reply};

impl GroupCoordinator {
    /// Answers a JoinGroup request.
    pub(super) async fn join_group(
        &self,
        request: JoinGroupRequest,
        version: i16,
        client_id: &str,
    ) -> JoinGroupResponse {
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        if group_id.is_empty() {
            return join_error(ResponseError::InvalidGroupId, &member_id);
        }
        let rebalance_timeout_ms = if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        };
        let join = JoinRequest {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id.map(|i| i.to_string()),
            client_id: client_id.to_string(),
            client_host: "/unknown".to_string(),
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms,
            require_known_member_id: version >= 4,
        };
        let Some((reply_id, rx)) = self.park() else {
            return join_error(ResponseError::CoordinatorNotAvailable, &member_id);
        };
        let prefix = if client_id.is_empty() {
            "member"
        } else {
            client_id
        }
        .to_string();
        let routed = self
            .with_group(&group_id, |coordinator, now| {
                let output = coordinator.join(now, &group_id, join, reply_id, || {
                    format!("{prefix}-{}", uuid::Uuid::new_v4())
                });
                ((), output)
            })
            .await;
        if let Err(code) = routed {
            self.unpark(reply_id);
            return join_error(code, &member_id);
        }
        match self.await_parked(reply_id, rx, rebalance_timeout_ms).await {
            Some(Reply::Join(response)) => join_response(response, version),
            _ => join_error(ResponseError::CoordinatorNotAvailable, &member_id),
        }
    }
}

fn join_response(r: JoinResponse, version: i16) -> JoinGroupResponse {
    let protocol_type = if version >= 7 {
        r.protocol_type.map(StrBytes::from_string)
    } else {
        None
    };
    let members = r
        .members
        .into_iter()
        .map(|(member_id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member_id))
                .with_group_instance_id(instance.map(StrBytes::from_string))
                .with_metadata(metadata)
        })
        .collect();
    // Before v7 the protocol name is not nullable.
    let protocol_name = match r.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(r.error.map_or(0, |e| e.code()))
        .with_generation_id(r.generation)
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(r.leader))
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(members)
}

fn join_error(code: ResponseError, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_protocol_name(Some(StrBytes::default()))
        .with_member_id(StrBytes::from_string(member_id.to_string()))
}
