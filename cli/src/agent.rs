//! `ferry agent`: run the host agent (see `ferry_agent`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferry_agent::{Agent, AgentOptions};

/// Flags of an agent process.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The control plane's public API URL (where the agent enrolls); for a replicated control
    /// plane, every member's: repeat the flag or separate them with commas. Enrollment tries
    /// them in turn.
    #[arg(
        long,
        env = "FERRY_CONTROL_PLANE",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:7070"
    )]
    pub control_plane: Vec<String>,
    /// The host's zone (failure domain; the brokers' rack).
    #[arg(long, env = "FERRY_ZONE")]
    pub zone: String,
    /// The IP address nodes on this host listen on and advertise.
    #[arg(long, env = "FERRY_ADDRESS")]
    pub address: String,
    /// Where the agent keeps its host id, assignments and node directories.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = "./ferry-agent")]
    pub data_dir: PathBuf,
    /// The host's id; if given, it must be the one the join token (or the kept host
    /// certificate) names.
    #[arg(long, env = "FERRY_HOST_ID")]
    pub host_id: Option<String>,
    /// The control plane members' peer listeners, HOST:PORT each (repeat the flag or separate
    /// them with commas); the agent talks to the first and fails over to the next when it is
    /// unreachable. Default: the ones enrollment gave (every member's).
    #[arg(long, env = "FERRY_CONTROL_PLANE_PEER", value_delimiter = ',')]
    pub control_plane_peer: Vec<String>,
    /// The ports nodes on this host may use, LO-HI.
    #[arg(long, env = "FERRY_PORTS", default_value = "9000-9999", value_parser = parse_ports)]
    pub ports: (u16, u16),
    /// Most nodes this host runs at once.
    #[arg(long, env = "FERRY_MAX_NODES", default_value_t = 16)]
    pub max_nodes: u32,
    /// Storage offered to node data, in bytes (default: the data dir's free space).
    #[arg(long, env = "FERRY_STORAGE_BYTES")]
    pub storage_bytes: Option<u64>,
    /// A file holding the one-time join token (`ferry token create --role agent --host ID`),
    /// or the token itself in the FERRY_JOIN_TOKEN environment variable; needed at the first
    /// start only, when the data dir holds no host certificate yet.
    #[arg(long, env = "FERRY_JOIN_TOKEN_FILE")]
    pub join_token_file: Option<PathBuf>,
    /// The `ferry` binary nodes run (default: this one).
    #[arg(long, env = "FERRY_NODE_BINARY")]
    pub node_binary: Option<PathBuf>,
    /// Stop the nodes when the agent stops (by default they keep running).
    #[arg(long)]
    pub stop_nodes_on_exit: bool,
    /// Milliseconds between reports to the control plane (the heartbeat).
    #[arg(long, default_value_t = 1000)]
    pub report_interval_ms: u64,
    /// Milliseconds a node may take to stop after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 15_000)]
    pub stop_timeout_ms: u64,
}

/// The environment variable that may hold the join token (instead of a file).
pub const JOIN_TOKEN_ENV: &str = "FERRY_JOIN_TOKEN";

/// Parses `LO-HI`.
fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected LO-HI, e.g. 9000-9999"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|e| format!("{p:?} is not a port: {e}"))
    };
    Ok((port(lo)?, port(hi)?))
}

/// Runs `ferry agent` until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    // The join token itself only from the environment or a file, never the command line.
    let token = match (std::env::var(JOIN_TOKEN_ENV), &args.join_token_file) {
        (Ok(token), _) => token,
        (Err(_), Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the join token file {}", path.display()))?,
        // None is fine for a host that enrolled before (its certificate is in the data dir).
        (Err(_), None) => String::new(),
    };
    let mut options =
        AgentOptions::new(String::new(), token, args.data_dir, args.zone, args.address);
    options.control_plane = args
        .control_plane
        .into_iter()
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .collect();
    options.host_id = args.host_id;
    options.peer_addresses = args
        .control_plane_peer
        .into_iter()
        .map(|address| address.trim().to_string())
        .filter(|address| !address.is_empty())
        .collect();
    (options.ports_lo, options.ports_hi) = args.ports;
    options.max_nodes = args.max_nodes;
    options.storage_bytes = args.storage_bytes;
    options.node_binary = args.node_binary;
    options.stop_nodes_on_shutdown = args.stop_nodes_on_exit;
    options.report_interval = Duration::from_millis(args.report_interval_ms);
    options.supervisor.stop_timeout = Duration::from_millis(args.stop_timeout_ms);
    let shutdown = crate::ShutdownSignal::install()?;
    let agent = Agent::start(options).await?;
    // One line on stdout that scripts and tests wait for.
    println!("ferry agent ready: host_id={}", agent.host_id());
    agent.run(shutdown.wait()).await;
    Ok(())
}
