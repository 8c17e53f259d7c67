//! End-to-end: the idempotent producer across leader failovers, with real `ferry node`
//! processes and a real client (librdkafka, `enable.idempotence=true`).
//!
//! Three controllers and three brokers run on loopback; a producer streams numbered messages
//! to an RF3 topic while the leader of one partition after another is killed with kill -9 and
//! restarted. Before each kill one in-sync follower is stopped (SIGSTOP) for a second, which
//! holds the high watermark back: the leader and the other follower then hold batches that
//! were never acknowledged, and the other follower becomes the new leader. librdkafka retries
//! every unacknowledged batch with the same producer id and sequence, so only a new leader that
//! built the producer state from the replicated batches answers those retries as duplicates
//! instead of writing them twice. That this happens is checked, not assumed: in each round the
//! new leader must report a batch it answered as a duplicate (`duplicate_batches` in `ferry
//! node status`) before the old leader returns. The check, after Jepsen's queue checker:
//! every acknowledged message is read back at its acknowledged offset, no message appears
//! twice, and each partition holds its messages in the order they were sent.
//!
//! Waits are bounded loops whose bounds only turn a hang into a failure; nothing asserts a
//! duration. Every process is killed when the `Cluster` drops, also on panic.

use crate::cluster;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster::{
    Admin, Cluster, ClusterSpec, POLL, read_back, wait_for_full_isr, wait_for_partitions,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// Bound for a controller election and for brokers to register.
const STARTUP: Duration = Duration::from_secs(30);

/// Above the broker's 30 s controller-call timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(40);

/// Bound for a failover, a restart and catching up.
const CONVERGE: Duration = Duration::from_secs(60);

/// Most sends awaiting their acknowledgement at once.
const IN_FLIGHT_MAX: usize = 500;

/// One acknowledged write: message `n` at `offset` of `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ack {
    n: u64,
    partition: i32,
    offset: i64,
}

/// What the producer task saw.
struct Sent {
    acks: Vec<Ack>,
    /// Sends that failed, with librdkafka's error.
    failures: Vec<String>,
    /// Messages handed to the producer.
    sent: u64,
}

/// A send's outcome: its (partition, offset), or librdkafka's error.
type Delivery = Result<(i32, i64), String>;

/// Batches the node at `admin` answered as duplicates on `topic`-`partition` since it
/// started, as `ferry node status` reports it.
fn duplicate_batches(admin: &str, topic: &str, partition: i32) -> u64 {
    cluster::partition_status(admin, topic, partition)
        .and_then(|p| p["duplicate_batches"].as_u64())
        .unwrap_or_else(|| {
            panic!(
                "{admin} reports no duplicate_batches for {topic}-{partition}: {}",
                cluster::node_status(admin)
            )
        })
}

/// Sends `m-0`, `m-1`, … round-robin to `partitions` partitions with an idempotent producer,
/// paced every 2 ms, until `stop` is set and every send has an answer.
fn spawn_idempotent_producer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Sent> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("request.timeout.ms", "10000")
        .set("message.timeout.ms", "180000")
        .set("retry.backoff.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("producer");
    let topic = topic.to_string();
    tokio::spawn(async move {
        let mut sent = Sent {
            acks: Vec::new(),
            failures: Vec::new(),
            sent: 0,
        };
        let mut in_flight: tokio::task::JoinSet<(u64, Delivery)> = tokio::task::JoinSet::new();
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if stopping && in_flight.is_empty() {
                break;
            }
            let room = !stopping && in_flight.len() < IN_FLIGHT_MAX;
            tokio::select! {
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    match joined.expect("delivery task") {
                        (n, Ok((partition, offset))) => sent.acks.push(Ack { n, partition, offset }),
                        (n, Err(e)) => sent.failures.push(format!("m-{n}: {e}")),
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(2)), if room => {
                    let n = sent.sent;
                    let payload = format!("m-{n}");
                    let partition = (n % partitions as u64) as i32;
                    let record = FutureRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&payload);
                    if let Ok(delivery) = producer.send_result(record) {
                        in_flight.spawn(async move {
                            let acked = match delivery.await {
                                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                                Ok(Err((e, _))) => Err(e.to_string()),
                                Err(_) => Err("delivery cancelled".to_string()),
                            };
                            (n, acked)
                        });
                        sent.sent += 1;
                    }
                }
                else => {}
            }
        }
        if let Some((code, reason)) = producer.client().fatal_error() {
            sent.failures
                .push(format!("fatal producer error {code:?}: {reason}"));
        }
        sent
    })
}

/// What the checker found.
#[derive(Debug, Default)]
struct Report {
    /// Acknowledged messages not read back at all.
    lost: Vec<Ack>,
    /// Acknowledged messages read back, but not at their acknowledged offset.
    moved: Vec<Ack>,
    /// Messages read back more than once, with their count.
    duplicated: BTreeMap<u64, usize>,
    /// Consecutive records of one partition whose numbers go backwards.
    reordered: Vec<(i32, u64, u64)>,
}

fn check(acks: &[Ack], read: &BTreeMap<(i32, i64), String>) -> Report {
    let number = |payload: &str| {
        payload
            .strip_prefix("m-")
            .and_then(|n| n.parse::<u64>().ok())
    };
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for payload in read.values() {
        let n = number(payload).unwrap_or_else(|| panic!("unexpected payload {payload:?}"));
        *seen.entry(n).or_default() += 1;
    }
    let mut report = Report {
        duplicated: seen
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, c)| (*n, *c))
            .collect(),
        ..Report::default()
    };
    for ack in acks {
        if read.get(&(ack.partition, ack.offset)) == Some(&format!("m-{}", ack.n)) {
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
        let n = number(payload).expect("checked above");
        if let Some(before) = previous.insert(*partition, n)
            && n <= before
        {
            report.reordered.push((*partition, before, n));
        }
    }
    report
}

/// With `enable.idempotence=true`, retries across kill -9 failovers neither duplicate nor
/// lose nor reorder messages: the new leader knows the producer's last batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_survives_leader_kills_without_duplicates_loss_or_reordering() {
    const TOPIC: &str = "idem";
    const PARTITIONS: i32 = 3;
    const ROUNDS: usize = 3;
    let started = Instant::now();
    let mut cluster = Cluster::start(ClusterSpec {
        name: "idempotence",
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets: &[
            "min.insync.replicas=2",
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
            "replica.lag.time.max.ms=5000",
        ],
    });
    cluster.wait_for_leader(STARTUP).await;
    let brokers = cluster.broker_ids();
    cluster
        .wait_for_brokers(&cluster.bootstrap(), &brokers, STARTUP)
        .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic(TOPIC, PARTITIONS, 3).await, Ok(()));
    wait_for_full_isr(&cluster, TOPIC).await;

    let stop = Arc::new(AtomicBool::new(false));
    let client = spawn_idempotent_producer(&cluster.bootstrap(), TOPIC, PARTITIONS, stop.clone());
    // Per round: the new leader and how many retried batches it answered as duplicates.
    let mut deduplicated: Vec<(i32, u64)> = Vec::new();
    for round in 0..ROUNDS {
        let views = wait_for_full_isr(&cluster, TOPIC).await;
        let victim = (round % PARTITIONS as usize) as i32;
        let view = &views[victim as usize];
        let leader = view.leader;
        let followers: Vec<i32> = view
            .replicas
            .iter()
            .copied()
            .filter(|r| *r != leader)
            .collect();
        let (survivor, stalled) = (followers[0], followers[1]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // A stopped in-sync follower holds the high watermark back, so for a second the leader
        // and the survivor append batches nobody acknowledges; then the leader dies. The
        // stalled follower is fenced first (its heartbeats stopped first), so the survivor
        // takes over holding every unacknowledged batch, and the producer's retries of them
        // are duplicates only the producer state can recognise.
        eprintln!(
            "round {round}: SIGSTOP broker {stalled}, then kill -9 broker {leader}, \
             leader of {TOPIC}-{victim}; {survivor} should take over"
        );
        cluster.pause(stalled);
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.kill9(leader);
        wait_for_partitions(&cluster, TOPIC, CONVERGE, "the survivor leads", |views| {
            (views[victim as usize].leader == survivor).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The survivor alone is below min.insync.replicas=2 and refuses the retries with
        // NOT_ENOUGH_REPLICAS; the stalled follower, restarted, catches up and rejoins the ISR
        // first, so the retries reach the survivor while it leads. Only then does the old
        // leader return (and, as the preferred replica, take the lead back).
        cluster.kill9(stalled);
        cluster.restart(stalled);
        let admin = cluster.node(survivor).admin.clone().expect("admin address");
        let deadline = Instant::now() + CONVERGE;
        loop {
            let count = duplicate_batches(&admin, TOPIC, victim);
            if count > 0 {
                deduplicated.push((survivor, count));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: a retry of an unacknowledged batch reached the new leader \
                 {survivor}, which answered it as a duplicate, within {CONVERGE:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        cluster.restart(leader);
    }
    wait_for_full_isr(&cluster, TOPIC).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let Sent {
        mut acks,
        failures,
        sent,
    } = client.await.expect("producer task");
    acks.sort();

    let mut ends = BTreeMap::new();
    for ack in &acks {
        let end = ends.entry(ack.partition).or_insert(0);
        *end = (*end).max(ack.offset + 1);
    }
    let read = read_back(&cluster.bootstrap(), TOPIC, PARTITIONS, &ends);
    let report = check(&acks, &read);
    eprintln!(
        "{ROUNDS} leader kills in {:?}: sent {sent}, acknowledged {}, failed {}, read back {}, \
         lost {}, moved {}, duplicated {}, reordered {}; (new leader, batches it answered as \
         duplicates) per round: {deduplicated:?}",
        started.elapsed(),
        acks.len(),
        failures.len(),
        read.len(),
        report.lost.len(),
        report.moved.len(),
        report.duplicated.len(),
        report.reordered.len()
    );
    assert!(
        failures.is_empty(),
        "an idempotent producer retries through failovers; failures: {:?}",
        &failures[..failures.len().min(10)]
    );
    assert_eq!(acks.len() as u64, sent, "every message was acknowledged");
    assert_eq!(report.lost, vec![], "no acknowledged message is lost");
    assert_eq!(
        report.moved,
        vec![],
        "acknowledged messages stay at their offsets"
    );
    assert_eq!(
        report.duplicated,
        BTreeMap::new(),
        "no message is written twice"
    );
    assert_eq!(
        report.reordered,
        vec![],
        "each partition keeps the send order"
    );
    assert_eq!(
        read.len(),
        acks.len(),
        "the log holds exactly the acknowledged messages"
    );
}
