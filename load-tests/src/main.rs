//! `ferry-load`: benchmark workloads against a running Ferry (or any Kafka) broker.
//!
//! A benchmark, not a test: numbers are reported, never asserted. What *is* checked is that the
//! work happened — every produced message acknowledged and appended, every consumed message in
//! order with no gaps — and a failed check makes the process exit non-zero.
//!
//! ```text
//! ferry-load produce --bootstrap 127.0.0.1:9092 --acks 1 --partitions 3 --duration-secs 20
//! ferry-load consume --bootstrap 127.0.0.1:9092
//! ferry-load disk --bytes 1000000000 --disk-dir /var/lib/ferry
//! ferry-load bench --bootstrap 127.0.0.1:9092 --disk-dir /var/lib/ferry --duration-secs 20
//! ferry-load controller-failover --ferry-bin target/release/ferry --trials 20
//! ferry-load create-topics --bootstrap 127.0.0.1:9092 --partitions 1000 --replication-factor 3
//! ferry-load metadata-image --partitions 1000000 --topics 1000 --brokers 60
//! ferry-load replication --ferry-bin target/release/ferry --duration-secs 20 --trials 5
//! ferry-load groups --ferry-bin target/release/ferry --rate 1000 --duration-secs 20 --trials 5
//! ```
//!
//! `groups` starts its own cluster the same way, then measures end-to-end latency (produce to a
//! consumer-group member, against a manually assigned consumer in the same run) and the time a
//! 3-member group takes to rebalance when one member leaves and when one joins.
//!
//! `replication` starts its own cluster (3 controllers, 3 brokers), produces to a topic of
//! replication factor 1 with acks=1 and to one of replication factor 3 with acks=all in the
//! same run (the ratio is the cost of replication), then kills partition leaders with kill -9
//! and times until a new leader is in Metadata.
//!
//! `bench` starts nothing itself: it runs produce, then consume of exactly what was produced (from
//! the page cache), then the disk baseline with the same volume, and prints the ratios against
//! the goals (produce ≥ ½ the disk's sequential-write rate, consume ≥ 2× produce). Traffic goes
//! only to the given bootstrap servers.
//!
//! The metadata-quorum workloads: `controller-failover` starts its own controller quorum (real
//! `ferry node` processes on loopback) and kills its leader again and again; `create-topics`
//! times CreateTopics through a broker of a running cluster; `metadata-image` builds, encodes,
//! writes and loads a large metadata snapshot in-process.

mod cluster;
mod consume;
mod create_topics;
mod disk;
mod failover;
mod groups;
mod kafka;
mod metadata_image;
mod payload;
mod produce;
mod provision;
mod replication;
mod report;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::consume::{Consume, ConsumeOptions, StartAt};
use crate::create_topics::{CreateTopics, CreateTopicsOptions};
use crate::disk::{Disk, DiskOptions};
use crate::failover::{ControllerFailover, FailoverOptions};
use crate::metadata_image::{ImageBench, ImageOptions};
use crate::produce::{Acks, Compression, DEFAULT_MAX_IN_FLIGHT, Produce, ProduceOptions};
use crate::provision::{Provision, ProvisionOptions};
use crate::report::{Ratio, Report};

/// Goal: produce MB/s at least this fraction of the disk's sequential-write rate (with fsync).
const PRODUCE_TO_DISK_GOAL: f64 = 0.5;

/// Goal: consume MB/s (from the page cache) at least this multiple of produce MB/s.
const CONSUME_TO_PRODUCE_GOAL: f64 = 2.0;

/// Command line of `ferry-load`.
#[derive(Debug, Parser)]
#[command(
    name = "ferry-load",
    version,
    about = "Benchmark workloads against a Ferry broker"
)]
struct Cli {
    /// Print reports as JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// The workload to run.
    #[command(subcommand)]
    command: Command,
}

/// Workloads.
#[derive(Debug, Subcommand)]
enum Command {
    /// Produce fixed-size messages and report throughput and produce latency.
    Produce {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        produce: ProduceArgs,
    },
    /// Read a topic from the beginning up to its current end and report throughput.
    Consume {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        consume: ConsumeArgs,
    },
    /// Measure the disk's sequential-write rate by writing a temporary file.
    Disk {
        /// Bytes to write.
        #[arg(long)]
        bytes: u64,
        #[command(flatten)]
        disk: DiskArgs,
    },
    /// Produce, consume what was produced, write the same volume to disk; print ratios.
    Bench {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        produce: ProduceArgs,
        #[command(flatten)]
        disk: DiskArgs,
        /// Give up consuming after this many seconds.
        #[arg(long, default_value_t = 300)]
        consume_timeout_secs: u64,
        /// Extra librdkafka consumer setting NAME=VALUE (repeatable).
        #[arg(long = "consumer-config", value_name = "NAME=VALUE", value_parser = kafka::parse_setting)]
        consumer_config: Vec<(String, String)>,
    },
    /// Start a controller quorum, kill its leader repeatedly, time until a write commits.
    ControllerFailover(FailoverArgs),
    /// Time CreateTopics (then DeleteTopics) of one many-partition topic through a broker.
    CreateTopics(CreateTopicsArgs),
    /// Build a large metadata image in-process; time encode, write+fsync, read+decode.
    MetadataImage(ImageArgs),
    /// Start 3 controllers and 3 brokers; produce RF=1 acks=1 vs RF=3 acks=all; time leader
    /// failover after kill -9.
    Replication(ReplicationArgs),
    /// Through a control plane (e.g. `ferry dev`): time CreateCluster to ACTIVE by step, API
    /// latency under concurrent clients, and DeleteCluster to gone.
    Provision(ProvisionArgs),
    /// Start 3 controllers and 3 brokers; end-to-end latency through a consumer group vs a
    /// manually assigned consumer; rebalance time of a 3-member group.
    Groups(GroupsArgs),
}

/// Flags of `groups`.
#[derive(Debug, Clone, Args)]
struct GroupsArgs {
    /// The `ferry` binary to start the nodes with.
    #[arg(long, env = "FERRY_BIN")]
    ferry_bin: PathBuf,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// Messages per second in the latency phases.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds each latency phase produces.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Rebalance trials (each: one member leaves, one joins).
    #[arg(long, default_value_t = 5)]
    trials: u32,
    /// The consumers' heartbeat.interval.ms (librdkafka's default 3000).
    #[arg(long, default_value_t = 3_000)]
    heartbeat_interval_ms: u64,
    /// The consumers' session.timeout.ms (librdkafka's default 45000).
    #[arg(long, default_value_t = 45_000)]
    session_timeout_ms: u64,
    /// The brokers' group.initial.rebalance.delay.ms (Kafka's default 3000).
    #[arg(long, default_value_t = 3_000)]
    initial_rebalance_delay_ms: u64,
    /// Parent directory of the nodes' temporary data directories.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the data directories and node logs after the run.
    #[arg(long)]
    keep_data: bool,
}

/// Flags of `replication`.
#[derive(Debug, Clone, Args)]
struct ReplicationArgs {
    /// The `ferry` binary to start the nodes with.
    #[arg(long, env = "FERRY_BIN")]
    ferry_bin: PathBuf,
    /// Producer settings of both produce runs (`--acks` is ignored: the RF=1 run uses 1, the
    /// RF=3 run all).
    #[command(flatten)]
    produce: ProduceArgs,
    /// Leader kills.
    #[arg(long, default_value_t = 5)]
    trials: u32,
    /// `broker.session.timeout.ms` of the cluster (Kafka's default 9000): how long the
    /// controller waits for a silent broker before fencing it and moving its leadership.
    #[arg(long, default_value_t = 9_000)]
    session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` of the cluster (Kafka's default 2000).
    #[arg(long, default_value_t = 2_000)]
    heartbeat_interval_ms: u64,
    /// Parent directory of the nodes' temporary data directories.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the data directories and node logs after the run.
    #[arg(long)]
    keep_data: bool,
}

/// Flags of `provision`.
#[derive(Debug, Clone, Args)]
struct ProvisionArgs {
    /// The control plane's API URL.
    #[arg(long, env = "FERRY_API", default_value = "http://127.0.0.1:7070")]
    api: String,
    /// A file holding a token with the admin role; without it the token is taken from the
    /// FERRY_TOKEN environment variable (`ferry dev` prints one), never from a flag.
    #[arg(long, env = "FERRY_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Brokers per cluster.
    #[arg(long, default_value_t = 3)]
    brokers: u32,
    /// Controllers per cluster.
    #[arg(long, default_value_t = 3)]
    controllers: u32,
    /// Zones to spread over (`ferry dev`'s by default).
    #[arg(long, value_delimiter = ',', default_value = "zone-a,zone-b,zone-c")]
    zones: Vec<String>,
    /// Create/delete rounds.
    #[arg(long, default_value_t = 3)]
    trials: u32,
    /// Concurrent API clients while each cluster exists.
    #[arg(long, default_value_t = 50)]
    api_clients: u32,
    /// GetCluster and ListClusters calls per client per trial.
    #[arg(long, default_value_t = 100)]
    api_requests: u32,
    /// Give up on one creation or deletion after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// Flags of `controller-failover`.
#[derive(Debug, Clone, Args)]
struct FailoverArgs {
    /// The `ferry` binary to start the controllers with.
    #[arg(long, env = "FERRY_BIN")]
    ferry_bin: PathBuf,
    /// Number of kills.
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// Number of controllers in the quorum.
    #[arg(long, default_value_t = 3)]
    voters: i32,
    /// Parent directory of the controllers' temporary data directories (default: the system
    /// temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the data directories and node logs after the run.
    #[arg(long)]
    keep_data: bool,
    /// Milliseconds between polls of the surviving controllers after a kill.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Timeout of each gRPC call in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    call_timeout_ms: u64,
    /// Give up when no write commits this many seconds after a kill.
    #[arg(long, default_value_t = 30)]
    trial_timeout_secs: u64,
}

/// Flags of `create-topics`.
#[derive(Debug, Clone, Args)]
struct CreateTopicsArgs {
    /// Bootstrap servers of a running cluster, host:port[,host:port...].
    #[arg(long, env = "FERRY_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Prefix of the created topics' names.
    #[arg(long, default_value = "ferry-load-create")]
    topic: String,
    /// Partitions of the created topic.
    #[arg(long, default_value_t = 1_000)]
    partitions: i32,
    /// Replication factor of the created topic.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// Number of create/delete rounds.
    #[arg(long, default_value_t = 5)]
    trials: u32,
}

/// Flags of `metadata-image`.
#[derive(Debug, Clone, Args)]
struct ImageArgs {
    /// Total partitions in the image.
    #[arg(long, default_value_t = 1_000_000)]
    partitions: u64,
    /// Topics the partitions are spread over.
    #[arg(long, default_value_t = 1_000)]
    topics: u64,
    /// Registered brokers.
    #[arg(long, default_value_t = 60)]
    brokers: i32,
    /// Replicas per partition.
    #[arg(long, default_value_t = 3)]
    replication_factor: i32,
    /// Directory for the snapshot file (default: the system temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl FailoverArgs {
    fn options(&self) -> FailoverOptions {
        FailoverOptions {
            ferry_bin: self.ferry_bin.clone(),
            trials: self.trials,
            voters: self.voters,
            data_parent: self.data_dir.clone(),
            keep_data: self.keep_data,
            poll_interval: Duration::from_millis(self.poll_ms),
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            trial_timeout: Duration::from_secs(self.trial_timeout_secs),
            catch_up_timeout: Duration::from_secs(60),
        }
    }
}

/// Where the broker is.
#[derive(Debug, Clone, Args)]
struct ClientArgs {
    /// Bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "FERRY_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic to use.
    #[arg(long, default_value = "ferry-load")]
    topic: String,
}

/// Producer settings.
#[derive(Debug, Clone, Args)]
struct ProduceArgs {
    /// Partitions to create the topic with, if it does not exist.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Size of each message value in bytes (at least 24, the payload header).
    #[arg(long, default_value_t = 1024)]
    message_bytes: usize,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "1")]
    acks: Acks,
    /// librdkafka batch.size: bytes per partition batch.
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: usize,
    /// librdkafka linger.ms: how long a batch may wait to fill.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Compression codec.
    #[arg(long, value_enum, default_value = "none")]
    compression: Compression,
    /// Stop sending after this many seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Stop sending after this many messages (whichever limit comes first).
    #[arg(long)]
    messages: Option<u64>,
    /// Most messages sent but not yet acknowledged.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Pace sending at this many messages per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    /// Extra librdkafka producer setting NAME=VALUE (repeatable).
    #[arg(long = "producer-config", value_name = "NAME=VALUE", value_parser = kafka::parse_setting)]
    producer_config: Vec<(String, String)>,
}

/// Consumer settings.
#[derive(Debug, Clone, Args)]
struct ConsumeArgs {
    /// Read at most this many messages.
    #[arg(long)]
    messages: Option<u64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Do not check payloads for the header `ferry-load produce` writes.
    #[arg(long)]
    no_check_payloads: bool,
    /// Extra librdkafka consumer setting NAME=VALUE (repeatable).
    #[arg(long = "consumer-config", value_name = "NAME=VALUE", value_parser = kafka::parse_setting)]
    consumer_config: Vec<(String, String)>,
}

/// Where the disk baseline writes.
#[derive(Debug, Clone, Args)]
struct DiskArgs {
    /// Directory for the baseline's temporary file: pass the broker's data directory to measure
    /// the same disk (default: the system temporary directory).
    #[arg(long)]
    disk_dir: Option<PathBuf>,
}

impl ProduceArgs {
    fn options(&self, client: &ClientArgs) -> ProduceOptions {
        ProduceOptions {
            bootstrap: client.bootstrap.clone(),
            topic: client.topic.clone(),
            partitions: self.partitions,
            message_bytes: self.message_bytes,
            acks: self.acks,
            batch_size: self.batch_size,
            linger_ms: self.linger_ms,
            compression: self.compression,
            duration: Duration::from_secs(self.duration_secs),
            messages: self.messages,
            max_in_flight: self.max_in_flight,
            rate: self.rate,
            client_config: self.producer_config.clone(),
        }
    }
}

impl DiskArgs {
    fn options(&self, bytes: u64) -> DiskOptions {
        DiskOptions {
            dir: self.disk_dir.clone().unwrap_or_else(std::env::temp_dir),
            bytes,
        }
    }
}

/// The output of `bench`.
#[derive(Debug, Serialize)]
struct BenchReport {
    reports: Vec<Report>,
    ratios: Vec<Ratio>,
}

/// The bench ratios from its three reports.
fn bench_ratios(produce: &Report, consume: &Report, disk: &Report) -> Vec<Ratio> {
    let (disk_cached, disk_synced) = disk::rates(disk);
    vec![
        Ratio::new(
            "produce MB/s / disk MB/s (with final fsync)",
            produce.mb_per_sec,
            disk_synced,
            Some(PRODUCE_TO_DISK_GOAL),
        ),
        Ratio::new(
            "consume MB/s / produce MB/s",
            consume.mb_per_sec,
            produce.mb_per_sec,
            Some(CONSUME_TO_PRODUCE_GOAL),
        ),
        Ratio::new(
            "produce MB/s / disk MB/s (page cache, no fsync)",
            produce.mb_per_sec,
            disk_cached,
            None,
        ),
    ]
}

fn run_bench(
    client: &ClientArgs,
    produce_args: &ProduceArgs,
    disk_args: &DiskArgs,
    consume_timeout: Duration,
    consumer_config: Vec<(String, String)>,
) -> anyhow::Result<BenchReport> {
    let mut produce = Produce::new(produce_args.options(client));
    let produce_report = workload::run(&mut produce)?;
    let outcome = produce.outcome();

    let mut consume = Consume::new(ConsumeOptions {
        bootstrap: client.bootstrap.clone(),
        topic: client.topic.clone(),
        start: StartAt::Offsets(outcome.start_offsets.clone()),
        messages: None,
        timeout: consume_timeout,
        expect_run: Some(outcome.run),
        check_payloads: true,
        client_config: consumer_config,
    });
    let consume_report = workload::run(&mut consume)?;

    let mut disk = Disk::new(disk_args.options(outcome.bytes));
    let disk_report = workload::run(&mut disk)?;

    let ratios = bench_ratios(&produce_report, &consume_report, &disk_report);
    Ok(BenchReport {
        reports: vec![produce_report, consume_report, disk_report],
        ratios,
    })
}

fn run_replication(args: &ReplicationArgs) -> anyhow::Result<BenchReport> {
    use crate::produce::Acks as A;
    use crate::replication::{
        FailoverOptions as LeaderFailoverOptions, LeaderFailover, create_topic, wait_for_brokers,
    };
    let mut cluster = cluster::Quorum::plan(
        &args.ferry_bin,
        3,
        "ferry-load-replication",
        args.data_dir.as_deref(),
    )?;
    cluster.add_brokers(&["a", "b", "c"])?;
    cluster.set(&[
        &format!("broker.session.timeout.ms={}", args.session_timeout_ms),
        &format!(
            "broker.heartbeat.interval.ms={}",
            args.heartbeat_interval_ms
        ),
    ]);
    if args.keep_data {
        eprintln!("node data and logs in {}", cluster.keep().display());
    }
    cluster.start_all()?;
    let bootstrap = cluster.bootstrap();
    wait_for_brokers(&bootstrap, 3)?;
    let partitions = args.produce.partitions;
    create_topic(&bootstrap, "rf1", partitions, 1, &[])?;
    create_topic(
        &bootstrap,
        "rf3",
        partitions,
        3,
        &[("min.insync.replicas", "2")],
    )?;

    let mut runs = Vec::new();
    for (topic, acks, name) in [
        ("rf1", A::Leader, "produce RF=1 acks=1"),
        ("rf3", A::All, "produce RF=3 acks=all"),
    ] {
        let client = ClientArgs {
            bootstrap: bootstrap.clone(),
            topic: topic.to_string(),
        };
        let mut produce = args.produce.clone();
        produce.acks = acks;
        let mut report = workload::run(&mut Produce::new(produce.options(&client)))?;
        report.workload = name.to_string();
        runs.push(report);
    }
    let failover = workload::run(&mut LeaderFailover::new(
        &mut cluster,
        LeaderFailoverOptions {
            topic: "rf3".into(),
            trials: args.trials,
            session_timeout_ms: args.session_timeout_ms,
        },
    ))?;
    let ratios = replication_ratios(&runs[0], &runs[1]);
    runs.push(failover);
    Ok(BenchReport {
        reports: runs,
        ratios,
    })
}

fn run_groups(args: &GroupsArgs) -> anyhow::Result<BenchReport> {
    use crate::groups::{GroupLatency, GroupOptions, Rebalance};
    let mut cluster = cluster::Quorum::plan(
        &args.ferry_bin,
        3,
        "ferry-load-groups",
        args.data_dir.as_deref(),
    )?;
    cluster.add_brokers(&["a", "b", "c"])?;
    cluster.set(&[&format!(
        "group.initial.rebalance.delay.ms={}",
        args.initial_rebalance_delay_ms
    )]);
    if args.keep_data {
        eprintln!("node data and logs in {}", cluster.keep().display());
    }
    cluster.start_all()?;
    let bootstrap = cluster.bootstrap();
    replication::wait_for_brokers(&bootstrap, 3)?;
    let options = GroupOptions {
        bootstrap,
        partitions: args.partitions,
        rate: args.rate,
        duration: Duration::from_secs(args.duration_secs),
        trials: args.trials,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        session_timeout_ms: args.session_timeout_ms,
    };
    let mut latency = GroupLatency::new(options.clone());
    let latency_report = workload::run(&mut latency)?;
    let mut rebalance = Rebalance::new(options);
    let mut rebalance_report = workload::run(&mut rebalance)?;
    rebalance_report.setting(
        "group.initial.rebalance.delay.ms",
        args.initial_rebalance_delay_ms,
    );
    let mut ratios = latency.ratios();
    ratios.extend(rebalance.ratios());
    Ok(BenchReport {
        reports: vec![latency_report, rebalance_report],
        ratios,
    })
}

/// RF=3 acks=all against RF=1 acks=1: throughput and latency percentiles.
fn replication_ratios(rf1: &Report, rf3: &Report) -> Vec<Ratio> {
    let mut ratios = vec![Ratio::new(
        "produce MB/s, RF=3 acks=all / RF=1 acks=1",
        rf3.mb_per_sec,
        rf1.mb_per_sec,
        None,
    )];
    if let (Some(a), Some(b)) = (&rf3.latency, &rf1.latency) {
        for (name, x, y) in [
            ("p50", a.p50_us, b.p50_us),
            ("p99", a.p99_us, b.p99_us),
            ("p99.9", a.p999_us, b.p999_us),
        ] {
            ratios.push(Ratio::new(
                format!("produce latency {name}, RF=3 acks=all / RF=1 acks=1"),
                x as f64,
                y as f64,
                None,
            ));
        }
    }
    ratios
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn exit_code(verified: bool) -> ExitCode {
    if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The API token from `file`, else from FERRY_TOKEN: never from the command line, where any
/// local user could read it.
fn provision_token(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let token = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?,
        None => std::env::var("FERRY_TOKEN")
            .context("give the API token with FERRY_TOKEN or --token-file")?,
    };
    Ok(token.trim().to_string())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let report = match cli.command {
        Command::Produce { client, produce } => {
            workload::run(&mut Produce::new(produce.options(&client)))?
        }
        Command::Consume { client, consume } => workload::run(&mut Consume::new(ConsumeOptions {
            bootstrap: client.bootstrap,
            topic: client.topic,
            start: StartAt::Beginning,
            messages: consume.messages,
            timeout: Duration::from_secs(consume.timeout_secs),
            expect_run: None,
            check_payloads: !consume.no_check_payloads,
            client_config: consume.consumer_config,
        }))?,
        Command::Disk { bytes, disk } => workload::run(&mut Disk::new(disk.options(bytes)))?,
        Command::ControllerFailover(args) => {
            workload::run(&mut ControllerFailover::new(args.options())?)?
        }
        Command::CreateTopics(args) => {
            workload::run(&mut CreateTopics::new(CreateTopicsOptions {
                bootstrap: args.bootstrap,
                topic: args.topic,
                partitions: args.partitions,
                replication_factor: args.replication_factor,
                trials: args.trials,
            }))?
        }
        Command::Provision(args) => workload::run(&mut Provision::new(ProvisionOptions {
            api: args.api,
            token: provision_token(args.token_file.as_deref())?,
            brokers: args.brokers,
            controllers: args.controllers,
            zones: args.zones,
            trials: args.trials,
            api_clients: args.api_clients,
            api_requests: args.api_requests,
            timeout: Duration::from_secs(args.timeout_secs),
        })?)?,
        Command::MetadataImage(args) => workload::run(&mut ImageBench::new(ImageOptions {
            partitions: args.partitions,
            topics: args.topics,
            brokers: args.brokers,
            replication_factor: args.replication_factor,
            dir: args.dir.unwrap_or_else(std::env::temp_dir),
        }))?,
        Command::Replication(args) => {
            return print_bench(&run_replication(&args)?, cli.json);
        }
        Command::Groups(args) => {
            return print_bench(&run_groups(&args)?, cli.json);
        }
        Command::Bench {
            client,
            produce,
            disk,
            consume_timeout_secs,
            consumer_config,
        } => {
            let bench = run_bench(
                &client,
                &produce,
                &disk,
                Duration::from_secs(consume_timeout_secs),
                consumer_config,
            )?;
            return print_bench(&bench, cli.json);
        }
    };
    print_report(&report, cli.json)?;
    Ok(exit_code(report.verified()))
}

/// Prints a multi-report run with its ratios; the exit code says whether every report verified.
fn print_bench(bench: &BenchReport, json: bool) -> anyhow::Result<ExitCode> {
    let verified = bench.reports.iter().all(Report::verified);
    if json {
        println!("{}", serde_json::to_string_pretty(bench)?);
    } else {
        for report in &bench.reports {
            print!("{}", report.to_table());
        }
        println!("== ratios ==");
        for ratio in &bench.ratios {
            println!("{}", ratio.to_line());
        }
    }
    Ok(exit_code(verified))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ferry_load=info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ferry-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn produce_defaults_and_flags() {
        let cli = Cli::try_parse_from(["ferry-load", "produce"]).unwrap();
        let Command::Produce { client, produce } = cli.command else {
            panic!("not produce");
        };
        let options = produce.options(&client);
        assert_eq!(options.message_bytes, 1024);
        assert_eq!(options.acks, Acks::Leader);
        assert_eq!(options.partitions, 3);
        assert_eq!(options.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(options.duration, Duration::from_secs(10));

        let cli = Cli::try_parse_from([
            "ferry-load",
            "--json",
            "produce",
            "--bootstrap",
            "127.0.0.1:1",
            "--acks",
            "all",
            "--compression",
            "lz4",
            "--messages",
            "5",
            "--producer-config",
            "socket.nagle.disable=true",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Produce { client, produce } = cli.command else {
            panic!("not produce");
        };
        let options = produce.options(&client);
        assert_eq!(options.bootstrap, "127.0.0.1:1");
        assert_eq!(options.acks, Acks::All);
        assert_eq!(options.compression, Compression::Lz4);
        assert_eq!(options.messages, Some(5));
        assert_eq!(
            options.client_config,
            [("socket.nagle.disable".to_string(), "true".to_string())]
        );
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(Cli::try_parse_from(["ferry-load", "produce", "--acks", "2"]).is_err());
        assert!(Cli::try_parse_from(["ferry-load", "produce", "--producer-config", "x"]).is_err());
        assert!(
            Cli::try_parse_from(["ferry-load", "disk"]).is_err(),
            "--bytes is required"
        );
    }

    #[test]
    fn metadata_quorum_workload_defaults() {
        let cli =
            Cli::try_parse_from(["ferry-load", "controller-failover", "--ferry-bin", "f"]).unwrap();
        let Command::ControllerFailover(args) = cli.command else {
            panic!("not controller-failover");
        };
        let options = args.options();
        assert_eq!((options.trials, options.voters), (20, 3));
        assert_eq!(options.poll_interval, Duration::from_millis(10));

        let cli = Cli::try_parse_from(["ferry-load", "create-topics"]).unwrap();
        let Command::CreateTopics(args) = cli.command else {
            panic!("not create-topics");
        };
        assert_eq!(
            (args.partitions, args.replication_factor, args.trials),
            (1_000, 1, 5)
        );

        let cli = Cli::try_parse_from(["ferry-load", "metadata-image"]).unwrap();
        let Command::MetadataImage(args) = cli.command else {
            panic!("not metadata-image");
        };
        assert_eq!(
            (args.partitions, args.topics, args.brokers),
            (1_000_000, 1_000, 60)
        );
        assert!(
            Cli::try_parse_from(["ferry-load", "controller-failover"]).is_err()
                || std::env::var_os("FERRY_BIN").is_some(),
            "--ferry-bin is required"
        );
    }

    #[test]
    fn bench_ratios_against_goals() {
        let secs = Duration::from_secs(1);
        let produce = Report::new("produce", 100, 100_000_000, secs);
        let consume = Report::new("consume", 100, 300_000_000, secs);
        let mut disk = Report::new("disk", 0, 100_000_000, secs);
        disk.rates = vec![
            report::Rate::new("page cache", 100_000_000, Duration::from_millis(250)),
            report::Rate::new("with final fsync", 100_000_000, Duration::from_millis(1500)),
        ];
        let ratios = bench_ratios(&produce, &consume, &disk);
        assert!((ratios[0].value - 1.5).abs() < 1e-9);
        assert_eq!(ratios[0].met, Some(true));
        assert!((ratios[1].value - 3.0).abs() < 1e-9);
        assert_eq!(ratios[1].met, Some(true));
        assert!((ratios[2].value - 0.25).abs() < 1e-9);
        assert_eq!(ratios[2].met, None);
    }
}
