//! The storage seam under [`super::Log`]: where segments and checkpoints live.
//!
//! [`super::Log`] holds all partition-level logic (offset assignment, rolling, retention,
//! truncation, the leader-epoch cache) once; a [`Storage`] only creates, deletes and persists.
//! Two implementations: [`super::FileStorage`] (segment files) and [`super::MemoryStorage`].

use bytes::Bytes;

use super::Offset;
use super::batch::BatchInfo;
use super::epoch::LeaderEpochCache;
use super::error::Result;
use super::policy::SegmentStats;

/// Whole batches read from one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentRead {
    /// Concatenated whole batches, as stored; empty if nothing qualified.
    pub records: Bytes,
    /// Base offset of the first batch returned (meaningless when empty).
    pub first_offset: Offset,
    /// One past the last offset returned (meaningless when empty).
    pub next_offset: Offset,
}

/// One segment: a contiguous run of batches starting at `base_offset`.
///
/// Only the last segment of a log (the active one) is appended to. Implementations assert
/// that appended batches continue at `next_offset`.
pub trait Segment: Send {
    /// First offset of the segment (fixed at creation).
    fn base_offset(&self) -> Offset;

    /// One past the last offset it holds; `base_offset` when empty.
    fn next_offset(&self) -> Offset;

    /// Bytes of batches it holds.
    fn size(&self) -> u64;

    /// The summary the roll and retention policies look at.
    fn stats(&self) -> SegmentStats;

    /// Base offset of the first batch holding the largest maxTimestamp, and that timestamp;
    /// `None` if empty or no batch has a timestamp.
    fn max_timestamp(&self) -> Option<(Offset, i64)>;

    /// Appends `buf`, whose batches (already validated, offsets assigned) are `batches`.
    /// `now_ms` starts the roll clock of an empty segment; index entries are added every
    /// `index_interval_bytes`.
    fn append(
        &mut self,
        buf: &[u8],
        batches: &[BatchInfo],
        now_ms: i64,
        index_interval_bytes: u64,
    ) -> Result<()>;

    /// Whole batches from the one containing `offset` (or the first after it), at most
    /// `max_bytes` in total except that the first batch is returned whole if `min_one_batch`,
    /// stopping before any batch whose last offset is `max_offset` or more.
    fn read(
        &self,
        offset: Offset,
        max_offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<SegmentRead>;

    /// The first whole batch with a maxTimestamp of at least `timestamp_ms` and a last offset
    /// of at least `min_offset`.
    fn batch_for_timestamp(&self, timestamp_ms: i64, min_offset: Offset) -> Result<Option<Bytes>>;

    /// Removes every batch containing an offset at or after `offset`.
    fn truncate_to(&mut self, offset: Offset) -> Result<()>;

    /// Called when the segment stops being active: writes its final index entries. It does
    /// not wait for stable storage (the log flushes sealed segments later, see
    /// [`super::partition`]); with `sync_in_background` it starts forcing the segment to
    /// stable storage on a thread of its own, which [`Segment::flush`] then waits for.
    fn seal(&mut self, sync_in_background: bool) -> Result<()>;

    /// Whether a background sync started by [`Segment::seal`] is still running.
    fn sync_running(&self) -> bool;

    /// Forces the segment to stable storage (after waiting for a background sync, if any).
    fn flush(&mut self) -> Result<()>;
}

/// Creates, deletes and persists the pieces of one partition's log.
pub trait Storage: Send {
    /// The segment type.
    type Segment: Segment;

    /// Creates an empty segment starting at `base_offset`.
    fn create_segment(&mut self, base_offset: Offset) -> Result<Self::Segment>;

    /// Deletes a segment that is no longer part of the log.
    fn delete_segment(&mut self, segment: Self::Segment) -> Result<()>;

    /// Persists the log start offset.
    fn save_log_start(&mut self, offset: Offset) -> Result<()>;

    /// Persists the leader-epoch cache.
    fn save_epochs(&mut self, cache: &LeaderEpochCache) -> Result<()>;

    /// Persists the recovery point: every segment that ends at or below it is durable, so
    /// recovery after a crash only scans the segments after it.
    fn save_recovery_point(&mut self, offset: Offset) -> Result<()>;

    /// Makes the directory entries of segments created since the last call durable (a no-op
    /// when there are none). Called by a flush before it counts as done.
    fn sync_dir(&mut self) -> Result<()>;

    /// Called after a clean close has flushed every segment.
    fn mark_clean_shutdown(&mut self) -> Result<()>;
}
