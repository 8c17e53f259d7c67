//! A real Kafka client (librdkafka, through the rdkafka crate) against a real `ferry node`
//! process: what is acknowledged is consumed back in order, and survives kill -9.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::NodeProcess;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 3;
const MESSAGES: usize = 100_000;

/// Every message of every partition, in offset order: (offset, key, payload).
type Contents = BTreeMap<i32, Vec<(i64, Vec<u8>, Vec<u8>)>>;

async fn create_topic(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
}

/// Produces MESSAGES with acks=all; returns (partition, offset) -> (key, payload) as acknowledged.
async fn produce_all(bootstrap: &str) -> BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    let mut acked = BTreeMap::new();
    let mut pending = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let key = format!("key-{i}").into_bytes();
        let payload = format!("message {i} {}", "x".repeat(i % 200)).into_bytes();
        let record = FutureRecord::to(TOPIC).key(&key).payload(&payload);
        let delivery = producer.send_result(record).expect("queue has room");
        pending.push((key, payload, delivery));
    }
    for (key, payload, delivery) in pending {
        let delivered = delivery
            .await
            .expect("not cancelled")
            .expect("acknowledged");
        acked.insert((delivered.partition, delivered.offset), (key, payload));
    }
    acked
}

/// Reads every partition from the beginning up to its high watermark, by assignment: librdkafka
/// wants a group id configured, but with `assign` and no commits it never uses the group.
fn consume_all(bootstrap: &str) -> Contents {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ferry-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut contents = Contents::new();
    let mut at_end = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end < PARTITIONS {
        assert!(
            Instant::now() < deadline,
            "consumed everything within 120 s"
        );
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => contents.entry(m.partition()).or_default().push((
                m.offset(),
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(e)) => panic!("consume failed: {e}"),
            None => {}
        }
    }
    contents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_acked_messages_are_consumed_in_order_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]);
    create_topic(&node.bootstrap).await;
    let acked = produce_all(&node.bootstrap).await;
    assert_eq!(
        acked.len(),
        MESSAGES,
        "every message acknowledged at a distinct offset"
    );

    let before = consume_all(&node.bootstrap);
    let consumed: usize = before.values().map(Vec::len).sum();
    assert_eq!(consumed, MESSAGES);
    for (partition, messages) in &before {
        let offsets: Vec<i64> = messages.iter().map(|m| m.0).collect();
        let expected: Vec<i64> = (0..messages.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {partition}: dense, in order");
        for (offset, key, payload) in messages {
            assert_eq!(
                acked.get(&(*partition, *offset)),
                Some(&(key.clone(), payload.clone()))
            );
        }
    }

    node.kill9();
    let node = NodeProcess::start(dir.path(), &[]);
    let after = consume_all(&node.bootstrap);
    assert!(
        after == before,
        "identical content after kill -9 and restart"
    );
    node.stop();
}
