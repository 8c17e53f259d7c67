//! The starting corpus of each target: small valid inputs, built with the same encoders the
//! peers use, so that the fuzzer starts past the first length and tag checks.
//!
//! `examples/seeds.rs` (run by `scripts/fuzz.sh seeds`) writes them to
//! `fuzz/corpus/<target>/`; the corpus is checked in.

use bytes::{Bytes, BytesMut};
use ferry_data_plane::group::records::{CommittedOffset, GroupRecord, MemberRecord, OffsetsRecord};
use ferry_data_plane::protocol::versions::SUPPORTED_APIS;
use ferry_proto::controller::v1 as controller;
use ferry_proto::controlplane::v1 as controlplane;
use ferry_proto::quorum::v1 as quorum;
use ferry_quorum::Message as RaftMessage;
use ferry_quorum::transport::encode_message;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use prost::Message as _;
use raft::prelude::{Entry, MessageType};

/// One seed: its target, its file name, its bytes.
pub struct Seed {
    /// The fuzz target (a binary in `fuzz_targets/`).
    pub target: &'static str,
    /// The file name in `fuzz/corpus/<target>/`.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

/// Every target's seeds.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |target: &'static str, name: String, bytes: Vec<u8>| {
        seeds.push(Seed {
            target,
            name,
            bytes,
        })
    };
    for (name, bytes) in kafka_requests() {
        add("kafka_request", name, bytes);
    }
    for (name, bytes) in record_batches() {
        add("record_batch", name, bytes);
    }
    for (name, bytes) in raft_messages() {
        add("raft_message", name, bytes);
    }
    for (name, bytes) in json_lines(STORE_COMMANDS, |line| {
        serde_json::from_slice::<ferry_control_plane::store::Command>(line).is_ok()
    }) {
        add("store_command", name, bytes);
    }
    for (name, bytes) in json_lines(CONTROLLER_COMMANDS, |line| {
        ferry_data_plane::controller::Command::decode(line).is_ok()
    }) {
        add("controller_command", name, bytes);
    }
    for (name, bytes) in rest_requests() {
        add("rest_request", name, bytes);
    }
    for (name, bytes) in grpc_messages() {
        add("grpc_message", name, bytes);
    }
    for (name, bytes) in group_records() {
        add("group_record", name, bytes);
    }
    seeds
}

// ---------------------------------------------------------------------------------------
// Kafka

/// An empty body of `key`'s request type.
fn default_request(key: ApiKey) -> Option<RequestKind> {
    Some(match key {
        ApiKey::Produce => RequestKind::Produce(Default::default()),
        ApiKey::Fetch => RequestKind::Fetch(Default::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
        ApiKey::Metadata => RequestKind::Metadata(Default::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(Default::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(Default::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(Default::default()),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(Default::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(Default::default()),
        _ => return None,
    })
}

/// A few requests with content (topics, partitions, records), each for every served version.
fn populated_requests() -> Vec<(&'static str, RequestKind)> {
    let topic = || TopicName(StrBytes::from_static_str("orders"));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(Compression::None, 2, -1))),
                ]),
        ]);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(5)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
    ]));
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(topic())
                .with_num_partitions(3)
                .with_replication_factor(3)
                .with_configs(vec![
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_value(Some(StrBytes::from_static_str("60000"))),
                ]),
        ]);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(StrBytes::from_static_str("member-1"))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic())
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42),
                ]),
        ]);
    vec![
        ("produce", RequestKind::Produce(produce)),
        ("fetch", RequestKind::Fetch(fetch)),
        ("metadata-topics", RequestKind::Metadata(metadata)),
        ("create-topics", RequestKind::CreateTopics(create)),
        ("offset-commit", RequestKind::OffsetCommit(commit)),
    ]
}

/// A request frame payload: header then body, or `None` if the codec cannot encode `body`
/// at `version` (a field the version lacks).
fn request_frame(key: ApiKey, version: i16, body: &RequestKind) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz-seed")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

/// Every served API at every served version (empty bodies), and the populated requests. Each
/// must pass the broker's decoder: a request the crate encodes and the guard refuses is a bug.
fn kafka_requests() -> Vec<(String, Vec<u8>)> {
    let mut out = encoded_requests();
    for (name, frame) in &out {
        let decoded = ferry_data_plane::protocol::request::decode(Bytes::copy_from_slice(frame));
        assert!(
            matches!(
                decoded,
                Ok(ferry_data_plane::protocol::request::Decoded::Request(_))
            ),
            "seed {name} does not decode: {decoded:?}"
        );
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// See [`kafka_requests`].
fn encoded_requests() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for api in SUPPORTED_APIS {
        let Some(body) = default_request(api.key) else {
            continue;
        };
        for version in api.versions.min..=api.versions.max {
            if let Some(frame) = request_frame(api.key, version, &body) {
                out.push((format!("{:?}-v{version}", api.key), frame));
            }
        }
    }
    for (name, body) in populated_requests() {
        let key = api_key_of(&body);
        let api = SUPPORTED_APIS
            .iter()
            .find(|a| a.key == key)
            .expect("populated requests are served");
        for version in api.versions.min..=api.versions.max {
            if let Some(frame) = request_frame(key, version, &body) {
                out.push((format!("{name}-v{version}"), frame));
            }
        }
    }
    out
}

/// The API key of a populated request.
fn api_key_of(body: &RequestKind) -> ApiKey {
    match body {
        RequestKind::Produce(_) => ApiKey::Produce,
        RequestKind::Fetch(_) => ApiKey::Fetch,
        RequestKind::Metadata(_) => ApiKey::Metadata,
        RequestKind::CreateTopics(_) => ApiKey::CreateTopics,
        RequestKind::OffsetCommit(_) => ApiKey::OffsetCommit,
        other => panic!("no API key for {other:?}"),
    }
}

/// One v2 batch of `count` small records, compressed with `compression`, for `producer_id`
/// (-1: not idempotent).
fn batch(compression: Compression, count: i32, producer_id: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: if producer_id >= 0 { i } else { -1 },
            timestamp: 1_700_000_000_000 + i64::from(i),
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}-{}", "x".repeat(20)))),
            headers: [(
                StrBytes::from_static_str("trace"),
                Some(Bytes::from_static(b"abc")),
            )]
            .into_iter()
            .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("records encode");
    buf.freeze()
}

/// Batches of each compression, an idempotent one, and two batches back to back; each must
/// pass the broker's validation of a client's batches.
fn record_batches() -> Vec<(String, Vec<u8>)> {
    let out = encoded_batches();
    for (name, records) in &out {
        let valid = ferry_data_plane::log::records::validate(
            records,
            ferry_data_plane::log::batch::Origin::Client,
            crate::kafka::MAX_MESSAGE_BYTES,
        );
        assert!(valid.is_ok(), "seed {name} is refused: {valid:?}");
    }
    out
}

/// See [`record_batches`].
fn encoded_batches() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        out.push((format!("{name}-1"), batch(compression, 1, -1).to_vec()));
        out.push((format!("{name}-3"), batch(compression, 3, -1).to_vec()));
    }
    out.push((
        "idempotent".into(),
        batch(Compression::None, 2, 1000).to_vec(),
    ));
    let mut two = batch(Compression::None, 1, -1).to_vec();
    two.extend_from_slice(&batch(Compression::Gzip, 2, -1));
    out.push(("two-batches".into(), two));
    out.push(("offsets-records".into(), offsets_batch().to_vec()));
    out
}

/// One uncompressed batch of `__consumer_offsets` records (a group, an offset commit, its
/// tombstone), as the group coordinator writes them: the harness replays their keys and values.
fn offsets_batch() -> Bytes {
    let records: Vec<Record> = offsets_records()
        .iter()
        .zip(0..)
        .map(|(r, i)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(r.key()),
            value: r.value(),
            headers: Default::default(),
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
    .expect("records encode");
    buf.freeze()
}

// ---------------------------------------------------------------------------------------
// Raft

/// A raft message from voter 2 to voter 1.
fn raft(kind: MessageType, term: u64, f: impl FnOnce(&mut RaftMessage)) -> Vec<u8> {
    let mut msg = RaftMessage::default();
    msg.set_msg_type(kind);
    msg.from = 2;
    msg.to = 1;
    msg.term = term;
    f(&mut msg);
    encode_message(&msg)
}

/// `SendRequest`s with the message types voters exchange, for a follower (role byte 0) and a
/// leader of term 2 (role byte 1).
fn raft_messages() -> Vec<(String, Vec<u8>)> {
    let entry = |index: u64, term: u64, data: &[u8]| Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    };
    let follower = vec![
        (
            "heartbeat",
            vec![raft(MessageType::MsgHeartbeat, 1, |_| {})],
        ),
        (
            "append",
            vec![raft(MessageType::MsgAppend, 1, |m| {
                m.index = 0;
                m.log_term = 0;
                m.commit = 1;
                m.entries = vec![entry(1, 1, b""), entry(2, 1, b"{\"cmd\":1}")].into();
            })],
        ),
        (
            "vote",
            vec![raft(MessageType::MsgRequestVote, 2, |m| {
                m.index = 0;
                m.log_term = 0;
            })],
        ),
        (
            "prevote",
            vec![raft(MessageType::MsgRequestPreVote, 2, |m| {
                m.index = 5;
                m.log_term = 1;
            })],
        ),
        (
            "timeout-now",
            vec![raft(MessageType::MsgTimeoutNow, 1, |_| {})],
        ),
        (
            "append-then-heartbeat",
            vec![
                raft(MessageType::MsgAppend, 1, |m| {
                    m.entries = vec![entry(1, 1, b"")].into();
                    m.commit = 1;
                }),
                raft(MessageType::MsgHeartbeat, 1, |m| m.commit = 1),
            ],
        ),
    ];
    let leader = vec![
        (
            "append-response",
            vec![raft(MessageType::MsgAppendResponse, 2, |m| m.index = 1)],
        ),
        (
            "append-reject",
            vec![raft(MessageType::MsgAppendResponse, 2, |m| {
                m.reject = true;
                m.reject_hint = 0;
                m.index = 1;
            })],
        ),
        (
            "heartbeat-response",
            vec![raft(MessageType::MsgHeartbeatResponse, 2, |_| {})],
        ),
        (
            "read-index",
            vec![raft(MessageType::MsgReadIndex, 2, |m| {
                m.entries = vec![entry(0, 0, b"ctx")].into();
            })],
        ),
        (
            "transfer-leader",
            vec![raft(MessageType::MsgTransferLeader, 2, |_| {})],
        ),
        (
            "propose",
            vec![raft(MessageType::MsgPropose, 2, |m| {
                m.entries = vec![entry(0, 0, b"{}")].into();
            })],
        ),
    ];
    let mut out = Vec::new();
    for (role, seeds) in [(0u8, follower), (1u8, leader)] {
        for (name, messages) in seeds {
            let mut bytes = vec![role];
            bytes.extend(quorum::SendRequest { messages }.encode_to_vec());
            out.push((
                format!("{}-{name}", ["follower", "leader"][role as usize]),
                bytes,
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// State machine commands

/// Control-plane store commands, one per line (several lines: applied in order).
const STORE_COMMANDS: &[(&str, &str)] = &[
    (
        "register-hosts-create-cluster",
        r#"{"RegisterHost":{"registration":{"id":"host-a","zone":"a","address":"10.0.0.1","ports":{"lo":9000,"hi":9099},"capacity":{"max_nodes":12,"storage_bytes":1099511627776}},"now_ms":1000}}
{"RegisterHost":{"registration":{"id":"host-b","zone":"b","address":"10.0.0.2","ports":{"lo":9000,"hi":9099},"capacity":{"max_nodes":12,"storage_bytes":1099511627776}},"now_ms":1000}}
{"RegisterHost":{"registration":{"id":"host-c","zone":"c","address":"10.0.0.3","ports":{"lo":9000,"hi":9099},"capacity":{"max_nodes":12,"storage_bytes":1099511627776}},"now_ms":1000}}
{"CreateCluster":{"tenant":"acme","spec":{"name":"orders","kafka_version":"3.9.0","broker_count":3,"controller_count":3,"zones":["a","b","c"],"storage_per_broker_bytes":1073741824,"broker_config":{"num.partitions":"3"},"tags":{"team":"payments"},"configuration":null},"client_request_id":"req-1","now_ms":2000}}"#,
    ),
    (
        "create-cluster",
        r#"{"CreateCluster":{"tenant":"acme","spec":{"name":"orders","kafka_version":"3.9.0","broker_count":3,"controller_count":3,"zones":["a","b","c"],"storage_per_broker_bytes":1073741824,"broker_config":{},"tags":{},"configuration":null},"client_request_id":null,"now_ms":2000}}"#,
    ),
    (
        "create-configuration",
        r#"{"CreateConfiguration":{"tenant":"acme","name":"small","kafka_versions":["3.9.0"],"revision":{"revision":1,"description":"first","server_properties":"num.partitions=3\n","properties":{"num.partitions":"3"},"created_at_ms":1000},"now_ms":1000}}"#,
    ),
    (
        "host-health",
        r#"{"SetHostHealth":{"host_id":"host-a","health":"UNREACHABLE"}}"#,
    ),
    (
        "update-tags",
        r#"{"UpdateTags":{"tenant":"acme","cluster_id":"c-1","expected_version":null,"tags":{"a":"b"},"now_ms":3000}}"#,
    ),
    (
        "begin-delete",
        r#"{"BeginOperation":{"tenant":"acme","cluster_id":"c-1","kind":"DELETE","expected_version":null,"spec":null,"now_ms":3000}}"#,
    ),
    (
        "remove-cluster",
        r#"{"RemoveCluster":{"tenant":"acme","cluster_id":"c-1","expected_version":null,"now_ms":3000}}"#,
    ),
];

/// Controller metadata commands, one per line.
const CONTROLLER_COMMANDS: &[(&str, &str)] = &[
    (
        "register-unfence-create-topic",
        r#"{"RegisterBroker":{"broker_id":1,"incarnation_id":"7f3c9a52-0d8e-4c44-9b8c-6a0e3b2f1d11","listeners":[{"name":"PLAINTEXT","host":"127.0.0.1","port":9092,"security_protocol":"PLAINTEXT"}],"rack":"a","cluster_id":"fuzz-cluster"}}
{"RegisterBroker":{"broker_id":2,"incarnation_id":"7f3c9a52-0d8e-4c44-9b8c-6a0e3b2f1d12","listeners":[{"name":"PLAINTEXT","host":"127.0.0.2","port":9092,"security_protocol":"PLAINTEXT"}],"rack":"b","cluster_id":"fuzz-cluster"}}
{"UnfenceBroker":{"broker_id":1,"broker_epoch":1}}
{"UnfenceBroker":{"broker_id":2,"broker_epoch":2}}
{"CreateTopics":{"topics":[{"name":"orders","num_partitions":3,"replication_factor":2,"assignments":[],"configs":[["retention.ms","60000"]]}],"validate_only":false}}
{"CreatePartitions":{"topic":"orders","new_total_count":5,"assignments":[],"validate_only":false}}
{"AllocateProducerIds":{"broker_id":1,"broker_epoch":1}}
{"ControlledShutdown":{"broker_id":2,"broker_epoch":2}}
{"ElectPreferredLeaders":null}
{"FenceBroker":{"broker_id":1,"broker_epoch":1}}"#,
    ),
    (
        "register",
        r#"{"RegisterBroker":{"broker_id":3,"incarnation_id":"7f3c9a52-0d8e-4c44-9b8c-6a0e3b2f1d13","listeners":[],"rack":null,"cluster_id":"fuzz-cluster"}}"#,
    ),
    (
        "feature",
        r#"{"SetFeatureLevel":{"name":"metadata.version","level":21}}"#,
    ),
    ("noop", r#""NoOp""#),
    ("unregister", r#"{"UnregisterBroker":{"broker_id":1}}"#),
];

/// The named JSON-lines seeds, each line checked with `decodes` (a seed the harness would skip
/// is a bug here).
fn json_lines(seeds: &[(&str, &str)], decodes: fn(&[u8]) -> bool) -> Vec<(String, Vec<u8>)> {
    for (name, text) in seeds {
        for line in text.lines() {
            assert!(
                decodes(line.as_bytes()),
                "seed {name}: {line} does not decode"
            );
        }
    }
    seeds
        .iter()
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// REST

/// One request per route shape: `METHOD /path?query`, a newline, the body.
fn rest_requests() -> Vec<(String, Vec<u8>)> {
    let create = r#"{"spec":{"name":"orders","kafkaVersion":"3.9.0","brokerCount":3,"controllerCount":3,"zones":["a","b","c"],"storagePerBrokerBytes":"1073741824","brokerConfig":{"num.partitions":"3"},"tags":{"team":"payments"}},"clientRequestId":"req-1"}"#;
    let requests: &[(&str, &str)] = &[
        ("create-cluster", create),
        (
            "list-clusters",
            "GET /v1/clusters?namePrefix=ord&pageSize=10\n",
        ),
        ("get-cluster", "GET /v1/clusters/c-1\n"),
        (
            "delete-cluster",
            "DELETE /v1/clusters/c-1?currentVersion=1\n",
        ),
        ("bootstrap", "GET /v1/clusters/c-1/bootstrap-brokers\n"),
        (
            "nodes",
            "GET /v1/clusters/c-1/nodes?pageSize=5&pageToken=abc\n",
        ),
        (
            "broker-count",
            "PUT /v1/clusters/c-1/broker-count\n{\"brokerCount\":6,\"currentVersion\":\"1\"}",
        ),
        (
            "tags",
            "PUT /v1/clusters/c-1/tags\n{\"tags\":{\"a\":\"b\"}}",
        ),
        ("operations", "GET /v1/clusters/c-1/operations\n"),
        ("operation", "GET /v1/operations/op-1\n"),
        ("hosts", "GET /v1/hosts?pageSize=1\n"),
        (
            "create-configuration",
            "POST /v1/configurations\n{\"name\":\"small\",\"kafkaVersions\":[\"3.9.0\"],\"serverProperties\":\"num.partitions=3\\n\"}",
        ),
        ("configurations", "GET /v1/configurations\n"),
        (
            "update-configuration",
            "PUT /v1/configurations/cfg-1\n{\"description\":\"d\",\"serverProperties\":\"retention.ms=1000\\n\"}",
        ),
        (
            "cluster-configuration",
            "PUT /v1/clusters/c-1/configuration\n{\"currentVersion\":\"1\",\"configuration\":{\"id\":\"cfg-1\",\"revision\":\"1\"}}",
        ),
        ("revision", "GET /v1/configurations/cfg-1/revisions/1\n"),
        ("openapi", "GET /openapi.json\n"),
    ];
    requests
        .iter()
        .map(|(name, text)| {
            let text = if *name == "create-cluster" {
                format!("POST /v1/clusters\n{text}")
            } else {
                text.to_string()
            };
            (name.to_string(), text.into_bytes())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// gRPC

/// A selector byte then a message.
fn grpc(selector: u8, message: impl prost::Message) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend(message.encode_to_vec());
    out
}

/// A populated message for several selectors of [`crate::grpc::grpc_message`].
fn grpc_messages() -> Vec<(String, Vec<u8>)> {
    let command = CONTROLLER_COMMANDS[1].1.as_bytes().to_vec();
    let image = br#"{"not":"an image"}"#.to_vec();
    let mut out = vec![
        (
            "send",
            grpc(
                0,
                quorum::SendRequest {
                    messages: vec![raft(MessageType::MsgHeartbeat, 1, |_| {})],
                },
            ),
        ),
        (
            "propose",
            grpc(
                1,
                quorum::ProposeRequest {
                    command: b"{}".to_vec(),
                    timeout_ms: 1000,
                },
            ),
        ),
        ("execute", grpc(5, controller::ExecuteRequest { command })),
        (
            "delta-snapshot",
            grpc(
                7,
                controller::MetadataDelta {
                    delta: Some(controller::metadata_delta::Delta::Snapshot(image)),
                },
            ),
        ),
        (
            "delta-batch",
            grpc(
                7,
                controller::MetadataDelta {
                    delta: Some(controller::metadata_delta::Delta::Batch(
                        controller::RecordBatch {
                            offset: 3,
                            records: b"[]".to_vec(),
                        },
                    )),
                },
            ),
        ),
        (
            "list-clusters",
            grpc(
                10,
                controlplane::ListClustersRequest {
                    name_prefix: "ord".into(),
                    page_size: 10,
                    page_token: "t".into(),
                },
            ),
        ),
    ]
    .into_iter()
    .map(|(name, bytes)| (name.to_string(), bytes))
    .collect::<Vec<_>>();
    for selector in 0..crate::grpc::MESSAGES {
        out.push((format!("empty-{selector}"), vec![selector]));
    }
    out
}

// ---------------------------------------------------------------------------------------
// __consumer_offsets

/// An offset commit, a group with one member, and their tombstones.
fn group_records() -> Vec<(String, Vec<u8>)> {
    let [group, offset, tombstone] = offsets_records();
    let encode = |records: &[&OffsetsRecord]| {
        crate::group::encode_records(
            &records
                .iter()
                .map(|r| (r.key().to_vec(), r.value().map(|v| v.to_vec())))
                .collect::<Vec<_>>(),
        )
    };
    vec![
        ("offset".into(), encode(&[&offset])),
        ("group".into(), encode(&[&group])),
        (
            "group-offset-tombstone".into(),
            encode(&[&group, &offset, &tombstone]),
        ),
    ]
}

/// A group with one member, an offset commit of that group, and the commit's tombstone.
fn offsets_records() -> [OffsetsRecord; 3] {
    let offset = OffsetsRecord::Offset {
        group: "billing".into(),
        topic: "orders".into(),
        partition: 0,
        value: Some(CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
        }),
    };
    let group = OffsetsRecord::Group {
        group: "billing".into(),
        value: Some(GroupRecord {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("member-1".into()),
            state_timestamp: 1_700_000_000_000,
            members: vec![MemberRecord {
                member_id: "member-1".into(),
                group_instance_id: None,
                client_id: "client".into(),
                client_host: "/10.0.0.9".into(),
                rebalance_timeout_ms: 60_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x06orders"),
                assignment: Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x06orders"),
            }],
        }),
    };
    let tombstone = OffsetsRecord::Offset {
        group: "billing".into(),
        topic: "orders".into(),
        partition: 0,
        value: None,
    };
    [group, offset, tombstone]
}
