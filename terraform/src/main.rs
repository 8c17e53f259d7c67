//! `terraform-provider-ferry`: Terraform's provider for Ferry clusters.
//!
//! Terraform starts this binary (never a human: see [`plugin::check_cookie`]), reads the
//! go-plugin handshake line from stdout and talks tfplugin6 gRPC to it over mutually
//! authenticated TLS until it calls `plugin.GRPCController/Shutdown`.
//!
//! # Layout
//!
//! - [`plugin`]: go-plugin handshake, AutoMTLS, the connection accept loop.
//! - [`provider`]: the tfplugin6 `Provider` service, dispatching by type name.
//! - [`schema`]: what Terraform sees, and which fields force a replacement.
//! - [`cluster`]: the `ferry_cluster` resource (validate, plan, apply, read, import).
//! - [`configuration`]: the `ferry_configuration` resource (revisioned broker properties).
//! - [`data`]: the data sources.
//! - [`api`]: the control-plane gRPC API, and its errors as diagnostics.
//! - [`value`] / [`diag`]: Terraform's msgpack values and diagnostics.
//!
//! # Deliberately missing
//!
//! - GRPCStdio and GRPCBroker: Terraform logs that stdio is unavailable and carries on; this
//!   provider writes its few log lines to stderr, which go-plugin captures.

mod api;
mod cluster;
mod configuration;
mod data;
mod diag;
mod plugin;
mod provider;
mod schema;
mod value;

/// Generated gRPC code (do not edit; see `build.rs` and `proto/`).
#[allow(missing_docs, dead_code, clippy::all)]
mod proto {
    /// Terraform's plugin protocol 6 (the subset in `proto/tfplugin6.proto`).
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    /// go-plugin's controller service (`proto/plugin.proto`).
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use proto::plugin::Empty;
use proto::plugin::grpc_controller_server::{GrpcController, GrpcControllerServer};
use proto::tfplugin6::provider_server::ProviderServer;

/// go-plugin's controller: Shutdown stops the server (and so the process).
struct Controller {
    shutdown: Arc<Notify>,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.shutdown.notify_one();
        Ok(Response::new(Empty {}))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Err(e) = plugin::check_cookie() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .context("PLUGIN_CLIENT_CERT is not set: Terraform passes it (AutoMTLS)")?;
    let tls = plugin::Tls::new(&client_cert)?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = tokio::sync::mpsc::channel(plugin::PENDING_CONNECTIONS_MAX);
    tokio::spawn(plugin::accept_loop(listener, tls.acceptor.clone(), tx));

    let shutdown = Arc::new(Notify::new());
    let controller = Controller {
        shutdown: shutdown.clone(),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", plugin::handshake_line(port, &tls.server_cert))?;
    stdout.flush()?;
    drop(stdout);

    tonic::transport::Server::builder()
        .add_service(ProviderServer::new(provider::FerryProvider::default()))
        .add_service(GrpcControllerServer::new(controller))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            async move { shutdown.notified().await },
        )
        .await?;
    Ok(())
}
