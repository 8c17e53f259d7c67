//! End-to-end: partition replication between real `ferry node` processes, checked with a real
//! Kafka client (librdkafka) in the manner of Jepsen's queue workload.
//!
//! Each test starts 3 controllers and 3 brokers on loopback, injects faults with signals
//! (kill -9, SIGSTOP/SIGCONT), and then reads everything back. What is asserted is a safety
//! property, never a duration: waits are bounded loops whose bounds only turn a hang into a
//! failure. Every process is killed when the test's `Cluster` drops, also on panic.
//!
//! - [`acknowledged_writes_survive_repeated_leader_kills`]: a producer (acks=all,
//!   idempotence off) streams numbered messages while partition leaders are killed with
//!   kill -9 and restarted; every acknowledged message is read back at the offset it was
//!   acknowledged at. The report counts acknowledged, lost, moved, duplicated and reordered.
//! - [`a_paused_follower_leaves_the_isr_and_rejoins_and_two_missing_replicas_refuse_acks_all`]:
//!   SIGSTOP takes a follower out of the ISR (AlterPartition after replica.lag.time.max.ms)
//!   and SIGCONT brings it back; with two of three replicas paused, acks=all fails with
//!   NOT_ENOUGH_REPLICAS while committed data stays readable.
//! - [`a_former_leader_truncates_its_unreplicated_tail_when_it_rejoins`]: acks=1 writes that
//!   only the leader holds vanish when it dies; once back, it truncates them (DivergingEpoch)
//!   and serves the new leader's data at those offsets.

use crate::cluster;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster::{
    Admin, Cluster, ClusterSpec, MetadataReader, POLL, partition_offsets, read_back,
    wait_for_full_isr, wait_for_partitions, wait_for_partitions_via,
};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Bound for a controller election and for brokers to register.
const STARTUP: Duration = Duration::from_secs(30);

/// Above the broker's 30 s controller-call timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(40);

/// Bound for a failover, a restart and catching up: generous, only to turn a hang into a
/// failure.
const CONVERGE: Duration = Duration::from_secs(60);

/// Starts 3 controllers and 3 brokers (racks a, b, c) with `sets`, and waits until they serve.
async fn three_brokers(name: &str, sets: &[&str]) -> Cluster {
    let cluster = Cluster::start(ClusterSpec {
        name,
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets,
    });
    cluster.wait_for_leader(STARTUP).await;
    let brokers = cluster.broker_ids();
    cluster
        .wait_for_brokers(&cluster.bootstrap(), &brokers, STARTUP)
        .await;
    cluster
}

/// A producer that waits for every in-sync replica and never deduplicates: what Jepsen's
/// Kafka tests use to see lost and duplicated writes.
fn acks_all_producer(bootstrap: &str, retries: bool) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "2")
        .set("request.timeout.ms", "10000")
        .set("message.timeout.ms", "120000")
        .set("retry.backoff.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "1000");
    if !retries {
        config.set("retries", "0");
    }
    config.create().expect("producer")
}

/// The offsets each partition must reach to hold every acknowledged write.
fn ends(acks: &[Ack]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for ack in acks {
        let end = ends.entry(ack.partition).or_insert(0);
        *end = (*end).max(ack.offset + 1);
    }
    ends
}

/// One acknowledged write: message `n` at `offset` of `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ack {
    n: u64,
    partition: i32,
    offset: i64,
}

/// What the checker found, after Jepsen's queue checker.
#[derive(Debug, Default)]
struct Report {
    /// Sends the producer reported as acknowledged.
    acknowledged: usize,
    /// Sends that failed (not acknowledged: allowed to be lost).
    failed: usize,
    /// Acknowledged messages not read back at all.
    lost: Vec<Ack>,
    /// Acknowledged messages read back, but not at the offset they were acknowledged at.
    moved: Vec<Ack>,
    /// Messages read back more than once (retries without idempotence may do this).
    duplicated: usize,
    /// Pairs of consecutive messages of one partition read back in the opposite order of
    /// their numbers (retries with several requests in flight may do this).
    reordered: usize,
}

/// Compares acknowledged writes with what was read back.
fn check(acks: &[Ack], failed: usize, read: &BTreeMap<(i32, i64), String>) -> Report {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for payload in read.values() {
        if let Some(n) = payload.strip_prefix("m-").and_then(|n| n.parse().ok()) {
            *seen.entry(n).or_default() += 1;
        }
    }
    let mut report = Report {
        acknowledged: acks.len(),
        failed,
        duplicated: seen.values().filter(|c| **c > 1).count(),
        ..Report::default()
    };
    for ack in acks {
        let expected = format!("m-{}", ack.n);
        if read.get(&(ack.partition, ack.offset)) == Some(&expected) {
            continue;
        }
        if seen.contains_key(&ack.n) {
            report.moved.push(*ack);
        } else {
            report.lost.push(*ack);
        }
    }
    let mut previous: BTreeMap<i32, u64> = BTreeMap::new();
    for ((partition, _), payload) in read {
        let Some(n) = payload
            .strip_prefix("m-")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if let Some(before) = previous.insert(*partition, n)
            && n < before
        {
            report.reordered += 1;
        }
    }
    report
}

/// Most sends of [`spawn_numbered_producer`] awaiting their acknowledgement at once.
const IN_FLIGHT_MAX: usize = 500;

/// A client task sending messages `m-0`, `m-1`, … round-robin to `partitions` partitions of
/// `topic` (acks=all, idempotence off, paced every 2 ms, at most [`IN_FLIGHT_MAX`]
/// outstanding) until `stop` is set and every send has an answer. Returns the acknowledged
/// sends, the number that failed, and the number sent.
fn spawn_numbered_producer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Vec<Ack>, usize, u64)> {
    let producer = acks_all_producer(bootstrap, true);
    let topic = topic.to_string();
    tokio::spawn(async move {
        let mut acks = Vec::new();
        let mut failed = 0usize;
        // Each send's (number, (partition, offset) if acknowledged).
        let mut in_flight: tokio::task::JoinSet<(u64, Option<(i32, i64)>)> =
            tokio::task::JoinSet::new();
        let mut n = 0u64;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if stopping && in_flight.is_empty() {
                break;
            }
            let room = !stopping && in_flight.len() < IN_FLIGHT_MAX;
            tokio::select! {
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    match joined.expect("delivery task") {
                        (n, Some((partition, offset))) => acks.push(Ack { n, partition, offset }),
                        (_, None) => failed += 1,
                    }
                }
                // Paced, so faults see writes before, during and after them.
                _ = tokio::time::sleep(Duration::from_millis(2)), if room => {
                    let payload = format!("m-{n}");
                    let partition = (n % partitions as u64) as i32;
                    let record = FutureRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&payload);
                    if let Ok(delivery) = producer.send_result(record) {
                        in_flight.spawn(async move {
                            let acked = match delivery.await {
                                Ok(Ok(d)) => Some((d.partition, d.offset)),
                                _ => None,
                            };
                            (n, acked)
                        });
                        n += 1;
                    }
                }
                else => {}
            }
        }
        (acks, failed, n)
    })
}

/// Kafka's guarantee under test: with acks=all and min.insync.replicas=2 on 3 replicas, an
/// acknowledged message survives the crash of any one replica, leader included, and stays
/// at the offset it was acknowledged at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_repeated_leader_kills() {
    const PARTITIONS: i32 = 3;
    const ROUNDS: usize = 4;
    let started = Instant::now();
    let mut cluster = three_brokers(
        "leader-kills",
        &[
            "min.insync.replicas=2",
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
            "replica.lag.time.max.ms=5000",
        ],
    )
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("jepsen", PARTITIONS, 3).await, Ok(()));
    wait_for_full_isr(&cluster, "jepsen").await;

    // The client: numbered messages, round-robin over the partitions.
    let stop = Arc::new(AtomicBool::new(false));
    let client = spawn_numbered_producer(&cluster.bootstrap(), "jepsen", PARTITIONS, stop.clone());

    for round in 0..ROUNDS {
        let views = wait_for_full_isr(&cluster, "jepsen").await;
        let victim_partition = (round % PARTITIONS as usize) as i32;
        let leader = views[victim_partition as usize].leader;
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!("round {round}: kill -9 broker {leader}, leader of jepsen-{victim_partition}");
        cluster.kill9(leader);
        wait_for_partitions(&cluster, "jepsen", CONVERGE, "a new leader", |views| {
            let p = &views[victim_partition as usize];
            (p.leader >= 0 && p.leader != leader).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.restart(leader);
    }
    wait_for_full_isr(&cluster, "jepsen").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut acks, failed, sent) = client.await.expect("client finished");
    acks.sort();

    let read = read_back(&cluster.bootstrap(), "jepsen", PARTITIONS, &ends(&acks));
    let report = check(&acks, failed, &read);
    eprintln!(
        "{ROUNDS} leader kills in {:?}: sent {sent}, acknowledged {}, failed {}, read back {}, \
         lost {}, moved {}, duplicated {}, reordered {}",
        started.elapsed(),
        report.acknowledged,
        report.failed,
        read.len(),
        report.lost.len(),
        report.moved.len(),
        report.duplicated,
        report.reordered
    );
    assert!(report.acknowledged > 0, "the client got acknowledgements");
    assert_eq!(report.lost, vec![], "no acknowledged message is lost");
    assert_eq!(
        report.moved,
        vec![],
        "every acknowledged message is read back at the offset it was acknowledged at"
    );
}

/// A follower that stops fetching leaves the ISR through the leader's AlterPartition (before
/// its session would expire) and rejoins once it has caught up; with two of three replicas
/// gone, acks=all writes are refused before anything is appended, while committed data stays
/// readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_follower_leaves_the_isr_and_rejoins_and_two_missing_replicas_refuse_acks_all() {
    let mut cluster = three_brokers(
        "paused-follower",
        &[
            "min.insync.replicas=2",
            "replica.lag.time.max.ms=2000",
            // Longer than the pauses below: the ISR shrinks by AlterPartition, not fencing.
            "broker.session.timeout.ms=30000",
        ],
    )
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("paused", 1, 3).await, Ok(()));
    let view = wait_for_full_isr(&cluster, "paused").await.remove(0);
    let leader = view.leader;
    let followers: Vec<i32> = view
        .replicas
        .iter()
        .copied()
        .filter(|r| *r != leader)
        .collect();
    let producer = acks_all_producer(&cluster.bootstrap_of(leader), false);
    let send = |n: u64| {
        let payload = format!("m-{n}");
        let producer = &producer;
        async move {
            let record = FutureRecord::<(), _>::to("paused")
                .partition(0)
                .payload(&payload);
            producer
                .send(record, Duration::from_secs(5))
                .await
                .map(|d| Ack {
                    n,
                    partition: d.partition,
                    offset: d.offset,
                })
                .map_err(|(e, _)| e)
        }
    };
    let mut acks = Vec::new();
    for n in 0..50 {
        acks.push(send(n).await.expect("acks=all with every replica up"));
    }

    // One follower paused: it leaves the ISR while still registered, and acks=all goes on
    // with the two that remain (min.insync.replicas=2).
    let paused = followers[0];
    cluster.pause(paused);
    wait_for_partitions(
        &cluster,
        "paused",
        CONVERGE,
        "the paused follower out of the ISR",
        |v| (!v[0].isr.contains(&paused)).then_some(()),
    )
    .await;
    let metadata = MetadataReader::new(&cluster.bootstrap_of(leader))
        .fetch()
        .await
        .expect("metadata");
    assert!(
        cluster::broker_ids(&metadata).contains(&paused),
        "the follower left the ISR by AlterPartition, not by being fenced"
    );
    for n in 50..100 {
        acks.push(send(n).await.expect("acks=all with 2 of 3 in the ISR"));
    }
    cluster.resume(paused);
    wait_for_full_isr(&cluster, "paused").await;

    // Two followers paused: the ISR shrinks to the leader alone and acks=all is refused.
    cluster.pause(followers[0]);
    cluster.pause(followers[1]);
    // Asked of the leader itself: another broker can learn of the shrunk ISR before the leader
    // has applied it, and a produce the leader takes in between is appended first.
    wait_for_partitions_via(
        &cluster,
        &cluster.bootstrap_of(leader),
        "paused",
        CONVERGE,
        "an ISR of the leader alone",
        |v| (v[0].isr == [leader]).then_some(()),
    )
    .await;
    let refused = send(100)
        .await
        .expect_err("acks=all with 1 of 3 in the ISR");
    assert_eq!(
        refused,
        KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas),
        "refused before appending"
    );
    let read = read_back(&cluster.bootstrap_of(leader), "paused", 1, &ends(&acks));
    let report = check(&acks, 0, &read);
    assert_eq!(
        (report.lost.len(), report.moved.len(), read.len()),
        (0, 0, 100),
        "committed data stays readable: {report:?}"
    );

    cluster.resume(followers[0]);
    cluster.resume(followers[1]);
    wait_for_full_isr(&cluster, "paused").await;
    acks.push(
        send(101)
            .await
            .expect("acks=all once the replicas are back"),
    );
    let read = read_back(&cluster.bootstrap(), "paused", 1, &ends(&acks));
    let report = check(&acks, 0, &read);
    assert_eq!(
        (report.lost.len(), report.moved.len()),
        (0, 0),
        "{report:?}"
    );
}

/// acks=1 writes held only by the leader are not committed: when that leader dies they are
/// gone, and when it comes back it truncates them and copies the new leader's log instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_leader_truncates_its_unreplicated_tail_when_it_rejoins() {
    const COMMITTED: u64 = 100;
    const TAIL: u64 = 20;
    const AFTER: u64 = 30;
    let mut cluster = three_brokers(
        "truncation",
        &[
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
        ],
    )
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("tail", 1, 3).await, Ok(()));
    let view = wait_for_full_isr(&cluster, "tail").await.remove(0);
    let old_leader = view.leader;
    assert_eq!(
        old_leader, view.replicas[0],
        "a new partition is led by its preferred replica"
    );
    let followers: Vec<i32> = view.replicas[1..].to_vec();

    let producer = acks_all_producer(&cluster.bootstrap(), true);
    let mut acks = Vec::new();
    for n in 0..COMMITTED {
        let payload = format!("m-{n}");
        let record = FutureRecord::<(), _>::to("tail")
            .partition(0)
            .payload(&payload);
        let d = producer
            .send(record, Duration::from_secs(5))
            .await
            .expect("acks=all");
        acks.push(Ack {
            n,
            partition: d.partition,
            offset: d.offset,
        });
    }
    drop(producer);

    // The followers pause; the leader takes acks=1 writes it alone holds, then dies. (A
    // follower's fetch already parked at the leader is answered, empty, within the 500 ms
    // replica.fetch.wait.max.ms, so the tail does not reach it in a response it reads later.)
    for f in &followers {
        cluster.pause(*f);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader_only: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_of(old_leader))
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for i in 0..TAIL {
        let payload = format!("tail-{i}");
        let record = FutureRecord::<(), _>::to("tail")
            .partition(0)
            .payload(&payload);
        leader_only
            .send(record, Duration::from_secs(5))
            .await
            .expect("acks=1 on the leader alone");
    }
    drop(leader_only);
    let admin_addr = cluster
        .node(old_leader)
        .admin
        .clone()
        .expect("admin address");
    let (end, high_watermark) =
        partition_offsets(&admin_addr, "tail", 0).expect("the leader reports the partition");
    assert_eq!(
        (end, high_watermark),
        (COMMITTED as i64 + TAIL as i64, COMMITTED as i64),
        "the tail is on the leader only, above the high watermark"
    );
    cluster.kill9(old_leader);
    for f in &followers {
        cluster.resume(*f);
    }
    wait_for_partitions(&cluster, "tail", CONVERGE, "a follower leading", |v| {
        followers.contains(&v[0].leader).then_some(())
    })
    .await;

    // The new leader takes writes at the offsets the lost tail had.
    let producer = acks_all_producer(&cluster.bootstrap(), true);
    for n in COMMITTED..COMMITTED + AFTER {
        let payload = format!("m-{n}");
        let record = FutureRecord::<(), _>::to("tail")
            .partition(0)
            .payload(&payload);
        let d = producer
            .send(record, Duration::from_secs(5))
            .await
            .expect("acks=all");
        acks.push(Ack {
            n,
            partition: d.partition,
            offset: d.offset,
        });
    }
    let new_start = acks[COMMITTED as usize].offset;
    assert_eq!(
        new_start, COMMITTED as i64,
        "the new leader did not have the tail"
    );

    // The old leader returns: it truncates its tail, catches up, rejoins the ISR and, as the
    // preferred replica, leads again.
    cluster.restart(old_leader);
    wait_for_partitions_via(
        &cluster,
        &cluster.bootstrap_of(followers[0]),
        "tail",
        CONVERGE,
        "the old leader leading again",
        |v| (v[0].leader == old_leader && v[0].isr.len() == 3).then_some(()),
    )
    .await;
    let admin_addr = cluster
        .node(old_leader)
        .admin
        .clone()
        .expect("admin address");
    let end = (COMMITTED + AFTER) as i64;
    let deadline = Instant::now() + CONVERGE;
    while partition_offsets(&admin_addr, "tail", 0) != Some((end, end)) {
        assert!(
            Instant::now() < deadline,
            "the old leader at {end} within {CONVERGE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(
        cluster
            .node(old_leader)
            .log_contains("truncating a divergent tail"),
        "the old leader truncated through DivergingEpoch"
    );
    let read = read_back(&cluster.bootstrap_of(old_leader), "tail", 1, &ends(&acks));
    let report = check(&acks, 0, &read);
    assert_eq!(
        (report.lost.len(), report.moved.len()),
        (0, 0),
        "{report:?}"
    );
    assert!(
        read.values().all(|payload| !payload.starts_with("tail-")),
        "no unreplicated write survives: {read:?}"
    );
    assert_eq!(read.len() as u64, COMMITTED + AFTER);
}

/// (log end offset, high watermark, bytes on disk) of one partition as `ferry node status`
/// reports it.
fn partition_log(admin: &str, topic: &str, partition: i32) -> Option<(i64, i64, u64)> {
    cluster::partition_status(admin, topic, partition).map(|p| {
        (
            p["log_end_offset"].as_i64().unwrap_or(-1),
            p["high_watermark"].as_i64().unwrap_or(-1),
            p["size_bytes"].as_u64().unwrap_or(0),
        )
    })
}

/// A bridge and one network namespace per host, joined by veth pairs: the multi-host tier of
/// the test plan on one machine. Everything is removed on drop (also on panic).
struct Network {
    /// The bridge in the root namespace (its address is the test client's).
    bridge: String,
    /// Namespaces created, by name.
    namespaces: Vec<String>,
    /// The first three octets of the subnet, e.g. `10.201.7`.
    subnet: String,
}

impl Network {
    /// Whether this process may create namespaces (root with `ip` and `iptables`).
    fn available() -> bool {
        let ok = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        ok("ip", &["netns", "list"]) && ok("iptables", &["-V"]) && ok("id", &["-u"]) && {
            let out = std::process::Command::new("id").arg("-u").output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "0"
        }
    }

    /// A bridge with address `<subnet>.1/24`; names carry the process id so that concurrent
    /// runs do not collide.
    fn new() -> Network {
        let tag = std::process::id() % 10_000;
        let network = Network {
            bridge: format!("fbr{tag}"),
            namespaces: Vec::new(),
            subnet: format!("10.201.{}", tag % 250),
        };
        run("ip", &["link", "add", &network.bridge, "type", "bridge"]);
        let address = format!("{}.1/24", network.subnet);
        run("ip", &["addr", "add", &address, "dev", &network.bridge]);
        run("ip", &["link", "set", &network.bridge, "up"]);
        network
    }

    /// A namespace `name` with address `<subnet>.<host>` on the bridge; returns the address.
    fn host(&mut self, name: &str, host: u8) -> String {
        let tag = std::process::id() % 10_000;
        let netns = format!("{name}-{tag}");
        run("ip", &["netns", "add", &netns]);
        self.namespaces.push(netns.clone());
        let veth = format!("fv{host}-{tag}");
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        );
        run("ip", &["link", "set", &veth, "master", &self.bridge]);
        run("ip", &["link", "set", &veth, "up"]);
        let address = format!("{}.{host}", self.subnet);
        let cidr = format!("{address}/24");
        run_in(&netns, "ip", &["addr", "add", &cidr, "dev", "eth0"]);
        run_in(&netns, "ip", &["link", "set", "eth0", "up"]);
        run_in(&netns, "ip", &["link", "set", "lo", "up"]);
        address
    }

    /// The namespace called `name` (as passed to [`Network::host`]).
    fn netns(&self, name: &str) -> String {
        format!("{name}-{}", std::process::id() % 10_000)
    }

    /// Drops every packet between namespace `netns` and `peers` (both directions), with
    /// iptables inside that namespace.
    fn cut(&self, netns: &str, peers: &[String]) {
        for peer in peers {
            run_in(
                netns,
                "iptables",
                &["-A", "INPUT", "-s", peer, "-j", "DROP"],
            );
            run_in(
                netns,
                "iptables",
                &["-A", "OUTPUT", "-d", peer, "-j", "DROP"],
            );
        }
    }

    /// Removes every cut made in `netns`.
    fn heal(&self, netns: &str) {
        run_in(netns, "iptables", &["-F"]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for netns in &self.namespaces {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", netns])
                .status();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// Runs a command that must succeed.
fn run(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a command inside network namespace `netns`.
fn run_in(netns: &str, program: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", netns, program];
    all.extend_from_slice(args);
    run("ip", &all);
}

/// Jepsen's partition nemesis: the leader of a partition is cut off from the controllers and
/// the other brokers (iptables in its network namespace) while clients still reach it. It
/// must stop acknowledging acks=all writes (its followers are gone), the rest of the cluster
/// elects a new leader from the ISR, and after healing no acknowledged write is lost: the old
/// leader truncates what only it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_stops_acknowledging_and_no_acknowledged_write_is_lost() {
    assert!(
        Network::available(),
        "this test needs root, `ip netns` and iptables (bash scripts/test.sh installs iptables)"
    );
    let started = Instant::now();
    let mut network = Network::new();
    let controllers_ip = network.host("fctl", 2);
    let mut broker_ips = BTreeMap::new();
    for (i, id) in [101, 102, 103].into_iter().enumerate() {
        broker_ips.insert(id, network.host(&format!("fb{id}"), 11 + i as u8));
    }
    let placement = {
        let ctl = (network.netns("fctl"), controllers_ip.clone());
        let brokers: BTreeMap<i32, (String, String)> = broker_ips
            .iter()
            .map(|(id, ip)| (*id, (network.netns(&format!("fb{id}")), ip.clone())))
            .collect();
        move |id: i32| {
            if id < 100 {
                Some(ctl.clone())
            } else {
                brokers.get(&id).cloned()
            }
        }
    };
    let cluster = Cluster::start_placed(
        ClusterSpec {
            name: "partition",
            controllers: 3,
            broker_racks: &["a", "b", "c"],
            combined: false,
            sets: &[
                "min.insync.replicas=2",
                "broker.session.timeout.ms=3000",
                "broker.heartbeat.interval.ms=500",
                "replica.lag.time.max.ms=3000",
            ],
        },
        placement,
    );
    cluster.wait_for_leader(STARTUP).await;
    cluster
        .wait_for_brokers(&cluster.bootstrap(), &cluster.broker_ids(), STARTUP)
        .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("split", 1, 3).await, Ok(()));
    let view = wait_for_full_isr(&cluster, "split").await.remove(0);
    let leader = view.leader;

    let stop = Arc::new(AtomicBool::new(false));
    let client = spawn_numbered_producer(&cluster.bootstrap(), "split", 1, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cut the leader off from the controllers and the other brokers, not from clients.
    let netns = network.netns(&format!("fb{leader}"));
    let peers: Vec<String> = std::iter::once(controllers_ip.clone())
        .chain(
            broker_ips
                .iter()
                .filter(|(id, _)| **id != leader)
                .map(|(_, ip)| ip.clone()),
        )
        .collect();
    eprintln!("isolating broker {leader} from {peers:?}");
    network.cut(&netns, &peers);
    let others: String = cluster
        .broker_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .map(|id| cluster.bootstrap_of(id))
        .collect::<Vec<_>>()
        .join(",");
    wait_for_partitions_via(&cluster, &others, "split", CONVERGE, "a new leader", |v| {
        (v[0].leader >= 0 && v[0].leader != leader).then_some(())
    })
    .await;

    // A client that only knows the old leader still reaches it, and is not acknowledged. The
    // old leader appends the write but its followers never fetch it, so the high watermark
    // stays below it: after the request's 5 s timeout_ms the broker answers REQUEST_TIMED_OUT,
    // as Kafka's leader does. With no retries that answer is the delivery error; the client's
    // own give-up (a local MessageTimedOut at 20 s) cannot pass for it.
    let stale: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_of(leader))
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .set("request.timeout.ms", "5000")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let record = FutureRecord::<(), _>::to("split")
        .partition(0)
        .payload("stale");
    let answer = stale.send(record, Duration::from_secs(5)).await;
    assert!(
        matches!(
            answer,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::RequestTimedOut),
                _
            ))
        ),
        "the isolated old leader refuses the acks=all write with REQUEST_TIMED_OUT: {answer:?}"
    );
    drop(stale);
    // The write is in the old leader's log, above its high watermark, with what else it
    // appended and could not replicate.
    let old_admin = cluster.node(leader).admin.clone().expect("admin address");
    let (old_end, old_high_watermark) =
        partition_offsets(&old_admin, "split", 0).expect("the old leader reports the partition");
    assert!(
        old_end > old_high_watermark,
        "the old leader holds an unreplicated tail: end {old_end}, high watermark \
         {old_high_watermark}"
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("healing broker {leader}");
    network.heal(&netns);
    wait_for_partitions_via(&cluster, &others, "split", CONVERGE, "a full ISR", |v| {
        (v[0].isr.len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut acks, failed, sent) = client.await.expect("client finished");
    acks.sort();
    let read = read_back(&others, "split", 1, &ends(&acks));
    let report = check(&acks, failed, &read);
    eprintln!(
        "isolated leader {leader} in {:?}: sent {sent}, acknowledged {}, failed {}, read back \
         {}, lost {}, moved {}, duplicated {}, reordered {}",
        started.elapsed(),
        report.acknowledged,
        report.failed,
        read.len(),
        report.lost.len(),
        report.moved.len(),
        report.duplicated,
        report.reordered,
    );
    // The old leader dropped its unreplicated tail when a leader's answer to its fetch named
    // the divergence, and then holds the same log as the other replicas: the same offsets and,
    // as followers copy the leader's batches byte for byte, the same number of bytes (the
    // "stale" batch and the other writes only the old leader took differ in size from what
    // the new leader wrote at their offsets).
    assert!(
        cluster
            .node(leader)
            .log_contains("truncating a divergent tail"),
        "the old leader truncated its tail through DivergingEpoch"
    );
    let admins: Vec<String> = cluster
        .broker_ids()
        .into_iter()
        .map(|id| cluster.node(id).admin.clone().expect("admin address"))
        .collect();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let offsets: Vec<Option<(i64, i64, u64)>> = admins
            .iter()
            .map(|admin| partition_log(admin, "split", 0))
            .collect();
        if offsets
            .iter()
            .all(|o| matches!(o, Some((end, hw, _)) if end == hw))
            && offsets.windows(2).all(|w| w[0] == w[1])
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every replica with one log (end, high watermark, bytes) within {CONVERGE:?}: \
             {offsets:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(
        read.values().all(|p| p != "stale"),
        "the stale write is not committed"
    );
    assert_eq!(report.lost, vec![], "no acknowledged message is lost");
    assert_eq!(
        report.moved,
        vec![],
        "acknowledged messages stay at their offsets"
    );
    drop(cluster);
    drop(network);
}
