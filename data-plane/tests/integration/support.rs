//! Test support: an in-process node on port 0 and a raw Kafka client that speaks the wire
//! protocol with the `kafka-protocol` codecs, so tests control every byte and version.

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ferry_data_plane::broker::BrokerConfig;
use ferry_data_plane::node::{Node, NodeConfig, Role};
use ferry_data_plane::server::ServerOptions;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, FindCoordinatorRequest, RequestHeader, RequestKind,
    ResponseHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A node running in this process; stopped (and its logs flushed) on drop of the token.
pub struct TestNode {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl TestNode {
    /// Starts a node on 127.0.0.1:0 over `dir`, with broker configs by Kafka name.
    pub async fn start(dir: &Path, configs: &[(&str, &str)], server: ServerOptions) -> TestNode {
        let mut broker = BrokerConfig::new(1, dir.join("logs"));
        broker.apply_kafka_configs(configs.iter().copied()).unwrap();
        let node = Node::bind(NodeConfig {
            node_id: 1,
            cluster_id: None,
            roles: vec![Role::Broker, Role::Controller],
            data_dir: dir.to_path_buf(),
            kafka_listen: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
            rack: None,
            admin_listen: None,
            server,
            broker,
            controller_quorum: Default::default(),
            controller_listen: None,
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_secs(2),
            tls: None,
        })
        .await
        .unwrap();
        let addr = node.kafka_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(node.run(stop.clone().cancelled_owned()));
        TestNode { addr, stop, task }
    }

    /// Stops the node and waits for it to flush.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// A raw Kafka connection.
pub struct RawClient {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.unwrap(),
            next_correlation_id: 1,
        }
    }

    /// Encodes a request frame (size prefix included).
    pub fn frame(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> (i32, Bytes) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("ferry-test")))
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        (correlation_id, buf.freeze())
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame: (correlation id, rest of the frame).
    pub async fn read_frame(&mut self) -> Option<(i32, Bytes)> {
        let read = async {
            let size = self.stream.read_i32().await.ok()?;
            let mut buf = vec![0u8; size as usize];
            self.stream.read_exact(&mut buf).await.ok()?;
            let mut bytes = Bytes::from(buf);
            let correlation_id = (&bytes[0..4]).get_i32();
            bytes.advance(0);
            Some((correlation_id, bytes))
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("response within 30 s")
    }

    /// Sends a request and decodes its response.
    pub async fn call(&mut self, api_key: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
        let (correlation_id, frame) = self.frame(api_key, version, &body);
        self.send_raw(&frame).await;
        let (got, mut bytes) = self.read_frame().await.expect("connection open");
        assert_eq!(got, correlation_id, "responses come back in request order");
        ResponseHeader::decode(&mut bytes, api_key.response_header_version(version)).unwrap();
        ResponseKind::decode(api_key, &mut bytes, version).unwrap()
    }

    /// Whether the server closed the connection (reads EOF or a reset within 10 s).
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }
}

/// A v2 record batch of `count` records with `value_bytes`-byte values.
pub fn batch(count: usize, value_bytes: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
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

/// Group settings for the tests that use `__consumer_offsets`: no rebalance delay, and three
/// offsets partitions so the topic is quick to create.
pub const GROUP_CONFIGS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "3"),
];

/// A protocol string.
pub fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A topic name.
pub fn name(s: &str) -> TopicName {
    TopicName(text(s))
}

/// CreateTopics v7 of one partition with the broker's replication factor and these configs;
/// panics unless it succeeds.
pub async fn create_topic(client: &mut RawClient, topic: &str, configs: &[(&str, &str)]) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(1)
                .with_replication_factor(-1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(text(k))
                                .with_value(Some(text(v)))
                        })
                        .collect(),
                ),
        ]);
    match client
        .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
        .await
    {
        ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0, "create {topic}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// FindCoordinator v3 until `group`'s coordinator is ready (the offsets topic is created on the
/// first call and its partitions need a moment to get a leader); the coordinator's node id.
pub async fn find_coordinator(client: &mut RawClient, group: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = FindCoordinatorRequest::default()
            .with_key(text(group))
            .with_key_type(0);
        let ResponseKind::FindCoordinator(r) = client
            .call(
                ApiKey::FindCoordinator,
                3,
                RequestKind::FindCoordinator(request),
            )
            .await
        else {
            panic!("wrong response kind");
        };
        if r.error_code == 0 {
            return r.node_id.0;
        }
        assert_eq!(r.error_code, ResponseError::CoordinatorNotAvailable.code());
        assert!(
            Instant::now() < deadline,
            "coordinator available within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
