//! Provisioning across hosts: a control plane and three agents, each in its own network
//! namespace with its own IP on a bridge, as separate machines would be. The cluster's brokers
//! advertise their host's IP, and a Kafka client in a fifth namespace produces and consumes
//! through the bootstrap brokers the API returns.
//!
//! Needs root (`ip netns`, veth, a bridge) and kcat (installed by `scripts/test.sh`). Names carry the test's pid so parallel runs do not
//! collide; a guard removes every namespace, link and process, also when the test fails.

use crate::stack;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use stack::authorized;

/// The namespaces: the control plane, one host per zone, and the client.
const ROLES: [&str; 5] = ["cp", "a", "b", "c", "cl"];

/// A bridge with one namespace per role behind a veth pair, on 10.99.N.0/24 (the bridge is
/// .254, so this test, in the root namespace, reaches the API).
struct Network {
    tag: String,
    subnet: String,
    processes: Vec<Child>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

impl Network {
    fn new() -> Network {
        let id = std::process::id() % 10_000;
        let network = Network {
            tag: format!("f{id}"),
            subnet: format!("10.99.{}", 1 + id % 250),
            processes: Vec::new(),
        };
        let bridge = network.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["link", "set", &bridge, "up"]);
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", network.subnet),
            "dev",
            &bridge,
        ]);
        for (i, role) in ROLES.iter().enumerate() {
            let ns = network.namespace(role);
            let (outside, inside) = (
                format!("{}o{i}", network.tag),
                format!("{}i{i}", network.tag),
            );
            ip(&["netns", "add", &ns]);
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &ns]);
            ip(&["link", "set", &outside, "master", &bridge, "up"]);
            let address = format!("{}/24", network.address(role));
            ip(&["-n", &ns, "addr", "add", &address, "dev", &inside]);
            ip(&["-n", &ns, "link", "set", &inside, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        network
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn namespace(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn address(&self, role: &str) -> String {
        let index = ROLES.iter().position(|r| *r == role).unwrap() + 1;
        format!("{}.{index}", self.subnet)
    }

    /// Starts `ferry args…` inside `role`'s namespace and waits for a stdout line starting with
    /// `ready`.
    fn spawn(&mut self, role: &str, args: &[&str], env: &[(&str, &str)], ready: &'static str) {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &self.namespace(role),
                env!("CARGO_BIN_EXE_ferry"),
            ])
            .args(args)
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn ferry in a namespace");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.starts_with(ready) {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(stack::READY)
            .unwrap_or_else(|_| panic!("{ready} in namespace {role}"));
        self.processes.push(child);
    }

    /// Runs kcat with `args` inside `role`'s namespace, `input` on its stdin, for at most a
    /// minute.
    fn kcat(&self, role: &str, args: &[&str], input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new("timeout")
            .args(["60", "ip", "netns", "exec", &self.namespace(role), "kcat"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kcat is installed (bash scripts/test.sh installs it)");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Nodes run in the hosts' namespaces; deleting a namespace does not kill them.
        for role in ROLES {
            let ns = self.namespace(role);
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_in_separate_namespaces_run_a_cluster_a_client_elsewhere_can_use() {
    let mut network = Network::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token-secret");
    let api = format!("{}:7070", network.address("cp"));

    let cp_dir = dir.path().join("control-plane");
    network.spawn(
        "cp",
        &[
            "control-plane",
            "--listen",
            &api,
            "--data-dir",
            cp_dir.to_str().unwrap(),
            "--token-secret-file",
            secret.to_str().unwrap(),
        ],
        &[],
        "ferry control-plane ready:",
    );
    let token = |args: &[&str]| {
        let out = stack::ferry()
            .args(["token", "create"])
            .args(args)
            .arg("--token-secret-file")
            .arg(&secret)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let admin = token(&["--tenant", "acme", "--role", "admin"]);
    let ca_cert = cp_dir.join("ca").join("ca.pem");

    for zone in ["a", "b", "c"] {
        // Each agent enrolls with its own one-time join token.
        let host_id = format!("host-{zone}");
        let join = token(&[
            "--role",
            "agent",
            "--host",
            &host_id,
            "--ca-cert",
            ca_cert.to_str().unwrap(),
        ]);
        let address = network.address(zone);
        let agent_dir = dir.path().join(format!("agent-{zone}"));
        network.spawn(
            zone,
            &[
                "agent",
                "--control-plane",
                &format!("http://{api}"),
                "--zone",
                zone,
                "--address",
                &address,
                "--host-id",
                &format!("host-{zone}"),
                "--ports",
                "30000-30099",
                "--data-dir",
                agent_dir.to_str().unwrap(),
                "--storage-bytes",
                stack::AGENT_STORAGE_BYTES,
            ],
            &[("FERRY_JOIN_TOKEN", &join)],
            "ferry agent ready:",
        );
    }

    // From the root namespace (the bridge's address), through the API.
    let channel = tonic::transport::Channel::from_shared(format!("http://{api}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut clusters = ClusterServiceClient::new(channel);
    // The agents register within a report interval; creating before would be refused.
    let deadline = Instant::now() + stack::READY;
    let created = loop {
        match clusters
            .create_cluster(authorized(
                &admin,
                pb::CreateClusterRequest {
                    spec: Some(stack::spec("spread")),
                    client_request_id: "multihost".into(),
                },
            ))
            .await
        {
            Ok(response) => break response.into_inner(),
            Err(status) if Instant::now() < deadline => {
                eprintln!("waiting for the agents: {}", status.message());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(status) => panic!("CreateCluster: {status}"),
        }
    };
    let id = created.cluster.unwrap().id;
    let deadline = Instant::now() + stack::ACTIVE_WAIT;
    let bootstrap = loop {
        let cluster = clusters
            .get_cluster(authorized(
                &admin,
                pb::GetClusterRequest {
                    cluster_id: id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let status = cluster.status.unwrap();
        if status.state == pb::ClusterState::Active as i32 {
            break status.bootstrap_brokers;
        }
        assert_ne!(
            status.state,
            pb::ClusterState::Failed as i32,
            "{:?}",
            status.state_info
        );
        assert!(Instant::now() < deadline, "not ACTIVE in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each broker advertises its own host's address.
    let expected: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|zone| format!("{}:30002", network.address(zone)))
        .collect();
    assert_eq!(bootstrap, expected.join(","));

    // A client in its own namespace, reaching the brokers over the bridge: kcat, a real
    // librdkafka client (installed by scripts/test.sh).
    let payloads: Vec<String> = (0..100).map(|i| format!("across hosts {i}")).collect();
    let produced = network.kcat(
        "cl",
        &[
            "-b", &bootstrap, "-t", "spread", "-p", "0", "-P", "-X", "acks=all",
        ],
        &payloads.join("\n"),
    );
    assert!(produced.status.success(), "kcat -P: {produced:?}");
    let consumed = network.kcat(
        "cl",
        &[
            "-b",
            &bootstrap,
            "-t",
            "spread",
            "-p",
            "0",
            "-C",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        "",
    );
    assert!(consumed.status.success(), "kcat -C: {consumed:?}");
    let got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(got, payloads);

    // Each broker advertises its own host's address, as the client's metadata shows.
    let listing = network.kcat("cl", &["-b", &bootstrap, "-L", "-J"], "");
    assert!(listing.status.success(), "kcat -L: {listing:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let mut hosts: Vec<String> = metadata["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["name"]
                .as_str()
                .unwrap()
                .rsplit_once(':')
                .unwrap()
                .0
                .to_string()
        })
        .collect();
    hosts.sort();
    let expected_hosts: Vec<String> = ["a", "b", "c"].iter().map(|z| network.address(z)).collect();
    assert_eq!(
        hosts, expected_hosts,
        "brokers advertise their hosts' addresses"
    );
}
