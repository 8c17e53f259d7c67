//! `ferry dev`: the one-command local start.
//!
//! By default it runs one node (a broker that is its own metadata authority) on loopback, with
//! its data under `--data-dir`, and prints the bootstrap address. With `--nodes N` it runs a
//! real cluster in this one process: 3 controllers forming the raft metadata quorum and N
//! brokers in racks `a`, `b`, `c`, … following it. Stopping it (Ctrl-C) makes each broker hand
//! off leadership and flushes every log; running it again with the same directory serves the
//! same cluster, topics and data. The control plane and agents join this command as they are
//! built.
//!
//! ```text
//! ports (with the default --port 9092):
//!   brokers       9092, 9093, …            (Kafka)
//!   controllers   --port + 100 + 1..=3     (9193, 9194, 9195: raft + controller API)
//!   admin         --admin-port + node id   (node status of each broker)
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ferry_data_plane::node::Node;

use crate::node::RunArgs;

/// Controllers in a `--nodes` cluster.
const DEV_CONTROLLERS: u16 = 3;

/// Arguments of `ferry dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the local stack keeps its data.
    #[arg(long, env = "FERRY_DEV_DIR", default_value = ".ferry-dev")]
    data_dir: PathBuf,
    /// Kafka port on 127.0.0.1 (of the first broker; the others follow). 0 picks free ports
    /// (single-node mode only).
    #[arg(long, default_value_t = 9092)]
    port: u16,
    /// Admin (node status) port on 127.0.0.1; with --nodes, broker n uses this + n.
    #[arg(long, default_value_t = 9192)]
    admin_port: u16,
    /// Run a cluster of 3 controllers and this many brokers instead of a single node.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: Option<u16>,
}

/// Runs `ferry dev`.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
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
    crate::shutdown_signal().await;
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
    }
}

/// 3 controllers (ids 1-3) and `brokers` brokers (ids 101…) sharing one cluster id.
fn cluster(args: &DevArgs, brokers: u16) -> anyhow::Result<Vec<RunArgs>> {
    anyhow::ensure!(args.port != 0, "--nodes needs fixed ports: give --port");
    let cluster_id = dev_cluster_id(&args.data_dir)?;
    let controller_port = |i: u16| args.port + 100 + i;
    let quorum: Vec<String> = (1..=DEV_CONTROLLERS)
        .map(|i| format!("{i}@127.0.0.1:{}", controller_port(i)))
        .collect();
    let base = |node_id: i32, roles: &str| RunArgs {
        node_id,
        data_dir: args.data_dir.join(format!("node-{node_id}")),
        listen: ([127, 0, 0, 1], 0).into(),
        advertised_host: None,
        admin_listen: None,
        rack: None,
        cluster_id: Some(cluster_id.clone()),
        roles: vec![roles.into()],
        set: vec![],
        controller_quorum: quorum.clone(),
        controller_listen: None,
    };
    let mut configs: Vec<RunArgs> = (1..=DEV_CONTROLLERS)
        .map(|i| RunArgs {
            controller_listen: Some(([127, 0, 0, 1], controller_port(i)).into()),
            ..base(i32::from(i), "controller")
        })
        .collect();
    for b in 0..brokers {
        let node_id = 101 + i32::from(b);
        configs.push(RunArgs {
            listen: ([127, 0, 0, 1], args.port + b).into(),
            admin_listen: Some(([127, 0, 0, 1], args.admin_port + b).into()),
            rack: Some(((b'a' + (b % 26) as u8) as char).to_string()),
            ..base(node_id, "broker")
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
    std::fs::create_dir_all(dir)?;
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
    let controllers: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.controller_addr().map(|a| a.to_string()))
        .collect();
    if !controllers.is_empty() {
        println!("  controllers:        {}", controllers.join(","));
        println!(
            "  quorum status:      ferry quorum describe --bootstrap-controller {} --status",
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
