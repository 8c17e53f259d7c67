//! The group coordinator's I/O shell: loading, timers, log writes and parked requests.
//!
//! The decisions are made by the sans-IO [`crate::group`] core. [`GroupCoordinator`] owns what
//! waits, and reaches the offsets partitions through the broker's shared [`Partitions`]; the
//! group APIs (`join_group.rs`, `sync_group.rs`, `heartbeat.rs`, `leave_group.rs`,
//! `offset_commit.rs`, `offset_fetch.rs`, `offset_delete.rs`, `describe_groups.rs`,
//! `list_groups.rs`, `delete_groups.rs`, `find_coordinator.rs`) are its methods, each in the
//! file named after the API:
//! - **Shards.** For every `__consumer_offsets` partition this broker leads there is one
//!   [`Coordinator`], created by replaying the partition's log when the leadership arrives
//!   (requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS) and dropped when it goes (requests
//!   get NOT_COORDINATOR; parked ones are answered NOT_COORDINATOR).
//! - **Timer.** [`GroupCoordinator::run`] ticks every [`GROUP_TICK_INTERVAL`]: it
//!   follows the leadership of the offsets partitions and feeds `now` to every coordinator
//!   (session expiry, rebalance deadlines, offset retention).
//! - **Writes.** Records a call produced are appended to the partition under the shard lock (so
//!   the log order is the order of the in-memory changes) and the replies are sent only once the
//!   high watermark covers them, as for an acks=all produce.
//! - **Parked requests.** A JoinGroup or SyncGroup that waits for the rest of its group waits on
//!   a oneshot channel registered under its [`ReplyId`]; at most [`PARKED_REQUESTS_MAX`] wait at
//!   once (beyond that, joins are refused with COORDINATOR_NOT_AVAILABLE and retried by the
//!   client).
//!
//! # Lock order
//! `shards` → the partition map's and image's read locks ([`Partitions::get`],
//! [`Partitions::image`]) and a partition's lock (appends, reads) → `parked`. Nothing holding a
//! partition lock takes `shards`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::{oneshot, watch};

use super::partition::Partition;
use super::partitions::Partitions;
use super::{Broker, now_ms};
use crate::authority::Authority;
use crate::group::coordinator::{Coordinator, Output};
use crate::group::records::OffsetsRecord;
use crate::group::state::{Effects, Reply};
use crate::group::{GroupOptions, Millis, OFFSETS_TOPIC, ReplyId, partition_for};
use crate::log::batch::check_batch;
use crate::log::records;
use crate::log::{LeaderEpoch, Offset};
use crate::metadata::{Image, NewTopic, NodeId};
use crate::metrics::groups::GroupsView;

/// How often coordinators see the time pass and leadership changes are noticed. Session and
/// rebalance deadlines are therefore honoured to within this much.
pub const GROUP_TICK_INTERVAL: Duration = Duration::from_millis(100);

// Deadlines are honoured to within a tick, so a tick must be far below the shortest session
// Kafka allows by default (`group.min.session.timeout.ms`, 6 s).
const _: () = assert!(GROUP_TICK_INTERVAL.as_millis() * 10 < 6000);

/// At most this many JoinGroup/SyncGroup requests wait parked at once on this broker.
pub const PARKED_REQUESTS_MAX: usize = 10_000;

/// `offsets.commit.timeout.ms` (Kafka's default 5000): how long a write to the offsets topic
/// may wait for the in-sync replicas before the request fails (REQUEST_TIMED_OUT for commits,
/// COORDINATOR_NOT_AVAILABLE for group changes, so the client retries).
pub const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parked request waits at most its rebalance timeout plus the initial delay plus this much
/// (the core answers it before; this only turns a bug into an error instead of a hang).
const PARKED_WAIT_SLACK: Duration = Duration::from_secs(60);

/// Bytes read from the offsets partition per step while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// One offsets partition led here.
enum Shard {
    /// Leadership noticed in this leader epoch; the log is being replayed.
    Loading(LeaderEpoch),
    /// Ready to serve, for this leader epoch.
    Loaded(LeaderEpoch, Coordinator),
}

/// The classic group coordinator of a broker: its shards, parked requests and timer. The
/// group APIs (`join_group.rs`, `offset_commit.rs`, …) are its methods.
pub struct GroupCoordinator {
    /// Settings.
    pub options: GroupOptions,
    /// The broker's partitions: the offsets partitions are read, written and led there.
    partitions: Arc<Partitions>,
    /// Where `__consumer_offsets` is created.
    authority: Arc<dyn Authority>,
    /// Offsets partitions led here, by index.
    shards: Mutex<HashMap<i32, Shard>>,
    /// Parked requests' reply channels.
    parked: Mutex<HashMap<ReplyId, oneshot::Sender<Reply>>>,
    /// The next [`ReplyId`].
    next_reply: AtomicU64,
    /// Set while a creation of `__consumer_offsets` is in flight, so concurrent
    /// FindCoordinator requests start at most one.
    creating_offsets_topic: Arc<AtomicBool>,
}

impl GroupCoordinator {
    /// A coordinator leading nothing yet, over the broker's `partitions`.
    pub fn new(
        options: GroupOptions,
        partitions: Arc<Partitions>,
        authority: Arc<dyn Authority>,
    ) -> Self {
        Self {
            options,
            partitions,
            authority,
            shards: Mutex::new(HashMap::new()),
            parked: Mutex::new(HashMap::new()),
            next_reply: AtomicU64::new(1),
            creating_offsets_topic: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A write to wait for before answering.
struct PendingWrite {
    partition: Arc<Partition>,
    /// The high watermark that covers the write.
    required: Offset,
    leader_epoch: LeaderEpoch,
}

/// How a call into a coordinator went at the shell level.
pub(super) type Routed<T> = Result<T, ResponseError>;

impl GroupCoordinator {
    /// The metadata image the broker's partitions were last reconciled with.
    pub(super) fn image(&self) -> Arc<Image> {
        self.partitions.image()
    }

    /// This broker's node id.
    fn node_id(&self) -> NodeId {
        self.partitions.node_id()
    }

    /// The offsets partition index of `group_id`, if the offsets topic exists.
    fn offsets_partition_of(&self, group_id: &str) -> Option<i32> {
        let image = self.image();
        let topic = image.topics.get(OFFSETS_TOPIC)?;
        Some(partition_for(group_id, topic.partitions.len() as i32))
    }

    /// Registers a parked request; `None` at the bound.
    pub(super) fn park(&self) -> Option<(ReplyId, oneshot::Receiver<Reply>)> {
        let mut parked = self.parked.lock().expect("parked lock poisoned");
        if parked.len() >= PARKED_REQUESTS_MAX {
            tracing::warn!(
                bound = PARKED_REQUESTS_MAX,
                "too many parked group requests"
            );
            return None;
        }
        let id = self.next_reply.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        parked.insert(id, tx);
        Some((id, rx))
    }

    /// Forgets a parked request whose call failed before it was parked in a group.
    pub(super) fn unpark(&self, id: ReplyId) {
        self.parked
            .lock()
            .expect("parked lock poisoned")
            .remove(&id);
    }

    /// Waits for a parked request's reply, bounded by `rebalance_timeout_ms`.
    pub(super) async fn await_parked(
        &self,
        id: ReplyId,
        rx: oneshot::Receiver<Reply>,
        rebalance_timeout_ms: i32,
    ) -> Option<Reply> {
        let bound = Duration::from_millis(
            rebalance_timeout_ms.max(0) as u64 + self.options.initial_rebalance_delay_ms as u64,
        ) + PARKED_WAIT_SLACK;
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(reply)) => Some(reply),
            _ => {
                self.parked
                    .lock()
                    .expect("parked lock poisoned")
                    .remove(&id);
                tracing::warn!(id, "a parked group request got no reply in time");
                None
            }
        }
    }

    /// Runs `f` on the coordinator of `group_id` with the current time, appends the records
    /// it returns, and waits until they are replicated before sending the replies in the
    /// output's effects. Returns `f`'s value once the write is replicated.
    pub(super) async fn with_group<T>(
        &self,
        group_id: &str,
        f: impl FnOnce(&mut Coordinator, Millis) -> (T, Output),
    ) -> Routed<T> {
        let (value, pending, effects) = {
            let mut shards = self.shards.lock().expect("shards lock poisoned");
            let (index, partition) = self.coordinator_partition(group_id)?;
            let coordinator = match shards.get_mut(&index) {
                Some(Shard::Loaded(epoch, coordinator))
                    if *epoch == partition.lock().state.leader_epoch =>
                {
                    coordinator
                }
                _ => return Err(ResponseError::CoordinatorLoadInProgress),
            };
            let (value, output) = f(coordinator, now_ms());
            let pending = match self.append_records(&partition, &output.records) {
                Ok(pending) => pending,
                Err(code) => {
                    self.send_replies(error_replies(output.effects, code));
                    return Err(code);
                }
            };
            (value, pending, output.effects)
        };
        match pending {
            None => {
                self.send_replies(effects);
                Ok(value)
            }
            Some(write) => match self.wait_replicated(&write).await {
                Ok(()) => {
                    self.send_replies(effects);
                    Ok(value)
                }
                Err(code) => {
                    self.send_replies(error_replies(effects, code));
                    Err(code)
                }
            },
        }
    }

    /// Like [`Self::with_group`] for calls that write nothing and park nothing.
    pub(super) fn read_group<T>(
        &self,
        group_id: &str,
        f: impl FnOnce(&mut Coordinator, Millis) -> T,
    ) -> Routed<T> {
        let mut shards = self.shards.lock().expect("shards lock poisoned");
        let (index, partition) = self.coordinator_partition(group_id)?;
        match shards.get_mut(&index) {
            Some(Shard::Loaded(epoch, coordinator))
                if *epoch == partition.lock().state.leader_epoch =>
            {
                Ok(f(coordinator, now_ms()))
            }
            _ => Err(ResponseError::CoordinatorLoadInProgress),
        }
    }

    /// Runs `f` on every loaded coordinator, in offsets-partition order (ListGroups, and the
    /// group metrics, which want the same groups first at every scrape). `f` runs under the
    /// `shards` lock: it must not take it again, nor block.
    pub(super) fn each_coordinator(&self, mut f: impl FnMut(&Coordinator)) {
        let shards = self.shards.lock().expect("shards lock poisoned");
        let mut loaded: Vec<(i32, &Coordinator)> = shards
            .iter()
            .filter_map(|(index, shard)| match shard {
                Shard::Loaded(_, coordinator) => Some((*index, coordinator)),
                Shard::Loading(_) => None,
            })
            .collect();
        loaded.sort_unstable_by_key(|(index, _)| *index);
        for (_, coordinator) in loaded {
            f(coordinator);
        }
    }

    /// Whether some offsets partition led here is still loading (ListGroups reports it).
    pub(super) fn coordinator_loading(&self) -> bool {
        let shards = self.shards.lock().expect("shards lock poisoned");
        shards.values().any(|s| matches!(s, Shard::Loading(_)))
    }

    /// The offsets partition of `group_id` if this broker leads it; NOT_COORDINATOR otherwise
    /// (COORDINATOR_NOT_AVAILABLE while the offsets topic does not exist).
    fn coordinator_partition(&self, group_id: &str) -> Routed<(i32, Arc<Partition>)> {
        let index = self
            .offsets_partition_of(group_id)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let partition = self
            .partitions
            .get(OFFSETS_TOPIC, index)
            .ok_or(ResponseError::NotCoordinator)?;
        if !partition.lock().is_leader(self.node_id()) {
            return Err(ResponseError::NotCoordinator);
        }
        Ok((index, partition))
    }

    /// Appends `records` as one batch; returns the write to wait for, if any.
    fn append_records(
        &self,
        partition: &Arc<Partition>,
        records: &[OffsetsRecord],
    ) -> Routed<Option<PendingWrite>> {
        if records.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let batch: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: now,
                key: Some(r.key()),
                value: r.value(),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &batch, &options)
            .expect("encoding an uncompressed batch of valid records cannot fail");
        let mut inner = partition.lock();
        if !inner.is_leader(self.node_id()) {
            return Err(ResponseError::NotCoordinator);
        }
        let leader_epoch = inner.state.leader_epoch;
        let info = inner
            .log
            .append_as_leader(buf, leader_epoch, now)
            .map_err(|e| {
                tracing::error!(error = %e, partition = ?partition.id, "offsets topic append failed");
                ResponseError::UnknownServerError
            })?;
        inner.after_append();
        drop(inner);
        self.partitions.notify_appended();
        Ok(Some(PendingWrite {
            partition: partition.clone(),
            required: info.last_offset + 1,
            leader_epoch,
        }))
    }

    /// Waits until the high watermark covers `write` in the same leader epoch, for up to
    /// [`OFFSETS_COMMIT_TIMEOUT`].
    async fn wait_replicated(&self, write: &PendingWrite) -> Routed<()> {
        wait_replicated(
            self.partitions.subscribe_appended(),
            self.node_id(),
            write,
            OFFSETS_COMMIT_TIMEOUT,
        )
        .await
    }

    /// Sends replies to parked requests (those whose waiter gave up are dropped).
    fn send_replies(&self, effects: Effects) {
        let mut parked = self.parked.lock().expect("parked lock poisoned");
        for (id, reply) in effects.replies {
            if let Some(tx) = parked.remove(&id) {
                let _ = tx.send(reply);
            }
        }
    }

    /// Follows the leadership of the offsets partitions and ticks every coordinator, every
    /// [`GROUP_TICK_INTERVAL`], until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut ticker = tokio::time::interval(GROUP_TICK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => return,
            }
            self.follow_offsets_leadership();
            self.tick_coordinators().await;
        }
    }

    /// Loads shards for offsets partitions newly led here and drops those no longer led.
    fn follow_offsets_leadership(&self) {
        let led: BTreeMap<i32, (Arc<Partition>, LeaderEpoch)> = self
            .partitions
            .all()
            .into_iter()
            .filter(|p| p.id.topic == OFFSETS_TOPIC)
            .filter_map(|p| {
                let inner = p.lock();
                let epoch = inner.state.leader_epoch;
                let leads = inner.is_leader(self.node_id());
                drop(inner);
                leads.then(|| (p.id.partition, (p.clone(), epoch)))
            })
            .collect();
        let mut to_load = Vec::new();
        {
            let mut shards = self.shards.lock().expect("shards lock poisoned");
            let stale: Vec<i32> = shards
                .iter()
                .filter(|(index, shard)| {
                    let epoch = match shard {
                        Shard::Loading(e) | Shard::Loaded(e, _) => *e,
                    };
                    led.get(index)
                        .is_none_or(|(_, led_epoch)| *led_epoch != epoch)
                })
                .map(|(index, _)| *index)
                .collect();
            for index in stale {
                if let Some(Shard::Loaded(_, mut coordinator)) = shards.remove(&index) {
                    tracing::info!(
                        partition = index,
                        "unloading groups of an offsets partition no longer led here"
                    );
                    let effects = coordinator.unload(ResponseError::NotCoordinator);
                    self.send_replies(effects);
                }
            }
            for (index, (partition, epoch)) in &led {
                if !shards.contains_key(index) {
                    shards.insert(*index, Shard::Loading(*epoch));
                    to_load.push((*index, partition.clone(), *epoch));
                }
            }
        }
        for (index, partition, epoch) in to_load {
            let coordinator = self.load_shard(&partition);
            let mut shards = self.shards.lock().expect("shards lock poisoned");
            if matches!(shards.get(&index), Some(Shard::Loading(e)) if *e == epoch) {
                tracing::info!(
                    partition = index,
                    epoch,
                    "loaded groups of an offsets partition"
                );
                shards.insert(index, Shard::Loaded(epoch, coordinator));
            }
        }
    }

    /// Replays an offsets partition's log into a fresh coordinator.
    ///
    /// Records are decoded within bounds ([`records::decode_batch`]). A batch that does not
    /// decode (a log written before produce checked records, or damaged) is skipped with an
    /// error line and the replay goes on: one bad batch must not keep every group of the
    /// partition from loading, nor take the broker down at every start.
    fn load_shard(&self, partition: &Arc<Partition>) -> Coordinator {
        let mut coordinator = Coordinator::new(self.options.clone());
        let now = now_ms();
        let (mut offset, limit) = {
            let inner = partition.lock();
            let limit = records::decompressed_limit(inner.config.log.max_message_bytes);
            (inner.log.log_start_offset(), limit)
        };
        loop {
            let read = {
                let mut inner = partition.lock();
                let end = inner.log.log_end_offset();
                inner.log.read(offset, LOAD_READ_BYTES, end, true)
            };
            let read = match read {
                Ok(read) if !read.records.is_empty() => read,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, partition = ?partition.id, "offsets topic read failed while loading");
                    break;
                }
            };
            let mut rest: &[u8] = &read.records;
            while let Ok(header) = check_batch(rest) {
                let bytes = &rest[..header.size()];
                rest = &rest[header.size()..];
                if header.is_control() || header.last_offset() < offset {
                    continue;
                }
                let decoded = match records::decode_batch(bytes, header, limit, false) {
                    Ok(decoded) => decoded,
                    Err(e) => {
                        tracing::error!(
                            error = %e,
                            partition = ?partition.id,
                            base_offset = header.base_offset,
                            "skipping an undecodable batch of the offsets topic"
                        );
                        continue;
                    }
                };
                for record in decoded.records().map_while(Result::ok) {
                    let record_offset = header
                        .base_offset
                        .saturating_add(i64::from(record.offset_delta));
                    let Some(key) = record.key else {
                        continue;
                    };
                    if record_offset < offset {
                        continue;
                    }
                    match OffsetsRecord::decode(key, record.value) {
                        Ok(r) => coordinator.replay(r, now),
                        Err(e) => {
                            tracing::warn!(error = %e, offset = record_offset, "skipping a record of the offsets topic")
                        }
                    }
                }
            }
            if read.next_offset <= offset {
                break;
            }
            offset = read.next_offset;
        }
        coordinator
    }

    /// One tick of every loaded coordinator; writes their records and sends their replies.
    async fn tick_coordinators(&self) {
        let mut writes = Vec::new();
        {
            let mut shards = self.shards.lock().expect("shards lock poisoned");
            for (index, shard) in shards.iter_mut() {
                let Shard::Loaded(_, coordinator) = shard else {
                    continue;
                };
                let output = coordinator.tick(now_ms());
                if output.records.is_empty() && output.effects.replies.is_empty() {
                    continue;
                }
                let Some(partition) = self.partitions.get(OFFSETS_TOPIC, *index) else {
                    continue;
                };
                match self.append_records(&partition, &output.records) {
                    Ok(None) => self.send_replies(output.effects),
                    Ok(Some(write)) => writes.push((write, output.effects)),
                    Err(code) => self.send_replies(error_replies(output.effects, code)),
                }
            }
        }
        for (write, effects) in writes {
            // Waiting here delays the next tick, but only while the replicas lag; replies that
            // depend on the write (a rebalance completed by a timeout) must wait anyway.
            match self.wait_replicated(&write).await {
                Ok(()) => self.send_replies(effects),
                Err(code) => self.send_replies(error_replies(effects, code)),
            }
        }
    }

    /// Returns the leader of `group_id`'s offsets partition, or the error to answer. The first
    /// question creates the offsets topic in the background and is answered
    /// COORDINATOR_NOT_AVAILABLE at once (clients retry), as Kafka does: waiting for the
    /// controllers here would stall every other request on the client's connection, and
    /// without a reachable quorum (a broker serving from its kept image) it would stall it
    /// until the authority timed out.
    pub(super) fn find_group_coordinator(&self, group_id: &str) -> Routed<i32> {
        if self.offsets_partition_of(group_id).is_none() {
            self.start_creating_offsets_topic();
        }
        let index = self
            .offsets_partition_of(group_id)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let image = self.image();
        let leader = image.topics[OFFSETS_TOPIC].partitions[index as usize].leader;
        if leader < 0 || !image.brokers.contains_key(&leader) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        Ok(leader)
    }

    /// Creates `__consumer_offsets` with `offsets.topic.num.partitions` partitions and
    /// `offsets.topic.replication.factor` replicas capped by the live brokers. Retention is
    /// unlimited because the log does not compact yet: the coordinator expires offsets itself
    /// with tombstones.
    fn start_creating_offsets_topic(&self) {
        let creating = self.creating_offsets_topic.clone();
        if creating.swap(true, Ordering::AcqRel) {
            return; // one creation at a time
        }
        let live = self.image().brokers.len().max(1) as i16;
        let options = &self.options;
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: Some(options.offsets_topic_partitions),
            replication_factor: Some(options.offsets_topic_replication_factor.min(live)),
            assignments: vec![],
            configs: vec![
                ("retention.ms".to_string(), "-1".to_string()),
                ("segment.bytes".to_string(), (100 * 1024 * 1024).to_string()),
            ],
        };
        // The new topic reaches this broker's image through `follow_metadata`.
        let authority = self.authority.clone();
        tokio::spawn(async move {
            for result in authority.create_topics(vec![topic], false).await {
                match result {
                    Ok(_) => tracing::info!("created the offsets topic"),
                    Err(e) => tracing::debug!(error = %e, "offsets topic not created"),
                }
            }
            creating.store(false, Ordering::Release);
        });
    }
}

/// What the group metrics read at scrape time: the coordinators loaded here, then (with the
/// `shards` lock released) the high watermarks of the partitions held here.
impl GroupsView for Broker {
    fn each_coordinator(&self, each: &mut dyn FnMut(&Coordinator)) {
        self.groups.each_coordinator(each);
    }

    fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let partition = self.partitions.get(topic, partition)?;
        let high_watermark = partition.lock().high_watermark;
        Some(high_watermark)
    }
}

/// Waits until the high watermark of `write.partition` covers the write in its leader epoch.
async fn wait_replicated(
    mut changed: watch::Receiver<u64>,
    node: NodeId,
    write: &PendingWrite,
    timeout: Duration,
) -> Routed<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        changed.borrow_and_update();
        {
            let inner = write.partition.lock();
            if !inner.is_leader(node) || inner.state.leader_epoch != write.leader_epoch {
                return Err(ResponseError::NotCoordinator);
            }
            if inner.high_watermark >= write.required {
                return Ok(());
            }
        }
        if tokio::time::timeout_at(deadline, changed.changed())
            .await
            .is_err()
        {
            return Err(ResponseError::RequestTimedOut);
        }
    }
}

/// Replaces every reply with `code` (the write they depend on failed). Timeouts become
/// COORDINATOR_NOT_AVAILABLE for group requests, which clients answer by finding the
/// coordinator again and retrying.
fn error_replies(effects: Effects, code: ResponseError) -> Effects {
    let code = match code {
        ResponseError::RequestTimedOut => ResponseError::CoordinatorNotAvailable,
        other => other,
    };
    Effects {
        replies: effects
            .replies
            .into_iter()
            .map(|(id, reply)| {
                let reply = match reply {
                    Reply::Join(mut r) => {
                        r.error = Some(code);
                        r.generation = -1;
                        r.members.clear();
                        Reply::Join(r)
                    }
                    Reply::Sync(mut r) => {
                        r.error = Some(code);
                        r.assignment = Bytes::new();
                        Reply::Sync(r)
                    }
                };
                (id, reply)
            })
            .collect(),
        persist: false,
    }
}
