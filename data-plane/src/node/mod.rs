//! A running `ferry node`: its roles, its data directory, its listeners.
//!
//! [`Node::bind`] does everything that can fail before serving: it claims the data directory
//! (refusing one that belongs to another cluster or node), opens the metadata authority and the
//! broker (recovering every partition log), and binds the Kafka and admin listeners, so the
//! caller learns of a bad configuration or a taken port at once. [`Node::run`] then serves until
//! shutdown and flushes every log on the way out.
//!
//! # Roles
//! Kafka's `process.roles`: `broker` serves clients, `controller` is a member of the metadata
//! quorum. Today a node runs both in the single-node form, where it is its own metadata authority
//! ([`crate::metadata::local::LocalAuthority`]); separate brokers and controllers arrive with the
//! quorum, and [`NodeConfig::validate`] refuses them until then.
//!
//! # Data directory
//! ```text
//! <data_dir>/meta.properties        cluster.id, node.id (who owns this directory)
//! <data_dir>/metadata/image.json    the metadata image (single-node authority)
//! <data_dir>/logs/<topic>-<n>/      one directory per partition (see crate::log)
//! ```

mod admin;
pub mod controller;
mod dir;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerConfig};
use crate::metadata::local::{LocalAuthority, LocalOptions};
use crate::metadata::{BrokerInfo, NodeId};
use crate::server::{self, ServerOptions};
pub use dir::DataDir;

/// A role a node plays (Kafka's `process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Serves Kafka clients and holds partitions.
    Broker,
    /// Member of the metadata quorum.
    Controller,
}

impl Role {
    /// The name Kafka uses for the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Controller => "controller",
        }
    }
}

/// Everything a node needs to start. Built by the `ferry` binary from flags and files.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `node.id`, unique within the cluster.
    pub node_id: NodeId,
    /// Cluster id; `None` adopts the one in the data directory or creates a new cluster.
    pub cluster_id: Option<String>,
    /// Roles this process runs.
    pub roles: Vec<Role>,
    /// Directory holding everything the node persists.
    pub data_dir: PathBuf,
    /// Address the Kafka listener binds (port 0 picks a free port).
    pub kafka_listen: SocketAddr,
    /// Host clients are told to connect to; defaults to the listen address's IP.
    pub advertised_host: Option<String>,
    /// The broker's rack (availability zone).
    pub rack: Option<String>,
    /// Address of the admin gRPC endpoint (node status), if any.
    pub admin_listen: Option<SocketAddr>,
    /// Listener limits.
    pub server: ServerOptions,
    /// Broker settings (topic defaults, retention check interval); `log_dir` and `node_id`
    /// are filled in from the fields above.
    pub broker: BrokerConfig,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is inconsistent.
    #[error("invalid node configuration: {0}")]
    InvalidConfig(String),
    /// The data directory is unusable or belongs to another cluster or node.
    #[error("data directory: {0}")]
    DataDir(String),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error (address in use, permission denied, …).
        source: std::io::Error,
    },
    /// The broker could not open its logs.
    #[error(transparent)]
    Broker(#[from] crate::broker::Error),
}

impl NodeConfig {
    /// Checks the configuration, with a sentence per problem.
    pub fn validate(&self) -> Result<(), NodeError> {
        let mut roles = self.roles.clone();
        roles.sort();
        roles.dedup();
        if roles != [Role::Broker, Role::Controller] {
            return Err(NodeError::InvalidConfig(format!(
                "roles {:?}: a node currently runs as broker and controller together (single-node \
                 mode); separate broker and controller processes need the controller quorum",
                self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()
            )));
        }
        if self.node_id < 0 {
            return Err(NodeError::InvalidConfig(format!(
                "node id {} must be zero or positive",
                self.node_id
            )));
        }
        Ok(())
    }
}

/// A node with its listeners bound, ready to run.
pub struct Node {
    /// The claimed data directory.
    dir: DataDir,
    /// Roles.
    roles: Vec<Role>,
    /// The broker role.
    broker: Arc<Broker>,
    /// Kafka listener.
    kafka: TcpListener,
    /// Admin listener.
    admin: Option<TcpListener>,
    /// Listener limits.
    server: ServerOptions,
    /// Where clients are told to connect.
    advertised: BrokerInfo,
}

impl Node {
    /// Claims the data directory, opens metadata and logs, and binds the listeners.
    pub async fn bind(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let dir = DataDir::claim(
            &config.data_dir,
            config.node_id,
            config.cluster_id.as_deref(),
        )?;
        let kafka = TcpListener::bind(config.kafka_listen)
            .await
            .map_err(|source| NodeError::Bind {
                addr: config.kafka_listen,
                source,
            })?;
        let kafka_addr = kafka.local_addr().map_err(|source| NodeError::Bind {
            addr: config.kafka_listen,
            source,
        })?;
        let admin = match config.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| NodeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let advertised = BrokerInfo {
            node_id: config.node_id,
            host: config
                .advertised_host
                .clone()
                .unwrap_or_else(|| advertised_ip(kafka_addr)),
            port: kafka_addr.port(),
            rack: config.rack.clone(),
        };
        let mut broker_config = config.broker.clone();
        broker_config.node_id = config.node_id;
        broker_config.log_dir = dir.logs_dir();
        let authority = LocalAuthority::open(LocalOptions {
            path: dir.metadata_image_path(),
            cluster_id: dir.cluster_id().to_string(),
            broker: advertised.clone(),
            defaults: broker_config.topic_defaults.clone(),
        })
        .map_err(|e| NodeError::DataDir(e.to_string()))?;
        let broker = Broker::open(broker_config, Arc::new(authority))?;
        Ok(Node {
            dir,
            roles: config.roles,
            broker,
            kafka,
            admin,
            server: config.server,
            advertised,
        })
    }

    /// The bound Kafka address.
    pub fn kafka_addr(&self) -> SocketAddr {
        self.kafka
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound admin address, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// `host:port` clients use.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.advertised.host, self.advertised.port)
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        self.dir.cluster_id()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// and flushes every partition log.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let broker = self.broker.clone();
        let follower = tokio::spawn(
            broker
                .clone()
                .follow_metadata(cancel.clone().cancelled_owned()),
        );
        let maintenance = tokio::spawn(
            broker
                .clone()
                .run_log_maintenance(cancel.clone().cancelled_owned()),
        );
        let admin = self.admin.map(|listener| {
            let status = admin::StatusSource {
                broker: broker.clone(),
                roles: self.roles.clone(),
                advertised: format!("{}:{}", self.advertised.host, self.advertised.port),
                started,
            };
            tokio::spawn(admin::serve(
                listener,
                status,
                cancel.clone().cancelled_owned(),
            ))
        });
        let kafka = tokio::spawn(server::run(
            self.kafka,
            broker.clone(),
            self.server,
            cancel.clone().cancelled_owned(),
        ));
        shutdown.await;
        tracing::info!("shutting down");
        cancel.cancel();
        let _ = kafka.await;
        let _ = follower.await;
        let _ = maintenance.await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        broker.flush_all();
        drop(self.dir);
    }
}

/// The IP to advertise for a listen address: itself, or loopback for a wildcard address.
fn advertised_ip(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    }
}
