//! REST errors: a gRPC [`Status`] (or a refusal of the REST layer itself) as an HTTP status and
//! one JSON body.
//!
//! Every error response has this body, whatever produced it:
//!
//! ```text
//! {
//!   "code": "INVALID_ARGUMENT",              the gRPC code's name
//!   "message": "name: is empty; ...",       the status message, a human sentence
//!   "reason": "FIELD_VIOLATIONS",            google.rpc.ErrorInfo reason ("" if none)
//!   "fieldViolations": [                     google.rpc.BadRequest ([] if none)
//!     {"field": "name", "description": "is empty"}
//!   ]
//! }
//! ```
//!
//! gRPC codes map to HTTP statuses as follows (the service's `reason` tells apart what shares
//! a status; see [`crate::api::status`] for which error gets which code and reason):
//!
//! | gRPC code | HTTP |
//! |---|---|
//! | INVALID_ARGUMENT, OUT_OF_RANGE | 400 |
//! | UNAUTHENTICATED | 401 |
//! | PERMISSION_DENIED | 403 |
//! | NOT_FOUND | 404 |
//! | ALREADY_EXISTS, ABORTED | 409 |
//! | FAILED_PRECONDITION | 409 |
//! | RESOURCE_EXHAUSTED | 429 |
//! | CANCELLED | 499 |
//! | UNIMPLEMENTED | 501 |
//! | UNAVAILABLE | 503 |
//! | DEADLINE_EXCEEDED | 504 |
//! | anything else | 500 |
//!
//! FAILED_PRECONDITION is 409, not 400: the API uses it for "the request is fine but the
//! world is not as it needs to be" (a cluster in the wrong state, not enough host capacity),
//! which a client resolves by changing the world and retrying the same request, as with the
//! other conflicts. DESIGN.md section 7 asks for 409 on conflicts.
//!
//! Refusals of the REST layer itself use the same body with their own reasons: an unknown
//! path (404, `ROUTE_NOT_FOUND`), a known path with another method (405, `METHOD_NOT_ALLOWED`,
//! with an `Allow` header), a body that is not JSON or not the message (400,
//! `MALFORMED_REQUEST`), a query parameter the route does not take (400,
//! `MALFORMED_REQUEST`), a body over [`super::REQUEST_BODY_BYTES_MAX`] (413,
//! `BODY_TOO_LARGE`), a content type other than JSON (415, `UNSUPPORTED_MEDIA_TYPE`).

use axum::body::Body;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The JSON body of every REST error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The gRPC code's name, e.g. `NOT_FOUND`.
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// A stable reason a program can branch on (the `google.rpc.ErrorInfo` reason); empty if
    /// none.
    pub reason: String,
    /// Every field violation (`google.rpc.BadRequest`); empty unless the request was invalid.
    pub field_violations: Vec<FieldViolation>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `zones[1]` or `broker_config[num.partitions]`
    /// (a spec's fields by their own names).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// An error response: its HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (boxed: errors travel in `Result`s, which stay small).
    pub body: Box<ErrorBody>,
    /// The methods the path allows, for the `Allow` header of a 405.
    pub allow: Option<String>,
}

impl RestError {
    /// A refusal of the REST layer itself (not of the service).
    pub fn new(status: StatusCode, code: Code, reason: &str, message: impl Into<String>) -> Self {
        RestError {
            status,
            body: Box::new(ErrorBody {
                code: code_name(code).into(),
                message: message.into(),
                reason: reason.into(),
                field_violations: Vec::new(),
            }),
            allow: None,
        }
    }

    /// 400 `MALFORMED_REQUEST`: the request could not be read as the route's message.
    pub fn malformed(message: impl Into<String>) -> Self {
        RestError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            "MALFORMED_REQUEST",
            message,
        )
    }

    /// The HTTP response.
    pub fn into_response(self) -> http::Response<Body> {
        let json = serde_json::to_vec(&self.body).expect("an ErrorBody always serializes");
        let mut response = super::json_response(self.status, json);
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}

impl From<Status> for RestError {
    fn from(status: Status) -> Self {
        let reason = status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default();
        let field_violations = status
            .get_details_bad_request()
            .map(|bad| {
                bad.field_violations
                    .into_iter()
                    .map(|v| FieldViolation {
                        field: v.field,
                        description: v.description,
                    })
                    .collect()
            })
            .unwrap_or_default();
        RestError {
            status: http_status(status.code()),
            body: Box::new(ErrorBody {
                code: code_name(status.code()).into(),
                message: status.message().into(),
                reason,
                field_violations,
            }),
            allow: None,
        }
    }
}

/// The HTTP status for a gRPC code; see the module docs.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 "client closed request" is nginx's, and what Google's HTTP mapping uses.
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The canonical name of a gRPC code, as in `google.rpc.Code`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status;
    use crate::spec;

    #[test]
    fn a_status_keeps_its_reason_and_violations() {
        let violations = [
            spec::FieldViolation {
                field: "spec.name".into(),
                description: "is empty".into(),
            },
            spec::FieldViolation {
                field: "spec.zones".into(),
                description: "is empty".into(),
            },
        ];
        let err = RestError::from(status::invalid_argument(&violations));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.body.code, "INVALID_ARGUMENT");
        assert_eq!(err.body.reason, "FIELD_VIOLATIONS");
        assert_eq!(err.body.field_violations.len(), 2);
        assert_eq!(err.body.field_violations[1].field, "spec.zones");
        let json = serde_json::to_value(&err.body).unwrap();
        assert_eq!(json["fieldViolations"][0]["description"], "is empty");
    }

    #[test]
    fn codes_map_to_http_statuses() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::FailedPrecondition, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
            (Code::Unknown, 500),
        ];
        for (code, http) in cases {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn a_status_without_details_has_an_empty_reason() {
        let err = RestError::from(Status::unavailable("try again"));
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.body.reason, "");
        assert!(err.body.field_violations.is_empty());
    }
}
