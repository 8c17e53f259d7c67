//! Consumer-group metrics: group states, members, committed offsets and lag, read at scrape
//! time from the groups this broker coordinates, under `ferry_group*`.
//!
//! # Families
//! ```text
//! ferry_groups{state}                                  groups coordinated here, by Kafka's state
//!                                                      name (GroupMetadataManager NumGroups*)
//! ferry_group_members{group}                           members of a group
//! ferry_group_committed_offset{group,topic,partition}  the offset the group commits to read next
//! ferry_group_lag{group,topic,partition}               high watermark - committed offset
//! ferry_group_lag_sum{group}                           the group's lag over its partitions
//! ferry_group_series_dropped                           groups left out by the group bound
//! ferry_group_partition_series_dropped                 group partitions left out by the bound
//! ```
//! The names follow kafka-exporter's `kafka_consumergroup_lag`, `_current_offset` and
//! `_lag_sum`, so dashboards built on it translate one to one.
//!
//! # Who reports a group
//! Only the coordinator of a group (the leader of its `__consumer_offsets` partition, once the
//! partition is loaded) reports it, so summing a family over the brokers gives the cluster's
//! numbers with no group counted twice. When leadership of an offsets partition moves, its
//! groups move with it within a coordinator tick.
//!
//! # Lag
//! `ferry_group_lag` is what `kafka-consumer-groups --describe` shows: the partition's high
//! watermark (the end a `read_uncommitted` consumer sees) minus the committed offset, never
//! below 0 (a commit past the high watermark, which the committed-offset series still shows,
//! counts as no lag; a negative commit has no lag series). It is computed only for partitions
//! this broker holds a replica of, from the local replica's high watermark: exact on the
//! leader, behind the leader's by at most one replica fetch on a follower.
//! `ferry_group_lag_sum` adds up the lags known here.
//!
//! Known limit: a committed partition that this broker does not hold (led and replicated
//! elsewhere) has its `committed_offset` series but **no `lag` series**, and adds nothing to
//! `lag_sum`; a group whose partitions are all elsewhere has no `lag_sum`. A later step asks
//! the leaders for their high watermarks (ListOffsets, batched per leader, every few seconds)
//! to fill these in.
//!
//! # Bounds
//! Group ids and topic names come from clients, so the series are bounded per broker:
//! - at most [`GroupLimits::groups`] groups (by offsets partition, then group id, so the same
//!   groups are shown at every scrape) get per-group series; the rest are counted in
//!   `ferry_groups{state}` and `ferry_group_series_dropped` only. A group whose id is longer
//!   than [`GROUP_LABEL_BYTES_MAX`] is left out the same way (a 32 KiB id would make every one
//!   of its lines 32 KiB long).
//! - at most [`GroupLimits::partitions`] (group, topic, partition) triples of the shown groups
//!   get `committed_offset` and `lag` series; the others are counted in
//!   `ferry_group_partition_series_dropped` (with every committed partition of a left-out
//!   group), and still add to their group's `lag_sum`.
//!
//! Never member ids, client ids or hosts as labels.
//!
//! # Locks
//! A scrape copies what it needs out of the coordinators (under the coordinator's `shards`
//! lock, taking no other lock), releases it, and only then reads each partition's high
//! watermark (one partition lock at a time). It never awaits.

use std::fmt;
use std::sync::{Arc, Weak};

use ferry_telemetry::metrics::{
    Collector, DescriptorEncoder, EncodeLabel as _, EncodeLabelSet, LabelSetEncoder, MetricType,
    Registry,
};

use crate::group::coordinator::Coordinator;
use crate::group::state::GroupState;

/// Default of [`GroupLimits::groups`].
pub const GROUP_SERIES_MAX: usize = 1000;
/// Default of [`GroupLimits::partitions`].
pub const GROUP_PARTITION_SERIES_MAX: usize = 10_000;
/// Longest group id (in bytes) given its own series; Kafka's topic names stop at 249
/// characters, and a group id this long is already unusual.
pub const GROUP_LABEL_BYTES_MAX: usize = 255;

/// Bounds on the group series a broker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Groups with their own series (`members`, `lag_sum`, and their partitions'); beyond it
    /// they are counted in `ferry_group_series_dropped`.
    pub groups: usize,
    /// (group, topic, partition) triples with their own `committed_offset` and `lag`; beyond
    /// it they are counted in `ferry_group_partition_series_dropped`.
    pub partitions: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            groups: GROUP_SERIES_MAX,
            partitions: GROUP_PARTITION_SERIES_MAX,
        }
    }
}

/// What the group gauges read: the coordinators loaded here and the partitions held here
/// (implemented by [`crate::broker::Broker`], which this module does not import).
pub trait GroupsView: Send + Sync + 'static {
    /// Calls `each` with every loaded coordinator, in offsets-partition order. `each` runs
    /// under the coordinator's lock: it only copies.
    fn each_coordinator(&self, each: &mut dyn FnMut(&Coordinator));

    /// The high watermark of the replica of `topic`'s `partition` held here, if any.
    fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64>;
}

/// Registers the group gauges over `view` (held weakly: a scrape after the broker is gone
/// reports nothing).
pub fn register_group_gauges<V: GroupsView>(
    registry: &mut Registry,
    view: &Arc<V>,
    limits: GroupLimits,
) {
    let weak: Weak<V> = Arc::downgrade(view);
    let view: Weak<dyn GroupsView> = weak;
    registry.register_collector(Box::new(GroupGauges { view, limits }));
}

/// Kafka's group states, in the order `ferry_groups{state}` lists them.
const STATES: [GroupState; 5] = [
    GroupState::Empty,
    GroupState::PreparingRebalance,
    GroupState::CompletingRebalance,
    GroupState::Stable,
    GroupState::Dead,
];

/// One committed partition of a shown group.
#[derive(Debug, Clone, PartialEq)]
struct PartitionRow {
    /// Topic name.
    topic: String,
    /// Partition index.
    partition: i32,
    /// The committed offset.
    committed: i64,
    /// High watermark minus committed (at least 0), when the partition is held here.
    lag: Option<i64>,
}

/// One group with its own series.
#[derive(Debug, Clone, PartialEq)]
struct GroupRow {
    /// Group id.
    group: String,
    /// Members now.
    members: usize,
    /// Its committed partitions, sorted by topic and partition.
    partitions: Vec<PartitionRow>,
}

impl GroupRow {
    /// The sum of the known lags, `None` when none is known here.
    fn lag_sum(&self) -> Option<i64> {
        self.partitions
            .iter()
            .filter_map(|p| p.lag)
            .reduce(i64::saturating_add)
    }
}

/// What one scrape reports.
#[derive(Debug, Default, PartialEq)]
struct GroupsSample {
    /// Groups per state, in [`STATES`] order.
    states: [usize; STATES.len()],
    /// The groups with their own series.
    shown: Vec<GroupRow>,
    /// Groups left out by the bounds.
    groups_dropped: usize,
    /// Group partitions left out by the bounds (those of left-out groups included).
    partitions_dropped: usize,
}

/// Reads the groups of `view` within `limits`.
fn sample(view: &dyn GroupsView, limits: GroupLimits) -> GroupsSample {
    let mut sample = GroupsSample::default();
    // Under the shards lock: copy, and take no other lock.
    view.each_coordinator(&mut |coordinator| {
        for group in coordinator.groups() {
            let state = STATES
                .iter()
                .position(|s| *s == group.state)
                .expect("every state is listed");
            sample.states[state] += 1;
            if group.state == GroupState::Dead {
                continue; // gone, only not yet forgotten
            }
            let committed = coordinator.committed(&group.id);
            if sample.shown.len() >= limits.groups || group.id.len() > GROUP_LABEL_BYTES_MAX {
                sample.groups_dropped += 1;
                sample.partitions_dropped += committed.count();
                continue;
            }
            sample.shown.push(GroupRow {
                group: group.id.clone(),
                members: group.members.len(),
                partitions: committed
                    .map(|(topic, partition, committed)| PartitionRow {
                        topic: topic.to_string(),
                        partition,
                        committed,
                        lag: None,
                    })
                    .collect(),
            });
        }
    });
    // Shards lock released: one partition lock at a time.
    for row in &mut sample.shown {
        for p in &mut row.partitions {
            if p.committed >= 0 {
                p.lag = view
                    .high_watermark(&p.topic, p.partition)
                    .map(|hw| hw.saturating_sub(p.committed).max(0));
            }
        }
    }
    let total: usize = sample.shown.iter().map(|g| g.partitions.len()).sum();
    sample.partitions_dropped += total.saturating_sub(limits.partitions);
    sample
}

/// The group gauges, read at each scrape.
struct GroupGauges {
    /// The broker's coordinators and partitions.
    view: Weak<dyn GroupsView>,
    /// The series bounds.
    limits: GroupLimits,
}

impl fmt::Debug for GroupGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupGauges")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One per-partition gauge: name, help, and how to read it (`None`: no series).
type PartitionGauge = (&'static str, &'static str, fn(&PartitionRow) -> Option<i64>);

impl Collector for GroupGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(view) = self.view.upgrade() else {
            return Ok(());
        };
        let sample = sample(view.as_ref(), self.limits);
        drop(view);

        let mut metric = encoder.encode_descriptor(
            "groups",
            "Consumer groups coordinated here, by state",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in STATES.iter().zip(sample.states) {
            metric
                .encode_family(&[("state", state.name())])?
                .encode_gauge(&(count as i64))?;
        }

        if !sample.shown.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "group_members",
                "Members of a consumer group coordinated here",
                None,
                MetricType::Gauge,
            )?;
            for row in &sample.shown {
                metric
                    .encode_family(&GroupLabel(&row.group))?
                    .encode_gauge(&(row.members as i64))?;
            }
        }

        // The first `limits.partitions` group partitions, in group then partition order.
        let shown_partitions = || {
            sample
                .shown
                .iter()
                .flat_map(|row| row.partitions.iter().map(move |p| (row.group.as_str(), p)))
                .take(self.limits.partitions)
        };
        let partition_gauges: [PartitionGauge; 2] = [
            (
                "group_committed_offset",
                "The offset a consumer group commits to read next, by partition",
                |p| Some(p.committed),
            ),
            (
                "group_lag",
                "High watermark minus the committed offset, for partitions held here",
                |p| p.lag,
            ),
        ];
        for (name, help, value) in partition_gauges {
            if shown_partitions().all(|(_, p)| value(p).is_none()) {
                continue;
            }
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (group, p) in shown_partitions() {
                let Some(value) = value(p) else { continue };
                let labels = PartitionLabels {
                    group,
                    topic: &p.topic,
                    partition: p.partition,
                };
                metric.encode_family(&labels)?.encode_gauge(&value)?;
            }
        }

        if sample.shown.iter().any(|row| row.lag_sum().is_some()) {
            let mut metric = encoder.encode_descriptor(
                "group_lag_sum",
                "A consumer group's lag summed over its partitions held here",
                None,
                MetricType::Gauge,
            )?;
            for row in &sample.shown {
                if let Some(sum) = row.lag_sum() {
                    metric
                        .encode_family(&GroupLabel(&row.group))?
                        .encode_gauge(&sum)?;
                }
            }
        }

        let dropped = [
            (
                "group_series_dropped",
                "Consumer groups left out of the per-group series by the series bounds",
                sample.groups_dropped,
            ),
            (
                "group_partition_series_dropped",
                "Group partitions left out of the per-partition series by the series bounds",
                sample.partitions_dropped,
            ),
        ];
        for (name, help, value) in dropped {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&(value as i64))?;
        }
        Ok(())
    }
}

/// Label `group`.
#[derive(Debug)]
struct GroupLabel<'a>(&'a str);

impl EncodeLabelSet for GroupLabel<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("group", self.0).encode(encoder.encode_label())
    }
}

/// Labels `group`, `topic` and `partition`.
#[derive(Debug)]
struct PartitionLabels<'a> {
    group: &'a str,
    topic: &'a str,
    partition: i32,
}

impl EncodeLabelSet for PartitionLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("group", self.group).encode(encoder.encode_label())?;
        ("topic", self.topic).encode(encoder.encode_label())?;
        ("partition", self.partition).encode(encoder.encode_label())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use ferry_telemetry::metrics::{encode, registry};

    use super::*;
    use crate::group::GroupOptions;
    use crate::group::records::{CommittedOffset, GroupRecord, MemberRecord, OffsetsRecord};
    use crate::metrics::testing::assert_names_match;

    /// Coordinators in offsets-partition order and the high watermarks of the partitions
    /// held here.
    #[derive(Default)]
    struct Fixed {
        coordinators: Vec<Coordinator>,
        high_watermarks: HashMap<(String, i32), i64>,
    }

    impl GroupsView for Fixed {
        fn each_coordinator(&self, each: &mut dyn FnMut(&Coordinator)) {
            self.coordinators.iter().for_each(each);
        }

        fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
            self.high_watermarks
                .get(&(topic.to_string(), partition))
                .copied()
        }
    }

    impl Fixed {
        fn held(mut self, topic: &str, partition: i32, high_watermark: i64) -> Self {
            self.high_watermarks
                .insert((topic.to_string(), partition), high_watermark);
            self
        }
    }

    /// A coordinator rebuilt from `records`, as after loading its offsets partition.
    fn loaded(records: Vec<OffsetsRecord>) -> Coordinator {
        let mut coordinator = Coordinator::new(GroupOptions::default());
        for record in records {
            coordinator.replay(record, 1_000);
        }
        coordinator
    }

    fn offset(group: &str, topic: &str, partition: i32, offset: i64) -> OffsetsRecord {
        OffsetsRecord::Offset {
            group: group.into(),
            topic: topic.into(),
            partition,
            value: Some(CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1_000,
            }),
        }
    }

    /// A group record of generation 1 with `members` members (the group loads Stable).
    fn group_with_members(group: &str, members: usize) -> OffsetsRecord {
        let member = |i: usize| MemberRecord {
            member_id: format!("m-{i}"),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/unknown".into(),
            rebalance_timeout_ms: 10_000,
            session_timeout_ms: 10_000,
            subscription: Bytes::new(),
            assignment: Bytes::new(),
        };
        OffsetsRecord::Group {
            group: group.into(),
            value: Some(GroupRecord {
                protocol_type: "consumer".into(),
                generation: 1,
                protocol: Some("range".into()),
                leader: Some("m-0".into()),
                state_timestamp: 1_000,
                members: (0..members).map(member).collect(),
            }),
        }
    }

    fn scrape(view: &Arc<Fixed>, limits: GroupLimits) -> String {
        let mut registry = registry();
        register_group_gauges(&mut registry, view, limits);
        encode(&registry)
    }

    /// The value of the sample `series` (name and labels exactly as encoded), if present.
    fn value(text: &str, series: &str) -> Option<i64> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    fn lag(group: &str, topic: &str, partition: i32) -> String {
        format!("ferry_group_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\"}}")
    }

    fn committed(group: &str, topic: &str, partition: i32) -> String {
        format!(
            "ferry_group_committed_offset{{group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\"}}"
        )
    }

    /// The group metric names are reviewed as a list (`groups_names.txt`).
    #[test]
    fn metric_names_match_the_reviewed_list() {
        let view = Arc::new(
            Fixed {
                coordinators: vec![loaded(vec![
                    group_with_members("g", 1),
                    offset("g", "t", 0, 1),
                ])],
                ..Fixed::default()
            }
            .held("t", 0, 2),
        );
        assert_names_match(&scrape(&view, GroupLimits::default()), "groups_names.txt");
    }

    #[test]
    fn lag_is_the_high_watermark_minus_the_committed_offset_where_held() {
        let view = Arc::new(
            Fixed {
                coordinators: vec![loaded(vec![
                    group_with_members("g", 2),
                    offset("g", "t", 0, 3),
                    offset("g", "t", 1, 10), // past the high watermark
                    offset("g", "elsewhere", 0, 5),
                    offset("g", "t", 2, -1), // no position to measure from
                    offset("empty", "t", 0, 10),
                ])],
                ..Fixed::default()
            }
            .held("t", 0, 10)
            .held("t", 1, 7)
            .held("t", 2, 7),
        );
        let text = scrape(&view, GroupLimits::default());
        assert_eq!(value(&text, &lag("g", "t", 0)), Some(7), "{text}");
        assert_eq!(value(&text, &lag("g", "t", 1)), Some(0), "never below 0");
        assert_eq!(value(&text, &lag("empty", "t", 0)), Some(0));
        assert_eq!(
            value(&text, &lag("g", "elsewhere", 0)),
            None,
            "a partition not held here has no lag series"
        );
        assert_eq!(value(&text, &committed("g", "elsewhere", 0)), Some(5));
        assert_eq!(value(&text, &committed("g", "t", 1)), Some(10));
        assert_eq!(value(&text, &committed("g", "t", 2)), Some(-1));
        assert_eq!(
            value(&text, &lag("g", "t", 2)),
            None,
            "a negative commit has no lag"
        );
        assert_eq!(
            value(&text, "ferry_group_lag_sum{group=\"g\"}"),
            Some(7),
            "{text}"
        );
        assert_eq!(value(&text, "ferry_group_members{group=\"g\"}"), Some(2));
        assert_eq!(
            value(&text, "ferry_group_members{group=\"empty\"}"),
            Some(0)
        );
        for (state, count) in [
            ("Empty", 1),
            ("PreparingRebalance", 0),
            ("CompletingRebalance", 0),
            ("Stable", 1),
            ("Dead", 0),
        ] {
            let series = format!("ferry_groups{{state=\"{state}\"}}");
            assert_eq!(value(&text, &series), Some(count), "{state}: {text}");
        }
        assert_eq!(value(&text, "ferry_group_series_dropped"), Some(0));
        assert_eq!(
            value(&text, "ferry_group_partition_series_dropped"),
            Some(0)
        );
    }

    #[test]
    fn a_group_with_no_partition_held_here_has_no_lag_sum() {
        let view = Arc::new(Fixed {
            coordinators: vec![loaded(vec![offset("g", "elsewhere", 0, 5)])],
            ..Fixed::default()
        });
        let text = scrape(&view, GroupLimits::default());
        assert!(!text.contains("ferry_group_lag"), "{text}");
        assert_eq!(value(&text, &committed("g", "elsewhere", 0)), Some(5));
    }

    #[test]
    fn a_deleted_group_and_a_dropped_broker_leave_no_series() {
        let view = Arc::new(Fixed {
            coordinators: vec![loaded(vec![
                offset("g", "t", 0, 3),
                offset("h", "t", 0, 1),
                // DeleteGroups writes tombstones for the offsets, then for the group.
                OffsetsRecord::Offset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0,
                    value: None,
                },
                OffsetsRecord::Group {
                    group: "g".into(),
                    value: None,
                },
            ])],
            ..Fixed::default()
        });
        let mut registry = registry();
        register_group_gauges(&mut registry, &view, GroupLimits::default());
        let text = encode(&registry);
        assert!(!text.contains("group=\"g\""), "{text}");
        assert_eq!(value(&text, &committed("h", "t", 0)), Some(1));
        assert_eq!(value(&text, "ferry_groups{state=\"Empty\"}"), Some(1));
        drop(view);
        let text = encode(&registry);
        assert!(!text.contains("ferry_group"), "{text}");
    }

    #[test]
    fn series_beyond_the_bounds_are_counted_as_dropped_and_still_summed() {
        // Two offsets partitions: the bound takes the groups of the first one first.
        let view = Arc::new(
            Fixed {
                coordinators: vec![
                    loaded(vec![
                        offset("b", "t", 0, 0),
                        offset("b", "t", 1, 0),
                        offset("b", "t", 2, 0),
                    ]),
                    loaded(vec![offset("a", "t", 0, 0), offset("a", "t", 1, 0)]),
                ],
                ..Fixed::default()
            }
            .held("t", 0, 1)
            .held("t", 1, 2)
            .held("t", 2, 4),
        );
        let limits = GroupLimits {
            groups: 1,
            partitions: 2,
        };
        let text = scrape(&view, limits);
        assert!(
            !text.contains("group=\"a\""),
            "beyond the group bound: {text}"
        );
        assert_eq!(value(&text, &lag("b", "t", 0)), Some(1));
        assert_eq!(value(&text, &lag("b", "t", 1)), Some(2));
        assert_eq!(value(&text, &lag("b", "t", 2)), None, "beyond the bound");
        assert_eq!(value(&text, &committed("b", "t", 2)), None);
        assert_eq!(
            value(&text, "ferry_group_lag_sum{group=\"b\"}"),
            Some(7),
            "the sum counts every partition held here"
        );
        assert_eq!(value(&text, "ferry_group_series_dropped"), Some(1));
        assert_eq!(
            value(&text, "ferry_group_partition_series_dropped"),
            Some(3),
            "one of b's, both of a's"
        );
        assert_eq!(value(&text, "ferry_groups{state=\"Empty\"}"), Some(2));
    }

    #[test]
    fn ten_thousand_groups_make_a_bounded_scrape() {
        let records = (0..10_000)
            .flat_map(|i| (0..3).map(move |p| offset(&format!("attack-{i:05}"), "t", p, 0)))
            .collect();
        let view = Arc::new(
            Fixed {
                coordinators: vec![loaded(records)],
                ..Fixed::default()
            }
            .held("t", 0, 5),
        );
        let text = scrape(&view, GroupLimits::default());
        let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("ferry_group_members{"), GROUP_SERIES_MAX);
        assert_eq!(count("ferry_group_committed_offset{"), 3 * GROUP_SERIES_MAX);
        assert_eq!(count("ferry_group_lag{"), GROUP_SERIES_MAX);
        assert_eq!(
            value(&text, "ferry_group_series_dropped"),
            Some(10_000 - GROUP_SERIES_MAX as i64)
        );
        assert_eq!(
            value(&text, "ferry_group_partition_series_dropped"),
            Some(3 * (10_000 - GROUP_SERIES_MAX as i64))
        );
        assert_eq!(value(&text, "ferry_groups{state=\"Empty\"}"), Some(10_000));
    }

    #[test]
    fn hostile_group_ids_are_escaped_or_left_out() {
        let injection = "x\"} 999\nferry_group_lag_sum{group=\"y";
        let long = "g".repeat(GROUP_LABEL_BYTES_MAX + 1);
        let view = Arc::new(
            Fixed {
                coordinators: vec![loaded(vec![
                    offset(injection, "t", 0, 1),
                    offset(&long, "t", 0, 1),
                ])],
                ..Fixed::default()
            }
            .held("t", 0, 4),
        );
        let text = scrape(&view, GroupLimits::default());
        // The id stays inside its quotes: one lag_sum line, with the lag as its value.
        let sums: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ferry_group_lag_sum"))
            .collect();
        assert_eq!(
            sums,
            vec!["ferry_group_lag_sum{group=\"x\\\"} 999\\nferry_group_lag_sum{group=\\\"y\"} 3"],
            "{text}"
        );
        assert!(!text.contains(&long), "an over-long id is left out");
        assert_eq!(value(&text, "ferry_group_series_dropped"), Some(1));
        assert_eq!(
            value(&text, "ferry_group_partition_series_dropped"),
            Some(1)
        );
    }
}
