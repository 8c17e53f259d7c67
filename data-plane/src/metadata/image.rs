//! The metadata image: an immutable snapshot of brokers, topics and partitions.
//!
//! Images are cheap to share (`Arc<Image>`) and never mutated in place: a change produces a new
//! image with a higher [`Image::offset`]. Brokers serve client requests from the image they hold,
//! so a request sees one consistent view even while the metadata changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A node's id, unique within its cluster (defined once in `ferry-kafka-config`).
pub use ferry_kafka_config::ids::NodeId;

/// A topic's id: a UUID assigned once at creation and never reused, so a topic deleted and
/// created again under the same name is a different topic.
pub type TopicId = uuid::Uuid;

/// A broker as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// Node id.
    pub node_id: NodeId,
    /// Advertised host clients connect to.
    pub host: String,
    /// Advertised Kafka port.
    pub port: u16,
    /// Failure domain (availability zone), if known.
    pub rack: Option<String>,
}

/// Where one partition lives and who leads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Brokers holding a replica, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas.
    pub isr: Vec<NodeId>,
    /// The leader, or -1 when the partition has none.
    pub leader: NodeId,
    /// Increases every time the leader changes; stamped into every batch the leader appends.
    pub leader_epoch: i32,
    /// Increases on every change of the partition (leader, ISR, replicas); an AlterPartition
    /// names the epoch it was computed from, so the controller refuses a stale one.
    #[serde(default)]
    pub partition_epoch: i32,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Id.
    pub id: TopicId,
    /// Partitions by index.
    pub partitions: Vec<PartitionState>,
    /// Config overrides by Kafka name; everything else takes the broker default.
    pub configs: BTreeMap<String, String>,
    /// Internal topics (names starting with `__`) are hidden from most tools.
    pub internal: bool,
}

impl Topic {
    /// The replication factor (replicas of partition 0; all partitions have the same count).
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map_or(0, |p| p.replicas.len() as i16)
    }
}

/// The cluster's metadata at one offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The cluster id every node of the cluster shares.
    pub cluster_id: String,
    /// Position of this image in the metadata history; increases with every change.
    pub offset: u64,
    /// The id of the node that acts as metadata authority (Kafka's "controller id").
    pub controller_id: NodeId,
    /// Live brokers by id.
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, Topic>,
    /// Dynamic broker configs (cluster-wide defaults and per-broker values).
    #[serde(default)]
    pub broker_configs: super::broker_configs::DynamicConfigs,
}

impl Image {
    /// An image with no brokers and no topics.
    pub fn empty(cluster_id: impl Into<String>, controller_id: NodeId) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            offset: 0,
            controller_id,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            broker_configs: Default::default(),
        }
    }

    /// The topic with this id.
    pub fn topic_by_id(&self, id: TopicId) -> Option<&Topic> {
        self.topics.values().find(|t| t.id == id)
    }

    /// Total partitions across all topics.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// How replicated the whole cluster's partitions are, by this image: one pass over the
    /// partitions, no allocation.
    pub fn replication_health(&self) -> ReplicationHealth {
        let mut health = ReplicationHealth::default();
        for partition in self.topics.values().flat_map(|t| &t.partitions) {
            health.partitions += 1;
            if partition.isr.len() < partition.replicas.len() {
                health.under_replicated += 1;
            }
            if partition.leader < 0 {
                health.offline += 1;
            }
        }
        health
    }
}

/// Partition counts over a whole image, as Kafka's `UnderReplicatedPartitions` and
/// `OfflinePartitionsCount` metrics count them (there per broker, for the partitions it
/// leads; here cluster-wide, from the metadata every broker shares).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicationHealth {
    /// Partitions in the image.
    pub partitions: u32,
    /// Partitions whose in-sync replica set is smaller than their replica set.
    pub under_replicated: u32,
    /// Partitions without a leader.
    pub offline: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replicas: &[NodeId], isr: &[NodeId], leader: NodeId) -> PartitionState {
        PartitionState {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    #[test]
    fn replication_health_counts_short_isrs_and_leaderless_partitions_cluster_wide() {
        let mut image = Image::empty("cl-1", 1);
        assert_eq!(image.replication_health(), ReplicationHealth::default());
        image.topics.insert(
            "orders".into(),
            Topic {
                name: "orders".into(),
                id: Default::default(),
                partitions: vec![
                    partition(&[101, 102, 103], &[101, 102, 103], 101),
                    partition(&[102, 103, 101], &[102, 103], 102),
                    partition(&[103, 101, 102], &[], -1),
                ],
                configs: BTreeMap::new(),
                internal: false,
            },
        );
        assert_eq!(
            image.replication_health(),
            ReplicationHealth {
                partitions: 3,
                under_replicated: 2,
                offline: 1,
            }
        );
    }
}
