//! The agent's client of the control plane's `AgentService`, on the members' peer listeners
//! over mutual TLS with the host certificate ([`crate::enroll`]), with a timeout on each call.
//! The control plane's certificate must carry [`ferry_identity::CONTROL_PLANE_SERVER_NAME`] and
//! chain to the CA kept at enrollment.
//!
//! # Failover
//!
//! A replicated control plane has several members, each with its own peer listener, and every
//! member serves `AgentService` (a follower forwards writes to the leader). The client knows
//! them all (enrollment tells every member's address, or `--control-plane-peer` lists them) and
//! talks to one at a time, the *current* member:
//!
//! ```text
//! call ──► current member ── answers (even with an error) ──► done; it stays current
//!               │ unreachable: UNAVAILABLE, a timeout, a broken connection
//!               ▼
//!          next member, in list order, wrapping around ── answers ──► done; it becomes current
//!               │ every member unreachable
//!               ▼
//!          the call fails with UNAVAILABLE naming each member's failure; the agent's sync
//!          loop backs off and calls again, starting from the same current member
//! ```
//!
//! Each member is tried at most once per call, so a call takes at most one timeout per member.
//! The client stays with a member that answers; it does not go back to the first one when that
//! one returns. A member that answers with an error (NOT_FOUND, INVALID_ARGUMENT, ...) is not
//! failed over from: its answer is the control plane's.
//!
//! Each member's channel connects lazily and reconnects by itself, so a member that goes away
//! and comes back (a restart) needs nothing here.

use std::future::Future;
use std::time::Duration;

use ferry_identity::{CONTROL_PLANE_SERVER_NAME, TlsMaterial};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::agent_service_client::AgentServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::assignment::{Assignment, Assignments};
use crate::error::{Error, Result};
use crate::supervisor::{NodeReport, NodeState};

/// Whether a call's failure means the member could not be reached (so another member may
/// answer): it is down, restarting, cut off or too slow, or it has no store leader to forward
/// to. Also used by enrollment, on the public port.
pub fn is_unreachable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
    )
}

/// What the agent tells the control plane about its host when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The host's id.
    pub host_id: String,
    /// Its zone.
    pub zone: String,
    /// The address its nodes listen on.
    pub address: String,
    /// The lowest port nodes may use.
    pub ports_lo: u16,
    /// The highest port nodes may use (inclusive).
    pub ports_hi: u16,
    /// Most nodes at once.
    pub max_nodes: u32,
    /// Storage offered to node data, in bytes.
    pub storage_bytes: u64,
}

/// The control plane's members and which one the agent talks to: the failover described in
/// the module docs, over any client type `C` (a tonic client here, a fake in tests).
#[derive(Debug, Clone)]
struct Members<C> {
    /// Each member's peer address (for messages) and its client, in the order given.
    members: Vec<(String, C)>,
    /// The index of the member calls go to first.
    current: usize,
}

impl<C: Clone> Members<C> {
    /// Members in this order, the first one current. At least one.
    fn new(members: Vec<(String, C)>) -> Members<C> {
        assert!(
            !members.is_empty(),
            "a control plane has at least one member"
        );
        Members {
            members,
            current: 0,
        }
    }

    /// The current member's address.
    fn current(&self) -> &str {
        &self.members[self.current].0
    }

    /// Makes `call` on the current member, then on each next one while they are unreachable
    /// ([`is_unreachable`]). The member that answers becomes current.
    async fn call<T, F, Fut>(&mut self, mut call: F) -> std::result::Result<T, Status>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        let mut failures = Vec::new();
        for attempt in 0..self.members.len() {
            let index = (self.current + attempt) % self.members.len();
            let (address, client) = &self.members[index];
            match call(client.clone()).await {
                Err(status) if is_unreachable(status.code()) => {
                    tracing::debug!(
                        member = address,
                        code = ?status.code(),
                        "control-plane member unreachable: {}",
                        status.message()
                    );
                    failures.push(format!("{address}: {}", status.message()));
                }
                answer => {
                    if index != self.current {
                        tracing::info!(
                            from = self.current(),
                            to = address,
                            "failed over to another control-plane member"
                        );
                        self.current = index;
                    }
                    return answer;
                }
            }
        }
        Err(Status::unavailable(format!(
            "no control-plane member answered ({})",
            failures.join("; ")
        )))
    }
}

/// A client of `AgentService`, failing over between the control plane's members.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// Every member's lazily connected client.
    members: Members<AgentServiceClient<Channel>>,
}

impl ControlPlane {
    /// A client of the control plane whose members' peer listeners are at `peer_addresses`
    /// (`host:port` each; calls go to the first until it is unreachable), presenting the host
    /// certificate in `material`; each call to a member gives up after `timeout`. Connects on
    /// first use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for no address, a bad address or unusable TLS material.
    pub fn new(
        peer_addresses: &[String],
        material: &TlsMaterial,
        timeout: Duration,
    ) -> Result<ControlPlane> {
        if peer_addresses.is_empty() {
            return Err(Error::InvalidInput(
                "no control plane peer address to call".into(),
            ));
        }
        let tls = ferry_identity::client_tls_config(material, CONTROL_PLANE_SERVER_NAME);
        let mut members = Vec::with_capacity(peer_addresses.len());
        for peer_address in peer_addresses {
            let endpoint = Endpoint::from_shared(format!("https://{peer_address}"))
                .map_err(|e| {
                    Error::InvalidInput(format!("control plane peer address {peer_address:?}: {e}"))
                })?
                .tls_config(tls.clone())
                .map_err(|e| Error::InvalidInput(format!("TLS for the control plane: {e}")))?
                .connect_timeout(timeout)
                .timeout(timeout);
            let client = AgentServiceClient::new(endpoint.connect_lazy());
            members.push((peer_address.clone(), client));
        }
        Ok(ControlPlane {
            members: Members::new(members),
        })
    }

    /// The peer address of the member calls go to first.
    pub fn current_member(&self) -> &str {
        self.members.current()
    }

    /// A certificate for the node `cluster_id`/`node_id` (assigned to this host) over the
    /// key the CSR was made with: the certificate and CA (PEM), and when it expires (ms since
    /// the Unix epoch).
    pub async fn node_certificate(
        &mut self,
        cluster_id: &str,
        node_id: i32,
        csr_pem: String,
    ) -> std::result::Result<pb::IssueNodeCertificateResponse, Status> {
        let message = pb::IssueNodeCertificateRequest {
            cluster_id: cluster_id.to_string(),
            node_id,
            csr_pem,
        };
        self.members
            .call(|mut client| {
                let request = Request::new(message.clone());
                async move { client.issue_node_certificate(request).await }
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Registers (or re-registers) the host.
    pub async fn register(&mut self, r: &Registration) -> std::result::Result<(), Status> {
        let message = pb::RegisterHostRequest {
            host_id: r.host_id.clone(),
            zone: r.zone.clone(),
            address: r.address.clone(),
            ports: Some(pb::PortRange {
                lo: u32::from(r.ports_lo),
                hi: u32::from(r.ports_hi),
            }),
            capacity: Some(pb::HostCapacity {
                max_nodes: r.max_nodes,
                storage_bytes: r.storage_bytes,
            }),
        };
        self.members
            .call(|mut client| {
                let request = Request::new(message.clone());
                async move { client.register_host(request).await }
            })
            .await?;
        Ok(())
    }

    /// The host's assignments if their generation is not `known`; `None` if unchanged.
    ///
    /// An assignment the agent cannot use is an INVALID_ARGUMENT status naming it (the whole
    /// list is refused: running half of it could be worse than running the old one).
    pub async fn assignments(
        &mut self,
        host_id: &str,
        known: u64,
    ) -> std::result::Result<Option<Assignments>, Status> {
        let message = pb::GetAssignmentsRequest {
            host_id: host_id.to_string(),
            known_generation: known,
        };
        let response = self
            .members
            .call(|mut client| {
                let request = Request::new(message.clone());
                async move { client.get_assignments(request).await }
            })
            .await?
            .into_inner();
        if !response.changed {
            return Ok(None);
        }
        let mut nodes = response
            .assignments
            .into_iter()
            .map(Assignment::from_proto)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|why| Status::invalid_argument(format!("unusable assignment: {why}")))?;
        nodes.sort_by_key(Assignment::key);
        Ok(Some(Assignments {
            generation: response.generation,
            nodes,
        }))
    }

    /// Reports how the nodes are (the agent's heartbeat); returns the host's current
    /// assignment generation.
    pub async fn report(
        &mut self,
        host_id: &str,
        applied_generation: u64,
        nodes: &[NodeReport],
    ) -> std::result::Result<u64, Status> {
        let message = pb::ReportStatusRequest {
            host_id: host_id.to_string(),
            applied_generation,
            nodes: nodes.iter().map(report_to_proto).collect(),
        };
        Ok(self
            .members
            .call(|mut client| {
                let request = Request::new(message.clone());
                async move { client.report_status(request).await }
            })
            .await?
            .into_inner()
            .generation)
    }
}

/// The wire report of one node.
fn report_to_proto(report: &NodeReport) -> pb::NodeReport {
    let state = match report.state {
        NodeState::Pending => pb::NodeState::Pending,
        NodeState::Starting => pb::NodeState::Starting,
        NodeState::Running => pb::NodeState::Running,
        NodeState::Unhealthy => pb::NodeState::Unhealthy,
        NodeState::Stopped => pb::NodeState::Stopped,
    };
    pb::NodeReport {
        cluster_id: report.key.cluster_id.clone(),
        node_id: report.key.node_id,
        state: state as i32,
        message: report.message.clone(),
        config_fingerprint: report.config_fingerprint.clone(),
        probe: report.details.as_ref().map(|d| pb::NodeProbe {
            broker_epoch: d.broker_epoch,
            fenced: d.fenced,
            metadata_offset: d.metadata_offset,
            quorum_role: d.quorum_role.clone(),
            quorum_leader_id: d.quorum_leader_id,
            replication: d.replication.map(|r| pb::ReplicationHealth {
                partitions: r.partitions,
                under_replicated_partitions: r.under_replicated,
                offline_partitions: r.offline,
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A fake member: answers every call with `Ok(name)` or with a status of `Err(code)`, and
    /// records its name in `calls`.
    #[derive(Clone)]
    struct Fake {
        name: &'static str,
        answer: std::result::Result<(), Code>,
        calls: Arc<Mutex<Vec<&'static str>>>,
    }

    fn members(
        answers: &[std::result::Result<(), Code>],
    ) -> (Members<Fake>, Arc<Mutex<Vec<&'static str>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let names = ["cp-1:7071", "cp-2:7071", "cp-3:7071"];
        let members = answers
            .iter()
            .zip(names)
            .map(|(answer, name)| {
                let fake = Fake {
                    name,
                    answer: *answer,
                    calls: Arc::clone(&calls),
                };
                (name.to_string(), fake)
            })
            .collect();
        (Members::new(members), calls)
    }

    async fn call(members: &mut Members<Fake>) -> std::result::Result<&'static str, Status> {
        members
            .call(|fake: Fake| async move {
                fake.calls.lock().unwrap().push(fake.name);
                match fake.answer {
                    Ok(()) => Ok(fake.name),
                    Err(code) => Err(Status::new(code, format!("{} says no", fake.name))),
                }
            })
            .await
    }

    fn set(members: &mut Members<Fake>, index: usize, answer: std::result::Result<(), Code>) {
        members.members[index].1.answer = answer;
    }

    #[tokio::test]
    async fn calls_stay_with_a_member_that_answers() {
        let (mut members, calls) = members(&[Ok(()), Ok(()), Ok(())]);
        assert_eq!(call(&mut members).await.unwrap(), "cp-1:7071");
        assert_eq!(call(&mut members).await.unwrap(), "cp-1:7071");
        assert_eq!(*calls.lock().unwrap(), ["cp-1:7071", "cp-1:7071"]);
    }

    #[tokio::test]
    async fn an_unreachable_member_is_failed_over_from_and_the_next_one_kept() {
        let (mut members, calls) = members(&[Err(Code::Unavailable), Ok(()), Ok(())]);
        assert_eq!(call(&mut members).await.unwrap(), "cp-2:7071");
        assert_eq!(members.current(), "cp-2:7071");
        // The first member is back: calls stay with the second.
        set(&mut members, 0, Ok(()));
        assert_eq!(call(&mut members).await.unwrap(), "cp-2:7071");
        // The second dies too (a timeout): the third answers.
        set(&mut members, 1, Err(Code::DeadlineExceeded));
        assert_eq!(call(&mut members).await.unwrap(), "cp-3:7071");
        // The third dies: the list wraps around to the first.
        set(&mut members, 2, Err(Code::Unavailable));
        assert_eq!(call(&mut members).await.unwrap(), "cp-1:7071");
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "cp-1:7071",
                "cp-2:7071",
                "cp-2:7071",
                "cp-2:7071",
                "cp-3:7071",
                "cp-3:7071",
                "cp-1:7071"
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_that_is_an_error_is_the_control_planes_answer() {
        let (mut members, calls) = members(&[Err(Code::NotFound), Ok(()), Ok(())]);
        let status = call(&mut members).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(members.current(), "cp-1:7071");
        assert_eq!(*calls.lock().unwrap(), ["cp-1:7071"]);
    }

    #[tokio::test]
    async fn with_every_member_unreachable_each_is_tried_once_and_named() {
        let (mut members, calls) = members(&[
            Err(Code::Unavailable),
            Err(Code::DeadlineExceeded),
            Err(Code::Unknown),
        ]);
        let status = call(&mut members).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        for name in [
            "cp-1:7071 says no",
            "cp-2:7071 says no",
            "cp-3:7071 says no",
        ] {
            assert!(status.message().contains(name), "{name} in {status:?}");
        }
        assert_eq!(
            *calls.lock().unwrap(),
            ["cp-1:7071", "cp-2:7071", "cp-3:7071"]
        );
        assert_eq!(
            members.current(),
            "cp-1:7071",
            "no member answered: none is preferred"
        );
    }
}
