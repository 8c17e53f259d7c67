//! Test support: the managed service as real processes — one `ferry control-plane`, agents
//! (`ferry agent`, one per zone) and the `ferry node` processes they start — on loopback, with
//! a client for the API.
//!
//! Every process the stack or its agents started is killed when the [`Stack`] drops: agents
//! leave their nodes running on purpose (static stability), so the drop also finds node
//! processes by their data directory under the stack's temporary directory.

#![allow(dead_code, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::host_service_client::HostServiceClient;
use ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient;
use tonic::transport::Channel;

/// How long a process may take to print its ready line.
pub const READY: Duration = Duration::from_secs(60);
/// How long a cluster may take to become ACTIVE (the goal is seconds; this only bounds a hang).
pub const ACTIVE_WAIT: Duration = Duration::from_secs(120);

/// The ferry binary under test.
pub fn ferry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.env("FERRY_LOG", "warn");
    command
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port range of `len` ports that looks free: starts at a pseudo-random base and checks
/// each port can be bound now. Ranges lie below Linux's ephemeral ports (32768 and up), which
/// the kernel hands to outgoing connections and `free_port` listeners of tests running
/// alongside, so a node's port is not taken between this check and its bind.
pub fn free_range(len: u16) -> (u16, u16) {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for attempt in 0..50u64 {
        let base =
            20_000 + ((seed.wrapping_mul(2654435761).wrapping_add(attempt * 7919)) % 12_000) as u16;
        let base = base - base % len;
        if (base..base + len).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return (base, base + len - 1);
        }
    }
    panic!("no free range of {len} ports");
}

/// Reads `child`'s stdout until a line starting with `prefix`; returns that line.
fn ready_line(child: &mut Child, prefix: &'static str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(prefix) {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(READY)
        .unwrap_or_else(|_| panic!("no {prefix:?} line within {READY:?}"))
}

/// The storage every agent a test starts offers (`--storage-bytes`): declared, so placement
/// never depends on how much disk the machine running the tests has free (an agent left to
/// measure it refuses a 10 GiB broker on a CI machine with 7 GB free). Agents record it and do
/// not enforce it on node directories.
pub const AGENT_STORAGE_BYTES: &str = "1099511627776";

/// One agent of the stack.
pub struct AgentProcess {
    pub zone: String,
    pub dir: PathBuf,
    pub ports: (u16, u16),
    pub child: Option<Child>,
}

/// The service: a control plane and agents.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub api_port: u16,
    /// The control plane's peer listener (raft, the agents' service; mutual TLS only).
    pub peer_port: u16,
    pub control_plane: Option<Child>,
    pub agents: Vec<AgentProcess>,
    pub admin_token: String,
}

impl Stack {
    /// Starts a control plane and one agent per zone in `zones`.
    pub fn start(zones: &[&str]) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = Stack {
            api_port: free_port(),
            peer_port: free_port(),
            dir,
            control_plane: None,
            agents: Vec::new(),
            admin_token: String::new(),
        };
        stack.start_control_plane();
        stack.admin_token = stack.token(&["--tenant", "acme", "--role", "admin"]);
        for zone in zones {
            let ports = free_range(100);
            let dir = stack.dir.path().join(format!("agent-{zone}"));
            stack.agents.push(AgentProcess {
                zone: zone.to_string(),
                dir,
                ports,
                child: None,
            });
        }
        for i in 0..stack.agents.len() {
            stack.start_agent(i);
        }
        stack.wait_for_hosts();
        stack
    }

    /// Waits until every agent's host is registered and reported (HEALTHY).
    pub fn wait_for_hosts(&self) {
        let deadline = Instant::now() + READY;
        loop {
            let output = ferry()
                .args(["host", "list", "--output", "json", "--api", &self.api()])
                .env("FERRY_TOKEN", &self.admin_token)
                .output()
                .unwrap();
            let healthy = serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .ok()
                .and_then(|hosts| {
                    hosts.as_array().map(|hosts| {
                        hosts
                            .iter()
                            .filter(|h| h["health"] == "HOST_HEALTH_HEALTHY")
                            .count()
                    })
                })
                .unwrap_or(0);
            if healthy == self.agents.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{healthy} of {} hosts healthy within {READY:?}: {output:?}",
                self.agents.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn secret_file(&self) -> PathBuf {
        self.dir.path().join("token-secret")
    }

    /// Where the control plane keeps its CA: apart from its data directory, as an operator
    /// would, so a control plane that lost its store keeps its CA.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// The control plane's CA certificate (made at the first start).
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// A one-time join token for `host_id`, written to a file for `--join-token-file`.
    pub fn join_token_file(&self, host_id: &str) -> PathBuf {
        let ca = self.ca_cert();
        let token = self.token(&[
            "--role",
            "agent",
            "--host",
            host_id,
            "--ca-cert",
            ca.to_str().unwrap(),
        ]);
        let path = self.dir.path().join(format!("join-token-{host_id}"));
        std::fs::write(&path, token).unwrap();
        path
    }

    /// Starts (or restarts) the control plane on its port and directory.
    pub fn start_control_plane(&mut self) {
        let mut child = ferry()
            .args(["control-plane", "--listen"])
            .arg(format!("127.0.0.1:{}", self.api_port))
            .arg("--peer-listen")
            .arg(format!("127.0.0.1:{}", self.peer_port))
            .arg("--data-dir")
            .arg(self.dir.path().join("control-plane"))
            .arg("--ca-dir")
            .arg(self.ca_dir())
            .arg("--token-secret-file")
            .arg(self.secret_file())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ferry control-plane");
        ready_line(&mut child, "ferry control-plane ready:");
        self.control_plane = Some(child);
    }

    /// kill -9 of the control plane.
    pub fn kill_control_plane(&mut self) {
        if let Some(mut child) = self.control_plane.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn token(&self, args: &[&str]) -> String {
        let output = ferry()
            .args(["token", "create"])
            .args(args)
            .arg("--token-secret-file")
            .arg(self.secret_file())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// Starts (or restarts) agent `i`.
    pub fn start_agent(&mut self, i: usize) {
        let host_id = format!("host-{}", self.agents[i].zone);
        // A join token for the first start; a restart finds the host certificate in its dir.
        let join_token = self.join_token_file(&host_id);
        let agent = &self.agents[i];
        let mut child = ferry()
            .args([
                "agent",
                "--control-plane",
                &self.api(),
                "--zone",
                &agent.zone,
            ])
            .args(["--address", "127.0.0.1", "--host-id"])
            .arg(format!("host-{}", agent.zone))
            .arg("--ports")
            .arg(format!("{}-{}", agent.ports.0, agent.ports.1))
            .arg("--data-dir")
            .arg(&agent.dir)
            .args(["--storage-bytes", AGENT_STORAGE_BYTES])
            .arg("--join-token-file")
            .arg(&join_token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ferry agent");
        ready_line(&mut child, "ferry agent ready:");
        self.agents[i].child = Some(child);
    }

    /// SIGSTOP of agent `i`: it neither reports nor pulls assignments until
    /// [`Stack::resume_agent`]; its nodes keep running. (The control plane marks its host
    /// UNREACHABLE once it has been silent for the host timeout, 15 s by default.)
    pub fn pause_agent(&self, i: usize) {
        let child = self.agents[i].child.as_ref().expect("agent running");
        signal(child.id(), "STOP");
    }

    /// SIGCONT of agent `i` after [`Stack::pause_agent`].
    pub fn resume_agent(&self, i: usize) {
        let child = self.agents[i].child.as_ref().expect("agent running");
        signal(child.id(), "CONT");
    }

    /// kill -9 of agent `i` (its nodes keep running).
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut child) = self.agents[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The pids of `ferry node` processes whose command line mentions `dir`.
    pub fn node_pids_under(dir: &Path) -> Vec<u32> {
        let needle = dir.to_string_lossy().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(" node ") && cmdline.contains(&needle) {
                // Zombies keep their cmdline empty; a live node has it.
                pids.push(pid);
            }
        }
        pids.sort();
        pids
    }

    /// The stack's `ferry node` processes.
    pub fn node_pids(&self) -> Vec<u32> {
        Self::node_pids_under(self.dir.path())
    }

    pub async fn channel(&self) -> Channel {
        let deadline = Instant::now() + READY;
        loop {
            match Channel::from_shared(self.api()).unwrap().connect().await {
                Ok(channel) => return channel,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(err) => panic!("connecting to {}: {err}", self.api()),
            }
        }
    }

    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        authorized(&self.admin_token, message)
    }

    pub async fn clusters(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.channel().await)
    }

    pub async fn operations(&self) -> OperationServiceClient<Channel> {
        OperationServiceClient::new(self.channel().await)
    }

    /// Polls the cluster until it is in `state` (panics on FAILED or after [`ACTIVE_WAIT`]);
    /// retries through control-plane restarts.
    pub async fn wait_for_state(&self, cluster_id: &str, state: pb::ClusterState) -> pb::Cluster {
        let deadline = Instant::now() + ACTIVE_WAIT;
        loop {
            let got = self
                .clusters()
                .await
                .get_cluster(self.request(pb::GetClusterRequest {
                    cluster_id: cluster_id.into(),
                }))
                .await;
            if let Ok(cluster) = got {
                let cluster = cluster.into_inner();
                let status = cluster.status.clone().unwrap_or_default();
                if status.state == state as i32 {
                    return cluster;
                }
                assert_ne!(
                    status.state,
                    pb::ClusterState::Failed as i32,
                    "cluster failed: {:?}",
                    status.state_info
                );
            }
            assert!(
                Instant::now() < deadline,
                "cluster {cluster_id} not {state:?} within {ACTIVE_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls until GetCluster answers NOT_FOUND (a finished deletion).
    pub async fn wait_until_gone(&self, cluster_id: &str) {
        let deadline = Instant::now() + ACTIVE_WAIT;
        loop {
            let got = self
                .clusters()
                .await
                .get_cluster(self.request(pb::GetClusterRequest {
                    cluster_id: cluster_id.into(),
                }))
                .await;
            if matches!(&got, Err(status) if status.code() == tonic::Code::NotFound) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster {cluster_id} not deleted in time"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            if let Some(mut child) = agent.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.kill_control_plane();
        for pid in self.node_pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Sends `SIG<name>` (e.g. `STOP`, `CONT`) to process `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Now, in ms since the Unix epoch (the control plane's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The registered hosts, as the API at `api` lists them to `token`.
pub async fn list_hosts(api: &str, token: &str) -> Result<Vec<pb::Host>, tonic::Status> {
    let channel = Channel::from_shared(api.to_string())
        .unwrap()
        .connect_lazy();
    let hosts = HostServiceClient::new(channel)
        .list_hosts(authorized(
            token,
            pb::ListHostsRequest {
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await?
        .into_inner()
        .hosts;
    Ok(hosts)
}

/// Polls operation `operation_id` through `operations` until it is really under way: RUNNING,
/// with some steps DONE and some not, while `node_processes()` counts some but not all of the
/// `nodes` node processes it starts. Returns it then; panics if that is not seen within
/// [`READY`]. For tests that interrupt an operation and must know they did.
pub async fn wait_until_under_way(
    operations: &mut OperationServiceClient<Channel>,
    token: &str,
    operation_id: &str,
    node_processes: impl Fn() -> usize,
    nodes: usize,
) -> pb::Operation {
    let deadline = Instant::now() + READY;
    let mut last = None;
    loop {
        let got = operations
            .get_operation(authorized(
                token,
                pb::GetOperationRequest {
                    operation_id: operation_id.into(),
                },
            ))
            .await;
        if let Ok(operation) = got {
            let operation = operation.into_inner();
            let done = operation
                .steps
                .iter()
                .filter(|s| s.state == pb::StepState::Done as i32)
                .count();
            let running = node_processes();
            if operation.state == pb::OperationState::Running as i32
                && done > 0
                && done < operation.steps.len()
                && running > 0
                && running < nodes
            {
                return operation;
            }
            last = Some((operation, running));
        }
        assert!(
            Instant::now() < deadline,
            "operation {operation_id} never seen under way (some steps done, some node \
             processes running): last seen {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request with `token` as its bearer token.
pub fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A 3-broker / 3-controller spec over zones a, b, c.
pub fn spec(name: &str) -> pb::ClusterSpec {
    pb::ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: 3,
        controller_count: 3,
        zones: vec!["a".into(), "b".into(), "c".into()],
        storage_per_broker_bytes: 1 << 30,
        ..Default::default()
    }
}
