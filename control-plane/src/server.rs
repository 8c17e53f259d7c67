//! [`Server`]: one control-plane process — a voter of the quorum holding the store, the public
//! gRPC API ([`crate::api`]) with its REST/JSON face ([`crate::rest`]) and the web console
//! ([`crate::console`]) on one port, and a peer listener on another.
//!
//! ```text
//! public port (--listen, default 7070)        bearer tokens; no client certificate
//!   ClusterService, ConfigurationService, OperationService, HostService, REST, console,
//!   EnrollmentService (an agent's join token -> its host certificate)
//! peer port (--peer-listen, default 7071)     mutual TLS only: a certificate of this
//!                                             control plane's CA, checked per method
//!   ferry.quorum.v1.Raft                      Identity::ControlPlane of a member of this store
//!   ferry.controlplane.v1.AgentService        Identity::Host (and only for that host)
//! ```
//!
//! The public port never serves `ferry.quorum.v1`: a raft message or a proposal sent there
//! finds no route. On the peer port a client without a certificate of this CA fails the TLS
//! handshake, and a certificate of the wrong kind is refused with PERMISSION_DENIED before any
//! handler runs. Where the CA and this member's certificate come from is [`crate::pki`].
//!
//! A control plane runs alone (one voter, the default) or as one of three for high
//! availability ([`ServerOptions::peers`]): every member serves the whole API (a follower
//! forwards writes to the leader and answers reads with ReadIndex), and only the leader
//! reconciles.
//!
//! The binary parses its configuration into [`ServerOptions`]; this module takes them typed.
//! The store lives in `<data_dir>/store`, so a restart on the same directory finds the same
//! clusters, operations and hosts.
//!
//! Host agents enroll on the public port ([`crate::api::enroll`]), then register, pull their
//! assignments and report through `AgentService` ([`crate::api::agent`]) on the peer port.
//!
//! The [`Reconciler`] runs beside the API on the same store, acting only while this process
//! leads the store, and stops with the server.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_identity::{CONTROL_PLANE_SERVER_NAME, Identity, Policy};
use ferry_quorum::{Quorum, QuorumHandle, RaftId};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::Routes;

use crate::api::{Api, ApiConfig};
use crate::auth::TokenIssuer;
use crate::enroll::JoinTokens;
use crate::model::TimestampMs;
use crate::pki::{MemberPki, PeerTls};
use crate::reconcile::{Reconciler, ReconcilerOptions};
use crate::store::quorum::system_now_ms;
use crate::store::state::{Command, Query, Response, State};
use crate::store::{QuorumStore, Store};
use crate::{Error, Result};

/// The issuer (`iss`) of the tokens a control plane mints and accepts.
pub const ISSUER: &str = "ferry-control-plane";
/// The audience (`aud`) of the tokens a control plane mints and accepts.
pub const AUDIENCE: &str = "ferry-api";
/// The raft id of a control plane running alone.
pub const RAFT_ID: RaftId = 1;
/// Subdirectory of the data directory holding the store's raft log and snapshots.
pub const STORE_DIR: &str = "store";
/// How long [`Server::bind`] waits for the single voter to elect itself.
pub const LEADER_WAIT: Duration = Duration::from_secs(30);
/// Pause between checks while waiting for the voter to become leader.
const LEADER_POLL: Duration = Duration::from_millis(20);

/// How a control-plane server runs. Its `Debug` output leaves the token secret out.
#[derive(Clone)]
pub struct ServerOptions {
    /// Directory for everything the control plane persists (the store is in
    /// `<data_dir>/store`).
    pub data_dir: PathBuf,
    /// Address of the public listener: the API, REST, the console, enrollment (port 0 picks
    /// a free port).
    pub listen: SocketAddr,
    /// Address of the peer listener: raft between members and `AgentService`, mutual TLS
    /// only (port 0 picks a free port).
    pub peer_listen: SocketAddr,
    /// Where the CA and this member's peer certificate come from.
    pub tls: PeerTls,
    /// The directory of a generated CA ([`PeerTls::Generated`]); `<data_dir>/ca` by default.
    pub ca_dir: Option<PathBuf>,
    /// The HS256 secret tokens are signed with; at least
    /// [`crate::auth::SECRET_LEN_MIN`] bytes.
    pub token_secret: Vec<u8>,
    /// The tokens' issuer; [`ISSUER`] unless tokens come from elsewhere.
    pub issuer: String,
    /// The tokens' audience; [`AUDIENCE`] unless tokens come from elsewhere.
    pub audience: String,
    /// What the API needs to know about the deployment.
    pub api: ApiConfig,
    /// How the reconciler runs.
    pub reconciler: ReconcilerOptions,
    /// Every member's raft id (a control-plane member's own number, not a Kafka node id) and
    /// the `host:port` of its *peer* listener (this one included), for a replicated control plane; empty to run alone as [`RAFT_ID`] on the
    /// peer listener's address. Fixed when the store's directory is first created.
    pub peers: BTreeMap<RaftId, String>,
    /// This member's raft id among `peers`.
    pub raft_id: RaftId,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let ServerOptions {
            data_dir,
            listen,
            token_secret: _,
            issuer,
            audience,
            api,
            reconciler,
            peers,
            raft_id,
            peer_listen,
            tls,
            ca_dir,
        } = self;
        f.debug_struct("ServerOptions")
            .field("data_dir", data_dir)
            .field("listen", listen)
            .field("token_secret", &"<redacted>")
            .field("issuer", issuer)
            .field("audience", audience)
            .field("api", api)
            .field("reconciler", reconciler)
            .field("peers", peers)
            .field("raft_id", raft_id)
            .field("peer_listen", peer_listen)
            .field("tls", tls)
            .field("ca_dir", ca_dir)
            .finish()
    }
}

impl ServerOptions {
    /// Options for `data_dir` and `listen` with the given secret and every other field at its
    /// default ([`ISSUER`], [`AUDIENCE`], [`ApiConfig::default`], a generated CA, the peer
    /// listener on the same address as `listen` with a free port).
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr, token_secret: Vec<u8>) -> Self {
        ServerOptions {
            data_dir: data_dir.into(),
            listen,
            peer_listen: SocketAddr::new(listen.ip(), 0),
            tls: PeerTls::Generated,
            ca_dir: None,
            token_secret,
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            api: ApiConfig::default(),
            reconciler: ReconcilerOptions::default(),
            peers: BTreeMap::new(),
            raft_id: RAFT_ID,
        }
    }
}

/// A running control plane: the store's quorum, the public API and the peer listener.
pub struct Server {
    /// The quorum member under the store (its task also serves the peer listener).
    quorum: QuorumHandle,
    /// The public API server, stopped through `stop_api`.
    api: JoinHandle<()>,
    /// Stops the public API server.
    stop_api: tokio::sync::watch::Sender<bool>,
    /// The address the peer listener is bound to.
    peer_addr: SocketAddr,
    /// The reconciler task, stopped by cancelling `stop_reconciler`.
    reconciler: tokio::task::JoinHandle<()>,
    /// Stops the reconciler.
    stop_reconciler: tokio::sync::watch::Sender<bool>,
    /// The address the listener is bound to.
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listener, opens (or bootstraps) the store in `<data_dir>/store`, starts the
    /// store's voter serving the API services next to raft, and waits until the quorum has a
    /// leader, so the API answers as soon as this returns.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a secret that is too short, [`Error::Io`] when the directory
    /// or the listener cannot be opened, [`Error::Unavailable`] when the voter does not become
    /// leader within [`LEADER_WAIT`].
    pub async fn bind(options: ServerOptions) -> Result<Server> {
        let issuer = TokenIssuer::new(&options.token_secret, &options.issuer, &options.audience)
            .map_err(|err| Error::InvalidInput(format!("token secret: {err}")))?;
        let join_tokens = JoinTokens::new(&options.token_secret, &options.issuer)
            .map_err(|err| Error::InvalidInput(format!("token secret: {err}")))?;
        let dir = options.data_dir.join(STORE_DIR);
        // The data directory and the store's are the control plane's user's only (the raft
        // log holds every tenant's state); the store's files are created 0600 by its disk.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(ferry_quorum::disk::DIR_MODE)
            .create(&dir)
            .map_err(|err| Error::Io(format!("creating {}: {err}", dir.display())))?;
        let bind = |addr: SocketAddr| async move {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|err| Error::Io(format!("binding {addr}: {err}")))?;
            let local = listener
                .local_addr()
                .map_err(|err| Error::Io(format!("listener address: {err}")))?;
            Ok::<_, Error>((listener, local))
        };
        let (listener, local_addr) = bind(options.listen).await?;
        let (peer_listener, peer_addr) = bind(options.peer_listen).await?;

        let (raft_id, peers) = if options.peers.is_empty() {
            (RAFT_ID, BTreeMap::from([(RAFT_ID, peer_addr.to_string())]))
        } else {
            if !options.peers.contains_key(&options.raft_id) {
                return Err(Error::InvalidInput(format!(
                    "raft id {} is not among the peers {:?}",
                    options.raft_id, options.peers
                )));
            }
            if matches!(options.tls, PeerTls::Generated) {
                return Err(Error::InvalidInput(
                    "a replicated control plane needs each member's certificate from the \
                     operator's CA (`ferry cert ca`, `ferry cert issue --control-plane N`)"
                        .into(),
                ));
            }
            (options.raft_id, options.peers.clone())
        };
        let ca_dir = options
            .ca_dir
            .clone()
            .unwrap_or_else(|| options.data_dir.join(crate::pki::CA_DIR));
        let pki = MemberPki::prepare(
            &options.tls,
            &ca_dir,
            raft_id,
            &[peer_addr.ip().to_string()],
        )?;

        // The store is built over a handle that exists only once the quorum started, but the
        // services must be given to the quorum to start it: they share a cell, set below.
        let store = Arc::new(LateStore::default());
        let console = crate::console::router(&options.api);
        let api = Api::new(Arc::clone(&store), issuer, options.api);
        // Agents are told every member's peer listener, so that they can fail over.
        let other_members = peers
            .iter()
            .filter(|(id, _)| **id != raft_id)
            .map(|(_, address)| address.clone())
            .collect();
        api.enable_enrollment(join_tokens, peer_addr, other_members);
        let grpc = Routes::new(api.cluster_service())
            .add_service(api.configuration_service())
            .add_service(api.operation_service())
            .add_service(api.host_service())
            .add_service(api.enrollment_service());
        // The console's routes sit beside gRPC's; REST answers every other path.
        let public = crate::rest::with_rest(api.clone(), grpc)
            .into_axum_router()
            .merge(console);
        let public = Routes::from(public);

        // The peer listener: the quorum serves raft there to this store's members (its
        // `voter_of` maps a member's certificate to its raft id), and the agents' service
        // next to it, for host certificates only.
        let quorum_options = ferry_quorum::Options {
            id: raft_id,
            peers,
            tls: Some(ferry_quorum::TlsOptions {
                material: pki.member.clone(),
                server_name: CONTROL_PLANE_SERVER_NAME.into(),
                voter_of: Arc::new(|peer: &Identity| match peer {
                    Identity::ControlPlane { member } => Some(*member),
                    _ => None,
                }),
                policy: agent_policy(),
            }),
            ..Default::default()
        };
        let quorum = Quorum::start_with_services(
            quorum_options,
            State::new(),
            &dir,
            peer_listener,
            Routes::new(api.agent_service()),
        )
        .await?;
        store
            .0
            .set(QuorumStore::new(quorum.clone()))
            .unwrap_or_else(|_| unreachable!("set once, here"));
        let (stop_api, api_stopped) = tokio::sync::watch::channel(false);
        let api_task = tokio::spawn(serve_public(public, listener, api_stopped));

        let (stop_reconciler, mut stopped) = tokio::sync::watch::channel(false);
        let reconciler = Reconciler::new(store, quorum.clone(), options.reconciler);
        let reconciler = tokio::spawn(reconciler.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        let server = Server {
            quorum,
            api: api_task,
            stop_api,
            peer_addr,
            reconciler,
            stop_reconciler,
            local_addr,
        };
        if let Err(err) = server.wait_for_leader().await {
            server.stop().await;
            return Err(err);
        }
        if let Some(ca) = &pki.ca
            && let Err(err) = server.install_ca(ca).await
        {
            server.stop().await;
            return Err(err);
        }
        Ok(server)
    }

    /// Puts the CA this member holds into the store (a no-op when it is there already),
    /// retrying while the store has no leader.
    async fn install_ca(&self, ca: &ferry_identity::CertificateAuthority) -> Result<()> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.store().install_ca(crate::pki::stored(ca)).await {
                Ok(()) => return Ok(()),
                Err(Error::Conflict(conflict)) => {
                    return Err(Error::InvalidInput(format!(
                        "the CA given to this member is not the store's: {conflict}"
                    )));
                }
                Err(err) if tokio::time::Instant::now() >= deadline => return Err(err),
                Err(_) => tokio::time::sleep(LEADER_POLL).await,
            }
        }
    }

    /// The address the public API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the peer listener (raft, `AgentService`; mutual TLS) listens on.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The store the API serves, for in-process users (reconcilers, tests that write host
    /// assignments directly).
    pub fn store(&self) -> QuorumStore {
        QuorumStore::new(self.quorum.clone())
    }

    /// Serves until `shutdown` resolves, then stops the quorum and its server. Everything
    /// acknowledged is on disk.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Stops the reconciler, the public API, then the quorum and the peer listener.
    async fn stop(self) {
        let _ = self.stop_reconciler.send(true);
        let _ = self.reconciler.await;
        let _ = self.stop_api.send(true);
        let _ = self.api.await;
        self.quorum.shutdown().await;
    }

    /// Waits until the quorum has a leader (a lone voter elects itself after an election
    /// timeout).
    async fn wait_for_leader(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            if self.quorum.status().await?.leader.is_some() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "the store's quorum elected no leader within {LEADER_WAIT:?}"
                )));
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }
}

/// Who may call the agents' service on the peer listener: host certificates only (each
/// handler then scopes the call to that host). Raft's own rule (members of this store only) is
/// the quorum's; everything else is refused.
pub fn agent_policy() -> Policy {
    Policy::new().allow("/ferry.controlplane.v1.AgentService/", |peer| {
        matches!(peer, Identity::Host { .. })
    })
}

/// Serves the public API (gRPC over h2c, REST and the console over HTTP/1.1 too) until
/// `stop` turns true.
async fn serve_public(
    routes: Routes,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let result = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(%err, "the API server failed");
    }
}

/// A [`QuorumStore`] set once the quorum has started; requests in the moment before are
/// UNAVAILABLE.
#[derive(Default)]
struct LateStore(std::sync::OnceLock<QuorumStore>);

impl LateStore {
    /// The store, once set.
    fn get(&self) -> Result<&QuorumStore> {
        self.0
            .get()
            .ok_or_else(|| Error::Unavailable("the control plane is starting".into()))
    }
}

impl Store for LateStore {
    async fn execute(&self, command: Command) -> Result<Response> {
        self.get()?.execute(command).await
    }

    async fn query(&self, query: Query) -> Result<Response> {
        self.get()?.query(query).await
    }

    fn now_ms(&self) -> TimestampMs {
        system_now_ms()
    }
}
