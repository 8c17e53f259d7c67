//! Idempotent produce against a real node, with raw requests: InitProducerId, duplicate and
//! out-of-order batches, fenced epochs, and deduplication that survives a restart (from the
//! snapshot, and from the log when the snapshot is missing or damaged).

use crate::support;

use std::collections::HashSet;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use ferry_data_plane::server::ServerOptions;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use support::{RawClient, TestNode, name};

const TOPIC: &str = "idem";

/// A batch of `count` records from producer `pid`/`epoch`, sequences `seq..seq+count`.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, count: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: support_now_ms(),
            key: None,
            value: Some(Bytes::from(format!("seq-{}", seq + i as i32))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn support_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn init_producer_id(
    client: &mut RawClient,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    match client
        .call(
            ApiKey::InitProducerId,
            version,
            RequestKind::InitProducerId(request),
        )
        .await
    {
        ResponseKind::InitProducerId(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// An InitProducerId request of an idempotent producer (the crate defaults to an empty
/// transactional id, which Kafka refuses; clients send null).
fn non_transactional() -> InitProducerIdRequest {
    InitProducerIdRequest::default().with_transactional_id(None)
}

/// A fresh producer id and epoch, checked to succeed.
async fn new_producer(client: &mut RawClient) -> (i64, i16) {
    let r = init_producer_id(client, 4, non_transactional()).await;
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

async fn create_topic(client: &mut RawClient) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(TOPIC))
                .with_num_partitions(1)
                .with_replication_factor(-1),
        ]);
    let ResponseKind::CreateTopics(r) = client
        .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
        .await
    else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(r.topics[0].error_code, 0);
}

/// Produces `records` to partition 0 with acks=all; returns (error code, base offset).
async fn produce(client: &mut RawClient, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(TOPIC))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let ResponseKind::Produce(r) = client
        .call(ApiKey::Produce, 9, RequestKind::Produce(request))
        .await
    else {
        panic!("not a Produce response")
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Every record value in partition 0, in offset order, with its offset.
async fn consume_all(client: &mut RawClient) -> Vec<(i64, String)> {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(TOPIC))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20)
                        .with_current_leader_epoch(-1)
                        .with_last_fetched_epoch(-1),
                ]),
        ]);
    let ResponseKind::Fetch(r) = client
        .call(ApiKey::Fetch, 12, RequestKind::Fetch(request))
        .await
    else {
        panic!("not a Fetch response")
    };
    let partition = &r.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let mut bytes = partition.records.clone().unwrap_or_default();
    let mut values = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for record in set.records {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            values.push((record.offset, value));
        }
    }
    values
}

fn snapshot_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let partition_dir = dir.join("logs").join(format!("{TOPIC}-0"));
    let mut found: Vec<_> = std::fs::read_dir(partition_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn init_producer_id_hands_out_distinct_ids_across_blocks_and_bumps_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;

    // Concurrent clients, more ids than one controller block (1000) holds.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = node.addr;
        tasks.push(tokio::spawn(async move {
            let mut client = RawClient::connect(addr).await;
            let mut ids = Vec::new();
            for _ in 0..150 {
                let (id, epoch) = new_producer(&mut client).await;
                assert_eq!(epoch, 0);
                ids.push(id);
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(id >= 0);
            assert!(all.insert(id), "producer id {id} handed out twice");
        }
    }
    assert_eq!(all.len(), 1200);

    let mut client = RawClient::connect(node.addr).await;
    // v0 (kafka-python's version) works too.
    let v0 = init_producer_id(&mut client, 0, non_transactional()).await;
    assert_eq!(v0.error_code, 0);
    assert!(!all.contains(&v0.producer_id.0));

    // KIP-360: presenting the current id and epoch bumps the epoch.
    let (id, _) = new_producer(&mut client).await;
    let bump = non_transactional()
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(0);
    let r = init_producer_id(&mut client, 4, bump).await;
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, id, 1)
    );

    // Half a presented identity is an invalid request.
    let half = non_transactional().with_producer_id(ProducerId(id));
    let r = init_producer_id(&mut client, 4, half).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());

    // An empty transactional id is invalid, as in Kafka; any other is not supported.
    let empty = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(""))));
    let r = init_producer_id(&mut client, 4, empty).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
    let txn = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx-1"))));
    let r = init_producer_id(&mut client, 4, txn).await;
    assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    assert_eq!(r.producer_id.0, -1);
    node.shutdown().await;
}

#[tokio::test]
async fn duplicates_get_the_original_offset_gaps_and_fenced_epochs_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client).await;
    let (pid, epoch) = new_producer(&mut client).await;

    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 0, 3)).await,
        (0, 0)
    );
    // The same batch again (a retry after a lost response): same offset, no second copy.
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 0, 3)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 3, 2)).await,
        (0, 3)
    );
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 0, 3)).await,
        (0, 0)
    );

    // A gap: sequence 9 after 4.
    let (code, offset) = produce(&mut client, idempotent_batch(pid, epoch, 9, 1)).await;
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(offset, -1);

    // A bumped epoch restarts at sequence 0 and fences the old epoch.
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch + 1, 0, 1)).await,
        (0, 5)
    );
    let (code, _) = produce(&mut client, idempotent_batch(pid, epoch, 5, 1)).await;
    assert_eq!(code, ResponseError::InvalidProducerEpoch.code());

    let values: Vec<String> = consume_all(&mut client)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values,
        ["seq-0", "seq-1", "seq-2", "seq-3", "seq-4", "seq-0"],
        "one copy of each batch, nothing from the refused ones"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn duplicates_are_still_detected_after_restarts_from_snapshot_and_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client).await;
    let (pid, epoch) = new_producer(&mut client).await;
    for seq in (0..10).step_by(2) {
        let (code, _) = produce(&mut client, idempotent_batch(pid, epoch, seq, 2)).await;
        assert_eq!(code, 0);
    }
    node.shutdown().await;
    assert!(
        !snapshot_files(dir.path()).is_empty(),
        "a clean shutdown writes a producer snapshot"
    );

    // 1. From the clean-shutdown snapshot.
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 8, 2)).await,
        (0, 8)
    );
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 6, 2)).await,
        (0, 6)
    );
    let (code, _) = produce(&mut client, idempotent_batch(pid, epoch, 12, 1)).await;
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    node.shutdown().await;

    // 2. With every snapshot damaged: detected by checksum, rebuilt from the log.
    for path in snapshot_files(dir.path()) {
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 8, 2)).await,
        (0, 8)
    );
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 10, 1)).await,
        (0, 10)
    );
    node.shutdown().await;

    // 3. With no snapshot at all (as after a crash before the first roll).
    for path in snapshot_files(dir.path()) {
        std::fs::remove_file(path).unwrap();
    }
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 10, 1)).await,
        (0, 10)
    );
    let offsets: Vec<i64> = consume_all(&mut client)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(
        offsets,
        (0..11).collect::<Vec<_>>(),
        "no duplicate was appended"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn segment_rolls_write_snapshots_that_recovery_uses() {
    let dir = tempfile::tempdir().unwrap();
    // Tiny segments: every batch rolls a segment, which writes a snapshot.
    let configs = [("log.segment.bytes", "100")];
    let node = TestNode::start(dir.path(), &configs, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client).await;
    let (pid, epoch) = new_producer(&mut client).await;
    for seq in 0..6 {
        let (code, offset) = produce(&mut client, idempotent_batch(pid, epoch, seq, 1)).await;
        assert_eq!((code, offset), (0, i64::from(seq)));
    }
    let while_running = snapshot_files(dir.path());
    assert!(
        !while_running.is_empty(),
        "segment rolls write producer snapshots"
    );
    node.shutdown().await;
    let node = TestNode::start(dir.path(), &configs, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 5, 1)).await,
        (0, 5)
    );
    assert_eq!(
        produce(&mut client, idempotent_batch(pid, epoch, 6, 1)).await,
        (0, 6)
    );
    node.shutdown().await;
}
