//! Ferry's host agent: one per host, it makes the host run what the control plane assigns.
//!
//! ```text
//!  control plane (AgentService)                       this host
//!  ┌───────────────────────────┐  RegisterHost   ┌──────────────────────────────────┐
//!  │ hosts, assignments by     │ <────────────── │ agent                            │
//!  │ generation, node reports  │  GetAssignments │  ├ sync: register, report ~1 s,  │
//!  │                           │ <────────────── │  │  pull assignments, persist    │
//!  │                           │  ReportStatus   │  └ supervise: start / stop /     │
//!  │                           │ <────────────── │     restart / adopt / probe      │
//!  └───────────────────────────┘                 └───────┬──────────────────────────┘
//!                                                        │ spawns (own process group)
//!                                        ferry node ... ferry node   (GetStatus: health)
//! ```
//!
//! The agent registers its host (zone, address, port range, capacity), pulls the nodes it
//! should run, writes each node's directory and starts `ferry node` for it, restarts crashed
//! nodes with backoff, stops and removes unassigned ones, and reports each node's state from
//! its admin endpoint. It keeps its last assignments on disk and its nodes running while the
//! control plane is down, leaves them running when it stops or dies, and adopts them again when
//! it restarts (DESIGN.md, "Static stability").
//!
//! # Layout
//!
//! - [`supervisor`]: the sans-IO core. Desired assignments and observations in, actions and
//!   reports out; deterministic, tested with a fake clock.
//! - [`host`]: the side effects behind the [`host::Host`] trait: node directories, pid files,
//!   processes, re-adoption through `/proc`.
//! - [`health`]: a node's admin endpoint answer judged into ready / not ready / failed.
//! - [`enroll`]: the host's identity: enrollment with a one-time join token, the host
//!   certificate kept in the data dir.
//! - [`client`]: the control plane's `AgentService`, over mutual TLS with that certificate,
//!   failing over between the members of a replicated control plane.
//! - [`node_tls`]: each node's certificate, over a key made here, signed by the control plane.
//! - [`store`]: what the agent keeps in its data directory (host id, assignments).
//! - [`agent`]: [`Agent`], the shell running the two tasks, and its [`AgentOptions`].
//!
//! # Using it
//!
//! ```no_run
//! # async fn example() -> ferry_agent::Result<()> {
//! use ferry_agent::{Agent, AgentOptions};
//! let mut options = AgentOptions::new(
//!     "http://127.0.0.1:7070", "<join token>", "/var/lib/ferry-agent", "a", "10.0.0.1",
//! );
//! options.stop_nodes_on_shutdown = true; // as `ferry dev` does; hosts leave nodes running
//! let agent = Agent::start(options).await?;
//! let status = agent.status(); // the latest report: every node's state and message
//! agent.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Simplifications
//!
//! - Linux only: re-adoption reads `/proc/<pid>/cmdline`.
//! - `storage_bytes` is reported and recorded, not enforced on node directories.
//! - One `ferry` binary serves every `kafka_version`; versioned binaries come with upgrades.

pub mod agent;
pub mod assignment;
pub mod client;
pub mod enroll;
mod error;
pub mod health;
pub mod host;
pub mod node_tls;
pub mod store;
pub mod supervisor;

pub use agent::{Agent, AgentOptions, HostStatus};
pub use assignment::{Assignment, Assignments, NodeKey, NodeRole};
pub use enroll::JoinToken;
pub use error::{Error, Result};
pub use supervisor::{NodeReport, NodeState, SupervisorOptions};
