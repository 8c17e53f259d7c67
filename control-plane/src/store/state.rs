//! The store's replicated state machine: [`Command`]s in, state changes, a response out.
//!
//! [`State`] holds every cluster, operation and host. It is a deterministic function of the
//! commands applied to it, in order, so every voter of the control-plane quorum reaches the same
//! state, and the memory store runs the very same code.
//!
//! [`State::execute`] and [`State::query`] have one line per command or query: each calls the
//! method of the same name, which takes the request's struct (see [`super::command`]) and
//! returns its typed answer, turned into the wire [`Response`] there.
//!
//! # Determinism
//!
//! - Ids come from the raft log index of the command that creates the resource
//!   (`cl-<index as 16 hex digits>`, `op-...`), never from randomness, and sort in creation
//!   order.
//! - Timestamps come in the command (`now_ms`), chosen by the proposer; the state machine never
//!   reads a clock.
//! - Everything is kept in `BTreeMap`s and sorted `Vec`s; commands, responses and snapshots are
//!   JSON of those, so equal states have byte-equal snapshots.
//! - A refused command (a name in use, a stale version) is not a failure of the state machine:
//!   the refusal is the response, identical on every voter, and the state is unchanged. An
//!   index that does not increase is a bug and panics.
//!
//! # Input that cannot be applied
//!
//! [`StateMachine::validate`] runs on the leader before a command is proposed: it must decode,
//! and a cluster spec in it must pass every rule of [`crate::spec::validate`] that does not
//! depend on the registered hosts or offered versions (the API checks those with the state at
//! hand). A refusal keeps the command out of the log. An entry that still does not decode
//! (written by another version, say) is applied as a no-op that counts it and keeps its error
//! in the state ([`State::undecodable_entries`]), identically on every voter and in snapshots,
//! and is logged; it never panics, since a panic would repeat at every restart. A snapshot
//! that does not decode is an error of [`StateMachine::restore`], which leaves the state as it
//! was.
//!
//! # Wire format
//!
//! ```text
//! command  = JSON of Command              (StateMachine::apply)
//! query    = JSON of Query                (StateMachine::query)
//! response = JSON of Result<Response, Error>
//! snapshot = JSON of State
//! ```
//!
//! # Caveats
//!
//! - Operations outlive their cluster (so a finished DELETE stays readable); each cluster keeps
//!   at most [`FINISHED_OPERATIONS_PER_CLUSTER_MAX`] finished ones (the oldest go first when
//!   another ends), and each tenant at most [`REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX`] of
//!   its removed clusters' (the oldest go first when another cluster is removed). Listing a
//!   cluster's operations scans all operations.
//! - Per-tenant limits ([`crate::model::limits`]) are checked here, in apply, so every replica
//!   refuses the same command; a refused command changes nothing.
//! - A `client_request_id` is remembered as long as its cluster exists.
//! - JSON is chosen for readability of snapshots and easy evolution with serde defaults, not
//!   for size; the control-plane state is small (clusters and hosts, not Kafka data).

use std::collections::BTreeMap;
use std::ops::Bound;

use ferry_quorum::StateMachine;

use super::command::*;
pub use super::command::{Command, Query, Response, TenantUsage};
use crate::error::{Conflict, Error, Result};
use crate::model::ca::{
    JOIN_TOKEN_ID_LEN_MAX, JOIN_TOKEN_TTL_MAX_MS, SPENT_JOIN_TOKENS_MAX, StoredCa,
};
use crate::model::limits::{
    FINISHED_OPERATIONS_PER_CLUSTER_MAX, REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX, TenantLimit,
    check_one_more_revision,
};
use crate::model::{
    Cluster, ClusterId, ClusterState, ClusterStatus, Configuration, ConfigurationId,
    ConfigurationSummary, Host, HostAssignment, HostHealth, HostRegistration, NodeReport,
    NodeState, Operation, OperationId, OperationState, OperationType, Page, PageRequest, Revision,
    RevisionInfo, Step, StepState, Tenant, TimestampMs,
};
use crate::placement::HostId;
use crate::spec::{ConfigurationRef, ValidationContext};

/// Longest `client_request_id` accepted.
pub const CLIENT_REQUEST_ID_LEN_MAX: usize = 64;

/// The whole control-plane state. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The log index of the last applied command (0 before the first).
    applied_index: u64,
    /// Every cluster by id.
    clusters: BTreeMap<ClusterId, Cluster>,
    /// Cluster names per tenant: name → id. Names are unique within a tenant.
    names: BTreeMap<Tenant, BTreeMap<String, ClusterId>>,
    /// Creates' idempotency keys per tenant: key → (cluster, its CREATE operation).
    request_ids: BTreeMap<Tenant, BTreeMap<String, (ClusterId, OperationId)>>,
    /// Every operation by id (ids sort in creation order).
    operations: BTreeMap<OperationId, Operation>,
    /// Every host by id.
    hosts: BTreeMap<HostId, Host>,
    /// Every configuration by id.
    #[serde(default)]
    configurations: BTreeMap<ConfigurationId, Configuration>,
    /// Configuration names per tenant: name → id. Names are unique within a tenant.
    #[serde(default)]
    configuration_names: BTreeMap<Tenant, BTreeMap<String, ConfigurationId>>,
    /// Log entries applied as no-ops because they did not decode.
    #[serde(default)]
    undecodable_entries: u64,
    /// The error of the last such entry, naming its index.
    #[serde(default)]
    last_undecodable_entry: Option<String>,
    /// The control plane's CA, installed once.
    #[serde(default)]
    ca: Option<StoredCa>,
    /// Spent join token ids → when the token expires (then the id is forgotten).
    #[serde(default)]
    spent_join_tokens: BTreeMap<String, TimestampMs>,
}

/// A request's typed answer as the wire [`Response`].
fn respond<T: Answer>(outcome: Result<T>) -> Result<Response> {
    outcome.map(Answer::into_response)
}

/// The id of a cluster created at `index`.
fn cluster_id(index: u64) -> ClusterId {
    format!("cl-{index:016x}")
}

/// The id of a configuration created at `index`.
fn configuration_id(index: u64) -> ConfigurationId {
    format!("cfg-{index:016x}")
}

/// The id of an operation created at `index`.
fn operation_id(index: u64) -> OperationId {
    format!("op-{index:016x}")
}

/// Refuses unless `current` equals `expected` (when given).
fn check_version(expected: Option<u64>, current: u64) -> Result<()> {
    match expected {
        Some(expected) if expected != current => {
            Err(Conflict::VersionMismatch { expected, current }.into())
        }
        _ => Ok(()),
    }
}

/// Takes one page from `items` (already in the list's order and past the page token), with
/// `token_of` giving the next page's token from the last item.
fn page<T: Clone>(
    items: impl Iterator<Item = T>,
    request: &PageRequest,
    token_of: impl Fn(&T) -> String,
) -> Page<T> {
    let size = request.size();
    let mut items: Vec<T> = items.take(size + 1).collect();
    let next_page_token = if items.len() > size {
        items.truncate(size);
        items.last().map(&token_of)
    } else {
        None
    };
    Page {
        items,
        next_page_token,
    }
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        State::default()
    }

    /// The log index of the last applied command.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// How many log entries were applied as no-ops because they did not decode, and the error
    /// of the last one. See the module docs.
    pub fn undecodable_entries(&self) -> (u64, Option<&str>) {
        (
            self.undecodable_entries,
            self.last_undecodable_entry.as_deref(),
        )
    }

    /// Records an entry at `index` that did not decode, as a no-op. Panics if `index` does not
    /// increase, like [`State::execute`].
    fn skip_undecodable(&mut self, index: u64, error: String) -> Result<Response> {
        assert!(
            index > self.applied_index,
            "store command index {index} is not above the applied index {}",
            self.applied_index
        );
        self.applied_index = index;
        let error = format!("entry {index} does not decode: {error}");
        tracing::error!(index, %error, "applied an undecodable store entry as a no-op");
        self.undecodable_entries += 1;
        self.last_undecodable_entry = Some(error.clone());
        Err(Error::InvalidInput(error))
    }

    /// The state with its applied index reset, to compare what two states hold.
    #[cfg(test)]
    pub(crate) fn contents(&self) -> State {
        State {
            applied_index: 0,
            ..self.clone()
        }
    }

    /// Applies `command` at log `index` and returns its outcome. Panics if `index` does not
    /// increase (a bug in the caller).
    pub fn execute(&mut self, index: u64, command: Command) -> Result<Response> {
        assert!(
            index > self.applied_index,
            "store command index {index} is not above the applied index {}",
            self.applied_index
        );
        self.applied_index = index;
        match command {
            Command::CreateCluster(c) => respond(self.create_cluster(index, c)),
            Command::BeginOperation(c) => respond(self.begin_operation(index, c)),
            Command::UpdateTags(c) => respond(self.update_tags(c)),
            Command::UpdateClusterStatus(c) => respond(self.update_cluster_status(c)),
            Command::RemoveCluster(c) => respond(self.remove_cluster(c)),
            Command::UpdateOperation(c) => respond(self.update_operation(c)),
            Command::RegisterHost(c) => respond(self.register_host(c)),
            Command::ReportHost(c) => respond(self.report_host(c)),
            Command::SetHostHealth(c) => respond(self.set_host_health(c)),
            Command::SetAssignments(c) => respond(self.set_assignments(c)),
            Command::CreateConfiguration(c) => respond(self.create_configuration(index, c)),
            Command::UpdateConfiguration(c) => respond(self.update_configuration(c)),
            Command::DeleteConfiguration(c) => respond(self.delete_configuration(c)),
            Command::InstallCa(c) => respond(self.install_ca(c)),
            Command::SpendJoinToken(c) => respond(self.spend_join_token(c)),
        }
    }

    /// Answers `query`; never changes the state.
    pub fn query(&self, query: &Query) -> Result<Response> {
        match query {
            Query::GetCluster(q) => respond(self.get_cluster(q)),
            Query::ListClusters(q) => respond(Ok(self.list_clusters(q))),
            Query::GetOperation(q) => respond(self.get_operation(q)),
            Query::ListOperations(q) => respond(self.list_operations(q)),
            Query::ActiveOperations => respond(Ok(self.active_operations())),
            Query::GetHost(q) => respond(self.get_host(q)),
            Query::ListHosts(q) => respond(Ok(self.list_hosts(q))),
            Query::GetConfiguration(q) => respond(self.get_configuration(q)),
            Query::ListConfigurations(q) => respond(Ok(self.list_configurations(q))),
            Query::GetCa => respond(Ok(self.ca.clone())),
            Query::GetConfigurationSummary(q) => respond(self.get_configuration_summary(q)),
            Query::ListRevisions(q) => respond(self.list_revisions(q)),
            Query::GetRevision(q) => respond(self.get_revision(q)),
            Query::TenantUsage(q) => respond(Ok(self.usage(&q.tenant))),
        }
    }

    /// See [`UpdateTags`].
    fn update_tags(&mut self, command: UpdateTags) -> Result<Cluster> {
        let UpdateTags {
            tenant,
            cluster_id,
            expected_version,
            tags,
            now_ms,
        } = command;
        let cluster = self.cluster_mut(&tenant, &cluster_id)?;
        check_version(expected_version, cluster.current_version)?;
        if cluster.status.state == OperationType::Delete.cluster_state() {
            return Err(
                Conflict::WrongState(format!("cluster {cluster_id} is being deleted")).into(),
            );
        }
        cluster.spec.tags = tags;
        cluster.current_version += 1;
        cluster.updated_at_ms = now_ms;
        Ok(cluster.clone())
    }

    /// See [`UpdateClusterStatus`].
    fn update_cluster_status(&mut self, command: UpdateClusterStatus) -> Result<Cluster> {
        let UpdateClusterStatus {
            tenant,
            cluster_id,
            expected_version,
            status,
            now_ms,
        } = command;
        let cluster = self.cluster_mut(&tenant, &cluster_id)?;
        check_version(Some(expected_version), cluster.current_version)?;
        cluster.status = status;
        cluster.current_version += 1;
        cluster.updated_at_ms = now_ms;
        Ok(cluster.clone())
    }

    /// See [`ReportHost`].
    fn report_host(&mut self, command: ReportHost) -> Result<Host> {
        let ReportHost {
            host_id,
            applied_generation,
            mut nodes,
            now_ms,
        } = command;
        let host = self.host_mut(&host_id)?;
        nodes.sort_by(|a, b| (&a.cluster_id, a.node_id).cmp(&(&b.cluster_id, b.node_id)));
        for node in &mut nodes {
            let previous = host
                .nodes
                .iter()
                .find(|p| p.cluster_id == node.cluster_id && p.node_id == node.node_id);
            stamp_report(node, previous, now_ms);
        }
        // A released node is gone once its agent no longer reports it.
        host.releasing.retain(|a| {
            nodes
                .iter()
                .any(|n| n.cluster_id == a.cluster_id && n.node_id == a.node_id)
        });
        host.nodes = nodes;
        host.applied_generation = applied_generation;
        host.last_seen_at_ms = now_ms;
        host.health = HostHealth::Healthy;
        Ok(host.clone())
    }

    /// See [`SetHostHealth`].
    fn set_host_health(&mut self, command: SetHostHealth) -> Result<Host> {
        let host = self.host_mut(&command.host_id)?;
        host.health = command.health;
        Ok(host.clone())
    }

    /// See [`SetAssignments`].
    fn set_assignments(&mut self, command: SetAssignments) -> Result<Host> {
        let SetAssignments {
            host_id,
            mut assignments,
            expected_generation,
        } = command;
        let host = self.host_mut(&host_id)?;
        check_version(expected_generation, host.generation)?;
        assignments.sort_by(|a, b| (&a.cluster_id, a.node_id).cmp(&(&b.cluster_id, b.node_id)));
        if host.assignments != assignments {
            let removed: Vec<HostAssignment> = host
                .assignments
                .iter()
                .filter(|old| {
                    !assignments
                        .iter()
                        .any(|new| new.cluster_id == old.cluster_id && new.node_id == old.node_id)
                })
                .cloned()
                .collect();
            // They hold on to their ports and storage until the agent's next report that no
            // longer lists them.
            host.releasing.extend(removed);
            host.assignments = assignments;
            host.generation += 1;
        }
        Ok(host.clone())
    }

    /// See [`UpdateConfiguration`].
    fn update_configuration(&mut self, command: UpdateConfiguration) -> Result<Configuration> {
        let UpdateConfiguration {
            tenant,
            configuration_id,
            mut revision,
            now_ms,
        } = command;
        let configuration = self.configuration_mut(&tenant, &configuration_id)?;
        check_one_more_revision(&configuration_id, configuration.revisions.len())?;
        revision.revision = configuration.latest().revision + 1;
        revision.created_at_ms = now_ms;
        configuration.revisions.push(revision);
        Ok(configuration.clone())
    }

    /// See [`DeleteConfiguration`].
    fn delete_configuration(&mut self, command: DeleteConfiguration) -> Result<()> {
        let DeleteConfiguration {
            tenant,
            configuration_id,
        } = command;
        let name = self.configuration(&tenant, &configuration_id)?.name.clone();
        let cluster_ids: Vec<String> = self
            .clusters
            .values()
            .filter(|c| c.tenant == tenant)
            .filter(|c| {
                [&c.spec.configuration, &c.status.configuration]
                    .into_iter()
                    .flatten()
                    .any(|r| r.id == configuration_id)
            })
            .map(|c| c.id.clone())
            .collect();
        if !cluster_ids.is_empty() {
            return Err(Conflict::ConfigurationInUse {
                configuration_id,
                cluster_ids,
            }
            .into());
        }
        self.configurations.remove(&configuration_id);
        if let Some(names) = self.configuration_names.get_mut(&tenant) {
            names.remove(&name);
            if names.is_empty() {
                self.configuration_names.remove(&tenant);
            }
        }
        Ok(())
    }

    /// See [`InstallCa`].
    fn install_ca(&mut self, command: InstallCa) -> Result<()> {
        let InstallCa { ca } = command;
        match &self.ca {
            Some(installed) if *installed == ca => Ok(()),
            Some(_) => Err(Conflict::WrongState(
                "the store already holds another CA; the CA is installed once".into(),
            )
            .into()),
            None => {
                if ca.cert_pem.is_empty() || ca.key_pem.expose().is_empty() {
                    return Err(Error::InvalidInput(
                        "a CA needs a certificate and a key".into(),
                    ));
                }
                self.ca = Some(ca);
                Ok(())
            }
        }
    }

    /// See [`SpendJoinToken`].
    fn spend_join_token(&mut self, command: SpendJoinToken) -> Result<()> {
        let SpendJoinToken {
            token_id,
            host_id,
            expires_at_ms,
            now_ms,
        } = command;
        if token_id.is_empty() || token_id.len() > JOIN_TOKEN_ID_LEN_MAX {
            return Err(Error::InvalidInput(format!(
                "a join token id has 1 to {JOIN_TOKEN_ID_LEN_MAX} characters"
            )));
        }
        if host_id.is_empty() {
            return Err(Error::InvalidInput("a join token names a host".into()));
        }
        // Expired tokens are refused before they are spent, so their ids need not be kept.
        self.spent_join_tokens
            .retain(|_, expires| *expires >= now_ms);
        if expires_at_ms < now_ms {
            return Err(Conflict::WrongState("the join token has expired".into()).into());
        }
        if expires_at_ms > now_ms.saturating_add(JOIN_TOKEN_TTL_MAX_MS) {
            return Err(Error::InvalidInput(format!(
                "a join token lives at most {JOIN_TOKEN_TTL_MAX_MS} ms"
            )));
        }
        if self.spent_join_tokens.contains_key(&token_id) {
            return Err(Conflict::WrongState("the join token was already used".into()).into());
        }
        if self.spent_join_tokens.len() >= SPENT_JOIN_TOKENS_MAX {
            return Err(Error::Unavailable(format!(
                "{SPENT_JOIN_TOKENS_MAX} join tokens were spent and have not expired yet"
            )));
        }
        self.spent_join_tokens.insert(token_id, expires_at_ms);
        Ok(())
    }

    /// See [`GetCluster`].
    fn get_cluster(&self, query: &GetCluster) -> Result<Cluster> {
        Ok(self.cluster(&query.tenant, &query.cluster_id)?.clone())
    }

    /// See [`ListClusters`].
    fn list_clusters(&self, query: &ListClusters) -> Page<Cluster> {
        let ListClusters {
            tenant,
            name_prefix,
            page: request,
        } = query;
        let empty = BTreeMap::new();
        let names = self.names.get(tenant).unwrap_or(&empty);
        // Names with the prefix are one contiguous range starting at the prefix; a page token
        // (the last name of the previous page) starts after itself.
        let start = match &request.page_token {
            Some(token) if token >= name_prefix => Bound::Excluded(token.clone()),
            _ => Bound::Included(name_prefix.clone()),
        };
        let items = names
            .range((start, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(name_prefix.as_str()))
            .map(|(_, id)| self.clusters[id].clone());
        page(items, request, |c| c.spec.name.clone())
    }

    /// See [`GetOperation`].
    fn get_operation(&self, query: &GetOperation) -> Result<Operation> {
        let GetOperation {
            tenant,
            operation_id,
        } = query;
        match self.operations.get(operation_id) {
            Some(op) if op.tenant == *tenant => Ok(op.clone()),
            _ => Err(Error::NotFound(format!("operation {operation_id}"))),
        }
    }

    /// See [`ListOperations`].
    fn list_operations(&self, query: &ListOperations) -> Result<Page<Operation>> {
        let ListOperations {
            tenant,
            cluster_id,
            page: request,
        } = query;
        let mut ops = self
            .operations
            .values()
            .rev()
            .filter(|op| op.cluster_id == *cluster_id && op.tenant == *tenant)
            .peekable();
        if ops.peek().is_none() {
            // Tells "no such cluster" from "no operations" (a cluster always has its CREATE
            // operation, so the second cannot happen for a live cluster).
            self.cluster(tenant, cluster_id)?;
        }
        let token = request.page_token.clone();
        let items = ops
            .filter(|op| token.as_ref().is_none_or(|t| op.id < *t))
            .cloned();
        Ok(page(items, request, |op| op.id.clone()))
    }

    /// See [`ActiveOperations`].
    fn active_operations(&self) -> Page<Operation> {
        Page {
            items: self
                .operations
                .values()
                .filter(|op| op.is_active())
                .cloned()
                .collect(),
            next_page_token: None,
        }
    }

    /// See [`GetHost`].
    fn get_host(&self, query: &GetHost) -> Result<Host> {
        let host_id = &query.host_id;
        Ok(self
            .hosts
            .get(host_id)
            .ok_or_else(|| Error::NotFound(format!("host {host_id}")))?
            .clone())
    }

    /// See [`ListHosts`].
    fn list_hosts(&self, query: &ListHosts) -> Page<Host> {
        let ListHosts {
            page: request,
            tenant,
        } = query;
        let start = match &request.page_token {
            Some(token) => Bound::Excluded(token.clone()),
            None => Bound::Unbounded,
        };
        let items = self
            .hosts
            .range((start, Bound::Unbounded))
            .map(|(_, host)| match tenant {
                None => host.clone(),
                Some(tenant) => self.host_as_seen_by(host, tenant),
            });
        page(items, request, |h| h.id.clone())
    }

    /// See [`GetConfiguration`].
    fn get_configuration(&self, query: &GetConfiguration) -> Result<Configuration> {
        Ok(self
            .configuration(&query.tenant, &query.configuration_id)?
            .clone())
    }

    /// See [`ListConfigurations`].
    fn list_configurations(&self, query: &ListConfigurations) -> Page<ConfigurationSummary> {
        let ListConfigurations {
            tenant,
            page: request,
        } = query;
        let empty = BTreeMap::new();
        let names = self.configuration_names.get(tenant).unwrap_or(&empty);
        let start = match &request.page_token {
            Some(token) => Bound::Excluded(token.clone()),
            None => Bound::Unbounded,
        };
        let items = names
            .range((start, Bound::Unbounded))
            .map(|(_, id)| self.configurations[id].summary());
        page(items, request, |c| c.name.clone())
    }

    /// See [`GetConfigurationSummary`].
    fn get_configuration_summary(
        &self,
        query: &GetConfigurationSummary,
    ) -> Result<ConfigurationSummary> {
        Ok(self
            .configuration(&query.tenant, &query.configuration_id)?
            .summary())
    }

    /// See [`ListRevisions`].
    fn list_revisions(&self, query: &ListRevisions) -> Result<Page<RevisionInfo>> {
        let ListRevisions {
            tenant,
            configuration_id,
            page: request,
        } = query;
        let configuration = self.configuration(tenant, configuration_id)?;
        let before = match &request.page_token {
            None => None,
            Some(token) => Some(token.parse::<u64>().map_err(|_| {
                Error::InvalidInput(format!("page token {token:?} is not a revision"))
            })?),
        };
        let items = configuration
            .revisions
            .iter()
            .rev()
            .filter(|r| before.is_none_or(|before| r.revision < before))
            .map(Revision::info);
        Ok(page(items, request, |r| r.revision.to_string()))
    }

    /// See [`GetRevision`].
    fn get_revision(&self, query: &GetRevision) -> Result<Revision> {
        let GetRevision {
            tenant,
            configuration_id,
            revision,
        } = query;
        let configuration = self.configuration(tenant, configuration_id)?;
        let found = configuration.revision(*revision).ok_or_else(|| {
            Error::NotFound(format!(
                "revision {revision} of configuration {configuration_id} (its latest is {})",
                configuration.latest().revision
            ))
        })?;
        Ok(found.clone())
    }

    /// How much `tenant` holds.
    fn usage(&self, tenant: &str) -> TenantUsage {
        TenantUsage {
            clusters: self.names.get(tenant).map_or(0, BTreeMap::len),
            configurations: self
                .configuration_names
                .get(tenant)
                .map_or(0, BTreeMap::len),
        }
    }

    /// `host` as a member of `tenant` may see it: only the nodes of the tenant's own clusters
    /// (assigned, releasing and reported); other tenants' nodes are left out.
    fn host_as_seen_by(&self, host: &Host, tenant: &str) -> Host {
        let own = |cluster_id: &str| {
            self.clusters
                .get(cluster_id)
                .is_some_and(|c| c.tenant == tenant)
        };
        let mut host = host.clone();
        host.assignments.retain(|a| own(&a.cluster_id));
        host.releasing.retain(|a| own(&a.cluster_id));
        host.nodes.retain(|n| own(&n.cluster_id));
        host
    }

    /// Forgets the tenant's oldest operations of removed clusters beyond
    /// [`REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX`]. A removed cluster's operations have all
    /// ended (removing it ends its DELETE).
    fn prune_removed_clusters_operations(&mut self, tenant: &str) {
        // Ids sort in creation order, so this is oldest first.
        let orphans: Vec<OperationId> = self
            .operations
            .values()
            .filter(|op| op.tenant == tenant && !self.clusters.contains_key(&op.cluster_id))
            .map(|op| op.id.clone())
            .collect();
        let excess = orphans
            .len()
            .saturating_sub(REMOVED_CLUSTER_OPERATIONS_PER_TENANT_MAX);
        for id in &orphans[..excess] {
            self.operations.remove(id);
        }
    }

    /// Forgets the cluster's oldest finished operations beyond
    /// [`FINISHED_OPERATIONS_PER_CLUSTER_MAX`]. Never a running operation, nor the CREATE
    /// operation the cluster's `client_request_id` points to (an idempotent retry returns it).
    fn prune_finished_operations(&mut self, tenant: &str, cluster_id: &str) {
        let keep = self
            .clusters
            .get(cluster_id)
            .and_then(|c| c.client_request_id.as_ref())
            .and_then(|request_id| self.request_ids.get(tenant)?.get(request_id))
            .map(|(_, operation_id)| operation_id.clone());
        // Ids sort in creation order, so this is oldest first.
        let finished: Vec<OperationId> = self
            .operations
            .values()
            .filter(|op| op.cluster_id == cluster_id && op.tenant == tenant)
            .filter(|op| op.state.is_terminal() && Some(&op.id) != keep.as_ref())
            .map(|op| op.id.clone())
            .collect();
        let excess = finished
            .len()
            .saturating_sub(FINISHED_OPERATIONS_PER_CLUSTER_MAX);
        for id in &finished[..excess] {
            self.operations.remove(id);
        }
    }

    /// The tenant's configuration `id`; another tenant's is [`Error::NotFound`].
    fn configuration(&self, tenant: &str, id: &str) -> Result<&Configuration> {
        match self.configurations.get(id) {
            Some(configuration) if configuration.tenant == tenant => Ok(configuration),
            _ => Err(Error::NotFound(format!("configuration {id}"))),
        }
    }

    /// Like [`State::configuration`], mutable.
    fn configuration_mut(&mut self, tenant: &str, id: &str) -> Result<&mut Configuration> {
        match self.configurations.get_mut(id) {
            Some(configuration) if configuration.tenant == tenant => Ok(configuration),
            _ => Err(Error::NotFound(format!("configuration {id}"))),
        }
    }

    /// The properties of the revision `reference` names, for a cluster of `tenant` running
    /// `kafka_version`. Errors: [`Error::NotFound`] (no such configuration in the tenant, or
    /// no such revision), [`Error::InvalidInput`] (made for other Kafka versions).
    fn resolve_configuration(
        &self,
        tenant: &str,
        reference: &ConfigurationRef,
        kafka_version: &str,
    ) -> Result<BTreeMap<String, String>> {
        let configuration = self.configuration(tenant, &reference.id)?;
        let revision = configuration.revision(reference.revision).ok_or_else(|| {
            Error::NotFound(format!(
                "revision {} of configuration {} (its latest is {})",
                reference.revision,
                reference.id,
                configuration.latest().revision
            ))
        })?;
        if !configuration.kafka_versions.is_empty()
            && !configuration
                .kafka_versions
                .iter()
                .any(|v| v == kafka_version)
        {
            return Err(Error::InvalidInput(format!(
                "configuration {} is for Kafka versions {}, not {kafka_version}",
                reference.id,
                configuration.kafka_versions.join(", ")
            )));
        }
        Ok(revision.properties.clone())
    }

    /// See [`CreateConfiguration`].
    fn create_configuration(
        &mut self,
        index: u64,
        command: CreateConfiguration,
    ) -> Result<Configuration> {
        let CreateConfiguration {
            tenant,
            name,
            kafka_versions,
            mut revision,
            now_ms,
        } = command;
        if tenant.is_empty() || name.is_empty() {
            return Err(Error::InvalidInput(
                "a configuration needs a tenant and a name".into(),
            ));
        }
        if let Some(existing) = self
            .configuration_names
            .get(&tenant)
            .and_then(|n| n.get(&name))
        {
            return Err(Conflict::NameTaken {
                name,
                cluster_id: existing.clone(),
                kind: "configuration".into(),
            }
            .into());
        }
        TenantLimit::Configurations.check_one_more(&tenant, self.usage(&tenant).configurations)?;
        revision.revision = 1;
        revision.created_at_ms = now_ms;
        let configuration = Configuration {
            id: configuration_id(index),
            tenant: tenant.clone(),
            name: name.clone(),
            kafka_versions,
            created_at_ms: now_ms,
            revisions: vec![revision],
        };
        self.configuration_names
            .entry(tenant)
            .or_default()
            .insert(name, configuration.id.clone());
        self.configurations
            .insert(configuration.id.clone(), configuration.clone());
        Ok(configuration)
    }

    /// The tenant's cluster `id`; another tenant's is [`Error::NotFound`].
    fn cluster(&self, tenant: &str, id: &str) -> Result<&Cluster> {
        match self.clusters.get(id) {
            Some(cluster) if cluster.tenant == tenant => Ok(cluster),
            _ => Err(Error::NotFound(format!("cluster {id}"))),
        }
    }

    /// Like [`State::cluster`], mutable.
    fn cluster_mut(&mut self, tenant: &str, id: &str) -> Result<&mut Cluster> {
        match self.clusters.get_mut(id) {
            Some(cluster) if cluster.tenant == tenant => Ok(cluster),
            _ => Err(Error::NotFound(format!("cluster {id}"))),
        }
    }

    /// The host `id`, mutable.
    fn host_mut(&mut self, id: &str) -> Result<&mut Host> {
        self.hosts
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("host {id}")))
    }

    /// A new operation of `kind` on `cluster`, PENDING with its type's steps.
    fn new_operation(
        index: u64,
        cluster: &Cluster,
        kind: OperationType,
        now_ms: TimestampMs,
    ) -> Operation {
        Operation {
            id: operation_id(index),
            cluster_id: cluster.id.clone(),
            tenant: cluster.tenant.clone(),
            kind,
            state: OperationState::Pending,
            steps: kind
                .step_names()
                .iter()
                .map(|n| Step::pending(*n))
                .collect(),
            progress_percent: 0,
            error: None,
            started_at_ms: now_ms,
            ended_at_ms: None,
        }
    }

    /// See [`CreateCluster`].
    fn create_cluster(
        &mut self,
        index: u64,
        command: CreateCluster,
    ) -> Result<(Cluster, Operation)> {
        let CreateCluster {
            tenant,
            spec,
            client_request_id,
            now_ms,
        } = command;
        if tenant.is_empty() {
            return Err(Error::InvalidInput("the tenant is empty".into()));
        }
        if spec.name.is_empty() {
            return Err(Error::InvalidInput("the cluster name is empty".into()));
        }
        if let Some(request_id) = &client_request_id {
            if request_id.is_empty() || request_id.len() > CLIENT_REQUEST_ID_LEN_MAX {
                return Err(Error::InvalidInput(format!(
                    "client_request_id must be 1 to {CLIENT_REQUEST_ID_LEN_MAX} characters"
                )));
            }
            let seen = self
                .request_ids
                .get(&tenant)
                .and_then(|r| r.get(request_id));
            if let Some((cluster_id, operation_id)) = seen {
                let cluster = &self.clusters[cluster_id];
                if cluster.spec != spec {
                    return Err(Conflict::RequestIdReused {
                        client_request_id: request_id.clone(),
                    }
                    .into());
                }
                return Ok((cluster.clone(), self.operations[operation_id].clone()));
            }
        }
        if let Some(existing) = self.names.get(&tenant).and_then(|n| n.get(&spec.name)) {
            return Err(Conflict::NameTaken {
                name: spec.name,
                cluster_id: existing.clone(),
                kind: "cluster".into(),
            }
            .into());
        }
        TenantLimit::Clusters.check_one_more(&tenant, self.usage(&tenant).clusters)?;
        let configuration_properties = match &spec.configuration {
            Some(reference) => {
                self.resolve_configuration(&tenant, reference, &spec.kafka_version)?
            }
            None => BTreeMap::new(),
        };

        let mut cluster = Cluster {
            id: cluster_id(index),
            tenant: tenant.clone(),
            spec,
            status: ClusterStatus::new(OperationType::Create.cluster_state()),
            current_version: 1,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            active_operation: None,
            client_request_id: client_request_id.clone(),
            configuration_properties,
        };
        let operation = Self::new_operation(index, &cluster, OperationType::Create, now_ms);
        cluster.active_operation = Some(operation.id.clone());

        self.names
            .entry(tenant.clone())
            .or_default()
            .insert(cluster.spec.name.clone(), cluster.id.clone());
        if let Some(request_id) = client_request_id {
            self.request_ids
                .entry(tenant)
                .or_default()
                .insert(request_id, (cluster.id.clone(), operation.id.clone()));
        }
        self.clusters.insert(cluster.id.clone(), cluster.clone());
        self.operations
            .insert(operation.id.clone(), operation.clone());
        Ok((cluster, operation))
    }

    /// See [`BeginOperation`].
    fn begin_operation(
        &mut self,
        index: u64,
        command: BeginOperation,
    ) -> Result<(Cluster, Operation)> {
        let BeginOperation {
            tenant,
            cluster_id,
            kind,
            expected_version,
            spec,
            now_ms,
        } = command;
        let (tenant, cluster_id) = (tenant.as_str(), cluster_id.as_str());
        if kind == OperationType::Create {
            return Err(Error::InvalidInput(
                "CREATE operations start only with the cluster".into(),
            ));
        }
        // A new configuration reference is resolved before anything changes.
        let resolved = match &spec {
            Some(spec) => {
                let current = self.cluster(tenant, cluster_id)?;
                match &spec.configuration {
                    Some(reference) if spec.configuration != current.spec.configuration => {
                        Some(self.resolve_configuration(tenant, reference, &spec.kafka_version)?)
                    }
                    Some(_) => None,
                    None => Some(BTreeMap::new()),
                }
            }
            None => None,
        };
        let cluster = self.cluster_mut(tenant, cluster_id)?;
        check_version(expected_version, cluster.current_version)?;
        if let Some(operation_id) = &cluster.active_operation {
            return Err(Conflict::OperationInProgress {
                operation_id: operation_id.clone(),
            }
            .into());
        }
        if cluster.status.state == OperationType::Delete.cluster_state()
            && kind != OperationType::Delete
        {
            return Err(Conflict::WrongState(format!(
                "cluster {cluster_id} is being deleted; only DELETE may be retried"
            ))
            .into());
        }
        // A configuration update may also repair a cluster an earlier one left FAILED.
        let retry_configuration = kind == OperationType::UpdateConfiguration
            && cluster.status.state == ClusterState::Failed
            && !cluster.status.placement.is_empty();
        if kind != OperationType::Delete
            && cluster.status.state != ClusterState::Active
            && !retry_configuration
        {
            return Err(Conflict::WrongState(format!(
                "cluster {cluster_id} is {:?}; only an ACTIVE cluster can be updated",
                cluster.status.state
            ))
            .into());
        }
        if let Some(spec) = spec {
            if spec.name != cluster.spec.name {
                return Err(Error::InvalidInput("a cluster's name cannot change".into()));
            }
            cluster.spec = spec;
            if let Some(properties) = resolved {
                cluster.configuration_properties = properties;
            }
        }
        let operation = Self::new_operation(index, cluster, kind, now_ms);
        cluster.active_operation = Some(operation.id.clone());
        cluster.status.state = kind.cluster_state();
        cluster.status.state_info = Default::default();
        cluster.current_version += 1;
        cluster.updated_at_ms = now_ms;
        let cluster = cluster.clone();
        self.operations
            .insert(operation.id.clone(), operation.clone());
        Ok((cluster, operation))
    }

    /// See [`RemoveCluster`].
    fn remove_cluster(&mut self, command: RemoveCluster) -> Result<()> {
        let RemoveCluster {
            tenant,
            cluster_id,
            expected_version,
            now_ms,
        } = command;
        let (tenant, cluster_id) = (tenant.as_str(), cluster_id.as_str());
        let cluster = self.cluster(tenant, cluster_id)?;
        check_version(expected_version, cluster.current_version)?;
        let deleting = cluster.status.state == OperationType::Delete.cluster_state();
        let running = cluster
            .active_operation
            .as_ref()
            .and_then(|id| self.operations.get(id));
        if !deleting || running.is_some_and(|op| op.kind != OperationType::Delete) {
            return Err(Conflict::WrongState(format!(
                "cluster {cluster_id} can be removed only while it is being deleted"
            ))
            .into());
        }
        if let Some(id) = cluster.active_operation.clone()
            && let Some(operation) = self.operations.get_mut(&id)
        {
            operation.state = OperationState::Succeeded;
            operation.progress_percent = 100;
            operation.ended_at_ms = Some(now_ms);
            for step in &mut operation.steps {
                if !matches!(step.state, StepState::Done | StepState::Skipped) {
                    step.state = StepState::Done;
                    step.started_at_ms.get_or_insert(now_ms);
                    step.ended_at_ms = Some(now_ms);
                }
            }
        }
        self.prune_finished_operations(tenant, cluster_id);
        let cluster = self.clusters.remove(cluster_id).expect("checked above");
        if let Some(names) = self.names.get_mut(tenant) {
            names.remove(&cluster.spec.name);
            if names.is_empty() {
                self.names.remove(tenant);
            }
        }
        if let Some(request_id) = &cluster.client_request_id
            && let Some(ids) = self.request_ids.get_mut(tenant)
        {
            ids.remove(request_id);
            if ids.is_empty() {
                self.request_ids.remove(tenant);
            }
        }
        self.prune_removed_clusters_operations(tenant);
        Ok(())
    }

    /// See [`UpdateOperation`].
    fn update_operation(&mut self, command: UpdateOperation) -> Result<Operation> {
        let UpdateOperation {
            tenant,
            operation_id,
            update,
            now_ms,
        } = command;
        let (tenant, operation_id) = (tenant.as_str(), operation_id.as_str());
        let operation = match self.operations.get_mut(operation_id) {
            Some(op) if op.tenant == tenant => op,
            _ => return Err(Error::NotFound(format!("operation {operation_id}"))),
        };
        if operation.state.is_terminal() {
            return Err(Conflict::WrongState(format!(
                "operation {operation_id} has already ended"
            ))
            .into());
        }
        if update.progress_percent.is_some_and(|p| p > 100) {
            return Err(Error::InvalidInput(
                "progress_percent must be at most 100".into(),
            ));
        }
        let failing = update.state == Some(OperationState::Failed);
        if failing != update.error.is_some() {
            return Err(Error::InvalidInput(
                "an error must be given exactly when the operation fails".into(),
            ));
        }
        if update.state == Some(OperationState::Pending)
            && operation.state != OperationState::Pending
        {
            return Err(Error::InvalidInput(
                "a started operation cannot go back to PENDING".into(),
            ));
        }
        if let Some(steps) = update.steps {
            operation.steps = steps;
        }
        if let Some(progress) = update.progress_percent {
            operation.progress_percent = progress;
        }
        if let Some(state) = update.state {
            operation.state = state;
        }
        operation.error = update.error;
        if operation.state.is_terminal() {
            operation.ended_at_ms = Some(now_ms);
            if operation.state == OperationState::Succeeded {
                operation.progress_percent = 100;
            }
            let operation = operation.clone();
            // The cluster may be gone only if a bug removed it mid-operation; that is not a
            // reason to diverge, so a missing cluster is simply skipped.
            if let Some(cluster) = self.clusters.get_mut(&operation.cluster_id)
                && cluster.active_operation.as_deref() == Some(operation_id)
            {
                cluster.active_operation = None;
                cluster.current_version += 1;
                cluster.updated_at_ms = now_ms;
            }
            self.prune_finished_operations(tenant, &operation.cluster_id);
            return Ok(operation);
        }
        Ok(operation.clone())
    }

    /// See [`RegisterHost`].
    fn register_host(&mut self, command: RegisterHost) -> Result<Host> {
        let RegisterHost {
            registration,
            now_ms,
        } = command;
        let HostRegistration {
            id,
            zone,
            address,
            ports,
            capacity,
        } = registration;
        if id.is_empty() || zone.is_empty() || address.is_empty() {
            return Err(Error::InvalidInput(
                "a host needs an id, a zone and an address".into(),
            ));
        }
        if ports.lo == 0 || ports.lo > ports.hi {
            return Err(Error::InvalidInput(format!(
                "port range {ports} is empty or starts at 0"
            )));
        }
        let host = self.hosts.entry(id.clone()).or_insert_with(|| Host {
            id,
            zone: String::new(),
            address: String::new(),
            ports,
            capacity,
            health: HostHealth::Unknown,
            registered_at_ms: now_ms,
            last_seen_at_ms: now_ms,
            assignments: Vec::new(),
            releasing: Vec::new(),
            generation: 0,
            applied_generation: 0,
            nodes: Vec::new(),
        });
        host.zone = zone;
        host.address = address;
        host.ports = ports;
        host.capacity = capacity;
        host.last_seen_at_ms = now_ms;
        Ok(host.clone())
    }
}

/// Encodes a command for [`StateMachine::apply`].
pub fn encode_command(command: &Command) -> Vec<u8> {
    serde_json::to_vec(command).expect("commands always serialize")
}

/// Encodes a query for [`StateMachine::query`].
pub fn encode_query(query: &Query) -> Vec<u8> {
    serde_json::to_vec(query).expect("queries always serialize")
}

/// Decodes a response of [`StateMachine::apply`] or [`StateMachine::query`]. A response that
/// does not decode means corrupt data or mismatched versions: [`Error::Io`].
pub fn decode_response(bytes: &[u8]) -> Result<Response> {
    serde_json::from_slice::<Result<Response>>(bytes)
        .map_err(|err| Error::Io(format!("undecodable store response: {err}")))?
}

/// Encodes an outcome as a response.
fn encode_response(response: &Result<Response>) -> Vec<u8> {
    serde_json::to_vec(response).expect("responses always serialize")
}

/// Checks what [`StateMachine::validate`] checks: `command` decodes, and a cluster spec in it
/// passes the rules that need no state. See the module docs.
pub fn validate_command(command: &[u8]) -> std::result::Result<Command, String> {
    let command: Command = serde_json::from_slice(command)
        .map_err(|err| format!("undecodable store command: {err}"))?;
    let spec = match &command {
        Command::CreateCluster(CreateCluster {
            spec,
            client_request_id,
            ..
        }) => {
            let id_len = client_request_id
                .as_deref()
                .map_or(0, |id| id.chars().count());
            if id_len > CLIENT_REQUEST_ID_LEN_MAX {
                return Err(format!(
                    "client_request_id: must be at most {CLIENT_REQUEST_ID_LEN_MAX} characters"
                ));
            }
            Some(spec)
        }
        Command::BeginOperation(BeginOperation { spec, .. }) => spec.as_ref(),
        _ => None,
    };
    if let Some(spec) = spec {
        // The zones and the version are checked by the API against the hosts and the offered
        // versions; here every other rule runs, with a context that admits the spec's own.
        let context = ValidationContext {
            zones_with_hosts: spec.zones.iter().cloned().collect(),
            kafka_versions: [spec.kafka_version.clone()].into(),
        };
        if let Err(violations) = crate::spec::validate(spec, &context) {
            let text: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
            return Err(format!("invalid cluster spec: {}", text.join("; ")));
        }
    }
    Ok(command)
}

impl StateMachine for State {
    fn validate(&self, command: &[u8]) -> std::result::Result<(), String> {
        validate_command(command).map(|_| ())
    }

    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        // Only a command that decodes is proposed; one that does not (another binary's, or a
        // bug) becomes a recorded no-op on every voter alike rather than a panic that would
        // repeat at every restart.
        let response = match serde_json::from_slice::<Command>(command) {
            Ok(command) => self.execute(index, command),
            Err(err) => self.skip_undecodable(index, err.to_string()),
        };
        encode_response(&response)
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the state always serializes")
    }

    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        *self = serde_json::from_slice(data)
            .map_err(|err| format!("undecodable store snapshot: {err}"))?;
        Ok(())
    }

    fn validate_snapshot(&self, data: &[u8]) -> std::result::Result<(), String> {
        serde_json::from_slice::<State>(data)
            .map(|_| ())
            .map_err(|err| format!("undecodable store snapshot: {err}"))
    }

    fn query(&self, query: &[u8]) -> Vec<u8> {
        // A bad query changes nothing, so it is answered with an error rather than a panic.
        let response = match serde_json::from_slice::<Query>(query) {
            Ok(query) => State::query(self, &query),
            Err(err) => Err(Error::InvalidInput(format!(
                "undecodable store query: {err}"
            ))),
        };
        encode_response(&response)
    }
}

/// Stamps an agent's report of a node with the proposer's time carried in the command (so
/// replicas agree): when it was received, and since when the node has been RUNNING with this
/// config fingerprint, carried over from `previous` while it stays so.
fn stamp_report(node: &mut NodeReport, previous: Option<&NodeReport>, now_ms: TimestampMs) {
    node.reported_at_ms = now_ms;
    node.running_since_ms = (node.state == NodeState::Running).then(|| {
        previous
            .filter(|p| p.state == NodeState::Running)
            .filter(|p| p.config_fingerprint == node.config_fingerprint)
            .and_then(|p| p.running_since_ms)
            .unwrap_or(now_ms)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HostCapacity, OperationError, OperationUpdate, StateInfo};
    use crate::placement::PortRange;
    use crate::spec::ClusterSpec;

    /// A revision setting `name` to `value`.
    fn revision(name: &str, value: &str) -> Revision {
        Revision {
            revision: 0,
            description: String::new(),
            server_properties: format!("{name}={value}\n"),
            properties: BTreeMap::from([(name.to_string(), value.to_string())]),
            created_at_ms: 0,
        }
    }

    /// A mixed history touching every command, including refused ones.
    fn commands() -> Vec<Command> {
        let spec = |name: &str| ClusterSpec {
            name: name.into(),
            kafka_version: "3.9.0".into(),
            broker_count: 3,
            controller_count: 3,
            zones: vec!["a".into(), "b".into(), "c".into()],
            storage_per_broker_bytes: 1 << 30,
            broker_config: BTreeMap::from([("log.retention.ms".into(), "1000".into())]),
            tags: BTreeMap::from([("team".into(), "payments".into())]),
            configuration: None,
        };
        let create = |tenant: &str, name: &str, request: Option<&str>, now_ms| {
            Command::CreateCluster(CreateCluster {
                tenant: tenant.into(),
                spec: spec(name),
                client_request_id: request.map(Into::into),
                now_ms,
            })
        };
        vec![
            Command::RegisterHost(RegisterHost {
                registration: HostRegistration {
                    id: "h1".into(),
                    zone: "a".into(),
                    address: "10.0.0.1".into(),
                    ports: PortRange { lo: 9000, hi: 9100 },
                    capacity: HostCapacity {
                        max_nodes: 4,
                        storage_bytes: 1 << 40,
                    },
                },
                now_ms: 10,
            }),
            create("t1", "orders", Some("r1"), 20),
            create("t1", "orders", Some("r1"), 21),
            create("t1", "orders", None, 22),
            create("t2", "orders", None, 23),
            Command::UpdateOperation(UpdateOperation {
                tenant: "t1".into(),
                operation_id: operation_id(2),
                update: OperationUpdate {
                    state: Some(OperationState::Failed),
                    error: Some(OperationError {
                        code: "INSUFFICIENT_CAPACITY".into(),
                        message: "zone b has no hosts".into(),
                    }),
                    ..Default::default()
                },
                now_ms: 30,
            }),
            Command::UpdateClusterStatus(UpdateClusterStatus {
                tenant: "t1".into(),
                cluster_id: cluster_id(2),
                expected_version: 2,
                status: ClusterStatus {
                    state: ClusterState::Failed,
                    state_info: StateInfo::new("INSUFFICIENT_CAPACITY", "zone b has no hosts"),
                    placement: Vec::new(),
                    configuration: None,
                },
                now_ms: 31,
            }),
            Command::BeginOperation(BeginOperation {
                tenant: "t1".into(),
                cluster_id: cluster_id(2),
                kind: OperationType::Delete,
                expected_version: Some(3),
                spec: None,
                now_ms: 40,
            }),
            Command::ReportHost(ReportHost {
                host_id: "h1".into(),
                applied_generation: 0,
                nodes: Vec::new(),
                now_ms: 41,
            }),
            Command::SetAssignments(SetAssignments {
                host_id: "h1".into(),
                assignments: Vec::new(),
                expected_generation: Some(0),
            }),
            Command::SetHostHealth(SetHostHealth {
                host_id: "h1".into(),
                health: HostHealth::Unreachable,
            }),
            Command::UpdateOperation(UpdateOperation {
                tenant: "t1".into(),
                operation_id: operation_id(8),
                update: OperationUpdate {
                    state: Some(OperationState::Succeeded),
                    ..Default::default()
                },
                now_ms: 50,
            }),
            Command::RemoveCluster(RemoveCluster {
                tenant: "t1".into(),
                cluster_id: cluster_id(2),
                expected_version: None,
                now_ms: 55,
            }),
            Command::CreateConfiguration(CreateConfiguration {
                tenant: "t1".into(),
                name: "tuned".into(),
                kafka_versions: vec![],
                revision: revision("num.partitions", "5"),
                now_ms: 56,
            }),
            Command::UpdateConfiguration(UpdateConfiguration {
                tenant: "t1".into(),
                configuration_id: configuration_id(14),
                revision: revision("num.partitions", "6"),
                now_ms: 57,
            }),
            // Another tenant's: not found, refused.
            Command::DeleteConfiguration(DeleteConfiguration {
                tenant: "t2".into(),
                configuration_id: configuration_id(14),
            }),
            Command::CreateConfiguration(CreateConfiguration {
                tenant: "t1".into(),
                name: "spare".into(),
                kafka_versions: vec!["3.9.0".into()],
                revision: revision("auto.create.topics.enable", "false"),
                now_ms: 58,
            }),
            Command::DeleteConfiguration(DeleteConfiguration {
                tenant: "t1".into(),
                configuration_id: configuration_id(17),
            }),
            create("t1", "orders", Some("r1"), 60),
        ]
    }

    /// Applies `commands` from log index `first`, returning the responses.
    fn apply_all(state: &mut State, first: u64, commands: &[Command]) -> Vec<Vec<u8>> {
        commands
            .iter()
            .zip(first..)
            .map(|(command, index)| state.apply(index, &encode_command(command)))
            .collect()
    }

    #[test]
    fn the_same_commands_give_identical_states_and_responses() {
        let commands = commands();
        let (mut a, mut b) = (State::new(), State::new());
        let responses_a = apply_all(&mut a, 1, &commands);
        let responses_b = apply_all(&mut b, 1, &commands);
        assert_eq!(responses_a, responses_b);
        assert_eq!(a.snapshot(), b.snapshot());
        assert_eq!(a, b);
        // The history did what it says: the re-created cluster exists, and the removed one's
        // operations are still there.
        assert_eq!(a.clusters.len(), 2);
        assert_eq!(a.operations.len(), 4);
        let tuned = &a.configurations[&configuration_id(14)];
        assert_eq!(tuned.latest().revision, 2);
        assert_eq!(a.configurations.len(), 1, "the spare one was deleted");
        let last = decode_response(responses_a.last().unwrap()).unwrap();
        let Response::Started { cluster, .. } = last else {
            panic!("{last:?}")
        };
        assert_eq!(cluster.id, cluster_id(commands.len() as u64));
    }

    #[test]
    fn snapshot_then_restore_then_continue_equals_no_snapshot() {
        let commands = commands();
        let mut straight = State::new();
        let straight_responses = apply_all(&mut straight, 1, &commands);
        for cut in 0..=commands.len() {
            let mut before = State::new();
            let mut responses = apply_all(&mut before, 1, &commands[..cut]);
            let mut after = State::new();
            after.restore(&before.snapshot()).unwrap();
            assert_eq!(after, before);
            responses.extend(apply_all(&mut after, cut as u64 + 1, &commands[cut..]));
            assert_eq!(responses, straight_responses, "cut at {cut}");
            assert_eq!(after.snapshot(), straight.snapshot(), "cut at {cut}");
        }
    }

    #[test]
    fn ids_come_from_the_log_index() {
        let mut state = State::new();
        let command = &commands()[1];
        let response = decode_response(&state.apply(42, &encode_command(command))).unwrap();
        let Response::Started { cluster, operation } = response else {
            panic!("{response:?}")
        };
        assert_eq!(cluster.id, "cl-000000000000002a");
        assert_eq!(operation.id, "op-000000000000002a");
        assert_eq!(state.applied_index(), 42);
    }

    #[test]
    #[should_panic(expected = "is not above the applied index")]
    fn an_index_that_does_not_increase_panics() {
        let mut state = State::new();
        let command = encode_command(&commands()[0]);
        state.apply(5, &command);
        state.apply(5, &command);
    }

    #[test]
    fn an_undecodable_command_is_refused_before_the_log_and_a_recorded_no_op_in_it() {
        let mut state = State::new();
        assert!(
            StateMachine::validate(&state, b"not json")
                .unwrap_err()
                .contains("undecodable")
        );
        let response = decode_response(&state.apply(1, b"not json"));
        assert!(
            matches!(response, Err(Error::InvalidInput(_))),
            "{response:?}"
        );
        let (count, last) = state.undecodable_entries();
        assert_eq!(count, 1);
        assert!(
            last.unwrap().starts_with("entry 1 does not decode"),
            "{last:?}"
        );
        assert_eq!(state.applied_index(), 1);

        // The record is part of the state, so of snapshots.
        let mut restored = State::new();
        restored.restore(&state.snapshot()).unwrap();
        assert_eq!(restored, state);
        // And later commands apply as usual.
        apply_all(&mut state, 2, &commands()[..1]);
        assert_eq!(state.undecodable_entries().0, 1);
    }

    #[test]
    fn a_snapshot_that_does_not_decode_is_an_error_and_changes_nothing() {
        let mut state = State::new();
        apply_all(&mut state, 1, &commands()[..2]);
        let before = state.clone();
        assert!(state.validate_snapshot(b"{").is_err());
        assert!(state.restore(b"{").is_err());
        assert_eq!(state, before);
    }

    #[test]
    fn a_spec_breaking_a_rule_is_refused_before_the_log() {
        let create = commands()
            .into_iter()
            .find(|c| matches!(c, Command::CreateCluster(CreateCluster { .. })))
            .unwrap();
        let Command::CreateCluster(CreateCluster {
            tenant,
            mut spec,
            now_ms,
            ..
        }) = create.clone()
        else {
            unreachable!()
        };
        spec.broker_count = 1_000_000_000;
        spec.name = "bad name!".into();
        let command = Command::CreateCluster(CreateCluster {
            tenant,
            spec,
            client_request_id: None,
            now_ms,
        });
        let err = StateMachine::validate(&State::new(), &encode_command(&command)).unwrap_err();
        assert!(
            err.contains("broker_count") && err.contains("name"),
            "{err}"
        );
        assert!(StateMachine::validate(&State::new(), &encode_command(&create)).is_ok());
    }

    #[test]
    fn an_undecodable_query_is_refused() {
        let response = decode_response(&StateMachine::query(&State::new(), b"{"));
        assert!(matches!(response, Err(Error::InvalidInput(_))));
    }

    #[test]
    fn a_refused_command_changes_nothing_but_the_applied_index() {
        let commands = commands();
        let mut state = State::new();
        apply_all(&mut state, 1, &commands[..2]);
        let before = state.clone();
        // The same name without a request id: NameTaken.
        let response = decode_response(&state.apply(3, &encode_command(&commands[3])));
        assert!(matches!(
            response,
            Err(Error::Conflict(Conflict::NameTaken { .. }))
        ));
        assert_eq!(state.applied_index(), 3);
        state.applied_index = before.applied_index;
        assert_eq!(state, before);
    }
}
