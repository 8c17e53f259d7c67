//! The `create-topics` workload: how long a Kafka client waits for CreateTopics of one topic with
//! many partitions, through a broker of a running cluster.
//!
//! Each trial creates one topic (`<topic>-<run>-<trial>`) with the rdkafka `AdminClient`, timing
//! the request until it returns success. A Ferry broker answers once the controllers committed
//! the topic *and* the broker applied that metadata, so success means the topic is usable on
//! that broker. Untimed by the goal, but reported: how long until a metadata request shows all
//! partitions with a leader, and how long DeleteTopics takes. Each topic is deleted before the
//! next trial, and its disappearance from metadata awaited.
//!
//! The admin client connects (and fetches metadata) before the first trial, so no trial pays
//! for connection set-up.
//!
//! Verification: every create and delete succeeded, and metadata showed the topic with exactly
//! the requested partitions and replication factor, every partition with a leader.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka;
use crate::report::{NamedLatency, Report, latency_histogram};
use crate::workload::Workload;

/// How long an admin request may take before the run gives up on it.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Pause between metadata polls while waiting for a topic to appear or disappear.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Options of a create-topics run.
#[derive(Debug, Clone)]
pub struct CreateTopicsOptions {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Prefix of the topic names.
    pub topic: String,
    /// Partitions of each created topic.
    pub partitions: i32,
    /// Replication factor of each created topic.
    pub replication_factor: i32,
    /// Number of create/delete rounds.
    pub trials: u32,
}

/// The create-topics workload. See the module docs.
pub struct CreateTopics {
    options: CreateTopicsOptions,
    admin: Option<AdminClient<DefaultClientContext>>,
    metadata: Option<BaseConsumer>,
    brokers: usize,
    violations: Vec<String>,
}

impl CreateTopics {
    /// A create-topics workload; connects in [`Workload::prepare`].
    pub fn new(options: CreateTopicsOptions) -> CreateTopics {
        CreateTopics {
            options,
            admin: None,
            metadata: None,
            brokers: 0,
            violations: Vec::new(),
        }
    }
}

/// What metadata says about a topic.
#[derive(Debug, PartialEq)]
enum TopicState {
    /// Unknown to the broker.
    Absent,
    /// Known, with this many partitions, of which `led` have a leader; `replicas` is the
    /// smallest replica count of any partition.
    Present {
        partitions: usize,
        led: usize,
        replicas: usize,
    },
}

/// The topic as a metadata request shows it.
fn topic_state(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<TopicState> {
    let metadata = consumer
        .fetch_metadata(Some(topic), kafka::REQUEST_TIMEOUT)
        .with_context(|| format!("fetching metadata for {topic}"))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(TopicState::Absent);
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(TopicState::Absent);
    }
    let partitions = found.partitions();
    Ok(TopicState::Present {
        partitions: partitions.len(),
        led: partitions.iter().filter(|p| p.leader() >= 0).count(),
        replicas: partitions
            .iter()
            .map(|p| p.replicas().len())
            .min()
            .unwrap_or(0),
    })
}

/// Polls metadata until `done` holds for the topic's state or `timeout` passes; returns the
/// last state seen.
fn wait_for(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&TopicState) -> bool,
) -> anyhow::Result<TopicState> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = topic_state(consumer, topic)?;
        if done(&state) || Instant::now() >= deadline {
            return Ok(state);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

impl Workload for CreateTopics {
    fn name(&self) -> &'static str {
        "create-topics"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.options.partitions > 0, "at least one partition");
        anyhow::ensure!(self.options.trials > 0, "at least one trial");
        let admin: AdminClient<DefaultClientContext> =
            kafka::client_config(&self.options.bootstrap, &[])
                .set("request.timeout.ms", ADMIN_TIMEOUT.as_millis().to_string())
                .create()
                .context("creating an admin client")?;
        // Warm up: connect and learn the cluster before anything is timed.
        let metadata = admin
            .inner()
            .fetch_metadata(None, kafka::REQUEST_TIMEOUT)
            .context("fetching cluster metadata")?;
        self.brokers = metadata.brokers().len();
        anyhow::ensure!(
            self.brokers >= self.options.replication_factor as usize,
            "replication factor {} needs at least that many brokers; metadata shows {}",
            self.options.replication_factor,
            self.brokers
        );
        self.metadata = Some(kafka::metadata_consumer(&self.options.bootstrap)?);
        self.admin = Some(admin);
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let admin = self.admin.as_ref().context("not prepared")?;
        let consumer = self.metadata.as_ref().context("not prepared")?;
        let options = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let partitions = self.options.partitions;
        let replication = self.options.replication_factor;
        let mut creates = latency_histogram();
        let mut visible = latency_histogram();
        let mut deletes = latency_histogram();
        let mut errors = 0;
        let start = Instant::now();
        for trial in 1..=self.options.trials {
            let name = format!("{}-{run}-{trial}", self.options.topic);
            let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(replication));

            let begun = Instant::now();
            let created = futures::executor::block_on(admin.create_topics([&topic], &options))
                .with_context(|| format!("creating {name}"))?;
            let create_time = begun.elapsed();
            if let Some(Err((_, code))) = created.into_iter().next() {
                errors += 1;
                self.violations
                    .push(format!("trial {trial}: creating {name} failed: {code}"));
                continue;
            }
            creates.saturating_record(create_time.as_micros() as u64);

            let wanted = partitions as usize;
            let state = wait_for(consumer, &name, ADMIN_TIMEOUT, |state| {
                matches!(state, TopicState::Present { partitions, led, .. }
                    if *partitions == wanted && *led == wanted)
            })?;
            let visible_time = begun.elapsed();
            let expected = TopicState::Present {
                partitions: wanted,
                led: wanted,
                replicas: replication as usize,
            };
            if state == expected {
                visible.saturating_record(visible_time.as_micros() as u64);
            } else {
                self.violations.push(format!(
                    "trial {trial}: {name} shows {state:?} in metadata, expected {expected:?}"
                ));
            }

            let begun = Instant::now();
            let deleted = futures::executor::block_on(admin.delete_topics(&[&name], &options))
                .with_context(|| format!("deleting {name}"))?;
            let delete_time = begun.elapsed();
            if let Some(Err((_, code))) = deleted.into_iter().next() {
                errors += 1;
                self.violations
                    .push(format!("trial {trial}: deleting {name} failed: {code}"));
                continue;
            }
            deletes.saturating_record(delete_time.as_micros() as u64);
            let state = wait_for(consumer, &name, ADMIN_TIMEOUT, |state| {
                *state == TopicState::Absent
            })?;
            if state != TopicState::Absent {
                self.violations.push(format!(
                    "trial {trial}: {name} still in metadata after delete: {state:?}"
                ));
            }
            tracing::info!(
                trial,
                create_ms = create_time.as_secs_f64() * 1e3,
                visible_ms = visible_time.as_secs_f64() * 1e3,
                delete_ms = delete_time.as_secs_f64() * 1e3,
                "create-topics"
            );
        }
        let elapsed = start.elapsed();
        let mut report = Report::new(self.name(), creates.len(), 0, elapsed);
        report.setting("bootstrap", &self.options.bootstrap);
        report.setting("partitions", partitions);
        report.setting("replication_factor", replication);
        report.setting("trials", self.options.trials);
        report.setting("brokers", self.brokers);
        report.latencies = [
            NamedLatency::new("CreateTopics request -> success", &creates),
            NamedLatency::new(
                "CreateTopics request -> all partitions led in metadata",
                &visible,
            ),
            NamedLatency::new("DeleteTopics request -> success", &deletes),
        ]
        .into_iter()
        .flatten()
        .collect();
        report.errors = errors;
        Ok(report)
    }

    fn verify(&mut self, report: &Report) -> anyhow::Result<Vec<String>> {
        let mut violations = std::mem::take(&mut self.violations);
        if report.messages < u64::from(self.options.trials) {
            violations.push(format!(
                "{} of {} creates succeeded",
                report.messages, self.options.trials
            ));
        }
        Ok(violations)
    }
}
