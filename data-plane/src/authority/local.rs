//! The single-node metadata authority: a controller without a quorum.
//!
//! Used when a node runs alone (`ferry node` without `--controller-quorum`, `ferry dev`). It
//! runs the same deterministic controller logic as the quorum ([`crate::controller::execute()`]
//! over a [`MetadataImage`]), so validation, placement and records are identical; only the
//! replication is missing. The image lives in one file in the node's data directory, replaced
//! atomically (write to a temporary file, fsync, rename, fsync the directory) on every change,
//! and a change is acknowledged only after that.
//!
//! # Caveats
//! Only this node is registered, so topics can have a replication factor of 1.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use tokio::sync::watch;

use super::{Authority, QuorumState};
use crate::controller::image::CLIENT_LISTENER;
use crate::controller::{Command, CommandResult, Limits, Listener, MetadataImage, execute};
use crate::metadata::{AdminError, BrokerInfo, Image, NodeId};

/// Options of the local authority.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// File holding the image.
    pub path: PathBuf,
    /// Cluster id for a new image; an existing image must carry the same id.
    pub cluster_id: String,
    /// This node, the only broker.
    pub broker: BrokerInfo,
    /// Topic defaults and bounds.
    pub limits: Limits,
}

/// The single-node authority. See the module docs.
pub struct LocalAuthority {
    /// Options it was opened with.
    options: LocalOptions,
    /// The current image; the lock serialises changes.
    image: Mutex<Arc<MetadataImage>>,
    /// Publishes the client view of every new image.
    published: watch::Sender<Arc<Image>>,
}

impl LocalAuthority {
    /// Loads the image from `options.path`, or starts an empty one, and registers this node as
    /// the cluster's unfenced broker with its current address.
    pub fn open(options: LocalOptions) -> std::io::Result<Self> {
        let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        let image = match fs::read(&options.path) {
            Ok(bytes) => MetadataImage::decode(&bytes).map_err(|e| {
                invalid(format!(
                    "metadata image {} is unreadable: {e}",
                    options.path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                MetadataImage::new(options.cluster_id.clone())
            }
            Err(e) => return Err(e),
        };
        if image.cluster_id() != options.cluster_id {
            return Err(invalid(format!(
                "metadata image {} belongs to cluster {}, not {}",
                options.path.display(),
                image.cluster_id(),
                options.cluster_id
            )));
        }
        let view = Arc::new(client_view(&image, options.broker.node_id));
        let authority = Self {
            options,
            image: Mutex::new(Arc::new(image)),
            published: watch::channel(view).0,
        };
        authority.register_self()?;
        Ok(authority)
    }

    /// Registers this node (again, if its address changed) and unfences it.
    fn register_self(&self) -> std::io::Result<()> {
        let broker = &self.options.broker;
        let listener = Listener {
            name: CLIENT_LISTENER.to_string(),
            host: broker.host.clone(),
            port: broker.port,
            security_protocol: "PLAINTEXT".to_string(),
        };
        let current = self.image.lock().expect("metadata lock poisoned").clone();
        let registered = current.broker(broker.node_id);
        let unchanged = registered.is_some_and(|b| {
            b.listeners == [listener.clone()] && b.rack == broker.rack && !b.fenced
        });
        if unchanged {
            return Ok(());
        }
        let register = Command::RegisterBroker {
            broker_id: broker.node_id,
            // The same incarnation as before: this is the same broker coming back.
            incarnation_id: registered.map_or_else(uuid::Uuid::new_v4, |b| b.incarnation_id),
            listeners: vec![listener],
            rack: broker.rack.clone(),
            cluster_id: self.options.cluster_id.clone(),
        };
        let failed = |e: AdminError| std::io::Error::other(e.message);
        let epoch = match self.run(&register).map_err(failed)? {
            CommandResult::RegisterBroker(Ok(epoch)) => epoch,
            other => {
                return Err(std::io::Error::other(format!(
                    "registration refused: {other:?}"
                )));
            }
        };
        let unfence = Command::UnfenceBroker {
            broker_id: broker.node_id,
            broker_epoch: epoch,
        };
        match self.run(&unfence).map_err(failed)? {
            CommandResult::UnfenceBroker(Ok(())) => Ok(()),
            other => Err(std::io::Error::other(format!(
                "unfencing refused: {other:?}"
            ))),
        }
    }

    /// Executes `command` against the image as the next batch, persists and publishes the
    /// result. A command that writes no records changes nothing.
    fn run(&self, command: &Command) -> Result<CommandResult, AdminError> {
        let mut current = self.image.lock().expect("metadata lock poisoned");
        let offset = current.offset() + 1;
        let (records, result) = execute(&current, offset, command, &self.options.limits);
        if records.is_empty() {
            return Ok(result);
        }
        let mut next = (**current).clone();
        for record in &records {
            next.apply(offset, record);
        }
        write_atomically(&self.options.path, &next.encode()).map_err(|e| {
            AdminError::new(
                ResponseError::KafkaStorageError,
                format!("could not persist the metadata image: {e}"),
            )
        })?;
        *current = Arc::new(next);
        self.published
            .send_replace(Arc::new(client_view(&current, self.options.broker.node_id)));
        Ok(result)
    }
}

impl Authority for LocalAuthority {
    fn image(&self) -> Arc<Image> {
        self.published.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.published.subscribe()
    }

    fn metadata_image(&self) -> Arc<MetadataImage> {
        self.image.lock().expect("metadata lock poisoned").clone()
    }

    fn execute(&self, command: Command) -> BoxFuture<'_, Result<CommandResult, AdminError>> {
        Box::pin(async move { self.run(&command) })
    }

    /// The epoch of this node's own registration (it registers itself on open).
    fn broker_epoch(&self) -> i64 {
        let image = self.image.lock().expect("metadata lock poisoned");
        image
            .broker(self.options.broker.node_id)
            .map_or(-1, |b| b.broker_epoch)
    }

    /// A single node is a quorum of one: itself, always the leader, in epoch 1.
    fn describe_quorum(&self) -> BoxFuture<'_, Result<QuorumState, AdminError>> {
        use ferry_proto::controller::v1::{Endpoint, ReplicaState};
        Box::pin(async move {
            let image = self.image();
            let broker = &self.options.broker;
            Ok(QuorumState {
                leader_id: broker.node_id,
                leader_epoch: 1,
                high_watermark: image.offset,
                voters: vec![ReplicaState {
                    replica_id: broker.node_id,
                    log_end_offset: image.offset as i64,
                    last_fetch_timestamp: -1,
                    last_caught_up_timestamp: -1,
                }],
                observers: vec![],
                endpoints: vec![Endpoint {
                    node_id: broker.node_id,
                    host: broker.host.clone(),
                    port: i32::from(broker.port),
                }],
                cluster_id: image.cluster_id.clone(),
            })
        })
    }
}

/// The client view, with this node named as the controller.
fn client_view(image: &MetadataImage, node_id: NodeId) -> Image {
    image.to_client_image(node_id)
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new file, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::owner_only::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = crate::owner_only::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{NewTopic, TopicRef};

    fn authority(dir: &Path, port: u16) -> LocalAuthority {
        LocalAuthority::open(LocalOptions {
            path: dir.join("image"),
            cluster_id: "test-cluster".into(),
            broker: BrokerInfo {
                node_id: 1,
                host: "127.0.0.1".into(),
                port,
                rack: None,
            },
            limits: Limits::default(),
        })
        .unwrap()
    }

    fn topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: Some(partitions),
            replication_factor: None,
            assignments: vec![],
            configs: vec![],
        }
    }

    #[tokio::test]
    async fn the_node_is_its_own_unfenced_broker_and_controller() {
        let dir = tempfile::tempdir().unwrap();
        let image = authority(dir.path(), 9092).image();
        assert_eq!(image.brokers.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(image.brokers[&1].port, 9092);
        assert_eq!(image.controller_id, 1);
    }

    #[tokio::test]
    async fn topics_survive_a_reopen_on_a_new_port_and_keep_their_leader() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path(), 9092);
        let created = auth
            .create_topics(vec![topic("a", 3), topic("b", 1)], false)
            .await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        let deleted = auth.delete_topics(vec![TopicRef::Name("b".into())]).await;
        assert!(deleted[0].is_ok());
        drop(auth);
        let reopened = authority(dir.path(), 9093);
        let image = reopened.image();
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(image.brokers[&1].port, 9093);
        let a = &image.topics["a"];
        assert_eq!(a.id, created[0].as_ref().unwrap().id);
        assert!(
            a.partitions.iter().all(|p| p.leader == 1 && p.isr == [1]),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn each_topic_gets_its_own_error_and_the_rest_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path(), 9092);
        auth.create_topics(vec![topic("exists", 1)], false).await;
        let mut bad_factor = topic("rf3", 1);
        bad_factor.replication_factor = Some(3);
        let topics = vec![
            topic("exists", 1),
            topic("bad name", 1),
            topic("zero", 0),
            bad_factor,
            topic("ok", 2),
        ];
        let results = auth.create_topics(topics, false).await;
        let codes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                Some(ResponseError::TopicAlreadyExists),
                Some(ResponseError::InvalidTopicException),
                Some(ResponseError::InvalidPartitions),
                Some(ResponseError::InvalidReplicationFactor),
                None
            ]
        );
        assert!(auth.image().topics.contains_key("ok"));
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let auth = authority(dir.path(), 9092);
        let before = auth.image();
        assert!(auth.create_topics(vec![topic("t", 1)], true).await[0].is_ok());
        assert_eq!(auth.image(), before);
    }

    #[tokio::test]
    async fn an_image_of_another_cluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        authority(dir.path(), 9092);
        let err = LocalAuthority::open(LocalOptions {
            path: dir.path().join("image"),
            cluster_id: "other".into(),
            broker: BrokerInfo {
                node_id: 1,
                host: "h".into(),
                port: 1,
                rack: None,
            },
            limits: Limits::default(),
        })
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("belongs to cluster test-cluster"),
            "{err}"
        );
    }
}
