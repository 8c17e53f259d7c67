//! The sparse offset index and the time index of one segment.
//!
//! Both are append-only files of fixed-size big-endian entries, mirrored in memory as a
//! `Vec` that lookups binary-search. Offsets are stored relative to the segment's base offset.
//!
//! ```text
//! .index      entry = relativeOffset u32 | position u32      (8 bytes)
//!             "the batch whose base offset is base+relativeOffset starts at position"
//! .timeindex  entry = timestamp i64 | relativeOffset u32      (12 bytes)
//!             "the largest timestamp up to and including the batch at base+relativeOffset
//!              is timestamp, and that batch is the first to reach it"
//! ```
//!
//! Entries are added every `index.interval.bytes` of appended data, so a lookup lands at most
//! that many bytes before its target and the segment scans batch headers from there. Both
//! kinds are strictly increasing, which [`Index::append`] asserts.
//!
//! Unlike Kafka, index files are not preallocated to `segment.index.bytes` and memory-mapped:
//! they grow by plain writes, so a crash can leave at most a torn last entry, which loading
//! detects ([`Index::open`] reports whether the file was clean) and the segment then rebuilds.

use std::fmt::Debug;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A fixed-size index entry with its on-disk encoding.
pub trait Entry: Copy + Eq + Debug {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Appends the big-endian encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes an entry from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Whether `self` may follow `prev` in an index (strictly increasing).
    fn follows(&self, prev: &Self) -> bool;
    /// The offset (relative to the segment base) the entry points at.
    fn relative_offset(&self) -> u32;
}

/// Offset index entry: where the batch at `base + relative_offset` starts in the `.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Base offset of the batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment's `.log` file.
    pub position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: be_u32(&bytes[0..4]),
            position: be_u32(&bytes[4..8]),
        }
    }

    fn follows(&self, prev: &Self) -> bool {
        self.relative_offset > prev.relative_offset && self.position > prev.position
    }

    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// Time index entry: the largest timestamp so far and the batch that first reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest batch maxTimestamp up to this batch.
    pub timestamp_ms: i64,
    /// Base offset of the batch that first reached it, minus the segment's base offset.
    pub relative_offset: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        let mut ts = [0; 8];
        ts.copy_from_slice(&bytes[0..8]);
        TimeEntry {
            timestamp_ms: i64::from_be_bytes(ts),
            relative_offset: be_u32(&bytes[8..12]),
        }
    }

    fn follows(&self, prev: &Self) -> bool {
        self.timestamp_ms > prev.timestamp_ms && self.relative_offset >= prev.relative_offset
    }

    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(bytes);
    u32::from_be_bytes(b)
}

/// An index file and its in-memory copy.
#[derive(Debug)]
pub struct Index<E: Entry> {
    /// Path of the file.
    path: PathBuf,
    /// The open file, written at `entries.len() * E::SIZE`.
    file: File,
    /// All entries, strictly increasing.
    entries: Vec<E>,
}

impl<E: Entry> Index<E> {
    /// Opens (creating if missing) the index at `path` and loads its entries. The boolean is
    /// false when the file was damaged: a partial trailing entry or entries out of order. Only
    /// the well-ordered prefix is loaded then, and the caller should rebuild.
    pub fn open(path: &Path) -> io::Result<(Index<E>, bool)> {
        let mut options = crate::owner_only::options();
        options.read(true).write(true).create(true).truncate(false);
        let mut file = options.open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut clean = bytes.len() % E::SIZE == 0;
        let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::SIZE);
        for chunk in bytes.chunks_exact(E::SIZE) {
            let entry = E::decode(chunk);
            if entries.last().is_some_and(|prev| !entry.follows(prev)) {
                clean = false;
                break;
            }
            entries.push(entry);
        }
        Ok((
            Index {
                path: path.to_path_buf(),
                file,
                entries,
            },
            clean,
        ))
    }

    /// The entries, in increasing order.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// Appends an entry to memory and the file. Panics if it does not follow the last entry.
    pub fn append(&mut self, entry: E) -> io::Result<()> {
        if let Some(prev) = self.entries.last() {
            assert!(
                entry.follows(prev),
                "index {:?}: {entry:?} after {prev:?}",
                self.path
            );
        }
        let mut buf = Vec::with_capacity(E::SIZE);
        entry.encode(&mut buf);
        self.file
            .write_all_at(&buf, (self.entries.len() * E::SIZE) as u64)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Keeps only the entries for which `keep` holds (a prefix, since entries are ordered) and
    /// shortens the file to match.
    pub fn truncate_where(&mut self, keep: impl Fn(&E) -> bool) -> io::Result<()> {
        let n = self.entries.partition_point(keep);
        self.entries.truncate(n);
        self.file.set_len((n * E::SIZE) as u64)
    }

    /// Replaces the whole file with `entries` (after a rebuild).
    pub fn replace(&mut self, entries: Vec<E>) -> io::Result<()> {
        for pair in entries.windows(2) {
            assert!(
                pair[1].follows(&pair[0]),
                "rebuilt index {:?} out of order",
                self.path
            );
        }
        let mut buf = Vec::with_capacity(entries.len() * E::SIZE);
        for entry in &entries {
            entry.encode(&mut buf);
        }
        self.file.set_len(0)?;
        self.file.write_all_at(&buf, 0)?;
        self.entries = entries;
        Ok(())
    }

    /// Forces the file's contents to disk.
    pub fn sync(&self) -> io::Result<()> {
        super::checkpoint::sync_data(&self.file)
    }

    /// A second handle on the file, for an fsync on another thread.
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Index<OffsetEntry> {
    /// The last entry at or below `relative_offset`: where a scan for it should start.
    pub fn lookup(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let n = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        n.checked_sub(1).map(|i| self.entries[i])
    }
}

impl Index<TimeEntry> {
    /// The last entry whose timestamp is below `timestamp_ms`: every batch before its offset
    /// has a smaller maxTimestamp, so a search for `timestamp_ms` may start there.
    pub fn lookup(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let n = self
            .entries
            .partition_point(|e| e.timestamp_ms < timestamp_ms);
        n.checked_sub(1).map(|i| self.entries[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn offset_entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn append_reopen_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let (mut index, clean) = Index::<OffsetEntry>::open(&path).unwrap();
        assert!(clean && index.entries().is_empty());
        for i in 1..=3 {
            index.append(offset_entry(i * 10, i * 1000)).unwrap();
        }
        drop(index);
        let (index, clean) = Index::<OffsetEntry>::open(&path).unwrap();
        assert!(clean);
        assert_eq!(index.entries().len(), 3);
        assert_eq!(index.lookup(5), None);
        assert_eq!(index.lookup(10), Some(offset_entry(10, 1000)));
        assert_eq!(index.lookup(29), Some(offset_entry(20, 2000)));
        assert_eq!(index.lookup(u32::MAX), Some(offset_entry(30, 3000)));
    }

    #[test]
    fn torn_or_disordered_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let (mut index, _) = Index::<TimeEntry>::open(&path).unwrap();
        index
            .append(TimeEntry {
                timestamp_ms: 5,
                relative_offset: 0,
            })
            .unwrap();
        index
            .append(TimeEntry {
                timestamp_ms: 9,
                relative_offset: 4,
            })
            .unwrap();
        drop(index);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[1, 2, 3]).unwrap();
        let (index, clean) = Index::<TimeEntry>::open(&path).unwrap();
        assert!(!clean);
        assert_eq!(index.entries().len(), 2);
        drop(index);
        // A full entry that goes backwards.
        std::fs::write(&path, [0u8; 24]).unwrap();
        let (index, clean) = Index::<TimeEntry>::open(&path).unwrap();
        assert!(!clean);
        assert_eq!(index.entries().len(), 1);
    }

    #[test]
    fn time_lookup_finds_last_smaller_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, _) = Index::<TimeEntry>::open(&dir.path().join("t")).unwrap();
        index
            .append(TimeEntry {
                timestamp_ms: 100,
                relative_offset: 0,
            })
            .unwrap();
        index
            .append(TimeEntry {
                timestamp_ms: 200,
                relative_offset: 7,
            })
            .unwrap();
        assert_eq!(index.lookup(100), None);
        assert_eq!(index.lookup(101).map(|e| e.relative_offset), Some(0));
        assert_eq!(index.lookup(201).map(|e| e.relative_offset), Some(7));
    }

    #[test]
    fn truncate_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i");
        let (mut index, _) = Index::<OffsetEntry>::open(&path).unwrap();
        for i in 1..=5 {
            index.append(offset_entry(i, i * 100)).unwrap();
        }
        index.truncate_where(|e| e.relative_offset < 3).unwrap();
        assert_eq!(index.entries().len(), 2);
        index.append(offset_entry(9, 900)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        index.replace(vec![offset_entry(1, 1)]).unwrap();
        drop(index);
        let (index, clean) = Index::<OffsetEntry>::open(&path).unwrap();
        assert!(clean);
        assert_eq!(index.entries(), &[offset_entry(1, 1)]);
    }

    #[test]
    #[should_panic(expected = "after")]
    fn out_of_order_append_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, _) = Index::<OffsetEntry>::open(&dir.path().join("i")).unwrap();
        index.append(offset_entry(5, 50)).unwrap();
        let _ = index.append(offset_entry(5, 60));
    }
}
