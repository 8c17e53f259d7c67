//! The gRPC API: `ClusterService`, `ConfigurationService`, `OperationService` and `HostService` of
//! `ferry.controlplane.v1`, over any [`Store`].
//!
//! Every call goes the same way:
//!
//! 1. **Authenticate**: the `authorization` metadata (`Bearer <jwt>`) goes to
//!    [`TokenIssuer::verify`]; a refusal is UNAUTHENTICATED with the [`AuthError`]'s sentence.
//! 2. **Authorize**: the caller's role must allow the call's [`Action`] (PERMISSION_DENIED).
//!    Every call acts in the token's tenant, never one from the request.
//! 3. **Validate** the request synchronously, collecting *every* field violation into one
//!    INVALID_ARGUMENT (message and `google.rpc.BadRequest` details).
//! 4. **Call the store**, and translate its [`Error`](crate::Error) with [`status::from_error`]
//!    (see [`status`] for the whole table, REST codes included). Another tenant's resource is
//!    NOT_FOUND, exactly like a missing one.
//!
//! CreateCluster also checks capacity before storing anything: it plans a placement
//! ([`crate::placement::plan`]) over the registered hosts and their current assignments, and refuses
//! with FAILED_PRECONDITION naming the zone (or host) that falls short. The plan is thrown away:
//! the cluster reconciler plans again when it runs the CREATE operation, and nothing is
//! reserved in between, so two creates racing for the last slots may both pass this check.
//!
//! No reconciler runs here: a created cluster stays CREATING with its operation PENDING until
//! one picks it up.
//!
//! [`Api`] implements the four service traits; serve it with [`Api::cluster_service`],
//! [`Api::configuration_service`], [`Api::operation_service`] and [`Api::host_service`].
//!
//! It also implements `AgentService` ([`agent`]), the host agents' door, served with
//! [`Api::agent_service`] on the peer listener only: callers are authenticated by their host
//! certificate, and each call is scoped to that host. Agents get that certificate from
//! `EnrollmentService` ([`enroll`], [`Api::enrollment_service`]) on the public port, with a
//! one-time join token.

pub mod agent;
mod cluster;
mod configuration;
pub mod convert;
pub mod enroll;
mod host;
mod operation;
pub mod status;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use ferry_identity::CertificateAuthority;

use ferry_proto::controlplane::v1::agent_service_server::AgentServiceServer;
use ferry_proto::controlplane::v1::cluster_service_server::ClusterServiceServer;
use ferry_proto::controlplane::v1::configuration_service_server::ConfigurationServiceServer;
use ferry_proto::controlplane::v1::enrollment_service_server::EnrollmentServiceServer;
use ferry_proto::controlplane::v1::host_service_server::HostServiceServer;
use ferry_proto::controlplane::v1::operation_service_server::OperationServiceServer;
use tonic::{Request, Status};

use crate::auth::{Action, AuthError, Principal, TokenIssuer};
use crate::enroll::JoinTokens;
use crate::model::{Host, PAGE_SIZE_MAX, PageRequest};
use crate::store::Store;

/// The Kafka versions offered when [`ApiConfig::default`] is used.
pub const KAFKA_VERSIONS_DEFAULT: [&str; 1] = ["3.9.0"];
/// Storage reserved for each controller (metadata log and snapshots) when checking capacity:
/// 1 GiB.
pub const CONTROLLER_STORAGE_BYTES_DEFAULT: u64 = 1 << 30;

/// What the API needs to know about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The Kafka versions clusters may ask for.
    pub kafka_versions: BTreeSet<String>,
    /// Storage each controller takes on its host, for the capacity check.
    pub controller_storage_bytes: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            kafka_versions: KAFKA_VERSIONS_DEFAULT.map(String::from).into(),
            controller_storage_bytes: CONTROLLER_STORAGE_BYTES_DEFAULT,
        }
    }
}

/// The API services over one store. Cheap to clone (everything is shared).
#[derive(Debug)]
pub struct Api<S: Store> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> Clone for Api<S> {
    fn clone(&self) -> Self {
        Api {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<S> {
    store: Arc<S>,
    issuer: TokenIssuer,
    config: ApiConfig,
    /// Join tokens and the peer address agents are told, once enrollment is enabled.
    enrollment: OnceLock<Enrollment>,
    /// The store's CA, read from the store on first use.
    ca: OnceLock<Arc<CertificateAuthority>>,
}

/// What enrollment needs besides the store.
#[derive(Debug)]
struct Enrollment {
    /// Verifies join tokens.
    tokens: JoinTokens,
    /// The peer listener's address, told to enrolled agents (an unspecified IP, as from
    /// `0.0.0.0`, is replaced by the address the agent reached the public port at).
    peer_address: std::net::SocketAddr,
    /// The other members' peer listeners (`host:port`, in member id order), told to enrolled
    /// agents so that they can fail over; empty for a control plane running alone.
    other_members: Vec<String>,
}

impl<S: Store> Api<S> {
    /// The API over `store`, verifying tokens with `issuer`.
    pub fn new(store: Arc<S>, issuer: TokenIssuer, config: ApiConfig) -> Self {
        Api {
            inner: Arc::new(Inner {
                store,
                issuer,
                config,
                enrollment: OnceLock::new(),
                ca: OnceLock::new(),
            }),
        }
    }

    /// Lets agents enroll with join tokens verified by `tokens`, telling them to call
    /// `AgentService` at `peer_address`, or at one of `other_members` (the other members' peer
    /// listeners, `host:port`) when this member is unreachable. Without it Enroll answers
    /// UNAVAILABLE. Set once; a second call is ignored.
    pub fn enable_enrollment(
        &self,
        tokens: JoinTokens,
        peer_address: std::net::SocketAddr,
        other_members: Vec<String>,
    ) {
        let _ = self.inner.enrollment.set(Enrollment {
            tokens,
            peer_address,
            other_members,
        });
    }

    /// `EnrollmentService`, ready to add to a tonic server (the public one).
    pub fn enrollment_service(&self) -> EnrollmentServiceServer<Self> {
        EnrollmentServiceServer::new(self.clone())
    }

    /// The store's CA, ready to issue: read from the store once, then kept (it never
    /// changes). UNAVAILABLE before it is installed.
    async fn ca(&self) -> Result<Arc<CertificateAuthority>, Status> {
        if let Some(ca) = self.inner.ca.get() {
            return Ok(Arc::clone(ca));
        }
        let stored =
            self.store().get_ca().await?.ok_or_else(|| {
                Status::unavailable("the control plane's CA is not installed yet")
            })?;
        let ca = crate::pki::from_stored(&stored).map_err(Status::from)?;
        Ok(Arc::clone(self.inner.ca.get_or_init(|| Arc::new(ca))))
    }

    /// `ClusterService`, ready to add to a tonic server.
    pub fn cluster_service(&self) -> ClusterServiceServer<Self> {
        ClusterServiceServer::new(self.clone())
    }

    /// `ConfigurationService`, ready to add to a tonic server.
    pub fn configuration_service(&self) -> ConfigurationServiceServer<Self> {
        ConfigurationServiceServer::new(self.clone())
    }

    /// `OperationService`, ready to add to a tonic server.
    pub fn operation_service(&self) -> OperationServiceServer<Self> {
        OperationServiceServer::new(self.clone())
    }

    /// `HostService`, ready to add to a tonic server.
    pub fn host_service(&self) -> HostServiceServer<Self> {
        HostServiceServer::new(self.clone())
    }

    /// `AgentService`, ready to add to a tonic server.
    pub fn agent_service(&self) -> AgentServiceServer<Self> {
        AgentServiceServer::new(self.clone())
    }

    fn store(&self) -> &S {
        &self.inner.store
    }

    /// Authenticates the request and checks that its role allows `action`.
    fn authorize<T>(&self, request: &Request<T>, action: Action) -> Result<Principal, Status> {
        let principal = self.authenticate(request)?;
        if !principal.role.allows(action) {
            return Err(status::permission_denied(format!(
                "the {} role may not {}",
                principal.role,
                action_verb(action)
            )));
        }
        Ok(principal)
    }

    /// The caller, from the `authorization` metadata.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = match request.metadata().get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                status::unauthenticated(&AuthError::Malformed(
                    "the authorization header is not ASCII".into(),
                ))
            })?),
        };
        self.inner
            .issuer
            .verify(header)
            .map_err(|err| status::unauthenticated(&err))
    }

    /// Every registered host, all pages.
    async fn all_hosts(&self) -> Result<Vec<Host>, Status> {
        let mut hosts = Vec::new();
        let mut page = PageRequest::first(PAGE_SIZE_MAX);
        loop {
            let got = self.store().list_hosts(page.clone()).await?;
            hosts.extend(got.items);
            match got.next_page_token {
                Some(token) => page.page_token = Some(token),
                None => return Ok(hosts),
            }
        }
    }
}

/// What `action` lets a caller do, for PERMISSION_DENIED messages.
fn action_verb(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Update => "update clusters",
        Action::Reboot => "reboot brokers",
        Action::Create => "create clusters or configurations",
        Action::Delete => "delete clusters or configurations",
        Action::MintToken => "mint tokens",
        Action::ReadHosts => "list hosts",
        Action::ReadFleet => "see other tenants' nodes",
    }
}

/// A list request's paging as the store takes it: an empty token is the first page.
fn page_request(page_size: u32, page_token: String) -> PageRequest {
    PageRequest {
        page_size,
        page_token: (!page_token.is_empty()).then_some(page_token),
    }
}

/// A required id field: one violation if it is empty.
fn require_id(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(status::invalid_argument(&[violation(field, "is required")]));
    }
    Ok(())
}

/// A field violation.
fn violation(field: &str, description: impl Into<String>) -> crate::spec::FieldViolation {
    crate::spec::FieldViolation {
        field: field.into(),
        description: description.into(),
    }
}
