//! Replica placement: where the replicas of new partitions go.
//!
//! A pure, deterministic, rack-aware and balanced placer in the spirit of Kafka's
//! `StripedReplicaPlacer`. It places one partition at a time, greedily, against the load the
//! cluster already carries (every existing replica and preferred leader is counted), so topics
//! created one after another still spread evenly:
//!
//! - **Leader** (first replica): the usable broker leading the fewest partitions; ties go to the
//!   broker whose rack leads the fewest, then to the one with the fewest replicas, then to the
//!   lowest id. Leader counts therefore never differ by more than one among brokers that started
//!   level.
//! - **Followers**: while some rack has no replica of this partition yet, only brokers in such
//!   racks qualify; after that any broker without one. Among those: fewest replicas, then *most*
//!   leaders (a broker that already leads its share takes the follower and leaves the others
//!   room to lead later), then lowest id.
//!
//! Only *usable* brokers (unfenced and not in controlled shutdown) receive replicas. A broker
//! without a rack counts as its own rack of rack-less brokers (Kafka refuses a mix in its
//! ZooKeeper-era placer; KRaft's placer treats the missing rack as one more rack, as here).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::command::ApiError;
use super::image::MetadataImage;
use crate::metadata::NodeId;

/// One usable broker and the load it carries.
#[derive(Debug, Clone)]
struct Slot {
    /// Node id.
    id: NodeId,
    /// Rack (`None` is the rack of rack-less brokers).
    rack: Option<String>,
    /// Replicas it holds.
    replicas: usize,
    /// Partitions it is the preferred leader of.
    leaders: usize,
}

/// Places replicas of new partitions. See the module docs.
#[derive(Debug, Clone)]
pub struct Placer {
    /// Usable brokers by ascending id.
    slots: Vec<Slot>,
    /// Preferred leaders per rack.
    rack_leaders: BTreeMap<Option<String>, usize>,
}

impl Placer {
    /// A placer over the usable brokers of `image`, loaded with its existing partitions.
    pub fn new(image: &MetadataImage) -> Self {
        let mut slots: Vec<Slot> = image
            .brokers()
            .filter(|b| b.is_usable())
            .map(|b| Slot {
                id: b.broker_id,
                rack: b.rack.clone(),
                replicas: 0,
                leaders: 0,
            })
            .collect();
        let mut placer = {
            let index: BTreeMap<NodeId, usize> =
                slots.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
            for partition in image.topics().flat_map(|t| &t.partitions) {
                for (position, replica) in partition.replicas.iter().enumerate() {
                    if let Some(&i) = index.get(replica) {
                        slots[i].replicas += 1;
                        slots[i].leaders += usize::from(position == 0);
                    }
                }
            }
            Self {
                slots,
                rack_leaders: BTreeMap::new(),
            }
        };
        for slot in &placer.slots {
            *placer.rack_leaders.entry(slot.rack.clone()).or_default() += slot.leaders;
        }
        placer
    }

    /// A placer over explicit brokers `(id, rack)` with no load; for tests and tools.
    pub fn from_brokers(brokers: &[(NodeId, Option<&str>)]) -> Self {
        let mut slots: Vec<Slot> = brokers
            .iter()
            .map(|(id, rack)| Slot {
                id: *id,
                rack: rack.map(str::to_string),
                replicas: 0,
                leaders: 0,
            })
            .collect();
        slots.sort_by_key(|s| s.id);
        let rack_leaders = slots.iter().map(|s| (s.rack.clone(), 0)).collect();
        Self {
            slots,
            rack_leaders,
        }
    }

    /// How many brokers can receive replicas.
    pub fn usable_brokers(&self) -> usize {
        self.slots.len()
    }

    /// Checks that `partitions` partitions of `factor` replicas can be placed at all, with
    /// Kafka's errors: INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR.
    pub fn check(&self, partitions: i32, factor: i16) -> Result<(), ApiError> {
        if partitions <= 0 {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        if factor <= 0 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if factor as usize > self.slots.len() {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {factor} time(s): The target replication \
                     factor of {factor} cannot be reached because only {} broker(s) are \
                     registered.",
                    self.slots.len()
                ),
            ));
        }
        Ok(())
    }

    /// Places `partitions` partitions of `factor` replicas each, preferred leader first, and
    /// counts them as load for later calls.
    pub fn place(&mut self, partitions: i32, factor: i16) -> Result<Vec<Vec<NodeId>>, ApiError> {
        self.check(partitions, factor)?;
        Ok((0..partitions)
            .map(|_| self.place_one(factor as usize))
            .collect())
    }

    /// Counts an explicitly assigned partition as load.
    pub fn add_load(&mut self, replicas: &[NodeId]) {
        for (position, replica) in replicas.iter().enumerate() {
            if let Some(slot) = self.slots.iter_mut().find(|s| s.id == *replica) {
                slot.replicas += 1;
                if position == 0 {
                    slot.leaders += 1;
                    *self.rack_leaders.entry(slot.rack.clone()).or_default() += 1;
                }
            }
        }
    }

    /// Places one partition; `factor` ≤ the number of slots.
    fn place_one(&mut self, factor: usize) -> Vec<NodeId> {
        let rack_leaders = &self.rack_leaders;
        let leader = (0..self.slots.len())
            .min_by_key(|&i| {
                let s = &self.slots[i];
                (s.leaders, rack_leaders[&s.rack], s.replicas, s.id)
            })
            .expect("check() ensured at least one usable broker");
        let mut chosen = vec![leader];
        while chosen.len() < factor {
            let taken = |i: &usize| chosen.contains(i);
            let rack_unused = |i: &usize| {
                !chosen
                    .iter()
                    .any(|&c| self.slots[c].rack == self.slots[*i].rack)
            };
            let any_rack_unused = (0..self.slots.len()).any(|i| !taken(&i) && rack_unused(&i));
            let next = (0..self.slots.len())
                .filter(|i| !taken(i) && (!any_rack_unused || rack_unused(i)))
                .min_by_key(|&i| {
                    let s = &self.slots[i];
                    (s.replicas, std::cmp::Reverse(s.leaders), s.id)
                })
                .expect("check() ensured enough usable brokers");
            chosen.push(next);
        }
        let replicas: Vec<NodeId> = chosen.iter().map(|&i| self.slots[i].id).collect();
        self.add_load(&replicas);
        replicas
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Six brokers, two in each of racks a, b, c.
    fn six_in_three_racks() -> Placer {
        Placer::from_brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ])
    }

    fn rack_of(id: NodeId) -> char {
        ['a', 'b', 'c'][(id as usize - 1) / 2]
    }

    /// (max - min) over brokers 1..=6 of the count `of` each gets.
    fn spread(plan: &[Vec<NodeId>], of: impl Fn(&Vec<NodeId>) -> Vec<NodeId>) -> usize {
        let mut counts = BTreeMap::from_iter((1..=6).map(|b| (b, 0usize)));
        for replicas in plan {
            for b in of(replicas) {
                *counts.get_mut(&b).unwrap() += 1;
            }
        }
        counts.values().max().unwrap() - counts.values().min().unwrap()
    }

    #[test]
    fn each_partition_spans_every_rack_when_racks_suffice() {
        let plan = six_in_three_racks().place(12, 3).unwrap();
        for replicas in &plan {
            let racks: BTreeSet<_> = replicas.iter().map(|&b| rack_of(b)).collect();
            assert_eq!(racks.len(), 3, "{replicas:?}");
        }
    }

    #[test]
    fn leaders_and_replicas_are_balanced() {
        let plan = six_in_three_racks().place(6, 3).unwrap();
        assert_eq!(spread(&plan, |r| vec![r[0]]), 0, "{plan:?}");
        assert_eq!(spread(&plan, |r| r.clone()), 0, "{plan:?}");
    }

    #[test]
    fn a_thousand_partitions_over_six_brokers_in_three_racks() {
        let plan = six_in_three_racks().place(1000, 3).unwrap();
        assert!(spread(&plan, |r| vec![r[0]]) <= 1);
        assert!(
            spread(&plan, |r| r.clone()) <= 1,
            "{}",
            spread(&plan, |r| r.clone())
        );
        let leader_racks = plan.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(rack_of(r[0])).or_insert(0) += 1;
            m
        });
        let (min, max) = (leader_racks.values().min(), leader_racks.values().max());
        assert!(max.unwrap() - min.unwrap() <= 1, "{leader_racks:?}");
    }

    #[test]
    fn balance_holds_for_many_cluster_and_topic_sizes() {
        for per_rack in 1..=4 {
            let brokers: Vec<(NodeId, Option<&str>)> = (0..3 * per_rack)
                .map(|i| (i as NodeId + 1, Some(["a", "b", "c"][i % 3])))
                .collect();
            for factor in 1..=3 {
                for partitions in 1..=40 {
                    let plan = Placer::from_brokers(&brokers)
                        .place(partitions, factor)
                        .unwrap();
                    let counts = |of: &dyn Fn(&Vec<NodeId>) -> Vec<NodeId>| {
                        let mut counts = vec![0usize; brokers.len()];
                        plan.iter()
                            .flat_map(of)
                            .for_each(|b| counts[b as usize - 1] += 1);
                        counts.iter().max().unwrap() - counts.iter().min().unwrap()
                    };
                    let context = format!("{per_rack}/rack rf={factor} p={partitions}: {plan:?}");
                    assert!(counts(&|r| vec![r[0]]) <= 1, "leaders {context}");
                    assert!(counts(&|r| r.clone()) <= 1, "replicas {context}");
                }
            }
        }
    }

    #[test]
    fn existing_load_is_counted_across_calls() {
        let mut placer = six_in_three_racks();
        let mut plan = Vec::new();
        for _ in 0..7 {
            plan.extend(placer.place(1, 3).unwrap());
        }
        assert!(spread(&plan, |r| vec![r[0]]) <= 1, "{plan:?}");
    }

    #[test]
    fn more_replicas_than_racks_still_uses_distinct_brokers() {
        let mut placer = Placer::from_brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
        ]);
        for replicas in placer.place(8, 3).unwrap() {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            let racks: BTreeSet<_> = replicas.iter().map(|&b| (b - 1) / 2).collect();
            assert_eq!((distinct.len(), racks.len()), (3, 2), "{replicas:?}");
        }
    }

    #[test]
    fn brokers_without_racks_are_placed_too() {
        let plan = Placer::from_brokers(&[(1, None), (2, None), (3, None)])
            .place(3, 2)
            .unwrap();
        let leaders: BTreeSet<_> = plan.iter().map(|r| r[0]).collect();
        assert_eq!(leaders.len(), 3, "{plan:?}");
    }

    #[test]
    fn a_replication_factor_above_the_usable_brokers_is_refused_as_kafka_does() {
        let err = Placer::from_brokers(&[(1, Some("a")), (2, Some("b"))])
            .place(1, 3)
            .unwrap_err();
        assert_eq!(err.code, ResponseError::InvalidReplicationFactor.code());
        assert_eq!(
            err.message,
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
             cannot be reached because only 2 broker(s) are registered."
        );
    }

    #[test]
    fn non_positive_counts_are_refused() {
        let placer = six_in_three_racks();
        let codes = [placer.check(0, 1), placer.check(1, 0)].map(|r| r.unwrap_err().code);
        assert_eq!(
            codes,
            [
                ResponseError::InvalidPartitions.code(),
                ResponseError::InvalidReplicationFactor.code()
            ]
        );
    }
}
