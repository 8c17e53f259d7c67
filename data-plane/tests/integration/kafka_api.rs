//! The Kafka API of a single node, request by request, over real TCP with exact versions.
//!
//! Each test starts its own node in-process on port 0 and speaks raw Kafka frames, so it can
//! send what no well-behaved client would: oversized frames, unknown keys, corrupt batches.

use crate::support;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ferry_data_plane::protocol::versions::{SUPPORTED_APIS, supported_versions};
use ferry_data_plane::server::ServerOptions;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::{RawClient, TestNode, batch, name};

async fn create_topic(
    client: &mut RawClient,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(-1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
    match client
        .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
        .await
    {
        ResponseKind::CreateTopics(r) => r.topics[0].error_code,
        other => panic!("unexpected {other:?}"),
    }
}

fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

async fn produce(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> (i16, i64) {
    let request = produce_request(topic, partition, acks, records);
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

fn fetch_request(
    topic: &str,
    partitions: &[(i32, i64, i32)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|(p, offset, max)| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(*offset)
                                .with_partition_max_bytes(*max)
                                .with_current_leader_epoch(-1)
                                .with_last_fetched_epoch(-1)
                        })
                        .collect(),
                ),
        ])
}

async fn fetch(client: &mut RawClient, request: FetchRequest) -> FetchResponse {
    match client
        .call(ApiKey::Fetch, 12, RequestKind::Fetch(request))
        .await
    {
        ResponseKind::Fetch(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// Record batches in a fetched buffer (each batch's length field + 12 header bytes).
fn batch_count(mut records: &[u8]) -> usize {
    let mut count = 0;
    while records.len() >= 12 {
        let len = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        records = &records[12 + len..];
        count += 1;
    }
    count
}

/// The broker's ApiVersions entries as (key, min, max), in the order it sent them.
fn advertised(response: &ApiVersionsResponse) -> Vec<(i16, i16, i16)> {
    response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect()
}

/// The served table of `versions.rs` (what the decoder accepts) as (key, min, max).
fn served_table() -> Vec<(i16, i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .map(|api| (api.key as i16, api.versions.min, api.versions.max))
        .collect()
}

/// A request frame (size prefix included) whose header names `api_key` (raw, so keys Kafka
/// does not define can be sent) at `version`, with `header_version`'s layout, followed by
/// `body` (already encoded).
fn raw_frame(api_key: i16, version: i16, header_version: i16, body: &[u8]) -> Bytes {
    use kafka_protocol::protocol::Encodable;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(4242)
        .with_client_id(Some(StrBytes::from_static_str("ferry-test")))
        .encode(&mut buf, header_version)
        .unwrap();
    buf.put_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// `body` encoded at `version` by the `kafka-protocol` codec.
fn encoded(body: &RequestKind, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

#[tokio::test]
async fn api_versions_advertises_the_served_table_and_answers_newer_versions_in_v0() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let own = supported_versions(ApiKey::ApiVersions).expect("ApiVersions is served");
    // Every served version of ApiVersions advertises the whole table the decoder enforces:
    // the same keys, in the same order, with the same ranges.
    for version in own.min..=own.max {
        let ResponseKind::ApiVersions(r) = client
            .call(
                ApiKey::ApiVersions,
                version,
                RequestKind::ApiVersions(ApiVersionsRequest::default()),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(r.error_code, 0, "v{version}");
        assert_eq!(advertised(&r), served_table(), "v{version}");
    }
    // A v5 request (newer than the broker knows), shaped as a client would send it: the
    // flexible header and the v4 body. Kafka (KIP-511) does not parse it; it answers in v0
    // with UNSUPPORTED_VERSION and only ApiVersions' own range, and keeps the connection open.
    let newer = own.max + 1;
    let body = RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("ferry-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0")),
    );
    let frame = raw_frame(
        ApiKey::ApiVersions as i16,
        newer,
        ApiKey::ApiVersions.request_header_version(own.max),
        &encoded(&body, own.max),
    );
    client.send_raw(&frame).await;
    let (correlation_id, mut reply) = client.read_frame().await.unwrap();
    assert_eq!(correlation_id, 4242);
    use kafka_protocol::protocol::Decodable;
    ResponseHeader::decode(&mut reply, 0).unwrap();
    let reply = ApiVersionsResponse::decode(&mut reply, 0).unwrap();
    assert_eq!(reply.error_code, ResponseError::UnsupportedVersion.code());
    assert_eq!(
        advertised(&reply),
        vec![(ApiKey::ApiVersions as i16, own.min, own.max)]
    );
    let again = client
        .call(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await;
    assert!(matches!(again, ResponseKind::ApiVersions(r) if r.error_code == 0));
    node.shutdown().await;
}

#[tokio::test]
async fn an_oversized_frame_is_refused_from_its_prefix_and_only_that_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        max_frame_bytes: 64 * 1024,
        ..ServerOptions::default()
    };
    let node = TestNode::start(dir.path(), &[], options).await;
    let mut bystander = RawClient::connect(node.addr).await;
    let mut offender = RawClient::connect(node.addr).await;
    // Announce 1 GiB and send nothing else: the refusal cannot depend on receiving (or
    // buffering) the body.
    offender.send_raw(&(1i32 << 30).to_be_bytes()).await;
    assert!(offender.is_closed().await);
    // A frame just over the limit, sent whole, is refused too.
    let mut client = RawClient::connect(node.addr).await;
    let big = produce_request("t", 0, 1, batch(1, 70 * 1024, 0));
    let (_, frame) = client.frame(ApiKey::Produce, 9, &RequestKind::Produce(big));
    client.send_raw(&frame).await;
    assert!(client.is_closed().await);
    let ok = bystander
        .call(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
    assert!(matches!(ok, ResponseKind::Metadata(_)));
    node.shutdown().await;
}

/// One refusal case: a well-formed request the broker must refuse, and a control request on
/// the same connection, just before it, that the broker must answer.
struct Refusal {
    what: &'static str,
    /// The control: an API and version the broker serves, and its body.
    control: (ApiKey, i16, RequestKind),
    /// The refused frame.
    refused: Bytes,
}

/// A well-formed body of `key` encoded at `version`, in a frame whose header claims `version`:
/// exactly what a client speaking that version sends.
fn well_formed(key: ApiKey, version: i16, body: &RequestKind) -> Bytes {
    raw_frame(
        key as i16,
        version,
        key.request_header_version(version),
        &encoded(body, version),
    )
}

/// Above the served range, but inside what the codec decodes: if the broker accepted the
/// version, it would parse and answer the request.
fn above_served_range(what: &'static str, key: ApiKey, body: RequestKind) -> Refusal {
    let served = supported_versions(key).expect("a served API");
    let version = served.max + 1;
    assert!(
        version <= codec_max(key),
        "{what}: the codec cannot encode v{version}; pick an API it knows beyond the table"
    );
    Refusal {
        what,
        refused: well_formed(key, version, &body),
        control: (key, served.max, body),
    }
}

/// The highest version the `kafka-protocol` codec encodes and decodes for `key`.
fn codec_max(key: ApiKey) -> i16 {
    use kafka_protocol::protocol::Message;
    match key {
        ApiKey::Metadata => MetadataRequest::VERSIONS.max,
        ApiKey::Produce => ProduceRequest::VERSIONS.max,
        ApiKey::Fetch => FetchRequest::VERSIONS.max,
        ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS.max,
        other => panic!("no codec range listed for {other:?}"),
    }
}

#[tokio::test]
async fn unknown_api_keys_unserved_apis_and_unsupported_versions_close_the_connection_as_kafka_does()
 {
    // Apache Kafka answers an unsupported ApiVersions version (the test above); for every other
    // API it closes the connection without a response when the key is unknown, the API is not
    // enabled on the listener, or the version is outside what it serves. Ferry does the same.
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let empty_produce = ProduceRequest::default().with_acks(1).with_timeout_ms(5000);
    let empty_fetch = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1);
    let api_versions = (
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    // Produce v2: the codec starts at v3, so the body is built by hand from the v3 one (v2 is
    // v3 without the leading transactional id, here the 2 bytes of a null string). Every
    // served minimum is also the codec's, so below the range the codec would refuse the body
    // too; this case pins Kafka's answer (a close, no response), while the cases above the
    // range are the ones only the version table refuses.
    let produce_v3 = encoded(&RequestKind::Produce(empty_produce.clone()), 3);
    assert_eq!(&produce_v3[..2], &[0xff, 0xff], "a null transactional id");
    let produce_min = supported_versions(ApiKey::Produce).unwrap().min;
    assert_eq!(produce_min, 3, "the hand-built body below is a v2 body");
    // An API kafka-protocol knows (and Apache Kafka serves) that Ferry does not.
    let unserved = ApiKey::ElectLeaders;
    assert!(
        supported_versions(unserved).is_none(),
        "{unserved:?} is served now: pick an API the broker does not serve"
    );
    let cases = vec![
        above_served_range(
            "Metadata one above the served range",
            ApiKey::Metadata,
            RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
        ),
        above_served_range(
            "Produce one above the served range",
            ApiKey::Produce,
            RequestKind::Produce(empty_produce.clone()),
        ),
        above_served_range(
            "Fetch one above the served range",
            ApiKey::Fetch,
            RequestKind::Fetch(empty_fetch),
        ),
        above_served_range(
            "DescribeCluster one above the served range",
            ApiKey::DescribeCluster,
            RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ),
        Refusal {
            what: "Produce v2 (below the served range)",
            refused: raw_frame(
                ApiKey::Produce as i16,
                produce_min - 1,
                ApiKey::Produce.request_header_version(produce_min - 1),
                &produce_v3[2..],
            ),
            control: (
                ApiKey::Produce,
                produce_min,
                RequestKind::Produce(empty_produce),
            ),
        },
        Refusal {
            what: "an API the broker does not serve",
            refused: well_formed(
                unserved,
                2,
                &RequestKind::ElectLeaders(ElectLeadersRequest::default().with_timeout_ms(5000)),
            ),
            control: api_versions.clone(),
        },
        Refusal {
            what: "an API key Kafka does not define",
            refused: raw_frame(9999, 0, 1, &[]),
            control: api_versions,
        },
    ];
    for Refusal {
        what,
        control: (key, version, body),
        refused,
    } in cases
    {
        let mut client = RawClient::connect(node.addr).await;
        // The connection works and the same request, at a served version, is answered...
        let (correlation_id, frame) = client.frame(key, version, &body);
        client.send_raw(&frame).await;
        let (got, mut answer) = client
            .read_frame()
            .await
            .unwrap_or_else(|| panic!("{what}: the control request was not answered"));
        assert_eq!(got, correlation_id, "{what}");
        use kafka_protocol::protocol::Decodable;
        ResponseHeader::decode(&mut answer, key.response_header_version(version)).unwrap();
        ResponseKind::decode(key, &mut answer, version)
            .unwrap_or_else(|e| panic!("{what}: control answer does not decode: {e}"));
        // ...so the close that follows is the refusal of the version or the API.
        client.send_raw(&refused).await;
        assert!(
            client.is_closed().await,
            "{what}: closed without a response"
        );
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_malformed_request_closes_only_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut bystander = RawClient::connect(node.addr).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Metadata v1 claiming 2^31-1 topics in a 4-byte body: must not allocate for them.
        (
            "huge array count",
            [
                &3i16.to_be_bytes()[..],
                &1i16.to_be_bytes(),
                &1i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
                &i32::MAX.to_be_bytes(),
            ]
            .concat(),
        ),
        // Produce v9 whose body stops after acks.
        (
            "truncated body",
            [
                &0i16.to_be_bytes()[..],
                &9i16.to_be_bytes(),
                &1i32.to_be_bytes(),
                &(-1i16).to_be_bytes(),
                &[0u8],
                &[0, 1],
            ]
            .concat(),
        ),
        // Shorter than a request header.
        ("short frame", vec![0, 3, 0]),
    ];
    for (what, payload) in cases {
        let mut client = RawClient::connect(node.addr).await;
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        client.send_raw(&frame).await;
        assert!(client.is_closed().await, "{what}");
    }
    let ok = bystander
        .call(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
    assert!(matches!(ok, ResponseKind::Metadata(_)));
    node.shutdown().await;
}

#[tokio::test]
async fn a_batch_with_a_bad_crc_is_rejected_with_corrupt_message_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "crc", 1, &[]).await, 0);
    let good = batch(3, 10, 1_000);
    let mut bad = BytesMut::from(&good[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // a record byte, covered by the CRC
    assert_eq!(
        produce(&mut client, "crc", 0, 1, bad.freeze()).await.0,
        ResponseError::CorruptMessage.code()
    );
    // The next good batch gets offset 0: the corrupt one left nothing behind.
    assert_eq!(produce(&mut client, "crc", 0, 1, good).await, (0, 0));
    node.shutdown().await;
}

#[tokio::test]
async fn topic_names_kafka_refuses_get_invalid_topic_exception() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    for bad in ["has space", "..", "", "slash/x", &"x".repeat(250)] {
        assert_eq!(
            create_topic(&mut client, bad, 1, &[]).await,
            ResponseError::InvalidTopicException.code(),
            "{bad:?}"
        );
    }
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("bad name"))),
        ]));
    let ResponseKind::Metadata(r) = client
        .call(ApiKey::Metadata, 12, RequestKind::Metadata(request))
        .await
    else {
        panic!()
    };
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    node.shutdown().await;
}

#[tokio::test]
async fn produce_answers_per_acks_and_acks_zero_gets_no_response_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "acks", 1, &[]).await, 0);
    assert_eq!(
        produce(&mut client, "acks", 0, 1, batch(2, 8, 0)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut client, "acks", 0, -1, batch(2, 8, 0)).await,
        (0, 2)
    );
    // acks=0: send it, then a Metadata request; the first frame back must be Metadata's.
    let (_, silent) = client.frame(
        ApiKey::Produce,
        9,
        &RequestKind::Produce(produce_request("acks", 0, 0, batch(2, 8, 0))),
    );
    client.send_raw(&silent).await;
    let ok = client
        .call(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
    assert!(matches!(ok, ResponseKind::Metadata(_)));
    assert_eq!(
        produce(&mut client, "acks", 0, 1, batch(1, 8, 0)).await,
        (0, 6),
        "the acks=0 batch was appended"
    );
    assert_eq!(
        produce(&mut client, "acks", 0, 2, batch(1, 8, 0)).await.0,
        ResponseError::InvalidRequiredAcks.code()
    );
    node.shutdown().await;
}

#[tokio::test]
async fn acks_all_below_min_insync_replicas_is_refused_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        create_topic(&mut client, "misr", 1, &[("min.insync.replicas", "2")]).await,
        0
    );
    assert_eq!(
        produce(&mut client, "misr", 0, -1, batch(1, 8, 0)).await.0,
        ResponseError::NotEnoughReplicas.code()
    );
    assert_eq!(
        produce(&mut client, "misr", 0, 1, batch(1, 8, 0)).await,
        (0, 0),
        "acks=1 is not subject to it"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_batch_over_max_message_bytes_is_refused_with_message_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        create_topic(&mut client, "big", 1, &[("max.message.bytes", "1000")]).await,
        0
    );
    assert_eq!(
        produce(&mut client, "big", 0, 1, batch(1, 2000, 0)).await.0,
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(
        produce(&mut client, "big", 0, 1, batch(1, 100, 0)).await,
        (0, 0)
    );
    node.shutdown().await;
}

#[tokio::test]
async fn fetch_honours_partition_max_bytes_max_bytes_and_always_returns_one_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "limits", 2, &[]).await, 0);
    let one = batch(1, 1000, 0);
    for partition in 0..2 {
        for _ in 0..10 {
            produce(&mut client, "limits", partition, 1, one.clone()).await;
        }
    }
    let size = one.len() as i32;
    // partition_max_bytes fits two and a half batches: two whole batches come back.
    let r = fetch(
        &mut client,
        fetch_request("limits", &[(0, 0, size * 5 / 2)], 0, 1, i32::MAX),
    )
    .await;
    assert_eq!(
        batch_count(r.responses[0].partitions[0].records.as_ref().unwrap()),
        2
    );
    // A limit smaller than one batch still returns the first batch whole (KIP-74).
    let r = fetch(
        &mut client,
        fetch_request("limits", &[(0, 0, 10)], 0, 1, i32::MAX),
    )
    .await;
    assert_eq!(
        batch_count(r.responses[0].partitions[0].records.as_ref().unwrap()),
        1
    );
    // max_bytes bounds the whole response: three batches across both partitions.
    let r = fetch(
        &mut client,
        fetch_request(
            "limits",
            &[(0, 0, i32::MAX), (1, 0, i32::MAX)],
            0,
            1,
            size * 3,
        ),
    )
    .await;
    let counts: Vec<usize> = r.responses[0]
        .partitions
        .iter()
        .map(|p| batch_count(p.records.as_ref().unwrap()))
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 3, "{counts:?}");
    // Reading at the end gives empty (never null) records and the offsets.
    let r = fetch(
        &mut client,
        fetch_request("limits", &[(0, 10, i32::MAX)], 0, 1, i32::MAX),
    )
    .await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.records.as_ref().map(|r| r.len()), Some(0));
    assert_eq!(
        (p.high_watermark, p.log_start_offset, p.error_code),
        (10, 0, 0)
    );
    let r = fetch(
        &mut client,
        fetch_request("limits", &[(0, 11, i32::MAX)], 0, 1, i32::MAX),
    )
    .await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let r = fetch(
        &mut client,
        fetch_request("nope", &[(0, 0, 100)], 0, 1, i32::MAX),
    )
    .await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    node.shutdown().await;
}

#[tokio::test]
async fn fetch_waits_up_to_max_wait_ms_for_min_bytes_and_wakes_when_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "wait", 1, &[]).await, 0);
    // Nothing arrives: the answer comes no earlier than max_wait_ms, empty.
    let started = Instant::now();
    let r = fetch(
        &mut client,
        fetch_request("wait", &[(0, 0, 1 << 20)], 300, 1, i32::MAX),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        r.responses[0].partitions[0].records.as_ref().unwrap().len(),
        0
    );
    // Data arrives while waiting: the long poll returns it well before max_wait_ms.
    let addr = node.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut other = RawClient::connect(addr).await;
        produce(&mut other, "wait", 0, 1, batch(1, 10, 0)).await
    });
    let started = Instant::now();
    let r = fetch(
        &mut client,
        fetch_request("wait", &[(0, 0, 1 << 20)], 30_000, 1, i32::MAX),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "woken by the append, not the timeout"
    );
    assert_eq!(
        batch_count(r.responses[0].partitions[0].records.as_ref().unwrap()),
        1
    );
    assert_eq!(producer.await.unwrap(), (0, 0));
    node.shutdown().await;
}

#[tokio::test]
async fn list_offsets_finds_earliest_latest_and_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "times", 1, &[]).await, 0);
    for (i, ts) in [1_000, 2_000, 3_000].into_iter().enumerate() {
        assert_eq!(
            produce(&mut client, "times", 0, 1, batch(2, 10, ts)).await,
            (0, 2 * i as i64)
        );
    }
    let list = |timestamp: i64| {
        RequestKind::ListOffsets(
            ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name("times"))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(timestamp)
                                .with_current_leader_epoch(-1),
                        ]),
                ]),
        )
    };
    let mut offset_of =
        async |timestamp: i64| match client.call(ApiKey::ListOffsets, 7, list(timestamp)).await {
            ResponseKind::ListOffsets(r) => {
                let p = &r.topics[0].partitions[0];
                assert_eq!(p.error_code, 0);
                (p.offset, p.timestamp)
            }
            other => panic!("unexpected {other:?}"),
        };
    assert_eq!(offset_of(-2).await.0, 0, "earliest");
    assert_eq!(offset_of(-1).await.0, 6, "latest");
    assert_eq!(
        offset_of(1_500).await,
        (2, 2_000),
        "first record at or after the time"
    );
    assert_eq!(offset_of(9_999).await.0, -1, "nothing that late");
    assert_eq!(offset_of(-3).await.1, 3_000, "max timestamp");
    node.shutdown().await;
}

#[tokio::test]
async fn topics_survive_a_restart_and_deleted_topics_leave_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "keep", 2, &[]).await, 0);
    assert_eq!(create_topic(&mut client, "drop", 1, &[]).await, 0);
    assert_eq!(
        create_topic(&mut client, "keep", 1, &[]).await,
        ResponseError::TopicAlreadyExists.code()
    );
    produce(&mut client, "keep", 1, 1, batch(5, 10, 0)).await;
    produce(&mut client, "drop", 0, 1, batch(5, 10, 0)).await;
    let delete = DeleteTopicsRequest::default().with_topic_names(vec![name("drop"), name("never")]);
    let ResponseKind::DeleteTopics(r) = client
        .call(ApiKey::DeleteTopics, 5, RequestKind::DeleteTopics(delete))
        .await
    else {
        panic!()
    };
    let codes: Vec<i16> = r.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![0, ResponseError::UnknownTopicOrPartition.code()]
    );
    assert!(!dir.path().join("logs/drop-0").exists());
    node.shutdown().await;

    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let all = MetadataRequest::default().with_topics(None);
    let ResponseKind::Metadata(m) = client
        .call(ApiKey::Metadata, 12, RequestKind::Metadata(all))
        .await
    else {
        panic!()
    };
    let names: Vec<String> = m
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.to_string())
        .collect();
    assert_eq!(names, vec!["keep"]);
    assert_eq!(
        produce(&mut client, "keep", 1, 1, batch(1, 10, 0)).await,
        (0, 5),
        "offsets continue"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn metadata_finds_topics_by_id_and_reports_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "by-id", 2, &[]).await, 0);
    let all = MetadataRequest::default().with_topics(None);
    let ResponseKind::Metadata(m) = client
        .call(ApiKey::Metadata, 12, RequestKind::Metadata(all))
        .await
    else {
        panic!()
    };
    let id = m.topics[0].topic_id;
    let unknown = uuid::Uuid::new_v4();
    let by_id = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(id),
        MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(unknown),
    ]));
    let ResponseKind::Metadata(m) = client
        .call(ApiKey::Metadata, 12, RequestKind::Metadata(by_id))
        .await
    else {
        panic!()
    };
    assert_eq!(m.topics[0].name.as_ref().unwrap().0.as_str(), "by-id");
    assert_eq!(m.topics[0].partitions.len(), 2);
    assert_eq!(
        (m.topics[1].topic_id, m.topics[1].error_code),
        (unknown, ResponseError::UnknownTopicId.code())
    );
    node.shutdown().await;
}

#[tokio::test]
async fn create_partitions_grows_a_topic_and_refuses_to_shrink_it() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "grow", 1, &[]).await, 0);
    let mut grow = async |topic: &str, count: i32| {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(count),
            ]);
        match client
            .call(
                ApiKey::CreatePartitions,
                3,
                RequestKind::CreatePartitions(request),
            )
            .await
        {
            ResponseKind::CreatePartitions(r) => r.results[0].error_code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(grow("grow", 3).await, 0);
    assert_eq!(
        grow("grow", 2).await,
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        grow("missing", 2).await,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce(&mut client, "grow", 2, 1, batch(1, 10, 0)).await,
        (0, 0),
        "the new partition takes writes"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn topic_configs_change_without_restart_and_describe_shows_their_source() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(
        create_topic(&mut client, "conf", 1, &[("retention.ms", "60000")]).await,
        0
    );
    let alter = |resource_type: i8, resource: &str, op: i8, key: &str, value: Option<&str>| {
        RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(resource.to_string()))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(key.to_string()))
                            .with_config_operation(op)
                            .with_value(value.map(|v| StrBytes::from_string(v.to_string()))),
                    ]),
            ]),
        )
    };
    let mut code_of = async |request: RequestKind| match client
        .call(ApiKey::IncrementalAlterConfigs, 1, request)
        .await
    {
        ResponseKind::IncrementalAlterConfigs(r) => r.responses[0].error_code,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        code_of(alter(2, "conf", 0, "max.message.bytes", Some("2000"))).await,
        0
    );
    assert_eq!(code_of(alter(2, "conf", 1, "retention.ms", None)).await, 0);
    assert_eq!(
        code_of(alter(2, "conf", 0, "retention.ms", Some("soon"))).await,
        ResponseError::InvalidConfig.code()
    );
    assert_eq!(
        code_of(alter(2, "conf", 0, "no.such.config", Some("1"))).await,
        ResponseError::InvalidConfig.code()
    );
    assert_eq!(
        code_of(alter(4, "1", 0, "num.partitions", Some("2"))).await,
        ResponseError::InvalidRequest.code()
    );
    // The new max.message.bytes applies at once: a 3,000-byte batch is now too large.
    assert_eq!(
        produce(&mut client, "conf", 0, 1, batch(1, 3000, 0))
            .await
            .0,
        ResponseError::MessageTooLarge.code()
    );

    let describe = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("conf"))
            .with_configuration_keys(None),
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("missing")),
    ]);
    let ResponseKind::DescribeConfigs(r) = client
        .call(
            ApiKey::DescribeConfigs,
            4,
            RequestKind::DescribeConfigs(describe),
        )
        .await
    else {
        panic!()
    };
    let configs: std::collections::BTreeMap<String, (String, i8)> = r.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (c.value.as_ref().unwrap().to_string(), c.config_source),
            )
        })
        .collect();
    assert_eq!(
        configs["max.message.bytes"],
        ("2000".to_string(), 1),
        "dynamic topic config"
    );
    assert_eq!(
        configs["retention.ms"],
        ("604800000".to_string(), 5),
        "back to the default"
    );
    assert!(configs.contains_key("min.insync.replicas"));
    assert_eq!(
        r.results[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    node.shutdown().await;
}

#[tokio::test]
async fn describe_quorum_reports_the_single_node_as_its_own_leader() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let ResponseKind::DescribeQuorum(r) = client
        .call(
            ApiKey::DescribeQuorum,
            2,
            RequestKind::DescribeQuorum(DescribeQuorumRequest::default()),
        )
        .await
    else {
        panic!()
    };
    let partition = &r.topics[0].partitions[0];
    assert_eq!(r.topics[0].topic_name.0.as_str(), "__cluster_metadata");
    assert_eq!(partition.leader_id.0, 1);
    assert_eq!(partition.current_voters.len(), 1);
    assert_eq!(r.nodes.len(), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn a_failed_acks_zero_produce_closes_the_connection_so_the_client_notices() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let request = produce_request("no-such-topic", 0, 0, batch(1, 8, 0));
    let (_, frame) = client.frame(ApiKey::Produce, 9, &RequestKind::Produce(request));
    client.send_raw(&frame).await;
    assert!(client.is_closed().await);
    node.shutdown().await;
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_from_the_leader_epoch_cache() {
    use kafka_protocol::messages::OffsetForLeaderEpochRequest;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    assert_eq!(create_topic(&mut client, "epochs", 1, &[]).await, 0);
    assert_eq!(
        produce(&mut client, "epochs", 0, 1, batch(5, 10, 1)).await,
        (0, 0)
    );
    // (current leader epoch the client believes, epoch asked) -> (error, epoch, end offset)
    let cases = [
        ((-1, 0), (0, 0, 5)),
        ((0, 0), (0, 0, 5)),
        ((-1, 7), (0, -1, -1)),
        ((3, 0), (ResponseError::UnknownLeaderEpoch.code(), -1, -1)),
    ];
    for ((current, asked), expected) in cases {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name("epochs"))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(asked),
                    ]),
            ]);
        for version in 2..=4 {
            let response = client
                .call(
                    ApiKey::OffsetForLeaderEpoch,
                    version,
                    RequestKind::OffsetForLeaderEpoch(request.clone()),
                )
                .await;
            let ResponseKind::OffsetForLeaderEpoch(response) = response else {
                panic!("unexpected {response:?}")
            };
            let p = &response.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.leader_epoch, p.end_offset),
                expected,
                "v{version} current {current} asked {asked}"
            );
        }
    }
    node.shutdown().await;
}
