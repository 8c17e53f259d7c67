//! What the agent keeps in its data directory, so it can run without the control plane:
//!
//! ```text
//! <data dir>/agent.lock         locked by the running agent: one agent per data directory
//! <data dir>/host-id            the host's id, chosen once (or given) and kept
//! <data dir>/assignments.json   the last assignments received, with their generation
//! <data dir>/nodes/...          one directory per node (see crate::host)
//! ```
//!
//! Files are replaced atomically (write a temporary file, fsync, rename, fsync the directory),
//! so a crash leaves either the old or the new content, never a mix.
//!
//! Everything the agent creates is its own user's only: directories with [`DIR_MODE`] (0700),
//! files with [`FILE_MODE`] (0600), set when they are created ([`create_dir_all`],
//! [`private_file`]) so that no other local user can ever read the assignments (which carry
//! every node's configuration) or a node's log. A process umask can only narrow the modes.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::assignment::{Assignments, is_safe_name};
use crate::error::{Error, Result};

/// The lock file's name.
pub const LOCK_FILE: &str = "agent.lock";
/// The host id file's name.
pub const HOST_ID_FILE: &str = "host-id";
/// The assignments file's name.
pub const ASSIGNMENTS_FILE: &str = "assignments.json";
/// Written when the control plane's assignments for this host went back to an older
/// generation (it lost its store): while it exists the agent applies no assignments. An
/// operator removes it (and `assignments.json`) to accept the new control plane.
pub const DIVERGED_FILE: &str = "control-plane-diverged";

/// The mode of every directory the agent creates: the owner only.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file the agent creates: the owner may read and write it, no one else.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents with [`DIR_MODE`]; an existing directory is left as
/// it is.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Open options that create a missing file with [`FILE_MODE`]; set the access mode as usual.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut file = private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Takes the data directory `dir` for this agent: an exclusive lock on its lock file, held
/// until the returned file is closed (the kernel releases it when the agent dies).
///
/// # Errors
///
/// [`Error::InvalidInput`] when another agent holds it, [`Error::Io`] when it cannot be
/// opened.
pub fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = private_file()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::InvalidInput(format!(
            "another agent is running on the data directory {}",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// The host's id: the one kept in `dir`, else `given`, else a new random one, kept from now
/// on.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `given` differs from the kept one (the directory belongs to
/// another host) or is not a safe name; [`Error::Io`] when the file cannot be read or written.
pub fn host_id(dir: &Path, given: Option<&str>, zone: &str) -> Result<String> {
    let path = dir.join(HOST_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(kept) => {
            let kept = kept.trim().to_string();
            match given {
                Some(given) if given != kept => Err(Error::InvalidInput(format!(
                    "the data directory {} belongs to host {kept:?}, not {given:?}",
                    dir.display()
                ))),
                _ => Ok(kept),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = match given {
                Some(given) => given.to_string(),
                None => format!("host-{zone}-{}", random_hex()?),
            };
            if !is_safe_name(&id) {
                return Err(Error::InvalidInput(format!(
                    "host id {id:?} must be made of letters, digits, '-', '_' and '.'"
                )));
            }
            write_atomically(&path, format!("{id}\n").as_bytes())
                .map_err(|e| Error::io(&path, e))?;
            Ok(id)
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// 8 random hex digits from the kernel.
fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 4];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io(Path::new("/dev/urandom"), e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The assignments kept in `dir`; empty (generation 0) if none were ever received.
///
/// # Errors
///
/// [`Error::Io`] when the file exists but cannot be read, [`Error::InvalidData`] when it does
/// not parse: the agent must not guess what its host should run.
pub fn load_assignments(dir: &Path) -> Result<Assignments> {
    let path = dir.join(ASSIGNMENTS_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidData(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Assignments::default()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Keeps `assignments` in `dir`, atomically.
pub fn save_assignments(dir: &Path, assignments: &Assignments) -> Result<()> {
    let path = dir.join(ASSIGNMENTS_FILE);
    let bytes = serde_json::to_vec_pretty(assignments).expect("assignments serialize");
    write_atomically(&path, &bytes).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::tests::broker;

    #[test]
    fn the_host_id_is_kept_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let id = host_id(dir.path(), None, "a").unwrap();
        assert!(id.starts_with("host-a-") && id.len() == 15, "{id}");
        assert_eq!(host_id(dir.path(), None, "a").unwrap(), id);
        assert_eq!(host_id(dir.path(), Some(&id), "a").unwrap(), id);
        let err = host_id(dir.path(), Some("other"), "a").unwrap_err();
        assert!(err.to_string().contains("belongs to host"), "{err}");
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(host_id(fresh.path(), Some("h1"), "a").unwrap(), "h1");
        let unsafe_dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            host_id(unsafe_dir.path(), Some("../h1"), "a"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn one_agent_at_a_time_holds_a_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        assert!(err.to_string().contains("another agent"), "{err}");
        drop(held);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn assignments_round_trip_and_start_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_assignments(dir.path()).unwrap(),
            Assignments::default()
        );
        let assignments = Assignments {
            generation: 7,
            nodes: vec![broker("cl-1", 101)],
        };
        save_assignments(dir.path(), &assignments).unwrap();
        assert_eq!(load_assignments(dir.path()).unwrap(), assignments);
        fs::write(dir.path().join(ASSIGNMENTS_FILE), b"{").unwrap();
        assert!(matches!(
            load_assignments(dir.path()),
            Err(Error::InvalidData(_))
        ));
    }
}
