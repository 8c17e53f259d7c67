//! The host's side effects: node directories, files and processes, behind the [`Host`] trait.
//!
//! [`OsHost`] is the real one. Each node lives in its own directory:
//!
//! ```text
//! <agent data dir>/nodes/<cluster_id>/<node_id>/
//!     data/              the node's --data-dir (owned by `ferry node`)
//!     assignment.json    the assignment it was started with (written atomically)
//!     node.pid           its process id (written atomically after the spawn)
//!     node.log           its stdout and stderr, bounded (the previous part kept as node.log.1)
//!     tls/               its certificate, key and CA (dir 0700, files 0600), passed as
//!                        --tls-ca/--tls-cert/--tls-key when present (see crate::node_tls)
//! ```
//!
//! Nodes run `ferry node` in their own process group, so a signal to the agent's group
//! (Ctrl-C in a terminal) does not reach them and they outlive the agent.
//!
//! # Re-adoption
//!
//! After an agent restart, [`OsHost::discover`] finds every node directory and, when its pid
//! file names a live process whose `/proc/<pid>/cmdline` holds `--data-dir <that node's data
//! dir>`, reports it running. The command-line check guards against pid reuse: a recycled pid
//! belongs to some other command line. Adopted processes are not the agent's children, so their
//! exit is seen by polling `/proc` ([`OsHost::poll_exit`]) and their exit status is unknown.
//!
//! # Caveats
//!
//! Linux only (`/proc`). A zombie (exited, not yet reaped by its parent) counts as exited.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use rustix::process::{Pid as RustixPid, Signal};

use crate::assignment::{Assignment, DATA_DIR_FLAG, NodeId, NodeKey, Pid, is_safe_name};
use crate::store::write_atomically;

/// The FERRY_* variables a node inherits from its agent: the log filter and format that
/// `ferry`'s `logging` module reads.
const NODE_ENV_PASSED: &[&str] = &["FERRY_LOG", "FERRY_LOG_FORMAT"];

/// Of the agent's environment variable `names`, those a node must not inherit: every FERRY_*
/// but [`NODE_ENV_PASSED`].
fn withheld_from_nodes(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    names
        .filter(|name| {
            let name = name.to_string_lossy();
            name.starts_with("FERRY_") && !NODE_ENV_PASSED.contains(&name.as_ref())
        })
        .collect()
}

/// Subdirectory of the agent's data directory holding the node directories.
pub const NODES_DIR: &str = "nodes";
/// The subdirectory of a node's directory holding its TLS material (kept by
/// [`crate::node_tls`]).
pub const TLS_DIR: &str = "tls";
/// A node's log beyond this size is rotated: copied to `node.log.1`, then truncated (the node
/// appends, so it writes on at the new end). Checked at each start and every probe round, so
/// a log may pass the bound by what the node writes in between.
pub const LOG_BYTES_MAX: u64 = 16 << 20;
/// How much of a node's log is read to find the line explaining its exit.
const LOG_TAIL_BYTES: u64 = 16 << 10;
/// Begins the line the agent writes into a node's log before each start.
const START_MARKER: &str = "--- ferry agent starting";
/// Longest log line quoted in a report.
const LOG_LINE_CHARS_MAX: usize = 300;

/// Which signal stops a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM: stop cleanly (a broker hands off leadership and flushes).
    Terminate,
    /// SIGKILL.
    Kill,
}

/// A node found on disk when the agent starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The node.
    pub key: NodeKey,
    /// Its process, if it still runs (verified by command line).
    pub pid: Option<Pid>,
    /// The assignment recorded when it was started, if readable.
    pub started_with: Option<Assignment>,
}

/// The host's side effects, as the supervisor's shell needs them.
pub trait Host: Send {
    /// Writes the node's directory and files and starts its process.
    fn start(&mut self, assignment: &Assignment) -> Result<Pid, String>;
    /// Sends `signal` to the node's process (ignoring a process that is already gone).
    fn signal(&mut self, key: &NodeKey, pid: Pid, signal: StopSignal);
    /// If process `pid` of the node has exited, how, as a sentence fragment (`exited with
    /// status 1: <the log line explaining it>`); `None` while it runs.
    fn poll_exit(&mut self, key: &NodeKey, pid: Pid) -> Option<String>;
    /// Deletes the node's directory.
    fn remove(&mut self, key: &NodeKey) -> Result<(), String>;
    /// Every node directory on disk, with its process if it runs.
    fn discover(&mut self) -> Vec<Found>;
    /// Keeps the node's log within [`LOG_BYTES_MAX`].
    fn trim_log(&mut self, key: &NodeKey);
}

/// Paths of one node's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    /// The node's directory.
    pub dir: PathBuf,
    /// Its `--data-dir`.
    pub data: PathBuf,
    /// The assignment it was started with.
    pub assignment: PathBuf,
    /// Its pid file.
    pub pid: PathBuf,
    /// Its log.
    pub log: PathBuf,
    /// Its TLS material (`ca.pem`, `cert.pem`, `key.pem`).
    pub tls: PathBuf,
}

impl NodePaths {
    /// The paths of `key`'s directory under the agent's data directory `root`.
    pub fn new(root: &Path, key: &NodeKey) -> NodePaths {
        let dir = root
            .join(NODES_DIR)
            .join(&key.cluster_id)
            .join(key.node_id.to_string());
        NodePaths {
            data: dir.join("data"),
            assignment: dir.join("assignment.json"),
            pid: dir.join("node.pid"),
            log: dir.join("node.log"),
            tls: dir.join(TLS_DIR),
            dir,
        }
    }
}

/// The real host: directories under the agent's data dir and `ferry node` processes.
#[derive(Debug)]
pub struct OsHost {
    /// The agent's data directory (absolute, so command lines compare across restarts).
    root: PathBuf,
    /// The `ferry` binary nodes run.
    binary: PathBuf,
    /// Extra environment for node processes.
    env: Vec<(String, String)>,
    /// Processes this agent started, by pid, to reap them and read their exit status.
    children: HashMap<Pid, Child>,
}

impl OsHost {
    /// A host keeping node directories under `root` (made absolute) and starting `binary`.
    pub fn new(root: &Path, binary: PathBuf, env: Vec<(String, String)>) -> std::io::Result<Self> {
        Ok(OsHost {
            root: fs::canonicalize(root)?,
            binary,
            env,
            children: HashMap::new(),
        })
    }

    /// The paths of a node's directory.
    pub fn paths(&self, key: &NodeKey) -> NodePaths {
        NodePaths::new(&self.root, key)
    }

    /// Whether `pid` runs the node whose data directory is `data` (and is not a zombie).
    pub fn is_node_process(pid: Pid, data: &Path) -> bool {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
            return false;
        };
        // The state follows the command name in parentheses, which may itself hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if matches!(state, Some("Z" | "X") | None) {
            return false;
        }
        let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
            return false;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let data = data.as_os_str().as_encoded_bytes();
        args.windows(2)
            .any(|w| w[0] == DATA_DIR_FLAG.as_bytes() && w[1] == data)
    }

    /// Opens the node's log for appending, rotating it first when it is too big.
    fn open_log(paths: &NodePaths) -> std::io::Result<File> {
        rotate_log(&paths.log)?;
        crate::store::private_file()
            .create(true)
            .append(true)
            .open(&paths.log)
    }
}

impl Host for OsHost {
    fn start(&mut self, assignment: &Assignment) -> Result<Pid, String> {
        let key = assignment.key();
        let paths = self.paths(&key);
        let io =
            |what: &str, path: &Path, e: std::io::Error| format!("{what} {}: {e}", path.display());
        crate::store::create_dir_all(&paths.data).map_err(|e| io("creating", &paths.data, e))?;
        let record = serde_json::to_vec_pretty(assignment).expect("assignments serialize");
        write_atomically(&paths.assignment, &record)
            .map_err(|e| io("writing", &paths.assignment, e))?;
        let mut log = Self::open_log(&paths).map_err(|e| io("opening", &paths.log, e))?;
        let mut args = assignment.node_args(&paths.data);
        if paths.tls.join(ferry_identity::CERT_FILE).exists() {
            for (flag, file) in [
                ("--tls-ca", ferry_identity::CA_FILE),
                ("--tls-cert", ferry_identity::CERT_FILE),
                ("--tls-key", ferry_identity::KEY_FILE),
            ] {
                args.extend([flag.to_string(), paths.tls.join(file).display().to_string()]);
            }
        }
        // A line in the log between runs, so a reader sees where each run begins.
        let _ = writeln!(log, "{START_MARKER} {key}: {}", args.join(" "));
        let stdout = log.try_clone().map_err(|e| io("opening", &paths.log, e))?;
        let mut command = Command::new(&self.binary);
        // `ferry node` reads FERRY_* variables as flag defaults, and the agent's own (its
        // token, its data dir) must not leak into a node: only the log settings pass.
        for name in withheld_from_nodes(std::env::vars_os().map(|(name, _)| name)) {
            command.env_remove(name);
        }
        let child = command
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| io("running", &self.binary, e))?;
        let pid = child.id();
        self.children.insert(pid, child);
        if let Err(e) = write_atomically(&paths.pid, format!("{pid}\n").as_bytes()) {
            // Without its pid file a restarted agent could not adopt the node: do not run it.
            if let Some(mut child) = self.children.remove(&pid) {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(io("writing", &paths.pid, e));
        }
        Ok(pid)
    }

    fn signal(&mut self, key: &NodeKey, pid: Pid, signal: StopSignal) {
        let Some(target) = i32::try_from(pid).ok().and_then(RustixPid::from_raw) else {
            return;
        };
        // Never signal a pid that no longer runs this node (it may have been reused).
        if !self.children.contains_key(&pid) && !Self::is_node_process(pid, &self.paths(key).data) {
            return;
        }
        let sig = match signal {
            StopSignal::Terminate => Signal::TERM,
            StopSignal::Kill => Signal::KILL,
        };
        if let Err(e) = rustix::process::kill_process(target, sig) {
            tracing::debug!(%key, pid, error = %e, "signal not delivered");
        }
    }

    fn poll_exit(&mut self, key: &NodeKey, pid: Pid) -> Option<String> {
        let paths = self.paths(key);
        // A process killed by a signal did not get to explain itself: only an error it
        // printed before counts, not whatever it last logged.
        let (how, any_line) = match self.children.get_mut(&pid) {
            Some(child) => match child.try_wait() {
                Ok(None) => return None,
                Ok(Some(status)) => (describe_exit(status), status.code().is_some()),
                Err(e) => (format!("could not be waited for ({e})"), true),
            },
            None if Self::is_node_process(pid, &paths.data) => return None,
            None => (
                "exited while the agent was not its parent (exit status unknown)".into(),
                true,
            ),
        };
        self.children.remove(&pid);
        Some(match explaining_line(&paths.log, any_line) {
            Some(line) => format!("{how}: {line}"),
            None => how,
        })
    }

    fn remove(&mut self, key: &NodeKey) -> Result<(), String> {
        let paths = self.paths(key);
        match fs::remove_dir_all(&paths.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing {}: {e}", paths.dir.display())),
        }
        // The cluster's directory goes with its last node (fails harmlessly while not empty).
        if let Some(cluster_dir) = paths.dir.parent() {
            let _ = fs::remove_dir(cluster_dir);
        }
        Ok(())
    }

    fn trim_log(&mut self, key: &NodeKey) {
        let log = self.paths(key).log;
        if let Err(e) = rotate_log(&log) {
            tracing::warn!(%key, error = %e, "could not rotate the node's log");
        }
    }

    fn discover(&mut self) -> Vec<Found> {
        let mut found = Vec::new();
        let Ok(clusters) = fs::read_dir(self.root.join(NODES_DIR)) else {
            return found;
        };
        for cluster in clusters.flatten() {
            let cluster_id = cluster.file_name().to_string_lossy().into_owned();
            if !is_safe_name(&cluster_id) {
                continue;
            }
            let Ok(nodes) = fs::read_dir(cluster.path()) else {
                continue;
            };
            for node in nodes.flatten() {
                let Ok(node_id) = node.file_name().to_string_lossy().parse::<NodeId>() else {
                    continue;
                };
                let key = NodeKey {
                    cluster_id: cluster_id.clone(),
                    node_id,
                };
                let paths = self.paths(&key);
                let pid = fs::read_to_string(&paths.pid)
                    .ok()
                    .and_then(|s| s.trim().parse::<Pid>().ok())
                    .filter(|pid| Self::is_node_process(*pid, &paths.data));
                let started_with = fs::read(&paths.assignment)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                found.push(Found {
                    key,
                    pid,
                    started_with,
                });
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        found
    }
}

/// If `log` is above [`LOG_BYTES_MAX`], copies it to `<log>.1` and empties it. Copy and
/// truncate rather than rename, because a running node keeps writing to the open file.
fn rotate_log(log: &Path) -> std::io::Result<()> {
    if fs::metadata(log).is_ok_and(|m| m.len() > LOG_BYTES_MAX) {
        fs::copy(log, log.with_extension("log.1"))?;
        OpenOptions::new().write(true).open(log)?.set_len(0)?;
    }
    Ok(())
}

/// `exited with status N` or `was killed by signal N (SIGKILL)`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                9 => " (SIGKILL)",
                15 => " (SIGTERM)",
                6 => " (SIGABRT)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            format!("was killed by signal {signal}{name}")
        }
        None => format!("exited ({status})"),
    }
}

/// The log line of the latest run (after the agent's last start marker) that best explains
/// its exit: the last `Error: ...` line (what `ferry node` prints when it fails), else, if
/// `any_line`, the last non-empty line; terminal colours removed.
pub fn explaining_line(log: &Path, any_line: bool) -> Option<String> {
    let mut file = File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = strip_ansi(&String::from_utf8_lossy(&tail));
    let run = text
        .rsplit_once(START_MARKER)
        .map_or(text.as_str(), |(_, run)| run);
    let lines: Vec<&str> = run
        .lines()
        .skip(usize::from(run.len() != text.len())) // the rest of the marker's line
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let error = lines.iter().rev().find(|l| l.starts_with("Error:"));
    let line = error.or(lines.last().filter(|_| any_line))?;
    Some(line.chars().take(LOG_LINE_CHARS_MAX).collect())
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_explains_an_exit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        fs::write(
            &log,
            "\u{1b}[2m2026-01-01\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m starting\n\
             Error: cannot listen on 127.0.0.1:40002: Address already in use (os error 98)\n\
             \n\
             Caused by:\n    Address already in use (os error 98)\n",
        )
        .unwrap();
        assert_eq!(
            explaining_line(&log, true).unwrap(),
            "Error: cannot listen on 127.0.0.1:40002: Address already in use (os error 98)"
        );
        fs::write(&log, "\u{1b}[31mERROR\u{1b}[0m disk full\n").unwrap();
        assert_eq!(explaining_line(&log, true).unwrap(), "ERROR disk full");
        assert_eq!(
            explaining_line(&log, false),
            None,
            "only errors after a signal"
        );
        // Only the latest run counts.
        fs::write(
            &log,
            format!("Error: old\n{START_MARKER} node 1: node --x\nINFO serving\n"),
        )
        .unwrap();
        assert_eq!(explaining_line(&log, true).unwrap(), "INFO serving");
        assert_eq!(explaining_line(&log, false), None);
        assert_eq!(explaining_line(&dir.path().join("missing"), true), None);
    }

    #[test]
    fn nodes_inherit_the_log_settings_and_no_other_ferry_variable() {
        let names = [
            "FERRY_LOG",
            "FERRY_LOG_FORMAT",
            "FERRY_TOKEN",
            "FERRY_JOIN_TOKEN",
            "FERRY_DATA_DIR",
            "PATH",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ];
        let withheld = withheld_from_nodes(names.iter().map(std::ffi::OsString::from));
        assert_eq!(
            withheld,
            ["FERRY_TOKEN", "FERRY_JOIN_TOKEN", "FERRY_DATA_DIR"]
        );
    }

    #[test]
    fn exits_are_described() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(1 << 8)),
            "exited with status 1"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn a_process_is_recognised_by_its_data_dir_argument() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // A shell that waits for its `sleep` keeps its own command line, flags included.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5; :", "fake-node", DATA_DIR_FLAG])
            .arg(&data)
            // Its `sleep` outlives the kill below: it must not hold the test's output open.
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The child may still be between fork and exec for a moment: bounded wait.
        let mut recognised = false;
        for _ in 0..100 {
            recognised = OsHost::is_node_process(pid, &data);
            if recognised {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(recognised, "{:?}", fs::read(format!("/proc/{pid}/cmdline")));
        assert!(!OsHost::is_node_process(pid, &dir.path().join("other")));
        assert!(!OsHost::is_node_process(std::process::id(), &data));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!OsHost::is_node_process(pid, &data));
    }

    #[test]
    fn started_processes_are_watched_stopped_discovered_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in for `ferry node`: prints a line, then sleeps.
        let script = dir.path().join("fake-ferry");
        fs::write(&script, "#!/bin/sh\necho starting\nexec sleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let mut host = OsHost::new(dir.path(), script, vec![]).unwrap();
        let a = crate::assignment::tests::broker("cl-1", 101);
        let pid = host.start(&a).unwrap();
        let key = a.key();
        let paths = host.paths(&key);
        assert!(paths.data.is_dir());
        assert_eq!(
            fs::read_to_string(&paths.pid).unwrap().trim(),
            pid.to_string()
        );
        // Its command line has no --data-dir, but it is our child: watched through the handle.
        assert_eq!(host.poll_exit(&key, pid), None);
        let found = host.discover();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].started_with.as_ref(), Some(&a));
        host.signal(&key, pid, StopSignal::Kill);
        let mut exit = None;
        for _ in 0..100 {
            exit = host.poll_exit(&key, pid);
            if exit.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(exit.unwrap(), "was killed by signal 9 (SIGKILL)");
        host.remove(&key).unwrap();
        assert!(!paths.dir.exists());
        assert!(!paths.dir.parent().unwrap().exists());
        assert!(host.discover().is_empty());
    }

    #[test]
    fn a_nodes_directory_and_files_are_the_agents_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.path().join("fake-ferry");
        fs::write(&script, "#!/bin/sh\necho starting\nexec sleep 30\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("agent");
        crate::store::create_dir_all(&root).unwrap();
        let mut host = OsHost::new(&root, script, vec![]).unwrap();
        let a = crate::assignment::tests::broker("cl-1", 101);
        let pid = host.start(&a).unwrap();
        let paths = host.paths(&a.key());
        for path in [&paths.data, &paths.dir, paths.dir.parent().unwrap()] {
            assert_eq!(mode(path), crate::store::DIR_MODE, "{}", path.display());
        }
        for path in [&paths.assignment, &paths.pid, &paths.log] {
            assert_eq!(mode(path), crate::store::FILE_MODE, "{}", path.display());
        }
        host.signal(&a.key(), pid, StopSignal::Kill);
    }
}
