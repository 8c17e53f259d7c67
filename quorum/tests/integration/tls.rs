//! The quorum's transport over mutual TLS, and the attacks it must refuse, sent as an attacker
//! on the network would send them: plaintext gRPC (h2c) and HTTP/1.1, a valid certificate of
//! another CA, a certificate of this CA that is not a voter's, and a voter speaking for
//! another voter. After each, nothing was written and every voter still answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_identity::{
    CERT_VALIDITY_DEFAULT, CertificateAuthority, Identity, NodeRoles, Policy, TlsMaterial,
    controller_server_name,
};
use ferry_proto::quorum::v1::raft_client::RaftClient;
use ferry_proto::quorum::v1::{ProposeRequest, SendRequest};
use ferry_quorum::transport::encode_message;
use ferry_quorum::{Message, Options, Quorum, QuorumHandle, RaftId, StateMachine, TlsOptions};
use raft::prelude::MessageType;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const CLUSTER: &str = "q1";

/// A list of applied commands; queries return how many.
#[derive(Default)]
struct Journal(Vec<Vec<u8>>);

impl StateMachine for Journal {
    fn apply(&mut self, _index: u64, command: &[u8]) -> Vec<u8> {
        self.0.push(command.to_vec());
        Vec::new()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.len().to_string().into_bytes()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let n: usize = String::from_utf8_lossy(data)
            .parse()
            .map_err(|err| format!("snapshot: {err}"))?;
        self.0 = vec![Vec::new(); n];
        Ok(())
    }
    fn validate(&self, _command: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn query(&self, _query: &[u8]) -> Vec<u8> {
        self.0.len().to_string().into_bytes()
    }
}

/// A controller's identity: voter `n + 1` is node `n` of [`CLUSTER`].
fn controller(voter: RaftId) -> Identity {
    Identity::Node {
        cluster_id: CLUSTER.into(),
        node_id: voter as i32 - 1,
        roles: NodeRoles::CONTROLLER,
    }
}

fn voter_of(peer: &Identity) -> Option<RaftId> {
    match peer {
        Identity::Node {
            cluster_id,
            node_id,
            roles,
        } if cluster_id == CLUSTER && roles.controller => Some(*node_id as RaftId + 1),
        _ => None,
    }
}

/// Three TLS voters in one process.
struct Cluster {
    ca: CertificateAuthority,
    addresses: BTreeMap<RaftId, SocketAddr>,
    handles: BTreeMap<RaftId, QuorumHandle>,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    async fn start() -> Cluster {
        let ca = CertificateAuthority::generate("quorum test").unwrap();
        let mut listeners = BTreeMap::new();
        for id in 1..=3 {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addresses: BTreeMap<RaftId, SocketAddr> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap()))
            .collect();
        let mut handles = BTreeMap::new();
        let mut dirs = Vec::new();
        for (id, listener) in listeners {
            let dir = tempfile::tempdir().unwrap();
            let options = Options {
                id,
                peers: addresses
                    .iter()
                    .map(|(id, a)| (*id, a.to_string()))
                    .collect(),
                tick_interval: Duration::from_millis(20),
                tls: Some(TlsOptions {
                    material: ca
                        .issue(&controller(id), &[], CERT_VALIDITY_DEFAULT)
                        .unwrap(),
                    server_name: controller_server_name(CLUSTER),
                    voter_of: Arc::new(voter_of),
                    policy: Policy::new(),
                }),
                ..Default::default()
            };
            let handle = Quorum::start(options, Journal::default(), dir.path(), listener).await;
            handles.insert(id, handle.unwrap());
            dirs.push(dir);
        }
        Cluster {
            ca,
            addresses,
            handles,
            _dirs: dirs,
        }
    }

    /// The number of applied commands, read linearizably on every voter (so every voter
    /// answers).
    async fn applied_everywhere(&self) -> Vec<String> {
        let mut counts = Vec::new();
        for handle in self.handles.values() {
            counts.push(String::from_utf8(handle.read(Vec::new()).await.unwrap()).unwrap());
        }
        counts
    }

    async fn leader(&self) -> RaftId {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.handles[&1].status().await.unwrap();
            if let Some(leader) = status.leader {
                return leader;
            }
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn tls_client(
    address: SocketAddr,
    material: &TlsMaterial,
) -> Result<RaftClient<tonic::transport::Channel>, String> {
    let tls = ferry_identity::client_tls_config(material, &controller_server_name(CLUSTER));
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(RaftClient::new(channel))
}

/// A heartbeat as an attacker forges it: from voter `from`, a huge term, a commit index far
/// past the log (raft-rs panics on it if it is ever stepped).
fn forged_heartbeat(from: RaftId, to: RaftId) -> SendRequest {
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::MsgHeartbeat);
    msg.from = from;
    msg.to = to;
    msg.term = u64::MAX / 2;
    msg.commit = u64::MAX / 2;
    SendRequest {
        messages: vec![encode_message(&msg)],
    }
}

fn evil_proposal() -> ProposeRequest {
    ProposeRequest {
        command: b"evil".to_vec(),
        timeout_ms: 1000,
    }
}

/// Sends a gRPC Send and a Propose with `client`; both must fail with a status for which
/// `refused` holds (and nothing may be written).
async fn assert_both_refused(
    mut client: RaftClient<tonic::transport::Channel>,
    to: RaftId,
    refused: impl Fn(&tonic::Status) -> bool,
) {
    let send = client.send(forged_heartbeat(2, to)).await.unwrap_err();
    assert!(refused(&send), "Send: {send:?}");
    let propose = client.propose(evil_proposal()).await.unwrap_err();
    assert!(refused(&propose), "Propose: {propose:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_commit_over_mutual_tls_and_forward_proposals() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.handles[&leader]
        .propose(b"a".to_vec())
        .await
        .unwrap();
    // A follower forwards over the same authenticated transport.
    cluster.handles[&follower]
        .propose(b"b".to_vec())
        .await
        .unwrap();
    assert_eq!(cluster.applied_everywhere().await, ["2", "2", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_are_refused_at_the_handshake() {
    let cluster = Cluster::start().await;
    cluster.handles[&cluster.leader().await]
        .propose(b"a".to_vec())
        .await
        .unwrap();
    for (&id, &address) in &cluster.addresses {
        // h2c gRPC, as grpcurl -plaintext sends it.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect_lazy();
        assert_both_refused(RaftClient::new(channel), id, |_| true).await;

        // gRPC over HTTP/1.1 with a made-up content type, as curl sends it.
        let mut stream = TcpStream::connect(address).await.unwrap();
        let body = b"\0\0\0\0\x06\x0a\x04evil";
        let head = format!(
            "POST /ferry.quorum.v1.Raft/Propose HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(body).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        assert!(
            !answer.starts_with(b"HTTP/"),
            "an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(cluster.applied_everywhere().await, ["1", "1", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_certificate_of_another_ca_is_refused() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"a".to_vec())
        .await
        .unwrap();
    // The attacker knows the cluster's CA certificate (it is public) and made a certificate
    // with a voter's exact identity under its own CA.
    let rogue = CertificateAuthority::generate("quorum test").unwrap();
    let mut material = rogue
        .issue(&controller(2), &[], CERT_VALIDITY_DEFAULT)
        .unwrap();
    material.ca_pem = cluster.ca.cert_pem().to_string();
    for (&id, &address) in &cluster.addresses {
        // The server refuses the certificate during or right after the handshake; either the
        // connection or the first call fails, never with an answer from a handler.
        if let Ok(client) = tls_client(address, &material).await {
            assert_both_refused(client, id, |s| s.code() != tonic::Code::Ok).await;
        }
    }
    assert_eq!(cluster.applied_everywhere().await, ["1", "1", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_are_not_a_voters_get_permission_denied() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"a".to_vec())
        .await
        .unwrap();
    let not_voters = [
        // A broker of the same cluster.
        Identity::Node {
            cluster_id: CLUSTER.into(),
            node_id: 1,
            roles: NodeRoles::BROKER,
        },
        // A controller of another cluster, same CA (one control plane issues for many).
        Identity::Node {
            cluster_id: "q2".into(),
            node_id: 1,
            roles: NodeRoles::CONTROLLER,
        },
        // A controller id outside the voter set.
        controller(9),
        Identity::Host {
            host_id: "h1".into(),
        },
    ];
    for identity in not_voters {
        let material = cluster
            .ca
            .issue(&identity, &[], CERT_VALIDITY_DEFAULT)
            .unwrap();
        for (&id, &address) in &cluster.addresses {
            let client = tls_client(address, &material).await.unwrap();
            assert_both_refused(client, id, |s| s.code() == tonic::Code::PermissionDenied).await;
        }
    }
    assert_eq!(cluster.applied_everywhere().await, ["1", "1", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_cannot_send_messages_as_another_voter() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"a".to_vec())
        .await
        .unwrap();
    let target = (1..=3).find(|id| *id != leader).unwrap();
    let impersonator = (1..=3).find(|id| *id != leader && *id != target).unwrap();
    let material = cluster
        .ca
        .issue(&controller(impersonator), &[], CERT_VALIDITY_DEFAULT)
        .unwrap();
    let mut client = tls_client(cluster.addresses[&target], &material)
        .await
        .unwrap();
    let status = client
        .send(forged_heartbeat(leader, target))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    cluster.handles[&leader]
        .propose(b"b".to_vec())
        .await
        .unwrap();
    assert_eq!(cluster.applied_everywhere().await, ["2", "2", "2"]);
    assert_eq!(cluster.leader().await, leader);
}
