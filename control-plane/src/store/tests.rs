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
    assert!(
        matches!(err, Error::Conflict(Conflict::WrongState(_))),
        "{err:?}"
    );
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
