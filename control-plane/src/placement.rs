//! Placement: which host runs each node of a cluster, and on which ports.
//!
//! The cluster reconciler calls [`plan`] with the desired shape of a cluster (a [`Request`]), the
//! hosts that agents have registered (each [`Host`] with its zone, address, port range, capacity
//! and the nodes of *other* clusters already running there), and the cluster's current
//! [`Placement`]. It gets back the full desired placement, one [`Assignment`] per node, which it
//! turns into per-host assignments for the agents. [`plan`] is a pure function: no I/O, no clock,
//! no randomness; the same inputs always give the same output.
//!
//! # Rules
//!
//! - **Node ids** are those of `ferry dev --nodes`: controllers `1..=C`, brokers `101..`. A node
//!   keeps its id for its whole life; re-planning (after a host is lost, or when the broker count
//!   changes) keeps every node that still has a valid home where it is, with its ports, and gives
//!   a replaced node its old id on a new host.
//! - **Zones.** Zones are taken in sorted order. Broker `101 + i` lives in zone `i % Z`, so brokers
//!   spread evenly (the broker count must be a multiple of the zone count) and scaling by a
//!   multiple of `Z` adds or removes one broker per zone. Controller `1 + k` lives in zone `k % Z`:
//!   3 controllers over 3 zones are one per zone, 5 are spread 2/2/1.
//! - **Hosts.** Within its zone a node goes to the host with the fewest nodes of this cluster (for
//!   a controller: fewest controllers of this cluster first), then the least loaded host, then
//!   the smallest host id. So no two nodes of a cluster share a host while the zone has enough
//!   hosts, and controllers take distinct hosts before brokers are considered. When the zone has
//!   too few hosts, nodes share hosts rather than fail, as long as capacity remains.
//! - **Capacity.** A host takes at most `max_nodes` nodes in all (all clusters) and at most
//!   `storage_bytes` of node storage (brokers need `storage_per_broker_bytes`, controllers
//!   `controller_storage_bytes`).
//! - **Ports** are allocated per host *address*, not per host: hosts that share an address (the
//!   agents of `ferry dev` all listen on loopback) share its ports. A node takes the lowest port
//!   of its host's range that no node of any cluster uses on that address. Brokers get a Kafka
//!   port, controllers a controller port, and every node an admin port (its health endpoint,
//!   which the agent polls): two ports per node.
//!
//! # Caveats
//!
//! - Kept nodes are never moved to rebalance: a host that became overloaded stays so until an
//!   operator acts. Only nodes whose host is gone (or no longer in the node's zone) move.
//! - The caller passes only hosts that may take nodes; a host missing from the list is treated as
//!   lost and its nodes are re-placed.
//! - The heuristic is greedy. It never backtracks, so in contrived cases (one big node that only
//!   fits a host an earlier, smaller node already took) it reports a shortage that a cleverer
//!   search would avoid.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use ferry_kafka_config::ids::NodeId;

use crate::spec::ClusterSpec;

/// The id of the first controller; controllers are `1..=C`.
pub const FIRST_CONTROLLER_ID: NodeId = 1;
/// The id of the first broker; brokers are `101..101 + B`, as in `ferry dev --nodes`.
pub const FIRST_BROKER_ID: NodeId = 101;

// Controller ids must stay below broker ids for the largest controller quorum we allow.
const _: () = assert!(FIRST_CONTROLLER_ID + 5 <= FIRST_BROKER_ID);

/// A host's identity, as its agent registered it (unique among hosts).
pub type HostId = String;

/// What a node does in its cluster.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A member of the cluster's KRaft-style metadata quorum.
    Controller,
    /// A Kafka broker serving clients.
    Broker,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Controller => "controller",
            Role::Broker => "broker",
        })
    }
}

/// An inclusive range of ports, `lo..=hi`, that a host offers to nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRange {
    /// The lowest port offered.
    pub lo: u16,
    /// The highest port offered (inclusive).
    pub hi: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

/// A node of another cluster that already runs on a host, as far as placement cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Occupant {
    /// The ports it listens on (on its host's address).
    pub ports: Vec<u16>,
    /// The storage reserved for it.
    pub storage_bytes: u64,
}

/// A registered host that may take nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host's id.
    pub id: HostId,
    /// Its failure domain; a broker's `rack`.
    pub zone: String,
    /// The address its nodes listen on and advertise. Several hosts may share one.
    pub address: String,
    /// The ports its nodes may use.
    pub ports: PortRange,
    /// How many nodes (of all clusters) it may run.
    pub max_nodes: u32,
    /// How much node storage it offers in all.
    pub storage_bytes: u64,
    /// Nodes of other clusters already running there.
    pub occupants: Vec<Occupant>,
}

/// The shape of the cluster to place, taken from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Number of brokers; a multiple of the number of zones.
    pub broker_count: u32,
    /// Number of controllers (3 or 5 for a real cluster; placement takes any count ≥ 1).
    pub controller_count: u32,
    /// The zones to spread over (order does not matter; they are sorted).
    pub zones: Vec<String>,
    /// Storage each broker needs.
    pub storage_per_broker_bytes: u64,
    /// Storage each controller needs (its metadata log and snapshots).
    pub controller_storage_bytes: u64,
}

impl Request {
    /// The placement request for `spec`, giving each controller `controller_storage_bytes`.
    pub fn for_spec(spec: &ClusterSpec, controller_storage_bytes: u64) -> Self {
        Self {
            broker_count: spec.broker_count,
            controller_count: spec.controller_count,
            zones: spec.zones.clone(),
            storage_per_broker_bytes: spec.storage_per_broker_bytes,
            controller_storage_bytes,
        }
    }
}

/// Where one node runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    /// The node's id in its cluster; never changes.
    pub node_id: NodeId,
    /// Broker or controller.
    pub role: Role,
    /// The host that runs it.
    pub host: HostId,
    /// The host's zone (the broker's rack).
    pub zone: String,
    /// The host's address, for listeners and bootstrap strings.
    pub address: String,
    /// The Kafka listener port (brokers).
    pub kafka_port: Option<u16>,
    /// The controller (quorum) port (controllers).
    pub controller_port: Option<u16>,
    /// The admin port: the node's health endpoint, which its agent polls.
    pub admin_port: u16,
}

impl Assignment {
    /// The ports this node takes on its address.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.kafka_port
            .into_iter()
            .chain(self.controller_port)
            .chain(std::iter::once(self.admin_port))
    }
}

/// A cluster's placement: one assignment per node, sorted by node id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// The nodes, sorted by node id.
    pub nodes: Vec<Assignment>,
}

impl Placement {
    /// The assignment of `node_id`, if it is placed.
    pub fn node(&self, node_id: NodeId) -> Option<&Assignment> {
        self.nodes.iter().find(|a| a.node_id == node_id)
    }

    /// The assignments on `host`, in node id order.
    pub fn on_host<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.nodes.iter().filter(move |a| a.host == host)
    }
}

/// Why a placement could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request contradicts the cluster rules (spec validation should have refused it): a bug
    /// or a stale spec, not something more hosts would fix.
    #[error("invalid placement request: {0}")]
    InvalidRequest(String),
    /// The registered hosts lack something the cluster needs; registering hosts or freeing
    /// capacity fixes it, so the reconciler reports it and retries later.
    #[error("{0}")]
    Insufficient(Shortage),
}

/// What the hosts lack, named precisely enough for an operator to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortage {
    /// No registered host is in the zone.
    NoHostsInZone {
        /// The zone.
        zone: String,
    },
    /// The zone's hosts have fewer free node slots than the nodes to place there.
    ZoneFull {
        /// The zone.
        zone: String,
        /// Hosts in the zone with at least one free node slot.
        hosts_with_room: usize,
        /// Free node slots over the zone's hosts.
        free_slots: u64,
        /// Nodes the cluster still has to place in the zone.
        needed: usize,
    },
    /// No host in the zone with a free slot has the storage one node needs.
    NoStorage {
        /// The zone.
        zone: String,
        /// The node that did not fit.
        node_id: NodeId,
        /// The storage it needs.
        needed_bytes: u64,
        /// The most free storage on any host of the zone with a free slot.
        most_free_bytes: u64,
    },
    /// The best host for a node has room but no free port on its address.
    NoFreePort {
        /// The host.
        host: HostId,
        /// Its address.
        address: String,
        /// Its port range.
        range: PortRange,
    },
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortage::NoHostsInZone { zone } => write!(f, "no registered host is in zone {zone}"),
            Shortage::ZoneFull {
                zone,
                hosts_with_room,
                free_slots,
                needed,
            } => write!(
                f,
                "zone {zone} has {hosts_with_room} {} with free capacity ({free_slots} free node \
                 {}) but the cluster needs {needed} {} there",
                plural(*hosts_with_room as u64, "host", "hosts"),
                plural(*free_slots, "slot", "slots"),
                plural(*needed as u64, "node", "nodes"),
            ),
            Shortage::NoStorage {
                zone,
                node_id,
                needed_bytes,
                most_free_bytes,
            } => write!(
                f,
                "no host in zone {zone} has {needed_bytes} bytes of free storage for node \
                 {node_id} (the most free is {most_free_bytes} bytes)"
            ),
            Shortage::NoFreePort {
                host,
                address,
                range,
            } => write!(
                f,
                "no free port in {range} on host {host} (address {address})"
            ),
        }
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Plans the placement of a cluster shaped like `request` over `hosts`, keeping the nodes of
/// `current` that still have a valid home.
///
/// Returns every node of the cluster (kept and new) sorted by node id. Nodes of `current` whose
/// ids fall outside the request (a smaller broker count) are dropped.
///
/// # Errors
///
/// [`Error::InvalidRequest`] when the request breaks the cluster rules (no zones, duplicate
/// zones, no controllers, brokers not a multiple of the zones); [`Error::Insufficient`] naming
/// the first shortage met, zone by zone in sorted order.
///
/// # Panics
///
/// If two hosts share an id, or `current` gives a node id the other role: both are bugs in the
/// caller (host ids are unique in the store; node ids are assigned only here).
pub fn plan(request: &Request, hosts: &[Host], current: &Placement) -> Result<Placement, Error> {
    let zones = check_request(request)?;
    let mut state = State::new(request, hosts);

    // The node ids the cluster should have, each with its zone: controllers first, so they get
    // distinct hosts before brokers take any.
    let wanted: Vec<(NodeId, Role, &str)> = (0..request.controller_count)
        .map(|k| {
            let zone = zones[k as usize % zones.len()];
            (FIRST_CONTROLLER_ID + k as NodeId, Role::Controller, zone)
        })
        .chain((0..request.broker_count).map(|i| {
            let zone = zones[i as usize % zones.len()];
            (FIRST_BROKER_ID + i as NodeId, Role::Broker, zone)
        }))
        .collect();

    // Keep every current node whose host is still registered and in the node's zone. Their
    // resources are taken before anything new is placed.
    let mut placed: BTreeMap<NodeId, Assignment> = BTreeMap::new();
    for &(node_id, role, zone) in &wanted {
        let Some(old) = current.node(node_id) else {
            continue;
        };
        assert_eq!(old.role, role, "node {node_id} changed role");
        if let Some(host) = state.host_index(&old.host)
            && state.hosts[host].zone == zone
        {
            state.take(host, role, old.ports());
            placed.insert(node_id, old.clone());
        }
    }

    // Before placing anything, check each zone has enough slots for what is left to place, so
    // the error speaks of the whole zone rather than of one node.
    for zone in &zones {
        let needed = wanted
            .iter()
            .filter(|(id, _, z)| z == zone && !placed.contains_key(id))
            .count();
        state.check_zone_slots(zone, needed)?;
    }

    for &(node_id, role, zone) in &wanted {
        if placed.contains_key(&node_id) {
            continue;
        }
        let assignment = state.place(node_id, role, zone)?;
        placed.insert(node_id, assignment);
    }

    Ok(Placement {
        nodes: placed.into_values().collect(),
    })
}

/// Checks the request and returns its zones, sorted.
fn check_request(request: &Request) -> Result<Vec<&str>, Error> {
    let invalid = |why: String| Err(Error::InvalidRequest(why));
    let zones: BTreeSet<&str> = request.zones.iter().map(String::as_str).collect();
    if zones.is_empty() {
        return invalid("a cluster needs at least one zone".into());
    }
    if zones.len() != request.zones.len() {
        return invalid(format!("zones {:?} repeat a zone", request.zones));
    }
    if request.controller_count == 0 {
        return invalid("a cluster needs at least one controller".into());
    }
    if !(request.broker_count as usize).is_multiple_of(zones.len()) {
        return invalid(format!(
            "{} brokers cannot spread evenly over {} zones",
            request.broker_count,
            zones.len()
        ));
    }
    Ok(zones.into_iter().collect())
}

/// The resources left while planning: per host, slots, storage and this cluster's nodes; per
/// address, the ports in use.
struct State<'a> {
    request: &'a Request,
    /// The hosts, sorted by id.
    hosts: Vec<&'a Host>,
    /// Per host (same index): nodes of all clusters, storage used, and this cluster's nodes.
    used: Vec<HostUse>,
    /// Ports in use on each address, by any cluster.
    ports: BTreeMap<&'a str, BTreeSet<u16>>,
}

#[derive(Default, Clone)]
struct HostUse {
    nodes: u64,
    storage_bytes: u64,
    cluster_nodes: u32,
    cluster_controllers: u32,
}

impl<'a> State<'a> {
    fn new(request: &'a Request, hosts: &'a [Host]) -> Self {
        let mut sorted: Vec<&Host> = hosts.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        for pair in sorted.windows(2) {
            assert_ne!(pair[0].id, pair[1].id, "host ids must be unique");
        }
        let mut ports: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
        let used = sorted
            .iter()
            .map(|host| {
                let on_address = ports.entry(host.address.as_str()).or_default();
                for occupant in &host.occupants {
                    on_address.extend(occupant.ports.iter().copied());
                }
                HostUse {
                    nodes: host.occupants.len() as u64,
                    storage_bytes: host.occupants.iter().map(|o| o.storage_bytes).sum(),
                    ..HostUse::default()
                }
            })
            .collect();
        Self {
            request,
            hosts: sorted,
            used,
            ports,
        }
    }

    fn host_index(&self, id: &str) -> Option<usize> {
        self.hosts.binary_search_by(|h| h.id.as_str().cmp(id)).ok()
    }

    fn storage_for(&self, role: Role) -> u64 {
        match role {
            Role::Controller => self.request.controller_storage_bytes,
            Role::Broker => self.request.storage_per_broker_bytes,
        }
    }

    fn free_slots(&self, host: usize) -> u64 {
        u64::from(self.hosts[host].max_nodes).saturating_sub(self.used[host].nodes)
    }

    fn free_storage(&self, host: usize) -> u64 {
        self.hosts[host]
            .storage_bytes
            .saturating_sub(self.used[host].storage_bytes)
    }

    /// Records that a node of this cluster with `role` runs on `host` using `ports`.
    fn take(&mut self, host: usize, role: Role, ports: impl Iterator<Item = u16>) {
        let storage = self.storage_for(role);
        let used = &mut self.used[host];
        used.nodes += 1;
        used.storage_bytes += storage;
        used.cluster_nodes += 1;
        if role == Role::Controller {
            used.cluster_controllers += 1;
        }
        let on_address = self
            .ports
            .entry(self.hosts[host].address.as_str())
            .or_default();
        for port in ports {
            on_address.insert(port);
        }
    }

    fn zone_hosts(&self, zone: &str) -> impl Iterator<Item = usize> + '_ {
        let zone = zone.to_string();
        (0..self.hosts.len()).filter(move |&h| self.hosts[h].zone == zone)
    }

    fn check_zone_slots(&self, zone: &str, needed: usize) -> Result<(), Error> {
        let hosts: Vec<usize> = self.zone_hosts(zone).collect();
        if hosts.is_empty() {
            return Err(Error::Insufficient(Shortage::NoHostsInZone {
                zone: zone.to_string(),
            }));
        }
        let free_slots: u64 = hosts.iter().map(|&h| self.free_slots(h)).sum();
        if free_slots < needed as u64 {
            return Err(Error::Insufficient(Shortage::ZoneFull {
                zone: zone.to_string(),
                hosts_with_room: hosts.iter().filter(|&&h| self.free_slots(h) > 0).count(),
                free_slots,
                needed,
            }));
        }
        Ok(())
    }

    /// The two lowest ports in `host`'s range that nothing uses on its address: a node's main
    /// port and its admin port.
    fn free_ports(&self, host: usize) -> Option<(u16, u16)> {
        let host_ref = self.hosts[host];
        let in_use = self.ports.get(host_ref.address.as_str());
        let mut free = (host_ref.ports.lo..=host_ref.ports.hi)
            .filter(|port| in_use.is_none_or(|used| !used.contains(port)));
        Some((free.next()?, free.next()?))
    }

    /// Places one new node in `zone`: the best host with a free slot, storage and a port.
    fn place(&mut self, node_id: NodeId, role: Role, zone: &str) -> Result<Assignment, Error> {
        let needed_bytes = self.storage_for(role);
        let mut candidates: Vec<usize> = self
            .zone_hosts(zone)
            .filter(|&h| self.free_slots(h) > 0)
            .collect();
        // Fewest nodes of this cluster first (controllers: fewest controllers first), then the
        // least loaded host, then the host id (the sort is stable over hosts sorted by id).
        candidates.sort_by_key(|&h| {
            let used = &self.used[h];
            let controllers = match role {
                Role::Controller => used.cluster_controllers,
                Role::Broker => 0,
            };
            (controllers, used.cluster_nodes, used.nodes)
        });

        let mut port_shortage = None;
        let mut most_free_bytes = 0;
        for host in candidates {
            let free = self.free_storage(host);
            most_free_bytes = most_free_bytes.max(free);
            if free < needed_bytes {
                continue;
            }
            let Some((port, admin_port)) = self.free_ports(host) else {
                let h = self.hosts[host];
                port_shortage.get_or_insert(Shortage::NoFreePort {
                    host: h.id.clone(),
                    address: h.address.clone(),
                    range: h.ports,
                });
                continue;
            };
            let h = self.hosts[host];
            let (kafka_port, controller_port) = match role {
                Role::Broker => (Some(port), None),
                Role::Controller => (None, Some(port)),
            };
            let assignment = Assignment {
                node_id,
                role,
                host: h.id.clone(),
                zone: h.zone.clone(),
                address: h.address.clone(),
                kafka_port,
                controller_port,
                admin_port,
            };
            self.take(host, role, [port, admin_port].into_iter());
            return Ok(assignment);
        }
        Err(Error::Insufficient(port_shortage.unwrap_or(
            Shortage::NoStorage {
                zone: zone.to_string(),
                node_id,
                needed_bytes,
                most_free_bytes,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// A host `id` in `zone` on its own address, with ports 40000-40099, room for `max_nodes`
    /// nodes and 10 TiB of storage, running nothing.
    fn host(id: &str, zone: &str, max_nodes: u32) -> Host {
        Host {
            id: id.to_string(),
            zone: zone.to_string(),
            address: format!(
                "10.0.0.{}",
                id.trim_start_matches(|c: char| !c.is_ascii_digit())
            ),
            ports: PortRange {
                lo: 40000,
                hi: 40099,
            },
            max_nodes,
            storage_bytes: 10 * 1024 * GIB,
            occupants: Vec::new(),
        }
    }

    /// `per_zone` hosts in each of zones a, b, c, named h1, h2, … (zone a first).
    fn hosts(per_zone: usize, max_nodes: u32) -> Vec<Host> {
        let mut out = Vec::new();
        for (z, zone) in ["a", "b", "c"].iter().enumerate() {
            for i in 0..per_zone {
                out.push(host(&format!("h{}", z * per_zone + i + 1), zone, max_nodes));
            }
        }
        out
    }

    fn request(brokers: u32, controllers: u32) -> Request {
        Request {
            broker_count: brokers,
            controller_count: controllers,
            zones: vec!["a".into(), "b".into(), "c".into()],
            storage_per_broker_bytes: 100 * GIB,
            controller_storage_bytes: GIB,
        }
    }

    fn ids(placement: &Placement, role: Role) -> Vec<NodeId> {
        placement
            .nodes
            .iter()
            .filter(|a| a.role == role)
            .map(|a| a.node_id)
            .collect()
    }

    fn per_zone(placement: &Placement, role: Role) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for a in placement.nodes.iter().filter(|a| a.role == role) {
            *out.entry(a.zone.clone()).or_default() += 1;
        }
        out
    }

    fn distinct_hosts(placement: &Placement, role: Option<Role>) -> usize {
        placement
            .nodes
            .iter()
            .filter(|a| role.is_none_or(|r| a.role == r))
            .map(|a| a.host.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Every (address, port) pair is used once, counting `hosts`' occupants too.
    fn assert_ports_unique(placement: &Placement, hosts: &[Host]) {
        let mut seen = BTreeSet::new();
        for h in hosts {
            for o in &h.occupants {
                for &p in &o.ports {
                    assert!(
                        seen.insert((h.address.clone(), p)),
                        "occupant port {p} twice"
                    );
                }
            }
        }
        for a in &placement.nodes {
            let mut ports = a.ports().peekable();
            assert!(ports.peek().is_some(), "node {} has no port", a.node_id);
            for p in ports {
                assert!(
                    seen.insert((a.address.clone(), p)),
                    "port {}:{p} given twice (node {})",
                    a.address,
                    a.node_id
                );
            }
            let h = hosts.iter().find(|h| h.id == a.host).unwrap();
            assert!(a.ports().all(|p| (h.ports.lo..=h.ports.hi).contains(&p)));
        }
    }

    fn shortage(result: Result<Placement, Error>) -> Shortage {
        match result {
            Err(Error::Insufficient(s)) => s,
            other => panic!("expected a shortage, got {other:?}"),
        }
    }

    #[test]
    fn three_brokers_three_controllers_over_three_hosts_one_per_zone_each() {
        let hosts = hosts(1, 4);
        let placement = plan(&request(3, 3), &hosts, &Placement::default()).unwrap();

        assert_eq!(ids(&placement, Role::Controller), vec![1, 2, 3]);
        assert_eq!(ids(&placement, Role::Broker), vec![101, 102, 103]);
        // Sorted zones, round robin by id: 1 and 101 in a, 2 and 102 in b, 3 and 103 in c.
        let zones: Vec<(NodeId, &str, &str)> = placement
            .nodes
            .iter()
            .map(|a| (a.node_id, a.zone.as_str(), a.host.as_str()))
            .collect();
        assert_eq!(
            zones,
            vec![
                (1, "a", "h1"),
                (2, "b", "h2"),
                (3, "c", "h3"),
                (101, "a", "h1"),
                (102, "b", "h2"),
                (103, "c", "h3"),
            ]
        );
        // Each host runs a controller (first two ports: main, admin) and a broker (next two).
        let h1: Vec<_> = placement.on_host("h1").collect();
        assert_eq!(h1[0].controller_port, Some(40000));
        assert_eq!(h1[0].kafka_port, None);
        assert_eq!(h1[0].admin_port, 40001);
        assert_eq!(h1[1].kafka_port, Some(40002));
        assert_eq!(h1[1].controller_port, None);
        assert_eq!(h1[1].admin_port, 40003);
        assert_ports_unique(&placement, &hosts);
    }

    #[test]
    fn sixty_brokers_and_five_controllers_over_three_zones_each_on_its_own_host() {
        let hosts = hosts(22, 4);
        let placement = plan(&request(60, 5), &hosts, &Placement::default()).unwrap();

        assert_eq!(placement.nodes.len(), 65);
        assert_eq!(ids(&placement, Role::Controller), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            ids(&placement, Role::Broker),
            (101..=160).collect::<Vec<_>>()
        );
        let brokers = per_zone(&placement, Role::Broker);
        assert_eq!(
            brokers.values().copied().collect::<Vec<_>>(),
            vec![20, 20, 20]
        );
        let controllers = per_zone(&placement, Role::Controller);
        assert_eq!(
            controllers.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        // 66 hosts suffice, so no two nodes share one.
        assert_eq!(distinct_hosts(&placement, None), 65);
        assert_ports_unique(&placement, &hosts);
    }

    #[test]
    fn sixty_five_nodes_share_fifteen_hosts_evenly_with_controllers_apart() {
        let hosts = hosts(5, 5);
        let placement = plan(&request(60, 5), &hosts, &Placement::default()).unwrap();

        assert_eq!(distinct_hosts(&placement, Some(Role::Controller)), 5);
        let controllers = per_zone(&placement, Role::Controller);
        assert_eq!(
            controllers.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        // 65 nodes on 15 hosts: every host used, none with more than 5.
        for h in &hosts {
            let n = placement.on_host(&h.id).count();
            assert!((4..=5).contains(&n), "host {} runs {n} nodes", h.id);
        }
        assert_ports_unique(&placement, &hosts);
    }

    #[test]
    fn nodes_share_hosts_only_when_the_zone_lacks_hosts() {
        // Zone a has two hosts, b and c one each; 6 brokers and 3 controllers.
        let mut hosts = hosts(1, 10);
        hosts.push(host("h9", "a", 10));
        let placement = plan(&request(6, 3), &hosts, &Placement::default()).unwrap();

        // Zone a: controller 1 and brokers 101, 104 over h1 and h9: h1 gets the controller and
        // a broker (it is the only way), h9 one broker, never both brokers on one host.
        let on = |h: &str| placement.on_host(h).map(|a| a.node_id).collect::<Vec<_>>();
        assert_eq!(on("h1"), vec![1, 104]);
        assert_eq!(on("h9"), vec![101]);
        // Zones b and c have one host each, so their three nodes share it.
        assert_eq!(on("h2"), vec![2, 102, 105]);
        assert_eq!(on("h3"), vec![3, 103, 106]);
        assert_ports_unique(&placement, &hosts);
    }

    #[test]
    fn controllers_take_distinct_hosts_before_brokers_do() {
        // Five controllers over one zone of five hosts, then brokers fill in.
        let hosts: Vec<Host> = (1..=5).map(|i| host(&format!("h{i}"), "a", 4)).collect();
        let mut req = request(5, 5);
        req.zones = vec!["a".into()];
        let placement = plan(&req, &hosts, &Placement::default()).unwrap();
        assert_eq!(distinct_hosts(&placement, Some(Role::Controller)), 5);
        // And each broker then joins one controller, never two brokers together.
        assert_eq!(distinct_hosts(&placement, Some(Role::Broker)), 5);
    }

    #[test]
    fn existing_load_on_hosts_is_avoided_and_its_ports_skipped() {
        // Zone a has two hosts: h1 already runs two nodes of another cluster, h9 none.
        let mut hosts = hosts(1, 4);
        hosts[0].occupants = vec![
            Occupant {
                ports: vec![40000, 40001],
                storage_bytes: 100 * GIB,
            },
            Occupant {
                ports: vec![40002],
                storage_bytes: 100 * GIB,
            },
        ];
        hosts.push(host("h9", "a", 4));
        let placement = plan(&request(3, 3), &hosts, &Placement::default()).unwrap();

        // The less loaded h9 takes the controller, then the broker goes to h1 (fewer nodes of
        // this cluster beats lower load) on the first ports the others leave free.
        let c1 = placement.node(1).unwrap();
        assert_eq!(
            (c1.host.as_str(), c1.controller_port, c1.admin_port),
            ("h9", Some(40000), 40001)
        );
        let b101 = placement.node(101).unwrap();
        assert_eq!(
            (b101.host.as_str(), b101.kafka_port, b101.admin_port),
            ("h1", Some(40003), 40004)
        );
        assert_ports_unique(&placement, &hosts);
    }

    #[test]
    fn hosts_sharing_an_address_share_its_ports() {
        // Three agents on loopback, as in `ferry dev`.
        let mut hosts = hosts(1, 4);
        for h in &mut hosts {
            h.address = "127.0.0.1".into();
        }
        hosts[1].occupants = vec![Occupant {
            ports: vec![40000],
            storage_bytes: 0,
        }];
        let placement = plan(&request(3, 3), &hosts, &Placement::default()).unwrap();

        // Two ports per node (main and admin), six nodes: 40001-40012.
        let mut ports: Vec<u16> = placement.nodes.iter().flat_map(|a| a.ports()).collect();
        ports.sort();
        assert_eq!(ports, (40001..=40012).collect::<Vec<_>>());
        assert_ports_unique(&placement, &hosts);
    }

    #[test]
    fn a_zone_without_enough_slots_is_named_with_what_it_lacks() {
        // Zone c: one host with one free slot, but a controller and a broker go there.
        let mut hosts = hosts(1, 4);
        hosts[2].max_nodes = 1;
        let err = plan(&request(3, 3), &hosts, &Placement::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "zone c has 1 host with free capacity (1 free node slot) but the cluster needs 2 \
             nodes there"
        );
        assert_eq!(
            shortage(Err(err)),
            Shortage::ZoneFull {
                zone: "c".into(),
                hosts_with_room: 1,
                free_slots: 1,
                needed: 2,
            }
        );
    }

    #[test]
    fn a_zone_without_hosts_is_named() {
        let hosts: Vec<Host> = hosts(1, 4).into_iter().filter(|h| h.zone != "b").collect();
        let err = plan(&request(3, 3), &hosts, &Placement::default()).unwrap_err();
        assert_eq!(err.to_string(), "no registered host is in zone b");
    }

    #[test]
    fn storage_exhaustion_names_the_node_and_the_largest_free_space() {
        let mut hosts = hosts(1, 4);
        hosts[1].storage_bytes = 50 * GIB;
        let err = shortage(plan(&request(3, 3), &hosts, &Placement::default()));
        assert_eq!(
            err,
            Shortage::NoStorage {
                zone: "b".into(),
                node_id: 102,
                needed_bytes: 100 * GIB,
                // The controller already took 1 GiB of the 50.
                most_free_bytes: 49 * GIB,
            }
        );
    }

    #[test]
    fn port_exhaustion_names_the_host_and_its_range() {
        let mut hosts = hosts(1, 4);
        // One port, but a node needs two (its main port and its admin port).
        hosts[2].ports = PortRange {
            lo: 40000,
            hi: 40000,
        };
        let err = plan(&request(3, 3), &hosts, &Placement::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free port in 40000-40000 on host h3 (address 10.0.0.3)"
        );
    }

    #[test]
    fn requests_breaking_the_cluster_rules_are_invalid() {
        let hosts = hosts(1, 10);
        let invalid = |req: Request| {
            matches!(
                plan(&req, &hosts, &Placement::default()),
                Err(Error::InvalidRequest(_))
            )
        };
        assert!(invalid(request(4, 3)), "4 brokers over 3 zones");
        assert!(invalid(request(3, 0)), "no controllers");
        let mut req = request(3, 3);
        req.zones.clear();
        assert!(invalid(req), "no zones");
        let mut req = request(2, 3);
        req.zones = vec!["a".into(), "a".into()];
        assert!(invalid(req), "a repeated zone");
    }

    #[test]
    fn replanning_keeps_every_node_with_a_home_unchanged() {
        let hosts = hosts(2, 4);
        let first = plan(&request(6, 3), &hosts, &Placement::default()).unwrap();
        let again = plan(&request(6, 3), &hosts, &first).unwrap();
        assert_eq!(again, first);
    }

    #[test]
    fn a_node_on_a_lost_host_keeps_its_id_in_its_zone_and_others_stay() {
        let all = hosts(2, 4);
        let first = plan(&request(6, 3), &all, &Placement::default()).unwrap();
        let lost = first.node(102).unwrap().host.clone();
        let lost_ids: Vec<NodeId> = first.on_host(&lost).map(|a| a.node_id).collect();

        let remaining: Vec<Host> = all.iter().filter(|h| h.id != lost).cloned().collect();
        let second = plan(&request(6, 3), &remaining, &first).unwrap();

        assert_eq!(second.nodes.len(), first.nodes.len());
        for (old, new) in first.nodes.iter().zip(&second.nodes) {
            assert_eq!(old.node_id, new.node_id);
            assert_eq!(old.zone, new.zone, "node {} changed zone", old.node_id);
            if lost_ids.contains(&old.node_id) {
                assert_ne!(new.host, lost);
            } else {
                assert_eq!(old, new, "node {} moved", old.node_id);
            }
        }
        assert_ports_unique(&second, &remaining);
    }

    #[test]
    fn scaling_brokers_adds_and_removes_one_per_zone_from_the_top_ids() {
        let hosts = hosts(3, 4);
        let three = plan(&request(3, 3), &hosts, &Placement::default()).unwrap();
        let six = plan(&request(6, 3), &hosts, &three).unwrap();
        for a in &three.nodes {
            assert_eq!(six.node(a.node_id), Some(a));
        }
        assert_eq!(
            per_zone(&six, Role::Broker)
                .values()
                .copied()
                .collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        // The new brokers take hosts of their zone that the cluster did not use yet.
        assert_eq!(distinct_hosts(&six, Some(Role::Broker)), 6);

        let back = plan(&request(3, 3), &hosts, &six).unwrap();
        assert_eq!(back, three);
    }

    #[test]
    fn a_request_takes_its_shape_from_the_cluster_spec() {
        let spec = ClusterSpec {
            broker_count: 6,
            controller_count: 5,
            zones: vec!["a".into(), "b".into()],
            storage_per_broker_bytes: 10 * GIB,
            ..ClusterSpec::default()
        };
        assert_eq!(
            Request::for_spec(&spec, GIB),
            Request {
                broker_count: 6,
                controller_count: 5,
                zones: vec!["a".into(), "b".into()],
                storage_per_broker_bytes: 10 * GIB,
                controller_storage_bytes: GIB,
            }
        );
    }

    #[test]
    fn placement_ignores_the_order_of_hosts_and_zones() {
        let hosts = hosts(3, 4);
        let mut reversed = hosts.clone();
        reversed.reverse();
        let mut req = request(9, 5);
        let a = plan(&req, &hosts, &Placement::default()).unwrap();
        req.zones.reverse();
        let b = plan(&req, &reversed, &Placement::default()).unwrap();
        assert_eq!(a, b);
    }
}
