//! Configurations end to end, as real processes (`ferry control-plane`, three `ferry agent`s,
//! the `ferry node`s they start) with a real Kafka client:
//!
//! - a cluster created on revision 1 of a configuration is moved to revision 2 with
//!   UpdateClusterConfiguration while an rdkafka producer keeps writing with acks=all to a
//!   3-replica topic: the brokers are restarted one at a time (new processes), the controllers
//!   (whom the changed property does not concern) keep theirs, no acknowledged message is
//!   lost, and every broker's effective config (DescribeConfigs) is the new one. Then the CLI
//!   reads the revisions, is refused deleting the configuration in use, and re-applies the
//!   revision with `ferry cluster configure --wait` (nothing to restart: it ends at once).
//!   The roll is sampled through ListNodes and the operation: no broker is restarted while a
//!   broker's latest report counts under-replicated or offline partitions, and a second
//!   acks=all producer, without retries, never sees NOT_ENOUGH_REPLICAS.
//! - the control plane killed with kill -9 in the middle of a roll: restarted on the same
//!   directory, it resumes from the store and the agents' reports and finishes, every broker
//!   restarted once onto the new revision.

use crate::cluster;
use crate::stack;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::configuration_service_client::ConfigurationServiceClient;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use stack::{Stack, spec};

const TOPIC: &str = "rolled";

/// Runs `ferry <args>` against the stack with its admin token: (success, stdout + stderr).
fn cli(stack: &Stack, args: &[&str]) -> (bool, String) {
    let output = stack::ferry()
        .args(args)
        .args(["--api", &stack.api()])
        .env("FERRY_TOKEN", &stack.admin_token)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The value of broker config `name` on broker `id`, as DescribeConfigs reports it.
async fn broker_config(bootstrap: &str, id: i32, name: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let results = admin
        .describe_configs(
            &[ResourceSpecifier::Broker(id)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .ok()?;
    let resource = results.into_iter().next()?.ok()?;
    resource.get(name).and_then(|e| e.value.clone())
}

/// The pid of each `ferry node` process of the stack, by node id.
fn pids_by_node(stack: &Stack) -> Vec<(i32, u32)> {
    let mut nodes: Vec<(i32, u32)> = stack
        .node_pids()
        .into_iter()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .map(str::to_string)
                .collect();
            let at = args.iter().position(|a| a == "--node-id")?;
            Some((args.get(at + 1)?.parse().ok()?, pid))
        })
        .collect();
    nodes.sort_unstable();
    nodes
}

/// One look at the roll: the nodes (ListNodes), the brokers step's message, the nodes again.
struct Sample {
    /// The nodes, read before the operation.
    nodes_before: Vec<pb::Node>,
    /// The "restart brokers" step's message.
    brokers_step: String,
    /// The nodes, read after the operation.
    nodes_after: Vec<pb::Node>,
}

/// Every node of cluster `id`, as ListNodes shows them.
async fn list_nodes(stack: &Stack, id: &str) -> Vec<pb::Node> {
    stack
        .clusters()
        .await
        .list_nodes(stack.request(pb::ListNodesRequest {
            cluster_id: id.to_string(),
            page_size: 0,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .nodes
}

/// The broker's latest report's under-replicated and offline counts, with when it arrived.
fn replication_report(node: &pb::Node) -> Option<(i64, u32, u32)> {
    let r = node.probe.as_ref()?.replication?;
    Some((
        node.reported_at_ms,
        r.under_replicated_partitions,
        r.offline_partitions,
    ))
}

/// The brokers whose restart was decided while some broker's report counted under-replicated
/// or offline partitions, each with that report.
///
/// The decision to restart broker B is first visible in the step message
/// ("restarting broker B ...") of some sample k+1, so it was taken between sample k's and
/// sample k+1's operation reads. A broker report present with the same arrival time in
/// sample k's first node read and sample k+1's second one was that broker's latest report
/// all along that interval (an agent reports about once a second), so the reconciler saw it
/// when it decided: if it counted lagging partitions, B was restarted on an unsafe cluster.
/// Exact, whatever the sampling rate: a slow sampler may miss a violation, never invent one.
fn restarts_while_under_replicated(samples: &[Sample]) -> Vec<String> {
    let restarting = |s: &Sample| {
        s.brokers_step
            .strip_prefix("restarting broker ")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string)
    };
    let mut violations = Vec::new();
    for pair in samples.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let Some(broker) = restarting(after) else {
            continue;
        };
        if restarting(before).as_deref() == Some(broker.as_str()) {
            continue;
        }
        for node in &before.nodes_before {
            let Some(report) = replication_report(node) else {
                continue;
            };
            let same_report_after = after
                .nodes_after
                .iter()
                .find(|n| n.node_id == node.node_id)
                .and_then(replication_report)
                == Some(report);
            let (_, under_replicated, offline) = report;
            if same_report_after && (under_replicated > 0 || offline > 0) {
                violations.push(format!(
                    "broker {broker} restarted while broker {}'s report (at {} ms) counted \
                     {under_replicated} under-replicated and {offline} offline partitions",
                    node.node_id, report.0
                ));
            }
        }
    }
    violations
}

/// The check itself, on made-up samples: it flags a restart decided while a report that
/// stayed the latest counted lagging partitions, and nothing else.
#[test]
fn the_restart_check_flags_only_restarts_decided_on_a_lagging_report() {
    let broker = |id: i32, reported_at_ms: i64, under_replicated: u32| pb::Node {
        node_id: id,
        reported_at_ms,
        probe: Some(pb::NodeProbe {
            replication: Some(pb::ReplicationHealth {
                partitions: 3,
                under_replicated_partitions: under_replicated,
                offline_partitions: 0,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sample = |step: &str, nodes: Vec<pb::Node>| Sample {
        nodes_before: nodes.clone(),
        brokers_step: step.into(),
        nodes_after: nodes,
    };
    let lagging = vec![broker(101, 5_000, 3), broker(102, 5_100, 3)];
    let in_sync = vec![broker(101, 6_000, 0), broker(102, 6_100, 0)];
    let waiting = "waiting for the cluster to be fully replicated before restarting broker 102";
    let restarting = "restarting broker 102 (1 of 2 brokers run the new configuration)";

    // Decided while both latest reports counted 3 under-replicated partitions.
    let unsafe_roll = [
        sample(waiting, lagging.clone()),
        sample(restarting, lagging.clone()),
    ];
    assert_eq!(restarts_while_under_replicated(&unsafe_roll).len(), 2);
    // Decided after fresh in-sync reports replaced them.
    let safe_roll = [
        sample(waiting, lagging.clone()),
        sample(waiting, in_sync.clone()),
        sample(restarting, in_sync.clone()),
    ];
    assert!(restarts_while_under_replicated(&safe_roll).is_empty());
    // The reports changed in between: the decision may have seen in-sync ones; not flagged.
    let unknown = [
        sample(waiting, lagging.clone()),
        sample(restarting, in_sync.clone()),
    ];
    assert!(restarts_while_under_replicated(&unknown).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_configuration_rolls_brokers_one_at_a_time_under_acks_all_traffic() {
    let stack = Stack::start(&["a", "b", "c"]);
    let mut configurations = ConfigurationServiceClient::new(stack.channel().await);
    let properties = |interval: u32| {
        format!("min.insync.replicas=2\nlog.retention.check.interval.ms={interval}\n")
    };
    let created = configurations
        .create_configuration(stack.request(pb::CreateConfigurationRequest {
            name: "rolling".into(),
            description: "revision 1".into(),
            kafka_versions: vec![],
            server_properties: properties(300_000),
        }))
        .await
        .expect("CreateConfiguration accepted")
        .into_inner();
    let mut with = spec("rolled");
    with.configuration = Some(pb::ConfigurationInfo {
        id: created.id.clone(),
        revision: 1,
    });
    let response = stack
        .clusters()
        .await
        .create_cluster(stack.request(pb::CreateClusterRequest {
            spec: Some(with),
            client_request_id: String::new(),
        }))
        .await
        .expect("CreateCluster accepted")
        .into_inner();
    let id = response.cluster.unwrap().id;
    let active = stack.wait_for_state(&id, pb::ClusterState::Active).await;
    let bootstrap = active.status.unwrap().bootstrap_brokers;
    for broker in [101, 102, 103] {
        assert_eq!(
            broker_config(&bootstrap, broker, "log.retention.check.interval.ms")
                .await
                .as_deref(),
            Some("300000"),
            "broker {broker} runs revision 1"
        );
    }
    let admin = cluster::Admin::new(&bootstrap, Duration::from_secs(30));
    admin
        .create_topic(TOPIC, 3, 3)
        .await
        .expect("topic created");

    // A producer that keeps writing (acks=all, librdkafka retries) until told to stop;
    // it returns the payloads the cluster acknowledged and how many sends failed.
    let producing = Arc::new(AtomicBool::new(true));
    let producer_task = {
        let producing = producing.clone();
        let bootstrap = bootstrap.clone();
        tokio::spawn(async move {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("enable.idempotence", "false")
                .set("message.timeout.ms", "120000")
                .set("linger.ms", "5")
                .create()
                .unwrap();
            let (mut acked, mut failed) = (BTreeSet::new(), 0usize);
            let mut i = 0u64;
            while producing.load(Ordering::Relaxed) {
                let mut batch = Vec::new();
                for _ in 0..20 {
                    let payload = format!("message {i}");
                    let key = format!("key-{i}");
                    let record = FutureRecord::to(TOPIC).key(&key).payload(&payload);
                    let delivery = producer.send_result(record).expect("queue has room");
                    batch.push((payload, delivery));
                    i += 1;
                }
                for (payload, delivery) in batch {
                    match delivery.await.expect("not cancelled") {
                        Ok(_) => {
                            acked.insert(payload);
                        }
                        Err(_) => failed += 1,
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (acked, failed)
        })
    };

    // A producer that never retries (acks=all), so every error the brokers answer reaches it:
    // it counts NOT_ENOUGH_REPLICAS answers (fewer in-sync replicas than min.insync.replicas).
    let watcher_task = {
        let producing = producing.clone();
        let bootstrap = bootstrap.clone();
        tokio::spawn(async move {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("enable.idempotence", "false")
                .set("retries", "0")
                .set("message.timeout.ms", "30000")
                .create()
                .unwrap();
            let (mut acked, mut not_enough_replicas, mut other_errors) = (0usize, 0usize, 0usize);
            let mut i = 0u64;
            while producing.load(Ordering::Relaxed) {
                let payload = format!("watch {i}");
                let record = FutureRecord::<(), _>::to(TOPIC).payload(&payload);
                match producer.send(record, Duration::from_secs(5)).await {
                    Ok(_) => acked += 1,
                    Err((
                        KafkaError::MessageProduction(
                            RDKafkaErrorCode::NotEnoughReplicas
                            | RDKafkaErrorCode::NotEnoughReplicasAfterAppend,
                        ),
                        _,
                    )) => not_enough_replicas += 1,
                    Err(_) => other_errors += 1,
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (acked, not_enough_replicas, other_errors)
        })
    };

    // Revision 2 changes a broker-only property: the brokers roll, the controllers stay.
    let pids_before = pids_by_node(&stack);
    configurations
        .update_configuration(stack.request(pb::UpdateConfigurationRequest {
            configuration_id: created.id.clone(),
            description: "revision 2".into(),
            server_properties: properties(120_000),
        }))
        .await
        .expect("UpdateConfiguration accepted");
    let started = stack
        .clusters()
        .await
        .update_cluster_configuration(stack.request(pb::UpdateClusterConfigurationRequest {
            cluster_id: id.clone(),
            current_version: 0,
            configuration: Some(pb::ConfigurationInfo {
                id: created.id.clone(),
                revision: 2,
            }),
        }))
        .await
        .expect("UpdateClusterConfiguration accepted")
        .into_inner();
    let operation_id = started.operation.unwrap().id;
    let roll_started = Instant::now();

    // Sample the nodes until the operation ends: never more than one broker down at once,
    // and each restart decided on a fully replicated cluster (see the helper).
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut most_not_running = 0;
    let mut samples = Vec::new();
    let operation = loop {
        let nodes_before = list_nodes(&stack, &id).await;
        let not_running = nodes_before
            .iter()
            .filter(|n| n.state() != pb::NodeState::Running)
            .count();
        most_not_running = most_not_running.max(not_running);
        let operation = stack
            .operations()
            .await
            .get_operation(stack.request(pb::GetOperationRequest {
                operation_id: operation_id.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        samples.push(Sample {
            nodes_before,
            brokers_step: operation
                .steps
                .get(1)
                .map(|s| s.message.clone())
                .unwrap_or_default(),
            nodes_after: list_nodes(&stack, &id).await,
        });
        if matches!(
            operation.state(),
            pb::OperationState::Succeeded | pb::OperationState::Failed
        ) {
            break operation;
        }
        assert!(
            Instant::now() < deadline,
            "the roll did not end: {operation:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        operation.state(),
        pb::OperationState::Succeeded,
        "{operation:?}"
    );
    assert!(
        most_not_running <= 1,
        "{most_not_running} nodes down at once"
    );
    let roll_took = roll_started.elapsed();
    let violations = restarts_while_under_replicated(&samples);
    assert!(violations.is_empty(), "{violations:#?}");
    // The reports did show the restarts: a broker down leaves the ISRs of its partitions.
    let most_under_replicated = samples
        .iter()
        .flat_map(|s| &s.nodes_before)
        .filter_map(replication_report)
        .map(|(_, under_replicated, _)| under_replicated)
        .max();
    assert!(
        most_under_replicated.is_some_and(|n| n > 0),
        "no broker report ever counted an under-replicated partition: {most_under_replicated:?}"
    );
    let mut restarted_in_order: Vec<String> = Vec::new();
    for sample in &samples {
        if let Some(rest) = sample.brokers_step.strip_prefix("restarting broker ") {
            let broker = rest.split(' ').next().unwrap_or_default().to_string();
            if restarted_in_order.last() != Some(&broker) {
                restarted_in_order.push(broker);
            }
        }
    }
    assert_eq!(
        restarted_in_order,
        ["101", "102", "103"],
        "one at a time, in order"
    );

    // A little more traffic on the new configuration, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    producing.store(false, Ordering::Relaxed);
    let (acked, failed) = producer_task.await.unwrap();
    let (watched, not_enough_replicas, other_errors) = watcher_task.await.unwrap();
    eprintln!(
        "the roll took {:.1} s ({} samples, at most {} partitions under-replicated); {} \
         messages acknowledged, {failed} sends failed (librdkafka gave up on them; they do not \
         count as acknowledged); the watcher without retries: {watched} acknowledged, \
         {not_enough_replicas} NOT_ENOUGH_REPLICAS, {other_errors} other errors",
        roll_took.as_secs_f64(),
        samples.len(),
        most_under_replicated.unwrap_or(0),
        acked.len()
    );
    assert_eq!(
        not_enough_replicas, 0,
        "acks=all sends refused for lack of in-sync replicas during the roll"
    );
    assert!(watched > 0, "the watcher got nothing acknowledged");
    assert!(
        acked.len() > 100,
        "only {} messages acknowledged",
        acked.len()
    );

    // Nothing acknowledged is lost.
    let consumed: BTreeSet<String> = cluster::consume_all(&bootstrap, TOPIC, 3)
        .into_values()
        .flatten()
        .collect();
    let lost: Vec<&String> = acked.difference(&consumed).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost (of {}; {failed} sends failed): {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );

    // Brokers are new processes on revision 2; controllers kept theirs.
    let pids_after = pids_by_node(&stack);
    assert_eq!(pids_after.len(), pids_before.len(), "{pids_after:?}");
    for ((node, before), (_, after)) in pids_before.iter().zip(&pids_after) {
        if *node >= 101 {
            assert_ne!(before, after, "broker {node} was restarted");
        } else {
            assert_eq!(before, after, "controller {node} was left alone");
        }
    }
    for broker in [101, 102, 103] {
        assert_eq!(
            broker_config(&bootstrap, broker, "log.retention.check.interval.ms")
                .await
                .as_deref(),
            Some("120000"),
            "broker {broker} runs revision 2"
        );
    }
    let cluster = stack.wait_for_state(&id, pb::ClusterState::Active).await;
    assert_eq!(
        cluster.status.unwrap().configuration,
        Some(pb::ConfigurationInfo {
            id: created.id.clone(),
            revision: 2
        })
    );

    // The CLI, by names. `cluster nodes` shows the agents' probes: brokers' epochs and
    // replication counts, controllers' quorum roles and leader.
    let (ok, shown) = cli(&stack, &["cluster", "nodes", "rolled"]);
    assert!(ok, "{shown}");
    assert!(shown.contains("UNDER-REPLICATED/OFFLINE"), "{shown}");
    let brokers = shown
        .lines()
        .filter(|l| l.contains("epoch ") && l.contains(" of "))
        .count();
    let controllers = shown.lines().filter(|l| l.contains(", leader ")).count();
    assert_eq!((brokers, controllers), (3, 3), "{shown}");
    let (ok, shown) = cli(&stack, &["configuration", "revisions", "rolling"]);
    assert!(ok, "{shown}");
    assert!(
        shown.contains("revision 2") && shown.contains("revision 1"),
        "{shown}"
    );
    let (ok, shown) = cli(
        &stack,
        &["configuration", "get", "rolling", "--revision", "1"],
    );
    assert!(ok, "{shown}");
    assert!(
        shown.contains("log.retention.check.interval.ms=300000"),
        "{shown}"
    );
    let (ok, shown) = cli(&stack, &["configuration", "delete", "rolling"]);
    assert!(!ok, "deleting a configuration in use must fail");
    assert!(shown.contains("CONFIGURATION_IN_USE"), "{shown}");
    let (ok, shown) = cli(
        &stack,
        &[
            "cluster",
            "configure",
            "rolled",
            "--configuration",
            "rolling",
            "--revision",
            "2",
            "--wait",
        ],
    );
    assert!(ok, "{shown}");
    assert!(
        shown.contains("every node runs the new configuration"),
        "{shown}"
    );
    assert_eq!(pids_by_node(&stack), pids_after, "nothing restarted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_roll_interrupted_by_kill_9_of_the_control_plane_finishes_after_a_restart() {
    let mut stack = Stack::start(&["a", "b", "c"]);
    let mut configurations = ConfigurationServiceClient::new(stack.channel().await);
    let created = configurations
        .create_configuration(stack.request(pb::CreateConfigurationRequest {
            name: "resumed".into(),
            description: String::new(),
            kafka_versions: vec![],
            server_properties: "auto.create.topics.enable=false\n".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut with = spec("resumed");
    with.configuration = Some(pb::ConfigurationInfo {
        id: created.id.clone(),
        revision: 1,
    });
    let id = stack
        .clusters()
        .await
        .create_cluster(stack.request(pb::CreateClusterRequest {
            spec: Some(with),
            client_request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap()
        .id;
    stack.wait_for_state(&id, pb::ClusterState::Active).await;
    configurations
        .update_configuration(stack.request(pb::UpdateConfigurationRequest {
            configuration_id: created.id.clone(),
            description: String::new(),
            server_properties: "auto.create.topics.enable=true\n".into(),
        }))
        .await
        .unwrap();
    let pids_before = pids_by_node(&stack);
    stack
        .clusters()
        .await
        .update_cluster_configuration(stack.request(pb::UpdateClusterConfigurationRequest {
            cluster_id: id.clone(),
            current_version: 0,
            configuration: Some(pb::ConfigurationInfo {
                id: created.id.clone(),
                revision: 2,
            }),
        }))
        .await
        .unwrap();

    // Once the first broker has been restarted, kill the control plane mid-roll.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = pids_by_node(&stack);
        let restarted = now
            .iter()
            .filter(|(node, pid)| *node >= 101 && !pids_before.contains(&(*node, *pid)))
            .count();
        if restarted >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no broker was restarted: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.kill_control_plane();
    stack.start_control_plane();

    let deadline = Instant::now() + Duration::from_secs(300);
    let cluster = loop {
        let cluster = stack.wait_for_state(&id, pb::ClusterState::Active).await;
        let status = cluster.status.clone().unwrap();
        if status
            .configuration
            .as_ref()
            .is_some_and(|c| c.revision == 2)
        {
            break cluster;
        }
        assert!(
            Instant::now() < deadline,
            "the roll did not finish: {cluster:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(cluster.active_operation_id, "");
    let pids_after = pids_by_node(&stack);
    assert_eq!(pids_after.len(), pids_before.len(), "{pids_after:?}");
    for ((node, before), (_, after)) in pids_before.iter().zip(&pids_after) {
        if *node >= 101 {
            assert_ne!(before, after, "broker {node} was restarted");
        } else {
            assert_eq!(before, after, "controller {node} was left alone");
        }
    }
    let bootstrap = cluster.status.unwrap().bootstrap_brokers;
    for broker in [101, 102, 103] {
        assert_eq!(
            broker_config(&bootstrap, broker, "auto.create.topics.enable")
                .await
                .as_deref(),
            Some("true"),
            "broker {broker} runs revision 2"
        );
    }
}
