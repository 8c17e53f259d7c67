//! `ferry dev`: the one-command start serves Kafka clients, and its data survives Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Starts `ferry dev` on free ports; returns the child and the bootstrap address it printed.
fn start_dev(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["dev", "--port", "0", "--admin-port", "0", "--data-dir"])
        .arg(dir)
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.trim().strip_prefix("bootstrap servers:") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let bootstrap = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("ferry dev prints its bootstrap");
    (child, bootstrap)
}

/// Ctrl-C: SIGINT, then a clean exit.
fn interrupt(mut child: Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "ferry dev exits 0 on Ctrl-C"
    );
}

#[tokio::test]
async fn ferry_dev_serves_clients_and_keeps_data_across_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (child, bootstrap) = start_dev(dir.path());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for i in 0..10 {
        let payload = format!("hello {i}");
        producer
            .send(
                FutureRecord::<(), _>::to("dev-topic").payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }
    drop(producer);
    interrupt(child);

    let (child, bootstrap) = start_dev(dir.path());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused")
        // No group coordinator yet: nothing may be committed on close.
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("dev-topic", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut got = Vec::new();
    for _ in 0..120 {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("hello {i}")).collect();
    // Close the client while the broker is up: librdkafka's close waits for it otherwise.
    drop(consumer);
    assert_eq!(got, expected);
    interrupt(child);
}
