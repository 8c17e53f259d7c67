//! The control plane's two ports, attacked as someone on the network would: raft on the
//! public API port, the peer port without (or with the wrong) certificate, one host's
//! certificate acting for another host, join tokens replayed or expired. Every refusal is
//! checked together with the store: nothing was written.
//!
//! And the path that works: a host enrolls with a join token, then registers, pulls its
//! assignments, reports and gets its nodes' certificates, over mutual TLS on the peer port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferry_control_plane::enroll::JoinTokens;
use ferry_control_plane::model::{HostAssignment, PageRequest};
use ferry_control_plane::placement::Role as NodeRole;
use ferry_control_plane::server::{ISSUER, Server, ServerOptions};
use ferry_control_plane::store::command::RegisterHost;
use ferry_control_plane::store::{Command, QuorumStore, Store};
use ferry_identity::{
    CONTROL_PLANE_SERVER_NAME, CertificateAuthority, Identity, NodeRoles, TlsMaterial,
};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::agent_service_client::AgentServiceClient;
use ferry_proto::controlplane::v1::enrollment_service_client::EnrollmentServiceClient;
use ferry_proto::quorum::v1 as raft_pb;
use ferry_proto::quorum::v1::raft_client::RaftClient;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-peer-tests";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A control plane served by this process.
struct ControlPlane {
    _dir: tempfile::TempDir,
    public: SocketAddr,
    peer: SocketAddr,
    store: QuorumStore,
    /// Its CA, read from its data dir (to mint certificates an attacker could not).
    ca: CertificateAuthority,
    join: JoinTokens,
    stop: CancellationToken,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ControlPlane {
    async fn start() -> ControlPlane {
        let dir = tempfile::tempdir().unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(ServerOptions::new(dir.path(), any, SECRET.to_vec()))
            .await
            .unwrap();
        let (public, peer, store) = (server.local_addr(), server.peer_addr(), server.store());
        assert_ne!(public, peer);
        let stop = CancellationToken::new();
        tokio::spawn(server.run(stop.clone().cancelled_owned()));
        let ca = read_ca(&dir.path().join("ca"));
        ControlPlane {
            _dir: dir,
            public,
            peer,
            store,
            ca,
            join: JoinTokens::new(SECRET, ISSUER).unwrap(),
            stop,
        }
    }

    /// A certificate of this CA for `identity`.
    fn issue(&self, identity: Identity) -> TlsMaterial {
        self.ca.issue(&identity, &[], DAY).unwrap()
    }

    /// A join token for `host_id` for this CA.
    fn join_token(&self, host_id: &str) -> String {
        self.join
            .mint(host_id, self.ca.fingerprint(), Duration::from_secs(600))
    }

    /// The agents' service on the peer port, presenting `material`.
    async fn agents(&self, material: &TlsMaterial) -> AgentServiceClient<Channel> {
        AgentServiceClient::new(peer_channel(self.peer, Some(material)).await.unwrap())
    }

    /// The store shows no cluster and no host: nothing an attack sent was written.
    async fn assert_untouched(&self) {
        let clusters = self
            .store
            .list_clusters("acme", "", PageRequest::first(10))
            .await
            .unwrap();
        assert!(clusters.items.is_empty(), "{:?}", clusters.items);
        for host in ["evil", "host-a", "host-b"] {
            assert!(
                self.store.get_host(host).await.is_err(),
                "{host} was written"
            );
        }
    }
}

fn read_ca(dir: &Path) -> CertificateAuthority {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    CertificateAuthority::from_pem(&read("ca.pem"), &read("ca-key.pem")).unwrap()
}

/// A channel to the peer port: TLS trusting the control plane's CA in `material` (or none),
/// presenting `material`'s certificate when given.
async fn peer_channel(
    peer: SocketAddr,
    material: Option<&TlsMaterial>,
) -> Result<Channel, tonic::transport::Error> {
    let tls = match material {
        Some(material) => ferry_identity::client_tls_config(material, CONTROL_PLANE_SERVER_NAME),
        None => ClientTlsConfig::new().domain_name(CONTROL_PLANE_SERVER_NAME),
    };
    Endpoint::from_shared(format!("https://{peer}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// A store command an attacker would propose: a cluster in someone's tenant.
fn evil_command() -> Vec<u8> {
    let command = Command::RegisterHost(RegisterHost {
        registration: ferry_control_plane::model::HostRegistration {
            id: "evil".into(),
            zone: "a".into(),
            address: "10.6.6.6".into(),
            ports: ferry_control_plane::placement::PortRange { lo: 1, hi: 2 },
            capacity: ferry_control_plane::model::HostCapacity {
                max_nodes: 1,
                storage_bytes: 1,
            },
        },
        now_ms: 1,
    });
    serde_json::to_vec(&command).unwrap()
}

fn propose() -> raft_pb::ProposeRequest {
    raft_pb::ProposeRequest {
        command: evil_command(),
        timeout_ms: 1000,
    }
}

/// A raft heartbeat from a voter with a huge term, protobuf-encoded as raft-rs sends it.
fn forged_send() -> raft_pb::SendRequest {
    let mut msg = ferry_quorum::Message::default();
    msg.set_msg_type(raft::prelude::MessageType::MsgHeartbeat);
    msg.from = 2;
    msg.to = 1;
    msg.term = u64::MAX / 2;
    msg.commit = 1 << 40;
    raft_pb::SendRequest {
        messages: vec![ferry_quorum::transport::encode_message(&msg)],
    }
}

fn registration(host_id: &str) -> pb::RegisterHostRequest {
    pb::RegisterHostRequest {
        host_id: host_id.into(),
        zone: "a".into(),
        address: "10.0.0.1".into(),
        ports: Some(pb::PortRange { lo: 9000, hi: 9099 }),
        capacity: Some(pb::HostCapacity {
            max_nodes: 4,
            storage_bytes: 1 << 40,
        }),
    }
}

fn broker(cluster_id: &str, node_id: i32) -> HostAssignment {
    HostAssignment {
        cluster_id: cluster_id.into(),
        node_id,
        role: NodeRole::Broker,
        address: "10.0.0.1".into(),
        kafka_port: Some(9000),
        controller_port: None,
        admin_port: 9001,
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        controller_quorum_voters: vec!["1@10.0.0.1:9002".into()],
        config_fingerprint: String::new(),
    }
}

/// A new key and a CSR over it, as an agent makes them.
fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(vec!["admin.example".into()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    (key.serialize_pem(), csr)
}

/// Enrolls `token` over the public port; the host's material on success.
async fn enroll(cp: &ControlPlane, token: &str) -> Result<TlsMaterial, tonic::Status> {
    let mut client = EnrollmentServiceClient::new(
        Endpoint::from_shared(format!("http://{}", cp.public))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let (key, csr) = key_and_csr();
    let answer = client
        .enroll(pb::EnrollRequest {
            join_token: token.into(),
            csr_pem: csr,
        })
        .await?
        .into_inner();
    assert_eq!(answer.peer_address, cp.peer.to_string());
    // Alone, the control plane is its only member.
    assert_eq!(answer.member_peer_addresses, [cp.peer.to_string()]);
    Ok(TlsMaterial::new(answer.ca_pem, answer.cert_pem, key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_is_not_served_on_the_public_port_over_h2c() {
    let cp = ControlPlane::start().await;
    let channel = Endpoint::from_shared(format!("http://{}", cp.public))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raft = RaftClient::new(channel);
    let status = raft.propose(propose()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = raft.send(forged_send()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    cp.assert_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_is_not_served_on_the_public_port_over_http1() {
    let cp = ControlPlane::start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // A gRPC frame (uncompressed, 4-byte length) around the proposal, and the bare JSON too.
    let body = prost::Message::encode_to_vec(&propose());
    let mut framed = vec![0u8];
    framed.extend((body.len() as u32).to_be_bytes());
    framed.extend(&body);
    for path in ["Propose", "Send"] {
        for (content_type, bytes) in [
            ("application/grpc", framed.clone()),
            ("application/json", evil_command()),
            ("text/plain", evil_command()),
        ] {
            let request = http::Request::builder()
                .method("POST")
                .uri(format!("http://{}/ferry.quorum.v1.Raft/{path}", cp.public))
                .header("content-type", content_type)
                .body(Full::new(Bytes::from(bytes)))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let grpc_status = response
                .headers()
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_string());
            let _ = response.into_body().collect().await;
            // 404, or (for a gRPC content type) gRPC's own "no such method": UNIMPLEMENTED.
            assert!(
                status == 404 || grpc_status.as_deref() == Some("12"),
                "{path} with {content_type}: {status} {grpc_status:?}"
            );
        }
    }
    cp.assert_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_port_refuses_clients_without_a_certificate_of_its_ca() {
    let cp = ControlPlane::start().await;
    // Plaintext h2c.
    let plain = Endpoint::from_shared(format!("http://{}", cp.peer))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    assert!(RaftClient::new(plain).propose(propose()).await.is_err());

    // TLS trusting the right CA, but no client certificate: the handshake is refused.
    let no_cert = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cp.ca.cert_pem()))
        .domain_name(CONTROL_PLANE_SERVER_NAME);
    let result = Endpoint::from_shared(format!("https://{}", cp.peer))
        .unwrap()
        .tls_config(no_cert)
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(channel) = result {
        // TLS 1.3 reports the refused certificate after the client's handshake is done: the
        // first call fails instead.
        let status = RaftClient::new(channel)
            .propose(propose())
            .await
            .unwrap_err();
        assert_ne!(status.code(), Code::Ok);
    }

    // A certificate of another CA, even one claiming to be a member.
    let other = CertificateAuthority::generate("someone else").unwrap();
    let forged = other
        .issue(&Identity::ControlPlane { member: 1 }, &[], DAY)
        .unwrap();
    let forged = TlsMaterial::new(cp.ca.cert_pem().into(), forged.cert_pem, forged.key_pem);
    if let Ok(channel) = peer_channel(cp.peer, Some(&forged)).await {
        let status = RaftClient::new(channel)
            .send(forged_send())
            .await
            .unwrap_err();
        assert_ne!(status.code(), Code::Ok);
        let status = AgentServiceClient::new(peer_channel(cp.peer, Some(&forged)).await.unwrap())
            .register_host(registration("evil"))
            .await
            .unwrap_err();
        assert_ne!(status.code(), Code::Ok);
    }
    cp.assert_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_speak_raft_and_only_hosts_call_the_agent_service() {
    let cp = ControlPlane::start().await;
    // A host's certificate on raft, a member that is not in this store, a node.
    for identity in [
        Identity::Host {
            host_id: "evil".into(),
        },
        Identity::ControlPlane { member: 7 },
        Identity::Node {
            cluster_id: "cl-1".into(),
            node_id: 1,
            roles: NodeRoles::CONTROLLER,
        },
    ] {
        let channel = peer_channel(cp.peer, Some(&cp.issue(identity.clone())))
            .await
            .unwrap();
        let mut raft = RaftClient::new(channel);
        let status = raft.propose(propose()).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{identity:?}");
        let status = raft.send(forged_send()).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{identity:?}");
    }
    // A node's or a member's certificate on the agents' service.
    for identity in [
        Identity::Node {
            cluster_id: "cl-1".into(),
            node_id: 1,
            roles: NodeRoles::BROKER,
        },
        Identity::ControlPlane { member: 1 },
    ] {
        let status = cp
            .agents(&cp.issue(identity.clone()))
            .await
            .register_host(registration("evil"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{identity:?}");
    }
    cp.assert_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_certificate_acts_for_its_own_host_only() {
    let cp = ControlPlane::start().await;
    let a = enroll(&cp, &cp.join_token("host-a")).await.unwrap();
    let b = enroll(&cp, &cp.join_token("host-b")).await.unwrap();
    let (mut as_a, mut as_b) = (cp.agents(&a).await, cp.agents(&b).await);
    as_a.register_host(registration("host-a")).await.unwrap();
    as_b.register_host(registration("host-b")).await.unwrap();
    cp.store
        .set_assignments("host-b", vec![broker("cl-1", 101)], None)
        .await
        .unwrap();
    let before = cp.store.get_host("host-b").await.unwrap();

    // Re-registering another host (its address, zone, capacity).
    let mut hijack = registration("host-b");
    hijack.address = "10.6.6.6".into();
    let status = as_a.register_host(hijack).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Reading another host's assignments.
    let status = as_a
        .get_assignments(pb::GetAssignmentsRequest {
            host_id: "host-b".into(),
            known_generation: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Reporting another host's node RUNNING, as another host or as itself.
    let running = pb::NodeReport {
        cluster_id: "cl-1".into(),
        node_id: 101,
        state: pb::NodeState::Running as i32,
        ..Default::default()
    };
    for host_id in ["host-b", "host-a"] {
        let status = as_a
            .report_status(pb::ReportStatusRequest {
                host_id: host_id.into(),
                applied_generation: 1,
                nodes: vec![running.clone()],
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "as {host_id}: {status:?}"
        );
    }
    // A certificate for another host's node.
    let (_, csr) = key_and_csr();
    let status = as_a
        .issue_node_certificate(pb::IssueNodeCertificateRequest {
            cluster_id: "cl-1".into(),
            node_id: 101,
            csr_pem: csr,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let after = cp.store.get_host("host-b").await.unwrap();
    assert_eq!(after.address, before.address);
    assert_eq!(after.nodes, before.nodes);
    assert_eq!(after.last_seen_at_ms, before.last_seen_at_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_host_runs_its_own_nodes_with_their_certificates() {
    let cp = ControlPlane::start().await;
    let material = enroll(&cp, &cp.join_token("host-a")).await.unwrap();
    assert_eq!(
        material.identity().unwrap(),
        Identity::Host {
            host_id: "host-a".into()
        }
    );
    let mut agent = cp.agents(&material).await;
    agent.register_host(registration("host-a")).await.unwrap();
    cp.store
        .set_assignments("host-a", vec![broker("cl-1", 101)], None)
        .await
        .unwrap();
    let got = agent
        .get_assignments(pb::GetAssignmentsRequest {
            host_id: "host-a".into(),
            known_generation: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.assignments.len(), 1);
    let (key, csr) = key_and_csr();
    let issued = agent
        .issue_node_certificate(pb::IssueNodeCertificateRequest {
            cluster_id: "cl-1".into(),
            node_id: 101,
            csr_pem: csr,
        })
        .await
        .unwrap()
        .into_inner();
    let node = TlsMaterial::new(issued.ca_pem, issued.cert_pem, key);
    // The CSR asked for a DNS name; the certificate says what the assignment says.
    assert_eq!(
        node.identity().unwrap(),
        Identity::Node {
            cluster_id: "cl-1".into(),
            node_id: 101,
            roles: NodeRoles::BROKER
        }
    );
    agent
        .report_status(pb::ReportStatusRequest {
            host_id: "host-a".into(),
            applied_generation: 1,
            nodes: vec![pb::NodeReport {
                cluster_id: "cl-1".into(),
                node_id: 101,
                state: pb::NodeState::Running as i32,
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let host = cp.store.get_host("host-a").await.unwrap();
    assert_eq!(host.nodes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_are_one_time_unexpired_and_for_this_ca() {
    let cp = ControlPlane::start().await;
    let token = cp.join_token("host-a");
    enroll(&cp, &token).await.unwrap();
    let status = enroll(&cp, &token).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "used twice: {status:?}"
    );
    assert!(status.message().contains("already used"), "{status:?}");

    let long_ago = ferry_control_plane::auth::LEEWAY_SECS + 3600;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = cp.join.mint_at(
        "host-b",
        cp.ca.fingerprint(),
        Duration::from_secs(60),
        now - long_ago,
        "expired-1",
    );
    let status = enroll(&cp, &expired).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "expired: {status:?}");

    let other_ca = cp.join.mint("host-b", "00ff", Duration::from_secs(60));
    let status = enroll(&cp, &other_ca).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "another CA: {status:?}"
    );

    let forged = JoinTokens::new(b"not the control plane's secret!!!", ISSUER)
        .unwrap()
        .mint("host-b", cp.ca.fingerprint(), Duration::from_secs(60));
    let status = enroll(&cp, &forged).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "forged: {status:?}");
    cp.assert_untouched().await;
}
