//! [`LogStore`]: raft's durable storage — entries, HardState, ConfState and the latest
//! snapshot — in two files on a [`Disk`], with the uncompacted log cached in memory.
//!
//! # Files
//!
//! ```text
//! log      := "FQLOG001" record*
//! record   := body_len: u32 LE | crc32c(body): u32 LE | body
//! body     := has_hard_state: u8 | [term: u64 LE | vote: u64 LE | commit: u64 LE]
//!             entry_count: u32 LE | (entry_len: u32 LE | eraftpb.Entry protobuf)*
//! snapshot := "FQSNAP01" body_len: u32 LE | crc32c(body): u32 LE | body
//!             (body = eraftpb.Snapshot protobuf: metadata {index, term, conf_state} + data)
//! ```
//!
//! # Guarantees
//!
//! - One [`LogStore::append`] (one raft `Ready`) is one record: one write and one fsync, so
//!   entries and the HardState that commits them are durable together or not at all.
//! - A record's entries replace every entry from its first index on (raft's "truncate the
//!   conflicting suffix"); replay on open applies the records in order.
//! - A torn last record (crash mid-write: length past the end, or a bad CRC on the record that
//!   ends the file) is cut off on open. A bad record with valid data after it is corruption:
//!   fsynced data would be lost, so opening fails with [`Error::Corrupt`] instead.
//! - Snapshots are installed with a temp file + rename + directory fsync. Compaction then
//!   rewrites the log (again atomically) with only the entries after the snapshot; a crash
//!   between the two leaves stale entries that replay skips.
//! - A fresh directory is bootstrapped with an index-0 snapshot holding the voter set, so the
//!   ConfState is always the one in the snapshot metadata.
//!
//! # Simplifications
//!
//! The uncompacted log is held in memory as well as on disk; its size is bounded by the
//! snapshot thresholds in [`crate::Options`]. Snapshots are whole blobs in memory. Membership
//! changes (ConfChangeV2) are not supported yet, so the ConfState never changes after
//! bootstrap except through an installed snapshot.

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

use crate::disk::Disk;
use crate::{Error, RaftId, Result};

/// File name of the log.
const LOG_FILE: &str = "log";
/// File name of the latest snapshot.
const SNAPSHOT_FILE: &str = "snapshot";
/// First bytes of the log file: format name and version.
const LOG_MAGIC: &[u8; 8] = b"FQLOG001";
/// First bytes of the snapshot file: format name and version.
const SNAPSHOT_MAGIC: &[u8; 8] = b"FQSNAP01";
/// Bytes of a record header: body length and CRC.
const RECORD_HEADER_BYTES: usize = 8;

/// Durable raft storage over a [`Disk`]. Implements [`raft::Storage`] for reads; the node
/// calls the `&mut self` methods to write.
pub struct LogStore<D: Disk> {
    /// Where the files live.
    disk: D,
    /// The last persisted HardState (commit may run ahead in memory; see [`Self::set_commit`]).
    hard_state: HardState,
    /// The latest snapshot, with its data. Index 0 is the bootstrap snapshot (voters, no data).
    snapshot: Snapshot,
    /// Entries after the snapshot: `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
    /// Current size of the log file in bytes.
    log_bytes: u64,
}

impl<D: Disk> LogStore<D> {
    /// Opens the storage on `disk`, replaying the log and cutting a torn tail. A fresh disk
    /// is bootstrapped with `voters` as the voter set; an existing one keeps its own.
    pub fn open(mut disk: D, voters: &[RaftId]) -> Result<LogStore<D>> {
        let snapshot = match disk.read(SNAPSHOT_FILE)? {
            Some(bytes) => {
                let snapshot = decode_snapshot(&bytes)?;
                check_conf_state(snapshot.get_metadata().get_conf_state())?;
                snapshot
            }
            None => {
                if voters.is_empty() {
                    return Err(Error::InvalidInput(
                        "bootstrap needs at least one voter".into(),
                    ));
                }
                let mut snapshot = Snapshot::default();
                snapshot.mut_metadata().mut_conf_state().voters = voters.to_vec();
                disk.replace(SNAPSHOT_FILE, &encode_snapshot(&snapshot))?;
                disk.replace(LOG_FILE, LOG_MAGIC)?;
                snapshot
            }
        };
        let mut store = LogStore {
            disk,
            hard_state: HardState::default(),
            snapshot,
            entries: Vec::new(),
            log_bytes: 0,
        };
        store.replay()?;
        Ok(store)
    }

    /// Reads the log file and rebuilds `hard_state` and `entries` from its records.
    fn replay(&mut self) -> Result<()> {
        let bytes = self.disk.read(LOG_FILE)?.unwrap_or_default();
        if bytes.len() < LOG_MAGIC.len() {
            // Torn while being created: nothing in it was ever acknowledged.
            self.disk.replace(LOG_FILE, LOG_MAGIC)?;
            self.log_bytes = LOG_MAGIC.len() as u64;
        } else if &bytes[..LOG_MAGIC.len()] != LOG_MAGIC {
            return Err(Error::Corrupt(
                "log file does not start with FQLOG001".into(),
            ));
        } else {
            let mut offset = LOG_MAGIC.len();
            while let Some(body) = next_record(&bytes, offset)? {
                let (hard_state, entries) = decode_record(body)?;
                if let Some(hs) = hard_state {
                    self.hard_state = hs;
                }
                self.splice(entries)?;
                offset += RECORD_HEADER_BYTES + body.len();
            }
            if offset < bytes.len() {
                self.disk.truncate(LOG_FILE, offset as u64)?;
            }
            self.log_bytes = offset as u64;
        }
        // A snapshot only ever holds committed state, and may be newer than the HardState if
        // a crash came between installing it and rewriting the log.
        let meta = self.snapshot.get_metadata();
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        if self.hard_state.commit > self.last() {
            return Err(Error::Corrupt(format!(
                "commit index {} is past the last log index {}",
                self.hard_state.commit,
                self.last()
            )));
        }
        Ok(())
    }

    /// Replaces the entries from `new[0].index` on with `new`, skipping entries the snapshot
    /// already covers. Fails on a gap or non-contiguous indexes.
    fn splice(&mut self, new: Vec<Entry>) -> Result<()> {
        let snapshot_index = self.snapshot.get_metadata().index;
        let mut new = new
            .into_iter()
            .skip_while(|e| e.index <= snapshot_index)
            .peekable();
        let Some(first) = new.peek().map(|e| e.index) else {
            return Ok(());
        };
        if first > self.last() + 1 {
            return Err(Error::Corrupt(format!(
                "log gap: entry {first} follows last index {}",
                self.last()
            )));
        }
        self.entries.truncate((first - snapshot_index - 1) as usize);
        for entry in new {
            if entry.index != self.last() + 1 {
                return Err(Error::Corrupt(format!(
                    "entry {} is not contiguous with {}",
                    entry.index,
                    self.last()
                )));
            }
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Durably writes `entries` (replacing any conflicting suffix) and `hard_state` with one
    /// write and one fsync. Panics if `entries` would leave a gap: raft never asks for that.
    pub fn append(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<()> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        if let Some(first) = entries.first() {
            assert!(
                first.index > self.snapshot.get_metadata().index && first.index <= self.last() + 1,
                "append at {} outside ({}, {}]",
                first.index,
                self.snapshot.get_metadata().index,
                self.last() + 1
            );
        }
        let record = encode_record(hard_state, entries);
        self.disk.append_sync(LOG_FILE, &record)?;
        self.log_bytes += record.len() as u64;
        if let Some(hs) = hard_state {
            self.hard_state = hs.clone();
        }
        self.splice(entries.to_vec())
            .expect("entries checked before the write");
        Ok(())
    }

    /// Records a commit index learned after persistence (raft's `LightReady::commit_index`).
    /// It is kept in memory and written with the next record: losing it in a crash is safe,
    /// raft re-learns it from the leader.
    pub fn set_commit(&mut self, commit: u64) {
        assert!(
            commit <= self.last(),
            "commit {commit} past last index {}",
            self.last()
        );
        self.hard_state.commit = self.hard_state.commit.max(commit);
    }

    /// Installs a snapshot received from the leader: the snapshot replaces the whole log, and
    /// the HardState commits it.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        assert!(
            meta.index > self.snapshot.get_metadata().index,
            "installing snapshot {} over newer {}",
            meta.index,
            self.snapshot.get_metadata().index
        );
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = meta.index;
        hard_state.term = hard_state.term.max(meta.term);
        self.disk
            .replace(SNAPSHOT_FILE, &encode_snapshot(&snapshot))?;
        self.snapshot = snapshot;
        self.entries.clear();
        self.hard_state = hard_state;
        self.rewrite_log()
    }

    /// Saves a snapshot of the local state machine taken at applied index `index` and
    /// compacts the log behind it. Entries after `index` are kept.
    pub fn save_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<()> {
        let current = self.snapshot.get_metadata().index;
        assert!(
            index > current && index <= self.hard_state.commit,
            "snapshot at {index}"
        );
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = self.entries[(index - current - 1) as usize].term;
        meta.set_conf_state(self.conf_state().clone());
        snapshot.data = data.into();
        self.disk
            .replace(SNAPSHOT_FILE, &encode_snapshot(&snapshot))?;
        self.entries.drain(..(index - current) as usize);
        self.snapshot = snapshot;
        self.rewrite_log()
    }

    /// Atomically replaces the log file with one record holding the HardState and the
    /// remaining entries.
    fn rewrite_log(&mut self) -> Result<()> {
        let mut bytes = LOG_MAGIC.to_vec();
        bytes.extend(encode_record(Some(&self.hard_state), &self.entries));
        self.disk.replace(LOG_FILE, &bytes)?;
        self.log_bytes = bytes.len() as u64;
        Ok(())
    }

    /// The last persisted HardState, with the in-memory commit index.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The voter set.
    pub fn conf_state(&self) -> &ConfState {
        self.snapshot.get_metadata().get_conf_state()
    }

    /// The latest snapshot (index 0 for the bootstrap one).
    pub fn latest_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Index of the latest snapshot: everything up to it is compacted away.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    /// Index of the last entry (or of the snapshot when the log is empty).
    pub fn last(&self) -> u64 {
        self.snapshot.get_metadata().index + self.entries.len() as u64
    }

    /// Size of the log file in bytes.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }
}

impl<D: Disk> raft::Storage for LogStore<D> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state().clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let offset = self.snapshot_index() + 1;
        if low < offset {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut entries = self.entries[(low - offset) as usize..(high - offset) as usize].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let meta = self.snapshot.get_metadata();
        if idx == meta.index {
            return Ok(meta.term);
        }
        if idx < meta.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - meta.index - 1) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.snapshot_index() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

/// Frames `body` as `len | crc | body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES + body.len());
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(crc32c::crc32c(body).to_le_bytes());
    out.extend(body);
    out
}

/// Reads the framed record at `offset`: `Ok(None)` at the end of the valid log (clean end or
/// torn tail), `Err(Corrupt)` for a bad record followed by more data.
fn next_record(bytes: &[u8], offset: usize) -> Result<Option<&[u8]>> {
    let rest = &bytes[offset..];
    if rest.len() < RECORD_HEADER_BYTES {
        return Ok(None);
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    let Some(body) = rest.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
        return Ok(None);
    };
    if crc32c::crc32c(body) == crc {
        return Ok(Some(body));
    }
    if RECORD_HEADER_BYTES + len == rest.len() {
        return Ok(None);
    }
    Err(Error::Corrupt(format!(
        "log record at byte {offset} fails its CRC"
    )))
}

/// Encodes one log record (framed).
fn encode_record(hard_state: Option<&HardState>, entries: &[Entry]) -> Vec<u8> {
    let mut body = Vec::new();
    match hard_state {
        Some(hs) => {
            body.push(1);
            for value in [hs.term, hs.vote, hs.commit] {
                body.extend(value.to_le_bytes());
            }
        }
        None => body.push(0),
    }
    body.extend((entries.len() as u32).to_le_bytes());
    for entry in entries {
        let bytes = entry
            .write_to_bytes()
            .expect("encoding an Entry cannot fail");
        body.extend((bytes.len() as u32).to_le_bytes());
        body.extend(bytes);
    }
    frame(&body)
}

/// Decodes the body of a log record whose CRC matched.
fn decode_record(body: &[u8]) -> Result<(Option<HardState>, Vec<Entry>)> {
    let mut reader = Reader { bytes: body };
    let hard_state = match reader.take(1)?[0] {
        0 => None,
        1 => {
            let (term, vote, commit) = (reader.u64()?, reader.u64()?, reader.u64()?);
            Some(HardState {
                term,
                vote,
                commit,
                ..Default::default()
            })
        }
        other => return Err(Error::Corrupt(format!("bad hard state flag {other}"))),
    };
    let count = reader.u32()?;
    let mut entries = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let len = reader.u32()? as usize;
        let entry = Entry::parse_from_bytes(reader.take(len)?)
            .map_err(|err| Error::Corrupt(format!("bad entry: {err}")))?;
        entries.push(entry);
    }
    Ok((hard_state, entries))
}

/// Encodes the snapshot file.
fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    out.extend(frame(
        &snapshot
            .write_to_bytes()
            .expect("encoding a Snapshot cannot fail"),
    ));
    out
}

/// Checks that a voter set read from disk is one raft-rs can rebuild (it is fatal on one it
/// cannot): voters nonzero and distinct, no learners or joint configuration (membership is
/// static).
fn check_conf_state(conf: &ConfState) -> Result<()> {
    let mut voters = conf.voters.clone();
    voters.sort_unstable();
    voters.dedup();
    let static_set = conf.learners.is_empty()
        && conf.voters_outgoing.is_empty()
        && conf.learners_next.is_empty()
        && !conf.auto_leave;
    if voters.is_empty() || voters.len() != conf.voters.len() || voters[0] == 0 || !static_set {
        return Err(Error::Corrupt(format!(
            "the snapshot's voter set is not a static set of distinct voters: {conf:?}"
        )));
    }
    Ok(())
}

/// Decodes the snapshot file. It is replaced atomically, so any damage is corruption.
fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot> {
    if bytes.len() < SNAPSHOT_MAGIC.len() || &bytes[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(Error::Corrupt(
            "snapshot file does not start with FQSNAP01".into(),
        ));
    }
    let framed = &bytes[SNAPSHOT_MAGIC.len()..];
    match next_record(framed, 0) {
        Ok(Some(body)) if RECORD_HEADER_BYTES + body.len() == framed.len() => {
            Snapshot::parse_from_bytes(body)
                .map_err(|err| Error::Corrupt(format!("bad snapshot: {err}")))
        }
        _ => Err(Error::Corrupt(
            "snapshot file fails its length or CRC check".into(),
        )),
    }
}

/// A cursor over a record body that reports running out of bytes as corruption.
struct Reader<'a> {
    /// The bytes not read yet.
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Takes the next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::Corrupt(
                "log record shorter than its contents".into(),
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes a little-endian u32.
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// Takes a little-endian u64.
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use raft::Storage as _;

    use super::*;
    use crate::disk::MemDisk;

    fn entry(index: u64, term: u64) -> Entry {
        let data = format!("{index}@{term}").into_bytes().into();
        Entry {
            index,
            term,
            data,
            ..Default::default()
        }
    }

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range.map(|i| entry(i, term)).collect()
    }

    fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term,
            vote,
            commit,
            ..Default::default()
        }
    }

    fn terms<D: Disk>(store: &LogStore<D>) -> Vec<(u64, u64)> {
        let first = store.first_index().unwrap();
        let all = store.entries(
            first,
            store.last() + 1,
            None,
            GetEntriesContext::empty(false),
        );
        all.unwrap().iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn bootstrap_then_reopen_keeps_voters() {
        let disk = MemDisk::new();
        let store = LogStore::open(disk.clone(), &[1, 2, 3]).unwrap();
        assert_eq!(store.conf_state().voters, vec![1, 2, 3]);
        assert_eq!((store.first_index().unwrap(), store.last()), (1, 0));
        drop(store);
        let store = LogStore::open(disk, &[7]).unwrap();
        assert_eq!(
            store.conf_state().voters,
            vec![1, 2, 3],
            "existing voters win"
        );
        assert!(LogStore::open(MemDisk::new(), &[]).is_err());
    }

    #[test]
    fn append_overwrites_conflicting_suffix_and_survives_reopen() {
        let disk = MemDisk::new();
        let mut store = LogStore::open(disk.clone(), &[1]).unwrap();
        store
            .append(&entries(1..=5, 1), Some(&hard_state(1, 1, 2)))
            .unwrap();
        store
            .append(&entries(4..=6, 2), Some(&hard_state(2, 1, 3)))
            .unwrap();
        store.append(&[], Some(&hard_state(2, 1, 4))).unwrap();
        let want = vec![(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)];
        assert_eq!(terms(&store), want);
        drop(store);
        let store = LogStore::open(disk, &[1]).unwrap();
        assert_eq!(terms(&store), want);
        assert_eq!(store.hard_state(), &hard_state(2, 1, 4));
        assert_eq!(store.term(6).unwrap(), 2);
        assert!(matches!(
            store.term(7),
            Err(raft::Error::Store(StorageError::Unavailable))
        ));
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn append_with_gap_panics() {
        let mut store = LogStore::open(MemDisk::new(), &[1]).unwrap();
        store.append(&entries(3..=4, 1), None).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_at_every_length() {
        let disk = MemDisk::new();
        let mut store = LogStore::open(disk.clone(), &[1]).unwrap();
        store
            .append(&entries(1..=3, 1), Some(&hard_state(1, 1, 3)))
            .unwrap();
        let before = disk.bytes();
        drop(store);
        for fraction in [0.0, 0.05, 0.3, 0.5, 0.99] {
            let copy = MemDisk::new();
            let mut dump = disk.clone();
            let mut target = copy.clone();
            for name in [LOG_FILE, SNAPSHOT_FILE] {
                target
                    .replace(name, &dump.read(name).unwrap().unwrap())
                    .unwrap();
            }
            let mut store = LogStore::open(copy.clone(), &[1]).unwrap();
            copy.tear_next_append(fraction);
            let err = store.append(&entries(4..=9, 1), Some(&hard_state(1, 1, 9)));
            assert!(matches!(err, Err(Error::Io(_))));
            let store = LogStore::open(copy.clone(), &[1]).unwrap();
            assert_eq!(
                store.last(),
                3,
                "fraction {fraction}: torn record must be dropped"
            );
            assert_eq!(store.hard_state().commit, 3);
            assert_eq!(
                copy.bytes(),
                before,
                "fraction {fraction}: tail cut on disk"
            );
        }
    }

    #[test]
    fn a_voter_set_raft_could_not_rebuild_is_refused_on_open() {
        let bad_sets: [(Vec<u64>, Vec<u64>); 4] = [
            (vec![], vec![]),
            (vec![1, 1, 2], vec![]),
            (vec![0, 1], vec![]),
            (vec![1, 2], vec![2]),
        ];
        for (voters, learners) in bad_sets {
            let mut disk = MemDisk::new();
            let mut snapshot = Snapshot::default();
            snapshot.mut_metadata().mut_conf_state().voters = voters.clone();
            snapshot.mut_metadata().mut_conf_state().learners = learners;
            disk.replace(SNAPSHOT_FILE, &encode_snapshot(&snapshot))
                .unwrap();
            disk.replace(LOG_FILE, LOG_MAGIC).unwrap();
            let result = LogStore::open(disk, &[1]);
            assert!(matches!(result, Err(Error::Corrupt(_))), "{voters:?}");
        }
    }

    #[test]
    fn corruption_before_valid_data_is_refused() {
        let disk = MemDisk::new();
        let mut store = LogStore::open(disk.clone(), &[1]).unwrap();
        store.append(&entries(1..=2, 1), None).unwrap();
        store.append(&entries(3..=4, 1), None).unwrap();
        drop(store);
        let mut raw = disk.clone();
        let mut log = raw.read(LOG_FILE).unwrap().unwrap();
        log[LOG_MAGIC.len() + RECORD_HEADER_BYTES + 3] ^= 0xff;
        raw.replace(LOG_FILE, &log).unwrap();
        assert!(matches!(LogStore::open(disk, &[1]), Err(Error::Corrupt(_))));
    }

    #[test]
    fn snapshot_compacts_and_restart_starts_from_it() {
        let disk = MemDisk::new();
        let mut store = LogStore::open(disk.clone(), &[1, 2, 3]).unwrap();
        store
            .append(&entries(1..=10, 1), Some(&hard_state(1, 1, 8)))
            .unwrap();
        store.save_snapshot(7, b"state@7".to_vec()).unwrap();
        let check = |store: &LogStore<MemDisk>| {
            assert_eq!(store.first_index().unwrap(), 8);
            assert_eq!(
                store.term(7).unwrap(),
                1,
                "term of the compacted index is kept"
            );
            assert!(matches!(
                store.term(6),
                Err(raft::Error::Store(StorageError::Compacted))
            ));
            let low = store.entries(5, 9, None, GetEntriesContext::empty(false));
            assert!(matches!(
                low,
                Err(raft::Error::Store(StorageError::Compacted))
            ));
            assert_eq!(terms(store), vec![(8, 1), (9, 1), (10, 1)]);
            let snap = store.snapshot(0, 2).unwrap();
            assert_eq!(
                (snap.get_metadata().index, &snap.data[..]),
                (7, &b"state@7"[..])
            );
            assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
        };
        check(&store);
        let size_before = store.log_bytes();
        drop(store);
        let store = LogStore::open(disk, &[1, 2, 3]).unwrap();
        check(&store);
        assert_eq!(store.hard_state().commit, 8);
        assert_eq!(store.log_bytes(), size_before);
        assert!(matches!(
            store.snapshot(9, 2),
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        ));
    }

    #[test]
    fn installed_snapshot_replaces_the_log() {
        let disk = MemDisk::new();
        let mut store = LogStore::open(disk.clone(), &[1, 2, 3]).unwrap();
        store
            .append(&entries(1..=4, 1), Some(&hard_state(1, 1, 2)))
            .unwrap();
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 20;
        snap.mut_metadata().term = 3;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        snap.data = b"leader state".to_vec().into();
        store.install_snapshot(snap).unwrap();
        store
            .append(&entries(21..=22, 3), Some(&hard_state(3, 2, 21)))
            .unwrap();
        drop(store);
        let store = LogStore::open(disk, &[1, 2, 3]).unwrap();
        assert_eq!(store.snapshot_index(), 20);
        assert_eq!(terms(&store), vec![(21, 3), (22, 3)]);
        assert_eq!(store.hard_state(), &hard_state(3, 2, 21));
        assert_eq!(&store.latest_snapshot().data[..], b"leader state");
    }

    #[test]
    fn crash_between_snapshot_and_log_rewrite_skips_stale_entries() {
        let disk = MemDisk::new();
        let mut store = LogStore::open(disk.clone(), &[1]).unwrap();
        store
            .append(&entries(1..=6, 1), Some(&hard_state(1, 1, 3)))
            .unwrap();
        let old_log = disk.clone().read(LOG_FILE).unwrap().unwrap();
        store.save_snapshot(3, b"s".to_vec()).unwrap();
        drop(store);
        // Put back the pre-compaction log, as if the crash came before its rewrite.
        disk.clone().replace(LOG_FILE, &old_log).unwrap();
        let store = LogStore::open(disk, &[1]).unwrap();
        assert_eq!(store.snapshot_index(), 3);
        assert_eq!(terms(&store), vec![(4, 1), (5, 1), (6, 1)]);
        assert_eq!(store.hard_state().commit, 3);
    }

    #[test]
    fn real_directory_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let disk = crate::disk::FsDisk::open(dir.path()).unwrap();
        let mut store = LogStore::open(disk, &[1]).unwrap();
        store
            .append(&entries(1..=3, 1), Some(&hard_state(1, 1, 3)))
            .unwrap();
        store.save_snapshot(2, b"two".to_vec()).unwrap();
        store.append(&entries(4..=4, 1), None).unwrap();
        drop(store);
        let store = LogStore::open(crate::disk::FsDisk::open(dir.path()).unwrap(), &[1]).unwrap();
        assert_eq!(terms(&store), vec![(3, 1), (4, 1)]);
        assert_eq!(&store.latest_snapshot().data[..], b"two");
    }
}
