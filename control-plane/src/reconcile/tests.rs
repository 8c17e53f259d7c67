//! The reconciler over a [`MemoryStore`], with the test playing the agents: it reads each
//! host's assignments and reports node states, as `ferry agent` does, on a pinned clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::model::{
    Cluster, ClusterState, HostAssignment, HostCapacity, HostRegistration, NodeProbe, NodeReport,
    OperationState, OperationType, ReplicationHealth, StepState,
};
use crate::placement::{PortRange, Role};
use crate::spec::ClusterSpec;
use crate::store::MemoryStore;

const T0: TimestampMs = 1_000_000;

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

/// A store with one host per zone (h-a, h-b, h-c), each with room for 4 nodes.
async fn store_with_hosts() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store.set_now_ms(T0);
    for zone in ["a", "b", "c"] {
        store
            .register_host(HostRegistration {
                id: format!("h-{zone}"),
                zone: zone.into(),
                address: format!("10.0.0.{}", zone.as_bytes()[0] - b'a' + 1),
                ports: PortRange {
                    lo: 40000,
                    hi: 40099,
                },
                capacity: HostCapacity {
                    max_nodes: 4,
                    storage_bytes: 100 << 30,
                },
            })
            .await
            .unwrap();
    }
    store
}

fn reconciler(store: &Arc<MemoryStore>) -> Reconciler<MemoryStore, AlwaysLeader> {
    Reconciler::new(
        Arc::clone(store),
        AlwaysLeader,
        ReconcilerOptions::default(),
    )
}

/// Passes until nothing changes (bounded).
async fn settle(reconciler: &mut Reconciler<MemoryStore, AlwaysLeader>) {
    for _ in 0..20 {
        if !reconciler.pass().await.unwrap() {
            return;
        }
    }
    panic!("the reconciler kept changing things for 20 passes");
}

/// Every host's agent reports each assigned node in `state` (as decided by `state_of`).
async fn agents_report(store: &MemoryStore, state_of: impl Fn(&HostAssignment) -> NodeState) {
    for host in store
        .list_hosts(PageRequest::default())
        .await
        .unwrap()
        .items
    {
        let nodes = host
            .assignments
            .iter()
            .map(|a| NodeReport {
                cluster_id: a.cluster_id.clone(),
                node_id: a.node_id,
                state: state_of(a),
                message: match state_of(a) {
                    NodeState::Unhealthy => "exited with status 1: port 40002 in use".into(),
                    _ => String::new(),
                },
                // As an agent does: the config of the assignment the process started with.
                config_fingerprint: a.config_fingerprint.clone(),
                probe: None,
                reported_at_ms: 0,
                running_since_ms: None,
            })
            .collect();
        store
            .report_host(&host.id, host.generation, nodes)
            .await
            .unwrap();
    }
}

/// Places and assigns what is pending, then has every agent report every node RUNNING and
/// lets the reconciler act on it.
async fn run_until_every_node_runs(
    store: &MemoryStore,
    reconciler: &mut Reconciler<MemoryStore, AlwaysLeader>,
) {
    settle(reconciler).await;
    agents_report(store, |_| NodeState::Running).await;
    settle(reconciler).await;
}

async fn cluster(store: &MemoryStore, id: &str) -> Cluster {
    store.get_cluster("t1", id).await.unwrap()
}

#[tokio::test]
async fn a_created_cluster_becomes_active_once_every_node_runs() {
    let store = store_with_hosts().await;
    let (created, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut reconciler = reconciler(&store);
    settle(&mut reconciler).await;

    // Placed one controller and one broker per zone, and told every host.
    let placed = cluster(&store, &created.id).await;
    assert_eq!(placed.status.state, ClusterState::Creating);
    assert_eq!(placed.status.placement.len(), 6);
    for host in store
        .list_hosts(PageRequest::default())
        .await
        .unwrap()
        .items
    {
        let roles: Vec<Role> = host.assignments.iter().map(|a| a.role).collect();
        assert_eq!(roles, vec![Role::Controller, Role::Broker], "{}", host.id);
        let controller = &host.assignments[0];
        assert_eq!(controller.controller_quorum_voters.len(), 3);
        assert_eq!(controller.broker_config["num.partitions"], "3");
    }
    let running = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(running.state, OperationState::Running);
    let states: Vec<StepState> = running.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::Done,
            StepState::Done,
            StepState::Running,
            StepState::Running,
            StepState::Pending
        ]
    );
    assert_eq!(running.progress_percent, 20);

    // Controllers up first: the controllers step is done, the brokers still start.
    agents_report(&store, |a| match a.role {
        Role::Controller => NodeState::Running,
        Role::Broker => NodeState::Starting,
    })
    .await;
    settle(&mut reconciler).await;
    let halfway = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(halfway.steps[2].state, StepState::Done);
    assert_eq!(halfway.steps[3].message, "0 of 3 brokers ready");
    assert_eq!(halfway.progress_percent, 55);
    assert_eq!(
        cluster(&store, &created.id).await.status.state,
        ClusterState::Creating
    );

    agents_report(&store, |_| NodeState::Running).await;
    settle(&mut reconciler).await;
    let active = cluster(&store, &created.id).await;
    assert_eq!(active.status.state, ClusterState::Active);
    assert_eq!(active.active_operation, None);
    assert_eq!(
        active.bootstrap_brokers(),
        "10.0.0.1:40002,10.0.0.2:40002,10.0.0.3:40002"
    );
    let done = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded);
    assert_eq!(done.progress_percent, 100);
    assert!(done.steps.iter().all(|s| s.state == StepState::Done));
    assert!(done.steps.iter().all(|s| s.ended_at_ms.is_some()));
}

#[tokio::test]
async fn a_new_reconciler_resumes_an_interrupted_creation() {
    let store = store_with_hosts().await;
    let (created, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    // The first reconciler plans and writes assignments, then "crashes".
    settle(&mut reconciler(&store)).await;
    let before = cluster(&store, &created.id).await;

    agents_report(&store, |_| NodeState::Running).await;
    settle(&mut reconciler(&store)).await;

    let after = cluster(&store, &created.id).await;
    assert_eq!(after.status.state, ClusterState::Active);
    assert_eq!(
        after.status.placement, before.status.placement,
        "not placed twice"
    );
    let done = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded);
}

/// A fixed answer to "do I lead the store?" that ends the run after `ticks` answers: the
/// reconciler asks once per tick, so a run lasts a number of ticks, not a wall-clock time.
struct FixedLeadership {
    /// The answer.
    leads: bool,
    /// Answers given so far.
    asked: std::sync::atomic::AtomicUsize,
    /// Answers after which `done` is notified.
    ticks: usize,
    /// The run's shutdown signal.
    done: Arc<tokio::sync::Notify>,
}

impl Leadership for FixedLeadership {
    async fn is_leader(&self) -> bool {
        let asked = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if asked >= self.ticks {
            self.done.notify_one();
        }
        self.leads
    }
}

/// Creates a cluster and runs a reconciler that `leads` (or not) for 5 ticks; returns how many
/// nodes it placed.
async fn nodes_placed_in_a_run(leads: bool) -> usize {
    let store = store_with_hosts().await;
    let (created, _) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let options = ReconcilerOptions {
        tick: Duration::from_millis(1),
        ..ReconcilerOptions::default()
    };
    let done = Arc::new(tokio::sync::Notify::new());
    let leadership = FixedLeadership {
        leads,
        asked: Default::default(),
        ticks: 5,
        done: Arc::clone(&done),
    };
    Reconciler::new(Arc::clone(&store), leadership, options)
        .run(done.notified())
        .await;
    cluster(&store, &created.id).await.status.placement.len()
}

#[tokio::test]
async fn a_follower_control_plane_does_not_reconcile() {
    assert_eq!(
        nodes_placed_in_a_run(false).await,
        0,
        "a follower places nothing"
    );
    // Positive control: the same run, leading, places every node; so the follower's empty
    // placement comes from not leading, not from a run too short or a cluster not placeable.
    assert_eq!(
        nodes_placed_in_a_run(true).await,
        6,
        "3 brokers and 3 controllers"
    );
}

#[tokio::test]
async fn a_node_unhealthy_past_the_grace_fails_the_creation_naming_it() {
    let store = store_with_hosts().await;
    let (created, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut reconciler = reconciler(&store);
    settle(&mut reconciler).await;
    agents_report(&store, |a| {
        if a.node_id == 102 {
            NodeState::Unhealthy
        } else {
            NodeState::Running
        }
    })
    .await;

    // Within the grace, the agent may still bring it up.
    settle(&mut reconciler).await;
    assert_eq!(
        cluster(&store, &created.id).await.status.state,
        ClusterState::Creating
    );

    store.set_now_ms(T0 + Settings::default().unhealthy_grace_ms);
    settle(&mut reconciler).await;
    let failed = cluster(&store, &created.id).await;
    assert_eq!(failed.status.state, ClusterState::Failed);
    assert_eq!(failed.status.state_info.code, "NODE_START_FAILED");
    assert_eq!(
        failed.status.state_info.message,
        "broker 102 on host h-b (10.0.0.2:40002) could not start: exited with status 1: port \
         40002 in use"
    );
    let op = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed);
    assert_eq!(op.error.unwrap().code, "NODE_START_FAILED");
    assert_eq!(op.steps[3].state, StepState::Failed);
}

#[tokio::test]
async fn nodes_not_ready_in_time_fail_the_creation_with_each_ones_state() {
    let store = store_with_hosts().await;
    let (created, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut reconciler = reconciler(&store);
    settle(&mut reconciler).await;
    agents_report(&store, |a| match a.role {
        Role::Controller => NodeState::Running,
        Role::Broker => NodeState::Starting,
    })
    .await;
    store.set_now_ms(T0 + Settings::default().node_timeout_ms + 1);
    settle(&mut reconciler).await;

    let failed = cluster(&store, &created.id).await;
    assert_eq!(failed.status.state_info.code, "NODE_START_TIMEOUT");
    assert!(
        failed
            .status
            .state_info
            .message
            .contains("broker 101 on host h-a (10.0.0.1:40002) is Starting"),
        "{}",
        failed.status.state_info.message
    );
    let op = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed);
}

#[tokio::test]
async fn a_creation_that_no_longer_fits_fails_with_insufficient_capacity() {
    let store = store_with_hosts().await;
    let (created, op) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    // Zone c's only host went silent before the reconciler placed anything.
    store.set_now_ms(T0 + 60_000);
    for zone in ["a", "b"] {
        store
            .report_host(&format!("h-{zone}"), 0, vec![])
            .await
            .unwrap();
    }
    settle(&mut reconciler(&store)).await;

    let host = store.get_host("h-c").await.unwrap();
    assert_eq!(host.health, HostHealth::Unreachable);
    let failed = cluster(&store, &created.id).await;
    assert_eq!(failed.status.state, ClusterState::Failed);
    assert_eq!(failed.status.state_info.code, "INSUFFICIENT_CAPACITY");
    assert_eq!(
        failed.status.state_info.message,
        "no registered host is in zone c"
    );
    let op = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(op.error.unwrap().message, "no registered host is in zone c");
}

#[tokio::test]
async fn deleting_stops_every_node_waits_for_the_agents_and_forgets_the_cluster() {
    let store = store_with_hosts().await;
    let (created, _) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let (other, _) = store
        .create_cluster("t1", spec("payments"), None)
        .await
        .unwrap();
    let mut reconciler = reconciler(&store);
    run_until_every_node_runs(&store, &mut reconciler).await;
    assert_eq!(
        cluster(&store, &created.id).await.status.state,
        ClusterState::Active
    );

    let (_, delete) = store.delete_cluster("t1", &created.id, None).await.unwrap();
    settle(&mut reconciler).await;
    // Brokers go first: the controllers stay assigned while any broker is still reported, so
    // the brokers' controlled shutdown finds them.
    for host in store
        .list_hosts(PageRequest::default())
        .await
        .unwrap()
        .items
    {
        let roles: Vec<(bool, Role)> = host
            .assignments
            .iter()
            .map(|a| (a.cluster_id == created.id, a.role))
            .collect();
        assert_eq!(
            roles,
            vec![
                (true, Role::Controller),
                (false, Role::Controller),
                (false, Role::Broker)
            ],
            "{}",
            host.id
        );
    }
    let stopping = store.get_operation("t1", &delete.id).await.unwrap();
    assert_eq!(
        stopping.steps[0].message,
        "waiting for the brokers to stop before the controllers"
    );
    agents_report(&store, |_| NodeState::Running).await;
    settle(&mut reconciler).await;
    // Then the controllers: the cluster's nodes are gone from every host's assignments; the
    // other cluster's stay.
    for host in store
        .list_hosts(PageRequest::default())
        .await
        .unwrap()
        .items
    {
        assert!(host.assignments.iter().all(|a| a.cluster_id == other.id));
        assert_eq!(host.assignments.len(), 2);
    }
    // Until the agents stop the nodes, the cluster stays, DELETING.
    let waiting = store.get_operation("t1", &delete.id).await.unwrap();
    assert_eq!(waiting.steps[1].state, StepState::Running);
    assert_eq!(
        cluster(&store, &created.id).await.status.state,
        ClusterState::Deleting
    );

    // The agents apply the new assignments: they report only what they still run.
    agents_report(&store, |_| NodeState::Running).await;
    settle(&mut reconciler).await;
    assert!(matches!(
        store.get_cluster("t1", &created.id).await,
        Err(Error::NotFound(_))
    ));
    let done = store.get_operation("t1", &delete.id).await.unwrap();
    assert_eq!(done.kind, OperationType::Delete);
    assert_eq!(done.state, OperationState::Succeeded);
    assert!(done.steps.iter().all(|s| s.state == StepState::Done));
    assert_eq!(
        cluster(&store, &other.id).await.status.state,
        ClusterState::Active
    );
}

#[tokio::test]
async fn deleting_a_cluster_that_never_placed_anything_finishes_at_once() {
    let store = store_with_hosts().await;
    let mut unplaceable = spec("orders");
    unplaceable.zones = vec!["a".into(), "b".into(), "z".into()];
    let (created, _) = store.create_cluster("t1", unplaceable, None).await.unwrap();
    let mut reconciler = reconciler(&store);
    settle(&mut reconciler).await;
    assert_eq!(
        cluster(&store, &created.id).await.status.state,
        ClusterState::Failed
    );

    let (_, delete) = store.delete_cluster("t1", &created.id, None).await.unwrap();
    settle(&mut reconciler).await;
    assert!(store.get_cluster("t1", &created.id).await.is_err());
    assert_eq!(
        store.get_operation("t1", &delete.id).await.unwrap().state,
        OperationState::Succeeded
    );
}

#[test]
fn only_hosts_silent_past_the_timeout_and_not_yet_unreachable_are_reported() {
    let host = |id: &str, last_seen_at_ms, health| Host {
        id: id.into(),
        zone: "a".into(),
        address: "10.0.0.1".into(),
        ports: PortRange { lo: 1, hi: 2 },
        capacity: HostCapacity {
            max_nodes: 1,
            storage_bytes: 1,
        },
        health,
        registered_at_ms: 0,
        last_seen_at_ms,
        assignments: vec![],
        releasing: vec![],
        generation: 0,
        applied_generation: 0,
        nodes: vec![],
    };
    let hosts = [
        host("fresh", 95_000, HostHealth::Healthy),
        host("silent", 80_000, HostHealth::Healthy),
        host("never-reported", 80_000, HostHealth::Unknown),
        host("already", 0, HostHealth::Unreachable),
    ];
    assert_eq!(
        silent_hosts(&hosts, 100_000, 15_000),
        vec!["silent".to_string(), "never-reported".to_string()]
    );
}

#[tokio::test]
async fn adding_brokers_places_only_the_new_ones_and_returns_to_active_once_they_run() {
    let store = store_with_hosts().await;
    let (created, _) = store
        .create_cluster("t1", spec("orders"), None)
        .await
        .unwrap();
    let mut reconciler = reconciler(&store);
    run_until_every_node_runs(&store, &mut reconciler).await;
    let before = cluster(&store, &created.id).await;
    assert_eq!(before.status.state, ClusterState::Active);

    let mut bigger = before.spec.clone();
    bigger.broker_count = 6;
    let (_, op) = store
        .update_spec(
            "t1",
            &created.id,
            OperationType::UpdateBrokerCount,
            bigger,
            None,
        )
        .await
        .unwrap();
    settle(&mut reconciler).await;
    let updating = cluster(&store, &created.id).await;
    assert_eq!(updating.status.state, ClusterState::Updating);
    assert_eq!(updating.status.placement.len(), 9);
    // Every node placed before keeps its host and ports.
    for node in &before.status.placement {
        assert!(updating.status.placement.contains(node), "{node:?} moved");
    }
    // The new brokers are still starting: the operation waits for them.
    agents_report(&store, |a| {
        if a.node_id > 103 {
            NodeState::Starting
        } else {
            NodeState::Running
        }
    })
    .await;
    settle(&mut reconciler).await;
    let waiting = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(waiting.steps[2].message, "3 of 6 brokers ready");

    agents_report(&store, |_| NodeState::Running).await;
    settle(&mut reconciler).await;
    let after = cluster(&store, &created.id).await;
    assert_eq!(after.status.state, ClusterState::Active);
    assert_eq!(after.bootstrap_brokers().split(',').count(), 6);
    let done = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded);
    assert_eq!(done.kind, OperationType::UpdateBrokerCount);
}

#[tokio::test]
async fn a_deleted_clusters_ports_stay_taken_until_its_agents_stop_reporting_its_nodes() {
    let store = store_with_hosts().await;
    let (old, _) = store.create_cluster("t1", spec("old"), None).await.unwrap();
    let mut reconciler = reconciler(&store);
    run_until_every_node_runs(&store, &mut reconciler).await;
    let old_ports: Vec<u16> = cluster(&store, &old.id)
        .await
        .status
        .placement
        .iter()
        .flat_map(|a| a.ports().collect::<Vec<_>>())
        .collect();

    // Deleted, but its agents have not stopped the nodes yet (they still report them).
    store.delete_cluster("t1", &old.id, None).await.unwrap();
    settle(&mut reconciler).await;
    settle(&mut reconciler).await;
    let (new, _) = store.create_cluster("t1", spec("new"), None).await.unwrap();
    settle(&mut reconciler).await;
    let new_ports: Vec<u16> = cluster(&store, &new.id)
        .await
        .status
        .placement
        .iter()
        .flat_map(|a| a.ports().collect::<Vec<_>>())
        .collect();
    for port in &new_ports {
        assert!(
            !old_ports.contains(port),
            "port {port} given while still held"
        );
    }

    // Once the agents stop reporting the old nodes, their ports are free again.
    let host = store.get_host("h-a").await.unwrap();
    assert!(!host.releasing.is_empty());
    store
        .report_host(
            "h-a",
            host.generation,
            host.nodes
                .iter()
                .filter(|n| n.cluster_id != old.id)
                .cloned()
                .collect(),
        )
        .await
        .unwrap();
    assert!(store.get_host("h-a").await.unwrap().releasing.is_empty());
}

// ---------------------------------------------------------------------------------------------
// UPDATE_CONFIGURATION: rolling restarts
// ---------------------------------------------------------------------------------------------

/// A configuration of tenant t1 with `first` as revision 1 and `second` as revision 2.
async fn configuration_with_two_revisions(
    store: &MemoryStore,
    first: &[(&str, &str)],
    second: &[(&str, &str)],
) -> String {
    let revision = |pairs: &[(&str, &str)]| crate::model::Revision {
        revision: 0,
        description: String::new(),
        server_properties: String::new(),
        properties: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created_at_ms: 0,
    };
    let created = store
        .create_configuration("t1", "tuned", Vec::new(), revision(first))
        .await
        .unwrap();
    store
        .update_configuration("t1", &created.id, revision(second))
        .await
        .unwrap();
    created.id
}

/// Partitions in the simulated cluster; each broker leads or follows every one of them.
const PARTITIONS: u32 = 30;

/// The agents as `ferry agent` behaves: each node runs the config it was last started with;
/// a node whose assignment carries another fingerprint is restarted with it. Each report
/// comes a second after the previous one (the agents' clock is the store's), and every
/// RUNNING broker forwards the cluster's replication as the brokers' metadata images see it:
/// a broker that came back and has not caught up yet keeps every partition under-replicated.
struct Agents {
    /// The fingerprint each node's process runs.
    running: BTreeMap<NodeId, String>,
    /// Brokers back from a restart that have not rejoined the ISRs yet.
    lagging: Vec<NodeId>,
    /// The store's clock, as the last report set it.
    now_ms: TimestampMs,
}

impl Agents {
    /// Every assignment of the cluster, by node id.
    async fn assignments(store: &MemoryStore) -> BTreeMap<NodeId, HostAssignment> {
        store
            .list_hosts(PageRequest::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .flat_map(|h| h.assignments)
            .map(|a| (a.node_id, a))
            .collect()
    }

    /// The cluster's replication, as every broker's image shows it.
    fn replication(&self) -> ReplicationHealth {
        ReplicationHealth {
            partitions: PARTITIONS,
            under_replicated: if self.lagging.is_empty() {
                0
            } else {
                PARTITIONS
            },
            offline: 0,
        }
    }

    /// Moves the clock on by `ms` without any report.
    fn wait(&mut self, store: &MemoryStore, ms: i64) {
        self.now_ms += ms;
        store.set_now_ms(self.now_ms);
    }

    /// A second later, every host reports every node: `restarting` ones STARTING (or
    /// `restart_state`) with the config they are restarting with, the rest RUNNING with what
    /// they run.
    async fn report(&mut self, store: &MemoryStore, restarting: &[NodeId], state: NodeState) {
        self.report_from(store, &["h-a", "h-b", "h-c"], restarting, state)
            .await;
    }

    /// [`Agents::report`], from the agents of `hosts` only.
    async fn report_from(
        &mut self,
        store: &MemoryStore,
        hosts: &[&str],
        restarting: &[NodeId],
        restart_state: NodeState,
    ) {
        self.wait(store, 1_000);
        for host in store
            .list_hosts(PageRequest::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|h| hosts.contains(&h.id.as_str()))
        {
            let nodes = host
                .assignments
                .iter()
                .map(|a| {
                    let restarting = restarting.contains(&a.node_id);
                    let probe = (!restarting).then(|| NodeProbe {
                        broker_epoch: if a.role == Role::Broker { 7 } else { -1 },
                        quorum_leader_id: 1,
                        replication: (a.role == Role::Broker).then(|| self.replication()),
                        ..Default::default()
                    });
                    NodeReport {
                        cluster_id: a.cluster_id.clone(),
                        node_id: a.node_id,
                        state: if restarting {
                            restart_state
                        } else {
                            NodeState::Running
                        },
                        message: if restart_state == NodeState::Unhealthy && restarting {
                            "exited with status 1: bad config".into()
                        } else {
                            String::new()
                        },
                        config_fingerprint: if restarting {
                            a.config_fingerprint.clone()
                        } else {
                            self.running[&a.node_id].clone()
                        },
                        probe,
                        reported_at_ms: 0,
                        running_since_ms: None,
                    }
                })
                .collect();
            store
                .report_host(&host.id, host.generation, nodes)
                .await
                .unwrap();
        }
    }

    /// `node` runs the config its assignment asks for; a broker comes back out of the ISRs.
    async fn came_back(&mut self, store: &MemoryStore, node: NodeId) {
        let assignment = Self::assignments(store).await[&node].clone();
        self.running.insert(node, assignment.config_fingerprint);
        if assignment.role == Role::Broker {
            self.lagging.push(node);
        }
    }

    /// The nodes whose assignment asks for a config other than the one they run.
    async fn outdated(&self, store: &MemoryStore) -> Vec<NodeId> {
        Self::assignments(store)
            .await
            .values()
            .filter(|a| self.running[&a.node_id] != a.config_fingerprint)
            .map(|a| a.node_id)
            .collect()
    }
}

/// Creates an ACTIVE cluster on revision 1 of a configuration, and starts applying revision 2.
async fn rolling_update(
    first: &[(&str, &str)],
    second: &[(&str, &str)],
) -> (
    Arc<MemoryStore>,
    Reconciler<MemoryStore, AlwaysLeader>,
    Agents,
    Cluster,
    crate::model::Operation,
) {
    let store = store_with_hosts().await;
    let configuration = configuration_with_two_revisions(&store, first, second).await;
    let mut with = spec("orders");
    with.configuration = Some(crate::spec::ConfigurationRef {
        id: configuration.clone(),
        revision: 1,
    });
    let (created, _) = store.create_cluster("t1", with, None).await.unwrap();
    let mut reconciler = reconciler(&store);
    run_until_every_node_runs(&store, &mut reconciler).await;
    let active = cluster(&store, &created.id).await;
    assert_eq!(active.status.state, ClusterState::Active);
    assert_eq!(active.status.configuration, active.spec.configuration);
    let agents = Agents {
        running: Agents::assignments(&store)
            .await
            .into_iter()
            .map(|(id, a)| (id, a.config_fingerprint))
            .collect(),
        lagging: Vec::new(),
        now_ms: T0,
    };
    let mut next = active.spec.clone();
    next.configuration = Some(crate::spec::ConfigurationRef {
        id: configuration,
        revision: 2,
    });
    let (cluster, op) = store
        .update_spec(
            "t1",
            &created.id,
            OperationType::UpdateConfiguration,
            next,
            Some(active.current_version),
        )
        .await
        .unwrap();
    assert_eq!(cluster.status.state, ClusterState::Updating);
    (store, reconciler, agents, cluster, op)
}

/// Drives the roll with well-behaved agents, checking at every point that at most one node is
/// restarting, and that none is restarted while a restarted broker has not rejoined the ISRs;
/// returns the nodes in the order they were restarted.
async fn roll_to_the_end(
    store: &MemoryStore,
    reconciler: &mut Reconciler<MemoryStore, AlwaysLeader>,
    agents: &mut Agents,
    cluster_id: &str,
) -> Vec<NodeId> {
    let mut restarted = Vec::new();
    for _ in 0..40 {
        settle(reconciler).await;
        let outdated = agents.outdated(store).await;
        assert!(
            outdated.len() <= 1,
            "more than one node restarts: {outdated:?}"
        );
        let Some(&node) = outdated.first() else {
            if cluster(store, cluster_id).await.status.state == ClusterState::Active {
                return restarted;
            }
            agents.report(store, &[], NodeState::Running).await;
            continue;
        };
        // The agent restarts it; while it starts, nothing else may be restarted.
        restarted.push(node);
        agents.report(store, &[node], NodeState::Starting).await;
        settle(reconciler).await;
        assert_eq!(
            agents.outdated(store).await,
            [node],
            "restarted before {node} ran"
        );
        // Back, but a broker still catches up: nothing else may be restarted either.
        agents.came_back(store, node).await;
        for _ in 0..3 {
            agents.report(store, &[], NodeState::Running).await;
            settle(reconciler).await;
            if !agents.lagging.is_empty() {
                assert_eq!(
                    agents.outdated(store).await,
                    Vec::<NodeId>::new(),
                    "restarted while broker {node} was out of the ISRs"
                );
            }
        }
        agents.lagging.clear();
        agents.report(store, &[], NodeState::Running).await;
    }
    panic!("the roll did not finish");
}

#[tokio::test]
async fn a_broker_only_change_restarts_brokers_one_at_a_time_and_leaves_controllers() {
    let (store, mut reconciler, mut agents, cluster_before, op) = rolling_update(
        &[("auto.create.topics.enable", "false")],
        &[("auto.create.topics.enable", "true")],
    )
    .await;
    let controllers_before: Vec<HostAssignment> = Agents::assignments(&store)
        .await
        .into_values()
        .filter(|a| a.role == Role::Controller)
        .collect();
    let order = roll_to_the_end(&store, &mut reconciler, &mut agents, &cluster_before.id).await;
    assert_eq!(order, [101, 102, 103]);

    let after = Agents::assignments(&store).await;
    for controller in &controllers_before {
        assert_eq!(
            &after[&controller.node_id], controller,
            "controllers untouched"
        );
        assert!(
            !controller
                .broker_config
                .contains_key("auto.create.topics.enable")
        );
    }
    for broker in after.values().filter(|a| a.role == Role::Broker) {
        assert_eq!(broker.broker_config["auto.create.topics.enable"], "true");
        // The spec's broker_config stays on top of the configuration.
        assert_eq!(broker.broker_config["num.partitions"], "3");
    }
    let done = cluster(&store, &cluster_before.id).await;
    assert_eq!(done.status.state, ClusterState::Active);
    assert_eq!(done.status.configuration.as_ref().unwrap().revision, 2);
    let op = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Succeeded);
    assert_eq!(op.steps[0].state, StepState::Done);
    assert_eq!(
        op.steps[0].message,
        "3 controllers run the new configuration"
    );
}

#[tokio::test]
async fn a_change_that_concerns_controllers_rolls_them_first() {
    let (store, mut reconciler, mut agents, cluster_before, _) = rolling_update(
        &[("min.insync.replicas", "1")],
        &[("min.insync.replicas", "2")],
    )
    .await;
    let order = roll_to_the_end(&store, &mut reconciler, &mut agents, &cluster_before.id).await;
    assert_eq!(order, [1, 2, 3, 101, 102, 103]);
}

#[tokio::test]
async fn a_property_the_spec_overrides_restarts_nothing() {
    // The spec's broker_config sets num.partitions=3, above any configuration.
    let (store, mut reconciler, mut agents, cluster_before, _) =
        rolling_update(&[("num.partitions", "5")], &[("num.partitions", "7")]).await;
    let order = roll_to_the_end(&store, &mut reconciler, &mut agents, &cluster_before.id).await;
    assert_eq!(order, Vec::<NodeId>::new());
    let done = cluster(&store, &cluster_before.id).await;
    assert_eq!(done.status.configuration.as_ref().unwrap().revision, 2);
}

#[tokio::test]
async fn a_new_reconciler_resumes_the_roll_with_the_node_in_flight() {
    let (store, mut reconciler, mut agents, cluster_before, _) = rolling_update(
        &[("auto.create.topics.enable", "false")],
        &[("auto.create.topics.enable", "true")],
    )
    .await;
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, [101]);
    agents.report(&store, &[101], NodeState::Starting).await;
    let generations: Vec<u64> = store
        .list_hosts(PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|h| h.generation)
        .collect();

    // The control plane restarts: a new reconciler with nothing in memory changes nothing
    // while broker 101 is still starting.
    let mut reconciler = self::reconciler(&store);
    settle(&mut reconciler).await;
    let after: Vec<u64> = store
        .list_hosts(PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|h| h.generation)
        .collect();
    assert_eq!(after, generations, "nothing rewritten while 101 restarts");

    agents.came_back(&store, 101).await;
    agents.lagging.clear();
    agents.report(&store, &[], NodeState::Running).await;
    let rest = roll_to_the_end(&store, &mut reconciler, &mut agents, &cluster_before.id).await;
    assert_eq!(rest, [102, 103]);
}

#[tokio::test]
async fn a_node_that_does_not_come_back_fails_the_roll_naming_it() {
    let (store, mut reconciler, mut agents, cluster_before, op) = rolling_update(
        &[("auto.create.topics.enable", "false")],
        &[("auto.create.topics.enable", "true")],
    )
    .await;
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, [101]);
    agents.report(&store, &[101], NodeState::Unhealthy).await;
    settle(&mut reconciler).await;
    assert_eq!(
        cluster(&store, &cluster_before.id).await.status.state,
        ClusterState::Updating,
        "within the grace"
    );
    agents.wait(&store, Settings::default().unhealthy_grace_ms);
    settle(&mut reconciler).await;
    let failed = cluster(&store, &cluster_before.id).await;
    assert_eq!(failed.status.state, ClusterState::Failed);
    assert_eq!(failed.status.state_info.code, "NODE_RESTART_FAILED");
    assert_eq!(
        failed.status.state_info.message,
        "broker 101 on host h-a (10.0.0.1:40002) did not come back with the new configuration: \
         exited with status 1: bad config"
    );
    // The other brokers were never touched, and the status keeps the revision they run.
    assert_eq!(agents.outdated(&store).await, [101]);
    assert_eq!(failed.status.configuration.as_ref().unwrap().revision, 1);
    let op = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed);
    assert_eq!(op.error.unwrap().code, "NODE_RESTART_FAILED");
    assert_eq!(op.steps[1].state, StepState::Failed);

    // The FAILED cluster can be rolled back to revision 1.
    let mut back = failed.spec.clone();
    back.configuration.as_mut().unwrap().revision = 1;
    store
        .update_spec(
            "t1",
            &failed.id,
            OperationType::UpdateConfiguration,
            back,
            None,
        )
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// A rolling restart waits for the cluster to be fully replicated
// ---------------------------------------------------------------------------------------------

/// Starts a broker-only roll and brings broker 101 back with the new config, out of the ISRs.
async fn broker_101_back_and_lagging() -> (
    Arc<MemoryStore>,
    Reconciler<MemoryStore, AlwaysLeader>,
    Agents,
    Cluster,
    crate::model::Operation,
) {
    let (store, mut reconciler, mut agents, cluster, op) = rolling_update(
        &[("auto.create.topics.enable", "false")],
        &[("auto.create.topics.enable", "true")],
    )
    .await;
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, [101]);
    agents.report(&store, &[101], NodeState::Starting).await;
    settle(&mut reconciler).await;
    agents.came_back(&store, 101).await;
    (store, reconciler, agents, cluster, op)
}

#[tokio::test]
async fn the_next_broker_waits_while_partitions_are_under_replicated() {
    let (store, mut reconciler, mut agents, _, op) = broker_101_back_and_lagging().await;
    for _ in 0..5 {
        agents.report(&store, &[], NodeState::Running).await;
        settle(&mut reconciler).await;
        assert_eq!(
            agents.outdated(&store).await,
            Vec::<NodeId>::new(),
            "102 is not restarted while 101 is out of the ISRs"
        );
    }
    let waiting = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(
        waiting.steps[1].message,
        "waiting for the cluster to be fully replicated before restarting broker 102: \
         30 under-replicated and 0 offline of 30 partitions (broker 101's report)"
    );
}

#[tokio::test]
async fn the_next_broker_is_restarted_once_every_broker_reports_the_cluster_in_sync() {
    let (store, mut reconciler, mut agents, _, _) = broker_101_back_and_lagging().await;
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, Vec::<NodeId>::new());

    agents.lagging.clear();
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, [102]);
}

#[tokio::test]
async fn an_offline_partition_holds_the_roll_too() {
    let (store, mut reconciler, mut agents, _, op) = broker_101_back_and_lagging().await;
    agents.lagging.clear();
    agents.report(&store, &[], NodeState::Running).await;
    // Host h-c's broker sees a partition without a leader (its image is the cluster's).
    let mut host = store.get_host("h-c").await.unwrap();
    for node in &mut host.nodes {
        if let Some(replication) = node.probe.as_mut().and_then(|p| p.replication.as_mut()) {
            replication.offline = 1;
        }
    }
    agents.wait(&store, 1);
    store
        .report_host("h-c", host.generation, host.nodes)
        .await
        .unwrap();
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, Vec::<NodeId>::new());
    let waiting = store.get_operation("t1", &op.id).await.unwrap();
    assert!(
        waiting.steps[1]
            .message
            .ends_with("0 under-replicated and 1 offline of 30 partitions (broker 103's report)"),
        "{}",
        waiting.steps[1].message
    );
}

#[tokio::test]
async fn a_report_received_before_the_broker_came_back_does_not_count() {
    let (store, mut reconciler, mut agents, _, op) = broker_101_back_and_lagging().await;
    // Hosts h-b and h-c report in-sync counts while 101 is still down (their images may not
    // show it out of the ISRs yet).
    agents.lagging.clear();
    agents.running.insert(101, String::new());
    agents
        .report_from(&store, &["h-b", "h-c"], &[], NodeState::Running)
        .await;
    agents.came_back(&store, 101).await;
    agents.lagging.clear();
    // Then h-a reports 101 RUNNING, with in-sync counts in the same report.
    agents
        .report_from(&store, &["h-a"], &[], NodeState::Running)
        .await;
    settle(&mut reconciler).await;
    assert_eq!(
        agents.outdated(&store).await,
        Vec::<NodeId>::new(),
        "no report newer than 101's return says the cluster is in sync"
    );
    let waiting = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(
        waiting.steps[1].message,
        "waiting for the cluster to be fully replicated before restarting broker 102: \
         no partition counts reported since the last node came back from broker 101, 102, 103"
    );
    // Fresh reports from everyone let it go on.
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, [102]);
}

#[tokio::test]
async fn a_cluster_not_in_sync_within_the_timeout_fails_the_roll_with_the_counts() {
    let (store, mut reconciler, mut agents, cluster_before, op) =
        broker_101_back_and_lagging().await;
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;
    let came_back_at = agents.now_ms;
    // Reports keep coming (the hosts stay reachable); 101 never catches up.
    let timeout = Settings::default().replicas_in_sync_timeout_ms;
    while agents.now_ms - came_back_at < timeout - 10_000 {
        agents.wait(&store, 9_000);
        agents.report(&store, &[], NodeState::Running).await;
        settle(&mut reconciler).await;
    }
    assert_eq!(
        cluster(&store, &cluster_before.id).await.status.state,
        ClusterState::Updating,
        "within the timeout"
    );
    agents.wait(&store, 10_000);
    agents.report(&store, &[], NodeState::Running).await;
    settle(&mut reconciler).await;

    let failed = cluster(&store, &cluster_before.id).await;
    assert_eq!(failed.status.state, ClusterState::Failed);
    assert_eq!(failed.status.state_info.code, "REPLICAS_NOT_IN_SYNC");
    assert_eq!(
        failed.status.state_info.message,
        "the cluster was not fully replicated within 600 s of its last node coming back, so \
         broker 102 was not restarted: 30 under-replicated and 0 offline of 30 partitions \
         (broker 101's report)"
    );
    assert_eq!(agents.outdated(&store).await, Vec::<NodeId>::new());
    let op = store.get_operation("t1", &op.id).await.unwrap();
    assert_eq!(op.state, OperationState::Failed);
    assert_eq!(op.error.unwrap().code, "REPLICAS_NOT_IN_SYNC");
    assert_eq!(op.steps[1].state, StepState::Failed);
}

#[tokio::test]
async fn a_new_reconciler_keeps_waiting_for_replication_then_resumes() {
    let (store, _, mut agents, cluster_before, _) = broker_101_back_and_lagging().await;
    agents.report(&store, &[], NodeState::Running).await;

    // The control plane restarts while 101 catches up: the new one holds 102 back too.
    let mut reconciler = self::reconciler(&store);
    settle(&mut reconciler).await;
    assert_eq!(agents.outdated(&store).await, Vec::<NodeId>::new());

    agents.lagging.clear();
    agents.report(&store, &[], NodeState::Running).await;
    let rest = roll_to_the_end(&store, &mut reconciler, &mut agents, &cluster_before.id).await;
    assert_eq!(rest, [102, 103]);
}
