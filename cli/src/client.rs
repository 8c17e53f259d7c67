//! The control plane's command-line client: `ferry cluster …`, `ferry configuration …`,
//! `ferry operation …` and `ferry host …`.
//!
//! Each command is one or a few gRPC calls to `ferry.controlplane.v1` with the caller's bearer
//! token, printed as a human table (default) or as the API's JSON (`--output json`, the same
//! shapes as the REST API). Errors print the status code, its message and every field
//! violation, and exit nonzero.
//!
//! A cluster is named by its id (`cl-…`) or by its name, which is looked up in the tenant; so is
//! a configuration (`cfg-…`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::configuration_service_client::ConfigurationServiceClient;
use ferry_proto::controlplane::v1::host_service_client::HostServiceClient;
use ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient;
use tonic::transport::{Channel, Endpoint};

/// The API address `ferry dev` and `ferry control-plane` listen on by default.
pub const API_DEFAULT: &str = "http://127.0.0.1:7070";
/// How often `--wait` polls an operation.
const WAIT_POLL: Duration = Duration::from_millis(500);
/// How long `--wait` waits at most by default.
const WAIT_DEFAULT_SECS: u64 = 600;

/// Output formats of client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A human-readable table.
    Table,
    /// The API's JSON.
    Json,
}

/// How to reach the control plane, shared by every client command.
#[derive(Debug, Args)]
pub struct Connection {
    /// The control plane's API URL.
    #[arg(long, env = "FERRY_API", default_value = API_DEFAULT, global = true)]
    pub api: String,
    /// A file holding the bearer token (see `ferry token create`); without it, the token is
    /// taken from the FERRY_TOKEN environment variable (`ferry dev` prints one), never from a
    /// flag.
    #[arg(long, env = "FERRY_TOKEN_FILE", global = true)]
    pub token_file: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// `ferry cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
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

/// `ferry configuration`.
#[derive(Debug, Args)]
pub struct ConfigurationArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: ConfigurationCommand,
}

/// `ferry configuration` subcommands.
#[derive(Debug, Subcommand)]
enum ConfigurationCommand {
    /// Create a configuration (revision 1) from a properties file.
    Create {
        /// Its name: 1-64 of [A-Za-z0-9-], unique in the tenant.
        name: String,
        /// The broker properties, Java properties format (`-` for stdin).
        #[arg(long)]
        properties_file: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// A Kafka version it is meant for (repeatable); none for any.
        #[arg(long = "kafka-version")]
        kafka_versions: Vec<String>,
    },
    /// Show one configuration, or one revision with its properties (--revision).
    Get {
        /// The configuration's id or name.
        configuration: String,
        /// Show this revision's properties.
        #[arg(long)]
        revision: Option<u64>,
    },
    /// List the tenant's configurations.
    List,
    /// Add the next revision with new properties.
    Update {
        /// The configuration's id or name.
        configuration: String,
        /// The new broker properties, Java properties format (`-` for stdin).
        #[arg(long)]
        properties_file: String,
        /// What changed.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a configuration's revisions, newest first.
    Revisions {
        /// The configuration's id or name.
        configuration: String,
    },
    /// Delete a configuration (refused while a cluster uses it).
    Delete {
        /// The configuration's id or name.
        configuration: String,
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

/// `ferry operation`.
#[derive(Debug, Args)]
pub struct OperationArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: OperationCommand,
}

/// `ferry operation` subcommands.
#[derive(Debug, Subcommand)]
enum OperationCommand {
    /// Show one operation with its steps.
    Get {
        /// The operation's id.
        operation: String,
    },
    /// List a cluster's operations, newest first.
    List {
        /// The cluster's id or name.
        cluster: String,
    },
}

/// `ferry host`.
#[derive(Debug, Args)]
pub struct HostArgs {
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

/// The three API clients over one channel, with the token attached to every call.
struct Client {
    channel: Channel,
    token: String,
}

impl Client {
    async fn connect(connection: &Connection) -> anyhow::Result<Client> {
        let token = crate::secret::token(connection.token_file.as_deref())?
            .context("no token: set FERRY_TOKEN or pass --token-file (ferry dev prints a token)")?;
        let channel = Endpoint::from_shared(connection.api.clone())
            .with_context(|| format!("bad --api URL {:?}", connection.api))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to the control plane at {}", connection.api))?;
        Ok(Client { channel, token })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        authorized(&self.token, message)
    }

    fn clusters(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.channel.clone())
    }

    fn configurations(&self) -> ConfigurationServiceClient<Channel> {
        ConfigurationServiceClient::new(self.channel.clone())
    }

    /// Every configuration of the tenant.
    async fn all_configurations(&self) -> anyhow::Result<Vec<pb::Configuration>> {
        all_pages(|page_token| {
            let (mut configurations, request) = (
                self.configurations(),
                self.request(pb::ListConfigurationsRequest {
                    page_size: 0,
                    page_token,
                }),
            );
            async move {
                let page = configurations
                    .list_configurations(request)
                    .await?
                    .into_inner();
                Ok((page.configurations, page.next_page_token))
            }
        })
        .await
    }

    /// The id of the configuration named `reference` (an id is returned as is).
    async fn configuration_id(&self, reference: &str) -> anyhow::Result<String> {
        if reference.starts_with("cfg-") {
            return Ok(reference.to_string());
        }
        match self
            .all_configurations()
            .await?
            .into_iter()
            .find(|c| c.name == reference)
        {
            Some(configuration) => Ok(configuration.id),
            None => bail!("no configuration named {reference:?} in this tenant"),
        }
    }

    fn operations(&self) -> OperationServiceClient<Channel> {
        OperationServiceClient::new(self.channel.clone())
    }

    fn hosts(&self) -> HostServiceClient<Channel> {
        HostServiceClient::new(self.channel.clone())
    }

    /// Every registered host, all pages.
    async fn list_hosts(&self) -> anyhow::Result<Vec<pb::Host>> {
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
    async fn cluster_id(&self, reference: &str) -> anyhow::Result<String> {
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

    async fn operation(&self, operation_id: &str) -> anyhow::Result<pb::Operation> {
        Ok(self
            .operations()
            .get_operation(self.request(pb::GetOperationRequest {
                operation_id: operation_id.to_string(),
            }))
            .await
            .map_err(status_error)?
            .into_inner())
    }

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

    /// Polls `operation_id` until it ends, printing each step as it changes (table output).
    async fn wait(
        &self,
        operation_id: &str,
        timeout: Duration,
        output: Output,
    ) -> anyhow::Result<pb::Operation> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut shown: BTreeMap<String, (i32, String)> = BTreeMap::new();
        loop {
            let operation = self.operation(operation_id).await?;
            if output == Output::Table {
                for step in &operation.steps {
                    let now = (step.state, step.message.clone());
                    if shown.get(&step.name) != Some(&now)
                        && step.state != pb::StepState::Pending as i32
                    {
                        eprintln!(
                            "  [{:>3}%] {:<20} {:<8} {}",
                            operation.progress_percent,
                            step.name,
                            step_state(step.state),
                            step.message
                        );
                        shown.insert(step.name.clone(), now);
                    }
                }
            }
            let state = pb::OperationState::try_from(operation.state)
                .unwrap_or(pb::OperationState::Unspecified);
            if matches!(
                state,
                pb::OperationState::Succeeded | pb::OperationState::Failed
            ) {
                return Ok(operation);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "operation {operation_id} did not finish within {} s (it goes on; see \
                     `ferry operation get {operation_id}`)",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
}

/// Every item of a paged list: `fetch(page_token)` gets one page and the next page's token
/// (empty after the last page), starting from the empty token.
async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = fetch(page_token).await.map_err(status_error)?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
}

/// A request carrying `token` as its bearer token.
pub fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// An error for a failed call: the status code and message, then every field violation.
fn status_error(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let details = status.get_error_details();
    if let Some(info) = details.error_info() {
        text.push_str(&format!(" [{}]", info.reason));
    }
    if let Some(bad) = details.bad_request() {
        for violation in &bad.field_violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    anyhow::anyhow!(text)
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
pub async fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        ClusterCommand::Create(create) => {
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
        ClusterCommand::Get { cluster } => {
            let id = client.cluster_id(&cluster).await?;
            print_cluster(&client.cluster(&id).await?, output)
        }
        ClusterCommand::List { name_prefix } => {
            let clusters = client.all_clusters(&name_prefix).await?;
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
        ClusterCommand::Delete {
            cluster,
            wait,
            wait_timeout_secs,
        } => {
            let id = client.cluster_id(&cluster).await?;
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
        ClusterCommand::Grow {
            cluster,
            brokers,
            wait,
            wait_timeout_secs,
        } => {
            let id = client.cluster_id(&cluster).await?;
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
        ClusterCommand::Tag { cluster, tags } => {
            let id = client.cluster_id(&cluster).await?;
            let cluster = client
                .clusters()
                .update_tags(client.request(pb::UpdateTagsRequest {
                    cluster_id: id,
                    current_version: 0,
                    tags: pairs("--tag", &tags)?.into_iter().collect(),
                }))
                .await
                .map_err(status_error)?
                .into_inner();
            print_cluster(&cluster, output)
        }
        ClusterCommand::Bootstrap { cluster } => {
            let id = client.cluster_id(&cluster).await?;
            let response = client
                .clusters()
                .get_bootstrap_brokers(
                    client.request(pb::GetBootstrapBrokersRequest { cluster_id: id }),
                )
                .await
                .map_err(status_error)?
                .into_inner();
            show(output, &response, || {
                println!("{}", response.bootstrap_brokers);
            })
        }
        ClusterCommand::Nodes { cluster } => {
            let id = client.cluster_id(&cluster).await?;
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
        ClusterCommand::Configure {
            cluster,
            configuration,
            revision,
            wait,
            wait_timeout_secs,
        } => {
            let id = client.cluster_id(&cluster).await?;
            let configuration_id = client.configuration_id(&configuration).await?;
            let response = client
                .clusters()
                .update_cluster_configuration(client.request(
                    pb::UpdateClusterConfigurationRequest {
                        cluster_id: id.clone(),
                        current_version: 0,
                        configuration: Some(pb::ConfigurationInfo {
                            id: configuration_id.clone(),
                            revision,
                        }),
                    },
                ))
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
    }
}

/// The text of a properties file, `-` for stdin.
fn read_properties(path: &str) -> anyhow::Result<String> {
    if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the properties from stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

/// Runs `ferry configuration`.
pub async fn configuration(args: ConfigurationArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        ConfigurationCommand::Create {
            name,
            properties_file,
            description,
            kafka_versions,
        } => {
            let configuration = client
                .configurations()
                .create_configuration(client.request(pb::CreateConfigurationRequest {
                    name,
                    description,
                    kafka_versions,
                    server_properties: read_properties(&properties_file)?,
                }))
                .await
                .map_err(status_error)?
                .into_inner();
            show(output, &configuration, || {
                print_configuration(&configuration)
            })
        }
        ConfigurationCommand::Get {
            configuration,
            revision,
        } => {
            let id = client.configuration_id(&configuration).await?;
            match revision {
                Some(revision) => {
                    let revision = client
                        .configurations()
                        .get_configuration_revision(client.request(
                            pb::GetConfigurationRevisionRequest {
                                configuration_id: id,
                                revision,
                            },
                        ))
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    show(output, &revision, || {
                        println!("# revision {}: {}", revision.revision, revision.description);
                        print!("{}", revision.server_properties);
                        if !revision.server_properties.ends_with('\n') {
                            println!();
                        }
                    })
                }
                None => {
                    let configuration = client
                        .configurations()
                        .get_configuration(client.request(pb::GetConfigurationRequest {
                            configuration_id: id,
                        }))
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    show(output, &configuration, || {
                        print_configuration(&configuration)
                    })
                }
            }
        }
        ConfigurationCommand::List => {
            let configurations = client.all_configurations().await?;
            show(output, &configurations, || {
                let rows = configurations
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.clone(),
                            c.name.clone(),
                            c.latest_revision
                                .as_ref()
                                .map(|r| r.revision.to_string())
                                .unwrap_or_default(),
                            c.description.clone(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "NAME", "LATEST", "DESCRIPTION"], rows);
            })
        }
        ConfigurationCommand::Update {
            configuration,
            properties_file,
            description,
        } => {
            let id = client.configuration_id(&configuration).await?;
            let configuration = client
                .configurations()
                .update_configuration(client.request(pb::UpdateConfigurationRequest {
                    configuration_id: id,
                    description,
                    server_properties: read_properties(&properties_file)?,
                }))
                .await
                .map_err(status_error)?
                .into_inner();
            show(output, &configuration, || {
                print_configuration(&configuration)
            })
        }
        ConfigurationCommand::Revisions { configuration } => {
            let id = client.configuration_id(&configuration).await?;
            let revisions = all_pages(|page_token| {
                let (mut configurations, request) = (
                    client.configurations(),
                    client.request(pb::ListConfigurationRevisionsRequest {
                        configuration_id: id.clone(),
                        page_size: 0,
                        page_token,
                    }),
                );
                async move {
                    let page = configurations
                        .list_configuration_revisions(request)
                        .await?
                        .into_inner();
                    Ok((page.revisions, page.next_page_token))
                }
            })
            .await?;
            show(output, &revisions, || {
                let rows = revisions
                    .iter()
                    .map(|r| vec![r.revision.to_string(), r.description.clone()])
                    .collect();
                print_table(&["REVISION", "DESCRIPTION"], rows);
            })
        }
        ConfigurationCommand::Delete { configuration } => {
            let id = client.configuration_id(&configuration).await?;
            let response = client
                .configurations()
                .delete_configuration(client.request(pb::DeleteConfigurationRequest {
                    configuration_id: id.clone(),
                }))
                .await
                .map_err(status_error)?
                .into_inner();
            show(output, &response, || println!("deleted {id}"))
        }
    }
}

fn print_configuration(configuration: &pb::Configuration) {
    let latest = configuration.latest_revision.clone().unwrap_or_default();
    println!("id:              {}", configuration.id);
    println!("name:            {}", configuration.name);
    println!("description:     {}", configuration.description);
    if !configuration.kafka_versions.is_empty() {
        println!(
            "kafka versions:  {}",
            configuration.kafka_versions.join(", ")
        );
    }
    println!("latest revision: {}", latest.revision);
}

/// Runs `ferry operation`.
pub async fn operation(args: OperationArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        OperationCommand::Get { operation } => {
            let operation = client.operation(&operation).await?;
            show(output, &operation, || {
                print_operation(&operation);
            })
        }
        OperationCommand::List { cluster } => {
            let id = client.cluster_id(&cluster).await?;
            let operations = all_pages(|page_token| {
                let (mut operations, request) = (
                    client.operations(),
                    client.request(pb::ListOperationsRequest {
                        cluster_id: id.clone(),
                        page_size: 0,
                        page_token,
                    }),
                );
                async move {
                    let page = operations.list_operations(request).await?.into_inner();
                    Ok((page.operations, page.next_page_token))
                }
            })
            .await?;
            show(output, &operations, || {
                let rows = operations
                    .iter()
                    .map(|op| {
                        vec![
                            op.id.clone(),
                            operation_type(op.r#type),
                            operation_state(op.state),
                            format!("{}%", op.progress_percent),
                            duration(op.started_at, op.ended_at),
                            op.error
                                .as_ref()
                                .map(|e| format!("{}: {}", e.code, e.message))
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "TYPE", "STATE", "PROGRESS", "TOOK", "ERROR"], rows);
            })
        }
    }
}

/// Runs `ferry host`.
pub async fn host(args: HostArgs) -> anyhow::Result<()> {
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

fn print_cluster(cluster: &pb::Cluster, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(cluster);
    }
    let spec = cluster.spec.clone().unwrap_or_default();
    let status = cluster.status.clone().unwrap_or_default();
    let info = status.state_info.unwrap_or_default();
    println!("id:                {}", cluster.id);
    println!("name:              {}", spec.name);
    println!("state:             {}", cluster_state(status.state));
    if !info.code.is_empty() || !info.message.is_empty() {
        println!("state info:        {}: {}", info.code, info.message);
    }
    println!("kafka version:     {}", spec.kafka_version);
    println!(
        "shape:             {} brokers, {} controllers over zones {}",
        spec.broker_count,
        spec.controller_count,
        spec.zones.join(",")
    );
    println!("bootstrap brokers: {}", status.bootstrap_brokers);
    let revision = |c: &Option<pb::ConfigurationInfo>| match c {
        Some(c) => format!("{} revision {}", c.id, c.revision),
        None => "defaults".to_string(),
    };
    if spec.configuration.is_some() || status.configuration.is_some() {
        println!("configuration:     {}", revision(&spec.configuration));
        if spec.configuration != status.configuration {
            println!("  nodes run:       {}", revision(&status.configuration));
        }
    }
    if !spec.tags.is_empty() {
        let mut tags: Vec<String> = spec.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tags.sort();
        println!("tags:              {}", tags.join(", "));
    }
    if !cluster.active_operation_id.is_empty() {
        println!("operation:         {}", cluster.active_operation_id);
    }
    if !status.nodes.is_empty() {
        println!();
        print_nodes(&status.nodes);
    }
    Ok(())
}

fn print_nodes(nodes: &[pb::Node]) {
    let rows = nodes
        .iter()
        .map(|n| {
            let port = if n.kafka_port != 0 {
                n.kafka_port
            } else {
                n.controller_port
            };
            vec![
                n.node_id.to_string(),
                node_role(n.role),
                n.host_id.clone(),
                n.zone.clone(),
                format!("{}:{port}", n.address),
                node_state(n.state),
                n.config_fingerprint.clone(),
                probe_membership(n),
                probe_replication(n),
                n.state_message.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "NODE",
            "ROLE",
            "HOST",
            "ZONE",
            "ADDRESS",
            "STATE",
            "CONFIG",
            "MEMBERSHIP",
            "UNDER-REPLICATED/OFFLINE",
            "MESSAGE",
        ],
        rows,
    );
}

/// How the node's agent last found it in the cluster: a broker's registration epoch (and
/// whether it is fenced), a controller's quorum role and leader; `-` until probed.
fn probe_membership(node: &pb::Node) -> String {
    let Some(probe) = &node.probe else {
        return "-".into();
    };
    let mut parts = Vec::new();
    if node.role == pb::NodeRole::Broker as i32 {
        parts.push(match (probe.broker_epoch, probe.fenced) {
            (epoch, _) if epoch < 0 => "unregistered".to_string(),
            (epoch, true) => format!("epoch {epoch} fenced"),
            (epoch, false) => format!("epoch {epoch}"),
        });
    }
    if !probe.quorum_role.is_empty() {
        parts.push(match probe.quorum_leader_id {
            -1 => format!("{}, no leader", probe.quorum_role),
            leader => format!("{}, leader {leader}", probe.quorum_role),
        });
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

/// A broker's count of the cluster's under-replicated and offline partitions (of all), from
/// its metadata image at its last probe; `-` for controllers and until probed.
fn probe_replication(node: &pb::Node) -> String {
    match node.probe.as_ref().and_then(|p| p.replication) {
        Some(r) => format!(
            "{}/{} of {}",
            r.under_replicated_partitions, r.offline_partitions, r.partitions
        ),
        None => "-".into(),
    }
}

fn print_operation(op: &pb::Operation) {
    println!("id:       {}", op.id);
    println!("cluster:  {}", op.cluster_id);
    println!("type:     {}", operation_type(op.r#type));
    println!("state:    {}", operation_state(op.state));
    println!("progress: {}%", op.progress_percent);
    println!("took:     {}", duration(op.started_at, op.ended_at));
    if let Some(error) = &op.error {
        println!("error:    {}: {}", error.code, error.message);
    }
    println!();
    let rows = op
        .steps
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                step_state(s.state),
                duration(s.started_at, s.ended_at),
                s.message.clone(),
            ]
        })
        .collect();
    print_table(&["STEP", "STATE", "TOOK", "MESSAGE"], rows);
}

/// `1.234 s` between two millisecond timestamps, `-` before the start, `running` before the
/// end.
fn duration(started_at: i64, ended_at: i64) -> String {
    match (started_at, ended_at) {
        (0, _) => "-".into(),
        (_, 0) => "running".into(),
        (start, end) => format!("{:.3} s", (end - start) as f64 / 1000.0),
    }
}

/// Prints rows under headers, columns padded to their widest cell.
fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints `value` as the API's JSON, or runs `table` to print it for people.
fn show<T: serde::Serialize + ?Sized>(
    output: Output,
    value: &T,
    table: impl FnOnce(),
) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(value),
        Output::Table => {
            table();
            Ok(())
        }
    }
}

fn enum_name<E: TryFrom<i32>>(
    value: i32,
    name: impl Fn(&E) -> &'static str,
    prefix: &str,
) -> String {
    match E::try_from(value) {
        Ok(e) => name(&e).trim_start_matches(prefix).to_string(),
        Err(_) => format!("UNKNOWN({value})"),
    }
}

fn cluster_state(v: i32) -> String {
    enum_name(v, pb::ClusterState::as_str_name, "CLUSTER_STATE_")
}

fn node_state(v: i32) -> String {
    enum_name(v, pb::NodeState::as_str_name, "NODE_STATE_")
}

fn node_role(v: i32) -> String {
    enum_name(v, pb::NodeRole::as_str_name, "NODE_ROLE_")
}

fn step_state(v: i32) -> String {
    enum_name(v, pb::StepState::as_str_name, "STEP_STATE_")
}

fn operation_state(v: i32) -> String {
    enum_name(v, pb::OperationState::as_str_name, "OPERATION_STATE_")
}

fn operation_type(v: i32) -> String {
    enum_name(v, pb::OperationType::as_str_name, "OPERATION_TYPE_")
}

fn host_health(v: i32) -> String {
    enum_name(v, pb::HostHealth::as_str_name, "HOST_HEALTH_")
}
