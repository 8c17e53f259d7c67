//! The REST/JSON API in process over real HTTP/1.1: the services over a `MemoryStore` with
//! hosts in zones a, b and c, served by tonic with the REST face as the router's fallback
//! (exactly as `Server` serves them), called with a plain hyper client. One test also runs a
//! whole `Server` (quorum store) to check gRPC and REST share its port.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_control_plane::api::{Api, ApiConfig};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::model::{HostCapacity, HostRegistration, OperationState, OperationUpdate};
use ferry_control_plane::placement::PortRange;
use ferry_control_plane::rest::routes::ROUTES;
use ferry_control_plane::rest::{self, REQUEST_BODY_BYTES_MAX};
use ferry_control_plane::server::{Server, ServerOptions};
use ferry_control_plane::store::{MemoryStore, Store};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::service::Routes;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
const ISSUER: &str = "ferry-control-plane";
const AUDIENCE: &str = "ferry-api";

/// An HTTP/1.1 client of one server.
struct Http {
    /// The client (HTTP/1.1 only, as curl without flags).
    client: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port`.
    base: String,
}

/// A response: status, headers and the body parsed as JSON.
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    json: Value,
}

impl Http {
    fn new(address: SocketAddr) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{address}"),
        }
    }

    /// Sends `method path` with an optional bearer token and body (JSON content type unless
    /// `content_type` says otherwise).
    async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(bytes))).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or_else(|err| {
            panic!(
                "{method} {path}: the body is not JSON ({err}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send_raw("GET", path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send_raw("POST", path, Some(token), Some(("application/json", bytes)))
            .await
    }

    async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send_raw("DELETE", path, Some(token), None).await
    }

    async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send_raw("PUT", path, Some(token), Some(("application/json", bytes)))
            .await
    }
}

struct Harness {
    store: Arc<MemoryStore>,
    issuer: TokenIssuer,
    http: Http,
}

impl Harness {
    /// Serves the API (gRPC + REST, as `Server` does) over a store with one host taking
    /// `max_nodes` nodes in each of zones a, b and c.
    async fn start(max_nodes: u32) -> Harness {
        let store = Arc::new(MemoryStore::new());
        for zone in ["a", "b", "c"] {
            store
                .register_host(HostRegistration {
                    id: format!("host-{zone}"),
                    zone: zone.into(),
                    address: format!("10.0.{}.1", zone.as_bytes()[0]),
                    ports: PortRange { lo: 9000, hi: 9099 },
                    capacity: HostCapacity {
                        max_nodes,
                        storage_bytes: 1 << 42,
                    },
                })
                .await
                .unwrap();
        }
        let issuer = TokenIssuer::new(SECRET, ISSUER, AUDIENCE).unwrap();
        let api = Api::new(Arc::clone(&store), issuer.clone(), ApiConfig::default());
        let grpc = Routes::new(api.cluster_service())
            .add_service(api.operation_service())
            .add_service(api.host_service());
        let routes = rest::with_rest(api, grpc);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .accept_http1(true)
                .add_routes(routes)
                .serve_with_incoming(incoming),
        );
        Harness {
            store,
            issuer,
            http: Http::new(address),
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

/// A valid CreateClusterRequest body for a 3+3 cluster named `name`.
fn create_body(name: &str) -> Value {
    json!({
        "spec": {
            "name": name,
            "kafkaVersion": "3.9.0",
            "brokerCount": 3,
            "controllerCount": 3,
            "zones": ["a", "b", "c"],
            "storagePerBrokerBytes": "1073741824",
            "brokerConfig": { "num.partitions": "3" },
            "tags": { "team": "payments" },
        },
    })
}

/// Asserts an error reply: its HTTP status, gRPC code name and reason.
#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str, reason: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["code"], code, "{}", reply.json);
    assert_eq!(reply.json["reason"], reason, "{}", reply.json);
    assert!(
        reply.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(reply.json["fieldViolations"].is_array(), "{}", reply.json);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn create_get_list_delete_round_trip() {
    let h = Harness::start(10).await;
    let admin = h.token("acme", Role::Admin);

    let created = h
        .http
        .post("/v1/clusters", &admin, &create_body("orders"))
        .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let cluster = &created.json["cluster"];
    let operation = &created.json["operation"];
    let id = cluster["id"].as_str().unwrap().to_string();
    // The proto3 JSON mapping: lowerCamelCase names, enums by name, 64-bit integers as strings,
    // every scalar field present even at its default.
    assert_eq!(cluster["tenant"], "acme");
    assert_eq!(cluster["spec"]["name"], "orders");
    assert_eq!(cluster["spec"]["brokerCount"], 3);
    assert_eq!(cluster["spec"]["storagePerBrokerBytes"], "1073741824");
    assert_eq!(cluster["spec"]["tags"]["team"], "payments");
    assert_eq!(cluster["status"]["state"], "CLUSTER_STATE_CREATING");
    assert!(cluster["currentVersion"].is_string());
    assert!(cluster["createdAt"].is_string());
    assert_eq!(cluster["activeOperationId"], operation["id"]);
    assert_eq!(operation["type"], "OPERATION_TYPE_CREATE");
    assert_eq!(operation["state"], "OPERATION_STATE_PENDING");
    assert_eq!(operation["clusterId"], id.as_str());
    assert!(cluster.get("current_version").is_none());

    let got = h.http.get(&format!("/v1/clusters/{id}"), &admin).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.json, cluster);

    // Proto field names are accepted on input too.
    let mut snake = create_body("payments");
    snake["client_request_id"] = json!("retry-1");
    let spec = snake["spec"].as_object_mut().unwrap();
    let count = spec.remove("brokerCount").unwrap();
    spec.insert("broker_count".into(), count);
    let second = h.http.post("/v1/clusters", &admin, &snake).await;
    assert_eq!(second.status, 200, "{}", second.json);
    // The same client_request_id again: the same cluster.
    let retry = h.http.post("/v1/clusters", &admin, &snake).await;
    assert_eq!(retry.status, 200, "{}", retry.json);
    assert_eq!(retry.json["cluster"]["id"], second.json["cluster"]["id"]);

    // Listing: sorted by name, filtered by prefix, paged.
    let page = h.http.get("/v1/clusters?pageSize=1", &admin).await;
    assert_eq!(page.status, 200, "{}", page.json);
    assert_eq!(page.json["clusters"][0]["spec"]["name"], "orders");
    let token = page.json["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());
    let next = h
        .http
        .get(
            &format!("/v1/clusters?pageSize=1&pageToken={token}"),
            &admin,
        )
        .await;
    assert_eq!(next.json["clusters"][0]["spec"]["name"], "payments");
    assert_eq!(next.json["nextPageToken"], "");
    let filtered = h.http.get("/v1/clusters?namePrefix=pay", &admin).await;
    let names: Vec<&Value> = filtered.json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["spec"]["name"])
        .collect();
    assert_eq!(names, [&json!("payments")]);

    // Operations, nodes, bootstrap brokers, hosts.
    let ops = h
        .http
        .get(&format!("/v1/clusters/{id}/operations"), &admin)
        .await;
    assert_eq!(ops.status, 200, "{}", ops.json);
    assert_eq!(ops.json["operations"][0]["id"], operation["id"]);
    let op_id = operation["id"].as_str().unwrap();
    let op = h.http.get(&format!("/v1/operations/{op_id}"), &admin).await;
    assert_eq!(op.status, 200);
    assert_eq!(op.json["type"], "OPERATION_TYPE_CREATE");
    let nodes = h
        .http
        .get(&format!("/v1/clusters/{id}/nodes"), &admin)
        .await;
    assert_eq!(nodes.status, 200, "{}", nodes.json);
    assert!(nodes.json["nodes"].is_array());
    let bootstrap = h
        .http
        .get(&format!("/v1/clusters/{id}/bootstrap-brokers"), &admin)
        .await;
    assert_eq!(bootstrap.status, 200, "{}", bootstrap.json);
    assert!(bootstrap.json["bootstrapBrokers"].is_string());
    let hosts = h.http.get("/v1/hosts", &admin).await;
    assert_eq!(hosts.status, 200, "{}", hosts.json);
    assert_eq!(hosts.json["hosts"][0]["id"], "host-a");
    assert_eq!(hosts.json["hosts"][0]["health"], "HOST_HEALTH_UNKNOWN");
    assert_eq!(hosts.json["hosts"][0]["capacity"]["maxNodes"], 10);

    // Delete: refused while CREATE runs, and with a stale version; then accepted.
    let busy = h.http.delete(&format!("/v1/clusters/{id}"), &admin).await;
    assert_error(&busy, 409, "ABORTED", "OPERATION_IN_PROGRESS");
    h.store
        .update_operation(
            "acme",
            op_id,
            OperationUpdate {
                state: Some(OperationState::Succeeded),
                progress_percent: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let current = h.http.get(&format!("/v1/clusters/{id}"), &admin).await;
    let version: u64 = current.json["currentVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stale = h
        .http
        .delete(
            &format!("/v1/clusters/{id}?currentVersion={}", version + 7),
            &admin,
        )
        .await;
    assert_error(&stale, 409, "ABORTED", "VERSION_MISMATCH");
    let deleted = h
        .http
        .delete(
            &format!("/v1/clusters/{id}?currentVersion={version}"),
            &admin,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.json);
    assert_eq!(
        deleted.json["cluster"]["status"]["state"],
        "CLUSTER_STATE_DELETING"
    );
    assert_eq!(deleted.json["operation"]["type"], "OPERATION_TYPE_DELETE");
}

#[tokio::test]
async fn bad_tokens_are_401_with_the_reason() {
    let h = Harness::start(10).await;
    let p = principal("acme", Role::Admin);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = h.issuer.mint_at(&p, Duration::from_secs(60), now - 3600);
    let other = TokenIssuer::new(b"another-secret-another-secret-another", ISSUER, AUDIENCE)
        .unwrap()
        .mint(&p, Duration::from_secs(600));
    let claims = json!({
        "sub": "mallory", "tenant": "acme", "role": "admin", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600,
    });
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let cases: [(Option<&str>, &str); 5] = [
        (None, "no bearer token"),
        (Some("garbage"), "malformed"),
        (Some(&expired), "expired"),
        (Some(&other), "signature"),
        (Some(&alg_none), "algorithm"),
    ];
    for (token, expected) in cases {
        for path in ["/v1/clusters", "/v1/hosts", "/v1/operations/op-1"] {
            let reply = h.http.send_raw("GET", path, token, None).await;
            assert_error(&reply, 401, "UNAUTHENTICATED", "UNAUTHENTICATED");
            let message = reply.json["message"].as_str().unwrap();
            assert!(message.contains(expected), "{token:?}: {message}");
        }
        let bytes = serde_json::to_vec(&create_body("x")).unwrap();
        let reply = h
            .http
            .send_raw(
                "POST",
                "/v1/clusters",
                token,
                Some(("application/json", bytes)),
            )
            .await;
        assert_error(&reply, 401, "UNAUTHENTICATED", "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn service_errors_keep_their_reason_and_violations() {
    let h = Harness::start(2).await;
    let admin = h.token("acme", Role::Admin);
    let viewer = h.token("acme", Role::Viewer);

    // Every violation at once, as the gRPC BadRequest details list them.
    let invalid = json!({ "spec": {
        "name": "no spaces allowed",
        "kafkaVersion": "3.9.0",
        "brokerCount": 4,
        "controllerCount": 4,
        "zones": ["a", "b", "c"],
        "storagePerBrokerBytes": "1073741824",
    }});
    let reply = h.http.post("/v1/clusters", &admin, &invalid).await;
    assert_error(&reply, 400, "INVALID_ARGUMENT", "FIELD_VIOLATIONS");
    let fields: BTreeSet<&str> = reply.json["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(v["description"].as_str().is_some_and(|d| !d.is_empty()));
            v["field"].as_str().unwrap()
        })
        .collect();
    assert_eq!(fields.len(), 3, "{}", reply.json);
    assert!(fields.iter().any(|f| f.ends_with("name")), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.ends_with("broker_count")),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(|f| f.ends_with("controller_count")),
        "{fields:?}"
    );

    // A viewer may read but not create.
    let reply = h
        .http
        .post("/v1/clusters", &viewer, &create_body("orders"))
        .await;
    assert_error(&reply, 403, "PERMISSION_DENIED", "PERMISSION_DENIED");

    let created = h
        .http
        .post("/v1/clusters", &admin, &create_body("orders"))
        .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let id = created.json["cluster"]["id"].as_str().unwrap();

    // A duplicate name in the tenant.
    let reply = h
        .http
        .post("/v1/clusters", &admin, &create_body("orders"))
        .await;
    assert_error(&reply, 409, "ALREADY_EXISTS", "NAME_TAKEN");

    // One host per zone taking two nodes: six brokers and three controllers do not fit.
    let other = h.token("globex", Role::Admin);
    let mut big = create_body("big");
    big["spec"]["brokerCount"] = json!(6);
    let reply = h.http.post("/v1/clusters", &other, &big).await;
    assert_error(&reply, 409, "FAILED_PRECONDITION", "INSUFFICIENT_CAPACITY");

    // Another tenant's cluster is not found, exactly like a missing one.
    for path in [
        format!("/v1/clusters/{id}"),
        format!("/v1/clusters/{id}/nodes"),
        format!("/v1/clusters/{id}/bootstrap-brokers"),
        format!("/v1/clusters/{id}/operations"),
        "/v1/clusters/cl-missing".to_string(),
    ] {
        let reply = h.http.get(&path, &other).await;
        assert_error(&reply, 404, "NOT_FOUND", "NOT_FOUND");
    }
    let reply = h.http.delete(&format!("/v1/clusters/{id}"), &other).await;
    assert_error(&reply, 404, "NOT_FOUND", "NOT_FOUND");
    let listed = h.http.get("/v1/clusters", &other).await;
    assert_eq!(listed.json["clusters"], json!([]));

    // Hosts are for admins only.
    let reply = h.http.get("/v1/hosts", &viewer).await;
    assert_error(&reply, 403, "PERMISSION_DENIED", "PERMISSION_DENIED");
}

#[tokio::test]
async fn malformed_requests_are_4xx() {
    let h = Harness::start(10).await;
    let admin = h.token("acme", Role::Admin);
    let json_body = |s: &str| Some(("application/json", s.as_bytes().to_vec()));
    let post = |body| h.http.send_raw("POST", "/v1/clusters", Some(&admin), body);

    assert_error(
        &post(json_body("{not json")).await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    assert_error(
        &post(json_body("[1, 2]")).await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    assert_error(
        &post(json_body("")).await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    let unknown = post(json_body(r#"{"spec": {"nmae": "typo"}}"#)).await;
    assert_error(&unknown, 400, "INVALID_ARGUMENT", "MALFORMED_REQUEST");
    assert!(unknown.json["message"].as_str().unwrap().contains("nmae"));
    let wrong_type = post(json_body(r#"{"spec": {"brokerCount": "many"}}"#)).await;
    assert_error(&wrong_type, 400, "INVALID_ARGUMENT", "MALFORMED_REQUEST");
    let form = post(Some(("application/x-www-form-urlencoded", b"a=b".to_vec()))).await;
    assert_error(&form, 415, "INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE");
    let huge = format!(
        r#"{{"spec": {{"name": "{}"}}}}"#,
        "x".repeat(REQUEST_BODY_BYTES_MAX)
    );
    assert_error(
        &post(json_body(&huge)).await,
        413,
        "INVALID_ARGUMENT",
        "BODY_TOO_LARGE",
    );

    let get = |path: &'static str| h.http.get(path, &admin);
    assert_error(&get("/v1/nope").await, 404, "NOT_FOUND", "ROUTE_NOT_FOUND");
    assert_error(&get("/").await, 404, "NOT_FOUND", "ROUTE_NOT_FOUND");
    assert_error(
        &get("/v1/clusters/").await,
        404,
        "NOT_FOUND",
        "ROUTE_NOT_FOUND",
    );
    assert_error(
        &get("/v1/clusters?pageSize=abc").await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    assert_error(
        &get("/v1/clusters?pageSize=-1").await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    assert_error(
        &get("/v1/clusters?colour=red").await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    assert_error(
        &get("/v1/clusters?pageSize=1&page_size=2").await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    assert_error(
        &get("/v1/clusters/%ff%fe").await,
        400,
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
    );
    let reply = h
        .http
        .delete("/v1/clusters/cl-1?currentVersion=-3", &admin)
        .await;
    assert_error(&reply, 400, "INVALID_ARGUMENT", "MALFORMED_REQUEST");

    let put = h
        .http
        .send_raw("PUT", "/v1/clusters/cl-1", Some(&admin), None)
        .await;
    assert_error(&put, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED");
    assert_eq!(put.headers.get("allow").unwrap(), "GET, DELETE");
    let post_doc = h.http.send_raw("POST", "/openapi.json", None, None).await;
    assert_error(&post_doc, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let h = Harness::start(10).await;
    // No token needed for the document.
    let doc = h.http.send_raw("GET", "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json;
    assert_eq!(doc["openapi"], "3.1.0");
    for route in ROUTES {
        let operation = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
        assert_eq!(
            operation["operationId"],
            route.rpc.proto_name().1,
            "{} {}",
            route.method,
            route.path
        );
        assert!(operation["responses"]["200"].is_object());
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, ROUTES.len());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    // Every reference resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
    let op = &doc["components"]["schemas"]["Operation"];
    assert!(op["description"].as_str().unwrap().contains("long-running"));
    assert_eq!(
        op["properties"]["type"]["$ref"],
        "#/components/schemas/OperationType"
    );
}

/// Every `$ref` in `value`.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "$ref" => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn a_server_serves_grpc_and_rest_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServerOptions::new(dir.path(), "127.0.0.1:0".parse().unwrap(), SECRET.to_vec());
    let server = Server::bind(options).await.unwrap();
    let address = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let issuer = TokenIssuer::new(SECRET, ISSUER, AUDIENCE).unwrap();
    let token = issuer.mint(&principal("acme", Role::Viewer), Duration::from_secs(600));
    let http = Http::new(address);
    let doc = http.send_raw("GET", "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    let listed = http.get("/v1/clusters", &token).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(listed.json, json!({ "clusters": [], "nextPageToken": "" }));

    let mut grpc = ClusterServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::ListClustersRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let listed = grpc.list_clusters(request).await.unwrap().into_inner();
    assert!(listed.clusters.is_empty());

    stop.send(()).unwrap();
    running.await.unwrap();
}

#[tokio::test]
async fn configurations_over_rest() {
    let h = Harness::start(10).await;
    let admin = h.token("acme", Role::Admin);

    // Bad properties: 400 with a violation per line and key.
    let bad = h
        .http
        .post(
            "/v1/configurations",
            &admin,
            &json!({"name": "tuned", "serverProperties": "num.partitions=zero\nlisteners=x\n"}),
        )
        .await;
    assert_error(&bad, 400, "INVALID_ARGUMENT", "FIELD_VIOLATIONS");
    let fields: Vec<&str> = bad.json["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "server_properties[num.partitions]",
            "server_properties[listeners]"
        ]
    );

    let created = h
        .http
        .post(
            "/v1/configurations",
            &admin,
            &json!({"name": "tuned", "description": "five", "serverProperties": "num.partitions=5\n"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    assert_eq!(created.json["latestRevision"]["revision"], "1");

    let updated = h
        .http
        .put(
            &format!("/v1/configurations/{id}"),
            &admin,
            &json!({"description": "six", "serverProperties": "num.partitions=6\n"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.json);
    assert_eq!(updated.json["latestRevision"]["revision"], "2");

    let first = h
        .http
        .get(&format!("/v1/configurations/{id}/revisions/1"), &admin)
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["serverProperties"], "num.partitions=5\n");
    let missing = h
        .http
        .get(&format!("/v1/configurations/{id}/revisions/9"), &admin)
        .await;
    assert_error(&missing, 404, "NOT_FOUND", "NOT_FOUND");
    let revisions = h
        .http
        .get(&format!("/v1/configurations/{id}/revisions"), &admin)
        .await;
    let numbers: Vec<&str> = revisions.json["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["2", "1"]);
    let listed = h.http.get("/v1/configurations", &admin).await;
    assert_eq!(listed.json["configurations"][0]["id"], id.as_str());

    // Another tenant: 404 for everything.
    let other = h.token("globex", Role::Admin);
    let hidden = h
        .http
        .get(&format!("/v1/configurations/{id}"), &other)
        .await;
    assert_error(&hidden, 404, "NOT_FOUND", "NOT_FOUND");

    // A cluster on revision 2 holds the configuration: delete is 409 CONFIGURATION_IN_USE.
    let mut body = create_body("orders");
    body["spec"]["configuration"] = json!({"id": id, "revision": "2"});
    let cluster = h.http.post("/v1/clusters", &admin, &body).await;
    assert_eq!(cluster.status, 200, "{}", cluster.json);
    assert_eq!(
        cluster.json["cluster"]["spec"]["configuration"]["revision"],
        "2"
    );
    let refused = h
        .http
        .delete(&format!("/v1/configurations/{id}"), &admin)
        .await;
    assert_error(&refused, 409, "FAILED_PRECONDITION", "CONFIGURATION_IN_USE");
    let cluster_id = cluster.json["cluster"]["id"].as_str().unwrap();
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains(cluster_id),
        "{}",
        refused.json
    );

    // Applying a revision to a cluster still being created: 409 OPERATION_IN_PROGRESS.
    let busy = h
        .http
        .put(
            &format!("/v1/clusters/{cluster_id}/configuration"),
            &admin,
            &json!({"configuration": {"id": id, "revision": "1"}}),
        )
        .await;
    assert_error(&busy, 409, "ABORTED", "OPERATION_IN_PROGRESS");

    // Unused, it goes.
    let spare = h
        .http
        .post(
            "/v1/configurations",
            &admin,
            &json!({"name": "spare", "serverProperties": ""}),
        )
        .await;
    let spare_id = spare.json["id"].as_str().unwrap();
    let gone = h
        .http
        .delete(&format!("/v1/configurations/{spare_id}"), &admin)
        .await;
    assert_eq!(gone.status, 200, "{}", gone.json);
    let again = h
        .http
        .get(&format!("/v1/configurations/{spare_id}"), &admin)
        .await;
    assert_error(&again, 404, "NOT_FOUND", "NOT_FOUND");
}

/// The cluster ids of the nodes on the hosts of a `/v1/hosts` reply.
fn node_clusters(reply: &Reply) -> Vec<String> {
    reply.json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["nodes"].as_array().cloned().unwrap_or_default())
        .map(|n| n["clusterId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn over_rest_a_tenant_admin_sees_only_its_own_nodes_on_the_hosts() {
    let h = Harness::start(10).await;
    let acme = h.token("acme", Role::Admin);
    let globex = h.token("globex", Role::Admin);
    let operator = h.token("ops", Role::ServiceOperator);
    let mut ids = Vec::new();
    for token in [&acme, &globex] {
        let created = h
            .http
            .post("/v1/clusters", token, &create_body("orders"))
            .await;
        assert_eq!(created.status, 200, "{}", created.json);
        ids.push(created.json["cluster"]["id"].as_str().unwrap().to_string());
    }
    let assignment = |cluster_id: &str, node_id: i32| ferry_control_plane::model::HostAssignment {
        cluster_id: cluster_id.into(),
        node_id,
        role: ferry_control_plane::placement::Role::Broker,
        address: "10.0.97.1".into(),
        kafka_port: Some(9000 + node_id as u16),
        controller_port: None,
        admin_port: 9050 + node_id as u16,
        kafka_version: "3.9.0".into(),
        storage_bytes: 1 << 30,
        broker_config: Default::default(),
        controller_quorum_voters: vec![],
        config_fingerprint: String::new(),
    };
    h.store
        .set_assignments(
            "host-a",
            vec![assignment(&ids[0], 1), assignment(&ids[1], 2)],
            None,
        )
        .await
        .unwrap();

    let seen = h.http.get("/v1/hosts", &globex).await;
    assert_eq!(seen.status, 200, "{}", seen.json);
    assert_eq!(node_clusters(&seen), [ids[1].clone()]);
    assert!(!seen.json.to_string().contains(&ids[0]), "{}", seen.json);
    let fleet = h.http.get("/v1/hosts", &operator).await;
    assert_eq!(fleet.status, 200, "{}", fleet.json);
    assert_eq!(node_clusters(&fleet), ids);
}

#[tokio::test]
async fn over_rest_a_limit_is_429_naming_it() {
    use ferry_control_plane::model::limits::CLUSTERS_PER_TENANT_MAX;
    let h = Harness::start(10).await;
    let admin = h.token("acme", Role::Admin);
    for i in 0..CLUSTERS_PER_TENANT_MAX {
        let created = h
            .http
            .post("/v1/clusters", &admin, &create_body(&format!("c{i}")))
            .await;
        assert_eq!(created.status, 200, "{i}: {}", created.json);
    }
    let before = h.store.state();
    let refused = h
        .http
        .post("/v1/clusters", &admin, &create_body("one-more"))
        .await;
    assert_error(&refused, 429, "RESOURCE_EXHAUSTED", "LIMIT_REACHED");
    assert!(
        refused
            .json
            .to_string()
            .contains("CLUSTERS_PER_TENANT_MAX = 100"),
        "{}",
        refused.json
    );
    assert_eq!(h.store.state(), before, "nothing was written");
}
