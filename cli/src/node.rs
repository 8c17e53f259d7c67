//! `ferry node`: run one data-plane node, or query a running one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use ferry_data_plane::broker::BrokerConfig;
use ferry_data_plane::node::{Node, NodeConfig, Role};
use ferry_data_plane::server::ServerOptions;
use ferry_proto::node::v1::GetStatusRequest;
use ferry_proto::node::v1::node_service_client::NodeServiceClient;

/// Arguments of `ferry node`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    /// Query a running node instead of starting one.
    #[command(subcommand)]
    command: Option<NodeCommand>,
    /// How to run the node.
    #[command(flatten)]
    run: RunArgs,
}

/// `ferry node` subcommands.
#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Print a running node's status from its admin endpoint.
    Status {
        /// The node's admin endpoint, host:port.
        #[arg(long, env = "FERRY_NODE_ADMIN")]
        admin: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

/// Output formats of client commands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// A human-readable table.
    Table,
    /// JSON.
    Json,
}

/// Flags of a node process. Kafka configs are given by their Kafka names with `--set`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Node id, unique within the cluster (Kafka's node.id).
    #[arg(long, env = "FERRY_NODE_ID", default_value_t = 1)]
    pub node_id: i32,
    /// Directory for everything the node persists.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = "./ferry-data")]
    pub data_dir: PathBuf,
    /// Address of the Kafka listener (port 0 picks a free port).
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Host name or IP clients are told to connect to (default: the listen IP).
    #[arg(long, env = "FERRY_ADVERTISED_HOST")]
    pub advertised_host: Option<String>,
    /// Address of the admin endpoint (node status).
    #[arg(long, env = "FERRY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Rack (availability zone) of this node.
    #[arg(long, env = "FERRY_RACK")]
    pub rack: Option<String>,
    /// Cluster id; a new data directory gets a fresh one when omitted.
    #[arg(long, env = "FERRY_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Roles (Kafka's process.roles).
    #[arg(long, value_delimiter = ',', default_value = "broker,controller")]
    pub roles: Vec<String>,
    /// A broker config by Kafka name, e.g. --set num.partitions=3 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// The controller quorum, as Kafka's controller.quorum.voters: ID@HOST:PORT,... Without
    /// it the node runs alone (single-node mode).
    #[arg(long, env = "FERRY_CONTROLLER_QUORUM", value_delimiter = ',')]
    pub controller_quorum: Vec<String>,
    /// Address of this controller's listener (raft and broker traffic).
    #[arg(long, env = "FERRY_CONTROLLER_LISTEN")]
    pub controller_listen: Option<SocketAddr>,
    /// TLS material for talking to the other nodes: required with --controller-quorum.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// A peer's TLS material as three PEM files (`ferry cert issue` writes them). Nodes of a
/// quorum talk to each other only over mutual TLS with these.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// The CA certificate every peer's certificate must chain to.
    #[arg(long, env = "FERRY_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// This process's certificate.
    #[arg(long, env = "FERRY_TLS_CERT", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// This process's private key.
    #[arg(long, env = "FERRY_TLS_KEY", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The three files of a material directory written by `ferry cert issue`.
    pub fn in_dir(dir: &std::path::Path) -> TlsArgs {
        TlsArgs {
            tls_ca: Some(dir.join(ferry_identity::CA_FILE)),
            tls_cert: Some(dir.join(ferry_identity::CERT_FILE)),
            tls_key: Some(dir.join(ferry_identity::KEY_FILE)),
        }
    }

    /// The material, if the flags name it.
    pub fn load(&self) -> anyhow::Result<Option<ferry_identity::TlsMaterial>> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => {
                let material = ferry_identity::TlsMaterial::load(ca, cert, key)
                    .context("reading the TLS material (--tls-ca, --tls-cert, --tls-key)")?;
                Ok(Some(material))
            }
            (None, None, None) => Ok(None),
            _ => anyhow::bail!("--tls-ca, --tls-cert and --tls-key go together"),
        }
    }

    /// The flags, for printing a command line.
    pub fn to_flags(&self) -> String {
        let flag = |name: &str, path: &Option<PathBuf>| {
            path.as_ref()
                .map(|p| format!(" --{name} {}", p.display()))
                .unwrap_or_default()
        };
        format!(
            "{}{}{}",
            flag("tls-ca", &self.tls_ca),
            flag("tls-cert", &self.tls_cert),
            flag("tls-key", &self.tls_key)
        )
    }
}

/// Parses Kafka's `controller.quorum.voters` form: `ID@HOST:PORT` items.
pub fn parse_voters(items: &[String]) -> anyhow::Result<BTreeMap<i32, String>> {
    items
        .iter()
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (id, addr) = item
                .trim()
                .split_once('@')
                .with_context(|| format!("controller {item:?}: expected ID@HOST:PORT"))?;
            let id: i32 = id
                .parse()
                .with_context(|| format!("controller {item:?}: bad id"))?;
            anyhow::ensure!(
                addr.rsplit_once(':').is_some(),
                "controller {item:?}: expected HOST:PORT"
            );
            Ok((id, addr.to_string()))
        })
        .collect()
}

impl RunArgs {
    /// Turns the flags into a node configuration.
    pub fn to_config(&self) -> anyhow::Result<NodeConfig> {
        let roles = self
            .roles
            .iter()
            .map(|r| match r.trim() {
                "broker" => Ok(Role::Broker),
                "controller" => Ok(Role::Controller),
                other => anyhow::bail!("unknown role {other:?}: expected broker or controller"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut broker = BrokerConfig::new(self.node_id, self.data_dir.join("logs"));
        let mut pairs = self
            .set
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .with_context(|| format!("--set {kv:?}: expected NAME=VALUE"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The two session settings belong to the node, not to the broker's topic defaults.
        let mut millis = |name: &str, default: u64| -> anyhow::Result<Duration> {
            let value = match pairs.iter().position(|(k, _)| *k == name) {
                Some(i) => pairs
                    .remove(i)
                    .1
                    .parse()
                    .with_context(|| format!("{name}: expected milliseconds"))?,
                None => default,
            };
            Ok(Duration::from_millis(value))
        };
        let session_timeout = millis("broker.session.timeout.ms", 9_000)?;
        let heartbeat_interval = millis("broker.heartbeat.interval.ms", 2_000)?;
        anyhow::ensure!(
            heartbeat_interval < session_timeout,
            "broker.heartbeat.interval.ms must be below broker.session.timeout.ms"
        );
        broker
            .apply_kafka_configs(pairs)
            .map_err(anyhow::Error::msg)?;
        Ok(NodeConfig {
            node_id: self.node_id,
            cluster_id: self.cluster_id.clone(),
            roles,
            data_dir: self.data_dir.clone(),
            kafka_listen: self.listen,
            advertised_host: self.advertised_host.clone(),
            rack: self.rack.clone(),
            admin_listen: self.admin_listen,
            server: ServerOptions::default(),
            broker,
            controller_quorum: parse_voters(&self.controller_quorum)?,
            controller_listen: self.controller_listen,
            session_timeout,
            heartbeat_interval,
            tls: self.tls.load()?,
        })
    }
}

/// Runs `ferry node`.
pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    match args.command {
        Some(NodeCommand::Status { admin, output }) => status(&admin, output).await,
        None => serve(&args.run).await,
    }
}

async fn serve(args: &RunArgs) -> anyhow::Result<()> {
    let shutdown = crate::ShutdownSignal::install()?;
    let node = Node::bind(args.to_config()?).await?;
    let or_dash = |a: Option<String>| a.unwrap_or_else(|| "-".to_string());
    // One line on stdout that scripts and tests wait for.
    println!(
        "ferry node ready: node_id={} cluster_id={} bootstrap={} admin={} controller={}",
        args.node_id,
        node.cluster_id(),
        or_dash(node.bootstrap()),
        or_dash(node.admin_addr().map(|a| a.to_string())),
        or_dash(node.controller_addr().map(|a| a.to_string())),
    );
    node.run(shutdown.wait()).await;
    Ok(())
}

async fn status(admin: &str, output: Output) -> anyhow::Result<()> {
    let mut client = NodeServiceClient::connect(format!("http://{admin}"))
        .await
        .with_context(|| format!("cannot reach the node admin endpoint at {admin}"))?;
    let status = client.get_status(GetStatusRequest {}).await?.into_inner();
    match output {
        Output::Json => {
            let partitions: Vec<_> = status
                .partitions
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "topic": p.topic, "partition": p.partition,
                        "log_start_offset": p.log_start_offset, "log_end_offset": p.log_end_offset,
                        "high_watermark": p.high_watermark, "size_bytes": p.size_bytes,
                        "segment_count": p.segment_count, "duplicate_batches": p.duplicate_batches,
                    })
                })
                .collect();
            let json = serde_json::json!({
                "cluster_id": status.cluster_id, "node_id": status.node_id, "roles": status.roles,
                "advertised_kafka_address": status.advertised_kafka_address,
                "uptime_seconds": status.uptime_seconds, "broker_epoch": status.broker_epoch,
                "fenced": status.fenced, "metadata_offset": status.metadata_offset,
                "quorum_role": status.quorum_role, "quorum_leader_id": status.quorum_leader_id,
                "quorum_term": status.quorum_term,
                "partitions": partitions,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Output::Table => {
            println!("cluster:  {}", status.cluster_id);
            println!("node:     {} ({})", status.node_id, status.roles.join(", "));
            println!("kafka:    {}", status.advertised_kafka_address);
            println!(
                "metadata: offset {} (broker epoch {}{})",
                status.metadata_offset,
                status.broker_epoch,
                if status.fenced { ", fenced" } else { "" }
            );
            if !status.quorum_role.is_empty() {
                let leader = match status.quorum_leader_id {
                    -1 => "no leader".to_string(),
                    id => format!("leader {id}"),
                };
                println!(
                    "quorum:   {} ({leader}, term {})",
                    status.quorum_role, status.quorum_term
                );
            }
            println!("uptime:   {}s", status.uptime_seconds);
            println!();
            println!(
                "{:<32} {:>9} {:>12} {:>12} {:>12} {:>12} {:>8}",
                "TOPIC", "PARTITION", "LOG START", "LOG END", "HIGH WATER", "BYTES", "SEGMENTS"
            );
            for p in &status.partitions {
                println!(
                    "{:<32} {:>9} {:>12} {:>12} {:>12} {:>12} {:>8}",
                    p.topic,
                    p.partition,
                    p.log_start_offset,
                    p.log_end_offset,
                    p.high_watermark,
                    p.size_bytes,
                    p.segment_count
                );
            }
        }
    }
    Ok(())
}
