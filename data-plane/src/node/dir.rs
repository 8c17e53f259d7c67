//! The node's data directory: who owns it, and an exclusive lock while the node runs.
//!
//! `meta.properties` records the cluster id and node id the first time a node starts in a
//! directory (Kafka's format: `key=value` lines). Every later start checks them, so a node
//! refuses a directory that belongs to another cluster or another node instead of serving
//! someone else's data. A lock file held with an exclusive advisory lock stops two processes
//! from using one directory at once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::NodeError;
use crate::metadata::NodeId;
use crate::owner_only;

/// File naming the owner of the directory.
const META_PROPERTIES: &str = "meta.properties";
/// File locked while a node runs on the directory.
const LOCK_FILE: &str = ".lock";
/// Version of the meta.properties layout.
const META_VERSION: &str = "1";

/// A data directory claimed by this process. The lock is released when it is dropped.
#[derive(Debug)]
pub struct DataDir {
    /// Root of the directory.
    root: PathBuf,
    /// Cluster id recorded in meta.properties.
    cluster_id: String,
    /// Node id recorded in meta.properties.
    node_id: NodeId,
    /// Held for the life of the node.
    _lock: File,
}

impl DataDir {
    /// Opens `root` for `node_id`: creates and records ownership on first use, checks it
    /// afterwards, and takes the lock. `cluster_id`, if given, must match a recorded one.
    pub fn claim(
        root: &Path,
        node_id: NodeId,
        cluster_id: Option<&str>,
    ) -> Result<Self, NodeError> {
        let fail = |what: String| NodeError::DataDir(format!("{}: {what}", root.display()));
        owner_only::create_dir_all(root).map_err(|e| fail(format!("cannot create: {e}")))?;
        let lock = owner_only::create(&root.join(LOCK_FILE))
            .map_err(|e| fail(format!("cannot create lock file: {e}")))?;
        lock.try_lock()
            .map_err(|_| fail("in use by another process (lock held)".into()))?;
        let path = root.join(META_PROPERTIES);
        let cluster_id = match fs::read_to_string(&path) {
            Ok(text) => {
                let props = parse_properties(&text);
                let recorded_node = props.get("node.id").and_then(|v| v.parse::<NodeId>().ok());
                let recorded_cluster = props.get("cluster.id").cloned();
                let (Some(recorded_node), Some(recorded_cluster)) =
                    (recorded_node, recorded_cluster)
                else {
                    return Err(fail(format!(
                        "{META_PROPERTIES} lacks node.id or cluster.id"
                    )));
                };
                if recorded_node != node_id {
                    return Err(fail(format!(
                        "belongs to node {recorded_node}, not node {node_id}"
                    )));
                }
                if let Some(wanted) = cluster_id.filter(|w| *w != recorded_cluster) {
                    return Err(fail(format!(
                        "belongs to cluster {recorded_cluster}, not cluster {wanted}"
                    )));
                }
                recorded_cluster
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = cluster_id.map_or_else(new_cluster_id, str::to_string);
                write_properties(&path, node_id, &id)
                    .map_err(|e| fail(format!("cannot write {META_PROPERTIES}: {e}")))?;
                id
            }
            Err(e) => return Err(fail(format!("cannot read {META_PROPERTIES}: {e}"))),
        };
        Ok(Self {
            root: root.to_path_buf(),
            cluster_id,
            node_id,
            _lock: lock,
        })
    }

    /// The cluster this directory belongs to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The node id recorded for this directory.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Where a controller keeps its raft log and snapshots.
    pub fn quorum_dir(&self) -> PathBuf {
        self.root.join("quorum")
    }

    /// Where partition directories live.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The single-node metadata image file.
    pub fn metadata_image_path(&self) -> PathBuf {
        self.root.join("metadata").join("image")
    }
}

/// A fresh cluster id: 22 characters of URL-safe base64 from a random UUID, as Kafka makes.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn write_properties(path: &Path, node_id: NodeId, cluster_id: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = owner_only::create(&tmp)?;
    writeln!(
        file,
        "# Written by ferry node on first start; identifies the owner of this directory."
    )?;
    writeln!(
        file,
        "version={META_VERSION}\ncluster.id={cluster_id}\nnode.id={node_id}"
    )?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_ownership_and_refuses_another_cluster_or_node() {
        let root = tempfile::tempdir().unwrap();
        let first = DataDir::claim(root.path(), 1, None).unwrap();
        let cluster = first.cluster_id().to_string();
        assert_eq!(cluster.len(), 22);
        drop(first);
        assert_eq!(
            DataDir::claim(root.path(), 1, None).unwrap().cluster_id(),
            cluster
        );
        assert_eq!(
            DataDir::claim(root.path(), 1, Some(&cluster))
                .unwrap()
                .cluster_id(),
            cluster
        );
        let other_cluster = DataDir::claim(root.path(), 1, Some("other")).unwrap_err();
        assert!(
            other_cluster.to_string().contains("belongs to cluster"),
            "{other_cluster}"
        );
        let other_node = DataDir::claim(root.path(), 2, None).unwrap_err();
        assert!(
            other_node.to_string().contains("belongs to node 1"),
            "{other_node}"
        );
    }

    #[test]
    fn a_claimed_directory_and_its_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("node-1");
        let _dir = DataDir::claim(&root, 1, None).unwrap();
        assert_eq!(mode(&root), owner_only::DIR_MODE);
        assert_eq!(mode(&root.join(LOCK_FILE)), owner_only::FILE_MODE);
        assert_eq!(mode(&root.join(META_PROPERTIES)), owner_only::FILE_MODE);
    }

    #[test]
    fn a_directory_in_use_cannot_be_claimed_twice() {
        let root = tempfile::tempdir().unwrap();
        let _held = DataDir::claim(root.path(), 1, None).unwrap();
        let err = DataDir::claim(root.path(), 1, None).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }
}
