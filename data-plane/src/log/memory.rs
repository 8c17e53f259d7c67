//! [`MemoryLog`]: the partition log kept in memory, for broker unit tests.
//!
//! It is the same [`Log`] as [`super::FileLog`] (same validation, offsets, rolling, retention,
//! truncation and epoch cache) over a [`MemoryStorage`] whose segments are vectors of batches.
//! Nothing survives the value being dropped.

use bytes::{Bytes, BytesMut};

use super::batch::{BatchHeader, BatchInfo};
use super::config::LogConfig;
use super::epoch::LeaderEpochCache;
use super::error::Result;
use super::policy::SegmentStats;
use super::storage::{Segment, SegmentRead, Storage};
use super::{Log, Offset};

/// A partition log held in memory.
pub type MemoryLog = Log<MemoryStorage>;

impl MemoryLog {
    /// An empty in-memory log starting at offset 0.
    pub fn new(config: LogConfig) -> MemoryLog {
        Log::from_parts(
            MemoryStorage,
            Vec::new(),
            config,
            0,
            0,
            LeaderEpochCache::default(),
        )
        .expect("in-memory storage cannot fail")
    }
}

/// Storage that keeps segments in memory and persists nothing.
#[derive(Debug, Default)]
pub struct MemoryStorage;

impl Storage for MemoryStorage {
    type Segment = MemorySegment;

    fn create_segment(&mut self, base_offset: Offset) -> Result<MemorySegment> {
        Ok(MemorySegment {
            base_offset,
            next_offset: base_offset,
            batches: Vec::new(),
            size: 0,
            roll_base_ms: None,
            last_write_ms: -1,
        })
    }

    fn delete_segment(&mut self, _segment: MemorySegment) -> Result<()> {
        Ok(())
    }

    fn save_log_start(&mut self, _offset: Offset) -> Result<()> {
        Ok(())
    }

    fn save_epochs(&mut self, _cache: &LeaderEpochCache) -> Result<()> {
        Ok(())
    }

    fn save_recovery_point(&mut self, _offset: Offset) -> Result<()> {
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<()> {
        Ok(())
    }

    fn mark_clean_shutdown(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A segment held in memory: its batches with their parsed headers.
#[derive(Debug)]
pub struct MemorySegment {
    /// First offset.
    base_offset: Offset,
    /// One past the last offset.
    next_offset: Offset,
    /// The batches, in offset order.
    batches: Vec<(BatchHeader, Bytes)>,
    /// Total bytes of `batches`.
    size: u64,
    /// Roll clock start; `None` while empty.
    roll_base_ms: Option<i64>,
    /// Time of the last append.
    last_write_ms: i64,
}

impl MemorySegment {
    /// Index of the first batch whose last offset is at least `offset`.
    fn locate(&self, offset: Offset) -> usize {
        self.batches
            .partition_point(|(h, _)| h.last_offset() < offset)
    }
}

impl Segment for MemorySegment {
    fn base_offset(&self) -> Offset {
        self.base_offset
    }

    fn next_offset(&self) -> Offset {
        self.next_offset
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn stats(&self) -> SegmentStats {
        let max_ts = self.max_timestamp().map_or(-1, |(_, ts)| ts);
        SegmentStats {
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size: self.size,
            largest_timestamp_ms: if max_ts >= 0 {
                max_ts
            } else {
                self.last_write_ms
            },
            roll_base_ms: self.roll_base_ms,
        }
    }

    fn max_timestamp(&self) -> Option<(Offset, i64)> {
        let mut best: Option<(Offset, i64)> = None;
        for (h, _) in &self.batches {
            if h.max_timestamp >= 0 && best.is_none_or(|(_, ts)| h.max_timestamp > ts) {
                best = Some((h.base_offset, h.max_timestamp));
            }
        }
        best
    }

    fn append(
        &mut self,
        buf: &[u8],
        batches: &[BatchInfo],
        now_ms: i64,
        _index_interval_bytes: u64,
    ) -> Result<()> {
        for info in batches {
            assert_eq!(
                info.header.base_offset, self.next_offset,
                "batches must be contiguous"
            );
            let bytes = &buf[info.position..info.position + info.header.size()];
            self.batches
                .push((info.header, Bytes::copy_from_slice(bytes)));
            self.next_offset = info.header.next_offset();
            self.size += info.header.size() as u64;
        }
        self.roll_base_ms.get_or_insert(now_ms);
        self.last_write_ms = now_ms;
        Ok(())
    }

    fn read(
        &self,
        offset: Offset,
        max_offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<SegmentRead> {
        let start = self.locate(offset);
        let mut out = BytesMut::new();
        let mut result = SegmentRead::default();
        for (i, (h, bytes)) in self.batches[start..].iter().enumerate() {
            let fits = out.len() + bytes.len() <= max_bytes || (i == 0 && min_one_batch);
            if h.last_offset() >= max_offset || !fits {
                break;
            }
            if i == 0 {
                result.first_offset = h.base_offset;
            }
            out.extend_from_slice(bytes);
            result.next_offset = h.next_offset();
        }
        result.records = out.freeze();
        Ok(result)
    }

    fn batch_for_timestamp(&self, timestamp_ms: i64, min_offset: Offset) -> Result<Option<Bytes>> {
        let start = self.locate(min_offset);
        let found = self.batches[start..]
            .iter()
            .find(|(h, _)| h.max_timestamp >= timestamp_ms);
        Ok(found.map(|(_, bytes)| bytes.clone()))
    }

    fn truncate_to(&mut self, offset: Offset) -> Result<()> {
        let keep = self.locate(offset);
        self.batches.truncate(keep);
        self.size = self.batches.iter().map(|(h, _)| h.size() as u64).sum();
        self.next_offset = self
            .batches
            .last()
            .map_or(self.base_offset, |(h, _)| h.next_offset());
        if self.batches.is_empty() {
            self.roll_base_ms = None;
        }
        Ok(())
    }

    fn seal(&mut self, _sync_in_background: bool) -> Result<()> {
        Ok(())
    }

    fn sync_running(&self) -> bool {
        false
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
