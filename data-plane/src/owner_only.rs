//! Files and directories only the node's own user may read: every directory a node creates
//! has mode [`DIR_MODE`] (0700) and every file [`FILE_MODE`] (0600).
//!
//! A node's directory holds its cluster's data (segments, indexes, checkpoints, producer
//! snapshots, the metadata log), which no other local user should read. The modes are given
//! when each file or directory is created, never widened or fixed up afterwards, so there is
//! no moment when another user could open one; a process umask can only narrow them. The
//! modes themselves are the quorum crate's, which writes raft logs the same way.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub use ferry_quorum::disk::{DIR_MODE, FILE_MODE};

/// Creates `path` and any missing parents with [`DIR_MODE`]; an existing directory is left
/// as it is.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Open options that create a missing file with [`FILE_MODE`]; set the access mode as usual.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates or truncates `path` for writing, as [`File::create`] does, with [`FILE_MODE`].
pub fn create(path: &Path) -> io::Result<File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Writes `bytes` to `path` (created or truncated), as [`std::fs::write`] does, with
/// [`FILE_MODE`].
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    create(path)?.write_all(bytes)
}
