//! A combined broker and controller in quorum mode (one voter) scraped at `/metrics` on its
//! admin port: it is the active controller, its raft commit index grows with CreateTopics,
//! and the cluster counts (brokers, topics, partitions, offline partitions, each broker's
//! metadata lag) come from its image. The `ferry_controller_*` families match the reviewed
//! list in `src/metrics/controller_names.txt` (`UPDATE_GOLDEN=1` rewrites it).

use crate::support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry_data_plane::broker::BrokerConfig;
use ferry_data_plane::node::{Node, NodeConfig, Role};
use ferry_data_plane::server::ServerOptions;
use ferry_identity::{CERT_VALIDITY_DEFAULT, CertificateAuthority, Identity, NodeRoles};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use support::{RawClient, name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const CLUSTER: &str = "metered";

/// GET /metrics over HTTP/1.1; the body.
async fn scrape(admin: SocketAddr) -> String {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("scrape answered within 10 s")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of the sample `series` (name with labels, exactly as encoded), if present.
fn value(text: &str, series: &str) -> Option<i64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// Scrapes until `check` holds (at most 20 s); the last scrape either way.
async fn scrape_until(admin: SocketAddr, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(admin).await;
        if check(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `family type label,label` for each `ferry_controller_*` family in `text`, in order; label
/// names from the family's first sample (histograms without `le`).
fn controller_families(text: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = rest.split_once(' ').unwrap();
        if !family.starts_with("ferry_controller_") {
            continue;
        }
        let sample = lines[i + 1..].iter().find(|l| !l.starts_with('#')).unwrap();
        let labels: Vec<&str> = sample
            .split_once('{')
            .map(|(_, rest)| rest.split_once('}').unwrap().0)
            .into_iter()
            .flat_map(|labels| labels.split(','))
            .filter_map(|label| label.split_once('=').map(|(name, _)| name))
            .filter(|name| *name != "le")
            .collect();
        writeln!(
            out,
            "{}",
            format!("{family} {kind} {}", labels.join(",")).trim_end()
        )
        .unwrap();
    }
    out
}

async fn create_topic(kafka: SocketAddr, topic: &str, partitions: i32) {
    let mut client = RawClient::connect(kafka).await;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(-1),
        ]);
    match client
        .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
        .await
    {
        ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0, "create {topic}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// A running single-voter node of [`CLUSTER`] (node 1) with an admin listener.
struct Voter {
    kafka: Option<SocketAddr>,
    admin: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Voter {
    /// Starts node 1 with `roles` (the controller among them) in quorum mode, alone.
    async fn start(roles: Vec<Role>, cert_roles: NodeRoles) -> Voter {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("metrics CA").unwrap();
        let controller: SocketAddr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let data_dir = dir.path().join("node-1");
        let identity = Identity::Node {
            cluster_id: CLUSTER.into(),
            node_id: 1,
            roles: cert_roles,
        };
        let node = Node::bind(NodeConfig {
            node_id: 1,
            cluster_id: Some(CLUSTER.into()),
            roles,
            data_dir: data_dir.clone(),
            kafka_listen: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
            rack: None,
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            server: ServerOptions::default(),
            broker: BrokerConfig::new(1, data_dir.join("logs")),
            controller_quorum: BTreeMap::from([(1, controller.to_string())]),
            controller_listen: Some(controller),
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_millis(200),
            tls: Some(ca.issue(&identity, &[], CERT_VALIDITY_DEFAULT).unwrap()),
        })
        .await
        .unwrap();
        let (kafka, admin) = (node.kafka_addr(), node.admin_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(node.run(stop.clone().cancelled_owned()));
        Voter {
            kafka,
            admin,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_controller_reports_raft_and_cluster_counts() {
    let voter = Voter::start(vec![Role::Broker, Role::Controller], NodeRoles::COMBINED).await;
    let (kafka, admin) = (voter.kafka.unwrap(), voter.admin);

    // The broker registers and is unfenced: one active broker, none fenced.
    let before = scrape_until(admin, |t| {
        value(t, "ferry_controller_active_brokers") == Some(1)
    })
    .await;
    assert_eq!(
        value(&before, "ferry_controller_active"),
        Some(1),
        "{before}"
    );
    assert_eq!(value(&before, "ferry_controller_fenced_brokers"), Some(0));
    assert_eq!(
        value(&before, "ferry_controller_raft_role{role=\"leader\"}"),
        Some(1)
    );
    assert_eq!(
        value(&before, "ferry_controller_raft_leader"),
        Some(1),
        "node id 1"
    );
    let commit = value(&before, "ferry_controller_raft_commit_index").unwrap();
    let topics = value(&before, "ferry_controller_topics").unwrap();
    let partitions = value(&before, "ferry_controller_partitions").unwrap();

    create_topic(kafka, "counted-a", 3).await;
    create_topic(kafka, "counted-b", 2).await;
    let after = scrape_until(admin, |t| {
        value(t, "ferry_controller_topics") == Some(topics + 2)
            && value(t, "ferry_controller_broker_metadata_lag{broker=\"1\"}") == Some(0)
    })
    .await;
    assert_eq!(
        value(&after, "ferry_controller_topics"),
        Some(topics + 2),
        "{after}"
    );
    assert_eq!(
        value(&after, "ferry_controller_partitions"),
        Some(partitions + 5)
    );
    assert_eq!(
        value(&after, "ferry_controller_offline_partitions"),
        Some(0)
    );
    assert!(
        value(&after, "ferry_controller_raft_commit_index").unwrap() >= commit + 2,
        "each CreateTopics is committed: {after}"
    );
    let applied = value(&after, "ferry_controller_raft_applied_index").unwrap();
    assert!(applied >= commit + 2, "{after}");
    assert!(value(&after, "ferry_controller_metadata_offset").unwrap() > 0);
    assert_eq!(value(&after, "ferry_controller_fences_total"), Some(0));
    assert!(
        value(
            &after,
            "ferry_controller_raft_commit_duration_seconds_count"
        )
        .unwrap()
            >= 2
    );

    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("src/metrics/controller_names.txt");
    let actual = controller_families(&after);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual,
        expected,
        "the controller's metric names changed: run with UPDATE_GOLDEN=1 and review the diff of {}",
        path.display()
    );
    assert!(!after.contains("_total_total"));

    voter.stop().await;
}

/// A node with only the controller role serves `/metrics` on its admin listener too: the
/// controller's families, and no broker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_only_node_serves_its_metrics() {
    let voter = Voter::start(vec![Role::Controller], NodeRoles::CONTROLLER).await;
    assert!(voter.kafka.is_none());
    let text = scrape_until(voter.admin, |t| {
        value(t, "ferry_controller_active") == Some(1)
    })
    .await;
    assert_eq!(value(&text, "ferry_controller_active"), Some(1), "{text}");
    assert_eq!(value(&text, "ferry_controller_active_brokers"), Some(0));
    assert_eq!(value(&text, "ferry_controller_offline_partitions"), Some(0));
    assert!(value(&text, "ferry_controller_raft_term").unwrap() >= 1);
    assert!(!text.contains("ferry_broker_"), "{text}");
    voter.stop().await;
}
