//! [`FileLog`]: the durable partition log in `<log_dir>/<topic>-<partition>/`, and its
//! crash recovery.
//!
//! # Opening (recovery)
//!
//! 1. Remove leftovers: `*.tmp` checkpoints, index files without a `.log`.
//! 2. Open the segments oldest first. Sealed segments were fsynced when they were rolled, so
//!    their indexes are trusted after a consistency check (rebuilt if damaged). The active
//!    segment is recovered unless the `clean-shutdown` marker says the log was closed cleanly:
//!    every batch is read and checked (header, CRC-32C, offset continuity); the file is cut at
//!    the first torn or corrupt batch (logged with the number of bytes cut) and its indexes
//!    are rebuilt.
//! 3. If a segment does not end where the next begins (a sealed segment had to be cut), the
//!    later segments are deleted, as Kafka's recovery does: replication refills them.
//! 4. Restore the log start offset (max with the first segment's base) and the leader-epoch
//!    cache (rebuilt from batch headers if missing or unreadable), trimmed to the log.
//!
//! # Caveats
//!
//! - The marker is removed as soon as the log is open, so a crash afterwards recovers again.
//! - Without `flush.messages`/`flush.ms`, a power failure (not a process crash) can lose the
//!   unflushed tail of the active segment; replication is the durability story, as in Kafka.

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
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<FileLog> {
        fs::create_dir_all(dir)?;
        let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let bases = list_segments(dir)?;
        let mut segments: Vec<FileSegment> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let mode = if is_last && !clean {
                OpenMode::Recover
            } else {
                OpenMode::Trust
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
                break;
            }
        }
        if clean {
            fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE))?;
        }
        checkpoint::sync_dir(dir)?;
        let log_start = read_log_start(dir)?;
        let epochs = read_epochs(dir, &segments, !clean)?;
        let storage = FileStorage {
            dir: dir.to_path_buf(),
        };
        Log::from_parts(storage, segments, config, log_start, epochs)
    }
}

/// Lists segment base offsets (sorted) and removes leftovers.
fn list_segments(dir: &Path) -> Result<Vec<Offset>> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path())?;
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
        }
    }
    Ok(bases)
}

fn parse_base(name: &str, suffix: &str) -> Option<Offset> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_log_start(dir: &Path) -> Result<Offset> {
    let Some(text) = checkpoint::read(dir, LOG_START_FILE)? else {
        return Ok(0);
    };
    Ok(checkpoint::decode_offset(&text).unwrap_or_else(|| {
        tracing::warn!(
            ?dir,
            "unreadable log start offset checkpoint; using the first segment"
        );
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
}

impl FileStorage {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Storage for FileStorage {
    type Segment = FileSegment;

    fn create_segment(&mut self, base_offset: Offset) -> Result<FileSegment> {
        let segment = FileSegment::create(&self.dir, base_offset)?;
        checkpoint::sync_dir(&self.dir)?;
        Ok(segment)
    }

    fn delete_segment(&mut self, segment: FileSegment) -> Result<()> {
        Ok(segment.delete()?)
    }

    fn save_log_start(&mut self, offset: Offset) -> Result<()> {
        let text = checkpoint::encode_offset(offset);
        Ok(checkpoint::write_atomic(
            &self.dir,
            LOG_START_FILE,
            text.as_bytes(),
        )?)
    }

    fn save_epochs(&mut self, cache: &LeaderEpochCache) -> Result<()> {
        Ok(checkpoint::write_atomic(
            &self.dir,
            EPOCH_FILE,
            cache.encode().as_bytes(),
        )?)
    }

    fn mark_clean_shutdown(&mut self) -> Result<()> {
        fs::File::create(self.dir.join(CLEAN_SHUTDOWN_FILE))?;
        Ok(checkpoint::sync_dir(&self.dir)?)
    }
}
