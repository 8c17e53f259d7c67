//! Kafka input bounds, attacked as a client on the network would: record batches whose counts
//! or compressed sizes lie, produce requests to internal topics, logs that already hold such a
//! batch, and connections that idle or pile up from one address.
//!
//! Each test runs a node in-process on port 0 and speaks raw Kafka frames. Memory is measured
//! as the peak resident set of this test's process (`VmHWM`; nextest runs every test in its
//! own process), which includes the node, the client and the attack itself.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ferry_data_plane::log::batch::{compute_crc, set_base_offset};
use ferry_data_plane::log::file::partition_dir;
use ferry_data_plane::server::ServerOptions;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use support::{
    GROUP_CONFIGS, RawClient, TestNode, batch, create_topic, find_coordinator, name, text,
};

/// The bound the peak resident set of a test process must stay under.
const RSS_BOUND_BYTES: u64 = 512 << 20;

/// Peak resident set of this process, from `/proc/self/status`.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// Wall-clock milliseconds: record timestamps retention will not delete.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn assert_rss_bounded(what: &str) {
    let peak = peak_rss_bytes();
    eprintln!("{what}: peak RSS {} MiB", peak >> 20);
    assert!(
        peak < RSS_BOUND_BYTES,
        "{what}: peak RSS {peak} bytes is over {RSS_BOUND_BYTES}"
    );
}

/// Produce v9 of `records` to one partition; returns (error code, base offset).
async fn produce(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ]);
    let ResponseKind::Produce(r) = client
        .call(ApiKey::Produce, 9, RequestKind::Produce(request))
        .await
    else {
        panic!("wrong response kind");
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// ListOffsets v7 for one partition: (error code, offset, timestamp). `timestamp` -1 is the
/// log end, -2 the log start, anything else the first record at or after it.
async fn list_offset(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(timestamp)
                        .with_current_leader_epoch(-1),
                ]),
        ]);
    let ResponseKind::ListOffsets(r) = client
        .call(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(request))
        .await
    else {
        panic!("wrong response kind");
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// Waits until a restarted node leads `topic`-0 again (ListOffsets answers without error).
async fn wait_for_leadership(client: &mut RawClient, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while list_offset(client, topic, 0, -2).await.0 != 0 {
        assert!(Instant::now() < deadline, "{topic}-0 led within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rewrites `batch` to claim `count` records with a matching lastOffsetDelta, at `base_offset`,
/// with a valid CRC: the attacker's batch (its bytes hold far fewer records).
fn claiming(batch: &[u8], count: i32, base_offset: i64) -> Bytes {
    let mut out = batch.to_vec();
    out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    set_base_offset(&mut out, base_offset);
    Bytes::from(out)
}

/// A v2 batch header (CreateTime, no producer) claiming `count` records, around `records`
/// compressed with codec `codec` (attributes bits 0-2).
fn compressed_batch(codec: i16, count: i32, timestamp: i64, records: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(0); // baseOffset
    b.put_i32((61 - 12 + records.len()) as i32); // batchLength
    b.put_i32(-1); // partitionLeaderEpoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, below
    b.put_i16(codec); // attributes
    b.put_i32(count - 1); // lastOffsetDelta
    b.put_i64(timestamp); // baseTimestamp
    b.put_i64(timestamp); // maxTimestamp
    b.put_i64(-1); // producerId
    b.put_i16(-1); // producerEpoch
    b.put_i32(-1); // baseSequence
    b.put_i32(count); // recordsCount
    b.put_slice(records);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// Zeros streamed through `encoder` in 1 MiB writes, `total` bytes in all.
fn stream_zeros<W: Write>(encoder: &mut W, total: usize) {
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..total / chunk.len() {
        encoder.write_all(&chunk).unwrap();
    }
}

/// A gzip stream that inflates to 1 GiB of zeros: 16 members of 64 MiB each (a gzip stream may
/// hold several members, and Kafka's Java client reads them all), about 1 MiB in all.
fn gzip_bomb() -> Vec<u8> {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    stream_zeros(&mut member, 64 << 20);
    let member = member.finish().unwrap();
    member.repeat(16)
}

/// A zstd frame that inflates to 1 GiB of zeros.
fn zstd_bomb() -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    stream_zeros(&mut encoder, 1 << 30);
    encoder.finish().unwrap()
}

/// A batch written straight into the newest segment file of `topic-partition` (the node is
/// stopped), at the log's end offset: a log written before records were checked.
fn append_to_segment(logs: &Path, topic: &str, partition: i32, build: impl Fn(i64) -> Bytes) {
    let dir = partition_dir(logs, topic, partition);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let segment = segments.pop().expect("a segment file");
    let base: i64 = segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let (mut at, mut next) = (0, base);
    while at + 61 <= bytes.len() {
        let base_offset = i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let length = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(bytes[at + 23..at + 27].try_into().unwrap());
        next = base_offset + i64::from(delta) + 1;
        at += 12 + length;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&build(next)).unwrap();
    file.sync_all().unwrap();
    // As after a crash: the log is scanned and its indexes rebuilt, so the batch is indexed
    // as the broker that wrote it would have indexed it.
    std::fs::remove_file(dir.join("clean-shutdown")).unwrap();
}

#[tokio::test]
async fn a_batch_claiming_two_billion_records_is_refused_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "t", &[]).await;
    assert_eq!(produce(&mut client, "t", 0, batch(2, 10, t)).await, (0, 0));

    let attack = claiming(&batch(1, 10, t + 4_000), i32::MAX, 0);
    let (code, _) = produce(&mut client, "t", 0, attack).await;
    assert!(
        [
            ResponseError::InvalidRecord.code(),
            ResponseError::CorruptMessage.code()
        ]
        .contains(&code),
        "refused with INVALID_RECORD or CORRUPT_MESSAGE, got {code}"
    );
    assert_eq!(
        list_offset(&mut client, "t", 0, -1).await,
        (0, 2, -1),
        "nothing written"
    );
    assert_eq!(list_offset(&mut client, "t", 0, t - 500).await, (0, 0, t));
    assert_eq!(list_offset(&mut client, "t", 0, t + 3_000).await.1, -1);

    drop(client);
    node.shutdown().await;
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    wait_for_leadership(&mut client, "t").await;
    assert_eq!(list_offset(&mut client, "t", 0, t - 500).await, (0, 0, t));
    assert_eq!(
        produce(&mut client, "t", 0, batch(1, 10, t + 1_000)).await,
        (0, 2)
    );
    assert_rss_bounded("2^31-1 records");
    node.shutdown().await;
}

#[tokio::test]
async fn a_gzip_batch_that_inflates_to_a_gibibyte_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    // Room for the compressed bomb, so the refusal is about what it inflates to.
    create_topic(&mut client, "t", &[("max.message.bytes", "4194304")]).await;
    let bomb = gzip_bomb();
    eprintln!("gzip bomb: {} bytes for 1 GiB", bomb.len());
    assert!(
        bomb.len() > 1_000_000 && bomb.len() < 2 << 20,
        "{}",
        bomb.len()
    );
    let (code, _) = produce(&mut client, "t", 0, compressed_batch(1, 1, 1_000, &bomb)).await;
    assert_eq!(code, ResponseError::InvalidRecord.code());
    // Count-consistent bombs too: as many records as the zeros could hold.
    let count = ((1u64 << 30) / 7) as i32;
    let (code, _) = produce(
        &mut client,
        "t",
        0,
        compressed_batch(1, count, 1_000, &bomb),
    )
    .await;
    assert_eq!(code, ResponseError::InvalidRecord.code());
    assert_eq!(
        list_offset(&mut client, "t", 0, -1).await,
        (0, 0, -1),
        "nothing written"
    );
    assert_eq!(list_offset(&mut client, "t", 0, 0).await.1, -1);
    assert_eq!(
        produce(&mut client, "t", 0, batch(1, 10, 1_000)).await,
        (0, 0)
    );
    assert_rss_bounded("gzip 1 GiB");
    node.shutdown().await;
}

#[tokio::test]
async fn a_zstd_batch_that_inflates_to_a_gibibyte_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "t", &[]).await;
    let bomb = zstd_bomb();
    eprintln!("zstd bomb: {} bytes for 1 GiB", bomb.len());
    let (code, _) = produce(&mut client, "t", 0, compressed_batch(4, 1, 1_000, &bomb)).await;
    assert_eq!(code, ResponseError::InvalidRecord.code());
    assert_eq!(
        list_offset(&mut client, "t", 0, -1).await,
        (0, 0, -1),
        "nothing written"
    );
    assert_rss_bounded("zstd 1 GiB");
    node.shutdown().await;
}

/// Commits `offset` for t-0 as a standalone consumer (generation -1), retrying while the
/// coordinator loads; returns the error code.
async fn commit(client: &mut RawClient, group: &str, offset: i64) -> i16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(text(""))
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(text(""))),
                    ]),
            ]);
        let ResponseKind::OffsetCommit(r) = client
            .call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request))
            .await
        else {
            panic!("wrong response kind");
        };
        let code = r.topics[0].partitions[0].error_code;
        if code != ResponseError::CoordinatorLoadInProgress.code() || Instant::now() > deadline {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The committed offset of t-0 for `group`, retrying while the coordinator loads.
async fn committed(client: &mut RawClient, group: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = OffsetFetchRequest::default().with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(text(group)))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(name("t"))
                        .with_partition_indexes(vec![0]),
                ])),
        ]);
        let ResponseKind::OffsetFetch(r) = client
            .call(ApiKey::OffsetFetch, 8, RequestKind::OffsetFetch(request))
            .await
        else {
            panic!("wrong response kind");
        };
        let group = &r.groups[0];
        if group.error_code == 0 {
            return group
                .topics
                .first()
                .map_or(-1, |t| t.partitions[0].committed_offset);
        }
        assert_eq!(
            group.error_code,
            ResponseError::CoordinatorLoadInProgress.code()
        );
        assert!(Instant::now() < deadline, "loaded within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_internal_topics_is_refused_and_groups_still_commit() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), GROUP_CONFIGS, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "t", &[]).await;
    find_coordinator(&mut client, "g").await;
    assert_eq!(commit(&mut client, "g", 42).await, 0);

    let ends = async |client: &mut RawClient| {
        let mut ends = Vec::new();
        for p in 0..3 {
            ends.push(list_offset(client, "__consumer_offsets", p, -1).await);
        }
        ends
    };
    let before = ends(&mut client).await;
    for p in 0..3 {
        let (code, _) = produce(&mut client, "__consumer_offsets", p, batch(1, 10, 0)).await;
        assert_eq!(
            code,
            ResponseError::InvalidTopicException.code(),
            "partition {p}"
        );
    }
    let (code, _) = produce(&mut client, "__transaction_state", 0, batch(1, 10, 0)).await;
    assert_eq!(code, ResponseError::InvalidTopicException.code());
    assert_eq!(ends(&mut client).await, before, "nothing written");

    // The coordinator's own writes do not go through Produce.
    assert_eq!(commit(&mut client, "g", 43).await, 0);
    assert_eq!(committed(&mut client, "g").await, 43);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_holding_a_bad_batch_loads_skips_it_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    // Current timestamps: the bad batch's offsets make the next append roll a segment, and
    // retention would delete a segment of 1970.
    let t = now_ms();
    let node = TestNode::start(dir.path(), GROUP_CONFIGS, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "t", &[]).await;
    assert_eq!(produce(&mut client, "t", 0, batch(2, 10, t)).await, (0, 0));
    find_coordinator(&mut client, "g").await;
    assert_eq!(commit(&mut client, "g", 42).await, 0);
    drop(client);
    node.shutdown().await;

    // What an old broker could have written: a batch claiming 2^31-1 records, in the data
    // topic and in every offsets partition.
    let logs = dir.path().join("logs");
    let attack = |base: i64| claiming(&batch(1, 10, t + 4_000), i32::MAX, base);
    append_to_segment(&logs, "t", 0, attack);
    for p in 0..3 {
        append_to_segment(&logs, "__consumer_offsets", p, attack);
    }

    let node = TestNode::start(dir.path(), GROUP_CONFIGS, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    wait_for_leadership(&mut client, "t").await;
    find_coordinator(&mut client, "g").await;
    assert_eq!(
        committed(&mut client, "g").await,
        42,
        "replayed past the bad batch"
    );
    assert_eq!(commit(&mut client, "g", 43).await, 0);
    assert_eq!(committed(&mut client, "g").await, 43);
    // Appending moves the high watermark past the bad batch, so lookups reach it: they answer
    // at its level instead of decoding it.
    let end = list_offset(&mut client, "t", 0, -1).await.1;
    assert_eq!(
        produce(&mut client, "t", 0, batch(1, 10, t + 5_000)).await,
        (0, end)
    );
    assert_eq!(
        list_offset(&mut client, "t", 0, t + 3_000).await,
        (0, 2, t + 4_000)
    );
    assert_eq!(list_offset(&mut client, "t", 0, t - 500).await, (0, 0, t));
    assert_eq!(
        list_offset(&mut client, "t", 0, t + 4_500).await,
        (0, end, t + 5_000)
    );
    assert_rss_bounded("bad batches on disk");
    node.shutdown().await;
}

/// DescribeConfigs v4 of broker 1, for the named configs: (name, value) pairs.
async fn broker_configs(client: &mut RawClient, names: &[&str]) -> Vec<(String, String)> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(text("1"))
            .with_configuration_keys(Some(names.iter().map(|n| text(n)).collect())),
    ]);
    let ResponseKind::DescribeConfigs(r) = client
        .call(
            ApiKey::DescribeConfigs,
            4,
            RequestKind::DescribeConfigs(request),
        )
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.results[0].error_code, 0);
    r.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().unwrap().to_string()))
        .collect()
}

async fn api_versions(client: &mut RawClient) {
    let r = client
        .call(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await;
    assert!(matches!(r, ResponseKind::ApiVersions(r) if r.error_code == 0));
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_connections_max_idle_ms() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [("connections.max.idle.ms", "300")];
    let node = TestNode::start(dir.path(), &configs, ServerOptions::default()).await;
    let mut busy = RawClient::connect(node.addr).await;
    assert_eq!(
        broker_configs(
            &mut busy,
            &["connections.max.idle.ms", "max.connections.per.ip"]
        )
        .await,
        vec![
            ("connections.max.idle.ms".to_string(), "300".to_string()),
            ("max.connections.per.ip".to_string(), "1000".to_string()),
        ]
    );
    let mut idle = RawClient::connect(node.addr).await;
    api_versions(&mut idle).await;
    // A connection that keeps asking is never idle, for several times the limit.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_200) {
        api_versions(&mut busy).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle.is_closed().await, "the idle connection was closed");
    api_versions(&mut busy).await;
    node.shutdown().await;
}

#[tokio::test]
async fn the_per_ip_cap_refuses_the_connection_over_it_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [("max.connections.per.ip", "2")];
    let node = TestNode::start(dir.path(), &configs, ServerOptions::default()).await;
    let mut first = RawClient::connect(node.addr).await;
    let mut second = RawClient::connect(node.addr).await;
    api_versions(&mut first).await;
    api_versions(&mut second).await;

    // The third connection from 127.0.0.1 is over the cap: it may only fetch as a replica, so a
    // client request closes it.
    let mut third = RawClient::connect(node.addr).await;
    let (_, frame) = third.frame(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    third.send_raw(&frame).await;
    assert!(
        third.is_closed().await,
        "the connection over the cap was refused"
    );

    // A follower's Fetch (replica id set) is served even with the cap reached.
    let mut replica = RawClient::connect(node.addr).await;
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(2))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name("none"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20)
                        .with_current_leader_epoch(-1)
                        .with_last_fetched_epoch(-1),
                ]),
        ]);
    let r = replica
        .call(ApiKey::Fetch, 12, RequestKind::Fetch(fetch))
        .await;
    assert!(matches!(r, ResponseKind::Fetch(_)));

    // Once a client connection closes, a new client gets its slot.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut next = RawClient::connect(node.addr).await;
        let (_, frame) = next.frame(
            ApiKey::ApiVersions,
            3,
            &RequestKind::ApiVersions(ApiVersionsRequest::default()),
        );
        next.send_raw(&frame).await;
        if next.read_frame().await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "a slot came back within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api_versions(&mut second).await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_new_client_connects_once_idle_connections_holding_every_slot_were_closed() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [("connections.max.idle.ms", "400")];
    let options = ServerOptions {
        max_connections: 2,
        ..ServerOptions::default()
    };
    let node = TestNode::start(dir.path(), &configs, options).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut client = RawClient::connect(node.addr).await;
        api_versions(&mut client).await;
        idle.push(client);
    }
    // Every client slot is taken: a new client's request closes its connection.
    let mut refused = RawClient::connect(node.addr).await;
    let (_, frame) = refused.frame(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    refused.send_raw(&frame).await;
    assert!(refused.is_closed().await, "no slot for a third client");
    for client in &mut idle {
        assert!(client.is_closed().await, "idle connections were closed");
    }
    let mut fresh = RawClient::connect(node.addr).await;
    api_versions(&mut fresh).await;
    node.shutdown().await;
}
