//! [`Identity`]: who a certificate speaks for, and how that is written into the certificate.
//!
//! An identity is carried as exactly one URI subject alternative name with the `ferry` scheme:
//!
//! ```text
//! ferry://node/<cluster_id>/<node_id>?roles=broker,controller   a `ferry node`
//! ferry://host/<host_id>                                         an enrolled agent's host
//! ferry://control-plane/<member>                                 a control-plane store voter
//! ```
//!
//! The roles list names each role once, in this order (`broker`, then `controller`), and is
//! never empty. Ids are 1 to [`ID_LEN_MAX`] characters of `[A-Za-z0-9._-]`, so they need no
//! escaping in a URI and fit in a DNS name.
//!
//! Servers also carry DNS names, which TLS clients check the standard way (webpki hostname
//! verification) before they send anything:
//!
//! ```text
//! controller.<cluster_id>.ferry.internal     every controller of a cluster
//! node-<node_id>.<cluster_id>.ferry.internal every node
//! control-plane.ferry.internal               every control-plane member
//! ```
//!
//! A client that dials "a controller of cluster C" asks for [`controller_server_name`]`(C)`; a
//! broker's certificate, or any certificate of another cluster, does not carry that name and
//! the handshake fails. The names live under `.ferry.internal`, which is never resolved: they
//! are identities, not addresses (clients dial IPs or host names and verify against these).

use std::fmt;

use crate::error::{Error, Result};

/// The URI scheme of every Ferry identity.
pub const URI_SCHEME: &str = "ferry";

/// The DNS suffix under which every Ferry server name lives (never resolved).
pub const DNS_SUFFIX: &str = "ferry.internal";

/// The server name every control-plane member's certificate carries, and the name clients of
/// the control plane's peer port verify.
pub const CONTROL_PLANE_SERVER_NAME: &str = "control-plane.ferry.internal";

/// Longest cluster id or host id an identity may carry (a DNS label is at most 63 bytes).
pub const ID_LEN_MAX: usize = 63;

/// A cluster's node id (Kafka's `node.id`), as the data plane numbers nodes.
pub use ferry_kafka_config::ids::NodeId;

/// The roles a node's certificate allows it to act in (Kafka's `process.roles`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeRoles {
    /// The node may act as a broker: register, heartbeat, read metadata, forward admin calls.
    pub broker: bool,
    /// The node may act as a controller: a voter of the cluster's metadata quorum.
    pub controller: bool,
}

impl NodeRoles {
    /// Broker only.
    pub const BROKER: NodeRoles = NodeRoles {
        broker: true,
        controller: false,
    };
    /// Controller only.
    pub const CONTROLLER: NodeRoles = NodeRoles {
        broker: false,
        controller: true,
    };
    /// Both roles (a combined node).
    pub const COMBINED: NodeRoles = NodeRoles {
        broker: true,
        controller: true,
    };

    /// Parses Kafka's comma-separated `process.roles` form (`broker,controller`).
    pub fn parse(s: &str) -> Result<NodeRoles> {
        let mut roles = NodeRoles::default();
        for role in s.split(',') {
            let slot = match role.trim() {
                "broker" => &mut roles.broker,
                "controller" => &mut roles.controller,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown role {other:?}: expected broker or controller"
                    )));
                }
            };
            if *slot {
                return Err(Error::InvalidInput(format!("role {role:?} given twice")));
            }
            *slot = true;
        }
        Ok(roles)
    }
}

impl fmt::Display for NodeRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.broker, self.controller) {
            (true, true) => f.write_str("broker,controller"),
            (true, false) => f.write_str("broker"),
            (false, true) => f.write_str("controller"),
            (false, false) => f.write_str(""),
        }
    }
}

/// Who a certificate speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A voter of the control plane's own store (its raft id).
    ControlPlane {
        /// The member's raft id.
        member: u64,
    },
    /// An enrolled agent, speaking for one host.
    Host {
        /// The host's id as the control plane knows it.
        host_id: String,
    },
    /// A `ferry node` of one Kafka cluster.
    Node {
        /// The Kafka cluster the node belongs to.
        cluster_id: String,
        /// The node's id within its cluster (Kafka's `node.id`).
        node_id: NodeId,
        /// What the node may act as.
        roles: NodeRoles,
    },
}

impl Identity {
    /// Checks that the identity can be written into a certificate and read back unchanged.
    pub fn validate(&self) -> Result<()> {
        match self {
            Identity::ControlPlane { .. } => Ok(()),
            Identity::Host { host_id } => validate_id("host id", host_id),
            Identity::Node {
                cluster_id,
                node_id,
                roles,
            } => {
                validate_id("cluster id", cluster_id)?;
                if *node_id < 0 {
                    return Err(Error::InvalidInput(format!(
                        "node id {node_id} is negative"
                    )));
                }
                if !roles.broker && !roles.controller {
                    return Err(Error::InvalidInput("a node needs at least one role".into()));
                }
                Ok(())
            }
        }
    }

    /// The URI SAN that carries this identity.
    pub fn uri(&self) -> String {
        match self {
            Identity::ControlPlane { member } => format!("{URI_SCHEME}://control-plane/{member}"),
            Identity::Host { host_id } => format!("{URI_SCHEME}://host/{host_id}"),
            Identity::Node {
                cluster_id,
                node_id,
                roles,
            } => {
                format!("{URI_SCHEME}://node/{cluster_id}/{node_id}?roles={roles}")
            }
        }
    }

    /// Parses a URI SAN written by [`Identity::uri`]; anything else is refused.
    pub fn from_uri(uri: &str) -> Result<Identity> {
        let bad = |why: &str| Error::NoIdentity(format!("{uri:?}: {why}"));
        let rest = uri
            .strip_prefix(URI_SCHEME)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(|| bad("not a ferry:// URI"))?;
        let (kind, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("no identity kind"))?;
        let identity = match kind {
            "control-plane" => Identity::ControlPlane {
                member: parse_number(rest).ok_or_else(|| bad("bad member id"))?,
            },
            "host" => Identity::Host {
                host_id: rest.to_string(),
            },
            "node" => {
                let (path, query) = rest.split_once('?').ok_or_else(|| bad("no roles"))?;
                let (cluster_id, node_id) =
                    path.split_once('/').ok_or_else(|| bad("no node id"))?;
                let roles = query
                    .strip_prefix("roles=")
                    .ok_or_else(|| bad("no roles"))?;
                let roles = NodeRoles::parse(roles).map_err(|e| bad(&e.to_string()))?;
                Identity::Node {
                    cluster_id: cluster_id.to_string(),
                    node_id: parse_number(node_id).ok_or_else(|| bad("bad node id"))?,
                    roles,
                }
            }
            _ => return Err(bad("unknown identity kind")),
        };
        identity.validate().map_err(|e| bad(&e.to_string()))?;
        // One spelling per identity: a URI that does not round-trip (leading zeros, roles out
        // of order) is not one we wrote.
        if identity.uri() != uri {
            return Err(bad("not in canonical form"));
        }
        Ok(identity)
    }

    /// The DNS names a certificate for this identity carries (see the module docs).
    pub fn dns_names(&self) -> Vec<String> {
        match self {
            Identity::ControlPlane { .. } => vec![CONTROL_PLANE_SERVER_NAME.to_string()],
            Identity::Host { .. } => Vec::new(),
            Identity::Node {
                cluster_id,
                node_id,
                roles,
            } => {
                let mut names = vec![node_server_name(cluster_id, *node_id)];
                if roles.controller {
                    names.push(controller_server_name(cluster_id));
                }
                names
            }
        }
    }

    /// Whether this is a node of `cluster_id` holding the controller role.
    pub fn is_controller_of(&self, cluster_id: &str) -> bool {
        matches!(self, Identity::Node { cluster_id: c, roles, .. }
            if c == cluster_id && roles.controller)
    }

    /// Whether this is a node of `cluster_id` holding the broker role.
    pub fn is_broker_of(&self, cluster_id: &str) -> bool {
        matches!(self, Identity::Node { cluster_id: c, roles, .. }
            if c == cluster_id && roles.broker)
    }

    /// The node id, if this is a node of `cluster_id`.
    pub fn node_of(&self, cluster_id: &str) -> Option<NodeId> {
        match self {
            Identity::Node {
                cluster_id: c,
                node_id,
                ..
            } if c == cluster_id => Some(*node_id),
            _ => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::ControlPlane { member } => write!(f, "control-plane member {member}"),
            Identity::Host { host_id } => write!(f, "host {host_id}"),
            Identity::Node {
                cluster_id,
                node_id,
                roles,
            } => {
                write!(f, "node {node_id} ({roles}) of cluster {cluster_id}")
            }
        }
    }
}

/// The server name every controller of `cluster_id` carries, and brokers and controllers of
/// that cluster verify when they dial a controller.
pub fn controller_server_name(cluster_id: &str) -> String {
    format!("controller.{cluster_id}.{DNS_SUFFIX}")
}

/// The server name of one node of a cluster.
pub fn node_server_name(cluster_id: &str, node_id: NodeId) -> String {
    format!("node-{node_id}.{cluster_id}.{DNS_SUFFIX}")
}

fn validate_id(what: &str, id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let ok_dots = !id.starts_with('.') && !id.ends_with('.') && !id.contains("..");
    if id.is_empty() || id.len() > ID_LEN_MAX || !ok_chars || !ok_dots {
        return Err(Error::InvalidInput(format!(
            "{what} {id:?}: expected 1 to {ID_LEN_MAX} characters of [A-Za-z0-9._-], \
             no leading, trailing or double dot"
        )));
    }
    Ok(())
}

/// Parses a decimal number with no sign, no leading zeros and no spaces.
fn parse_number<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cluster: &str, id: i32, roles: NodeRoles) -> Identity {
        Identity::Node {
            cluster_id: cluster.into(),
            node_id: id,
            roles,
        }
    }

    #[test]
    fn every_identity_round_trips_through_its_uri() {
        for identity in [
            Identity::ControlPlane { member: 3 },
            Identity::Host {
                host_id: "ip-10-0-0-1.ec2.internal".into(),
            },
            node("MkU3OEVBNTcwNTJENDM2Qk", 0, NodeRoles::BROKER),
            node("demo", 7, NodeRoles::CONTROLLER),
            node("demo_1", 2147483647, NodeRoles::COMBINED),
        ] {
            assert_eq!(Identity::from_uri(&identity.uri()).unwrap(), identity);
        }
    }

    #[test]
    fn the_uri_format_is_as_documented() {
        assert_eq!(
            node("c1", 4, NodeRoles::COMBINED).uri(),
            "ferry://node/c1/4?roles=broker,controller"
        );
        assert_eq!(
            Identity::Host {
                host_id: "h".into()
            }
            .uri(),
            "ferry://host/h"
        );
        assert_eq!(
            Identity::ControlPlane { member: 2 }.uri(),
            "ferry://control-plane/2"
        );
    }

    #[test]
    fn uris_that_we_did_not_write_are_refused() {
        for uri in [
            "https://node/c1/4?roles=broker",
            "ferry://node/c1/4",
            "ferry://node/c1/04?roles=broker",
            "ferry://node/c1/-4?roles=broker",
            "ferry://node/c1/4?roles=controller,broker",
            "ferry://node/c1/4?roles=broker,broker",
            "ferry://node/c1/4?roles=",
            "ferry://node/c/1/4?roles=broker",
            "ferry://node/c%2F1/4?roles=broker",
            "ferry://host/",
            "ferry://host/a/b",
            "ferry://control-plane/x",
            "ferry://control-plane/1 ",
            "ferry://admin/1",
        ] {
            assert!(Identity::from_uri(uri).is_err(), "{uri} was accepted");
        }
    }

    #[test]
    fn controllers_carry_the_cluster_controller_name_and_brokers_do_not() {
        let controller = node("demo", 1, NodeRoles::CONTROLLER);
        let broker = node("demo", 2, NodeRoles::BROKER);
        assert!(
            controller
                .dns_names()
                .contains(&controller_server_name("demo"))
        );
        assert!(!broker.dns_names().contains(&controller_server_name("demo")));
        assert!(controller.is_controller_of("demo") && !controller.is_controller_of("other"));
        assert!(broker.is_broker_of("demo") && !broker.is_controller_of("demo"));
    }
}
