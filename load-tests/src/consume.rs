//! The `consume` workload: read a fixed range of a topic with a group-less librdkafka consumer.
//!
//! `prepare` records each partition's watermarks; `execute` assigns every partition from its
//! start offset (the log start, or offsets handed over by a preceding `produce`) and reads until
//! the high watermark recorded in `prepare`, a message limit, or the timeout. Every message is
//! checked as it arrives: offsets must be contiguous, and payloads written by `produce` must carry
//! per-partition sequence numbers without gaps or duplicates.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka;
use crate::payload::{BodyTemplate, Header, SequenceCheck};
use crate::report::Report;
use crate::workload::Workload;

/// How many individual violations are kept; the rest are only counted.
const MAX_VIOLATIONS_KEPT: usize = 100;

/// How many messages may be handled between two checks of the deadline.
const DEADLINE_CHECK_INTERVAL: u32 = 1024;

/// The group id librdkafka requires for `assign`; the group is never joined.
const GROUP_ID: &str = "ferry-load-consume";

/// How long one poll may block before the loop re-checks its deadline.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where each partition is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// Each partition's log start offset.
    Beginning,
    /// Explicit offsets, one per partition (e.g. a `produce` run's start offsets).
    Offsets(Vec<i64>),
}

/// Options of a consume run.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic to read.
    pub topic: String,
    /// Where to start.
    pub start: StartAt,
    /// Read at most this many messages.
    pub messages: Option<u64>,
    /// Give up after this long.
    pub timeout: Duration,
    /// When set, every message must come from this produce run, starting at sequence 0.
    pub expect_run: Option<u64>,
    /// Whether payloads must carry the `produce` header (and body pattern).
    pub check_payloads: bool,
    /// Extra librdkafka settings, applied last.
    pub client_config: Vec<(String, String)>,
}

/// The consume workload.
pub struct Consume {
    options: ConsumeOptions,
    /// (start, end) offsets per partition, recorded in `prepare`.
    ranges: Vec<(i64, i64)>,
    expected: u64,
    received: u64,
    violations: Vec<String>,
    violations_dropped: u64,
}

impl Consume {
    /// A consume workload.
    pub fn new(options: ConsumeOptions) -> Consume {
        Consume {
            options,
            ranges: Vec::new(),
            expected: 0,
            received: 0,
            violations: Vec::new(),
            violations_dropped: 0,
        }
    }

    fn violation(&mut self, text: String) {
        if self.violations.len() < MAX_VIOLATIONS_KEPT {
            self.violations.push(text);
        } else {
            self.violations_dropped += 1;
        }
    }

    fn consumer_config(&self) -> rdkafka::ClientConfig {
        let mut config = kafka::client_config(&self.options.bootstrap, &[]);
        // librdkafka's assign() needs a group id, but nothing here joins the group or commits:
        // partitions are assigned by hand and offsets are never stored.
        config
            .set("group.id", GROUP_ID)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        for (name, value) in &self.options.client_config {
            config.set(name, value);
        }
        config
    }
}

/// The (start, end) range to read per partition, given the watermarks and where to start.
pub fn read_ranges(watermarks: &[(i64, i64)], start: &StartAt) -> anyhow::Result<Vec<(i64, i64)>> {
    if let StartAt::Offsets(offsets) = start {
        anyhow::ensure!(
            offsets.len() == watermarks.len(),
            "{} start offsets for {} partitions",
            offsets.len(),
            watermarks.len()
        );
    }
    Ok(watermarks
        .iter()
        .enumerate()
        .map(|(partition, &(low, high))| {
            let from = match start {
                StartAt::Beginning => low,
                StartAt::Offsets(offsets) => offsets[partition].clamp(low, high),
            };
            (from, high)
        })
        .collect())
}

impl Workload for Consume {
    fn name(&self) -> &'static str {
        "consume"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        let o = &self.options;
        let metadata = kafka::metadata_consumer(&o.bootstrap)?;
        let partitions = kafka::partition_count(&metadata, &o.topic)?
            .with_context(|| format!("topic {} does not exist", o.topic))?;
        let watermarks = kafka::watermarks(&metadata, &o.topic, partitions)?;
        self.ranges = read_ranges(&watermarks, &o.start)?;
        let available: u64 = self.ranges.iter().map(|(s, e)| (e - s) as u64).sum();
        self.expected = available.min(o.messages.unwrap_or(u64::MAX));
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let consumer: BaseConsumer = self
            .consumer_config()
            .create()
            .context("creating the consumer")?;
        let topic = self.options.topic.clone();
        let mut assignment = TopicPartitionList::new();
        for (partition, &(start, end)) in self.ranges.iter().enumerate() {
            if start < end {
                assignment
                    .add_partition_offset(&topic, partition as i32, Offset::Offset(start))
                    .context("building the assignment")?;
            }
        }
        let mut next_offset: Vec<i64> = self.ranges.iter().map(|(start, _)| *start).collect();
        let mut checks: Vec<SequenceCheck> = self
            .ranges
            .iter()
            .map(|_| SequenceCheck::new(self.options.expect_run.is_some()))
            .collect();

        let mut template = BodyTemplate::default();
        let start = Instant::now();
        let deadline = start + self.options.timeout;
        consumer
            .assign(&assignment)
            .context("assigning partitions")?;
        let mut bytes = 0u64;
        let mut errors = 0u64;
        // Reading the clock costs as much as handling a message, so the deadline is checked every
        // DEADLINE_CHECK_INTERVAL messages and whenever a poll comes back empty.
        let mut until_deadline_check = 0u32;
        while self.received < self.expected {
            if until_deadline_check == 0 {
                if Instant::now() >= deadline {
                    self.violation(format!(
                        "timed out after {:?} with {} of {} messages",
                        self.options.timeout, self.received, self.expected
                    ));
                    break;
                }
                until_deadline_check = DEADLINE_CHECK_INTERVAL;
            }
            until_deadline_check -= 1;
            let message = match consumer.poll(POLL_INTERVAL) {
                None => {
                    until_deadline_check = 0;
                    continue;
                }
                Some(Err(error)) => {
                    errors += 1;
                    self.violation(format!("consumer error: {error}"));
                    continue;
                }
                Some(Ok(message)) => message,
            };
            let partition = message.partition() as usize;
            let offset = message.offset();
            let Some(&(_, end)) = self.ranges.get(partition) else {
                self.violation(format!("message from unassigned partition {partition}"));
                continue;
            };
            if offset >= end {
                // Appended after prepare recorded the end; not part of this run.
                continue;
            }
            if offset != next_offset[partition] {
                self.violation(format!(
                    "partition {partition}: expected offset {} but got {offset}",
                    next_offset[partition]
                ));
            }
            next_offset[partition] = offset + 1;
            let payload = message.payload().unwrap_or(&[]);
            bytes += payload.len() as u64;
            self.received += 1;
            if self.options.check_payloads {
                let problem = check_payload(
                    payload,
                    partition,
                    self.options.expect_run,
                    &mut checks[partition],
                    &mut template,
                );
                if let Some(problem) = problem {
                    self.violation(format!("partition {partition} offset {offset}: {problem}"));
                }
            }
        }
        // The loop ends right after the last message (or at the deadline).
        let elapsed = start.elapsed();

        let mut report = Report::new("consume", self.received, bytes, elapsed);
        report.setting("topic", &topic);
        report.setting("partitions", self.ranges.len());
        report.setting("check_payloads", self.options.check_payloads);
        for (name, value) in &self.options.client_config {
            report.setting(name, value);
        }
        report.errors = errors;
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        let mut violations = std::mem::take(&mut self.violations);
        if self.received != self.expected {
            violations.push(format!(
                "read {} messages, expected {}",
                self.received, self.expected
            ));
        }
        if self.violations_dropped > 0 {
            violations.push(format!("... and {} more problems", self.violations_dropped));
        }
        Ok(violations)
    }
}

/// Checks one payload against the `produce` header conventions; `Some(problem)` when it fails.
fn check_payload(
    payload: &[u8],
    partition: usize,
    expect_run: Option<u64>,
    sequence: &mut SequenceCheck,
    template: &mut BodyTemplate,
) -> Option<String> {
    let Some(header) = Header::read(payload) else {
        return Some("payload has no ferry-load header".to_string());
    };
    if header.partition as usize != partition {
        return Some(format!("sent to partition {}", header.partition));
    }
    if let Some(run) = expect_run.filter(|run| *run != header.run) {
        return Some(format!("from run {:#x}, expected {run:#x}", header.run));
    }
    if let Err(problem) = sequence.observe(header) {
        return Some(problem);
    }
    if !template.matches(payload) {
        return Some("payload body is corrupt".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::fill_body;

    #[test]
    fn ranges_from_beginning_and_offsets() {
        let watermarks = [(0, 10), (5, 8), (0, 0)];
        assert_eq!(
            read_ranges(&watermarks, &StartAt::Beginning).unwrap(),
            [(0, 10), (5, 8), (0, 0)]
        );
        assert_eq!(
            read_ranges(&watermarks, &StartAt::Offsets(vec![4, 2, 3])).unwrap(),
            [(4, 10), (5, 8), (0, 0)],
            "offsets are clamped into the watermarks"
        );
        assert!(read_ranges(&watermarks, &StartAt::Offsets(vec![1])).is_err());
    }

    fn payload(partition: u32, run: u64, sequence: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 100];
        Header {
            partition,
            run,
            sequence,
        }
        .write(&mut buf);
        fill_body(&mut buf);
        buf
    }

    #[test]
    fn payload_checks() {
        let mut check = SequenceCheck::new(true);
        let mut template = BodyTemplate::default();
        let mut check_payload = |payload: &[u8], partition, run, check: &mut SequenceCheck| {
            check_payload(payload, partition, run, check, &mut template)
        };
        assert_eq!(
            check_payload(&payload(1, 9, 0), 1, Some(9), &mut check),
            None
        );
        assert_eq!(
            check_payload(&payload(1, 9, 1), 1, Some(9), &mut check),
            None
        );
        assert!(check_payload(&payload(1, 9, 3), 1, Some(9), &mut check).is_some());
        assert!(check_payload(&payload(2, 9, 4), 1, Some(9), &mut check).is_some());
        assert!(check_payload(&payload(1, 8, 0), 1, Some(9), &mut check).is_some());
        assert!(check_payload(b"not ours", 1, None, &mut check).is_some());
        let mut corrupt = payload(1, 9, 4);
        corrupt[50] ^= 0xff;
        assert!(check_payload(&corrupt, 1, Some(9), &mut check).is_some());
    }
}
