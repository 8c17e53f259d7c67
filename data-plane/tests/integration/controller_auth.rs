//! The controller listener answers only the nodes of its cluster, each only for what its role
//! allows. Every attack is sent as an attacker on the network would send it, against a real
//! node in quorum mode (one combined voter, node 1): raw gRPC over h2c and over HTTP/1.1
//! without a client certificate, a valid certificate of another cluster (from the same CA, as
//! one control plane issues for many clusters, and from another CA), a broker's certificate on
//! raft, and a broker speaking for another broker. After each, nothing was written: the
//! topics are the same, broker 1 is still registered and unfenced, and the voter still
//! answers.

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ferry_data_plane::broker::BrokerConfig;
use ferry_data_plane::controller::Command;
use ferry_data_plane::controller::records::Listener;
use ferry_data_plane::metadata::TopicRef;
use ferry_data_plane::node::{Node, NodeConfig, Role};
use ferry_data_plane::server::ServerOptions;
use ferry_identity::{
    CERT_VALIDITY_DEFAULT, CertificateAuthority, Identity, NodeRoles, TlsMaterial,
    controller_server_name,
};
use ferry_proto::controller::v1 as pb;
use ferry_proto::controller::v1::controller_service_client::ControllerServiceClient;
use ferry_proto::quorum::v1::raft_client::RaftClient;
use ferry_proto::quorum::v1::{ProposeRequest, SendRequest};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use raft::prelude::{Message, MessageType};
use support::RawClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const CLUSTER: &str = "attacked";

fn node(cluster: &str, node_id: i32, roles: NodeRoles) -> Identity {
    Identity::Node {
        cluster_id: cluster.into(),
        node_id,
        roles,
    }
}

/// One combined voter in quorum mode, serving over mutual TLS.
struct Target {
    ca: CertificateAuthority,
    controller: SocketAddr,
    kafka: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Target {
    async fn start() -> Target {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("target CA").unwrap();
        let controller: SocketAddr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let data_dir = dir.path().join("node-1");
        let node = Node::bind(NodeConfig {
            node_id: 1,
            cluster_id: Some(CLUSTER.into()),
            roles: vec![Role::Broker, Role::Controller],
            data_dir: data_dir.clone(),
            kafka_listen: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
            rack: None,
            admin_listen: None,
            server: ServerOptions::default(),
            broker: BrokerConfig::new(1, data_dir.join("logs")),
            controller_quorum: BTreeMap::from([(1, controller.to_string())]),
            controller_listen: Some(controller),
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_millis(500),
            tls: Some(
                ca.issue(
                    &node(CLUSTER, 1, NodeRoles::COMBINED),
                    &[],
                    CERT_VALIDITY_DEFAULT,
                )
                .unwrap(),
            ),
        })
        .await
        .unwrap();
        let kafka = node.kafka_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(node.run(stop.clone().cancelled_owned()));
        let target = Target {
            ca,
            controller,
            kafka,
            stop,
            task,
            _dir: dir,
        };
        target.wait_until_broker_serves().await;
        target
    }

    async fn metadata(&self) -> MetadataResponse {
        let mut client = RawClient::connect(self.kafka).await;
        match client
            .call(
                ApiKey::Metadata,
                12,
                RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
            )
            .await
        {
            ResponseKind::Metadata(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Topic names and unfenced brokers, as clients see them.
    async fn view(&self) -> (Vec<String>, Vec<i32>) {
        let metadata = self.metadata().await;
        let mut topics: Vec<String> = metadata
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        topics.sort();
        let brokers = metadata.brokers.iter().map(|b| b.node_id.0).collect();
        (topics, brokers)
    }

    async fn wait_until_broker_serves(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.view().await.1 != [1] {
            assert!(
                Instant::now() < deadline,
                "broker 1 registered and unfenced"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create_topic(&self, topic: &str) {
        let mut client = RawClient::connect(self.kafka).await;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.into())))
                    .with_num_partitions(1)
                    .with_replication_factor(-1),
            ]);
        match client
            .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
            .await
        {
            ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A TLS channel presenting `material`, dialling the controller by its real server name
    /// (an attacker knows the name and the public CA certificate).
    async fn tls_channel(&self, material: &TlsMaterial) -> Option<Channel> {
        let tls = ferry_identity::client_tls_config(material, &controller_server_name(CLUSTER));
        Endpoint::from_shared(format!("https://{}", self.controller))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .ok()
    }

    fn material(&self, identity: &Identity) -> TlsMaterial {
        self.ca.issue(identity, &[], CERT_VALIDITY_DEFAULT).unwrap()
    }

    /// After an attack: nothing was written, the broker is still up, the voter answers.
    async fn assert_unchanged(&self) {
        assert_eq!(self.view().await, (vec!["kept".to_string()], vec![1]));
        let legit = self.material(&node(CLUSTER, 1, NodeRoles::COMBINED));
        let mut client = ControllerServiceClient::new(self.tls_channel(&legit).await.unwrap());
        let quorum = client
            .describe_quorum(pb::DescribeQuorumRequest {})
            .await
            .unwrap();
        assert_eq!(quorum.into_inner().leader_id, 1);
    }

    async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

fn ok<T>(result: Result<T, tonic::Status>) -> Result<(), tonic::Status> {
    result.map(|_| ())
}

/// Deletes the topic every test keeps: what an attacker would send through Execute.
fn delete_kept() -> Command {
    Command::DeleteTopics {
        topics: vec![TopicRef::Name("kept".into())],
    }
}

/// Every controller-listener call an attacker would make, with its outcome. Raft.Propose
/// carries [`delete_kept`]; Execute carries `execute`.
async fn attack_all(
    channel: Channel,
    execute: &Command,
) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let mut raft = RaftClient::new(channel.clone());
    let mut controller = ControllerServiceClient::new(channel);
    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.from = 2;
    heartbeat.to = 2; // raft id of node 1
    heartbeat.term = u64::MAX / 2;
    heartbeat.commit = u64::MAX / 2;
    let register = Command::RegisterBroker {
        broker_id: 1,
        incarnation_id: uuid::Uuid::new_v4(),
        listeners: vec![Listener {
            name: "PLAINTEXT".into(),
            host: "attacker.example".into(),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        }],
        rack: None,
        cluster_id: CLUSTER.into(),
    };
    let delete = delete_kept();
    let mut follower = controller.clone();
    let follow = async move {
        let mut stream = follower
            .follow_metadata(pb::FollowMetadataRequest { after_offset: 0 })
            .await?
            .into_inner();
        stream.message().await.map(|_| ())
    };
    vec![
        (
            "Raft.Send",
            ok(raft
                .send(SendRequest {
                    messages: vec![ferry_quorum::transport::encode_message(&heartbeat)],
                })
                .await),
        ),
        (
            "Raft.Propose",
            ok(raft
                .propose(ProposeRequest {
                    command: delete.encode(),
                    timeout_ms: 2000,
                })
                .await),
        ),
        (
            "RegisterBroker",
            ok(controller
                .register_broker(pb::RegisterBrokerRequest {
                    command: register.encode(),
                })
                .await),
        ),
        (
            "BrokerHeartbeat",
            ok(controller
                .broker_heartbeat(pb::BrokerHeartbeatRequest {
                    broker_id: 1,
                    broker_epoch: 0,
                    metadata_offset: 0,
                    want_shutdown: true,
                })
                .await),
        ),
        (
            "Execute",
            ok(controller
                .execute(pb::ExecuteRequest {
                    command: execute.encode(),
                })
                .await),
        ),
        ("FollowMetadata", follow.await),
    ]
}

fn assert_all_refused(
    results: &[(&str, Result<(), tonic::Status>)],
    refused: impl Fn(&tonic::Status) -> bool,
) {
    for (call, result) in results {
        match result {
            Ok(()) => panic!("{call} was answered"),
            Err(status) => assert!(refused(status), "{call}: {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_certificate_nothing_is_answered() {
    let target = Target::start().await;
    target.create_topic("kept").await;

    // gRPC over h2c, as `grpcurl -plaintext` sends it.
    let h2c = Endpoint::from_shared(format!("http://{}", target.controller))
        .unwrap()
        .connect_lazy();
    assert_all_refused(&attack_all(h2c, &delete_kept()).await, |_| true);

    // gRPC over HTTP/1.1 with any content type, as curl sends it.
    for path in [
        "/ferry.quorum.v1.Raft/Send",
        "/ferry.quorum.v1.Raft/Propose",
        "/ferry.controller.v1.ControllerService/RegisterBroker",
        "/ferry.controller.v1.ControllerService/BrokerHeartbeat",
        "/ferry.controller.v1.ControllerService/Execute",
        "/ferry.controller.v1.ControllerService/FollowMetadata",
    ] {
        let mut stream = TcpStream::connect(target.controller).await.unwrap();
        let body = b"\0\0\0\0\x02\x08\x01";
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(body).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        assert!(
            !answer.starts_with(b"HTTP/"),
            "{path}: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }

    // TLS without a client certificate: the handshake is refused.
    let bare = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            target.ca.cert_pem(),
        ))
        .domain_name(controller_server_name(CLUSTER));
    let channel = Endpoint::from_shared(format!("https://{}", target.controller))
        .unwrap()
        .tls_config(bare)
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = channel {
        assert_all_refused(&attack_all(channel, &delete_kept()).await, |_| true);
    }

    target.assert_unchanged().await;
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_cluster_is_refused() {
    let target = Target::start().await;
    target.create_topic("kept").await;

    // Same CA (one control plane issues for every cluster): the policy refuses it.
    let other_cluster = target.material(&node("other", 1, NodeRoles::COMBINED));
    let channel = target.tls_channel(&other_cluster).await.unwrap();
    assert_all_refused(&attack_all(channel, &delete_kept()).await, |s| {
        s.code() == Code::PermissionDenied
    });

    // Another CA, with this cluster's exact identity: the handshake refuses it.
    let rogue = CertificateAuthority::generate("target CA").unwrap();
    let mut forged = rogue
        .issue(
            &node(CLUSTER, 1, NodeRoles::COMBINED),
            &[],
            CERT_VALIDITY_DEFAULT,
        )
        .unwrap();
    forged.ca_pem = target.ca.cert_pem().into();
    if let Some(channel) = target.tls_channel(&forged).await {
        assert_all_refused(&attack_all(channel, &delete_kept()).await, |s| {
            s.code() != Code::Ok
        });
    }

    target.assert_unchanged().await;
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_node_ids_bound_what_a_cluster_certificate_may_do() {
    let target = Target::start().await;
    target.create_topic("kept").await;

    // A broker of this cluster (node 2) on raft, and speaking for broker 1.
    let broker = target.material(&node(CLUSTER, 2, NodeRoles::BROKER));
    // FollowMetadata and Execute are a broker's rights (a broker forwards its clients' admin
    // requests), so its Execute carries a command that changes nothing; the rest are not
    // broker 2's.
    let harmless = Command::DeleteTopics {
        topics: vec![TopicRef::Name("absent".into())],
    };
    let results = attack_all(target.tls_channel(&broker).await.unwrap(), &harmless).await;
    for (call, result) in &results {
        match *call {
            "FollowMetadata" | "Execute" => assert!(result.is_ok(), "{call}: {result:?}"),
            _ => assert_eq!(
                result.as_ref().unwrap_err().code(),
                Code::PermissionDenied,
                "{call}: {result:?}"
            ),
        }
    }

    // A controller-only certificate of this cluster that is not a voter (node 7): no raft, no
    // broker calls.
    let controller = target.material(&node(CLUSTER, 7, NodeRoles::CONTROLLER));
    let results = attack_all(
        target.tls_channel(&controller).await.unwrap(),
        &delete_kept(),
    )
    .await;
    assert_all_refused(&results, |s| s.code() == Code::PermissionDenied);

    // An agent's host certificate from the same CA: nothing.
    let host = target.material(&Identity::Host {
        host_id: "h1".into(),
    });
    let results = attack_all(target.tls_channel(&host).await.unwrap(), &delete_kept()).await;
    assert_all_refused(&results, |s| s.code() == Code::PermissionDenied);

    target.assert_unchanged().await;
    target.shutdown().await;
}
