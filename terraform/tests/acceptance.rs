//! Acceptance: the real `terraform` binary (1.11) drives terraform-provider-ferry against a
//! real `ferry dev` stack (control plane + three agents in zones zone-a, zone-b, zone-c running real nodes).
//!
//! Binaries:
//! - the provider: this crate's own binary (`CARGO_BIN_EXE_terraform-provider-ferry`), installed
//!   through `dev_overrides` in a CLI config passed as `TF_CLI_CONFIG_FILE` (no registry);
//! - `ferry`: `$FERRY_BIN`, else `ferry` next to the provider in the same target directory.
//!   `cargo test --workspace` builds it (ferry-cli's own tests need it); alone, run
//!   `cargo build -p ferry-cli` first (scripts/test.sh does);
//! - `terraform`: `$TERRAFORM_BIN`, else `terraform` on PATH.
//!
//! Everything started here is stopped when the test ends, pass or fail: `ferry dev` and every
//! `ferry node` under its data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tonic::transport::Channel;

/// How long `ferry dev` may take to print its admin token.
const READY: Duration = Duration::from_secs(90);
/// How long the validation error may take: it is local, so seconds (not a create timeout).
const VALIDATION_FAST: Duration = Duration::from_secs(30);
/// How long node processes may linger after a destroy.
const NODES_GONE: Duration = Duration::from_secs(60);

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-ferry"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn ferry_bin() -> PathBuf {
    let path = std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| provider_dir().join("ferry"));
    assert!(
        path.exists(),
        "no ferry binary at {}: run `cargo build -p ferry-cli` or set FERRY_BIN",
        path.display()
    );
    path
}

fn terraform_bin() -> PathBuf {
    std::env::var_os("TERRAFORM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A base port with 600 free ports above it (three agents x 200).
fn free_range() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for attempt in 0..50u64 {
        let base = 20_000 + ((seed + attempt * 104_729) % 30_000) as u16;
        if (base..base + 600).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no free range of 600 ports");
}

/// `ferry dev` and everything it started; all killed on drop.
struct Dev {
    child: Option<Child>,
    dir: tempfile::TempDir,
    api: String,
    token: String,
}

impl Dev {
    fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let api_port = free_port();
        let mut child = Command::new(ferry_bin())
            .arg("dev")
            .arg("--data-dir")
            .arg(dir.path().join("dev"))
            .args(["--api-port", &api_port.to_string()])
            .args(["--peer-port", &free_port().to_string()])
            .args(["--agent-ports", &free_range().to_string()])
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ferry dev");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(token) = line.trim().strip_prefix("admin token:") {
                    let _ = tx.send(token.trim().to_string());
                }
            }
        });
        let mut dev = Dev {
            child: Some(child),
            dir,
            api: format!("http://127.0.0.1:{api_port}"),
            token: String::new(),
        };
        dev.token = rx
            .recv_timeout(READY)
            .expect("ferry dev prints an admin token");
        dev.wait_for_hosts();
        dev
    }

    /// Waits until the three agents' hosts are registered and healthy.
    fn wait_for_hosts(&self) {
        let deadline = Instant::now() + READY;
        loop {
            let output = Command::new(ferry_bin())
                .args(["host", "list", "--output", "json", "--api", &self.api])
                .env("FERRY_TOKEN", &self.token)
                .output()
                .unwrap();
            let healthy = serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .ok()
                .and_then(|h| {
                    h.as_array().map(|h| {
                        h.iter()
                            .filter(|h| h["health"] == "HOST_HEALTH_HEALTHY")
                            .count()
                    })
                })
                .unwrap_or(0);
            if healthy == 3 {
                return;
            }
            assert!(Instant::now() < deadline, "hosts not healthy: {output:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `ferry node` processes under the stack's directory.
    fn node_pids(&self) -> Vec<u32> {
        let needle = self.dir.path().to_string_lossy().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(" node ") && cmdline.contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }

    async fn clusters(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(
            Channel::from_shared(self.api.clone())
                .unwrap()
                .connect_lazy(),
        )
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    async fn cluster(&self, id: &str) -> Result<pb::Cluster, tonic::Status> {
        let request = self.request(pb::GetClusterRequest {
            cluster_id: id.into(),
        });
        Ok(self
            .clusters()
            .await
            .get_cluster(request)
            .await?
            .into_inner())
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.node_pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// A Terraform working directory using the locally built provider.
struct Workspace {
    dir: PathBuf,
    dev_api: String,
    dev_token: String,
}

impl Workspace {
    fn new(dev: &Dev, name: &str) -> Workspace {
        let dir = dev.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("cli.tfrc"),
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"ferry.dev/ferry/ferry\" = \
                 \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir().display()
            ),
        )
        .unwrap();
        Workspace {
            dir,
            dev_api: dev.api.clone(),
            dev_token: dev.token.clone(),
        }
    }

    fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.join("main.tf"), main_tf).unwrap();
    }

    /// Runs `terraform args...`, bounded by 5 minutes.
    fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new(terraform_bin())
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", self.dir.join("cli.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("FERRY_ENDPOINT", &self.dev_api)
            .env("FERRY_TOKEN", &self.dev_token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run terraform (set TERRAFORM_BIN if it is not on PATH)");
        let deadline = Instant::now() + Duration::from_secs(300);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("terraform {args:?} ran over 5 minutes");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "terraform {args:?} failed:\n{}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    /// `terraform plan -detailed-exitcode`: 0 = no changes, 2 = changes.
    fn plan_exit_code(&self) -> (i32, String) {
        let output = self.run(&["plan", "-no-color", "-detailed-exitcode"]);
        (output.status.code().unwrap_or(-1), text(&output))
    }

    fn output(&self, name: &str) -> String {
        self.ok(&["output", "-raw", name]).trim().to_string()
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The cluster configuration the test evolves.
fn config(name: &str, brokers: u32, deletion_protection: bool) -> String {
    config_with(name, brokers, deletion_protection, true)
}

/// [`config`], with or without a `timeouts` block. Timeouts exist only in the Terraform state,
/// so an import cannot know them: a `timeouts` block in the configuration of an imported
/// cluster plans one state-only update (no API call). The import check leaves it out.
fn config_with(name: &str, brokers: u32, deletion_protection: bool, timeouts: bool) -> String {
    let timeouts = if timeouts {
        "timeouts {\n    create = \"3m\"\n    update = \"3m\"\n    delete = \"3m\"\n  }"
    } else {
        ""
    };
    format!(
        r#"
terraform {{
  required_providers {{
    ferry = {{ source = "ferry.dev/ferry/ferry" }}
  }}
}}

provider "ferry" {{}}

resource "ferry_cluster" "main" {{
  name                = "{name}"
  broker_count        = {brokers}
  zones               = ["zone-a", "zone-b", "zone-c"]
  broker_config       = {{ "num.partitions" = "3" }}
  tags                = {{ team = "payments" }}
  deletion_protection = {deletion_protection}

  {timeouts}
}}

data "ferry_cluster" "by_name" {{
  name = ferry_cluster.main.name
}}

data "ferry_bootstrap_brokers" "main" {{
  cluster_id = ferry_cluster.main.id
}}

output "id" {{ value = ferry_cluster.main.id }}
output "state" {{ value = ferry_cluster.main.state }}
output "bootstrap_brokers" {{ value = ferry_cluster.main.bootstrap_brokers }}
output "data_state" {{ value = data.ferry_cluster.by_name.state }}
output "data_bootstrap_brokers" {{ value = data.ferry_bootstrap_brokers.main.bootstrap_brokers }}
"#
    )
}

async fn produce(bootstrap: &str) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    for i in 0..5 {
        let payload = format!("terraform {i}");
        producer
            .send(
                FutureRecord::<(), _>::to("terraform-acceptance").payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce to {bootstrap}: {e}"));
    }
}

fn brokers_of(cluster: &pb::Cluster) -> usize {
    cluster
        .status
        .as_ref()
        .unwrap()
        .nodes
        .iter()
        .filter(|n| n.role() == pb::NodeRole::Broker)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terraform_manages_a_ferry_cluster_end_to_end() {
    let dev = Dev::start();
    let ws = Workspace::new(&dev, "tf-main");

    // A validation error is reported at plan time, quickly, with the API's wording.
    ws.write(&config("orders", 4, true));
    let started = Instant::now();
    let output = ws.run(&["plan", "-no-color"]);
    let shown = text(&output);
    assert!(
        !output.status.success(),
        "4 brokers over 3 zones must fail:\n{shown}"
    );
    assert!(
        shown.contains("must be a multiple of the number of zones (3)"),
        "the message names the rule:\n{shown}"
    );
    assert!(
        started.elapsed() < VALIDATION_FAST,
        "took {:?}",
        started.elapsed()
    );

    // Create: apply waits until ACTIVE; the cluster takes Kafka traffic.
    ws.write(&config("orders", 3, true));
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    let id = ws.output("id");
    assert_eq!(ws.output("state"), "ACTIVE");
    assert_eq!(ws.output("data_state"), "ACTIVE");
    let bootstrap = ws.output("bootstrap_brokers");
    assert_eq!(ws.output("data_bootstrap_brokers"), bootstrap);
    let cluster = dev.cluster(&id).await.unwrap();
    assert_eq!(
        cluster.status.as_ref().unwrap().state(),
        pb::ClusterState::Active
    );
    produce(&bootstrap).await;

    // No perpetual diff.
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 0, "a second plan is empty:\n{shown}");

    // Growing the broker count is an in-place update.
    ws.write(&config("orders", 6, true));
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("updated in-place"), "{shown}");
    assert!(!shown.contains("must be replaced"), "{shown}");
    assert!(shown.contains("1 to change, 0 to destroy"), "{shown}");
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    assert_eq!(ws.output("id"), id, "same cluster");
    let cluster = dev.cluster(&id).await.unwrap();
    assert_eq!(cluster.spec.as_ref().unwrap().broker_count, 6);
    assert_eq!(brokers_of(&cluster), 6);
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 0, "empty plan after the grow:\n{shown}");
    produce(&ws.output("bootstrap_brokers")).await;

    // Tags change in place too, immediately.
    ws.write(&config("orders", 6, true).replace("team = \"payments\"", "team = \"orders\""));
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("updated in-place") && !shown.contains("must be replaced"));
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    let cluster = dev.cluster(&id).await.unwrap();
    assert_eq!(cluster.spec.as_ref().unwrap().tags["team"], "orders");
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 0, "empty plan after the tag change:\n{shown}");

    // Shrinking is refused at plan time with the reason.
    ws.write(&config("orders", 3, true));
    let output = ws.run(&["plan", "-no-color"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("must be above the current 6"),
        "{}",
        text(&output)
    );
    ws.write(&config("orders", 6, true));

    // Import a cluster created outside Terraform: the plan is then empty.
    let created = dev
        .clusters()
        .await
        .create_cluster(dev.request(pb::CreateClusterRequest {
            spec: Some(pb::ClusterSpec {
                name: "imported".into(),
                kafka_version: "3.9.0".into(),
                broker_count: 3,
                controller_count: 3,
                zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
                storage_per_broker_bytes: 1 << 30,
                broker_config: [("num.partitions".to_string(), "3".to_string())].into(),
                tags: [("team".to_string(), "payments".to_string())].into(),
                configuration: None,
            }),
            client_request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let imported_id = created.cluster.unwrap().id;
    let imported = Workspace::new(&dev, "tf-import");
    imported.write(&config_with("imported", 3, true, false));
    imported.ok(&["import", "-no-color", "ferry_cluster.main", &imported_id]);
    let (code, shown) = imported.plan_exit_code();
    assert_eq!(code, 0, "empty plan after import:\n{shown}");

    // A create that outlives its timeout fails the apply, quickly, saying so; the cluster is
    // kept (tainted), and `terraform untaint` adopts it once it is ACTIVE: an empty plan.
    let slow = Workspace::new(&dev, "tf-timeout");
    slow.write(&config("slow", 3, true).replace("create = \"3m\"", "create = \"1s\""));
    let started = Instant::now();
    let output = slow.run(&["apply", "-auto-approve", "-no-color"]);
    assert!(!output.status.success(), "a 1s create timeout fails");
    assert!(
        text(&output).contains("did not finish within 1s"),
        "{}",
        text(&output)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let slow_id = slow
        .ok(&["state", "show", "-no-color", "ferry_cluster.main"])
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("id").map(|v| {
                v.trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string()
            })
        })
        .expect("the timed-out cluster is in the state");
    let deadline = Instant::now() + Duration::from_secs(120);
    while dev.cluster(&slow_id).await.unwrap().status.unwrap().state() != pb::ClusterState::Active {
        assert!(Instant::now() < deadline, "{slow_id} never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    slow.ok(&["untaint", "-no-color", "ferry_cluster.main"]);
    // The failed apply never saved the outputs: this apply does, and changes no resource.
    let shown = slow.ok(&["apply", "-auto-approve", "-no-color"]);
    assert!(shown.contains("0 added, 0 changed, 0 destroyed"), "{shown}");
    let (code, shown) = slow.plan_exit_code();
    assert_eq!(code, 0, "empty plan after untaint:\n{shown}");

    // Destroy is refused while deletion_protection is on, and nothing is deleted.
    let output = ws.run(&["destroy", "-auto-approve", "-no-color"]);
    assert!(!output.status.success(), "destroy must be refused");
    assert!(
        text(&output).contains("deletion_protection"),
        "{}",
        text(&output)
    );
    assert!(dev.cluster(&id).await.is_ok(), "still there");

    // Turned off (an in-place, state-only change), destroy succeeds.
    for (workspace, name, brokers) in [
        (&ws, "orders", 6),
        (&imported, "imported", 3),
        (&slow, "slow", 3),
    ] {
        workspace.write(&config_with(name, brokers, false, name != "imported"));
        workspace.ok(&["apply", "-auto-approve", "-no-color"]);
        workspace.ok(&["destroy", "-auto-approve", "-no-color"]);
    }
    for gone in [&id, &imported_id, &slow_id] {
        let result = dev.cluster(gone).await;
        assert!(
            matches!(&result, Err(s) if s.code() == tonic::Code::NotFound)
                || result.as_ref().is_ok_and(|c| {
                    c.status.as_ref().unwrap().state() == pb::ClusterState::Deleting
                }),
            "{gone} is gone: {result:?}"
        );
    }
    let deadline = Instant::now() + NODES_GONE;
    while !dev.node_pids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "node processes left after destroy: {:?}",
            dev.node_pids()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The examples stay valid against the provider's schema (no stack needed).
#[test]
fn the_examples_are_valid() {
    for example in ["quickstart", "configuration"] {
        example_is_valid(example);
    }
}

/// This package's directory as the test runner reports it when the test runs (cargo and
/// nextest set `CARGO_MANIFEST_DIR` for the test process), falling back to the directory it was
/// compiled in. A test binary reused from a shared target directory by another checkout then
/// still reads this checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn example_is_valid(example: &str) {
    let dir = tempfile::tempdir().unwrap();
    let example = manifest_dir()
        .join("examples")
        .join(example)
        .join("main.tf");
    std::fs::copy(example, dir.path().join("main.tf")).unwrap();
    std::fs::write(
        dir.path().join("cli.tfrc"),
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"ferry.dev/ferry/ferry\" = \"{}\"\n  \
             }}\n  direct {{}}\n}}\n",
            provider_dir().display()
        ),
    )
    .unwrap();
    let output = Command::new(terraform_bin())
        .args(["validate", "-no-color"])
        .current_dir(dir.path())
        .env("TF_CLI_CONFIG_FILE", dir.path().join("cli.tfrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("run terraform");
    assert!(output.status.success(), "{}", text(&output));
}

/// A configuration and a cluster that follows its latest revision.
fn configuration_config(properties: &str, deletion_protection: bool) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    ferry = {{ source = "ferry.dev/ferry/ferry" }}
  }}
}}

provider "ferry" {{}}

resource "ferry_configuration" "tuned" {{
  name              = "tuned"
  description       = "acceptance"
  server_properties = <<-EOT
{properties}
  EOT
}}

resource "ferry_cluster" "tuned" {{
  name                   = "tuned"
  broker_count           = 3
  zones                  = ["zone-a", "zone-b", "zone-c"]
  configuration_id       = ferry_configuration.tuned.id
  configuration_revision = ferry_configuration.tuned.latest_revision
  deletion_protection    = {deletion_protection}

  timeouts {{
    create = "4m"
    update = "4m"
    delete = "4m"
  }}
}}

output "id" {{ value = ferry_cluster.tuned.id }}
output "configuration_id" {{ value = ferry_configuration.tuned.id }}
output "latest_revision" {{ value = ferry_configuration.tuned.latest_revision }}
output "bootstrap_brokers" {{ value = ferry_cluster.tuned.bootstrap_brokers }}
"#
    )
}

/// Creates `topic` asking for the brokers' default partition count and replication factor;
/// returns the partition count the cluster gave it.
async fn default_partitions(bootstrap: &str, topic: &str) -> usize {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    // -1: "the broker's default" (KIP-464).
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, -1, TopicReplication::Fixed(-1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let partitions = metadata
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        if partitions > 0 {
            return partitions;
        }
        assert!(Instant::now() < deadline, "{topic} never showed up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The cluster's nodes as the API lists them.
async fn nodes_of(dev: &Dev, id: &str) -> Vec<pb::Node> {
    dev.cluster(id)
        .await
        .map(|c| c.status.unwrap_or_default().nodes)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terraform_applies_a_configuration_revision_in_place() {
    let dev = Dev::start();
    let ws = Workspace::new(&dev, "tf-configuration");

    // A bad property is refused at apply with the API's line and key; nothing is created.
    ws.write(&configuration_config("    num.partitions = 0", false));
    let output = ws.run(&["apply", "-auto-approve", "-no-color"]);
    assert!(!output.status.success());
    assert!(
        // (Terraform wraps the detail: match within one line of it.)
        text(&output).contains("server_properties[num.partitions]: line 1: invalid value"),
        "{}",
        text(&output)
    );

    // Revision 1: two partitions per new topic.
    ws.write(&configuration_config("    num.partitions = 2", false));
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    let id = ws.output("id");
    let configuration_id = ws.output("configuration_id");
    assert_eq!(ws.output("latest_revision"), "1");
    let bootstrap = ws.output("bootstrap_brokers");
    assert_eq!(default_partitions(&bootstrap, "before").await, 2);
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 0, "a second plan is empty:\n{shown}");

    // Revision 2: five. The configuration is updated in place and the cluster follows it.
    ws.write(&configuration_config("    num.partitions = 5", false));
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("2 to change, 0 to destroy"), "{shown}");
    assert!(!shown.contains("must be replaced"), "{shown}");

    // While Terraform applies, sample the nodes: never more than one may be restarting at once
    // (see RollSample: every state but RUNNING counts, except a node that waits on the
    // quorum's election in the process it was RUNNING in), some node must be seen restarting
    // (else the samples prove nothing), and every node process is replaced (pids change).
    let pids_before: Vec<(i32, u32)> = node_pids_by_id(&dev);
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let dev_api = dev.api.clone();
        let token = dev.token.clone();
        let id = id.clone();
        let mut running: std::collections::BTreeMap<i32, String> = nodes_of(&dev, &id)
            .await
            .into_iter()
            .filter(|n| n.state() == pb::NodeState::Running)
            .map(|n| (n.node_id, n.config_fingerprint))
            .collect();
        tokio::spawn(async move {
            let channel = Channel::from_shared(dev_api).unwrap().connect_lazy();
            let mut clusters = ClusterServiceClient::new(channel);
            let mut samples = Vec::new();
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let mut request = tonic::Request::new(pb::GetClusterRequest {
                    cluster_id: id.clone(),
                });
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                if let Ok(cluster) = clusters.get_cluster(request).await {
                    let nodes = cluster.into_inner().status.unwrap_or_default().nodes;
                    let sample = RollSample::of(&nodes, &mut running);
                    if !sample.not_running.is_empty() {
                        samples.push(sample);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    assert!(
        samples.iter().any(|s| !s.restarting.is_empty()),
        "no node was ever seen restarting during the roll, so the samples cannot tell a safe \
         roll from an unsafe one: {samples:?}"
    );
    let worst = samples.iter().max_by_key(|s| s.restarting.len()).unwrap();
    assert!(
        worst.restarting.len() <= 1,
        "{} nodes were restarting at once during the roll: {worst:?}",
        worst.restarting.len()
    );
    assert_eq!(ws.output("latest_revision"), "2");
    let cluster = dev.cluster(&id).await.unwrap();
    let status = cluster.status.clone().unwrap();
    assert_eq!(status.state(), pb::ClusterState::Active);
    assert_eq!(
        status.configuration,
        Some(pb::ConfigurationInfo {
            id: configuration_id.clone(),
            revision: 2
        })
    );
    // num.partitions concerns the controllers too (the active one fills the default in), so
    // every node was restarted: new processes all round.
    let pids_after = node_pids_by_id(&dev);
    assert_eq!(pids_after.len(), pids_before.len(), "{pids_after:?}");
    for ((node, before), (_, after)) in pids_before.iter().zip(&pids_after) {
        assert_ne!(before, after, "node {node} was not restarted");
    }
    // Every node reports the same config it was assigned, and the brokers show the new one.
    let fingerprints: std::collections::BTreeSet<String> = nodes_of(&dev, &id)
        .await
        .iter()
        .filter(|n| n.role() == pb::NodeRole::Broker)
        .map(|n| n.config_fingerprint.clone())
        .collect();
    assert_eq!(fingerprints.len(), 1, "{fingerprints:?}");
    assert_eq!(default_partitions(&bootstrap, "after").await, 5);
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 0, "empty plan after the roll:\n{shown}");

    // Destroying the configuration while the cluster uses it is refused with the API's reason.
    let in_use = configuration_config("    num.partitions = 5", false)
        .replace(
            "configuration_id       = ferry_configuration.tuned.id",
            &format!("configuration_id       = \"{configuration_id}\""),
        )
        .replace(
            "configuration_revision = ferry_configuration.tuned.latest_revision",
            "configuration_revision = 2",
        );
    let start = in_use.find("resource \"ferry_configuration\"").unwrap();
    let end = start + in_use[start..].find("\n}\n").unwrap() + 3;
    let mut without_configuration = in_use.clone();
    without_configuration.replace_range(start..end, "");
    let without_configuration = without_configuration
        .lines()
        .filter(|l| !l.contains("ferry_configuration.tuned"))
        .collect::<Vec<_>>()
        .join("\n");
    ws.write(&without_configuration);
    let output = ws.run(&["apply", "-auto-approve", "-no-color"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("is in use by clusters"),
        "{}",
        text(&output)
    );

    // Back to the full configuration: no resource changes (only the outputs the trimmed
    // configuration dropped come back); then destroy removes the cluster first, then the
    // configuration.
    ws.write(&configuration_config("    num.partitions = 5", false));
    let shown = ws.ok(&["apply", "-auto-approve", "-no-color"]);
    assert!(
        shown.contains("0 added, 0 changed, 0 destroyed"),
        "the refused destroy changed nothing:\n{shown}"
    );
    let (code, shown) = ws.plan_exit_code();
    assert_eq!(code, 0, "{shown}");
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(dev.cluster(&id).await.is_err(), "the cluster is gone");
    let deadline = Instant::now() + NODES_GONE;
    while !dev.node_pids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "nodes left: {:?}",
            dev.node_pids()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One sample of a cluster during a roll: every node not RUNNING, and which of them the roll
/// is restarting.
#[derive(Debug)]
struct RollSample {
    /// Every node in any state but RUNNING: (node id, state, message).
    not_running: Vec<(i32, pb::NodeState, String)>,
    /// The node ids of those the roll is restarting: every node not RUNNING but one that
    /// waits on the controllers' quorum while another node restarts. Such a node is STARTING
    /// in the process it was last seen RUNNING in (the same config fingerprint: the roll gives
    /// each restarted process a new one), and its agent's probe says it knows no quorum leader
    /// (a controller while its quorum elects a new one: restarting the leader does that) or
    /// is fenced or unregistered (a broker meanwhile). A node stopping for its restart reports
    /// neither a fingerprint nor a probe, so it counts, and so does its new process until it
    /// has been RUNNING.
    restarting: Vec<i32>,
}

impl RollSample {
    /// Judges `nodes` (as the API shows them), with `running` the config fingerprint each
    /// node was last seen RUNNING with (updated here).
    fn of(nodes: &[pb::Node], running: &mut std::collections::BTreeMap<i32, String>) -> RollSample {
        let mut sample = RollSample {
            not_running: Vec::new(),
            restarting: Vec::new(),
        };
        for node in nodes {
            if node.state() == pb::NodeState::Running {
                running.insert(node.node_id, node.config_fingerprint.clone());
                continue;
            }
            sample
                .not_running
                .push((node.node_id, node.state(), node.state_message.clone()));
            let same_process = !node.config_fingerprint.is_empty()
                && running.get(&node.node_id) == Some(&node.config_fingerprint);
            let waits_on_quorum = node.probe.as_ref().is_some_and(|p| match node.role() {
                pb::NodeRole::Controller => p.quorum_leader_id < 0,
                _ => p.fenced || p.broker_epoch < 0,
            });
            if !(node.state() == pb::NodeState::Starting && same_process && waits_on_quorum) {
                sample.restarting.push(node.node_id);
            }
        }
        sample
    }
}

/// The stack's `ferry node` processes as (node id, pid), sorted by node id.
fn node_pids_by_id(dev: &Dev) -> Vec<(i32, u32)> {
    let mut nodes: Vec<(i32, u32)> = dev
        .node_pids()
        .into_iter()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .map(str::to_string)
                .collect();
            let at = args.iter().position(|a| a == "--node-id")?;
            Some((args.get(at + 1)?.parse().ok()?, pid))
        })
        .collect();
    nodes.sort_unstable();
    nodes
}
