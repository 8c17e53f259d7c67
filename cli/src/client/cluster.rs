//! `ferry cluster …`: create, inspect, grow, tag, configure and delete clusters.
//!
//! [`cluster`] dispatches each subcommand to one function of the same name. The `Client`
//! calls here look clusters up by id or name and follow a cluster's operation to its end
//! (`--wait`); the printing is in [`super::print`].

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ferry_proto::controlplane::v1 as pb;

use super::print::{cluster_state, print_cluster, print_nodes, print_table, show};
use super::{Client, Connection, Output, WAIT_DEFAULT_SECS, all_pages, status_error};

/// `ferry cluster`.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: ClusterCommand,
}

/// `ferry cluster` subcommands.
#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Create a cluster (and wait until it is ACTIVE with --wait).
    Create(CreateArgs),
    /// Show one cluster.
    Get {
        /// The cluster's id or name.
        cluster: String,
    },
    /// List the tenant's clusters.
    List {
        /// Only clusters whose name starts with this.
        #[arg(long, default_value = "")]
        name_prefix: String,
    },
    /// Delete a cluster: stop its nodes and remove their data.
    Delete {
        /// The cluster's id or name.
        cluster: String,
        /// Wait until the deletion has finished.
        #[arg(long)]
        wait: bool,
        /// Most seconds to wait.
        #[arg(long, default_value_t = WAIT_DEFAULT_SECS)]
        wait_timeout_secs: u64,
    },
    /// Add brokers to a cluster in place (evenly over its zones).
    Grow {
        /// The cluster's id or name.
        cluster: String,
        /// The new number of brokers (above the current one, a multiple of the zones).
        #[arg(long)]
        brokers: u32,
        /// Wait until the new brokers run, showing progress.
        #[arg(long)]
        wait: bool,
        /// Most seconds to wait.
        #[arg(long, default_value_t = WAIT_DEFAULT_SECS)]
        wait_timeout_secs: u64,
    },
    /// Replace a cluster's tags.
    Tag {
        /// The cluster's id or name.
        cluster: String,
        /// A tag (repeatable): --tag team=payments. None clears them.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Print the cluster's bootstrap brokers (host:port,...).
    Bootstrap {
        /// The cluster's id or name.
        cluster: String,
    },
    /// List the cluster's nodes: where each runs and how it is.
    Nodes {
        /// The cluster's id or name.
        cluster: String,
    },
    /// Apply a configuration revision: the nodes restart one at a time with its properties.
    Configure {
        /// The cluster's id or name.
        cluster: String,
        /// The configuration's id or name.
        #[arg(long)]
        configuration: String,
        /// The revision to apply.
        #[arg(long)]
        revision: u64,
        /// Wait until every node runs it, showing progress.
        #[arg(long)]
        wait: bool,
        /// Most seconds to wait.
        #[arg(long, default_value_t = WAIT_DEFAULT_SECS)]
        wait_timeout_secs: u64,
    },
}

/// Most zones `cluster create` picks by itself (Kafka's usual three failure domains).
const DEFAULT_ZONES_MAX: usize = 3;

/// `ferry cluster create`.
#[derive(Debug, Args)]
struct CreateArgs {
    /// The cluster's name: 1-64 of [A-Za-z0-9-], unique in the tenant.
    name: String,
    /// Number of brokers (a multiple of the number of zones).
    #[arg(long, default_value_t = 3)]
    brokers: u32,
    /// Number of controllers: 3 or 5.
    #[arg(long, default_value_t = 3)]
    controllers: u32,
    /// The zones to spread over (default: the zones of the registered hosts, the first 3 by
    /// name, as the console proposes them).
    #[arg(long, value_delimiter = ',')]
    zones: Vec<String>,
    /// Storage per broker, in GiB.
    #[arg(long, default_value_t = 10)]
    storage_gib: u64,
    /// The Kafka version the brokers present.
    #[arg(long, default_value = "3.9.0")]
    kafka_version: String,
    /// A broker config override by Kafka name (repeatable): --set num.partitions=6.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// A tag (repeatable): --tag team=payments.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A configuration (id or name) whose revision the brokers start with; --set goes on top.
    #[arg(long, requires = "configuration_revision")]
    configuration: Option<String>,
    /// The configuration's revision.
    #[arg(long, requires = "configuration")]
    configuration_revision: Option<u64>,
    /// An idempotency key: retrying with the same key returns the same cluster.
    #[arg(long, default_value = "")]
    client_request_id: String,
    /// Wait until the cluster is ACTIVE (or FAILED), showing progress.
    #[arg(long)]
    wait: bool,
    /// Most seconds to wait.
    #[arg(long, default_value_t = WAIT_DEFAULT_SECS)]
    wait_timeout_secs: u64,
}

impl Client {
    /// The zones `cluster create` spreads over when none are given: those of the registered
    /// hosts, the first [`DEFAULT_ZONES_MAX`] by name (as the console proposes them).
    async fn default_zones(&self) -> anyhow::Result<Vec<String>> {
        let zones: std::collections::BTreeSet<String> = self
            .list_hosts()
            .await?
            .into_iter()
            .map(|h| h.zone)
            .collect();
        anyhow::ensure!(
            !zones.is_empty(),
            "no host is registered, so there is no zone to place the cluster in \
             (see `ferry host list`; or give --zones)"
        );
        Ok(zones.into_iter().take(DEFAULT_ZONES_MAX).collect())
    }

    /// The id of the cluster named `reference` (an id is returned as is).
    pub(super) async fn cluster_id(&self, reference: &str) -> anyhow::Result<String> {
        if reference.starts_with("cl-") {
            return Ok(reference.to_string());
        }
        let clusters = self.all_clusters(reference).await?;
        match clusters
            .into_iter()
            .find(|c| c.spec.as_ref().is_some_and(|spec| spec.name == reference))
        {
            Some(cluster) => Ok(cluster.id),
            None => bail!("no cluster named {reference:?} in this tenant"),
        }
    }

    /// Every cluster of the tenant whose name starts with `name_prefix`.
    async fn all_clusters(&self, name_prefix: &str) -> anyhow::Result<Vec<pb::Cluster>> {
        all_pages(|page_token| {
            let (mut clusters, request) = (
                self.clusters(),
                self.request(pb::ListClustersRequest {
                    name_prefix: name_prefix.to_string(),
                    page_size: 0,
                    page_token,
                }),
            );
            async move {
                let page = clusters.list_clusters(request).await?.into_inner();
                Ok((page.clusters, page.next_page_token))
            }
        })
        .await
    }

    /// One cluster by id.
    async fn cluster(&self, cluster_id: &str) -> anyhow::Result<pb::Cluster> {
        Ok(self
            .clusters()
            .get_cluster(self.request(pb::GetClusterRequest {
                cluster_id: cluster_id.to_string(),
            }))
            .await
            .map_err(status_error)?
            .into_inner())
    }

    /// Follows a cluster's operation to its end ([`Self::wait`]), prints the cluster as it is
    /// then, and fails with the operation's error code and message if it failed (`what`
    /// names the operation: "creation", "growing", ...).
    async fn finish_on_cluster(
        &self,
        operation_id: &str,
        cluster_id: &str,
        timeout: Duration,
        output: Output,
        what: &str,
    ) -> anyhow::Result<()> {
        let ended = self.wait(operation_id, timeout, output).await?;
        print_cluster(&self.cluster(cluster_id).await?, output)?;
        if let Some(error) = ended.error {
            bail!("{what} failed: {}: {}", error.code, error.message);
        }
        Ok(())
    }
}

/// Parses `NAME=VALUE` items into a map, naming the flag in errors.
fn pairs(flag: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .with_context(|| format!("{flag} {item:?}: expected NAME=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Runs `ferry cluster`.
pub(crate) async fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        ClusterCommand::Create(create_args) => create(&client, output, create_args).await,
        ClusterCommand::Get { cluster } => get(&client, output, &cluster).await,
        ClusterCommand::List { name_prefix } => list(&client, output, &name_prefix).await,
        ClusterCommand::Delete {
            cluster,
            wait,
            wait_timeout_secs,
        } => delete(&client, output, &cluster, wait, wait_timeout_secs).await,
        ClusterCommand::Grow {
            cluster,
            brokers,
            wait,
            wait_timeout_secs,
        } => grow(&client, output, &cluster, brokers, wait, wait_timeout_secs).await,
        ClusterCommand::Tag { cluster, tags } => tag(&client, output, &cluster, &tags).await,
        ClusterCommand::Bootstrap { cluster } => bootstrap(&client, output, &cluster).await,
        ClusterCommand::Nodes { cluster } => nodes(&client, output, &cluster).await,
        ClusterCommand::Configure {
            cluster,
            configuration,
            revision,
            wait,
            wait_timeout_secs,
        } => {
            let configuration = configuration.as_str();
            configure(
                &client,
                output,
                &cluster,
                configuration,
                revision,
                wait,
                wait_timeout_secs,
            )
            .await
        }
    }
}

/// `ferry cluster create`.
async fn create(client: &Client, output: Output, create: CreateArgs) -> anyhow::Result<()> {
    let configuration = match (&create.configuration, create.configuration_revision) {
        (Some(reference), Some(revision)) => Some(pb::ConfigurationInfo {
            id: client.configuration_id(reference).await?,
            revision,
        }),
        _ => None,
    };
    let zones = match create.zones {
        zones if !zones.is_empty() => zones,
        _ => client.default_zones().await?,
    };
    let spec = pb::ClusterSpec {
        name: create.name,
        kafka_version: create.kafka_version,
        broker_count: create.brokers,
        controller_count: create.controllers,
        zones,
        storage_per_broker_bytes: create.storage_gib.saturating_mul(1 << 30),
        broker_config: pairs("--set", &create.set)?.into_iter().collect(),
        tags: pairs("--tag", &create.tags)?.into_iter().collect(),
        configuration,
    };
    let response = client
        .clusters()
        .create_cluster(client.request(pb::CreateClusterRequest {
            spec: Some(spec),
            client_request_id: create.client_request_id,
        }))
        .await
        .map_err(status_error)?
        .into_inner();
    let cluster = response.cluster.context("the API returned no cluster")?;
    let operation = response
        .operation
        .context("the API returned no operation")?;
    if !create.wait {
        return print_cluster(&cluster, output);
    }
    if output == Output::Table {
        eprintln!("creating {} (operation {})", cluster.id, operation.id);
    }
    client
        .finish_on_cluster(
            &operation.id,
            &cluster.id,
            Duration::from_secs(create.wait_timeout_secs),
            output,
            "creation",
        )
        .await
}

/// `ferry cluster get`.
async fn get(client: &Client, output: Output, cluster: &str) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    print_cluster(&client.cluster(&id).await?, output)
}

/// `ferry cluster list`.
async fn list(client: &Client, output: Output, name_prefix: &str) -> anyhow::Result<()> {
    let clusters = client.all_clusters(name_prefix).await?;
    show(output, &clusters, || {
        let rows = clusters
            .iter()
            .map(|c| {
                let spec = c.spec.clone().unwrap_or_default();
                let status = c.status.clone().unwrap_or_default();
                vec![
                    c.id.clone(),
                    spec.name,
                    cluster_state(status.state),
                    spec.broker_count.to_string(),
                    spec.controller_count.to_string(),
                    spec.zones.join(","),
                ]
            })
            .collect();
        print_table(
            &["ID", "NAME", "STATE", "BROKERS", "CONTROLLERS", "ZONES"],
            rows,
        );
    })
}

/// `ferry cluster delete`.
async fn delete(
    client: &Client,
    output: Output,
    cluster: &str,
    wait: bool,
    wait_timeout_secs: u64,
) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    let response = client
        .clusters()
        .delete_cluster(client.request(pb::DeleteClusterRequest {
            cluster_id: id.clone(),
            current_version: 0,
        }))
        .await
        .map_err(status_error)?
        .into_inner();
    let operation = response
        .operation
        .context("the API returned no operation")?;
    if wait {
        let ended = client
            .wait(
                &operation.id,
                Duration::from_secs(wait_timeout_secs),
                output,
            )
            .await?;
        if let Some(error) = &ended.error {
            bail!("deletion failed: {}: {}", error.code, error.message);
        }
        show(output, &ended, || {
            println!("deleted {id}");
        })
    } else {
        show(output, &operation, || {
            println!("deleting {id} (operation {})", operation.id);
        })
    }
}

/// `ferry cluster grow`.
async fn grow(
    client: &Client,
    output: Output,
    cluster: &str,
    brokers: u32,
    wait: bool,
    wait_timeout_secs: u64,
) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    let response = client
        .clusters()
        .update_broker_count(client.request(pb::UpdateBrokerCountRequest {
            cluster_id: id.clone(),
            current_version: 0,
            broker_count: brokers,
        }))
        .await
        .map_err(status_error)?
        .into_inner();
    let operation = response
        .operation
        .context("the API returned no operation")?;
    if wait {
        client
            .finish_on_cluster(
                &operation.id,
                &id,
                Duration::from_secs(wait_timeout_secs),
                output,
                "growing",
            )
            .await
    } else {
        show(output, &operation, || {
            println!(
                "growing {id} to {brokers} brokers (operation {})",
                operation.id
            );
        })
    }
}

/// `ferry cluster tag`.
async fn tag(
    client: &Client,
    output: Output,
    cluster: &str,
    tags: &[String],
) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    let cluster = client
        .clusters()
        .update_tags(client.request(pb::UpdateTagsRequest {
            cluster_id: id,
            current_version: 0,
            tags: pairs("--tag", tags)?.into_iter().collect(),
        }))
        .await
        .map_err(status_error)?
        .into_inner();
    print_cluster(&cluster, output)
}

/// `ferry cluster bootstrap`.
async fn bootstrap(client: &Client, output: Output, cluster: &str) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    let response = client
        .clusters()
        .get_bootstrap_brokers(client.request(pb::GetBootstrapBrokersRequest { cluster_id: id }))
        .await
        .map_err(status_error)?
        .into_inner();
    show(output, &response, || {
        println!("{}", response.bootstrap_brokers);
    })
}

/// `ferry cluster nodes`.
async fn nodes(client: &Client, output: Output, cluster: &str) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    let nodes = all_pages(|page_token| {
        let (mut clusters, request) = (
            client.clusters(),
            client.request(pb::ListNodesRequest {
                cluster_id: id.clone(),
                page_size: 0,
                page_token,
            }),
        );
        async move {
            let page = clusters.list_nodes(request).await?.into_inner();
            Ok((page.nodes, page.next_page_token))
        }
    })
    .await?;
    show(output, &nodes, || {
        print_nodes(&nodes);
    })
}

/// `ferry cluster configure`.
async fn configure(
    client: &Client,
    output: Output,
    cluster: &str,
    configuration: &str,
    revision: u64,
    wait: bool,
    wait_timeout_secs: u64,
) -> anyhow::Result<()> {
    let id = client.cluster_id(cluster).await?;
    let configuration_id = client.configuration_id(configuration).await?;
    let response = client
        .clusters()
        .update_cluster_configuration(client.request(pb::UpdateClusterConfigurationRequest {
            cluster_id: id.clone(),
            current_version: 0,
            configuration: Some(pb::ConfigurationInfo {
                id: configuration_id.clone(),
                revision,
            }),
        }))
        .await
        .map_err(status_error)?
        .into_inner();
    let operation = response
        .operation
        .context("the API returned no operation")?;
    if !wait {
        return show(output, &operation, || {
            println!(
                "applying revision {revision} of {configuration_id} to {id} \
                 (operation {})",
                operation.id
            );
        });
    }
    client
        .finish_on_cluster(
            &operation.id,
            &id,
            Duration::from_secs(wait_timeout_secs),
            output,
            "configuring",
        )
        .await
}
