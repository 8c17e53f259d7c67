//! `ferry control-plane` and `ferry token create` as processes: the API refuses calls without
//! a token or with too weak a role, CreateCluster without registered hosts is refused naming
//! the zone, and the store survives SIGTERM and a restart on the same directory: a
//! configuration stored before the restart (it needs no hosts) is read back after it.
//!
//! No agent runs here, so the fleet is empty.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::configuration_service_client::ConfigurationServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// How long a starting control plane may take to print its ready line.
const READY: Duration = Duration::from_secs(60);

/// A running `ferry control-plane`, killed on drop if the test did not stop it.
struct ControlPlane {
    /// The process.
    child: Child,
    /// The API address it printed.
    api: String,
}

impl ControlPlane {
    /// Starts `ferry control-plane` on a free port over `dir`, secret in `secret`.
    fn start(dir: &Path, secret: &Path) -> ControlPlane {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["control-plane", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .arg("--token-secret-file")
            .arg(secret)
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(api) = line.trim().strip_prefix("ferry control-plane ready: api=") {
                    let _ = tx.send(api.trim().to_string());
                }
            }
        });
        let api = rx
            .recv_timeout(READY)
            .expect("ferry control-plane prints its ready line");
        ControlPlane { child, api }
    }

    /// A client of its ClusterService.
    async fn clusters(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::connect(format!("http://{}", self.api))
            .await
            .unwrap()
    }

    /// A client of its ConfigurationService.
    async fn configurations(&self) -> ConfigurationServiceClient<Channel> {
        ConfigurationServiceClient::connect(format!("http://{}", self.api))
            .await
            .unwrap()
    }

    /// SIGTERM, then a clean exit.
    fn terminate(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(
            self.child.wait().unwrap().success(),
            "ferry control-plane exits 0 on SIGTERM"
        );
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mints a token with `ferry token create`.
fn token(secret: &Path, tenant: &str, role: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["token", "create", "--tenant", tenant, "--role", role])
        .arg("--token-secret-file")
        .arg(secret)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ferry token create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `message` with `token` as its bearer token (none when empty).
fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if !token.is_empty() {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// A valid spec asking for three zones.
fn create_request(name: &str) -> pb::CreateClusterRequest {
    pb::CreateClusterRequest {
        spec: Some(pb::ClusterSpec {
            name: name.into(),
            kafka_version: "3.9.0".into(),
            broker_count: 3,
            controller_count: 3,
            zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
            storage_per_broker_bytes: 1 << 30,
            ..Default::default()
        }),
        client_request_id: String::new(),
    }
}

/// A ListClusters request.
fn list_request() -> pb::ListClustersRequest {
    pb::ListClustersRequest {
        name_prefix: String::new(),
        page_size: 0,
        page_token: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_serves_the_api_with_tokens_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = dir.path().join("token-secret");

    let server = ControlPlane::start(&data, &secret);
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the generated secret is owner-only");
    let admin = token(&secret, "acme", "admin");
    let viewer = token(&secret, "acme", "viewer");
    let mut clusters = server.clusters().await;

    // No hosts are registered: the capacity check names a zone that falls short.
    let err = clusters
        .create_cluster(authed(&admin, create_request("orders")))
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::FailedPrecondition | Code::InvalidArgument),
        "{err:?}"
    );
    assert!(err.message().contains("zone"), "{err:?}");

    let listed = clusters
        .list_clusters(authed(&admin, list_request()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.clusters.is_empty(), "{listed:?}");

    let err = clusters
        .list_clusters(authed("", list_request()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    let err = clusters
        .create_cluster(authed(&viewer, create_request("orders")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // Something to find after the restart: a configuration (it needs no hosts).
    let properties = "num.partitions=7\nlog.retention.ms=3600000\n";
    let stored = server
        .configurations()
        .await
        .create_configuration(authed(
            &admin,
            pb::CreateConfigurationRequest {
                name: "kept".into(),
                description: "stored before the restart".into(),
                kafka_versions: Vec::new(),
                server_properties: properties.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    drop(clusters);
    server.terminate();

    // Same directory, same secret: the store reopens with what it held, and old tokens still
    // work.
    let server = ControlPlane::start(&data, &secret);
    let mut configurations = server.configurations().await;
    let read = configurations
        .get_configuration(authed(
            &viewer,
            pb::GetConfigurationRequest {
                configuration_id: stored.id.clone(),
            },
        ))
        .await
        .expect("the configuration stored before the restart")
        .into_inner();
    assert_eq!(read, stored);
    let revision = configurations
        .get_configuration_revision(authed(
            &viewer,
            pb::GetConfigurationRevisionRequest {
                configuration_id: stored.id.clone(),
                revision: 1,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revision.server_properties, properties);
    let mut clusters = server.clusters().await;
    let listed = clusters
        .list_clusters(authed(&viewer, list_request()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.clusters.is_empty(), "{listed:?}");
    drop(clusters);
    drop(configurations);
    server.terminate();
}
