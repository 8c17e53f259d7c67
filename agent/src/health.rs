//! Node health: ask a node's admin endpoint (`ferry.node.v1.NodeService.GetStatus`) and judge
//! the answer into a [`Probe`].
//!
//! A node is ready when it can do its job:
//!
//! - a **broker** once it is registered with the controllers (broker epoch set) and unfenced,
//!   i.e. it caught up with the metadata log and takes client traffic;
//! - a **controller** once its voter knows a quorum leader (itself or another).
//!
//! An answer from another node or cluster (a port taken by a stranger, a stale process) is a
//! failure, not readiness.
//!
//! An answer from the right node also yields its [`NodeDetails`] (broker epoch, fencing, quorum
//! role and leader, the cluster's under-replicated and offline partitions), which the agent
//! forwards to the control plane as they are.

use std::time::Duration;

use ferry_proto::node::v1::node_service_client::NodeServiceClient;
use ferry_proto::node::v1::{GetStatusRequest, NodeStatus};

use crate::assignment::{Assignment, NodeRole};
use crate::supervisor::{NodeDetails, Probe, Replication};

/// Asks `assignment`'s admin endpoint how the node is, within `timeout`: the judgement, and
/// the answer's details when the right node answered.
pub async fn probe(assignment: &Assignment, timeout: Duration) -> (Probe, Option<NodeDetails>) {
    let endpoint = assignment.admin_endpoint();
    let ask = async {
        let mut client = NodeServiceClient::connect(format!("http://{endpoint}"))
            .await
            .map_err(|e| format!("its admin endpoint {endpoint} is unreachable: {e}"))?;
        client
            .get_status(GetStatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|e| format!("its admin endpoint {endpoint} failed: {}", e.message()))
    };
    match tokio::time::timeout(timeout, ask).await {
        Err(_) => (
            Probe::Failed(format!(
                "its admin endpoint {endpoint} did not answer within {timeout:?}"
            )),
            None,
        ),
        Ok(Err(why)) => (Probe::Failed(why), None),
        Ok(Ok(status)) => {
            let probe = judge(assignment, &status);
            let details = (!matches!(probe, Probe::Failed(_))).then(|| details(&status));
            (probe, details)
        }
    }
}

/// The fields of a node's status the agent forwards. Pure.
pub fn details(status: &NodeStatus) -> NodeDetails {
    NodeDetails {
        broker_epoch: status.broker_epoch,
        fenced: status.fenced,
        metadata_offset: status.metadata_offset,
        quorum_role: status.quorum_role.clone(),
        quorum_leader_id: status.quorum_leader_id,
        replication: status.replication.map(|r| Replication {
            partitions: r.partitions,
            under_replicated: r.under_replicated_partitions,
            offline: r.offline_partitions,
        }),
    }
}

/// Judges a node's status against what it should be. Pure.
pub fn judge(assignment: &Assignment, status: &NodeStatus) -> Probe {
    if status.node_id != assignment.node_id || status.cluster_id != assignment.cluster_id {
        return Probe::Failed(format!(
            "its admin endpoint {} answers for node {} of cluster {}",
            assignment.admin_endpoint(),
            status.node_id,
            status.cluster_id
        ));
    }
    match assignment.role {
        NodeRole::Broker if status.broker_epoch < 0 => {
            Probe::NotReady("registering with the controllers".into())
        }
        NodeRole::Broker if status.fenced => Probe::NotReady(format!(
            "registered (broker epoch {}) but fenced, catching up with the metadata log \
             (at offset {})",
            status.broker_epoch, status.metadata_offset
        )),
        NodeRole::Controller if status.quorum_leader_id < 0 => Probe::NotReady(format!(
            "no quorum leader yet ({} in term {})",
            if status.quorum_role.is_empty() {
                "unknown role"
            } else {
                &status.quorum_role
            },
            status.quorum_term
        )),
        _ => Probe::Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::tests::{broker, controller};

    fn status(node_id: i32) -> NodeStatus {
        NodeStatus {
            cluster_id: "cl-1".into(),
            node_id,
            broker_epoch: -1,
            quorum_leader_id: -1,
            quorum_role: "candidate".into(),
            quorum_term: 3,
            ..Default::default()
        }
    }

    #[test]
    fn a_broker_is_ready_once_registered_and_unfenced() {
        let b = broker("cl-1", 101);
        let mut s = status(101);
        assert_eq!(
            judge(&b, &s),
            Probe::NotReady("registering with the controllers".into())
        );
        s.broker_epoch = 12;
        s.fenced = true;
        s.metadata_offset = 40;
        assert!(matches!(judge(&b, &s), Probe::NotReady(m) if m.contains("fenced")));
        s.fenced = false;
        assert_eq!(judge(&b, &s), Probe::Ready);
    }

    #[test]
    fn a_controller_is_ready_once_it_knows_a_leader() {
        let c = controller("cl-1", 2);
        let mut s = status(2);
        assert_eq!(
            judge(&c, &s),
            Probe::NotReady("no quorum leader yet (candidate in term 3)".into())
        );
        s.quorum_leader_id = 1;
        assert_eq!(judge(&c, &s), Probe::Ready);
    }

    #[test]
    fn details_carry_the_brokers_view_of_cluster_replication() {
        let mut s = status(101);
        s.broker_epoch = 7;
        s.quorum_role = String::new();
        assert_eq!(details(&s).replication, None, "no count: unknown, not zero");
        s.replication = Some(ferry_proto::node::v1::ReplicationStatus {
            partitions: 30,
            under_replicated_partitions: 4,
            offline_partitions: 1,
        });
        assert_eq!(
            details(&s),
            NodeDetails {
                broker_epoch: 7,
                fenced: false,
                metadata_offset: 0,
                quorum_role: String::new(),
                quorum_leader_id: -1,
                replication: Some(Replication {
                    partitions: 30,
                    under_replicated: 4,
                    offline: 1,
                }),
            }
        );
    }

    #[test]
    fn an_answer_from_another_node_is_a_failure() {
        let mut s = status(7);
        s.quorum_leader_id = 1;
        assert_eq!(
            judge(&controller("cl-1", 2), &s),
            Probe::Failed(
                "its admin endpoint 127.0.0.1:9002 answers for node 7 of cluster cl-1".into()
            )
        );
    }
}
