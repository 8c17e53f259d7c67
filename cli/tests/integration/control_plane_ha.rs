//! A replicated control plane: three `ferry control-plane` members on one raft-rs store. Every
//! member serves the API (a follower forwards writes to the leader); only the leader
//! reconciles. The leader is killed with kill -9 in the middle of a cluster's creation (seen
//! under way: some steps done, some node processes started): another member takes over and the
//! operation completes, with nothing started twice. The agents know every member; the agent
//! that talked to the leader fails over to another member and goes on reporting, and its nodes
//! keep running throughout.

use crate::cluster;
use crate::stack;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_proto::controlplane::v1 as pb;
use stack::{Stack, authorized, ferry, free_port, free_range, now_ms};

/// Runs `ferry cert` with `args`.
fn cert(args: &[&str]) {
    let out = ferry().arg("cert").args(args).output().unwrap();
    assert!(out.status.success(), "ferry cert {args:?}: {out:?}");
}

/// Member `id`'s TLS flags: its certificate, and (member 1 only) the CA key, so the CA gets
/// into the store and every member can enroll agents.
fn tls_flags(dir: &std::path::Path, id: usize) -> Vec<String> {
    let tls = dir.join(format!("tls-{id}"));
    let mut flags = vec![
        "--tls-ca".to_string(),
        tls.join("ca.pem").display().to_string(),
        "--tls-cert".into(),
        tls.join("cert.pem").display().to_string(),
        "--tls-key".into(),
        tls.join("key.pem").display().to_string(),
    ];
    if id == 1 {
        flags.push("--tls-ca-key".into());
        flags.push(dir.join("ca").join("ca-key.pem").display().to_string());
    }
    flags
}

/// The members, their agents, and who said they lead.
struct Members {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    processes: Vec<Option<Child>>,
    agents: Vec<Child>,
    /// Member ids (1-based) in the order their reconcilers started leading.
    leaders: Arc<Mutex<Vec<usize>>>,
}

impl Members {
    fn start() -> Members {
        let dir = tempfile::tempdir().unwrap();
        // One token secret for all members, written before any starts.
        std::fs::write(
            dir.path().join("token-secret"),
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers: Vec<String> = peer_ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
            .collect();
        // The operator's CA, and a certificate for each member, made with `ferry cert`.
        let ca_dir = dir.path().join("ca");
        cert(&["ca", "--dir", ca_dir.to_str().unwrap()]);
        for i in 1..=3 {
            let out = dir.path().join(format!("tls-{i}"));
            cert(&[
                "issue",
                "--ca-dir",
                ca_dir.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--control-plane",
                &i.to_string(),
                "--san",
                "127.0.0.1",
            ]);
        }
        let leaders = Arc::new(Mutex::new(Vec::new()));
        let mut processes = Vec::new();
        let mut ready = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
                .args(["control-plane", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("member-{}", i + 1)))
                .arg("--token-secret-file")
                .arg(dir.path().join("token-secret"))
                .args(["--peers", &peers.join(","), "--id", &(i + 1).to_string()])
                .arg("--peer-listen")
                .arg(format!("127.0.0.1:{}", peer_ports[i]))
                .args(tls_flags(dir.path(), i + 1))
                .env("FERRY_LOG", "ferry_control_plane=info,warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.take().unwrap();
            let log = Arc::clone(&leaders);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("leads the store: reconciling") {
                        log.lock().unwrap().push(i + 1);
                    }
                }
            });
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.starts_with("ferry control-plane ready:") {
                        let _ = tx.send(());
                    }
                }
            });
            ready.push(rx);
            processes.push(Some(child));
        }
        for rx in ready {
            rx.recv_timeout(stack::READY).expect("every member ready");
        }
        Members {
            dir,
            ports,
            processes,
            agents: Vec::new(),
            leaders,
        }
    }

    fn api(&self, member: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[member - 1])
    }

    fn token(&self, args: &[&str]) -> String {
        let out = ferry()
            .args(["token", "create"])
            .args(args)
            .arg("--token-secret-file")
            .arg(self.dir.path().join("token-secret"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The member whose reconciler leads now (the last to say so), waiting for one.
    fn leader(&self) -> usize {
        let deadline = Instant::now() + stack::READY;
        loop {
            if let Some(&member) = self.leaders.lock().unwrap().last() {
                return member;
            }
            assert!(Instant::now() < deadline, "no member started reconciling");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self, member: usize) {
        if let Some(mut child) = self.processes[member - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for child in self
            .agents
            .iter_mut()
            .chain(self.processes.iter_mut().flatten())
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in Stack::node_pids_under(self.dir.path()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_killed_mid_creation_hands_the_operation_to_another_member() {
    let mut members = Members::start();
    let leader = members.leader();
    let follower = (1..=3).find(|m| *m != leader).unwrap();
    let third = (1..=3).find(|m| *m != leader && *m != follower).unwrap();
    let admin = members.token(&["--tenant", "acme", "--role", "admin"]);
    let ca_cert = members.dir.path().join("ca").join("ca.pem");

    // Every agent is given every member. Host a's agent lists the leader first: it enrolls
    // there and talks to it, and must fail over when the leader is killed below. Hosts b and c
    // list a follower first, which forwards their writes to the leader. The three ways to give
    // the list: a comma list (a), the flag repeated (b), FERRY_CONTROL_PLANE (c). Host b's
    // list starts with a member that is down: enrollment goes on to the next.
    let api: Vec<String> = (1..=3).map(|m| members.api(m)).collect();
    let urls = |order: [usize; 3]| order.map(|m| api[m - 1].clone());
    for zone in ["a", "b", "c"] {
        let join = members.token(&[
            "--role",
            "agent",
            "--host",
            &format!("host-{zone}"),
            "--ca-cert",
            ca_cert.to_str().unwrap(),
        ]);
        let (lo, hi) = free_range(100);
        let mut command = ferry();
        command.args(["agent", "--zone", zone]);
        match zone {
            "a" => {
                command.args([
                    "--control-plane",
                    &urls([leader, follower, third]).join(","),
                ]);
            }
            "b" => {
                // First an address where no member listens (a member down at enrollment).
                let down = format!("http://127.0.0.1:{}", free_port());
                command.args(["--control-plane", &down]);
                for url in urls([follower, third, leader]) {
                    command.args(["--control-plane", &url]);
                }
            }
            _ => {
                command.env(
                    "FERRY_CONTROL_PLANE",
                    urls([follower, leader, third]).join(","),
                );
            }
        }
        let child = command
            .args([
                "--address",
                "127.0.0.1",
                "--host-id",
                &format!("host-{zone}"),
            ])
            .args(["--ports", &format!("{lo}-{hi}")])
            .arg("--data-dir")
            .arg(members.dir.path().join(format!("agent-{zone}")))
            .args(["--storage-bytes", stack::AGENT_STORAGE_BYTES])
            .env("FERRY_JOIN_TOKEN", &join)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        members.agents.push(child);
    }
    // Readiness is every host HEALTHY, as a follower lists them.
    let deadline = Instant::now() + stack::READY;
    loop {
        let hosts = stack::list_hosts(&members.api(follower), &admin)
            .await
            .unwrap_or_default();
        let healthy = hosts
            .iter()
            .filter(|h| h.health == pb::HostHealth::Healthy as i32)
            .count();
        if healthy == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hosts not all HEALTHY: {hosts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Host c's agent is paused from just before the creation, so that the operation stays
    // under way (its nodes are placed and assigned but not started) until the kill.
    let host_c_agent = members.agents[2].id();
    stack::signal(host_c_agent, "STOP");
    let channel = tonic::transport::Channel::from_shared(members.api(follower))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut clusters =
        ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient::new(
            channel.clone(),
        );
    let mut operations =
        ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient::new(
            channel,
        );
    let created = clusters
        .create_cluster(authorized(
            &admin,
            pb::CreateClusterRequest {
                spec: Some(stack::spec("ha")),
                client_request_id: "ha-1".into(),
            },
        ))
        .await
        .expect("CreateCluster through a follower")
        .into_inner();
    let cluster_id = created.cluster.unwrap().id;
    let operation_id = created.operation.unwrap().id;

    // Host a's agent runs its two nodes, and the operation is under way: then the leader dies.
    let host_a_dir = members.dir.path().join("agent-a");
    let deadline = Instant::now() + stack::READY;
    while Stack::node_pids_under(&host_a_dir).len() < 2 {
        assert!(Instant::now() < deadline, "host a's nodes never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let under_way = stack::wait_until_under_way(
        &mut operations,
        &admin,
        &operation_id,
        || Stack::node_pids_under(members.dir.path()).len(),
        6,
    )
    .await;
    let host_a_pids = Stack::node_pids_under(&host_a_dir);
    eprintln!(
        "killing the leader (member {leader}) with the operation at {}% and host a running {:?}",
        under_way.progress_percent, host_a_pids
    );
    members.kill(leader);
    let killed_ms = now_ms();
    stack::signal(host_c_agent, "CONT");

    let deadline = Instant::now() + stack::ACTIVE_WAIT;
    let active = loop {
        let get = authorized(
            &admin,
            pb::GetClusterRequest {
                cluster_id: cluster_id.clone(),
            },
        );
        if let Ok(cluster) = clusters.get_cluster(get).await {
            let status = cluster.into_inner().status.unwrap();
            assert_ne!(
                status.state,
                pb::ClusterState::Failed as i32,
                "{:?}",
                status.state_info
            );
            if status.state == pb::ClusterState::Active as i32 {
                break status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not ACTIVE after the leader's death"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let new_leader = members.leader();
    assert_ne!(new_leader, leader, "another member took over reconciling");
    // One process per node: the new leader resumed the operation, it did not start it again.
    assert_eq!(Stack::node_pids_under(members.dir.path()).len(), 6);

    // Host a's agent lost its member and reports through another: a survivor holds reports of
    // the host and of each of its nodes, RUNNING, received after the kill.
    let deadline = Instant::now() + stack::READY;
    loop {
        let hosts = stack::list_hosts(&members.api(third), &admin)
            .await
            .unwrap_or_default();
        let host_a = hosts.iter().find(|h| h.id == "host-a");
        let reported = host_a.is_some_and(|h| {
            h.last_seen_at > killed_ms
                && h.nodes.len() == 2
                && h.nodes.iter().filter_map(|n| n.node.as_ref()).all(|n| {
                    n.reported_at_ms > killed_ms && n.state == pb::NodeState::Running as i32
                })
        });
        if reported {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host a's agent did not report through another member after the kill at \
             {killed_ms}: {host_a:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its nodes kept running all along (the same processes) and the cluster serves.
    assert_eq!(Stack::node_pids_under(&host_a_dir), host_a_pids);
    let acked = cluster::produce(&active.bootstrap_brokers, "after-failover", 50).await;
    assert_eq!(acked.values().sum::<usize>(), 50);
}
