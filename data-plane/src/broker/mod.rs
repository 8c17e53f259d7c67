//! The broker: serves Kafka requests over the partitions this node holds.
//!
//! [`Broker::handle`] is the request router: one match arm per API key, each calling the
//! handler in the file named after the API (`produce.rs`, `fetch.rs`, …). Adding an API means a
//! new file, a new arm, and a line in [`crate::protocol::versions::SUPPORTED_APIS`].
//!
//! # Who owns what
//! The [`Broker`] holds its settings, the metadata [`Authority`] handle and the owners of the
//! state; each handler is given only the owner it works on:
//! - [`Partitions`] (`partitions.rs`): the partitions held here, the image they were reconciled
//!   with, their directories and the `appended` signal. Handlers that only read and write
//!   partitions (`produce.rs`, `fetch.rs`, `list_offsets.rs`, `offset_for_leader_epoch.rs`,
//!   `delete_records.rs`, `describe_log_dirs.rs`) are free functions `handle(&Partitions, …)`.
//! - [`GroupCoordinator`] (`group_coordinator.rs`): the group APIs are its methods.
//! - The producer id allocator (`init_producer_id.rs`): InitProducerId takes only it.
//! - Handlers that send admin requests to the authority and then apply the committed image
//!   (`create_topics.rs`, `delete_topics.rs`, `create_partitions.rs`, `metadata.rs`,
//!   `configs.rs`) and the replica fetchers ([`fetcher`]) stay methods of the broker.
//! - The security admin APIs (`describe_acls.rs`, `create_acls.rs`, `delete_acls.rs`,
//!   `describe_user_scram_credentials.rs`, `alter_user_scram_credentials.rs`) are methods of
//!   the broker too: they read the controllers' image through the authority and propose the
//!   security commands to it. None checks authorization yet (every caller may do everything).
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
//! [`group_coordinator`] is the I/O shell of the classic group coordinator (the decisions are
//! in [`crate::group`]); the group APIs (`find_coordinator.rs`, `join_group.rs`, …) are methods
//! of its [`GroupCoordinator`].
//!
//! The broker follows the metadata [`Authority`]: every new image is reconciled into the set of
//! local partitions ([`Partitions::apply_image`]), creating logs for partitions assigned here and
//! deleting the logs of topics that are gone. Admin requests go to the authority and are answered
//! once it has committed them and this broker has applied the result.

mod alter_user_scram_credentials;
mod api_versions;
mod config;
mod configs;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
mod describe_quorum;
mod describe_user_scram_credentials;
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
pub mod partitions;
mod produce;
pub mod replica;
mod sasl;
mod sync_group;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::authority::Authority;
use crate::metadata::{Image, NodeId};
use crate::metrics::broker::BrokerMetrics;
use crate::protocol::request::Request;
pub use config::{BrokerConfig, DEFAULT_CONNECTIONS_MAX_IDLE_MS, DEFAULT_MAX_CONNECTIONS_PER_IP};
use group_coordinator::GroupCoordinator;
pub use partitions::{Error, Partitions};

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
    /// Partitions held here, and the image they were reconciled with (`partitions.rs`).
    partitions: Arc<Partitions>,
    /// Producer ids for InitProducerId, in blocks from the authority.
    producer_ids: Arc<init_producer_id::ProducerIdAllocator>,
    /// Consumer groups coordinated here (`group_coordinator.rs`).
    groups: GroupCoordinator,
    /// Request, connection and traffic metrics; `None` when metrics are off.
    metrics: Option<Arc<BrokerMetrics>>,
}

impl Broker {
    /// Opens the broker: reconciles the local logs with the authority's current image (which
    /// runs crash recovery on every partition). `metrics` counts its requests and traffic.
    pub fn open(
        config: BrokerConfig,
        authority: Arc<dyn Authority>,
        metrics: Option<Arc<BrokerMetrics>>,
    ) -> Result<Arc<Self>, Error> {
        let partitions = Arc::new(Partitions::open(
            config.node_id,
            config.log_dir.clone(),
            config.topic_defaults.config.clone(),
            &authority.image(),
            metrics.clone(),
        )?);
        Ok(Arc::new(Self {
            groups: GroupCoordinator::new(
                config.groups.clone(),
                partitions.clone(),
                authority.clone(),
            ),
            producer_ids: Arc::new(init_producer_id::ProducerIdAllocator::new(
                authority.clone(),
                config.node_id,
            )),
            partitions,
            config,
            authority,
            metrics,
        }))
    }

    /// The broker's metrics, unless they are off.
    pub fn metrics(&self) -> Option<&Arc<BrokerMetrics>> {
        self.metrics.as_ref()
    }

    /// The partitions held here, shared (the metrics' scrape-time gauges read them).
    pub fn shared_partitions(&self) -> &Arc<Partitions> {
        &self.partitions
    }

    /// This broker's node id.
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The metadata image the broker serves from.
    pub fn image(&self) -> Arc<Image> {
        self.partitions.image()
    }

    /// The partitions held here.
    pub fn partitions(&self) -> &Partitions {
        &self.partitions
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
            RequestKind::Produce(r) => return produce::handle(&self.partitions, r, version).await,
            RequestKind::Fetch(r) => {
                ResponseKind::Fetch(fetch::handle(&self.partitions, r, version).await)
            }
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(&self.partitions, r, version))
            }
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
            RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
                offset_for_leader_epoch::handle(&self.partitions, r),
            ),
            RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(
                init_producer_id::handle(&self.producer_ids, r, version).await,
            ),
            RequestKind::DescribeQuorum(r) => ResponseKind::DescribeQuorum(
                describe_quorum::handle(self.authority.as_ref(), r, version).await,
            ),
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(delete_records::handle(&self.partitions, r).await)
            }
            RequestKind::DescribeLogDirs(r) => ResponseKind::DescribeLogDirs(
                describe_log_dirs::handle(&self.partitions, r, version),
            ),
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(describe_cluster::handle(&self.image(), r))
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(self.groups.find_coordinator(r, version))
            }
            RequestKind::JoinGroup(r) => {
                let client_id = request.header.client_id.as_deref().unwrap_or_default();
                ResponseKind::JoinGroup(self.groups.join_group(r, version, client_id).await)
            }
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(self.groups.sync_group(r, version).await)
            }
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(self.groups.heartbeat(r)),
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(self.groups.leave_group(r, version).await)
            }
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(self.groups.offset_commit(r).await)
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(self.groups.offset_fetch(r, version))
            }
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(self.groups.list_groups(r)),
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(self.groups.describe_groups(r))
            }
            RequestKind::DeleteGroups(r) => {
                ResponseKind::DeleteGroups(self.groups.delete_groups(r).await)
            }
            RequestKind::OffsetDelete(r) => {
                ResponseKind::OffsetDelete(self.groups.offset_delete(r).await)
            }
            RequestKind::DescribeAcls(r) => ResponseKind::DescribeAcls(self.describe_acls(&r)),
            RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(self.create_acls(&r).await),
            RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(self.delete_acls(&r).await),
            RequestKind::DescribeUserScramCredentials(r) => {
                ResponseKind::DescribeUserScramCredentials(self.describe_user_scram_credentials(&r))
            }
            RequestKind::AlterUserScramCredentials(r) => {
                ResponseKind::AlterUserScramCredentials(self.alter_user_scram_credentials(&r).await)
            }
            RequestKind::SaslHandshake(r) => ResponseKind::SaslHandshake(sasl::handshake(r)),
            RequestKind::SaslAuthenticate(r) => {
                ResponseKind::SaslAuthenticate(sasl::authenticate(r))
            }
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
            if let Err(e) = self.partitions.apply_image(&image) {
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
        self.partitions
            .maintain_logs(now_ms(), self.config.producer_id_expiration_ms);
    }

    /// Flushes every partition's log to disk (clean shutdown).
    pub fn flush_all(&self) {
        self.partitions.flush_all();
    }

    /// Follows the leadership of the offsets partitions and ticks every group coordinator
    /// until `shutdown` resolves ([`GroupCoordinator::run`]).
    pub async fn run_group_coordinator(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        self.groups.run(shutdown).await;
    }

    /// Applies the authority's latest image now, so the answer to an admin request reflects it.
    fn refresh_image(&self) {
        let latest = self.authority.image();
        if let Err(e) = self.partitions.apply_image(&latest) {
            tracing::error!(error = %e, "could not apply metadata after an admin request");
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (Kafka's timestamp unit).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
