//! The supervisor: the agent's sans-IO core. Given the desired assignments and what it is told
//! about the node processes, it decides what to do (start, stop, kill, remove) and what to
//! report. It does no I/O and never reads the clock: the shell ([`crate::agent`]) passes the
//! time in as [`Millis`] and carries out the [`Action`]s through a [`crate::host::Host`].
//!
//! # Expected flow
//!
//! ```text
//! set_desired(assignments)      -- from the control plane, or from disk at start
//! adopt(key, pid, ..) / found_stopped(key)   -- what the agent found on disk at start
//! loop:
//!   exited(key, pid, why, now)  -- for each watched() process the host saw exit
//!   probed(key, pid, probe, details) -- for each probe_targets() node, its admin endpoint's
//!                                 answer (and the status fields it forwards)
//!   tick(now) -> [Action]       -- Start: the shell answers started() or start_failed()
//!   report(now) -> [NodeReport] -- sent to the control plane
//! ```
//!
//! # Per node
//!
//! - **Down** and desired: started at once the first time, after a backoff once it failed. The
//!   backoff doubles from `restart_backoff_initial` per consecutive failure, capped at
//!   `restart_backoff_max`; a node that becomes ready resets the count, and so does a new
//!   assignment for it (started at once: the change may be the fix).
//! - **Up**: watched for exit and probed for health. Restarted when its assignment changes
//!   (stop, then start with the new one) and stopped when no longer assigned.
//! - **Stopping**: asked to stop (SIGTERM); killed (SIGKILL) after `stop_timeout`.
//! - Not desired and down: its directory is removed and the node forgotten.
//!
//! # Reported state
//!
//! | process | health | state | message |
//! |---|---|---|---|
//! | not started yet | | PENDING | `not started yet` |
//! | failed, waiting to restart | | UNHEALTHY | the failure (e.g. exit status and last log line) and the next attempt |
//! | running after failures, not ready since | | UNHEALTHY | the last failure, restarted |
//! | running | no answer yet / not ready | STARTING | what it waits for |
//! | running | ready (broker registered and unfenced; controller sees a leader) | RUNNING | |
//! | running, was ready | no answer / wrong node | UNHEALTHY | the probe's error |
//! | stopping to restart with a new assignment | | STARTING | `restarting ...` |
//! | no longer assigned, stopping | | STOPPED | `removed from the host's assignments` |
//!
//! Messages name the node (`node 101 of cluster cl-..`), so that a cluster's status can quote
//! them as they are.
//!
//! # Halting
//!
//! [`Supervisor::halt`] is for an agent that stops its nodes on the way out: halted roles are
//! stopped and nothing is started or removed any more, whatever is desired.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::assignment::{Assignment, NodeKey, NodeRole, Pid};

/// Milliseconds on the agent's monotonic clock (since the agent started).
pub type Millis = u64;

/// How the supervisor restarts and stops nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorOptions {
    /// The wait before the first restart after a failure; doubles per consecutive failure.
    pub restart_backoff_initial: Duration,
    /// The longest wait between restarts.
    pub restart_backoff_max: Duration,
    /// How long a node may take to stop after SIGTERM before it gets SIGKILL. A broker's
    /// controlled shutdown takes up to 10 s, so keep this above that.
    pub stop_timeout: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            restart_backoff_initial: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(15),
        }
    }
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the node's files and start its process, then call [`Supervisor::started`] or
    /// [`Supervisor::start_failed`] before the next tick.
    Start(Assignment),
    /// Ask the process to stop (SIGTERM).
    Terminate {
        /// The node.
        key: NodeKey,
        /// Its process.
        pid: Pid,
    },
    /// Kill the process (SIGKILL): it did not stop within the stop timeout.
    Kill {
        /// The node.
        key: NodeKey,
        /// Its process.
        pid: Pid,
    },
    /// Delete the node's directory: it is no longer assigned and its process is gone. The
    /// supervisor has forgotten the node.
    Remove(NodeKey),
}

/// What a node's admin endpoint said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Serving: a broker registered and unfenced, a controller that knows a quorum leader.
    Ready,
    /// Answering, not ready yet; what it waits for, in a sentence.
    NotReady(String),
    /// No answer, or an answer from the wrong node; why, in a sentence.
    Failed(String),
}

/// What a node's admin endpoint said besides readiness, forwarded to the control plane as it
/// is (the operator's view, and the rolling restart's replication check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDetails {
    /// Brokers: the epoch of its registration; -1 when not registered.
    pub broker_epoch: i64,
    /// Brokers: whether the controllers fence it.
    pub fenced: bool,
    /// Offset of the last metadata change it applied.
    pub metadata_offset: u64,
    /// Controllers: its role in the metadata quorum; empty for a broker-only node.
    pub quorum_role: String,
    /// Controllers: the quorum leader it knows of; -1 when none.
    pub quorum_leader_id: i32,
    /// Brokers: the cluster's partition replication by its metadata image; `None` for a
    /// controller, or a node too old to count it.
    pub replication: Option<Replication>,
}

/// Partition counts over the whole cluster, from one broker's metadata image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replication {
    /// Partitions in the image.
    pub partitions: u32,
    /// Partitions whose in-sync replica set is smaller than their replica set.
    pub under_replicated: u32,
    /// Partitions without a leader.
    pub offline: u32,
}

/// How a node is, as the agent reports it (the control plane's `NodeState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Assigned, not started yet.
    Pending,
    /// Running, not ready yet.
    Starting,
    /// Ready and serving.
    Running,
    /// Failing: see the message.
    Unhealthy,
    /// Stopped (or stopping) on purpose.
    Stopped,
}

/// One node in the agent's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node.
    pub key: NodeKey,
    /// How it is.
    pub state: NodeState,
    /// Why, in a sentence naming the node; empty when RUNNING.
    pub message: String,
    /// Its process, if one runs.
    pub pid: Option<Pid>,
    /// The `config_fingerprint` of the assignment its running process was started with; empty
    /// if none runs (or it was adopted without its record). The control plane compares it
    /// with the assignment's to tell whether the node already runs a new configuration.
    pub config_fingerprint: String,
    /// What the running process's admin endpoint said at its last answered probe; `None`
    /// when no process runs or its last probe went unanswered.
    pub details: Option<NodeDetails>,
}

/// A node's process, as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
// One per node on the host (a handful): boxing the assignment would only add noise.
#[allow(clippy::large_enum_variant)]
enum Process {
    /// No process. Started (if desired) once the clock reaches `not_before`.
    Down {
        /// The earliest start.
        not_before: Millis,
    },
    /// A Start action was issued; the shell answers before the next tick.
    Launching,
    /// Running.
    Up {
        /// Its pid.
        pid: Pid,
        /// When it was started or adopted.
        since: Millis,
        /// The assignment it runs with; `None` if unknown (adopted without its record).
        started_with: Option<Assignment>,
        /// Its admin endpoint's last answer.
        probe: Option<Probe>,
        /// The status fields of that answer, if it answered.
        details: Option<NodeDetails>,
        /// Whether it was ready at least once since it started.
        ready_once: bool,
    },
    /// Asked to stop.
    Stopping {
        /// Its pid.
        pid: Pid,
        /// When it was asked.
        since: Millis,
        /// Whether it was also killed.
        killed: bool,
    },
}

/// Everything the supervisor knows about one node.
#[derive(Debug, Clone)]
struct Slot {
    /// What should run; `None` once unassigned (the node is stopped and removed).
    desired: Option<Assignment>,
    /// The process.
    process: Process,
    /// Consecutive failures since the node was last ready; drives the backoff.
    failures: u32,
    /// The last failure, in a sentence naming the node; cleared when the node is ready.
    last_failure: Option<String>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            desired: None,
            process: Process::Down { not_before: 0 },
            failures: 0,
            last_failure: None,
        }
    }

    /// The node's role: as desired, else as it runs, else broker.
    fn role(&self) -> NodeRole {
        let running = match &self.process {
            Process::Up { started_with, .. } => started_with.as_ref().map(|a| a.role),
            _ => None,
        };
        self.desired
            .as_ref()
            .map(|a| a.role)
            .or(running)
            .unwrap_or(NodeRole::Broker)
    }
}

/// The sans-IO supervisor of one host's nodes. See the module docs.
#[derive(Debug, Clone)]
pub struct Supervisor {
    /// Backoff and stop bounds.
    options: SupervisorOptions,
    /// Every node assigned or still present, by key.
    slots: BTreeMap<NodeKey, Slot>,
    /// Roles being stopped for good (the agent is shutting down with its nodes).
    halted: BTreeSet<NodeRole>,
}

impl Supervisor {
    /// A supervisor with no nodes.
    pub fn new(options: SupervisorOptions) -> Supervisor {
        assert!(
            options.restart_backoff_initial <= options.restart_backoff_max,
            "the first restart backoff must not exceed the largest"
        );
        Supervisor {
            options,
            slots: BTreeMap::new(),
            halted: BTreeSet::new(),
        }
    }

    /// Sets what should run: new nodes are added, changed ones will restart, missing ones
    /// will be stopped and removed.
    pub fn set_desired(&mut self, assignments: &[Assignment]) {
        let mut wanted: BTreeMap<NodeKey, &Assignment> = BTreeMap::new();
        for a in assignments {
            let previous = wanted.insert(a.key(), a);
            assert!(previous.is_none(), "{} is assigned twice", a.key());
        }
        for (key, slot) in &mut self.slots {
            if !wanted.contains_key(key) {
                slot.desired = None;
            }
        }
        for (key, a) in wanted {
            let slot = self.slots.entry(key).or_insert_with(Slot::new);
            if slot.desired.as_ref() != Some(a) && matches!(slot.process, Process::Down { .. }) {
                // A new assignment (a moved port, a changed setting) may be the fix for what
                // kept the node failing: try it at once, with a fresh count.
                slot.process = Process::Down { not_before: 0 };
                slot.failures = 0;
                slot.last_failure = None;
            }
            slot.desired = Some(a.clone());
        }
    }

    /// Takes over a process found running at start (the agent restarted; the node did not).
    /// `started_with` is the assignment recorded when it was started, if readable.
    pub fn adopt(&mut self, key: NodeKey, pid: Pid, started_with: Option<Assignment>, now: Millis) {
        let slot = self.slots.entry(key).or_insert_with(Slot::new);
        slot.process = Process::Up {
            pid,
            since: now,
            started_with,
            probe: None,
            details: None,
            ready_once: false,
        };
    }

    /// Records a node found on disk without a process: started if desired, else removed.
    pub fn found_stopped(&mut self, key: NodeKey) {
        self.slots.entry(key).or_insert_with(Slot::new);
    }

    /// The shell started the node of a [`Action::Start`] as process `pid`.
    pub fn started(&mut self, key: &NodeKey, pid: Pid, now: Millis) {
        let slot = self.slot_mut(key);
        assert_eq!(slot.process, Process::Launching, "{key} started unasked");
        slot.process = Process::Up {
            pid,
            since: now,
            started_with: slot.desired.clone(),
            probe: None,
            details: None,
            ready_once: false,
        };
    }

    /// The shell could not start the node of a [`Action::Start`].
    pub fn start_failed(&mut self, key: &NodeKey, error: &str, now: Millis) {
        let slot = self.slot_mut(key);
        assert_eq!(slot.process, Process::Launching, "{key} failed unasked");
        let failure = format!("{key} could not be started: {error}");
        self.fail(key, failure, now);
    }

    /// Process `pid` of the node is gone; `why` says how, in a sentence fragment such as
    /// `exited with status 1: Error: cannot listen on ...`.
    pub fn exited(&mut self, key: &NodeKey, pid: Pid, why: &str, now: Millis) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        match slot.process {
            Process::Up { pid: up, .. } if up == pid => {
                let failure = format!("{key} {why}");
                self.fail(key, failure, now);
            }
            Process::Stopping { pid: stopping, .. } if stopping == pid => {
                // Stopped on purpose: start again at once if still desired (a new assignment).
                slot.process = Process::Down { not_before: now };
            }
            // A stale report about an earlier process.
            _ => {}
        }
    }

    /// The node's admin endpoint answered `probe` (asked while `pid` ran), with `details`
    /// when it answered at all.
    pub fn probed(&mut self, key: &NodeKey, pid: Pid, probe: Probe, details: Option<NodeDetails>) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if let Process::Up {
            pid: up,
            probe: last,
            details: last_details,
            ready_once,
            ..
        } = &mut slot.process
            && *up == pid
        {
            *last_details = details;
            if probe == Probe::Ready {
                *ready_once = true;
                slot.failures = 0;
                slot.last_failure = None;
            }
            *last = Some(probe);
        }
    }

    /// Stops every node of `role` and, from now on, starts and removes nothing.
    pub fn halt(&mut self, role: NodeRole) {
        self.halted.insert(role);
    }

    /// Whether a process of `role` still runs (or is stopping).
    pub fn has_processes(&self, role: NodeRole) -> bool {
        self.slots.values().any(|slot| {
            slot.role() == role
                && matches!(slot.process, Process::Up { .. } | Process::Stopping { .. })
        })
    }

    /// Decides what to do now, in node key order.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut forget = Vec::new();
        let halting = !self.halted.is_empty();
        for (key, slot) in &mut self.slots {
            let halted = self.halted.contains(&slot.role());
            match &mut slot.process {
                Process::Launching => {
                    panic!("{key}: the shell must answer a Start before the next tick")
                }
                Process::Down { not_before } => match &slot.desired {
                    Some(a) if !halting && now >= *not_before => {
                        actions.push(Action::Start(a.clone()));
                        slot.process = Process::Launching;
                    }
                    None if !halting => {
                        actions.push(Action::Remove(key.clone()));
                        forget.push(key.clone());
                    }
                    _ => {}
                },
                Process::Up {
                    pid, started_with, ..
                } => {
                    let outdated = slot.desired.is_none() || *started_with != slot.desired;
                    if outdated || halted {
                        let pid = *pid;
                        actions.push(Action::Terminate {
                            key: key.clone(),
                            pid,
                        });
                        slot.process = Process::Stopping {
                            pid,
                            since: now,
                            killed: false,
                        };
                    }
                }
                Process::Stopping { pid, since, killed } => {
                    if !*killed && now >= *since + millis(self.options.stop_timeout) {
                        actions.push(Action::Kill {
                            key: key.clone(),
                            pid: *pid,
                        });
                        *killed = true;
                    }
                }
            }
        }
        for key in forget {
            self.slots.remove(&key);
        }
        actions
    }

    /// The processes to watch for exit: running and stopping ones.
    pub fn watched(&self) -> Vec<(NodeKey, Pid)> {
        self.slots
            .iter()
            .filter_map(|(key, slot)| match slot.process {
                Process::Up { pid, .. } | Process::Stopping { pid, .. } => Some((key.clone(), pid)),
                _ => None,
            })
            .collect()
    }

    /// The running nodes to probe, with the assignment whose admin endpoint to ask.
    pub fn probe_targets(&self) -> Vec<(Assignment, Pid)> {
        self.slots
            .values()
            .filter_map(|slot| match &slot.process {
                Process::Up {
                    pid,
                    started_with: Some(a),
                    ..
                } => Some((a.clone(), *pid)),
                _ => None,
            })
            .collect()
    }

    /// How every node is, in key order. See the module docs for the table.
    pub fn report(&self, now: Millis) -> Vec<NodeReport> {
        self.slots
            .iter()
            .map(|(key, slot)| {
                let (state, message, pid) = self.describe(key, slot, now);
                let config_fingerprint = match &slot.process {
                    Process::Up {
                        started_with: Some(a),
                        ..
                    } => a.config_fingerprint.clone(),
                    _ => String::new(),
                };
                let details = match &slot.process {
                    Process::Up { details, .. } => details.clone(),
                    _ => None,
                };
                NodeReport {
                    key: key.clone(),
                    state,
                    message,
                    pid,
                    config_fingerprint,
                    details,
                }
            })
            .collect()
    }

    /// One row of the report.
    fn describe(
        &self,
        key: &NodeKey,
        slot: &Slot,
        now: Millis,
    ) -> (NodeState, String, Option<Pid>) {
        use NodeState::*;
        match &slot.process {
            Process::Stopping { pid, .. } if slot.desired.is_none() => (
                Stopped,
                format!("{key} is stopping: removed from the host's assignments"),
                Some(*pid),
            ),
            Process::Stopping { pid, .. } if !self.halted.is_empty() => (
                Stopped,
                format!("{key} is stopping with its agent"),
                Some(*pid),
            ),
            Process::Stopping { pid, .. } => (
                Starting,
                format!("{key} is restarting to apply a new assignment"),
                Some(*pid),
            ),
            Process::Down { .. } if slot.desired.is_none() => (
                Stopped,
                format!("{key} was removed from the host's assignments"),
                None,
            ),
            Process::Down { .. } if !self.halted.is_empty() => {
                (Stopped, format!("{key} was stopped with its agent"), None)
            }
            Process::Down { not_before } => match &slot.last_failure {
                None => (Pending, format!("{key} is not started yet"), None),
                Some(failure) => {
                    let wait = not_before.saturating_sub(now);
                    (
                        Unhealthy,
                        format!(
                            "{failure}; restart attempt {} in {:.1} s",
                            slot.failures,
                            wait as f64 / 1000.0
                        ),
                        None,
                    )
                }
            },
            Process::Launching => (Starting, format!("{key} is starting"), None),
            Process::Up {
                pid,
                since,
                probe,
                ready_once,
                ..
            } => {
                let (up, pid) = (*pid, Some(*pid));
                match (probe, &slot.last_failure) {
                    (Some(Probe::Ready), _) => (Running, String::new(), pid),
                    (_, Some(failure)) => (
                        Unhealthy,
                        format!(
                            "{failure}; restarted (attempt {}), not ready yet",
                            slot.failures
                        ),
                        pid,
                    ),
                    (Some(Probe::Failed(why)), _) if *ready_once => {
                        (Unhealthy, format!("{key} is not healthy: {why}"), pid)
                    }
                    (Some(Probe::NotReady(why) | Probe::Failed(why)), _) => {
                        (Starting, format!("{key} is starting: {why}"), pid)
                    }
                    (None, None) => (
                        Starting,
                        format!(
                            "{key} is starting: process {} up for {} s, not answering yet",
                            up,
                            now.saturating_sub(*since) / 1000
                        ),
                        pid,
                    ),
                }
            }
        }
    }

    /// Records a failure of the node and schedules its restart after the backoff.
    fn fail(&mut self, key: &NodeKey, failure: String, now: Millis) {
        let initial = millis(self.options.restart_backoff_initial);
        let max = millis(self.options.restart_backoff_max);
        let slot = self.slot_mut(key);
        slot.failures = slot.failures.saturating_add(1);
        let doublings = (slot.failures - 1).min(32);
        let backoff = initial.saturating_mul(1 << doublings).min(max);
        slot.last_failure = Some(failure);
        slot.process = Process::Down {
            not_before: now + backoff,
        };
    }

    fn slot_mut(&mut self, key: &NodeKey) -> &mut Slot {
        self.slots
            .get_mut(key)
            .unwrap_or_else(|| panic!("{key} is not supervised"))
    }
}

/// A duration in whole milliseconds.
fn millis(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::tests::{broker, controller};

    fn options() -> SupervisorOptions {
        SupervisorOptions {
            restart_backoff_initial: Duration::from_millis(100),
            restart_backoff_max: Duration::from_millis(1000),
            stop_timeout: Duration::from_millis(5000),
        }
    }

    fn key(node_id: i32) -> NodeKey {
        NodeKey {
            cluster_id: "cl-1".into(),
            node_id,
        }
    }

    /// Runs a tick and answers every Start with pid `1000 + node id`.
    fn tick(s: &mut Supervisor, now: Millis) -> Vec<Action> {
        let actions = s.tick(now);
        for action in &actions {
            if let Action::Start(a) = action {
                s.started(&a.key(), 1000 + a.node_id as u32, now);
            }
        }
        actions
    }

    fn state(s: &Supervisor, node_id: i32, now: Millis) -> (NodeState, String) {
        let report = s.report(now);
        let r = report.iter().find(|r| r.key == key(node_id)).unwrap();
        (r.state, r.message.clone())
    }

    #[test]
    fn assigned_nodes_start_in_key_order_and_run_when_ready() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101), controller("cl-1", 1)]);
        assert_eq!(state(&s, 1, 0).0, NodeState::Pending);
        assert_eq!(
            tick(&mut s, 0),
            vec![
                Action::Start(controller("cl-1", 1)),
                Action::Start(broker("cl-1", 101))
            ]
        );
        assert_eq!(tick(&mut s, 10), vec![]);
        assert_eq!(state(&s, 101, 10).0, NodeState::Starting);
        s.probed(&key(101), 1101, Probe::NotReady("registering".into()), None);
        assert_eq!(
            state(&s, 101, 20),
            (
                NodeState::Starting,
                "node 101 of cluster cl-1 is starting: registering".into()
            )
        );
        s.probed(&key(101), 1101, Probe::Ready, None);
        assert_eq!(state(&s, 101, 30), (NodeState::Running, String::new()));
        assert_eq!(s.report(30)[1].pid, Some(1101));
    }

    #[test]
    fn a_crashed_node_restarts_with_doubling_capped_backoff() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101)]);
        tick(&mut s, 0);
        let mut now = 0;
        let mut starts = Vec::new();
        // Crash right after every start: waits 100, 200, 400, 800, 1000, 1000 ms.
        for _ in 0..6 {
            s.exited(&key(101), 1101, "exited with status 1: boom", now);
            let (st, msg) = state(&s, 101, now);
            assert_eq!(st, NodeState::Unhealthy);
            assert!(msg.starts_with("node 101 of cluster cl-1 exited with status 1: boom"));
            loop {
                now += 50;
                if !tick(&mut s, now).is_empty() {
                    starts.push(now);
                    break;
                }
            }
        }
        let waits: Vec<u64> = std::iter::once(starts[0])
            .chain(starts.windows(2).map(|w| w[1] - w[0]))
            .collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        // Restarted but never ready: still unhealthy, with the cause.
        let (st, msg) = state(&s, 101, now);
        assert_eq!(st, NodeState::Unhealthy);
        assert!(
            msg.contains("boom") && msg.contains("restarted (attempt 6)"),
            "{msg}"
        );
        // Ready resets the count: the next crash waits the initial backoff again.
        s.probed(&key(101), 1101, Probe::Ready, None);
        s.exited(&key(101), 1101, "was killed by signal 9", now);
        assert!(tick(&mut s, now + 99).is_empty());
        assert_eq!(tick(&mut s, now + 100).len(), 1);
    }

    #[test]
    fn a_reports_details_are_its_running_processs_last_answer() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101)]);
        tick(&mut s, 0);
        assert_eq!(s.report(0)[0].details, None, "not answered yet");
        let details = NodeDetails {
            broker_epoch: 4,
            quorum_leader_id: -1,
            replication: Some(Replication {
                partitions: 12,
                under_replicated: 3,
                offline: 0,
            }),
            ..Default::default()
        };
        s.probed(&key(101), 1101, Probe::Ready, Some(details.clone()));
        assert_eq!(s.report(10)[0].details, Some(details.clone()));
        // A probe of an earlier process changes nothing.
        s.probed(&key(101), 999, Probe::Ready, None);
        assert_eq!(s.report(20)[0].details, Some(details));
        // An unanswered probe leaves nothing to forward: old counts would mislead.
        s.probed(&key(101), 1101, Probe::Failed("timed out".into()), None);
        assert_eq!(s.report(30)[0].details, None);
    }

    #[test]
    fn an_unassigned_node_is_stopped_killed_after_the_timeout_then_removed() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101)]);
        tick(&mut s, 0);
        s.set_desired(&[]);
        assert_eq!(
            tick(&mut s, 10),
            vec![Action::Terminate {
                key: key(101),
                pid: 1101
            }]
        );
        assert_eq!(state(&s, 101, 10).0, NodeState::Stopped);
        assert_eq!(tick(&mut s, 5009), vec![]);
        assert_eq!(
            tick(&mut s, 5010),
            vec![Action::Kill {
                key: key(101),
                pid: 1101
            }]
        );
        assert_eq!(tick(&mut s, 6000), vec![]);
        s.exited(&key(101), 1101, "was killed by signal 9", 6100);
        assert_eq!(tick(&mut s, 6200), vec![Action::Remove(key(101))]);
        assert!(s.report(6200).is_empty());
        assert!(s.watched().is_empty());
    }

    #[test]
    fn a_changed_assignment_restarts_the_node_at_once() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101)]);
        tick(&mut s, 0);
        let fingerprint = |s: &Supervisor| s.report(0)[0].config_fingerprint.clone();
        assert_eq!(
            fingerprint(&s),
            "a1a1a1a1a1a1a1a1",
            "the config the process runs"
        );
        let mut changed = broker("cl-1", 101);
        changed
            .broker_config
            .insert("num.partitions".into(), "6".into());
        changed.config_fingerprint = "b2b2b2b2b2b2b2b2".into();
        s.set_desired(std::slice::from_ref(&changed));
        // Until the process restarts, it still runs (and reports) the old config.
        assert_eq!(fingerprint(&s), "a1a1a1a1a1a1a1a1");
        assert_eq!(
            tick(&mut s, 10),
            vec![Action::Terminate {
                key: key(101),
                pid: 1101
            }]
        );
        assert_eq!(state(&s, 101, 10).0, NodeState::Starting);
        assert_eq!(fingerprint(&s), "", "stopping: no config runs for sure");
        s.exited(&key(101), 1101, "exited with status 0", 20);
        assert_eq!(tick(&mut s, 20), vec![Action::Start(changed)]);
        assert_eq!(state(&s, 101, 20).0, NodeState::Starting);
        assert_eq!(fingerprint(&s), "b2b2b2b2b2b2b2b2");
    }

    #[test]
    fn a_new_assignment_for_a_failing_node_is_tried_at_once() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101)]);
        tick(&mut s, 0);
        for now in [0, 100, 300, 700] {
            s.exited(&key(101), 1101, "exited with status 1: port in use", now);
            tick(&mut s, now + 10_000);
        }
        s.exited(&key(101), 1101, "exited with status 1: port in use", 20_000);
        assert!(tick(&mut s, 20_001).is_empty(), "backing off");
        // The same assignment again changes nothing.
        s.set_desired(&[broker("cl-1", 101)]);
        assert!(tick(&mut s, 20_002).is_empty(), "still backing off");
        let mut moved = broker("cl-1", 101);
        moved.kafka_port = Some(9200);
        s.set_desired(std::slice::from_ref(&moved));
        assert_eq!(state(&s, 101, 20_003).0, NodeState::Pending);
        assert_eq!(tick(&mut s, 20_003), vec![Action::Start(moved)]);
    }

    #[test]
    fn adopted_processes_are_kept_when_their_assignment_matches() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101), controller("cl-1", 1)]);
        s.adopt(key(101), 77, Some(broker("cl-1", 101)), 0);
        // Adopted without its record: restarted to be sure it runs the desired assignment.
        s.adopt(key(1), 78, None, 0);
        // Found on disk, no longer assigned: removed.
        s.found_stopped(key(102));
        assert_eq!(
            tick(&mut s, 0),
            vec![
                Action::Terminate {
                    key: key(1),
                    pid: 78
                },
                Action::Remove(key(102)),
            ]
        );
        s.probed(&key(101), 77, Probe::Ready, None);
        assert_eq!(state(&s, 101, 0), (NodeState::Running, String::new()));
    }

    #[test]
    fn a_failed_start_is_a_failure_with_backoff() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101)]);
        assert_eq!(s.tick(0).len(), 1);
        s.start_failed(&key(101), "no such file", 0);
        let (st, msg) = state(&s, 101, 0);
        assert_eq!(st, NodeState::Unhealthy);
        assert_eq!(
            msg,
            "node 101 of cluster cl-1 could not be started: no such file; \
             restart attempt 1 in 0.1 s"
        );
        assert!(s.tick(99).is_empty());
        assert_eq!(s.tick(100).len(), 1);
    }

    #[test]
    fn a_ready_node_that_stops_answering_is_unhealthy() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[controller("cl-1", 1)]);
        tick(&mut s, 0);
        s.probed(
            &key(1),
            1001,
            Probe::Failed("connection refused".into()),
            None,
        );
        assert_eq!(state(&s, 1, 0).0, NodeState::Starting);
        s.probed(&key(1), 1001, Probe::Ready, None);
        s.probed(
            &key(1),
            1001,
            Probe::Failed("connection refused".into()),
            None,
        );
        assert_eq!(
            state(&s, 1, 0),
            (
                NodeState::Unhealthy,
                "node 1 of cluster cl-1 is not healthy: connection refused".into()
            )
        );
        // A probe of an earlier process is ignored.
        s.probed(&key(1), 999, Probe::Ready, None);
        assert_eq!(state(&s, 1, 0).0, NodeState::Unhealthy);
    }

    #[test]
    fn halting_stops_brokers_first_and_starts_nothing() {
        let mut s = Supervisor::new(options());
        s.set_desired(&[broker("cl-1", 101), controller("cl-1", 1)]);
        tick(&mut s, 0);
        s.halt(NodeRole::Broker);
        assert_eq!(
            tick(&mut s, 10),
            vec![Action::Terminate {
                key: key(101),
                pid: 1101
            }]
        );
        s.exited(&key(101), 1101, "exited with status 0", 20);
        assert!(!s.has_processes(NodeRole::Broker));
        assert!(s.has_processes(NodeRole::Controller));
        assert_eq!(tick(&mut s, 30), vec![], "a halted broker is not restarted");
        s.halt(NodeRole::Controller);
        assert_eq!(
            tick(&mut s, 40),
            vec![Action::Terminate {
                key: key(1),
                pid: 1001
            }]
        );
        s.exited(&key(1), 1001, "exited with status 0", 50);
        assert_eq!(tick(&mut s, 60), vec![], "nothing removed while halting");
        assert_eq!(state(&s, 1, 60).0, NodeState::Stopped);
    }
}
