//! Sans-IO policies: when to roll the active segment, which segments retention deletes.
//!
//! Both follow Kafka (`LogSegment.shouldRoll`, `UnifiedLog.deleteOldSegments`) and work on
//! [`SegmentStats`] summaries, so the file and memory storages share them exactly.
//!
//! Roll clock: the age of a segment for `segment.ms` counts from the wall-clock time of its
//! first append. Kafka counts from the first batch's (producer) timestamp, which lets a
//! producer with a skewed clock force a roll per append; the append time cannot be skewed.
//! After a restart the append time is not known, so recovery uses the first batch's
//! maxTimestamp (capped at the current time), as Kafka does.

use super::Offset;
use super::config::LogConfig;

/// What the policies need to know about a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    /// First offset of the segment.
    pub base_offset: Offset,
    /// One past its last offset (`base_offset` when empty).
    pub next_offset: Offset,
    /// Bytes of batches it holds.
    pub size: u64,
    /// The newest timestamp in it, for retention.ms: the largest batch maxTimestamp, or when
    /// the batches carry no timestamps (-1) the time of the last write (Kafka uses the file's
    /// modification time).
    pub largest_timestamp_ms: i64,
    /// When the segment started aging for segment.ms; `None` while empty.
    pub roll_base_ms: Option<i64>,
}

/// Whether the active segment must be rolled before appending `append_bytes` bytes whose
/// last offset is `append_last_offset`. An empty segment never rolls (a single batch larger
/// than segment.bytes goes into an empty segment on its own).
pub fn should_roll(
    active: &SegmentStats,
    config: &LogConfig,
    append_bytes: u64,
    append_last_offset: Offset,
    now_ms: i64,
) -> bool {
    if active.size == 0 {
        return false;
    }
    let full = active.size.saturating_add(append_bytes) > config.segment_bytes;
    let old = is_expired_for_roll(active, config, now_ms);
    // Index entries hold offsets relative to the base as u32; Kafka keeps them within i32.
    let offsets_overflow = append_last_offset - active.base_offset > i64::from(i32::MAX);
    full || old || offsets_overflow
}

/// Whether a non-empty segment has aged past segment.ms.
pub fn is_expired_for_roll(active: &SegmentStats, config: &LogConfig, now_ms: i64) -> bool {
    active.size > 0
        && active
            .roll_base_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= config.segment_ms)
}

/// The segments a retention pass deletes: always a prefix of the segment list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Leading segments past retention.ms.
    pub by_time: usize,
    /// The following segments deleted for retention.bytes.
    pub by_size: usize,
    /// The following segments entirely below the log start offset.
    pub below_log_start: usize,
}

impl RetentionPlan {
    /// Number of leading segments to delete.
    pub fn count(&self) -> usize {
        self.by_time + self.by_size + self.below_log_start
    }
}

/// Plans a retention pass over `segments` (oldest first, the active one last).
///
/// A segment may be deleted only if all its offsets are below `high_watermark`, and the last
/// segment only if it is non-empty (the caller rolls a fresh one first). The passes run in
/// Kafka's order, each continuing where the previous stopped and stopping at the first
/// segment it would keep: retention.ms, retention.bytes, log start offset.
pub fn plan_retention(
    segments: &[SegmentStats],
    config: &LogConfig,
    now_ms: i64,
    high_watermark: Offset,
    log_start_offset: Offset,
) -> RetentionPlan {
    let deletable = |i: usize| {
        let seg = &segments[i];
        let is_last = i + 1 == segments.len();
        seg.next_offset <= high_watermark && !(is_last && seg.size == 0)
    };
    let mut n = 0;
    if config.retention_ms >= 0 {
        while n < segments.len()
            && deletable(n)
            && now_ms.saturating_sub(segments[n].largest_timestamp_ms) > config.retention_ms
        {
            n += 1;
        }
    }
    let by_time = n;
    if config.retention_bytes >= 0 {
        let total: u64 = segments[n..].iter().map(|s| s.size).sum();
        let mut excess = total as i128 - i128::from(config.retention_bytes);
        while n < segments.len() && deletable(n) && excess - i128::from(segments[n].size) >= 0 {
            excess -= i128::from(segments[n].size);
            n += 1;
        }
    }
    let by_size = n - by_time;
    while n + 1 < segments.len() && deletable(n) && segments[n + 1].base_offset <= log_start_offset
    {
        n += 1;
    }
    RetentionPlan {
        by_time,
        by_size,
        below_log_start: n - by_time - by_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: Offset, next: Offset, size: u64, ts: i64) -> SegmentStats {
        SegmentStats {
            base_offset: base,
            next_offset: next,
            size,
            largest_timestamp_ms: ts,
            roll_base_ms: (size > 0).then_some(ts),
        }
    }

    fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn roll_by_size_age_and_offset_range() {
        let c = LogConfig {
            segment_bytes: 100,
            segment_ms: 1000,
            ..LogConfig::default()
        };
        let active = seg(0, 10, 60, 5_000);
        assert!(!should_roll(&active, &c, 40, 20, 5_999));
        assert!(should_roll(&active, &c, 41, 20, 5_999));
        assert!(should_roll(&active, &c, 1, 20, 6_000));
        assert!(should_roll(&active, &c, 1, i64::from(i32::MAX) + 1, 5_000));
        let empty = seg(10, 10, 0, -1);
        assert!(!should_roll(&empty, &c, 1_000_000, 20, i64::MAX));
    }

    #[test]
    fn retention_by_time_stops_at_first_young_segment() {
        let segs = [
            seg(0, 10, 100, 1_000),
            seg(10, 20, 100, 5_000),
            seg(20, 30, 100, 2_000),
        ];
        let plan = plan_retention(&segs, &config(1_000, -1), 4_500, 30, 0);
        assert_eq!(
            plan,
            RetentionPlan {
                by_time: 1,
                by_size: 0,
                below_log_start: 0
            }
        );
        let plan = plan_retention(&segs, &config(-1, -1), i64::MAX, 30, 0);
        assert_eq!(plan.count(), 0);
        // Everything expired: the active one too (the caller rolls first).
        let plan = plan_retention(&segs, &config(1_000, -1), 10_000, 30, 0);
        assert_eq!(plan.by_time, 3);
    }

    #[test]
    fn retention_never_passes_the_high_watermark() {
        let segs = [
            seg(0, 10, 100, 1_000),
            seg(10, 20, 100, 1_000),
            seg(20, 30, 100, 1_000),
        ];
        let plan = plan_retention(&segs, &config(1, -1), 10_000, 19, 0);
        assert_eq!(plan.count(), 1);
    }

    #[test]
    fn retention_by_size_deletes_only_while_the_rest_stays_at_the_limit() {
        // Kafka semantics: the log may stay above retention.bytes by less than a segment.
        let segs = [seg(0, 10, 100, 0), seg(10, 20, 100, 0), seg(20, 30, 50, 0)];
        assert_eq!(plan_retention(&segs, &config(-1, 150), 0, 30, 0).by_size, 1);
        assert_eq!(plan_retention(&segs, &config(-1, 149), 0, 30, 0).by_size, 1);
        assert_eq!(plan_retention(&segs, &config(-1, 50), 0, 30, 0).by_size, 2);
        assert_eq!(plan_retention(&segs, &config(-1, 250), 0, 30, 0).by_size, 0);
        assert_eq!(plan_retention(&segs, &config(-1, 0), 0, 30, 0).by_size, 3);
    }

    #[test]
    fn segments_below_log_start_go_but_never_the_last() {
        let segs = [seg(0, 10, 100, 0), seg(10, 20, 100, 0), seg(20, 30, 50, 0)];
        assert_eq!(
            plan_retention(&segs, &config(-1, -1), 0, 30, 10).below_log_start,
            1
        );
        assert_eq!(
            plan_retention(&segs, &config(-1, -1), 0, 30, 25).below_log_start,
            2
        );
        assert_eq!(
            plan_retention(&segs, &config(-1, -1), 0, 30, 30).below_log_start,
            2
        );
    }

    #[test]
    fn empty_active_segment_is_never_deleted() {
        let segs = [seg(0, 10, 100, 0), seg(10, 10, 0, -1)];
        assert_eq!(
            plan_retention(&segs, &config(1, 0), 10_000, 10, 0).count(),
            1
        );
    }
}
