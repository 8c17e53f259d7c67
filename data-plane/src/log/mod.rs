//! The partition log: durable storage of one Kafka partition on a broker.
//!
//! A partition is a sequence of record batches, each holding records with consecutive
//! offsets. The log keeps the batches exactly as producers encoded them: on a leader append
//! it validates each batch (header and CRC-32C, [`batch`]), assigns offsets by rewriting the
//! base offset in place, stamps the leader epoch, and writes the bytes to the active segment.
//! Fetch serves the same bytes back with positional reads, without decoding.
//!
//! # Layout
//!
//! ```text
//! <log_dir>/<topic>-<partition>/
//!     00000000000000000000.log        record batches, back to back, offsets 0..
//!     00000000000000000000.index      sparse offset index  (relativeOffset u32, position u32)
//!     00000000000000000000.timeindex  time index           (maxTimestamp i64, relativeOffset u32)
//!     00000000000000004096.log        the next segment: base offset = first offset it holds
//!     ...                             the last segment is the active one; only it grows
//!     log-start-offset                "0\n<offset>\n": log start after DeleteRecords/retention
//!     leader-epoch-checkpoint         Kafka's format: "0\n<count>\n<epoch> <startOffset>\n..."
//!     recovery-point                  "0\n<offset>\n": segments ending at or below it are durable
//!     clean-shutdown                  present only while closed cleanly (skips the CRC scan)
//!     00000000000000004096.snapshot   idempotent producers' state below that offset, written
//!                                     by the broker at rolls and shutdown ([`producer_snapshot`])
//! ```
//!
//! # Structure
//!
//! [`PartitionLog`] is the seam the broker uses. [`Log`] implements it once over a
//! [`Storage`]: [`FileLog`] (= `Log<FileStorage>`, segment files in a directory) and
//! [`MemoryLog`] (= `Log<MemoryStorage>`, for broker unit tests). Policies (when to roll, what
//! retention deletes) are sans-IO functions in [`policy`]; the segment file format is in
//! [`segment`] and [`index`]; crash recovery in [`mod@file`].
//!
//! # Guarantees
//!
//! - Offsets strictly increase, segments are contiguous (each starts where the previous one
//!   ends), index entries are strictly increasing. Violations are bugs and panic.
//! - An append is all or nothing with respect to validation: if any batch is invalid, nothing
//!   is written. Bad input from the network is an [`Error`], never a panic.
//! - Appends go to the page cache (no fsync per append unless `flush.messages`/`flush.ms` ask
//!   for it). After a process crash (kill -9) every append that returned is readable on
//!   reopen; a torn or corrupt tail is cut. Rolling does not fsync on the append path: the
//!   sealed segment syncs in the background and a persisted *recovery point* (as in Kafka)
//!   says which segments are durable; after a crash every segment after it is scanned
//!   ([`partition`] has the design, [`mod@file`] what a power loss can lose under each setting).
//! - A flush (`flush.messages`/`flush.ms`, the broker's shutdown) counts as done only once
//!   the data of every segment and their directory entries are durable. With
//!   `flush.messages=1` a power loss loses nothing acknowledged.
//! - Creating a new partition log does no fsync and writes no checkpoint; the first flush
//!   makes its directory durable (a crash before that recreates it from metadata).
//!
//! # Deliberate simplifications
//!
//! - No compaction (`cleanup.policy=compact` is refused), no transactions index, no tiered
//!   storage. Idempotent producers' state ([`producer_state`]) and its snapshot files
//!   ([`producer_snapshot`], `<offset>.snapshot`) are kept beside the log by the broker.
//! - Indexes grow by plain writes instead of being preallocated and memory-mapped.
//! - Records inside a producer's batch are decoded once, within bounds ([`records`]), to check
//!   that they are what the header claims; Kafka's other per-record checks (timestamps,
//!   keys of compacted topics) are not done.
//! - Segments are deleted synchronously, not renamed to `.deleted` and removed later.
//! - The high watermark lives in the replica layer; retention takes it as an argument.

pub mod batch;
pub mod config;
pub mod epoch;
pub mod error;
pub mod file;
pub mod index;
pub mod memory;
pub mod partition;
pub mod policy;
pub mod producer_snapshot;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod storage;

mod checkpoint;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod testutil;

pub use batch::{BatchError, BatchHeader};
pub use config::{ConfigError, LogConfig};
pub use error::{Error, Result};
pub use file::{FileLog, FileStorage, delete_partition_dir, partition_dir};
pub use memory::{MemoryLog, MemoryStorage};
pub use partition::Log;
pub use storage::{Segment, Storage};

use bytes::{Bytes, BytesMut};

/// Position of a record in a partition, assigned by the leader: 0, 1, 2, ... without gaps.
pub type Offset = i64;

/// A leader epoch: bumped by the controller on every leader change of a partition.
pub use ferry_kafka_config::ids::LeaderEpoch;

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: Offset,
    /// Offset of the last record appended.
    pub last_offset: Offset,
    /// The broker's append time if the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
    /// Number of records appended (sum of the batches' record counts).
    pub record_count: i64,
    /// Largest batch maxTimestamp among the appended batches.
    pub max_timestamp: i64,
}

/// Bytes read from the log for a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole record batches, concatenated, exactly as stored. Empty if nothing was readable.
    pub records: Bytes,
    /// Base offset of the first batch returned, which may be below the requested offset when
    /// that offset falls inside a batch; the requested offset when `records` is empty.
    pub first_offset: Offset,
    /// One past the last offset in `records`: where the next read continues. The requested
    /// offset when `records` is empty.
    pub next_offset: Offset,
    /// The log start offset at the time of the read.
    pub log_start_offset: Offset,
    /// The log end offset at the time of the read.
    pub log_end_offset: Offset,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted because their newest timestamp passed retention.ms.
    pub deleted_by_time: usize,
    /// Segments deleted to bring the log under retention.bytes.
    pub deleted_by_size: usize,
    /// Segments deleted because they lie entirely below the log start offset.
    pub deleted_below_log_start: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
    /// The log start offset after the pass.
    pub log_start_offset: Offset,
}

impl RetentionOutcome {
    /// Total segments deleted.
    pub fn segments_deleted(&self) -> usize {
        self.deleted_by_time + self.deleted_by_size + self.deleted_below_log_start
    }
}

/// The storage of one partition replica, as the broker and the replica layer use it.
///
/// Time is passed in (`now_ms`, wall-clock milliseconds) so implementations never read the
/// clock and tests are deterministic.
pub trait PartitionLog: Send {
    /// Appends `batches` (one or more concatenated v2 batches exactly as the producer sent
    /// them) as the partition leader. Every batch is validated first (CRC, magic, sizes against
    /// max.message.bytes, counts); if any is invalid nothing is written. Then offsets are
    /// assigned from the log end offset by rewriting each base offset in place, `leader_epoch`
    /// is stamped into each batch, and with LogAppendTime maxTimestamp is set to `now_ms` (and
    /// the CRC recomputed). The bytes go to the active segment, rolled first if it is full or
    /// older than segment.ms. A new leader epoch is recorded in the leader-epoch cache.
    fn append_as_leader(
        &mut self,
        batches: BytesMut,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo>;

    /// Appends batches that already carry offsets and leader epochs (a follower copying its
    /// leader). The first batch must start at the log end offset and the batches must be
    /// contiguous ([`Error::NonContiguous`] otherwise); epochs are recorded in the cache. Size
    /// limits are not applied, as in Kafka. An empty buffer appends nothing.
    fn append_as_follower(&mut self, batches: BytesMut, now_ms: i64) -> Result<AppendInfo>;

    /// Reads whole batches starting with the batch that contains `offset`, up to `max_bytes`
    /// in total, and only batches whose last offset is below `max_offset` (exclusive; the high
    /// watermark for consumers, the log end offset for followers). If the first batch alone is
    /// larger than `max_bytes` it is returned whole when `min_one_batch` is set (KIP-74: a
    /// consumer always progresses) and nothing is returned otherwise. The bytes come straight
    /// from the segments, never re-encoded. An offset outside `[log_start, log_end]` is
    /// [`Error::OffsetOutOfRange`]; `offset == log_end` reads nothing.
    fn read(
        &mut self,
        offset: Offset,
        max_bytes: usize,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<ReadResult>;

    /// The first offset still in the log.
    fn log_start_offset(&self) -> Offset;

    /// One past the last offset in the log: where the next append starts.
    fn log_end_offset(&self) -> Offset;

    /// ListOffsets by timestamp: the first record (at or after the log start) whose timestamp
    /// is at least `timestamp_ms`, with its timestamp; `None` if there is none. Batches are
    /// located through the time index by their maxTimestamp, then the batch is decoded to find
    /// the exact record.
    fn offset_for_timestamp(&mut self, timestamp_ms: i64) -> Result<Option<(Offset, i64)>>;

    /// ListOffsets -3 (MAX_TIMESTAMP): the record with the largest timestamp and that
    /// timestamp; the earliest one on ties; `None` if the log is empty.
    fn max_timestamp(&mut self) -> Result<Option<(Offset, i64)>>;

    /// Deletes old segments, oldest first, as Kafka does: those whose newest timestamp is more
    /// than retention.ms before `now_ms`, then as many as needed to bring the log under
    /// retention.bytes, then those entirely below the log start offset. A segment is deleted
    /// only if all its offsets are below `high_watermark` (never unreplicated data). If every
    /// segment qualifies, including a non-empty active one, a new empty segment is rolled first
    /// so the log keeps its end offset. Advances the log start offset to the first remaining
    /// segment.
    fn enforce_retention(
        &mut self,
        now_ms: i64,
        high_watermark: Offset,
    ) -> Result<RetentionOutcome>;

    /// Periodic tick: rolls the active segment if it is non-empty and older than segment.ms
    /// (returns whether it rolled), and fsyncs if flush.ms has passed since the last flush.
    /// Appends also roll by size and age on their own.
    fn maybe_roll(&mut self, now_ms: i64) -> Result<bool>;

    /// DeleteRecords: advances the log start offset to `offset` (the caller checks it is at
    /// most the high watermark; it must not exceed the log end offset), deletes segments
    /// entirely below it and persists the new start. Moving backwards is a no-op.
    fn advance_log_start(&mut self, offset: Offset) -> Result<()>;

    /// Replication: removes every batch that contains an offset at or after `offset`. Like
    /// Kafka, truncation is at batch granularity, so the new log end offset is the base of the
    /// batch containing `offset` when `offset` falls inside one. Truncating below the log start
    /// empties the log and restarts it at `offset`. The leader-epoch cache is trimmed.
    fn truncate_to(&mut self, offset: Offset) -> Result<()>;

    /// Replication: empties the log and restarts it at `offset`, which may lie past the log
    /// end (Kafka's `truncateFullyAndStartAt`). A follower whose log ends below its leader's
    /// log start (moved by DeleteRecords or retention) cannot catch up by fetching; it starts
    /// over at the leader's log start. The leader-epoch cache is cleared.
    fn restart_at(&mut self, offset: Offset) -> Result<()>;

    /// OffsetForLeaderEpoch: the largest epoch at most `epoch` that the log knows and the end
    /// offset of `epoch` (the start of the next larger epoch, or the log end offset if `epoch`
    /// is the latest). `None` stands for Kafka's (-1, -1): the cache is empty or `epoch` is
    /// above every known epoch.
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)>;

    /// The latest leader epoch recorded in the log, if any.
    fn latest_epoch(&self) -> Option<LeaderEpoch>;

    /// Forces the active segment and its indexes to stable storage.
    fn flush(&mut self) -> Result<()>;

    /// The current configuration.
    fn config(&self) -> &LogConfig;

    /// Applies a topic configuration change; it takes effect from the next operation.
    fn set_config(&mut self, config: LogConfig);

    /// Total bytes of all segments.
    fn size_bytes(&self) -> u64;

    /// Number of segments, the active one included (always at least 1).
    fn segment_count(&self) -> usize;

    /// Marks the log as being deleted: dropping it then skips the final flush and the
    /// clean-shutdown marker (its files are about to be removed; syncing them is wasted I/O).
    fn discard(&mut self);
}
