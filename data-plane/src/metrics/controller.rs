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

use ferry_quorum::{QuorumMetrics, RaftId, Role};
use ferry_telemetry::metrics::{Collector, DescriptorEncoder, MetricType, Registry};

use crate::controller::records::NO_LEADER;
use crate::node::controller::ControllerRole;

/// Most `broker_metadata_lag` series a controller reports (Ferry clusters have far fewer
/// brokers); brokers beyond it, by id, are left out of the family.
pub const BROKER_LAG_SERIES_MAX: usize = 60;

/// The prefix, after `ferry_`, of the controller's families.
const PREFIX: &str = "controller";
/// The prefix, after the controller's, of its voter's raft families.
const RAFT_PREFIX: &str = "raft";

/// Registers a controller's metrics (`ferry_controller_*`) in the node's registry.
pub fn register(registry: &mut Registry, controller: &ControllerRole) {
    let controller_registry = registry.sub_registry_with_prefix(PREFIX);
    controller.quorum().metrics().register(
        controller_registry.sub_registry_with_prefix(RAFT_PREFIX),
        kafka_node_id,
    );
    controller_registry.register_collector(Box::new(ControllerCollector {
        controller: controller.clone(),
    }));
    controller_registry.register(
        "fences",
        "Brokers this controller fenced because their heartbeats stopped",
        controller.fences().clone(),
    );
}

/// The Kafka node id of a voter's raft id (raft ids are node id + 1), without panicking on
/// an id no voter has: the `leader` gauge then reads -1.
fn kafka_node_id(raft: RaftId) -> i64 {
    i64::try_from(raft).map_or(-1, |id| id - 1)
}

/// Encodes the controller's families at scrape time.
struct ControllerCollector {
    /// The controller read from.
    controller: ControllerRole,
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
        let metrics = self.controller.quorum().metrics();
        let active = is_active(metrics);
        let image = self.controller.log().image();
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
            self.controller
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
