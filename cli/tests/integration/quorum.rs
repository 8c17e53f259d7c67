//! End-to-end: a KRaft-style controller quorum of real `ferry node` processes with brokers, and a
//! real Kafka client (librdkafka). Acknowledged metadata survives the loss of the active
//! controller, a quorum without a majority refuses writes in bounded time and recovers, and a
//! killed broker is fenced, loses its leadership and returns.

use crate::cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster::{
    Admin, Cluster, ClusterSpec, MetadataReader, POLL, broker_ids, consume_all, describe_leader,
    node_status, partitions, produce, topic_names,
};
use ferry_data_plane::authority::quorum::CONTROLLER_CALL_TIMEOUT;
use rdkafka::types::RDKafkaErrorCode;

/// Generous bound for a leader election after a start or a kill.
const ELECTION: Duration = Duration::from_secs(20);

/// Bound for brokers to register and be unfenced.
const REGISTRATION: Duration = Duration::from_secs(30);

/// Above the broker's 30 s controller-call timeout, so the broker gives up before the client.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(40);

/// Starts the cluster, waits for a leader and for every broker to be visible.
async fn running(spec: ClusterSpec<'_>) -> Cluster {
    let cluster = Cluster::start(spec);
    cluster.wait_for_leader(ELECTION).await;
    let brokers = cluster.broker_ids();
    cluster
        .wait_for_brokers(&cluster.bootstrap(), &brokers, REGISTRATION)
        .await;
    cluster
}

/// Creates `name`, retrying errors until `timeout`; an "already exists" after an error counts as
/// created (the failed try may have committed).
async fn create_with_retries(
    admin: &Admin,
    name: &str,
    partitions: i32,
    replication: i32,
    timeout: Duration,
    errors: &mut Vec<(String, RDKafkaErrorCode, Duration)>,
) -> Result<(), RDKafkaErrorCode> {
    let deadline = Instant::now() + timeout;
    let mut retried = false;
    loop {
        let attempt = Instant::now();
        match admin.create_topic(name, partitions, replication).await {
            Ok(()) => return Ok(()),
            Err(RDKafkaErrorCode::TopicAlreadyExists) if retried => return Ok(()),
            Err(code) if Instant::now() >= deadline => return Err(code),
            Err(code) => {
                errors.push((name.to_string(), code, attempt.elapsed()));
                retried = true;
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Produces `count` messages with acks=all and consumes every one of them back.
async fn produce_and_consume_back(cluster: &Cluster, topic: &str, partitions: i32, count: usize) {
    let acked = produce(&cluster.bootstrap(), topic, count).await;
    assert_eq!(acked.values().sum::<usize>(), count, "{acked:?}");
    let consumed = consume_all(&cluster.bootstrap(), topic, partitions);
    let counts: BTreeMap<i32, usize> = consumed.iter().map(|(p, m)| (*p, m.len())).collect();
    assert_consumed(cluster, &acked, &counts);
    let payloads: BTreeSet<String> = consumed.values().flatten().cloned().collect();
    let expected: BTreeSet<String> = (0..count).map(|i| format!("message {i}")).collect();
    assert_eq!(payloads, expected, "every acknowledged message is consumed");
}

/// Every acknowledged message was consumed (counts per partition); otherwise fails with what
/// each broker reports about its partitions (log end offset, high watermark).
fn assert_consumed(
    cluster: &Cluster,
    acked: &BTreeMap<i32, usize>,
    consumed: &BTreeMap<i32, usize>,
) {
    if acked == consumed {
        return;
    }
    let statuses: Vec<String> = cluster
        .broker_ids()
        .into_iter()
        .filter_map(|id| cluster.node(id).admin.as_deref().map(node_status))
        .collect();
    panic!(
        "acknowledged (acks=all) per partition {acked:?}, consumed {consumed:?}; brokers \
         report:\n{}",
        statuses.join("\n")
    );
}

/// Polls Metadata from `bootstrap` until `done` accepts it; panics with the last view after
/// `timeout`.
async fn wait_for_metadata<T>(
    bootstrap: &str,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&rdkafka::metadata::Metadata) -> Result<T, String>,
) -> T {
    let reader = MetadataReader::new(bootstrap);
    let deadline = Instant::now() + timeout;
    loop {
        let last = match reader.fetch().await {
            Ok(metadata) => match done(&metadata) {
                Ok(value) => return value,
                Err(why) => why,
            },
            Err(e) => format!("Metadata failed: {e}"),
        };
        assert!(
            Instant::now() < deadline,
            "{what} within {timeout:?}; last: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_creates_topics_and_produces_through_3_controllers_and_3_brokers() {
    let started = Instant::now();
    let cluster = running(ClusterSpec {
        name: "three-and-three",
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets: &[],
    })
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("orders", 6, 3).await, Ok(()));

    let brokers: BTreeSet<i32> = cluster.broker_ids().into_iter().collect();
    let views = wait_for_metadata(
        &cluster.bootstrap(),
        Duration::from_secs(10),
        "orders with 6 led partitions",
        |m| match partitions(m, "orders") {
            Some(p) if p.len() == 6 && p.iter().all(|p| p.leader >= 0) => Ok(p),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let mut leaders = BTreeSet::new();
    for p in &views {
        let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
        assert_eq!(
            replicas, brokers,
            "partition {}: one replica per broker",
            p.partition
        );
        let racks: BTreeSet<&str> = p.replicas.iter().map(|b| cluster.rack(*b)).collect();
        assert_eq!(
            racks.len(),
            3,
            "partition {}: replicas on 3 racks",
            p.partition
        );
        assert!(p.replicas.contains(&p.leader), "{p:?}: leader is a replica");
        leaders.insert(p.leader);
    }
    assert_eq!(
        leaders, brokers,
        "leaders spread over every broker: {views:?}"
    );

    // Data through a replication-factor-1 topic, led by every broker (replicated topics are
    // covered by acks_all_to_a_replicated_topic_is_consumed_back and tests/integration/replication.rs).
    assert_eq!(admin.create_topic("payments", 6, 1).await, Ok(()));
    let views = wait_for_metadata(
        &cluster.bootstrap(),
        Duration::from_secs(10),
        "payments with 6 led partitions",
        |m| match partitions(m, "payments") {
            Some(p) if p.len() == 6 && p.iter().all(|p| p.leader >= 0) => Ok(p),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let leaders: BTreeSet<i32> = views.iter().map(|p| p.leader).collect();
    assert_eq!(
        leaders, brokers,
        "leaders spread over every broker: {views:?}"
    );
    produce_and_consume_back(&cluster, "payments", 6, 1_000).await;
    eprintln!("3+3 produce/consume: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_controller_during_topic_creation_loses_no_acknowledged_topic() {
    const TOPICS: usize = 60;
    const KILL_AFTER: usize = 20;
    let started = Instant::now();
    let mut cluster = running(ClusterSpec {
        name: "leader-kill",
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets: &[],
    })
    .await;
    let leader = cluster.wait_for_leader(ELECTION).await;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let creator = {
        let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            let mut created = Vec::new();
            let mut errors = Vec::new();
            let mut slowest = Duration::ZERO;
            for i in 0..TOPICS {
                let name = format!("t{i}");
                let start = Instant::now();
                let result =
                    create_with_retries(&admin, &name, 1, 3, Duration::from_secs(60), &mut errors)
                        .await;
                slowest = slowest.max(start.elapsed());
                result.unwrap_or_else(|e| panic!("{name} created despite the failover: {e:?}"));
                created.push(name);
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            (created, slowest, errors)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < deadline, "{KILL_AFTER} topics within 60 s");
        assert!(!creator.is_finished(), "creator stopped early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill9(leader);
    let killed_at = acknowledged.load(Ordering::SeqCst);
    let new_leader = cluster.wait_for_leader(ELECTION).await;
    assert_ne!(new_leader, leader);
    let (created, slowest, errors) = creator.await.expect("creator finished");
    assert_eq!(created.len(), TOPICS);
    eprintln!(
        "leader {leader} killed after {killed_at} topics; new leader {new_leader}; \
         slowest creation {slowest:?}, errors retried {errors:?}"
    );

    let wanted: BTreeSet<String> = created.into_iter().collect();
    for broker in cluster.broker_ids() {
        let what = format!("every acknowledged topic on broker {broker}");
        wait_for_metadata(
            &cluster.bootstrap_of(broker),
            Duration::from_secs(20),
            &what,
            |m| {
                let names = topic_names(m);
                let missing: Vec<_> = wanted.difference(&names).collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?}"))
                }
            },
        )
        .await;
    }

    // The old leader rejoins over its data dir, and is needed: with the current leader killed,
    // it and the remaining controller are the only majority.
    cluster.restart(leader);
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(
        create_with_retries(
            &admin,
            "after-restart",
            1,
            3,
            Duration::from_secs(60),
            &mut Vec::new()
        )
        .await,
        Ok(())
    );
    cluster.kill9(new_leader);
    let third = cluster.wait_for_leader(ELECTION).await;
    assert!(third != new_leader, "a leader among the two left");
    assert_eq!(
        create_with_retries(
            &admin,
            "after-second-kill",
            1,
            3,
            Duration::from_secs(60),
            &mut Vec::new()
        )
        .await,
        Ok(())
    );
    wait_for_metadata(
        &cluster.bootstrap(),
        Duration::from_secs(20),
        "every topic after the second kill",
        |m| {
            let names = topic_names(m);
            let missing: Vec<_> = wanted
                .iter()
                .map(String::as_str)
                .chain(["after-restart", "after-second-kill"])
                .filter(|t| !names.contains(*t))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing {missing:?}"))
            }
        },
    )
    .await;
    eprintln!("leader kill test: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_voters_keep_working_with_two_down() {
    let started = Instant::now();
    let mut cluster = running(ClusterSpec {
        name: "five-voters",
        controllers: 5,
        broker_racks: &["a"],
        combined: false,
        sets: &[],
    })
    .await;
    let leader = cluster.wait_for_leader(ELECTION).await;
    let other = cluster
        .controller_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    cluster.kill9(leader);
    cluster.kill9(other);
    let new_leader = cluster.wait_for_leader(ELECTION).await;
    assert!(![leader, other].contains(&new_leader));

    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    let create = Instant::now();
    assert_eq!(admin.create_topic("with-two-down", 2, 1).await, Ok(()));
    eprintln!(
        "5 voters, 2 down (leader {leader}, {other}): created in {:?}; test {:?}",
        create.elapsed(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_with_two_down_refuse_metadata_writes() {
    let started = Instant::now();
    let mut cluster = running(ClusterSpec {
        name: "three-voters-two-down",
        controllers: 3,
        broker_racks: &["a"],
        combined: false,
        sets: &[],
    })
    .await;
    let leader = cluster.wait_for_leader(ELECTION).await;
    let followers: Vec<i32> = cluster
        .controller_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    // Keep the leader: with check_quorum it steps down once it hears from no majority. Wait
    // for that, so the write below cannot land in its log and commit later.
    for id in &followers {
        cluster.kill9(*id);
    }
    let survivor = cluster.node(leader).controller_addr.clone().unwrap();
    let deadline = Instant::now() + ELECTION;
    let mut not_leading = 0;
    while not_leading < 3 {
        assert!(
            Instant::now() < deadline,
            "the lone controller gives up leadership"
        );
        tokio::time::sleep(POLL).await;
        match describe_leader(&survivor, &cluster.client_tls).await {
            Some(_) => not_leading = 0,
            None => not_leading += 1,
        }
    }

    // The broker tries the controllers for CONTROLLER_CALL_TIMEOUT, then answers
    // NOT_CONTROLLER. The client waits three times as long, and the answer must come well
    // before half of that: a broker that hung would show up as the client's own timeout (a
    // local error, after the whole wait), not as this refusal.
    let client_timeout = 3 * CONTROLLER_CALL_TIMEOUT;
    let refusal_bound = CONTROLLER_CALL_TIMEOUT + Duration::from_secs(10);
    assert!(refusal_bound < client_timeout / 2);
    let admin = Admin::new(&cluster.bootstrap(), client_timeout);
    let attempt = Instant::now();
    let refused = admin.create_topic("without-majority", 1, 1).await;
    let took = attempt.elapsed();
    assert_eq!(
        refused,
        Err(RDKafkaErrorCode::NotController),
        "no majority, no topic: the broker refuses (after {took:?})"
    );
    assert!(
        took < refusal_bound,
        "refused by the broker within {refusal_bound:?} (the client waits {client_timeout:?}), \
         took {took:?}"
    );
    let metadata = MetadataReader::new(&cluster.bootstrap())
        .fetch()
        .await
        .expect("the broker serves Metadata without a quorum");
    assert!(
        !topic_names(&metadata).contains("without-majority"),
        "nothing is created"
    );
    assert_eq!(
        broker_ids(&metadata),
        BTreeSet::from([101]),
        "the broker keeps serving"
    );

    cluster.restart(followers[0]);
    cluster.wait_for_leader(ELECTION).await;
    let retry = Instant::now();
    let result = create_with_retries(
        &admin,
        "without-majority",
        1,
        1,
        Duration::from_secs(60),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(result, Ok(()), "created once a majority is back");
    eprintln!(
        "3 voters, 2 down: refused with {refused:?} after {took:?}; after restart created in \
         {:?}; test {:?}",
        retry.elapsed(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_is_fenced_and_its_leadership_moves_then_it_returns() {
    let started = Instant::now();
    let mut cluster = running(ClusterSpec {
        name: "fencing",
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets: &[
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
        ],
    })
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("fenced", 3, 3).await, Ok(()));
    drop(admin);
    let before = wait_for_metadata(
        &cluster.bootstrap(),
        Duration::from_secs(10),
        "fenced with 3 led partitions",
        |m| match partitions(m, "fenced") {
            Some(p) if p.len() == 3 && p.iter().all(|p| p.leader >= 0) => Ok(p),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let victim = before[0].leader;
    let survivors: Vec<i32> = cluster
        .broker_ids()
        .into_iter()
        .filter(|b| *b != victim)
        .collect();
    let killed = Instant::now();
    cluster.kill9(victim);

    let after = wait_for_metadata(
        &cluster.bootstrap(),
        Duration::from_secs(20),
        &format!("broker {victim} fenced and out of every leadership and ISR"),
        |m| {
            let brokers = broker_ids(m);
            let parts = partitions(m, "fenced").ok_or("no topic")?;
            let done = !brokers.contains(&victim)
                && parts
                    .iter()
                    .all(|p| p.leader != victim && p.leader >= 0 && !p.isr.contains(&victim));
            if done {
                Ok(parts)
            } else {
                Err(format!("brokers {brokers:?}, partitions {parts:?}"))
            }
        },
    )
    .await;
    let fenced_after = killed.elapsed();
    for p in &after {
        assert!(survivors.contains(&p.leader), "{p:?}: led by a live broker");
    }
    assert_ne!(after[0].leader, victim, "partition 0 leadership moved");

    let restarted = Instant::now();
    cluster.restart(victim);
    let all = cluster.broker_ids();
    cluster
        .wait_for_brokers(&cluster.bootstrap_of(survivors[0]), &all, REGISTRATION)
        .await;
    eprintln!(
        "broker {victim} fenced {fenced_after:?} after kill -9, back {:?} after restart; \
         partitions after {after:?}; test {:?}",
        restarted.elapsed(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_nodes_create_produce_and_consume() {
    let started = Instant::now();
    let cluster = running(ClusterSpec {
        name: "combined",
        controllers: 3,
        broker_racks: &[],
        combined: true,
        sets: &[],
    })
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("placed", 3, 3).await, Ok(()));
    assert_eq!(admin.create_topic("combined", 3, 1).await, Ok(()));
    wait_for_metadata(
        &cluster.bootstrap(),
        Duration::from_secs(10),
        "both topics with 3 led partitions",
        |m| {
            let placed = partitions(m, "placed").unwrap_or_default();
            let combined = partitions(m, "combined").unwrap_or_default();
            let led =
                |p: &[cluster::PartitionView]| p.len() == 3 && p.iter().all(|p| p.leader >= 0);
            if led(&placed) && led(&combined) && placed.iter().all(|p| p.replicas.len() == 3) {
                Ok(())
            } else {
                Err(format!("placed {placed:?}, combined {combined:?}"))
            }
        },
    )
    .await;
    produce_and_consume_back(&cluster, "combined", 3, 300).await;
    eprintln!("combined: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_topic_is_refused_promptly() {
    let cluster = running(ClusterSpec {
        name: "duplicate-topic",
        controllers: 3,
        broker_racks: &["a"],
        combined: false,
        sets: &[],
    })
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("twice", 1, 1).await, Ok(()));
    let again = Instant::now();
    assert_eq!(
        admin.create_topic("twice", 1, 1).await,
        Err(RDKafkaErrorCode::TopicAlreadyExists)
    );
    let took = again.elapsed();
    // The refusal commits no records; the broker must not wait for metadata that never comes.
    assert!(took < Duration::from_secs(5), "refused in {took:?}");
    assert_eq!(admin.create_topic("after-twice", 1, 1).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_to_a_replicated_topic_is_consumed_back() {
    let cluster = running(ClusterSpec {
        name: "replicated-data",
        controllers: 3,
        broker_racks: &["a", "b", "c"],
        combined: false,
        sets: &[],
    })
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("replicated", 6, 3).await, Ok(()));
    produce_and_consume_back(&cluster, "replicated", 6, 1_000).await;
}

/// Static stability: a broker restarted while the whole controller quorum is down serves the
/// topics and data it had, from the metadata image it kept on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_without_any_controller_serves_from_its_kept_image() {
    let mut cluster = running(ClusterSpec {
        name: "static-stability",
        controllers: 3,
        broker_racks: &["a"],
        combined: false,
        sets: &[],
    })
    .await;
    let admin = Admin::new(&cluster.bootstrap(), ADMIN_TIMEOUT);
    assert_eq!(admin.create_topic("kept", 1, 1).await, Ok(()));
    drop(admin);
    let produced = produce(&cluster.bootstrap(), "kept", 10).await;
    assert_eq!(produced.values().sum::<usize>(), 10);
    // The image is written at most once a second: wait until the kept copy names the topic.
    let image = cluster.data_dir(101).join("metadata").join("image");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read(&image).is_ok_and(|b| b.windows(4).any(|w| w == b"kept")) {
        assert!(Instant::now() < deadline, "image kept on disk within 20 s");
        tokio::time::sleep(POLL).await;
    }
    for id in cluster.controller_ids() {
        cluster.kill9(id);
    }
    cluster.kill9(101);
    cluster.restart(101);
    let metadata = MetadataReader::new(&cluster.bootstrap())
        .fetch()
        .await
        .unwrap();
    assert!(
        topic_names(&metadata).contains("kept"),
        "{:?}",
        topic_names(&metadata)
    );
    let consumed = consume_all(&cluster.bootstrap(), "kept", 1);
    assert_eq!(consumed.values().map(Vec::len).sum::<usize>(), 10);
}
