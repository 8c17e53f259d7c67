//! DescribeAcls (key 29): the ACL bindings a filter matches, grouped by resource pattern.
//!
//! The bindings come from the controllers' image this broker follows
//! ([`crate::authority::Authority::metadata_image`]), so a binding is listed once its
//! CreateAcls committed and reached this broker.
//!
//! ```text
//! request:  resource_type, resource_name?, pattern_type, principal?, host?, operation, permission
//! response: error_code, error_message?, resources [resource_type, resource_name, pattern_type,
//!           acls [principal, host, operation, permission_type]]
//! ```
//!
//! A filter with an UNKNOWN code or an oversized string is answered INVALID_REQUEST with no
//! resources ([`AclFilter::from_wire`]). Versions 1-3 (v0 is not decoded by the crate).
//!
//! Authorization is not checked yet: every caller may describe every binding, as every caller
//! may do everything today. Kafka requires DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED
//! otherwise); the enforcement piece adds that check here. Kafka answers SECURITY_DISABLED
//! when no authorizer is configured; Ferry keeps and serves ACLs whether or not they are
//! enforced.

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::security::acl::{AclBinding, AclFilter, WireFilter};

impl Broker {
    /// Answers a DescribeAcls request.
    pub(super) fn describe_acls(&self, request: &DescribeAclsRequest) -> DescribeAclsResponse {
        let wire = WireFilter {
            resource_type: request.resource_type_filter,
            resource_name: request.resource_name_filter.as_deref(),
            pattern_type: request.pattern_type_filter,
            principal: request.principal_filter.as_deref(),
            host: request.host_filter.as_deref(),
            operation: request.operation,
            permission: request.permission_type,
        };
        let filter = match AclFilter::from_wire(&wire) {
            Ok(filter) => filter,
            Err(e) => {
                return DescribeAclsResponse::default()
                    .with_error_code(e.code().code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string())));
            }
        };
        let image = self.authority.metadata_image();
        let matched = image.acls().iter().filter(|b| filter.matches(b));
        DescribeAclsResponse::default().with_resources(group_by_resource(matched))
    }
}

/// Groups bindings, given in set order (resource first), into one entry per resource pattern.
fn group_by_resource<'a>(
    bindings: impl Iterator<Item = &'a AclBinding>,
) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for binding in bindings {
        let acl = AclDescription::default()
            .with_principal(StrBytes::from_string(binding.principal.to_string()))
            .with_host(StrBytes::from_string(binding.host.clone()))
            .with_operation(binding.operation.code())
            .with_permission_type(binding.permission.code());
        let same = resources.last().is_some_and(|r| {
            r.resource_type == binding.resource_type.code()
                && r.resource_name.as_str() == binding.resource_name
                && r.pattern_type == binding.pattern_type.code()
        });
        if !same {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(binding.resource_type.code())
                    .with_resource_name(StrBytes::from_string(binding.resource_name.clone()))
                    .with_pattern_type(binding.pattern_type.code()),
            );
        }
        resources
            .last_mut()
            .expect("a resource was just pushed")
            .acls
            .push(acl);
    }
    resources
}
