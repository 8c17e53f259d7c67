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
//!
//! # Layout
//!
//! This module holds the connection every command shares: the [`Connection`] flags, the
//! [`Client`] that attaches the token to each call, paging and the error text of a failed call.
//! Each resource has its own module with its flags, its subcommands and the `Client` calls only
//! it needs: [`cluster`](mod@cluster), [`configuration`](mod@configuration),
//! [`operation`](mod@operation) and [`host`](mod@host). [`print`](mod@print) renders what they
//! fetch as tables or JSON.

mod cluster;
mod configuration;
mod host;
mod operation;
mod print;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::configuration_service_client::ConfigurationServiceClient;
use ferry_proto::controlplane::v1::host_service_client::HostServiceClient;
use ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient;
use tonic::transport::{Channel, Endpoint};

pub(crate) use cluster::{ClusterArgs, cluster};
pub(crate) use configuration::{ConfigurationArgs, configuration};
pub(crate) use host::{HostArgs, host};
pub(crate) use operation::{OperationArgs, operation};

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

/// The four API clients over one channel, with the token attached to every call.
///
/// The calls a single resource needs are in that resource's module (`impl Client` there).
struct Client {
    channel: Channel,
    token: String,
}

impl Client {
    /// Reads the token and connects to `--api`, giving up after five seconds.
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

    /// A request for `message` carrying the token.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        authorized(&self.token, message)
    }

    fn clusters(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.channel.clone())
    }

    fn configurations(&self) -> ConfigurationServiceClient<Channel> {
        ConfigurationServiceClient::new(self.channel.clone())
    }

    fn operations(&self) -> OperationServiceClient<Channel> {
        OperationServiceClient::new(self.channel.clone())
    }

    fn hosts(&self) -> HostServiceClient<Channel> {
        HostServiceClient::new(self.channel.clone())
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
