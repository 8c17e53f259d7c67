//! SyncGroup (key 14): members collect their assignment; the leader hands it in.
//!
//! Followers' requests are parked until the leader's arrives; the leader's completes the
//! generation, which is written to `__consumer_offsets` before anyone is answered.
//!
//! # Versions
//! v3+ carry `group.instance.id`; v5+ name the protocol type and name, which must match the
//! group's (INCONSISTENT_GROUP_PROTOCOL otherwise).

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_coordinator::GroupCoordinator;
use crate::group::state::Reply;

/// Bound on the wait for the leader's assignment when the group's rebalance timeout is not
/// known to the caller (the state machine answers well before).
const SYNC_WAIT_REBALANCE_MS: i32 = 300_000;

impl GroupCoordinator {
    /// Answers a SyncGroup request.
    pub(super) async fn sync_group(
        &self,
        request: SyncGroupRequest,
        version: i16,
    ) -> SyncGroupResponse {
        let group_id = request.group_id.0.to_string();
        if group_id.is_empty() {
            return sync_error(ResponseError::InvalidGroupId);
        }
        let Some((reply_id, rx)) = self.park() else {
            return sync_error(ResponseError::CoordinatorNotAvailable);
        };
        let member_id = request.member_id.to_string();
        let instance = request.group_instance_id.map(|i| i.to_string());
        let protocol_type = request.protocol_type.map(|p| p.to_string());
        let protocol_name = request.protocol_name.map(|p| p.to_string());
        let assignments: Vec<(String, Bytes)> = request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect();
        let routed = self
            .with_group(&group_id, |coordinator, now| {
                match coordinator.sync(
                    now,
                    &group_id,
                    &member_id,
                    instance.as_deref(),
                    request.generation_id,
                    (protocol_type.as_deref(), protocol_name.as_deref()),
                    assignments,
                    reply_id,
                ) {
                    Ok(output) => (Ok(()), output),
                    Err(code) => (Err(code), Default::default()),
                }
            })
            .await
            .and_then(|r| r);
        if let Err(code) = routed {
            self.unpark(reply_id);
            return sync_error(code);
        }
        match self
            .await_parked(reply_id, rx, SYNC_WAIT_REBALANCE_MS)
            .await
        {
            Some(Reply::Sync(r)) => {
                let (protocol_type, protocol_name) = if version >= 5 {
                    (
                        r.protocol_type.map(StrBytes::from_string),
                        r.protocol_name.map(StrBytes::from_string),
                    )
                } else {
                    (None, None)
                };
                SyncGroupResponse::default()
                    .with_error_code(r.error.map_or(0, |e| e.code()))
                    .with_protocol_type(protocol_type)
                    .with_protocol_name(protocol_name)
                    .with_assignment(r.assignment)
            }
            _ => sync_error(ResponseError::CoordinatorNotAvailable),
        }
    }
}

fn sync_error(code: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code.code())
}
