//! The gRPC API in process: the three services served by tonic on a loopback port over a
//! `MemoryStore` with hosts in zones a, b and c, called with the generated clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_control_plane::api::{Api, ApiConfig};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::model::{HostCapacity, HostRegistration, OperationState, OperationUpdate};
use ferry_control_plane::placement::PortRange;
use ferry_control_plane::store::{MemoryStore, Store};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use ferry_proto::controlplane::v1::configuration_service_client::ConfigurationServiceClient;
use ferry_proto::controlplane::v1::host_service_client::HostServiceClient;
use ferry_proto::controlplane::v1::operation_service_client::OperationServiceClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
const ISSUER: &str = "ferry-control-plane";
const AUDIENCE: &str = "ferry-api";

struct Harness {
    store: Arc<MemoryStore>,
    issuer: TokenIssuer,
    clusters: ClusterServiceClient<Channel>,
    configurations: ConfigurationServiceClient<Channel>,
    operations: OperationServiceClient<Channel>,
    hosts: HostServiceClient<Channel>,
}

impl Harness {
    /// Serves the API over a store with `hosts_per_zone` hosts (each taking `max_nodes` nodes)
    /// in each of zones a, b and c.
    async fn start(hosts_per_zone: usize, max_nodes: u32) -> Harness {
        let store = Arc::new(MemoryStore::new());
        for zone in ["a", "b", "c"] {
            for i in 0..hosts_per_zone {
                store
                    .register_host(HostRegistration {
                        id: format!("host-{zone}{i}"),
                        zone: zone.into(),
                        address: format!("10.0.{}.{i}", zone.as_bytes()[0]),
                        ports: PortRange { lo: 9000, hi: 9099 },
                        capacity: HostCapacity {
                            max_nodes,
                            storage_bytes: 1 << 42,
                        },
                    })
                    .await
                    .unwrap();
            }
        }
        let issuer = TokenIssuer::new(SECRET, ISSUER, AUDIENCE).unwrap();
        let api = Api::new(Arc::clone(&store), issuer.clone(), ApiConfig::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(api.cluster_service())
                .add_service(api.configuration_service())
                .add_service(api.operation_service())
                .add_service(api.host_service())
                .serve_with_incoming(incoming),
        );
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Harness {
            store,
            issuer,
            clusters: ClusterServiceClient::new(channel.clone()),
            configurations: ConfigurationServiceClient::new(channel.clone()),
            operations: OperationServiceClient::new(channel.clone()),
            hosts: HostServiceClient::new(channel),
        }
    }

    fn token(&self, tenant: &str, role: Role) -> String {
        self.issuer
            .mint(&principal(tenant, role), Duration::from_secs(600))
    }
}

fn principal(tenant: &str, role: Role) -> Principal {
    Principal {
        subject: format!("{tenant}-{role}"),
        tenant: tenant.into(),
        role,
    }
}

/// `message` with `Authorization: Bearer <token>`.
fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn spec(name: &str) -> pb::ClusterSpec {
    pb::ClusterSpec {
        name: name.into(),
        kafka_version: "3.9.0".into(),
        broker_count: 3,
        controller_count: 3,
        zones: vec!["a".into(), "b".into(), "c".into()],
        storage_per_broker_bytes: 1 << 30,
        broker_config: HashMap::from([("num.partitions".into(), "3".into())]),
        tags: HashMap::from([("team".into(), "payments".into())]),
        configuration: None,
    }
}

fn create(
    token: &str,
    spec: pb::ClusterSpec,
    request_id: &str,
) -> Request<pb::CreateClusterRequest> {
    authed(
        token,
        pb::CreateClusterRequest {
            spec: Some(spec),
            client_request_id: request_id.into(),
        },
    )
}

fn get(token: &str, cluster_id: &str) -> Request<pb::GetClusterRequest> {
    authed(
        token,
        pb::GetClusterRequest {
            cluster_id: cluster_id.into(),
        },
    )
}

fn list(
    token: &str,
    prefix: &str,
    size: u32,
    page_token: &str,
) -> Request<pb::ListClustersRequest> {
    authed(
        token,
        pb::ListClustersRequest {
            name_prefix: prefix.into(),
            page_size: size,
            page_token: page_token.into(),
        },
    )
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().unwrap().reason
}

#[tokio::test]
async fn create_get_list_delete() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);

    let created = h
        .clusters
        .create_cluster(create(&admin, spec("orders"), ""))
        .await
        .unwrap()
        .into_inner();
    let cluster = created.cluster.unwrap();
    let operation = created.operation.unwrap();
    assert!(cluster.id.starts_with("cl-"));
    assert_eq!(cluster.tenant, "acme");
    assert_eq!(cluster.spec.as_ref().unwrap(), &spec("orders"));
    let status = cluster.status.as_ref().unwrap();
    assert_eq!(status.state, pb::ClusterState::Creating as i32);
    assert_eq!(cluster.active_operation_id, operation.id);
    assert_eq!(operation.r#type, pb::OperationType::Create as i32);
    assert_eq!(operation.state, pb::OperationState::Pending as i32);
    assert_eq!(operation.cluster_id, cluster.id);
    assert!(!operation.steps.is_empty());

    let got = h
        .clusters
        .get_cluster(get(&admin, &cluster.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, cluster);

    // Not placed yet: no bootstrap brokers and no nodes.
    let bootstrap = h
        .clusters
        .get_bootstrap_brokers(authed(
            &admin,
            pb::GetBootstrapBrokersRequest {
                cluster_id: cluster.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bootstrap.bootstrap_brokers, "");
    let nodes = h
        .clusters
        .list_nodes(authed(
            &admin,
            pb::ListNodesRequest {
                cluster_id: cluster.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(nodes.nodes.is_empty());

    let op = h
        .operations
        .get_operation(authed(
            &admin,
            pb::GetOperationRequest {
                operation_id: operation.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(op, operation);

    // More clusters, then list with a prefix and small pages.
    for name in ["orders-eu", "orders-us", "payments"] {
        h.clusters
            .create_cluster(create(&admin, spec(name), ""))
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = h
            .clusters
            .list_clusters(list(&admin, "orders", 2, &token))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        names.extend(page.clusters.into_iter().map(|c| c.spec.unwrap().name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, ["orders", "orders-eu", "orders-us"]);
    assert_eq!(pages, 2);
    let all = h
        .clusters
        .list_clusters(list(&admin, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.clusters.len(), 4);
    assert!(all.next_page_token.is_empty());

    // Delete: refused while CREATE runs (one operation at a time), as ABORTED.
    let err = h
        .clusters
        .delete_cluster(authed(
            &admin,
            pb::DeleteClusterRequest {
                cluster_id: cluster.id.clone(),
                current_version: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    assert_eq!(reason(&err), "OPERATION_IN_PROGRESS");
}

#[tokio::test]
async fn delete_starts_the_delete_operation() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let created = h
        .clusters
        .create_cluster(create(&admin, spec("orders"), ""))
        .await
        .unwrap()
        .into_inner();
    let cluster = created.cluster.unwrap();
    let create_op = created.operation.unwrap();
    // End the CREATE operation through the store, as the reconciler will.
    h.store
        .update_operation(
            "acme",
            &create_op.id,
            OperationUpdate {
                state: Some(OperationState::Succeeded),
                progress_percent: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let current = h
        .clusters
        .get_cluster(get(&admin, &cluster.id))
        .await
        .unwrap()
        .into_inner();

    let delete = |version: u64, id: &str| {
        authed(
            &admin,
            pb::DeleteClusterRequest {
                cluster_id: id.into(),
                current_version: version,
            },
        )
    };
    let err = h
        .clusters
        .delete_cluster(delete(current.current_version + 7, &cluster.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    assert_eq!(reason(&err), "VERSION_MISMATCH");
    let err = h
        .clusters
        .delete_cluster(delete(0, "cl-missing"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let deleted = h
        .clusters
        .delete_cluster(delete(current.current_version, &cluster.id))
        .await
        .unwrap()
        .into_inner();
    let deleting = deleted.cluster.unwrap();
    let delete_op = deleted.operation.unwrap();
    assert_eq!(
        deleting.status.unwrap().state,
        pb::ClusterState::Deleting as i32
    );
    assert_eq!(delete_op.r#type, pb::OperationType::Delete as i32);

    let ops = h
        .operations
        .list_operations(authed(
            &admin,
            pb::ListOperationsRequest {
                cluster_id: cluster.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = ops.operations.iter().map(|o| o.id.clone()).collect();
    assert_eq!(ids, [delete_op.id, create_op.id], "newest first");
}

#[tokio::test]
async fn every_violation_is_reported_at_once() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let bad = pb::ClusterSpec {
        name: "no spaces!".into(),
        kafka_version: "0.8.0".into(),
        broker_count: 4,
        controller_count: 4,
        zones: vec!["a".into(), "b".into(), "z".into()],
        storage_per_broker_bytes: 1,
        broker_config: HashMap::from([("no.such.config".into(), "1".into())]),
        tags: HashMap::from([("ferry:owner".into(), "me".into())]),
        configuration: None,
    };
    let err = h
        .clusters
        .create_cluster(create(&admin, bad, &"x".repeat(65)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let violations = err.get_details_bad_request().unwrap().field_violations;
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    for field in [
        "name",
        "kafka_version",
        "broker_count",
        "controller_count",
        "zones[2]",
        "storage_per_broker_bytes",
        "broker_config[no.such.config]",
        "tags[ferry:owner]",
        "client_request_id",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    // The message lists the same violations, in the same order.
    let listed: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    assert_eq!(err.message(), listed.join("; "));

    // A missing spec is a violation too, and nothing was stored.
    let err = h
        .clusters
        .create_cluster(authed(&admin, pb::CreateClusterRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "spec: is required");
    let all = h
        .clusters
        .list_clusters(list(&admin, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(all.clusters.is_empty());

    let err = h.clusters.get_cluster(get(&admin, "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "cluster_id: is required");
}

#[tokio::test]
async fn a_retry_returns_the_same_cluster_and_a_reused_name_is_refused() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let first = h
        .clusters
        .create_cluster(create(&admin, spec("orders"), "req-1"))
        .await
        .unwrap()
        .into_inner();
    let retry = h
        .clusters
        .create_cluster(create(&admin, spec("orders"), "req-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);

    // The same key with another spec.
    let err = h
        .clusters
        .create_cluster(create(&admin, spec("payments"), "req-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");

    // The same name without the key.
    let err = h
        .clusters
        .create_cluster(create(&admin, spec("orders"), ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(reason(&err), "NAME_TAKEN");
    assert!(err.message().contains("orders"), "{}", err.message());
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let mut h = Harness::start(1, 10).await;
    let p = principal("acme", Role::Admin);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = h.issuer.mint_at(&p, Duration::from_secs(60), now - 3600);
    let other = TokenIssuer::new(b"another-secret-another-secret-another", ISSUER, AUDIENCE)
        .unwrap()
        .mint(&p, Duration::from_secs(600));
    let claims = serde_json::json!({
        "sub": "mallory", "tenant": "acme", "role": "admin", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600,
    });
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );

    let cases: [(Option<String>, &str); 5] = [
        (None, "no bearer token"),
        (Some("Bearer garbage".into()), "malformed"),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {other}")), "signature"),
        (Some(format!("Bearer {alg_none}")), "algorithm"),
    ];
    for (header, expected) in cases {
        let mut request = list_request();
        if let Some(header) = &header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        let err = h.clusters.list_clusters(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{header:?}: {err:?}");
        assert!(
            err.message().contains(expected),
            "{header:?}: {}",
            err.message()
        );

        let mut request = Request::new(pb::GetOperationRequest {
            operation_id: "op-1".into(),
        });
        if let Some(header) = &header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        let err = h.operations.get_operation(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{header:?}");
    }
}

fn list_request() -> Request<pb::ListClustersRequest> {
    Request::new(pb::ListClustersRequest::default())
}

#[tokio::test]
async fn a_viewer_reads_but_neither_creates_nor_deletes() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let viewer = h.token("acme", Role::Viewer);
    let operator = h.token("acme", Role::Operator);
    let cluster = h
        .clusters
        .create_cluster(create(&admin, spec("orders"), ""))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();

    for token in [&viewer, &operator] {
        let err = h
            .clusters
            .create_cluster(create(token, spec("payments"), ""))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        let err = h
            .clusters
            .delete_cluster(authed(
                token,
                pb::DeleteClusterRequest {
                    cluster_id: cluster.id.clone(),
                    current_version: 0,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        let err = h
            .hosts
            .list_hosts(authed(token, pb::ListHostsRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }

    let got = h
        .clusters
        .get_cluster(get(&viewer, &cluster.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.id, cluster.id);
    let listed = h
        .clusters
        .list_clusters(list(&viewer, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.clusters.len(), 1);
    let ops = h
        .operations
        .list_operations(authed(
            &viewer,
            pb::ListOperationsRequest {
                cluster_id: cluster.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.operations.len(), 1);

    // Hosts: the admin's view, paged by id.
    let page = h
        .hosts
        .list_hosts(authed(
            &admin,
            pb::ListHostsRequest {
                page_size: 2,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = page.hosts.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["host-a0", "host-b0"]);
    let rest = h
        .hosts
        .list_hosts(authed(
            &admin,
            pb::ListHostsRequest {
                page_size: 2,
                page_token: page.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.hosts.len(), 1);
    assert_eq!(rest.hosts[0].zone, "c");
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn another_tenant_sees_nothing() {
    let mut h = Harness::start(1, 10).await;
    let acme = h.token("acme", Role::Admin);
    let globex = h.token("globex", Role::Admin);
    let created = h
        .clusters
        .create_cluster(create(&acme, spec("orders"), ""))
        .await
        .unwrap()
        .into_inner();
    let cluster = created.cluster.unwrap();
    let operation = created.operation.unwrap();

    let err = h
        .clusters
        .get_cluster(get(&globex, &cluster.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = h
        .clusters
        .delete_cluster(authed(
            &globex,
            pb::DeleteClusterRequest {
                cluster_id: cluster.id.clone(),
                current_version: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = h
        .clusters
        .list_nodes(authed(
            &globex,
            pb::ListNodesRequest {
                cluster_id: cluster.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = h
        .operations
        .get_operation(authed(
            &globex,
            pb::GetOperationRequest {
                operation_id: operation.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let listed = h
        .clusters
        .list_clusters(list(&globex, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.clusters.is_empty());

    // The same name is free in another tenant.
    h.clusters
        .create_cluster(create(&globex, spec("orders"), ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn too_few_hosts_is_a_failed_precondition_naming_the_zone() {
    // One host per zone taking 4 nodes: 3 controllers + 30 brokers need 11 per zone.
    let mut h = Harness::start(1, 4).await;
    let admin = h.token("acme", Role::Admin);
    let mut big = spec("big");
    big.broker_count = 30;
    let err = h
        .clusters
        .create_cluster(create(&admin, big, "req-big"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "INSUFFICIENT_CAPACITY");
    assert!(err.message().contains("zone a"), "{}", err.message());
    let failure = err.get_details_precondition_failure().unwrap();
    assert_eq!(failure.violations[0].subject, "zones/a");

    // Nothing was stored; a cluster that fits is accepted.
    let listed = h
        .clusters
        .list_clusters(list(&admin, "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.clusters.is_empty());
    h.clusters
        .create_cluster(create(&admin, spec("small"), ""))
        .await
        .unwrap();
}

/// A CreateConfigurationRequest for `name` with `properties`.
fn new_configuration(
    token: &str,
    name: &str,
    properties: &str,
) -> Request<pb::CreateConfigurationRequest> {
    authed(
        token,
        pb::CreateConfigurationRequest {
            name: name.into(),
            description: format!("{name}, first cut"),
            kafka_versions: vec!["3.9.0".into()],
            server_properties: properties.into(),
        },
    )
}

/// Ends the cluster's running operation as SUCCEEDED and marks it ACTIVE, as the reconciler
/// would once its nodes run.
async fn finish_operation(h: &Harness, tenant: &str, cluster_id: &str) {
    let cluster = h.store.get_cluster(tenant, cluster_id).await.unwrap();
    let mut status = cluster.status.clone();
    status.state = ferry_control_plane::model::ClusterState::Active;
    let cluster = h
        .store
        .update_cluster_status(tenant, cluster_id, cluster.current_version, status)
        .await
        .unwrap();
    h.store
        .update_operation(
            tenant,
            cluster.active_operation.as_deref().unwrap(),
            OperationUpdate {
                state: Some(OperationState::Succeeded),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn configurations_have_immutable_revisions() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let viewer = h.token("acme", Role::Viewer);

    let err = h
        .configurations
        .create_configuration(new_configuration(&viewer, "defaults", "num.partitions=5"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let created = h
        .configurations
        .create_configuration(new_configuration(
            &admin,
            "defaults",
            "# five by default\nnum.partitions=5\n",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(created.id.starts_with("cfg-"), "{created:?}");
    assert_eq!(created.latest_revision.as_ref().unwrap().revision, 1);
    let err = h
        .configurations
        .create_configuration(new_configuration(&admin, "defaults", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(reason(&err), "NAME_TAKEN");

    let updated = h
        .configurations
        .update_configuration(authed(
            &admin,
            pb::UpdateConfigurationRequest {
                configuration_id: created.id.clone(),
                description: "seven now".into(),
                server_properties: "num.partitions=7\nauto.create.topics.enable=false".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.latest_revision.as_ref().unwrap().revision, 2);
    assert_eq!(updated.description, "seven now");

    let revision = |n: u64| {
        authed(
            &viewer,
            pb::GetConfigurationRevisionRequest {
                configuration_id: created.id.clone(),
                revision: n,
            },
        )
    };
    let first = h
        .configurations
        .get_configuration_revision(revision(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.server_properties,
        "# five by default\nnum.partitions=5\n"
    );
    assert_eq!(first.description, "defaults, first cut");
    let err = h
        .configurations
        .get_configuration_revision(revision(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // Revisions newest first, one per page.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .configurations
            .list_configuration_revisions(authed(
                &viewer,
                pb::ListConfigurationRevisionsRequest {
                    configuration_id: created.id.clone(),
                    page_size: 1,
                    page_token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.revisions.iter().map(|r| r.revision));
        assert!(
            page.revisions
                .iter()
                .all(|r| r.server_properties.is_empty())
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [2, 1]);

    // Listed by name, paged.
    h.configurations
        .create_configuration(new_configuration(&admin, "archive", "log.retention.ms=-1"))
        .await
        .unwrap();
    let page = h
        .configurations
        .list_configurations(authed(
            &viewer,
            pb::ListConfigurationsRequest {
                page_size: 1,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.configurations[0].name, "archive");
    let rest = h
        .configurations
        .list_configurations(authed(
            &viewer,
            pb::ListConfigurationsRequest {
                page_size: 1,
                page_token: page.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.configurations[0].name, "defaults");
    assert!(rest.next_page_token.is_empty());

    // Another tenant sees none of it.
    let other = h.token("globex", Role::Admin);
    let err = h
        .configurations
        .get_configuration(authed(
            &other,
            pb::GetConfigurationRequest {
                configuration_id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = h
        .configurations
        .delete_configuration(authed(
            &other,
            pb::DeleteConfigurationRequest {
                configuration_id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

#[tokio::test]
async fn bad_properties_are_field_violations_naming_line_and_key() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let mut request = new_configuration(
        &admin,
        "bad name!",
        "num.partitions=0\nno.such.config=1\nbroker.id=3\nauto.create.topics.enable=maybe\n",
    );
    request.get_mut().kafka_versions = vec!["0.8.0".into()];
    let err = h
        .configurations
        .create_configuration(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let violations = err.get_details_bad_request().unwrap().field_violations;
    let found: Vec<(&str, &str)> = violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            ("name", "may contain only letters, digits and '-', not ' '"),
            ("kafka_versions[0]", "\"0.8.0\" is not offered; choose from"),
            ("server_properties[num.partitions]", "line 1"),
            ("server_properties[no.such.config]", "line 2"),
            ("server_properties[broker.id]", "line 3"),
            ("server_properties[auto.create.topics.enable]", "line 4"),
        ]
    );
    // A line that does not parse is a violation of the whole text.
    let created = h
        .configurations
        .create_configuration(new_configuration(&admin, "ok", "num.partitions=2"))
        .await
        .unwrap()
        .into_inner();
    let err = h
        .configurations
        .update_configuration(authed(
            &admin,
            pb::UpdateConfigurationRequest {
                configuration_id: created.id.clone(),
                description: String::new(),
                server_properties: "num.partitions=3\n= no name\n".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        err.message(),
        "server_properties: line 2: an entry without a name"
    );
    // Nothing was stored: the configuration is still at revision 1.
    let kept = h
        .configurations
        .get_configuration(authed(
            &admin,
            pb::GetConfigurationRequest {
                configuration_id: created.id,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.latest_revision.unwrap().revision, 1);
}

#[tokio::test]
async fn clusters_reference_revisions_and_hold_their_configuration() {
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let configuration = h
        .configurations
        .create_configuration(new_configuration(&admin, "defaults", "num.partitions=5"))
        .await
        .unwrap()
        .into_inner();
    let reference = |revision| {
        Some(pb::ConfigurationInfo {
            id: configuration.id.clone(),
            revision,
        })
    };

    // An unknown revision, or another tenant's configuration, is not found.
    let mut unknown = spec("orders");
    unknown.configuration = reference(2);
    let err = h
        .clusters
        .create_cluster(create(&admin, unknown, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("revision 2"), "{err:?}");
    let other = h.token("globex", Role::Admin);
    let mut foreign = spec("orders");
    foreign.configuration = reference(1);
    let err = h
        .clusters
        .create_cluster(create(&other, foreign, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let mut with = spec("orders");
    with.configuration = reference(1);
    let created = h
        .clusters
        .create_cluster(create(&admin, with, ""))
        .await
        .unwrap()
        .into_inner();
    let cluster = created.cluster.unwrap();
    assert_eq!(cluster.spec.unwrap().configuration, reference(1));
    let stored = h.store.get_cluster("acme", &cluster.id).await.unwrap();
    assert_eq!(stored.configuration_properties["num.partitions"], "5");

    // In use: refused, and nothing changes.
    let delete = || {
        authed(
            &admin,
            pb::DeleteConfigurationRequest {
                configuration_id: configuration.id.clone(),
            },
        )
    };
    let err = h
        .configurations
        .delete_configuration(delete())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "CONFIGURATION_IN_USE");
    assert!(err.message().contains(&cluster.id), "{err:?}");

    // Applying a configuration waits for the running operation (here: CREATE).
    let update = |revision, version| {
        authed(
            &admin,
            pb::UpdateClusterConfigurationRequest {
                cluster_id: cluster.id.clone(),
                current_version: version,
                configuration: reference(revision),
            },
        )
    };
    let err = h
        .clusters
        .update_cluster_configuration(update(1, 0))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "OPERATION_IN_PROGRESS");
    finish_operation(&h, "acme", &cluster.id).await;

    h.configurations
        .update_configuration(authed(
            &admin,
            pb::UpdateConfigurationRequest {
                configuration_id: configuration.id.clone(),
                description: "seven".into(),
                server_properties: "num.partitions=7".into(),
            },
        ))
        .await
        .unwrap();
    let err = h
        .clusters
        .update_cluster_configuration(update(3, 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = h
        .clusters
        .update_cluster_configuration(authed(
            &admin,
            pb::UpdateClusterConfigurationRequest {
                cluster_id: cluster.id.clone(),
                current_version: 0,
                configuration: Some(pb::ConfigurationInfo {
                    id: String::new(),
                    revision: 0,
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let fields: Vec<String> = err
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["configuration.id", "configuration.revision"]);

    let current = h.store.get_cluster("acme", &cluster.id).await.unwrap();
    let err = h
        .clusters
        .update_cluster_configuration(update(2, current.current_version + 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "VERSION_MISMATCH");
    let started = h
        .clusters
        .update_cluster_configuration(update(2, current.current_version))
        .await
        .unwrap()
        .into_inner();
    let updating = started.cluster.unwrap();
    assert_eq!(
        updating.status.as_ref().unwrap().state,
        pb::ClusterState::Updating as i32
    );
    assert_eq!(updating.spec.unwrap().configuration, reference(2));
    assert_eq!(
        started.operation.unwrap().r#type,
        pb::OperationType::UpdateConfiguration as i32
    );
    let stored = h.store.get_cluster("acme", &cluster.id).await.unwrap();
    assert_eq!(stored.configuration_properties["num.partitions"], "7");
    // One operation at a time.
    let err = h
        .clusters
        .update_cluster_configuration(update(1, 0))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "OPERATION_IN_PROGRESS");
}

/// A broker of `cluster_id` on a host, as the reconciler would assign it.
fn assignment(cluster_id: &str, node_id: i32) -> ferry_control_plane::model::HostAssignment {
    ferry_control_plane::model::HostAssignment {
        cluster_id: cluster_id.into(),
        node_id,
        role: ferry_control_plane::placement::Role::Broker,
        address: "10.0.97.0".into(),
        kafka_port: Some(9000 + node_id as u16),
        controller_port: None,
        admin_port: 9050 + node_id as u16,
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: Default::default(),
        controller_quorum_voters: vec![],
        config_fingerprint: String::new(),
    }
}

/// The cluster ids of the nodes each listed host shows.
fn node_clusters(hosts: &pb::ListHostsResponse) -> Vec<String> {
    hosts
        .hosts
        .iter()
        .flat_map(|h| h.nodes.iter().map(|n| n.cluster_id.clone()))
        .collect()
}

#[tokio::test]
async fn a_tenant_admin_sees_no_other_tenants_nodes_and_the_service_operator_sees_all() {
    let mut h = Harness::start(1, 10).await;
    let acme = h.token("acme", Role::Admin);
    let globex = h.token("globex", Role::Admin);
    let operator = h.token("ops", Role::ServiceOperator);
    let mut ids = Vec::new();
    for token in [&acme, &globex] {
        let created = h
            .clusters
            .create_cluster(create(token, spec("orders"), ""))
            .await
            .unwrap()
            .into_inner();
        ids.push(created.cluster.unwrap().id);
    }
    // One node of each tenant's cluster on the same host.
    h.store
        .set_assignments(
            "host-a0",
            vec![assignment(&ids[0], 1), assignment(&ids[1], 2)],
            None,
        )
        .await
        .unwrap();

    let list = |token: &str| authed(token, pb::ListHostsRequest::default());
    let seen_by_globex = h
        .hosts
        .list_hosts(list(&globex))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen_by_globex.hosts.len(), 3, "every host is listed");
    assert_eq!(node_clusters(&seen_by_globex), [ids[1].clone()]);
    let seen_by_acme = h.hosts.list_hosts(list(&acme)).await.unwrap().into_inner();
    assert_eq!(node_clusters(&seen_by_acme), [ids[0].clone()]);
    let fleet = h
        .hosts
        .list_hosts(list(&operator))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(node_clusters(&fleet), ids);

    // The other roles still may not list hosts at all.
    for role in [Role::Viewer, Role::Operator] {
        let err = h
            .hosts
            .list_hosts(list(&h.token("acme", role)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role}: {err:?}");
    }
}

#[tokio::test]
async fn the_service_operator_acts_as_an_admin_in_its_own_tenant_only() {
    let mut h = Harness::start(1, 10).await;
    let acme = h.token("acme", Role::Admin);
    let operator = h.token("ops", Role::ServiceOperator);
    let created = h
        .clusters
        .create_cluster(create(&acme, spec("orders"), ""))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    // Another tenant's cluster is as invisible to the service operator as to anyone.
    let err = h
        .clusters
        .get_cluster(get(&operator, &created.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // In its own tenant it creates like an admin.
    h.clusters
        .create_cluster(create(&operator, spec("orders"), ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn limits_are_resource_exhausted_naming_the_limit_and_nothing_is_written() {
    use ferry_control_plane::model::limits::{
        CLUSTERS_PER_TENANT_MAX, CONFIGURATIONS_PER_TENANT_MAX, REVISIONS_MAX,
    };
    let mut h = Harness::start(1, 10).await;
    let admin = h.token("acme", Role::Admin);
    let revision = |value: usize| ferry_control_plane::model::Revision {
        revision: 0,
        description: String::new(),
        server_properties: format!("num.partitions={value}\n"),
        properties: [("num.partitions".to_string(), value.to_string())].into(),
        created_at_ms: 0,
    };
    // Clusters: fill the tenant's allowance to the bound.
    for i in 0..CLUSTERS_PER_TENANT_MAX {
        let mut spec = ferry_control_plane::api::convert::spec_from_proto(spec("x"));
        spec.name = format!("c{i}");
        h.store.create_cluster("acme", spec, None).await.unwrap();
    }
    let before = h.store.state();
    let err = h
        .clusters
        .create_cluster(create(&admin, spec("one-more"), ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("CLUSTERS_PER_TENANT_MAX = 100"),
        "{}",
        err.message()
    );
    assert_eq!(
        err.get_details_error_info().unwrap().reason,
        "LIMIT_REACHED"
    );
    assert_eq!(h.store.state(), before, "nothing was proposed");

    // Configurations.
    for i in 0..CONFIGURATIONS_PER_TENANT_MAX {
        h.store
            .create_configuration("acme", &format!("cfg{i}"), vec![], revision(1))
            .await
            .unwrap();
    }
    let before = h.store.state();
    let err = h
        .configurations
        .create_configuration(authed(
            &admin,
            pb::CreateConfigurationRequest {
                name: "one-more".into(),
                server_properties: "num.partitions=2\n".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message()
            .contains("CONFIGURATIONS_PER_TENANT_MAX = 100"),
        "{}",
        err.message()
    );
    assert_eq!(h.store.state(), before, "nothing was proposed");

    // Revisions: the 50th is accepted, the 51st is not.
    let listed = h
        .store
        .list_configurations("acme", Default::default())
        .await
        .unwrap();
    let id = listed.items[0].id.clone();
    for value in 2..REVISIONS_MAX {
        h.store
            .update_configuration("acme", &id, revision(value))
            .await
            .unwrap();
    }
    let update = |value: usize| {
        authed(
            &admin,
            pb::UpdateConfigurationRequest {
                configuration_id: id.clone(),
                server_properties: format!("num.partitions={value}\n"),
                ..Default::default()
            },
        )
    };
    let last = h
        .configurations
        .update_configuration(update(50))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.latest_revision.unwrap().revision, REVISIONS_MAX as u64);
    let before = h.store.state();
    let err = h
        .configurations
        .update_configuration(update(51))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("REVISIONS_MAX = 50"),
        "{}",
        err.message()
    );
    assert_eq!(h.store.state(), before, "nothing was proposed");
}
