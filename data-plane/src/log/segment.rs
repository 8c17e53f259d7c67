//! One segment on disk: a `.log` file of batches plus its `.index` and `.timeindex`.
//!
//! ```text
//! {base_offset:020}.log        batch | batch | batch ...        (positions < segment.bytes)
//! {base_offset:020}.index      see index.rs: relative offset -> position, sparse
//! {base_offset:020}.timeindex  see index.rs: max timestamp so far -> relative offset
//! ```
//!
//! Writes are positional (`write_all_at` at the current size) into the page cache; `flush`
//! fsyncs. Sealing does not: it may start the fsync on a background thread instead (a
//! `std::thread` with cloned file handles, so no runtime worker blocks), which `flush` joins.
//! Reads are positional (`read_exact_at`) into fresh buffers, so a fetch never decodes
//! or re-encodes a batch.
//!
//! Opening a segment either trusts its indexes ([`OpenMode::Trust`]: a sealed segment, or the
//! active one after a clean shutdown) and only walks the batch headers after the last offset
//! index entry, or recovers it ([`OpenMode::Recover`]: the active segment after a crash)
//! by reading every batch, checking header, CRC and offset continuity, cutting the file at the
//! first bad batch and rebuilding both indexes. A trusted segment whose indexes turn out to be
//! damaged or inconsistent with the `.log` is recovered instead.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use super::Offset;
use super::batch::{self, BatchHeader, BatchInfo, HEADER_LEN};
use super::checkpoint;
use super::error::{Error, Result};
use super::index::{Index, OffsetEntry, TimeEntry};
use super::policy::SegmentStats;
use super::storage::{Segment, SegmentRead};

/// The `.log` file name of the segment starting at `base_offset`.
pub fn log_file_name(base_offset: Offset) -> String {
    format!("{base_offset:020}.log")
}

/// The `.index` file name of the segment starting at `base_offset`.
pub fn index_file_name(base_offset: Offset) -> String {
    format!("{base_offset:020}.index")
}

/// The `.timeindex` file name of the segment starting at `base_offset`.
pub fn time_index_file_name(base_offset: Offset) -> String {
    format!("{base_offset:020}.timeindex")
}

/// Index interval used when a truncation has to rebuild indexes (Kafka's default).
const REBUILD_INDEX_INTERVAL_BYTES: u64 = 4096;

/// How much to trust a segment's files when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Load the indexes, check them against the log, walk headers after the last entry.
    Trust,
    /// Read and check every batch; cut a torn or corrupt tail; rebuild the indexes.
    Recover,
}

/// What opening a segment had to repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes cut from the end of the `.log` file.
    pub truncated_bytes: u64,
    /// Whether the indexes were rebuilt.
    pub rebuilt_indexes: bool,
}

/// A segment backed by files.
#[derive(Debug)]
pub struct FileSegment {
    /// First offset of the segment.
    base_offset: Offset,
    /// Path of the `.log` file.
    log_path: PathBuf,
    /// The `.log` file, open for reading and writing.
    log: File,
    /// Bytes of whole, valid batches (the file is never longer after open).
    size: u64,
    /// One past the last offset held.
    next_offset: Offset,
    /// Sparse offset index.
    offset_index: Index<OffsetEntry>,
    /// Time index.
    time_index: Index<TimeEntry>,
    /// Largest batch maxTimestamp, -1 if none.
    max_timestamp: i64,
    /// Base offset of the first batch with `max_timestamp`.
    offset_of_max_timestamp: Offset,
    /// Bytes appended since the last offset index entry.
    bytes_since_index: u64,
    /// When the segment started aging for segment.ms (see policy.rs); `None` while empty.
    roll_base_ms: Option<i64>,
    /// Last write time, the retention clock for batches without timestamps.
    last_write_ms: i64,
    /// The background fsync started by `seal`, if any, until `flush` joins it. It covers
    /// everything written before the seal; a truncation detaches it (the next flush syncs).
    sync: Option<JoinHandle<io::Result<()>>>,
}

impl FileSegment {
    /// Creates an empty segment, replacing any stale files of the same name.
    pub fn create(dir: &Path, base_offset: Offset) -> io::Result<FileSegment> {
        let log_path = dir.join(log_file_name(base_offset));
        let log = crate::owner_only::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)?;
        let (mut offset_index, _) = Index::open(&dir.join(index_file_name(base_offset)))?;
        let (mut time_index, _) = Index::open(&dir.join(time_index_file_name(base_offset)))?;
        offset_index.replace(Vec::new())?;
        time_index.replace(Vec::new())?;
        Ok(FileSegment {
            base_offset,
            log_path,
            log,
            size: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index: 0,
            roll_base_ms: None,
            last_write_ms: -1,
            sync: None,
        })
    }

    /// Opens an existing segment (see the module docs for the modes).
    pub fn open(
        dir: &Path,
        base_offset: Offset,
        mode: OpenMode,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(FileSegment, OpenReport)> {
        let log_path = dir.join(log_file_name(base_offset));
        let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let metadata = log.metadata()?;
        let modified_ms = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(now_ms, |d| d.as_millis() as i64);
        let (offset_index, offset_clean) = Index::open(&dir.join(index_file_name(base_offset)))?;
        let (time_index, time_clean) = Index::open(&dir.join(time_index_file_name(base_offset)))?;
        let mut segment = FileSegment {
            base_offset,
            log_path,
            log,
            size: metadata.len(),
            next_offset: base_offset,
            offset_index,
            time_index,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index: 0,
            roll_base_ms: None,
            last_write_ms: modified_ms,
            sync: None,
        };
        let trusted = mode == OpenMode::Trust
            && offset_clean
            && time_clean
            && segment.load_from_indexes(metadata.len(), index_interval_bytes)?;
        let mut report = OpenReport::default();
        if !trusted {
            if mode == OpenMode::Trust {
                tracing::warn!(path = ?segment.log_path, "segment indexes damaged; rebuilding");
            }
            report.truncated_bytes = segment.recover(index_interval_bytes)?;
            report.rebuilt_indexes = true;
        }
        segment.roll_base_ms = segment.first_batch_roll_base(now_ms)?;
        Ok((segment, report))
    }

    /// Removes the segment's files.
    pub fn delete(self) -> io::Result<()> {
        let index_path = self.offset_index.path().to_path_buf();
        let time_path = self.time_index.path().to_path_buf();
        drop(self.offset_index);
        drop(self.time_index);
        drop(self.log);
        for path in [&self.log_path, &index_path, &time_path] {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn relative(&self, offset: Offset) -> u32 {
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset {offset} outside segment {}",
            self.base_offset
        );
        relative as u32
    }

    fn corrupt(&self, position: u64, what: impl std::fmt::Display) -> Error {
        Error::InvalidData(format!("{:?} at byte {position}: {what}", self.log_path))
    }

    /// The header of the batch at `position` (which must be a batch boundary below `size`).
    fn header_at(&self, position: u64) -> Result<BatchHeader> {
        let n = (HEADER_LEN as u64).min(self.size - position) as usize;
        let mut buf = [0; HEADER_LEN];
        self.log.read_exact_at(&mut buf[..n], position)?;
        let header = BatchHeader::parse(&buf[..n]).map_err(|e| self.corrupt(position, e))?;
        if position + header.size() as u64 > self.size {
            return Err(self.corrupt(position, "batch runs past the end of the segment"));
        }
        Ok(header)
    }

    /// The first batch whose last offset is at least `offset`, with its position.
    fn locate(&self, offset: Offset) -> Result<Option<(u64, BatchHeader)>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let relative = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let mut position = self
            .offset_index
            .lookup(relative)
            .map_or(0, |e| u64::from(e.position));
        while position < self.size {
            let header = self.header_at(position)?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.log.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Adds a batch appended at `position` to the in-memory state and the indexes.
    fn index_batch(&mut self, position: u64, header: &BatchHeader, interval: u64) -> Result<()> {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.base_offset;
        }
        if self.bytes_since_index >= interval {
            let relative_offset = self.relative(header.base_offset);
            let position = u32::try_from(position).expect("segment position fits in u32");
            self.offset_index.append(OffsetEntry {
                relative_offset,
                position,
            })?;
            self.maybe_append_time_entry()?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.size() as u64;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Records the largest timestamp so far in the time index if it grew.
    fn maybe_append_time_entry(&mut self) -> Result<()> {
        let entry = TimeEntry {
            timestamp_ms: self.max_timestamp,
            relative_offset: self.relative(self.offset_of_max_timestamp),
        };
        if self
            .time_index
            .last()
            .is_none_or(|last| entry.timestamp_ms > last.timestamp_ms)
        {
            self.time_index.append(entry)?;
        }
        Ok(())
    }

    /// Trust path: derives the state from the indexes plus a walk of the batch headers after
    /// the last offset index entry. Returns false if the files disagree (caller recovers).
    ///
    /// A walk longer than `interval` means entries are missing (the index was lost or the
    /// interval shrank): also reported as false, so the index gets rebuilt.
    fn load_from_indexes(&mut self, file_len: u64, interval: u64) -> Result<bool> {
        self.size = file_len;
        let (mut position, mut expected) = match self.offset_index.last() {
            Some(e) if u64::from(e.position) < file_len => (
                u64::from(e.position),
                self.base_offset + i64::from(e.relative_offset),
            ),
            Some(_) => return Ok(false),
            None => (0, self.base_offset),
        };
        if self.time_index.last().is_none() && self.offset_index.last().is_some() {
            return Ok(false);
        }
        let walk_start = position;
        let (mut max_ts, mut max_offset) = match self.time_index.last() {
            Some(e) => (
                e.timestamp_ms,
                self.base_offset + i64::from(e.relative_offset),
            ),
            None => (-1, self.base_offset),
        };
        let mut since_entry: Option<u64> = None;
        while position < file_len {
            let Ok(header) = self.header_at(position) else {
                return Ok(false);
            };
            if header.base_offset != expected || header.last_offset_delta < 0 {
                return Ok(false);
            }
            if since_entry.is_some_and(|bytes| bytes >= interval) {
                return Ok(false);
            }
            since_entry = Some(since_entry.unwrap_or(0) + header.size() as u64);
            if header.max_timestamp > max_ts {
                (max_ts, max_offset) = (header.max_timestamp, header.base_offset);
            }
            position += header.size() as u64;
            expected = header.next_offset();
        }
        self.next_offset = expected;
        if let Some(last) = self.time_index.last().copied()
            && !self.time_entry_matches(last)?
        {
            return Ok(false);
        }
        self.max_timestamp = max_ts;
        self.offset_of_max_timestamp = max_offset;
        self.bytes_since_index = file_len - walk_start;
        Ok(true)
    }

    /// Whether a time index entry names a batch that exists and has that maxTimestamp.
    fn time_entry_matches(&self, entry: TimeEntry) -> Result<bool> {
        let offset = self.base_offset + i64::from(entry.relative_offset);
        Ok(match self.locate(offset) {
            Ok(Some((_, h))) => h.base_offset == offset && h.max_timestamp == entry.timestamp_ms,
            Ok(None) | Err(Error::InvalidData(_)) => false,
            Err(e) => return Err(e),
        })
    }

    /// Recover path: checks every batch, cuts the file at the first bad one, rebuilds the
    /// indexes. Returns the number of bytes cut.
    fn recover(&mut self, interval: u64) -> Result<u64> {
        let file_len = self.log.metadata()?.len();
        self.offset_index.replace(Vec::new())?;
        self.time_index.replace(Vec::new())?;
        self.size = file_len;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.bytes_since_index = 0;
        let mut position = 0;
        let mut buf = Vec::new();
        let cut_reason = loop {
            if position >= file_len {
                break None;
            }
            let header = match self.header_at(position) {
                Ok(header) => header,
                Err(Error::InvalidData(reason)) => break Some(reason),
                Err(e) => return Err(e),
            };
            buf.resize(header.size(), 0);
            self.log.read_exact_at(&mut buf, position)?;
            if let Err(e) = batch::check_batch(&buf) {
                break Some(e.to_string());
            }
            if header.base_offset != self.next_offset || header.last_offset_delta < 0 {
                break Some(format!(
                    "batch offset {} after {}",
                    header.base_offset, self.next_offset
                ));
            }
            if position > u64::from(u32::MAX)
                || header.last_offset() - self.base_offset > i64::from(u32::MAX)
            {
                break Some("batch beyond the indexable range of a segment".to_string());
            }
            self.index_batch(position, &header, interval)?;
            position += header.size() as u64;
        };
        if let Some(reason) = cut_reason {
            let cut = file_len - position;
            tracing::warn!(path = ?self.log_path, position, cut, %reason,
                "recovery: truncating torn or corrupt tail of segment");
            self.log.set_len(position)?;
        }
        self.size = position;
        Ok(file_len - position)
    }

    /// The roll clock of a segment found on disk: its first batch's maxTimestamp, capped at
    /// now (policy.rs explains why).
    fn first_batch_roll_base(&self, now_ms: i64) -> Result<Option<i64>> {
        if self.size == 0 {
            return Ok(None);
        }
        let header = self.header_at(0)?;
        let ts = if header.max_timestamp >= 0 {
            header.max_timestamp.min(now_ms)
        } else {
            now_ms
        };
        Ok(Some(ts))
    }

    /// Starts fsyncing the segment's three files on a thread of its own. `None` (logged) if
    /// the handles cannot be cloned or the thread cannot start: the next flush syncs instead.
    fn spawn_sync(&self) -> Option<JoinHandle<io::Result<()>>> {
        let files = [
            self.log.try_clone(),
            self.offset_index.try_clone_file(),
            self.time_index.try_clone_file(),
        ];
        let spawned = files
            .into_iter()
            .collect::<io::Result<Vec<File>>>()
            .and_then(|files| {
                std::thread::Builder::new()
                    .name("segment-sync".to_string())
                    .spawn(move || files.iter().try_for_each(checkpoint::sync_data))
            });
        match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(path = ?self.log_path, %error,
                    "cannot sync sealed segment in the background; the next flush will");
                None
            }
        }
    }

    /// Walks every batch header, oldest first (used to rebuild the leader-epoch cache).
    pub fn for_each_header(&self, mut f: impl FnMut(&BatchHeader)) -> Result<()> {
        let mut position = 0;
        while position < self.size {
            let header = self.header_at(position)?;
            f(&header);
            position += header.size() as u64;
        }
        Ok(())
    }
}

impl Segment for FileSegment {
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
        SegmentStats {
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size: self.size,
            largest_timestamp_ms: if self.max_timestamp >= 0 {
                self.max_timestamp
            } else {
                self.last_write_ms
            },
            roll_base_ms: self.roll_base_ms,
        }
    }

    fn max_timestamp(&self) -> Option<(Offset, i64)> {
        (self.size > 0 && self.max_timestamp >= 0)
            .then_some((self.offset_of_max_timestamp, self.max_timestamp))
    }

    fn append(
        &mut self,
        buf: &[u8],
        batches: &[BatchInfo],
        now_ms: i64,
        index_interval_bytes: u64,
    ) -> Result<()> {
        let Some(first) = batches.first() else {
            return Ok(());
        };
        assert!(self.sync.is_none(), "append to a sealed segment");
        assert_eq!(
            first.header.base_offset, self.next_offset,
            "append must continue the segment"
        );
        let end = self.size + buf.len() as u64;
        assert!(
            end <= u64::from(u32::MAX) + 1,
            "segment {} would pass 4 GiB",
            self.base_offset
        );
        if let Err(e) = self.log.write_all_at(buf, self.size) {
            // Leave no partial batch behind the valid end; a later append overwrites it anyway.
            let _ = self.log.set_len(self.size);
            return Err(e.into());
        }
        for info in batches {
            assert_eq!(
                info.header.base_offset, self.next_offset,
                "batches must be contiguous"
            );
            let position = self.size + info.position as u64;
            self.index_batch(position, &info.header, index_interval_bytes)?;
        }
        self.size = end;
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
        let Some((position, first)) = self.locate(offset)? else {
            return Ok(SegmentRead::default());
        };
        if first.last_offset() >= max_offset || (first.size() > max_bytes && !min_one_batch) {
            return Ok(SegmentRead::default());
        }
        let want = max_bytes
            .max(first.size())
            .min((self.size - position) as usize);
        let mut buf = self.read_bytes(position, want)?;
        let (mut end, mut next_offset) = (0, first.base_offset);
        while end + HEADER_LEN <= buf.len() {
            let header = BatchHeader::parse(&buf[end..])
                .map_err(|e| self.corrupt(position + end as u64, e))?;
            if end + header.size() > buf.len() || header.last_offset() >= max_offset {
                break;
            }
            if cfg!(debug_assertions) {
                // Pair assertion: the CRC checked on append still holds on the way out.
                batch::check_batch(&buf[end..]).map_err(|e| self.corrupt(position, e))?;
            }
            end += header.size();
            next_offset = header.next_offset();
        }
        buf.truncate(end);
        Ok(SegmentRead {
            records: Bytes::from(buf),
            first_offset: first.base_offset,
            next_offset,
        })
    }

    fn batch_for_timestamp(&self, timestamp_ms: i64, min_offset: Offset) -> Result<Option<Bytes>> {
        if self.max_timestamp < timestamp_ms || self.next_offset <= min_offset {
            return Ok(None);
        }
        let start = self
            .time_index
            .lookup(timestamp_ms)
            .map_or(self.base_offset, |e| {
                self.base_offset + i64::from(e.relative_offset)
            });
        let Some((mut position, _)) = self.locate(start.max(min_offset))? else {
            return Ok(None);
        };
        while position < self.size {
            let header = self.header_at(position)?;
            if header.max_timestamp >= timestamp_ms && header.last_offset() >= min_offset {
                return Ok(Some(Bytes::from(self.read_bytes(position, header.size())?)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    fn truncate_to(&mut self, offset: Offset) -> Result<()> {
        let Some((cut, header)) = self.locate(offset)? else {
            return Ok(());
        };
        let new_next = header.base_offset;
        // A background sync no longer covers the file once it changes; the next flush syncs.
        self.sync = None;
        self.log.set_len(cut)?;
        self.offset_index
            .truncate_where(|e| u64::from(e.position) < cut)?;
        let relative_end = new_next - self.base_offset;
        self.time_index
            .truncate_where(|e| i64::from(e.relative_offset) < relative_end)?;
        if !self.load_from_indexes(cut, u64::MAX)? {
            tracing::warn!(path = ?self.log_path, "indexes inconsistent after truncation");
            self.recover(REBUILD_INDEX_INTERVAL_BYTES)?;
        }
        assert_eq!(
            self.next_offset, new_next,
            "truncation of {:?}",
            self.log_path
        );
        if self.size == 0 {
            self.roll_base_ms = None;
        }
        Ok(())
    }

    fn seal(&mut self, sync_in_background: bool) -> Result<()> {
        if self.size > 0 {
            self.maybe_append_time_entry()?;
        }
        if sync_in_background && self.sync.is_none() {
            self.sync = self.spawn_sync();
        }
        Ok(())
    }

    fn sync_running(&self) -> bool {
        self.sync
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(handle) = self.sync.take() {
            match handle.join() {
                // Nothing is written to a sealed segment, so that sync covers it all.
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => panic!("segment sync thread of {:?} panicked", self.log_path),
            }
        }
        checkpoint::sync_data(&self.log)?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        Ok(())
    }
}
