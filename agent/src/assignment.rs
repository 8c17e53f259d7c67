//! What a host runs: one [`Assignment`] per node, as the control plane sends it, and the
//! `ferry node` command line it becomes.
//!
//! The agent keeps its own copy of the wire type (serde, so it can persist it) and never
//! interprets Kafka settings: `broker_config` goes to the node as `--set NAME=VALUE`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ferry_proto::controlplane::v1 as pb;
use serde::{Deserialize, Serialize};

/// A node's id in its cluster (Kafka's `node.id`): controllers 1..=C, brokers 101.. .
pub use ferry_kafka_config::ids::NodeId;

/// A process id.
pub type Pid = u32;

/// Names one node across clusters: the key of everything the agent tracks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeKey {
    /// The control plane's id of the node's cluster (also its Kafka cluster id).
    pub cluster_id: String,
    /// The node's id in that cluster.
    pub node_id: NodeId,
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} of cluster {}", self.node_id, self.cluster_id)
    }
}

/// What a node does in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// A member of the cluster's metadata quorum.
    Controller,
    /// A Kafka broker serving clients.
    Broker,
}

impl NodeRole {
    /// The role's name in `ferry node --roles`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Controller => "controller",
            NodeRole::Broker => "broker",
        }
    }
}

/// One node this host should run, with everything needed to start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The node's cluster; also the Kafka cluster id every node of the cluster is given.
    pub cluster_id: String,
    /// The node's id in its cluster.
    pub node_id: NodeId,
    /// Broker or controller.
    pub role: NodeRole,
    /// The host's zone: the broker's `rack`.
    pub zone: String,
    /// The IP address the node listens on and advertises.
    pub address: String,
    /// The Kafka listener port (brokers).
    pub kafka_port: Option<u16>,
    /// The controller (quorum) listener port (controllers).
    pub controller_port: Option<u16>,
    /// The admin port: the node's health endpoint, polled by the agent.
    pub admin_port: u16,
    /// The Kafka version the node presents (one binary serves every version today).
    pub kafka_version: String,
    /// Storage reserved for the node's data, in bytes (recorded, not enforced yet).
    pub storage_bytes: u64,
    /// Broker configuration overrides by Kafka name.
    pub broker_config: BTreeMap<String, String>,
    /// The cluster's controller quorum: `id@host:port` per controller, sorted by id.
    pub controller_quorum_voters: Vec<String>,
    /// The control plane's name for `broker_config` (a hash of it); reported back for the
    /// running process so the control plane knows which config each node runs. Like any
    /// change to the assignment, a new one restarts the node.
    #[serde(default)]
    pub config_fingerprint: String,
}

/// The assignments of one generation, as persisted in the agent's data directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    /// The control plane's generation of this list (0: nothing was ever assigned).
    pub generation: u64,
    /// Every node the host should run, sorted by key.
    pub nodes: Vec<Assignment>,
}

impl Assignment {
    /// The node's key.
    pub fn key(&self) -> NodeKey {
        NodeKey {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id,
        }
    }

    /// The agent's assignment for a wire one, refusing what would make a bad command line or
    /// an unsafe path (a cluster id is a directory name).
    pub fn from_proto(a: pb::Assignment) -> Result<Assignment, String> {
        let node = a.node.ok_or("an assignment without a node")?;
        if !is_safe_name(&a.cluster_id) {
            return Err(format!(
                "cluster id {:?} is not a safe directory name",
                a.cluster_id
            ));
        }
        let who = format!("node {} of cluster {}", node.node_id, a.cluster_id);
        if node.node_id < 0 {
            return Err(format!("{who}: negative node id"));
        }
        let role = match pb::NodeRole::try_from(node.role) {
            Ok(pb::NodeRole::Broker) => NodeRole::Broker,
            Ok(pb::NodeRole::Controller) => NodeRole::Controller,
            _ => return Err(format!("{who}: unknown role {}", node.role)),
        };
        if node.address.parse::<IpAddr>().is_err() {
            return Err(format!("{who}: address {:?} is not an IP", node.address));
        }
        let port = |name: &str, value: u32| -> Result<Option<u16>, String> {
            match value {
                0 => Ok(None),
                v => u16::try_from(v)
                    .map(Some)
                    .map_err(|_| format!("{who}: {name} {v} is not a port")),
            }
        };
        let kafka_port = port("kafka_port", node.kafka_port)?;
        let controller_port = port("controller_port", node.controller_port)?;
        let admin_port =
            port("admin_port", node.admin_port)?.ok_or_else(|| format!("{who}: no admin port"))?;
        match role {
            NodeRole::Broker if kafka_port.is_none() => {
                return Err(format!("{who}: a broker needs a kafka port"));
            }
            NodeRole::Controller if controller_port.is_none() => {
                return Err(format!("{who}: a controller needs a controller port"));
            }
            _ => {}
        }
        Ok(Assignment {
            cluster_id: a.cluster_id,
            node_id: node.node_id,
            role,
            zone: node.zone,
            address: node.address,
            kafka_port,
            controller_port,
            admin_port,
            kafka_version: a.kafka_version,
            storage_bytes: a.storage_bytes,
            broker_config: a.broker_config.into_iter().collect(),
            controller_quorum_voters: a.controller_quorum_voters,
            config_fingerprint: a.config_fingerprint,
        })
    }

    /// `address:port`, bracketing an IPv6 address.
    pub fn socket(&self, port: u16) -> String {
        match self.address.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{port}", self.address),
            _ => format!("{}:{port}", self.address),
        }
    }

    /// The node's admin endpoint, `address:admin_port`.
    pub fn admin_endpoint(&self) -> String {
        self.socket(self.admin_port)
    }

    /// The arguments of `ferry node` (after the binary) running this node with its data in
    /// `data_dir`:
    ///
    /// ```text
    /// node --node-id 101 --cluster-id cl-2a --data-dir <dir> --roles broker
    ///      --controller-quorum 1@10.0.0.1:9001,2@... --admin-listen 10.0.0.2:9102 --rack a
    ///      --listen 10.0.0.2:9100 --advertised-host 10.0.0.2     (brokers)
    ///      --controller-listen 10.0.0.1:9001                      (controllers)
    ///      --set num.partitions=3 ...                              (sorted by name)
    /// ```
    ///
    /// The agent recognises its nodes by `--data-dir <dir>` in `/proc/<pid>/cmdline`.
    pub fn node_args(&self, data_dir: &Path) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--node-id".into(),
            self.node_id.to_string(),
            "--cluster-id".into(),
            self.cluster_id.clone(),
            DATA_DIR_FLAG.into(),
            data_dir.display().to_string(),
            "--roles".into(),
            self.role.as_str().into(),
            "--controller-quorum".into(),
            self.controller_quorum_voters.join(","),
            "--admin-listen".into(),
            self.admin_endpoint(),
        ];
        if !self.zone.is_empty() {
            args.extend(["--rack".into(), self.zone.clone()]);
        }
        if let Some(port) = self.kafka_port.filter(|_| self.role == NodeRole::Broker) {
            args.extend([
                "--listen".into(),
                self.socket(port),
                "--advertised-host".into(),
                self.address.clone(),
            ]);
        }
        if let Some(port) = self
            .controller_port
            .filter(|_| self.role == NodeRole::Controller)
        {
            args.extend(["--controller-listen".into(), self.socket(port)]);
        }
        for (name, value) in &self.broker_config {
            args.extend(["--set".into(), format!("{name}={value}")]);
        }
        args
    }
}

/// The flag that names a node's data directory; the agent recognises its processes by it.
pub const DATA_DIR_FLAG: &str = "--data-dir";

/// Whether `name` is usable as one path component: `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A broker assignment for tests.
    pub fn broker(cluster: &str, node_id: NodeId) -> Assignment {
        Assignment {
            cluster_id: cluster.into(),
            node_id,
            role: NodeRole::Broker,
            zone: "a".into(),
            address: "127.0.0.1".into(),
            kafka_port: Some(9100),
            controller_port: None,
            admin_port: 9101,
            kafka_version: "3.9.0".into(),
            storage_bytes: 1 << 30,
            broker_config: BTreeMap::from([("num.partitions".into(), "3".into())]),
            controller_quorum_voters: vec!["1@127.0.0.1:9001".into()],
            config_fingerprint: "a1a1a1a1a1a1a1a1".into(),
        }
    }

    /// A controller assignment for tests.
    pub fn controller(cluster: &str, node_id: NodeId) -> Assignment {
        Assignment {
            role: NodeRole::Controller,
            kafka_port: None,
            controller_port: Some(9001),
            admin_port: 9002,
            ..broker(cluster, node_id)
        }
    }

    #[test]
    fn a_broker_becomes_its_command_line() {
        let args = broker("cl-1", 101).node_args(Path::new("/d/nodes/cl-1/101/data"));
        assert_eq!(
            args.join(" "),
            "node --node-id 101 --cluster-id cl-1 --data-dir /d/nodes/cl-1/101/data \
             --roles broker --controller-quorum 1@127.0.0.1:9001 \
             --admin-listen 127.0.0.1:9101 --rack a --listen 127.0.0.1:9100 \
             --advertised-host 127.0.0.1 --set num.partitions=3"
        );
    }

    #[test]
    fn a_controller_gets_its_controller_listener_and_no_kafka_one() {
        let args = controller("cl-1", 1).node_args(Path::new("/x")).join(" ");
        assert!(
            args.contains("--controller-listen 127.0.0.1:9001"),
            "{args}"
        );
        assert!(!args.contains("--listen 127"), "{args}");
    }

    #[test]
    fn wire_assignments_are_checked() {
        let wire = |cluster: &str, address: &str, kafka_port: u32| pb::Assignment {
            cluster_id: cluster.into(),
            node: Some(pb::Node {
                node_id: 101,
                role: pb::NodeRole::Broker as i32,
                address: address.into(),
                kafka_port,
                admin_port: 9101,
                zone: "a".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ok = Assignment::from_proto(wire("cl-1", "127.0.0.1", 9100)).unwrap();
        assert_eq!(ok.kafka_port, Some(9100));
        assert_eq!(ok.zone, "a");
        for (bad, why) in [
            (wire("../etc", "127.0.0.1", 9100), "safe directory name"),
            (wire("cl-1", "localhost", 9100), "not an IP"),
            (wire("cl-1", "127.0.0.1", 0), "needs a kafka port"),
            (wire("cl-1", "127.0.0.1", 70000), "not a port"),
        ] {
            let err = Assignment::from_proto(bad).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
