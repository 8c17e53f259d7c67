//! The `metadata-image` workload: the size and speed of the controller's metadata snapshot at
//! a large partition count. In-process; no servers.
//!
//! 1. **Build** a [`MetadataImage`] by applying records, as a controller replaying its log would:
//!    `RegisterBroker` + `UnfenceBroker` for every broker (racks `zone-0..2`), then per topic one
//!    batch of a `Topic` record and its `Partition` records, each with `replication_factor`
//!    replicas (consecutive brokers, rotating, so leaders are balanced), ISR = replicas, leader
//!    = first replica. Partitions are spread evenly over the topics.
//! 2. **Encode** it with [`MetadataImage::encode`] (the snapshot format), and **write** the bytes
//!    to a new file followed by `fsync`.
//! 3. **Load** it: read the file back and [`MetadataImage::decode`] it (parse, rebuild the name
//!    index, check the invariants). Load time = read + decode. The file was just written, so
//!    the read comes from the page cache; on a cold start add the disk's read time.
//!
//! Also reported, to show where the time goes: the time to apply the records, and
//! [`MetadataImage::check`] alone (part of decode). Verification: the decoded image equals the
//! built one, with the expected partition count.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_data_plane::controller::{Listener, MetadataImage, Record};
use uuid::Uuid;

use crate::report::{Rate, Report};
use crate::workload::Workload;

/// The cluster id of the built image.
const CLUSTER_ID: &str = "ferry-load-image";

/// Racks the brokers are spread over.
const RACKS: i32 = 3;

/// Largest image the workload builds (10 million partitions), a guard against a mistyped size.
pub const MAX_PARTITIONS: u64 = 10_000_000;

/// Options of a metadata-image run.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Total partitions.
    pub partitions: u64,
    /// Topics they are spread over.
    pub topics: u64,
    /// Registered (unfenced) brokers.
    pub brokers: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
    /// Directory for the snapshot file (deleted afterwards).
    pub dir: PathBuf,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
struct Timings {
    records: u64,
    apply: Duration,
    check: Duration,
    encode: Duration,
    write: Duration,
    fsync: Duration,
    read: Duration,
    decode: Duration,
    bytes: u64,
}

/// The metadata-image workload. See the module docs.
pub struct ImageBench {
    options: ImageOptions,
    built: Option<MetadataImage>,
    decoded: Option<MetadataImage>,
    timings: Timings,
}

impl ImageBench {
    /// A metadata-image workload.
    pub fn new(options: ImageOptions) -> ImageBench {
        ImageBench {
            options,
            built: None,
            decoded: None,
            timings: Timings::default(),
        }
    }
}

/// The records that build the image, in log order, with their offsets: one offset per broker
/// registration, one per unfence, one per topic (its `Topic` and `Partition` records).
pub fn records(options: &ImageOptions) -> impl Iterator<Item = (u64, Record)> + '_ {
    let brokers = options.brokers;
    let registrations = (1..=brokers).map(|id| {
        let offset = id as u64;
        (
            offset,
            Record::RegisterBroker {
                broker_id: id,
                incarnation_id: Uuid::from_u128(0x5eed_0000 + id as u128),
                broker_epoch: offset as i64,
                listeners: vec![Listener {
                    name: "PLAINTEXT".into(),
                    host: format!("broker-{id}.ferry.internal"),
                    port: 9092,
                    security_protocol: "PLAINTEXT".into(),
                }],
                rack: Some(format!("zone-{}", id % RACKS)),
                fenced: true,
            },
        )
    });
    let unfences = (1..=brokers).map(move |id| {
        (
            (brokers + id) as u64,
            Record::UnfenceBroker {
                broker_id: id,
                broker_epoch: id as i64,
            },
        )
    });
    let first_topic_offset = 2 * brokers as u64 + 1;
    let per_topic = options.partitions / options.topics;
    let extra = options.partitions % options.topics;
    let mut first_partition = 0u64;
    let topics = (0..options.topics).flat_map(move |t| {
        let offset = first_topic_offset + t;
        // A fixed, well-spread id per topic (ids are 16 random-looking bytes in a real cluster).
        let topic_id = Uuid::from_u128(
            (t as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
        );
        let count = per_topic + u64::from(t < extra);
        let base = first_partition;
        first_partition += count;
        let topic = Record::Topic {
            name: format!("topic-{t:06}"),
            topic_id,
        };
        let partitions = (0..count).map(move |p| {
            let global = base + p;
            let replicas: Vec<i32> = (0..options.replication_factor)
                .map(|r| ((global + r as u64) % brokers as u64) as i32 + 1)
                .collect();
            Record::Partition {
                topic_id,
                partition: p as i32,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            }
        });
        std::iter::once(topic)
            .chain(partitions)
            .map(move |record| (offset, record))
    });
    registrations.chain(unfences).chain(topics)
}

/// Builds the image from [`records`]; returns it and the number of records applied.
pub fn build(options: &ImageOptions) -> (MetadataImage, u64) {
    let mut image = MetadataImage::new(CLUSTER_ID);
    let mut count = 0;
    for (offset, record) in records(options) {
        image.apply(offset, &record);
        count += 1;
    }
    (image, count)
}

impl Workload for ImageBench {
    fn name(&self) -> &'static str {
        "metadata-image"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        let o = &self.options;
        anyhow::ensure!(o.partitions > 0, "at least one partition");
        anyhow::ensure!(
            o.partitions <= MAX_PARTITIONS,
            "refusing to build more than {MAX_PARTITIONS} partitions"
        );
        anyhow::ensure!(
            (1..=o.partitions).contains(&o.topics),
            "topics must be in 1..=partitions"
        );
        anyhow::ensure!(
            o.partitions / o.topics < i32::MAX as u64,
            "too many partitions per topic"
        );
        anyhow::ensure!(o.brokers > 0, "at least one broker");
        anyhow::ensure!(
            (1..=o.brokers).contains(&o.replication_factor),
            "replication factor must be in 1..=brokers"
        );
        anyhow::ensure!(o.dir.is_dir(), "{} is not a directory", o.dir.display());
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let mut t = Timings::default();
        let start = Instant::now();

        let begun = Instant::now();
        let (image, records) = build(&self.options);
        t.apply = begun.elapsed();
        t.records = records;

        let begun = Instant::now();
        image
            .check()
            .map_err(|e| anyhow::anyhow!("the built image is inconsistent: {e}"))?;
        t.check = begun.elapsed();

        let begun = Instant::now();
        let bytes = image.encode();
        t.encode = begun.elapsed();
        t.bytes = bytes.len() as u64;

        let dir = &self.options.dir;
        let mut file = tempfile::Builder::new()
            .prefix("ferry-load-image-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let begun = Instant::now();
        file.write_all(&bytes).context("writing the snapshot")?;
        t.write = begun.elapsed();
        let begun = Instant::now();
        file.as_file().sync_all().context("fsync of the snapshot")?;
        t.fsync = begun.elapsed();
        drop(bytes);

        let begun = Instant::now();
        let mut read = Vec::new();
        std::fs::File::open(file.path())
            .and_then(|mut f| f.read_to_end(&mut read))
            .context("reading the snapshot back")?;
        t.read = begun.elapsed();

        let begun = Instant::now();
        let decoded = MetadataImage::decode(&read).context("decoding the snapshot")?;
        t.decode = begun.elapsed();
        drop(read);
        file.close().context("removing the snapshot file")?;

        let elapsed = start.elapsed();
        let mut report = Report::new(self.name(), self.options.partitions, t.bytes, elapsed);
        let o = &self.options;
        report.setting("partitions", o.partitions);
        report.setting("topics", o.topics);
        report.setting("brokers", o.brokers);
        report.setting("replication_factor", o.replication_factor);
        report.setting("records", t.records);
        report.setting("dir", o.dir.display());
        report.rates = vec![
            Rate::new("apply records (build)", t.bytes, t.apply),
            Rate::new("check (part of decode)", t.bytes, t.check),
            Rate::new("encode (snapshot bytes)", t.bytes, t.encode),
            Rate::new("write to file", t.bytes, t.write),
            Rate::new("fsync", t.bytes, t.fsync),
            Rate::new(
                "time to write: encode+write+fsync",
                t.bytes,
                t.encode + t.write + t.fsync,
            ),
            Rate::new("read file (page cache)", t.bytes, t.read),
            Rate::new("decode (parse+index+check)", t.bytes, t.decode),
            Rate::new("time to load: read+decode", t.bytes, t.read + t.decode),
        ];
        if let Some(peak) = peak_rss_bytes() {
            report.setting("peak_rss_mb", format!("{:.0}", peak as f64 / 1e6));
        }
        self.built = Some(image);
        self.decoded = Some(decoded);
        self.timings = t;
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        let mut violations = Vec::new();
        let (Some(built), Some(decoded)) = (self.built.take(), self.decoded.take()) else {
            return Ok(vec!["the run produced no image".into()]);
        };
        let expected = self.options.partitions as usize;
        if built.partition_count() != expected {
            violations.push(format!(
                "built image has {} partitions, expected {expected}",
                built.partition_count()
            ));
        }
        if decoded.partition_count() != expected {
            violations.push(format!(
                "decoded image has {} partitions, expected {expected}",
                decoded.partition_count()
            ));
        }
        if decoded != built {
            violations.push("the decoded image differs from the encoded one".into());
        }
        Ok(violations)
    }
}

/// The process's peak resident memory (`VmHWM`), where `/proc` has it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload;

    fn options(partitions: u64, topics: u64) -> ImageOptions {
        ImageOptions {
            partitions,
            topics,
            brokers: 6,
            replication_factor: 3,
            dir: std::env::temp_dir(),
        }
    }

    #[test]
    fn builds_a_consistent_image_with_uneven_topics() {
        let (image, records) = build(&options(10, 3));
        image.check().unwrap();
        assert_eq!(image.partition_count(), 10);
        // 6 registrations + 6 unfences + 3 topics + 10 partitions.
        assert_eq!(records, 6 + 6 + 3 + 10);
        let sizes: Vec<usize> = image.topics().map(|t| t.partitions.len()).collect();
        let mut sorted = sizes.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [3, 3, 4]);
        for topic in image.topics() {
            for partition in &topic.partitions {
                assert_eq!(partition.replicas.len(), 3);
                let distinct: std::collections::BTreeSet<_> = partition.replicas.iter().collect();
                assert_eq!(distinct.len(), 3, "replicas on distinct brokers");
                assert_eq!(partition.leader, partition.replicas[0]);
            }
        }
        // Leaders are balanced: 10 partitions over 6 brokers, at most 2 each.
        for broker in 1..=6 {
            assert!(image.leader_count(broker) <= 2);
        }
    }

    #[test]
    fn runs_and_verifies_at_a_tiny_size() {
        let mut bench = ImageBench::new(options(1_000, 10));
        let report = workload::run(&mut bench).unwrap();
        assert!(report.verified(), "{:?}", report.violations);
        assert_eq!(report.messages, 1_000);
        assert!(report.bytes > 1_000, "a snapshot holds every partition");
        assert_eq!(report.rates.len(), 9);
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            options(0, 1),
            options(10, 0),
            options(10, 11),
            ImageOptions {
                replication_factor: 7,
                ..options(10, 1)
            },
        ] {
            assert!(ImageBench::new(bad).prepare().is_err());
        }
    }
}
