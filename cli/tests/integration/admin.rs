//! End-to-end: the everyday admin APIs across real `ferry node` processes (3 controllers and
//! 3 brokers on loopback), with librdkafka's AdminClient and raw Kafka frames where librdkafka
//! has no call (DescribeCluster, IncrementalAlterConfigs, OffsetForLeaderEpoch's fencing).
//!
//! What is asserted is state, never a duration: waits are bounded loops whose bounds only turn
//! a hang into a failure. Every process is killed when the test's `Cluster` drops.

use crate::cluster;
use crate::support::kafka_call;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster::{Admin, Cluster, ClusterSpec, MetadataReader, POLL, node_status, partitions};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Bound for a controller election and for brokers to register.
const STARTUP: Duration = Duration::from_secs(30);

/// Above the broker's 30 s controller-call timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(40);

/// Bound for failover, restart and metadata propagation.
const CONVERGE: Duration = Duration::from_secs(60);

/// Starts 3 controllers and 3 brokers (racks a, b, c) and waits until they serve.
async fn three_brokers(name: &str) -> Cluster {
    let cluster = Cluster::start(ClusterSpec {
        name,
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        // A dead follower leaves the ISR after 3 s, so acks=all writes go on without it.
        sets: &[
            "log.retention.check.interval.ms=200",
            "replica.lag.time.max.ms=3000",
        ],
    });
    cluster.wait_for_leader(STARTUP).await;
    let brokers = cluster.broker_ids();
    cluster
        .wait_for_brokers(&cluster.bootstrap(), &brokers, STARTUP)
        .await;
    cluster
}

fn admin_client(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT))
}

/// The value and source of broker `id`'s config `name`, as librdkafka describes it (it sends
/// DescribeConfigs to that broker).
async fn broker_config(
    admin: &AdminClient<DefaultClientContext>,
    id: i32,
    name: &str,
) -> Option<(String, String)> {
    let resource = ResourceSpecifier::Broker(id);
    let results = admin
        .describe_configs([&resource], &admin_options())
        .await
        .ok()?;
    let resource = results.into_iter().next()?.ok()?;
    let entry = resource.get(name)?;
    // ConfigSource is neither Clone nor Copy: compare it by name.
    Some((entry.value.clone()?, format!("{:?}", entry.source)))
}

/// The log start offset of `topic`-0 on a broker, from its admin endpoint.
fn log_start_offset(admin: &str, topic: &str) -> Option<i64> {
    let status: serde_json::Value = serde_json::from_str(&node_status(admin)).ok()?;
    status["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == 0)
        .and_then(|p| p["log_start_offset"].as_i64())
}

/// (leader, leader epoch) of `topic`-0 per Metadata v12 from `addr`.
async fn leader_and_epoch(addr: &str, topic: &str) -> (i32, i32) {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_string())))),
    ]));
    let ResponseKind::Metadata(m) =
        kafka_call(addr, ApiKey::Metadata, 12, RequestKind::Metadata(request)).await
    else {
        panic!("a Metadata response")
    };
    let p = &m.topics[0].partitions[0];
    (p.leader_id.0, p.leader_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_apis_across_three_brokers() {
    let mut cluster = three_brokers("admin-apis").await;
    let brokers = cluster.broker_ids();
    let first = cluster.bootstrap_of(brokers[0]);

    // DescribeCluster: every broker, and a live broker as the "controller".
    let ResponseKind::DescribeCluster(described) = kafka_call(
        &first,
        ApiKey::DescribeCluster,
        1,
        RequestKind::DescribeCluster(DescribeClusterRequest::default().with_endpoint_type(1)),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(described.error_code, 0);
    assert_eq!(described.cluster_id.as_str(), "ferry-test-admin-apis");
    let described_ids: BTreeSet<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
    assert_eq!(described_ids, brokers.iter().copied().collect());
    assert!(brokers.contains(&described.controller_id.0));
    let racks: BTreeSet<String> = described
        .brokers
        .iter()
        .filter_map(|b| b.rack.as_ref().map(|r| r.to_string()))
        .collect();
    assert_eq!(racks, ["a", "b", "c"].map(String::from).into());

    // A cluster-wide dynamic default, set through one broker, reaches every broker.
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("log.retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("3600000"))),
            ]),
    ]);
    let ResponseKind::IncrementalAlterConfigs(altered) = kafka_call(
        &first,
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(alter),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        altered.responses[0].error_code, 0,
        "{:?}",
        altered.responses[0]
    );
    let admin = admin_client(&cluster.bootstrap());
    for &id in &brokers {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let seen = broker_config(&admin, id, "log.retention.ms").await;
            let expected = format!("{:?}", ConfigSource::DynamicDefaultBroker);
            if seen == Some(("3600000".into(), expected)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "broker {id} sees the cluster default; last {seen:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    // DeleteRecords on a 3-replica partition: success means every replica moved its start.
    let topic = "trim";
    let helper = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    helper
        .create_topic(topic, 1, 3)
        .await
        .expect("create topic");
    let acked = cluster::produce(&cluster.bootstrap(), topic, 30).await;
    assert_eq!(acked.values().sum::<usize>(), 30);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(12))
        .unwrap();
    let deleted = admin
        .delete_records(&offsets, &admin_options())
        .await
        .expect("DeleteRecords answered");
    let element = deleted.find_partition(topic, 0).unwrap();
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(12), "the low watermark");
    for &id in &brokers {
        let admin_addr = cluster.node(id).admin.clone().unwrap();
        assert_eq!(
            log_start_offset(&admin_addr, topic),
            Some(12),
            "broker {id}: {}",
            node_status(&admin_addr)
        );
    }

    // A follower keeps the new start across a crash and restart (the start is checkpointed).
    let (leader, _) = leader_and_epoch(&first, topic).await;
    let follower = *brokers.iter().find(|&&id| id != leader).unwrap();
    cluster.kill9(follower);
    cluster.restart(follower);
    let admin_addr = cluster.node(follower).admin.clone().unwrap();
    let deadline = Instant::now() + CONVERGE;
    while log_start_offset(&admin_addr, topic) != Some(12) {
        assert!(
            Instant::now() < deadline,
            "the restarted follower's log start: {}",
            node_status(&admin_addr)
        );
        tokio::time::sleep(POLL).await;
    }

    // The leader dies: the new leader serves the same start, and fences the old epoch.
    let survivor = cluster.bootstrap_of(follower);
    let (leader, epoch) = leader_and_epoch(&survivor, topic).await;
    assert!(leader >= 0, "{topic}-0 has a leader");
    cluster.kill9(leader);
    let follower = *brokers
        .iter()
        .find(|&&id| id != leader)
        .expect("a surviving broker");
    let survivor = cluster.bootstrap_of(follower);
    let deadline = Instant::now() + CONVERGE;
    let (_, new_epoch) = loop {
        let (now_leader, now_epoch) = leader_and_epoch(&survivor, topic).await;
        if now_leader >= 0 && now_leader != leader {
            break (now_leader, now_epoch);
        }
        assert!(Instant::now() < deadline, "a new leader for {topic}-0");
        tokio::time::sleep(POLL).await;
    };
    assert!(new_epoch > epoch);
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &survivor)
        .create()
        .unwrap();
    let deadline = Instant::now() + CONVERGE;
    loop {
        use rdkafka::consumer::Consumer;
        match consumer.fetch_watermarks(topic, 0, Duration::from_secs(5)) {
            Ok((low, high)) if low == 12 && high == 30 => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "watermarks on the new leader: {other:?}"
                );
                tokio::time::sleep(POLL).await;
            }
        }
    }
    // The survivor's metadata may be ahead of the new leader's own, and leadership may move
    // once more while the dead broker is fenced: take the broker that itself says it leads,
    // with the epoch it reports.
    let deadline = Instant::now() + CONVERGE;
    let (new_leader, new_epoch) = 'found: loop {
        for &id in brokers.iter().filter(|&&id| id != leader) {
            let (says_leader, says_epoch) =
                leader_and_epoch(&cluster.bootstrap_of(id), topic).await;
            if says_leader == id && says_epoch >= new_epoch {
                break 'found (id, says_epoch);
            }
        }
        assert!(
            Instant::now() < deadline,
            "a surviving broker that knows it leads {topic}-0"
        );
        tokio::time::sleep(POLL).await;
    };
    let new_leader_addr = cluster.bootstrap_of(new_leader);
    // (current leader epoch the consumer believes) -> error: KIP-320 fencing.
    for (current, expected) in [
        (epoch, ResponseError::FencedLeaderEpoch.code()),
        (new_epoch + 1, ResponseError::UnknownLeaderEpoch.code()),
        (new_epoch, 0),
        (-1, 0),
    ] {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("trim")))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(epoch),
                    ]),
            ]);
        let ResponseKind::OffsetForLeaderEpoch(r) = kafka_call(
            &new_leader_addr,
            ApiKey::OffsetForLeaderEpoch,
            4,
            RequestKind::OffsetForLeaderEpoch(request),
        )
        .await
        else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, expected, "current epoch {current}: {p:?}");
        if expected == 0 && epoch == 0 {
            // Every record was written in epoch 0, which ended at the log end (30).
            assert_eq!((p.leader_epoch, p.end_offset), (0, 30), "{p:?}");
        }
    }

    // While the old leader is down, more records arrive and are all deleted: its log (ending
    // at 30) is then below the leader's start, and on return it starts over there.
    let alive: Vec<String> = brokers
        .iter()
        .filter(|&&id| id != leader)
        .map(|&id| cluster.bootstrap_of(id))
        .collect();
    let acked = cluster::produce(&alive.join(","), topic, 10).await;
    assert_eq!(acked.values().sum::<usize>(), 10);
    let mut everything = TopicPartitionList::new();
    everything
        .add_partition_offset(topic, 0, Offset::Offset(40))
        .unwrap();
    let short = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(5)));
    let admin = admin_client(&alive.join(","));
    let deadline = Instant::now() + CONVERGE;
    loop {
        // Times out while the dead broker still counts as alive (until its session expires).
        let answer = admin.delete_records(&everything, &short).await;
        let done = answer.as_ref().ok().and_then(|list| {
            let element = list.find_partition(topic, 0)?;
            (element.error().is_ok() && element.offset() == Offset::Offset(40)).then_some(())
        });
        if done.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DeleteRecords to 40: last {answer:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    cluster.restart(leader);
    let returned = cluster.node(leader).admin.clone().unwrap();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status: Option<serde_json::Value> = serde_json::from_str(&node_status(&returned)).ok();
        let offsets = status.as_ref().and_then(|s| {
            let p = s["partitions"]
                .as_array()?
                .iter()
                .find(|p| p["topic"] == topic && p["partition"] == 0)?;
            Some((
                p["log_start_offset"].as_i64()?,
                p["log_end_offset"].as_i64()?,
            ))
        });
        if offsets == Some((40, 40)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the returning broker restarts its log at the leader's start: {}",
            node_status(&returned)
        );
        tokio::time::sleep(POLL).await;
    }
    let reader = MetadataReader::new(&cluster.bootstrap());
    let deadline = Instant::now() + CONVERGE;
    loop {
        let view = reader
            .fetch()
            .await
            .ok()
            .and_then(|m| partitions(&m, topic));
        if view.as_ref().is_some_and(|v| v[0].isr.contains(&leader)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker {leader} back in the ISR: {view:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}
