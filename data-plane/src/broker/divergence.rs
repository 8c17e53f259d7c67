//! Log divergence after a leader change: who cuts what (KIP-101, KIP-279, KIP-595 style).
//!
//! Two replicas agree on every offset below the end of the last leader epoch they share:
//! within one epoch only one leader appended. So a follower sends, with each Fetch, the
//! latest epoch in its log (`last_fetched_epoch`) and its log end offset (`fetch_offset`);
//! the leader looks the epoch up in its own leader-epoch cache and, if its log ended that
//! epoch earlier (or never had it), answers `DivergingEpoch{epoch, end_offset}` instead of
//! records. The follower cuts its log there and fetches again; a second round finishes the job
//! when it had several epochs the leader lacks.
//!
//! ```text
//! leader   epochs (0 @ 0) (2 @ 100)          log end 130
//! follower epochs (0 @ 0) (1 @ 100)          log end 120, last_fetched_epoch 1
//!   leader:   end of epoch 1 here? my largest epoch <= 1 is 0, ending at 100 -> (0, 100)
//!   follower: my epoch 0 ends at 100 too -> truncate to min(100, 100) = 100, fetch from 100
//! ```
//!
//! Both decisions are pure functions of the two caches' answers, tested below; the Fetch
//! handler (`fetch.rs`) and the fetcher ([`super::fetcher`]) only look the caches up.

use crate::log::{LeaderEpoch, Offset};

/// The leader's side: the `DivergingEpoch` to answer a follower, or `None` when the follower's
/// log agrees with this one up to `fetch_offset`.
///
/// `end_of_epoch` is this log's answer for `last_fetched_epoch`
/// ([`crate::log::PartitionLog::end_offset_for_epoch`]): the largest epoch at most it, and
/// where that epoch ended here. `None` means this log never saw an epoch that old or that
/// new; then everything after this log's `latest_epoch` diverges, and the answer is
/// (`latest_epoch`, `log_end`) — never Kafka's (-1, -1), which on the wire means "no
/// divergence" and would leave the follower refetching the same offset.
pub fn diverging_epoch(
    last_fetched_epoch: LeaderEpoch,
    fetch_offset: Offset,
    end_of_epoch: Option<(LeaderEpoch, Offset)>,
    latest_epoch: Option<LeaderEpoch>,
    log_end: Offset,
) -> Option<(LeaderEpoch, Offset)> {
    let (epoch, end) = end_of_epoch.unwrap_or((latest_epoch.unwrap_or(0), log_end));
    (epoch != last_fetched_epoch || end < fetch_offset).then_some((epoch, end))
}

/// The follower's side: where to cut its log after the leader answered `diverging`.
///
/// `local_end_of_epoch` is the follower's own answer for the diverging epoch; the cut is the
/// smaller of the two ends (and never past the log end). If the epochs leave nothing to cut
/// although the leader saw a divergence, only the committed part (below `high_watermark`) is
/// kept. `None`: nothing can be cut; the follower waits before asking again.
pub fn truncation_offset(
    diverging: (LeaderEpoch, Offset),
    local_end_of_epoch: Option<(LeaderEpoch, Offset)>,
    log_end: Offset,
    high_watermark: Offset,
) -> Option<Offset> {
    let (_, leader_end) = diverging;
    let local_end = local_end_of_epoch.map_or(log_end, |(_, end)| end);
    let to = leader_end.min(local_end).min(log_end);
    if to < log_end {
        return Some(to);
    }
    let committed = high_watermark.min(log_end);
    (committed < log_end).then_some(committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_in_the_leaders_current_epoch_does_not_diverge() {
        assert_eq!(diverging_epoch(3, 120, Some((3, 130)), Some(3), 130), None);
        assert_eq!(diverging_epoch(3, 130, Some((3, 130)), Some(3), 130), None);
    }

    #[test]
    fn an_epoch_that_ended_earlier_here_diverges_at_its_end() {
        // The follower kept appending in epoch 1 after the leader's epoch 1 ended at 100.
        assert_eq!(
            diverging_epoch(1, 120, Some((1, 100)), Some(2), 130),
            Some((1, 100))
        );
        // The leader never had epoch 1: its largest epoch below is 0, ending at 100.
        assert_eq!(
            diverging_epoch(1, 120, Some((0, 100)), Some(2), 130),
            Some((0, 100))
        );
    }

    #[test]
    fn an_epoch_newer_than_any_here_diverges_after_the_latest_epoch() {
        // The follower led epoch 3 alone; this new leader has only appended in epoch 2.
        assert_eq!(diverging_epoch(3, 120, None, Some(2), 100), Some((2, 100)));
        // An empty leader log: cut the follower to its end.
        assert_eq!(diverging_epoch(3, 120, None, None, 0), Some((0, 0)));
    }

    #[test]
    fn the_follower_cuts_at_the_smaller_end_of_the_diverging_epoch() {
        assert_eq!(
            truncation_offset((1, 100), Some((1, 120)), 120, 90),
            Some(100)
        );
        assert_eq!(
            truncation_offset((0, 100), Some((0, 80)), 120, 70),
            Some(80)
        );
        // The follower does not know the epoch: the leader's end decides.
        assert_eq!(truncation_offset((2, 100), None, 120, 90), Some(100));
        // Never past the log end.
        assert_eq!(truncation_offset((2, 500), Some((2, 500)), 120, 120), None);
    }

    #[test]
    fn with_nothing_to_cut_by_epoch_only_committed_data_is_kept() {
        assert_eq!(
            truncation_offset((2, 150), Some((2, 150)), 120, 110),
            Some(110)
        );
        assert_eq!(truncation_offset((2, 150), None, 120, 120), None);
    }
}
