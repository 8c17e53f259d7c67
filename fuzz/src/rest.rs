//! The control plane's REST face: an HTTP request as the router sees it, through routing, path
//! and query binding, JSON decoding (the proto3 JSON mapping), authentication, the API's
//! validation, and the store.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use ferry_control_plane::api::{Api, ApiConfig};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::model::{HostCapacity, HostRegistration};
use ferry_control_plane::placement::PortRange;
use ferry_control_plane::rest::Rest;
use ferry_control_plane::store::{MemoryStore, Store};

/// The API's token secret in the harness.
const SECRET: &[u8] = b"ferry-fuzz-rest-secret-0123456789abcdef";
/// The tenant the harness's admin token acts in.
pub const TENANT: &str = "fuzz";

/// The issuer and a tenant admin's bearer token, made once per process.
fn credentials() -> &'static (TokenIssuer, String) {
    static CREDENTIALS: OnceLock<(TokenIssuer, String)> = OnceLock::new();
    CREDENTIALS.get_or_init(|| {
        let issuer = TokenIssuer::new(SECRET, "ferry-control-plane", "ferry-api")
            .expect("the secret is long enough");
        let principal = Principal {
            subject: "fuzz-admin".into(),
            tenant: TENANT.into(),
            role: Role::Admin,
        };
        let token = issuer.mint(&principal, Duration::from_secs(365 * 24 * 3600));
        (issuer, format!("Bearer {token}"))
    })
}

/// The runtime the handler runs on (one per process).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime starts")
    })
}

/// `data` is `METHOD /path?query`, a newline, and the request body. The request is sent with
/// a tenant admin's token and `Content-Type: application/json` to the REST face of a fresh
/// API over a memory store with one host in each of zones a, b and c. Any status is fine; a
/// panic is a finding (the handler turns a panic into a 500, but the fuzzer's panic hook sees
/// it first).
pub fn rest_request(data: &[u8]) {
    let (line, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let Some((method, target)) = line.split_once(' ') else {
        return;
    };
    let (issuer, authorization) = credentials();
    let Ok(request) = http::Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::AUTHORIZATION, authorization.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    runtime().block_on(async {
        let store = Arc::new(MemoryStore::new());
        for zone in ["a", "b", "c"] {
            store
                .register_host(HostRegistration {
                    id: format!("host-{zone}"),
                    zone: zone.into(),
                    address: format!("10.0.0.{}", zone.as_bytes()[0]),
                    ports: PortRange { lo: 9000, hi: 9099 },
                    capacity: HostCapacity {
                        max_nodes: 12,
                        storage_bytes: 1 << 42,
                    },
                })
                .await
                .expect("a memory store registers a host");
        }
        let api = Api::new(store, issuer.clone(), ApiConfig::default());
        let _response = Rest::new(api).handle(request).await;
    });
}
