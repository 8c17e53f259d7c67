//! Producer-state snapshot files: `<offset>.snapshot` in a partition directory, as Kafka names
//! them.
//!
//! A snapshot holds the [`ProducerStates`] of every batch below `offset` (the log end offset
//! when it was taken). The broker writes one when a segment rolls and on clean shutdown;
//! recovery loads the newest readable snapshot at or below the log end offset and replays the
//! log from there, so a restart re-reads the tail of the log rather than all of it.
//!
//! ```text
//! <log_dir>/<topic>-<partition>/00000000000000004096.snapshot
//!
//! version i16 (=1) | crc u32 (CRC-32C of everything after it) | body (ProducerStates::encode)
//! ```
//!
//! A snapshot whose checksum or body does not check out (a torn write, a power loss before the
//! data reached the disk, a stray file) is reported as [`SnapshotError::Corrupt`]; the caller
//! deletes it and falls back to an older snapshot or to the whole log. Snapshots written on the
//! append path (segment rolls) are renamed into place but not fsynced, so a power loss can cost
//! one of them but never yields a wrong table; the clean-shutdown snapshot is fsynced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Offset;
use super::checkpoint;
use super::producer_state::ProducerStates;

/// File name suffix of a snapshot.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// The snapshot format version this code writes and reads.
const VERSION: i16 = 1;

/// Bytes before the body: version and checksum.
const HEADER_LEN: usize = 2 + 4;

/// How many snapshots a partition keeps; older ones are deleted after each write.
pub const SNAPSHOTS_KEPT: usize = 2;

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file is damaged or not a snapshot; delete it and rebuild from the log.
    #[error("corrupt producer snapshot {path}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What did not check out.
        why: &'static str,
    },
    /// The file system failed.
    #[error("producer snapshot {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// `<dir>/<offset as 20 digits>.snapshot`.
pub fn snapshot_path(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// The bytes of a snapshot file holding `states`.
pub fn encode(states: &ProducerStates) -> Vec<u8> {
    let body = states.encode();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Parses a snapshot file's bytes; `path` only names it in errors.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<ProducerStates, SnapshotError> {
    let corrupt = |why| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("shorter than its header"));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != VERSION {
        return Err(corrupt("unknown version"));
    }
    let stored = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let body = &bytes[HEADER_LEN..];
    if crc32c::crc32c(body) != stored {
        return Err(corrupt("checksum mismatch"));
    }
    ProducerStates::decode(body).ok_or_else(|| corrupt("malformed body"))
}

/// Offsets of the snapshots in `dir`, ascending.
pub fn list(dir: &Path) -> Result<Vec<Offset>, SnapshotError> {
    let io_error = |source| SnapshotError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        let name = name.to_string_lossy();
        let Some(digits) = name.strip_suffix(SNAPSHOT_SUFFIX) else {
            continue;
        };
        if digits.len() == 20
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(offset) = digits.parse()
        {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Reads the snapshot at `offset`.
pub fn read(dir: &Path, offset: Offset) -> Result<ProducerStates, SnapshotError> {
    let path = snapshot_path(dir, offset);
    let bytes = fs::read(&path).map_err(|source| SnapshotError::Io {
        path: path.clone(),
        source,
    })?;
    decode(&path, &bytes)
}

/// Writes the snapshot of `states` at `offset`: to a temporary file renamed into place, so a
/// reader never sees a half-written file under the final name. With `durable` the file and the
/// directory are fsynced (clean shutdown); otherwise the checksum catches what a power loss
/// damages. Then deletes all but the newest [`SNAPSHOTS_KEPT`] snapshots.
pub fn write(
    dir: &Path,
    offset: Offset,
    states: &ProducerStates,
    durable: bool,
) -> Result<(), SnapshotError> {
    let path = snapshot_path(dir, offset);
    let io_error = |source| SnapshotError::Io {
        path: path.clone(),
        source,
    };
    let bytes = encode(states);
    let name = path
        .file_name()
        .expect("a snapshot path has a file name")
        .to_string_lossy()
        .into_owned();
    if durable {
        checkpoint::write_atomic(dir, &name, &bytes).map_err(io_error)?;
    } else {
        let tmp = dir.join(format!("{name}{}", checkpoint::TMP_SUFFIX));
        crate::owner_only::write(&tmp, &bytes).map_err(io_error)?;
        fs::rename(&tmp, &path).map_err(io_error)?;
    }
    let offsets = list(dir)?;
    let excess = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
    for old in &offsets[..excess] {
        remove(dir, *old)?;
    }
    Ok(())
}

/// Deletes the snapshot at `offset` (missing is fine).
pub fn remove(dir: &Path, offset: Offset) -> Result<(), SnapshotError> {
    let path = snapshot_path(dir, offset);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SnapshotError::Io { path, source }),
    }
}

/// Deletes every snapshot above `offset` (after a truncation they describe batches that are
/// gone).
pub fn remove_above(dir: &Path, offset: Offset) -> Result<(), SnapshotError> {
    for found in list(dir)? {
        if found > offset {
            remove(dir, found)?;
        }
    }
    Ok(())
}

/// The newest readable snapshot at or below `max_offset`, with its offset. Corrupt snapshots
/// met on the way are deleted (logged), so recovery falls back to older ones or to the log.
pub fn latest_at_or_below(
    dir: &Path,
    max_offset: Offset,
) -> Result<Option<(Offset, ProducerStates)>, SnapshotError> {
    for offset in list(dir)?.into_iter().rev() {
        if offset > max_offset {
            continue;
        }
        match read(dir, offset) {
            Ok(states) => return Ok(Some((offset, states))),
            Err(e @ SnapshotError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "ignoring a damaged producer snapshot");
                remove(dir, offset)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::producer_state::{ProducerBatch, increment_sequence};

    fn states(producers: i64) -> ProducerStates {
        let mut states = ProducerStates::new();
        for pid in 0..producers {
            let batch = ProducerBatch {
                producer_id: pid,
                epoch: 1,
                first_seq: 10,
                last_seq: increment_sequence(10, 4),
                max_timestamp: 5,
            };
            states.record(&batch, pid * 5, pid * 5 + 4);
        }
        states
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 15, &states(3), true).unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![15]);
        assert_eq!(read(dir.path(), 15).unwrap(), states(3));
        assert!(snapshot_path(dir.path(), 15).ends_with("00000000000000000015.snapshot"));
    }

    #[test]
    fn snapshot_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (offset, durable) in [(15, true), (16, false)] {
            write(dir.path(), offset, &states(1), durable).unwrap();
            let path = snapshot_path(dir.path(), offset);
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, crate::owner_only::FILE_MODE, "durable: {durable}");
        }
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let bytes = encode(&states(2));
        let path = Path::new("x.snapshot");
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(decode(path, &damaged).is_err(), "flip at byte {at}");
        }
        for len in 0..bytes.len() {
            assert!(decode(path, &bytes[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn recovery_skips_newer_and_corrupt_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 10, &states(1), false).unwrap();
        write(dir.path(), 20, &states(2), false).unwrap();
        // Newer than the log end: skipped (the broker deletes it with `remove_above`).
        let found = latest_at_or_below(dir.path(), 15).unwrap().unwrap();
        assert_eq!(found, (10, states(1)));
        // A torn newest snapshot is deleted and the older one used.
        let newest = snapshot_path(dir.path(), 20);
        let len = fs::metadata(&newest).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&newest)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let found = latest_at_or_below(dir.path(), 100).unwrap().unwrap();
        assert_eq!(found, (10, states(1)));
        assert_eq!(list(dir.path()).unwrap(), vec![10]);
    }

    #[test]
    fn only_the_newest_snapshots_are_kept_and_truncation_removes_newer_ones() {
        let dir = tempfile::tempdir().unwrap();
        for offset in [5, 10, 15, 20] {
            write(dir.path(), offset, &states(1), false).unwrap();
        }
        assert_eq!(list(dir.path()).unwrap(), vec![15, 20]);
        remove_above(dir.path(), 17).unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![15]);
        assert!(latest_at_or_below(dir.path(), 14).unwrap().is_none());
    }
}
