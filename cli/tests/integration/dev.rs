//! `ferry dev`: the one-command start serves Kafka clients, and its data survives Ctrl-C —
//! both the managed service (control plane, three agents and a `--cluster demo` they run) and
//! `--single-node`; `--nodes N` runs its quorum over mutual TLS with certificates it makes
//! and keeps.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::stack;

/// Starts `ferry dev` with `args`; returns the child and the bootstrap address it printed.
fn start_dev(dir: &std::path::Path, args: &[String]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("dev")
        .args(args)
        .arg("--data-dir")
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
        .recv_timeout(Duration::from_secs(120))
        .expect("ferry dev prints its bootstrap");
    (child, bootstrap)
}

/// Kills a `ferry dev` left running by a failed test, and every node under its directory.
struct Cleanup {
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in stack::Stack::node_pids_under(&self.dir) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Ctrl-C: SIGINT, then a clean exit within a minute.
fn interrupt(mut child: Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry dev did not exit within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "ferry dev exits 0 on Ctrl-C");
}

/// `--single-node` on free ports.
fn single_node_args() -> Vec<String> {
    ["--single-node", "--port", "0", "--admin-port", "0"]
        .map(String::from)
        .to_vec()
}

#[tokio::test]
async fn ferry_dev_single_node_serves_clients_and_keeps_data_across_ctrl_c() {
    produce_restart_consume(single_node_args()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ferry_dev_runs_a_demo_cluster_through_the_control_plane_and_keeps_it_across_ctrl_c() {
    let (agent_ports, _) = stack::free_range(600);
    let args: Vec<String> = [
        "--api-port".to_string(),
        stack::free_port().to_string(),
        "--peer-port".into(),
        stack::free_port().to_string(),
        "--agent-ports".into(),
        agent_ports.to_string(),
        "--cluster".into(),
        "demo".into(),
    ]
    .to_vec();
    let dir = produce_restart_consume(args).await;
    // Ctrl-C stopped the agents' nodes too.
    assert_eq!(stack::Stack::node_pids_under(dir.path()), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ferry_dev_nodes_makes_its_certificates_keeps_them_and_its_controllers_want_them() {
    use std::os::unix::fs::PermissionsExt;
    // Brokers at base, admin at base + 50, controllers at base + 100..=102.
    let (base, _) = stack::free_range(110);
    let args: Vec<String> = vec![
        "--nodes".into(),
        "1".into(),
        "--port".into(),
        base.to_string(),
        "--admin-port".into(),
        (base + 50).to_string(),
        "--controller-port".into(),
        (base + 100).to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = start_dev(dir.path(), &args);
    let mut guard = Cleanup {
        child: Some(child),
        dir: dir.path().to_path_buf(),
    };
    let mode = |p: &str| {
        let meta = std::fs::metadata(dir.path().join(p)).unwrap();
        meta.permissions().mode() & 0o777
    };
    assert_eq!(mode("ca/ca-key.pem"), 0o600);
    assert_eq!(mode("node-101/tls/key.pem"), 0o600);
    assert_eq!(mode("node-1/tls"), 0o700);
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    let cert = read("node-101/tls/cert.pem");

    let controller = format!("127.0.0.1:{}", base + 100);
    let describe = |tls: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        command.args([
            "quorum",
            "describe",
            "--bootstrap-controller",
            &controller,
            "--status",
        ]);
        if tls {
            for (flag, file) in [
                ("--tls-ca", "ca.pem"),
                ("--tls-cert", "cert.pem"),
                ("--tls-key", "key.pem"),
            ] {
                command
                    .arg(flag)
                    .arg(dir.path().join("node-101/tls").join(file));
            }
        }
        command.env("FERRY_LOG", "warn").output().unwrap()
    };
    // With a node's certificate the quorum answers (once it elected a leader); without, the
    // command refuses to try plaintext.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = describe(true);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let leader = text
            .lines()
            .find_map(|l| l.strip_prefix("LeaderId:"))
            .map(|l| l.trim().to_string());
        if out.status.success() && leader.is_some_and(|l| l != "-1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "quorum describe over TLS: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!describe(false).status.success());

    interrupt(guard.child.take().unwrap());
    let (child, _) = start_dev(dir.path(), &args);
    guard.child = Some(child);
    // The same CA and certificates after a restart.
    assert_eq!(read("node-101/tls/cert.pem"), cert);
    interrupt(guard.child.take().unwrap());
}

/// `ferry dev --nodes 3` as the README shows it, on the default ports (9092.., 9192..,
/// 9292..): every broker is up and in the metadata.
#[test]
fn ferry_dev_nodes_3_starts_on_its_default_ports() {
    let dir = tempfile::tempdir().unwrap();
    let (child, bootstrap) = start_dev(dir.path(), &["--nodes".into(), "3".into()]);
    let guard = Cleanup {
        child: Some(child),
        dir: dir.path().to_path_buf(),
    };
    assert_eq!(bootstrap, "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let brokers = loop {
        let brokers: Vec<i32> = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.brokers().iter().map(|b| b.id()).collect())
            .unwrap_or_default();
        if brokers.len() == 3 || std::time::Instant::now() > deadline {
            break brokers;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    drop(consumer);
    let mut brokers = brokers;
    brokers.sort_unstable();
    assert_eq!(brokers, vec![101, 102, 103]);
    let mut guard = guard;
    interrupt(guard.child.take().unwrap());
}

/// Produces 10 messages, stops `ferry dev` with Ctrl-C, starts it again on the same directory
/// and reads them back. Returns the directory.
async fn produce_restart_consume(args: Vec<String>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (child, bootstrap) = start_dev(dir.path(), &args);
    let mut guard = Cleanup {
        child: Some(child),
        dir: dir.path().to_path_buf(),
    };
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
    interrupt(guard.child.take().unwrap());

    let (child, bootstrap) = start_dev(dir.path(), &args);
    let mut guard = Cleanup {
        child: Some(child),
        dir: dir.path().to_path_buf(),
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused")
        // Assigned partitions only: nothing is committed on close.
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
    interrupt(guard.child.take().unwrap());
    drop(guard);
    dir
}

/// Runs `ferry dev --single-node` (plus `extra`) with `FERRY_LOG=info` until it prints its
/// bootstrap line, stops it with Ctrl-C, and returns (stdout, stderr, its log file).
fn dev_output(extra: &[&str], envs: &[(&str, &str)]) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("dev")
        .args(single_node_args())
        .args(extra)
        .arg("--data-dir")
        .arg(dir.path())
        .env("FERRY_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cleanup = Cleanup {
        child: None,
        dir: dir.path().to_path_buf(),
    };
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim().starts_with("bootstrap servers:") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    rx.recv_timeout(Duration::from_secs(120))
        .expect("ferry dev prints its bootstrap");
    interrupt(child);
    cleanup.child = None;
    let log = std::fs::read_to_string(dir.path().join("ferry-dev.log")).expect("a log file");
    (reader.join().unwrap(), errors.join().unwrap(), log)
}

#[test]
fn ferry_dev_logs_to_a_file_and_keeps_the_terminal_to_its_banner() {
    let (stdout, stderr, log) = dev_output(&[], &[]);
    assert!(stdout.contains("Ferry dev is running"), "{stdout}");
    assert!(
        stdout.contains("ferry-dev.log (--verbose streams it here)"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("INFO"),
        "the terminal shows no INFO lines without --verbose:\n{stderr}"
    );
    assert!(
        log.contains("INFO"),
        "the log file has the INFO lines:\n{log}"
    );

    let (stdout, stderr, log) = dev_output(&["--verbose"], &[]);
    assert!(stdout.contains("(also streamed to stderr)"), "{stdout}");
    assert!(
        stderr.contains("INFO"),
        "--verbose streams the log:\n{stderr}"
    );
    assert!(log.contains("INFO"), "and still writes the file:\n{log}");
}

#[test]
fn ferry_log_format_json_writes_one_json_object_per_line() {
    let (_, _, log) = dev_output(&[], &[("FERRY_LOG_FORMAT", "json")]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty(), "the log has lines");
    for line in lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not a JSON line: {line}"));
        assert!(object.get("level").is_some(), "{line}");
        assert!(object.get("timestamp").is_some(), "{line}");
    }
}
