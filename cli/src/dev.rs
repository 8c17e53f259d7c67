//! `ferry dev`: the one-command local start.
//!
//! Today it runs one node (broker and its own metadata authority) on loopback with its data
//! under `--data-dir`, and prints the bootstrap address. Stopping it (Ctrl-C) flushes every
//! log; running it again with the same directory serves the same topics and data. The control
//! plane and agents join this command as they are built.

use std::path::PathBuf;

use clap::Args;
use ferry_data_plane::node::Node;

use crate::node::RunArgs;

/// Arguments of `ferry dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the local stack keeps its data.
    #[arg(long, env = "FERRY_DEV_DIR", default_value = ".ferry-dev")]
    data_dir: PathBuf,
    /// Kafka port on 127.0.0.1.
    #[arg(long, default_value_t = 9092)]
    port: u16,
    /// Admin (node status) port on 127.0.0.1.
    #[arg(long, default_value_t = 9192)]
    admin_port: u16,
}

/// Runs `ferry dev`.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let run = RunArgs {
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
    };
    let node = Node::bind(run.to_config()?).await?;
    println!(
        "Ferry dev is running (Ctrl-C to stop; data is kept in {}).",
        args.data_dir.display()
    );
    println!();
    let bootstrap = node.bootstrap().unwrap_or_default();
    println!("  bootstrap servers:  {bootstrap}");
    println!("  cluster id:         {}", node.cluster_id());
    println!(
        "  node status:        ferry node status --admin {}",
        run.admin_listen.map(|a| a.to_string()).unwrap_or_default()
    );
    println!();
    println!("  try:  kcat -b {bootstrap} -L");
    node.run(crate::shutdown_signal()).await;
    println!(
        "Ferry dev stopped; data flushed to {}.",
        args.data_dir.display()
    );
    Ok(())
}
