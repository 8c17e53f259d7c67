//! End-to-end smoke test: a real `ferry node` on loopback (for `controller-failover`, the quorum
//! the workload starts itself), driven by the real `ferry-load` binary with tiny volumes. Checks
//! that every workload runs, verifies and reports sane JSON; it never asserts on timings.
//!
//! The `ferry` binary belongs to another package, so cargo cannot build it for this test. It is
//! looked up in `FERRY_BIN`, else next to this test's own target directory (`<target>/debug/ferry`
//! for `cargo test`); build it first with `cargo build -p ferry-cli`. The test fails, rather than
//! skips, when it is missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the node may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the `ferry` binary is expected.
fn ferry_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FERRY_BIN") {
        return PathBuf::from(path);
    }
    // This test runs as <target>/<profile>/deps/smoke-<hash>; the binary is <target>/<profile>/ferry.
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in <target>/<profile>/deps");
    profile_dir.join(format!("ferry{}", std::env::consts::EXE_SUFFIX))
}

/// A `ferry node` child process, killed on drop.
struct Node {
    child: Child,
    bootstrap: String,
    _data: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let bin = ferry_bin();
        assert!(
            bin.is_file(),
            "the ferry binary is missing at {}: build it with `cargo build -p ferry-cli` (same \
             CARGO_TARGET_DIR) or point FERRY_BIN at it",
            bin.display()
        );
        let data = tempfile::tempdir().expect("temporary data directory");
        let mut child = Command::new(&bin)
            .args(["node", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path().join("node"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            child,
            bootstrap: String::new(),
            _data: data,
        };
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        while node.bootstrap.is_empty() {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            let line = ready
                .recv_timeout(remaining)
                .expect("ferry node printed its ready line in time");
            if let Some(rest) = line.strip_prefix("ferry node ready:") {
                node.bootstrap = rest
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("bootstrap="))
                    .expect("ready line has bootstrap=")
                    .to_string();
            }
        }
        node
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ferry-load --json <args>` and returns its exit success and parsed stdout.
fn ferry_load(args: &[&str]) -> (bool, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-load"))
        .arg("--json")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running ferry-load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "ferry-load {args:?} printed no JSON ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), value)
}

#[test]
fn produce_consume_disk_and_bench_against_a_real_node() {
    let node = Node::start();
    let bootstrap = node.bootstrap.as_str();
    let common = ["--bootstrap", bootstrap, "--topic", "smoke"];

    let (ok, produce) = ferry_load(
        &[
            &["produce"][..],
            &common,
            &[
                "--partitions",
                "3",
                "--messages",
                "3000",
                "--duration-secs",
                "10",
            ],
        ]
        .concat(),
    );
    assert!(ok, "produce failed: {produce:#}");
    assert_eq!(produce["messages"], 3000);
    assert_eq!(produce["bytes"], 3000 * 1024);
    assert_eq!(produce["errors"], 0);
    assert!(produce["latency"]["p99_us"].as_u64().unwrap() > 0);

    let (ok, consume) =
        ferry_load(&[&["consume"][..], &common, &["--timeout-secs", "20"]].concat());
    assert!(ok, "consume failed: {consume:#}");
    assert_eq!(consume["messages"], 3000);
    assert_eq!(consume["violations"], serde_json::json!([]));

    let (ok, bench) = ferry_load(
        &[
            &["bench"][..],
            &common,
            &[
                "--messages",
                "2000",
                "--duration-secs",
                "10",
                "--acks",
                "all",
            ],
        ]
        .concat(),
    );
    assert!(ok, "bench failed: {bench:#}");
    let reports = bench["reports"].as_array().expect("reports");
    let workloads: Vec<&str> = reports
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(workloads, ["produce", "consume", "disk"]);
    assert_eq!(
        reports[1]["messages"], 2000,
        "consume reads exactly the produced run"
    );
    assert_eq!(
        reports[2]["bytes"],
        2000 * 1024,
        "disk writes the produced volume"
    );
    assert_eq!(bench["ratios"].as_array().unwrap().len(), 3);
}

#[test]
fn consume_of_a_missing_topic_fails() {
    let node = Node::start();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-load"))
        .args(["consume", "--bootstrap", &node.bootstrap, "--topic", "nope"])
        .args(["--timeout-secs", "5"])
        .output()
        .expect("running ferry-load");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn metadata_image_at_a_tiny_size() {
    let (ok, report) = ferry_load(&[
        "metadata-image",
        "--partitions",
        "2000",
        "--topics",
        "7",
        "--brokers",
        "6",
    ]);
    assert!(ok, "metadata-image failed: {report:#}");
    assert_eq!(report["messages"], 2000);
    assert!(report["bytes"].as_u64().unwrap() > 2000);
    let rates: Vec<&str> = report["rates"]
        .as_array()
        .expect("rates")
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(rates.contains(&"time to load: read+decode"), "{rates:?}");
}

#[test]
fn controller_failover_against_real_controllers() {
    let bin = ferry_bin();
    assert!(
        bin.is_file(),
        "build the ferry binary first (see the module docs)"
    );
    let (ok, report) = ferry_load(&[
        "controller-failover",
        "--ferry-bin",
        bin.to_str().expect("a UTF-8 path"),
        "--trials",
        "2",
    ]);
    assert!(ok, "controller-failover failed: {report:#}");
    assert_eq!(report["messages"], 2, "both trials completed");
    let names: Vec<&str> = report["latencies"]
        .as_array()
        .expect("latencies")
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"kill -> first committed write"),
        "{names:?}"
    );
}
