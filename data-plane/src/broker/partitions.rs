//! The set of partitions this broker holds, and the metadata image it was reconciled with.
//!
//! [`Partitions`] owns the map from [`TopicPartition`] to [`Partition`], the image it last
//! applied, the partition directories under `log.dirs`, and the `appended` signal that wakes
//! long-polling fetches and acks=all produces. Applying an image ([`Partitions::apply_image`])
//! reconciles the map with it: logs are opened (with crash recovery) for partitions assigned
//! here, placement and configs of existing ones are updated, and the logs of partitions no
//! longer here are deleted. At start, directories no partition of the image owns are removed
//! ([`Partitions::open`]).
//!
//! The broker, the group coordinator and the replica fetchers share one `Arc<Partitions>`;
//! request handlers that only read partitions take a `&Partitions`.
//!
//! # Lock order
//! Applying an image holds the map's lock while it takes partition locks and the image's lock.
//! Nothing holding a partition lock takes the map's lock.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::now_ms;
use super::partition::{Partition, TopicPartition};
use crate::log::{FileLog, PartitionLog};
use crate::metadata::topic_config::TopicConfig;
use crate::metadata::{Image, NodeId, Topic, TopicId};
use crate::metrics::broker::{BrokerMetrics, PartitionSample, PartitionsView};

/// Name of the file in each partition directory recording which topic id the data belongs to.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// A broker error that prevents it from starting or applying metadata.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A partition's log could not be opened or removed.
    #[error("partition {partition:?}: {source}")]
    Log {
        /// Which partition.
        partition: TopicPartition,
        /// What the log reported.
        source: crate::log::Error,
    },
    /// A file outside the logs (directory listing, partition metadata) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The partitions held by one broker. Shared (`Arc<Partitions>`) by its request handlers, its
/// group coordinator and its replica fetchers.
pub struct Partitions {
    /// This broker's node id (which replicas are local).
    node_id: NodeId,
    /// `log.dirs`: one directory per partition below it.
    log_dir: PathBuf,
    /// The broker's static topic defaults, before the image's dynamic broker configs.
    topic_defaults: TopicConfig,
    /// The image the partitions were last reconciled with.
    image: RwLock<Arc<Image>>,
    /// Partitions held here.
    by_id: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped after every append, so long-polling fetches wake up.
    appended: watch::Sender<u64>,
    /// Per-topic traffic counters; `None` when metrics are off.
    metrics: Option<Arc<BrokerMetrics>>,
}

impl Partitions {
    /// Opens the partitions of `image` assigned to `node_id` under `log_dir` (which runs crash
    /// recovery on every one), and removes directories no partition of `image` owns.
    pub fn open(
        node_id: NodeId,
        log_dir: PathBuf,
        topic_defaults: TopicConfig,
        image: &Arc<Image>,
        metrics: Option<Arc<BrokerMetrics>>,
    ) -> Result<Self, Error> {
        crate::owner_only::create_dir_all(&log_dir).map_err(|source| Error::Io {
            path: log_dir.clone(),
            source,
        })?;
        let partitions = Self {
            node_id,
            log_dir,
            topic_defaults,
            image: RwLock::new(image.clone()),
            by_id: RwLock::new(HashMap::new()),
            appended: watch::channel(0).0,
            metrics,
        };
        partitions.apply_image(image)?;
        partitions.remove_stray_logs(image)?;
        Ok(partitions)
    }

    /// This broker's node id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// `log.dirs`: the directory holding one directory per partition.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Total and available bytes of the file system holding `log.dirs` (statvfs).
    pub fn log_dir_space(&self) -> std::io::Result<(i64, i64)> {
        file_system_space(&self.log_dir)
    }

    /// The metadata image the partitions were last reconciled with.
    pub fn image(&self) -> Arc<Image> {
        self.image.read().expect("image lock poisoned").clone()
    }

    /// The partition, if this broker holds it.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let key = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        self.by_id
            .read()
            .expect("partitions lock poisoned")
            .get(&key)
            .cloned()
    }

    /// Every partition held here, sorted by topic and index.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        let mut all: Vec<_> = self
            .by_id
            .read()
            .expect("partitions lock poisoned")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// The broker's metrics, unless they are off.
    pub fn metrics(&self) -> Option<&BrokerMetrics> {
        self.metrics.as_deref()
    }

    /// Notifies long-polling fetches (and waiting acks=all writes) that something changed.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every [`Self::notify_appended`].
    pub fn subscribe_appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Rolls segments past `segment.ms`, expires idle producers and enforces retention on every
    /// partition, as of `now`.
    pub fn maintain_logs(&self, now: i64, producer_id_expiration_ms: i64) {
        for partition in self.all() {
            let mut inner = partition.lock();
            if let Err(e) = inner.log.maybe_roll(now) {
                tracing::warn!(partition = ?partition.id, error = %e, "segment roll failed");
            }
            inner.maintain_producers(now, producer_id_expiration_ms);
            let high_watermark = inner.high_watermark;
            match inner.log.enforce_retention(now, high_watermark) {
                Ok(outcome) => tracing::debug!(partition = ?partition.id, ?outcome, "retention"),
                Err(e) => tracing::warn!(partition = ?partition.id, error = %e, "retention failed"),
            }
        }
    }

    /// Flushes every partition's log to disk and snapshots its producers (clean shutdown).
    pub fn flush_all(&self) {
        for partition in self.all() {
            let mut inner = partition.lock();
            if let Err(e) = inner.log.flush() {
                tracing::error!(partition = ?partition.id, error = %e, "flush failed");
            }
            inner.snapshot_producers();
        }
    }

    /// Reconciles local partitions with `image`: opens logs for partitions assigned to this
    /// broker, updates placement and configs of existing ones, deletes the rest. Idempotent.
    pub fn apply_image(&self, image: &Arc<Image>) -> Result<(), Error> {
        let mut partitions = self.by_id.write().expect("partitions lock poisoned");
        {
            let current = self.image.read().expect("image lock poisoned");
            if current.offset > image.offset && !partitions.is_empty() {
                return Ok(()); // an older image raced a newer one; the newer already applied
            }
        }
        let wanted = self.wanted_partitions(image);
        let topic_defaults = self.topic_defaults(image);
        let stale: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(id, p)| {
                wanted
                    .get(*id)
                    .is_none_or(|(topic, _)| topic.id != p.topic_id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            if let Some(partition) = partitions.remove(id) {
                partition.lock().log.discard();
                drop(partition);
                self.delete_partition_dir(id)?;
                tracing::info!(partition = ?id, "deleted partition");
            }
        }
        if let Some(metrics) = &self.metrics {
            // A topic's traffic series go with its last partition here (a deleted topic, or
            // one reassigned away); a topic re-created under the name keeps counting on.
            for id in &stale {
                let held = wanted.keys().any(|w| w.topic == id.topic)
                    || partitions.keys().any(|p| p.topic == id.topic);
                if !held {
                    metrics.forget_topic(&id.topic);
                }
            }
        }
        for (id, (topic, index)) in wanted {
            let state = topic.partitions[index].clone();
            let config = topic_defaults
                .with_overrides(&topic.configs)
                .unwrap_or_else(|e| {
                    tracing::warn!(topic = topic.name, error = %e, "invalid topic config; using defaults");
                    topic_defaults.clone()
                });
            match partitions.get(&id) {
                Some(existing) => existing.update(state, config),
                None => {
                    let log = self.open_log(&id, topic.id, &config)?;
                    let traffic = self.metrics.as_ref().map(|m| m.topic(&id.topic));
                    let partition = Partition::new(
                        id.clone(),
                        topic.id,
                        self.node_id,
                        log,
                        config,
                        state,
                        traffic,
                    );
                    partition
                        .lock()
                        .recover_producers(Some(self.partition_dir(&id)));
                    partitions.insert(id, Arc::new(partition));
                }
            }
        }
        *self.image.write().expect("image lock poisoned") = image.clone();
        drop(partitions);
        // Leadership or ISR may have changed: waiting acks=all writes re-check their outcome.
        self.notify_appended();
        Ok(())
    }

    /// This broker's topic defaults under `image`: its static ones with the dynamic broker
    /// configs of the image applied (cluster-wide, then its own).
    pub fn topic_defaults(&self, image: &Image) -> TopicConfig {
        let base = &self.topic_defaults;
        image
            .broker_configs
            .topic_defaults(self.node_id, base)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "invalid dynamic broker config; using static defaults");
                base.clone()
            })
    }

    /// The partitions of `image` that have a replica on this broker.
    fn wanted_partitions<'a>(
        &self,
        image: &'a Image,
    ) -> HashMap<TopicPartition, (&'a Topic, usize)> {
        let mut wanted = HashMap::new();
        for topic in image.topics.values() {
            for (index, state) in topic.partitions.iter().enumerate() {
                if state.replicas.contains(&self.node_id) {
                    let id = TopicPartition {
                        topic: topic.name.clone(),
                        partition: index as i32,
                    };
                    wanted.insert(id, (topic, index));
                }
            }
        }
        wanted
    }

    /// Opens (recovering) the log of a partition, first discarding a directory left behind
    /// by an earlier topic of the same name.
    fn open_log(
        &self,
        id: &TopicPartition,
        topic_id: TopicId,
        config: &TopicConfig,
    ) -> Result<Box<dyn PartitionLog>, Error> {
        let dir = self.partition_dir(id);
        let marker = dir.join(PARTITION_METADATA_FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        match fs::read_to_string(&marker) {
            Ok(text) if text.contains(&topic_id.to_string()) => {}
            Ok(_) => {
                tracing::warn!(partition = ?id, "removing data of a deleted topic with the same name");
                fs::remove_dir_all(&dir).map_err(io(&dir))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    path: marker,
                    source: e,
                });
            }
        }
        crate::owner_only::create_dir_all(&dir).map_err(io(&dir))?;
        if !marker.exists() {
            crate::owner_only::write(
                &marker,
                format!("version: 0\ntopic_id: {topic_id}\n").as_bytes(),
            )
            .map_err(io(&marker))?;
        }
        let log =
            FileLog::open(&dir, config.log.clone(), now_ms()).map_err(|source| Error::Log {
                partition: id.clone(),
                source,
            })?;
        Ok(Box::new(log))
    }

    /// Removes partition directories that no partition of `image` owns (left by a crash
    /// between a topic deletion and the removal of its files).
    fn remove_stray_logs(&self, image: &Image) -> Result<(), Error> {
        let wanted = self.wanted_partitions(image);
        let entries = fs::read_dir(&self.log_dir).map_err(|source| Error::Io {
            path: self.log_dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join(PARTITION_METADATA_FILE).exists() {
                continue; // not a partition directory of ours
            }
            let owned = wanted.keys().any(|id| self.partition_dir(id) == path);
            if !owned {
                tracing::info!(dir = %path.display(), "removing stray partition directory");
                fs::remove_dir_all(&path).map_err(|source| Error::Io { path, source })?;
            }
        }
        Ok(())
    }

    fn delete_partition_dir(&self, id: &TopicPartition) -> Result<(), Error> {
        let dir = self.partition_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path: dir, source }),
        }
    }

    /// `<log_dir>/<topic>-<partition>`, as Kafka names it.
    fn partition_dir(&self, id: &TopicPartition) -> PathBuf {
        self.log_dir.join(format!("{}-{}", id.topic, id.partition))
    }
}

/// Total and available bytes of the file system holding `dir`.
fn file_system_space(dir: &Path) -> std::io::Result<(i64, i64)> {
    let stat = rustix::fs::statvfs(dir)?;
    let block = stat.f_frsize;
    let total = stat.f_blocks.saturating_mul(block);
    let usable = stat.f_bavail.saturating_mul(block);
    Ok((
        i64::try_from(total).unwrap_or(i64::MAX),
        i64::try_from(usable).unwrap_or(i64::MAX),
    ))
}

impl PartitionsView for Partitions {
    /// One partition lock at a time, after the map's lock is released (the lock order above).
    fn each_partition(&self, each: &mut dyn FnMut(PartitionSample)) {
        for partition in self.all() {
            let inner = partition.lock();
            let leader = inner.is_leader(self.node_id);
            let isr = inner.state.isr.len();
            each(PartitionSample {
                topic: partition.id.topic.clone(),
                partition: partition.id.partition,
                leader,
                under_replicated: leader && isr < inner.state.replicas.len(),
                under_min_isr: leader && (isr as i32) < inner.config.min_insync_replicas,
                size_bytes: inner.log.size_bytes(),
                log_start_offset: inner.log.log_start_offset(),
                log_end_offset: inner.log.log_end_offset(),
            });
        }
    }
}
