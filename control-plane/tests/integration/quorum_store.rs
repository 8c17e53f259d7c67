//! The store on a real single-voter quorum: what it stored survives a restart from the same
//! directory (snapshot plus log replay), and reconcilers find the interrupted operations.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_control_plane::model::{ClusterState, ClusterStatus, OperationState, PageRequest};
use ferry_control_plane::spec::ClusterSpec;
use ferry_control_plane::store::{QuorumStore, State, Store};
use ferry_control_plane::{Conflict, Error};
use ferry_quorum::{Options, Quorum};
use tokio::net::TcpListener;

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: 3,
        controller_count: 3,
        zones: vec!["a".into(), "b".into(), "c".into()],
        storage_per_broker_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        tags: BTreeMap::from([("env".into(), "test".into())]),
        configuration: None,
    }
}

async fn start(dir: &std::path::Path, listener: TcpListener) -> QuorumStore {
    let address = listener.local_addr().unwrap();
    let options = Options {
        id: 1,
        peers: BTreeMap::from([(1, address.to_string())]),
        tick_interval: Duration::from_millis(10),
        // Small, so the restart restores a snapshot and then replays log entries after it.
        snapshot_entries: 3,
        ..Default::default()
    };
    let handle = Quorum::start(options, State::new(), dir, listener)
        .await
        .unwrap();
    QuorumStore::new(handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_and_operations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let store = start(dir.path(), listener).await;

    let (cluster, operation) = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!(cluster.status.state, ClusterState::Creating);
    let (payments, _) = store
        .create_cluster("t1", spec("payments"), None)
        .await
        .unwrap();
    store
        .update_cluster_status(
            "t1",
            &payments.id,
            payments.current_version,
            ClusterStatus::new(ClusterState::Active),
        )
        .await
        .unwrap();
    for i in 0..4 {
        store
            .create_cluster("t2", spec(&format!("other-{i}")), None)
            .await
            .unwrap();
    }
    let err = store.create_cluster("t1", spec("orders"), None).await;
    assert!(matches!(
        err,
        Err(Error::Conflict(Conflict::NameTaken { .. }))
    ));
    let before = store
        .list_clusters("t1", "", PageRequest::default())
        .await
        .unwrap();
    store.handle().shutdown().await;

    let listener = TcpListener::bind(address).await.unwrap();
    let store = start(dir.path(), listener).await;
    let status = store.handle().status().await.unwrap();
    assert!(status.snapshot_index > 0, "{status:?}");

    assert_eq!(store.get_cluster("t1", &cluster.id).await.unwrap(), cluster);
    assert_eq!(
        store.get_operation("t1", &operation.id).await.unwrap(),
        operation
    );
    let after = store
        .list_clusters("t1", "", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(after.items[1].status.state, ClusterState::Active);

    // The retried create is still idempotent, and the interrupted CREATE is there to resume.
    let again = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!(again, (cluster.clone(), operation.clone()));
    let active = store.active_operations().await.unwrap();
    assert_eq!(active.len(), 6);
    assert!(active.iter().all(|op| op.state == OperationState::Pending));
    assert!(store.is_leader().await.unwrap());

    // Tenant isolation holds on the quorum too.
    assert!(matches!(
        store.get_cluster("t2", &cluster.id).await,
        Err(Error::NotFound(_))
    ));
    store.handle().shutdown().await;
}
