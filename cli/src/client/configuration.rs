//! `ferry configuration …`: named, revisioned sets of broker properties that clusters apply.
//!
//! [`configuration`] dispatches each subcommand to one function of the same name. The `Client`
//! calls here list the tenant's configurations and resolve a name to its id, which `ferry
//! cluster create` and `ferry cluster configure` use too.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ferry_proto::controlplane::v1 as pb;

use super::print::{print_configuration, print_table, show};
use super::{Client, Connection, Output, all_pages, status_error};

/// `ferry configuration`.
#[derive(Debug, Args)]
pub(crate) struct ConfigurationArgs {
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

impl Client {
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
    pub(super) async fn configuration_id(&self, reference: &str) -> anyhow::Result<String> {
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
pub(crate) async fn configuration(args: ConfigurationArgs) -> anyhow::Result<()> {
    let output = args.connection.output;
    let client = Client::connect(&args.connection).await?;
    match args.command {
        ConfigurationCommand::Create {
            name,
            properties_file,
            description,
            kafka_versions,
        } => {
            let request = pb::CreateConfigurationRequest {
                name,
                description,
                kafka_versions,
                server_properties: read_properties(&properties_file)?,
            };
            create(&client, output, request).await
        }
        ConfigurationCommand::Get {
            configuration,
            revision,
        } => get(&client, output, &configuration, revision).await,
        ConfigurationCommand::List => list(&client, output).await,
        ConfigurationCommand::Update {
            configuration,
            properties_file,
            description,
        } => {
            update(
                &client,
                output,
                &configuration,
                &properties_file,
                description,
            )
            .await
        }
        ConfigurationCommand::Revisions { configuration } => {
            revisions(&client, output, &configuration).await
        }
        ConfigurationCommand::Delete { configuration } => {
            delete(&client, output, &configuration).await
        }
    }
}

/// `ferry configuration create`.
async fn create(
    client: &Client,
    output: Output,
    request: pb::CreateConfigurationRequest,
) -> anyhow::Result<()> {
    let configuration = client
        .configurations()
        .create_configuration(client.request(request))
        .await
        .map_err(status_error)?
        .into_inner();
    show(output, &configuration, || {
        print_configuration(&configuration)
    })
}

/// `ferry configuration get`: the configuration, or one revision with its properties.
async fn get(
    client: &Client,
    output: Output,
    configuration: &str,
    revision: Option<u64>,
) -> anyhow::Result<()> {
    let id = client.configuration_id(configuration).await?;
    match revision {
        Some(revision) => {
            let revision = client
                .configurations()
                .get_configuration_revision(client.request(pb::GetConfigurationRevisionRequest {
                    configuration_id: id,
                    revision,
                }))
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

/// `ferry configuration list`.
async fn list(client: &Client, output: Output) -> anyhow::Result<()> {
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

/// `ferry configuration update`.
async fn update(
    client: &Client,
    output: Output,
    configuration: &str,
    properties_file: &str,
    description: String,
) -> anyhow::Result<()> {
    let id = client.configuration_id(configuration).await?;
    let configuration = client
        .configurations()
        .update_configuration(client.request(pb::UpdateConfigurationRequest {
            configuration_id: id,
            description,
            server_properties: read_properties(properties_file)?,
        }))
        .await
        .map_err(status_error)?
        .into_inner();
    show(output, &configuration, || {
        print_configuration(&configuration)
    })
}

/// `ferry configuration revisions`.
async fn revisions(client: &Client, output: Output, configuration: &str) -> anyhow::Result<()> {
    let id = client.configuration_id(configuration).await?;
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

/// `ferry configuration delete`.
async fn delete(client: &Client, output: Output, configuration: &str) -> anyhow::Result<()> {
    let id = client.configuration_id(configuration).await?;
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
