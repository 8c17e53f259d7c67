//! DeleteAcls (key 31): removes every ACL binding some filter matches, through the
//! controllers.
//!
//! ```text
//! request:  filters [resource_type, resource_name?, pattern_type, principal?, host?,
//!                    operation, permission_type]
//! response: filter_results [error_code, error_message?, matching_acls [error_code,
//!           error_message?, resource_type, resource_name, pattern_type, principal, host,
//!           operation, permission_type]]   (one per filter, in request order)
//! ```
//!
//! A filter with an UNKNOWN code or an oversized string gets INVALID_REQUEST and matches
//! nothing. The valid filters go to the controllers as one
//! [`crate::controller::Command::DeleteAcls`], whose removals are applied atomically; a
//! binding matched by several filters is removed once and listed under each, as Kafka does.
//! A request with more than [`ACL_CHANGES_PER_REQUEST_MAX`] filters is refused whole.
//!
//! Authorization is not checked yet: every caller may delete bindings, as every caller may do
//! everything today. Kafka requires ALTER on the cluster; the enforcement piece adds it here.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::metadata::AdminError;
use crate::security::acl::{ACL_CHANGES_PER_REQUEST_MAX, AclBinding, AclFilter, WireFilter};

impl Broker {
    /// Answers a DeleteAcls request.
    pub(super) async fn delete_acls(&self, request: &DeleteAclsRequest) -> DeleteAclsResponse {
        let count = request.filters.len();
        if count > ACL_CHANGES_PER_REQUEST_MAX {
            // One shared message: the answer to an oversized request costs no allocation per
            // filter beyond the result itself.
            let message = StrBytes::from_string(format!(
                "the request carries {count} ACL filters, more than \
                 {ACL_CHANGES_PER_REQUEST_MAX} in one request"
            ));
            let refused = DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(message));
            return DeleteAclsResponse::default().with_filter_results(vec![refused; count]);
        }
        let mut outcomes: Vec<Result<Vec<AclBinding>, AdminError>> = Vec::with_capacity(count);
        let mut valid = Vec::new();
        let mut valid_at = Vec::new();
        for (index, filter) in request.filters.iter().enumerate() {
            let wire = WireFilter {
                resource_type: filter.resource_type_filter,
                resource_name: filter.resource_name_filter.as_deref(),
                pattern_type: filter.pattern_type_filter,
                principal: filter.principal_filter.as_deref(),
                host: filter.host_filter.as_deref(),
                operation: filter.operation,
                permission: filter.permission_type,
            };
            match AclFilter::from_wire(&wire) {
                Ok(filter) => {
                    valid.push(filter);
                    valid_at.push(index);
                    outcomes.push(Ok(Vec::new()));
                }
                Err(e) => outcomes.push(Err(AdminError::new(e.code(), e.to_string()))),
            }
        }
        if !valid.is_empty() {
            match self.authority.delete_acls(valid).await {
                Ok(matched) => {
                    for (index, bindings) in valid_at.into_iter().zip(matched) {
                        outcomes[index] = Ok(bindings);
                    }
                }
                Err(e) => {
                    for index in valid_at {
                        outcomes[index] = Err(e.clone());
                    }
                }
            }
        }
        response(outcomes)
    }
}

fn response(outcomes: Vec<Result<Vec<AclBinding>, AdminError>>) -> DeleteAclsResponse {
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(bindings) => DeleteAclsFilterResult::default()
                .with_matching_acls(bindings.iter().map(matching_acl).collect()),
            Err(e) => DeleteAclsFilterResult::default()
                .with_error_code(e.code.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching_acl(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(binding.resource_type.code())
        .with_resource_name(StrBytes::from_string(binding.resource_name.clone()))
        .with_pattern_type(binding.pattern_type.code())
        .with_principal(StrBytes::from_string(binding.principal.to_string()))
        .with_host(StrBytes::from_string(binding.host.clone()))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}
