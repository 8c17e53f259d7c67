//! [`Disk`]: the four file operations storage needs, on a real directory or in memory.
//!
//! [`crate::storage::LogStore`] does all its I/O through this trait, so the simulation runs the
//! real storage code against [`MemDisk`], including crashes in the middle of a write
//! ([`MemDisk::tear_next_append`]). Every operation is durable when it returns: there is no
//! "written but not yet synced" state to reason about above this layer.
//!
//! [`FsDisk`] creates its directory with mode [`DIR_MODE`] (0700) and its files with
//! [`FILE_MODE`] (0600): a raft log and its snapshots hold the whole replicated state, which
//! only the process's own user should read. The modes are set at creation, so no other user
//! ever sees a wider one, and a process umask can only narrow them.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The mode of the directories [`FsDisk`] creates: the owner only.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the files [`FsDisk`] creates: the owner may read and write them, no one else.
pub const FILE_MODE: u32 = 0o600;

/// Durable whole-file operations on a flat namespace of file names.
pub trait Disk: Send + 'static {
    /// Reads a whole file, or `None` if it does not exist.
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// Appends `bytes` to a file (creating it) with one write, then fsyncs it.
    fn append_sync(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Cuts a file to `len` bytes and fsyncs it.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Replaces a file's contents atomically: after a crash the file holds either the old or
    /// the new contents, never a mix.
    fn replace(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
}

/// A [`Disk`] on a real directory: fsync after every write, temp file + rename + directory
/// fsync for replacement.
#[derive(Debug)]
pub struct FsDisk {
    /// The directory holding the files; created if missing.
    dir: PathBuf,
    /// Open append handles, so appends do not reopen the file. Dropped on replace, since the
    /// rename gives the name a new inode.
    appenders: HashMap<String, File>,
}

impl FsDisk {
    /// Opens (creating if needed) the directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FsDisk> {
        let dir = dir.as_ref().to_path_buf();
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)?;
        Ok(FsDisk {
            dir,
            appenders: HashMap::new(),
        })
    }

    /// Fsyncs the directory itself, making creations and renames in it durable.
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl Disk for FsDisk {
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn append_sync(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if !self.appenders.contains_key(name) {
            let path = self.dir.join(name);
            let existed = path.exists();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(FILE_MODE)
                .open(path)?;
            if !existed {
                self.sync_dir()?;
            }
            self.appenders.insert(name.to_string(), file);
        }
        let file = self
            .appenders
            .get_mut(name)
            .expect("appender was just inserted");
        file.write_all(bytes)?;
        file.sync_data()
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.appenders.remove(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(name))?;
        self.sync_dir()
    }
}

/// An in-memory [`Disk`] for tests and the simulation. Clones share the same files, so a
/// simulated node can "crash" (drop its storage) and reopen what was written.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    /// The shared state of the disk.
    inner: Arc<Mutex<MemDiskInner>>,
}

/// The files of a [`MemDisk`] and its injected faults.
#[derive(Debug, Default)]
struct MemDiskInner {
    /// File name → contents.
    files: HashMap<String, Vec<u8>>,
    /// If set, the next append writes only this fraction of its bytes and fails, as a crash
    /// in the middle of a write would.
    tear_next_append: Option<f64>,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// Makes the next append write only `fraction` (0.0..1.0) of its bytes and then fail with
    /// an I/O error, leaving a torn record at the end of the file.
    pub fn tear_next_append(&self, fraction: f64) {
        assert!(
            (0.0..1.0).contains(&fraction),
            "fraction {fraction} out of 0.0..1.0"
        );
        self.lock().tear_next_append = Some(fraction);
    }

    /// Cancels injected faults that have not fired yet.
    pub fn clear_faults(&self) {
        self.lock().tear_next_append = None;
    }

    /// Total bytes stored, across all files.
    pub fn bytes(&self) -> usize {
        self.lock().files.values().map(Vec::len).sum()
    }

    /// Locks the shared state; a poisoned lock means a test already panicked.
    fn lock(&self) -> std::sync::MutexGuard<'_, MemDiskInner> {
        self.inner
            .lock()
            .expect("MemDisk lock poisoned by a panicking test")
    }
}

impl Disk for MemDisk {
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().files.get(name).cloned())
    }

    fn append_sync(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut inner = self.lock();
        let torn = inner.tear_next_append.take();
        let file = inner.files.entry(name.to_string()).or_default();
        match torn {
            None => {
                file.extend_from_slice(bytes);
                Ok(())
            }
            Some(fraction) => {
                let keep = (bytes.len() as f64 * fraction) as usize;
                file.extend_from_slice(&bytes[..keep]);
                Err(io::Error::other(
                    "injected crash in the middle of an append",
                ))
            }
        }
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut inner = self.lock();
        let file = inner.files.get_mut(name).ok_or(io::ErrorKind::NotFound)?;
        file.truncate(len as usize);
        Ok(())
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.lock().files.insert(name.to_string(), bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The permission bits of `path`.
    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_directory_is_the_owners_and_so_is_every_file() {
        let root = tempfile::tempdir().unwrap();
        // Even a permissive parent directory and umask give nothing away.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.path().join("store").join("raft");
        let mut disk = FsDisk::open(&dir).unwrap();
        disk.append_sync("log", b"entry").unwrap();
        disk.replace("snapshot", b"state").unwrap();
        disk.truncate("log", 2).unwrap();
        assert_eq!(mode(&root.path().join("store")), DIR_MODE);
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&dir.join("log")), FILE_MODE);
        assert_eq!(mode(&dir.join("snapshot")), FILE_MODE);
    }
}
