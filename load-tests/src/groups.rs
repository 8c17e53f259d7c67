//! `groups`: what a consumer group costs on the read path, and how long a rebalance takes, on a
//! cluster this workload starts itself (3 controllers and 3 brokers as real `ferry node`
//! processes).
//!
//! # End-to-end latency
//! A producer sends at a fixed rate (acks=all, RF=3) and a consumer reads; each message carries
//! its send time, so the consumer records *send → consumed* per message. Two phases in the same
//! run, each on a fresh topic read from the beginning:
//! - **baseline**: one consumer with a manual assignment of every partition (no coordinator);
//! - **group**: one member of a consumer group, started and fully assigned before the producer
//!   begins.
//!
//! The ratio group/baseline per percentile is what the group path adds (it should be ~1: once a
//! group is stable, fetching does not involve the coordinator).
//!
//! # Rebalance time
//! Per trial, a new group of three members subscribes to a 12-partition topic and is waited on
//! until its assignments cover every partition. Then one member closes (LeaveGroup) and the
//! clock runs until the two survivors' assignments again cover every partition; then a new
//! member joins and the clock runs until all three hold partitions covering the topic.
//! Survivors learn of a rebalance from their next heartbeat, so the floor of both times is about
//! one `heartbeat.interval.ms`; the report divides by it.
//!
//! Verification: each phase consumes every acknowledged message exactly once, and every trial
//! converges within its bound.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::kafka::client_config;
use crate::report::{NamedLatency, Ratio, Report, latency_histogram};
use crate::workload::Workload;

/// Bound on a group converging (joining, rebalancing) or a phase draining.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a member's poll blocks; also the resolution of the rebalance clock.
const MEMBER_POLL: Duration = Duration::from_millis(10);

/// Bytes of each message value: the send time (8 bytes) and filler.
const MESSAGE_BYTES: usize = 256;

/// Options of [`GroupLatency`] and [`Rebalance`].
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// Bootstrap servers of the cluster.
    pub bootstrap: String,
    /// Partitions of every topic the workload creates.
    pub partitions: i32,
    /// Messages per second the producer sends.
    pub rate: u64,
    /// How long the producer sends in each latency phase.
    pub duration: Duration,
    /// Rebalance trials (one leave and one join each).
    pub trials: u32,
    /// The consumers' `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// The consumers' `session.timeout.ms`.
    pub session_timeout_ms: u64,
}

impl GroupOptions {
    fn consumer_settings(&self) -> Vec<(String, String)> {
        vec![
            ("enable.auto.commit".into(), "false".into()),
            ("auto.offset.reset".into(), "earliest".into()),
            (
                "heartbeat.interval.ms".into(),
                self.heartbeat_interval_ms.to_string(),
            ),
            (
                "session.timeout.ms".into(),
                self.session_timeout_ms.to_string(),
            ),
        ]
    }
}

/// Microseconds since the Unix epoch: producer and consumer share this process's clock.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The end-to-end latency workload: baseline (manual assignment) then group phase.
pub struct GroupLatency {
    options: GroupOptions,
    phases: Vec<Phase>,
}

/// The outcome of one latency phase.
struct Phase {
    name: &'static str,
    histogram: Histogram<u64>,
    acknowledged: BTreeSet<u64>,
    consumed: BTreeMap<u64, u32>,
    failed: u64,
}

impl GroupLatency {
    /// A latency workload over a running cluster.
    pub fn new(options: GroupOptions) -> Self {
        GroupLatency {
            options,
            phases: Vec::new(),
        }
    }

    /// One phase: `consumer` already reads `topic`; produce at the fixed rate and drain.
    fn phase(
        &self,
        name: &'static str,
        topic: &str,
        consumer: BaseConsumer,
    ) -> anyhow::Result<Phase> {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new((
            latency_histogram(),
            BTreeMap::<u64, u32>::new(),
        )));
        let reader = {
            let stop = stop.clone();
            let samples = samples.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    let Some(result) = consumer.poll(Duration::from_millis(50)) else {
                        continue;
                    };
                    let message = result.context("consuming")?;
                    let received = now_us();
                    let (Some(key), Some(value)) = (message.key(), message.payload()) else {
                        bail!(
                            "a message without key or value at offset {}",
                            message.offset()
                        );
                    };
                    let sequence = u64::from_le_bytes(key.try_into().context("key length")?);
                    let sent = u64::from_le_bytes(value[..8].try_into().context("value length")?);
                    let mut samples = samples.lock().expect("samples lock");
                    samples
                        .0
                        .saturating_record(received.saturating_sub(sent).max(1));
                    *samples.1.entry(sequence).or_default() += 1;
                }
                Ok(())
            })
        };

        let producer: BaseProducer<Deliveries> = client_config(&self.options.bootstrap, &[])
            .set("acks", "all")
            .set("linger.ms", "1")
            .create_with_context(Deliveries::default())
            .context("creating the producer")?;
        let interval = Duration::from_secs_f64(1.0 / self.options.rate.max(1) as f64);
        let total = self.options.rate * self.options.duration.as_secs().max(1);
        let start = Instant::now();
        for sequence in 0..total {
            let due = start + interval * sequence as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let key = sequence.to_le_bytes();
            let mut value = vec![0x5a; MESSAGE_BYTES];
            value[..8].copy_from_slice(&now_us().to_le_bytes());
            let partition = (sequence % self.options.partitions as u64) as i32;
            let record = BaseRecord::with_opaque_to(topic, sequence as usize)
                .key(&key[..])
                .payload(&value[..])
                .partition(partition);
            if producer.send(record).is_err() {
                producer.context().failed.fetch_add(1, Ordering::Relaxed);
            }
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(60))
            .context("flushing the producer")?;
        let acknowledged =
            std::mem::take(&mut *producer.context().acknowledged.lock().expect("lock"));
        let failed = producer.context().failed.load(Ordering::Relaxed);

        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let consumed = samples.lock().expect("samples lock").1.len();
            if consumed >= acknowledged.len() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // A short grace period so a duplicate delivered late is still seen.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the {name} reader panicked"))??;
        let (histogram, consumed) = std::mem::replace(
            &mut *samples.lock().expect("samples lock"),
            (latency_histogram(), BTreeMap::new()),
        );
        Ok(Phase {
            name,
            histogram,
            acknowledged,
            consumed,
            failed,
        })
    }

    fn baseline_consumer(&self, topic: &str) -> anyhow::Result<BaseConsumer> {
        let consumer: BaseConsumer = client_config(&self.options.bootstrap, &[])
            .set("group.id", "ferry-load-unused")
            .set("enable.auto.commit", "false")
            .create()
            .context("creating the baseline consumer")?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..self.options.partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment).context("assigning")?;
        warm_up(&consumer);
        Ok(consumer)
    }

    fn group_consumer(&self, topic: &str) -> anyhow::Result<BaseConsumer> {
        let consumer: BaseConsumer =
            client_config(&self.options.bootstrap, &self.options.consumer_settings())
                .set("group.id", format!("ferry-load-e2e-{}", now_us()))
                .create()
                .context("creating the group consumer")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        while assigned(&consumer).len() < self.options.partitions as usize {
            if Instant::now() >= deadline {
                bail!("the group consumer was not assigned {topic} within {CONVERGE_TIMEOUT:?}");
            }
            // Polling drives the join; nothing is produced yet, so no message is lost here.
            if let Some(Err(e)) = consumer.poll(MEMBER_POLL) {
                tracing::debug!(error = %e, "poll while joining");
            }
        }
        warm_up(&consumer);
        Ok(consumer)
    }
}

/// The producer's context: which sequence numbers the cluster acknowledged.
#[derive(Default)]
struct Deliveries {
    acknowledged: Mutex<BTreeSet<u64>>,
    failed: std::sync::atomic::AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sequence: usize) {
        match result {
            Ok(_) => {
                self.acknowledged
                    .lock()
                    .expect("lock")
                    .insert(sequence as u64);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// How long each latency phase's consumer polls an empty topic before the producer starts,
/// so that neither phase's first messages wait for connections to the partition leaders.
const WARM_UP: Duration = Duration::from_secs(3);

/// Polls `consumer` for [`WARM_UP`] (the topic is still empty; nothing is lost).
fn warm_up(consumer: &BaseConsumer) {
    let until = Instant::now() + WARM_UP;
    while Instant::now() < until {
        if let Some(Err(e)) = consumer.poll(MEMBER_POLL) {
            tracing::debug!(error = %e, "poll while warming up");
        }
    }
}

/// The partitions `consumer` holds now.
fn assigned(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

impl Workload for GroupLatency {
    fn name(&self) -> &'static str {
        "group-latency"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        for topic in ["e2e-baseline", "e2e-group"] {
            crate::replication::create_topic(
                &self.options.bootstrap,
                topic,
                self.options.partitions,
                3,
                &[("min.insync.replicas", "2")],
            )?;
        }
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let started = Instant::now();
        let baseline = self.baseline_consumer("e2e-baseline")?;
        let phase = self.phase("manual assignment (baseline)", "e2e-baseline", baseline)?;
        self.phases.push(phase);
        let member = self.group_consumer("e2e-group")?;
        let phase = self.phase("group member", "e2e-group", member)?;
        self.phases.push(phase);

        let messages: u64 = self.phases.iter().map(|p| p.histogram.len()).sum();
        let mut report = Report::new(
            "group-latency",
            messages,
            messages * MESSAGE_BYTES as u64,
            started.elapsed(),
        );
        report.setting("rate_msgs_per_sec", self.options.rate);
        report.setting("duration_secs", self.options.duration.as_secs());
        report.setting("partitions", self.options.partitions);
        report.setting("acks", "all");
        report.setting("replication_factor", 3);
        report.setting("linger.ms", 1);
        for phase in &self.phases {
            report.latencies.extend(NamedLatency::new(
                format!("send -> consumed, {}", phase.name),
                &phase.histogram,
            ));
            report.errors += phase.failed;
        }
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        for phase in &self.phases {
            let missing = phase
                .acknowledged
                .iter()
                .filter(|s| !phase.consumed.contains_key(s))
                .count();
            let duplicated = phase.consumed.values().filter(|n| **n > 1).count();
            if missing > 0 || duplicated > 0 {
                problems.push(format!(
                    "{}: {missing} of {} messages never consumed, {duplicated} consumed twice",
                    phase.name,
                    phase.acknowledged.len()
                ));
            }
        }
        Ok(problems)
    }
}

impl GroupLatency {
    /// Group over baseline, per percentile.
    pub fn ratios(&self) -> Vec<Ratio> {
        let [baseline, group] = &self.phases[..] else {
            return Vec::new();
        };
        let at = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64;
        [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)]
            .into_iter()
            .map(|(name, q)| {
                Ratio::new(
                    format!("end-to-end latency {name}, group / manual assignment"),
                    at(&group.histogram, q),
                    at(&baseline.histogram, q),
                    None,
                )
            })
            .collect()
    }
}

/// One group member on its own thread: polls until told to stop, publishing its assignment.
struct Member {
    stop: Arc<AtomicBool>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    thread: JoinHandle<()>,
}

impl Member {
    fn start(options: &GroupOptions, group: &str, topic: &str) -> anyhow::Result<Member> {
        let consumer: BaseConsumer =
            client_config(&options.bootstrap, &options.consumer_settings())
                .set("group.id", group)
                .create()
                .context("creating a group member")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        let stop = Arc::new(AtomicBool::new(false));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let thread = {
            let stop = stop.clone();
            let assignment = assignment.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Err(e)) = consumer.poll(MEMBER_POLL) {
                        tracing::debug!(error = %e, "member poll");
                    }
                    *assignment.lock().expect("assignment lock") = assigned(&consumer);
                }
                // Dropping the consumer closes it, which sends LeaveGroup.
                drop(consumer);
            })
        };
        Ok(Member {
            stop,
            assignment,
            thread,
        })
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().expect("assignment lock").clone()
    }

    /// Closes the member (LeaveGroup) and waits for its thread.
    fn leave(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Waits until the members' assignments are disjoint, each non-empty, and cover `0..partitions`.
fn wait_balanced(members: &[&Member], partitions: i32) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let sets: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assignment()).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        if sets.iter().all(|s| !s.is_empty())
            && total == partitions as usize
            && union == (0..partitions).collect()
        {
            return Ok(start.elapsed());
        }
        if start.elapsed() > CONVERGE_TIMEOUT {
            bail!(
                "assignments {sets:?} did not cover {partitions} partitions within {CONVERGE_TIMEOUT:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The rebalance-time workload.
pub struct Rebalance {
    options: GroupOptions,
    formed: Histogram<u64>,
    left: Histogram<u64>,
    joined: Histogram<u64>,
    failures: Vec<String>,
}

/// Topic the rebalance trials subscribe to.
const REBALANCE_TOPIC: &str = "rebalance";

impl Rebalance {
    /// A rebalance workload over a running cluster.
    pub fn new(options: GroupOptions) -> Self {
        Rebalance {
            options,
            formed: latency_histogram(),
            left: latency_histogram(),
            joined: latency_histogram(),
            failures: Vec::new(),
        }
    }

    fn trial(&mut self, number: u32) -> anyhow::Result<()> {
        let group = format!("ferry-load-rebalance-{number}-{}", now_us());
        let partitions = self.options.partitions;
        let started = Instant::now();
        let mut members = (0..3)
            .map(|_| Member::start(&self.options, &group, REBALANCE_TOPIC))
            .collect::<anyhow::Result<Vec<_>>>()?;
        wait_balanced(&members.iter().collect::<Vec<_>>(), partitions)
            .context("three members forming the group")?;
        record(&mut self.formed, started.elapsed());

        let leaving = members.pop().expect("three members");
        let start = Instant::now();
        leaving.leave();
        wait_balanced(&members.iter().collect::<Vec<_>>(), partitions)
            .context("two members after one left")?;
        let left = start.elapsed();
        record(&mut self.left, left);

        let start = Instant::now();
        members.push(Member::start(&self.options, &group, REBALANCE_TOPIC)?);
        wait_balanced(&members.iter().collect::<Vec<_>>(), partitions)
            .context("three members after one joined")?;
        let joined = start.elapsed();
        record(&mut self.joined, joined);
        tracing::info!(
            trial = number,
            left_ms = left.as_millis() as u64,
            joined_ms = joined.as_millis() as u64,
            "rebalanced"
        );
        for member in members {
            member.leave();
        }
        Ok(())
    }

    /// Rebalance time over the heartbeat interval (its floor), p50.
    pub fn ratios(&self) -> Vec<Ratio> {
        let heartbeat_us = self.options.heartbeat_interval_ms as f64 * 1e3;
        [("leaves", &self.left), ("joins", &self.joined)]
            .into_iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(what, h)| {
                Ratio::new(
                    format!("rebalance p50 when a member {what} / heartbeat.interval.ms"),
                    h.value_at_quantile(0.5) as f64,
                    heartbeat_us,
                    None,
                )
            })
            .collect()
    }
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record((elapsed.as_micros() as u64).max(1));
}

impl Workload for Rebalance {
    fn name(&self) -> &'static str {
        "rebalance"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        crate::replication::create_topic(
            &self.options.bootstrap,
            REBALANCE_TOPIC,
            self.options.partitions,
            3,
            &[],
        )
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let started = Instant::now();
        for number in 0..self.options.trials {
            if let Err(e) = self.trial(number) {
                self.failures.push(format!("trial {number}: {e:#}"));
            }
        }
        let mut report = Report::new("rebalance", self.left.len(), 0, started.elapsed());
        report.setting("trials", self.options.trials);
        report.setting("members", 3);
        report.setting("partitions", self.options.partitions);
        report.setting("heartbeat.interval.ms", self.options.heartbeat_interval_ms);
        report.setting("session.timeout.ms", self.options.session_timeout_ms);
        for (name, histogram) in [
            ("3 members subscribe -> group formed", &self.formed),
            ("a member leaves -> 2 members cover the topic", &self.left),
            ("a member joins -> 3 members cover the topic", &self.joined),
        ] {
            report.latencies.extend(NamedLatency::new(name, histogram));
        }
        report.errors = self.failures.len() as u64;
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        Ok(self.failures.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> GroupOptions {
        GroupOptions {
            bootstrap: "127.0.0.1:1".into(),
            partitions: 12,
            rate: 1000,
            duration: Duration::from_secs(10),
            trials: 3,
            heartbeat_interval_ms: 3000,
            session_timeout_ms: 45_000,
        }
    }

    #[test]
    fn rebalance_ratio_is_against_the_heartbeat_interval() {
        let mut rebalance = Rebalance::new(options());
        record(&mut rebalance.left, Duration::from_millis(4500));
        let ratios = rebalance.ratios();
        assert_eq!(ratios.len(), 1, "no join samples, no join ratio");
        assert!((ratios[0].value - 1.5).abs() < 0.01, "{ratios:?}");
    }

    #[test]
    fn latency_verification_reports_missing_and_duplicated_messages() {
        let mut latency = GroupLatency::new(options());
        latency.phases.push(Phase {
            name: "group member",
            histogram: latency_histogram(),
            acknowledged: (0..4).collect(),
            consumed: [(0, 1), (1, 2), (3, 1)].into_iter().collect(),
            failed: 0,
        });
        let report = Report::new("group-latency", 0, 0, Duration::from_secs(1));
        let problems = latency.verify(&report).unwrap();
        assert_eq!(
            problems,
            ["group member: 1 of 4 messages never consumed, 1 consumed twice"]
        );
    }
}
