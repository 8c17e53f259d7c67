//! Provisioning end to end, as real processes: `ferry control-plane`, three `ferry agent`s in
//! zones a, b and c on loopback, and the `ferry node`s they start; Kafka traffic with rdkafka.
//!
//! - a cluster created through gRPC becomes ACTIVE, serves produce and consume through its
//!   bootstrap brokers, and leaves no node process or data directory once deleted;
//! - the same through the REST API;
//! - the control plane killed with kill -9 in the middle of a creation (some steps done, some
//!   node processes started): after a restart on the same directory the operation completes;
//! - an agent killed with kill -9: its nodes keep serving; restarted, it adopts the very same
//!   processes (checked once it has reported them since the restart);
//! - a node that cannot start (its port taken) fails the cluster with a message naming it.

use crate::cluster;
use crate::stack;

use std::io::{Read, Write};
use std::time::Duration;

use ferry_proto::controlplane::v1 as pb;
use stack::{Stack, now_ms, spec};

/// Creates `name` through gRPC and returns (cluster id, operation id).
async fn create(stack: &Stack, name: &str) -> (String, String) {
    let response = stack
        .clusters()
        .await
        .create_cluster(stack.request(pb::CreateClusterRequest {
            spec: Some(spec(name)),
            client_request_id: format!("test-{name}"),
        }))
        .await
        .expect("CreateCluster accepted")
        .into_inner();
    (response.cluster.unwrap().id, response.operation.unwrap().id)
}

/// Produces 200 messages through `bootstrap` and reads them back, checking every one.
async fn produce_and_consume(bootstrap: &str) {
    let topic = "provisioned";
    let acked = cluster::produce(bootstrap, topic, 200).await;
    assert_eq!(acked.values().sum::<usize>(), 200);
    let partitions = *acked.keys().max().unwrap() + 1;
    let consumed = cluster::consume_all(bootstrap, topic, partitions);
    let mut payloads: Vec<String> = consumed.into_values().flatten().collect();
    payloads.sort_by_key(|p| p.trim_start_matches("message ").parse::<u32>().unwrap());
    let expected: Vec<String> = (0..200).map(|i| format!("message {i}")).collect();
    assert_eq!(payloads, expected);
}

/// Asserts that no node process of the stack runs and no node directory remains.
fn assert_nothing_left(stack: &Stack) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !stack.node_pids().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "node processes left: {:?}",
            stack.node_pids()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for agent in &stack.agents {
        let nodes = agent.dir.join("nodes");
        let left: Vec<_> = std::fs::read_dir(&nodes)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "node data left on {}: {left:?}",
            agent.zone
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_created_through_grpc_serves_kafka_and_leaves_nothing_once_deleted() {
    let stack = Stack::start(&["a", "b", "c"]);
    let (id, operation_id) = create(&stack, "orders").await;
    let active = stack.wait_for_state(&id, pb::ClusterState::Active).await;

    // Placement: one controller and one broker per zone, every node RUNNING.
    let status = active.status.unwrap();
    assert_eq!(status.nodes.len(), 6);
    for node in &status.nodes {
        assert_eq!(node.state, pb::NodeState::Running as i32, "{node:?}");
    }
    let zones: Vec<&str> = status.nodes.iter().map(|n| n.zone.as_str()).collect();
    assert_eq!(zones, ["a", "b", "c", "a", "b", "c"]);
    let operation = stack
        .operations()
        .await
        .get_operation(stack.request(pb::GetOperationRequest {
            operation_id: operation_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operation.state, pb::OperationState::Succeeded as i32);
    assert_eq!(operation.progress_percent, 100);
    assert!(
        operation
            .steps
            .iter()
            .all(|s| s.state == pb::StepState::Done as i32)
    );

    let bootstrap = stack
        .clusters()
        .await
        .get_bootstrap_brokers(stack.request(pb::GetBootstrapBrokersRequest {
            cluster_id: id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .bootstrap_brokers;
    assert_eq!(bootstrap.split(',').count(), 3, "{bootstrap}");
    produce_and_consume(&bootstrap).await;
    assert_eq!(stack.node_pids().len(), 6);

    // Three more brokers, one per zone, in place: the old nodes keep running.
    let before = stack.node_pids();
    let updated = stack
        .clusters()
        .await
        .update_broker_count(stack.request(pb::UpdateBrokerCountRequest {
            cluster_id: id.clone(),
            current_version: 0,
            broker_count: 6,
        }))
        .await
        .expect("UpdateBrokerCount accepted")
        .into_inner();
    assert_eq!(
        updated.cluster.unwrap().status.unwrap().state,
        pb::ClusterState::Updating as i32
    );
    let grown = stack.wait_for_state(&id, pb::ClusterState::Active).await;
    let status = grown.status.unwrap();
    assert_eq!(status.bootstrap_brokers.split(',').count(), 6);
    assert!(before.iter().all(|pid| stack.node_pids().contains(pid)));
    assert_eq!(stack.node_pids().len(), 9);
    cluster::MetadataReader::new(&status.bootstrap_brokers)
        .fetch()
        .await
        .map(|metadata| assert_eq!(cluster::broker_ids(&metadata).len(), 6))
        .expect("metadata from the grown cluster");

    stack
        .clusters()
        .await
        .delete_cluster(stack.request(pb::DeleteClusterRequest {
            cluster_id: id.clone(),
            current_version: 0,
        }))
        .await
        .expect("DeleteCluster accepted");
    stack.wait_until_gone(&id).await;
    assert_nothing_left(&stack);
}

/// One HTTP/1.1 request to the control plane's REST API; returns (status, body).
fn http(stack: &Stack, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", stack.api_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        stack.admin_token,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status: u16 = response[9..12].parse().unwrap();
    let (_, payload) = response.split_once("\r\n\r\n").unwrap();
    // Bodies may come chunked; the JSON is the part between the first '{' and the last '}'.
    let json = match (payload.find('{'), payload.rfind('}')) {
        (Some(start), Some(end)) => serde_json::from_str(&payload[start..=end]).unwrap(),
        _ => serde_json::Value::Null,
    };
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_created_through_rest_serves_kafka_and_leaves_nothing_once_deleted() {
    let stack = Stack::start(&["a", "b", "c"]);
    let body = serde_json::json!({
        "spec": {
            "name": "rest-orders",
            "kafkaVersion": "3.9.0",
            "brokerCount": 3,
            "controllerCount": 3,
            "zones": ["a", "b", "c"],
            "storagePerBrokerBytes": "1073741824",
        },
        "clientRequestId": "rest-1",
    })
    .to_string();
    let (status, created) = http(&stack, "POST", "/v1/clusters", Some(&body));
    assert_eq!(status, 200, "{created}");
    let id = created["cluster"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["cluster"]["status"]["state"],
        "CLUSTER_STATE_CREATING"
    );

    // A retry with the same request id is the same cluster.
    let (status, again) = http(&stack, "POST", "/v1/clusters", Some(&body));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["cluster"]["id"], id.as_str());

    stack.wait_for_state(&id, pb::ClusterState::Active).await;
    let (status, got) = http(&stack, "GET", &format!("/v1/clusters/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(got["status"]["state"], "CLUSTER_STATE_ACTIVE");
    let (status, bootstrap) = http(
        &stack,
        "GET",
        &format!("/v1/clusters/{id}/bootstrap-brokers"),
        None,
    );
    assert_eq!(status, 200);
    let bootstrap = bootstrap["bootstrapBrokers"].as_str().unwrap().to_string();
    produce_and_consume(&bootstrap).await;

    let (status, deleting) = http(&stack, "DELETE", &format!("/v1/clusters/{id}"), None);
    assert_eq!(status, 200, "{deleting}");
    stack.wait_until_gone(&id).await;
    let (status, _) = http(&stack, "GET", &format!("/v1/clusters/{id}"), None);
    assert_eq!(status, 404);
    assert_nothing_left(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_creation_interrupted_by_kill_9_of_the_control_plane_completes_after_a_restart() {
    let mut stack = Stack::start(&["a", "b", "c"]);
    // Zone c's agent is paused from just before the creation, so that the operation stays
    // under way for as long as the test needs: placed and assigned, zones a's and b's nodes
    // started, zone c's not. (Its host stays HEALTHY: it reported a moment ago.)
    stack.pause_agent(2);
    let (id, operation_id) = create(&stack, "interrupted").await;
    let under_way = stack::wait_until_under_way(
        &mut stack.operations().await,
        &stack.admin_token,
        &operation_id,
        || stack.node_pids().len(),
        6,
    )
    .await;
    eprintln!(
        "killing the control plane with the operation at {}% and {} node processes",
        under_way.progress_percent,
        stack.node_pids().len()
    );
    stack.kill_control_plane();
    stack.resume_agent(2);
    stack.start_control_plane();

    stack.wait_for_state(&id, pb::ClusterState::Active).await;
    let operation = stack
        .operations()
        .await
        .get_operation(stack.request(pb::GetOperationRequest { operation_id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operation.state, pb::OperationState::Succeeded as i32);
    // Exactly one node process per placed node: the restart did not start any twice.
    assert_eq!(stack.node_pids().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_agent_leaves_its_nodes_serving_and_adopts_the_same_processes_on_restart() {
    let mut stack = Stack::start(&["a", "b", "c"]);
    let (id, _) = create(&stack, "steady").await;
    let active = stack.wait_for_state(&id, pb::ClusterState::Active).await;
    let bootstrap = active.status.unwrap().bootstrap_brokers;
    let zone_a_nodes = Stack::node_pids_under(&stack.agents[0].dir);
    assert_eq!(zone_a_nodes.len(), 2, "a controller and a broker in zone a");

    stack.kill_agent(0);
    produce_and_consume(&bootstrap).await;
    assert_eq!(Stack::node_pids_under(&stack.agents[0].dir), zone_a_nodes);

    let restarted_ms = now_ms();
    stack.start_agent(0);
    // The restarted agent must adopt its nodes, not start them anew. Its reports since the
    // restart show each node STARTING (adopted, not yet probed) or RUNNING, never PENDING
    // or UNHEALTHY (a node started again: its new process cannot take the ports the old one
    // holds); once two report rounds showed them all RUNNING, its first ticks (where a node
    // it failed to adopt is started) are behind it, and the processes must be the same.
    let mut after_ms = restarted_ms;
    let mut rounds_running = 0;
    while rounds_running < 2 {
        let nodes = reports_after(&stack, "host-a", after_ms).await;
        for node in &nodes {
            assert!(
                matches!(
                    node.state(),
                    pb::NodeState::Starting | pb::NodeState::Running
                ),
                "the restarted agent reports {node:?}"
            );
        }
        if nodes.iter().all(|n| n.state() == pb::NodeState::Running) {
            rounds_running += 1;
        }
        after_ms = nodes.iter().map(|n| n.reported_at_ms).max().unwrap();
    }
    assert_eq!(Stack::node_pids_under(&stack.agents[0].dir), zone_a_nodes);
    let again = stack.wait_for_state(&id, pb::ClusterState::Active).await;
    for node in again.status.unwrap().nodes {
        assert_eq!(node.state, pb::NodeState::Running as i32, "{node:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_cannot_start_fails_the_cluster_with_a_message_naming_it() {
    let stack = Stack::start(&["a", "b", "c"]);
    // Something else holds the first port of zone a's range, which placement gives to
    // controller 1.
    let (lo, _) = stack.agents[0].ports;
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", lo)).unwrap();
    let (id, operation_id) = create(&stack, "doomed").await;

    let deadline = std::time::Instant::now() + stack::ACTIVE_WAIT;
    let status = loop {
        let cluster = stack
            .clusters()
            .await
            .get_cluster(stack.request(pb::GetClusterRequest {
                cluster_id: id.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        let status = cluster.status.unwrap();
        if status.state == pb::ClusterState::Failed as i32 {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "cluster never failed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let info = status.state_info.unwrap();
    assert_eq!(info.code, "NODE_START_FAILED");
    assert!(
        info.message.starts_with(&format!(
            "controller 1 on host host-a (127.0.0.1:{lo}) could not start:"
        )),
        "{}",
        info.message
    );
    let operation = stack
        .operations()
        .await
        .get_operation(stack.request(pb::GetOperationRequest { operation_id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operation.state, pb::OperationState::Failed as i32);
    assert_eq!(operation.error.unwrap().code, "NODE_START_FAILED");
}

/// Runs `ferry <args>` against the stack with its admin token; returns stdout, panicking with
/// stderr on failure.
fn cli(stack: &Stack, args: &[&str]) -> String {
    let output = stack::ferry()
        .args(args)
        .args(["--api", &stack.api()])
        .env("FERRY_TOKEN", &stack.admin_token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_creates_inspects_tags_and_deletes_a_cluster_by_name() {
    let stack = Stack::start(&["a", "b", "c"]);
    let created: serde_json::Value = serde_json::from_str(&cli(
        &stack,
        &[
            "cluster",
            "create",
            "cli-made",
            "--wait",
            "--tag",
            "team=data",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(created["status"]["state"], "CLUSTER_STATE_ACTIVE");
    assert_eq!(created["spec"]["tags"]["team"], "data");

    let table = cli(&stack, &["cluster", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(
        lines[1].contains("cli-made") && lines[1].contains("ACTIVE"),
        "{table}"
    );
    let nodes = cli(&stack, &["cluster", "nodes", "cli-made"]);
    assert_eq!(
        nodes.lines().filter(|l| l.contains("RUNNING")).count(),
        6,
        "{nodes}"
    );
    let bootstrap = cli(&stack, &["cluster", "bootstrap", "cli-made"]);
    assert_eq!(bootstrap.trim().split(',').count(), 3);
    let operations = cli(&stack, &["operation", "list", "cli-made"]);
    assert!(
        operations.contains("CREATE") && operations.contains("SUCCEEDED"),
        "{operations}"
    );
    let hosts = cli(&stack, &["host", "list"]);
    assert_eq!(
        hosts.lines().filter(|l| l.contains("HEALTHY")).count(),
        3,
        "{hosts}"
    );

    let tagged = cli(
        &stack,
        &["cluster", "tag", "cli-made", "--tag", "team=platform"],
    );
    assert!(
        tagged.contains("tags:              team=platform"),
        "{tagged}"
    );

    // A bad request prints every field error and exits nonzero.
    let refused = stack::ferry()
        .args([
            "cluster",
            "create",
            "bad name!",
            "--brokers",
            "4",
            "--api",
            &stack.api(),
        ])
        .env("FERRY_TOKEN", &stack.admin_token)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("InvalidArgument"), "{stderr}");
    assert!(
        stderr.contains("name:") && stderr.contains("broker_count:"),
        "{stderr}"
    );

    cli(&stack, &["cluster", "delete", "cli-made", "--wait"]);
    assert!(!cli(&stack, &["cluster", "list"]).contains("cli-made"));
    assert_nothing_left(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_control_plane_that_lost_its_store_does_not_stop_the_nodes_agents_run() {
    let mut stack = Stack::start(&["a", "b", "c"]);
    let (id, _) = create(&stack, "precious").await;
    let active = stack.wait_for_state(&id, pb::ClusterState::Active).await;
    let bootstrap = active.status.unwrap().bootstrap_brokers;
    let pids = stack.node_pids();
    assert_eq!(pids.len(), 6);

    // A control plane restarted on an empty store (a lost disk, a wrong directory): it knows
    // no host and no cluster, so it would assign nothing to anyone.
    stack.kill_control_plane();
    std::fs::remove_dir_all(stack.dir.path().join("control-plane")).unwrap();
    stack.start_control_plane();
    stack.wait_for_hosts();

    // Every agent pulled the new control plane's assignments, an older generation, and refused
    // them: it records the divergence when it does.
    let deadline = std::time::Instant::now() + stack::READY;
    let mut marked_ms = Vec::new();
    for agent in &stack.agents {
        let marker = agent.dir.join("control-plane-diverged");
        while !marker.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "agent {} did not record the divergence",
                agent.zone
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let modified = std::fs::metadata(&marker).unwrap().modified().unwrap();
        let modified = modified.duration_since(std::time::UNIX_EPOCH).unwrap();
        marked_ms.push(modified.as_millis() as i64);
    }
    // Each reported again after that: whatever it decided is in effect by now.
    let marked_ms = *marked_ms.iter().max().unwrap();
    let deadline = std::time::Instant::now() + stack::READY;
    loop {
        let hosts = stack::list_hosts(&stack.api(), &stack.admin_token)
            .await
            .unwrap_or_default();
        if hosts.len() == stack.agents.len() && hosts.iter().all(|h| h.last_seen_at > marked_ms) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report after the divergence from every agent: {hosts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The agents kept to the generation they had: every node still serves, the same process.
    produce_and_consume(&bootstrap).await;
    assert_eq!(stack.node_pids(), pids);
}

/// The nodes of `host_id` once each has a report the control plane received after
/// `after_ms` (ms since the Unix epoch); panics after [`stack::ACTIVE_WAIT`].
async fn reports_after(stack: &Stack, host_id: &str, after_ms: i64) -> Vec<pb::Node> {
    let deadline = std::time::Instant::now() + stack::ACTIVE_WAIT;
    loop {
        let hosts = stack::list_hosts(&stack.api(), &stack.admin_token)
            .await
            .unwrap_or_default();
        let nodes: Vec<pb::Node> = hosts
            .into_iter()
            .filter(|h| h.id == host_id)
            .flat_map(|h| h.nodes)
            .filter_map(|n| n.node)
            .collect();
        if !nodes.is_empty() && nodes.iter().all(|n| n.reported_at_ms > after_ms) {
            return nodes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report of {host_id}'s nodes after {after_ms}: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
