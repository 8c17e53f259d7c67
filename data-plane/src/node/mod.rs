//! A running `ferry node`: its roles, its data directory, its listeners.
//!
//! [`Node::bind`] does everything that can fail before serving: it claims the data directory
//! (refusing one that belongs to another cluster or node), starts the controller role, opens the
//! metadata authority and the broker (recovering every partition log), and binds the listeners,
//! so the caller learns of a bad configuration or a taken port at once. [`Node::run`] then
//! serves until shutdown; a broker asks for a controlled shutdown first and flushes every log on
//! the way out.
//!
//! # Roles and modes
//! Kafka's `process.roles`: `broker` serves clients, `controller` is a voter of the metadata
//! quorum.
//! - **Quorum mode** (`controller_quorum` set, Kafka's `controller.quorum.voters`): controllers
//!   run the [`controller::ControllerRole`]; brokers follow them through the
//!   [`crate::authority::quorum::QuorumAuthority`]. A node may be a broker, a controller, or
//!   both (combined mode). This is the production shape: 3 or 5 controllers and any number
//!   of brokers.
//! - **Single-node mode** (no quorum): one combined node is its own metadata authority
//!   ([`crate::authority::local::LocalAuthority`]), for development and tests.
//!
//! # Authentication
//! In quorum mode every node has peers, so it must be given its TLS material
//! ([`NodeConfig::tls`]): the controller listener serves only over mutual TLS, and brokers
//! dial controllers with their node certificate (see [`controller`] for who may call what).
//! The certificate must name this node of this cluster with the roles it runs; a node without
//! material, or with someone else's, refuses to start. A single-node-mode node has no internal
//! listener and needs no certificate.
//!
//! # Data directory
//! ```text
//! <data_dir>/meta.properties        cluster.id, node.id (who owns this directory)
//! <data_dir>/metadata/image.json    the metadata image the broker serves from
//! <data_dir>/quorum/                the controller's raft log and snapshots (controllers)
//! <data_dir>/logs/<topic>-<n>/      one directory per partition (see crate::log)
//! ```

mod admin;
pub mod controller;
mod dir;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_identity::{Identity, TlsMaterial};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::authority::Authority;
use crate::authority::local::{LocalAuthority, LocalOptions};
use crate::authority::quorum::{QuorumAuthority, QuorumAuthorityOptions};
use crate::broker::{Broker, BrokerConfig};
use crate::controller::Limits;
use crate::metadata::{BrokerInfo, NodeId};
use crate::metrics::Registry;
use crate::metrics::broker::{
    BrokerMetrics, BrokerStateSources, register_broker_state, register_partition_gauges,
};
use crate::server::{self, ServerOptions};
use controller::{ControllerOptions, ControllerRole};
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
    /// The controller quorum (node id → `host:port` of each controller listener); empty for
    /// single-node mode.
    pub controller_quorum: BTreeMap<NodeId, String>,
    /// Address the controller listener binds (controllers in quorum mode).
    pub controller_listen: Option<SocketAddr>,
    /// `broker.session.timeout.ms`, enforced by the active controller.
    pub session_timeout: Duration,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// This node's CA, certificate and key: required in quorum mode, unused in single-node
    /// mode. The certificate must be [`ferry_identity::Identity::Node`] for `cluster_id` and
    /// `node_id`, with (at least) the roles in `roles`.
    pub tls: Option<TlsMaterial>,
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
        let invalid = |why: String| Err(NodeError::InvalidConfig(why));
        let mut roles = self.roles.clone();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return invalid("a node needs at least one role: broker, controller".into());
        }
        if self.node_id < 0 {
            return invalid(format!("node id {} must be zero or positive", self.node_id));
        }
        if self.controller_quorum.is_empty() {
            if roles != [Role::Broker, Role::Controller] {
                return invalid(
                    "without a controller quorum a node runs alone as broker and controller; \
                     give --controller-quorum to run separate brokers and controllers"
                        .into(),
                );
            }
            return Ok(());
        }
        if self.cluster_id.is_none() {
            return invalid("nodes of a quorum must be given the cluster id they share".into());
        }
        if ![1, 3, 5].contains(&self.controller_quorum.len()) {
            return invalid(format!(
                "the controller quorum has {} voters; it must have 1, 3 or 5",
                self.controller_quorum.len()
            ));
        }
        self.validate_tls(&roles)?;
        let is_voter = self.controller_quorum.contains_key(&self.node_id);
        match (roles.contains(&Role::Controller), is_voter) {
            (true, false) => invalid(format!(
                "node {} has the controller role but is not in the controller quorum",
                self.node_id
            )),
            (false, true) => invalid(format!(
                "node {} is in the controller quorum but lacks the controller role",
                self.node_id
            )),
            (true, true) if self.controller_listen.is_none() => {
                invalid("a controller needs a controller listener address".into())
            }
            _ => Ok(()),
        }
    }
}

impl NodeConfig {
    /// Checks that a node of a quorum has TLS material naming it (plaintext peers are refused,
    /// never silently accepted).
    fn validate_tls(&self, roles: &[Role]) -> Result<(), NodeError> {
        let Some(material) = &self.tls else {
            return Err(NodeError::InvalidConfig(
                "nodes of a quorum talk to each other over mutual TLS: give the node its CA, \
                 certificate and key (ferry node --tls-ca --tls-cert --tls-key; \
                 ferry cert issue makes them)"
                    .into(),
            ));
        };
        material
            .validate()
            .map_err(|e| NodeError::InvalidConfig(format!("TLS material: {e}")))?;
        let identity = material
            .identity()
            .map_err(|e| NodeError::InvalidConfig(format!("TLS certificate: {e}")))?;
        let cluster_id = self.cluster_id.as_deref().unwrap_or_default();
        let ok = match &identity {
            Identity::Node {
                cluster_id: c,
                node_id,
                roles: granted,
            } => {
                c == cluster_id
                    && *node_id == self.node_id
                    && (!roles.contains(&Role::Broker) || granted.broker)
                    && (!roles.contains(&Role::Controller) || granted.controller)
            }
            _ => false,
        };
        if !ok {
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return Err(NodeError::InvalidConfig(format!(
                "the TLS certificate is for {identity}, not for node {} ({}) of cluster \
                 {cluster_id}",
                self.node_id,
                roles.join(",")
            )));
        }
        Ok(())
    }
}

/// The broker role of a bound node.
struct BrokerRole {
    /// The broker.
    broker: Arc<Broker>,
    /// Kafka listener.
    kafka: TcpListener,
    /// Where clients are told to connect.
    advertised: BrokerInfo,
    /// The quorum-backed authority, in quorum mode.
    quorum: Option<Arc<QuorumAuthority>>,
}

/// A node with its listeners bound, ready to run.
pub struct Node {
    /// The claimed data directory.
    dir: DataDir,
    /// Roles.
    roles: Vec<Role>,
    /// The broker role, if the node has it.
    broker: Option<BrokerRole>,
    /// The controller role, in quorum mode.
    controller: Option<ControllerRole>,
    /// Admin listener.
    admin: Option<TcpListener>,
    /// Listener limits.
    server: ServerOptions,
    /// What the admin listener serves at `/metrics`.
    metrics: Arc<Registry>,
}

impl Node {
    /// Claims the data directory, starts the controller role, opens metadata and logs, and
    /// binds the listeners.
    pub async fn bind(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let dir = DataDir::claim(
            &config.data_dir,
            config.node_id,
            config.cluster_id.as_deref(),
        )?;
        let admin = match config.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let controller = match config.controller_listen {
            Some(addr)
                if config.roles.contains(&Role::Controller)
                    && !config.controller_quorum.is_empty() =>
            {
                Some(start_controller(&config, &dir, bind(addr).await?).await?)
            }
            _ => None,
        };
        let mut metrics = ferry_telemetry::metrics::registry();
        if let Some(controller) = &controller {
            crate::metrics::controller::register(
                &mut metrics,
                controller.quorum().metrics(),
                controller.fences(),
                Arc::new(controller.clone()),
            );
        }
        let broker = if config.roles.contains(&Role::Broker) {
            Some(open_broker(&config, &dir, &mut metrics).await?)
        } else {
            None
        };
        Ok(Node {
            dir,
            roles: config.roles,
            broker,
            controller,
            admin,
            metrics: Arc::new(metrics),
            // The listener's connection limits are broker configs by Kafka name (so
            // DescribeConfigs shows them); the broker config is their one source.
            server: ServerOptions {
                connections_max_idle: config.broker.connections_max_idle,
                max_connections_per_ip: config.broker.max_connections_per_ip,
                ..config.server
            },
        })
    }

    /// The bound Kafka address (brokers).
    pub fn kafka_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(|b| {
            b.kafka
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    /// The bound admin address, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// The node's metrics, as served at `/metrics` on the admin listener.
    pub fn metrics(&self) -> &Arc<Registry> {
        &self.metrics
    }

    /// The bound controller address (controllers in quorum mode).
    pub fn controller_addr(&self) -> Option<SocketAddr> {
        self.controller.as_ref().map(|c| c.quorum().local_addr())
    }

    /// `host:port` clients use (brokers).
    pub fn bootstrap(&self) -> Option<String> {
        self.broker
            .as_ref()
            .map(|b| format!("{}:{}", b.advertised.host, b.advertised.port))
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        self.dir.cluster_id()
    }

    /// Serves until `shutdown` resolves. A broker in quorum mode then asks for a controlled
    /// shutdown (bounded by its session timeout) so leadership moves away; in-flight requests
    /// finish and every partition log is flushed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let mut tasks = Vec::new();
        if let Some(controller) = &self.controller {
            tasks.push(tokio::spawn(
                controller
                    .clone()
                    .run_session_checks(cancel.clone().cancelled_owned()),
            ));
        }
        let broker = self.broker.as_ref().map(|b| b.broker.clone());
        let quorum = self.broker.as_ref().and_then(|b| b.quorum.clone());
        if let Some(quorum) = &quorum {
            tasks.push(tokio::spawn(
                quorum
                    .clone()
                    .run_follower(cancel.clone().cancelled_owned()),
            ));
            tasks.push(tokio::spawn(
                quorum
                    .clone()
                    .run_image_keeper(cancel.clone().cancelled_owned()),
            ));
            tasks.push(tokio::spawn(
                quorum
                    .clone()
                    .run_heartbeats(cancel.clone().cancelled_owned()),
            ));
        }
        if let Some(role) = self.broker {
            let b = role.broker.clone();
            tasks.push(tokio::spawn(
                b.clone().follow_metadata(cancel.clone().cancelled_owned()),
            ));
            tasks.push(tokio::spawn(
                b.clone()
                    .run_log_maintenance(cancel.clone().cancelled_owned()),
            ));
            tasks.push(tokio::spawn(
                b.clone().run_replication(cancel.clone().cancelled_owned()),
            ));
            tasks.push(tokio::spawn(
                b.clone()
                    .run_group_coordinator(cancel.clone().cancelled_owned()),
            ));
            tasks.push(tokio::spawn(server::run(
                role.kafka,
                b,
                self.server.clone(),
                cancel.clone().cancelled_owned(),
            )));
        }
        if let Some(listener) = self.admin {
            let status = admin::StatusSource {
                broker: broker.clone(),
                quorum: quorum.clone(),
                controller: self.controller.clone(),
                cluster_id: self.dir.cluster_id().to_string(),
                node_id: self.dir.node_id(),
                roles: self.roles.clone(),
                started,
            };
            tasks.push(tokio::spawn(admin::serve(
                listener,
                status,
                self.metrics.clone(),
                cancel.clone().cancelled_owned(),
            )));
        }
        shutdown.await;
        tracing::info!("shutting down");
        if let Some(quorum) = &quorum {
            quorum
                .controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT)
                .await;
        }
        cancel.cancel();
        for task in tasks {
            let _ = task.await;
        }
        if let Some(controller) = &self.controller {
            controller.shutdown().await;
        }
        if let Some(broker) = broker {
            broker.flush_all();
        }
        drop(self.dir);
    }
}

/// Longest a broker waits for its controlled shutdown before stopping anyway.
pub const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}

/// Starts the controller role on `listener`.
async fn start_controller(
    config: &NodeConfig,
    dir: &DataDir,
    listener: TcpListener,
) -> Result<ControllerRole, NodeError> {
    let limits = Limits {
        topics: config.broker.topic_defaults.clone(),
        ..Limits::default()
    };
    let options = ControllerOptions {
        node_id: config.node_id,
        cluster_id: dir.cluster_id().to_string(),
        voters: config.controller_quorum.clone(),
        dir: dir.quorum_dir(),
        session_timeout: config.session_timeout,
        limits,
        quorum: ferry_quorum::Options::default(),
        tls: config
            .tls
            .clone()
            .expect("validate() requires TLS material in quorum mode"),
    };
    ControllerRole::start(options, listener)
        .await
        .map_err(|e| NodeError::DataDir(format!("controller quorum: {e}")))
}

/// Opens the broker role: its authority (local or quorum), its logs, its Kafka listener, and
/// its metrics in `metrics`.
async fn open_broker(
    config: &NodeConfig,
    dir: &DataDir,
    metrics: &mut Registry,
) -> Result<BrokerRole, NodeError> {
    let kafka = bind(config.kafka_listen).await?;
    let kafka_addr = kafka.local_addr().map_err(|source| NodeError::Bind {
        addr: config.kafka_listen,
        source,
    })?;
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
    let (authority, quorum): (Arc<dyn Authority>, _) = if config.controller_quorum.is_empty() {
        let local = LocalAuthority::open(LocalOptions {
            path: dir.metadata_image_path(),
            cluster_id: dir.cluster_id().to_string(),
            broker: advertised.clone(),
            limits: Limits {
                topics: broker_config.topic_defaults.clone(),
                ..Limits::default()
            },
        })
        .map_err(|e| NodeError::DataDir(e.to_string()))?;
        (Arc::new(local), None)
    } else {
        let quorum = QuorumAuthority::open(QuorumAuthorityOptions {
            cluster_id: dir.cluster_id().to_string(),
            broker: advertised.clone(),
            controllers: config.controller_quorum.clone(),
            image_path: dir.metadata_image_path(),
            heartbeat_interval: config.heartbeat_interval,
            tls: config
                .tls
                .clone()
                .expect("validate() requires TLS material in quorum mode"),
        })
        .map_err(NodeError::DataDir)?;
        (quorum.clone(), Some(quorum))
    };
    let limits = broker_config.metrics;
    let broker_metrics = BrokerMetrics::register(metrics, limits);
    let broker = Broker::open(broker_config, authority, Some(broker_metrics))?;
    register_partition_gauges(metrics, broker.shared_partitions(), limits);
    register_broker_state(metrics, broker_state_sources(&broker, quorum.as_ref()));
    crate::metrics::groups::register_group_gauges(metrics, &broker, Default::default());
    Ok(BrokerRole {
        broker,
        kafka,
        advertised,
        quorum,
    })
}

/// What the broker-state gauges read: the broker and its quorum authority, held weakly (a
/// scrape after they are gone reports nothing).
fn broker_state_sources(
    broker: &Arc<Broker>,
    quorum: Option<&Arc<QuorumAuthority>>,
) -> BrokerStateSources {
    let (image_of, space_of) = (Arc::downgrade(broker), Arc::downgrade(broker));
    let (offset_of, fenced_of) = (quorum.map(Arc::downgrade), quorum.map(Arc::downgrade));
    BrokerStateSources {
        metadata_offset: Box::new(move || match &offset_of {
            Some(quorum) => quorum.upgrade().map(|q| q.applied_offset() as i64),
            None => image_of.upgrade().map(|b| b.image().offset as i64),
        }),
        fenced: Box::new(move || match &fenced_of {
            Some(quorum) => quorum.upgrade().map(|q| q.broker_state().fenced),
            None => Some(false),
        }),
        log_dir_space: Box::new(move || {
            let broker = space_of.upgrade()?;
            broker.partitions().log_dir_space().ok()
        }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_identity::{CERT_VALIDITY_DEFAULT, CertificateAuthority, NodeRoles};

    /// Controller 1 of cluster `c1` in a one-voter quorum, with `tls`.
    fn controller(tls: Option<TlsMaterial>) -> NodeConfig {
        NodeConfig {
            node_id: 1,
            cluster_id: Some("c1".into()),
            roles: vec![Role::Controller],
            data_dir: "/nonexistent".into(),
            kafka_listen: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
            rack: None,
            admin_listen: None,
            server: ServerOptions::default(),
            broker: BrokerConfig::new(1, "/nonexistent".into()),
            controller_quorum: BTreeMap::from([(1, "127.0.0.1:9093".into())]),
            controller_listen: Some("127.0.0.1:9093".parse().unwrap()),
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_secs(2),
            tls,
        }
    }

    #[test]
    fn a_quorum_node_needs_a_certificate_naming_it() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let cert = |cluster: &str, node_id: i32, roles: NodeRoles| {
            let identity = Identity::Node {
                cluster_id: cluster.into(),
                node_id,
                roles,
            };
            Some(ca.issue(&identity, &[], CERT_VALIDITY_DEFAULT).unwrap())
        };
        controller(cert("c1", 1, NodeRoles::CONTROLLER))
            .validate()
            .unwrap();
        controller(cert("c1", 1, NodeRoles::COMBINED))
            .validate()
            .unwrap();
        let refused = [
            (None, "mutual TLS"),
            (cert("c2", 1, NodeRoles::CONTROLLER), "not for node 1"),
            (cert("c1", 2, NodeRoles::CONTROLLER), "not for node 1"),
            (cert("c1", 1, NodeRoles::BROKER), "not for node 1"),
        ];
        for (tls, want) in refused {
            let err = controller(tls).validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        // Someone else's key with the right certificate.
        let mut swapped = cert("c1", 1, NodeRoles::CONTROLLER).unwrap();
        swapped.key_pem = cert("c1", 2, NodeRoles::CONTROLLER).unwrap().key_pem;
        let err = controller(Some(swapped))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not belong"), "{err}");
    }
}
