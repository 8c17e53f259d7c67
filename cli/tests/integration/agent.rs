//! `ferry agent` end to end: a control plane in this process, a real `ferry agent` process
//! running real `ferry node` processes on loopback, and rdkafka for Kafka traffic.
//!
//! The cluster reconciler is not part of these tests: they write a host's assignments straight
//! into the control plane's store ([`Store::set_assignments`]) and read the agent's reports back
//! from it, so what is tested is the agent and `AgentService`.
//!
//! Every process (control plane tasks, agents, nodes) is stopped when the test ends, also on
//! panic: agents by their [`AgentProcess`] guard, nodes (which outlive their agent on purpose)
//! by the [`NodeReaper`] guard from their pid files. Every wait is bounded.

use crate::cluster;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster::{Admin, MetadataReader, consume_all, free_port, partitions, produce};
use ferry_control_plane::enroll::JoinTokens;
use ferry_control_plane::model::{Host, HostAssignment, NodeState};
use ferry_control_plane::placement::Role as NodeRole;
use ferry_control_plane::server::{ISSUER, Server, ServerOptions};
use ferry_control_plane::store::{QuorumStore, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The control plane's token secret in these tests.
const SECRET: &[u8] = b"agent-tests-secret-0123456789abcdef";
/// How long a process may take to print its ready line.
const READY: Duration = Duration::from_secs(60);
/// How long a cluster may take to report every node RUNNING.
const CONVERGE: Duration = Duration::from_secs(120);
/// Pause between two polls of a condition.
const POLL: Duration = Duration::from_millis(250);

/// A control plane served by this process, restartable on the same address and directory.
struct ControlPlane {
    /// Where it keeps its store.
    dir: PathBuf,
    /// Its API address (fixed after the first start, so agents find it again).
    addr: SocketAddr,
    /// Its peer address (fixed after the first start: enrolled agents keep it).
    peer_addr: SocketAddr,
    /// The running server: its stop signal and task.
    running: Option<(CancellationToken, JoinHandle<()>)>,
    /// Its store, for writing assignments and reading reports.
    store: QuorumStore,
}

impl ControlPlane {
    /// Starts a control plane over `dir` on `addr` and `peer_addr` (port 0 for free ones).
    async fn start(dir: &Path, addr: SocketAddr) -> ControlPlane {
        Self::start_on(dir, addr, "127.0.0.1:0".parse().unwrap()).await
    }

    async fn start_on(dir: &Path, addr: SocketAddr, peer_addr: SocketAddr) -> ControlPlane {
        let mut options = ServerOptions::new(dir, addr, SECRET.to_vec());
        options.peer_listen = peer_addr;
        let server = Server::bind(options)
            .await
            .expect("the control plane starts");
        let addr = server.local_addr();
        let peer_addr = server.peer_addr();
        let store = server.store();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server.run(cancel.clone().cancelled_owned()));
        ControlPlane {
            dir: dir.to_path_buf(),
            addr,
            peer_addr,
            running: Some((cancel, task)),
            store,
        }
    }

    /// Stops the server (its port closes).
    async fn stop(&mut self) {
        if let Some((cancel, task)) = self.running.take() {
            cancel.cancel();
            task.await.unwrap();
        }
    }

    /// Starts it again on the same address and directory.
    async fn restart(&mut self) {
        self.stop().await;
        *self = ControlPlane::start_on(&self.dir.clone(), self.addr, self.peer_addr).await;
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The host, once registered.
    async fn host(&self, host_id: &str) -> Option<Host> {
        self.store.get_host(host_id).await.ok()
    }

    /// Waits until `done` holds for the host; panics with the host's last state after
    /// `timeout`.
    async fn wait_for(
        &self,
        host_id: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Host) -> bool,
    ) -> Host {
        let deadline = Instant::now() + timeout;
        loop {
            let host = self.host(host_id).await;
            if let Some(host) = &host
                && done(host)
            {
                return host.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {timeout:?}; host: {host:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the agent reported every one of `expected` nodes RUNNING, in a report
    /// received after `after_ms`.
    async fn wait_running(&self, host_id: &str, expected: usize, after_ms: i64) -> Host {
        self.wait_for(host_id, "every node RUNNING", CONVERGE, |host| {
            host.last_seen_at_ms > after_ms
                && host.nodes.len() == expected
                && host.nodes.iter().all(|n| n.state == NodeState::Running)
        })
        .await
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some((cancel, _)) = &self.running {
            cancel.cancel();
        }
    }
}

/// A one-time join token for `host_id` minted by `ferry token create --role agent` from the
/// control plane's secret and its CA (in `cp_dir`), written to a file for
/// `--join-token-file`.
fn join_token_file(dir: &Path, cp_dir: &Path, host_id: &str) -> PathBuf {
    let secret = dir.join("token-secret");
    fs::write(&secret, SECRET).unwrap();
    let output = Command::new(ferry_binary(dir))
        .args(["token", "create", "--role", "agent", "--host", host_id])
        .arg("--ca-cert")
        .arg(cp_dir.join("ca").join("ca.pem"))
        .arg("--token-secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let claims = JoinTokens::new(SECRET, ISSUER)
        .unwrap()
        .verify(&token)
        .unwrap();
    assert_eq!(claims.sub, host_id);
    let path = dir.join(format!("join-token-{host_id}"));
    fs::write(&path, token).unwrap();
    path
}

/// The `ferry` binary under test, hard-linked into `dir` once: agents run nodes from their own
/// executable, and this keeps them on the binary of this build even if the build directory is
/// rebuilt while the test runs (a shared target directory).
fn ferry_binary(dir: &Path) -> PathBuf {
    let link = dir.join("ferry");
    if link.exists() {
        return link;
    }
    if fs::hard_link(env!("CARGO_BIN_EXE_ferry"), &link).is_err() {
        fs::copy(env!("CARGO_BIN_EXE_ferry"), &link).unwrap();
    }
    let help = Command::new(&link)
        .args(["agent", "--help"])
        .output()
        .unwrap();
    assert!(
        help.status.success(),
        "{} has no `agent` command: another build replaced it (shared target directory?); \
         rebuild and rerun",
        env!("CARGO_BIN_EXE_ferry")
    );
    link
}

/// A `ferry agent` process; killed (-9) on drop.
struct AgentProcess {
    child: Child,
    /// The binary it runs (and its nodes run).
    binary: PathBuf,
    /// The arguments it was started with, to restart it alike.
    args: Vec<String>,
    /// Its stderr.
    log: PathBuf,
}

impl AgentProcess {
    /// Starts `ferry agent` for host `host_id` in zone a on 127.0.0.1 with data in
    /// `data_dir`, and waits for its ready line.
    fn start(
        control_plane: &str,
        token_file: &Path,
        data_dir: &Path,
        host_id: &str,
    ) -> AgentProcess {
        Self::start_with(control_plane, token_file, data_dir, host_id, &[])
    }

    /// [`AgentProcess::start`] with extra flags.
    fn start_with(
        control_plane: &str,
        token_file: &Path,
        data_dir: &Path,
        host_id: &str,
        extra: &[&str],
    ) -> AgentProcess {
        let mut args = vec![
            "agent".to_string(),
            "--control-plane".into(),
            control_plane.into(),
            "--zone".into(),
            "a".into(),
            "--address".into(),
            "127.0.0.1".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--host-id".into(),
            host_id.into(),
            "--ports".into(),
            "20000-29999".into(),
            "--join-token-file".into(),
            token_file.display().to_string(),
            "--stop-timeout-ms".into(),
            "5000".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let log = data_dir.with_extension("log");
        let binary = ferry_binary(data_dir.parent().unwrap());
        Self::spawn(binary, args, log)
    }

    fn spawn(binary: PathBuf, args: Vec<String>, log: PathBuf) -> AgentProcess {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(&binary)
            .args(&args)
            .env("FERRY_LOG", "info")
            .env_remove("FERRY_TOKEN")
            .env_remove("FERRY_JOIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn ferry agent");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ferry agent ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        let ready = rx.recv_timeout(READY);
        let mut agent = AgentProcess {
            child,
            binary,
            args,
            log,
        };
        if ready.is_err() {
            panic!(
                "ferry agent ready within {READY:?}; log:\n{}",
                agent.log_tail()
            );
        }
        assert!(agent.child.try_wait().unwrap().is_none());
        agent
    }

    /// kill -9, then start it again with the same arguments.
    fn restart(mut self) -> AgentProcess {
        self.kill9();
        let (args, log) = (std::mem::take(&mut self.args), self.log.clone());
        Self::spawn(self.binary.clone(), args, log)
    }

    /// SIGTERM, then a clean exit (bounded).
    fn terminate(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "ferry agent exits 0 on SIGTERM: {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ferry agent exits within 60 s of SIGTERM"
            );
            std::thread::sleep(POLL);
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- agent log tail:\n{}", self.log_tail());
        }
        self.kill9();
    }
}

/// Kills (-9) every node process found in pid files under an agent's data dir when dropped:
/// nodes outlive their agent by design, so the test must end them.
struct NodeReaper(PathBuf);

impl Drop for NodeReaper {
    fn drop(&mut self) {
        for (_, pid) in node_pids(&self.0) {
            if is_node_of(pid, &self.0) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// Prints the tail of every node's log when the test panics.
struct NodeLogs(PathBuf);

impl Drop for NodeLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (cluster, id) in node_pids(&self.0).keys() {
            let path = self.0.join(format!("nodes/{cluster}/{id}/node.log"));
            let log = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- node {id} log tail:\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n")
            );
        }
    }
}

/// The pid in each node's pid file under the agent data dir `agent_dir`, by node id.
fn node_pids(agent_dir: &Path) -> BTreeMap<(String, i32), u32> {
    let mut pids = BTreeMap::new();
    let Ok(clusters) = fs::read_dir(agent_dir.join("nodes")) else {
        return pids;
    };
    for cluster in clusters.flatten() {
        for node in fs::read_dir(cluster.path()).into_iter().flatten().flatten() {
            let pid = fs::read_to_string(node.path().join("node.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            let id = node.file_name().to_string_lossy().parse().ok();
            if let (Some(pid), Some(id)) = (pid, id) {
                pids.insert(
                    (cluster.file_name().to_string_lossy().into_owned(), id),
                    pid,
                );
            }
        }
    }
    pids
}

/// Whether `pid` is alive (not a zombie) and runs a node under `agent_dir`.
fn is_node_of(pid: u32, agent_dir: &Path) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | None) {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains(
        &*fs::canonicalize(agent_dir)
            .unwrap_or_default()
            .to_string_lossy(),
    )
}

/// How many live processes run with `--data-dir <dir>`.
fn processes_with_data_dir(dir: &Path) -> usize {
    let wanted = format!("--data-dir\0{}\0", dir.display());
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&wanted))
                .unwrap_or(false)
        })
        .count()
}

/// A 3-controller + `brokers`-broker cluster on 127.0.0.1, all on one host, on free ports.
fn cluster_assignments(cluster_id: &str, brokers: i32) -> Vec<HostAssignment> {
    let controllers: Vec<(i32, u16)> = (1..=3).map(|id| (id, free_port())).collect();
    let voters: Vec<String> = controllers
        .iter()
        .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
        .collect();
    let node = |node_id, role, kafka_port, controller_port| HostAssignment {
        cluster_id: cluster_id.into(),
        node_id,
        role,
        address: "127.0.0.1".into(),
        kafka_port,
        controller_port,
        admin_port: free_port(),
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        controller_quorum_voters: voters.clone(),
        config_fingerprint: String::new(),
    };
    let mut nodes: Vec<HostAssignment> = controllers
        .iter()
        .map(|(id, port)| node(*id, NodeRole::Controller, None, Some(*port)))
        .collect();
    for b in 0..brokers {
        nodes.push(node(101 + b, NodeRole::Broker, Some(free_port()), None));
    }
    nodes
}

/// The bootstrap servers of the brokers among `nodes`.
fn bootstrap(nodes: &[HostAssignment]) -> String {
    nodes
        .iter()
        .filter_map(|n| n.kafka_port.map(|p| format!("127.0.0.1:{p}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits until every partition of `topic` has a leader that is one of the brokers.
async fn wait_for_leaders(bootstrap: &str, topic: &str) {
    let reader = MetadataReader::new(bootstrap);
    let deadline = Instant::now() + CONVERGE;
    loop {
        let last = match reader.fetch().await {
            Ok(metadata) => match partitions(&metadata, topic) {
                Some(views) if !views.is_empty() && views.iter().all(|p| p.leader >= 0) => return,
                views => format!("{views:?}"),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{topic} has leaders within {CONVERGE:?}; last: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Produces `count` messages to `topic` and reads the whole topic back; returns how many
/// messages it holds.
async fn produce_and_fetch(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> usize {
    wait_for_leaders(bootstrap, topic).await;
    let acked: usize = produce(bootstrap, topic, count).await.values().sum();
    assert_eq!(acked, count);
    consume_all(bootstrap, topic, partitions)
        .values()
        .map(Vec::len)
        .sum()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agent_runs_a_cluster_through_node_agent_and_control_plane_failures() {
    let dir = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("agent");
    let _reaper = NodeReaper(agent_dir.clone());
    let _logs = NodeLogs(agent_dir.clone());
    let mut cp = ControlPlane::start(&dir.path().join("cp"), "127.0.0.1:0".parse().unwrap()).await;
    let token = join_token_file(dir.path(), &dir.path().join("cp"), "host-a");
    let mut agent = AgentProcess::start(&cp.url(), &token, &agent_dir, "host-a");
    cp.wait_for("host-a", "the agent registers", READY, |_| true)
        .await;

    // Nodes start and report RUNNING.
    let nodes = cluster_assignments("cl-agent", 2);
    let bootstrap = bootstrap(&nodes);
    cp.store
        .set_assignments("host-a", nodes.clone(), None)
        .await
        .unwrap();
    let host = cp.wait_running("host-a", 5, 0).await;
    assert_eq!(host.applied_generation, host.generation);
    let admin = Admin::new(&bootstrap, Duration::from_secs(10));
    // Replication factor 1: replication between brokers is not what is tested here.
    admin.create_topic("orders", 2, 1).await.unwrap();
    assert_eq!(produce_and_fetch(&bootstrap, "orders", 2, 50).await, 50);

    // kill -9 of a node: restarted (a new pid), RUNNING again.
    let pids = node_pids(&agent_dir);
    assert_eq!(pids.len(), 5, "{pids:?}");
    let broker = ("cl-agent".to_string(), 101);
    let old = pids[&broker];
    Command::new("kill")
        .args(["-9", &old.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + CONVERGE;
    while node_pids(&agent_dir).get(&broker) == Some(&old) {
        assert!(
            Instant::now() < deadline,
            "node 101 restarted within {CONVERGE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    let restarted_at = now_ms();
    cp.wait_running("host-a", 5, restarted_at).await;
    assert!(!is_node_of(old, &agent_dir));

    // kill -9 of the agent: its nodes keep serving produce and fetch.
    let pids = node_pids(&agent_dir);
    agent.kill9();
    assert_eq!(produce_and_fetch(&bootstrap, "orders", 2, 50).await, 100);
    for pid in pids.values() {
        assert!(
            is_node_of(*pid, &agent_dir),
            "node {pid} outlives its agent"
        );
    }

    // The agent restarted: the same processes are re-adopted, none started twice.
    let restarted_at = now_ms();
    agent = agent.restart();
    cp.wait_running("host-a", 5, restarted_at).await;
    // A few more reports, to be sure nothing is restarted after adoption.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        node_pids(&agent_dir),
        pids,
        "the same pids after the agent restart"
    );
    for (cluster, id) in pids.keys() {
        let data = fs::canonicalize(&agent_dir)
            .unwrap()
            .join(format!("nodes/{cluster}/{id}/data"));
        assert_eq!(
            processes_with_data_dir(&data),
            1,
            "one process for node {id}"
        );
    }

    // The control plane stops: the nodes and the agent keep running; the agent reconnects
    // when it returns.
    cp.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(agent.is_running(), "the agent survives the control plane");
    assert_eq!(produce_and_fetch(&bootstrap, "orders", 2, 50).await, 150);
    assert_eq!(node_pids(&agent_dir), pids);
    let back_at = now_ms();
    cp.restart().await;
    cp.wait_running("host-a", 5, back_at).await;
    assert_eq!(node_pids(&agent_dir), pids);

    // Assignments removed: the processes end and their directories go.
    let host = cp
        .store
        .set_assignments("host-a", vec![], None)
        .await
        .unwrap();
    cp.wait_for("host-a", "every node removed", CONVERGE, |h| {
        h.applied_generation == host.generation && h.nodes.is_empty()
    })
    .await;
    for pid in pids.values() {
        assert!(!is_node_of(*pid, &agent_dir), "node process {pid} is gone");
    }
    assert!(!agent_dir.join("nodes/cl-agent").exists());
    assert!(agent.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_start_is_unhealthy_with_the_cause_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("agent");
    let _reaper = NodeReaper(agent_dir.clone());
    let cp = ControlPlane::start(&dir.path().join("cp"), "127.0.0.1:0".parse().unwrap()).await;
    let token = join_token_file(dir.path(), &dir.path().join("cp"), "host-b");
    let agent = AgentProcess::start(&cp.url(), &token, &agent_dir, "host-b");
    cp.wait_for("host-b", "the agent registers", READY, |_| true)
        .await;

    // A single-voter quorum whose controller port someone else holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let node = HostAssignment {
        cluster_id: "cl-taken".into(),
        node_id: 1,
        role: NodeRole::Controller,
        address: "127.0.0.1".into(),
        kafka_port: None,
        controller_port: Some(port),
        admin_port: free_port(),
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: BTreeMap::new(),
        controller_quorum_voters: vec![format!("1@127.0.0.1:{port}")],
        config_fingerprint: String::new(),
    };
    cp.store
        .set_assignments("host-b", vec![node], None)
        .await
        .unwrap();
    let host = cp
        .wait_for("host-b", "the node reported UNHEALTHY", CONVERGE, |h| {
            h.nodes.iter().any(|n| n.state == NodeState::Unhealthy)
        })
        .await;
    let message = &host.nodes[0].message;
    for expected in [
        "node 1 of cluster cl-taken",
        "exited with status 1",
        &format!("127.0.0.1:{port}"),
        "in use",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message:?}");
    }

    // The port is freed: the next restart succeeds.
    drop(taken);
    cp.wait_running("host-b", 1, 0).await;

    // A stopped agent leaves its node running (static stability) ...
    let pids = node_pids(&agent_dir);
    assert_eq!(pids.len(), 1);
    agent.terminate();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = *pids.values().next().unwrap();
    assert!(
        is_node_of(pid, &agent_dir),
        "the node outlives a stopped agent"
    );

    // ... unless told to stop it: the node stops (its directory stays, still assigned).
    let restarted_at = now_ms();
    let agent = AgentProcess::start_with(
        &cp.url(),
        &token,
        &agent_dir,
        "host-b",
        &["--stop-nodes-on-exit"],
    );
    cp.wait_running("host-b", 1, restarted_at).await;
    assert_eq!(node_pids(&agent_dir), pids, "re-adopted, not restarted");
    agent.terminate();
    assert!(
        !is_node_of(pid, &agent_dir),
        "the node stopped with its agent"
    );
    assert!(agent_dir.join("nodes/cl-taken/1/data").is_dir());
}
