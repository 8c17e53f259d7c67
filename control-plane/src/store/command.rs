//! What the store's state machine is asked, and what it answers, by type.
//!
//! Each change is a struct ([`CreateCluster`], [`UpdateTags`], ...) and each read too
//! ([`GetCluster`], [`ListHosts`], ...); each names the type of its answer through
//! [`Request::Output`], so [`super::Store::run`] and [`super::Store::ask`] return exactly that
//! type and no caller matches on a [`Response`].
//!
//! # Wire format
//!
//! On the raft log and between members a change travels as [`Command`], a read as [`Query`]
//! and an answer as [`Response`], each JSON (see [`super::state`]). [`Command`] and [`Query`]
//! are enums with one variant per struct, named as it, so a command is encoded as
//! `{"UpdateTags":{"tenant":...}}` exactly as when the variants held the fields themselves:
//! logs and snapshots written before these structs existed still decode. [`Response`] keeps
//! one variant per answer type; [`Answer`] converts between the two.

use std::collections::BTreeMap;

#[cfg(doc)]
use crate::error::{Conflict, Error};
use crate::model::ca::StoredCa;
use crate::model::{
    Cluster, ClusterId, ClusterStatus, Configuration, ConfigurationId, ConfigurationSummary, Host,
    HostAssignment, HostHealth, HostRegistration, NodeReport, Operation, OperationId,
    OperationType, OperationUpdate, Page, PageRequest, Revision, RevisionInfo, Tenant, TimestampMs,
};
use crate::placement::HostId;
use crate::spec::ClusterSpec;

/// A command or a query, with the type of its answer.
pub trait Request {
    /// What it answers.
    type Output: Answer;
    /// Its name, for the message of a mismatched answer.
    const NAME: &'static str;
}

/// A type a [`Request`] answers, and the [`Response`] variant that carries it on the wire.
pub trait Answer: Sized + Send {
    /// As the wire response.
    fn into_response(self) -> Response;
    /// From the wire response; the response back (boxed: it is large) if it holds another
    /// type.
    fn from_response(response: Response) -> std::result::Result<Self, Box<Response>>;
}

/// `response` as `R`'s answer. Panics on another type: the state machine answers each
/// request with its one type, so anything else is a bug.
pub fn answer<R: Request>(response: Response) -> R::Output {
    R::Output::from_response(response)
        .unwrap_or_else(|other| panic!("the store answered {} with {other:?}", R::NAME))
}

/// Implements [`Answer`] for types carried by a one-field [`Response`] variant.
macro_rules! answers {
    ($($output:ty => $variant:ident),* $(,)?) => {$(
        impl Answer for $output {
            fn into_response(self) -> Response {
                Response::$variant(self)
            }

            fn from_response(response: Response) -> std::result::Result<Self, Box<Response>> {
                match response {
                    Response::$variant(output) => Ok(output),
                    other => Err(Box::new(other)),
                }
            }
        }
    )*};
}

answers! {
    Cluster => Cluster,
    Page<Cluster> => Clusters,
    Operation => Operation,
    Page<Operation> => Operations,
    Host => Host,
    Page<Host> => Hosts,
    Configuration => Configuration,
    Page<ConfigurationSummary> => ConfigurationSummaries,
    ConfigurationSummary => ConfigurationSummary,
    Page<RevisionInfo> => Revisions,
    Revision => Revision,
    TenantUsage => Usage,
    Option<StoredCa> => Ca,
}

/// A cluster and the operation just started on it.
impl Answer for (Cluster, Operation) {
    fn into_response(self) -> Response {
        let (cluster, operation) = self;
        Response::Started { cluster, operation }
    }

    fn from_response(response: Response) -> std::result::Result<Self, Box<Response>> {
        match response {
            Response::Started { cluster, operation } => Ok((cluster, operation)),
            other => Err(Box::new(other)),
        }
    }
}

/// Nothing to say.
impl Answer for () {
    fn into_response(self) -> Response {
        Response::Done
    }

    fn from_response(response: Response) -> std::result::Result<Self, Box<Response>> {
        match response {
            Response::Done => Ok(()),
            other => Err(Box::new(other)),
        }
    }
}

/// Implements [`Request`] for each struct and wraps it in its `$wire` enum's variant.
macro_rules! requests {
    ($wire:ident { $($variant:ident($request:ident) => $output:ty),* $(,)? }) => {$(
        impl Request for $request {
            type Output = $output;
            const NAME: &'static str = stringify!($variant);
        }

        impl From<$request> for $wire {
            fn from(request: $request) -> $wire {
                $wire::$variant(request)
            }
        }
    )*};
}

requests!(Command {
    CreateCluster(CreateCluster) => (Cluster, Operation),
    BeginOperation(BeginOperation) => (Cluster, Operation),
    UpdateTags(UpdateTags) => Cluster,
    UpdateClusterStatus(UpdateClusterStatus) => Cluster,
    RemoveCluster(RemoveCluster) => (),
    UpdateOperation(UpdateOperation) => Operation,
    RegisterHost(RegisterHost) => Host,
    ReportHost(ReportHost) => Host,
    SetHostHealth(SetHostHealth) => Host,
    SetAssignments(SetAssignments) => Host,
    CreateConfiguration(CreateConfiguration) => Configuration,
    UpdateConfiguration(UpdateConfiguration) => Configuration,
    DeleteConfiguration(DeleteConfiguration) => (),
    InstallCa(InstallCa) => (),
    SpendJoinToken(SpendJoinToken) => (),
});

requests!(Query {
    GetCluster(GetCluster) => Cluster,
    ListClusters(ListClusters) => Page<Cluster>,
    GetOperation(GetOperation) => Operation,
    ListOperations(ListOperations) => Page<Operation>,
    GetHost(GetHost) => Host,
    ListHosts(ListHosts) => Page<Host>,
    GetConfiguration(GetConfiguration) => Configuration,
    ListConfigurations(ListConfigurations) => Page<ConfigurationSummary>,
    GetConfigurationSummary(GetConfigurationSummary) => ConfigurationSummary,
    ListRevisions(ListRevisions) => Page<RevisionInfo>,
    GetRevision(GetRevision) => Revision,
    TenantUsage(GetTenantUsage) => TenantUsage,
});

// The two reads without fields stay unit variants on the wire (`"ActiveOperations"`).
impl Request for ActiveOperations {
    type Output = Page<Operation>;
    const NAME: &'static str = "ActiveOperations";
}

impl From<ActiveOperations> for Query {
    fn from(_: ActiveOperations) -> Query {
        Query::ActiveOperations
    }
}

impl Request for GetCa {
    type Output = Option<StoredCa>;
    const NAME: &'static str = "GetCa";
}

impl From<GetCa> for Query {
    fn from(_: GetCa) -> Query {
        Query::GetCa
    }
}

/// A change to the store, proposed through the quorum (or applied directly by the memory store).
///
/// Every command that names a cluster or operation carries the tenant: a resource of another
/// tenant is [`Error::NotFound`]. Reconcilers, which act for every tenant, pass the resource's
/// own tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// See [`CreateCluster`].
    CreateCluster(CreateCluster),
    /// See [`BeginOperation`].
    BeginOperation(BeginOperation),
    /// See [`UpdateTags`].
    UpdateTags(UpdateTags),
    /// See [`UpdateClusterStatus`].
    UpdateClusterStatus(UpdateClusterStatus),
    /// See [`RemoveCluster`].
    RemoveCluster(RemoveCluster),
    /// See [`UpdateOperation`].
    UpdateOperation(UpdateOperation),
    /// See [`RegisterHost`].
    RegisterHost(RegisterHost),
    /// See [`ReportHost`].
    ReportHost(ReportHost),
    /// See [`SetHostHealth`].
    SetHostHealth(SetHostHealth),
    /// See [`SetAssignments`].
    SetAssignments(SetAssignments),
    /// See [`CreateConfiguration`].
    CreateConfiguration(CreateConfiguration),
    /// See [`UpdateConfiguration`].
    UpdateConfiguration(UpdateConfiguration),
    /// See [`DeleteConfiguration`].
    DeleteConfiguration(DeleteConfiguration),
    /// See [`InstallCa`].
    InstallCa(InstallCa),
    /// See [`SpendJoinToken`].
    SpendJoinToken(SpendJoinToken),
}

/// Creates a cluster in CREATING with its CREATE operation. Idempotent by
/// `client_request_id`. Responds [`Response::Started`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreateCluster {
    /// The owning tenant.
    pub tenant: Tenant,
    /// The desired cluster (already validated by the API).
    pub spec: ClusterSpec,
    /// The client's idempotency key, if any.
    pub client_request_id: Option<String>,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Starts an operation (not CREATE) on a cluster and puts the cluster in the operation's
/// state. Refused while another operation runs. Responds [`Response::Started`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BeginOperation {
    /// The cluster's tenant.
    pub tenant: Tenant,
    /// The cluster.
    pub cluster_id: ClusterId,
    /// What the operation does.
    pub kind: OperationType,
    /// If set, refused unless the cluster is at this version.
    pub expected_version: Option<u64>,
    /// The new desired spec the operation brings about (an update), set in the same step;
    /// `None` keeps the spec (delete, reboot).
    #[serde(default)]
    pub spec: Option<ClusterSpec>,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Replaces a cluster's tags (no operation: tags do not touch the nodes). Refused while
/// the cluster is being deleted. Responds [`Response::Cluster`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpdateTags {
    /// The cluster's tenant.
    pub tenant: Tenant,
    /// The cluster.
    pub cluster_id: ClusterId,
    /// If set, refused unless the cluster is at this version.
    pub expected_version: Option<u64>,
    /// The new tags.
    pub tags: BTreeMap<String, String>,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Replaces a cluster's status (state, state info, placement). Responds
/// [`Response::Cluster`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpdateClusterStatus {
    /// The cluster's tenant.
    pub tenant: Tenant,
    /// The cluster.
    pub cluster_id: ClusterId,
    /// Refused unless the cluster is at this version.
    pub expected_version: u64,
    /// The new status.
    pub status: ClusterStatus,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Forgets a cluster being deleted (DELETING, with its DELETE operation running or ended)
/// and ends a running DELETE operation as SUCCEEDED in the same step, so no crash can
/// leave a deleted cluster behind without an operation to finish it. Its operations stay
/// readable. Responds [`Response::Done`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoveCluster {
    /// The cluster's tenant.
    pub tenant: Tenant,
    /// The cluster.
    pub cluster_id: ClusterId,
    /// If set, refused unless the cluster is at this version.
    pub expected_version: Option<u64>,
    /// The proposer's clock (when the DELETE operation ends).
    #[serde(default)]
    pub now_ms: TimestampMs,
}

/// Records a reconciler's progress on an operation. Responds [`Response::Operation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpdateOperation {
    /// The operation's tenant.
    pub tenant: Tenant,
    /// The operation.
    pub operation_id: OperationId,
    /// What changes.
    pub update: OperationUpdate,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Registers a host or updates its registration (its assignments stay). Responds
/// [`Response::Host`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterHost {
    /// What the agent says about its host.
    pub registration: HostRegistration,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// An agent's report: the host is alive, and this is how its nodes are. Responds
/// [`Response::Host`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportHost {
    /// The reporting host.
    pub host_id: HostId,
    /// The assignment generation the agent applied.
    pub applied_generation: u64,
    /// Every node the agent runs or was told to run.
    pub nodes: Vec<NodeReport>,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Sets a host's health (the host reconciler marks silent hosts UNREACHABLE). Responds
/// [`Response::Host`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetHostHealth {
    /// The host.
    pub host_id: HostId,
    /// Its new health.
    pub health: HostHealth,
}

/// Replaces the nodes a host should run; bumps its generation if they changed. Responds
/// [`Response::Host`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetAssignments {
    /// The host.
    pub host_id: HostId,
    /// Every node it should run.
    pub assignments: Vec<HostAssignment>,
    /// If set, refused unless the host's generation is this.
    pub expected_generation: Option<u64>,
}

/// Creates a configuration with its revision 1 (name unique in the tenant). Responds
/// [`Response::Configuration`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreateConfiguration {
    /// The owning tenant.
    pub tenant: Tenant,
    /// Its name.
    pub name: String,
    /// The Kafka versions it is for; empty for any.
    pub kafka_versions: Vec<String>,
    /// Revision 1 (its `revision` and `created_at_ms` are set by the store).
    pub revision: Revision,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Appends the next revision to a configuration. Responds [`Response::Configuration`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpdateConfiguration {
    /// The configuration's tenant.
    pub tenant: Tenant,
    /// The configuration.
    pub configuration_id: ConfigurationId,
    /// The new revision (its `revision` and `created_at_ms` are set by the store).
    pub revision: Revision,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// Forgets a configuration no cluster references. Responds [`Response::Done`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeleteConfiguration {
    /// The configuration's tenant.
    pub tenant: Tenant,
    /// The configuration.
    pub configuration_id: ConfigurationId,
}

/// Stores the control plane's CA, once: the same CA again is a no-op, another one is
/// refused ([`Conflict::WrongState`]), so no member can swap the CA under the others.
/// Responds [`Response::Done`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallCa {
    /// The CA certificate and key.
    pub ca: StoredCa,
}

/// Spends a join token: its id is remembered until `expires_at_ms`, and a second spend
/// of the same id is refused ([`Conflict::WrongState`]). Expired ids are forgotten
/// first. Responds [`Response::Done`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpendJoinToken {
    /// The token's id (`jti`).
    pub token_id: String,
    /// The host the token enrolls (recorded for the operator).
    pub host_id: HostId,
    /// When the token expires.
    pub expires_at_ms: TimestampMs,
    /// The proposer's clock.
    pub now_ms: TimestampMs,
}

/// A read of the store, answered linearizably by the quorum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Query {
    /// See [`GetCluster`].
    GetCluster(GetCluster),
    /// See [`ListClusters`].
    ListClusters(ListClusters),
    /// See [`GetOperation`].
    GetOperation(GetOperation),
    /// See [`ListOperations`].
    ListOperations(ListOperations),
    /// See [`ActiveOperations`] (a unit variant on the wire).
    ActiveOperations,
    /// See [`GetHost`].
    GetHost(GetHost),
    /// See [`ListHosts`].
    ListHosts(ListHosts),
    /// See [`GetConfiguration`].
    GetConfiguration(GetConfiguration),
    /// See [`ListConfigurations`].
    ListConfigurations(ListConfigurations),
    /// See [`GetCa`] (a unit variant on the wire).
    GetCa,
    /// See [`GetConfigurationSummary`].
    GetConfigurationSummary(GetConfigurationSummary),
    /// See [`ListRevisions`].
    ListRevisions(ListRevisions),
    /// See [`GetRevision`].
    GetRevision(GetRevision),
    /// See [`GetTenantUsage`].
    TenantUsage(GetTenantUsage),
}

/// One cluster. Responds [`Response::Cluster`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetCluster {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The cluster.
    pub cluster_id: ClusterId,
}

/// The tenant's clusters by name. Responds [`Response::Clusters`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListClusters {
    /// The asking tenant.
    pub tenant: Tenant,
    /// Only names starting with this.
    pub name_prefix: String,
    /// Which page.
    pub page: PageRequest,
}

/// One operation. Responds [`Response::Operation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetOperation {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The operation.
    pub operation_id: OperationId,
}

/// A cluster's operations, newest first. Responds [`Response::Operations`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListOperations {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The cluster.
    pub cluster_id: ClusterId,
    /// Which page.
    pub page: PageRequest,
}

/// Every operation not yet ended, all tenants, oldest first: what the reconcilers resume
/// after a restart or a leader change. Responds [`Response::Operations`] (one page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveOperations;

/// One host. Responds [`Response::Host`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetHost {
    /// The host.
    pub host_id: HostId,
}

/// Every host by id. Responds [`Response::Hosts`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListHosts {
    /// Which page.
    pub page: PageRequest,
    /// `Some(tenant)`: each host shows only that tenant's nodes (a tenant admin's view);
    /// `None`: every tenant's nodes (the fleet view of reconcilers and service operators).
    #[serde(default)]
    pub tenant: Option<Tenant>,
}

/// One configuration with all its revisions. Responds [`Response::Configuration`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetConfiguration {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The configuration.
    pub configuration_id: ConfigurationId,
}

/// The tenant's configurations by name, without revision properties. Responds
/// [`Response::ConfigurationSummaries`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListConfigurations {
    /// The asking tenant.
    pub tenant: Tenant,
    /// Which page.
    pub page: PageRequest,
}

/// The control plane's CA. Responds [`Response::Ca`] (`None` before it is installed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCa;

/// One configuration without revision properties. Responds
/// [`Response::ConfigurationSummary`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetConfigurationSummary {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The configuration.
    pub configuration_id: ConfigurationId,
}

/// A configuration's revisions, newest first, without their properties. Responds
/// [`Response::Revisions`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListRevisions {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The configuration.
    pub configuration_id: ConfigurationId,
    /// Which page; the token is the last revision number of the previous page.
    pub page: PageRequest,
}

/// One revision with its properties. Responds [`Response::Revision`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetRevision {
    /// The asking tenant.
    pub tenant: Tenant,
    /// The configuration.
    pub configuration_id: ConfigurationId,
    /// The revision number.
    pub revision: u64,
}

/// How much the tenant holds, for checking limits before proposing. Responds
/// [`Response::Usage`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetTenantUsage {
    /// The tenant.
    pub tenant: Tenant,
}

/// How much of the store one tenant holds, counted as [`crate::model::limits`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TenantUsage {
    /// Its clusters, those being deleted included.
    pub clusters: usize,
    /// Its configurations.
    pub configurations: usize,
}

/// What a command or query answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(clippy::large_enum_variant)] // Built once per request; boxing would only add noise.
pub enum Response {
    /// A cluster and the operation just started on it.
    Started {
        /// The cluster after the change.
        cluster: Cluster,
        /// The operation.
        operation: Operation,
    },
    /// A cluster.
    Cluster(Cluster),
    /// A page of clusters.
    Clusters(Page<Cluster>),
    /// An operation.
    Operation(Operation),
    /// A page of operations.
    Operations(Page<Operation>),
    /// A host.
    Host(Host),
    /// A page of hosts.
    Hosts(Page<Host>),
    /// A configuration.
    Configuration(Configuration),
    /// A page of configurations, without revision properties.
    ConfigurationSummaries(Page<ConfigurationSummary>),
    /// A configuration without revision properties.
    ConfigurationSummary(ConfigurationSummary),
    /// A page of revisions, without their properties.
    Revisions(Page<RevisionInfo>),
    /// One revision with its properties.
    Revision(Revision),
    /// A tenant's usage.
    Usage(TenantUsage),
    /// Nothing to say.
    Done,
    /// The control plane's CA, if installed.
    Ca(Option<StoredCa>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands and queries as the log held them when each variant carried its fields
    /// itself: they decode into the structs and encode back to the same bytes.
    #[test]
    fn the_wire_form_is_the_one_of_the_field_variants() {
        let commands = [
            r#"{"UpdateTags":{"tenant":"t1","cluster_id":"cl-1","expected_version":null,"tags":{"team":"a"},"now_ms":5}}"#,
            r#"{"SetHostHealth":{"host_id":"h-a","health":"UNREACHABLE"}}"#,
            r#"{"RemoveCluster":{"tenant":"t1","cluster_id":"cl-1","expected_version":3,"now_ms":7}}"#,
        ];
        for line in commands {
            let command: Command = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&command).unwrap(), line);
        }
        // A field added later with a serde default may be missing from old entries.
        let old: Command = serde_json::from_str(
            r#"{"RemoveCluster":{"tenant":"t1","cluster_id":"cl-1","expected_version":null}}"#,
        )
        .unwrap();
        assert_eq!(
            old,
            Command::RemoveCluster(RemoveCluster {
                tenant: "t1".into(),
                cluster_id: "cl-1".into(),
                expected_version: None,
                now_ms: 0,
            })
        );
        let queries = [
            r#""ActiveOperations""#,
            r#""GetCa""#,
            r#"{"TenantUsage":{"tenant":"t1"}}"#,
            r#"{"GetHost":{"host_id":"h-a"}}"#,
        ];
        for line in queries {
            let query: Query = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&query).unwrap(), line);
        }
        assert_eq!(Query::from(ActiveOperations), Query::ActiveOperations);
    }

    /// Each answer travels as its own response variant and comes back as itself.
    #[test]
    fn answers_round_trip_through_their_response() {
        assert_eq!(answer::<RemoveCluster>(().into_response()), ());
        let usage = TenantUsage {
            clusters: 2,
            configurations: 1,
        };
        assert_eq!(answer::<GetTenantUsage>(usage.into_response()), usage);
        assert_eq!(answer::<GetCa>(Response::Ca(None)), None);
    }

    #[test]
    #[should_panic(expected = "the store answered GetCa with Done")]
    fn an_answer_of_another_type_is_a_bug() {
        answer::<GetCa>(Response::Done);
    }
}
