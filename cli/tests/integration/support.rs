//! Test support: real `ferry node` processes.

#![allow(dead_code, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `ferry node` child process; killed on drop.
pub struct NodeProcess {
    pub child: Child,
    pub bootstrap: String,
    pub admin: String,
    pub data_dir: PathBuf,
}

impl NodeProcess {
    /// Starts `ferry node` over `data_dir` on free loopback ports and waits for its ready line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "node",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ferry node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ferry node ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("node ready within 60 s");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {line:?}"))
                .to_string()
        };
        NodeProcess {
            child,
            bootstrap: field("bootstrap"),
            admin: field("admin"),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// kill -9: no flush, no clean shutdown.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean shutdown exits 0, got {status}");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a raw Kafka call may take: above the broker's 30 s controller-call timeout.
pub const KAFKA_CALL_TIMEOUT: Duration = Duration::from_secs(40);

/// Sends one Kafka request (raw frames, for the calls librdkafka has no API for or would never
/// send) on a fresh connection to `addr` and decodes the answer.
pub async fn kafka_call(addr: &str, key: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("ferry-test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        stream.write_all(&buf).await.unwrap();
        let size = stream.read_i32().await.expect("a response");
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await.unwrap();
        let mut frame = Bytes::from(frame);
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 7);
        ResponseKind::decode(key, &mut frame, version).unwrap()
    };
    tokio::time::timeout(KAFKA_CALL_TIMEOUT, exchange)
        .await
        .expect("an answer within the Kafka call timeout")
}
