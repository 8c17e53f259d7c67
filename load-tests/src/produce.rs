//! The `produce` workload: fixed-size messages through librdkafka as fast as allowed.
//!
//! Messages go round-robin to explicit partitions, each carrying a [`Header`] with a per-run id
//! and a per-partition sequence number, so `consume` can check order and gaps afterwards.
//!
//! Latency is *enqueue → delivery report*: the time is taken just before `send` and carried as
//! the message's delivery opaque; the delivery callback runs on the `ThreadedProducer`'s polling
//! thread, so it is not delayed by the sending loop. Without `--rate` the run is closed-loop and
//! saturating: at most `max_in_flight` messages are outstanding, and latency is mostly time spent
//! queued behind them (Little's law: latency ≈ in-flight ÷ throughput). With `--rate` the
//! producer is paced and the latency reflects the broker at that load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use rdkafka::ClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka;
use crate::payload::{HEADER_LEN, Header, fill_body};
use crate::report::{LatencySummary, Report, latency_histogram};
use crate::workload::Workload;

/// Default bound on messages handed to librdkafka but not yet acknowledged. Large enough to keep
/// several full batches per partition in flight on loopback, small enough that a saturating run's
/// queueing latency stays in the hundreds of milliseconds rather than seconds.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 20_000;

/// How long to wait, after sending stops, for outstanding messages to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// librdkafka's message.timeout.ms for the run: a message not acknowledged by then fails.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Send errors after which the run stops early.
const MAX_SEND_ERRORS: u64 = 1_000;

/// Producer acknowledgement level (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// acks=0: do not wait for the broker.
    #[value(name = "0")]
    None,
    /// acks=1: the leader has appended the batch.
    #[value(name = "1")]
    Leader,
    /// acks=all: every in-sync replica has it.
    All,
}

impl Acks {
    /// The librdkafka value.
    pub fn as_config(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Producer compression codec (librdkafka `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
}

impl Compression {
    /// The librdkafka value.
    pub fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
        }
    }
}

/// Options of a produce run.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic to produce to (created when missing).
    pub topic: String,
    /// Partitions to create the topic with.
    pub partitions: i32,
    /// Size of every message value, header included.
    pub message_bytes: usize,
    /// Acknowledgement level.
    pub acks: Acks,
    /// librdkafka batch.size in bytes.
    pub batch_size: usize,
    /// librdkafka linger.ms.
    pub linger_ms: u64,
    /// Compression codec.
    pub compression: Compression,
    /// Stop sending after this long.
    pub duration: Duration,
    /// Stop sending after this many messages (whichever limit comes first).
    pub messages: Option<u64>,
    /// Bound on unacknowledged messages.
    pub max_in_flight: usize,
    /// Target send rate in messages per second; `None` sends as fast as the bound allows.
    pub rate: Option<u64>,
    /// Extra librdkafka settings, applied last.
    pub client_config: Vec<(String, String)>,
}

/// What a finished produce run hands to later workloads (consume, disk baseline).
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceOutcome {
    /// The run id written into every header.
    pub run: u64,
    /// Each partition's high watermark before the run: where this run's messages start.
    pub start_offsets: Vec<i64>,
    /// Messages acknowledged per partition.
    pub delivered_per_partition: Vec<u64>,
    /// Payload bytes acknowledged.
    pub bytes: u64,
}

/// State shared between the sending loop and the delivery callback.
struct Shared {
    /// Time zero for the delivery opaques (nanoseconds since this instant).
    epoch: Instant,
    /// Bound on messages sent but not yet reported delivered or failed.
    max_in_flight: usize,
    /// Messages sent but not yet reported delivered or failed.
    in_flight: Mutex<InFlight>,
    /// Signalled when `in_flight` drops below the bound while the sender waits.
    slot_freed: Condvar,
    latency: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    delivered_per_partition: Vec<AtomicU64>,
    /// Nanoseconds since `epoch` of the latest delivery report.
    last_delivery_nanos: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// The in-flight count and whether the sending thread is waiting for it to drop.
#[derive(Debug, Default)]
struct InFlight {
    count: usize,
    sender_waiting: bool,
}

/// The result of waiting for an in-flight slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A slot was free at once.
    Free,
    /// The sender had to wait for a delivery report to free one.
    FreedWhileWaiting,
    /// The deadline passed first.
    TimedOut,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Takes an in-flight slot, waiting until `deadline` at most.
    fn acquire(&self, deadline: Instant) -> Slot {
        let mut in_flight = lock(&self.in_flight);
        let mut slot = Slot::Free;
        while in_flight.count >= self.max_in_flight {
            let now = Instant::now();
            if now >= deadline {
                in_flight.sender_waiting = false;
                return Slot::TimedOut;
            }
            slot = Slot::FreedWhileWaiting;
            in_flight.sender_waiting = true;
            in_flight = self
                .slot_freed
                .wait_timeout(in_flight, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        in_flight.count += 1;
        slot
    }

    /// Frees an in-flight slot. Wakes the sender only when it waits: a futex wake per message
    /// would cost the producer a syscall per delivery report.
    fn release(&self) {
        let mut in_flight = lock(&self.in_flight);
        in_flight.count = in_flight.count.saturating_sub(1);
        let wake = in_flight.sender_waiting && in_flight.count < self.max_in_flight;
        if wake {
            in_flight.sender_waiting = false;
        }
        drop(in_flight);
        if wake {
            self.slot_freed.notify_one();
        }
    }

    fn note_error(&self, error: String) {
        lock(&self.first_error).get_or_insert(error);
    }
}

/// The producer's librdkafka context: turns delivery reports into counts and latencies.
struct LoadContext {
    shared: Arc<Shared>,
}

impl ClientContext for LoadContext {}

impl ProducerContext for LoadContext {
    /// Nanoseconds since [`Shared::epoch`] at enqueue.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, enqueued_nanos: usize) {
        let shared = &self.shared;
        let now = shared.nanos();
        shared.last_delivery_nanos.fetch_max(now, Ordering::Relaxed);
        match result {
            Ok(message) => {
                let latency_us = now.saturating_sub(enqueued_nanos as u64) / 1_000;
                lock(&shared.latency).saturating_record(latency_us.max(1));
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = usize::try_from(message.partition())
                    .ok()
                    .and_then(|p| shared.delivered_per_partition.get(p))
                {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err((error, _message)) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format!("delivery failed: {error}"));
            }
        }
        shared.release();
    }
}

/// The produce workload.
pub struct Produce {
    options: ProduceOptions,
    run: u64,
    partitions: i32,
    metadata: Option<BaseConsumer>,
    start_offsets: Vec<i64>,
    sent: u64,
    sent_per_partition: Vec<u64>,
    delivered_per_partition: Vec<u64>,
    failed: u64,
}

impl Produce {
    /// A produce workload with a run id derived from the clock.
    pub fn new(options: ProduceOptions) -> Produce {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_nanos() as u64)
            .unwrap_or(1);
        Produce {
            options,
            run,
            partitions: 0,
            metadata: None,
            start_offsets: Vec::new(),
            sent: 0,
            sent_per_partition: Vec::new(),
            delivered_per_partition: Vec::new(),
            failed: 0,
        }
    }

    /// What the finished run produced, for the consume and disk workloads that follow it.
    pub fn outcome(&self) -> ProduceOutcome {
        ProduceOutcome {
            run: self.run,
            start_offsets: self.start_offsets.clone(),
            delivered_per_partition: self.delivered_per_partition.clone(),
            bytes: self.delivered_per_partition.iter().sum::<u64>()
                * self.options.message_bytes as u64,
        }
    }

    fn producer_config(&self) -> rdkafka::ClientConfig {
        let o = &self.options;
        let mut config = kafka::client_config(&o.bootstrap, &[]);
        config
            .set("acks", o.acks.as_config())
            .set("batch.size", o.batch_size.to_string())
            .set("linger.ms", o.linger_ms.to_string())
            .set("compression.type", o.compression.as_config())
            .set("enable.idempotence", "false")
            // Our own bound is the one that matters; keep librdkafka's above it.
            .set(
                "queue.buffering.max.messages",
                (o.max_in_flight.saturating_mul(2))
                    .min(i32::MAX as usize)
                    .to_string(),
            )
            .set(
                "message.timeout.ms",
                MESSAGE_TIMEOUT.as_millis().to_string(),
            );
        for (name, value) in &o.client_config {
            config.set(name, value);
        }
        config
    }

    fn settings(&self, report: &mut Report) {
        let o = &self.options;
        report.setting("topic", &o.topic);
        report.setting("partitions", self.partitions);
        report.setting("message_bytes", o.message_bytes);
        report.setting("acks", o.acks.as_config());
        report.setting("batch.size", o.batch_size);
        report.setting("linger.ms", o.linger_ms);
        report.setting("compression", o.compression.as_config());
        report.setting("max_in_flight", o.max_in_flight);
        report.setting(
            "rate",
            o.rate.map_or("unlimited".to_string(), |r| format!("{r}/s")),
        );
        for (name, value) in &o.client_config {
            report.setting(name, value);
        }
    }
}

impl Workload for Produce {
    fn name(&self) -> &'static str {
        "produce"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        let o = &self.options;
        anyhow::ensure!(
            o.message_bytes >= HEADER_LEN,
            "--message-bytes must be at least {HEADER_LEN} (the payload header)"
        );
        anyhow::ensure!(o.max_in_flight > 0, "--max-in-flight must be positive");
        anyhow::ensure!(o.partitions > 0, "--partitions must be positive");
        self.partitions = kafka::ensure_topic(&o.bootstrap, &o.topic, o.partitions)?;
        if self.partitions != o.partitions {
            tracing::warn!(
                topic = %o.topic,
                existing = self.partitions,
                requested = o.partitions,
                "topic exists with a different partition count; using the existing one"
            );
        }
        let metadata = kafka::metadata_consumer(&o.bootstrap)?;
        self.start_offsets = kafka::watermarks(&metadata, &o.topic, self.partitions)?
            .into_iter()
            .map(|(_, high)| high)
            .collect();
        self.metadata = Some(metadata);
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let partitions = self.partitions as usize;
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            max_in_flight: self.options.max_in_flight,
            in_flight: Mutex::new(InFlight::default()),
            slot_freed: Condvar::new(),
            latency: Mutex::new(latency_histogram()),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            delivered_per_partition: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            last_delivery_nanos: AtomicU64::new(0),
            first_error: Mutex::new(None),
        });
        let producer: ThreadedProducer<LoadContext> = self
            .producer_config()
            .create_with_context(LoadContext {
                shared: Arc::clone(&shared),
            })
            .context("creating the producer")?;

        let o = &self.options;
        let limit = o.messages.unwrap_or(u64::MAX);
        let mut sequences = vec![0u64; partitions];
        let mut payload = vec![0u8; o.message_bytes];
        fill_body(&mut payload);
        let mut send_errors = 0u64;

        let start = Instant::now();
        let start_nanos = shared.nanos();
        let deadline = start + o.duration;
        let deadline_nanos = start_nanos + o.duration.as_nanos() as u64;
        let mut sent = 0u64;
        while sent < limit && send_errors < MAX_SEND_ERRORS {
            // One clock read per message: it is both the enqueue time and the deadline check.
            let mut now_nanos = shared.nanos();
            if now_nanos >= deadline_nanos {
                break;
            }
            if let Some(rate) = o.rate.filter(|r| *r > 0) {
                let due_nanos = start_nanos + sent.saturating_mul(1_000_000_000) / rate;
                if due_nanos > now_nanos {
                    let wait = due_nanos.min(deadline_nanos) - now_nanos;
                    std::thread::sleep(Duration::from_nanos(wait));
                    continue;
                }
            }
            match shared.acquire(deadline) {
                Slot::Free => {}
                // The message is enqueued only now.
                Slot::FreedWhileWaiting => now_nanos = shared.nanos(),
                Slot::TimedOut => break,
            }
            let partition = (sent % partitions as u64) as usize;
            Header {
                partition: partition as u32,
                run: self.run,
                sequence: sequences[partition],
            }
            .write(&mut payload);
            let mut record: BaseRecord<'_, (), [u8], usize> =
                BaseRecord::with_opaque_to(&o.topic, now_nanos as usize)
                    .partition(partition as i32)
                    .payload(&payload[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => {
                        sequences[partition] += 1;
                        sent += 1;
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        // librdkafka's own queue is full (its bound is set above ours, so this
                        // means its byte bound): give the polling thread a moment.
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((error, _)) => {
                        send_errors += 1;
                        shared.note_error(format!("send failed: {error}"));
                        shared.release();
                        break;
                    }
                }
            }
        }
        let sending_done = Instant::now();
        let flushed = producer.flush(FLUSH_TIMEOUT);
        let last = shared
            .last_delivery_nanos
            .load(Ordering::Relaxed)
            .max(start_nanos);
        let elapsed = Duration::from_nanos(last - start_nanos);
        if let Err(error) = flushed {
            shared.note_error(format!("flush: {error}"));
        }

        self.sent = sent;
        self.sent_per_partition = sequences;
        self.delivered_per_partition = shared
            .delivered_per_partition
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        self.failed = shared.failed.load(Ordering::Relaxed) + send_errors;
        let delivered = shared.delivered.load(Ordering::Relaxed);

        let mut report = Report::new(
            "produce",
            delivered,
            delivered * o.message_bytes as u64,
            elapsed,
        );
        self.settings(&mut report);
        report.latency = LatencySummary::from_histogram(&lock(&shared.latency));
        report.errors = self.failed;
        report.setting(
            "send_secs",
            format!("{:.3}", (sending_done - start).as_secs_f64()),
        );
        if let Some(error) = lock(&shared.first_error).take() {
            report.violations.push(format!("first error: {error}"));
        }
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        let mut violations = Vec::new();
        let delivered: u64 = self.delivered_per_partition.iter().sum();
        if delivered != self.sent {
            violations.push(format!(
                "sent {} messages but {} were acknowledged",
                self.sent, delivered
            ));
        }
        if self.failed > 0 {
            violations.push(format!("{} messages failed", self.failed));
        }
        let metadata = self
            .metadata
            .as_ref()
            .context("verify called before prepare")?;
        let after = kafka::watermarks(metadata, &self.options.topic, self.partitions)?;
        for (partition, ((start, (_, high)), sent)) in self
            .start_offsets
            .iter()
            .zip(&after)
            .zip(&self.sent_per_partition)
            .enumerate()
        {
            let appended = (high - start).max(0) as u64;
            if appended != *sent {
                violations.push(format!(
                    "partition {partition}: sent {sent} messages but the log grew by {appended} \
                     (offsets {start}..{high}); another producer, or lost/duplicated messages"
                ));
            }
        }
        Ok(violations)
    }
}
