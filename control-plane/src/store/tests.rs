//! The store's rules, exercised through [`MemoryStore`] (which applies the same JSON commands
//! as the quorum does).

use std::collections::BTreeMap;

use super::*;
use crate::model::{
    ClusterState, HostCapacity, NodeState, OperationError, OperationState, StateInfo, Step,
    StepState,
};
use crate::placement::{PortRange, Role};

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: 3,
        controller_count: 3,
        zones: vec!["a".into(), "b".into(), "c".into()],
        storage_per_broker_bytes: 1 << 30,
        broker_config: BTreeMap::from([("num.partitions".into(), "3".into())]),
        tags: BTreeMap::new(),
        configuration: None,
    }
}

fn store() -> MemoryStore {
    let store = MemoryStore::new();
    store.set_now_ms(1_000);
    store
}

fn registration(id: &str, zone: &str) -> HostRegistration {
    HostRegistration {
        id: id.into(),
        zone: zone.into(),
        address: "127.0.0.1".into(),
        ports: PortRange { lo: 9000, hi: 9100 },
        capacity: HostCapacity {
            max_nodes: 8,
            storage_bytes: 100 << 30,
        },
    }
}

fn succeeded() -> OperationUpdate {
    OperationUpdate {
        state: Some(OperationState::Succeeded),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_stores_a_creating_cluster_with_a_pending_create_operation() {
    let store = store();
    let (cluster, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    assert_eq!(cluster.id, "cl-0000000000000001");
    assert_eq!(op.id, "op-0000000000000001");
    assert_eq!(cluster.tenant, "t1");
    assert_eq!(cluster.status.state, ClusterState::Creating);
    assert_eq!(cluster.current_version, 1);
    assert_eq!(cluster.created_at_ms, 1_000);
    assert_eq!(cluster.active_operation.as_deref(), Some(op.id.as_str()));
    assert_eq!(op.kind, OperationType::Create);
    assert_eq!(op.state, OperationState::Pending);
    assert_eq!(op.cluster_id, cluster.id);
    assert_eq!(op.started_at_ms, 1_000);
    assert_eq!(op.steps.len(), OperationType::Create.step_names().len());
    assert!(op.steps.iter().all(|s| s.state == StepState::Pending));
    assert_eq!(store.get_cluster("t1", &cluster.id).await.unwrap(), cluster);
    assert_eq!(store.get_operation("t1", &op.id).await.unwrap(), op);
}

#[tokio::test]
async fn create_with_the_same_request_id_returns_the_same_cluster_and_operation() {
    let store = store();
    let first = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    let again = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!(first, again);
    let all = store
        .list_clusters("t1", "", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);

    // The retry answers with the cluster as it is now, not as it was created.
    let status = ClusterStatus::new(ClusterState::Active);
    store
        .update_cluster_status("t1", &first.0.id, 1, status.clone())
        .await
        .unwrap();
    let (cluster, op) = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!((cluster.id, cluster.status), (first.0.id.clone(), status));
    assert_eq!(op.id, first.1.id);
}

#[tokio::test]
async fn the_same_request_id_with_a_different_spec_is_a_conflict() {
    let store = store();
    store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    let mut other = spec("orders");
    other.broker_count = 6;
    let err = store
        .create_cluster("t1", other, Some("req-1".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Conflict(Conflict::RequestIdReused {
            client_request_id: "req-1".into()
        })
    );
    // Another tenant has its own request ids.
    store
        .create_cluster("t2", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn request_ids_are_checked_for_length() {
    let store = store();
    for bad in [String::new(), "x".repeat(65)] {
        let err = store
            .create_cluster("t1", spec("orders"), Some(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
    let err = store.create_cluster("", spec("orders"), None).await;
    assert!(matches!(err, Err(Error::InvalidInput(_))));
}

#[tokio::test]
async fn names_are_unique_per_tenant_but_not_across_tenants() {
    let store = store();
    let (first, _) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let err = store
        .create_cluster("t1", spec("orders"), Some("req-2".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Conflict(Conflict::NameTaken {
            name: "orders".into(),
            cluster_id: first.id.clone(),
            kind: "cluster".into(),
        })
    );
    let (other, _) = store
        .create_cluster("t2", spec("orders"), None)
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
}

#[tokio::test]
async fn another_tenants_resources_are_not_found() {
    let store = store();
    let (cluster, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let not_found = |r: Result<_>| matches!(r, Err(Error::NotFound(_)));
    assert!(not_found(
        store.get_cluster("t2", &cluster.id).await.map(drop)
    ));
    assert!(not_found(store.get_operation("t2", &op.id).await.map(drop)));
    assert!(not_found(
        store
            .list_operations("t2", &cluster.id, PageRequest::default())
            .await
            .map(drop)
    ));
    assert!(not_found(
        store
            .delete_cluster("t2", &cluster.id, None)
            .await
            .map(drop)
    ));
    assert!(not_found(
        store
            .update_cluster_status(
                "t2",
                &cluster.id,
                1,
                ClusterStatus::new(ClusterState::Active)
            )
            .await
            .map(drop)
    ));
    assert!(not_found(
        store
            .update_operation("t2", &op.id, succeeded())
            .await
            .map(drop)
    ));
    assert!(not_found(
        store
            .remove_cluster("t2", &cluster.id, None)
            .await
            .map(drop)
    ));
    let listed = store
        .list_clusters("t2", "", PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    // Nothing changed for the owner.
    assert_eq!(store.get_cluster("t1", &cluster.id).await.unwrap(), cluster);
}

#[tokio::test]
async fn one_operation_at_a_time_per_cluster() {
    let store = store();
    let (cluster, create) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let err = store
        .delete_cluster("t1", &cluster.id, None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Conflict(Conflict::OperationInProgress {
            operation_id: create.id.clone()
        })
    );

    store.set_now_ms(2_000);
    let ended = store
        .update_operation("t1", &create.id, succeeded())
        .await
        .unwrap();
    assert_eq!(ended.ended_at_ms, Some(2_000));
    assert_eq!(ended.progress_percent, 100);
    let cluster = store.get_cluster("t1", &cluster.id).await.unwrap();
    assert_eq!(cluster.active_operation, None);
    assert_eq!(cluster.current_version, 2);

    let (cluster, delete) = store
        .delete_cluster("t1", &cluster.id, Some(2))
        .await
        .unwrap();
    assert_eq!(cluster.status.state, ClusterState::Deleting);
    assert_eq!(
        cluster.active_operation.as_deref(),
        Some(delete.id.as_str())
    );
    let err = store
        .begin_operation("t1", &cluster.id, OperationType::RebootBroker, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::OperationInProgress { .. })
    ));

    // A cluster being deleted takes no other operation even once the delete failed.
    let failed = OperationUpdate {
        state: Some(OperationState::Failed),
        error: Some(OperationError {
            code: "NODE_STOP_TIMEOUT".into(),
            message: "node 101 did not stop".into(),
        }),
        ..Default::default()
    };
    store
        .update_operation("t1", &delete.id, failed)
        .await
        .unwrap();
    let err = store
        .begin_operation("t1", &cluster.id, OperationType::RebootBroker, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::WrongState(_))),
        "{err}"
    );
    store.delete_cluster("t1", &cluster.id, None).await.unwrap();
}

#[tokio::test]
async fn create_operations_start_only_with_their_cluster() {
    let store = store();
    let (cluster, create) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    store
        .update_operation("t1", &create.id, succeeded())
        .await
        .unwrap();
    let err = store
        .begin_operation("t1", &cluster.id, OperationType::Create, None)
        .await;
    assert!(matches!(err, Err(Error::InvalidInput(_))));
}

#[tokio::test]
async fn versions_guard_updates() {
    let store = store();
    let (cluster, _) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut status = ClusterStatus::new(ClusterState::Failed);
    status.state_info = StateInfo::new("INSUFFICIENT_CAPACITY", "zone c has no room");
    let updated = store
        .update_cluster_status("t1", &cluster.id, 1, status.clone())
        .await
        .unwrap();
    assert_eq!(updated.current_version, 2);
    assert_eq!(updated.status, status);

    let err = store
        .update_cluster_status(
            "t1",
            &cluster.id,
            1,
            ClusterStatus::new(ClusterState::Active),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Conflict(Conflict::VersionMismatch {
            expected: 1,
            current: 2
        })
    );
    assert_eq!(store.get_cluster("t1", &cluster.id).await.unwrap(), updated);

    let err = store
        .begin_operation("t1", &cluster.id, OperationType::Delete, Some(7))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::VersionMismatch { .. })
    ));
}

#[tokio::test]
async fn operation_updates_record_steps_progress_and_end_once() {
    let store = store();
    let (_, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut steps = op.steps.clone();
    steps[0].state = StepState::Done;
    steps[0].started_at_ms = Some(1_000);
    steps[0].ended_at_ms = Some(1_500);
    steps[1] = Step {
        state: StepState::Running,
        started_at_ms: Some(1_500),
        message: "3 of 6 hosts written".into(),
        ..steps[1].clone()
    };
    let running = OperationUpdate {
        state: Some(OperationState::Running),
        steps: Some(steps.clone()),
        progress_percent: Some(30),
        error: None,
    };
    let updated = store.update_operation("t1", &op.id, running).await.unwrap();
    assert_eq!(updated.state, OperationState::Running);
    assert_eq!(updated.steps, steps);
    assert_eq!(updated.progress_percent, 30);
    assert_eq!(updated.ended_at_ms, None);

    let bad = [
        OperationUpdate {
            progress_percent: Some(101),
            ..Default::default()
        },
        OperationUpdate {
            state: Some(OperationState::Failed),
            ..Default::default()
        },
        OperationUpdate {
            error: Some(OperationError {
                code: "X".into(),
                message: "x".into(),
            }),
            ..Default::default()
        },
        OperationUpdate {
            state: Some(OperationState::Pending),
            ..Default::default()
        },
    ];
    for update in bad {
        let err = store.update_operation("t1", &op.id, update.clone()).await;
        assert!(matches!(err, Err(Error::InvalidInput(_))), "{update:?}");
    }

    store
        .update_operation("t1", &op.id, succeeded())
        .await
        .unwrap();
    let err = store
        .update_operation("t1", &op.id, succeeded())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(Conflict::WrongState(_))));
}

#[tokio::test]
async fn active_operations_are_what_reconcilers_resume() {
    let store = store();
    let (_, a) = store.create_cluster("t1", spec("a"), None).await.unwrap();
    let (_, b) = store.create_cluster("t2", spec("b"), None).await.unwrap();
    let (_, c) = store.create_cluster("t1", spec("c"), None).await.unwrap();
    store
        .update_operation("t2", &b.id, succeeded())
        .await
        .unwrap();
    let active: Vec<_> = store
        .active_operations()
        .await
        .unwrap()
        .into_iter()
        .map(|op| op.id)
        .collect();
    assert_eq!(active, vec![a.id, c.id]);
}

#[tokio::test]
async fn list_clusters_filters_by_prefix_and_pages_in_name_order() {
    let store = store();
    for name in [
        "orders-b", "payments", "orders-a", "orders-c", "ord", "zeta",
    ] {
        store.create_cluster("t1", spec(name), None).await.unwrap();
    }
    store
        .create_cluster("t2", spec("orders-x"), None)
        .await
        .unwrap();

    let names = |page: &Page<Cluster>| -> Vec<String> {
        page.items.iter().map(|c| c.spec.name.clone()).collect()
    };
    let all = store
        .list_clusters("t1", "", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        names(&all),
        [
            "ord", "orders-a", "orders-b", "orders-c", "payments", "zeta"
        ]
    );
    assert_eq!(all.next_page_token, None);

    let mut request = PageRequest::first(2);
    let mut pages = Vec::new();
    loop {
        let page = store
            .list_clusters("t1", "orders-", request.clone())
            .await
            .unwrap();
        pages.push(names(&page));
        match page.next_page_token {
            Some(token) => request.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, vec![vec!["orders-a", "orders-b"], vec!["orders-c"]]);

    // Exactly a full last page: the look-ahead knows there is no next page.
    let page = store
        .list_clusters("t1", "orders-", PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(names(&page), ["orders-a", "orders-b", "orders-c"]);
    assert_eq!(page.next_page_token, None);

    // A token from before the prefix range still starts at the prefix.
    let request = PageRequest {
        page_size: 10,
        page_token: Some("a".into()),
    };
    let page = store.list_clusters("t1", "orders-", request).await.unwrap();
    assert_eq!(names(&page), ["orders-a", "orders-b", "orders-c"]);

    let none = store
        .list_clusters("t1", "x", PageRequest::default())
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn list_operations_pages_newest_first() {
    let store = store();
    let (cluster, create) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut ids = vec![create.id.clone()];
    store
        .update_operation("t1", &create.id, succeeded())
        .await
        .unwrap();
    for _ in 0..3 {
        // Updates need an ACTIVE cluster, as the reconciler leaves it after each operation.
        let current = store.get_cluster("t1", &cluster.id).await.unwrap();
        store
            .update_cluster_status(
                "t1",
                &cluster.id,
                current.current_version,
                ClusterStatus::new(ClusterState::Active),
            )
            .await
            .unwrap();
        let (_, op) = store
            .begin_operation("t1", &cluster.id, OperationType::RebootBroker, None)
            .await
            .unwrap();
        store
            .update_operation("t1", &op.id, succeeded())
            .await
            .unwrap();
        ids.push(op.id);
    }
    ids.reverse();

    let mut request = PageRequest::first(3);
    let mut seen = Vec::new();
    loop {
        let page = store
            .list_operations("t1", &cluster.id, request.clone())
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|op| op.id));
        match page.next_page_token {
            Some(token) => request.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn a_deleted_cluster_frees_its_name_and_keeps_its_operations() {
    let store = store();
    let (cluster, create) = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    let err = store
        .remove_cluster("t1", &cluster.id, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(Conflict::WrongState(_))));
    store
        .update_operation("t1", &create.id, succeeded())
        .await
        .unwrap();
    let (_, delete) = store.delete_cluster("t1", &cluster.id, None).await.unwrap();
    // Removing ends the running DELETE operation in the same step.
    store.remove_cluster("t1", &cluster.id, None).await.unwrap();

    assert!(matches!(
        store.get_cluster("t1", &cluster.id).await,
        Err(Error::NotFound(_))
    ));
    let ended = store.get_operation("t1", &delete.id).await.unwrap();
    assert_eq!(ended.state, OperationState::Succeeded);
    let ops = store
        .list_operations("t1", &cluster.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(ops.items.len(), 2);

    // Name and request id are free again: this is a new cluster.
    let (again, _) = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    assert_ne!(again.id, cluster.id);
}

#[tokio::test]
async fn hosts_register_report_and_take_assignments() {
    let store = store();
    let host = store.register_host(registration("h2", "b")).await.unwrap();
    assert_eq!(host.health, HostHealth::Unknown);
    store.register_host(registration("h1", "a")).await.unwrap();
    let mut bad = registration("h3", "c");
    bad.ports = PortRange { lo: 10, hi: 9 };
    assert!(matches!(
        store.register_host(bad).await,
        Err(Error::InvalidInput(_))
    ));

    let assignment = |node_id| HostAssignment {
        cluster_id: "cl-1".into(),
        node_id,
        role: Role::Broker,
        address: "127.0.0.1".into(),
        kafka_port: Some(9000),
        controller_port: None,
        admin_port: 9001,
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        controller_quorum_voters: vec!["1@127.0.0.1:9001".into()],
        config_fingerprint: String::new(),
    };
    let host = store
        .set_assignments("h1", vec![assignment(102), assignment(101)], Some(0))
        .await
        .unwrap();
    assert_eq!(host.generation, 1);
    assert_eq!(host.assignments[0].node_id, 101);
    // The same assignments again change nothing.
    let host = store
        .set_assignments("h1", vec![assignment(101), assignment(102)], None)
        .await
        .unwrap();
    assert_eq!(host.generation, 1);
    let err = store
        .set_assignments("h1", vec![], Some(0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::VersionMismatch { .. })
    ));

    store.set_now_ms(5_000);
    let report = NodeReport {
        cluster_id: "cl-1".into(),
        node_id: 101,
        state: NodeState::Running,
        message: String::new(),
        config_fingerprint: String::new(),
        probe: None,
        reported_at_ms: 0,
        running_since_ms: None,
    };
    let host = store
        .report_host("h1", 1, vec![report.clone()])
        .await
        .unwrap();
    assert_eq!(host.health, HostHealth::Healthy);
    assert_eq!(host.last_seen_at_ms, 5_000);
    assert_eq!(host.applied_generation, 1);
    // The store stamps the report with its own clock.
    let stamped = NodeReport {
        reported_at_ms: 5_000,
        running_since_ms: Some(5_000),
        ..report.clone()
    };
    assert_eq!(host.nodes, vec![stamped.clone()]);

    // Still RUNNING with the same config: running since the first report.
    store.set_now_ms(6_000);
    let host = store
        .report_host("h1", 1, vec![report.clone()])
        .await
        .unwrap();
    assert_eq!(host.nodes[0].reported_at_ms, 6_000);
    assert_eq!(host.nodes[0].running_since_ms, Some(5_000));
    // Another config (a restart the agent saw through): running since now.
    let restarted = NodeReport {
        config_fingerprint: "a1a1a1a1a1a1a1a1".into(),
        ..report.clone()
    };
    store.set_now_ms(7_000);
    let host = store.report_host("h1", 1, vec![restarted]).await.unwrap();
    assert_eq!(host.nodes[0].running_since_ms, Some(7_000));
    // Not RUNNING: not running since anything.
    let starting = NodeReport {
        state: NodeState::Starting,
        ..report.clone()
    };
    store.set_now_ms(8_000);
    let host = store.report_host("h1", 1, vec![starting]).await.unwrap();
    assert_eq!(host.nodes[0].running_since_ms, None);

    // Re-registering (an agent restart) keeps the assignments.
    let host = store.register_host(registration("h1", "a")).await.unwrap();
    assert_eq!(host.generation, 1);
    assert_eq!(host.assignments.len(), 2);

    let host = store
        .set_host_health("h1", HostHealth::Unreachable)
        .await
        .unwrap();
    assert_eq!(host.health, HostHealth::Unreachable);
    assert!(matches!(
        store.report_host("nope", 0, vec![]).await,
        Err(Error::NotFound(_))
    ));

    let page = store.list_hosts(PageRequest::first(1)).await.unwrap();
    assert_eq!(page.items[0].id, "h1");
    let rest = store
        .list_hosts(PageRequest {
            page_size: 1,
            page_token: page.next_page_token,
        })
        .await
        .unwrap();
    assert_eq!(rest.items[0].id, "h2");
    assert_eq!(store.get_host("h2").await.unwrap().zone, "b");
}

#[tokio::test]
async fn a_configuration_keeps_at_most_50_revisions_and_each_is_immutable() {
    let store = MemoryStore::new();
    let revision = |value: usize| crate::model::Revision {
        revision: 0,
        description: format!("partitions {value}"),
        server_properties: format!("num.partitions={value}\n"),
        properties: BTreeMap::from([("num.partitions".into(), value.to_string())]),
        created_at_ms: 0,
    };
    let created = store
        .create_configuration("t1", "tuned", vec![], revision(1))
        .await
        .unwrap();
    for value in 2..=crate::model::configuration::REVISIONS_MAX {
        let updated = store
            .update_configuration("t1", &created.id, revision(value))
            .await
            .unwrap();
        assert_eq!(updated.latest().revision, value as u64);
    }
    let err = store
        .update_configuration("t1", &created.id, revision(99))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResourceExhausted(_)), "{err:?}");
    let kept = store.get_configuration("t1", &created.id).await.unwrap();
    assert_eq!(
        kept.revisions.len(),
        crate::model::configuration::REVISIONS_MAX
    );
    assert_eq!(kept.revision(1).unwrap().properties["num.partitions"], "1");
    assert!(kept.revision(0).is_none());
    assert!(matches!(
        store.get_configuration("t2", &created.id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn the_ca_is_installed_once_and_kept_redacted() {
    use crate::model::ca::{SecretPem, StoredCa};
    let store = store();
    assert_eq!(store.get_ca().await.unwrap(), None);
    let ca = StoredCa {
        cert_pem: "CERT".into(),
        key_pem: SecretPem::new("KEY"),
    };
    store.install_ca(ca.clone()).await.unwrap();
    // The same CA again (a restart, another member holding the key) changes nothing.
    store.install_ca(ca.clone()).await.unwrap();
    let other = StoredCa {
        cert_pem: "OTHER".into(),
        key_pem: SecretPem::new("KEY2"),
    };
    assert!(matches!(
        store.install_ca(other).await,
        Err(Error::Conflict(Conflict::WrongState(_)))
    ));
    assert_eq!(store.get_ca().await.unwrap(), Some(ca));
}

#[tokio::test]
async fn a_join_token_is_spent_once_and_forgotten_after_it_expires() {
    let store = store();
    let later = 1_000 + 60_000;
    store.spend_join_token("j1", "host-a", later).await.unwrap();
    for (id, expires) in [("j1", later), ("j2", 999)] {
        assert!(
            matches!(
                store.spend_join_token(id, "host-a", expires).await,
                Err(Error::Conflict(Conflict::WrongState(_)))
            ),
            "{id}"
        );
    }
    // Past its expiry the id is forgotten, and a token that old is refused anyway.
    store.set_now_ms(later + 1);
    store
        .spend_join_token("j3", "host-b", later + 1_000)
        .await
        .unwrap();
    assert!(matches!(
        store.spend_join_token("", "host-b", later + 1_000).await,
        Err(Error::InvalidInput(_))
    ));
}

/// A revision setting `num.partitions` to `value`, with a body of `padding` extra bytes.
fn partitions_revision(value: usize, padding: usize) -> crate::model::Revision {
    crate::model::Revision {
        revision: 0,
        description: format!("partitions {value}"),
        server_properties: format!("num.partitions={value}\n#{}\n", "x".repeat(padding)),
        properties: BTreeMap::from([("num.partitions".into(), value.to_string())]),
        created_at_ms: 0,
    }
}

#[tokio::test]
async fn a_tenant_may_hold_clusters_up_to_the_limit_and_no_more() {
    use crate::model::limits::CLUSTERS_PER_TENANT_MAX;
    let store = store();
    for i in 0..CLUSTERS_PER_TENANT_MAX {
        store
            .create_cluster("t1", spec(&format!("c{i}")), Some(format!("r{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        store.tenant_usage("t1").await.unwrap().clusters,
        CLUSTERS_PER_TENANT_MAX
    );
    let before = store.state().contents();
    let err = store
        .create_cluster("t1", spec("one-more"), None)
        .await
        .unwrap_err();
    let Error::ResourceExhausted(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("CLUSTERS_PER_TENANT_MAX = 100"),
        "{message}"
    );
    assert_eq!(store.state().contents(), before, "nothing was written");
    // A retry of a create that made it is still answered with its cluster.
    let (again, _) = store
        .create_cluster("t1", spec("c0"), Some("r0".into()))
        .await
        .unwrap();
    assert_eq!(again.spec.name, "c0");
    // Other tenants have their own allowance.
    store
        .create_cluster("t2", spec("one-more"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenant_may_hold_configurations_up_to_the_limit_and_no_more() {
    use crate::model::limits::CONFIGURATIONS_PER_TENANT_MAX;
    let store = store();
    for i in 0..CONFIGURATIONS_PER_TENANT_MAX {
        store
            .create_configuration(
                "t1",
                &format!("cfg{i}"),
                vec![],
                partitions_revision(i + 1, 0),
            )
            .await
            .unwrap();
    }
    let before = store.state().contents();
    let err = store
        .create_configuration("t1", "one-more", vec![], partitions_revision(1, 0))
        .await
        .unwrap_err();
    let Error::ResourceExhausted(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("CONFIGURATIONS_PER_TENANT_MAX = 100"),
        "{message}"
    );
    assert_eq!(store.state().contents(), before, "nothing was written");
    // Deleting one makes room again.
    let first = store
        .list_configurations("t1", PageRequest::first(1))
        .await
        .unwrap()
        .items
        .remove(0);
    store.delete_configuration("t1", &first.id).await.unwrap();
    store
        .create_configuration("t1", "one-more", vec![], partitions_revision(1, 0))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_revision_over_the_limit_writes_nothing_and_names_the_limit() {
    let store = store();
    let created = store
        .create_configuration("t1", "tuned", vec![], partitions_revision(1, 0))
        .await
        .unwrap();
    for value in 2..=REVISIONS_LIMIT {
        store
            .update_configuration("t1", &created.id, partitions_revision(value, 0))
            .await
            .unwrap();
    }
    let before = store.state().contents();
    let err = store
        .update_configuration("t1", &created.id, partitions_revision(99, 0))
        .await
        .unwrap_err();
    let Error::ResourceExhausted(message) = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("REVISIONS_MAX = 50"), "{message}");
    assert_eq!(store.state().contents(), before, "nothing was written");
}

const REVISIONS_LIMIT: usize = crate::model::limits::REVISIONS_MAX;

#[tokio::test]
async fn lists_of_configurations_and_revisions_carry_no_properties() {
    let store = store();
    // Revisions of 64 KiB each: a list must not carry them.
    let created = store
        .create_configuration("t1", "big", vec![], partitions_revision(1, 64 << 10))
        .await
        .unwrap();
    for value in 2..=3 {
        store
            .update_configuration("t1", &created.id, partitions_revision(value, 64 << 10))
            .await
            .unwrap();
    }
    let listed = store
        .list_configurations("t1", PageRequest::first(0))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].latest.revision, 3);
    assert_eq!(listed.items[0].latest.description, "partitions 3");
    let encoded = serde_json::to_vec(&listed).unwrap();
    assert!(encoded.len() < 1024, "{} bytes", encoded.len());

    let revisions = store
        .list_revisions("t1", &created.id, PageRequest::first(2))
        .await
        .unwrap();
    let numbers: Vec<u64> = revisions.items.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [3, 2]);
    assert!(serde_json::to_vec(&revisions).unwrap().len() < 1024);
    let rest = store
        .list_revisions(
            "t1",
            &created.id,
            PageRequest {
                page_size: 2,
                page_token: revisions.next_page_token,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].revision, 1);
    assert_eq!(rest.next_page_token, None);

    // The body comes from one revision at a time.
    let second = store.get_revision("t1", &created.id, 2).await.unwrap();
    assert!(second.server_properties.starts_with("num.partitions=2\n"));
    assert_eq!(
        second.server_properties.len(),
        "num.partitions=2\n#\n".len() + (64 << 10)
    );
    assert!(matches!(
        store.get_revision("t1", &created.id, 4).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.get_revision("t2", &created.id, 1).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.configuration_summary("t2", &created.id).await,
        Err(Error::NotFound(_))
    ));
}

/// Runs one operation of `kind` on the cluster to its end.
async fn run_operation(store: &MemoryStore, cluster_id: &str, kind: OperationType) -> Operation {
    let (_, op) = store
        .begin_operation("t1", cluster_id, kind, None)
        .await
        .unwrap();
    store
        .update_operation("t1", &op.id, succeeded())
        .await
        .unwrap()
}

#[tokio::test]
async fn finished_operations_are_pruned_oldest_first_beyond_the_limit() {
    use crate::model::limits::FINISHED_OPERATIONS_PER_CLUSTER_MAX as MAX;
    let store = store();
    let (cluster, create) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    store
        .update_operation("t1", &create.id, succeeded())
        .await
        .unwrap();
    activate(&store, &cluster.id).await;
    // CREATE plus MAX - 1 reboots: exactly MAX finished, nothing pruned yet.
    let mut ended = vec![create.id.clone()];
    for _ in 1..MAX {
        ended.push(
            run_operation(&store, &cluster.id, OperationType::RebootBroker)
                .await
                .id,
        );
        activate(&store, &cluster.id).await;
    }
    assert_eq!(all_operations(&store, &cluster.id).await.len(), MAX);

    // A running one is never pruned, and does not count.
    let (_, running) = store
        .begin_operation("t1", &cluster.id, OperationType::RebootBroker, None)
        .await
        .unwrap();
    assert_eq!(all_operations(&store, &cluster.id).await.len(), MAX + 1);
    // When it ends, the oldest finished one (the CREATE) goes.
    store
        .update_operation("t1", &running.id, succeeded())
        .await
        .unwrap();
    ended.push(running.id.clone());
    let kept: Vec<String> = all_operations(&store, &cluster.id)
        .await
        .into_iter()
        .map(|op| op.id)
        .collect();
    assert_eq!(kept.len(), MAX);
    let expected: Vec<String> = ended[1..].iter().rev().cloned().collect();
    assert_eq!(kept, expected, "newest first, the oldest one pruned");
    assert!(matches!(
        store.get_operation("t1", &create.id).await,
        Err(Error::NotFound(_))
    ));
}

/// Puts the cluster back to ACTIVE, as a reconciler does when an operation succeeds.
async fn activate(store: &MemoryStore, cluster_id: &str) {
    let cluster = store.get_cluster("t1", cluster_id).await.unwrap();
    let mut status = cluster.status.clone();
    status.state = ClusterState::Active;
    store
        .update_cluster_status("t1", cluster_id, cluster.current_version, status)
        .await
        .unwrap();
}

/// Every operation of the cluster, newest first.
async fn all_operations(store: &MemoryStore, cluster_id: &str) -> Vec<Operation> {
    store
        .list_operations(
            "t1",
            cluster_id,
            PageRequest::first(crate::model::PAGE_SIZE_MAX),
        )
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn the_create_operation_a_request_id_points_to_is_never_pruned() {
    use crate::model::limits::FINISHED_OPERATIONS_PER_CLUSTER_MAX as MAX;
    let store = store();
    let (cluster, create) = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    store
        .update_operation("t1", &create.id, succeeded())
        .await
        .unwrap();
    for _ in 0..MAX + 5 {
        activate(&store, &cluster.id).await;
        run_operation(&store, &cluster.id, OperationType::RebootBroker).await;
    }
    // The retry still finds its operation.
    let (_, again) = store
        .create_cluster("t1", spec("orders"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!(again.id, create.id);
    let kept = all_operations(&store, &cluster.id).await;
    assert_eq!(kept.len(), MAX + 1, "MAX reboots and the CREATE");
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_nodes_on_the_hosts() {
    let store = store();
    store.register_host(registration("h1", "a")).await.unwrap();
    let (mine, _) = store
        .create_cluster("t1", spec("mine"), None)
        .await
        .unwrap();
    let (theirs, _) = store
        .create_cluster("t2", spec("theirs"), None)
        .await
        .unwrap();
    let assignment = |cluster_id: &str, node_id| HostAssignment {
        cluster_id: cluster_id.into(),
        node_id,
        role: Role::Broker,
        address: "127.0.0.1".into(),
        kafka_port: Some(9000 + node_id as u16),
        controller_port: None,
        admin_port: 9050 + node_id as u16,
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        controller_quorum_voters: vec![],
        config_fingerprint: String::new(),
    };
    let report = |cluster_id: &str, node_id| NodeReport {
        cluster_id: cluster_id.into(),
        node_id,
        state: NodeState::Running,
        message: String::new(),
        config_fingerprint: String::new(),
        probe: None,
        reported_at_ms: 0,
        running_since_ms: None,
    };
    store
        .set_assignments(
            "h1",
            vec![assignment(&mine.id, 1), assignment(&theirs.id, 2)],
            None,
        )
        .await
        .unwrap();
    store
        .report_host("h1", 1, vec![report(&mine.id, 1), report(&theirs.id, 2)])
        .await
        .unwrap();

    let fleet = store.list_hosts(PageRequest::first(0)).await.unwrap();
    assert_eq!(fleet.items[0].assignments.len(), 2);
    assert_eq!(fleet.items[0].nodes.len(), 2);

    let seen = store
        .list_hosts_for_tenant("t1", PageRequest::first(0))
        .await
        .unwrap();
    assert_eq!(seen.items.len(), 1, "every host is listed");
    let host = &seen.items[0];
    assert_eq!(host.id, "h1");
    let clusters: Vec<&str> = host
        .assignments
        .iter()
        .map(|a| a.cluster_id.as_str())
        .collect();
    assert_eq!(clusters, [mine.id.as_str()]);
    let reported: Vec<&str> = host.nodes.iter().map(|n| n.cluster_id.as_str()).collect();
    assert_eq!(reported, [mine.id.as_str()]);

    // A tenant with no clusters sees the hosts and none of the nodes.
    let stranger = store
        .list_hosts_for_tenant("t3", PageRequest::first(0))
        .await
        .unwrap();
    assert!(stranger.items[0].assignments.is_empty());
    assert!(stranger.items[0].nodes.is_empty());
    assert!(stranger.items[0].releasing.is_empty());
}

#[tokio::test]
async fn operations_of_removed_clusters_are_kept_up_to_the_limit_per_tenant() {
    use crate::model::limits::REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX as MAX;
    let store = store();
    // Each cycle leaves two operations behind: the CREATE and the DELETE.
    let cycles = MAX / 2 + 5;
    let mut removed = Vec::new();
    for i in 0..cycles {
        let (cluster, create) = store
            .create_cluster("t1", spec(&format!("c{i}")), None)
            .await
            .unwrap();
        store
            .update_operation("t1", &create.id, succeeded())
            .await
            .unwrap();
        store
            .begin_operation("t1", &cluster.id, OperationType::Delete, None)
            .await
            .unwrap();
        store.remove_cluster("t1", &cluster.id, None).await.unwrap();
        removed.push(cluster.id);
    }
    let kept: Vec<usize> = {
        let mut kept = Vec::new();
        for id in &removed {
            kept.push(
                match store.list_operations("t1", id, PageRequest::first(0)).await {
                    Ok(page) => page.items.len(),
                    Err(Error::NotFound(_)) => 0,
                    Err(err) => panic!("{err:?}"),
                },
            );
        }
        kept
    };
    assert_eq!(kept.iter().sum::<usize>(), MAX);
    // The oldest clusters' operations went first; the newest keep both of theirs.
    assert_eq!(kept[..5], [0; 5]);
    assert!(kept[5..].iter().all(|&n| n == 2), "{kept:?}");
    // Another tenant's are untouched by t1's churn.
    let (other, _) = store.create_cluster("t2", spec("x"), None).await.unwrap();
    assert_eq!(
        store
            .list_operations("t2", &other.id, PageRequest::first(0))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}
