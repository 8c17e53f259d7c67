//! End-to-end: consumer groups on real `ferry node` processes, driven by librdkafka consumers.
//!
//! Each test starts 3 controllers and 3 brokers on loopback with a 12-partition, 3-replica
//! topic. Consumers commit after processing (synchronous commit of each message); a message
//! counts as processed only when its commit succeeds, and a consumer whose commit fails seeks
//! back to that message, as an application with commit-after-process does. What is asserted is
//! a safety property, never a duration: waits are bounded loops whose bounds only turn a hang
//! into a failure. Every process is killed when the test's `Cluster` drops, also on panic.
//!
//! - [`three_consumers_rebalance_and_resume_from_committed_offsets`]: three consumers share the
//!   topic, one leaves and one joins, then the whole group stops and restarts: every message is
//!   processed exactly once, and after the restart nothing already committed is delivered again.
//!   Deleting the group while it has members is refused and changes nothing.
//! - [`the_group_survives_its_coordinator_being_killed`]: the broker leading the group's
//!   `__consumer_offsets` partition is killed with kill -9 during consumption; the group moves
//!   to the new leader with its commits (nothing committed before the kill is read again),
//!   every message is consumed, a fresh pair of consumers then resumes from the commits the
//!   new coordinator holds, and the committed offsets reach the end of every partition.
//! - [`each_assignor_splits_the_partitions_between_members`]: roundrobin and cooperative-sticky
//!   (range is the default of the first test) give two members disjoint, non-empty assignments
//!   covering all partitions, as each member's rebalance callbacks record them, and every
//!   message is processed once.

use crate::cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster::{Admin, Cluster, ClusterSpec, MetadataReader, POLL, partitions};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Bound for a controller election and for brokers to register.
const STARTUP: Duration = Duration::from_secs(30);

/// Above the broker's 30 s controller-call timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(40);

/// Bound for a group to consume what it is given (rebalances and failovers included): only to
/// turn a hang into a failure.
const CONVERGE: Duration = Duration::from_secs(120);

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 12;

/// Broker settings: a short initial rebalance delay and fewer offsets partitions keep the test
/// light on a small machine, and a shorter replica lag bound lets the ISR drop a killed broker
/// sooner (until then acks=all writes, commits included, wait); everything else is Kafka's
/// default.
const SETS: &[&str] = &[
    "group.initial.rebalance.delay.ms=500",
    "offsets.topic.num.partitions=10",
    "replica.lag.time.max.ms=10000",
];

/// Starts 3 controllers and 3 brokers and creates the topic.
async fn cluster_with_topic(name: &str) -> Cluster {
    let cluster = Cluster::start(ClusterSpec {
        name,
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets: SETS,
    });
    cluster.wait_for_leader(STARTUP).await;
    let brokers = cluster.broker_ids();
    cluster
        .wait_for_brokers(&cluster.bootstrap(), &brokers, STARTUP)
        .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    admin
        .create_topic(TOPIC, PARTITIONS, 3)
        .await
        .expect("topic created");
    cluster
}

/// What the consumers of a test did, by message payload.
#[derive(Default)]
struct Ledger {
    /// Deliveries of each message (duplicates included).
    delivered: Mutex<BTreeMap<String, usize>>,
    /// Messages whose commit succeeded, and how often.
    processed: Mutex<BTreeMap<String, usize>>,
    /// Each member's partitions of the topic, by member name, as its last rebalance left them.
    /// Recorded inside the rebalance callback, before the client goes on (and, for a
    /// revocation, before it rejoins), so a partition shows up with its next owner only after
    /// its previous owner dropped it: two members never both hold a partition here unless the
    /// group really gave it to both.
    assignments: Mutex<BTreeMap<String, BTreeSet<i32>>>,
}

impl Ledger {
    fn processed_count(&self) -> usize {
        self.processed.lock().unwrap().len()
    }
}

/// A member's client context: records the member's assignment after every rebalance.
struct Recorder {
    /// The member's name (its client id).
    name: String,
    ledger: Arc<Ledger>,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Error(_)) {
            return;
        }
        let assignment = match consumer.assignment() {
            Ok(assignment) => assignment,
            // The last revocation runs while the consumer is being dropped (the member
            // stopped): librdkafka can no longer read anything, and there is nothing to record.
            Err(KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerDestroy)) => return,
            Err(e) => panic!("the assignment is readable in the rebalance callback: {e:?}"),
        };
        let owned: BTreeSet<i32> = assignment
            .elements_for_topic(TOPIC)
            .iter()
            .map(|e| e.partition())
            .collect();
        self.ledger
            .assignments
            .lock()
            .unwrap()
            .insert(self.name.clone(), owned);
    }
}

/// A consumer thread in `group` until `stop` is set; it closes (LeaveGroup) when it ends.
struct Member {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Member {
    fn start(
        bootstrap: &str,
        group: &str,
        assignor: &str,
        name: &str,
        ledger: Arc<Ledger>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Recorder {
            name: name.to_string(),
            ledger: ledger.clone(),
        };
        let consumer: BaseConsumer<Recorder> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("client.id", name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("partition.assignment.strategy", assignor)
            .create_with_context(recorder)
            .expect("consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
                        continue;
                    };
                    let payload =
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                    *ledger
                        .delivered
                        .lock()
                        .unwrap()
                        .entry(payload.clone())
                        .or_default() += 1;
                    match consumer.commit_message(&m, CommitMode::Sync) {
                        Ok(()) => {
                            *ledger.processed.lock().unwrap().entry(payload).or_default() += 1;
                        }
                        Err(_) => {
                            // Not processed: read it again (if this consumer still owns the
                            // partition; otherwise its next owner starts from the commit).
                            let _ = consumer.seek(
                                m.topic(),
                                m.partition(),
                                Offset::Offset(m.offset()),
                                Duration::from_secs(5),
                            );
                        }
                    }
                }
                consumer.unsubscribe();
                drop(consumer);
            })
        };
        Member { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("consumer thread");
    }
}

/// Waits until `done` holds, polling; panics with `what` after [`CONVERGE`].
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONVERGE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {CONVERGE:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Produces `count` messages `<batch>-<n>` with acks=all; returns their payloads (every one
/// acknowledged, or the test fails).
async fn produce_batch(bootstrap: &str, batch: &str, count: usize) -> Vec<String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    let payloads: Vec<String> = (0..count).map(|i| format!("{batch}-{i}")).collect();
    let mut pending = Vec::with_capacity(count);
    for payload in &payloads {
        let record = FutureRecord::to(TOPIC).key(payload).payload(payload);
        pending.push(producer.send_result(record).expect("queue has room"));
    }
    for delivery in pending {
        delivery
            .await
            .expect("not cancelled")
            .unwrap_or_else(|(e, _)| panic!("message acknowledged: {e}"));
    }
    payloads
}

/// The group as ListGroups + DescribeGroups show it: (state, member count).
fn describe(bootstrap: &str, group: &str) -> (String, usize) {
    tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .unwrap();
        let list = consumer
            .fetch_group_list(Some(group), Duration::from_secs(30))
            .expect("group list");
        let g = list.groups().first().expect("the group is listed");
        (g.state().to_string(), g.members().len())
    })
}

/// (committed offset, high watermark) per partition of the topic, for `group`; panics if the
/// cluster does not answer (use [`try_committed_vs_end`] while it may be failing over).
fn committed_vs_end(bootstrap: &str, group: &str) -> BTreeMap<i32, (i64, i64)> {
    try_committed_vs_end(bootstrap, group).expect("committed offsets and watermarks")
}

/// [`committed_vs_end`], or the client's error.
fn try_committed_vs_end(
    bootstrap: &str,
    group: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, rdkafka::error::KafkaError> {
    tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .create()?;
        let mut wanted = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            wanted.add_partition(TOPIC, p);
        }
        let committed = consumer.committed_offsets(wanted, Duration::from_secs(30))?;
        let mut result = BTreeMap::new();
        for p in 0..PARTITIONS {
            let offset = match committed.find_partition(TOPIC, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            };
            let (_, high) = consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(30))?;
            result.insert(p, (offset, high));
        }
        Ok(result)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_consumers_rebalance_and_resume_from_committed_offsets() {
    let cluster = cluster_with_topic("groups-rebalance").await;
    let bootstrap = cluster.bootstrap();
    let group = "ledger";
    let ledger = Arc::new(Ledger::default());

    // Three members share the first batch.
    let first = produce_batch(&bootstrap, "first", 300).await;
    let mut members: Vec<Member> = ["a", "b", "c"]
        .iter()
        .map(|n| Member::start(&bootstrap, group, "range", n, ledger.clone()))
        .collect();
    wait_until("the first batch processed", || {
        ledger.processed_count() == first.len()
    })
    .await;
    // A member whose first FindCoordinator came before the offsets topic existed may join
    // after the initial delay, in a second rebalance: wait for the group to settle.
    wait_until("a stable group of three members", || {
        describe(&bootstrap, group) == ("Stable".to_string(), 3)
    })
    .await;

    // Deleting a group with members is refused, and nothing changes.
    let before = committed_vs_end(&bootstrap, group);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .delete_groups(&[group], &options)
        .await
        .expect("DeleteGroups answered");
    assert_eq!(
        results[0].as_ref().map_err(|(_, code)| *code),
        Err(RDKafkaErrorCode::NonEmptyGroup)
    );
    assert_eq!(describe(&bootstrap, group).1, 3);
    assert_eq!(committed_vs_end(&bootstrap, group), before);

    // One leaves, one joins; the second batch is shared by the new trio.
    members.remove(2).stop();
    members.push(Member::start(
        &bootstrap,
        group,
        "range",
        "d",
        ledger.clone(),
    ));
    let second = produce_batch(&bootstrap, "second", 300).await;
    let total = first.len() + second.len();
    wait_until("the second batch processed", || {
        ledger.processed_count() == total
    })
    .await;

    // The whole group stops; a third batch arrives; a fresh trio resumes from the commits.
    for m in members.drain(..) {
        m.stop();
    }
    let after_stop = committed_vs_end(&bootstrap, group);
    for (p, (committed, end)) in &after_stop {
        assert_eq!(
            committed, end,
            "partition {p}: everything processed is committed"
        );
    }
    let third = produce_batch(&bootstrap, "third", 300).await;
    let delivered_before: BTreeMap<String, usize> = ledger.delivered.lock().unwrap().clone();
    let members: Vec<Member> = ["e", "f", "g"]
        .iter()
        .map(|n| Member::start(&bootstrap, group, "range", n, ledger.clone()))
        .collect();
    let total = total + third.len();
    wait_until("the third batch processed", || {
        ledger.processed_count() == total
    })
    .await;
    for m in members {
        m.stop();
    }
    // Exactly once: every message processed, none twice.
    let expected: BTreeMap<String, usize> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|p| (p.clone(), 1))
        .collect();
    assert_eq!(
        *ledger.processed.lock().unwrap(),
        expected,
        "every message processed once"
    );
    // After the restart nothing committed before it was delivered again.
    let delivered_after = ledger.delivered.lock().unwrap().clone();
    let reread: Vec<&String> = delivered_before
        .iter()
        .filter(|(payload, count)| delivered_after[*payload] != **count)
        .map(|(payload, _)| payload)
        .collect();
    assert!(reread.is_empty(), "re-read after the restart: {reread:?}");
    let ends = committed_vs_end(&bootstrap, group);
    let end_total: i64 = ends.values().map(|(_, end)| end).sum();
    assert_eq!(end_total as usize, total);
    for (p, (committed, end)) in &ends {
        assert_eq!(committed, end, "partition {p} committed to its end");
    }
    let (state, _) = describe(&bootstrap, group);
    assert_eq!(state, "Empty", "all members left");
}

/// The broker leading `group`'s offsets partition, once it is not `excluded` (a killed broker
/// stays leader in the metadata until the controllers fence it).
async fn coordinator_of(bootstrap: &str, group: &str, excluded: Option<i32>) -> i32 {
    let index = ferry_data_plane::group::partition_for(group, 10);
    let reader = MetadataReader::new(bootstrap);
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Ok(metadata) = reader.fetch().await
            && let Some(views) = partitions(&metadata, "__consumer_offsets")
            && let Some(p) = views.iter().find(|p| p.partition == index && p.leader >= 0)
            && Some(p.leader) != excluded
        {
            return p.leader;
        }
        assert!(
            Instant::now() < deadline,
            "the group's offsets partition led by a broker other than {excluded:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_group_survives_its_coordinator_being_killed() {
    let mut cluster = cluster_with_topic("groups-kill").await;
    let bootstrap = cluster.bootstrap();
    let group = "survivor";
    let ledger = Arc::new(Ledger::default());
    let first = produce_batch(&bootstrap, "before", 300).await;
    let members: Vec<Member> = ["a", "b"]
        .iter()
        .map(|n| Member::start(&bootstrap, group, "range", n, ledger.clone()))
        .collect();
    wait_until("the first batch processed", || {
        ledger.processed_count() == first.len()
    })
    .await;

    let delivered_before_kill = ledger.delivered.lock().unwrap().clone();
    let coordinator = coordinator_of(&bootstrap, group, None).await;
    cluster.kill9(coordinator);
    let survivors: Vec<String> = cluster
        .broker_ids()
        .into_iter()
        .filter(|id| *id != coordinator)
        .map(|id| cluster.bootstrap_of(id))
        .collect();
    let survivors = survivors.join(",");
    let moved = coordinator_of(&survivors, group, Some(coordinator)).await;
    assert_ne!(moved, coordinator, "another broker coordinates the group");

    let second = produce_batch(&survivors, "after", 300).await;
    wait_until("the second batch delivered", || {
        let delivered = ledger.delivered.lock().unwrap();
        second.iter().all(|p| delivered.contains_key(p))
    })
    .await;
    wait_until("every commit reaches the end of its partition", || {
        try_committed_vs_end(&survivors, group)
            .is_ok_and(|ends| ends.values().all(|(committed, end)| committed == end))
    })
    .await;
    for m in members {
        m.stop();
    }
    // A fresh pair resumes from what the new coordinator holds.
    let third = produce_batch(&survivors, "resumed", 100).await;
    let members: Vec<Member> = ["c", "d"]
        .iter()
        .map(|n| Member::start(&survivors, group, "range", n, ledger.clone()))
        .collect();
    wait_until("the third batch processed", || {
        let processed = ledger.processed.lock().unwrap();
        third.iter().all(|p| processed.contains_key(p))
    })
    .await;
    for m in members {
        m.stop();
    }
    let second: Vec<String> = second.into_iter().chain(third).collect();
    let ends = committed_vs_end(&survivors, group);
    let end_total: i64 = ends.values().map(|(_, end)| end).sum();
    assert_eq!(
        end_total as usize,
        first.len() + second.len(),
        "nothing lost"
    );
    let processed = ledger.processed.lock().unwrap();
    let missing: Vec<&String> = first
        .iter()
        .chain(&second)
        .filter(|p| !processed.contains_key(*p))
        .collect();
    // A commit whose answer was lost with the coordinator may be stored without the consumer
    // knowing; such a message is delivered but not counted as processed. Everything else is.
    let delivered = ledger.delivered.lock().unwrap();
    assert!(
        missing.iter().all(|p| delivered.contains_key(*p)),
        "never delivered: {missing:?}"
    );
    // The new coordinator had the commits made before the kill: nothing committed then was
    // read again (a group that lost them would restart from the earliest offsets).
    let reread: Vec<&String> = delivered_before_kill
        .iter()
        .filter(|(payload, count)| delivered[*payload] != **count)
        .map(|(payload, _)| payload)
        .collect();
    assert!(reread.is_empty(), "re-read after the failover: {reread:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_assignor_splits_the_partitions_between_members() {
    let cluster = cluster_with_topic("groups-assignors").await;
    let bootstrap = cluster.bootstrap();
    let produced = produce_batch(&bootstrap, "split", 120).await.len();
    for assignor in ["roundrobin", "cooperative-sticky"] {
        let group = format!("split-{assignor}");
        let ledger = Arc::new(Ledger::default());
        let members: Vec<Member> = ["x", "y"]
            .iter()
            .map(|n| Member::start(&bootstrap, &group, assignor, n, ledger.clone()))
            .collect();
        // The second member may join a rebalance after the first (a FindCoordinator answered
        // before the offsets topic existed is retried): wait until both are in the group.
        let described = || {
            tokio::task::block_in_place(|| {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .create()
                    .unwrap();
                let list = consumer
                    .fetch_group_list(Some(&group), Duration::from_secs(30))
                    .unwrap();
                list.groups().first().map(|g| {
                    (
                        g.state().to_string(),
                        g.protocol().to_string(),
                        g.members().len(),
                    )
                })
            })
        };
        wait_until(
            &format!("{assignor}: two members in a stable group"),
            || described() == Some(("Stable".to_string(), assignor.to_string(), 2)),
        )
        .await;
        // Each member ends up with some partitions and together they hold all of them (a
        // cooperative rebalance takes a second round to hand over the revoked ones); at no
        // point do two members hold the same partition.
        let all: BTreeSet<i32> = (0..PARTITIONS).collect();
        let split = || {
            let owned = ledger.assignments.lock().unwrap().clone();
            let (x, y) = (
                owned.get("x").cloned().unwrap_or_default(),
                owned.get("y").cloned().unwrap_or_default(),
            );
            let shared: Vec<&i32> = x.intersection(&y).collect();
            assert!(
                shared.is_empty(),
                "{assignor}: partitions {shared:?} held by both members: {owned:?}"
            );
            !x.is_empty() && !y.is_empty() && x.union(&y).copied().collect::<BTreeSet<_>>() == all
        };
        wait_until(
            &format!("{assignor}: both members hold partitions and together all of them"),
            split,
        )
        .await;
        wait_until("everything processed", || {
            ledger.processed_count() == produced
        })
        .await;
        assert!(
            split(),
            "{assignor}: the split held while the group consumed"
        );
        for m in members {
            m.stop();
        }
        let counts: BTreeSet<usize> = ledger.processed.lock().unwrap().values().copied().collect();
        assert_eq!(
            counts,
            BTreeSet::from([1]),
            "{assignor}: each message processed once"
        );
    }
}
