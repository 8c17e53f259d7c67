//! `ferry dev`: the one-command local start.
//!
//! By default it runs the whole managed service on loopback in this one process: a control
//! plane (API on `--api-port`, gRPC and REST) and three agents in zones `zone-a`, `zone-b` and `zone-c`, each
//! with its own data directory and port range. The control plane makes its CA in its data
//! directory, and each agent enrolls with a join token minted here, so every agent and node
//! speaks mutual TLS with certificates nobody had to make by hand. It prints the API URL and an admin token; with
//! `--cluster NAME` it also creates a 3-broker / 3-controller cluster through the API and
//! prints its bootstrap servers once it is ACTIVE. The agents run the nodes as `ferry node`
//! processes. Ctrl-C stops the agents with their nodes (brokers first), then the control
//! plane; running it again with the same directory brings the same clusters back.
//!
//! The terminal shows the banner, the demo cluster's progress and errors; the log goes to
//! `<data-dir>/ferry-dev.log` (`--verbose` streams it to stderr too; see `crate::logging`), and
//! each node's to the `node.log` in its directory.
//!
//! Two smaller modes skip the control plane: `--single-node` runs one node that is its own
//! metadata authority, and `--nodes N` runs 3 controllers and N brokers in this process.
//!
//! `--nodes N` protects its controllers like any cluster: it keeps a CA in `<dir>/ca/` and
//! each node's certificate in `<dir>/node-<id>/tls/` (made on first start, reused after), and
//! the nodes talk over mutual TLS. `--single-node` has no internal listener (no peers), so it
//! needs no certificate.
//!
//! ```text
//! ports (defaults):
//!   control plane   7070                     (gRPC + REST /v1 + /openapi.json)
//!                   7071                     (peer listener: the agents, mutual TLS)
//!   agents          zone-a: 19000-19199, zone-b: 19200-19399, zone-c: 19400-19599
//!   --single-node   9092 (Kafka), 9192 (node status)
//!   --nodes N       brokers --port 9092.., their status --admin-port 9192..,
//!                   controllers --controller-port 9292..9294 (each kind its own range,
//!                   checked for overlaps before anything binds)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferry_agent::{Agent, AgentOptions};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::enroll::{JOIN_TOKEN_TTL_DEFAULT, JoinTokens};
use ferry_control_plane::pki::{CA_CERT_FILE, CA_DIR};
use ferry_control_plane::server::{AUDIENCE, ISSUER, Server, ServerOptions};
use ferry_data_plane::node::Node;
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;

use crate::node::{RunArgs, TlsArgs};
use ferry_identity::{CertificateAuthority, Identity, NodeRoles};

/// Controllers in a `--nodes` cluster.
const DEV_CONTROLLERS: u16 = 3;
/// The zones of the dev agents, one agent each. Brokers present their zone as their rack, and
/// librdkafka 2.3 and later (confluent-kafka, the rdkafka crate) cannot parse the metadata of
/// 28 or more brokers whose host is 127.0.0.1 and whose rack is one character: it sizes its
/// parse buffer from the response's size, and such entries cost more than it allows. Names of
/// six characters leave room for 60 brokers.
const DEV_ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];
/// Ports each dev agent offers its nodes; agent `i` starts at `--agent-ports + i * this`.
const AGENT_PORT_SPAN: u16 = 200;
/// The tenant of the admin token `ferry dev` prints.
const DEV_TENANT: &str = "dev";
/// How long the printed admin token is valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long `--cluster` waits for the agents to register.
const HOSTS_WAIT: Duration = Duration::from_secs(60);
/// How long `--cluster` waits for the cluster to be ACTIVE.
const CLUSTER_WAIT: Duration = Duration::from_secs(300);

/// Arguments of `ferry dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the local stack keeps its data.
    #[arg(long, env = "FERRY_DEV_DIR", default_value = ".ferry-dev")]
    data_dir: PathBuf,
    /// Port of the control plane's API on 127.0.0.1 (gRPC and REST).
    #[arg(long, default_value_t = 7070)]
    api_port: u16,
    /// Port of the control plane's peer listener on 127.0.0.1 (the agents' service over
    /// mutual TLS; default: the API port + 1, or a free port when --api-port is 0).
    #[arg(long)]
    peer_port: Option<u16>,
    /// First port of the agents' node port ranges (200 ports per agent).
    #[arg(long, default_value_t = 19000)]
    agent_ports: u16,
    /// Agents (simulated hosts) per zone.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=20))]
    hosts_per_zone: u16,
    /// Most nodes each agent runs (60 brokers + 5 controllers need 22 per host over 3 hosts).
    #[arg(long, default_value_t = 32)]
    max_nodes_per_host: u32,
    /// Storage each agent offers to node data, in bytes (default: the data dir's free space,
    /// which all the agents of this machine share).
    #[arg(long)]
    storage_bytes_per_host: Option<u64>,
    /// Also create (or reuse) a 3-broker / 3-controller cluster with this name and print its
    /// bootstrap servers once it is ACTIVE.
    #[arg(long)]
    cluster: Option<String>,
    /// Run one node that is its own metadata authority instead of the managed service.
    #[arg(long, conflicts_with_all = ["nodes", "cluster"])]
    single_node: bool,
    /// Run 3 controllers and this many brokers in this process instead of the managed service.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9), conflicts_with = "cluster")]
    nodes: Option<u16>,
    /// Kafka port on 127.0.0.1 (--single-node and --nodes; the first broker, the others
    /// follow). 0 picks free ports (--single-node only).
    #[arg(long, default_value_t = 9092)]
    port: u16,
    /// Admin (node status) port on 127.0.0.1 (--single-node and --nodes; broker n uses this +
    /// n).
    #[arg(long, default_value_t = 9192)]
    admin_port: u16,
    /// First controller port on 127.0.0.1 (--nodes; controller i uses this + i - 1).
    #[arg(long, default_value_t = 9292)]
    controller_port: u16,
    /// Stream the log (filtered by FERRY_LOG) to stderr too; by default it goes only to
    /// `<data-dir>/ferry-dev.log` and the terminal shows the banner and errors.
    #[arg(long, short)]
    verbose: bool,
}

impl DevArgs {
    /// Where this `ferry dev` logs: its data directory's log file, streamed to stderr too
    /// with `--verbose`.
    pub fn log_sink(&self) -> crate::logging::LogSink {
        crate::logging::LogSink::File {
            path: crate::logging::dev_log_path(&self.data_dir),
            stream: self.verbose,
        }
    }
}

/// The banner's line naming the log file.
fn print_log_line(args: &DevArgs) {
    let path = crate::logging::dev_log_path(&args.data_dir);
    if args.verbose {
        println!(
            "  log:                {} (also streamed to stderr)",
            path.display()
        );
    } else {
        println!(
            "  log:                {} (--verbose streams it here)",
            path.display()
        );
    }
}

/// Runs `ferry dev`.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let shutdown = crate::ShutdownSignal::install()?;
    if args.single_node || args.nodes.is_some() {
        return run_local(args, shutdown).await;
    }
    run_stack(args, shutdown).await
}

/// The managed service on loopback: a control plane and three agents.
async fn run_stack(args: DevArgs, mut shutdown: crate::ShutdownSignal) -> anyhow::Result<()> {
    let cp_dir = args.data_dir.join("control-plane");
    crate::secret::create_dir_all(&cp_dir)?;
    let secret_file = cp_dir.join("token-secret");
    let secret = crate::control_plane::read_or_create_secret(&secret_file)?;
    let listen: SocketAddr = ([127, 0, 0, 1], args.api_port).into();
    let mut options = ServerOptions::new(&cp_dir, listen, secret.clone());
    // The peer listener (raft, the agents' service; mutual TLS) next to the API.
    let peer_port = match (args.peer_port, args.api_port) {
        (Some(port), _) => port,
        (None, 0) => 0,
        (None, port) => port.checked_add(1).context("--api-port is too high")?,
    };
    options.peer_listen = SocketAddr::new(listen.ip(), peer_port);
    let server = Server::bind(options)
        .await
        .with_context(|| format!("starting the control plane on {listen}"))?;
    let api = format!("http://{}", server.local_addr());
    let peer = server.peer_addr();
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.run(async {
        let _ = server_stopped.await;
    }));

    let issuer = TokenIssuer::new(&secret, ISSUER, AUDIENCE)?;
    // Two tokens: the dev tenant's admin, for everything a user of the service does (every
    // cluster `ferry dev` makes is in that tenant, so its `ferry host list` already shows
    // what runs where), and a service operator's, for the fleet view across tenants (nodes
    // of clusters made with tokens of other tenants).
    let admin_token = issuer.mint(
        &Principal {
            subject: format!("admin@{DEV_TENANT}"),
            tenant: DEV_TENANT.into(),
            role: Role::Admin,
        },
        DEV_TOKEN_TTL,
    );
    let operator_token = issuer.mint(
        &Principal {
            subject: format!("service-operator@{DEV_TENANT}"),
            tenant: DEV_TENANT.into(),
            role: Role::ServiceOperator,
        },
        DEV_TOKEN_TTL,
    );
    // Each agent enrolls with its own one-time join token, minted here for the CA the control
    // plane made in its data dir.
    let ca_cert = cp_dir.join(CA_DIR).join(CA_CERT_FILE);
    let ca_pem = std::fs::read_to_string(&ca_cert)
        .with_context(|| format!("reading the control plane's CA {}", ca_cert.display()))?;
    let ca_fingerprint = ferry_agent::enroll::fingerprint(&ca_pem)?;
    let join_tokens = JoinTokens::new(&secret, ISSUER)?;

    let mut agents = Vec::new();
    let hosts = (0..args.hosts_per_zone).flat_map(|n| DEV_ZONES.iter().map(move |zone| (n, *zone)));
    for (i, (n, zone)) in hosts.enumerate() {
        let lo = args
            .agent_ports
            .checked_add(AGENT_PORT_SPAN * i as u16)
            .context("--agent-ports is too high")?;
        let hi = lo
            .checked_add(AGENT_PORT_SPAN - 1)
            .context("--agent-ports is too high")?;
        let host_id = match n {
            0 => format!("dev-{zone}"),
            n => format!("dev-{zone}{n}"),
        };
        let mut options = AgentOptions::new(
            api.clone(),
            join_tokens.mint(&host_id, &ca_fingerprint, JOIN_TOKEN_TTL_DEFAULT),
            args.data_dir.join(match n {
                0 => format!("agent-{zone}"),
                n => format!("agent-{zone}{n}"),
            }),
            zone,
            "127.0.0.1",
        );
        options.host_id = Some(host_id);
        options.max_nodes = args.max_nodes_per_host;
        options.storage_bytes = args.storage_bytes_per_host;
        options.ports_lo = lo;
        options.ports_hi = hi;
        options.stop_nodes_on_shutdown = true;
        if let Ok(level) = std::env::var("FERRY_LOG") {
            options.node_env.push(("FERRY_LOG".into(), level));
        }
        let agent = Agent::start(options)
            .await
            .with_context(|| format!("starting the agent of zone {zone}"))?;
        agents.push(agent);
    }
    // The banner means ready: every agent's host is registered and reporting, so a `ferry
    // cluster create` right after it finds all the zones.
    let channel = tonic::transport::Endpoint::from_shared(api.clone())?
        .connect()
        .await
        .context("connecting to the local control plane")?;
    wait_for_hosts(&channel, &admin_token, args.hosts_per_zone).await?;

    println!(
        "Ferry dev is running (Ctrl-C to stop; data is kept in {}).",
        args.data_dir.display()
    );
    println!();
    println!("  API (gRPC + REST):  {api}    OpenAPI: {api}/openapi.json");
    print_log_line(&args);
    println!(
        "  peer listener:      {peer}  (agents, mutual TLS; CA in {ca})",
        ca = ca_cert.display()
    );
    println!("  console:            {api}/console  (sign in with the admin token)");
    println!(
        "  hosts:              {} agents on 127.0.0.1 in zones {}",
        agents.len(),
        DEV_ZONES.join(", ")
    );
    println!("  admin token:        {admin_token}");
    println!("  service-operator token: {operator_token}");
    println!("                      (also sees other tenants' nodes in `ferry host list`)");
    println!();
    println!("  export FERRY_API={api} FERRY_TOKEN={admin_token}");
    println!("  ferry cluster create demo --wait      # 3 brokers + 3 controllers");
    println!("  ferry cluster list; ferry host list");
    println!("  curl -H \"Authorization: Bearer $FERRY_TOKEN\" {api}/v1/clusters");
    println!();

    let outcome = match &args.cluster {
        Some(name) => tokio::select! {
            result = demo_cluster(channel, &admin_token, name) => result,
            _ = shutdown.recv() => Ok(false),
        },
        None => Ok(true),
    };
    let keep_running = match outcome {
        Ok(keep_running) => keep_running,
        Err(err) => {
            eprintln!("ferry dev: {err:#}");
            true
        }
    };
    if keep_running {
        shutdown.recv().await;
    }

    println!("Stopping the agents and their nodes...");
    futures::future::join_all(agents.into_iter().map(Agent::shutdown)).await;
    let _ = stop_server.send(());
    let _ = server_task.await;
    println!(
        "Ferry dev stopped; data kept in {}.",
        args.data_dir.display()
    );
    Ok(())
}

/// Creates (or finds) the cluster `name` through the API (the agents' hosts are already
/// reporting), waits until it is ACTIVE and prints its bootstrap servers. Returns whether to
/// keep running (false if it failed for good).
async fn demo_cluster(
    channel: tonic::transport::Channel,
    token: &str,
    name: &str,
) -> anyhow::Result<bool> {
    use crate::client::authorized as request;
    let mut clusters = ClusterServiceClient::new(channel);
    let spec = pb::ClusterSpec {
        name: name.to_string(),
        kafka_version: "3.9.0".into(),
        broker_count: 3,
        controller_count: 3,
        zones: DEV_ZONES.map(String::from).to_vec(),
        storage_per_broker_bytes: 1 << 30,
        ..Default::default()
    };
    let created = clusters
        .create_cluster(request(
            token,
            pb::CreateClusterRequest {
                spec: Some(spec),
                client_request_id: format!("ferry-dev-{name}"),
            },
        ))
        .await;
    let id = match created {
        Ok(response) => {
            response
                .into_inner()
                .cluster
                .context("no cluster in the response")?
                .id
        }
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            // Made by an earlier run (or by hand): find it by name.
            let page = clusters
                .list_clusters(request(
                    token,
                    pb::ListClustersRequest {
                        name_prefix: name.to_string(),
                        ..Default::default()
                    },
                ))
                .await?
                .into_inner();
            page.clusters
                .into_iter()
                .find(|c| c.spec.as_ref().is_some_and(|s| s.name == name))
                .with_context(|| format!("cluster {name:?} exists but cannot be listed"))?
                .id
        }
        Err(status) => anyhow::bail!("creating cluster {name:?}: {}", status.message()),
    };
    println!("  cluster {name} ({id}): creating 3 controllers and 3 brokers...");
    let started = tokio::time::Instant::now();
    loop {
        let cluster = clusters
            .get_cluster(request(
                token,
                pb::GetClusterRequest {
                    cluster_id: id.clone(),
                },
            ))
            .await?
            .into_inner();
        let status = cluster.status.unwrap_or_default();
        let all_running = !status.nodes.is_empty()
            && status
                .nodes
                .iter()
                .all(|n| n.state == pb::NodeState::Running as i32);
        match pb::ClusterState::try_from(status.state) {
            // An ACTIVE cluster from an earlier run is served once its nodes are back.
            Ok(pb::ClusterState::Active) if all_running => {
                println!(
                    "  cluster {name} is ACTIVE after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                println!("  bootstrap servers:  {}", status.bootstrap_brokers);
                println!("  try:  kcat -b {} -L", status.bootstrap_brokers);
                return Ok(true);
            }
            Ok(pb::ClusterState::Failed) => {
                let info = status.state_info.unwrap_or_default();
                anyhow::bail!("cluster {name} FAILED: {}: {}", info.code, info.message);
            }
            _ => {}
        }
        if started.elapsed() > CLUSTER_WAIT {
            anyhow::bail!(
                "cluster {name} is not ACTIVE after {} s; see `ferry operation list {name}`",
                CLUSTER_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every dev agent's host is registered and has reported since this run started,
/// so the zones have hosts and node states are this run's, not the last run's.
async fn wait_for_hosts(
    channel: &tonic::transport::Channel,
    token: &str,
    hosts_per_zone: u16,
) -> anyhow::Result<()> {
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    use ferry_proto::controlplane::v1::host_service_client::HostServiceClient;
    let mut hosts = HostServiceClient::new(channel.clone());
    let deadline = tokio::time::Instant::now() + HOSTS_WAIT;
    loop {
        let page = hosts
            .list_hosts(crate::client::authorized(
                token,
                pb::ListHostsRequest::default(),
            ))
            .await?
            .into_inner();
        let healthy = page
            .hosts
            .iter()
            .filter(|h| h.health == pb::HostHealth::Healthy as i32 && h.last_seen_at > started_ms)
            .count();
        if healthy >= DEV_ZONES.len() * usize::from(hosts_per_zone) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "only {healthy} of {} agents registered within {} s",
                DEV_ZONES.len() * usize::from(hosts_per_zone),
                HOSTS_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `--single-node` and `--nodes N`: data-plane nodes in this process, no control plane.
async fn run_local(args: DevArgs, mut shutdown: crate::ShutdownSignal) -> anyhow::Result<()> {
    let configs = match args.nodes {
        None => vec![single_node(&args)],
        Some(brokers) => cluster(&args, brokers)?,
    };
    let mut nodes = Vec::new();
    for run in &configs {
        let node = Node::bind(run.to_config()?)
            .await
            .with_context(|| format!("starting node {}", run.node_id))?;
        nodes.push(node);
    }
    print_banner(&args, &configs, &nodes);
    // Brokers stop first, so their controlled shutdown still has a quorum to talk to.
    let stop_brokers = tokio_util::sync::CancellationToken::new();
    let stop_controllers = tokio_util::sync::CancellationToken::new();
    let (mut brokers, mut controllers) = (Vec::new(), Vec::new());
    for node in nodes {
        if node.bootstrap().is_some() {
            brokers.push(tokio::spawn(
                node.run(stop_brokers.clone().cancelled_owned()),
            ));
        } else {
            controllers.push(tokio::spawn(
                node.run(stop_controllers.clone().cancelled_owned()),
            ));
        }
    }
    shutdown.recv().await;
    stop_brokers.cancel();
    for task in brokers {
        task.await?;
    }
    stop_controllers.cancel();
    for task in controllers {
        task.await?;
    }
    println!(
        "Ferry dev stopped; data flushed to {}.",
        args.data_dir.display()
    );
    Ok(())
}

/// One combined node, its own metadata authority.
fn single_node(args: &DevArgs) -> RunArgs {
    RunArgs {
        node_id: 1,
        data_dir: args.data_dir.join("node-1"),
        listen: ([127, 0, 0, 1], args.port).into(),
        advertised_host: None,
        admin_listen: Some(([127, 0, 0, 1], args.admin_port).into()),
        rack: None,
        cluster_id: None,
        roles: vec!["broker".into(), "controller".into()],
        set: vec![],
        controller_quorum: vec![],
        controller_listen: None,
        tls: TlsArgs::default(),
    }
}

/// The ports of a `--nodes` cluster on 127.0.0.1: broker `b` (0-based) listens on
/// `kafka[b]` with its status endpoint on `admin[b]`, controller `i` (1-based) on
/// `controllers[i - 1]`.
#[derive(Debug, PartialEq)]
struct LocalPorts {
    kafka: Vec<u16>,
    admin: Vec<u16>,
    controllers: Vec<u16>,
}

impl LocalPorts {
    /// Lays out `brokers` brokers and the controllers from the first port of each kind, and
    /// refuses a layout in which two uses share a port, naming both, before anything binds.
    fn plan(args: &DevArgs, brokers: u16) -> anyhow::Result<LocalPorts> {
        let range = |flag: &str, first: u16, count: u16| -> anyhow::Result<Vec<u16>> {
            anyhow::ensure!(first != 0, "--nodes needs fixed ports: give {flag}");
            (0..count)
                .map(|i| {
                    first
                        .checked_add(i)
                        .with_context(|| format!("{flag} {first} is too high for {count} ports"))
                })
                .collect()
        };
        let ports = LocalPorts {
            kafka: range("--port", args.port, brokers)?,
            admin: range("--admin-port", args.admin_port, brokers)?,
            controllers: range("--controller-port", args.controller_port, DEV_CONTROLLERS)?,
        };
        let mut uses = std::collections::BTreeMap::new();
        let named = ports
            .kafka
            .iter()
            .zip(101..)
            .map(|(port, id)| (*port, format!("broker {id}'s Kafka listener (--port)")))
            .chain(ports.admin.iter().zip(101..).map(|(port, id)| {
                (
                    *port,
                    format!("broker {id}'s status endpoint (--admin-port)"),
                )
            }))
            .chain(ports.controllers.iter().zip(1..).map(|(port, id)| {
                (
                    *port,
                    format!("controller {id}'s listener (--controller-port)"),
                )
            }));
        for (port, what) in named {
            if let Some(other) = uses.insert(port, what.clone()) {
                anyhow::bail!(
                    "port {port} would be both {other} and {what}: choose --port, --admin-port \
                     and --controller-port so that their ranges do not overlap"
                );
            }
        }
        Ok(ports)
    }
}

/// 3 controllers (ids 1-3) and `brokers` brokers (ids 101…) sharing one cluster id.
fn cluster(args: &DevArgs, brokers: u16) -> anyhow::Result<Vec<RunArgs>> {
    let ports = LocalPorts::plan(args, brokers)?;
    let cluster_id = dev_cluster_id(&args.data_dir)?;
    let quorum: Vec<String> = ports
        .controllers
        .iter()
        .zip(1..)
        .map(|(port, i)| format!("{i}@127.0.0.1:{port}"))
        .collect();
    let ca = CertificateAuthority::load_or_generate(&args.data_dir.join("ca"), "Ferry dev CA")
        .context("the dev cluster's CA")?;
    let base = |node_id: i32, roles: &str| -> anyhow::Result<RunArgs> {
        let data_dir = args.data_dir.join(format!("node-{node_id}"));
        let identity = Identity::Node {
            cluster_id: cluster_id.clone(),
            node_id,
            roles: NodeRoles::parse(roles)?,
        };
        let tls_dir = data_dir.join("tls");
        ca.ensure_material(&tls_dir, &identity, &[])
            .with_context(|| format!("the certificate of node {node_id}"))?;
        Ok(RunArgs {
            node_id,
            data_dir,
            listen: ([127, 0, 0, 1], 0).into(),
            advertised_host: None,
            admin_listen: None,
            rack: None,
            cluster_id: Some(cluster_id.clone()),
            roles: vec![roles.into()],
            set: vec![],
            controller_quorum: quorum.clone(),
            controller_listen: None,
            tls: TlsArgs::in_dir(&tls_dir),
        })
    };
    let mut configs: Vec<RunArgs> = ports
        .controllers
        .iter()
        .zip(1..)
        .map(|(port, i)| {
            Ok(RunArgs {
                controller_listen: Some(([127, 0, 0, 1], *port).into()),
                ..base(i, "controller")?
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for b in 0..brokers {
        let node_id = 101 + i32::from(b);
        let i = usize::from(b);
        configs.push(RunArgs {
            listen: ([127, 0, 0, 1], ports.kafka[i]).into(),
            admin_listen: Some(([127, 0, 0, 1], ports.admin[i]).into()),
            rack: Some(((b'a' + (b % 26) as u8) as char).to_string()),
            ..base(node_id, "broker")?
        });
    }
    Ok(configs)
}

/// The dev cluster's id: read from `<dir>/cluster-id`, or made and kept there.
fn dev_cluster_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("cluster-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    crate::secret::create_dir_all(dir)?;
    let id = format!("dev-{}", uuid_like());
    std::fs::write(&path, format!("{id}\n")).with_context(|| path.display().to_string())?;
    Ok(id)
}

/// 12 hex digits from the clock and the process id: unique enough for a local cluster id.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:012x}",
        (nanos ^ u128::from(std::process::id()) << 20) & 0xffff_ffff_ffff
    )
}

fn print_banner(args: &DevArgs, configs: &[RunArgs], nodes: &[Node]) {
    println!(
        "Ferry dev is running (Ctrl-C to stop; data is kept in {}).",
        args.data_dir.display()
    );
    println!();
    let bootstrap: Vec<String> = nodes.iter().filter_map(Node::bootstrap).collect();
    let bootstrap = bootstrap.join(",");
    println!("  bootstrap servers:  {bootstrap}");
    println!("  cluster id:         {}", nodes[0].cluster_id());
    print_log_line(args);
    let controllers: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.controller_addr().map(|a| a.to_string()))
        .collect();
    if !controllers.is_empty() {
        println!("  controllers:        {}", controllers.join(","));
        // Any node's certificate will do; the controllers answer nodes of their cluster.
        let tls = configs
            .first()
            .map(|c| c.tls.to_flags())
            .unwrap_or_default();
        println!(
            "  quorum status:      ferry quorum describe --bootstrap-controller {} --status{tls}",
            controllers.join(",")
        );
    }
    for (run, node) in configs.iter().zip(nodes) {
        if let Some(admin) = node.admin_addr() {
            println!(
                "  node {:<4} status:   ferry node status --admin {admin}",
                run.node_id
            );
        }
    }
    println!();
    println!("  try:  kcat -b {bootstrap} -L");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `ferry dev ARGS`, parsed.
    fn dev(args: &[&str]) -> DevArgs {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            dev: DevArgs,
        }
        Cli::try_parse_from(std::iter::once("dev").chain(args.iter().copied()))
            .unwrap()
            .dev
    }

    #[test]
    fn the_default_ports_give_each_kind_its_own_range_up_to_nine_brokers() {
        let ports = LocalPorts::plan(&dev(&["--nodes", "9"]), 9).unwrap();
        assert_eq!(ports.kafka, (9092..=9100).collect::<Vec<_>>());
        assert_eq!(ports.admin, (9192..=9200).collect::<Vec<_>>());
        assert_eq!(ports.controllers, vec![9292, 9293, 9294]);
    }

    #[test]
    fn overlapping_ranges_are_refused_naming_both_uses() {
        let args = dev(&["--nodes", "3", "--admin-port", "9093"]);
        let err = LocalPorts::plan(&args, 3).unwrap_err().to_string();
        assert!(
            err.contains("port 9093")
                && err.contains("broker 102's Kafka listener (--port)")
                && err.contains("broker 101's status endpoint (--admin-port)"),
            "{err}"
        );
        let args = dev(&["--nodes", "2", "--controller-port", "9193"]);
        let err = LocalPorts::plan(&args, 2).unwrap_err().to_string();
        assert!(
            err.contains("broker 102's status endpoint") && err.contains("controller 1's listener"),
            "{err}"
        );
    }

    #[test]
    fn ports_past_the_last_or_zero_are_refused() {
        let err = LocalPorts::plan(&dev(&["--port", "65534"]), 3)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--port 65534 is too high for 3 ports"),
            "{err}"
        );
        let err = LocalPorts::plan(&dev(&["--controller-port", "0"]), 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("give --controller-port"), "{err}");
    }
}
