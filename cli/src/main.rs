//! `ferry`: one binary for Ferry's server roles and its command-line client.
//!
//! Server roles parse their configuration here and hand typed options to the libraries:
//! - `ferry node`: one data-plane node (see `ferry_data_plane::node`);
//! - `ferry dev`: the local stack for trying Ferry (a control plane and three agents on
//!   loopback, or `--single-node` / `--nodes N`); it logs to a file (see `logging`);
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
mod logging;
mod node;
mod quorum;
mod secret;
mod token;

use anyhow::Context as _;
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
    /// Inspect the hosts agents registered (admin or service-operator role).
    Host(client::HostArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = match &cli.command {
        Command::Dev(args) => args.log_sink(),
        _ => logging::LogSink::Stderr,
    };
    logging::init(&logs)?;
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

/// SIGINT (Ctrl-C) and SIGTERM, caught from the moment this is made. Long-running commands
/// make it first, before they print that they are ready: a signal right after that line then
/// stops them cleanly instead of killing them with the default action (a handler registered
/// only when the wait is first polled leaves that window open).
pub struct ShutdownSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers.
    pub fn install() -> anyhow::Result<ShutdownSignal> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignal {
            interrupt: signal(SignalKind::interrupt()).context("installing a SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing a SIGTERM handler")?,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM (or at once for one that came since the last).
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Resolves at the next SIGINT or SIGTERM, for APIs that take a shutdown future.
    pub async fn wait(mut self) {
        self.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    /// Parses `ferry <args>`.
    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
    }

    #[test]
    fn no_command_takes_a_token_on_the_command_line() {
        let agent = [
            "agent",
            "--zone",
            "a",
            "--address",
            "127.0.0.1",
            "--token",
            "secret-token",
        ];
        let refused = [
            &agent[..],
            &["cluster", "list", "--token", "secret-token"],
            &["host", "list", "--token=secret-token"],
            &["control-plane", "--token-secret", "secret-token"],
        ];
        for args in refused {
            let err = parse(args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{args:?}: {err}");
        }
        // The file flags remain.
        parse(&[
            "agent",
            "--zone",
            "a",
            "--address",
            "127.0.0.1",
            "--join-token-file",
            "/run/ferry/join.token",
        ])
        .unwrap();
        parse(&["cluster", "list", "--token-file", "/run/ferry/api.token"]).unwrap();
    }

    #[test]
    fn an_agent_takes_one_control_plane_url_or_every_members() {
        let agent = |extra: &[&str]| {
            let mut args = vec!["agent", "--zone", "a", "--address", "127.0.0.1"];
            args.extend_from_slice(extra);
            match parse(&args).unwrap().command {
                Command::Agent(agent) => (agent.control_plane, agent.control_plane_peer),
                other => panic!("{other:?}"),
            }
        };
        let one = ["http://10.0.0.10:7070".to_string()];
        let three = [
            "http://10.0.0.10:7070".to_string(),
            "http://10.0.0.11:7070".into(),
            "http://10.0.0.12:7070".into(),
        ];
        assert_eq!(agent(&[]).0, ["http://127.0.0.1:7070"]);
        assert!(agent(&[]).1.is_empty(), "peers come from enrollment");
        assert_eq!(agent(&["--control-plane", &one[0]]).0, one);
        assert_eq!(
            agent(&[
                "--control-plane",
                &three[0],
                "--control-plane",
                &three[1],
                "--control-plane",
                &three[2]
            ])
            .0,
            three
        );
        assert_eq!(agent(&["--control-plane", &three.join(",")]).0, three);
        assert_eq!(
            agent(&["--control-plane-peer", "10.0.0.10:7071,10.0.0.11:7071"]).1,
            ["10.0.0.10:7071", "10.0.0.11:7071"]
        );
    }

    #[test]
    fn tokens_are_read_from_files_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  eyJ.token.sig\n").unwrap();
        assert_eq!(
            secret::token(Some(&path)).unwrap().as_deref(),
            Some("eyJ.token.sig")
        );
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(secret::token(Some(&path)).unwrap(), None);
        assert!(secret::token(Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn parsed_arguments_hold_no_secret_to_print() {
        let cli = parse(&["cluster", "list", "--token-file", "/run/ferry/api.token"]).unwrap();
        let shown = format!("{cli:?}");
        assert!(shown.contains("/run/ferry/api.token"), "{shown}");
    }

    #[test]
    fn data_directories_are_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b");
        secret::create_dir_all(&nested).unwrap();
        for path in [&nested, &dir.path().join("a")] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, secret::DIR_MODE, "{}", path.display());
        }
    }
}
