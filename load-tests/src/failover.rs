//! The `controller-failover` workload: how long the controller quorum is without a leader that
//! can commit, after its leader dies.
//!
//! It starts its own quorum of real `ferry node --roles controller` processes (see
//! [`crate::cluster`]), then runs trials. Each trial:
//!
//! 1. finds the leader: the controller whose own DescribeQuorum names itself;
//! 2. kills it with SIGKILL (the clock starts just before the signal);
//! 3. concurrently, polls DescribeQuorum on the survivors until one names a new leader in a
//!    later term ("time to new leader"), and sends `Command::NoOp` to the survivors until one
//!    answers with a committed result ("time to first committed write", the number the goal
//!    is about);
//! 4. restarts the killed controller on the same port and data directory, and waits until the
//!    leader reports it caught up (its matched index at the high watermark) and it names the
//!    leader itself, so every trial starts from a healthy quorum of `voters`.
//!
//! The workload talks to each controller directly over gRPC with short per-call timeouts and
//! polls every [`FailoverOptions::poll_interval`], rather than through
//! `ControllerClient`, whose 100 ms retry pause would blur the measurement. A broker using that
//! client sees up to one such pause more.
//!
//! Verification: every trial committed a write, and at the end every voter is caught up with a
//! single leader. Timings are reported, never asserted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_data_plane::controller::{Command, CommandResult};
use ferry_proto::controller::v1 as pb;
use ferry_proto::controller::v1::controller_service_client::ControllerServiceClient;
use hdrhistogram::Histogram;
use tonic::transport::{Channel, Endpoint};

use crate::cluster::Quorum;
use crate::report::{NamedLatency, Report, latency_histogram};
use crate::workload::Workload;

/// The cluster id the workload's quorum uses.
pub const CLUSTER_ID: &str = "ferry-load-failover";

/// Options of a failover run.
#[derive(Debug, Clone)]
pub struct FailoverOptions {
    /// The `ferry` binary to start controllers with.
    pub ferry_bin: PathBuf,
    /// Number of trials (kills).
    pub trials: u32,
    /// Number of controllers (voters).
    pub voters: i32,
    /// Where the temporary data directories go (the system temporary directory when `None`).
    pub data_parent: Option<PathBuf>,
    /// Keep the data directories and node logs after the run.
    pub keep_data: bool,
    /// How often the survivors are polled after a kill.
    pub poll_interval: Duration,
    /// Timeout of each gRPC call.
    pub call_timeout: Duration,
    /// Give up on a trial (and the run) when no write commits within this long after a kill.
    pub trial_timeout: Duration,
    /// Give up when a restarted controller has not caught up within this long.
    pub catch_up_timeout: Duration,
}

/// The measurements of one trial.
#[derive(Debug, Clone)]
struct Trial {
    /// The killed leader.
    killed: i32,
    /// Term of the killed leader.
    old_term: u64,
    /// The new leader, as the first committed write or DescribeQuorum showed it.
    new_leader: i32,
    /// Its term.
    new_term: u64,
    /// Kill → a survivor names a new leader in a later term.
    to_leader: Option<Duration>,
    /// Kill → a NoOp committed.
    to_write: Duration,
    /// Restart of the killed controller → it caught up.
    catch_up: Duration,
}

/// The controller-failover workload. See the module docs.
pub struct ControllerFailover {
    options: FailoverOptions,
    runtime: tokio::runtime::Runtime,
    quorum: Option<Quorum>,
    clients: BTreeMap<i32, ControllerServiceClient<Channel>>,
    trials: Vec<Trial>,
    failures: Vec<String>,
}

impl ControllerFailover {
    /// A failover workload; starts nothing until [`Workload::prepare`].
    pub fn new(options: FailoverOptions) -> anyhow::Result<ControllerFailover> {
        // One thread: the workload only waits on the network, and the machine's cores belong
        // to the controllers being measured.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a tokio runtime")?;
        Ok(ControllerFailover {
            options,
            runtime,
            quorum: None,
            clients: BTreeMap::new(),
            trials: Vec::new(),
            failures: Vec::new(),
        })
    }

    fn quorum(&mut self) -> anyhow::Result<&mut Quorum> {
        self.quorum.as_mut().context("the quorum is not started")
    }

    /// One trial: kill the leader, measure, restart, wait for catch-up.
    fn trial(&mut self, number: u32) -> anyhow::Result<Trial> {
        let options = self.options.clone();
        let clients = self.clients.clone();
        let (leader, old_term) = self
            .runtime
            .block_on(find_leader(&clients, &options, options.trial_timeout))
            .context("finding the leader before the kill")?;

        let start = Instant::now();
        self.quorum()?.kill(leader)?;
        let survivors: BTreeMap<i32, ControllerServiceClient<Channel>> = clients
            .iter()
            .filter(|(id, _)| **id != leader)
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        let (to_leader, write) = self.runtime.block_on(async {
            tokio::join!(
                new_leader(&survivors, leader, old_term, start, &options),
                first_write(&survivors, start, &options),
            )
        });
        let (to_write, new_leader_id) =
            write.with_context(|| format!("trial {number}: no write committed after the kill"))?;
        let (to_leader, new_term, leader_seen) = match to_leader {
            Some((elapsed, id, term)) => (Some(elapsed), term, id),
            None => (None, 0, new_leader_id),
        };

        let restart = Instant::now();
        self.quorum()?.start(leader)?;
        self.runtime
            .block_on(caught_up(&clients, leader, &options))
            .with_context(|| format!("trial {number}: controller {leader} did not catch up"))?;
        let trial = Trial {
            killed: leader,
            old_term,
            new_leader: leader_seen,
            new_term,
            to_leader,
            to_write,
            catch_up: restart.elapsed(),
        };
        tracing::info!(
            trial = number,
            killed = trial.killed,
            old_term = trial.old_term,
            new_leader = trial.new_leader,
            new_term = trial.new_term,
            to_leader_ms = trial.to_leader.map(|d| d.as_secs_f64() * 1e3),
            to_write_ms = trial.to_write.as_secs_f64() * 1e3,
            catch_up_ms = trial.catch_up.as_secs_f64() * 1e3,
            "failover"
        );
        Ok(trial)
    }
}

/// A gRPC client of one controller over mutual TLS (`tls`: a certificate of the cluster and
/// the controllers' server name); connects lazily and reconnects after a restart.
fn controller_client(
    addr: &str,
    tls: &(ferry_identity::TlsMaterial, String),
) -> anyhow::Result<ControllerServiceClient<Channel>> {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .with_context(|| format!("controller address {addr}"))?
        .tls_config(ferry_identity::client_tls_config(&tls.0, &tls.1))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true);
    Ok(ControllerServiceClient::new(endpoint.connect_lazy()))
}

/// DescribeQuorum on one controller, bounded by the call timeout.
async fn describe(
    client: &ControllerServiceClient<Channel>,
    options: &FailoverOptions,
) -> Option<pb::DescribeQuorumResponse> {
    let mut client = client.clone();
    let call = client.describe_quorum(pb::DescribeQuorumRequest {});
    match tokio::time::timeout(options.call_timeout, call).await {
        Ok(Ok(response)) => Some(response.into_inner()),
        _ => None,
    }
}

/// Executes `Command::NoOp` on one controller; `Some` once it committed there.
async fn no_op(
    client: &ControllerServiceClient<Channel>,
    options: &FailoverOptions,
) -> Result<(), String> {
    let mut client = client.clone();
    let call = client.execute(pb::ExecuteRequest {
        command: Command::NoOp.encode(),
    });
    let response = match tokio::time::timeout(options.call_timeout, call).await {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => return Err(status.message().to_string()),
        Err(_) => return Err("timed out".into()),
    };
    match CommandResult::decode(&response.result) {
        Ok(CommandResult::NoOp) => Ok(()),
        Ok(other) => Err(format!("unexpected result {other:?}")),
        Err(error) => Err(format!("undecodable result: {error}")),
    }
}

/// The controller that names itself leader, and its term; polls until `timeout`.
async fn find_leader(
    clients: &BTreeMap<i32, ControllerServiceClient<Channel>>,
    options: &FailoverOptions,
    timeout: Duration,
) -> anyhow::Result<(i32, u64)> {
    let deadline = Instant::now() + timeout;
    loop {
        for (id, client) in clients {
            if let Some(state) = describe(client, options).await
                && state.leader_id == *id
            {
                return Ok((*id, state.leader_epoch));
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no controller claimed leadership within {timeout:?}"
        );
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// Polls the survivors until one names a leader other than `killed` in a term after
/// `old_term`; returns the time since `start`, the leader and its term.
async fn new_leader(
    survivors: &BTreeMap<i32, ControllerServiceClient<Channel>>,
    killed: i32,
    old_term: u64,
    start: Instant,
    options: &FailoverOptions,
) -> Option<(Duration, i32, u64)> {
    let deadline = start + options.trial_timeout;
    while Instant::now() < deadline {
        for client in survivors.values() {
            if let Some(state) = describe(client, options).await
                && state.leader_id >= 0
                && state.leader_id != killed
                && state.leader_epoch > old_term
            {
                return Some((start.elapsed(), state.leader_id, state.leader_epoch));
            }
        }
        tokio::time::sleep(options.poll_interval).await;
    }
    None
}

/// Sends NoOps to the survivors in turn until one commits; returns the time since `start` and
/// the controller that committed it.
async fn first_write(
    survivors: &BTreeMap<i32, ControllerServiceClient<Channel>>,
    start: Instant,
    options: &FailoverOptions,
) -> anyhow::Result<(Duration, i32)> {
    let deadline = start + options.trial_timeout;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        for (id, client) in survivors {
            match no_op(client, options).await {
                Ok(()) => return Ok((start.elapsed(), *id)),
                Err(error) => last_error = format!("controller {id}: {error}"),
            }
        }
        tokio::time::sleep(options.poll_interval).await;
    }
    anyhow::bail!(
        "no write committed within {:?}; last error: {last_error}",
        options.trial_timeout
    )
}

/// Waits until the leader reports `id` caught up (matched index ≥ high watermark) and `id`
/// names that leader. Writes a NoOp first so there is something to replicate.
async fn caught_up(
    clients: &BTreeMap<i32, ControllerServiceClient<Channel>>,
    id: i32,
    options: &FailoverOptions,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + options.catch_up_timeout;
    let restarted = clients
        .get(&id)
        .context("no client for the restarted controller")?;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not caught up within {:?}",
            options.catch_up_timeout
        );
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (leader, _) = find_leader(clients, options, remaining).await?;
        let leader_client = &clients[&leader];
        if no_op(leader_client, options).await.is_err() {
            tokio::time::sleep(options.poll_interval).await;
            continue;
        }
        let Some(state) = describe(leader_client, options).await else {
            continue;
        };
        let matched = state
            .voters
            .iter()
            .find(|v| v.replica_id == id)
            .map_or(-1, |v| v.log_end_offset);
        let follows = describe(restarted, options)
            .await
            .is_some_and(|s| s.leader_id == leader);
        if state.leader_id == leader && matched >= state.high_watermark as i64 && follows {
            return Ok(());
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// Milliseconds with three decimals, for settings and logs.
fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1e3)
}

/// Records `durations` in a new histogram (microseconds).
fn histogram(durations: impl Iterator<Item = Duration>) -> Histogram<u64> {
    let mut histogram = latency_histogram();
    for duration in durations {
        histogram.saturating_record(duration.as_micros() as u64);
    }
    histogram
}

impl Workload for ControllerFailover {
    fn name(&self) -> &'static str {
        "controller-failover"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.options.trials > 0, "at least one trial");
        anyhow::ensure!(
            self.options.voters >= 3,
            "a failover needs at least 3 voters"
        );
        let quorum = Quorum::plan(
            &self.options.ferry_bin,
            self.options.voters,
            CLUSTER_ID,
            self.options.data_parent.as_deref(),
        )?;
        tracing::info!(dir = %quorum.base_dir().display(), voters = ?quorum.voters(), "starting controllers");
        let voters = quorum.voters();
        let tls = quorum.client_tls()?;
        self.quorum = Some(quorum);
        self.quorum()?.start_all()?;
        self.clients = self.runtime.block_on(async {
            voters
                .iter()
                .map(|(id, addr)| Ok((*id, controller_client(addr, &tls)?)))
                .collect::<anyhow::Result<BTreeMap<_, _>>>()
        })?;
        // A first committed write, so the trials start from a working quorum.
        let options = self.options.clone();
        let clients = self.clients.clone();
        let start = Instant::now();
        let (elapsed, leader) = self
            .runtime
            .block_on(first_write(&clients, start, &options))
            .context("the new quorum never committed a write")?;
        tracing::info!(leader, elapsed_ms = ms(elapsed), "quorum up");
        for id in voters.keys() {
            self.runtime
                .block_on(caught_up(&clients, *id, &options))
                .with_context(|| format!("controller {id} did not catch up at start"))?;
        }
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let start = Instant::now();
        for number in 1..=self.options.trials {
            match self.trial(number) {
                Ok(trial) => self.trials.push(trial),
                Err(error) => {
                    // A quorum that cannot fail over is the finding; report what was measured.
                    tracing::error!("{error:#}");
                    self.failures.push(format!("{error:#}"));
                    break;
                }
            }
        }
        let elapsed = start.elapsed();
        let mut report = Report::new(self.name(), self.trials.len() as u64, 0, elapsed);
        report.setting("voters", self.options.voters);
        report.setting("trials", self.options.trials);
        report.setting("poll_interval_ms", ms(self.options.poll_interval));
        report.setting("call_timeout_ms", ms(self.options.call_timeout));
        report.setting("ferry_bin", self.options.ferry_bin.display());
        let writes = histogram(self.trials.iter().map(|t| t.to_write));
        let leaders = histogram(self.trials.iter().filter_map(|t| t.to_leader));
        let catch_up = histogram(self.trials.iter().map(|t| t.catch_up));
        report.latencies = [
            NamedLatency::new("kill -> first committed write", &writes),
            NamedLatency::new("kill -> a survivor names the new leader", &leaders),
            NamedLatency::new("restart -> caught up (informational)", &catch_up),
        ]
        .into_iter()
        .flatten()
        .collect();
        report.errors = self.failures.len() as u64;
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        let mut violations = std::mem::take(&mut self.failures);
        let completed = self.trials.len() as u32;
        if completed < self.options.trials {
            violations.push(format!(
                "{completed} of {} trials completed",
                self.options.trials
            ));
        }
        for (index, trial) in self.trials.iter().enumerate() {
            if trial.new_leader == trial.killed {
                violations.push(format!(
                    "trial {}: the killed controller {} was still named leader",
                    index + 1,
                    trial.killed
                ));
            }
        }
        if self.quorum.is_some() {
            // A failed trial may have left a controller down.
            self.quorum()?.start_all()?;
            let options = self.options.clone();
            let clients = self.clients.clone();
            for id in clients.keys() {
                if let Err(error) = self.runtime.block_on(caught_up(&clients, *id, &options)) {
                    violations.push(format!("at the end, controller {id}: {error:#}"));
                }
            }
        }
        if let Some(mut quorum) = self.quorum.take() {
            if self.options.keep_data {
                let dir = quorum.keep();
                tracing::info!(dir = %dir.display(), "kept the controllers' data and logs");
            }
            quorum.kill_all();
        }
        Ok(violations)
    }
}
