//! Test support for multi-process clusters: a controller quorum and brokers as real `ferry node`
//! processes on loopback, and the Kafka and DescribeQuorum calls the tests make against them.
//!
//! The nodes talk over mutual TLS, as every quorum must: the cluster gets its own CA (in its
//! temporary directory) and each node a certificate for its id and roles, passed with
//! `--tls-ca/--tls-cert/--tls-key`; the tests' own controller calls present
//! [`Cluster::client_tls`], a broker certificate of the cluster.
//!
//! Every process is killed when the [`Cluster`] drops, also on panic; a panicking test prints
//! the tail of each node's log (stderr goes to a file per node, level `FERRY_TEST_LOG`, default
//! `info`).

#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferry_identity::{
    CERT_VALIDITY_DEFAULT, CertificateAuthority, Identity, NodeRoles, TlsMaterial,
};
use ferry_proto::controller::v1::DescribeQuorumRequest;
use ferry_proto::controller::v1::controller_service_client::ControllerServiceClient;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a process may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Pause between two polls of a condition.
pub const POLL: Duration = Duration::from_millis(200);

/// A free loopback port: bound to port 0, read, released. Another process may take it before
/// ours binds it; that race is accepted.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// What a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    Controller,
    Broker,
    Combined,
}

impl Roles {
    fn node_roles(self) -> NodeRoles {
        match self {
            Roles::Controller => NodeRoles::CONTROLLER,
            Roles::Broker => NodeRoles::BROKER,
            Roles::Combined => NodeRoles::COMBINED,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Roles::Controller => "controller",
            Roles::Broker => "broker",
            Roles::Combined => "broker,controller",
        }
    }

    pub fn is_controller(self) -> bool {
        self != Roles::Broker
    }

    pub fn is_broker(self) -> bool {
        self != Roles::Controller
    }
}

/// One `ferry node` of a cluster: how to start it, and the running process if it is up.
pub struct Node {
    pub id: i32,
    pub roles: Roles,
    pub rack: Option<String>,
    /// The controller listener (fixed: the quorum list names it).
    pub controller_addr: Option<String>,
    args: Vec<String>,
    /// The network namespace the process runs in (`ip netns exec`), if any.
    pub netns: Option<String>,
    log_path: PathBuf,
    child: Option<Child>,
    /// Kafka listener of the running broker (port 0 each start, so it changes on restart).
    pub bootstrap: Option<String>,
    pub admin: Option<String>,
}

impl Node {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Spawns the process; [`Pending::wait`] waits for its ready line.
    fn spawn(&mut self) -> Pending {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        let level = std::env::var("FERRY_TEST_LOG").unwrap_or_else(|_| "info".into());
        let mut command = match &self.netns {
            Some(netns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_ferry")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ferry")),
        };
        let mut child = command
            .args(&self.args)
            .env("FERRY_LOG", level)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn ferry node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the life of the process.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ferry node ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        self.child = Some(child);
        Pending { id: self.id, rx }
    }

    fn ready(&mut self, line: &str) {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {line:?}"))
                .to_string()
        };
        let some = |v: String| (v != "-").then_some(v);
        self.bootstrap = some(field("bootstrap"));
        self.admin = some(field("admin"));
        if let Some(addr) = &self.controller_addr {
            assert_eq!(
                &field("controller"),
                addr,
                "controller bound where the quorum says"
            );
        }
    }

    /// kill -9: no flush, no controlled shutdown.
    fn kill9(&mut self) {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("node {} is not running", self.id));
        child.kill().unwrap();
        child.wait().unwrap();
        self.bootstrap = None;
        self.admin = None;
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the running process.
    fn signal(&self, name: &str) {
        let pid = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.id))
            .id();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Whether the node's log contains `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log_path).is_ok_and(|text| text.contains(needle))
    }

    fn log_tail(&self, lines: usize) -> String {
        let Ok(mut file) = File::open(&self.log_path) else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A started process that has not printed its ready line yet.
struct Pending {
    id: i32,
    rx: mpsc::Receiver<String>,
}

impl Pending {
    fn wait(self) -> String {
        self.rx
            .recv_timeout(READY_TIMEOUT)
            .unwrap_or_else(|_| panic!("node {} ready within {READY_TIMEOUT:?}", self.id))
    }
}

/// A cluster of `ferry node` processes sharing one controller quorum; killed on drop.
pub struct Cluster {
    pub cluster_id: String,
    pub nodes: BTreeMap<i32, Node>,
    /// The cluster's CA (every node's certificate chains to it).
    pub ca: CertificateAuthority,
    /// What the tests present to the controllers: a broker certificate of this cluster, for a
    /// node id no node has ([`TEST_CLIENT_NODE_ID`]).
    pub client_tls: TlsMaterial,
    dir: tempfile::TempDir,
}

/// The node id in [`Cluster::client_tls`].
pub const TEST_CLIENT_NODE_ID: i32 = 9_999;

/// What to start: controllers get ids 1..=n, brokers 101.. (racks as given); in combined mode
/// node i is both. `sets` go to every node (`--set NAME=VALUE`).
pub struct ClusterSpec<'a> {
    pub name: &'a str,
    pub controllers: usize,
    pub broker_racks: &'a [&'a str],
    pub combined: bool,
    pub sets: &'a [&'a str],
}

impl Cluster {
    /// Starts every node and waits for their ready lines (not for an elected leader).
    pub fn start(spec: ClusterSpec<'_>) -> Cluster {
        Self::start_placed(spec, |_| None)
    }

    /// [`Cluster::start`] with each node placed by `place(id)`: `Some((netns, ip))` runs it in
    /// that network namespace, listening on that address (multi-host tests); `None` on
    /// loopback.
    pub fn start_placed(
        spec: ClusterSpec<'_>,
        place: impl Fn(i32) -> Option<(String, String)>,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let cluster_id = format!("ferry-test-{}", spec.name);
        let racks = ["a", "b", "c", "d", "e"];
        let mut plan: Vec<(i32, Roles, Option<String>)> = Vec::new();
        if spec.combined {
            for i in 0..spec.controllers {
                plan.push((i as i32 + 1, Roles::Combined, Some(racks[i % 5].into())));
            }
        } else {
            for i in 0..spec.controllers {
                plan.push((i as i32 + 1, Roles::Controller, None));
            }
            for (i, rack) in spec.broker_racks.iter().enumerate() {
                plan.push((101 + i as i32, Roles::Broker, Some(rack.to_string())));
            }
        }
        let controller_addrs: BTreeMap<i32, String> = plan
            .iter()
            .filter(|(_, roles, _)| roles.is_controller())
            .map(|(id, _, _)| {
                let ip = place(*id).map_or("127.0.0.1".to_string(), |(_, ip)| ip);
                (*id, format!("{ip}:{}", free_port()))
            })
            .collect();
        let quorum = controller_addrs
            .iter()
            .map(|(id, addr)| format!("{id}@{addr}"))
            .collect::<Vec<_>>()
            .join(",");
        let ca = CertificateAuthority::generate(&format!("{cluster_id} CA")).unwrap();
        let issue = |node_id: i32, roles: NodeRoles| {
            let identity = Identity::Node {
                cluster_id: cluster_id.clone(),
                node_id,
                roles,
            };
            ca.issue(&identity, &[], CERT_VALIDITY_DEFAULT).unwrap()
        };
        let client_tls = issue(TEST_CLIENT_NODE_ID, NodeRoles::BROKER);
        let mut nodes = BTreeMap::new();
        for (id, roles, rack) in plan {
            let data_dir = dir.path().join(format!("node-{id}"));
            let tls_dir = data_dir.join("tls");
            issue(id, roles.node_roles()).write(&tls_dir).unwrap();
            let mut args: Vec<String> = vec![
                "node".into(),
                "--node-id".into(),
                id.to_string(),
                "--roles".into(),
                roles.flag().into(),
                "--cluster-id".into(),
                cluster_id.clone(),
                "--controller-quorum".into(),
                quorum.clone(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--tls-ca".into(),
                tls_dir.join(ferry_identity::CA_FILE).display().to_string(),
                "--tls-cert".into(),
                tls_dir
                    .join(ferry_identity::CERT_FILE)
                    .display()
                    .to_string(),
                "--tls-key".into(),
                tls_dir.join(ferry_identity::KEY_FILE).display().to_string(),
            ];
            let placed = place(id);
            let ip = placed
                .as_ref()
                .map_or("127.0.0.1".to_string(), |(_, ip)| ip.clone());
            let controller_addr = controller_addrs.get(&id).cloned();
            if let Some(addr) = &controller_addr {
                args.extend(["--controller-listen".into(), addr.clone()]);
            }
            if roles.is_broker() {
                args.extend([
                    "--listen".into(),
                    format!("{ip}:0"),
                    "--admin-listen".into(),
                    format!("{ip}:0"),
                ]);
            }
            if let Some(rack) = &rack {
                args.extend(["--rack".into(), rack.clone()]);
            }
            for set in spec.sets {
                args.extend(["--set".into(), set.to_string()]);
            }
            let log_path = dir.path().join(format!("node-{id}.log"));
            let node = Node {
                id,
                roles,
                rack,
                controller_addr,
                args,
                netns: placed.map(|(netns, _)| netns),
                log_path,
                child: None,
                bootstrap: None,
                admin: None,
            };
            nodes.insert(id, node);
        }
        let mut cluster = Cluster {
            cluster_id,
            nodes,
            ca,
            client_tls,
            dir,
        };
        let ids: Vec<i32> = cluster.nodes.keys().copied().collect();
        cluster.start_nodes(&ids);
        cluster
    }

    /// Starts the given (stopped) nodes together and waits for their ready lines.
    pub fn start_nodes(&mut self, ids: &[i32]) {
        let pending: Vec<Pending> = ids.iter().map(|id| self.node_mut(*id).spawn()).collect();
        for p in pending {
            let id = p.id;
            let line = p.wait();
            self.node_mut(id).ready(&line);
        }
    }

    /// The data directory of node `id`.
    pub fn data_dir(&self, id: i32) -> std::path::PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// Restarts a stopped node over its data directory (same controller port).
    pub fn restart(&mut self, id: i32) {
        self.start_nodes(&[id]);
    }

    /// kill -9 one node.
    pub fn kill9(&mut self, id: i32) {
        self.node_mut(id).kill9();
    }

    /// The process id of a running node.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.node(id).child.as_ref().map(|c| c.id())
    }

    /// SIGSTOP one node: it stays up but does nothing (a long GC pause, a stuck disk).
    pub fn pause(&mut self, id: i32) {
        self.node(id).signal("STOP");
    }

    /// SIGCONT a paused node.
    pub fn resume(&mut self, id: i32) {
        self.node(id).signal("CONT");
    }

    pub fn node(&self, id: i32) -> &Node {
        &self.nodes[&id]
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes.get_mut(&id).expect("known node id")
    }

    pub fn controller_ids(&self) -> Vec<i32> {
        self.nodes
            .values()
            .filter(|n| n.roles.is_controller())
            .map(|n| n.id)
            .collect()
    }

    pub fn broker_ids(&self) -> Vec<i32> {
        self.nodes
            .values()
            .filter(|n| n.roles.is_broker())
            .map(|n| n.id)
            .collect()
    }

    pub fn rack(&self, id: i32) -> &str {
        self.node(id).rack.as_deref().expect("brokers have racks")
    }

    /// Kafka bootstrap of every running broker.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .values()
            .filter_map(|n| n.bootstrap.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kafka bootstrap of one running broker.
    pub fn bootstrap_of(&self, id: i32) -> String {
        self.node(id).bootstrap.clone().expect("broker is running")
    }

    /// The active controller among the running controllers: one that reports itself as the
    /// leader. Polls until `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            for node in self.nodes.values().filter(|n| n.is_running()) {
                let Some(addr) = &node.controller_addr else {
                    continue;
                };
                if describe_leader(addr, &self.client_tls).await == Some(node.id) {
                    return node.id;
                }
            }
            assert!(
                Instant::now() < deadline,
                "a controller leader within {timeout:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until Metadata from `bootstrap` lists exactly the `expected` brokers.
    pub async fn wait_for_brokers(&self, bootstrap: &str, expected: &[i32], timeout: Duration) {
        let expected: BTreeSet<i32> = expected.iter().copied().collect();
        let reader = MetadataReader::new(bootstrap);
        let mut last = None;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(metadata) = reader.fetch().await {
                let brokers = broker_ids(&metadata);
                if brokers == expected {
                    return;
                }
                last = Some(brokers);
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("brokers {expected:?} within {timeout:?}; last saw {last:?}");
    }

    /// Every node log, for a failure report.
    pub fn dump_logs(&self, lines: usize) {
        for node in self.nodes.values() {
            eprintln!(
                "----- node {} ({:?}) log tail -----\n{}",
                node.id,
                node.roles,
                node.log_tail(lines)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::env::var_os("FERRY_TEST_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            eprintln!(
                "cluster {} kept in {}",
                self.cluster_id,
                dir.keep().display()
            );
        }
        if std::thread::panicking() {
            eprintln!(
                "cluster {} data in {}",
                self.cluster_id,
                self.dir.path().display()
            );
            self.dump_logs(40);
        }
    }
}

/// A controller client over mutual TLS, presenting `tls` (a certificate of the cluster).
pub async fn controller_client(
    addr: &str,
    tls: &TlsMaterial,
) -> Option<ControllerServiceClient<tonic::transport::Channel>> {
    let Ok(Identity::Node { cluster_id, .. }) = tls.identity() else {
        panic!("the test client's certificate is a node's");
    };
    let server_name = ferry_identity::controller_server_name(&cluster_id);
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .ok()?
        .tls_config(ferry_identity::client_tls_config(tls, &server_name))
        .ok()?
        .connect()
        .await
        .ok()?;
    Some(ControllerServiceClient::new(channel))
}

/// The leader a controller reports (None when it has none or cannot be reached in 2 s).
pub async fn describe_leader(addr: &str, tls: &TlsMaterial) -> Option<i32> {
    let call = async {
        let mut client = controller_client(addr, tls).await?;
        let response = client
            .describe_quorum(DescribeQuorumRequest {})
            .await
            .ok()?;
        Some(response.into_inner().leader_id)
    };
    match tokio::time::timeout(Duration::from_secs(2), call).await {
        Ok(Some(leader)) if leader >= 0 => Some(leader),
        _ => None,
    }
}

/// Reads cluster Metadata (all topics: naming a topic could auto-create it).
pub struct MetadataReader {
    client: BaseProducer,
}

impl MetadataReader {
    pub fn new(bootstrap: &str) -> Self {
        let client = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("metadata client");
        MetadataReader { client }
    }

    pub async fn fetch(&self) -> Result<Metadata, KafkaError> {
        tokio::task::block_in_place(|| {
            self.client
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
        })
    }
}

pub fn broker_ids(metadata: &Metadata) -> BTreeSet<i32> {
    metadata.brokers().iter().map(|b| b.id()).collect()
}

pub fn topic_names(metadata: &Metadata) -> BTreeSet<String> {
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name().to_string())
        .collect()
}

/// One partition as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// The partitions of `topic` by id, if Metadata has the topic.
pub fn partitions(metadata: &Metadata, topic: &str) -> Option<Vec<PartitionView>> {
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())?;
    let mut views: Vec<PartitionView> = topic
        .partitions()
        .iter()
        .map(|p| PartitionView {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
        })
        .collect();
    views.sort_by_key(|p| p.partition);
    Some(views)
}

/// An admin client whose requests give up after `request_timeout`.
///
/// librdkafka also bounds every request by `socket.timeout.ms` (default 60 s); that is raised
/// to `request_timeout` when it is longer, so the client really waits that long.
pub struct Admin {
    client: AdminClient<DefaultClientContext>,
    options: AdminOptions,
    pub request_timeout: Duration,
}

impl Admin {
    pub fn new(bootstrap: &str, request_timeout: Duration) -> Self {
        let socket_timeout = request_timeout.max(Duration::from_secs(60));
        let client = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("socket.timeout.ms", socket_timeout.as_millis().to_string())
            .create()
            .expect("admin client");
        let options = AdminOptions::new()
            .request_timeout(Some(request_timeout))
            .operation_timeout(Some(request_timeout));
        Admin {
            client,
            options,
            request_timeout,
        }
    }

    /// Creates one topic; the error code the broker (or librdkafka) gave otherwise. Bounded by
    /// the request timeout plus a margin, so a hang fails the test instead of stalling it.
    ///
    /// librdkafka may drop the connection a request went out on when it replaces its bootstrap
    /// connections with the brokers it learned (`DestroyBroker`, a local error): the request
    /// may or may not have reached the broker, so it is sent once more, and TOPIC_ALREADY_EXISTS
    /// then means the first one did.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<(), RDKafkaErrorCode> {
        match self.create_topic_once(name, partitions, replication).await {
            Err(RDKafkaErrorCode::DestroyBroker) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                match self.create_topic_once(name, partitions, replication).await {
                    Err(RDKafkaErrorCode::TopicAlreadyExists) => Ok(()),
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn create_topic_once(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<(), RDKafkaErrorCode> {
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
        let limit = self.request_timeout + Duration::from_secs(15);
        let call = self.client.create_topics([&topic], &self.options);
        let results = tokio::time::timeout(limit, call)
            .await
            .unwrap_or_else(|_| panic!("CreateTopics {name} answered within {limit:?}"));
        match results {
            Ok(results) => match results.into_iter().next().expect("one result per topic") {
                Ok(_) => Ok(()),
                Err((_, code)) => Err(code),
            },
            Err(KafkaError::AdminOp(code)) => Err(code),
            Err(e) => panic!("CreateTopics {name}: unexpected client error {e}"),
        }
    }
}

/// Produces `count` messages to `topic` with acks=all (idempotence off); returns how many were
/// acknowledged per partition.
pub async fn produce(bootstrap: &str, topic: &str, count: usize) -> BTreeMap<i32, usize> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("key-{i}");
        let payload = format!("message {i}");
        let record = FutureRecord::to(topic).key(&key).payload(&payload);
        pending.push(producer.send_result(record).expect("queue has room"));
    }
    let mut acked = BTreeMap::new();
    for delivery in pending {
        let delivered = delivery
            .await
            .expect("not cancelled")
            .unwrap_or_else(|(e, _)| panic!("message acknowledged: {e}"));
        *acked.entry(delivered.partition).or_default() += 1;
    }
    tokio::task::block_in_place(|| producer.flush(Duration::from_secs(10))).unwrap();
    acked
}

/// Reads every partition of `topic` from the beginning to its end; returns the payloads per
/// partition in offset order. The consumer is dropped (closed) before this returns.
pub fn consume_all(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<String>> {
    tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "ferry-quorum-test-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut contents: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        let mut at_end = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while at_end.len() < partitions as usize {
            assert!(Instant::now() < deadline, "consumed {topic} within 60 s");
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => contents
                    .entry(m.partition())
                    .or_default()
                    .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into()),
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => panic!("consume failed: {e}"),
                None => {}
            }
        }
        contents
    })
}

/// One partition's entry of `ferry node status --output json` for the node at `admin`; None
/// while the node does not answer or does not host the partition.
pub fn partition_status(admin: &str, topic: &str, partition: i32) -> Option<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["node", "status", "--admin", admin, "--output", "json"])
        .output()
        .ok()?;
    let mut json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let partitions = json["partitions"].as_array_mut()?;
    let i = partitions
        .iter()
        .position(|p| p["topic"] == topic && p["partition"] == partition)?;
    Some(partitions.swap_remove(i))
}

/// (log end offset, high watermark) of one partition as `ferry node status` reports it.
pub fn partition_offsets(admin: &str, topic: &str, partition: i32) -> Option<(i64, i64)> {
    partition_status(admin, topic, partition).map(|p| {
        (
            p["log_end_offset"].as_i64().unwrap_or(-1),
            p["high_watermark"].as_i64().unwrap_or(-1),
        )
    })
}

/// `ferry node status --output json` of a running node, as text (for failure reports).
pub fn node_status(admin: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["node", "status", "--admin", admin, "--output", "json"])
        .output()
        .expect("run ferry node status");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// How long [`wait_for_full_isr`] waits.
pub const FULL_ISR_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls Metadata (through every running broker) until `done` accepts the partitions of
/// `topic`; panics with the last view after `timeout`.
pub async fn wait_for_partitions<T>(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
    what: &str,
    done: impl FnMut(&[PartitionView]) -> Option<T>,
) -> T {
    wait_for_partitions_via(cluster, &cluster.bootstrap(), topic, timeout, what, done).await
}

/// [`wait_for_partitions`] asking only `bootstrap`. (A restarted broker answers from the image
/// it kept on disk until it has followed the metadata log again, so a check that must not see
/// its old view asks another broker.)
pub async fn wait_for_partitions_via<T>(
    cluster: &Cluster,
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[PartitionView]) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last;
        let reader = MetadataReader::new(bootstrap);
        match reader.fetch().await {
            Ok(metadata) => match partitions(&metadata, topic) {
                Some(views) => match done(&views) {
                    Some(value) => return value,
                    None => last = format!("{views:?}"),
                },
                None => last = format!("no topic {topic}"),
            },
            Err(e) => last = format!("Metadata failed: {e}"),
        }
        if Instant::now() >= deadline {
            let statuses: Vec<String> = cluster
                .broker_ids()
                .into_iter()
                .filter_map(|id| cluster.node(id).admin.as_deref().map(node_status))
                .collect();
            panic!(
                "{what} within {timeout:?}; last: {last}\nbrokers report:\n{}",
                statuses.join("\n")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every partition of `topic` has a leader and all `replicas` in its ISR.
pub async fn wait_for_full_isr(cluster: &Cluster, topic: &str) -> Vec<PartitionView> {
    wait_for_partitions(
        cluster,
        topic,
        FULL_ISR_TIMEOUT,
        "a full ISR everywhere",
        |views| {
            views
                .iter()
                .all(|p| p.leader >= 0 && p.isr.len() == p.replicas.len())
                .then(|| views.to_vec())
        },
    )
    .await
}

/// How long [`read_back`] reads before it gives up.
pub const READ_BACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Every record of `topic`'s `partitions` from the start to the high watermark, as
/// (partition, offset) → payload, read with a group-less consumer. Reads on past an end of
/// partition until the partition's offsets reach `ends` (a new leader's high watermark may
/// trail the old one's for a moment); gives up at the bound and returns what it read.
pub fn read_back(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    ends: &BTreeMap<i32, i64>,
) -> BTreeMap<(i32, i64), String> {
    tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "ferry-read-back")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut records = BTreeMap::new();
        let mut at_end = BTreeSet::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = Instant::now() + READ_BACK_TIMEOUT;
        while at_end.len() < partitions as usize {
            if Instant::now() >= deadline {
                eprintln!("read {topic} back: gave up at {next:?}, wanted {ends:?}");
                break;
            }
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    let payload = String::from_utf8_lossy(m.payload().unwrap_or_default());
                    records.insert((m.partition(), m.offset()), payload.into_owned());
                    next.insert(m.partition(), m.offset() + 1);
                    at_end.remove(&m.partition());
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    let reached = next.get(&p).copied().unwrap_or(0);
                    if reached >= ends.get(&p).copied().unwrap_or(0) {
                        at_end.insert(p);
                    }
                }
                Some(Err(e)) => eprintln!("consumer error (retried): {e}"),
                None => {}
            }
        }
        records
    })
}
