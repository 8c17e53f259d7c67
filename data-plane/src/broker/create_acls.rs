//! CreateAcls (key 30): adds ACL bindings through the controllers.
//!
//! ```text
//! request:  creations [resource_type, resource_name, pattern_type, principal, host,
//!                      operation, permission_type]
//! response: results [error_code, error_message?]   (one per creation, in request order)
//! ```
//!
//! Each creation is validated here first ([`validate_new_binding`]: INVALID_REQUEST for an
//! UNKNOWN or ANY type, pattern, operation or permission, an empty name, a cluster not named
//! `kafka-cluster`, a principal not `Type:name`, a host that is not `*` or an IP address). The
//! valid ones go to the controllers as one [`crate::controller::Command::CreateAcls`], which
//! writes them atomically; a binding the cluster already holds succeeds and writes nothing. A
//! request with more than [`ACL_CHANGES_PER_REQUEST_MAX`] creations is refused whole
//! (INVALID_REQUEST on every creation) before anything is validated or proposed.
//!
//! Authorization is not checked yet: every caller may create bindings, as every caller may do
//! everything today. Kafka requires ALTER on the cluster; the enforcement piece adds it here.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::metadata::AdminError;
use crate::security::acl::{ACL_CHANGES_PER_REQUEST_MAX, NewAcl, validate_new_binding};

impl Broker {
    /// Answers a CreateAcls request.
    pub(super) async fn create_acls(&self, request: &CreateAclsRequest) -> CreateAclsResponse {
        let count = request.creations.len();
        if count > ACL_CHANGES_PER_REQUEST_MAX {
            // One shared message: the answer to an oversized request costs no allocation per
            // creation beyond the result itself.
            let message = StrBytes::from_string(format!(
                "the request carries {count} ACL creations, more than \
                 {ACL_CHANGES_PER_REQUEST_MAX} in one request"
            ));
            let refused = AclCreationResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(message));
            return CreateAclsResponse::default().with_results(vec![refused; count]);
        }
        let mut outcomes: Vec<Result<(), AdminError>> = Vec::with_capacity(count);
        let mut valid = Vec::new();
        let mut valid_at = Vec::new();
        for (index, creation) in request.creations.iter().enumerate() {
            let new = NewAcl {
                resource_type: creation.resource_type,
                resource_name: &creation.resource_name,
                pattern_type: creation.resource_pattern_type,
                principal: &creation.principal,
                host: &creation.host,
                operation: creation.operation,
                permission: creation.permission_type,
            };
            match validate_new_binding(&new) {
                Ok(binding) => {
                    valid.push(binding);
                    valid_at.push(index);
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(AdminError::new(e.code(), e.to_string()))),
            }
        }
        if !valid.is_empty() {
            let results = match self.authority.create_acls(valid).await {
                Ok(results) => results,
                Err(e) => vec![Err(e); valid_at.len()],
            };
            for (index, result) in valid_at.into_iter().zip(results) {
                outcomes[index] = result;
            }
        }
        response(outcomes)
    }
}

fn response(outcomes: Vec<Result<(), AdminError>>) -> CreateAclsResponse {
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(()) => AclCreationResult::default(),
            Err(e) => AclCreationResult::default()
                .with_error_code(e.code.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
