//! End-to-end: a real `ferry node` process attacked with record batches that lie about their
//! size, measured from outside. The broker's own peak resident set (`VmHWM` of the child
//! process) must stay bounded, and the node must serve and restart afterwards.
//!
//! What is asserted is state and memory, never a duration.

use crate::support;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ferry_data_plane::log::batch::compute_crc;
use kafka_protocol::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use support::{NodeProcess, kafka_call};

/// The bound on the broker process's peak resident set.
const RSS_BOUND_BYTES: u64 = 512 << 20;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Peak resident set of process `pid`.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmHWM");
    kib * 1024
}

fn assert_rss_bounded(node: &NodeProcess, what: &str) {
    let peak = peak_rss_bytes(node.child.id());
    eprintln!("{what}: broker peak RSS {} MiB", peak >> 20);
    assert!(
        peak < RSS_BOUND_BYTES,
        "{what}: broker peak RSS {peak} bytes"
    );
}

/// One uncompressed batch of `count` small records at `timestamp`.
fn batch(count: i64, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp,
            key: None,
            value: Some(Bytes::from_static(b"value")),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// `batch` rewritten to claim 2^31-1 records (lastOffsetDelta matching), CRC fixed.
fn claiming_two_billion(batch: &[u8]) -> Bytes {
    let mut out = batch.to_vec();
    out[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    out[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// A gzip batch of one claimed record whose records inflate to 1 GiB of zeros (16 gzip
/// members of 64 MiB, streamed through the encoder).
fn gzip_bomb_batch(timestamp: i64) -> Bytes {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        member.write_all(&zeros).unwrap();
    }
    let records = member.finish().unwrap().repeat(16);
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((49 + records.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(1); // gzip
    b.put_i32(0);
    b.put_i64(timestamp);
    b.put_i64(timestamp);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(1);
    b.put_slice(&records);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

async fn produce(addr: &str, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(s("t")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let ResponseKind::Produce(r) =
        kafka_call(addr, ApiKey::Produce, 9, RequestKind::Produce(request)).await
    else {
        panic!("wrong response kind");
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn list_offset(addr: &str, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp)
                        .with_current_leader_epoch(-1),
                ]),
        ]);
    let ResponseKind::ListOffsets(r) = kafka_call(
        addr,
        ApiKey::ListOffsets,
        7,
        RequestKind::ListOffsets(request),
    )
    .await
    else {
        panic!("wrong response kind");
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// Waits until the node leads t-0 (after a start or restart).
async fn wait_for_leadership(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while list_offset(addr, -2).await.0 != 0 {
        assert!(Instant::now() < deadline, "t-0 led within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_batches_are_refused_in_bounded_broker_memory_and_the_broker_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // Current timestamps, so retention keeps the records across the restart.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let node = NodeProcess::start(dir.path(), &[]);
    let addr = node.bootstrap.clone();
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(s("t")))
                .with_num_partitions(1)
                .with_replication_factor(-1)
                .with_configs(vec![
                    // Room for the compressed bomb: the refusal is about what it inflates to.
                    CreatableTopicConfig::default()
                        .with_name(s("max.message.bytes"))
                        .with_value(Some(s("4194304"))),
                ]),
        ]);
    let ResponseKind::CreateTopics(r) = kafka_call(
        &addr,
        ApiKey::CreateTopics,
        7,
        RequestKind::CreateTopics(create),
    )
    .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.topics[0].error_code, 0);
    wait_for_leadership(&addr).await;
    assert_eq!(produce(&addr, batch(3, t)).await, (0, 0));

    let refused = [
        ResponseError::InvalidRecord.code(),
        ResponseError::CorruptMessage.code(),
    ];
    let (code, _) = produce(&addr, claiming_two_billion(&batch(1, t + 4_000))).await;
    assert!(refused.contains(&code), "2^31-1 records: {code}");
    let (code, _) = produce(&addr, gzip_bomb_batch(t + 4_000)).await;
    assert_eq!(code, ResponseError::InvalidRecord.code(), "gzip bomb");
    assert_eq!(list_offset(&addr, -1).await, (0, 3), "nothing written");
    assert_eq!(list_offset(&addr, t - 500).await, (0, 0));
    assert_eq!(list_offset(&addr, t + 3_000).await, (0, -1));
    assert_rss_bounded(&node, "after the attacks");

    node.stop();
    let node = NodeProcess::start(dir.path(), &[]);
    let addr = node.bootstrap.clone();
    wait_for_leadership(&addr).await;
    assert_eq!(list_offset(&addr, t - 500).await, (0, 0));
    assert_eq!(produce(&addr, batch(1, t + 1_000)).await, (0, 3));
    assert_rss_bounded(&node, "after the restart");
    node.stop();
}
