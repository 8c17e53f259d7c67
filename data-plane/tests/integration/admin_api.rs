//! The everyday admin APIs of a single node, over real TCP with exact versions:
//! DescribeCluster, broker-resource DescribeConfigs / IncrementalAlterConfigs / AlterConfigs,
//! DeleteRecords, DescribeLogDirs and ListOffsets' max-timestamp query.
//!
//! Each test starts its own node in-process on port 0 and speaks raw Kafka frames. Waits for
//! background work (retention passes) poll with a generous bound and never assert on timing.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_data_plane::server::ServerOptions;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use support::{RawClient, TestNode, batch, create_topic, name, text};

/// How long a test waits for background work before it fails.
const WAIT_MAX: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Produces with acks=1; (error code, base offset).
async fn produce(client: &mut RawClient, topic: &str, records: Bytes) -> (i16, i64) {
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
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// A consumer fetch of partition 0 at `offset`: (error code, log start offset).
async fn fetch_at(client: &mut RawClient, topic: &str, offset: i64) -> (i16, i64) {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)
                        .with_current_leader_epoch(-1)
                        .with_last_fetched_epoch(-1),
                ]),
        ]);
    match client
        .call(ApiKey::Fetch, 12, RequestKind::Fetch(request))
        .await
    {
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            (p.error_code, p.log_start_offset)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// ListOffsets (v7) of partition 0 for `timestamp`: (offset, timestamp).
async fn list_offset(client: &mut RawClient, topic: &str, timestamp: i64) -> (i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp)
                        .with_current_leader_epoch(-1),
                ]),
        ]);
    match client
        .call(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(request))
        .await
    {
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            (p.offset, p.timestamp)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// DeleteRecords (v2) of partition 0 up to `offset`: (error code, low watermark).
async fn delete_records(client: &mut RawClient, topic: &str, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(offset),
                ]),
        ]);
    match client
        .call(
            ApiKey::DeleteRecords,
            2,
            RequestKind::DeleteRecords(request),
        )
        .await
    {
        ResponseKind::DeleteRecords(r) => {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.low_watermark)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// IncrementalAlterConfigs (v1) of one resource: (error code, message).
async fn alter(
    client: &mut RawClient,
    resource_type: i8,
    resource: &str,
    changes: &[(&str, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let configs = changes
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(text(key))
                .with_config_operation(if value.is_some() { 0 } else { 1 })
                .with_value(value.map(text))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(resource))
                .with_configs(configs),
        ]);
    match client
        .call(
            ApiKey::IncrementalAlterConfigs,
            1,
            RequestKind::IncrementalAlterConfigs(request),
        )
        .await
    {
        ResponseKind::IncrementalAlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0].error_message.as_ref().map(|m| m.to_string()),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// One described config: value, source, read-only, synonyms (name, value, source), doc.
#[derive(Debug, Clone)]
struct Config {
    value: String,
    source: i8,
    read_only: bool,
    synonyms: Vec<(String, String, i8)>,
    documentation: Option<String>,
}

/// DescribeConfigs (v4, synonyms and documentation) of one resource.
async fn describe(
    client: &mut RawClient,
    resource_type: i8,
    resource: &str,
) -> Result<BTreeMap<String, Config>, i16> {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(resource))
                .with_configuration_keys(None),
        ]);
    let ResponseKind::DescribeConfigs(r) = client
        .call(
            ApiKey::DescribeConfigs,
            4,
            RequestKind::DescribeConfigs(request),
        )
        .await
    else {
        panic!()
    };
    let result = &r.results[0];
    if result.error_code != 0 {
        return Err(result.error_code);
    }
    Ok(result
        .configs
        .iter()
        .map(|c| {
            let config = Config {
                value: c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                source: c.config_source,
                read_only: c.read_only,
                synonyms: c
                    .synonyms
                    .iter()
                    .map(|s| {
                        let value = s.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                        (s.name.to_string(), value, s.source)
                    })
                    .collect(),
                documentation: c.documentation.as_ref().map(|d| d.to_string()),
            };
            (c.name.to_string(), config)
        })
        .collect())
}

/// Polls `check` until it returns true, failing the test after [`WAIT_MAX`].
async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// One config change: a name and its new value (`None` deletes it).
type Change<'a> = (&'a str, Option<&'a str>);

#[tokio::test]
async fn describe_cluster_names_the_cluster_its_brokers_and_a_live_controller() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    for version in 0..=1 {
        for include_operations in [false, true] {
            let request = DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(include_operations);
            let ResponseKind::DescribeCluster(r) = client
                .call(
                    ApiKey::DescribeCluster,
                    version,
                    RequestKind::DescribeCluster(request),
                )
                .await
            else {
                panic!()
            };
            assert_eq!(r.error_code, 0);
            assert!(!r.cluster_id.is_empty());
            assert_eq!(r.controller_id.0, 1, "the only live broker");
            assert_eq!(r.brokers.len(), 1);
            let broker = &r.brokers[0];
            assert_eq!(broker.broker_id.0, 1);
            assert_eq!(broker.host.as_str(), node.addr.ip().to_string());
            assert_eq!(broker.port, i32::from(node.addr.port()));
            if include_operations {
                // DESCRIBE (8), ALTER_CONFIGS (11) and the other cluster operations.
                assert_ne!(r.cluster_authorized_operations & (1 << 8), 0);
                assert_ne!(r.cluster_authorized_operations & (1 << 11), 0);
                assert!(r.cluster_authorized_operations > 0);
            } else {
                assert_eq!(r.cluster_authorized_operations, i32::MIN);
            }
        }
    }
    // v1 asking for controller endpoints: brokers answer UNSUPPORTED_ENDPOINT_TYPE.
    let request = DescribeClusterRequest::default().with_endpoint_type(2);
    let ResponseKind::DescribeCluster(r) = client
        .call(
            ApiKey::DescribeCluster,
            1,
            RequestKind::DescribeCluster(request),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, ResponseError::UnsupportedEndpointType.code());
    node.shutdown().await;
}

#[tokio::test]
async fn broker_configs_describe_with_sources_synonyms_and_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(
        dir.path(),
        &[("log.retention.ms", "86400000")],
        ServerOptions::default(),
    )
    .await;
    let mut client = RawClient::connect(node.addr).await;
    let configs = describe(&mut client, BROKER, "1").await.unwrap();
    let retention = &configs["log.retention.ms"];
    assert_eq!(retention.value, "86400000");
    assert_eq!(retention.source, 4, "STATIC_BROKER_CONFIG");
    assert!(!retention.read_only);
    assert_eq!(
        retention.synonyms,
        vec![
            ("log.retention.ms".to_string(), "86400000".to_string(), 4),
            ("log.retention.ms".to_string(), "604800000".to_string(), 5),
        ]
    );
    assert!(
        retention
            .documentation
            .as_ref()
            .is_some_and(|d| !d.is_empty())
    );
    let segment = &configs["log.segment.bytes"];
    assert_eq!((segment.value.as_str(), segment.source), ("1073741824", 5));
    let partitions = &configs["num.partitions"];
    assert!(
        partitions.read_only,
        "num.partitions cannot change without a restart"
    );
    assert_eq!(configs["node.id"].value, "1");
    assert_eq!(configs["node.id"].source, 4);
    // Another broker's configs are that broker's to describe; the cluster default starts empty.
    assert_eq!(
        describe(&mut client, BROKER, "7").await.unwrap_err(),
        ResponseError::InvalidRequest.code()
    );
    assert!(describe(&mut client, BROKER, "").await.unwrap().is_empty());
    node.shutdown().await;
}

#[tokio::test]
async fn bad_broker_config_changes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let before = describe(&mut client, BROKER, "1").await.unwrap();
    let cases: [(&str, &[Change], ResponseError); 6] = [
        (
            "",
            &[("no.such.config", Some("1"))],
            ResponseError::InvalidConfig,
        ),
        (
            "",
            &[("log.retention.ms", Some("soon"))],
            ResponseError::InvalidConfig,
        ),
        (
            "1",
            &[("log.segment.bytes", Some("1"))],
            ResponseError::InvalidConfig,
        ),
        (
            "",
            &[("num.partitions", Some("3"))],
            ResponseError::InvalidRequest,
        ),
        (
            "1",
            &[("node.id", Some("2"))],
            ResponseError::InvalidRequest,
        ),
        (
            "7",
            &[("log.retention.ms", Some("1000"))],
            ResponseError::InvalidRequest,
        ),
    ];
    for (resource, changes, code) in cases {
        let (error, message) = alter(&mut client, BROKER, resource, changes, false).await;
        assert_eq!(error, code.code(), "{resource:?} {changes:?}: {message:?}");
        assert!(message.is_some_and(|m| !m.is_empty()));
    }
    // A good change together with a bad one: the whole resource is refused.
    let (error, _) = alter(
        &mut client,
        BROKER,
        "",
        &[
            ("log.retention.ms", Some("1000")),
            ("num.partitions", Some("3")),
        ],
        false,
    )
    .await;
    assert_eq!(error, ResponseError::InvalidRequest.code());
    // validate_only checks and changes nothing.
    let (error, _) = alter(
        &mut client,
        BROKER,
        "",
        &[("log.retention.ms", Some("1000"))],
        true,
    )
    .await;
    assert_eq!(error, 0);
    let after = describe(&mut client, BROKER, "1").await.unwrap();
    for (name, config) in &before {
        assert_eq!(
            (&after[name].value, after[name].source),
            (&config.value, config.source),
            "{name} changed"
        );
    }
    assert!(describe(&mut client, BROKER, "").await.unwrap().is_empty());
    node.shutdown().await;
}

#[tokio::test]
async fn dynamic_broker_defaults_apply_to_topics_without_overrides_at_once_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [("log.retention.check.interval.ms", "100")];
    let node = TestNode::start(dir.path(), &configs, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "plain", &[]).await;
    create_topic(&mut client, "own", &[("retention.ms", "604800000")]).await;
    for _ in 0..5 {
        assert_eq!(
            produce(&mut client, "plain", batch(2, 200, now_ms()))
                .await
                .0,
            0
        );
        assert_eq!(
            produce(&mut client, "own", batch(2, 200, now_ms())).await.0,
            0
        );
    }
    // message.max.bytes: a cluster-wide default below this batch refuses it at once.
    let (error, _) = alter(
        &mut client,
        BROKER,
        "",
        &[("message.max.bytes", Some("1000"))],
        false,
    )
    .await;
    assert_eq!(error, 0);
    assert_eq!(
        produce(&mut client, "plain", batch(1, 3000, now_ms()))
            .await
            .0,
        ResponseError::MessageTooLarge.code()
    );
    // A per-broker value wins over the cluster-wide default.
    let (error, _) = alter(
        &mut client,
        BROKER,
        "1",
        &[("message.max.bytes", Some("100000"))],
        false,
    )
    .await;
    assert_eq!(error, 0);
    assert_eq!(
        produce(&mut client, "plain", batch(1, 3000, now_ms()))
            .await
            .0,
        0
    );
    let topic = describe(&mut client, TOPIC, "plain").await.unwrap();
    assert_eq!(topic["max.message.bytes"].value, "100000");
    assert_eq!(
        topic["max.message.bytes"].source, 2,
        "DYNAMIC_BROKER_CONFIG"
    );
    assert_eq!(
        topic["max.message.bytes"]
            .synonyms
            .iter()
            .map(|(n, v, s)| (n.as_str(), v.as_str(), *s))
            .collect::<Vec<_>>(),
        vec![
            ("message.max.bytes", "100000", 2),
            ("message.max.bytes", "1000", 3),
            ("message.max.bytes", "1048588", 5),
        ]
    );

    // Lower the cluster-wide retention: topics without an override lose their data.
    let (error, _) = alter(
        &mut client,
        BROKER,
        "",
        &[
            ("log.retention.ms", Some("1")),
            ("log.segment.bytes", Some("1024")),
        ],
        false,
    )
    .await;
    assert_eq!(error, 0);
    let topic = describe(&mut client, TOPIC, "plain").await.unwrap();
    assert_eq!(
        (
            topic["retention.ms"].value.as_str(),
            topic["retention.ms"].source
        ),
        ("1", 3)
    );
    assert_eq!(topic["segment.bytes"].value, "1024");
    let own = describe(&mut client, TOPIC, "own").await.unwrap();
    assert_eq!(
        (
            own["retention.ms"].value.as_str(),
            own["retention.ms"].source
        ),
        ("604800000", 1)
    );
    // A topic created now reports the dynamic default and its source in CreateTopics v5+.
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name("later"))
                .with_num_partitions(1)
                .with_replication_factor(-1),
        ]);
    let ResponseKind::CreateTopics(created) = client
        .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
        .await
    else {
        panic!()
    };
    let created_configs = created.topics[0].configs.as_ref().unwrap();
    let retention = created_configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(
        (
            retention.value.as_ref().unwrap().as_str(),
            retention.config_source
        ),
        ("1", 3)
    );
    let end = list_offset(&mut client, "plain", -1).await.0;
    assert_eq!(end, 11);
    wait_until(
        "retention to empty the topic without an override",
        async || list_offset(&mut client, "plain", -2).await.0 == end,
    )
    .await;
    // The topic with its own retention.ms kept everything (retention ran over every partition).
    assert_eq!(list_offset(&mut client, "own", -2).await.0, 0);
    let cluster = describe(&mut client, BROKER, "").await.unwrap();
    assert_eq!(
        cluster.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["log.retention.ms", "log.segment.bytes", "message.max.bytes"]
    );
    assert!(cluster.values().all(|c| c.source == 3));

    // Deleting the per-broker value falls back to the cluster default.
    let (error, _) = alter(
        &mut client,
        BROKER,
        "1",
        &[("message.max.bytes", None)],
        false,
    )
    .await;
    assert_eq!(error, 0);
    node.shutdown().await;

    let node = TestNode::start(dir.path(), &configs, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let broker = describe(&mut client, BROKER, "1").await.unwrap();
    assert_eq!(
        (
            broker["log.retention.ms"].value.as_str(),
            broker["log.retention.ms"].source
        ),
        ("1", 3)
    );
    assert_eq!(
        (
            broker["message.max.bytes"].value.as_str(),
            broker["message.max.bytes"].source
        ),
        ("1000", 3)
    );
    assert_eq!(
        produce(&mut client, "own", batch(1, 3000, now_ms()))
            .await
            .0,
        ResponseError::MessageTooLarge.code(),
        "the dynamic default is back after a restart"
    );
    // The legacy AlterConfigs replaces the whole cluster-wide set.
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(text(""))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(text("log.retention.ms"))
                    .with_value(Some(text("3600000"))),
            ]),
    ]);
    let ResponseKind::AlterConfigs(r) = client
        .call(ApiKey::AlterConfigs, 2, RequestKind::AlterConfigs(request))
        .await
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 0);
    let cluster = describe(&mut client, BROKER, "").await.unwrap();
    assert_eq!(
        cluster.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["log.retention.ms"]
    );
    assert_eq!(
        produce(&mut client, "own", batch(1, 3000, now_ms()))
            .await
            .0,
        0
    );
    node.shutdown().await;
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "trim", &[("segment.bytes", "1024")]).await;
    for i in 0..10 {
        assert_eq!(
            produce(&mut client, "trim", batch(2, 300, now_ms())).await,
            (0, 2 * i)
        );
    }
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("logs/trim-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    };
    let before = segments(dir.path());
    assert!(before > 3, "small segments roll: {before}");

    assert_eq!(
        delete_records(&mut client, "trim", 21).await.0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(
        delete_records(&mut client, "trim", -5).await.0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(delete_records(&mut client, "trim", 13).await, (0, 13));
    assert_eq!(
        delete_records(&mut client, "trim", 5).await,
        (0, 13),
        "never backwards"
    );
    assert!(
        segments(dir.path()) < before,
        "whole segments below the start are deleted"
    );
    assert_eq!(list_offset(&mut client, "trim", -2).await.0, 13);
    assert_eq!(
        fetch_at(&mut client, "trim", 12).await,
        (ResponseError::OffsetOutOfRange.code(), 13)
    );
    assert_eq!(fetch_at(&mut client, "trim", 13).await, (0, 13));
    assert_eq!(
        delete_records(&mut client, "nope", 0).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    node.shutdown().await;

    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        list_offset(&mut client, "trim", -2).await.0,
        13,
        "checkpointed"
    );
    assert_eq!(
        fetch_at(&mut client, "trim", 0).await.0,
        ResponseError::OffsetOutOfRange.code()
    );
    // -1: up to the high watermark.
    assert_eq!(delete_records(&mut client, "trim", -1).await, (0, 20));
    assert_eq!(list_offset(&mut client, "trim", -2).await.0, 20);
    assert_eq!(
        produce(&mut client, "trim", batch(1, 10, now_ms())).await,
        (0, 20)
    );
    node.shutdown().await;
}

/// DescribeLogDirs of every partition (`None`) or of `topics`; the one log dir's result.
async fn describe_dirs(
    client: &mut RawClient,
    version: i16,
    topics: Option<Vec<DescribableLogDirTopic>>,
) -> kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult {
    let request = DescribeLogDirsRequest::default().with_topics(topics);
    let ResponseKind::DescribeLogDirs(r) = client
        .call(
            ApiKey::DescribeLogDirs,
            version,
            RequestKind::DescribeLogDirs(request),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(r.results.len(), 1, "one log dir");
    r.results.into_iter().next().unwrap()
}

#[tokio::test]
async fn describe_log_dirs_reports_partition_sizes_that_grow_with_produce() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "sized", &[]).await;
    create_topic(&mut client, "other", &[]).await;
    let size_of =
        |result: &kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult,
         topic: &str| {
            let t = result
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == topic)
                .unwrap();
            let p = &t.partitions[0];
            assert!(!p.is_future_key);
            assert_eq!(p.offset_lag, 0);
            p.partition_size
        };
    let empty = describe_dirs(&mut client, 4, None).await;
    assert_eq!(empty.error_code, 0);
    assert!(
        empty.log_dir.ends_with("logs"),
        "{}",
        empty.log_dir.as_str()
    );
    assert!(empty.total_bytes > 0 && empty.usable_bytes > 0);
    assert!(empty.usable_bytes <= empty.total_bytes);
    let before = size_of(&empty, "sized");
    for _ in 0..3 {
        assert_eq!(
            produce(&mut client, "sized", batch(4, 500, now_ms()))
                .await
                .0,
            0
        );
    }
    for version in 1..=4 {
        let after = describe_dirs(&mut client, version, None).await;
        assert!(
            size_of(&after, "sized") >= before + 3 * 4 * 500,
            "v{version}"
        );
        assert_eq!(size_of(&after, "other"), 0);
        if version < 4 {
            assert_eq!((after.total_bytes, after.usable_bytes), (-1, -1));
        }
    }
    let only = describe_dirs(
        &mut client,
        2,
        Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(name("other"))
                .with_partitions(vec![0, 9]),
        ]),
    )
    .await;
    let names: Vec<&str> = only.topics.iter().map(|t| t.name.0.as_str()).collect();
    assert_eq!(names, vec!["other"]);
    assert_eq!(
        only.topics[0].partitions.len(),
        1,
        "partitions not held here are left out"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn list_offsets_max_timestamp_finds_the_newest_record_wherever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "times", &[]).await;
    // The largest timestamp is in the middle batch: max-timestamp is not "latest".
    for ts in [1_000, 9_000, 5_000] {
        assert_eq!(produce(&mut client, "times", batch(2, 10, ts)).await.0, 0);
    }
    assert_eq!(list_offset(&mut client, "times", -3).await, (2, 9_000));
    assert_eq!(list_offset(&mut client, "times", -1).await.0, 6);
    // After DeleteRecords past it, the max is searched among what is left.
    assert_eq!(delete_records(&mut client, "times", 4).await, (0, 4));
    assert_eq!(list_offset(&mut client, "times", -3).await, (4, 5_000));
    node.shutdown().await;
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_consumers_and_debug_clients_alike() {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_topic(&mut client, "epochs", &[]).await;
    assert_eq!(
        produce(&mut client, "epochs", batch(3, 10, now_ms())).await,
        (0, 0)
    );
    // Kafka's consumer (-1) and debugging (-2) replica ids: both are answered by the leader
    // only, with the end offset capped at the high watermark.
    for replica_id in [-1, -2] {
        for (current, expected) in [
            (-1, (0, 0, 3)),
            (0, (0, 0, 3)),
            (1, (ResponseError::UnknownLeaderEpoch.code(), -1, -1)),
        ] {
            let request = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(replica_id))
                .with_topics(vec![
                    OffsetForLeaderTopic::default()
                        .with_topic(name("epochs"))
                        .with_partitions(vec![
                            OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_current_leader_epoch(current)
                                .with_leader_epoch(0),
                        ]),
                ]);
            let ResponseKind::OffsetForLeaderEpoch(r) = client
                .call(
                    ApiKey::OffsetForLeaderEpoch,
                    4,
                    RequestKind::OffsetForLeaderEpoch(request),
                )
                .await
            else {
                panic!()
            };
            let p = &r.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.leader_epoch, p.end_offset),
                expected,
                "replica {replica_id}, current epoch {current}"
            );
        }
    }
    node.shutdown().await;
}
