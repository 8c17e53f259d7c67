//! What a node with the controller role reports: its raft numbers and the cluster as its
//! metadata image shows it.
//!
//! - `ferry_controller_raft_*`: the voter's [`QuorumMetrics`] (term, commit and applied
//!   indexes, role, leader, leader changes, commit latency), written by the quorum's node task.
//! - `ferry_controller_active`: 1 on the raft leader (the active controller), else 0, so
//!   `sum()` over a cluster's controllers is 1 when all is well.
//! - `ferry_controller_metadata_offset`: the offset of this controller's metadata image.
//! - Cluster counts, reported by the active controller only (the others report 0, as Kafka's
//!   controllers do, so `sum()` over the controllers is the cluster's value): fenced and
//!   active brokers, topics, partitions, offline partitions (no leader), and each broker's
//!   metadata lag (the image offset minus the offset the broker last reported in a heartbeat
//!   to this controller; at most [`BROKER_LAG_SERIES_MAX`] series).
//! - `ferry_controller_fences_total`: brokers this controller fenced because their sessions
//!   expired.
//!
//! Everything but the fences counter is read at scrape time from atomics, the image (an `Arc` swap) and the session
//! table (a short lock the heartbeat handler also takes); the raft loop is never waited on.

use std::fmt;
use std::sync::Arc;

use ferry_quorum::{QuorumMetrics, RaftId, Role};
use ferry_telemetry::metrics::{Collector, Counter, DescriptorEncoder, MetricType, Registry};

use crate::controller::image::MetadataImage;
use crate::controller::records::NO_LEADER;
use crate::metadata::NodeId;

/// Most `broker_metadata_lag` series a controller reports (Ferry clusters have far fewer
/// brokers); brokers beyond it, by id, are left out of the family.
pub const BROKER_LAG_SERIES_MAX: usize = 60;

/// The prefix, after `ferry_`, of the controller's families.
const PREFIX: &str = "controller";
/// The prefix, after the controller's, of its voter's raft families.
const RAFT_PREFIX: &str = "raft";

/// What the controller's families read at scrape time, besides its voter's numbers
/// (implemented by the node's controller role; this module does not depend on it).
pub trait ControllerView: Send + Sync + 'static {
    /// The controller's metadata image now.
    fn image(&self) -> Arc<MetadataImage>;

    /// The metadata offset each broker last reported in a heartbeat, by broker id, from the
    /// sessions of raft term `term` (empty if this controller holds no sessions of `term`).
    fn reported_metadata_offsets(&self, term: u64) -> Vec<(NodeId, u64)>;
}

/// Registers a controller's metrics (`ferry_controller_*`) in the node's registry: its voter's
/// `quorum` numbers, the fences counter (incremented by the session checker), and the
/// families read from `view` at each scrape.
pub fn register(
    registry: &mut Registry,
    quorum: &Arc<QuorumMetrics>,
    fences: &Counter,
    view: Arc<dyn ControllerView>,
) {
    let controller_registry = registry.sub_registry_with_prefix(PREFIX);
    quorum.register(
        controller_registry.sub_registry_with_prefix(RAFT_PREFIX),
        kafka_node_id,
    );
    controller_registry.register_collector(Box::new(ControllerCollector {
        quorum: quorum.clone(),
        view,
    }));
    controller_registry.register(
        "fences",
        "Brokers this controller fenced because their heartbeats stopped",
        fences.clone(),
    );
}

/// The Kafka node id of a voter's raft id (raft ids are node id + 1), without panicking on
/// an id no voter has: the `leader` gauge then reads -1.
fn kafka_node_id(raft: RaftId) -> i64 {
    i64::try_from(raft).map_or(-1, |id| id - 1)
}

/// Encodes the controller's families at scrape time.
struct ControllerCollector {
    /// The voter's numbers: whether it leads, and its term.
    quorum: Arc<QuorumMetrics>,
    /// The image and the broker sessions.
    view: Arc<dyn ControllerView>,
}

impl fmt::Debug for ControllerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerCollector")
            .finish_non_exhaustive()
    }
}

/// The cluster counts the active controller reports.
#[derive(Debug, Default, PartialEq, Eq)]
struct ClusterCounts {
    /// Registered brokers that are fenced.
    fenced_brokers: i64,
    /// Registered brokers that are not fenced.
    active_brokers: i64,
    /// Topics.
    topics: i64,
    /// Partitions of all topics.
    partitions: i64,
    /// Partitions without a leader.
    offline_partitions: i64,
}

/// Whether `metrics` say this voter is the active controller.
fn is_active(metrics: &QuorumMetrics) -> bool {
    metrics.role() == Role::Leader
}

/// A gauge without labels.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A count as a gauge value.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for ControllerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let metrics = &self.quorum;
        let active = is_active(metrics);
        let image = self.view.image();
        let e = &mut encoder;
        gauge(
            e,
            "active",
            "1 on the active controller (the raft leader), else 0.",
            i64::from(active),
        )?;
        gauge(
            e,
            "metadata_offset",
            "The offset of this controller's metadata image.",
            i64::try_from(image.offset()).unwrap_or(i64::MAX),
        )?;
        let mut counts = ClusterCounts::default();
        if active {
            for broker in image.brokers() {
                if broker.fenced {
                    counts.fenced_brokers += 1;
                } else {
                    counts.active_brokers += 1;
                }
            }
            for topic in image.topics() {
                counts.topics += 1;
                counts.partitions += count(topic.partitions.len());
                counts.offline_partitions += count(
                    topic
                        .partitions
                        .iter()
                        .filter(|p| p.leader == NO_LEADER)
                        .count(),
                );
            }
        }
        let only_active = " Reported by the active controller; 0 on the others.";
        for (name, help, value) in [
            (
                "fenced_brokers",
                "Registered brokers that are fenced.",
                counts.fenced_brokers,
            ),
            (
                "active_brokers",
                "Registered brokers that are not fenced.",
                counts.active_brokers,
            ),
            ("topics", "Topics in the cluster.", counts.topics),
            ("partitions", "Partitions of all topics.", counts.partitions),
            (
                "offline_partitions",
                "Partitions without a leader.",
                counts.offline_partitions,
            ),
        ] {
            gauge(e, name, &format!("{help}{only_active}"), value)?;
        }
        let lags: Vec<(String, i64)> = if active {
            self.view
                .reported_metadata_offsets(metrics.term())
                .into_iter()
                .filter(|(broker, _)| image.broker(*broker).is_some())
                .take(BROKER_LAG_SERIES_MAX)
                .map(|(broker, offset)| {
                    let lag = image.offset().saturating_sub(offset);
                    (broker.to_string(), i64::try_from(lag).unwrap_or(i64::MAX))
                })
                .collect()
        } else {
            Vec::new()
        };
        // No family at all without series: an empty family would be noise on the standbys.
        if !lags.is_empty() {
            let mut family = e.encode_descriptor(
                "broker_metadata_lag",
                "Metadata records a broker is behind the active controller's image, from its \
                 last heartbeat. Active controller only.",
                None,
                MetricType::Gauge,
            )?;
            for (broker, lag) in &lags {
                family
                    .encode_family(&[("broker", broker.as_str())])?
                    .encode_gauge(lag)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::Cluster;
    use ferry_quorum::Status;
    use ferry_telemetry::metrics::{encode, registry};

    /// A fixed image, and sessions of one term.
    struct Fixed {
        image: Arc<MetadataImage>,
        term: u64,
        offsets: Vec<(NodeId, u64)>,
    }

    impl ControllerView for Fixed {
        fn image(&self) -> Arc<MetadataImage> {
            self.image.clone()
        }
        fn reported_metadata_offsets(&self, term: u64) -> Vec<(NodeId, u64)> {
            if term == self.term {
                self.offsets.clone()
            } else {
                Vec::new()
            }
        }
    }

    fn status(role: Role, term: u64) -> Status {
        Status {
            id: 2,
            role,
            leader: Some(if role == Role::Leader { 2 } else { 1 }),
            term,
            commit: 9,
            applied: 9,
            last_index: 9,
            snapshot_index: 0,
            voters: Vec::new(),
        }
    }

    fn scrape(role: Role, view: Fixed) -> String {
        let quorum = Arc::new(QuorumMetrics::default());
        quorum.observe_status(&status(role, 4));
        let fences = Counter::default();
        fences.inc();
        let mut registry = registry();
        register(&mut registry, &quorum, &fences, Arc::new(view));
        encode(&registry)
    }

    fn value(text: &str, series: &str) -> Option<i64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    /// Three brokers, a topic of three single-replica partitions and one of a partition with
    /// three replicas, then broker 1 fenced: its single-replica partition has no leader.
    fn cluster() -> Cluster {
        let mut cluster = Cluster::with_brokers(&[(1, "a"), (2, "b"), (3, "c")]);
        cluster.create("single", 3, 1);
        cluster.create("other", 1, 3);
        cluster.fence(1);
        cluster
    }

    #[test]
    fn the_active_controller_counts_the_cluster() {
        let cluster = cluster();
        let offline = cluster
            .image
            .topics()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader == NO_LEADER)
            .count();
        assert!(offline >= 1, "fencing broker 1 left a partition leaderless");
        let offset = cluster.image.offset();
        let view = Fixed {
            image: Arc::new(cluster.image),
            term: 4,
            offsets: vec![(1, offset - 3), (2, offset), (9, 0)],
        };
        let text = scrape(Role::Leader, view);
        for (series, expected) in [
            ("ferry_controller_active", 1),
            ("ferry_controller_fenced_brokers", 1),
            ("ferry_controller_active_brokers", 2),
            ("ferry_controller_topics", 2),
            ("ferry_controller_partitions", 4),
            ("ferry_controller_offline_partitions", count(offline)),
            ("ferry_controller_broker_metadata_lag{broker=\"1\"}", 3),
            ("ferry_controller_broker_metadata_lag{broker=\"2\"}", 0),
            ("ferry_controller_fences_total", 1),
            ("ferry_controller_raft_term", 4),
            ("ferry_controller_raft_leader", 1),
        ] {
            assert_eq!(value(&text, series), Some(expected), "{series}: {text}");
        }
        assert!(
            !text.contains("broker=\"9\""),
            "an unregistered broker: {text}"
        );
    }

    #[test]
    fn a_standby_controller_reports_zero_counts_and_no_lag() {
        let cluster = cluster();
        let offset = cluster.image.offset();
        let view = Fixed {
            image: Arc::new(cluster.image),
            term: 4,
            offsets: vec![(1, 0)],
        };
        let text = scrape(Role::Follower, view);
        for series in [
            "ferry_controller_active",
            "ferry_controller_fenced_brokers",
            "ferry_controller_active_brokers",
            "ferry_controller_topics",
            "ferry_controller_partitions",
            "ferry_controller_offline_partitions",
        ] {
            assert_eq!(value(&text, series), Some(0), "{series}: {text}");
        }
        assert_eq!(
            value(&text, "ferry_controller_metadata_offset"),
            Some(i64::try_from(offset).unwrap())
        );
        assert!(!text.contains("broker_metadata_lag"), "{text}");
        assert_eq!(value(&text, "ferry_controller_raft_leader"), Some(0));
    }

    #[test]
    fn broker_lag_series_are_bounded() {
        let mut many = Cluster::new();
        for id in 0..100 {
            many.run(crate::controller::testing::register(id, None));
        }
        let view = Fixed {
            image: Arc::new(many.image),
            term: 4,
            offsets: (0..100).map(|id| (id, 0)).collect(),
        };
        let text = scrape(Role::Leader, view);
        let series = text
            .lines()
            .filter(|l| l.starts_with("ferry_controller_broker_metadata_lag{"))
            .count();
        assert_eq!(series, BROKER_LAG_SERIES_MAX);
    }
}
