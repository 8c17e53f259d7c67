//! The REST/JSON face of the control-plane API: the gRPC `ClusterService`,
//! `OperationService` and `HostService` under `/v1/...`, and their OpenAPI document at
//! `/openapi.json`, on the gRPC port.
//!
//! # How it fits
//!
//! There is one API, defined in `controlplane.proto` and implemented once in [`crate::api`].
//! REST is a translation at the edge, nothing more:
//!
//! ```text
//!  HTTP/1.1 or h2c ──► tonic server (quorum's listener)
//!                        ├─ /ferry.controlplane.v1.ClusterService/...  gRPC (Api)
//!                        ├─ /ferry.quorum.v1.Raft/...                  raft
//!                        └─ anything else ──► Rest (the axum fallback)
//!                              ├─ /openapi.json         the document
//!                              └─ /v1/...               route table ──► the same Api trait
//!                                                                       method as gRPC
//! ```
//!
//! A REST call finds its [`routes::Route`], builds the gRPC request message from the JSON body
//! or from the path and query (with the serde impls `pbjson-build` generated for the proto
//! messages: the proto3 JSON mapping), puts the `Authorization` header into the request's
//! metadata, and calls the service trait method the gRPC server calls. Authentication, role
//! checks, validation and errors are therefore identical; a [`tonic::Status`] becomes an HTTP
//! status and one JSON body ([`error`]). The response message is serialized with the same
//! mapping: lowerCamelCase names, enums by name, 64-bit integers as strings, every field
//! present (message-typed fields are omitted when unset). Input accepts what the mapping says
//! parsers accept (proto field names too, enum numbers, integers as strings), and refuses
//! unknown fields.
//!
//! Every success is `200 OK` with the response message.
//!
//! # Routes
//!
//! | method | path | gRPC |
//! |---|---|---|
//! | POST | `/v1/clusters` (body: CreateClusterRequest) | ClusterService.CreateCluster |
//! | GET | `/v1/clusters?namePrefix=&pageSize=&pageToken=` | ClusterService.ListClusters |
//! | GET | `/v1/clusters/{cluster_id}` | ClusterService.GetCluster |
//! | DELETE | `/v1/clusters/{cluster_id}?currentVersion=` | ClusterService.DeleteCluster |
//! | GET | `/v1/clusters/{cluster_id}/bootstrap-brokers` | ClusterService.GetBootstrapBrokers |
//! | GET | `/v1/clusters/{cluster_id}/nodes?pageSize=&pageToken=` | ClusterService.ListNodes |
//! | GET | `/v1/clusters/{cluster_id}/operations?pageSize=&pageToken=` | OperationService.ListOperations |
//! | GET | `/v1/operations/{operation_id}` | OperationService.GetOperation |
//! | GET | `/v1/hosts?pageSize=&pageToken=` | HostService.ListHosts |
//! | GET | `/openapi.json` (no token needed) | — |
//!
//! The table is [`routes::ROUTES`], which both the router and the OpenAPI document read.
//!
//! # Limits and simplifications
//!
//! - A request body over [`REQUEST_BODY_BYTES_MAX`] is refused (413) before it is read past
//!   the limit, and before authentication (DESIGN.md section 8: size limits first).
//! - The request is decoded before the service authenticates it, so a malformed request
//!   without a token is a 400, not a 401: the REST layer only decodes, the service decides.
//! - A handler that panics (a bug) answers 500 instead of dropping the connection.
//! - No content negotiation: responses are always `application/json`; request bodies must be
//!   JSON (`Content-Type: application/json`, or none).

pub mod error;
pub mod openapi;
pub mod routes;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::Body;
use ferry_proto::controlplane::v1::cluster_service_server::ClusterService;
use ferry_proto::controlplane::v1::configuration_service_server::ConfigurationService;
use ferry_proto::controlplane::v1::host_service_server::HostService;
use ferry_proto::controlplane::v1::operation_service_server::OperationService;
use futures::FutureExt as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tonic::Code;
use tonic::service::Routes;

pub use error::{ErrorBody, FieldViolation, RestError, code_name, http_status};
use openapi::Descriptors;
use routes::{Found, ROUTES, Route, Rpc};

use crate::api::{Api, status};
use crate::auth::AuthError;
use crate::store::Store;

/// The largest request body read: 1 MiB, far above any valid CreateClusterRequest (50 tags,
/// a few dozen broker configs). Beyond it the request is refused with 413.
pub const REQUEST_BODY_BYTES_MAX: usize = 1 << 20;
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// `grpc` (the gRPC services, as a tonic router) with the REST face as the fallback for every
/// path they do not claim. Serve the result with `accept_http1(true)` so that plain HTTP/1.1
/// clients (curl, browsers) reach it.
pub fn with_rest<S: Store>(api: Api<S>, grpc: Routes) -> Routes {
    let rest = Rest::new(api);
    let router = grpc
        .into_axum_router()
        .fallback(move |request: http::Request<Body>| {
            let rest = rest.clone();
            async move { rest.handle(request).await }
        });
    Routes::from(router)
}

/// One query parameter a route takes.
#[derive(Debug)]
struct QueryParam {
    /// Its proto3 JSON name (`pageSize`), the documented one.
    json_name: String,
    /// Its proto field name (`page_size`), also accepted.
    proto_name: String,
}

/// What every request shares, built once.
#[derive(Debug)]
struct Shared {
    /// The OpenAPI document, serialized.
    openapi: Vec<u8>,
    /// The query parameters of each route, in [`ROUTES`] order.
    query_params: Vec<Vec<QueryParam>>,
}

/// The REST face over an [`Api`]. Cheap to clone.
pub struct Rest<S: Store> {
    /// The services REST calls, the same as gRPC's.
    api: Api<S>,
    /// The document and the route details.
    shared: Arc<Shared>,
}

impl<S: Store> Clone for Rest<S> {
    fn clone(&self) -> Self {
        Rest {
            api: self.api.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Store> Rest<S> {
    /// The REST face of `api`, with its OpenAPI document built from the descriptors.
    ///
    /// # Panics
    ///
    /// If the route table names a method the proto lacks (a bug, caught by the tests).
    pub fn new(api: Api<S>) -> Self {
        let descriptors = Descriptors::load();
        let document = openapi::document(&descriptors);
        let query_params = ROUTES
            .iter()
            .map(|route| {
                descriptors
                    .query_params(route)
                    .into_iter()
                    .map(|field| QueryParam {
                        json_name: openapi::json_name(field),
                        proto_name: field.name().to_string(),
                    })
                    .collect()
            })
            .collect();
        Rest {
            api,
            shared: Arc::new(Shared {
                openapi: serde_json::to_vec_pretty(&document).expect("a JSON value serializes"),
                query_params,
            }),
        }
    }

    /// Answers one HTTP request; never fails (errors are responses).
    pub async fn handle(&self, request: http::Request<Body>) -> http::Response<Body> {
        match AssertUnwindSafe(self.respond(request)).catch_unwind().await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => err.into_response(),
            Err(_) => RestError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                "INTERNAL",
                "the control plane failed while handling the request (a bug; see its log)",
            )
            .into_response(),
        }
    }

    /// Routes, decodes, calls and encodes.
    async fn respond(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, RestError> {
        if is_grpc(request.headers()) {
            // A gRPC call to a service this server does not have: answer as gRPC would.
            let status = tonic::Status::unimplemented(format!(
                "no gRPC method {} here",
                request.uri().path()
            ));
            return Ok(status.into_http());
        }
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        if path == OPENAPI_PATH {
            if parts.method != http::Method::GET {
                return Err(method_not_allowed(path, &["GET"]));
            }
            return Ok(json_response(StatusCode::OK, self.shared.openapi.clone()));
        }
        let (route, path_params) = match routes::find(&parts.method, path) {
            Found::Route(route, params) => (route, params),
            Found::MethodNotAllowed(allowed) => return Err(method_not_allowed(path, &allowed)),
            Found::BadPath(err) => return Err(RestError::malformed(err)),
            Found::NotFound => {
                return Err(RestError::new(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    "ROUTE_NOT_FOUND",
                    format!("no route {path}; the routes are listed at {OPENAPI_PATH}"),
                ));
            }
        };

        let mut fields = if route.body {
            read_json_object(&parts.headers, body).await?
        } else {
            Map::new()
        };
        self.bind_query(route, parts.uri.query().unwrap_or_default(), &mut fields)?;
        for (field, value) in path_params {
            fields.insert(field.to_string(), Value::String(value));
        }
        let authorization = parts.headers.get(header::AUTHORIZATION);
        let json = self.call(route.rpc, fields, authorization).await?;
        Ok(json_response(StatusCode::OK, json))
    }

    /// Adds the query's parameters to `fields`, refusing any the route does not take.
    fn bind_query(
        &self,
        route: &Route,
        query: &str,
        fields: &mut Map<String, Value>,
    ) -> Result<(), RestError> {
        let index = ROUTES
            .iter()
            .position(|r| r == route)
            .expect("routes come from ROUTES");
        let allowed = &self.shared.query_params[index];
        for (name, value) in routes::parse_query(query).map_err(RestError::malformed)? {
            let Some(param) = allowed
                .iter()
                .find(|p| p.json_name == name || p.proto_name == name)
            else {
                let names: Vec<&str> = allowed.iter().map(|p| p.json_name.as_str()).collect();
                return Err(RestError::malformed(if names.is_empty() {
                    format!("{} {} takes no query parameters", route.method, route.path)
                } else {
                    format!(
                        "unknown query parameter `{name}`; {} {} takes {}",
                        route.method,
                        route.path,
                        names.join(", ")
                    )
                }));
            };
            if fields.contains_key(&param.json_name) {
                return Err(RestError::malformed(format!(
                    "query parameter `{name}` given more than once"
                )));
            }
            fields.insert(param.json_name.clone(), Value::String(value));
        }
        Ok(())
    }

    /// Calls the service method behind `rpc` with the request built from `fields`.
    async fn call(
        &self,
        rpc: Rpc,
        fields: Map<String, Value>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Vec<u8>, RestError> {
        let api = &self.api;
        let auth = authorization;
        match rpc {
            Rpc::CreateCluster => unary(fields, auth, |r| api.create_cluster(r)).await,
            Rpc::ListClusters => unary(fields, auth, |r| api.list_clusters(r)).await,
            Rpc::GetCluster => unary(fields, auth, |r| api.get_cluster(r)).await,
            Rpc::DeleteCluster => unary(fields, auth, |r| api.delete_cluster(r)).await,
            Rpc::GetBootstrapBrokers => unary(fields, auth, |r| api.get_bootstrap_brokers(r)).await,
            Rpc::ListNodes => unary(fields, auth, |r| api.list_nodes(r)).await,
            Rpc::UpdateBrokerCount => unary(fields, auth, |r| api.update_broker_count(r)).await,
            Rpc::UpdateTags => unary(fields, auth, |r| api.update_tags(r)).await,
            Rpc::ListOperations => unary(fields, auth, |r| api.list_operations(r)).await,
            Rpc::GetOperation => unary(fields, auth, |r| api.get_operation(r)).await,
            Rpc::ListHosts => unary(fields, auth, |r| api.list_hosts(r)).await,
            Rpc::UpdateClusterConfiguration => {
                unary(fields, auth, |r| api.update_cluster_configuration(r)).await
            }
            Rpc::CreateConfiguration => unary(fields, auth, |r| api.create_configuration(r)).await,
            Rpc::ListConfigurations => unary(fields, auth, |r| api.list_configurations(r)).await,
            Rpc::GetConfiguration => unary(fields, auth, |r| api.get_configuration(r)).await,
            Rpc::UpdateConfiguration => unary(fields, auth, |r| api.update_configuration(r)).await,
            Rpc::DeleteConfiguration => unary(fields, auth, |r| api.delete_configuration(r)).await,
            Rpc::ListConfigurationRevisions => {
                unary(fields, auth, |r| api.list_configuration_revisions(r)).await
            }
            Rpc::GetConfigurationRevision => {
                unary(fields, auth, |r| api.get_configuration_revision(r)).await
            }
        }
    }
}

/// Decodes `fields` into the request message, calls `method` with it and the `Authorization`
/// header as metadata, and encodes the response message.
async fn unary<Req, Resp, F, Fut>(
    fields: Map<String, Value>,
    authorization: Option<&HeaderValue>,
    method: F,
) -> Result<Vec<u8>, RestError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let message: Req = serde_json::from_value(Value::Object(fields))
        .map_err(|err| RestError::malformed(format!("invalid request: {err}")))?;
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        let value = value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                status::unauthenticated(&AuthError::Malformed(
                    "the authorization header is not printable ASCII".into(),
                ))
            })?;
        request.metadata_mut().insert("authorization", value);
    }
    let response = method(request).await?;
    serde_json::to_vec(response.get_ref()).map_err(|err| {
        RestError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            "INTERNAL",
            format!("the response could not be encoded as JSON: {err}"),
        )
    })
}

/// The body as a JSON object, after checking its type and size.
async fn read_json_object(
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, RestError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(RestError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("the body must be application/json, not {essence:?}"),
            ));
        }
    }
    let too_large = || {
        RestError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::InvalidArgument,
            "BODY_TOO_LARGE",
            format!("the body is larger than {REQUEST_BODY_BYTES_MAX} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > REQUEST_BODY_BYTES_MAX as u64) {
        return Err(too_large());
    }
    let bytes = Limited::new(body, REQUEST_BODY_BYTES_MAX)
        .collect()
        .await
        .map_err(|err| {
            if err.downcast_ref::<LengthLimitError>().is_some() {
                too_large()
            } else {
                RestError::malformed(format!("reading the body: {err}"))
            }
        })?
        .to_bytes();
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(RestError::malformed("the body must be a JSON object")),
        Err(err) => Err(RestError::malformed(format!("the body is not JSON: {err}"))),
    }
}

/// Whether the request is a gRPC call (by its content type).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// 405 listing the methods `path` allows.
fn method_not_allowed(path: &str, allowed: &[&str]) -> RestError {
    let allow = allowed.join(", ");
    let mut err = RestError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unimplemented,
        "METHOD_NOT_ALLOWED",
        format!("{path} allows {allow}"),
    );
    err.allow = Some(allow);
    err
}

/// A response with a JSON body.
fn json_response(status: StatusCode, json: Vec<u8>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(json));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
