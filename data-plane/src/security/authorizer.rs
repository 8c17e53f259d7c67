//! The authorizer: a pure function from the ACLs, the broker's settings, who is asking, from
//! where, and what they ask, to a [`Decision`] that says allowed or denied and which rule
//! decided.
//!
//! It follows Kafka's KRaft `StandardAuthorizer` (AK `StandardAuthorizerData`; reference
//! security.md §6.2) step by step:
//!
//! 1. a super user is allowed everything, DENY bindings included;
//! 2. the candidate bindings are those whose pattern covers the resource: its LITERAL name,
//!    LITERAL `*`, and every PREFIXED prefix of the name;
//! 3. a candidate applies when its principal is the session's or `User:*`, its host is `*` or
//!    the client's address, and its operation is ALL or the one asked. ALLOW bindings also
//!    imply: READ, WRITE, DELETE and ALTER grant DESCRIBE; ALTER_CONFIGS grants
//!    DESCRIBE_CONFIGS. DENY bindings imply nothing (a DENY READ leaves DESCRIBE alone);
//! 4. any applicable DENY decides DENIED; otherwise any applicable ALLOW decides ALLOWED;
//! 5. candidates exist but none applies: DENIED; no candidate at all:
//!    `allow.everyone.if.no.acl.found`.
//!
//! [`authorize_any`] answers "is the operation allowed on at least one resource of this type"
//! (KIP-679, Kafka's `Authorizer.authorizeByResourceType`; InitProducerId without a
//! transactional id accepts WRITE on any topic instead of IDEMPOTENT_WRITE on the cluster).
//! [`authorized_operations`] is KIP-430's bit set for Metadata, DescribeGroups and
//! DescribeCluster.
//!
//! Not here: the "authorizer not ready" answer before the first image (the caller knows
//! whether an image was applied) and the choice of which operation each API needs (the
//! handlers).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use super::acl::{
    AclBinding, AclIndex, AclOperation, AclPermissionType, Entry, PatternType, ResourceType,
    WILDCARD_PRINCIPAL_NAME, WILDCARD_RESOURCE,
};
use super::{Principal, PrincipalError};

/// The broker settings the authorizer reads (Kafka's names in the field docs). Static: they
/// come from the broker's configuration, while the ACLs come from the metadata image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `super.users`: principals allowed everything, whatever the ACLs say.
    pub super_users: BTreeSet<Principal>,
    /// `allow.everyone.if.no.acl.found` (default false): the answer for a resource no ACL
    /// covers.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    /// Parses `super.users` as Kafka writes it: principals separated by `;`, spaces around
    /// each trimmed, empty items skipped. A malformed principal is an error (Kafka would keep
    /// it as a string that never matches).
    pub fn parse_super_users(text: &str) -> Result<BTreeSet<Principal>, PrincipalError> {
        text.split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Principal::parse)
            .collect()
    }
}

/// The outcome of one check, with the rule that decided it (for debug logs and the golden
/// scripts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The principal is a super user.
    SuperUser,
    /// This DENY binding applies (deny wins over every ALLOW).
    Denied(&'a AclBinding),
    /// This ALLOW binding applies and no DENY does.
    Allowed(&'a AclBinding),
    /// Bindings cover the resource, but none applies to this principal, host and operation.
    NoMatchingAcl,
    /// No binding covers the resource; the answer is `allow.everyone.if.no.acl.found`.
    NoAclFound {
        /// The setting's value, hence the answer.
        allowed: bool,
    },
}

impl Decision<'_> {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        match self {
            Decision::SuperUser | Decision::Allowed(_) => true,
            Decision::Denied(_) | Decision::NoMatchingAcl => false,
            Decision::NoAclFound { allowed } => *allowed,
        }
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_allowed() {
            "ALLOWED"
        } else {
            "DENIED"
        };
        match self {
            Decision::SuperUser => write!(f, "{verdict}: super user"),
            Decision::Denied(binding) | Decision::Allowed(binding) => {
                write!(f, "{verdict} by {binding}")
            }
            Decision::NoMatchingAcl => {
                write!(f, "{verdict}: ACLs cover the resource, none applies")
            }
            Decision::NoAclFound { allowed } => write!(
                f,
                "{verdict}: no ACL covers the resource (allow.everyone.if.no.acl.found={allowed})"
            ),
        }
    }
}

/// Decides whether `principal`, connected from `host`, may perform `operation` on the
/// resource `(type, name)`. See the module docs for the rules.
pub fn authorize<'a>(
    index: &'a AclIndex,
    settings: &AuthorizerSettings,
    principal: &Principal,
    host: IpAddr,
    operation: AclOperation,
    resource: (ResourceType, &str),
) -> Decision<'a> {
    if settings.super_users.contains(principal) {
        return Decision::SuperUser;
    }
    let (resource_type, name) = resource;
    let mut covered = false;
    let mut allowed_by = None;
    for entry in index.covering(resource_type, name) {
        covered = true;
        match applies(entry, principal, host, operation) {
            Some(AclPermissionType::Deny) => return Decision::Denied(&entry.binding),
            Some(AclPermissionType::Allow) => {
                allowed_by.get_or_insert(&entry.binding);
            }
            None => {}
        }
    }
    match allowed_by {
        Some(binding) => Decision::Allowed(binding),
        None if covered => Decision::NoMatchingAcl,
        None => Decision::NoAclFound {
            allowed: settings.allow_everyone_if_no_acl_found,
        },
    }
}

/// Whether the binding's principal is `principal` or `User:*`.
fn principal_matches(binding: &AclBinding, principal: &Principal) -> bool {
    binding.principal == *principal
        || (binding.principal.principal_type == Principal::USER_TYPE
            && binding.principal.name == WILDCARD_PRINCIPAL_NAME)
}

/// The permission `entry` contributes to this check, or `None` when it does not apply (AK
/// `StandardAuthorizerData.findResult`).
fn applies(
    entry: &Entry,
    principal: &Principal,
    host: IpAddr,
    operation: AclOperation,
) -> Option<AclPermissionType> {
    let binding = &entry.binding;
    if !principal_matches(binding, principal) || !entry.host.covers(host) {
        return None;
    }
    let granted = binding.operation == AclOperation::All
        || binding.operation == operation
        || (binding.permission == AclPermissionType::Allow
            && implied_by_allow(binding.operation, operation));
    granted.then_some(binding.permission)
}

/// Whether an ALLOW of `held` also grants `asked` (DENY bindings imply nothing).
fn implied_by_allow(held: AclOperation, asked: AclOperation) -> bool {
    use AclOperation::*;
    match asked {
        Describe => matches!(held, Read | Write | Delete | Alter),
        DescribeConfigs => held == AlterConfigs,
        _ => false,
    }
}

/// The resource name [`authorize_any`] first checks, as Kafka's `authorizeByResourceType`
/// does: a super user, an ACL covering every name, or `allow.everyone.if.no.acl.found` with no
/// ACL covering this name allows at once.
pub const PROBE_RESOURCE_NAME: &str = "hardcode";

/// The outcome of [`authorize_any`], with the rule that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyDecision<'a> {
    /// The check on [`PROBE_RESOURCE_NAME`] allowed it.
    Probe(Decision<'a>),
    /// A DENY on LITERAL `*` applies: nothing of the type is allowed.
    WildcardDenied(&'a AclBinding),
    /// An ALLOW on LITERAL `*` applies.
    WildcardAllowed(&'a AclBinding),
    /// This ALLOW applies and no DENY covers all the names it does.
    Allowed(&'a AclBinding),
    /// Every applicable ALLOW is dominated by a DENY (or none applies).
    Denied,
}

impl AnyDecision<'_> {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        match self {
            AnyDecision::Probe(decision) => decision.is_allowed(),
            AnyDecision::WildcardAllowed(_) | AnyDecision::Allowed(_) => true,
            AnyDecision::WildcardDenied(_) | AnyDecision::Denied => false,
        }
    }
}

impl fmt::Display for AnyDecision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyDecision::Probe(decision) => {
                write!(f, "{decision} (probing {PROBE_RESOURCE_NAME:?})")
            }
            AnyDecision::WildcardDenied(binding) => write!(f, "DENIED by wildcard {binding}"),
            AnyDecision::WildcardAllowed(binding) => write!(f, "ALLOWED by wildcard {binding}"),
            AnyDecision::Allowed(binding) => write!(f, "ALLOWED by undominated {binding}"),
            AnyDecision::Denied => write!(f, "DENIED: every applicable ALLOW is dominated"),
        }
    }
}

/// Decides whether `operation` is allowed on at least one resource of `resource_type`
/// (KIP-679; AK `Authorizer.authorizeByResourceType`).
///
/// After the probe, every binding of the type whose principal, host and operation (ALL or
/// exactly `operation`; nothing is implied here) apply is considered: a DENY on LITERAL `*`
/// denies; an ALLOW on LITERAL `*` allows; otherwise an ALLOW allows unless a DENY dominates
/// it: the same LITERAL name, or a PREFIXED deny that is a prefix of the allowed name.
pub fn authorize_any<'a>(
    index: &'a AclIndex,
    settings: &AuthorizerSettings,
    principal: &Principal,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
) -> AnyDecision<'a> {
    let probe = authorize(
        index,
        settings,
        principal,
        host,
        operation,
        (resource_type, PROBE_RESOURCE_NAME),
    );
    if probe.is_allowed() {
        return AnyDecision::Probe(probe);
    }
    let mut denied_literal: HashSet<&str> = HashSet::new();
    let mut denied_prefixes: HashSet<&str> = HashSet::new();
    let mut allows: Vec<&AclBinding> = Vec::new();
    let mut wildcard_allow = None;
    for entry in index.of_type(resource_type) {
        let binding = &entry.binding;
        let operation_applies =
            binding.operation == operation || binding.operation == AclOperation::All;
        if !operation_applies || !entry.host.covers(host) || !principal_matches(binding, principal)
        {
            continue;
        }
        let name = binding.resource_name.as_str();
        let wildcard = binding.pattern_type == PatternType::Literal && name == WILDCARD_RESOURCE;
        match (binding.permission, binding.pattern_type) {
            (AclPermissionType::Deny, _) if wildcard => {
                return AnyDecision::WildcardDenied(binding);
            }
            (AclPermissionType::Deny, PatternType::Literal) => {
                denied_literal.insert(name);
            }
            (AclPermissionType::Deny, PatternType::Prefixed) => {
                denied_prefixes.insert(name);
            }
            (AclPermissionType::Allow, _) if wildcard => {
                wildcard_allow.get_or_insert(binding);
            }
            (AclPermissionType::Allow, _) => allows.push(binding),
        }
    }
    if let Some(binding) = wildcard_allow {
        return AnyDecision::WildcardAllowed(binding);
    }
    // Kafka checks LITERAL allows before PREFIXED ones; only the reported binding depends
    // on the order, never the answer.
    allows.sort_by_key(|b| b.pattern_type);
    let dominated = |binding: &AclBinding| {
        let name = binding.resource_name.as_str();
        (binding.pattern_type == PatternType::Literal && denied_literal.contains(name))
            || name
                .char_indices()
                .map(|(at, c)| &name[..at + c.len_utf8()])
                .any(|prefix| denied_prefixes.contains(prefix))
    };
    match allows.into_iter().find(|b| !dominated(b)) {
        Some(binding) => AnyDecision::Allowed(binding),
        None => AnyDecision::Denied,
    }
}

/// The operations KIP-430 reports for a resource type (AK `AclEntry.supportedOperations`).
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Delete,
            Alter,
            Describe,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            Alter,
            Describe,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
        ],
        ResourceType::TransactionalId => &[Write, Describe],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
    }
}

/// KIP-430's encoding: bit `code` set for each operation (AK `Utils.to32BitField`).
pub fn operations_bits(operations: impl IntoIterator<Item = AclOperation>) -> i32 {
    operations
        .into_iter()
        .fold(0, |bits, operation| bits | (1 << operation.code()))
}

/// The KIP-430 bit set of the operations `principal` may perform on the resource, each
/// supported operation checked on its own with [`authorize`] (so implied DESCRIBE shows).
/// With no authorizer configured, the caller reports every supported operation instead.
pub fn authorized_operations(
    index: &AclIndex,
    settings: &AuthorizerSettings,
    principal: &Principal,
    host: IpAddr,
    resource: (ResourceType, &str),
) -> i32 {
    operations_bits(
        supported_operations(resource.0)
            .iter()
            .copied()
            .filter(|&op| authorize(index, settings, principal, host, op, resource).is_allowed()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_supported_operations_give_kafkas_values() {
        let all = |t| operations_bits(supported_operations(t).iter().copied());
        assert_eq!(all(ResourceType::Topic), 3576);
        assert_eq!(all(ResourceType::Group), 3400);
        assert_eq!(all(ResourceType::Cluster), 8096);
        assert_eq!(all(ResourceType::TransactionalId), 272);
        assert_eq!(
            operations_bits([AclOperation::Read, AclOperation::Describe]),
            264
        );
        assert_eq!(operations_bits([]), 0);
    }

    #[test]
    fn super_users_parse_as_kafka_writes_them() {
        let users =
            AuthorizerSettings::parse_super_users(" User:admin ;User:CN=ops,O=x;;").unwrap();
        let expected: BTreeSet<Principal> =
            [Principal::user("admin"), Principal::user("CN=ops,O=x")].into();
        assert_eq!(users, expected);
        assert!(AuthorizerSettings::parse_super_users("admin").is_err());
        assert!(
            AuthorizerSettings::parse_super_users("")
                .unwrap()
                .is_empty()
        );
    }
}
