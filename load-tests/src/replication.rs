//! `replication`: what replication costs and how fast a partition fails over, on a cluster this
//! workload starts itself (3 controllers and 3 brokers as real `ferry node` processes).
//!
//! # Flow
//! 1. Start the cluster; create `rf1` (replication factor 1) and `rf3` (replication factor 3,
//!    `min.insync.replicas=2`), with the same partition count.
//! 2. Produce to `rf1` with acks=1, then to `rf3` with acks=all, with the same client settings
//!    (the [`crate::produce`] workload, verified as usual): the ratio of the two is the cost of
//!    replication, measured in the same run on the same machine.
//! 3. [`LeaderFailover`]: kill -9 the leader of `rf3`'s partition 0, time until Metadata from a
//!    surviving broker names a new leader, restart the killed broker and wait for a full ISR;
//!    repeat. The time is dominated by `broker.session.timeout.ms`, after which the active
//!    controller fences the silent broker and elects from the ISR; it is a setting of the run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::cluster::Quorum;
use crate::kafka::client_config;
use crate::report::{NamedLatency, Report, latency_histogram};
use crate::workload::Workload;

/// Bound on waiting for the cluster to serve, a topic to be led, or a full ISR.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Pause between two Metadata polls while timing a failover.
const FAILOVER_POLL: Duration = Duration::from_millis(20);

/// Creates `topic` with `partitions` partitions, replication `factor` and `configs`, and waits
/// until every partition has a leader and a full ISR.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    factor: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, &[])
        .create()
        .context("creating an admin client")?;
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(factor));
    for (name, value) in configs {
        new_topic = new_topic.set(name, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .with_context(|| format!("creating topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    wait_for(CONVERGE_TIMEOUT, || {
        let views = partitions_of(bootstrap, topic)?;
        Ok((views.len() == partitions as usize
            && views
                .iter()
                .all(|p| p.leader >= 0 && p.isr.len() == factor as usize))
        .then_some(()))
    })
    .with_context(|| format!("topic {topic} led with a full ISR"))
}

/// One partition as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// Leader id (-1: none).
    pub leader: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas.
    pub replicas: Vec<i32>,
}

/// `topic`'s partitions by index, from Metadata through `bootstrap` (empty if unknown).
pub fn partitions_of(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<PartitionView>> {
    let client: BaseProducer = client_config(bootstrap, &[])
        .create()
        .context("creating a metadata client")?;
    let metadata = client
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .context("Metadata")?;
    let Some(found) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    else {
        return Ok(Vec::new());
    };
    let mut partitions: Vec<_> = found.partitions().iter().collect();
    partitions.sort_by_key(|p| p.id());
    Ok(partitions
        .into_iter()
        .map(|p| PartitionView {
            leader: p.leader(),
            isr: p.isr().to_vec(),
            replicas: p.replicas().to_vec(),
        })
        .collect())
}

/// Polls `check` until it yields a value or `timeout` passes; errors count as "not yet".
fn wait_for<T>(
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "condition not met".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("not within {timeout:?} ({last})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Options of [`LeaderFailover`].
#[derive(Debug, Clone)]
pub struct FailoverOptions {
    /// Topic whose partition 0 loses its leader.
    pub topic: String,
    /// Number of kills.
    pub trials: u32,
    /// The setting the cluster runs with, for the report.
    pub session_timeout_ms: u64,
}

/// Kills the leader of a partition again and again; times until another broker leads it.
pub struct LeaderFailover<'a> {
    cluster: &'a mut Quorum,
    options: FailoverOptions,
    histogram: Histogram<u64>,
    failures: Vec<String>,
}

impl<'a> LeaderFailover<'a> {
    /// A failover workload over a running cluster.
    pub fn new(cluster: &'a mut Quorum, options: FailoverOptions) -> Self {
        LeaderFailover {
            cluster,
            options,
            histogram: latency_histogram(),
            failures: Vec::new(),
        }
    }

    /// One trial: returns the time from the kill to a new leader in Metadata.
    fn trial(&mut self, number: u32) -> anyhow::Result<Duration> {
        let topic = self.options.topic.clone();
        let brokers: Vec<String> = self
            .cluster
            .broker_ids()
            .into_iter()
            .filter_map(|id| self.cluster.broker_addr(id))
            .collect();
        // Leadership at rest: every broker's Metadata (asked one by one, since a restarted
        // broker answers from its kept image until it has caught up) shows the partition led
        // by its preferred replica with a full ISR, so the next change seen is the failover,
        // not a preferred-leader move or a stale view.
        let leader = wait_for(CONVERGE_TIMEOUT, || {
            let mut leaders = std::collections::BTreeSet::new();
            for broker in &brokers {
                let views = partitions_of(broker, &topic)?;
                let Some(p) = views
                    .first()
                    .filter(|p| p.isr.len() == p.replicas.len())
                    .filter(|p| p.replicas.first() == Some(&p.leader))
                else {
                    return Ok(None);
                };
                leaders.insert(p.leader);
            }
            Ok((leaders.len() == 1).then(|| leaders.pop_first()).flatten())
        })
        .context("a partition led by its preferred replica with a full ISR before the kill")?;
        let survivors: String = self
            .cluster
            .broker_ids()
            .into_iter()
            .filter(|id| *id != leader)
            .filter_map(|id| self.cluster.broker_addr(id))
            .collect::<Vec<_>>()
            .join(",");
        let start = Instant::now();
        self.cluster.kill(leader)?;
        let elected = loop {
            if let Ok(views) = partitions_of(&survivors, &topic)
                && let Some(p) = views.first()
                && p.leader >= 0
                && p.leader != leader
            {
                break start.elapsed();
            }
            if start.elapsed() > CONVERGE_TIMEOUT {
                bail!("trial {number}: no new leader within {CONVERGE_TIMEOUT:?}");
            }
            std::thread::sleep(FAILOVER_POLL);
        };
        tracing::info!(
            trial = number,
            killed = leader,
            ms = elapsed_ms(elected),
            "new leader"
        );
        self.cluster.start(leader)?;
        Ok(elected)
    }
}

fn elapsed_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Workload for LeaderFailover<'_> {
    fn name(&self) -> &'static str {
        "leader-failover"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let started = Instant::now();
        for number in 0..self.options.trials {
            match self.trial(number) {
                Ok(elapsed) => {
                    let us = (elapsed.as_micros() as u64).max(1);
                    self.histogram.saturating_record(us);
                }
                Err(e) => self.failures.push(format!("{e:#}")),
            }
        }
        let mut report = Report::new(
            "leader-failover",
            self.histogram.len(),
            0,
            started.elapsed(),
        );
        report.setting("trials", self.options.trials);
        report.setting("topic", &self.options.topic);
        report.setting("broker.session.timeout.ms", self.options.session_timeout_ms);
        report.latencies.extend(NamedLatency::new(
            "kill -9 of the leader -> new leader in Metadata",
            &self.histogram,
        ));
        report.errors = self.failures.len() as u64;
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        // After the last restart the partition must come back with its whole ISR.
        let bootstrap = self.cluster.bootstrap();
        let topic = self.options.topic.clone();
        let mut problems = self.failures.clone();
        if let Err(e) = wait_for(CONVERGE_TIMEOUT, || {
            let views = partitions_of(&bootstrap, &topic)?;
            Ok(views
                .iter()
                .all(|p| p.leader >= 0 && p.isr.len() == p.replicas.len())
                .then_some(()))
        }) {
            problems.push(format!("{topic} did not regain a full ISR: {e:#}"));
        }
        Ok(problems)
    }
}

/// Waits until Metadata through `bootstrap` lists `count` brokers.
pub fn wait_for_brokers(bootstrap: &str, count: usize) -> anyhow::Result<()> {
    wait_for(CONVERGE_TIMEOUT, || {
        let client: BaseConsumer = client_config(bootstrap, &[]).create()?;
        let metadata =
            rdkafka::consumer::Consumer::fetch_metadata(&client, None, Duration::from_secs(5))?;
        Ok((metadata.brokers().len() == count).then_some(()))
    })
    .context("every broker registered and unfenced")
}
