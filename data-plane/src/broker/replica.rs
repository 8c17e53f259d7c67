//! The leader's view of its followers: the sans-IO core of replication on the leader side.
//!
//! A partition leader learns how far each follower has copied its log from the follower's
//! Fetch requests (a follower fetching at offset `o` holds every offset below `o`, checked by
//! the epoch comparison in the Fetch handler). From that it derives:
//!
//! - the **high watermark**: the smallest log end offset over the *maximal ISR* (the committed
//!   ISR plus the members an in-flight AlterPartition adds, KIP-497), never moving back;
//! - the **ISR changes to ask for**: a follower joins once its log end offset reaches the high
//!   watermark *and* the start of the leader's current epoch; a member leaves once it has not
//!   been caught up to the leader's log end offset for `replica.lag.time.max.ms`.
//!
//! The controller decides ISR changes (AlterPartition, then a committed PartitionChange); this
//! struct only proposes them and remembers the one in flight, so at most one is outstanding.
//! Time is passed in (`now_ms`) and nothing here does I/O, so every rule is unit-tested below.
//!
//! # Caught-up time (as Kafka's `Replica.updateFetchState`)
//! A fetch at offset `o` proves the follower was caught up *now* if `o` reaches the leader's
//! log end offset, and *at its previous fetch* if `o` reaches the leader's log end offset as
//! it was then. A follower that keeps fetching but never reaches the end (a slow one) and a
//! follower that stopped fetching (a stuck or dead one) both stop refreshing the time.

use std::collections::BTreeMap;

use crate::log::Offset;
use crate::metadata::NodeId;

/// What the leader knows about one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset); -1 until it fetches.
    pub log_end_offset: Offset,
    /// When the follower was last known caught up to the leader's log end offset (ms); -1 if
    /// never.
    pub last_caught_up_ms: i64,
    /// When the follower last fetched (ms); -1 if never.
    pub last_fetch_ms: i64,
    /// The leader's log end offset at the follower's last fetch.
    pub leader_end_at_last_fetch: Offset,
    /// The follower's log start offset, as its last fetch reported it; -1 until it fetches.
    /// DeleteRecords waits for it (the partition's low watermark).
    pub log_start_offset: Offset,
}

/// An AlterPartition sent to the controller and not yet answered or committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIsr {
    /// The ISR asked for.
    pub isr: Vec<NodeId>,
    /// The partition epoch the request was computed from; a committed change bumps it.
    pub partition_epoch: i32,
}

/// The leader-side replica state of one partition in one leader epoch. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaTracker {
    /// This broker, the leader.
    leader: NodeId,
    /// The first offset of the leader's current epoch (its log end offset on becoming leader).
    epoch_start_offset: Offset,
    /// Every other replica, by id.
    followers: BTreeMap<NodeId, FollowerState>,
    /// The AlterPartition in flight, if any.
    pending: Option<PendingIsr>,
}

impl ReplicaTracker {
    /// The state of a broker that just became leader with its log ending at `log_end_offset`.
    /// Followers already in the ISR count as caught up now, so they get a full
    /// `replica.lag.time.max.ms` to start fetching before they may be removed.
    pub fn new(
        leader: NodeId,
        replicas: &[NodeId],
        isr: &[NodeId],
        log_end_offset: Offset,
        now_ms: i64,
    ) -> Self {
        let mut tracker = Self {
            leader,
            epoch_start_offset: log_end_offset,
            followers: BTreeMap::new(),
            pending: None,
        };
        tracker.set_replicas(replicas, isr, now_ms);
        tracker
    }

    /// Follows a change of the replica list within the same leader epoch.
    pub fn set_replicas(&mut self, replicas: &[NodeId], isr: &[NodeId], now_ms: i64) {
        self.followers
            .retain(|id, _| replicas.contains(id) && *id != self.leader);
        for &id in replicas.iter().filter(|&&id| id != self.leader) {
            self.followers.entry(id).or_insert(FollowerState {
                log_end_offset: -1,
                last_caught_up_ms: if isr.contains(&id) { now_ms } else { -1 },
                last_fetch_ms: -1,
                leader_end_at_last_fetch: -1,
                log_start_offset: -1,
            });
        }
    }

    /// The first offset of the leader's current epoch.
    pub fn epoch_start_offset(&self) -> Offset {
        self.epoch_start_offset
    }

    /// A follower's state, if `id` is a follower of this partition.
    pub fn follower(&self, id: NodeId) -> Option<&FollowerState> {
        self.followers.get(&id)
    }

    /// Every follower, by id.
    pub fn followers(&self) -> impl Iterator<Item = (NodeId, &FollowerState)> {
        self.followers.iter().map(|(id, f)| (*id, f))
    }

    /// The AlterPartition in flight.
    pub fn pending(&self) -> Option<&PendingIsr> {
        self.pending.as_ref()
    }

    /// Records a follower's fetch at `fetch_offset` while the leader's log ends at
    /// `leader_end`. Returns false (and changes nothing) if `follower` is not a follower here.
    pub fn record_fetch(
        &mut self,
        follower: NodeId,
        fetch_offset: Offset,
        leader_end: Offset,
        now_ms: i64,
    ) -> bool {
        let Some(state) = self.followers.get_mut(&follower) else {
            return false;
        };
        assert!(
            fetch_offset <= leader_end,
            "follower {follower} fetched at {fetch_offset}, past the leader's end {leader_end}"
        );
        if fetch_offset >= leader_end {
            state.last_caught_up_ms = now_ms;
        } else if fetch_offset >= state.leader_end_at_last_fetch && state.last_fetch_ms >= 0 {
            state.last_caught_up_ms = state.last_caught_up_ms.max(state.last_fetch_ms);
        }
        state.log_end_offset = fetch_offset;
        state.last_fetch_ms = now_ms;
        state.leader_end_at_last_fetch = leader_end;
        true
    }

    /// Records the log start offset a follower reported in its fetch (DeleteRecords).
    pub fn record_log_start(&mut self, follower: NodeId, log_start_offset: Offset) {
        if let Some(state) = self.followers.get_mut(&follower) {
            state.log_start_offset = log_start_offset;
        }
    }

    /// Kafka's low watermark: the smallest log start offset among the leader (`leader_start`)
    /// and the followers on brokers that are `alive`; a live follower that has not fetched yet
    /// counts as -1. DeleteRecords is done once it reaches the requested offset.
    pub fn low_watermark(&self, leader_start: Offset, alive: impl Fn(NodeId) -> bool) -> Offset {
        self.followers
            .iter()
            .filter(|(id, _)| alive(**id))
            .map(|(_, state)| state.log_start_offset)
            .fold(leader_start, Offset::min)
    }

    /// The ISR the high watermark and acks=all count: the committed ISR plus the members an
    /// in-flight AlterPartition adds (KIP-497), in the order of `isr` then the additions.
    pub fn maximal_isr(&self, isr: &[NodeId]) -> Vec<NodeId> {
        let mut out = isr.to_vec();
        if let Some(pending) = &self.pending {
            out.extend(pending.isr.iter().filter(|id| !isr.contains(id)));
        }
        out
    }

    /// The high watermark: the smallest log end offset over the maximal ISR (the leader's own
    /// is `leader_end`), never below `current`. A member that has not fetched yet holds it.
    pub fn high_watermark(&self, isr: &[NodeId], leader_end: Offset, current: Offset) -> Offset {
        let smallest = self
            .maximal_isr(isr)
            .iter()
            .map(|&id| match self.followers.get(&id) {
                _ if id == self.leader => leader_end,
                Some(f) => f.log_end_offset,
                // An ISR member that is not a replica: the controller never writes that.
                None => -1,
            })
            .min()
            .unwrap_or(leader_end);
        current.max(smallest)
    }

    /// The ISR to ask the controller for, if it should change: members not caught up for more
    /// than `lag_max_ms` leave, followers at or past both the high watermark and the start of
    /// the leader's epoch join. `None` while an AlterPartition is in flight or when nothing
    /// changes. The result keeps the order of `replicas` (the leader is always in it).
    pub fn isr_change(
        &self,
        replicas: &[NodeId],
        isr: &[NodeId],
        high_watermark: Offset,
        lag_max_ms: i64,
        now_ms: i64,
    ) -> Option<Vec<NodeId>> {
        if self.pending.is_some() {
            return None;
        }
        let keeps = |id: NodeId| -> bool {
            if id == self.leader {
                return true;
            }
            let Some(f) = self.followers.get(&id) else {
                return false;
            };
            if isr.contains(&id) {
                f.last_caught_up_ms >= 0 && now_ms - f.last_caught_up_ms <= lag_max_ms
            } else {
                f.log_end_offset >= high_watermark && f.log_end_offset >= self.epoch_start_offset
            }
        };
        let next: Vec<NodeId> = replicas.iter().copied().filter(|&id| keeps(id)).collect();
        let same = next.len() == isr.len() && next.iter().all(|id| isr.contains(id));
        (!same).then_some(next)
    }

    /// Notes that an AlterPartition for `isr`, computed at `partition_epoch`, is in flight.
    pub fn begin_alter(&mut self, isr: Vec<NodeId>, partition_epoch: i32) {
        assert!(
            self.pending.is_none(),
            "one AlterPartition at a time: {:?} is in flight",
            self.pending
        );
        assert!(isr.contains(&self.leader), "the leader stays in its ISR");
        self.pending = Some(PendingIsr {
            isr,
            partition_epoch,
        });
    }

    /// The AlterPartition failed or was refused: forget it (the next check may try again).
    pub fn abort_alter(&mut self) {
        self.pending = None;
    }

    /// A new partition state arrived: the pending change is settled once the partition epoch
    /// moved past the one it was computed from (committed, or overtaken by another change).
    pub fn observe_partition_epoch(&mut self, partition_epoch: i32) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| partition_epoch > p.partition_epoch)
        {
            self.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 30_000;

    /// Broker 1 leads replicas [1, 2, 3], all in the ISR, from offset 100 at time 0.
    fn leader_of_three() -> ReplicaTracker {
        ReplicaTracker::new(1, &[1, 2, 3], &[1, 2, 3], 100, 0)
    }

    #[test]
    fn the_low_watermark_is_the_smallest_log_start_among_live_replicas() {
        let mut t = leader_of_three();
        let all_alive = |_: NodeId| true;
        assert_eq!(
            t.low_watermark(50, all_alive),
            -1,
            "followers not heard from yet"
        );
        t.record_log_start(2, 50);
        t.record_log_start(3, 20);
        assert_eq!(t.low_watermark(50, all_alive), 20);
        assert_eq!(
            t.low_watermark(50, |id| id != 3),
            50,
            "a dead broker does not hold it"
        );
        t.record_log_start(3, 60);
        assert_eq!(
            t.low_watermark(50, all_alive),
            50,
            "never above the leader's start"
        );
        t.record_log_start(9, 0); // not a replica: ignored
        assert_eq!(t.low_watermark(50, all_alive), 50);
    }

    #[test]
    fn the_high_watermark_is_the_smallest_log_end_offset_in_the_isr() {
        let mut t = leader_of_three();
        assert_eq!(
            t.high_watermark(&[1, 2, 3], 120, 100),
            100,
            "members that have not fetched hold the high watermark"
        );
        t.record_fetch(2, 110, 120, 10);
        t.record_fetch(3, 105, 120, 10);
        assert_eq!(t.high_watermark(&[1, 2, 3], 120, 100), 105);
        t.record_fetch(3, 120, 120, 20);
        assert_eq!(t.high_watermark(&[1, 2, 3], 120, 105), 110);
        assert_eq!(
            t.high_watermark(&[1, 3], 120, 110),
            120,
            "members outside the ISR do not count"
        );
        assert_eq!(
            t.high_watermark(&[1, 2, 3], 120, 115),
            115,
            "the high watermark never moves back"
        );
        assert_eq!(t.high_watermark(&[1], 130, 0), 130, "a lone leader commits");
    }

    #[test]
    fn an_in_flight_expansion_counts_toward_the_high_watermark() {
        let mut t = ReplicaTracker::new(1, &[1, 2], &[1], 50, 0);
        t.record_fetch(2, 40, 60, 5);
        assert_eq!(t.high_watermark(&[1], 60, 50), 60);
        t.begin_alter(vec![1, 2], 3);
        assert_eq!(t.maximal_isr(&[1]), vec![1, 2]);
        assert_eq!(
            t.high_watermark(&[1], 70, 60),
            60,
            "the joining follower at 40 holds it"
        );
    }

    #[test]
    fn a_follower_joins_once_caught_up_to_the_high_watermark_and_the_epoch_start() {
        let mut t = ReplicaTracker::new(1, &[1, 2, 3], &[1, 2], 100, 0);
        t.record_fetch(2, 130, 130, 1);
        t.record_fetch(3, 90, 130, 1);
        assert_eq!(t.isr_change(&[1, 2, 3], &[1, 2], 130, LAG, 2), None);
        // At the high watermark but below the start of the leader's epoch: not yet.
        let mut early = ReplicaTracker::new(1, &[1, 2, 3], &[1, 2], 100, 0);
        early.record_fetch(3, 95, 130, 1);
        assert_eq!(early.isr_change(&[1, 2, 3], &[1, 2], 95, LAG, 2), None);
        t.record_fetch(3, 130, 130, 3);
        assert_eq!(
            t.isr_change(&[1, 2, 3], &[1, 2], 130, LAG, 4),
            Some(vec![1, 2, 3])
        );
    }

    #[test]
    fn a_member_leaves_after_the_lag_time_without_catching_up() {
        let mut t = leader_of_three();
        // Follower 2 keeps fetching but falls further behind; follower 3 keeps up.
        for now in (0..=40_000).step_by(1_000) {
            let leader_end = 100 + now;
            t.record_fetch(2, 100 + now / 10, leader_end, now);
            t.record_fetch(3, leader_end, leader_end, now);
        }
        assert_eq!(t.isr_change(&[1, 2, 3], &[1, 2, 3], 100, LAG, 29_999), None);
        assert_eq!(
            t.isr_change(&[1, 2, 3], &[1, 2, 3], 100, LAG, 30_001),
            Some(vec![1, 3])
        );
    }

    #[test]
    fn a_follower_that_stops_fetching_leaves_after_the_lag_time() {
        let mut t = leader_of_three();
        t.record_fetch(2, 100, 100, 1_000);
        t.record_fetch(3, 100, 100, 1_000);
        assert_eq!(t.isr_change(&[1, 2, 3], &[1, 2, 3], 100, LAG, 31_000), None);
        t.record_fetch(3, 100, 100, 31_000);
        assert_eq!(
            t.isr_change(&[1, 2, 3], &[1, 2, 3], 100, LAG, 31_001),
            Some(vec![1, 3])
        );
    }

    #[test]
    fn a_fetch_that_reaches_the_previous_end_counts_as_caught_up_then() {
        let mut t = ReplicaTracker::new(1, &[1, 2], &[1], 0, 0);
        t.record_fetch(2, 50, 60, 1_000);
        assert_eq!(t.follower(2).unwrap().last_caught_up_ms, -1);
        // Reaches 60 (the end at its last fetch) while the leader is at 70 now.
        t.record_fetch(2, 60, 70, 2_000);
        assert_eq!(t.follower(2).unwrap().last_caught_up_ms, 1_000);
        t.record_fetch(2, 70, 70, 3_000);
        assert_eq!(t.follower(2).unwrap().last_caught_up_ms, 3_000);
    }

    #[test]
    fn one_alter_partition_at_a_time_settled_by_a_newer_partition_epoch() {
        let mut t = leader_of_three();
        t.record_fetch(3, 100, 100, 39_000);
        let change = t.isr_change(&[1, 2, 3], &[1, 2, 3], 100, LAG, 40_000);
        assert_eq!(change, Some(vec![1, 3]));
        t.begin_alter(vec![1, 3], 4);
        assert_eq!(t.isr_change(&[1, 2, 3], &[1, 2, 3], 100, LAG, 40_000), None);
        t.observe_partition_epoch(4);
        assert!(t.pending().is_some(), "the same epoch settles nothing");
        t.observe_partition_epoch(5);
        assert!(t.pending().is_none());
        t.begin_alter(vec![1], 5);
        t.abort_alter();
        assert!(t.pending().is_none());
    }

    #[test]
    fn followers_follow_the_replica_list_and_unknown_fetchers_are_ignored() {
        let mut t = leader_of_three();
        assert!(!t.record_fetch(9, 0, 100, 1));
        t.set_replicas(&[1, 3, 4], &[1, 3], 5);
        let ids: Vec<NodeId> = t.followers().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![3, 4]);
        assert_eq!(t.follower(4).unwrap().last_caught_up_ms, -1);
    }
}
