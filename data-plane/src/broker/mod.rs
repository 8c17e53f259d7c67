//! The broker: serves Kafka requests over the partitions this node holds.
//!
//! [`Broker::handle`] is the request router: one match arm per API key, each calling the
//! handler in the file named after the API (`produce.rs`, `fetch.rs`, …). Adding an API means a
//! new file, a new arm, and a line in [`crate::protocol::versions::SUPPORTED_APIS`].
//!
//! # Replication
//! - [`replica`]: the leader's sans-IO view of its followers (high watermark, ISR changes).
//! - [`divergence`]: the sans-IO truncation decisions after a leader change.
//! - [`fetcher`]: followers' fetcher tasks and the leader's ISR checks (the I/O shell);
//!   `fetch.rs` serves followers with the same handler as consumers.
//! - [`idempotence`]: idempotent producers' per-partition state on every replica (checked on
//!   produce, rebuilt from replicated batches, snapshots and truncations); ids come from
//!   `init_producer_id.rs`.
//!
//! # Consumer groups
//! `group_coordinator.rs` is the I/O shell of the classic group coordinator (the decisions are
//! in [`crate::group`]); the group APIs (`find_coordinator.rs`, `join_group.rs`, …) call it.
//!
//! The broker follows the metadata [`Authority`]: every new image is reconciled into the set of
//! local partitions ([`Broker::apply_image`]), creating logs for partitions assigned here and
//! deleting the logs of topics that are gone. Admin requests go to the authority and are answered
//! once it has committed them and this broker has applied the result.

mod api_versions;
mod config;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
mod describe_quorum;
pub mod divergence;
mod fetch;
pub mod fetcher;
mod find_coordinator;
pub mod group_coordinator;
mod heartbeat;
pub mod idempotence;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
pub mod partition;
mod produce;
pub mod replica;
mod sync_group;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{RequestKind, ResponseKind};
use tokio::sync::watch;

use crate::log::{FileLog, PartitionLog};
use crate::metadata::{Authority, Image, NodeId, Topic, TopicId};
use crate::protocol::request::Request;
pub use config::BrokerConfig;
use partition::{Partition, TopicPartition};

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

/// What the connection does after a request.
#[derive(Debug)]
pub enum Reply {
    /// Send this response (boxed: responses are large).
    Respond(Box<ResponseKind>),
    /// Send nothing (a successful acks=0 produce).
    Silent,
    /// Send nothing and close the connection, so the client notices the failure and refreshes
    /// its metadata (a failed acks=0 produce, as Kafka does).
    Close(String),
}

/// Serves Kafka requests for one node. Shared by every connection (`Arc<Broker>`).
pub struct Broker {
    /// Settings.
    config: BrokerConfig,
    /// Where metadata comes from and admin changes go.
    authority: Arc<dyn Authority>,
    /// The image the partitions were last reconciled with.
    image: RwLock<Arc<Image>>,
    /// Partitions held here.
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped after every append, so long-polling fetches wake up.
    appended: watch::Sender<u64>,
    /// Producer ids for InitProducerId, in blocks from the authority.
    producer_ids: Arc<init_producer_id::ProducerIdAllocator>,
    /// Consumer groups coordinated here (`group_coordinator.rs`).
    groups: group_coordinator::GroupCoordinator,
}

impl Broker {
    /// Opens the broker: reconciles the local logs with the authority's current image (which
    /// runs crash recovery on every partition).
    pub fn open(config: BrokerConfig, authority: Arc<dyn Authority>) -> Result<Arc<Self>, Error> {
        crate::owner_only::create_dir_all(&config.log_dir).map_err(|source| Error::Io {
            path: config.log_dir.clone(),
            source,
        })?;
        let image = authority.image();
        let authority_for_ids = authority.clone();
        let config_node_id = config.node_id;
        let broker = Arc::new(Self {
            groups: group_coordinator::GroupCoordinator::new(config.groups.clone()),
            config,
            authority,
            image: RwLock::new(image.clone()),
            partitions: RwLock::new(HashMap::new()),
            appended: watch::channel(0).0,
            producer_ids: Arc::new(init_producer_id::ProducerIdAllocator::new(
                authority_for_ids,
                config_node_id,
            )),
        });
        broker.apply_image(&image)?;
        broker.remove_stray_logs(&image)?;
        Ok(broker)
    }

    /// This broker's node id.
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The metadata image the broker serves from.
    pub fn image(&self) -> Arc<Image> {
        self.image.read().expect("image lock poisoned").clone()
    }

    /// The partition, if this broker holds it.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let key = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        self.partitions
            .read()
            .expect("partitions lock poisoned")
            .get(&key)
            .cloned()
    }

    /// Every partition held here, sorted by topic and index.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        let mut all: Vec<_> = self
            .partitions
            .read()
            .expect("partitions lock poisoned")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Handles one request.
    pub async fn handle(&self, request: Request) -> Reply {
        let version = request.version;
        Reply::Respond(Box::new(match request.body {
            RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(&r)),
            RequestKind::Metadata(r) => ResponseKind::Metadata(self.metadata(r, version).await),
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(self.create_topics(r, version).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(self.delete_topics(r, version).await)
            }
            RequestKind::Produce(r) => return self.produce(r, version).await,
            RequestKind::Fetch(r) => ResponseKind::Fetch(self.fetch(r, version).await),
            RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(self.list_offsets(r, version)),
            RequestKind::CreatePartitions(r) => {
                ResponseKind::CreatePartitions(self.create_partitions(r).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(self.describe_configs(r, version))
            }
            RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(self.alter_configs(r).await),
            RequestKind::IncrementalAlterConfigs(r) => {
                ResponseKind::IncrementalAlterConfigs(self.incremental_alter_configs(r).await)
            }
            RequestKind::OffsetForLeaderEpoch(r) => {
                ResponseKind::OffsetForLeaderEpoch(self.offset_for_leader_epoch(r))
            }
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(self.init_producer_id(r, version).await)
            }
            RequestKind::DescribeQuorum(r) => {
                ResponseKind::DescribeQuorum(self.describe_quorum(r, version).await)
            }
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(self.delete_records(r).await)
            }
            RequestKind::DescribeLogDirs(r) => {
                ResponseKind::DescribeLogDirs(self.describe_log_dirs(r, version))
            }
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(self.describe_cluster(r))
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(self.find_coordinator(r, version))
            }
            RequestKind::JoinGroup(r) => {
                let client_id = request.header.client_id.as_deref().unwrap_or_default();
                ResponseKind::JoinGroup(self.join_group(r, version, client_id).await)
            }
            RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(self.sync_group(r, version).await),
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(self.heartbeat(r)),
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(self.leave_group(r, version).await)
            }
            RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(self.offset_commit(r).await),
            RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(self.offset_fetch(r, version)),
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(self.list_groups(r)),
            RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(self.describe_groups(r)),
            RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(self.delete_groups(r).await),
            RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(self.offset_delete(r).await),
            other => unreachable!(
                "the decoder only admits APIs in SUPPORTED_APIS, which all have a route: {:?}",
                std::mem::discriminant(&other)
            ),
        }))
    }

    /// Follows the authority: applies every new image until `shutdown` resolves.
    pub async fn follow_metadata(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut images = self.authority.subscribe();
        tokio::pin!(shutdown);
        loop {
            let image = images.borrow_and_update().clone();
            if let Err(e) = self.apply_image(&image) {
                tracing::error!(error = %e, offset = image.offset, "could not apply metadata image");
            }
            tokio::select! {
                changed = images.changed() => if changed.is_err() { return },
                _ = &mut shutdown => return,
            }
        }
    }

    /// Rolls segments past `segment.ms` and enforces retention on every partition, every
    /// `log.retention.check.interval.ms`, until `shutdown` resolves.
    pub async fn run_log_maintenance(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut ticker = tokio::time::interval(self.config.retention_check_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.maintain_logs(),
                _ = &mut shutdown => return,
            }
        }
    }

    /// One pass of [`Self::run_log_maintenance`].
    pub fn maintain_logs(&self) {
        let now = now_ms();
        for partition in self.partitions() {
            let mut inner = partition.lock();
            if let Err(e) = inner.log.maybe_roll(now) {
                tracing::warn!(partition = ?partition.id, error = %e, "segment roll failed");
            }
            inner.maintain_producers(now, self.config.producer_id_expiration_ms);
            let high_watermark = inner.high_watermark;
            match inner.log.enforce_retention(now, high_watermark) {
                Ok(outcome) => tracing::debug!(partition = ?partition.id, ?outcome, "retention"),
                Err(e) => tracing::warn!(partition = ?partition.id, error = %e, "retention failed"),
            }
        }
    }

    /// Flushes every partition's log to disk (clean shutdown).
    pub fn flush_all(&self) {
        for partition in self.partitions() {
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
        let mut partitions = self.partitions.write().expect("partitions lock poisoned");
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
        for id in stale {
            if let Some(partition) = partitions.remove(&id) {
                partition.lock().log.discard();
                drop(partition);
                self.delete_partition_dir(&id)?;
                tracing::info!(partition = ?id, "deleted partition");
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
                    let partition =
                        Partition::new(id.clone(), topic.id, self.node_id(), log, config, state);
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
    fn topic_defaults(&self, image: &Image) -> crate::metadata::topic_config::TopicConfig {
        let base = &self.config.topic_defaults.config;
        image
            .broker_configs
            .topic_defaults(self.node_id(), base)
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
                if state.replicas.contains(&self.node_id()) {
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
        config: &crate::metadata::topic_config::TopicConfig,
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
        let entries = fs::read_dir(&self.config.log_dir).map_err(|source| Error::Io {
            path: self.config.log_dir.clone(),
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
        self.config
            .log_dir
            .join(format!("{}-{}", id.topic, id.partition))
    }

    /// Applies the authority's latest image now, so the answer to an admin request reflects it.
    fn refresh_image(&self) {
        let latest = self.authority.image();
        if let Err(e) = self.apply_image(&latest) {
            tracing::error!(error = %e, "could not apply metadata after an admin request");
        }
    }

    /// Notifies long-polling fetches that data arrived.
    fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Wall-clock milliseconds since the Unix epoch (Kafka's timestamp unit).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
