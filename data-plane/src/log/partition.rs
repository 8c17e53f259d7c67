//! [`Log`]: the partition log over any [`Storage`]; implements [`PartitionLog`].
//!
//! ```text
//! segments: [ s0 | s1 | ... | active ]     s(i).next_offset == s(i+1).base_offset
//!             ^ log_start_offset lies in s0 (or at the active base when all were deleted)
//!                                   ^ log_end_offset = active.next_offset
//! ```
//!
//! Expected flow of an append: validate every batch (nothing written on error) -> assign
//! offsets, stamp the epoch (and LogAppendTime) in place -> roll if the active segment is full
//! or old -> record a new epoch in the cache (persisted before the data) -> write -> maybe
//! fsync per flush.messages/flush.ms.
//!
//! # Recovery point
//!
//! Rolling does not fsync the sealed segment (a 1 GiB fsync would stall the append): sealing
//! starts the fsync on a background thread (at most [`MAX_BACKGROUND_SYNCS`] running per log)
//! and returns. The log keeps a *recovery point*, as Kafka does: every segment that ends at or
//! below it is durable, data and directory entry. It only moves forward when sealed segments
//! are made durable, oldest first: by [`PartitionLog::maybe_roll`] (the broker's periodic
//! tick; it takes the segments whose background sync has finished and never waits) and by
//! [`PartitionLog::flush`] (waits for all of them; flush.messages/flush.ms, shutdown). Each
//! move fsyncs the directory and then persists the new point ([`Storage::save_recovery_point`]),
//! so recovery after a crash scans every segment after the persisted point, not only the
//! active one. A truncation below the point lowers it (persisted at once).

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchInfo, Origin};
use super::config::{LogConfig, MessageTimestampType};
use super::epoch::LeaderEpochCache;
use super::error::{Error, Result};
use super::policy;
use super::records;
use super::storage::{Segment, Storage};
use super::{AppendInfo, LeaderEpoch, Offset, PartitionLog, ReadResult, RetentionOutcome};

/// Background fsyncs of sealed segments that may run at once per log. A roll beyond this
/// starts none: that segment is fsynced synchronously by the next `maybe_roll` or `flush`.
pub const MAX_BACKGROUND_SYNCS: usize = 4;

/// A partition log: segments from a [`Storage`], plus the log start offset and the
/// leader-epoch cache. See [`super::FileLog`] and [`super::MemoryLog`].
pub struct Log<S: Storage> {
    /// Where segments and checkpoints live.
    storage: S,
    /// Oldest first; never empty; the last one is active.
    segments: Vec<S::Segment>,
    /// Topic configuration.
    config: LogConfig,
    /// First offset readable; within `[segments[0].base, log_end]`.
    log_start_offset: Offset,
    /// Leader epochs and their start offsets.
    epochs: LeaderEpochCache,
    /// Every segment that ends at or below this offset is durable; the value last persisted.
    recovery_point: Offset,
    /// Records appended since the last fsync (flush.messages).
    unflushed_records: i64,
    /// Time of the last fsync (flush.ms); the first `now_ms` seen counts as one.
    last_flush_ms: Option<i64>,
    /// The latest `now_ms` seen, to timestamp explicit flushes.
    last_now_ms: i64,
    /// Set by `close`, so that drop does not close again.
    closed: bool,
}

impl<S: Storage> std::fmt::Debug for Log<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset())
            .field("segments", &self.segments.len())
            .finish()
    }
}

impl<S: Storage> Log<S> {
    /// Assembles a log from loaded parts and restores its invariants: at least one segment,
    /// contiguous segments, log start within the log, no segment wholly below the log start,
    /// an epoch cache trimmed to the log, a recovery point at most the active segment's base.
    pub fn from_parts(
        mut storage: S,
        mut segments: Vec<S::Segment>,
        config: LogConfig,
        log_start_offset: Offset,
        recovery_point: Offset,
        epochs: LeaderEpochCache,
    ) -> Result<Log<S>> {
        if segments.is_empty() {
            segments.push(storage.create_segment(log_start_offset.max(0))?);
        }
        for pair in segments.windows(2) {
            assert_eq!(
                pair[0].next_offset(),
                pair[1].base_offset(),
                "segments not contiguous"
            );
        }
        let mut log = Log {
            storage,
            segments,
            config,
            log_start_offset: 0,
            epochs,
            recovery_point,
            unflushed_records: 0,
            last_flush_ms: None,
            last_now_ms: i64::MIN,
            closed: false,
        };
        let first_base = log.segments[0].base_offset();
        let start = log_start_offset.clamp(first_base, log.log_end_offset());
        if start != log_start_offset {
            tracing::warn!(
                log_start_offset,
                start,
                "log start offset checkpoint out of range"
            );
        }
        log.log_start_offset = start;
        log.lower_recovery_point(log.active_ref().base_offset())?;
        log.delete_segments_below_log_start()?;
        let end = log.log_end_offset();
        if log.epochs.truncate_from_end(end) | log.epochs.truncate_from_start(start) {
            log.storage.save_epochs(&log.epochs)?;
        }
        Ok(log)
    }

    /// Flushes and closes the log, marking a clean shutdown (the next open skips the CRC scan
    /// of the active segment). Dropping the log does the same, logging errors.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.flush()?;
        self.storage.mark_clean_shutdown()
    }

    /// The leader-epoch cache.
    pub fn epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    /// The storage under the log.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The recovery point: every segment that ends at or below it is durable (see the module
    /// docs). At most the active segment's base offset.
    pub fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    fn active(&mut self) -> &mut S::Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    fn active_ref(&self) -> &S::Segment {
        self.segments.last().expect("a log always has a segment")
    }

    fn observe_time(&mut self, now_ms: i64) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        self.last_flush_ms.get_or_insert(now_ms);
    }

    /// Seals the active segment and starts a new one at the log end offset. No fsync here:
    /// the sealed segment syncs in the background (within [`MAX_BACKGROUND_SYNCS`]) and the
    /// recovery point passes it at a later `maybe_roll` or `flush`. Its records still count
    /// as unflushed for flush.messages.
    fn roll(&mut self) -> Result<()> {
        let end = self.log_end_offset();
        let running = self.segments.iter().filter(|s| s.sync_running()).count();
        self.active().seal(running < MAX_BACKGROUND_SYNCS)?;
        let segment = self.storage.create_segment(end)?;
        self.segments.push(segment);
        tracing::debug!(base_offset = end, "rolled a new segment");
        Ok(())
    }

    /// Makes sealed segments after the recovery point durable, oldest first, then fsyncs the
    /// directory and persists the recovery point past them. With `wait` every sealed segment
    /// is done; without, it stops at the first whose background sync is still running.
    fn sync_sealed(&mut self, wait: bool) -> Result<()> {
        let sealed = self.segments.len() - 1;
        let mut point = self.recovery_point;
        for segment in &mut self.segments[..sealed] {
            if segment.next_offset() <= point {
                continue;
            }
            if !wait && segment.sync_running() {
                break;
            }
            segment.flush()?;
            point = segment.next_offset();
        }
        if point > self.recovery_point {
            self.storage.sync_dir()?;
            self.storage.save_recovery_point(point)?;
            self.recovery_point = point;
        }
        Ok(())
    }

    /// Lowers the recovery point to `base` if it lies beyond it, persisting the lower value
    /// at once. A truncation calls it with the base of the segment that becomes active
    /// before it changes any file (that segment will change and is scanned after a crash
    /// anyway); opening calls it with the active segment's base.
    fn lower_recovery_point(&mut self, base: Offset) -> Result<()> {
        if self.recovery_point > base {
            self.storage.save_recovery_point(base)?;
            self.recovery_point = base;
        }
        Ok(())
    }

    /// Writes validated batches with offsets already assigned.
    fn append_batches(&mut self, buf: &[u8], batches: &[BatchInfo], now_ms: i64) -> Result<()> {
        let Some(last) = batches.last() else {
            return Ok(());
        };
        let stats = self.active_ref().stats();
        let last_offset = last.header.last_offset();
        if policy::should_roll(&stats, &self.config, buf.len() as u64, last_offset, now_ms) {
            self.roll()?;
        }
        let mut epochs_changed = false;
        for info in batches {
            let epoch = info.header.partition_leader_epoch;
            epochs_changed |= self.epochs.assign(epoch, info.header.base_offset);
        }
        if epochs_changed {
            self.storage.save_epochs(&self.epochs)?;
        }
        let interval = self.config.index_interval_bytes;
        self.active().append(buf, batches, now_ms, interval)?;
        let records: i64 = batches
            .iter()
            .map(|b| i64::from(b.header.records_count))
            .sum();
        self.unflushed_records = self.unflushed_records.saturating_add(records);
        if self.unflushed_records >= self.config.flush_messages {
            self.flush()?;
        }
        self.maybe_flush_by_time(now_ms)
    }

    fn maybe_flush_by_time(&mut self, now_ms: i64) -> Result<()> {
        let due = self
            .last_flush_ms
            .is_some_and(|last| now_ms.saturating_sub(last) >= self.config.flush_ms);
        if due && self.unflushed_records > 0 {
            self.flush()?;
            self.last_flush_ms = Some(now_ms);
        }
        Ok(())
    }

    /// Deletes the first `count` segments (rolling first if that is all of them).
    fn delete_oldest(&mut self, count: usize) -> Result<u64> {
        if count == 0 {
            return Ok(0);
        }
        if count == self.segments.len() {
            self.roll()?;
        }
        let new_start = self.segments[count]
            .base_offset()
            .max(self.log_start_offset);
        if new_start != self.log_start_offset {
            // Persist the new start before deleting: a crash in between leaves segments that
            // the next open deletes as wholly below the log start.
            self.set_log_start(new_start)?;
        }
        let mut bytes = 0;
        for segment in self.segments.drain(..count).collect::<Vec<_>>() {
            bytes += segment.size();
            tracing::info!(base_offset = segment.base_offset(), "deleting segment");
            self.storage.delete_segment(segment)?;
        }
        Ok(bytes)
    }

    fn set_log_start(&mut self, offset: Offset) -> Result<()> {
        self.storage.save_log_start(offset)?;
        self.log_start_offset = offset;
        if self.epochs.truncate_from_start(offset) {
            self.storage.save_epochs(&self.epochs)?;
        }
        Ok(())
    }

    fn delete_segments_below_log_start(&mut self) -> Result<usize> {
        let start = self.log_start_offset;
        let count = self
            .segments
            .windows(2)
            .take_while(|w| w[1].base_offset() <= start)
            .count();
        self.delete_oldest(count)?;
        Ok(count)
    }

    /// Index of the segment holding `offset`: the last one with base at most `offset`.
    fn segment_index(&self, offset: Offset) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    fn check_range(&self, offset: Offset) -> Result<()> {
        if offset < self.log_start_offset || offset > self.log_end_offset() {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        Ok(())
    }

    fn empty_read(&self, offset: Offset) -> ReadResult {
        ReadResult {
            records: Bytes::new(),
            first_offset: offset,
            next_offset: offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }
}

/// Checks and stamps a leader append in place; returns the batches and the append summary.
fn prepare_leader_append(
    buf: &mut [u8],
    first_offset: Offset,
    leader_epoch: LeaderEpoch,
    now_ms: i64,
    config: &LogConfig,
) -> Result<(Vec<BatchInfo>, AppendInfo)> {
    let mut batches = records::validate(buf, Origin::Client, config.max_message_bytes)?;
    let log_append_time = config.message_timestamp_type == MessageTimestampType::LogAppendTime;
    let mut next = first_offset;
    let (mut record_count, mut max_timestamp) = (0, -1);
    for info in &mut batches {
        let bytes = &mut buf[info.position..info.position + info.header.size()];
        batch::set_base_offset(bytes, next);
        batch::set_partition_leader_epoch(bytes, leader_epoch);
        if log_append_time {
            batch::set_log_append_time(bytes, now_ms);
        }
        info.header = batch::BatchHeader::parse(bytes).expect("header was just validated");
        next = info.header.next_offset();
        record_count += i64::from(info.header.records_count);
        max_timestamp = max_timestamp.max(info.header.max_timestamp);
    }
    let info = AppendInfo {
        first_offset,
        last_offset: next - 1,
        log_append_time: if log_append_time { now_ms } else { -1 },
        log_start_offset: 0,
        record_count,
        max_timestamp,
    };
    Ok((batches, info))
}

/// Checks a follower append: valid batches that continue the log at `log_end`.
fn prepare_follower_append(buf: &[u8], log_end: Offset) -> Result<(Vec<BatchInfo>, AppendInfo)> {
    let mut info = AppendInfo {
        first_offset: log_end,
        last_offset: log_end - 1,
        log_append_time: -1,
        log_start_offset: 0,
        record_count: 0,
        max_timestamp: -1,
    };
    if buf.is_empty() {
        return Ok((Vec::new(), info));
    }
    let batches = records::validate(buf, Origin::Replication, usize::MAX)?;
    let mut expected = log_end;
    for b in &batches {
        if b.header.base_offset != expected {
            return Err(Error::NonContiguous {
                expected,
                got: b.header.base_offset,
            });
        }
        expected = b.header.next_offset();
        info.record_count += i64::from(b.header.records_count);
        info.max_timestamp = info.max_timestamp.max(b.header.max_timestamp);
    }
    info.last_offset = expected - 1;
    Ok((batches, info))
}

impl<S: Storage> PartitionLog for Log<S> {
    fn append_as_leader(
        &mut self,
        mut batches: BytesMut,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.observe_time(now_ms);
        let end = self.log_end_offset();
        let (infos, mut info) =
            prepare_leader_append(&mut batches, end, leader_epoch, now_ms, &self.config)?;
        self.append_batches(&batches, &infos, now_ms)?;
        info.log_start_offset = self.log_start_offset;
        Ok(info)
    }

    fn append_as_follower(&mut self, batches: BytesMut, now_ms: i64) -> Result<AppendInfo> {
        self.observe_time(now_ms);
        let (infos, mut info) = prepare_follower_append(&batches, self.log_end_offset())?;
        self.append_batches(&batches, &infos, now_ms)?;
        info.log_start_offset = self.log_start_offset;
        Ok(info)
    }

    fn read(
        &mut self,
        offset: Offset,
        max_bytes: usize,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        self.check_range(offset)?;
        let mut result = self.empty_read(offset);
        let mut chunks: Vec<Bytes> = Vec::new();
        let (mut cursor, mut remaining, mut first) = (offset, max_bytes, true);
        for segment in &self.segments[self.segment_index(offset)..] {
            if cursor >= max_offset {
                break;
            }
            let read = segment.read(cursor, max_offset, remaining, min_one_batch && first)?;
            if read.records.is_empty() {
                if cursor < segment.next_offset() {
                    break;
                }
                continue;
            }
            if first {
                result.first_offset = read.first_offset;
                first = false;
            }
            remaining = remaining.saturating_sub(read.records.len());
            cursor = read.next_offset;
            result.next_offset = read.next_offset;
            chunks.push(read.records);
            if remaining == 0 || cursor < segment.next_offset() {
                break;
            }
        }
        result.records = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().expect("one chunk"),
            _ => chunks.concat().into(),
        };
        Ok(result)
    }

    fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    fn log_end_offset(&self) -> Offset {
        self.active_ref().next_offset()
    }

    fn offset_for_timestamp(&mut self, timestamp_ms: i64) -> Result<Option<(Offset, i64)>> {
        let start = self.log_start_offset;
        let limit = records::decompressed_limit(self.config.max_message_bytes);
        for segment in &self.segments {
            if segment
                .max_timestamp()
                .is_none_or(|(_, ts)| ts < timestamp_ms)
            {
                continue;
            }
            let mut min_offset = start.max(segment.base_offset());
            while let Some(found) = segment.batch_for_timestamp(timestamp_ms, min_offset)? {
                if let Some(hit) =
                    records::first_record_at_or_after(&found, timestamp_ms, min_offset, limit)
                {
                    return Ok(Some(hit));
                }
                let header = batch::BatchHeader::parse(&found).map_err(|e| {
                    Error::InvalidData(format!("batch read for a timestamp lookup: {e}"))
                })?;
                min_offset = header.next_offset();
            }
        }
        Ok(None)
    }

    fn max_timestamp(&mut self) -> Result<Option<(Offset, i64)>> {
        let start = self.log_start_offset;
        let mut best: Option<(usize, Offset, i64)> = None;
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.next_offset() <= start {
                continue;
            }
            // The segment holding the log start after DeleteRecords also holds records below
            // it, which no longer count.
            let candidate = if segment.base_offset() < start {
                max_timestamp_from(segment, start)?
            } else {
                segment.max_timestamp()
            };
            if let Some((offset, ts)) = candidate
                && best.is_none_or(|(_, _, best_ts)| ts > best_ts)
            {
                best = Some((i, offset, ts));
            }
        }
        let Some((i, offset, ts)) = best else {
            return Ok(None);
        };
        let read = self.segments[i].read(offset.max(start), Offset::MAX, 0, true)?;
        let limit = records::decompressed_limit(self.config.max_message_bytes);
        let exact = records::first_record_at_or_after(&read.records, ts, start, limit);
        Ok(Some(exact.unwrap_or((offset.max(start), ts))))
    }

    fn enforce_retention(
        &mut self,
        now_ms: i64,
        high_watermark: Offset,
    ) -> Result<RetentionOutcome> {
        self.observe_time(now_ms);
        let stats: Vec<_> = self.segments.iter().map(|s| s.stats()).collect();
        let hw = high_watermark.min(self.log_end_offset());
        let plan = policy::plan_retention(&stats, &self.config, now_ms, hw, self.log_start_offset);
        let bytes_deleted = self.delete_oldest(plan.count())?;
        Ok(RetentionOutcome {
            deleted_by_time: plan.by_time,
            deleted_by_size: plan.by_size,
            deleted_below_log_start: plan.below_log_start,
            bytes_deleted,
            log_start_offset: self.log_start_offset,
        })
    }

    fn maybe_roll(&mut self, now_ms: i64) -> Result<bool> {
        self.observe_time(now_ms);
        let rolled = policy::is_expired_for_roll(&self.active_ref().stats(), &self.config, now_ms);
        if rolled {
            self.roll()?;
        }
        self.sync_sealed(false)?;
        self.maybe_flush_by_time(now_ms)?;
        Ok(rolled)
    }

    fn advance_log_start(&mut self, offset: Offset) -> Result<()> {
        if offset > self.log_end_offset() {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        if offset <= self.log_start_offset {
            return Ok(());
        }
        self.set_log_start(offset)?;
        self.delete_segments_below_log_start()?;
        Ok(())
    }

    fn truncate_to(&mut self, offset: Offset) -> Result<()> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let offset = offset.max(0);
        if offset < self.segments[0].base_offset() || offset < self.log_start_offset {
            // Nothing below `offset` may stay: restart the log empty at `offset`.
            tracing::warn!(offset, "truncating the whole log");
            return self.restart_at(offset);
        }
        let new_active = self.segments[self.segment_index(offset)].base_offset();
        self.lower_recovery_point(new_active)?;
        while self.segments.len() > 1 && self.active_ref().base_offset() > offset {
            let segment = self.segments.pop().expect("more than one segment");
            self.storage.delete_segment(segment)?;
        }
        self.active().truncate_to(offset)?;
        let end = self.log_end_offset();
        if self.epochs.truncate_from_end(end) {
            self.storage.save_epochs(&self.epochs)?;
        }
        if end < self.log_start_offset {
            self.set_log_start(end)?;
        }
        Ok(())
    }

    fn restart_at(&mut self, offset: Offset) -> Result<()> {
        let offset = offset.max(0);
        self.lower_recovery_point(offset)?;
        let fresh = self.storage.create_segment(offset);
        for segment in std::mem::take(&mut self.segments) {
            if segment.base_offset() != offset {
                self.storage.delete_segment(segment)?;
            }
        }
        self.segments.push(fresh?);
        self.set_log_start(offset)?;
        if self.epochs.clear() {
            self.storage.save_epochs(&self.epochs)?;
        }
        Ok(())
    }

    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest_epoch()
    }

    fn flush(&mut self) -> Result<()> {
        self.sync_sealed(true)?;
        self.active().flush()?;
        // The active segment's directory entry too (a no-op unless a segment was created).
        self.storage.sync_dir()?;
        self.unflushed_records = 0;
        self.last_flush_ms = Some(self.last_now_ms);
        Ok(())
    }

    fn config(&self) -> &LogConfig {
        &self.config
    }

    fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size()).sum()
    }

    fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn discard(&mut self) {
        self.closed = true;
    }
}

/// [`Segment::max_timestamp`] over the batches of `segment` that end at or after `start`:
/// base offset of the first batch holding the largest maxTimestamp, and that timestamp. Walks
/// the batch headers one read at a time (ListOffsets -3 on a partition trimmed by DeleteRecords
/// is rare; the segment's own summary answers every other case).
fn max_timestamp_from<G: Segment>(segment: &G, start: Offset) -> Result<Option<(Offset, i64)>> {
    let mut best: Option<(Offset, i64)> = None;
    let mut offset = start;
    while offset < segment.next_offset() {
        let read = segment.read(offset, Offset::MAX, 0, true)?;
        let Ok(header) = batch::BatchHeader::parse(&read.records) else {
            break; // nothing more to read
        };
        if header.max_timestamp >= 0 && best.is_none_or(|(_, ts)| header.max_timestamp > ts) {
            best = Some((header.base_offset, header.max_timestamp));
        }
        offset = header.next_offset();
    }
    Ok(best)
}

impl<S: Storage> Drop for Log<S> {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let result = self
            .flush()
            .and_then(|()| self.storage.mark_clean_shutdown());
        if let Err(error) = result {
            tracing::error!(%error, "closing partition log failed; next open will recover");
        }
    }
}
