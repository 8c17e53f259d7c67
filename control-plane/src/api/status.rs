//! Errors to gRPC statuses: the one place the control plane's errors meet the wire.
//!
//! Every error status carries a `google.rpc.ErrorInfo` detail whose `reason` is a stable code a
//! program can branch on (domain [`ERROR_DOMAIN`]); invalid arguments also carry a
//! `google.rpc.BadRequest` with every field violation, and capacity shortages a
//! `google.rpc.PreconditionFailure` naming the zone or host. The status message repeats the
//! violations as `field: description; field: description` for clients that read no details.
//!
//! | cause | gRPC code | reason | REST |
//! |---|---|---|---|
//! | field violations, [`Error::InvalidInput`] | INVALID_ARGUMENT | `FIELD_VIOLATIONS`, `INVALID_INPUT` | 400 |
//! | no / bad token ([`AuthError`]) | UNAUTHENTICATED | `UNAUTHENTICATED` | 401 |
//! | the role may not do this | PERMISSION_DENIED | `PERMISSION_DENIED` | 403 |
//! | [`Error::NotFound`] (also another tenant's resource) | NOT_FOUND | `NOT_FOUND` | 404 |
//! | [`Conflict::NameTaken`] | ALREADY_EXISTS | `NAME_TAKEN` | 409 |
//! | [`Conflict::RequestIdReused`] | ALREADY_EXISTS | `REQUEST_ID_REUSED` | 409 |
//! | [`Conflict::OperationInProgress`] | ABORTED | `OPERATION_IN_PROGRESS` | 409 |
//! | [`Conflict::VersionMismatch`] | ABORTED | `VERSION_MISMATCH` | 409 |
//! | [`Conflict::WrongState`] | FAILED_PRECONDITION | `WRONG_STATE` | 409 |
//! | [`Conflict::ConfigurationInUse`] | FAILED_PRECONDITION | `CONFIGURATION_IN_USE` | 409 |
//! | not enough host capacity ([`Shortage`]) | FAILED_PRECONDITION | `INSUFFICIENT_CAPACITY` | 409 |
//! | [`Error::ResourceExhausted`] (a per-tenant limit) | RESOURCE_EXHAUSTED | `LIMIT_REACHED` | 429 |
//! | [`Error::Unavailable`] | UNAVAILABLE | `UNAVAILABLE` | 503 |
//! | [`Error::Indeterminate`] | DEADLINE_EXCEEDED | `INDETERMINATE` | 504 |
//! | [`Error::Io`] | INTERNAL | `STORAGE_FAILED` | 500 |
//!
//! DESIGN.md section 7 asks for 409 on every conflict; gRPC has no single code for it, so the
//! REST layer maps ALREADY_EXISTS, ABORTED and FAILED_PRECONDITION all to 409, and the `reason`
//! tells them apart in both.
//!
//! [`Error::Indeterminate`] (the change was submitted, its outcome is unknown) is
//! DEADLINE_EXCEEDED rather than UNAVAILABLE: gRPC defines UNAVAILABLE as "retry is safe,
//! nothing happened", while DEADLINE_EXCEEDED is the code that explicitly allows that a change
//! may have been made, which is what the caller must know (read back, or retry only with a
//! `client_request_id`). REST answers it 504.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::model::OperationErrorCode;
use crate::placement::Shortage;
use crate::spec::FieldViolation;
use crate::{Conflict, Error};

/// The `domain` of every `google.rpc.ErrorInfo` the API sends.
pub const ERROR_DOMAIN: &str = "controlplane.ferry";

/// A status with `code`, `message` and an `ErrorInfo` with `reason`, plus `details`.
fn status(code: Code, reason: &str, message: String, mut details: ErrorDetails) -> Status {
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// INVALID_ARGUMENT listing every violation, in the message and as `BadRequest` details.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let message = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_bad_request(
        violations
            .iter()
            .map(|v| tonic_types::FieldViolation::new(&v.field, &v.description))
            .collect::<Vec<_>>(),
    );
    status(Code::InvalidArgument, "FIELD_VIOLATIONS", message, details)
}

/// UNAUTHENTICATED with the auth error's sentence.
pub fn unauthenticated(err: &AuthError) -> Status {
    status(
        Code::Unauthenticated,
        "UNAUTHENTICATED",
        err.to_string(),
        ErrorDetails::new(),
    )
}

/// PERMISSION_DENIED for a role that may not do what it asked.
pub fn permission_denied(message: String) -> Status {
    status(
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        message,
        ErrorDetails::new(),
    )
}

/// FAILED_PRECONDITION naming what the hosts lack (the zone, or the host out of ports).
pub fn insufficient_capacity(shortage: &Shortage) -> Status {
    let (kind, subject) = match shortage {
        Shortage::NoHostsInZone { zone }
        | Shortage::ZoneFull { zone, .. }
        | Shortage::NoStorage { zone, .. } => ("ZONE", format!("zones/{zone}")),
        Shortage::NoFreePort { host, .. } => ("HOST", format!("hosts/{host}")),
    };
    let message = format!("not enough host capacity for the cluster: {shortage}");
    let details =
        ErrorDetails::with_precondition_failure_violation(kind, subject, shortage.to_string());
    // The same reason as the operation a too-big create would have failed, so a client
    // branches on one code whether the refusal comes now or from the reconciler.
    status(
        Code::FailedPrecondition,
        OperationErrorCode::InsufficientCapacity.as_str(),
        message,
        details,
    )
}

/// The status for a control-plane error; see the module docs for the table.
pub fn from_error(err: &Error) -> Status {
    let (code, reason) = match err {
        Error::InvalidInput(_) => (Code::InvalidArgument, "INVALID_INPUT"),
        Error::NotFound(_) => (Code::NotFound, "NOT_FOUND"),
        Error::Conflict(conflict) => match conflict {
            Conflict::NameTaken { .. } => (Code::AlreadyExists, "NAME_TAKEN"),
            Conflict::RequestIdReused { .. } => (Code::AlreadyExists, "REQUEST_ID_REUSED"),
            Conflict::OperationInProgress { .. } => (Code::Aborted, "OPERATION_IN_PROGRESS"),
            Conflict::VersionMismatch { .. } => (Code::Aborted, "VERSION_MISMATCH"),
            Conflict::WrongState(_) => (Code::FailedPrecondition, "WRONG_STATE"),
            Conflict::ConfigurationInUse { .. } => {
                (Code::FailedPrecondition, "CONFIGURATION_IN_USE")
            }
        },
        Error::ResourceExhausted(_) => (Code::ResourceExhausted, "LIMIT_REACHED"),
        Error::Unavailable(_) => (Code::Unavailable, "UNAVAILABLE"),
        Error::Indeterminate(_) => (Code::DeadlineExceeded, "INDETERMINATE"),
        Error::Io(_) => (Code::Internal, "STORAGE_FAILED"),
    };
    status(code, reason, err.to_string(), ErrorDetails::new())
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        from_error(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_map_to_their_codes_and_reasons() {
        let cases = [
            (
                Error::Conflict(Conflict::NameTaken {
                    name: "n".into(),
                    cluster_id: "cl-1".into(),
                    kind: "cluster".into(),
                }),
                Code::AlreadyExists,
                "NAME_TAKEN",
            ),
            (
                Error::Conflict(Conflict::VersionMismatch {
                    expected: 1,
                    current: 2,
                }),
                Code::Aborted,
                "VERSION_MISMATCH",
            ),
            (
                Error::Conflict(Conflict::OperationInProgress {
                    operation_id: "op-1".into(),
                }),
                Code::Aborted,
                "OPERATION_IN_PROGRESS",
            ),
            (
                Error::Indeterminate("x".into()),
                Code::DeadlineExceeded,
                "INDETERMINATE",
            ),
            (Error::Io("x".into()), Code::Internal, "STORAGE_FAILED"),
            (Error::NotFound("x".into()), Code::NotFound, "NOT_FOUND"),
            (
                Error::ResourceExhausted("x".into()),
                Code::ResourceExhausted,
                "LIMIT_REACHED",
            ),
        ];
        for (err, code, reason) in cases {
            let status = from_error(&err);
            assert_eq!(status.code(), code, "{err}");
            assert_eq!(status.message(), err.to_string());
            assert_eq!(status.get_details_error_info().unwrap().reason, reason);
        }
    }

    #[test]
    fn every_violation_is_in_the_message_and_the_details() {
        let violations = vec![
            FieldViolation {
                field: "name".into(),
                description: "is empty".into(),
            },
            FieldViolation {
                field: "zones[0]".into(),
                description: "has no hosts".into(),
            },
        ];
        let status = invalid_argument(&violations);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name: is empty; zones[0]: has no hosts");
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[1].field, "zones[0]");
    }
}
