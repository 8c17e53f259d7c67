//! The leader-epoch cache: which leader epoch started at which offset.
//!
//! Each entry says "batches from `start_offset` on were appended under `epoch`", so the end
//! offset of an epoch is the start offset of the next one. The leader records an entry when it
//! appends its first batch in a new epoch; a follower records the epochs carried by the batches
//! it copies. OffsetForLeaderEpoch and follower truncation (KIP-101, KIP-279) are answered from
//! it. It is persisted as Kafka's `leader-epoch-checkpoint`:
//!
//! ```text
//! 0            version
//! 2            number of entries
//! 0 0          epoch startOffset
//! 3 1200
//! ```
//!
//! This type is pure (no I/O); the [`super::Storage`] persists it after every change.

use super::{LeaderEpoch, Offset};

/// One entry: `epoch` began at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: LeaderEpoch,
    /// The first offset appended in that epoch.
    pub start_offset: Offset,
}

/// The cache: entries with strictly increasing epochs and non-decreasing start offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    /// The entries, oldest first.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache holding `entries`, which must be ordered (panics otherwise: a bug).
    pub fn from_entries(entries: Vec<EpochEntry>) -> LeaderEpochCache {
        let cache = LeaderEpochCache { entries };
        cache.assert_ordered();
        cache
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. Returns whether the cache changed.
    ///
    /// Negative epochs (batches from before leader epochs existed) are ignored, as is the
    /// latest epoch again. Like Kafka's `LeaderEpochFileCache.assign`, an entry that conflicts
    /// with the new one (an epoch at or above it, or a start offset at or after it) is removed
    /// first: that only happens after a truncation the caller did not report.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch < 0 || self.latest_epoch() == Some(epoch) {
            return false;
        }
        let before = self.entries.len();
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        if self.entries.len() != before {
            tracing::warn!(
                epoch,
                start_offset,
                "leader-epoch cache: removed conflicting entries"
            );
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.assert_ordered();
        true
    }

    /// Removes entries that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: Offset) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// Drops entries wholly below `start_offset` (the log start moved there); the epoch that
    /// covers `start_offset` is kept with its start moved up to it.
    pub fn truncate_from_start(&mut self, start_offset: Offset) -> bool {
        let covering = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if covering == 0 {
            return false;
        }
        let changed = covering > 1 || self.entries[0].start_offset != start_offset;
        self.entries.drain(..covering - 1);
        self.entries[0].start_offset = start_offset;
        changed
    }

    /// Removes every entry.
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Kafka's `endOffsetFor`: `(largest known epoch <= epoch, end offset of epoch)`, or `None`
    /// for (-1, -1). If `epoch` is below every known epoch the answer is `(epoch, start of the
    /// first known epoch)`.
    pub fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end_offset: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        if epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(epoch) {
            return Some((epoch, log_end_offset));
        }
        let higher = self.entries.partition_point(|e| e.epoch <= epoch);
        let next = self.entries.get(higher)?;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].epoch, next.start_offset)),
            None => Some((epoch, next.start_offset)),
        }
    }

    /// The checkpoint file's text.
    pub fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        out
    }

    /// Parses a checkpoint file; `None` if it is malformed or out of order.
    pub fn decode(text: &str) -> Option<LeaderEpochCache> {
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut entries = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let mut parts = lines.next()?.split_whitespace();
            let epoch = parts.next()?.parse().ok()?;
            let start_offset = parts.next()?.parse().ok()?;
            entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        let ordered = entries
            .windows(2)
            .all(|w| w[1].epoch > w[0].epoch && w[1].start_offset >= w[0].start_offset);
        (ordered && entries.iter().all(|e| e.epoch >= 0)).then_some(LeaderEpochCache { entries })
    }

    fn assert_ordered(&self) {
        for w in self.entries.windows(2) {
            assert!(
                w[1].epoch > w[0].epoch && w[1].start_offset >= w[0].start_offset,
                "leader-epoch cache out of order: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(pairs: &[(i32, i64)]) -> LeaderEpochCache {
        let entries = pairs
            .iter()
            .map(|&(epoch, start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
            .collect();
        LeaderEpochCache::from_entries(entries)
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 100), (4, 250)]);
        assert_eq!(c.end_offset_for(4, 300), Some((4, 300)));
        assert_eq!(c.end_offset_for(3, 300), Some((3, 250)));
        assert_eq!(c.end_offset_for(2, 300), Some((1, 100)));
        assert_eq!(c.end_offset_for(1, 300), Some((1, 100)));
        assert_eq!(c.end_offset_for(0, 300), Some((0, 0)));
        assert_eq!(c.end_offset_for(5, 300), None);
        assert_eq!(c.end_offset_for(-1, 300), None);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 10), None);
    }

    #[test]
    fn assign_appends_new_epochs_only() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(1, 0));
        assert!(!c.assign(1, 5));
        assert!(!c.assign(-1, 6));
        assert!(c.assign(2, 10));
        assert_eq!(c, cache(&[(1, 0), (2, 10)]));
        // A conflicting assignment replaces what it contradicts.
        assert!(c.assign(3, 5));
        assert_eq!(c, cache(&[(1, 0), (3, 5)]));
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (2, 10), (3, 20)]);
        assert!(c.truncate_from_end(20));
        assert_eq!(c, cache(&[(1, 0), (2, 10)]));
        assert!(!c.truncate_from_end(25));
        assert!(c.truncate_from_start(15));
        assert_eq!(c, cache(&[(2, 15)]));
        assert!(!c.truncate_from_start(3));
        assert!(!c.truncate_from_start(15));
    }

    #[test]
    fn checkpoint_text_round_trips() {
        let c = cache(&[(0, 0), (7, 1_000_000)]);
        assert_eq!(c.encode(), "0\n2\n0 0\n7 1000000\n");
        assert_eq!(LeaderEpochCache::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n2\n3 0\n1 5\n",
            "0\nx\n",
            "0\n1\n-2 0\n",
        ] {
            assert_eq!(LeaderEpochCache::decode(bad), None, "{bad:?}");
        }
    }
}
