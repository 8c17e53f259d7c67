//! The web console: plain HTML, CSS and JavaScript (ES modules, no build step) served by the
//! control plane at `/console` on the API's port, with `/` redirecting there.
//!
//! # How it fits
//!
//! The console is one more client of the REST API (`/v1/...`, [`crate::rest`]): the browser
//! keeps the bearer token the user pasted (in `sessionStorage`, gone when the tab closes or on
//! sign-out) and sends it with every call, so authentication, roles, validation and errors are
//! exactly the API's. This module only hands out files; it never sees a token.
//!
//! ```text
//!  GET /                      302 -> /console
//!  GET /console, /console/    index.html (the single page; the route is in the URL's #fragment)
//!  GET /console/<file>        one of ASSETS (console.css, js/*.js, ...)
//!  GET /console/config.json   what the pages need that the API does not say (offered versions)
//! ```
//!
//! Every asset is compiled into the binary (`include_bytes!` of `control-plane/console/`), so
//! the console needs neither a separate server nor anything from the network. Responses carry a
//! Content-Security-Policy allowing this origin only, so no third-party script, style or
//! connection can ever run in the page.
//!
//! # Simplifications
//!
//! - Assets are served with `Cache-Control: no-cache` and no ETag: they are small, and a
//!   browser never runs a stale console after an upgrade.
//! - `config.json` exists because the API has no call that lists the Kafka versions a
//!   deployment offers; it holds only what [`ApiConfig`] says.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};

use crate::api::ApiConfig;

/// Where the console lives.
pub const CONSOLE_PATH: &str = "/console";

/// The policy on every console response: this origin only, no framing, no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// One embedded file.
struct Asset {
    /// Its path under `/console/`.
    path: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes, compiled in.
    bytes: &'static [u8],
}

/// Declares an [`Asset`] from a file under `control-plane/console/`.
macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../console/", $path)),
        }
    };
}

/// Every file of the console.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", "text/javascript; charset=utf-8"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/ui.js", "text/javascript; charset=utf-8"),
    asset!("js/signin.js", "text/javascript; charset=utf-8"),
    asset!("js/clusters.js", "text/javascript; charset=utf-8"),
    asset!("js/create.js", "text/javascript; charset=utf-8"),
    asset!("js/cluster.js", "text/javascript; charset=utf-8"),
    asset!("js/hosts.js", "text/javascript; charset=utf-8"),
];

/// The console's routes, to merge into the API's router. `config` is the API's, so that the
/// console offers what the API accepts.
pub fn router(config: &ApiConfig) -> Router {
    let config_json: Arc<[u8]> = serde_json::to_vec(&serde_json::json!({
        "kafkaVersions": config.kafka_versions,
    }))
    .expect("a JSON value serializes")
    .into();
    Router::new()
        .route("/", get(|| async { redirect(CONSOLE_PATH) }))
        .route(CONSOLE_PATH, get(|| async { serve("index.html") }))
        .route("/console/", get(|| async { serve("index.html") }))
        .route(
            "/console/config.json",
            get(move || {
                let body = Arc::clone(&config_json);
                async move { response(StatusCode::OK, "application/json", body.to_vec()) }
            }),
        )
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>| async move { serve(&path) }),
        )
}

/// The asset at `path`, or 404.
fn serve(path: &str) -> http::Response<Body> {
    match ASSETS.iter().find(|asset| asset.path == path) {
        Some(asset) => response(StatusCode::OK, asset.content_type, asset.bytes.to_vec()),
        None => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no console file {path}\n").into_bytes(),
        ),
    }
}

/// A response with the console's headers.
fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// 302 to `location`.
fn redirect(location: &'static str) -> http::Response<Body> {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_present_and_index_references_only_served_files() {
        let index = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.path);
        }
        // Every `/console/...` reference in any asset names an asset (or config.json).
        for asset in ASSETS
            .iter()
            .filter(|a| a.content_type.starts_with("text/"))
        {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            for (i, _) in text.match_indices("/console/") {
                let rest = &text[i + "/console/".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "./-_".contains(c)))
                    .unwrap_or(rest.len());
                let name = &rest[..end];
                if name.is_empty() || name == "config.json" || name.ends_with('/') {
                    continue;
                }
                assert!(
                    ASSETS.iter().any(|a| a.path == name),
                    "{} references /console/{name}, which is not served",
                    asset.path
                );
            }
        }
        assert!(index.contains("/console/js/app.js"));
    }

    #[test]
    fn no_asset_loads_anything_from_the_network() {
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.bytes);
            for needle in ["http://", "https://", "//cdn", "@import url("] {
                // The SVG's xmlns is a name, not a fetch.
                let allowed = text.matches("http://www.w3.org/2000/svg").count();
                let found = text.matches(needle).count();
                let found = if needle == "http://" {
                    found - allowed
                } else {
                    found
                };
                assert_eq!(found, 0, "{} mentions {needle}", asset.path);
            }
        }
    }

    #[test]
    fn unknown_files_are_404_and_known_ones_have_their_type() {
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
        let css = serve("console.css");
        assert_eq!(css.status(), StatusCode::OK);
        assert_eq!(
            css.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert!(css.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
