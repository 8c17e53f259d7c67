//! Real `ferry node` processes on loopback, for the workloads that start their own cluster:
//! a controller quorum (`controller-failover`), optionally with brokers (`replication`).
//!
//! Every controller gets a free loopback port (chosen up front, because each voter must know
//! every other voter's address) and a data directory under one temporary directory. A
//! controller can be killed with SIGKILL and restarted on the same port and directory. Dropping
//! the [`Quorum`] kills every process it started, so an error anywhere still cleans up.
//!
//! Nodes of a quorum talk over mutual TLS: the quorum keeps a CA in `<base>/ca/` and gives each
//! node a certificate in `<node dir>/tls/`; workloads that call the controllers directly
//! present [`Quorum::client_tls`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_identity::{CertificateAuthority, Identity, NodeRoles, TlsMaterial};

/// How long a starting node may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The node id in [`Quorum::client_tls`]'s certificate (no node has it).
pub const LOAD_CLIENT_NODE_ID: i32 = 9_999;

/// How often a restart is retried when the port is briefly not reusable.
const START_ATTEMPTS: u32 = 5;

/// The prefix of the line `ferry node` prints on stdout once it serves.
const READY_PREFIX: &str = "ferry node ready:";

/// One node process (or its slot while it is down): a controller, or a broker when it has a
/// rack.
struct Controller {
    id: i32,
    /// The controller listener, or the broker's Kafka listener (fixed across restarts, so
    /// bootstrap lists stay valid).
    addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    /// `Some(rack)` for a broker.
    rack: Option<String>,
}

/// A quorum of controller processes. See the module docs.
pub struct Quorum {
    ferry_bin: PathBuf,
    cluster_id: String,
    controllers: Vec<Controller>,
    /// `--set NAME=VALUE` given to every node.
    settings: Vec<String>,
    /// Holds the data directories; removed on drop unless kept.
    base: Option<tempfile::TempDir>,
    base_dir: PathBuf,
    /// The cluster's CA; every node's certificate chains to it.
    ca: CertificateAuthority,
}

/// A free loopback port: bind port 0, read the port, close. Another process may take it before
/// the node binds it; starting then fails loudly rather than measuring the wrong thing.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    listener.local_addr().context("reading a bound address")
}

impl Quorum {
    /// Plans a quorum of `voters` controllers with node ids `1..=voters`, data under a new
    /// temporary directory in `parent` (the system one when `None`). Starts nothing yet.
    pub fn plan(
        ferry_bin: &Path,
        voters: i32,
        cluster_id: &str,
        parent: Option<&Path>,
    ) -> anyhow::Result<Quorum> {
        anyhow::ensure!(
            ferry_bin.is_file(),
            "the ferry binary is missing at {} (build it with `cargo build --release -p ferry-cli`)",
            ferry_bin.display()
        );
        anyhow::ensure!((1..=9).contains(&voters), "voters must be in 1..=9");
        let base = match parent {
            Some(parent) => tempfile::Builder::new()
                .prefix("ferry-load-quorum-")
                .tempdir_in(parent),
            None => tempfile::Builder::new()
                .prefix("ferry-load-quorum-")
                .tempdir(),
        }
        .context("creating the quorum's temporary directory")?;
        let base_dir = base.path().to_path_buf();
        let ca = CertificateAuthority::load_or_generate(&base_dir.join("ca"), "ferry-load CA")
            .context("making the quorum's CA")?;
        let mut controllers = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for id in 1..=voters {
            // Distinct ports, even if the kernel hands the same one out twice in a row.
            let addr = loop {
                let addr = free_port()?;
                if seen.insert(addr.port()) {
                    break addr;
                }
            };
            controllers.push(Controller {
                id,
                addr,
                dir: base_dir.join(format!("controller-{id}")),
                child: None,
                rack: None,
            });
        }
        Ok(Quorum {
            ferry_bin: ferry_bin.to_path_buf(),
            cluster_id: cluster_id.to_string(),
            controllers,
            settings: Vec::new(),
            base: Some(base),
            base_dir,
            ca,
        })
    }

    /// A broker certificate of this cluster (node [`LOAD_CLIENT_NODE_ID`]) for calling the
    /// controllers directly (Execute, DescribeQuorum), and the server name they answer to.
    pub fn client_tls(&self) -> anyhow::Result<(TlsMaterial, String)> {
        let identity = Identity::Node {
            cluster_id: self.cluster_id.clone(),
            node_id: LOAD_CLIENT_NODE_ID,
            roles: NodeRoles::BROKER,
        };
        let material = self
            .ca
            .issue(&identity, &[], ferry_identity::CERT_VALIDITY_DEFAULT)?;
        Ok((
            material,
            ferry_identity::controller_server_name(&self.cluster_id),
        ))
    }

    /// Node id → `host:port` of every voter.
    pub fn voters(&self) -> BTreeMap<i32, String> {
        self.controllers
            .iter()
            .filter(|c| c.rack.is_none())
            .map(|c| (c.id, c.addr.to_string()))
            .collect()
    }

    /// Plans one broker per rack, with node ids 101, 102, … and fixed Kafka ports. Starts
    /// nothing yet.
    pub fn add_brokers(&mut self, racks: &[&str]) -> anyhow::Result<()> {
        for (i, rack) in racks.iter().enumerate() {
            let id = 101 + i as i32;
            let addr = loop {
                let addr = free_port()?;
                if self
                    .controllers
                    .iter()
                    .all(|c| c.addr.port() != addr.port())
                {
                    break addr;
                }
            };
            self.controllers.push(Controller {
                id,
                addr,
                dir: self.base_dir.join(format!("broker-{id}")),
                child: None,
                rack: Some(rack.to_string()),
            });
        }
        Ok(())
    }

    /// Gives every node `--set NAME=VALUE` for each of `settings` (from its next start).
    pub fn set(&mut self, settings: &[&str]) {
        self.settings.extend(settings.iter().map(|s| s.to_string()));
    }

    /// Node ids of the brokers.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.controllers
            .iter()
            .filter(|c| c.rack.is_some())
            .map(|c| c.id)
            .collect()
    }

    /// Kafka bootstrap list of the brokers (running or not: their ports are fixed).
    pub fn bootstrap(&self) -> String {
        self.controllers
            .iter()
            .filter(|c| c.rack.is_some())
            .map(|c| c.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The Kafka address of broker `id`.
    pub fn broker_addr(&self, id: i32) -> Option<String> {
        self.controllers
            .iter()
            .find(|c| c.id == id && c.rack.is_some())
            .map(|c| c.addr.to_string())
    }

    /// Where the data directories and node logs are.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The `--controller-quorum` value: `1@127.0.0.1:P1,2@…`.
    fn quorum_flag(&self) -> String {
        self.controllers
            .iter()
            .filter(|c| c.rack.is_none())
            .map(|c| format!("{}@{}", c.id, c.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts every controller that is not running, and waits for each ready line.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        let ids: Vec<i32> = self.controllers.iter().map(|c| c.id).collect();
        for id in ids {
            if !self.is_running(id) {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// Whether controller `id` has a live process.
    pub fn is_running(&self, id: i32) -> bool {
        self.controllers
            .iter()
            .any(|c| c.id == id && c.child.is_some())
    }

    /// Starts controller `id` on its port and directory; returns once it printed its ready
    /// line. Retries a few times when the process exits early (e.g. its port is not free yet).
    pub fn start(&mut self, id: i32) -> anyhow::Result<()> {
        let flag = self.quorum_flag();
        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            match self.spawn(id, &flag) {
                Ok(child) => {
                    self.controller_mut(id)?.child = Some(child);
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(controller = id, attempt, "start failed: {error:#}");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("controller {id} did not start")))
    }

    /// Spawns one `ferry node` and waits for its ready line; kills it on failure.
    fn spawn(&self, id: i32, quorum_flag: &str) -> anyhow::Result<Child> {
        let controller = self
            .controllers
            .iter()
            .find(|c| c.id == id)
            .with_context(|| format!("no controller {id}"))?;
        let kind = if controller.rack.is_some() {
            "broker"
        } else {
            "controller"
        };
        let log_path = self.base_dir.join(format!("{kind}-{id}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let identity = Identity::Node {
            cluster_id: self.cluster_id.clone(),
            node_id: id,
            roles: NodeRoles::parse(kind)?,
        };
        let tls_dir = controller.dir.join("tls");
        self.ca
            .ensure_material(&tls_dir, &identity, &[])
            .with_context(|| format!("the certificate of node {id}"))?;
        let mut command = Command::new(&self.ferry_bin);
        command
            .arg("node")
            .arg("--tls-ca")
            .arg(tls_dir.join(ferry_identity::CA_FILE))
            .arg("--tls-cert")
            .arg(tls_dir.join(ferry_identity::CERT_FILE))
            .arg("--tls-key")
            .arg(tls_dir.join(ferry_identity::KEY_FILE))
            .args(["--node-id", &id.to_string()])
            .args(["--roles", kind])
            .args(["--cluster-id", &self.cluster_id])
            .args(["--controller-quorum", quorum_flag]);
        match &controller.rack {
            Some(rack) => command
                .args(["--listen", &controller.addr.to_string()])
                .args(["--rack", rack]),
            None => command.args(["--controller-listen", &controller.addr.to_string()]),
        };
        for setting in &self.settings {
            command.args(["--set", setting]);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(&controller.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.ferry_bin.display()))?;
        match wait_ready(&mut child) {
            Ok(()) => Ok(child),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(error.context(format!(
                    "controller {id} on {} (log: {})",
                    controller.addr,
                    log_path.display()
                )))
            }
        }
    }

    /// Kills controller `id` with SIGKILL and reaps it. Returns when the process is gone.
    pub fn kill(&mut self, id: i32) -> anyhow::Result<()> {
        let controller = self.controller_mut(id)?;
        let mut child = controller
            .child
            .take()
            .with_context(|| format!("controller {id} is not running"))?;
        child
            .kill()
            .with_context(|| format!("killing controller {id}"))?;
        child
            .wait()
            .with_context(|| format!("reaping controller {id}"))?;
        Ok(())
    }

    /// Kills every running controller.
    pub fn kill_all(&mut self) {
        for controller in &mut self.controllers {
            if let Some(mut child) = controller.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Keeps the data directories and logs after the run (for debugging); returns where.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(base) = self.base.take() {
            let _ = base.keep();
        }
        self.base_dir.clone()
    }

    fn controller_mut(&mut self, id: i32) -> anyhow::Result<&mut Controller> {
        self.controllers
            .iter_mut()
            .find(|c| c.id == id)
            .with_context(|| format!("no controller {id}"))
    }
}

impl Drop for Quorum {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Waits for the ready line on the child's stdout, then keeps draining stdout on a thread (so
/// the node never blocks writing to a full pipe).
fn wait_ready(child: &mut Child) -> anyhow::Result<()> {
    let stdout = child.stdout.take().context("stdout is piped")?;
    let (lines, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && line.starts_with(READY_PREFIX) {
                sent = lines.send(line).is_ok();
            }
        }
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("polling the node process")? {
            bail!("exited with {status} before it was ready");
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            bail!("not ready after {READY_TIMEOUT:?}");
        }
        match ready.recv_timeout(remaining.min(Duration::from_millis(100))) {
            Ok(_) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Stdout closed without a ready line: the process is exiting.
                std::thread::sleep(Duration::from_millis(50));
                if let Some(status) = child.try_wait().context("polling the node process")? {
                    bail!("exited with {status} before it was ready");
                }
                bail!("closed its stdout before it was ready");
            }
        }
    }
}
