//! A poison command sent straight to the store's raft service (`ferry.quorum.v1.Raft/Propose`)
//! on the peer port, by the only caller the peer port lets through: a member of the store (its
//! certificate stolen, or its code broken; everyone else is refused at the handshake, see
//! `tests/integration/peer.rs`). Refused before it enters the log, nothing written, the server still
//! answers, and it restarts on the same data directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ferry_control_plane::model::PageRequest;
use ferry_control_plane::server::{Server, ServerOptions};
use ferry_control_plane::spec::ClusterSpec;
use ferry_control_plane::store::command::CreateCluster;
use ferry_control_plane::store::state::encode_command;
use ferry_control_plane::store::{Command, Store};
use ferry_proto::quorum::v1 as pb;
use ferry_proto::quorum::v1::propose_error::Kind;
use ferry_proto::quorum::v1::raft_client::RaftClient;

const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: 3,
        controller_count: 3,
        zones: vec!["a".into(), "b".into(), "c".into()],
        storage_per_broker_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        tags: BTreeMap::new(),
        configuration: None,
    }
}

/// Starts a control plane on port 0 over `dir`, running until the returned sender fires.
async fn start(
    dir: &std::path::Path,
) -> (
    ferry_control_plane::store::QuorumStore,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let options = ServerOptions::new(dir, "127.0.0.1:0".parse().unwrap(), SECRET.to_vec());
    let server = Server::bind(options).await.unwrap();
    let store = server.store();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    (store, stop, running)
}

/// Proposes `command` with a raw gRPC call to the raft service at `address`, presenting a
/// certificate of member 1 issued by the CA in `data_dir`.
async fn raw_propose(
    data_dir: &std::path::Path,
    address: SocketAddr,
    command: Vec<u8>,
) -> pb::ProposeResponse {
    let ca = ferry_identity::CertificateAuthority::load_dir(&data_dir.join("ca")).unwrap();
    let member = ca
        .issue(
            &ferry_identity::Identity::ControlPlane { member: 1 },
            &[],
            ferry_identity::CERT_VALIDITY_DEFAULT,
        )
        .unwrap();
    let tls = ferry_identity::client_tls_config(&member, ferry_identity::CONTROL_PLANE_SERVER_NAME);
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RaftClient::new(channel);
    let request = pb::ProposeRequest {
        command,
        timeout_ms: 2_000,
    };
    client.propose(request).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_command_is_refused_before_the_log_and_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, stop, running) = start(dir.path()).await;
    // No cluster yet, so no reconciler writes while the poison is sent: the log index tells
    // whether anything was written.
    let raft = store.handle().local_addr();
    let before = store.handle().status().await.unwrap();

    // Not JSON; JSON that is not a command; a command whose spec breaks the rules (the API
    // would have refused it, and the store's apply used to accept anything); nothing.
    let mut bad_spec = spec("huge");
    bad_spec.broker_count = 1_000_000_000;
    bad_spec.name = "not a name!".into();
    let poisons = [
        b"\xff\xfenot json".to_vec(),
        br#"{"DropEverything":{}}"#.to_vec(),
        encode_command(&Command::CreateCluster(CreateCluster {
            tenant: "victim".into(),
            spec: bad_spec,
            client_request_id: None,
            now_ms: 0,
        })),
        Vec::new(),
    ];
    for poison in poisons {
        let response = raw_propose(dir.path(), raft, poison.clone()).await;
        let Some(pb::propose_response::Outcome::Error(error)) = response.outcome else {
            panic!("{poison:?} was accepted: {response:?}");
        };
        assert_eq!(error.kind, Kind::InvalidInput as i32, "{error:?}");
    }

    // Nothing entered the log or the state, and the store still serves.
    let after = store.handle().status().await.unwrap();
    assert_eq!(after.last_index, before.last_index);
    let page = PageRequest::default();
    assert!(
        store
            .list_clusters("victim", "", page.clone())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let (orders, _) = store
        .create_cluster("acme", spec("orders"), None)
        .await
        .unwrap();
    store
        .create_cluster("acme", spec("payments"), None)
        .await
        .unwrap();

    // The server restarts on the same directory, with the same state.
    stop.send(()).unwrap();
    running.await.unwrap();
    let (store, stop, running) = start(dir.path()).await;
    let listed = store.list_clusters("acme", "", page).await.unwrap();
    let names: Vec<&str> = listed.items.iter().map(|c| c.spec.name.as_str()).collect();
    assert_eq!(names, ["orders", "payments"]);
    assert_eq!(listed.items[0].id, orders.id);
    stop.send(()).unwrap();
    running.await.unwrap();
}
