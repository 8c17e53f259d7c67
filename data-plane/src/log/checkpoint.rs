//! Small checkpoint files in a partition directory, replaced atomically, and the fsync calls
//! of the whole log.
//!
//! A checkpoint is written to `<name>.tmp`, fsynced, renamed over `<name>`, and the directory
//! is fsynced, so a crash leaves either the old or the new contents, never a mix. Leftover
//! `.tmp` files are removed when the log opens.
//!
//! Every fsync of the log goes through [`sync_data`] or [`sync_dir`], which tests count per
//! thread ([`sync_counts`]) to check which paths stay free of fsyncs.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::Offset;

/// Suffix of a checkpoint being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// Replaces `dir/name` with `contents` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = crate::owner_only::create(&tmp)?;
    file.write_all(contents)?;
    count(|c| c.files += 1);
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Reads `dir/name`, `None` if it does not exist.
pub fn read(dir: &Path, name: &str) -> io::Result<Option<String>> {
    match fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Fsyncs a directory so that file creations, renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    count(|c| c.dirs += 1);
    File::open(dir)?.sync_all()
}

/// Forces a file's contents (and the metadata needed to read them, such as its length) to
/// stable storage: `fdatasync`.
pub fn sync_data(file: &File) -> io::Result<()> {
    count(|c| c.files += 1);
    file.sync_data()
}

/// Fsyncs done by the calling thread so far (tests only count; release builds do not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// `fdatasync` calls on files.
    pub files: u64,
    /// `fsync` calls on directories.
    pub dirs: u64,
}

#[cfg(test)]
thread_local! {
    static SYNC_COUNTS: std::cell::Cell<SyncCounts> = const {
        std::cell::Cell::new(SyncCounts { files: 0, dirs: 0 })
    };
}

#[cfg(test)]
fn count(f: impl FnOnce(&mut SyncCounts)) {
    SYNC_COUNTS.with(|cell| {
        let mut counts = cell.get();
        f(&mut counts);
        cell.set(counts);
    });
}

#[cfg(not(test))]
fn count(_f: impl FnOnce(&mut SyncCounts)) {}

/// The fsyncs the calling thread has done so far (always zero outside tests).
#[cfg(test)]
pub fn sync_counts() -> SyncCounts {
    SYNC_COUNTS.with(|cell| cell.get())
}

/// The text of the log start offset checkpoint.
pub fn encode_offset(offset: Offset) -> String {
    format!("0\n{offset}\n")
}

/// Parses the log start offset checkpoint; `None` if malformed.
pub fn decode_offset(text: &str) -> Option<Offset> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let offset: Offset = lines.next()?.trim().parse().ok()?;
    (offset >= 0).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), "x").unwrap(), None);
        write_atomic(dir.path(), "x", encode_offset(42).as_bytes()).unwrap();
        write_atomic(dir.path(), "x", encode_offset(43).as_bytes()).unwrap();
        let text = read(dir.path(), "x").unwrap().unwrap();
        assert_eq!(decode_offset(&text), Some(43));
        assert!(!dir.path().join("x.tmp").exists());
        for bad in ["", "1\n4\n", "0\n", "0\n-3\n", "0\nabc\n"] {
            assert_eq!(decode_offset(bad), None, "{bad:?}");
        }
    }
}
