//! The broker's metrics: Kafka's RequestMetrics, BrokerTopicMetrics, socket-server and
//! ReplicaManager numbers, under `ferry_broker_*`.
//!
//! # Families
//! ```text
//! ferry_broker_requests_total{api}                  requests answered (Kafka RequestsPerSec)
//! ferry_broker_request_errors_total{api,error}      error codes in responses (ErrorsPerSec)
//! ferry_broker_request_duration_seconds{api}        frame received -> response written
//! ferry_broker_request_queue_seconds{api}           frame received -> handler starts
//! ferry_broker_connections{admission}               open connections (client | replica)
//! ferry_broker_connections_accepted_total
//! ferry_broker_connections_rejected_total{reason}   over the limits, refused at accept
//! ferry_broker_connections_closed_total{reason}     closed by the server or the peer
//! ferry_broker_topic_bytes_in_total{topic}          record bytes appended as leader
//! ferry_broker_topic_messages_in_total{topic}       records appended as leader
//! ferry_broker_topic_bytes_out_total{topic}         record bytes fetched by consumers
//! ferry_broker_topic_failed_produce_requests_total{topic}
//! ferry_broker_replication_bytes_out_total          record bytes fetched by followers
//! ferry_broker_replication_bytes_in_total           record bytes appended as follower
//! ferry_broker_isr_shrinks_total, _isr_expands_total  ISR changes this leader made
//! ferry_broker_purgatory_size{operation}            produce (acks=all) and fetch waits
//! ferry_broker_partitions, _leader_partitions, _under_replicated_partitions,
//! ferry_broker_under_min_isr_partitions             read at scrape time (partitions held)
//! ferry_broker_log_size_bytes / _log_start_offset / _log_end_offset {topic,partition}
//! ferry_broker_partition_series_dropped             partitions beyond the series cap
//! ferry_broker_metadata_offset, ferry_broker_fenced  the image served from, the broker state
//! ferry_broker_log_dir_total_bytes / _available_bytes  the file system of log.dirs
//! ```
//! Under-replicated and under-min-ISR count only partitions *led here*, as Kafka's
//! ReplicaManager does, so summing over brokers gives the cluster's count.
//!
//! # Labels and their bounds
//! - `api`: a name from [`SUPPORTED_APIS`] (Fetch split into `FetchConsumer` and
//!   `FetchFollower`, as Kafka's RequestMetrics does), never read from the wire: the decoder
//!   refuses every API outside the table before a request gets here.
//! - `error`: Kafka's name of the code (`NOT_LEADER_OR_FOLLOWER`); codes are a fixed set.
//! - `topic`: only topics this broker holds, at most [`MetricsLimits::topics`] of them; the
//!   rest are counted under `topic="(other)"` (parentheses are not allowed in topic names, so
//!   it never clashes). A partition takes its topic's handles when it is created here (so a
//!   produce counts with two atomic adds); a topic's series go when its last partition leaves
//!   this broker, and the freed slot goes to the next topic created here (topics already
//!   counted under the overflow stay there).
//! - `topic,partition` gauges: at most [`MetricsLimits::partitions`] series per gauge; the
//!   number left out is `ferry_broker_partition_series_dropped`.
//! - `reason`, `admission`: fixed sets. Never client ids, addresses or member ids.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferry_telemetry::metrics::{
    AtomicHistogram, Collector, Counter, DescriptorEncoder, EncodeLabel as _, EncodeLabelSet,
    EncodeLabelValue, Family, Gauge, GaugeFn, LabelCap, LabelSetEncoder, LabelValueEncoder,
    LatencyFamily, MetricType, Registry, latency_family,
};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::protocol::versions::{SUPPORTED_APIS, SupportedApi};

/// Default of [`MetricsLimits::topics`].
pub const TOPIC_SERIES_MAX: usize = 1000;
/// Default of [`MetricsLimits::partitions`].
pub const PARTITION_SERIES_MAX: usize = 4000;
/// The `topic` value of topics beyond [`MetricsLimits::topics`].
pub const OTHER_TOPICS: &str = "(other)";

/// Bounds on the series a broker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsLimits {
    /// Topics with their own traffic series; beyond it, traffic counts under
    /// [`OTHER_TOPICS`].
    pub topics: usize,
    /// Partitions with their own log gauges; beyond it they are left out of a scrape and
    /// counted in `ferry_broker_partition_series_dropped`.
    pub partitions: usize,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        Self {
            topics: TOPIC_SERIES_MAX,
            partitions: PARTITION_SERIES_MAX,
        }
    }
}

/// One `api` label value.
type ApiLabel = [(&'static str, &'static str); 1];
/// One `topic` label value.
type TopicLabel = [(&'static str, String); 1];

/// The per-API handles, built for every served API at start.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// The `api` label.
    pub name: &'static str,
    /// Requests answered.
    requests: Counter,
    /// Frame received to response written.
    duration: AtomicHistogram,
    /// Frame received to handler start.
    queue: AtomicHistogram,
}

/// The traffic counters of one topic (or of [`OTHER_TOPICS`]).
#[derive(Debug, Clone)]
pub struct TopicTraffic {
    /// Record bytes appended as leader.
    pub bytes_in: Counter,
    /// Records appended as leader.
    pub messages_in: Counter,
    /// Record bytes fetched by consumers.
    pub bytes_out: Counter,
    /// Produce partitions refused for this topic.
    pub failed_produce: Counter,
}

/// Why the server closed a connection (or saw it closed), for `connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed it.
    Client,
    /// The node is shutting down.
    Shutdown,
    /// Idle past `connections.max.idle.ms`.
    Idle,
    /// A frame over the size bound or otherwise unreadable.
    Frame,
    /// A request that could not be decoded.
    Decode,
    /// A response that could not be encoded.
    Encode,
    /// A socket error.
    Io,
    /// A connection in the replica reserve sent something else than a replica Fetch.
    NotReplicaFetch,
    /// A failed acks=0 produce (closed so the client refreshes its metadata).
    ProduceFailed,
}

impl CloseReason {
    const ALL: [CloseReason; 9] = [
        Self::Client,
        Self::Shutdown,
        Self::Idle,
        Self::Frame,
        Self::Decode,
        Self::Encode,
        Self::Io,
        Self::NotReplicaFetch,
        Self::ProduceFailed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Shutdown => "shutdown",
            Self::Idle => "idle",
            Self::Frame => "frame",
            Self::Decode => "decode",
            Self::Encode => "encode",
            Self::Io => "io",
            Self::NotReplicaFetch => "not_replica_fetch",
            Self::ProduceFailed => "produce_failed",
        }
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// `max.connections.per.ip` reached for the address, and the replica reserve full.
    PerIpLimit,
    /// The listener's connection bound reached, and the replica reserve full.
    ConnectionLimit,
}

impl RejectReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::PerIpLimit => "per_ip_limit",
            Self::ConnectionLimit => "connection_limit",
        }
    }
}

/// An error of one API: labels `api` and `error` (the code's Kafka name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ErrorLabels {
    /// The API.
    api: &'static str,
    /// The Kafka error code (non-zero).
    code: i16,
}

impl EncodeLabelSet for ErrorLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("api", self.api).encode(encoder.encode_label())?;
        ("error", ErrorName(self.code)).encode(encoder.encode_label())
    }
}

/// A Kafka error code written as Kafka names it (`UNKNOWN_TOPIC_OR_PARTITION`).
#[derive(Debug, Clone, Copy)]
struct ErrorName(i16);

impl EncodeLabelValue for ErrorName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        encoder.write_str(&error_name(self.0))
    }
}

/// Kafka's name of an error code: the codec's variant name in upper snake case, or
/// `UNKNOWN_<code>` for a code it does not know.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_{code}"),
        Some(error) => {
            let camel = error.to_string();
            let mut name = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// The broker's metric handles. Shared (`Arc`) by the listener, the request handlers and the
/// partitions; built once per broker with [`BrokerMetrics::register`].
pub struct BrokerMetrics {
    /// Per served API, in [`SUPPORTED_APIS`] order (Fetch is the consumers' half).
    apis: Vec<ApiMetrics>,
    /// Fetch from followers (`replica_id >= 0`).
    fetch_follower: ApiMetrics,
    /// Error codes per API.
    errors: Family<ErrorLabels, Counter>,
    /// Open client connections.
    connections_client: Gauge,
    /// Open connections in the replica reserve.
    connections_replica: Gauge,
    /// Connections accepted.
    accepted: Counter,
    /// Connections refused at accept, by reason.
    rejected: Family<[(&'static str, &'static str); 1], Counter>,
    /// Connections closed, by reason.
    closed: Family<[(&'static str, &'static str); 1], Counter>,
    /// Per-topic traffic, bounded.
    topics: LabelCap<TopicTraffic>,
    /// Record bytes read by followers.
    replication_bytes_out: Counter,
    /// Record bytes appended as a follower.
    replication_bytes_in: Counter,
    /// ISR shrinks committed for partitions led here.
    isr_shrinks: Counter,
    /// ISR expansions committed for partitions led here.
    isr_expands: Counter,
    /// Requests waiting: acks=all produces for the high watermark.
    purgatory_produce: Gauge,
    /// Requests waiting: fetches for `min_bytes`.
    purgatory_fetch: Gauge,
    /// The bounds.
    limits: MetricsLimits,
}

impl fmt::Debug for BrokerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerMetrics")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The `api` label of a served API: its name from the served-versions table, and
/// `FetchConsumer` for Fetch (its followers' half is `FetchFollower`).
fn api_label(served: &SupportedApi) -> &'static str {
    if served.key == ApiKey::Fetch {
        "FetchConsumer"
    } else {
        served.name()
    }
}

impl BrokerMetrics {
    /// Registers the broker's families in `registry` (under `broker_`) and returns their
    /// handles. Scrape-time gauges are registered separately, once the partitions exist
    /// ([`register_partition_gauges`]).
    pub fn register(registry: &mut Registry, limits: MetricsLimits) -> Arc<Self> {
        let registry = registry.sub_registry_with_prefix("broker");
        let requests = Family::<ApiLabel, Counter>::default();
        let duration: LatencyFamily<ApiLabel> = latency_family();
        let queue: LatencyFamily<ApiLabel> = latency_family();
        registry.register("requests", "Requests answered, by API", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from a request's last byte read to its response written, by API",
            duration.clone(),
        );
        registry.register(
            "request_queue_seconds",
            "Time from a request's last byte read to its handler starting, by API",
            queue.clone(),
        );
        let api = |name: &'static str| ApiMetrics {
            name,
            requests: requests.get_or_create_owned(&[("api", name)]),
            duration: duration.get_or_create_owned(&[("api", name)]),
            queue: queue.get_or_create_owned(&[("api", name)]),
        };
        let apis = SUPPORTED_APIS
            .iter()
            .map(|served| api(api_label(served)))
            .collect();
        let fetch_follower = api("FetchFollower");

        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "request_errors",
            "Error codes in responses (top-level and per partition), by API and error",
            errors.clone(),
        );
        let connections = Family::<[(&'static str, &'static str); 1], Gauge>::default();
        registry.register(
            "connections",
            "Open Kafka connections, by admission (client, or the replica reserve)",
            connections.clone(),
        );
        let accepted = Counter::default();
        registry.register(
            "connections_accepted",
            "Kafka connections accepted",
            accepted.clone(),
        );
        let rejected = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "connections_rejected",
            "Kafka connections refused at accept (limits and replica reserve full), by reason",
            rejected.clone(),
        );
        let closed = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "connections_closed",
            "Kafka connections closed, by reason",
            closed.clone(),
        );
        for reason in CloseReason::ALL {
            let _ = closed.get_or_create(&[("reason", reason.as_str())]);
        }
        let replication_bytes_out = Counter::default();
        registry.register(
            "replication_bytes_out",
            "Record bytes read by followers",
            replication_bytes_out.clone(),
        );
        let replication_bytes_in = Counter::default();
        registry.register(
            "replication_bytes_in",
            "Record bytes appended as a follower",
            replication_bytes_in.clone(),
        );
        let isr_shrinks = Counter::default();
        registry.register(
            "isr_shrinks",
            "ISR shrinks committed for partitions led here",
            isr_shrinks.clone(),
        );
        let isr_expands = Counter::default();
        registry.register(
            "isr_expands",
            "ISR expansions committed for partitions led here",
            isr_expands.clone(),
        );
        let purgatory = Family::<[(&'static str, &'static str); 1], Gauge>::default();
        registry.register(
            "purgatory_size",
            "Requests waiting: acks=all produces for replication, fetches for min_bytes",
            purgatory.clone(),
        );
        let topics = register_topic_families(registry, limits.topics);
        Arc::new(Self {
            apis,
            fetch_follower,
            errors,
            connections_client: connections.get_or_create_owned(&[("admission", "client")]),
            connections_replica: connections.get_or_create_owned(&[("admission", "replica")]),
            accepted,
            rejected,
            closed,
            topics,
            replication_bytes_out,
            replication_bytes_in,
            isr_shrinks,
            isr_expands,
            purgatory_produce: purgatory.get_or_create_owned(&[("operation", "produce")]),
            purgatory_fetch: purgatory.get_or_create_owned(&[("operation", "fetch")]),
            limits,
        })
    }

    /// The handles of the API of `body` (`None` for an API outside [`SUPPORTED_APIS`], which
    /// the decoder never lets through).
    pub fn api(&self, key: ApiKey, body: &RequestKind) -> Option<&ApiMetrics> {
        if let RequestKind::Fetch(fetch) = body
            && (fetch.replica_id.0 >= 0 || fetch.replica_state.replica_id.0 >= 0)
        {
            return Some(&self.fetch_follower);
        }
        self.api_of(key)
    }

    /// The handles of `key` (consumer Fetch for Fetch).
    pub fn api_of(&self, key: ApiKey) -> Option<&ApiMetrics> {
        let index = SUPPORTED_APIS.iter().position(|served| served.key == key)?;
        self.apis.get(index)
    }

    /// Counts one answered request of `api` received at `received`, whose handler started at
    /// `started` and whose response was written now.
    pub fn request_done(&self, api: &ApiMetrics, queued: Duration, total: Duration) {
        api.requests.inc();
        api.queue.observe_duration(queued);
        api.duration.observe_duration(total);
    }

    /// Counts every non-zero error code in `body`, an answer of `api`.
    pub fn count_errors(&self, api: &ApiMetrics, body: &ResponseKind) {
        each_error_code(body, |code| {
            if code != 0 {
                self.errors
                    .get_or_create(&ErrorLabels {
                        api: api.name,
                        code,
                    })
                    .inc();
            }
        });
    }

    /// Counts an error code of `api` (a request answered without a handler).
    pub fn count_error(&self, api: &ApiMetrics, code: i16) {
        self.errors
            .get_or_create(&ErrorLabels {
                api: api.name,
                code,
            })
            .inc();
    }

    /// A connection was accepted; the returned guard counts it open until dropped, then
    /// closed with the reason it was given ([`OpenConnection::close`]).
    pub fn connection_opened(self: &Arc<Self>, replica_only: bool) -> OpenConnection {
        self.accepted.inc();
        let open = if replica_only {
            self.connections_replica.clone()
        } else {
            self.connections_client.clone()
        };
        open.inc();
        OpenConnection {
            metrics: self.clone(),
            open,
            reason: CloseReason::Client,
        }
    }

    /// A connection was refused at accept.
    pub fn connection_rejected(&self, reason: RejectReason) {
        self.rejected
            .get_or_create(&[("reason", reason.as_str())])
            .inc();
    }

    /// The traffic counters of `topic` (a topic held here), or of [`OTHER_TOPICS`] past the
    /// bound.
    pub fn topic(&self, topic: &str) -> TopicTraffic {
        self.topics.get(topic)
    }

    /// Counts record bytes fetched by consumers of `topic` (a topic held here).
    pub fn count_bytes_out(&self, topic: &str, bytes: u64) {
        self.topics
            .with(topic, |traffic| traffic.bytes_out.inc_by(bytes));
    }

    /// Removes `topic`'s traffic series (its last partition left this broker).
    pub fn forget_topic(&self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Counts record bytes read by a follower.
    pub fn replication_out(&self, bytes: u64) {
        self.replication_bytes_out.inc_by(bytes);
    }

    /// Counts record bytes appended as a follower.
    pub fn replication_in(&self, bytes: u64) {
        self.replication_bytes_in.inc_by(bytes);
    }

    /// Counts a committed ISR change of a partition led here.
    pub fn isr_changed(&self, shrink: bool) {
        if shrink {
            self.isr_shrinks.inc();
        } else {
            self.isr_expands.inc();
        }
    }

    /// Counts a request as waiting in `purgatory` until the guard is dropped.
    pub fn waiting(&self, purgatory: Purgatory) -> Waiting<'_> {
        let gauge = match purgatory {
            Purgatory::Produce => &self.purgatory_produce,
            Purgatory::Fetch => &self.purgatory_fetch,
        };
        gauge.inc();
        Waiting { gauge }
    }

    /// The series bounds.
    pub fn limits(&self) -> MetricsLimits {
        self.limits
    }
}

/// Registers the per-topic families and returns the cap that hands out their handles.
fn register_topic_families(registry: &mut Registry, max: usize) -> LabelCap<TopicTraffic> {
    let family = || Family::<TopicLabel, Counter>::default();
    let (bytes_in, messages_in, bytes_out, failed) = (family(), family(), family(), family());
    registry.register(
        "topic_bytes_in",
        "Record bytes appended as leader, by topic",
        bytes_in.clone(),
    );
    registry.register(
        "topic_messages_in",
        "Records appended as leader, by topic",
        messages_in.clone(),
    );
    registry.register(
        "topic_bytes_out",
        "Record bytes fetched by consumers, by topic",
        bytes_out.clone(),
    );
    registry.register(
        "topic_failed_produce_requests",
        "Produce partitions refused, by topic",
        failed.clone(),
    );
    let families = [bytes_in, messages_in, bytes_out, failed];
    let retire_families = families.clone();
    LabelCap::new(
        max,
        OTHER_TOPICS,
        move |topic| {
            let label = [("topic", topic.to_string())];
            let [bytes_in, messages_in, bytes_out, failed] = &families;
            TopicTraffic {
                bytes_in: bytes_in.get_or_create_owned(&label),
                messages_in: messages_in.get_or_create_owned(&label),
                bytes_out: bytes_out.get_or_create_owned(&label),
                failed_produce: failed.get_or_create_owned(&label),
            }
        },
        move |topic| {
            let label = [("topic", topic.to_string())];
            for family in &retire_families {
                family.remove(&label);
            }
        },
    )
}

/// Where a request waits (Kafka's delayed-operation purgatories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purgatory {
    /// An acks=all produce waiting for the high watermark.
    Produce,
    /// A fetch waiting for `min_bytes` or `max_wait_ms`.
    Fetch,
}

/// A request counted in `ferry_broker_purgatory_size` until dropped.
#[derive(Debug)]
pub struct Waiting<'a> {
    /// The gauge of its purgatory.
    gauge: &'a Gauge,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// An open connection, counted in `ferry_broker_connections` until dropped; then counted in
/// `connections_closed_total` with its reason (the client's close unless told otherwise).
#[derive(Debug)]
pub struct OpenConnection {
    /// Where to count.
    metrics: Arc<BrokerMetrics>,
    /// The open-connections gauge of its admission.
    open: Gauge,
    /// Why it closes.
    reason: CloseReason,
}

impl OpenConnection {
    /// Sets why the connection closes.
    pub fn close(&mut self, reason: CloseReason) {
        self.reason = reason;
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.dec();
        self.metrics
            .closed
            .get_or_create(&[("reason", self.reason.as_str())])
            .inc();
    }
}

/// Calls `each` with every error code of a response: the top-level one and those of each
/// topic, partition, group, resource or log dir (codes of nested detail such as a group
/// member's are not counted).
fn each_error_code(body: &ResponseKind, mut each: impl FnMut(i16)) {
    match body {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| each(p.error_code)),
        ResponseKind::Fetch(r) => {
            each(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::Metadata(r) => r.topics.iter().for_each(|t| each(t.error_code)),
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| each(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| each(t.error_code)),
        ResponseKind::FindCoordinator(r) => {
            each(r.error_code);
            r.coordinators.iter().for_each(|c| each(c.error_code));
        }
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            each(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
            for group in &r.groups {
                each(group.error_code);
                group
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| each(p.error_code));
            }
        }
        ResponseKind::ApiVersions(r) => each(r.error_code),
        ResponseKind::JoinGroup(r) => each(r.error_code),
        ResponseKind::SyncGroup(r) => each(r.error_code),
        ResponseKind::Heartbeat(r) => each(r.error_code),
        ResponseKind::LeaveGroup(r) => each(r.error_code),
        ResponseKind::InitProducerId(r) => each(r.error_code),
        ResponseKind::DescribeCluster(r) => each(r.error_code),
        ResponseKind::ListGroups(r) => each(r.error_code),
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| each(g.error_code)),
        ResponseKind::DeleteGroups(r) => r.results.iter().for_each(|g| each(g.error_code)),
        ResponseKind::OffsetDelete(r) => {
            each(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
        }
        ResponseKind::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::OffsetForLeaderEpoch(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|t| each(t.error_code)),
        ResponseKind::DescribeConfigs(r) => r.results.iter().for_each(|c| each(c.error_code)),
        ResponseKind::AlterConfigs(r) => r.responses.iter().for_each(|c| each(c.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => {
            r.responses.iter().for_each(|c| each(c.error_code))
        }
        ResponseKind::DescribeLogDirs(r) => {
            each(r.error_code);
            r.results.iter().for_each(|d| each(d.error_code));
        }
        ResponseKind::DescribeQuorum(r) => {
            each(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
        }
        // Every served API has a case above; a response of another API counts nothing.
        _ => {}
    }
}

/// One partition held here, as the scrape-time gauges read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSample {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// This broker leads it.
    pub leader: bool,
    /// Led here and the ISR is smaller than the replica set.
    pub under_replicated: bool,
    /// Led here and the ISR is smaller than `min.insync.replicas`.
    pub under_min_isr: bool,
    /// Bytes of the log on disk.
    pub size_bytes: u64,
    /// First offset of the log.
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub log_end_offset: i64,
}

/// What the scrape-time gauges read: the partitions held here (implemented by
/// [`crate::broker::Partitions`], which this module does not import).
pub trait PartitionsView: Send + Sync + 'static {
    /// Calls `each` with every partition held here, in a stable order.
    fn each_partition(&self, each: &mut dyn FnMut(PartitionSample));
}

/// Registers the scrape-time gauges over `partitions` (held weakly: a scrape after the broker
/// is gone reports nothing).
pub fn register_partition_gauges<P: PartitionsView>(
    registry: &mut Registry,
    partitions: &Arc<P>,
    limits: MetricsLimits,
) {
    let weak: Weak<P> = Arc::downgrade(partitions);
    let view: Weak<dyn PartitionsView> = weak;
    registry
        .sub_registry_with_prefix("broker")
        .register_collector(Box::new(PartitionGauges {
            partitions: view,
            max_series: limits.partitions,
        }));
}

/// One per-partition log gauge: name, help, and how to read it from a sample.
type LogGauge = (&'static str, &'static str, fn(&PartitionSample) -> i64);

/// What the broker-state gauges read, at each scrape (each `None` when unknown, which leaves
/// the gauge out of that scrape).
pub struct BrokerStateSources {
    /// The offset of the metadata image the broker serves from.
    pub metadata_offset: Box<dyn Fn() -> Option<i64> + Send + Sync>,
    /// Whether the controllers fenced the broker (always false on a single node).
    pub fenced: Box<dyn Fn() -> Option<bool> + Send + Sync>,
    /// Total and available bytes of the file system holding `log.dirs`.
    pub log_dir_space: Box<dyn Fn() -> Option<(i64, i64)> + Send + Sync>,
}

/// Registers the broker-state gauges (`metadata_offset`, `fenced`, `log_dir_*_bytes`).
pub fn register_broker_state(registry: &mut Registry, sources: BrokerStateSources) {
    let registry = registry.sub_registry_with_prefix("broker");
    let BrokerStateSources {
        metadata_offset,
        fenced,
        log_dir_space,
    } = sources;
    let log_dir_space: Arc<dyn Fn() -> Option<(i64, i64)> + Send + Sync> = Arc::from(log_dir_space);
    let available = log_dir_space.clone();
    registry.register_collector(GaugeFn::new(
        "metadata_offset",
        "Offset of the metadata image the broker serves from",
        metadata_offset,
    ));
    registry.register_collector(GaugeFn::new(
        "fenced",
        "1 while the controllers fence the broker, else 0",
        move || fenced().map(i64::from),
    ));
    registry.register_collector(GaugeFn::new(
        "log_dir_total_bytes",
        "Size of the file system holding log.dirs",
        move || log_dir_space().map(|(total, _)| total),
    ));
    registry.register_collector(GaugeFn::new(
        "log_dir_available_bytes",
        "Bytes available to the broker on the file system holding log.dirs",
        move || available().map(|(_, available)| available),
    ));
}

/// The partition gauges, read at each scrape.
struct PartitionGauges {
    /// The partitions held here.
    partitions: Weak<dyn PartitionsView>,
    /// Most partitions with their own log gauges.
    max_series: usize,
}

impl fmt::Debug for PartitionGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionGauges")
            .field("max_series", &self.max_series)
            .finish_non_exhaustive()
    }
}

impl Collector for PartitionGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(partitions) = self.partitions.upgrade() else {
            return Ok(());
        };
        let mut samples = Vec::new();
        partitions.each_partition(&mut |s| samples.push(s));
        drop(partitions);
        let count = |f: fn(&PartitionSample) -> bool| samples.iter().filter(|s| f(s)).count();
        let counts = [
            ("partitions", "Partitions held here", samples.len()),
            (
                "leader_partitions",
                "Partitions led here",
                count(|s| s.leader),
            ),
            (
                "under_replicated_partitions",
                "Partitions led here whose ISR is smaller than their replica set",
                count(|s| s.under_replicated),
            ),
            (
                "under_min_isr_partitions",
                "Partitions led here whose ISR is smaller than min.insync.replicas",
                count(|s| s.under_min_isr),
            ),
        ];
        for (name, help, value) in counts {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&(value as i64))?;
        }
        let shown = &samples[..samples.len().min(self.max_series)];
        let logs: [LogGauge; 3] = [
            ("log_size_bytes", "Bytes of a partition's log", |s| {
                s.size_bytes as i64
            }),
            (
                "log_start_offset",
                "First offset of a partition's log",
                |s| s.log_start_offset,
            ),
            ("log_end_offset", "Next offset of a partition's log", |s| {
                s.log_end_offset
            }),
        ];
        for (name, help, value) in logs {
            if shown.is_empty() {
                continue;
            }
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for sample in shown {
                let labels = PartitionLabels {
                    topic: &sample.topic,
                    partition: sample.partition,
                };
                metric
                    .encode_family(&labels)?
                    .encode_gauge(&value(sample))?;
            }
        }
        encoder
            .encode_descriptor(
                "partition_series_dropped",
                "Partitions left out of the per-partition gauges by the series bound",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&((samples.len() - shown.len()) as i64))?;
        Ok(())
    }
}

/// Labels `topic` and `partition` of a log gauge.
#[derive(Debug)]
struct PartitionLabels<'a> {
    topic: &'a str,
    partition: i32,
}

impl EncodeLabelSet for PartitionLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("topic", self.topic).encode(encoder.encode_label())?;
        ("partition", self.partition).encode(encoder.encode_label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_telemetry::metrics::{encode, registry};

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(20), "NOT_ENOUGH_REPLICAS_AFTER_APPEND");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_9999");
    }

    #[test]
    fn every_served_api_has_its_series_from_the_start() {
        let mut registry = registry();
        let metrics = BrokerMetrics::register(&mut registry, MetricsLimits::default());
        let text = encode(&registry);
        for served in SUPPORTED_APIS {
            let name = api_label(served);
            assert!(
                text.contains(&format!("ferry_broker_requests_total{{api=\"{name}\"}} 0")),
                "{name}: {text}"
            );
            assert_eq!(metrics.api_of(served.key).unwrap().name, name);
        }
        assert!(text.contains("ferry_broker_requests_total{api=\"FetchFollower\"} 0"));
    }

    /// The broker's metric names are reviewed as a list: `names.txt` holds every family with
    /// its type and labels (`UPDATE_GOLDEN=1` rewrites it; review the diff). Every family has
    /// a help text, and no counter is named `..._total` before the encoder adds the suffix.
    #[test]
    fn metric_names_match_the_reviewed_list() {
        let mut registry = registry();
        let metrics = BrokerMetrics::register(&mut registry, MetricsLimits::default());
        let view = Arc::new(Fixed(vec![sample("t", 0, true, true)]));
        register_partition_gauges(&mut registry, &view, MetricsLimits::default());
        register_broker_state(
            &mut registry,
            BrokerStateSources {
                metadata_offset: Box::new(|| Some(1)),
                fenced: Box::new(|| Some(false)),
                log_dir_space: Box::new(|| Some((2, 1))),
            },
        );
        // One sample in each family that starts empty.
        let produce = metrics.api_of(ApiKey::Produce).unwrap().clone();
        metrics.count_error(&produce, 3);
        metrics.connection_rejected(RejectReason::PerIpLimit);
        metrics.topic("t").bytes_in.inc();
        crate::metrics::testing::assert_names_match(&encode(&registry), "names.txt");
    }

    #[test]
    fn errors_are_counted_per_partition_and_top_level() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::messages::{FetchResponse, HeartbeatResponse};
        let mut registry = registry();
        let metrics = BrokerMetrics::register(&mut registry, MetricsLimits::default());
        let fetch = metrics.api_of(ApiKey::Fetch).unwrap().clone();
        let partition = |code: i16| PartitionData::default().with_error_code(code);
        let response = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(vec![
                partition(0),
                partition(6),
                partition(6),
                partition(3),
            ]),
        ]);
        metrics.count_errors(&fetch, &ResponseKind::Fetch(response));
        let heartbeat = metrics.api_of(ApiKey::Heartbeat).unwrap().clone();
        let response = HeartbeatResponse::default().with_error_code(27);
        metrics.count_errors(&heartbeat, &ResponseKind::Heartbeat(response));
        let text = encode(&registry);
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ferry_broker_request_errors_total"))
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        for expected in [
            "{api=\"FetchConsumer\",error=\"NOT_LEADER_OR_FOLLOWER\"} 2",
            "{api=\"FetchConsumer\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"} 1",
            "{api=\"Heartbeat\",error=\"REBALANCE_IN_PROGRESS\"} 1",
        ] {
            assert!(
                errors.iter().any(|l| l.ends_with(expected)),
                "{expected}: {errors:?}"
            );
        }
    }

    struct Fixed(Vec<PartitionSample>);

    impl PartitionsView for Fixed {
        fn each_partition(&self, each: &mut dyn FnMut(PartitionSample)) {
            self.0.iter().cloned().for_each(each);
        }
    }

    fn sample(topic: &str, partition: i32, leader: bool, isr_short: bool) -> PartitionSample {
        PartitionSample {
            topic: topic.into(),
            partition,
            leader,
            under_replicated: leader && isr_short,
            under_min_isr: false,
            size_bytes: 100,
            log_start_offset: 0,
            log_end_offset: 7,
        }
    }

    #[test]
    fn partition_gauges_count_and_cap_their_series() {
        let mut registry = registry();
        let limits = MetricsLimits {
            topics: 10,
            partitions: 2,
        };
        let view = Arc::new(Fixed(vec![
            sample("a", 0, true, true),
            sample("a", 1, false, true),
            sample("b", 0, true, false),
        ]));
        register_partition_gauges(&mut registry, &view, limits);
        let text = encode(&registry);
        assert!(text.contains("ferry_broker_partitions 3\n"), "{text}");
        assert!(text.contains("ferry_broker_leader_partitions 2\n"));
        assert!(text.contains("ferry_broker_under_replicated_partitions 1\n"));
        assert!(text.contains("ferry_broker_log_end_offset{topic=\"a\",partition=\"1\"} 7\n"));
        assert!(!text.contains("topic=\"b\""), "beyond the cap: {text}");
        assert!(text.contains("ferry_broker_partition_series_dropped 1\n"));
        drop(view);
        let text = encode(&registry);
        assert!(!text.contains("ferry_broker_partitions"), "{text}");
    }
}
