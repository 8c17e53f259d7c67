//! Replica fetchers: followers copy their leaders' logs with Kafka Fetch requests.
//!
//! # Shape
//! [`Broker::run_replication`] is the one owner of replication on a broker. It follows the
//! metadata image and keeps **one fetcher task per leader broker**, handing each the set of
//! partitions this broker follows there (a `watch` channel holding the leader's address and
//! the set, so a task always works from the latest assignment and nothing queues up). On the
//! same loop it runs the leader's ISR checks every [`ISR_CHECK_INTERVAL`] and sends the
//! AlterPartition commands they call for.
//!
//! A fetcher task is a thin I/O shell: one TCP connection to its leader, one Fetch request at a
//! time (v12, `replica_id` = this broker, `max_wait_ms` = [`REPLICA_FETCH_WAIT_MAX`]), and per
//! partition in the answer:
//!
//! ```text
//! NONE + DivergingEpoch{e, end}  -> truncate to min(end, local end of epoch e), refetch
//!                                   ([`super::divergence`])
//! NONE + records                 -> append_as_follower, then high watermark = min(leader's, LEO)
//! OFFSET_OUT_OF_RANGE            -> truncate to the leader's high watermark (committed data)
//! NOT_LEADER / FENCED / UNKNOWN  -> skip the partition until the metadata changes, or for
//!                                   FETCH_BACKOFF (the leader may lag behind the metadata)
//! ```
//!
//! The requests are built from the partition's own state under its lock (fetch offset = log
//! end offset, `last_fetched_epoch` = latest epoch in the log, `current_leader_epoch` from the
//! image), and an answer is applied only if the partition still follows the same leader in the
//! same epoch, so a stale answer never touches a log.
//!
//! # Bounds
//! - [`FETCH_PARTITIONS_MAX`] partitions per request; a fetcher with more rotates through them.
//! - [`REPLICA_FETCH_MAX_BYTES`] per partition and [`REPLICA_FETCH_RESPONSE_MAX_BYTES`] per
//!   response (Kafka's `replica.fetch.max.bytes` and `replica.fetch.response.max.bytes`).
//! - `RESPONSE_TIMEOUT` (10 s) per request; on any I/O error the connection is dropped and retried
//!   after [`FETCH_BACKOFF`] (Kafka's `replica.fetch.backoff.ms`).
//!
//! # Simplifications
//! No fetch sessions (full requests every time), no OffsetForLeaderEpoch round before the first
//! fetch (DivergingEpoch covers truncation), and a follower whose fetch offset is below the
//! leader's log start is reported, not reset (retention that outruns a follower).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::partition::{Partition, TopicPartition};
use super::{Broker, divergence, now_ms};
use crate::controller::{Command, CommandResult};
use crate::log::Offset;
use crate::metadata::{Image, NodeId};

/// The Fetch version followers send: the first with `last_fetched_epoch` and DivergingEpoch.
pub const REPLICA_FETCH_VERSION: i16 = 12;

/// Kafka's `replica.fetch.wait.max.ms`: how long the leader may hold a follower's fetch.
pub const REPLICA_FETCH_WAIT_MAX: Duration = Duration::from_millis(500);

/// Kafka's `replica.fetch.max.bytes`: bytes per partition per request (one larger batch still
/// comes whole, as for consumers).
pub const REPLICA_FETCH_MAX_BYTES: i32 = 1024 * 1024;

/// Kafka's `replica.fetch.response.max.bytes`: bytes per response.
pub const REPLICA_FETCH_RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;

/// Most partitions in one replica Fetch request; a fetcher following more rotates.
pub const FETCH_PARTITIONS_MAX: usize = 1000;

/// Kafka's `replica.fetch.backoff.ms`: pause after an error before trying again.
pub const FETCH_BACKOFF: Duration = Duration::from_millis(1000);

/// How long a fetcher waits for a response (the leader holds it up to the wait max).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response frame a fetcher accepts (the response max plus room for headers).
const RESPONSE_FRAME_MAX_BYTES: usize = 2 * REPLICA_FETCH_RESPONSE_MAX_BYTES as usize;

/// How often the leader checks its partitions' ISR (Kafka checks every half of
/// `replica.lag.time.max.ms`; this is the most it waits, so joins are noticed quickly).
pub const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The partitions one replica Fetch asked for, with the leader epoch each was asked in.
type Asked = BTreeMap<TopicPartition, (Arc<Partition>, i32)>;

/// What one fetcher task works on: its leader's address and the partitions it follows there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    /// `host:port` of the leader's Kafka listener.
    address: String,
    /// Partitions this broker follows on that leader (at most what the image assigns).
    partitions: BTreeSet<TopicPartition>,
}

impl Broker {
    /// Runs replication until `shutdown` resolves: one fetcher task per leader this broker
    /// follows, and the leader-side ISR checks. See the module docs.
    pub async fn run_replication(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut images = self.authority.subscribe();
        let mut fetchers: BTreeMap<NodeId, watch::Sender<Assignment>> = BTreeMap::new();
        let mut isr_checks = tokio::time::interval(ISR_CHECK_INTERVAL);
        isr_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let image = images.borrow_and_update().clone();
            // The broker applies images on its own task; apply here too so the partitions
            // exist before their fetchers start (apply_image is idempotent).
            if let Err(e) = self.partitions.apply_image(&image) {
                tracing::warn!(error = %e, "could not apply metadata for replication");
            }
            self.assign_fetchers(&image, &mut fetchers);
            loop {
                tokio::select! {
                    changed = images.changed() => {
                        if changed.is_err() { return; }
                        break;
                    }
                    _ = isr_checks.tick() => self.check_isr(),
                    _ = &mut shutdown => return,
                }
            }
        }
    }

    /// Starts, updates and stops fetcher tasks so there is one per leader this broker follows.
    fn assign_fetchers(
        self: &Arc<Self>,
        image: &Image,
        fetchers: &mut BTreeMap<NodeId, watch::Sender<Assignment>>,
    ) {
        let me = self.node_id();
        let mut wanted: BTreeMap<NodeId, Assignment> = BTreeMap::new();
        for partition in self.partitions.all() {
            let state = partition.lock().state.clone();
            if state.leader < 0 || state.leader == me || !state.replicas.contains(&me) {
                continue;
            }
            let Some(leader) = image.brokers.get(&state.leader) else {
                continue; // fenced leaders are not in the client image; wait for the next one
            };
            wanted
                .entry(state.leader)
                .or_insert_with(|| Assignment {
                    address: format!("{}:{}", leader.host, leader.port),
                    partitions: BTreeSet::new(),
                })
                .partitions
                .insert(partition.id.clone());
        }
        // Dropping a sender stops its task.
        fetchers.retain(|leader, _| wanted.contains_key(leader));
        for (leader, assignment) in wanted {
            match fetchers.get(&leader) {
                Some(sender) => {
                    sender.send_if_modified(|current| {
                        let changed = *current != assignment;
                        *current = assignment.clone();
                        changed
                    });
                }
                None => {
                    let (sender, receiver) = watch::channel(assignment);
                    tracing::info!(leader, "starting a replica fetcher");
                    tokio::spawn(self.clone().run_fetcher(leader, receiver));
                    fetchers.insert(leader, sender);
                }
            }
        }
    }

    /// One pass of the leader's ISR checks: for every partition led here whose ISR should
    /// change, sends an AlterPartition (one in flight per partition).
    fn check_isr(self: &Arc<Self>) {
        let now = now_ms();
        let lag_max_ms = self.config.replica_lag_time_max.as_millis() as i64;
        for partition in self.partitions.all() {
            let shrink;
            let command = {
                let mut inner = partition.lock();
                if !inner.is_leader(self.node_id()) {
                    continue;
                }
                let state = inner.state.clone();
                let high_watermark = inner.high_watermark;
                let Some(tracker) = inner.tracker.as_mut() else {
                    continue;
                };
                let Some(isr) = tracker.isr_change(
                    &state.replicas,
                    &state.isr,
                    high_watermark,
                    lag_max_ms,
                    now,
                ) else {
                    continue;
                };
                tracker.begin_alter(isr.clone(), state.partition_epoch);
                tracing::info!(partition = ?partition.id, from = ?state.isr, to = ?isr, "asking to change the ISR");
                shrink = isr.len() < state.isr.len();
                Command::AlterPartition {
                    broker_id: self.node_id(),
                    broker_epoch: self.authority.broker_epoch(),
                    topic_id: partition.topic_id,
                    partition: partition.id.partition,
                    leader_epoch: state.leader_epoch,
                    partition_epoch: state.partition_epoch,
                    new_isr: isr,
                }
            };
            let broker = self.clone();
            let partition = partition.clone();
            tokio::spawn(async move { broker.alter_partition(partition, command, shrink).await });
        }
    }

    /// Sends one AlterPartition (an ISR `shrink`, else an expansion) and settles the
    /// partition's pending change if it failed (a committed change settles it when the new
    /// image is installed).
    async fn alter_partition(
        self: Arc<Self>,
        partition: Arc<Partition>,
        command: Command,
        shrink: bool,
    ) {
        let outcome = match self.authority.execute(command).await {
            Ok(CommandResult::AlterPartition(Ok(_))) => Ok(()),
            Ok(CommandResult::AlterPartition(Err(e))) => Err(e.message),
            Ok(other) => Err(format!("unexpected result {other:?}")),
            Err(e) => Err(e.message),
        };
        // The answer comes once this broker applied the change; refresh so it is installed.
        self.refresh_image();
        if let (Ok(()), Some(metrics)) = (&outcome, self.partitions.metrics()) {
            metrics.isr_changed(shrink);
        }
        if let Err(why) = outcome {
            tracing::info!(partition = ?partition.id, why, "AlterPartition refused or failed");
            if let Some(tracker) = partition.lock().tracker.as_mut() {
                tracker.abort_alter();
            }
        }
        self.partitions.notify_appended();
    }

    /// A fetcher task: fetches from `leader` the partitions in `assignment` until its sender
    /// is dropped. See the module docs.
    async fn run_fetcher(
        self: Arc<Self>,
        leader: NodeId,
        mut assignment: watch::Receiver<Assignment>,
    ) {
        let mut connection: Option<(String, Connection)> = None;
        let mut rotation = 0usize;
        // Partitions answered with an error, skipped until the metadata changes or for
        // FETCH_BACKOFF (the leader may not have installed the metadata that makes it leader).
        let mut parked: BTreeMap<TopicPartition, tokio::time::Instant> = BTreeMap::new();
        loop {
            match assignment.has_changed() {
                Err(_) => return, // the owner dropped this fetcher
                Ok(true) => parked.clear(),
                Ok(false) => {}
            }
            let now = tokio::time::Instant::now();
            parked.retain(|_, until| *until > now);
            let current = assignment.borrow_and_update().clone();
            let partitions: Vec<Arc<Partition>> = current
                .partitions
                .iter()
                .filter(|id| !parked.contains_key(*id))
                .filter_map(|id| self.partitions.get(&id.topic, id.partition))
                .collect();
            if partitions.is_empty() {
                let wake = parked
                    .values()
                    .min()
                    .copied()
                    .unwrap_or(now + FETCH_BACKOFF);
                if let Ok(Err(_)) = tokio::time::timeout_at(wake, assignment.changed()).await {
                    return;
                }
                continue;
            }
            let chunk = rotate(&partitions, &mut rotation, FETCH_PARTITIONS_MAX);
            let Some((request, asked)) = self.fetch_request(leader, &chunk) else {
                let _ = tokio::time::timeout(FETCH_BACKOFF, assignment.changed()).await;
                continue;
            };
            if connection
                .as_ref()
                .is_none_or(|(addr, _)| *addr != current.address)
            {
                match Connection::open(&current.address, self.node_id()).await {
                    Ok(c) => connection = Some((current.address.clone(), c)),
                    Err(e) => {
                        tracing::debug!(leader, address = current.address, error = %e, "cannot reach the leader");
                        let _ = tokio::time::timeout(FETCH_BACKOFF, assignment.changed()).await;
                        continue;
                    }
                }
            }
            let (_, conn) = connection.as_mut().expect("connected above");
            let response = match conn.fetch(&request).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
                    connection = None;
                    let _ = tokio::time::timeout(FETCH_BACKOFF, assignment.changed()).await;
                    continue;
                }
            };
            let mut any_progress = false;
            for topic in response.responses {
                for data in topic.partitions {
                    let id = TopicPartition {
                        topic: topic.topic.0.to_string(),
                        partition: data.partition_index,
                    };
                    let Some((partition, epoch)) = asked.get(&id) else {
                        continue;
                    };
                    match self.apply_fetched(partition, leader, *epoch, data) {
                        Applied::Progress => any_progress = true,
                        Applied::Nothing => {}
                        Applied::Park => {
                            parked.insert(id, tokio::time::Instant::now() + FETCH_BACKOFF);
                        }
                    }
                }
            }
            if any_progress {
                self.partitions.notify_appended();
            }
        }
    }

    /// Builds a replica Fetch for `partitions` from their current state; `None` if none of
    /// them follows `leader` any more. Returns the partitions asked, with the leader epoch each
    /// was asked in.
    fn fetch_request(
        &self,
        leader: NodeId,
        partitions: &[Arc<Partition>],
    ) -> Option<(FetchRequest, Asked)> {
        let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        let mut asked = BTreeMap::new();
        for partition in partitions {
            let inner = partition.lock();
            if inner.state.leader != leader {
                continue;
            }
            topics.entry(partition.id.topic.clone()).or_default().push(
                FetchPartition::default()
                    .with_partition(partition.id.partition)
                    .with_current_leader_epoch(inner.state.leader_epoch)
                    .with_fetch_offset(inner.log.log_end_offset())
                    .with_last_fetched_epoch(inner.log.latest_epoch().unwrap_or(-1))
                    .with_log_start_offset(inner.log.log_start_offset())
                    .with_partition_max_bytes(REPLICA_FETCH_MAX_BYTES),
            );
            asked.insert(
                partition.id.clone(),
                (partition.clone(), inner.state.leader_epoch),
            );
        }
        if asked.is_empty() {
            return None;
        }
        let topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(self.node_id()))
            .with_max_wait_ms(REPLICA_FETCH_WAIT_MAX.as_millis() as i32)
            .with_min_bytes(1)
            .with_max_bytes(REPLICA_FETCH_RESPONSE_MAX_BYTES)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        Some((request, asked))
    }

    /// Applies one partition's answer, if the partition still follows `leader` in `epoch`.
    fn apply_fetched(
        &self,
        partition: &Partition,
        leader: NodeId,
        epoch: i32,
        data: PartitionData,
    ) -> Applied {
        let mut inner = partition.lock();
        if inner.state.leader != leader || inner.state.leader_epoch != epoch {
            return Applied::Nothing; // the answer is stale: the metadata moved on meanwhile
        }
        let error = ResponseError::try_from_code(data.error_code);
        match error {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                let end = inner.log.log_end_offset();
                if end < data.log_start_offset {
                    // Deleted on the leader (DeleteRecords, retention) before we copied it:
                    // start over at the leader's log start, as Kafka's followers do.
                    let start = data.log_start_offset;
                    tracing::warn!(partition = ?partition.id, end, leader_start = start,
                        "follower is behind the leader's log start; restarting its log there");
                    if let Err(e) = inner.log.restart_at(start) {
                        tracing::error!(partition = ?partition.id, error = %e, "restart failed");
                        return Applied::Park;
                    }
                    inner.high_watermark = start;
                    return Applied::Progress;
                }
                // Beyond the leader's end: keep only what is committed, then refetch.
                let to = data.high_watermark.min(end);
                tracing::info!(partition = ?partition.id, from = end, to, "truncating past the leader's end");
                return truncate(partition, &mut inner, to);
            }
            Some(code) => {
                tracing::debug!(partition = ?partition.id, ?code, "replica fetch refused");
                return Applied::Park;
            }
        }
        let diverging = &data.diverging_epoch;
        if diverging.epoch >= 0 || diverging.end_offset >= 0 {
            let end = inner.log.log_end_offset();
            let Some(to) = divergence::truncation_offset(
                (diverging.epoch, diverging.end_offset),
                inner.log.end_offset_for_epoch(diverging.epoch),
                end,
                inner.high_watermark,
            ) else {
                return Applied::Park;
            };
            tracing::info!(partition = ?partition.id, from = end, to,
                epoch = diverging.epoch, "truncating a divergent tail");
            return truncate(partition, &mut inner, to);
        }
        let records = data.records.unwrap_or_default();
        let mut progress = false;
        if !records.is_empty() {
            match inner
                .log
                .append_as_follower(BytesMut::from(records.clone()), now_ms())
            {
                Ok(_) => {
                    inner.record_replicated(&records);
                    if let Some(metrics) = self.partitions.metrics() {
                        metrics.replication_in(records.len() as u64);
                    }
                    progress = true
                }
                Err(e) => {
                    tracing::warn!(partition = ?partition.id, error = %e, "follower append failed");
                    return Applied::Park;
                }
            }
        }
        let before = inner.high_watermark;
        inner.follow_high_watermark(data.high_watermark);
        // DeleteRecords on the leader: follow its log start offset, never past our own high
        // watermark (as Kafka's followers; the rest follows once the log catches up).
        let leader_start = data.log_start_offset.min(inner.high_watermark);
        if leader_start > inner.log.log_start_offset() {
            match inner.log.advance_log_start(leader_start) {
                Ok(()) => progress = true,
                Err(e) => {
                    tracing::warn!(partition = ?partition.id, error = %e, "could not advance the log start");
                }
            }
        }
        if progress || inner.high_watermark != before {
            Applied::Progress
        } else {
            Applied::Nothing
        }
    }
}

/// What applying one partition's answer did.
enum Applied {
    /// The log or the high watermark moved.
    Progress,
    /// Nothing changed.
    Nothing,
    /// The partition cannot fetch from this leader now; skip it until the metadata changes.
    Park,
}

/// Truncates a follower's log to `offset` and caps its high watermark.
fn truncate(
    partition: &Partition,
    inner: &mut super::partition::PartitionInner,
    offset: Offset,
) -> Applied {
    if let Err(e) = inner.log.truncate_to(offset) {
        tracing::error!(partition = ?partition.id, error = %e, "truncation failed");
        return Applied::Park;
    }
    inner.producers_after_truncation();
    let end = inner.log.log_end_offset();
    inner.high_watermark = inner.high_watermark.min(end);
    Applied::Progress
}

/// Up to `max` partitions starting at `*rotation`, advancing it for the next round.
fn rotate(all: &[Arc<Partition>], rotation: &mut usize, max: usize) -> Vec<Arc<Partition>> {
    if all.len() <= max {
        return all.to_vec();
    }
    let start = *rotation % all.len();
    *rotation = (start + max) % all.len();
    all.iter().cycle().skip(start).take(max).cloned().collect()
}

/// A follower's connection to its leader's Kafka listener: one request at a time.
struct Connection {
    /// The socket.
    stream: TcpStream,
    /// Correlation id of the next request.
    next_correlation_id: i32,
    /// Sent as the request's client id.
    client_id: StrBytes,
}

impl Connection {
    /// Connects to `address`.
    async fn open(address: &str, me: NodeId) -> std::io::Result<Connection> {
        let stream =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address)).await??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            next_correlation_id: 0,
            client_id: StrBytes::from_string(format!("ferry-replica-fetcher-{me}")),
        })
    }

    /// Sends a Fetch and reads its answer, within [`RESPONSE_TIMEOUT`].
    async fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, String> {
        let version = REPLICA_FETCH_VERSION;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(ApiKey::Fetch as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()))
            .encode(&mut frame, ApiKey::Fetch.request_header_version(version))
            .map_err(|e| format!("encoding the request: {e}"))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| format!("encoding the request: {e}"))?;
        let size = (frame.len() - 4) as i32;
        frame[0..4].copy_from_slice(&size.to_be_bytes());
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let size = self.stream.read_i32().await?;
            if size < 0 || size as usize > RESPONSE_FRAME_MAX_BYTES {
                return Err(std::io::Error::other(format!(
                    "response frame of {size} bytes"
                )));
            }
            let mut buf = vec![0u8; size as usize];
            self.stream.read_exact(&mut buf).await?;
            Ok(Bytes::from(buf))
        };
        let mut bytes = tokio::time::timeout(RESPONSE_TIMEOUT, exchange)
            .await
            .map_err(|_| "no response in time".to_string())?
            .map_err(|e| e.to_string())?;
        let header =
            ResponseHeader::decode(&mut bytes, ApiKey::Fetch.response_header_version(version))
                .map_err(|e| format!("decoding the response header: {e}"))?;
        if header.correlation_id != correlation_id {
            return Err(format!(
                "response {} to request {correlation_id}",
                header.correlation_id
            ));
        }
        let response = FetchResponse::decode(&mut bytes, version)
            .map_err(|e| format!("decoding the response: {e}"))?;
        if bytes.has_remaining() {
            tracing::debug!(
                extra = bytes.remaining(),
                "trailing bytes after a fetch response"
            );
        }
        if response.error_code != 0 {
            return Err(format!(
                "fetch refused with error code {}",
                response.error_code
            ));
        }
        Ok(response)
    }
}
