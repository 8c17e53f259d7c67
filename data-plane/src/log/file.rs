//! [`FileLog`]: the durable partition log in `<log_dir>/<topic>-<partition>/`, and its
//! crash recovery.
//!
//! # Opening (recovery)
//!
//! 1. Remove leftovers: `*.tmp` checkpoints, index files without a `.log`.
//! 2. Open the segments oldest first. Segments that end at or below the recovery point
//!    (`recovery-point` checkpoint, 0 when missing; see [`super::partition`]) are durable, so
//!    their indexes are trusted after a consistency check (rebuilt if damaged). Every later
//!    segment, sealed or active, is recovered unless the `clean-shutdown` marker says the log
//!    was closed cleanly: every batch is read and checked (header, CRC-32C, offset
//!    continuity); the file is cut at the first torn or corrupt batch (logged with the number
//!    of bytes cut) and its indexes are rebuilt.
//! 3. If a segment does not end where the next begins (a sealed segment had to be cut), the
//!    later segments are deleted, as Kafka's recovery does: replication refills them.
//! 4. Restore the log start offset (max with the first segment's base) and the leader-epoch
//!    cache (rebuilt from batch headers if missing or unreadable), trimmed to the log.
//!
//! # Creating
//!
//! A brand-new log costs no fsync: its directory and first segment are created in the page
//! cache and no checkpoint is written while it holds the defaults (log start 0, no epochs,
//! recovery point 0). If the machine crashes before the first flush, the partition is simply
//! recreated from metadata. [`FileStorage`] remembers that the directory changed and the
//! first flush fsyncs it (and, once, the parent directory, for the partition's own entry).
//!
//! # What a crash can lose
//!
//! - Process crash (kill -9): nothing that an append returned; the page cache survives.
//!   Recovery cuts only torn or corrupt tails.
//! - Power loss without `flush.messages`/`flush.ms`: whatever was not fsynced yet: the
//!   active segment's unflushed tail, and segments rolled since the recovery point last moved
//!   (normally those rolled within one maintenance tick whose background sync had not
//!   finished). Recovery scans them all and keeps the valid prefix; replication is the
//!   durability story, as in Kafka.
//! - Power loss with `flush.messages=N`/`flush.ms=T`: at most the appends since the last
//!   flush (fewer than N records, or T ms). Each flush fsyncs every sealed segment after the
//!   recovery point, the active segment and the directory before it counts as done; rolling
//!   does not reset the flush.messages count. With `flush.messages=1` nothing acknowledged
//!   is lost.
//!
//! # Caveats
//!
//! - The marker is removed (and the removal made durable) as soon as the log is open, so a
//!   crash afterwards recovers again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::checkpoint::{self, TMP_SUFFIX};
use super::config::LogConfig;
use super::epoch::LeaderEpochCache;
use super::error::Result;
use super::segment::{FileSegment, OpenMode};
use super::storage::{Segment, Storage};
use super::{Log, Offset};

/// The durable partition log.
pub type FileLog = Log<FileStorage>;

/// File name of the log start offset checkpoint.
pub const LOG_START_FILE: &str = "log-start-offset";
/// File name of the leader-epoch checkpoint (Kafka's name).
pub const EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Marker present while the log is closed cleanly.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// File name of the recovery point checkpoint: segments ending at or below it are durable.
pub const RECOVERY_POINT_FILE: &str = "recovery-point";

/// The directory of partition `partition` of `topic` under `log_dir` (Kafka's naming).
pub fn partition_dir(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir.join(format!("{topic}-{partition}"))
}

/// Deletes a partition's directory and everything in it (DeleteTopics, reassignment away).
/// The partition's [`FileLog`] must have been dropped first. A missing directory is fine.
pub fn delete_partition_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl FileLog {
    /// Opens (or creates) the partition log in `dir`, recovering from a crash if needed.
    /// Creating a new log does no fsync (see the module docs).
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<FileLog> {
        crate::owner_only::create_dir_all(dir)?;
        let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let (bases, mut removed) = list_segments(dir)?;
        let recovery_point = read_offset(dir, RECOVERY_POINT_FILE)?;
        let (segments, deleted) =
            open_segments(dir, &bases, clean, recovery_point, &config, now_ms)?;
        removed |= deleted;
        if clean {
            fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE))?;
            removed = true;
        }
        if removed {
            // Durable now: a marker that came back after a power loss would skip recovery.
            checkpoint::sync_dir(dir)?;
        }
        let log_start = read_offset(dir, LOG_START_FILE)?;
        let epochs = read_epochs(dir, &segments, !clean)?;
        let storage = FileStorage {
            dir: dir.to_path_buf(),
            // After a crash the directory may hold entries the previous process never synced.
            dir_dirty: !removed,
            parent_dirty: bases.is_empty(),
        };
        Log::from_parts(storage, segments, config, log_start, recovery_point, epochs)
    }
}

/// Opens the segments at `bases`, oldest first: trusted if the log was closed cleanly or the
/// segment ends at or below `recovery_point`, recovered otherwise. If a segment does not
/// reach the next one, the later segments are deleted (the boolean says so).
fn open_segments(
    dir: &Path,
    bases: &[Offset],
    clean: bool,
    recovery_point: Offset,
    config: &LogConfig,
    now_ms: i64,
) -> Result<(Vec<FileSegment>, bool)> {
    let mut segments: Vec<FileSegment> = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let durable = bases.get(i + 1).is_some_and(|&next| next <= recovery_point);
        let mode = if clean || durable {
            OpenMode::Trust
        } else {
            OpenMode::Recover
        };
        let interval = config.index_interval_bytes;
        let (segment, report) = FileSegment::open(dir, base, mode, interval, now_ms)?;
        if report.truncated_bytes > 0 || report.rebuilt_indexes {
            tracing::info!(?dir, base, ?report, "segment recovered");
        }
        let next = segment.next_offset();
        segments.push(segment);
        if let Some(&next_base) = bases.get(i + 1)
            && next != next_base
        {
            tracing::warn!(
                ?dir,
                base,
                next,
                next_base,
                "segment does not reach the next one; deleting the later segments"
            );
            for &later in &bases[i + 1..] {
                let (orphan, _) = FileSegment::open(dir, later, OpenMode::Trust, 0, now_ms)?;
                orphan.delete()?;
            }
            return Ok((segments, true));
        }
    }
    Ok((segments, false))
}

/// Lists segment base offsets (sorted) and removes leftovers (the boolean says whether any).
fn list_segments(dir: &Path) -> Result<(Vec<Offset>, bool)> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    let mut removed = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path())?;
            removed = true;
        } else if let Some(base) = parse_base(&name, ".log") {
            bases.push(base);
        } else if let Some(base) =
            parse_base(&name, ".index").or_else(|| parse_base(&name, ".timeindex"))
        {
            index_files.push((base, entry.path()));
        }
    }
    bases.sort_unstable();
    for (base, path) in index_files {
        if bases.binary_search(&base).is_err() {
            tracing::warn!(?path, "removing index without a segment");
            fs::remove_file(path)?;
            removed = true;
        }
    }
    Ok((bases, removed))
}

fn parse_base(name: &str, suffix: &str) -> Option<Offset> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads an offset checkpoint (`name`); 0 when missing or unreadable (logged), which is
/// always safe: the log start is clamped to the first segment, and a recovery point of 0
/// scans every segment after a crash.
fn read_offset(dir: &Path, name: &str) -> Result<Offset> {
    let Some(text) = checkpoint::read(dir, name)? else {
        return Ok(0);
    };
    Ok(checkpoint::decode_offset(&text).unwrap_or_else(|| {
        tracing::warn!(?dir, name, "unreadable offset checkpoint; using 0");
        0
    }))
}

/// Loads the epoch cache; rebuilds it from batch headers if missing or unreadable, and after
/// a crash adds epochs found in the active segment that the checkpoint missed.
fn read_epochs(dir: &Path, segments: &[FileSegment], crashed: bool) -> Result<LeaderEpochCache> {
    let loaded = checkpoint::read(dir, EPOCH_FILE)?.and_then(|t| LeaderEpochCache::decode(&t));
    let (mut cache, scan) = match loaded {
        Some(cache) => (
            cache,
            if crashed {
                segments.last().into_iter().count()
            } else {
                0
            },
        ),
        None => (LeaderEpochCache::default(), segments.len()),
    };
    let mut assign_all = |segment: &FileSegment| {
        segment.for_each_header(|h| {
            if cache
                .latest_epoch()
                .is_none_or(|latest| h.partition_leader_epoch > latest)
            {
                cache.assign(h.partition_leader_epoch, h.base_offset);
            }
        })
    };
    for segment in &segments[segments.len() - scan..] {
        assign_all(segment)?;
    }
    Ok(cache)
}

/// Storage in a partition directory.
#[derive(Debug)]
pub struct FileStorage {
    /// The partition directory.
    dir: PathBuf,
    /// Entries were created in the directory since it was last fsynced.
    dir_dirty: bool,
    /// The partition directory may be new: fsync its parent once too, for its entry there.
    parent_dirty: bool,
}

impl FileStorage {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the next flush has a directory to fsync: the partition directory after
    /// entries were created in it, or once the parent of a new partition directory.
    pub fn dir_dirty(&self) -> bool {
        self.dir_dirty || self.parent_dirty
    }

    /// Replaces checkpoint `name` with `contents`, unless the file is missing and `contents`
    /// are what a missing file reads as (`is_default`): a new log writes no checkpoints.
    fn save(&mut self, name: &str, contents: &[u8], is_default: bool) -> Result<()> {
        if is_default && !self.dir.join(name).exists() {
            return Ok(());
        }
        checkpoint::write_atomic(&self.dir, name, contents)?;
        // write_atomic fsyncs the directory: every entry created before is durable too.
        self.dir_dirty = false;
        Ok(())
    }
}

impl Storage for FileStorage {
    type Segment = FileSegment;

    fn create_segment(&mut self, base_offset: Offset) -> Result<FileSegment> {
        let segment = FileSegment::create(&self.dir, base_offset)?;
        self.dir_dirty = true;
        Ok(segment)
    }

    fn delete_segment(&mut self, segment: FileSegment) -> Result<()> {
        Ok(segment.delete()?)
    }

    fn save_log_start(&mut self, offset: Offset) -> Result<()> {
        let text = checkpoint::encode_offset(offset);
        self.save(LOG_START_FILE, text.as_bytes(), offset == 0)
    }

    fn save_epochs(&mut self, cache: &LeaderEpochCache) -> Result<()> {
        let is_default = cache.entries().is_empty();
        self.save(EPOCH_FILE, cache.encode().as_bytes(), is_default)
    }

    fn save_recovery_point(&mut self, offset: Offset) -> Result<()> {
        let text = checkpoint::encode_offset(offset);
        self.save(RECOVERY_POINT_FILE, text.as_bytes(), offset == 0)
    }

    fn sync_dir(&mut self) -> Result<()> {
        if self.dir_dirty {
            checkpoint::sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        if self.parent_dirty {
            match self.dir.parent() {
                Some(parent) if parent.as_os_str().is_empty() => {
                    checkpoint::sync_dir(Path::new("."))?
                }
                Some(parent) => checkpoint::sync_dir(parent)?,
                None => {}
            }
            self.parent_dirty = false;
        }
        Ok(())
    }

    fn mark_clean_shutdown(&mut self) -> Result<()> {
        crate::owner_only::create(&self.dir.join(CLEAN_SHUTDOWN_FILE))?;
        checkpoint::sync_dir(&self.dir)?;
        self.dir_dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::log::batch::BatchHeader;
    use crate::log::partition::MAX_BACKGROUND_SYNCS;
    use crate::log::testutil::batch;
    use crate::log::{Error, PartitionLog};

    fn config() -> LogConfig {
        let segment_bytes = batch(2, 0).len() as u64 * 4;
        LogConfig {
            segment_bytes,
            index_interval_bytes: 150,
            ..LogConfig::default()
        }
    }

    /// Appends `n` two-record batches with timestamps 1000, 1010, ... under epoch `n / 10`.
    fn fill(log: &mut FileLog, n: usize) {
        for i in 0..n {
            let ts = 1_000 + 10 * i as i64;
            let buf = BytesMut::from(&batch(2, ts)[..]);
            log.append_as_leader(buf, (i / 10) as i32, ts).unwrap();
        }
    }

    fn read_all(log: &mut FileLog) -> Bytes {
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        log.read(start, usize::MAX, end, true).unwrap().records
    }

    fn crash(log: FileLog) {
        // kill -9: no flush, no clean-shutdown marker; written data is in the page cache.
        std::mem::forget(log);
    }

    fn log_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }

    fn chop(path: &Path, bytes: u64) {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len - bytes).unwrap();
    }

    #[test]
    fn crash_without_flush_keeps_every_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 30);
        let before = read_all(&mut log);
        assert!(log.segment_count() > 5);
        crash(log);
        assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!((log.log_end_offset(), log.latest_epoch()), (60, Some(2)));
        assert_eq!(read_all(&mut log), before);
        let info = log
            .append_as_leader(BytesMut::from(&batch(1, 0)[..]), 3, 0)
            .unwrap();
        assert_eq!(info.first_offset, 60);
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        for cut in [1, 7, 40, 90] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
            fill(&mut log, 6); // segments [0..8) and [8..12)
            let before = log.read(0, usize::MAX, 10, true).unwrap().records;
            crash(log);
            let active = log_files(dir.path()).pop().unwrap();
            let batch_len = batch(2, 0).len() as u64;
            chop(&active, cut.min(batch_len - 1));
            let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
            assert_eq!(log.log_end_offset(), 10, "cut {cut}");
            assert_eq!(read_all(&mut log), before);
            assert_eq!(fs::metadata(&active).unwrap().len(), batch_len);
            let info = log
                .append_as_leader(BytesMut::from(&batch(3, 0)[..]), 0, 0)
                .unwrap();
            assert_eq!((info.first_offset, info.last_offset), (10, 12));
            drop(log);
            let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
            assert_eq!(log.log_end_offset(), 13);
            assert_eq!(log.read(10, usize::MAX, 13, true).unwrap().first_offset, 10);
        }
    }

    #[test]
    fn corrupt_batch_in_active_segment_is_cut_with_everything_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 7); // active segment [8..14): three batches
        crash(log);
        let active = log_files(dir.path()).pop().unwrap();
        let batch_len = batch(2, 0).len() as u64;
        // Flip a byte inside the records of the last batch: its CRC no longer matches.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&active)
            .unwrap();
        let at = 2 * batch_len + 70;
        let mut byte = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, at).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[byte[0] ^ 0xff], at).unwrap();
        drop(file);
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!(log.log_end_offset(), 12);
        let last = log.read(10, usize::MAX, 12, true).unwrap().records;
        assert_eq!(BatchHeader::parse(&last).unwrap().base_offset, 10);
        crash(log);
        // Now corrupt the first batch of the active segment: the whole segment is emptied.
        let file = OpenOptions::new().write(true).open(&active).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0xff; 4], 30).unwrap();
        drop(file);
        let log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!((log.log_end_offset(), log.segment_count()), (8, 2));
    }

    #[test]
    fn damaged_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 14);
        let expected: Vec<Bytes> = (0..28)
            .map(|o| log.read(o, usize::MAX, 28, true).unwrap().records)
            .collect();
        let by_time: Vec<_> = (990..1_140)
            .step_by(7)
            .map(|ts| log.offset_for_timestamp(ts).unwrap())
            .collect();
        drop(log); // clean shutdown: indexes would be trusted if they looked right
        let name = |base: i64, f: fn(i64) -> String| dir.path().join(f(base));
        use crate::log::segment::{index_file_name, time_index_file_name};
        fs::remove_file(name(0, index_file_name)).unwrap();
        fs::write(name(8, time_index_file_name), [0xff; 12]).unwrap();
        fs::write(name(16, index_file_name), [0, 0, 0, 1, 0, 0, 0, 5]).unwrap();
        let mut index = OpenOptions::new()
            .append(true)
            .open(name(24, index_file_name))
            .unwrap();
        index.write_all(&[1, 2, 3]).unwrap();
        drop(index);
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        for (offset, want) in expected.iter().enumerate() {
            let got = log
                .read(offset as i64, usize::MAX, 28, true)
                .unwrap()
                .records;
            assert_eq!(&got, want, "offset {offset}");
        }
        let again: Vec<_> = (990..1_140)
            .step_by(7)
            .map(|ts| log.offset_for_timestamp(ts).unwrap())
            .collect();
        assert_eq!(again, by_time);
        for base in [0, 8, 16] {
            let len = fs::metadata(name(base, index_file_name)).unwrap().len();
            assert!(
                len > 0 && len % 8 == 0,
                "segment {base}: index of {len} bytes"
            );
            let len = fs::metadata(name(base, time_index_file_name))
                .unwrap()
                .len();
            assert!(
                len > 0 && len % 12 == 0,
                "segment {base}: time index of {len} bytes"
            );
        }
    }

    #[test]
    fn log_start_and_epochs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 25);
        log.advance_log_start(19).unwrap();
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 20)));
        let segments = log.segment_count();
        crash(log);
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!(
            (log.log_start_offset(), log.segment_count()),
            (19, segments)
        );
        assert!(matches!(
            log.read(18, 1, 50, true),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 20)));
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 40)));
        assert_eq!(log.end_offset_for_epoch(2), Some((2, 50)));
        log.close().unwrap();
        // Without the epoch checkpoint the cache is rebuilt from the batches.
        fs::remove_file(dir.path().join(EPOCH_FILE)).unwrap();
        let log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!(log.epochs().entries().len(), 3);
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 40)));
    }

    #[test]
    fn crash_between_checkpoint_and_segment_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 10);
        drop(log);
        // The checkpoint moved but the old segments were not deleted yet.
        checkpoint::write_atomic(dir.path(), LOG_START_FILE, b"0\n9\n").unwrap();
        let log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!((log.log_start_offset(), log.segment_count()), (9, 2));
        assert_eq!(log_files(dir.path()).len(), 2);
    }

    #[test]
    fn clean_shutdown_marker_and_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 3);
        log.close().unwrap();
        assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        fs::write(dir.path().join("log-start-offset.tmp"), b"0\n").unwrap();
        fs::write(dir.path().join("00000000000000000999.timeindex"), b"").unwrap();
        fs::write(dir.path().join("notes.txt"), b"left alone").unwrap();
        let log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        assert!(!dir.path().join("log-start-offset.tmp").exists());
        assert!(!dir.path().join("00000000000000000999.timeindex").exists());
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(log.log_end_offset(), 6);
    }

    #[test]
    fn gap_between_sealed_segments_drops_the_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill(&mut log, 12); // segments 0, 8, 16
        drop(log);
        let files = log_files(dir.path());
        chop(&files[1], 5); // the middle (sealed) segment loses its last batch
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        assert_eq!((log.log_end_offset(), log.segment_count()), (14, 2));
        assert_eq!(log_files(dir.path()).len(), 2);
        let info = log
            .append_as_leader(BytesMut::from(&batch(1, 0)[..]), 9, 0)
            .unwrap();
        assert_eq!(info.first_offset, 14);
    }

    #[test]
    fn retention_deletes_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: 100,
            ..config()
        };
        let mut log = FileLog::open(dir.path(), config.clone(), 0).unwrap();
        fill(&mut log, 10);
        let outcome = log.enforce_retention(5_000, 20).unwrap();
        assert_eq!((outcome.segments_deleted(), log.segment_count()), (3, 1));
        assert_eq!(log_files(dir.path()).len(), 1);
        drop(log);
        let log = FileLog::open(dir.path(), config, 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 20));
    }

    /// Appends `n` two-record batches under epoch 0 (no epoch checkpoint after the first).
    fn fill_one_epoch(log: &mut FileLog, n: usize) {
        for _ in 0..n {
            log.append_as_leader(BytesMut::from(&batch(2, 1_000)[..]), 0, 1_000)
                .unwrap();
        }
    }

    fn garble(path: &Path, at: u64) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, at).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[byte[0] ^ 0xff], at).unwrap();
    }

    fn saved_recovery_point(dir: &Path) -> Option<Offset> {
        let text = checkpoint::read(dir, RECOVERY_POINT_FILE).unwrap()?;
        checkpoint::decode_offset(&text)
    }

    #[test]
    fn roll_does_not_fsync_and_the_recovery_point_lags_until_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill_one_epoch(&mut log, 1); // the first epoch is checkpointed (fsyncs)
        let before = checkpoint::sync_counts();
        fill_one_epoch(&mut log, 20); // segments of 4 batches: 5 rolls
        assert_eq!(log.segment_count(), 6);
        assert_eq!(
            checkpoint::sync_counts(),
            before,
            "fsync on the append path"
        );
        assert_eq!(log.recovery_point(), 0);
        assert_eq!(saved_recovery_point(dir.path()), None);
        assert!(log.storage().dir_dirty());
        log.flush().unwrap();
        let after = checkpoint::sync_counts();
        assert!(after.files > before.files && after.dirs > before.dirs);
        assert_eq!(log.recovery_point(), 40); // the active segment's base
        assert_eq!(saved_recovery_point(dir.path()), Some(40));
        assert!(!log.storage().dir_dirty());
    }

    #[test]
    fn maybe_roll_moves_the_recovery_point_after_background_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        // More rolls than background syncs: the rest are synced by maybe_roll itself.
        fill_one_epoch(&mut log, 4 * (MAX_BACKGROUND_SYNCS + 2) + 1);
        let active_base = 8 * (MAX_BACKGROUND_SYNCS as Offset + 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while log.recovery_point() < active_base {
            assert!(std::time::Instant::now() < deadline, "recovery point stuck");
            assert!(!log.maybe_roll(1_000).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(log.recovery_point(), active_base);
        assert_eq!(saved_recovery_point(dir.path()), Some(active_base));
    }

    #[test]
    fn crash_recovers_sealed_segments_after_the_recovery_point() {
        let batch_len = batch(2, 0).len() as u64;
        // A torn tail (chopped) or a garbled record (only the CRC shows it).
        for damage in ["chop", "garble"] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
            fill_one_epoch(&mut log, 9); // segments 0, 8 sealed; active 16
            log.flush().unwrap();
            assert_eq!(log.recovery_point(), 16);
            fill_one_epoch(&mut log, 8); // sealed 16, 24 (not durable yet); active 32
            let expected = log.read(0, usize::MAX, 22, true).unwrap().records;
            crash(log);
            let files = log_files(dir.path());
            assert_eq!(files.len(), 5);
            match damage {
                "chop" => chop(&files[2], 7),
                _ => garble(&files[2], 3 * batch_len + 70),
            }
            let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
            // Segment 16 keeps its first three batches; 24 and 32 no longer follow it.
            assert_eq!(log.log_end_offset(), 22, "{damage}");
            assert_eq!((log.segment_count(), log_files(dir.path()).len()), (3, 3));
            assert_eq!(read_all(&mut log), expected);
            assert_eq!(log.recovery_point(), 16);
            let info = log
                .append_as_leader(BytesMut::from(&batch(1, 0)[..]), 1, 0)
                .unwrap();
            assert_eq!(info.first_offset, 22);
        }
    }

    #[test]
    fn truncation_lowers_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path(), config(), 0).unwrap();
        fill_one_epoch(&mut log, 12); // segments 0, 8, 16
        log.flush().unwrap();
        assert_eq!(saved_recovery_point(dir.path()), Some(16));
        log.truncate_to(10).unwrap(); // segment 8 becomes active again
        assert_eq!(log.recovery_point(), 8);
        assert_eq!(saved_recovery_point(dir.path()), Some(8));
        log.truncate_to(0).unwrap();
        assert_eq!(saved_recovery_point(dir.path()), Some(0));
    }

    #[test]
    fn flush_messages_one_makes_every_roll_durable() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush_messages: 1,
            ..config()
        };
        let mut log = FileLog::open(dir.path(), config, 0).unwrap();
        for i in 0..10 {
            fill_one_epoch(&mut log, 1);
            // Sealed segments, the active one and the directory are all synced by the append.
            let active_base = 8 * (i / 4);
            assert_eq!(log.recovery_point(), active_base, "append {i}");
            assert!(!log.storage().dir_dirty(), "append {i}");
        }
        assert_eq!(saved_recovery_point(dir.path()), Some(16));
    }

    #[test]
    fn new_partition_costs_no_fsync_until_the_first_flush() {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path(), "orders", 0);
        let before = checkpoint::sync_counts();
        let mut log = FileLog::open(&dir, config(), 0).unwrap();
        assert_eq!(checkpoint::sync_counts(), before);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let segment_files = ["00000000000000000000.index", "00000000000000000000.log"];
        assert_eq!(names[..2], segment_files, "no checkpoint files: {names:?}");
        assert_eq!(names.len(), 3);
        assert!(log.storage().dir_dirty());
        log.flush().unwrap();
        let after = checkpoint::sync_counts();
        assert_eq!(after.dirs, before.dirs + 2, "partition dir and its parent");
        assert!(!log.storage().dir_dirty());
        log.flush().unwrap();
        assert_eq!(checkpoint::sync_counts().dirs, after.dirs);
    }

    #[test]
    fn a_discarded_log_is_dropped_without_flushing() {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path(), "doomed", 0);
        let mut log = FileLog::open(&dir, config(), 0).unwrap();
        fill(&mut log, 2);
        let before = checkpoint::sync_counts();
        log.discard();
        drop(log);
        assert_eq!(
            checkpoint::sync_counts(),
            before,
            "no fsync for a log about to be deleted"
        );
        assert!(!dir.join(CLEAN_SHUTDOWN_FILE).exists());
        let mut kept = FileLog::open(&partition_dir(root.path(), "kept", 0), config(), 0).unwrap();
        fill(&mut kept, 2);
        let before = checkpoint::sync_counts();
        drop(kept);
        assert!(
            checkpoint::sync_counts() != before,
            "an ordinary close still flushes"
        );
    }

    #[test]
    fn every_file_and_directory_of_a_log_is_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        // A permissive parent gives nothing away: what the log creates is its own.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let dir = partition_dir(&root.path().join("node"), "orders", 0);
        let mut log = FileLog::open(&dir, config(), 0).unwrap();
        // Several segments, indexes, checkpoints and a clean-shutdown marker.
        fill(&mut log, 12);
        log.flush().unwrap();
        drop(log);
        let mut seen = Vec::new();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(
                mode(&path),
                crate::owner_only::FILE_MODE,
                "{}",
                path.display()
            );
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        seen.sort();
        for kind in [".log", ".index", ".timeindex", "checkpoint"] {
            assert!(seen.iter().any(|n| n.ends_with(kind)), "{kind}: {seen:?}");
        }
        assert!(seen.iter().any(|n| n == CLEAN_SHUTDOWN_FILE), "{seen:?}");
        assert_eq!(mode(&dir), crate::owner_only::DIR_MODE);
        assert_eq!(mode(dir.parent().unwrap()), crate::owner_only::DIR_MODE);
    }

    #[test]
    fn partition_dirs() {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path(), "orders", 3);
        assert!(dir.ends_with("orders-3"));
        let mut log = FileLog::open(&dir, config(), 0).unwrap();
        fill(&mut log, 2);
        drop(log);
        delete_partition_dir(&dir).unwrap();
        assert!(!dir.exists());
        delete_partition_dir(&dir).unwrap();
    }
}
