//! The node's `/metrics` on its admin port, scraped over plain HTTP/1.1 after raw Kafka
//! requests: exact request, error and traffic counts, the partition gauges, a deleted topic's
//! series going away, and the bound on topic series. The admin gRPC status still answers on
//! the same port over h2c. A consumer group's lag is the produced minus the committed count
//! exactly, with its state, and its series go when the group is deleted.

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_data_plane::broker::BrokerConfig;
use ferry_data_plane::metrics::broker::MetricsLimits;
use ferry_data_plane::node::{Node, NodeConfig, Role};
use ferry_data_plane::server::ServerOptions;
use ferry_proto::node::v1::GetStatusRequest;
use ferry_proto::node::v1::node_service_client::NodeServiceClient;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use support::{GROUP_CONFIGS, RawClient, batch, create_topic, find_coordinator, name, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A single node with an admin listener, stopped when `stop` is cancelled.
struct MetricsNode {
    kafka: SocketAddr,
    admin: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsNode {
    async fn start(dir: &Path, limits: MetricsLimits) -> MetricsNode {
        Self::start_with(dir, limits, &[]).await
    }

    /// [`Self::start`] with broker configs by Kafka name.
    async fn start_with(
        dir: &Path,
        limits: MetricsLimits,
        configs: &[(&str, &str)],
    ) -> MetricsNode {
        let mut broker = BrokerConfig::new(1, dir.join("logs"));
        broker.apply_kafka_configs(configs.iter().copied()).unwrap();
        broker.metrics = limits;
        let node = Node::bind(NodeConfig {
            node_id: 1,
            cluster_id: None,
            roles: vec![Role::Broker, Role::Controller],
            data_dir: dir.to_path_buf(),
            kafka_listen: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
            rack: None,
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            server: ServerOptions::default(),
            broker,
            controller_quorum: BTreeMap::new(),
            controller_listen: None,
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_secs(2),
            tls: None,
        })
        .await
        .unwrap();
        let (kafka, admin) = (node.kafka_addr().unwrap(), node.admin_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(node.run(stop.clone().cancelled_owned()));
        MetricsNode {
            kafka,
            admin,
            stop,
            task,
        }
    }

    async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// `GET /metrics` over HTTP/1.1; the body, after checking the status and content type.
async fn scrape(admin: SocketAddr) -> String {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("scrape answered within 10 s")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.to_string()
}

/// The value of the sample `series` (name with labels, exactly as encoded), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// [`value`], which must be present.
fn must(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Scrapes until `check` holds (counters bumped by another task, such as a closing
/// connection), for up to 10 s.
async fn scrape_until(admin: SocketAddr, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(admin).await;
        if check(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn produce(client: &mut RawClient, topic: &str, records: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    match client
        .call(ApiKey::Produce, 9, RequestKind::Produce(request))
        .await
    {
        ResponseKind::Produce(r) => r.responses[0].partition_responses[0].error_code,
        other => panic!("unexpected {other:?}"),
    }
}

/// A consumer Fetch of partition 0 of `topic` from offset 0; the record bytes returned.
async fn fetch(client: &mut RawClient, topic: &str) -> usize {
    fetch_waiting(client, topic, 0).await
}

/// [`fetch`], waiting up to `max_wait_ms` for a byte.
async fn fetch_waiting(client: &mut RawClient, topic: &str, max_wait_ms: i32) -> usize {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    match client
        .call(ApiKey::Fetch, 11, RequestKind::Fetch(request))
        .await
    {
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            p.records.as_ref().map_or(0, Bytes::len)
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn delete_topic(client: &mut RawClient, topic: &str) {
    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![name(topic)])
        .with_timeout_ms(5000);
    match client
        .call(ApiKey::DeleteTopics, 5, RequestKind::DeleteTopics(delete))
        .await
    {
        ResponseKind::DeleteTopics(r) => assert_eq!(r.responses[0].error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn scraped_counters_match_the_requests_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetricsNode::start(dir.path(), MetricsLimits::default()).await;

    // The admin port still serves gRPC over h2c beside /metrics.
    let mut status = NodeServiceClient::connect(format!("http://{}", node.admin))
        .await
        .unwrap();
    let status = status
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.node_id, 1);

    let mut client = RawClient::connect(node.kafka).await;
    create_topic(&mut client, "metered", &[]).await;
    let records = batch(4, 100, 0);
    for _ in 0..3 {
        assert_eq!(produce(&mut client, "metered", records.clone()).await, 0);
    }
    // A topic that does not exist is an error, and never a label.
    assert_eq!(
        produce(&mut client, "made-up-name", records.clone()).await,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let fetched = fetch(&mut client, "metered").await;
    assert_eq!(
        fetched,
        3 * records.len(),
        "one fetch returns the three batches"
    );

    let text = scrape(node.admin).await;
    let bytes = 3.0 * records.len() as f64;
    assert_eq!(
        must(&text, "ferry_broker_requests_total{api=\"Produce\"}"),
        4.0
    );
    assert_eq!(
        must(&text, "ferry_broker_requests_total{api=\"FetchConsumer\"}"),
        1.0
    );
    assert_eq!(
        must(&text, "ferry_broker_requests_total{api=\"FetchFollower\"}"),
        0.0
    );
    assert_eq!(
        must(&text, "ferry_broker_requests_total{api=\"CreateTopics\"}"),
        1.0
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_request_duration_seconds_count{api=\"Produce\"}"
        ),
        4.0
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_request_queue_seconds_count{api=\"Produce\"}"
        ),
        4.0
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_request_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_topic_bytes_in_total{topic=\"metered\"}"
        ),
        bytes
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_topic_messages_in_total{topic=\"metered\"}"
        ),
        12.0
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_topic_bytes_out_total{topic=\"metered\"}"
        ),
        bytes
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_topic_failed_produce_requests_total{topic=\"metered\"}"
        ),
        0.0
    );
    assert!(!text.contains("made-up-name"), "{text}");
    assert_eq!(
        must(
            &text,
            "ferry_broker_log_end_offset{topic=\"metered\",partition=\"0\"}"
        ),
        12.0
    );
    let partitions = must(&text, "ferry_broker_partitions");
    assert!(partitions >= 1.0);
    assert_eq!(must(&text, "ferry_broker_leader_partitions"), partitions);
    assert_eq!(must(&text, "ferry_broker_under_replicated_partitions"), 0.0);
    assert_eq!(
        must(&text, "ferry_broker_connections{admission=\"client\"}"),
        1.0
    );
    assert_eq!(must(&text, "ferry_broker_connections_accepted_total"), 1.0);
    assert_eq!(must(&text, "ferry_broker_fenced"), 0.0);
    assert!(
        must(&text, "ferry_broker_metadata_offset") >= 1.0,
        "the topic's records"
    );
    let total = must(&text, "ferry_broker_log_dir_total_bytes");
    let available = must(&text, "ferry_broker_log_dir_available_bytes");
    assert!(
        total > 0.0 && available > 0.0 && available <= total,
        "{total} {available}"
    );

    // Closing the connection moves it from open to closed by the client.
    drop(client);
    let text = scrape_until(node.admin, |t| {
        value(
            t,
            "ferry_broker_connections_closed_total{reason=\"client\"}",
        ) == Some(1.0)
    })
    .await;
    assert_eq!(
        must(
            &text,
            "ferry_broker_connections_closed_total{reason=\"client\"}"
        ),
        1.0
    );
    assert_eq!(
        must(&text, "ferry_broker_connections{admission=\"client\"}"),
        0.0
    );

    // A deleted topic leaves no series behind.
    let mut client = RawClient::connect(node.kafka).await;
    delete_topic(&mut client, "metered").await;
    let text = scrape(node.admin).await;
    assert!(!text.contains("topic=\"metered\""), "{text}");
    node.shutdown().await;
}

#[tokio::test]
async fn topics_beyond_the_bound_share_one_series() {
    let dir = tempfile::tempdir().unwrap();
    let limits = MetricsLimits {
        topics: 2,
        ..MetricsLimits::default()
    };
    let node = MetricsNode::start(dir.path(), limits).await;
    let mut client = RawClient::connect(node.kafka).await;
    let records = batch(2, 10, 0);
    for topic in ["t1", "t2", "t3", "t4"] {
        create_topic(&mut client, topic, &[]).await;
        assert_eq!(produce(&mut client, topic, records.clone()).await, 0);
    }
    let text = scrape(node.admin).await;
    let series = text
        .lines()
        .filter(|l| l.starts_with("ferry_broker_topic_bytes_in_total{"))
        .count();
    assert_eq!(series, 3, "two topics and the overflow: {text}");
    let one = records.len() as f64;
    assert_eq!(
        must(&text, "ferry_broker_topic_bytes_in_total{topic=\"t1\"}"),
        one
    );
    assert_eq!(
        must(&text, "ferry_broker_topic_bytes_in_total{topic=\"t2\"}"),
        one
    );
    assert_eq!(
        must(
            &text,
            "ferry_broker_topic_bytes_in_total{topic=\"(other)\"}"
        ),
        2.0 * one
    );

    // Deleting an admitted topic frees its slot for the next topic created here; topics
    // already counted under the overflow stay there.
    delete_topic(&mut client, "t1").await;
    create_topic(&mut client, "t5", &[]).await;
    assert_eq!(produce(&mut client, "t5", records.clone()).await, 0);
    assert_eq!(produce(&mut client, "t4", records.clone()).await, 0);
    let text = scrape(node.admin).await;
    let bytes_in = |topic: &str| {
        value(
            &text,
            &format!("ferry_broker_topic_bytes_in_total{{topic=\"{topic}\"}}"),
        )
    };
    assert_eq!(bytes_in("t1"), None);
    assert_eq!(bytes_in("t4"), None);
    assert_eq!(bytes_in("t5"), Some(one));
    assert_eq!(bytes_in("(other)"), Some(3.0 * one));
    node.shutdown().await;
}

#[tokio::test]
async fn a_waiting_fetch_is_in_the_purgatory_until_answered() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetricsNode::start(dir.path(), MetricsLimits::default()).await;
    let mut client = RawClient::connect(node.kafka).await;
    create_topic(&mut client, "quiet", &[]).await;
    let waiting = "ferry_broker_purgatory_size{operation=\"fetch\"}";
    assert_eq!(must(&scrape(node.admin).await, waiting), 0.0);

    // An empty partition: the fetch waits for a byte, for up to 30 s.
    let mut consumer = RawClient::connect(node.kafka).await;
    let fetch = tokio::spawn(async move { fetch_waiting(&mut consumer, "quiet", 30_000).await });
    let text = scrape_until(node.admin, |t| value(t, waiting) == Some(1.0)).await;
    assert_eq!(must(&text, waiting), 1.0);

    // An append wakes it; it leaves the purgatory with the batch.
    let records = batch(1, 10, 0);
    assert_eq!(produce(&mut client, "quiet", records.clone()).await, 0);
    assert_eq!(fetch.await.unwrap(), records.len());
    let text = scrape_until(node.admin, |t| value(t, waiting) == Some(0.0)).await;
    assert_eq!(must(&text, waiting), 0.0);
    node.shutdown().await;
}

#[tokio::test]
async fn refused_and_closed_connections_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [("max.connections.per.ip", "1")];
    let node = MetricsNode::start_with(dir.path(), MetricsLimits::default(), &configs).await;
    // One client connection from 127.0.0.1, then the replica reserve fills, then refusals.
    let reserve = ferry_data_plane::server::REPLICA_CONNECTIONS_RESERVED;
    let mut open = Vec::new();
    for _ in 0..1 + reserve + 2 {
        open.push(TcpStream::connect(node.kafka).await.unwrap());
    }
    let rejected = "ferry_broker_connections_rejected_total{reason=\"per_ip_limit\"}";
    let text = scrape_until(node.admin, |t| value(t, rejected) == Some(2.0)).await;
    assert_eq!(must(&text, rejected), 2.0);
    assert_eq!(
        must(&text, "ferry_broker_connections{admission=\"client\"}"),
        1.0
    );
    assert_eq!(
        must(&text, "ferry_broker_connections{admission=\"replica\"}"),
        reserve as f64
    );
    assert_eq!(
        must(&text, "ferry_broker_connections_accepted_total"),
        (1 + reserve) as f64
    );

    // A frame over socket.request.max.bytes closes the client connection for that reason.
    open[0].write_all(&i32::MAX.to_be_bytes()).await.unwrap();
    let closed = "ferry_broker_connections_closed_total{reason=\"frame\"}";
    let text = scrape_until(node.admin, |t| value(t, closed) == Some(1.0)).await;
    assert_eq!(must(&text, closed), 1.0);
    assert_eq!(
        must(&text, "ferry_broker_connections{admission=\"client\"}"),
        0.0
    );
    drop(open);
    node.shutdown().await;
}

/// A JoinGroup v5 of `member_id` to `group` (retrying while the coordinator loads).
async fn join(client: &mut RawClient, group: &str, member_id: &str) -> JoinGroupResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(text(member_id))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ]);
        let ResponseKind::JoinGroup(r) = client
            .call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(request))
            .await
        else {
            panic!("wrong response kind");
        };
        if r.error_code != ResponseError::CoordinatorLoadInProgress.code() {
            return r;
        }
        assert!(Instant::now() < deadline, "coordinator loaded within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Commits `offset` for partition 0 of `topic` as `member` of generation 1; the error code.
async fn commit(
    client: &mut RawClient,
    group: &str,
    member: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(text(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1),
                ]),
        ]);
    let ResponseKind::OffsetCommit(r) = client
        .call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request))
        .await
    else {
        panic!("wrong response kind");
    };
    r.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lag_is_produced_minus_committed_and_goes_with_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetricsNode::start_with(dir.path(), MetricsLimits::default(), GROUP_CONFIGS).await;
    let mut client = RawClient::connect(node.kafka).await;
    create_topic(&mut client, "lagged", &[]).await;
    // N = 3 batches of 4 records.
    let records = batch(4, 10, 0);
    for _ in 0..3 {
        assert_eq!(produce(&mut client, "lagged", records.clone()).await, 0);
    }
    let produced = 12.0;
    assert_eq!(find_coordinator(&mut client, "g").await, 1);

    // Join (the first join hands out the member id), sync: one Stable member.
    let first = join(&mut client, "g", "").await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.to_string();
    let joined = join(&mut client, "g", &member).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id(1)
        .with_member_id(text(&member))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(text(&member))
                .with_assignment(Bytes::from_static(b"lagged-0")),
        ]);
    let ResponseKind::SyncGroup(r) = client
        .call(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(sync))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.error_code, 0);

    // Committed K = 5: lag N - K.
    assert_eq!(commit(&mut client, "g", &member, "lagged", 5).await, 0);
    let series = "{group=\"g\",topic=\"lagged\",partition=\"0\"}";
    let scraped = scrape(node.admin).await;
    assert_eq!(
        must(&scraped, &format!("ferry_group_lag{series}")),
        produced - 5.0
    );
    assert_eq!(
        must(&scraped, &format!("ferry_group_committed_offset{series}")),
        5.0
    );
    assert_eq!(
        must(&scraped, "ferry_group_lag_sum{group=\"g\"}"),
        produced - 5.0
    );
    assert_eq!(must(&scraped, "ferry_group_members{group=\"g\"}"), 1.0);
    assert_eq!(must(&scraped, "ferry_groups{state=\"Stable\"}"), 1.0);
    assert_eq!(must(&scraped, "ferry_groups{state=\"Empty\"}"), 0.0);
    assert_eq!(must(&scraped, "ferry_group_series_dropped"), 0.0);

    // Committed N: no lag.
    assert_eq!(commit(&mut client, "g", &member, "lagged", 12).await, 0);
    let scraped = scrape(node.admin).await;
    assert_eq!(must(&scraped, &format!("ferry_group_lag{series}")), 0.0);
    assert_eq!(must(&scraped, "ferry_group_lag_sum{group=\"g\"}"), 0.0);

    // The member leaves (the group is Empty), then the group is deleted: its series go.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(text(&member)),
        ]);
    let ResponseKind::LeaveGroup(r) = client
        .call(ApiKey::LeaveGroup, 3, RequestKind::LeaveGroup(leave))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.error_code, 0);
    let scraped = scrape(node.admin).await;
    assert_eq!(must(&scraped, "ferry_groups{state=\"Empty\"}"), 1.0);
    assert_eq!(must(&scraped, "ferry_group_members{group=\"g\"}"), 0.0);
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("g"))]);
    let ResponseKind::DeleteGroups(r) = client
        .call(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(delete))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.results[0].error_code, 0);
    let scraped = scrape(node.admin).await;
    assert!(!scraped.contains("group=\"g\""), "{scraped}");
    assert_eq!(must(&scraped, "ferry_groups{state=\"Empty\"}"), 0.0);

    drop(client);
    node.shutdown().await;
}
