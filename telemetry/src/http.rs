//! The `/metrics` route: a registry's text, for Prometheus to scrape.
//!
//! [`metrics_router`] is an axum router with one route, merged by each process into the router
//! it already serves (a node's admin port, the control plane's public port), so there is no
//! extra listener. Encoding runs on the request's task; the registry's collectors read their
//! values at that moment (they take short locks, never await).
//!
//! An optional [`MetricsAuth`] decides from the request headers whether the caller may read
//! the metrics (the control plane requires a token); without one the route is open, like a
//! node's admin status, and the port is for operators to firewall.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::metrics::{CONTENT_TYPE, Registry, encode};

/// The path metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// Decides from a request's headers whether the caller may read the metrics.
pub type MetricsAuth = Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>;

/// What the route serves from.
#[derive(Clone)]
struct Scrape {
    /// The metrics.
    registry: Arc<Registry>,
    /// Who may read them; everyone when `None`.
    auth: Option<MetricsAuth>,
}

/// A router serving `GET /metrics` from `registry`: 200 with the OpenMetrics text, or 401
/// when `auth` refuses the request.
pub fn metrics_router<S>(registry: Arc<Registry>, auth: Option<MetricsAuth>) -> Router<S> {
    Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(Scrape { registry, auth })
}

async fn scrape(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    if let Some(auth) = &scrape.auth
        && !auth(&headers)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let text = encode(&scrape.registry);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, registry};
    use http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_metrics(router: Router, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut request = Request::get(METRICS_PATH);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn counted() -> Arc<Registry> {
        let mut registry = registry();
        let counter = Counter::<u64>::default();
        registry.register("scrapes", "Scrapes", counter.clone());
        counter.inc();
        Arc::new(registry)
    }

    #[tokio::test]
    async fn serves_the_registry_as_openmetrics_text() {
        let (status, content_type, body) = get_metrics(metrics_router(counted(), None), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, CONTENT_TYPE);
        assert!(body.contains("ferry_scrapes_total 1\n"), "{body}");
        assert!(body.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn refuses_callers_the_auth_refuses() {
        let auth: MetricsAuth = Arc::new(|headers: &HeaderMap| {
            headers
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v == "Bearer right")
        });
        let router = metrics_router(counted(), Some(auth));
        let (status, _, body) = get_metrics(router.clone(), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.is_empty(), "nothing leaks: {body}");
        let (status, _, _) =
            get_metrics(router.clone(), &[("authorization", "Bearer wrong")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, body) = get_metrics(router, &[("authorization", "Bearer right")]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("ferry_scrapes_total"));
    }
}
