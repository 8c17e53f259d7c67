//! `ferry`: one binary for Ferry's server roles and its command-line client.
//!
//! Server roles parse their configuration here and hand typed options to the libraries:
//! - `ferry node`: one data-plane node (see `ferry_data_plane::node`);
//! - `ferry dev`: the local stack for trying Ferry (today: one node on loopback);
//! - `ferry control-plane`: the control plane's API and store (see
//!   `ferry_control_plane::server`);
//! - `ferry agent`: the host agent running the nodes the control plane assigns (see
//!   `ferry_agent`).
//!
//! Client commands talk to running processes:
//! - `ferry node status`: what a node reports on its admin endpoint;
//! - `ferry quorum describe`: the metadata quorum, as `kafka-metadata-quorum` shows it;
//! - `ferry token create`: mint an API token with the control plane's secret;
//! - `ferry cert ca`, `ferry cert issue`: certificates for hand-built clusters;
//! - `ferry cluster …`, `ferry operation …`, `ferry host …`: the control plane's API (see
//!   `client`).

mod agent;
mod cert;
mod client;
mod control_plane;
mod dev;
mod node;
mod quorum;
mod token;

use clap::{Parser, Subcommand};

/// Ferry: a self-hostable managed Kafka service.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a data-plane node, or query one.
    Node(Box<node::NodeArgs>),
    /// Run the local development stack.
    Dev(dev::DevArgs),
    /// Inspect a cluster's metadata quorum.
    Quorum(quorum::QuorumArgs),
    /// Make a CA and certificates for hand-built clusters.
    Cert(cert::CertArgs),
    /// Run the control plane (API and store).
    ControlPlane(control_plane::ControlPlaneArgs),
    /// Mint API tokens.
    Token(token::TokenArgs),
    /// Run the host agent.
    Agent(Box<agent::AgentArgs>),
    /// Create, inspect and delete clusters through the control plane.
    Cluster(client::ClusterArgs),
    /// Create, revise and delete configurations (broker properties clusters reference).
    Configuration(client::ConfigurationArgs),
    /// Inspect operations (long-running changes to clusters).
    Operation(client::OperationArgs),
    /// Inspect the hosts agents registered (admin role).
    Host(client::HostArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Node(args) => node::run(*args).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Quorum(args) => quorum::run(args).await,
            Command::Cert(args) => cert::run(args),
            Command::ControlPlane(args) => control_plane::run(args).await,
            Command::Token(args) => token::run(args),
            Command::Agent(args) => agent::run(*args).await,
            Command::Cluster(args) => client::cluster(args).await,
            Command::Configuration(args) => client::configuration(args).await,
            Command::Operation(args) => client::operation(args).await,
            Command::Host(args) => client::host(args).await,
        }
    })
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
