//! The agent's shell: [`Agent::start`] wires the [`Supervisor`] to the real host
//! ([`OsHost`]) and to the control plane ([`ControlPlane`]) with two tasks.
//!
//! ```text
//!                 desired: watch<Assignments>             status: watch<HostStatus>
//!  sync task  ------------------------------------>  supervise task  ----------------> sync task,
//!  (control plane: register, report ~1 s,             (owns Supervisor + OsHost:         Agent::status
//!   pull assignments when the generation moves,       every tick: exits, actions;
//!   persist them; retries with backoff, forever)       every second: health probes)
//! ```
//!
//! Both channels are `watch`es: only the latest value matters, so a slow reader skips stale
//! ones and neither side ever blocks the other. The supervise task is the single owner of the
//! supervisor and of every process handle.
//!
//! # A replicated control plane
//!
//! The agent knows every control-plane member: their public URLs (`control_plane`, where it
//! enrolls, trying each in turn) and their peer listeners (told by enrollment and kept in the
//! data dir, or given as `peer_addresses`). The sync task talks to one member at a time; a call
//! that finds it unreachable (UNAVAILABLE, a timeout, a broken connection) goes on to the next
//! member at once, and the member that answers is kept for the calls after
//! ([`crate::client`]). Any member will do: a follower forwards the agent's writes to the
//! leader. Only when no member answers does the round fail and back off. The supervise task
//! knows nothing of this: nodes keep running, restarting and being probed throughout.
//!
//! # Guarantees
//!
//! - The agent never exits on its own: a control plane that is down, slow or restarting only
//!   delays reports and new assignments (retried with backoff up to `retry_backoff_max`); a
//!   member that dies costs at most one call timeout before another member answers.
//! - Nodes keep running from the last persisted assignments while the control plane is away,
//!   and keep running when the agent stops (unless `stop_nodes_on_shutdown`) or dies.
//! - A restarted agent adopts the node processes still running instead of starting them again.
//!
//! # Assumptions
//!
//! Linux. One agent per data directory: [`Agent::start`] refuses a directory another agent
//! holds (`agent.lock`).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::assignment::{Assignments, NodeRole, is_safe_name};
use crate::client::{ControlPlane, Registration};
use crate::enroll::JoinToken;
use crate::error::{Error, Result};
use crate::health;
use crate::host::{Host, OsHost, StopSignal};
use crate::store;
use crate::supervisor::{Action, Millis, NodeReport, Supervisor, SupervisorOptions};

/// How an agent runs. Build with [`AgentOptions::new`], adjust fields, then
/// [`Agent::start`]. Its `Debug` output leaves the token out.
#[derive(Clone)]
pub struct AgentOptions {
    /// Each control-plane member's public API URL, `http://host:port`: where the agent
    /// enrolls, trying them in turn. One for a control plane running alone.
    pub control_plane: Vec<String>,
    /// The one-time join token (`ferry token create --role agent --host ID`); needed only for
    /// the first start, when the data dir holds no host certificate yet.
    pub join_token: Option<JoinToken>,
    /// Each control-plane member's peer listener, `host:port`, where `AgentService` is
    /// served; the agent talks to one and fails over to the next ([`crate::client`]). Empty
    /// for the ones enrollment told (kept in the data dir): every member's, the enrolling
    /// member's first.
    pub peer_addresses: Vec<String>,
    /// Where the agent keeps its host id, its last assignments and its nodes' directories.
    pub data_dir: PathBuf,
    /// The host's id; by default the one kept in the data dir, else a new random one.
    pub host_id: Option<String>,
    /// The host's zone (failure domain; the brokers' rack).
    pub zone: String,
    /// The IP address nodes on this host listen on and advertise.
    pub address: String,
    /// The lowest port the control plane may give nodes here.
    pub ports_lo: u16,
    /// The highest port the control plane may give nodes here (inclusive).
    pub ports_hi: u16,
    /// Most nodes this host runs at once.
    pub max_nodes: u32,
    /// Storage offered to node data in bytes; by default the free space of the data dir.
    pub storage_bytes: Option<u64>,
    /// The `ferry` binary nodes run; by default the current executable.
    pub node_binary: Option<PathBuf>,
    /// Extra environment for node processes (e.g. `FERRY_LOG`). Of the agent's own
    /// environment, nodes inherit everything but the `FERRY_*` variables (`FERRY_LOG` and
    /// `FERRY_LOG_FORMAT` pass).
    pub node_env: Vec<(String, String)>,
    /// Restart backoff and stop timeout.
    pub supervisor: SupervisorOptions,
    /// How often the agent reports to the control plane (its heartbeat).
    pub report_interval: Duration,
    /// How often the agent checks its processes and acts.
    pub tick_interval: Duration,
    /// How often the agent asks each node's admin endpoint how it is.
    pub probe_interval: Duration,
    /// How long a health probe may take.
    pub probe_timeout: Duration,
    /// How long one call to the control plane may take.
    pub rpc_timeout: Duration,
    /// The longest wait between retries while the control plane is unreachable.
    pub retry_backoff_max: Duration,
    /// Whether stopping the agent stops its nodes too (brokers first). Off by default: nodes
    /// outlive their agent (static stability); `ferry dev` turns it on.
    pub stop_nodes_on_shutdown: bool,
}

impl fmt::Debug for AgentOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let AgentOptions {
            control_plane,
            join_token,
            peer_addresses,
            data_dir,
            host_id,
            zone,
            address,
            ports_lo,
            ports_hi,
            max_nodes,
            storage_bytes,
            node_binary,
            node_env,
            supervisor,
            report_interval,
            tick_interval,
            probe_interval,
            probe_timeout,
            rpc_timeout,
            retry_backoff_max,
            stop_nodes_on_shutdown,
        } = self;
        f.debug_struct("AgentOptions")
            .field("control_plane", control_plane)
            .field("join_token", &join_token.as_ref().map(|_| "<redacted>"))
            .field("peer_addresses", peer_addresses)
            .field("data_dir", data_dir)
            .field("host_id", host_id)
            .field("zone", zone)
            .field("address", address)
            .field("ports_lo", ports_lo)
            .field("ports_hi", ports_hi)
            .field("max_nodes", max_nodes)
            .field("storage_bytes", storage_bytes)
            .field("node_binary", node_binary)
            .field("node_env", node_env)
            .field("supervisor", supervisor)
            .field("report_interval", report_interval)
            .field("tick_interval", tick_interval)
            .field("probe_interval", probe_interval)
            .field("probe_timeout", probe_timeout)
            .field("rpc_timeout", rpc_timeout)
            .field("retry_backoff_max", retry_backoff_max)
            .field("stop_nodes_on_shutdown", stop_nodes_on_shutdown)
            .finish()
    }
}

impl AgentOptions {
    /// Options with every tunable at its default: ports 9000-9999, 16 nodes, report every
    /// second, tick every 200 ms, probe every second (1 s timeout), calls time out after 3 s,
    /// retries back off up to 5 s, nodes left running on shutdown.
    pub fn new(
        control_plane: impl Into<String>,
        join_token: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        zone: impl Into<String>,
        address: impl Into<String>,
    ) -> AgentOptions {
        let join_token = join_token.into();
        AgentOptions {
            control_plane: vec![control_plane.into()],
            join_token: (!join_token.trim().is_empty()).then(|| JoinToken::new(join_token)),
            peer_addresses: Vec::new(),
            data_dir: data_dir.into(),
            host_id: None,
            zone: zone.into(),
            address: address.into(),
            ports_lo: 9000,
            ports_hi: 9999,
            max_nodes: 16,
            storage_bytes: None,
            node_binary: None,
            node_env: Vec::new(),
            supervisor: SupervisorOptions::default(),
            report_interval: Duration::from_secs(1),
            tick_interval: Duration::from_millis(200),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
            rpc_timeout: Duration::from_secs(3),
            retry_backoff_max: Duration::from_secs(5),
            stop_nodes_on_shutdown: false,
        }
    }

    /// Checks the options, with every problem in one sentence.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] listing the problems.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.control_plane.is_empty() {
            problems.push("at least one control plane URL is needed".to_string());
        }
        for url in &self.control_plane {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!(
                    "the control plane URL {url:?} must start with http:// or https://"
                ));
            }
        }
        for address in &self.peer_addresses {
            if address.is_empty() || address.contains("://") {
                problems.push(format!(
                    "the control plane peer address {address:?} must be HOST:PORT"
                ));
            }
        }
        if !is_safe_name(&self.zone) {
            problems.push(format!(
                "the zone {:?} must be made of letters, digits, '-', '_' and '.'",
                self.zone
            ));
        }
        if self.address.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!(
                "the address {:?} is not an IP address",
                self.address
            ));
        }
        if self.ports_lo == 0 || self.ports_lo > self.ports_hi {
            problems.push(format!(
                "the port range {}-{} is empty or starts at 0",
                self.ports_lo, self.ports_hi
            ));
        }
        if self.max_nodes == 0 {
            problems.push("max nodes must be at least 1".to_string());
        }
        for (name, d) in [
            ("report interval", self.report_interval),
            ("tick interval", self.tick_interval),
            ("probe interval", self.probe_interval),
            ("probe timeout", self.probe_timeout),
            ("rpc timeout", self.rpc_timeout),
        ] {
            if d.is_zero() {
                problems.push(format!("the {name} must be positive"));
            }
        }
        if self.supervisor.restart_backoff_initial > self.supervisor.restart_backoff_max {
            problems.push("the first restart backoff exceeds the largest".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput(problems.join("; ")))
        }
    }
}

/// What the agent last saw of its host: the latest report it sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStatus {
    /// The assignment generation the supervisor runs.
    pub applied_generation: u64,
    /// Every node, in key order.
    pub nodes: Vec<NodeReport>,
}

/// A running agent. Dropping it leaves its tasks running until the runtime stops; call
/// [`Agent::shutdown`] to stop it.
#[derive(Debug)]
pub struct Agent {
    /// The host's id.
    host_id: String,
    /// The latest status.
    status: watch::Receiver<HostStatus>,
    /// Stops both tasks.
    cancel: CancellationToken,
    /// The supervise task (stops the nodes on the way out if asked to).
    supervise: JoinHandle<()>,
    /// The sync task.
    sync: JoinHandle<()>,
}

impl Agent {
    /// Starts an agent: checks the options, prepares the data directory, loads the kept
    /// assignments, adopts the node processes still running, then spawns its two tasks on the
    /// current tokio runtime. Returns before the control plane is reached (it may be down).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for bad options or a data dir of another host,
    /// [`Error::InvalidData`] for a corrupt assignments file, [`Error::Io`] when the data dir
    /// is unusable.
    pub async fn start(options: AgentOptions) -> Result<Agent> {
        options.validate()?;
        store::create_dir_all(&options.data_dir).map_err(|e| Error::io(&options.data_dir, e))?;
        let data_dir = std::fs::canonicalize(&options.data_dir)
            .map_err(|e| Error::io(&options.data_dir, e))?;
        let lock = store::lock(&data_dir)?;
        let enrolled = match crate::enroll::load(&data_dir)? {
            Some(enrolled) => enrolled,
            None => {
                let Some(token) = &options.join_token else {
                    return Err(Error::InvalidInput(
                        "this host is not enrolled yet: give a join token (`ferry token create \
                         --role agent --host ID`)"
                            .into(),
                    ));
                };
                let named = crate::enroll::token_host(token)?;
                if let Some(given) = options.host_id.as_deref().filter(|given| *given != named) {
                    return Err(Error::InvalidInput(format!(
                        "the join token is for host {named:?}, not {given:?}"
                    )));
                }
                // A data dir of another host stays another host's, token or not.
                store::host_id(&data_dir, Some(&named), &options.zone)?;
                crate::enroll::enroll(
                    &data_dir,
                    &options.control_plane,
                    token,
                    options.rpc_timeout,
                )
                .await?
            }
        };
        let host_id = store::host_id(&data_dir, Some(&enrolled.host_id), &options.zone)?;
        if let Some(given) = options.host_id.as_deref().filter(|given| *given != host_id) {
            return Err(Error::InvalidInput(format!(
                "this data dir's host certificate is for host {host_id:?}, not {given:?}"
            )));
        }
        let kept = store::load_assignments(&data_dir)?;
        let binary = match &options.node_binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::Io(format!("the agent's own executable: {e}")))?,
        };
        let host = OsHost::new(&data_dir, binary, options.node_env.clone())
            .map_err(|e| Error::io(&data_dir, e))?;
        let storage_bytes = match options.storage_bytes {
            Some(bytes) => bytes,
            None => free_bytes(&data_dir)?,
        };
        let peer_addresses = if options.peer_addresses.is_empty() {
            enrolled.peer_addresses.clone()
        } else {
            options.peer_addresses.clone()
        };
        let control_plane =
            ControlPlane::new(&peer_addresses, &enrolled.material, options.rpc_timeout)?;

        let mut shell = Shell {
            core: Supervisor::new(options.supervisor.clone()),
            host,
            epoch: Instant::now(),
            applied_generation: kept.generation,
            probe_timeout: options.probe_timeout,
            _lock: Some(lock),
        };
        shell.adopt(&kept);
        tracing::info!(
            host_id,
            generation = kept.generation,
            nodes = kept.nodes.len(),
            control_plane = ?peer_addresses,
            "agent started"
        );

        let (desired_tx, desired_rx) = watch::channel(kept.clone());
        let (status_tx, status_rx) = watch::channel(shell.status());
        let cancel = CancellationToken::new();
        let supervise = tokio::spawn(supervise(
            shell,
            desired_rx,
            status_tx,
            cancel.clone(),
            options.clone(),
        ));
        let registration = Registration {
            host_id: host_id.clone(),
            zone: options.zone.clone(),
            address: options.address.clone(),
            ports_lo: options.ports_lo,
            ports_hi: options.ports_hi,
            max_nodes: options.max_nodes,
            storage_bytes,
        };
        let diverged = data_dir.join(store::DIVERGED_FILE).exists();
        if diverged {
            tracing::error!(
                "this host's control plane lost its store earlier ({} exists): applying no \
                 assignments until an operator removes it",
                store::DIVERGED_FILE
            );
        }
        let sync = tokio::spawn(
            Sync {
                control_plane,
                registration,
                data_dir,
                known: kept.generation,
                registered: false,
                diverged,
                desired: desired_tx,
                status: status_rx.clone(),
            }
            .run(
                cancel.clone(),
                options.report_interval,
                options.retry_backoff_max,
            ),
        );
        Ok(Agent {
            host_id,
            status: status_rx,
            cancel,
            supervise,
            sync,
        })
    }

    /// The host's id.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The latest status (updated every tick); `changed()` on it waits for the next one.
    pub fn status(&self) -> watch::Receiver<HostStatus> {
        self.status.clone()
    }

    /// Runs until `shutdown` resolves, then stops as [`Agent::shutdown`] does.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.shutdown().await;
    }

    /// Stops the agent: its control-plane task at once, its supervise task after stopping the
    /// nodes if `stop_nodes_on_shutdown` (brokers, then controllers, each within the stop
    /// timeout); otherwise the nodes keep running.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.sync.await;
        let _ = self.supervise.await;
        tracing::info!(host_id = self.host_id, "agent stopped");
    }
}

/// Bytes available to unprivileged users on the filesystem of `path`.
fn free_bytes(path: &std::path::Path) -> Result<u64> {
    let stat = rustix::fs::statvfs(path).map_err(|e| Error::io(path, e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The supervisor with its host and clock: the supervise task's state.
struct Shell<H: Host> {
    /// The sans-IO core.
    core: Supervisor,
    /// Side effects.
    host: H,
    /// Time zero of the core's clock.
    epoch: Instant,
    /// The generation of the assignments the core runs.
    applied_generation: u64,
    /// How long a health probe may take.
    probe_timeout: Duration,
    /// The data directory's lock, held as long as the supervise task runs.
    _lock: Option<std::fs::File>,
}

impl<H: Host> Shell<H> {
    /// The core's clock.
    fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Gives the core the kept assignments and the nodes found on disk.
    fn adopt(&mut self, kept: &Assignments) {
        self.core.set_desired(&kept.nodes);
        let now = self.now();
        for found in self.host.discover() {
            match found.pid {
                Some(pid) => {
                    tracing::info!(node = %found.key, pid, "adopting a running node");
                    self.core.adopt(found.key, pid, found.started_with, now);
                }
                None => self.core.found_stopped(found.key),
            }
        }
    }

    /// Notices exited processes, then carries out what the core decides.
    fn step(&mut self) {
        let now = self.now();
        for (key, pid) in self.core.watched() {
            if let Some(why) = self.host.poll_exit(&key, pid) {
                tracing::info!(node = %key, pid, "node process {why}");
                self.core.exited(&key, pid, &why, now);
            }
        }
        for action in self.core.tick(now) {
            match action {
                Action::Start(a) => {
                    let key = a.key();
                    match self.host.start(&a) {
                        Ok(pid) => {
                            tracing::info!(node = %key, pid, "started node");
                            self.core.started(&key, pid, now);
                        }
                        Err(e) => {
                            tracing::warn!(node = %key, error = %e, "could not start node");
                            self.core.start_failed(&key, &e, now);
                        }
                    }
                }
                Action::Terminate { key, pid } => {
                    tracing::info!(node = %key, pid, "stopping node");
                    self.host.signal(&key, pid, StopSignal::Terminate);
                }
                Action::Kill { key, pid } => {
                    tracing::warn!(node = %key, pid, "node did not stop in time; killing it");
                    self.host.signal(&key, pid, StopSignal::Kill);
                }
                Action::Remove(key) => match self.host.remove(&key) {
                    Ok(()) => tracing::info!(node = %key, "removed node directory"),
                    Err(e) => tracing::error!(node = %key, error = %e, "could not remove node"),
                },
            }
        }
    }

    /// Asks every running node how it is, all at once; keeps their logs bounded.
    async fn probe(&mut self) {
        for (key, _) in self.core.watched() {
            self.host.trim_log(&key);
        }
        let targets = self.core.probe_targets();
        let probes = join_all(
            targets
                .iter()
                .map(|(a, _)| health::probe(a, self.probe_timeout)),
        )
        .await;
        for ((a, pid), (probe, details)) in targets.iter().zip(probes) {
            self.core.probed(&a.key(), *pid, probe, details);
        }
    }

    /// The status to publish.
    fn status(&self) -> HostStatus {
        HostStatus {
            applied_generation: self.applied_generation,
            nodes: self.core.report(self.now()),
        }
    }

    /// Stops every node, brokers first (so their controlled shutdown finds the controllers),
    /// each role within the stop timeout plus a margin for the kill.
    async fn stop_all(&mut self, options: &AgentOptions, status: &watch::Sender<HostStatus>) {
        for role in [NodeRole::Broker, NodeRole::Controller] {
            self.core.halt(role);
            let deadline = Instant::now() + options.supervisor.stop_timeout + STOP_KILL_MARGIN;
            loop {
                self.step();
                status.send_replace(self.status());
                if !self.core.has_processes(role) {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::error!(?role, "nodes still running after SIGKILL; giving up");
                    break;
                }
                tokio::time::sleep(options.tick_interval.min(STOP_POLL)).await;
            }
        }
    }
}

/// How long past the stop timeout (when SIGKILL is sent) a shutdown waits for the exit.
const STOP_KILL_MARGIN: Duration = Duration::from_secs(5);
/// Pause between checks while stopping nodes on shutdown.
const STOP_POLL: Duration = Duration::from_millis(50);

/// The supervise task: applies new assignments, ticks, probes, publishes the status; on
/// cancellation stops the nodes if the options say so.
async fn supervise<H: Host>(
    mut shell: Shell<H>,
    mut desired: watch::Receiver<Assignments>,
    status: watch::Sender<HostStatus>,
    cancel: CancellationToken,
    options: AgentOptions,
) {
    let mut ticker = tokio::time::interval(options.tick_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_probe = Instant::now();
    let mut desired_open = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = desired.changed(), if desired_open => match changed {
                Ok(()) => {
                    let assignments = desired.borrow_and_update().clone();
                    tracing::info!(
                        generation = assignments.generation,
                        nodes = assignments.nodes.len(),
                        "applying assignments"
                    );
                    shell.core.set_desired(&assignments.nodes);
                    shell.applied_generation = assignments.generation;
                }
                Err(_) => desired_open = false,
            },
            _ = cancel.cancelled() => break,
        }
        shell.step();
        if Instant::now() >= next_probe {
            shell.probe().await;
            next_probe = Instant::now() + options.probe_interval;
        }
        status.send_replace(shell.status());
    }
    if options.stop_nodes_on_shutdown {
        shell.stop_all(&options, &status).await;
    }
}

/// The sync task's state: the control-plane side of the agent.
struct Sync {
    /// The client.
    control_plane: ControlPlane,
    /// What the agent registers.
    registration: Registration,
    /// Where assignments are kept.
    data_dir: PathBuf,
    /// The generation of the assignments last received (or kept).
    known: u64,
    /// Whether the control plane knows the host (false again if it forgets it).
    registered: bool,
    /// Whether the control plane's generations went backwards (see
    /// [`store::DIVERGED_FILE`]): then no assignment is applied.
    diverged: bool,
    /// New assignments, to the supervise task.
    desired: watch::Sender<Assignments>,
    /// The latest status, from the supervise task.
    status: watch::Receiver<HostStatus>,
}

impl Sync {
    /// Registers, then reports every `report_interval` and pulls assignments when their
    /// generation moved, until cancelled. Failures back off from `report_interval` doubling
    /// up to `retry_max`, and are logged once per outage.
    async fn run(
        mut self,
        cancel: CancellationToken,
        report_interval: Duration,
        retry_max: Duration,
    ) {
        let mut backoff = report_interval;
        let mut outage: Option<Instant> = None;
        loop {
            let wait = match self.once().await {
                Ok(()) => {
                    if let Some(since) = outage.take() {
                        tracing::info!(
                            after = ?since.elapsed(),
                            member = self.control_plane.current_member(),
                            "the control plane is reachable again"
                        );
                    }
                    backoff = report_interval;
                    report_interval
                }
                Err(status) => {
                    if outage.is_none() {
                        tracing::warn!(
                            code = ?status.code(),
                            "the control plane exchange failed: {}; nodes keep running, \
                             retrying",
                            status.message()
                        );
                        outage = Some(Instant::now());
                    } else {
                        tracing::debug!(code = ?status.code(), "control plane: {}", status.message());
                    }
                    let wait = backoff;
                    backoff = (backoff * 2).min(retry_max.max(report_interval));
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// One round: register if needed, report, pull new assignments.
    async fn once(&mut self) -> std::result::Result<(), Status> {
        let host_id = self.registration.host_id.clone();
        if !self.registered {
            self.control_plane.register(&self.registration).await?;
            self.registered = true;
            tracing::info!(
                host_id,
                zone = self.registration.zone,
                "registered with the control plane"
            );
            self.pull().await?;
        }
        let status = self.status.borrow().clone();
        let generation = match self
            .control_plane
            .report(&host_id, status.applied_generation, &status.nodes)
            .await
        {
            Ok(generation) => generation,
            Err(s) => {
                if s.code() == Code::NotFound {
                    // The control plane forgot the host (a new store): register again.
                    self.registered = false;
                }
                return Err(s);
            }
        };
        if generation != self.known {
            self.pull().await?;
        }
        // Material that failed to come with the assignments, or is due for renewal.
        let nodes = self.desired.borrow().nodes.clone();
        self.ensure_node_certificates(&nodes).await;
        Ok(())
    }

    /// Makes sure every node in `nodes` has its certificate (see [`crate::node_tls`]). A
    /// failure is logged and retried next round; the node then starts without TLS material
    /// and is refused by its TLS peers until it has it.
    async fn ensure_node_certificates(&mut self, nodes: &[crate::assignment::Assignment]) {
        for node in nodes {
            if let Err(status) =
                crate::node_tls::ensure(&mut self.control_plane, &self.data_dir, node).await
            {
                tracing::warn!(
                    node = %node.key(),
                    code = ?status.code(),
                    "no certificate for the node yet: {}",
                    status.message()
                );
            }
        }
    }

    /// Fetches the assignments if they changed, keeps them on disk, hands them over.
    async fn pull(&mut self) -> std::result::Result<(), Status> {
        let Some(assignments) = self
            .control_plane
            .assignments(&self.registration.host_id, self.known)
            .await?
        else {
            return Ok(());
        };
        if self.diverged || (assignments.generation < self.known) {
            // A control plane that lost its store answers with an older generation (usually
            // 0, nothing assigned). Applying it would stop and delete every node here: keep
            // running what this host runs and say so, until an operator decides.
            if !self.diverged {
                self.diverged = true;
                let marker = self.data_dir.join(store::DIVERGED_FILE);
                let note = format!(
                    "the control plane went back from assignment generation {} to {}\n",
                    self.known, assignments.generation
                );
                if let Err(e) = store::write_atomically(&marker, note.as_bytes()) {
                    tracing::error!(error = %e, "could not record the divergence on disk");
                }
            }
            tracing::error!(
                kept = self.known,
                offered = assignments.generation,
                "the control plane's assignments for this host went back to an older \
                 generation: it has lost its store. Keeping every node as it runs and \
                 applying nothing; to accept the new control plane, stop the agent, remove \
                 {} and {} from its data directory, and start it again",
                store::DIVERGED_FILE,
                store::ASSIGNMENTS_FILE
            );
            return Ok(());
        }
        if let Err(e) = store::save_assignments(&self.data_dir, &assignments) {
            // Run them anyway; only a restart before the next successful save loses them.
            tracing::error!(error = %e, "could not keep the assignments on disk");
        }
        tracing::info!(
            generation = assignments.generation,
            nodes = assignments.nodes.len(),
            "received assignments"
        );
        self.known = assignments.generation;
        // Certificates first, so a new node starts with its material.
        self.ensure_node_certificates(&assignments.nodes).await;
        self.desired.send_replace(assignments);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::assignment::tests::{broker, controller};
    use crate::assignment::{NodeKey, Pid};
    use crate::host::Found;
    use crate::supervisor::NodeState;

    /// A host that records what it is asked and exits processes when told to (or signalled).
    #[derive(Default)]
    struct FakeHost {
        /// The pid the next start gets.
        next_pid: Pid,
        /// Every call, in order, as a line.
        calls: Vec<String>,
        /// Processes that exited, with how.
        exited: BTreeMap<Pid, String>,
        /// What discover returns.
        found: Vec<Found>,
    }

    impl Host for FakeHost {
        fn start(&mut self, assignment: &crate::Assignment) -> std::result::Result<Pid, String> {
            self.next_pid += 1;
            self.calls
                .push(format!("start {} as {}", assignment.key(), self.next_pid));
            Ok(self.next_pid)
        }

        fn signal(&mut self, key: &NodeKey, pid: Pid, signal: StopSignal) {
            self.calls.push(format!("{signal:?} {key} ({pid})"));
            self.exited.insert(pid, format!("stopped by {signal:?}"));
        }

        fn poll_exit(&mut self, _key: &NodeKey, pid: Pid) -> Option<String> {
            self.exited.remove(&pid)
        }

        fn remove(&mut self, key: &NodeKey) -> std::result::Result<(), String> {
            self.calls.push(format!("remove {key}"));
            Ok(())
        }

        fn discover(&mut self) -> Vec<Found> {
            std::mem::take(&mut self.found)
        }

        fn trim_log(&mut self, _key: &NodeKey) {}
    }

    fn shell(host: FakeHost) -> Shell<FakeHost> {
        Shell {
            core: Supervisor::new(SupervisorOptions::default()),
            host,
            epoch: Instant::now(),
            applied_generation: 0,
            probe_timeout: Duration::from_secs(1),
            _lock: None,
        }
    }

    fn key(node_id: i32) -> NodeKey {
        broker("cl-1", node_id).key()
    }

    fn take_calls(shell: &mut Shell<FakeHost>) -> Vec<String> {
        std::mem::take(&mut shell.host.calls)
    }

    #[test]
    fn a_restarted_agent_adopts_starts_what_is_missing_and_removes_leftovers() {
        let host = FakeHost {
            next_pid: 100,
            found: vec![
                Found {
                    key: key(101),
                    pid: Some(7),
                    started_with: Some(broker("cl-1", 101)),
                },
                Found {
                    key: key(102),
                    pid: None,
                    started_with: None,
                },
            ],
            ..FakeHost::default()
        };
        let mut shell = shell(host);
        shell.adopt(&Assignments {
            generation: 3,
            nodes: vec![controller("cl-1", 1), broker("cl-1", 101)],
        });
        shell.step();
        assert_eq!(
            take_calls(&mut shell),
            [
                "start node 1 of cluster cl-1 as 101",
                "remove node 102 of cluster cl-1"
            ]
        );
        let status = shell.status();
        assert_eq!(status.nodes.len(), 2);
        assert_eq!(status.nodes[1].pid, Some(7), "adopted, not started again");

        // The adopted node dies: reported with its cause, restarted after the backoff.
        shell
            .host
            .exited
            .insert(7, "exited with status 3: Error: disk full".into());
        shell.step();
        let report = &shell.status().nodes[1];
        assert_eq!(report.state, NodeState::Unhealthy);
        assert!(
            report
                .message
                .starts_with("node 101 of cluster cl-1 exited with status 3: Error: disk full"),
            "{}",
            report.message
        );
        assert!(take_calls(&mut shell).is_empty());
        // Time passes for the core: move its epoch back.
        shell.epoch -= SupervisorOptions::default().restart_backoff_initial;
        shell.step();
        assert_eq!(
            take_calls(&mut shell),
            ["start node 101 of cluster cl-1 as 102"]
        );
    }

    #[tokio::test]
    async fn debug_output_leaves_the_token_out() {
        let options = AgentOptions::new(
            "http://x",
            "eyJhbGciOiJIUzI1NiJ9.secret-claims.secret-signature",
            "/tmp",
            "a",
            "127.0.0.1",
        );
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("http://x"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn the_agents_data_directory_and_files_are_its_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data_dir = dir.path().join("ferry-agent");
        // A host that enrolled before: its certificate and the peer address are in the data
        // dir (written as enrollment writes them, into a directory made by the same helper
        // the agent uses).
        store::create_dir_all(&data_dir).unwrap();
        let ca = ferry_identity::CertificateAuthority::generate("agent test CA").unwrap();
        let host = ferry_identity::Identity::Host {
            host_id: "a-1".into(),
        };
        ca.issue(&host, &[], ferry_identity::CERT_VALIDITY_DEFAULT)
            .unwrap()
            .write(&data_dir.join(crate::enroll::IDENTITY_DIR))
            .unwrap();
        ferry_identity::write_private_file(
            &data_dir.join(crate::enroll::PEER_ADDRESS_FILE),
            "127.0.0.1:1",
        )
        .unwrap();
        // The control plane is unreachable: the agent starts anyway (static stability).
        let options = AgentOptions::new("http://127.0.0.1:1", "", &data_dir, "a", "127.0.0.1");
        let agent = Agent::start(options).await.unwrap();
        assert_eq!(mode(&data_dir), store::DIR_MODE);
        let identity = data_dir.join(crate::enroll::IDENTITY_DIR);
        assert_eq!(mode(&identity), store::DIR_MODE);
        assert_eq!(
            mode(&identity.join(ferry_identity::KEY_FILE)),
            store::FILE_MODE
        );
        for name in [store::LOCK_FILE, store::HOST_ID_FILE] {
            assert_eq!(mode(&data_dir.join(name)), store::FILE_MODE, "{name}");
        }
        agent.run(async {}).await;
    }

    #[tokio::test]
    async fn stopping_with_the_nodes_stops_brokers_before_controllers() {
        let mut shell = shell(FakeHost::default());
        shell.adopt(&Assignments {
            generation: 1,
            nodes: vec![controller("cl-1", 1), broker("cl-1", 101)],
        });
        shell.step();
        take_calls(&mut shell);
        let options = AgentOptions::new("http://x", "t", "/tmp", "a", "127.0.0.1");
        let (status, _) = watch::channel(HostStatus::default());
        shell.stop_all(&options, &status).await;
        assert_eq!(
            take_calls(&mut shell),
            [
                "Terminate node 101 of cluster cl-1 (2)",
                "Terminate node 1 of cluster cl-1 (1)"
            ]
        );
        assert!(
            status
                .borrow()
                .nodes
                .iter()
                .all(|n| n.state == NodeState::Stopped && n.pid.is_none())
        );
    }

    #[test]
    fn options_are_checked_all_at_once() {
        let mut options = AgentOptions::new("127.0.0.1:7070", " ", "/tmp", "a/b", "localhost");
        options.ports_lo = 10;
        options.ports_hi = 5;
        options.max_nodes = 0;
        let err = options.validate().unwrap_err().to_string();
        for part in [
            "must start with http://",
            "the zone \"a/b\"",
            "not an IP address",
            "port range 10-5",
            "max nodes",
        ] {
            assert!(err.contains(part), "{part:?} in {err}");
        }
        let ok = AgentOptions::new("http://127.0.0.1:7070", "t", "/tmp", "a", "127.0.0.1");
        ok.validate().unwrap();
    }
}
