//! `ferry host …`: the machines registered to run nodes, with their zones and capacity.
//!
//! The `Client` call here lists every host, which `ferry cluster create` also uses to pick
//! default zones.

use clap::{Args, Subcommand};
use ferry_proto::controlplane::v1 as pb;

use super::print::{host_health, print_table, show};
use super::{Client, Connection, all_pages};

/// `ferry host`.
#[derive(Debug, Args)]
pub(crate) struct HostArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: HostCommand,
}

/// `ferry host` subcommands.
#[derive(Debug, Subcommand)]
enum HostCommand {
    /// List the registered hosts: an admin sees its own tenant's nodes on them, a service
    /// operator every node.
    List,
}

impl Client {
    /// Every registered host, all pages.
    pub(super) async fn list_hosts(&self) -> anyhow::Result<Vec<pb::Host>> {
        all_pages(|page_token| {
            let (mut hosts, request) = (
                self.hosts(),
                self.request(pb::ListHostsRequest {
                    page_size: 0,
                    page_token,
                }),
            );
            async move {
                let page = hosts.list_hosts(request).await?.into_inner();
                Ok((page.hosts, page.next_page_token))
            }
        })
        .await
    }
}

/// Runs `ferry host`.
pub(crate) async fn host(args: HostArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        HostCommand::List => {
            let hosts = client.list_hosts().await?;
            show(output, &hosts, || {
                let rows = hosts
                    .iter()
                    .map(|h| {
                        let ports = h.ports.unwrap_or_default();
                        let capacity = h.capacity.unwrap_or_default();
                        vec![
                            h.id.clone(),
                            h.zone.clone(),
                            h.address.clone(),
                            format!("{}-{}", ports.lo, ports.hi),
                            format!("{}/{}", h.nodes.len(), capacity.max_nodes),
                            host_health(h.health),
                        ]
                    })
                    .collect();
                print_table(&["ID", "ZONE", "ADDRESS", "PORTS", "NODES", "HEALTH"], rows);
            })
        }
    }
}
