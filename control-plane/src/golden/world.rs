//! The world a golden script drives: a [`MemoryStore`] on a pinned clock, the
//! [`Reconciler`] over it, and agents simulated by the `report` command; and the compact
//! rendering of what scripts compare (clusters, operations, hosts, plans).
//!
//! # Commands
//!
//! ```text
//! now MS                           pin the clock            tick MS    move it on
//! hosts ZONE...                    register h-ZONE per zone (10.0.0.N, ports 40000-40099,
//!                                  max-nodes=4, storage-gib=100 unless given)
//! host ID zone=Z [max-nodes=N]     register one host
//! create-cluster T NAME [request=ID] [brokers=N] [controllers=N] [zones=a,b,c]
//!                [configuration=CFG:REV] [config=k:v,...] [count=N]
//! update-brokers T CL N            start UPDATE_BROKER_COUNT with N brokers
//! update-configuration T CL CFG:REV [config=k:v,...]
//! begin T CL KIND [version=N]      start an operation (create, delete, reboot-broker, heal)
//! set-status T CL VERSION STATE [info=CODE]   replace a cluster's status (placement kept)
//! update-operation T OP [state=S] [percent=N] [error=CODE] [steps=S,S,...]
//! remove-cluster T CL [version=N]
//! create-configuration T NAME k:v... [count=N]
//! update-configuration-revision T CFG k:v... [count=N]
//! delete-configuration T CFG
//! get-cluster T CL | get-operation T OP | list-clusters T [prefix=P] [size=N] [token=X]
//! list-operations T CL [size=N] [token=X] | active-operations | usage T
//! report [hosts=h-a,..] [controllers=S] [brokers=S] [node=ID:S,..] [replication=P/U/O]
//!                                  agents report each assigned node (RUNNING, with the
//!                                  config its assignment carries, unless told otherwise)
//! reconciler [grace=MS] [node-timeout=MS] [sync-timeout=MS]   a new reconciler
//! plan                             the effects `decide` would make now (none applied)
//! settle [hosts=no]                reconciler passes until nothing changes, then `state`
//!                                  (without the hosts if told)
//! state                            every cluster, operation and host
//! ```
//!
//! `count=N` repeats a create N times (names suffixed `-0`, `-1`, ...) and renders the last
//! outcome: enough to reach a limit in one line. In `request=`, `empty` is the empty id and
//! `x*N` is N x's; `''` is an empty positional argument.
//!
//! The simulated agents restart a node as soon as its assignment changes: a report always
//! carries the config fingerprint the node's assignment holds, so a rolling restart advances
//! one `report` at a time. `plan` uses the unhealthy-since times the reports recorded, as the
//! reconciler does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::model::{
    Cluster, ClusterState, ClusterStatus, Host, HostCapacity, HostRegistration, NodeProbe,
    NodeReport, NodeState, Operation, OperationError, OperationState, OperationType,
    OperationUpdate, PageRequest, ReplicationHealth, Revision, StepState, TimestampMs,
};
use crate::placement::{NodeId, PortRange, Role};
use crate::reconcile::plan::{self, Effect, View};
use crate::reconcile::{AlwaysLeader, Reconciler, ReconcilerOptions};
use crate::spec::ClusterSpec;
use crate::store::{MemoryStore, Store};
use crate::{Error, Result};

/// The clock every script starts at.
const T0: TimestampMs = 1_000_000;

/// One script's world. See the module docs.
pub struct World {
    /// The store under test.
    store: Arc<MemoryStore>,
    /// The reconciler, kept across commands (it remembers unhealthy nodes).
    reconciler: Reconciler<MemoryStore, AlwaysLeader>,
    /// Its options, for `plan`.
    options: ReconcilerOptions,
    /// Since when each node was first reported UNHEALTHY without a break, for `plan`.
    unhealthy_since: BTreeMap<NodeId, TimestampMs>,
    /// Every tenant named, for `state`.
    tenants: BTreeSet<String>,
    /// Every operation started, for `state`.
    operations: BTreeSet<(String, String)>,
}

/// A parsed command line: positional arguments and `key=value` options.
struct Args {
    positional: Vec<String>,
    options: BTreeMap<String, String>,
}

impl Args {
    fn parse(words: &[&str]) -> Args {
        let mut positional = Vec::new();
        let mut options = BTreeMap::new();
        for word in words {
            match word.split_once('=') {
                Some((k, v)) => {
                    options.insert(k.to_owned(), v.to_owned());
                }
                // `''` is the empty argument (an empty tenant, say).
                None if *word == "''" => positional.push(String::new()),
                None => positional.push(long_id(word)),
            }
        }
        Args {
            positional,
            options,
        }
    }

    /// Positional argument `i`; panics if missing (a malformed script).
    fn get(&self, i: usize) -> &str {
        self.positional
            .get(i)
            .unwrap_or_else(|| panic!("missing argument {}", i + 1))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.options.get(key).map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
        })
    }
}

/// `cl-1` → `cl-0000000000000001` (ids may be written short).
fn long_id(word: &str) -> String {
    for prefix in ["cl-", "op-", "cfg-"] {
        if let Some(hex) = word.strip_prefix(prefix)
            && hex.len() < 16
            && !hex.is_empty()
            && hex.chars().all(|c| c.is_ascii_hexdigit())
        {
            return format!("{prefix}{hex:0>16}");
        }
    }
    word.to_owned()
}

/// `cl-0000000000000001` → `cl-1`, and the same inside any text.
fn short(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["cl-", "op-", "cfg-"]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
        .min()
    {
        let (i, len) = at;
        let digits = &rest[i + len..];
        let hex_len = digits.chars().take_while(char::is_ascii_hexdigit).count();
        out.push_str(&rest[..i + len]);
        if hex_len == 16 {
            let trimmed = digits[..16].trim_start_matches('0');
            out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
            rest = &digits[16..];
        } else {
            rest = digits;
        }
    }
    out.push_str(rest);
    out
}

fn upper<T: std::fmt::Debug>(value: T) -> String {
    // `RebootingBroker` → `REBOOTING_BROKER`.
    let name = format!("{value:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn parse_enum<T: Copy + std::fmt::Debug>(all: &[T], text: &str) -> T {
    let wanted = text.to_ascii_uppercase().replace('-', "_");
    *all.iter()
        .find(|v| upper(v) == wanted)
        .unwrap_or_else(|| panic!("unknown value {text}"))
}

const NODE_STATES: [NodeState; 5] = [
    NodeState::Pending,
    NodeState::Starting,
    NodeState::Running,
    NodeState::Unhealthy,
    NodeState::Stopped,
];

/// `k:v,k:v` → a map.
fn pairs(text: &str, separator: char) -> BTreeMap<String, String> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once(separator).expect("pairs are key:value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The cluster spec scripts create: 3 brokers and 3 controllers over zones a, b, c.
fn spec(name: &str, args: &Args) -> ClusterSpec {
    let zones = args.options.get("zones").map_or("a,b,c", String::as_str);
    ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: args.num("brokers").unwrap_or(3),
        controller_count: args.num("controllers").unwrap_or(3),
        zones: zones.split(',').map(str::to_owned).collect(),
        storage_per_broker_bytes: 1 << 30,
        broker_config: args
            .options
            .get("config")
            .map_or_else(|| pairs("num.partitions:3", ':'), |c| pairs(c, ':')),
        tags: BTreeMap::new(),
        configuration: args.options.get("configuration").map(|c| {
            let (id, rev) = c.split_once(':').expect("configuration=CFG:REV");
            crate::spec::ConfigurationRef {
                id: long_id(id),
                revision: rev.parse().unwrap(),
            }
        }),
    }
}

fn revision(words: &[String]) -> Revision {
    let properties = pairs(&words.join(","), ':');
    Revision {
        revision: 0,
        description: String::new(),
        server_properties: String::new(),
        properties,
        created_at_ms: 0,
    }
}

impl World {
    pub fn new() -> World {
        let store = Arc::new(MemoryStore::new());
        store.set_now_ms(T0);
        let options = ReconcilerOptions::default();
        World {
            reconciler: Reconciler::new(Arc::clone(&store), AlwaysLeader, options.clone()),
            store,
            options,
            unhealthy_since: BTreeMap::new(),
            tenants: BTreeSet::new(),
            operations: BTreeSet::new(),
        }
    }

    /// Runs one command line and renders its outcome.
    pub async fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let args = Args::parse(&words[1..]);
        let out = match self.command(words[0], &args).await {
            Ok(out) if out.is_empty() => "ok".to_owned(),
            Ok(out) => out,
            Err(err) => format!("error: {err}"),
        };
        short(out.trim_end())
    }

    fn started(&mut self, cluster: &Cluster, operation: &Operation) -> String {
        self.tenants.insert(cluster.tenant.clone());
        self.operations
            .insert((operation.tenant.clone(), operation.id.clone()));
        format!("started {} {}", cluster.id, operation.id)
    }

    /// Runs one command; see the module docs for what each does.
    async fn command(&mut self, name: &str, args: &Args) -> Result<String> {
        let store = Arc::clone(&self.store);
        Ok(match name {
            "now" => {
                store.set_now_ms(args.get(0).parse().unwrap());
                String::new()
            }
            "tick" => {
                store.set_now_ms(store.now_ms() + args.get(0).parse::<i64>().unwrap());
                format!("now {}", store.now_ms())
            }
            "hosts" | "host" => {
                let mut out = String::new();
                for (i, word) in args.positional.iter().enumerate() {
                    let (id, zone) = if name == "hosts" {
                        (format!("h-{word}"), word.clone())
                    } else {
                        (word.clone(), args.options["zone"].clone())
                    };
                    let host = store
                        .register_host(HostRegistration {
                            id,
                            zone,
                            address: format!("10.0.0.{}", i + 1),
                            ports: PortRange {
                                lo: 40000,
                                hi: 40099,
                            },
                            capacity: HostCapacity {
                                max_nodes: args.num("max-nodes").unwrap_or(4),
                                storage_bytes: args.num::<u64>("storage-gib").unwrap_or(100) << 30,
                            },
                        })
                        .await?;
                    render_host(&mut out, &host);
                }
                out
            }
            "create-cluster" => {
                let count: usize = args.num("count").unwrap_or(1);
                let request = args.options.get("request").map(|r| match r.as_str() {
                    "empty" => String::new(),
                    long if long.starts_with("x*") => "x".repeat(long[2..].parse().unwrap()),
                    r => r.to_owned(),
                });
                let mut out = String::new();
                for i in 0..count {
                    let name = if count == 1 {
                        args.get(1).to_owned()
                    } else {
                        format!("{}-{i}", args.get(1))
                    };
                    let (cluster, op) = store
                        .create_cluster(args.get(0), spec(&name, args), request.clone())
                        .await?;
                    out = self.started(&cluster, &op);
                }
                if count > 1 {
                    out = format!("{out} (last of {count})");
                }
                out
            }
            "update-brokers" => {
                let cluster = store.get_cluster(args.get(0), args.get(1)).await?;
                let mut spec = cluster.spec.clone();
                spec.broker_count = args.get(2).parse().unwrap();
                let (cluster, op) = store
                    .update_spec(
                        args.get(0),
                        args.get(1),
                        OperationType::UpdateBrokerCount,
                        spec,
                        args.num("version"),
                    )
                    .await?;
                self.started(&cluster, &op)
            }
            "update-configuration" => {
                let cluster = store.get_cluster(args.get(0), args.get(1)).await?;
                let mut spec = cluster.spec.clone();
                let (id, rev) = args.get(2).split_once(':').expect("CFG:REV");
                spec.configuration = Some(crate::spec::ConfigurationRef {
                    id: long_id(id),
                    revision: rev.parse().unwrap(),
                });
                if let Some(config) = args.options.get("config") {
                    spec.broker_config = pairs(config, ':');
                }
                let (cluster, op) = store
                    .update_spec(
                        args.get(0),
                        args.get(1),
                        OperationType::UpdateConfiguration,
                        spec,
                        args.num("version"),
                    )
                    .await?;
                self.started(&cluster, &op)
            }
            "begin" => {
                let kinds = [
                    OperationType::Create,
                    OperationType::Delete,
                    OperationType::UpdateBrokerCount,
                    OperationType::UpdateConfiguration,
                    OperationType::RebootBroker,
                    OperationType::Heal,
                ];
                let kind = parse_enum(&kinds, args.get(2));
                let (cluster, op) = store
                    .begin_operation(args.get(0), args.get(1), kind, args.num("version"))
                    .await?;
                self.started(&cluster, &op)
            }
            "set-status" => {
                let cluster = store.get_cluster(args.get(0), args.get(1)).await?;
                let states = [
                    ClusterState::Creating,
                    ClusterState::Active,
                    ClusterState::Updating,
                    ClusterState::RebootingBroker,
                    ClusterState::Healing,
                    ClusterState::Deleting,
                    ClusterState::Failed,
                ];
                let status = ClusterStatus {
                    state: parse_enum(&states, args.get(3)),
                    state_info: args
                        .options
                        .get("info")
                        .map_or_else(Default::default, |code| {
                            crate::model::StateInfo::new(code, "set by the script")
                        }),
                    ..cluster.status
                };
                let cluster = store
                    .update_cluster_status(
                        args.get(0),
                        args.get(1),
                        args.get(2).parse().unwrap(),
                        status,
                    )
                    .await?;
                let mut out = String::new();
                render_cluster(&mut out, &cluster);
                out
            }
            "update-operation" => {
                let op_states = [
                    OperationState::Pending,
                    OperationState::Running,
                    OperationState::Succeeded,
                    OperationState::Failed,
                ];
                let step_states = [
                    StepState::Pending,
                    StepState::Running,
                    StepState::Done,
                    StepState::Failed,
                    StepState::Skipped,
                ];
                let current = store.get_operation(args.get(0), args.get(1)).await;
                let steps = args.options.get("steps").map(|s| {
                    let mut steps = current
                        .as_ref()
                        .map(|o| o.steps.clone())
                        .unwrap_or_default();
                    for (step, state) in steps.iter_mut().zip(s.split(',')) {
                        step.state = parse_enum(&step_states, state);
                    }
                    steps
                });
                let update = OperationUpdate {
                    state: args.options.get("state").map(|s| parse_enum(&op_states, s)),
                    steps,
                    progress_percent: args.num("percent"),
                    error: args.options.get("error").map(|code| OperationError {
                        code: code.clone(),
                        message: format!("{code} (set by the script)"),
                    }),
                };
                let op = store
                    .update_operation(args.get(0), args.get(1), update)
                    .await?;
                let mut out = String::new();
                render_operation(&mut out, &op);
                out
            }
            "remove-cluster" => {
                store
                    .remove_cluster(args.get(0), args.get(1), args.num("version"))
                    .await?;
                String::new()
            }
            "create-configuration" => {
                let count: usize = args.num("count").unwrap_or(1);
                let mut out = String::new();
                for i in 0..count {
                    let name = if count == 1 {
                        args.get(1).to_owned()
                    } else {
                        format!("{}-{i}", args.get(1))
                    };
                    let configuration = store
                        .create_configuration(
                            args.get(0),
                            &name,
                            Vec::new(),
                            revision(&args.positional[2..]),
                        )
                        .await?;
                    out = format!("configuration {} revision 1", configuration.id);
                }
                if count > 1 {
                    out = format!("{out} (last of {count})");
                }
                out
            }
            "update-configuration-revision" => {
                let count: usize = args.num("count").unwrap_or(1);
                let mut out = String::new();
                for _ in 0..count {
                    let configuration = store
                        .update_configuration(
                            args.get(0),
                            args.get(1),
                            revision(&args.positional[2..]),
                        )
                        .await?;
                    let latest = configuration.revisions.last().map_or(0, |r| r.revision);
                    out = format!(
                        "configuration {} revision {latest} ({} kept)",
                        configuration.id,
                        configuration.revisions.len()
                    );
                }
                out
            }
            "delete-configuration" => {
                store.delete_configuration(args.get(0), args.get(1)).await?;
                String::new()
            }
            "get-cluster" => {
                let mut out = String::new();
                render_cluster(
                    &mut out,
                    &store.get_cluster(args.get(0), args.get(1)).await?,
                );
                out
            }
            "get-operation" => {
                let mut out = String::new();
                render_operation(
                    &mut out,
                    &store.get_operation(args.get(0), args.get(1)).await?,
                );
                out
            }
            "list-clusters" => {
                let page = page_request(args);
                let prefix = args.options.get("prefix").map_or("", String::as_str);
                let got = store.list_clusters(args.get(0), prefix, page).await?;
                let mut out = String::new();
                for c in &got.items {
                    writeln!(out, "{} {}", c.id, c.spec.name).unwrap();
                }
                if let Some(token) = got.next_page_token {
                    writeln!(out, "next {token}").unwrap();
                }
                out
            }
            "list-operations" => {
                let got = store
                    .list_operations(args.get(0), args.get(1), page_request(args))
                    .await?;
                let mut out = String::new();
                for o in &got.items {
                    writeln!(out, "{} {} {}", o.id, upper(o.kind), upper(o.state)).unwrap();
                }
                if let Some(token) = got.next_page_token {
                    writeln!(out, "next {}", short(&token)).unwrap();
                }
                out
            }
            "active-operations" => {
                let mut out = String::new();
                for o in store.active_operations().await? {
                    writeln!(
                        out,
                        "{} {} {} {}",
                        o.id,
                        o.cluster_id,
                        upper(o.kind),
                        upper(o.state)
                    )
                    .unwrap();
                }
                out
            }
            "usage" => {
                let usage = store.tenant_usage(args.get(0)).await?;
                format!(
                    "clusters={} configurations={}",
                    usage.clusters, usage.configurations
                )
            }
            "report" => self.report(args).await?,
            "reconciler" => {
                let mut options = ReconcilerOptions::default();
                if let Some(ms) = args.num("grace") {
                    options.settings.unhealthy_grace_ms = ms;
                }
                if let Some(ms) = args.num("node-timeout") {
                    options.settings.node_timeout_ms = ms;
                }
                if let Some(ms) = args.num("sync-timeout") {
                    options.settings.replicas_in_sync_timeout_ms = ms;
                }
                self.reconciler =
                    Reconciler::new(Arc::clone(&self.store), AlwaysLeader, options.clone());
                self.options = options;
                String::new()
            }
            "plan" => self.plan().await?,
            "settle" => {
                let mut passes = 0;
                while self.reconciler.pass().await? {
                    passes += 1;
                    assert!(passes < 20, "the reconciler kept changing things");
                }
                let hosts = args.options.get("hosts").is_none_or(|v| v != "no");
                format!("{passes} passes\n{}", self.state(hosts).await?)
            }
            "state" => self.state(true).await?,
            other => panic!("unknown command {other}"),
        })
    }

    /// Every host's agent reports every assigned node. See the module docs.
    async fn report(&mut self, args: &Args) -> Result<String> {
        let now_ms = self.store.now_ms();
        let only: Option<Vec<String>> = args
            .options
            .get("hosts")
            .map(|h| h.split(',').map(str::to_owned).collect());
        let by_role = |key: &str| args.options.get(key).map(|s| parse_enum(&NODE_STATES, s));
        let (controllers, brokers) = (by_role("controllers"), by_role("brokers"));
        let nodes: BTreeMap<NodeId, NodeState> = args
            .options
            .get("node")
            .map(|n| pairs(n, ':'))
            .unwrap_or_default()
            .into_iter()
            .map(|(id, s)| (id.parse().unwrap(), parse_enum(&NODE_STATES, &s)))
            .collect();
        let replication = args.options.get("replication").map(|r| {
            let n: Vec<u32> = r.split('/').map(|x| x.parse().unwrap()).collect();
            ReplicationHealth {
                partitions: n[0],
                under_replicated: n[1],
                offline: n[2],
            }
        });
        let mut out = String::new();
        for host in self.store.list_hosts(PageRequest::default()).await?.items {
            if only.as_ref().is_some_and(|o| !o.contains(&host.id)) {
                continue;
            }
            let reports: Vec<NodeReport> = host
                .assignments
                .iter()
                .map(|a| {
                    let state = nodes.get(&a.node_id).copied().unwrap_or(
                        match a.role {
                            Role::Controller => controllers,
                            Role::Broker => brokers,
                        }
                        .unwrap_or(NodeState::Running),
                    );
                    if state == NodeState::Unhealthy {
                        self.unhealthy_since.entry(a.node_id).or_insert(now_ms);
                    } else {
                        self.unhealthy_since.remove(&a.node_id);
                    }
                    NodeReport {
                        cluster_id: a.cluster_id.clone(),
                        node_id: a.node_id,
                        state,
                        message: if state == NodeState::Unhealthy {
                            "exited with status 1: port in use".into()
                        } else {
                            String::new()
                        },
                        config_fingerprint: a.config_fingerprint.clone(),
                        probe: replication
                            .filter(|_| state == NodeState::Running)
                            .map(|r| NodeProbe {
                                broker_epoch: if a.role == Role::Broker { 7 } else { -1 },
                                quorum_leader_id: 1,
                                replication: (a.role == Role::Broker).then_some(r),
                                ..Default::default()
                            }),
                        reported_at_ms: 0,
                        running_since_ms: None,
                    }
                })
                .collect();
            let count = reports.len();
            self.store
                .report_host(&host.id, host.generation, reports)
                .await?;
            writeln!(out, "{} reported {count} nodes", host.id).unwrap();
        }
        Ok(out)
    }

    /// What [`plan::decide`] would do now for every active operation, without doing it.
    async fn plan(&self) -> Result<String> {
        let hosts = self.store.list_hosts(PageRequest::default()).await?.items;
        let now_ms = self.store.now_ms();
        let mut out = String::new();
        for operation in self.store.active_operations().await? {
            let cluster = self
                .store
                .get_cluster(&operation.tenant, &operation.cluster_id)
                .await?;
            let view = View {
                cluster: &cluster,
                operation: &operation,
                hosts: &hosts,
                now_ms,
                unhealthy_since: &self.unhealthy_since,
            };
            let effects = plan::decide(&view, &self.options.settings);
            writeln!(
                out,
                "{} {}: {} effects",
                operation.id,
                upper(operation.kind),
                effects.len()
            )
            .unwrap();
            for effect in effects {
                render_effect(&mut out, &effect);
            }
        }
        Ok(out)
    }

    /// Every cluster (of every tenant named), every operation started, every host.
    async fn state(&self, hosts: bool) -> Result<String> {
        let mut out = String::new();
        for tenant in &self.tenants {
            let page = PageRequest::first(crate::model::PAGE_SIZE_MAX);
            for cluster in self.store.list_clusters(tenant, "", page).await?.items {
                render_cluster(&mut out, &cluster);
            }
        }
        for (tenant, id) in &self.operations {
            match self.store.get_operation(tenant, id).await {
                Ok(op) => render_operation(&mut out, &op),
                Err(Error::NotFound(_)) => writeln!(out, "operation {id} pruned").unwrap(),
                Err(err) => return Err(err),
            }
        }
        if hosts {
            for host in self.store.list_hosts(PageRequest::default()).await?.items {
                render_host(&mut out, &host);
            }
        }
        Ok(out)
    }
}

fn page_request(args: &Args) -> PageRequest {
    PageRequest {
        page_size: args.num("size").unwrap_or(0),
        page_token: args.options.get("token").map(|t| long_id(t)),
    }
}

fn render_cluster(out: &mut String, c: &Cluster) {
    let op = c.active_operation.as_deref().unwrap_or("-");
    writeln!(
        out,
        "cluster {} {}/{} {} v{} brokers={} op={op}",
        c.id,
        c.tenant,
        c.spec.name,
        upper(c.status.state),
        c.current_version,
        c.spec.broker_count
    )
    .unwrap();
    if !c.status.state_info.code.is_empty() {
        let info = &c.status.state_info;
        writeln!(out, "  info {}: {}", info.code, info.message).unwrap();
    }
    if !c.status.placement.is_empty() {
        let nodes: Vec<String> = c
            .status
            .placement
            .iter()
            .map(|a| format!("{}@{}", a.node_id, a.host))
            .collect();
        writeln!(out, "  placement {}", nodes.join(" ")).unwrap();
        let bootstrap = c.bootstrap_brokers();
        if !bootstrap.is_empty() {
            writeln!(out, "  bootstrap {bootstrap}").unwrap();
        }
    }
}

fn render_operation(out: &mut String, o: &Operation) {
    let ended = o
        .ended_at_ms
        .map_or(String::new(), |t| format!(" ended={t}"));
    writeln!(
        out,
        "operation {} {} {} {} {}%{ended}",
        o.id,
        o.cluster_id,
        upper(o.kind),
        upper(o.state),
        o.progress_percent
    )
    .unwrap();
    for step in &o.steps {
        let message = if step.message.is_empty() {
            String::new()
        } else {
            format!(": {}", step.message)
        };
        writeln!(out, "  {} {}{message}", upper(step.state), step.name).unwrap();
    }
    if let Some(error) = &o.error {
        writeln!(out, "  error {}: {}", error.code, error.message).unwrap();
    }
}

fn render_host(out: &mut String, h: &Host) {
    writeln!(
        out,
        "host {} zone={} {} {}-{} {} gen={} applied={}",
        h.id,
        h.zone,
        h.address,
        h.ports.lo,
        h.ports.hi,
        upper(h.health),
        h.generation,
        h.applied_generation
    )
    .unwrap();
    for (label, list) in [("assigned", &h.assignments), ("releasing", &h.releasing)] {
        for a in list {
            let port = a.kafka_port.or(a.controller_port).unwrap_or(0);
            writeln!(
                out,
                "  {label} {}/{} {} :{port} config={}",
                a.cluster_id,
                a.node_id,
                upper(a.role),
                &a.config_fingerprint[..a.config_fingerprint.len().min(8)]
            )
            .unwrap();
        }
    }
    for n in &h.nodes {
        writeln!(
            out,
            "  node {}/{} {} config={}",
            n.cluster_id,
            n.node_id,
            upper(n.state),
            &n.config_fingerprint[..n.config_fingerprint.len().min(8)]
        )
        .unwrap();
    }
}

fn render_effect(out: &mut String, effect: &Effect) {
    match effect {
        Effect::SetStatus(status) => {
            let info = &status.state_info;
            let info = if info.code.is_empty() {
                String::new()
            } else {
                format!(" {}: {}", info.code, info.message)
            };
            writeln!(
                out,
                "  set-status {} placement={}{info}",
                upper(status.state),
                status.placement.len()
            )
            .unwrap();
        }
        Effect::SetAssignments {
            host_id,
            assignments,
            expected_generation,
        } => {
            let nodes: Vec<String> = assignments
                .iter()
                .map(|a| format!("{}/{}", a.cluster_id, a.node_id))
                .collect();
            writeln!(
                out,
                "  set-assignments {host_id} at gen={expected_generation}: {}",
                nodes.join(" ")
            )
            .unwrap();
        }
        Effect::UpdateOperation(update) => {
            let mut parts = Vec::new();
            if let Some(state) = update.state {
                parts.push(upper(state));
            }
            if let Some(percent) = update.progress_percent {
                parts.push(format!("{percent}%"));
            }
            if let Some(steps) = &update.steps {
                let states: Vec<String> = steps.iter().map(|s| upper(s.state)).collect();
                parts.push(format!("steps={}", states.join(",")));
            }
            if let Some(error) = &update.error {
                parts.push(format!("error={}", error.code));
            }
            writeln!(out, "  update-operation {}", parts.join(" ")).unwrap();
        }
        Effect::RemoveCluster => writeln!(out, "  remove-cluster").unwrap(),
    }
}
