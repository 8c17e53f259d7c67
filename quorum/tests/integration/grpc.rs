//! Integration tests over real gRPC on 127.0.0.1: three voters in one process, each with its
//! own directory, listener (port 0) and tasks.
//!
//! Timing only bounds waits here (polling with deadlines); no assertion depends on speed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ferry_proto::quorum::v1 as pb;
use ferry_proto::quorum::v1::propose_error::Kind;
use ferry_proto::quorum::v1::raft_client::RaftClient;
use ferry_proto::quorum::v1::raft_snapshot_client::RaftSnapshotClient;
use ferry_quorum::{
    Error, Message, Options, Quorum, QuorumHandle, RaftId, Role, StateMachine, transport,
};
use raft::prelude::MessageType;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A list of every applied command; queries return `count,last`.
#[derive(Default)]
struct Journal {
    /// Commands in apply order.
    commands: Vec<String>,
}

impl StateMachine for Journal {
    fn validate(&self, command: &[u8]) -> Result<(), String> {
        std::str::from_utf8(command)
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    fn apply(&mut self, _index: u64, command: &[u8]) -> Vec<u8> {
        self.commands
            .push(String::from_utf8(command.to_vec()).unwrap());
        self.commands.len().to_string().into_bytes()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.commands.join("\n").into_bytes()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let text = String::from_utf8(data.to_vec()).map_err(|err| err.to_string())?;
        self.commands = text.lines().map(str::to_string).collect();
        Ok(())
    }

    fn query(&self, _query: &[u8]) -> Vec<u8> {
        let last = self.commands.last().cloned().unwrap_or_default();
        format!("{},{last}", self.commands.len()).into_bytes()
    }
}

/// Three voters' addresses, directories and options.
struct Cluster {
    /// Voter id → listen address.
    addresses: BTreeMap<RaftId, SocketAddr>,
    /// Voter id → data directory (kept across restarts).
    dirs: BTreeMap<RaftId, TempDir>,
    /// Running voters.
    handles: BTreeMap<RaftId, QuorumHandle>,
    /// A test's changes to the options every voter starts with.
    tweak: fn(&mut Options),
}

impl Cluster {
    async fn start() -> Cluster {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: fn(&mut Options)) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut listeners = BTreeMap::new();
        for id in 1..=3 {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addresses = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap()))
            .collect();
        let dirs = (1..=3)
            .map(|id| (id, tempfile::tempdir().unwrap()))
            .collect();
        let mut cluster = Cluster {
            addresses,
            dirs,
            handles: BTreeMap::new(),
            tweak,
        };
        for (id, listener) in listeners {
            cluster.start_node(id, listener).await;
        }
        cluster
    }

    fn options(&self, id: RaftId) -> Options {
        let mut options = Options {
            id,
            peers: self
                .addresses
                .iter()
                .map(|(id, a)| (*id, a.to_string()))
                .collect(),
            tick_interval: Duration::from_millis(20),
            snapshot_entries: 5,
            propose_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        (self.tweak)(&mut options);
        options
    }

    async fn start_node(&mut self, id: RaftId, listener: TcpListener) {
        let dir = self.dirs[&id].path();
        let handle = Quorum::start(self.options(id), Journal::default(), dir, listener).await;
        self.handles.insert(id, handle.unwrap());
    }

    async fn restart(&mut self, id: RaftId) {
        let listener = TcpListener::bind(self.addresses[&id]).await.unwrap();
        self.start_node(id, listener).await;
    }

    async fn stop(&mut self, id: RaftId) {
        self.handles.remove(&id).unwrap().shutdown().await;
    }

    /// Waits until a running voter is leader.
    async fn leader(&self) -> RaftId {
        wait_for("a leader", || async {
            let mut leaders = Vec::new();
            for handle in self.handles.values() {
                let status = handle.status().await.unwrap();
                leaders.push((status.role == Role::Leader).then_some(status.id));
            }
            leaders.into_iter().flatten().next()
        })
        .await
    }

    /// Any running voter other than `not`.
    fn other(&self, not: RaftId) -> &QuorumHandle {
        self.handles
            .iter()
            .find(|(id, _)| **id != not)
            .map(|(_, h)| h)
            .unwrap()
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most 10 s.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_then_restart_catches_up_by_snapshot() {
    let mut cluster = Cluster::start().await;
    let leader = cluster.leader().await;

    // Proposals through a follower are forwarded to the leader.
    let follower = cluster.other(leader).clone();
    for i in 1..=10 {
        let response = follower
            .propose(format!("a{i}").into_bytes())
            .await
            .unwrap();
        assert_eq!(response, i.to_string().into_bytes());
    }
    assert_eq!(follower.read(Vec::new()).await.unwrap(), b"10,a10");

    // The leader goes away; the other two elect a new one and keep committing.
    cluster.stop(leader).await;
    let survivor = cluster.other(leader).clone();
    for i in 11..=30 {
        let response = survivor
            .propose(format!("b{i}").into_bytes())
            .await
            .unwrap();
        assert_eq!(response, i.to_string().into_bytes());
    }
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    let status = cluster.handles[&new_leader].status().await.unwrap();
    assert!(
        status.snapshot_index >= 25,
        "the log was compacted: {status:?}"
    );
    assert!(status.voters.iter().all(|v| v.matched.is_some()));

    // The old leader restarts from its directory, behind the compacted log: it must catch up
    // through a snapshot, then serve a linearizable read with everything.
    cluster.restart(leader).await;
    let restarted = cluster.handles[&leader].clone();
    let answer = wait_for("the restarted node to catch up", || async {
        let answer = restarted.read(Vec::new()).await.ok()?;
        (answer == b"30,b30").then_some(answer)
    })
    .await;
    assert_eq!(answer, b"30,b30");
    let status = restarted.status().await.unwrap();
    assert!(
        status.snapshot_index >= 25,
        "caught up from a snapshot: {status:?}"
    );
    assert_eq!(status.leader, Some(new_leader));

    // The leader reports every voter caught up and recently heard from.
    let status = wait_for("the leader to see all voters caught up", || async {
        let status = cluster.handles[&new_leader].status().await.unwrap();
        let caught_up = status
            .voters
            .iter()
            .all(|v| v.matched >= Some(status.commit));
        caught_up.then_some(status)
    })
    .await;
    assert!(
        status.voters.iter().all(|v| v.last_contact.is_some()),
        "{status:?}"
    );

    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_down_refuses_instead_of_hanging() {
    let mut cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"first".to_vec())
        .await
        .unwrap();

    // Keep one follower; stop the other two (the leader among them).
    let keep = cluster.other(leader).id();
    let stop: Vec<RaftId> = [1, 2, 3].into_iter().filter(|id| *id != keep).collect();
    for id in stop {
        cluster.stop(id).await;
    }
    let lonely = cluster.handles[&keep].clone();
    // Once the follower has noticed that its leader is gone (its election timeout passed), a
    // proposal is refused as certainly not applied. Before that, a forward may die on the old
    // leader's closing connection, whose outcome is honestly unknown (Indeterminate).
    wait_for("the follower to notice its leader is gone", || async {
        let status = lonely.status().await.unwrap();
        (status.leader != Some(leader)).then_some(())
    })
    .await;

    let started = Instant::now();
    let err = lonely.propose(b"lost".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(_)),
        "expected Unavailable, got {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout bounds the wait"
    );

    let err = lonely.read(Vec::new()).await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(_)),
        "expected Unavailable, got {err}"
    );
    assert_ne!(lonely.status().await.unwrap().role, Role::Leader);

    lonely.shutdown().await;
    assert!(matches!(
        lonely.propose(b"x".to_vec()).await,
        Err(Error::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_restarts_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let options = Options {
        id: 1,
        peers: BTreeMap::from([(1, address.to_string())]),
        tick_interval: Duration::from_millis(10),
        snapshot_entries: 4,
        ..Default::default()
    };
    let handle = Quorum::start(options.clone(), Journal::default(), dir.path(), listener).await;
    let handle = handle.unwrap();
    for i in 1..=10 {
        let response = handle.propose(format!("c{i}").into_bytes()).await.unwrap();
        assert_eq!(response, i.to_string().into_bytes());
    }
    assert!(matches!(
        handle.propose(Vec::new()).await,
        Err(Error::InvalidInput(_))
    ));
    handle.shutdown().await;

    // Restart: the snapshot restores most of the state, the log replays the rest.
    let listener = TcpListener::bind(address).await.unwrap();
    let handle = Quorum::start(options, Journal::default(), dir.path(), listener)
        .await
        .unwrap();
    assert_eq!(handle.read(Vec::new()).await.unwrap(), b"10,c10");
    assert_eq!(handle.propose(b"c11".to_vec()).await.unwrap(), b"11");
    let status = handle.status().await.unwrap();
    assert!(
        status.snapshot_index >= 8 && status.applied >= 11,
        "{status:?}"
    );
    handle.shutdown().await;
}

/// A raw client of a voter's `Raft` service, as an attacker on the network would use.
async fn raw_client(address: SocketAddr) -> RaftClient<tonic::transport::Channel> {
    RaftClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// A heartbeat forged as coming from voter `from`, with a huge term and a commit index far
/// past any log.
fn forged_heartbeat(from: RaftId, to: RaftId, term: u64) -> Vec<u8> {
    let mut msg = Message {
        from,
        to,
        term,
        commit: 1 << 40,
        ..Default::default()
    };
    msg.set_msg_type(MessageType::MsgHeartbeat);
    transport::encode_message(&msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeats_past_the_log_stop_no_voter() {
    let mut cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"before".to_vec())
        .await
        .unwrap();

    // Every voter gets heartbeats "from" each other voter, in a term far ahead and with a
    // commit index past its log (raft-rs's commit_to panics on those), and one at u64::MAX.
    for (&to, &address) in &cluster.addresses {
        let mut client = raw_client(address).await;
        for from in (1..=3).filter(|from| *from != to) {
            let messages = vec![
                forged_heartbeat(from, to, 1 << 40),
                forged_heartbeat(from, to, u64::MAX),
            ];
            // Accepted for the queue (the transport only checks the form); the node drops them.
            client.send(pb::SendRequest { messages }).await.unwrap();
        }
    }

    // Every voter still answers, none took the forged term, and a proposal commits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for handle in cluster.handles.values() {
        let status = handle.status().await.unwrap();
        assert!(status.term < 1 << 40, "{status:?}");
        assert!(status.commit < 1 << 40, "{status:?}");
    }
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"after".to_vec())
        .await
        .unwrap();
    for handle in cluster.handles.values() {
        assert_eq!(handle.read(Vec::new()).await.unwrap(), b"2,after");
    }

    // And each restarts from its directory.
    for id in [1, 2, 3] {
        cluster.stop(id).await;
        cluster.restart(id).await;
    }
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"restarted".to_vec())
        .await
        .unwrap();
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_proposal_the_state_machine_refuses_never_enters_the_log() {
    let mut cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.handles[&leader]
        .propose(b"first".to_vec())
        .await
        .unwrap();
    let before = cluster.handles[&leader].status().await.unwrap();

    // Not UTF-8: the journal's validate refuses it, on the leader and on a follower.
    for address in cluster.addresses.values() {
        let mut client = raw_client(*address).await;
        let request = pb::ProposeRequest {
            command: vec![0xff, 0xfe, 0xfd],
            timeout_ms: 1000,
        };
        let response = client.propose(request).await.unwrap().into_inner();
        let Some(pb::propose_response::Outcome::Error(error)) = response.outcome else {
            panic!("accepted: {response:?}");
        };
        assert_eq!(error.kind, Kind::InvalidInput as i32, "{error:?}");
    }
    let after = cluster.handles[&leader].status().await.unwrap();
    assert_eq!(
        after.last_index, before.last_index,
        "nothing entered the log"
    );
    for handle in cluster.handles.values() {
        assert_eq!(handle.read(Vec::new()).await.unwrap(), b"1,first");
    }
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_from_a_snapshot_larger_than_one_message() {
    // Messages of at most 64 KiB; snapshots cut in chunks of 8 KiB.
    let mut cluster = Cluster::start_with(|options| {
        options.message_bytes_max = 64 * 1024;
        options.max_size_per_msg = 16 * 1024;
        options.snapshot_chunk_bytes = 8 * 1024;
    })
    .await;
    let leader = cluster.leader().await;
    let lagging = cluster.other(leader).id();
    cluster.stop(lagging).await;

    // 300 commands of 1 KiB: the state (and so each snapshot) is about 300 KiB.
    let handle = cluster.handles[&leader].clone();
    let filler = "x".repeat(1024);
    for i in 1..=300 {
        handle
            .propose(format!("{i}-{filler}").into_bytes())
            .await
            .unwrap();
    }
    let status = handle.status().await.unwrap();
    assert!(status.snapshot_index >= 290, "compacted: {status:?}");

    cluster.restart(lagging).await;
    let restarted = cluster.handles[&lagging].clone();
    let want = format!("300,300-{filler}").into_bytes();
    wait_for("the lagging follower to catch up", || async {
        let answer = restarted.read(Vec::new()).await.ok()?;
        (answer == want).then_some(())
    })
    .await;
    let status = restarted.status().await.unwrap();
    assert!(status.snapshot_index >= 290, "from a snapshot: {status:?}");
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_streams_past_the_limits_are_refused_before_allocating() {
    let mut cluster = Cluster::start_with(|options| {
        options.snapshot_chunk_bytes = 1024;
        options.snapshot_bytes_max = 64 * 1024;
    })
    .await;
    let leader = cluster.leader().await;
    let to = cluster.other(leader).id();
    let mut msg = Message {
        from: leader,
        to,
        term: 1,
        ..Default::default()
    };
    msg.set_msg_type(MessageType::MsgSnapshot);
    let header = transport::encode_message(&msg);
    let chunk = |data_bytes: u64, data: usize, first: bool| pb::SnapshotChunk {
        message: if first { header.clone() } else { Vec::new() },
        data_bytes,
        data: vec![7; data],
    };
    let cases = [
        (
            "a total over snapshot_bytes_max",
            vec![chunk(1 << 62, 0, true)],
        ),
        (
            "a chunk over snapshot_chunk_bytes",
            vec![chunk(4096, 4096, true)],
        ),
        (
            "data past the announced total",
            vec![chunk(1000, 1000, true), chunk(0, 1, false)],
        ),
        (
            "data short of the announced total",
            vec![chunk(2000, 1000, true)],
        ),
        ("no message in the first chunk", vec![chunk(10, 10, false)]),
    ];
    let address = cluster.addresses[&to];
    let mut client = RaftSnapshotClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    for (what, chunks) in cases {
        let status = client
            .send(futures::stream::iter(chunks))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status}"
        );
    }
    // The voter is untouched and the quorum commits.
    let status = cluster.handles[&to].status().await.unwrap();
    assert_eq!(status.snapshot_index, 0, "{status:?}");
    cluster.handles[&leader]
        .propose(b"still here".to_vec())
        .await
        .unwrap();
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
}

/// The metrics the node task publishes follow a failover: the new leader reports a later term
/// and the leader role, every survivor has seen one more leader, and commits keep counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_failover() {
    let mut cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    for i in 1..=5 {
        cluster.handles[&leader]
            .propose(format!("a{i}").into_bytes())
            .await
            .unwrap();
    }
    let before = cluster.handles[&leader].metrics().clone();
    assert_eq!(before.role(), Role::Leader);
    assert_eq!(before.leader(), Some(leader));
    let term = before.term();
    let commit = before.commit();
    assert!(commit >= 5, "{before:?}");
    let mut registry = ferry_telemetry::metrics::registry();
    before.register(registry.sub_registry_with_prefix("t_raft"), |id| id as i64);
    let text = ferry_telemetry::metrics::encode(&registry);
    assert!(text.contains("ferry_t_raft_proposals_total 5\n"), "{text}");
    assert!(
        text.contains("ferry_t_raft_commit_duration_seconds_count 5\n"),
        "{text}"
    );

    cluster.stop(leader).await;
    let survivor = cluster.other(leader).clone();
    let seen_before = survivor.metrics().leader_changes();
    survivor.propose(b"b".to_vec()).await.unwrap();
    let new_leader = cluster.leader().await;
    let metrics = cluster.handles[&new_leader].metrics().clone();
    let metrics =
        wait_for("the new leader's metrics", || {
            let metrics = metrics.clone();
            async move {
                (metrics.role() == Role::Leader && metrics.commit() > commit).then_some(metrics)
            }
        })
        .await;
    assert!(metrics.term() > term, "{metrics:?}");
    assert_eq!(metrics.leader(), Some(new_leader));
    assert!(survivor.metrics().leader_changes() > seen_before);
    for handle in cluster.handles.values() {
        let m = handle.metrics();
        if handle.id() != new_leader {
            wait_for("the follower to follow", || async {
                (m.role() == Role::Follower && m.leader() == Some(new_leader)).then_some(())
            })
            .await;
        }
    }
    for id in [1, 2, 3] {
        if cluster.handles.contains_key(&id) {
            cluster.stop(id).await;
        }
    }
}
