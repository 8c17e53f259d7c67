//! `AgentService` in process: served by tonic on a loopback port over a `MemoryStore`, as the
//! control plane's peer listener serves it (mutual TLS, the peer policy), called with the
//! generated client presenting a host certificate. Covers the agent's calls and the wall
//! between host certificates and tenant tokens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_control_plane::api::{Api, ApiConfig};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::model::{HostAssignment, HostHealth, NodeState};
use ferry_control_plane::pki::stored;
use ferry_control_plane::placement::Role as NodeRole;
use ferry_control_plane::server::agent_policy;
use ferry_control_plane::store::{MemoryStore, Store};
use ferry_identity::{CONTROL_PLANE_SERVER_NAME, CertificateAuthority, Identity};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::agent_service_client::AgentServiceClient;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::host_service_client::HostServiceClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-agent-tests";
const DAY: Duration = Duration::from_secs(24 * 3600);

struct Harness {
    store: Arc<MemoryStore>,
    issuer: TokenIssuer,
    ca: CertificateAuthority,
    /// The peer listener (AgentService, mutual TLS).
    peer: SocketAddr,
    /// The public port.
    public: Channel,
    /// The agents' service as host `h1`.
    agents: AgentServiceClient<Channel>,
    clusters: ClusterServiceClient<Channel>,
    hosts: HostServiceClient<Channel>,
}

impl Harness {
    async fn start() -> Harness {
        let store = Arc::new(MemoryStore::new());
        let ca = CertificateAuthority::generate("agent-api tests").unwrap();
        store.install_ca(stored(&ca)).await.unwrap();
        let issuer = TokenIssuer::new(SECRET, "ferry-control-plane", "ferry-api").unwrap();
        let api = Api::new(Arc::clone(&store), issuer.clone(), ApiConfig::default());
        // The public services, plaintext.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(api.cluster_service())
                .add_service(api.host_service())
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        // The agents' service, as the peer listener serves it.
        let member = ca
            .issue(&Identity::ControlPlane { member: 1 }, &[], DAY)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .tls_config(ferry_identity::server_tls_config(&member))
                .unwrap()
                .layer(agent_policy().layer())
                .add_service(api.agent_service())
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut harness = Harness {
            store,
            issuer,
            ca,
            peer,
            public: channel.clone(),
            agents: AgentServiceClient::new(channel.clone()),
            clusters: ClusterServiceClient::new(channel.clone()),
            hosts: HostServiceClient::new(channel),
        };
        harness.agents = harness.agent_as("h1").await;
        harness
    }

    /// The agents' service as host `host_id` (its certificate from the CA).
    async fn agent_as(&self, host_id: &str) -> AgentServiceClient<Channel> {
        let material = self
            .ca
            .issue(
                &Identity::Host {
                    host_id: host_id.into(),
                },
                &[],
                DAY,
            )
            .unwrap();
        let channel = Channel::from_shared(format!("https://{}", self.peer))
            .unwrap()
            .tls_config(ferry_identity::client_tls_config(
                &material,
                CONTROL_PLANE_SERVER_NAME,
            ))
            .unwrap()
            .connect()
            .await
            .unwrap();
        AgentServiceClient::new(channel)
    }

    /// Agents no longer carry a token: their certificate speaks for them. Kept so the calls
    /// read as before; the header is ignored by the agents' service.
    fn agent_token(&self) -> String {
        String::new()
    }

    fn token(&self, tenant: &str, role: Role) -> String {
        let principal = Principal {
            subject: format!("{role}"),
            tenant: tenant.into(),
            role,
        };
        self.issuer.mint(&principal, Duration::from_secs(600))
    }
}

/// `message` with `Authorization: Bearer <token>` (none for an empty token).
fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if !token.is_empty() {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

fn registration(host_id: &str) -> pb::RegisterHostRequest {
    pb::RegisterHostRequest {
        host_id: host_id.into(),
        zone: "b".into(),
        address: "10.0.0.2".into(),
        ports: Some(pb::PortRange { lo: 9000, hi: 9099 }),
        capacity: Some(pb::HostCapacity {
            max_nodes: 4,
            storage_bytes: 1 << 40,
        }),
    }
}

fn broker_assignment() -> HostAssignment {
    HostAssignment {
        cluster_id: "cl-1".into(),
        node_id: 101,
        role: NodeRole::Broker,
        address: "10.0.0.2".into(),
        kafka_port: Some(9000),
        controller_port: None,
        admin_port: 9001,
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: BTreeMap::from([("num.partitions".into(), "3".into())]),
        controller_quorum_voters: vec!["1@10.0.0.1:9000".into()],
        config_fingerprint: "00000000000000a1".into(),
    }
}

#[tokio::test]
async fn an_agent_registers_pulls_assignments_by_generation_and_reports() {
    let mut h = Harness::start().await;
    let token = h.agent_token();
    let host = h
        .agents
        .register_host(authed(&token, registration("h1")))
        .await
        .unwrap()
        .into_inner()
        .host
        .unwrap();
    assert_eq!((host.id.as_str(), host.zone.as_str()), ("h1", "b"));

    // Nothing assigned yet: generation 0, which the agent already knows.
    let none = h
        .agents
        .get_assignments(authed(
            &token,
            pb::GetAssignmentsRequest {
                host_id: "h1".into(),
                known_generation: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((none.generation, none.changed), (0, false));

    h.store
        .set_assignments("h1", vec![broker_assignment()], None)
        .await
        .unwrap();
    let got = h
        .agents
        .get_assignments(authed(
            &token,
            pb::GetAssignmentsRequest {
                host_id: "h1".into(),
                known_generation: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.generation, got.changed), (1, true));
    let node = got.assignments[0].node.clone().unwrap();
    assert_eq!(got.assignments[0].cluster_id, "cl-1");
    assert_eq!(
        (node.node_id, node.zone.as_str(), node.host_id.as_str()),
        (101, "b", "h1")
    );
    assert_eq!((node.kafka_port, node.admin_port), (9000, 9001));
    assert_eq!(got.assignments[0].broker_config["num.partitions"], "3");
    assert_eq!(
        got.assignments[0].controller_quorum_voters,
        vec!["1@10.0.0.1:9000"]
    );
    let same = h
        .agents
        .get_assignments(authed(
            &token,
            pb::GetAssignmentsRequest {
                host_id: "h1".into(),
                known_generation: 1,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!same.changed && same.assignments.is_empty());

    let answer = h
        .agents
        .report_status(authed(
            &token,
            pb::ReportStatusRequest {
                host_id: "h1".into(),
                applied_generation: 1,
                nodes: vec![pb::NodeReport {
                    cluster_id: "cl-1".into(),
                    node_id: 101,
                    state: pb::NodeState::Unhealthy as i32,
                    message: "node 101 of cluster cl-1 exited with status 1".into(),
                    config_fingerprint: "00000000000000a1".into(),
                    probe: Some(pb::NodeProbe {
                        broker_epoch: 9,
                        fenced: true,
                        metadata_offset: 120,
                        quorum_role: String::new(),
                        quorum_leader_id: -1,
                        replication: Some(pb::ReplicationHealth {
                            partitions: 12,
                            under_replicated_partitions: 4,
                            offline_partitions: 1,
                        }),
                    }),
                }],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.generation, 1);
    let host = h.store.get_host("h1").await.unwrap();
    assert_eq!(host.health, HostHealth::Healthy);
    assert_eq!(host.applied_generation, 1);
    assert_eq!(host.nodes[0].state, NodeState::Unhealthy);
    assert!(host.nodes[0].message.contains("status 1"));
    // The probe's details are kept as the agent forwarded them.
    let probe = host.nodes[0].probe.as_ref().unwrap();
    assert_eq!((probe.broker_epoch, probe.fenced), (9, true));
    let replication = probe.replication.unwrap();
    assert_eq!((replication.under_replicated, replication.offline), (4, 1));
}

#[tokio::test]
async fn only_host_certificates_call_the_agent_service_and_agent_tokens_call_nothing() {
    let h = Harness::start().await;
    // Tenant tokens over a channel without a host certificate: refused at the handshake (or
    // the first call, with TLS 1.3).
    let no_cert = Channel::from_shared(format!("https://{}", h.peer))
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(h.ca.cert_pem()))
                .domain_name(CONTROL_PLANE_SERVER_NAME),
        )
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = no_cert {
        for role in [Role::Admin, Role::Operator, Role::Viewer] {
            let status = AgentServiceClient::new(channel.clone())
                .register_host(authed(&h.token("acme", role), registration("h1")))
                .await
                .unwrap_err();
            assert_ne!(status.code(), Code::Ok, "{role}");
        }
    }
    // The agents' service is not on the public port at all.
    let status = AgentServiceClient::new(h.public.clone())
        .register_host(authed(&h.token("acme", Role::Admin), registration("h1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);

    // A token with the agent role (the old fleet-wide credential) calls nothing.
    let mut clusters = h.clusters.clone();
    let mut hosts = h.hosts.clone();
    let agent = h.token("", Role::Agent);
    let status = clusters
        .list_clusters(authed(&agent, pb::ListClustersRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = hosts
        .list_hosts(authed(&agent, pb::ListHostsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(h.store.get_host("h1").await.is_err(), "nothing registered");
}

#[tokio::test]
async fn bad_agent_requests_are_refused_with_every_violation() {
    let mut h = Harness::start().await;
    let token = h.agent_token();
    let status = h
        .agents
        .register_host(authed(
            &token,
            pb::RegisterHostRequest {
                host_id: "h1".into(),
                zone: String::new(),
                address: "10.0.0.2".into(),
                ports: Some(pb::PortRange { lo: 9100, hi: 9000 }),
                capacity: Some(pb::HostCapacity {
                    max_nodes: 0,
                    storage_bytes: 0,
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["zone", "ports", "capacity.max_nodes"]);

    let status = h
        .agent_as("nowhere")
        .await
        .get_assignments(authed(
            &token,
            pb::GetAssignmentsRequest {
                host_id: "nowhere".into(),
                known_generation: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    h.agents
        .register_host(authed(&token, registration("h1")))
        .await
        .unwrap();
    let status = h
        .agents
        .report_status(authed(
            &token,
            pb::ReportStatusRequest {
                host_id: "h1".into(),
                applied_generation: 0,
                nodes: vec![pb::NodeReport {
                    cluster_id: "cl-1".into(),
                    node_id: 1,
                    state: 0,
                    ..Default::default()
                }],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("nodes[0].state"), "{status:?}");
}
