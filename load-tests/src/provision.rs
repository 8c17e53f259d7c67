//! The `provision` workload: how long the control plane takes to make a cluster exist, step by
//! step, and how fast its API answers under concurrent clients.
//!
//! Against a running control plane with agents (e.g. `ferry dev`), each trial:
//!
//! 1. creates a cluster of the given shape and times CreateCluster → ACTIVE (polling its
//!    operation every 50 ms), keeping each step's own duration from the operation;
//! 2. while it exists, runs `api_clients` concurrent clients, each making `api_requests`
//!    GetCluster and as many ListClusters calls back to back, timing every call;
//! 3. deletes it and times DeleteCluster → gone (NOT_FOUND).
//!
//! Verification: every operation succeeded, the cluster reached ACTIVE with every node
//! RUNNING and the asked number of brokers in its bootstrap string, and every API call
//! succeeded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

use crate::report::{NamedLatency, Report, latency_histogram};
use crate::workload::Workload;

/// Pause between polls of an operation or a deletion.
const POLL: Duration = Duration::from_millis(50);

/// Options of a provision run. Its `Debug` output leaves the token out.
#[derive(Clone)]
pub struct ProvisionOptions {
    /// The control plane's API URL.
    pub api: String,
    /// A token with the admin role.
    pub token: String,
    /// Brokers per cluster.
    pub brokers: u32,
    /// Controllers per cluster.
    pub controllers: u32,
    /// Zones to spread over.
    pub zones: Vec<String>,
    /// Create/delete rounds.
    pub trials: u32,
    /// Concurrent API clients during each trial.
    pub api_clients: u32,
    /// GetCluster (and ListClusters) calls per client per trial.
    pub api_requests: u32,
    /// Give up on a creation or deletion after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for ProvisionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let ProvisionOptions {
            api,
            token: _,
            brokers,
            controllers,
            zones,
            trials,
            api_clients,
            api_requests,
            timeout,
        } = self;
        f.debug_struct("ProvisionOptions")
            .field("api", api)
            .field("token", &"<redacted>")
            .field("brokers", brokers)
            .field("controllers", controllers)
            .field("zones", zones)
            .field("trials", trials)
            .field("api_clients", api_clients)
            .field("api_requests", api_requests)
            .field("timeout", timeout)
            .finish()
    }
}

/// The provision workload. See the module docs.
pub struct Provision {
    options: ProvisionOptions,
    runtime: tokio::runtime::Runtime,
    channel: Option<Channel>,
    violations: Vec<String>,
}

impl Provision {
    /// A provision workload; connects in [`Workload::prepare`].
    pub fn new(options: ProvisionOptions) -> anyhow::Result<Provision> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting a tokio runtime")?;
        Ok(Provision {
            options,
            runtime,
            channel: None,
            violations: Vec::new(),
        })
    }
}

fn request<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Records `elapsed` in microseconds.
fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let _ = histogram.record((elapsed.as_micros() as u64).max(1));
}

/// What one trial measured.
struct Trial {
    to_active: Duration,
    steps: Vec<(String, Duration)>,
    get: Histogram<u64>,
    list: Histogram<u64>,
    to_gone: Duration,
    violations: Vec<String>,
}

impl Workload for Provision {
    fn name(&self) -> &'static str {
        "provision"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        let api = self.options.api.clone();
        let channel = self.runtime.block_on(async move {
            Channel::from_shared(api.clone())
                .with_context(|| format!("bad API URL {api}"))?
                .connect()
                .await
                .with_context(|| format!("connecting to {api}"))
        })?;
        self.channel = Some(channel);
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let channel = self.channel.clone().context("prepare first")?;
        let mut to_active = latency_histogram();
        let mut to_gone = latency_histogram();
        let mut steps: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
        let mut step_order: Vec<String> = Vec::new();
        let mut get = latency_histogram();
        let mut list = latency_histogram();
        let started = Instant::now();
        let run = std::process::id();
        for trial in 0..self.options.trials {
            let name = format!(
                "load-{}x{}-{run}-{trial}",
                self.options.brokers, self.options.controllers
            );
            let outcome =
                self.runtime
                    .block_on(one_trial(channel.clone(), &self.options, &name))?;
            tracing::info!(
                trial,
                to_active_ms = outcome.to_active.as_millis() as u64,
                to_gone_ms = outcome.to_gone.as_millis() as u64,
                "trial done"
            );
            record(&mut to_active, outcome.to_active);
            record(&mut to_gone, outcome.to_gone);
            for (step, took) in outcome.steps {
                if !step_order.contains(&step) {
                    step_order.push(step.clone());
                }
                record(steps.entry(step).or_insert_with(latency_histogram), took);
            }
            get.add(&outcome.get).ok();
            list.add(&outcome.list).ok();
            self.violations.extend(outcome.violations);
        }
        let mut report = Report::new(
            "provision",
            u64::from(self.options.trials),
            0,
            started.elapsed(),
        );
        let o = &self.options;
        for (k, v) in [
            ("api", o.api.clone()),
            ("brokers", o.brokers.to_string()),
            ("controllers", o.controllers.to_string()),
            ("zones", o.zones.join(",")),
            ("trials", o.trials.to_string()),
            ("api_clients", o.api_clients.to_string()),
            ("api_requests", o.api_requests.to_string()),
        ] {
            report.settings.insert(k.into(), v);
        }
        report.latency = crate::report::LatencySummary::from_histogram(&to_active);
        report
            .latencies
            .extend(NamedLatency::new("create to ACTIVE", &to_active));
        for step in step_order {
            report
                .latencies
                .extend(NamedLatency::new(format!("step: {step}"), &steps[&step]));
        }
        report.latencies.extend(NamedLatency::new(
            format!("GetCluster ({} concurrent clients)", o.api_clients),
            &get,
        ));
        report.latencies.extend(NamedLatency::new(
            format!("ListClusters ({} concurrent clients)", o.api_clients),
            &list,
        ));
        report
            .latencies
            .extend(NamedLatency::new("delete to gone", &to_gone));
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        Ok(std::mem::take(&mut self.violations))
    }
}

/// Creates, measures, and deletes one cluster named `name`.
async fn one_trial(channel: Channel, o: &ProvisionOptions, name: &str) -> anyhow::Result<Trial> {
    let mut clusters = ClusterServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel.clone());
    let mut violations = Vec::new();
    let spec = pb::ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: o.brokers,
        controller_count: o.controllers,
        zones: o.zones.clone(),
        storage_per_broker_bytes: 1 << 30,
        ..Default::default()
    };
    let begin = Instant::now();
    let created = clusters
        .create_cluster(request(
            &o.token,
            pb::CreateClusterRequest {
                spec: Some(spec),
                client_request_id: String::new(),
            },
        ))
        .await
        .map_err(|s| anyhow::anyhow!("CreateCluster: {}", s.message()))?
        .into_inner();
    let cluster_id = created.cluster.context("no cluster")?.id;
    let operation_id = created.operation.context("no operation")?.id;
    let operation = loop {
        let op = operations
            .get_operation(request(
                &o.token,
                pb::GetOperationRequest {
                    operation_id: operation_id.clone(),
                },
            ))
            .await?
            .into_inner();
        if op.state == pb::OperationState::Succeeded as i32
            || op.state == pb::OperationState::Failed as i32
        {
            break op;
        }
        if begin.elapsed() > o.timeout {
            bail!("{name} not created within {:?}", o.timeout);
        }
        tokio::time::sleep(POLL).await;
    };
    let to_active = begin.elapsed();
    if let Some(error) = &operation.error {
        violations.push(format!("{name}: {}: {}", error.code, error.message));
    }
    let steps = operation
        .steps
        .iter()
        .filter(|s| s.started_at > 0 && s.ended_at >= s.started_at)
        .map(|s| {
            (
                s.name.clone(),
                Duration::from_millis((s.ended_at - s.started_at) as u64),
            )
        })
        .collect();
    let cluster = clusters
        .get_cluster(request(
            &o.token,
            pb::GetClusterRequest {
                cluster_id: cluster_id.clone(),
            },
        ))
        .await?
        .into_inner();
    let status = cluster.status.unwrap_or_default();
    if status.state != pb::ClusterState::Active as i32 {
        violations.push(format!("{name} ended in state {}", status.state));
    }
    let not_running = status
        .nodes
        .iter()
        .filter(|n| n.state != pb::NodeState::Running as i32)
        .count();
    if not_running > 0 || status.nodes.len() != (o.brokers + o.controllers) as usize {
        violations.push(format!(
            "{name}: {} nodes, {not_running} not RUNNING",
            status.nodes.len()
        ));
    }
    if status.bootstrap_brokers.split(',').count() != o.brokers as usize {
        violations.push(format!("{name}: bootstrap {:?}", status.bootstrap_brokers));
    }

    // API latency under concurrent clients, each on its own connection.
    let mut tasks = Vec::new();
    for _ in 0..o.api_clients {
        let api = o.api.clone();
        let token = o.token.clone();
        let cluster_id = cluster_id.clone();
        let requests = o.api_requests;
        tasks.push(tokio::spawn(async move {
            let channel = Channel::from_shared(api)?.connect().await?;
            let mut client = ClusterServiceClient::new(channel);
            let (mut get, mut list) = (latency_histogram(), latency_histogram());
            let mut failures = 0u64;
            for _ in 0..requests {
                let t = Instant::now();
                let ok = client
                    .get_cluster(request(
                        &token,
                        pb::GetClusterRequest {
                            cluster_id: cluster_id.clone(),
                        },
                    ))
                    .await
                    .is_ok();
                record(&mut get, t.elapsed());
                let t = Instant::now();
                let ok = ok
                    && client
                        .list_clusters(request(&token, pb::ListClustersRequest::default()))
                        .await
                        .is_ok();
                record(&mut list, t.elapsed());
                failures += u64::from(!ok);
            }
            anyhow::Ok((get, list, failures))
        }));
    }
    let (mut get, mut list) = (latency_histogram(), latency_histogram());
    for task in tasks {
        let (g, l, failures) = task.await??;
        get.add(&g).ok();
        list.add(&l).ok();
        if failures > 0 {
            violations.push(format!("{failures} API calls failed"));
        }
    }

    let begin = Instant::now();
    clusters
        .delete_cluster(request(
            &o.token,
            pb::DeleteClusterRequest {
                cluster_id: cluster_id.clone(),
                current_version: 0,
            },
        ))
        .await
        .map_err(|s| anyhow::anyhow!("DeleteCluster: {}", s.message()))?;
    loop {
        let got = clusters
            .get_cluster(request(
                &o.token,
                pb::GetClusterRequest {
                    cluster_id: cluster_id.clone(),
                },
            ))
            .await;
        if matches!(&got, Err(s) if s.code() == tonic::Code::NotFound) {
            break;
        }
        if begin.elapsed() > o.timeout {
            bail!("{name} not deleted within {:?}", o.timeout);
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Trial {
        to_active,
        steps,
        get,
        list,
        to_gone: begin.elapsed(),
        violations,
    })
}
