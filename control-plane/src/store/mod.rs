//! The store: the only place the control plane persists anything.
//!
//! Clusters (spec, status, version), operations, hosts and their assignments live in one
//! deterministic state machine, [`state::State`]. Two implementations of [`Store`] run it:
//!
//! - [`memory::MemoryStore`]: the state behind a mutex, for tests and reconciler unit tests.
//! - [`quorum::QuorumStore`]: the state replicated by `ferry-quorum` (1 voter in dev, 3 for high
//!   availability), durable across restarts; commands are proposed through the raft log and
//!   reads are linearizable.
//!
//! Both go through the same bytes ([`state::Command`] and [`state::Query`] as JSON), so a test
//! against the memory store exercises exactly what the quorum applies.
//!
//! # The trait
//!
//! Implementations provide three things: [`Store::execute`] (apply a command),
//! [`Store::query`] (answer a query) and [`Store::now_ms`] (the proposer's clock, carried in
//! commands because the state machine never reads one). Everything else is a typed provided
//! method the API and reconcilers call. Those go through [`Store::run`] and [`Store::ask`],
//! which take one of the request structs of [`command`] and return the type it names
//! ([`Request::Output`]), so no caller matches on a [`Response`].
//!
//! Methods fall into two groups:
//!
//! - **Tenant-scoped** (every method taking a `tenant`): a resource of another tenant is
//!   [`Error::NotFound`], exactly like a missing one. The API passes the caller's tenant;
//!   reconcilers pass the resource's own tenant.
//! - **Operator/reconciler-wide**: [`Store::active_operations`] (what to resume after a restart
//!   or a leader change) and the host methods (hosts serve every tenant).
//!
//! # Rules the store enforces
//!
//! - A cluster's name is unique within its tenant ([`Conflict::NameTaken`]); other tenants may
//!   reuse it.
//! - A create with a `client_request_id` already used returns the same cluster and operation if
//!   the spec is the same, else [`Conflict::RequestIdReused`].
//! - One operation at a time per cluster ([`Conflict::OperationInProgress`]).
//! - Updates with an expected version are refused when the resource moved on
//!   ([`Conflict::VersionMismatch`]).
//! - A tenant holds at most so many clusters, configurations and revisions, and each cluster
//!   keeps at most so many finished operations ([`crate::model::limits`]); over a limit is
//!   [`Error::ResourceExhausted`].
//! - A configuration's name is unique within its tenant; a cluster may reference only a
//!   revision that exists in its own tenant (else [`Error::NotFound`]); a configuration a
//!   cluster references (desired or running) cannot be deleted
//!   ([`Conflict::ConfigurationInUse`]).
//!
//! Spec validation (field rules, zones with hosts, known versions) is the API's job, before
//! the store; the store only checks what needs its state.
//!
//! # Errors
//!
//! [`Error::Unavailable`] (nothing changed; retry) and [`Error::Indeterminate`] (maybe changed)
//! come only from the quorum store. A create with a `client_request_id` is safe to retry after
//! either.

pub mod command;
pub mod memory;
pub mod quorum;
pub mod state;

use std::future::Future;

pub use command::{Answer, Command, Query, Request, Response, TenantUsage};
pub use memory::MemoryStore;
pub use quorum::QuorumStore;
pub use state::State;

use command::{
    ActiveOperations, BeginOperation, CreateCluster, CreateConfiguration, DeleteConfiguration,
    GetCa, GetCluster, GetConfiguration, GetConfigurationSummary, GetHost, GetOperation,
    GetRevision, GetTenantUsage, InstallCa, ListClusters, ListConfigurations, ListHosts,
    ListOperations, ListRevisions, RegisterHost, RemoveCluster, ReportHost, SetAssignments,
    SetHostHealth, SpendJoinToken, UpdateClusterStatus, UpdateConfiguration, UpdateOperation,
    UpdateTags,
};

pub use crate::error::{Conflict, Error, Result};
use crate::model::ca::StoredCa;
use crate::model::{
    Cluster, ClusterStatus, Configuration, ConfigurationSummary, Host, HostAssignment, HostHealth,
    HostRegistration, NodeReport, Operation, OperationType, OperationUpdate, Page, PageRequest,
    Revision, RevisionInfo, TimestampMs,
};
use crate::spec::ClusterSpec;

/// The control-plane store. See the module docs.
pub trait Store: Send + Sync + 'static {
    /// Applies `command` and returns its outcome.
    fn execute(&self, command: Command) -> impl Future<Output = Result<Response>> + Send;

    /// Answers `query` linearizably.
    fn query(&self, query: Query) -> impl Future<Output = Result<Response>> + Send;

    /// The current time, put into commands by the proposer.
    fn now_ms(&self) -> TimestampMs;

    /// Applies `command` and returns its answer, of the type the command names.
    fn run<C>(&self, command: C) -> impl Future<Output = Result<C::Output>> + Send
    where
        C: Request + Into<Command>,
    {
        let command = command.into();
        async move { Ok(command::answer::<C>(self.execute(command).await?)) }
    }

    /// Answers `query` linearizably, with the type the query names.
    fn ask<Q>(&self, query: Q) -> impl Future<Output = Result<Q::Output>> + Send
    where
        Q: Request + Into<Query>,
    {
        let query = query.into();
        async move { Ok(command::answer::<Q>(self.query(query).await?)) }
    }

    /// Creates a cluster in CREATING with its CREATE operation (PENDING). With a
    /// `client_request_id`, a retry with the same spec returns the same cluster and operation.
    ///
    /// Errors: [`Conflict::NameTaken`], [`Conflict::RequestIdReused`], [`Error::InvalidInput`]
    /// (empty tenant or name, bad request id), [`Error::ResourceExhausted`] (the tenant has
    /// too many clusters).
    fn create_cluster(
        &self,
        tenant: &str,
        spec: ClusterSpec,
        client_request_id: Option<String>,
    ) -> impl Future<Output = Result<(Cluster, Operation)>> + Send {
        self.run(CreateCluster {
            tenant: tenant.to_owned(),
            spec,
            client_request_id,
            now_ms: self.now_ms(),
        })
    }

    /// The tenant's cluster `cluster_id`. Errors: [`Error::NotFound`].
    fn get_cluster(
        &self,
        tenant: &str,
        cluster_id: &str,
    ) -> impl Future<Output = Result<Cluster>> + Send {
        self.ask(GetCluster {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
        })
    }

    /// One page of the tenant's clusters whose name starts with `name_prefix`, sorted by name.
    fn list_clusters(
        &self,
        tenant: &str,
        name_prefix: &str,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Cluster>>> + Send {
        self.ask(ListClusters {
            tenant: tenant.to_owned(),
            name_prefix: name_prefix.to_owned(),
            page,
        })
    }

    /// Starts an operation of `kind` (not CREATE) on the cluster and puts the cluster in that
    /// operation's state. Errors: [`Error::NotFound`], [`Conflict::OperationInProgress`],
    /// [`Conflict::VersionMismatch`], [`Conflict::WrongState`] (a cluster being deleted takes
    /// only DELETE).
    fn begin_operation(
        &self,
        tenant: &str,
        cluster_id: &str,
        kind: OperationType,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<(Cluster, Operation)>> + Send {
        self.run(BeginOperation {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
            kind,
            expected_version,
            spec: None,
            now_ms: self.now_ms(),
        })
    }

    /// Starts an update operation of `kind` that brings the cluster to `spec`, changing the
    /// desired spec in the same step. Errors as [`Store::begin_operation`], plus
    /// [`Conflict::WrongState`] unless the cluster is ACTIVE and [`Error::InvalidInput`] for a
    /// new name.
    fn update_spec(
        &self,
        tenant: &str,
        cluster_id: &str,
        kind: OperationType,
        spec: ClusterSpec,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<(Cluster, Operation)>> + Send {
        self.run(BeginOperation {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
            kind,
            expected_version,
            spec: Some(spec),
            now_ms: self.now_ms(),
        })
    }

    /// Replaces the cluster's tags. Errors: [`Error::NotFound`], [`Conflict::VersionMismatch`],
    /// [`Conflict::WrongState`] (being deleted).
    fn update_tags(
        &self,
        tenant: &str,
        cluster_id: &str,
        tags: std::collections::BTreeMap<String, String>,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<Cluster>> + Send {
        self.run(UpdateTags {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
            expected_version,
            tags,
            now_ms: self.now_ms(),
        })
    }

    /// Starts deleting the cluster: [`Store::begin_operation`] with DELETE.
    fn delete_cluster(
        &self,
        tenant: &str,
        cluster_id: &str,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<(Cluster, Operation)>> + Send {
        self.begin_operation(tenant, cluster_id, OperationType::Delete, expected_version)
    }

    /// Replaces the cluster's status if it is still at `expected_version`; returns the cluster
    /// at its new version. Errors: [`Error::NotFound`], [`Conflict::VersionMismatch`].
    fn update_cluster_status(
        &self,
        tenant: &str,
        cluster_id: &str,
        expected_version: u64,
        status: ClusterStatus,
    ) -> impl Future<Output = Result<Cluster>> + Send {
        self.run(UpdateClusterStatus {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
            expected_version,
            status,
            now_ms: self.now_ms(),
        })
    }

    /// Forgets a cluster being deleted and ends its running DELETE operation as SUCCEEDED, in
    /// one step; its operations stay readable. Errors: [`Error::NotFound`],
    /// [`Conflict::WrongState`] (not DELETING, or another operation runs),
    /// [`Conflict::VersionMismatch`].
    fn remove_cluster(
        &self,
        tenant: &str,
        cluster_id: &str,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<()>> + Send {
        self.run(RemoveCluster {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
            expected_version,
            now_ms: self.now_ms(),
        })
    }

    /// The tenant's operation `operation_id`. Errors: [`Error::NotFound`].
    fn get_operation(
        &self,
        tenant: &str,
        operation_id: &str,
    ) -> impl Future<Output = Result<Operation>> + Send {
        self.ask(GetOperation {
            tenant: tenant.to_owned(),
            operation_id: operation_id.to_owned(),
        })
    }

    /// One page of the cluster's operations, newest first. Errors: [`Error::NotFound`].
    fn list_operations(
        &self,
        tenant: &str,
        cluster_id: &str,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Operation>>> + Send {
        self.ask(ListOperations {
            tenant: tenant.to_owned(),
            cluster_id: cluster_id.to_owned(),
            page,
        })
    }

    /// Records progress on an operation; SUCCEEDED or FAILED ends it and frees its cluster
    /// for the next one. Errors: [`Error::NotFound`], [`Conflict::WrongState`] (already
    /// ended), [`Error::InvalidInput`] (progress above 100, an error without FAILED or FAILED
    /// without one, back to PENDING).
    fn update_operation(
        &self,
        tenant: &str,
        operation_id: &str,
        update: OperationUpdate,
    ) -> impl Future<Output = Result<Operation>> + Send {
        self.run(UpdateOperation {
            tenant: tenant.to_owned(),
            operation_id: operation_id.to_owned(),
            update,
            now_ms: self.now_ms(),
        })
    }

    /// Every operation not yet ended, of every tenant, oldest first: what reconcilers resume
    /// after a restart or a leader change.
    fn active_operations(&self) -> impl Future<Output = Result<Vec<Operation>>> + Send {
        async move { Ok(self.ask(ActiveOperations).await?.items) }
    }

    /// Registers a host, or updates its registration (assignments stay).
    /// Errors: [`Error::InvalidInput`].
    fn register_host(
        &self,
        registration: HostRegistration,
    ) -> impl Future<Output = Result<Host>> + Send {
        self.run(RegisterHost {
            registration,
            now_ms: self.now_ms(),
        })
    }

    /// Records an agent's report: the host is HEALTHY, last seen now, with these nodes.
    /// Errors: [`Error::NotFound`].
    fn report_host(
        &self,
        host_id: &str,
        applied_generation: u64,
        nodes: Vec<NodeReport>,
    ) -> impl Future<Output = Result<Host>> + Send {
        self.run(ReportHost {
            host_id: host_id.to_owned(),
            applied_generation,
            nodes,
            now_ms: self.now_ms(),
        })
    }

    /// Sets a host's health. Errors: [`Error::NotFound`].
    fn set_host_health(
        &self,
        host_id: &str,
        health: HostHealth,
    ) -> impl Future<Output = Result<Host>> + Send {
        self.run(SetHostHealth {
            host_id: host_id.to_owned(),
            health,
        })
    }

    /// Replaces the nodes a host should run (its generation increases if they changed).
    /// Errors: [`Error::NotFound`], [`Conflict::VersionMismatch`] on `expected_generation`.
    fn set_assignments(
        &self,
        host_id: &str,
        assignments: Vec<HostAssignment>,
        expected_generation: Option<u64>,
    ) -> impl Future<Output = Result<Host>> + Send {
        self.run(SetAssignments {
            host_id: host_id.to_owned(),
            assignments,
            expected_generation,
        })
    }

    /// Stores the control plane's CA; the same CA again is a no-op. Errors:
    /// [`Conflict::WrongState`] when another CA is installed.
    fn install_ca(&self, ca: StoredCa) -> impl Future<Output = Result<()>> + Send {
        self.run(InstallCa { ca })
    }

    /// The control plane's CA, `None` before it is installed.
    fn get_ca(&self) -> impl Future<Output = Result<Option<StoredCa>>> + Send {
        self.ask(GetCa)
    }

    /// Spends the join token `token_id` (for `host_id`, valid until `expires_at_ms`). Errors:
    /// [`Conflict::WrongState`] when it was spent before or has expired.
    fn spend_join_token(
        &self,
        token_id: &str,
        host_id: &str,
        expires_at_ms: TimestampMs,
    ) -> impl Future<Output = Result<()>> + Send {
        self.run(SpendJoinToken {
            token_id: token_id.to_owned(),
            host_id: host_id.to_owned(),
            expires_at_ms,
            now_ms: self.now_ms(),
        })
    }

    /// One host. Errors: [`Error::NotFound`].
    fn get_host(&self, host_id: &str) -> impl Future<Output = Result<Host>> + Send {
        self.ask(GetHost {
            host_id: host_id.to_owned(),
        })
    }

    /// Creates a configuration with `revision` as its revision 1. Errors:
    /// [`Conflict::NameTaken`], [`Error::InvalidInput`], [`Error::ResourceExhausted`] (the
    /// tenant has too many).
    fn create_configuration(
        &self,
        tenant: &str,
        name: &str,
        kafka_versions: Vec<String>,
        revision: Revision,
    ) -> impl Future<Output = Result<Configuration>> + Send {
        self.run(CreateConfiguration {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            kafka_versions,
            revision,
            now_ms: self.now_ms(),
        })
    }

    /// Appends `revision` as the configuration's next one. Errors: [`Error::NotFound`],
    /// [`Error::ResourceExhausted`] (too many revisions).
    fn update_configuration(
        &self,
        tenant: &str,
        configuration_id: &str,
        revision: Revision,
    ) -> impl Future<Output = Result<Configuration>> + Send {
        self.run(UpdateConfiguration {
            tenant: tenant.to_owned(),
            configuration_id: configuration_id.to_owned(),
            revision,
            now_ms: self.now_ms(),
        })
    }

    /// Deletes a configuration. Errors: [`Error::NotFound`], [`Conflict::ConfigurationInUse`].
    fn delete_configuration(
        &self,
        tenant: &str,
        configuration_id: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        self.run(DeleteConfiguration {
            tenant: tenant.to_owned(),
            configuration_id: configuration_id.to_owned(),
        })
    }

    /// The tenant's configuration, with every revision. Errors: [`Error::NotFound`].
    fn get_configuration(
        &self,
        tenant: &str,
        configuration_id: &str,
    ) -> impl Future<Output = Result<Configuration>> + Send {
        self.ask(GetConfiguration {
            tenant: tenant.to_owned(),
            configuration_id: configuration_id.to_owned(),
        })
    }

    /// One page of the tenant's configurations, sorted by name, without revision properties.
    fn list_configurations(
        &self,
        tenant: &str,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<ConfigurationSummary>>> + Send {
        self.ask(ListConfigurations {
            tenant: tenant.to_owned(),
            page,
        })
    }

    /// The tenant's configuration without revision properties. Errors: [`Error::NotFound`].
    fn configuration_summary(
        &self,
        tenant: &str,
        configuration_id: &str,
    ) -> impl Future<Output = Result<ConfigurationSummary>> + Send {
        self.ask(GetConfigurationSummary {
            tenant: tenant.to_owned(),
            configuration_id: configuration_id.to_owned(),
        })
    }

    /// One page of a configuration's revisions, newest first, without their properties; the
    /// page token is the last revision number of the previous page. Errors:
    /// [`Error::NotFound`], [`Error::InvalidInput`] (a bad page token).
    fn list_revisions(
        &self,
        tenant: &str,
        configuration_id: &str,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<RevisionInfo>>> + Send {
        self.ask(ListRevisions {
            tenant: tenant.to_owned(),
            configuration_id: configuration_id.to_owned(),
            page,
        })
    }

    /// One revision of the tenant's configuration, with its properties. Errors:
    /// [`Error::NotFound`] (no such configuration or revision).
    fn get_revision(
        &self,
        tenant: &str,
        configuration_id: &str,
        revision: u64,
    ) -> impl Future<Output = Result<Revision>> + Send {
        self.ask(GetRevision {
            tenant: tenant.to_owned(),
            configuration_id: configuration_id.to_owned(),
            revision,
        })
    }

    /// How much the tenant holds, to check [`crate::model::limits`] before proposing.
    fn tenant_usage(&self, tenant: &str) -> impl Future<Output = Result<TenantUsage>> + Send {
        self.ask(GetTenantUsage {
            tenant: tenant.to_owned(),
        })
    }

    /// One page of hosts, sorted by id, with every tenant's nodes (the fleet view).
    fn list_hosts(&self, page: PageRequest) -> impl Future<Output = Result<Page<Host>>> + Send {
        self.ask(ListHosts { page, tenant: None })
    }

    /// One page of hosts, sorted by id, each showing only `tenant`'s nodes (assigned,
    /// releasing and reported): what a tenant may see of the shared hosts.
    fn list_hosts_for_tenant(
        &self,
        tenant: &str,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Host>>> + Send {
        self.ask(ListHosts {
            page,
            tenant: Some(tenant.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests;
