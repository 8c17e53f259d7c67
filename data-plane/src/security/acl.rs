//! Kafka ACLs as data: the enums with Kafka's wire codes, the binding the metadata image
//! stores, the validation a new binding passes, the filters DescribeAcls and DeleteAcls
//! match, and the index the authorizer looks bindings up in.
//!
//! A binding says "principal P from host H is allowed (or denied) operation O on resources of
//! type T named N (literally, or every name starting with N)". The controllers replicate the
//! set of bindings in the metadata image as a `BTreeSet<AclBinding>`; each broker builds an
//! [`AclIndex`] from it when a security record was applied, and
//! [`authorizer`](super::authorizer) decides every request from that index.
//!
//! Differences from Kafka (AK `AclControlManager`, `StandardAcl`):
//! - Bindings have no ids. Kafka gives each a random UUID, which the controllers' deterministic
//!   `execute` cannot make; a set gives "a duplicate succeeds and writes nothing" for free.
//! - Hosts must be `*` or an IP address, stored in Rust's canonical text (`::1`, IPv4-mapped
//!   IPv6 as IPv4). Kafka stores any string and compares it with the client's textual address,
//!   so a host name never matches there; here it is refused when created.
//! - Names, principals and hosts are bounded ([`RESOURCE_NAME_MAX_BYTES`],
//!   [`PRINCIPAL_NAME_MAX_BYTES`], [`HOST_MAX_BYTES`]) and so is the number of bindings
//!   ([`ACLS_MAX`]); Kafka bounds none of them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::{PRINCIPAL_NAME_MAX_BYTES, Principal};

/// The most bindings a cluster holds. A creation past it is refused with POLICY_VIOLATION;
/// the index and the image then stay bounded (each binding is at most a few KiB).
pub const ACLS_MAX: usize = 100_000;

/// The most creations one CreateAcls request may carry, and the most filters one DeleteAcls
/// request may carry. A larger request is refused whole, before anything is executed.
pub const ACL_CHANGES_PER_REQUEST_MAX: usize = 1000;

/// The longest resource name a binding or a filter may carry, in bytes. Topic names stop at
/// 249; group and transactional ids are as long as a client makes them, so this is generous.
pub const RESOURCE_NAME_MAX_BYTES: usize = 1024;

/// The longest host a binding or a filter may carry, in bytes (the longest textual IPv6
/// address is 45).
pub const HOST_MAX_BYTES: usize = 64;

/// The only name of the cluster resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// A LITERAL resource name that matches every name of its type.
pub const WILDCARD_RESOURCE: &str = "*";

/// A host that matches every client address.
pub const WILDCARD_HOST: &str = "*";

/// The principal name that, with the `User` type, matches every principal (`User:*`).
pub const WILDCARD_PRINCIPAL_NAME: &str = "*";

/// The code of UNKNOWN in every ACL enum: what Kafka reads an unrecognised code as.
pub const UNKNOWN_CODE: i8 = 0;

/// The code of ANY in every ACL enum (filters only).
pub const ANY_CODE: i8 = 1;

/// The code of the MATCH pattern type (filters only).
pub const MATCH_CODE: i8 = 2;

/// Defines an ACL enum with its Kafka codes and names: `code`, `from_code`, `name`,
/// `Display` and a case-insensitive `FromStr` (the names Kafka's tools print).
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal, $text:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// The value with this wire code; `None` for UNKNOWN, ANY, MATCH and codes Kafka
            /// does not define (which a binding never holds).
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`TOPIC`, `DESCRIBE_CONFIGS`, ...).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(text))
                    .ok_or_else(|| format!("{text:?} is not a {}", stringify!($name)))
            }
        }
    };
}

kafka_enum! {
    /// What kind of resource a binding covers (Kafka's `ResourceType`; 0 UNKNOWN and 1 ANY
    /// are not values: see [`UNKNOWN_CODE`], [`ANY_CODE`]).
    ResourceType {
        /// A topic, by name.
        Topic = 2, "TOPIC";
        /// A consumer group, by group id.
        Group = 3, "GROUP";
        /// The cluster itself, always named [`CLUSTER_RESOURCE_NAME`].
        Cluster = 4, "CLUSTER";
        /// A transactional producer, by transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token, by token id.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user, by principal name (delegation tokens on another's behalf; v3+).
        User = 7, "USER";
    }
}

kafka_enum! {
    /// How a binding's resource name matches names (Kafka's `PatternType`; 0 UNKNOWN, 1 ANY
    /// and 2 MATCH exist only in filters, see [`PatternFilter`]).
    PatternType {
        /// The name itself, or every name when it is [`WILDCARD_RESOURCE`].
        Literal = 3, "LITERAL";
        /// Every name that starts with the binding's name.
        Prefixed = 4, "PREFIXED";
    }
}

kafka_enum! {
    /// What a principal does to a resource (Kafka's `AclOperation`; 0 UNKNOWN and 1 ANY are
    /// not values).
    AclOperation {
        /// Every operation; in a binding, it matches whatever is asked.
        All = 2, "ALL";
        /// Consume, commit offsets, join a group.
        Read = 3, "READ";
        /// Produce, write transactionally.
        Write = 4, "WRITE";
        /// Create topics (on the cluster or the topic).
        Create = 5, "CREATE";
        /// Delete topics and records.
        Delete = 6, "DELETE";
        /// Add partitions, create and delete ACLs (on the cluster), alter SCRAM users.
        Alter = 7, "ALTER";
        /// See a resource's existence and metadata.
        Describe = 8, "DESCRIBE";
        /// Broker-to-broker requests (replica fetches, controlled shutdown).
        ClusterAction = 9, "CLUSTER_ACTION";
        /// DescribeConfigs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// AlterConfigs and IncrementalAlterConfigs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce without a transactional id.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens for a user.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens of a user.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
}

kafka_enum! {
    /// Whether a binding grants or refuses (Kafka's `AclPermissionType`; 0 UNKNOWN and 1 ANY
    /// are not values).
    AclPermissionType {
        /// Refuses; any matching DENY wins over every ALLOW.
        Deny = 2, "DENY";
        /// Grants.
        Allow = 3, "ALLOW";
    }
}

/// One ACL: who may (or may not) do what to which resources, from where.
///
/// Ordered by resource first, so a set of bindings reads grouped the way DescribeAcls answers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The name, the prefix, or [`WILDCARD_RESOURCE`].
    pub resource_name: String,
    /// How [`Self::resource_name`] matches names.
    pub pattern_type: PatternType,
    /// Who; `User:*` is everyone.
    pub principal: Principal,
    /// From where: [`WILDCARD_HOST`] or an IP address in canonical text.
    pub host: String,
    /// What.
    pub operation: AclOperation,
    /// Granted or refused.
    pub permission: AclPermissionType,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} {:?} from {}",
            self.permission,
            self.principal,
            self.operation,
            self.pattern_type,
            self.resource_type,
            self.resource_name,
            self.host
        )
    }
}

/// Why a binding, a filter or a creation was refused. Each maps to the Kafka error a response
/// carries ([`AclError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A field of a binding or filter is not acceptable (INVALID_REQUEST).
    #[error("{0}")]
    Invalid(String),
    /// The cluster already holds [`ACLS_MAX`] bindings (POLICY_VIOLATION).
    #[error("the cluster already holds {ACLS_MAX} ACLs, the most it may hold")]
    TooMany,
}

impl AclError {
    /// The Kafka error for a response.
    pub fn code(&self) -> ResponseError {
        match self {
            AclError::Invalid(_) => ResponseError::InvalidRequest,
            AclError::TooMany => ResponseError::PolicyViolation,
        }
    }
}

fn invalid(message: impl Into<String>) -> AclError {
    AclError::Invalid(message.into())
}

/// A binding as CreateAcls carries it: Kafka codes and strings, not yet checked.
#[derive(Clone, Copy, Debug)]
pub struct NewAcl<'a> {
    /// `ResourceType` code.
    pub resource_type: i8,
    /// The resource name.
    pub resource_name: &'a str,
    /// `PatternType` code.
    pub pattern_type: i8,
    /// `Type:name`.
    pub principal: &'a str,
    /// `*` or an IP address.
    pub host: &'a str,
    /// `AclOperation` code.
    pub operation: i8,
    /// `AclPermissionType` code.
    pub permission: i8,
}

/// Checks a requested binding with Kafka's rules (AK `AclControlManager.validateNewAcl`, and
/// the broker's cluster-name check) and Ferry's bounds, and returns it typed.
///
/// Refused (INVALID_REQUEST): UNKNOWN or ANY resource type; a pattern type other than LITERAL
/// or PREFIXED; UNKNOWN or ANY operation; a permission other than ALLOW or DENY; an empty or
/// oversized name; a cluster resource not named `kafka-cluster`; a principal not `Type:name`
/// (`User:*` is fine); a host that is neither `*` nor an IP address.
pub fn validate_new_binding(new: &NewAcl<'_>) -> Result<AclBinding, AclError> {
    let resource_type = ResourceType::from_code(new.resource_type)
        .ok_or_else(|| invalid(format!("Invalid resourceType {}", new.resource_type)))?;
    let pattern_type = PatternType::from_code(new.pattern_type)
        .ok_or_else(|| invalid(format!("Invalid patternType {}", new.pattern_type)))?;
    let operation = AclOperation::from_code(new.operation)
        .ok_or_else(|| invalid(format!("Invalid operation {}", new.operation)))?;
    let permission = AclPermissionType::from_code(new.permission)
        .ok_or_else(|| invalid(format!("Invalid permissionType {}", new.permission)))?;
    let principal = Principal::parse(new.principal).map_err(|e| invalid(e.to_string()))?;
    let binding = AclBinding {
        resource_type,
        resource_name: new.resource_name.to_string(),
        pattern_type,
        principal,
        host: canonical_host(new.host)?,
        operation,
        permission,
    };
    check_binding(&binding)?;
    Ok(binding)
}

/// Re-checks a typed binding (one decoded from a command or a record, which serde builds
/// without [`validate_new_binding`]): the name and principal bounds, the cluster name, and a
/// host in canonical form.
pub fn check_binding(binding: &AclBinding) -> Result<(), AclError> {
    let name = &binding.resource_name;
    if name.is_empty() {
        return Err(invalid("Resource name should not be empty"));
    }
    if name.len() > RESOURCE_NAME_MAX_BYTES {
        return Err(invalid(format!(
            "Resource name is {} bytes, longer than {RESOURCE_NAME_MAX_BYTES}",
            name.len()
        )));
    }
    if binding.resource_type == ResourceType::Cluster && name != CLUSTER_RESOURCE_NAME {
        return Err(invalid(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
        )));
    }
    let principal = &binding.principal;
    if principal.principal_type.is_empty() || principal.name.is_empty() {
        return Err(invalid("Principal is not of the form Type:name"));
    }
    if principal.principal_type.len().max(principal.name.len()) > PRINCIPAL_NAME_MAX_BYTES {
        return Err(invalid(format!(
            "Principal type or name is longer than {PRINCIPAL_NAME_MAX_BYTES} bytes"
        )));
    }
    if canonical_host(&binding.host)? != binding.host {
        return Err(invalid(format!(
            "Host {:?} is not in canonical form",
            binding.host
        )));
    }
    Ok(())
}

/// `*`, or the IP address in `host` written canonically; anything else is refused.
fn canonical_host(host: &str) -> Result<String, AclError> {
    if host.len() > HOST_MAX_BYTES {
        return Err(invalid(format!(
            "Host is {} bytes, longer than {HOST_MAX_BYTES}",
            host.len()
        )));
    }
    if host == WILDCARD_HOST {
        return Ok(host.to_string());
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ip.to_canonical().to_string()),
        Err(_) => Err(invalid(format!(
            "Host {host:?} is neither * nor an IP address (ACLs match client addresses, not \
             host names)"
        ))),
    }
}

/// How a filter matches a binding's pattern type and name (Kafka's `PatternType` in a filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatternFilter {
    /// Any pattern type; a given name must equal the binding's name.
    Any,
    /// Every binding that would apply to the given name: the LITERAL name, LITERAL `*`, and
    /// PREFIXED names that start it. Without a name, any binding.
    Match,
    /// Only this pattern type; a given name must equal the binding's name.
    Exact(PatternType),
}

/// A DescribeAcls or DeleteAcls filter: every field either names a value or matches any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    /// `None` = ANY.
    pub resource_type: Option<ResourceType>,
    /// `None` (null on the wire) = any name.
    pub resource_name: Option<String>,
    /// The pattern part of the match.
    pub pattern: PatternFilter,
    /// `None` = any; otherwise the exact principal text (`User:*` matches only `User:*`
    /// bindings, as in Kafka).
    pub principal: Option<String>,
    /// `None` = any; otherwise the exact host (IP addresses compared canonically).
    pub host: Option<String>,
    /// `None` = ANY; otherwise exactly this operation (ALL matches only ALL bindings).
    pub operation: Option<AclOperation>,
    /// `None` = ANY.
    pub permission: Option<AclPermissionType>,
}

/// A filter as DescribeAcls and DeleteAcls carry it: Kafka codes and nullable strings.
#[derive(Clone, Copy, Debug)]
pub struct WireFilter<'a> {
    /// `ResourceType` code (1 = ANY).
    pub resource_type: i8,
    /// Null = any name.
    pub resource_name: Option<&'a str>,
    /// `PatternType` code (1 = ANY, 2 = MATCH).
    pub pattern_type: i8,
    /// Null = any principal.
    pub principal: Option<&'a str>,
    /// Null = any host.
    pub host: Option<&'a str>,
    /// `AclOperation` code (1 = ANY).
    pub operation: i8,
    /// `AclPermissionType` code (1 = ANY).
    pub permission: i8,
}

/// Reads a filter code: ANY is `None`, a known value is `Some`, UNKNOWN is refused (Kafka
/// refuses filters with UNKNOWN elements).
fn filter_code<T>(
    code: i8,
    from_code: fn(i8) -> Option<T>,
    what: &str,
) -> Result<Option<T>, AclError> {
    if code == ANY_CODE {
        return Ok(None);
    }
    from_code(code)
        .map(Some)
        .ok_or_else(|| invalid(format!("Unknown {what} {code} in filter")))
}

impl AclFilter {
    /// The filter that matches every binding.
    pub fn any() -> Self {
        Self {
            resource_type: None,
            resource_name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// Checks a filter from the wire. UNKNOWN codes and oversized strings are refused
    /// (INVALID_REQUEST); a principal or host that no binding could hold is kept and simply
    /// matches nothing, as in Kafka.
    pub fn from_wire(wire: &WireFilter<'_>) -> Result<Self, AclError> {
        let resource_type =
            filter_code(wire.resource_type, ResourceType::from_code, "resourceType")?;
        let pattern = match wire.pattern_type {
            ANY_CODE => PatternFilter::Any,
            MATCH_CODE => PatternFilter::Match,
            code => PatternFilter::Exact(
                PatternType::from_code(code)
                    .ok_or_else(|| invalid(format!("Unknown patternType {code} in filter")))?,
            ),
        };
        let operation = filter_code(wire.operation, AclOperation::from_code, "operation")?;
        let permission = filter_code(
            wire.permission,
            AclPermissionType::from_code,
            "permissionType",
        )?;
        let bounded = |value: Option<&str>, max: usize, what: &str| match value {
            Some(v) if v.len() > max => Err(invalid(format!(
                "{what} filter is {} bytes, longer than {max}",
                v.len()
            ))),
            _ => Ok(value.map(str::to_string)),
        };
        let resource_name = bounded(wire.resource_name, RESOURCE_NAME_MAX_BYTES, "Resource name")?;
        // A stored principal is a type and a name of at most PRINCIPAL_NAME_MAX_BYTES each.
        let principal_text_max = 2 * PRINCIPAL_NAME_MAX_BYTES + 1;
        let principal = bounded(wire.principal, principal_text_max, "Principal")?;
        let host = bounded(wire.host, HOST_MAX_BYTES, "Host")?.map(|host| {
            // An address matches the binding that stored it canonically.
            canonical_host(&host).unwrap_or(host)
        });
        Ok(Self {
            resource_type,
            resource_name,
            pattern,
            principal,
            host,
            operation,
            permission,
        })
    }

    /// Whether `binding` matches this filter (AK `AclBindingFilter.matches`).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    /// The resource half (AK `ResourcePatternFilter.matches`).
    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != binding.resource_type)
        {
            return false;
        }
        if let PatternFilter::Exact(pattern) = self.pattern
            && pattern != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        match (self.pattern, binding.pattern_type) {
            (PatternFilter::Any | PatternFilter::Exact(_), _) => *name == binding.resource_name,
            (PatternFilter::Match, PatternType::Literal) => {
                *name == binding.resource_name || binding.resource_name == WILDCARD_RESOURCE
            }
            (PatternFilter::Match, PatternType::Prefixed) => {
                name.starts_with(binding.resource_name.as_str())
            }
        }
    }

    /// The entry half (AK `AccessControlEntryFilter.matches`).
    fn matches_entry(&self, binding: &AclBinding) -> bool {
        if let Some(principal) = &self.principal {
            let stored = &binding.principal;
            let same = principal
                .split_once(':')
                .is_some_and(|(kind, name)| kind == stored.principal_type && name == stored.name);
            if !same {
                return false;
            }
        }
        if self.host.as_ref().is_some_and(|h| *h != binding.host) {
            return false;
        }
        if self.operation.is_some_and(|o| o != binding.operation) {
            return false;
        }
        self.permission.is_none_or(|p| p == binding.permission)
    }
}

/// What a creation did to the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The binding is new: write it.
    Added(AclBinding),
    /// The set already holds it (or an earlier creation of the same request adds it):
    /// success, nothing written.
    Duplicate,
}

/// Plans a CreateAcls against the `existing` set: one outcome per requested binding, in
/// request order. Each binding is re-checked ([`check_binding`]); a new one past
/// [`ACLS_MAX`] is refused with [`AclError::TooMany`], duplicates still succeed.
pub fn plan_creations(
    existing: &BTreeSet<AclBinding>,
    bindings: &[AclBinding],
) -> Vec<Result<Created, AclError>> {
    let mut added: BTreeSet<&AclBinding> = BTreeSet::new();
    bindings
        .iter()
        .map(|binding| {
            check_binding(binding)?;
            if existing.contains(binding) || added.contains(binding) {
                return Ok(Created::Duplicate);
            }
            if existing.len() + added.len() >= ACLS_MAX {
                return Err(AclError::TooMany);
            }
            added.insert(binding);
            Ok(Created::Added(binding.clone()))
        })
        .collect()
}

/// Plans a DeleteAcls against the `existing` set: for each filter, in request order, the
/// bindings it matches (in set order). A binding matched by several filters is listed under
/// each, as Kafka answers, but should be removed once: [`removals`] gives the distinct set.
pub fn plan_deletions<'a>(
    existing: &'a BTreeSet<AclBinding>,
    filters: &[AclFilter],
) -> Vec<Vec<&'a AclBinding>> {
    filters
        .iter()
        .map(|filter| existing.iter().filter(|b| filter.matches(b)).collect())
        .collect()
}

/// The distinct bindings a [`plan_deletions`] removes, in set order.
pub fn removals<'a>(plan: &[Vec<&'a AclBinding>]) -> BTreeSet<&'a AclBinding> {
    plan.iter().flatten().copied().collect()
}

/// Where a binding's host matches, parsed once when the index is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostMatch {
    /// `*`.
    Any,
    /// This address only.
    Ip(IpAddr),
    /// A host that is no address (only from a binding that skipped validation): nothing.
    Never,
}

impl HostMatch {
    fn of(host: &str) -> Self {
        if host == WILDCARD_HOST {
            return HostMatch::Any;
        }
        host.parse::<IpAddr>()
            .map_or(HostMatch::Never, |ip| HostMatch::Ip(ip.to_canonical()))
    }

    /// Whether a client at `ip` is covered.
    pub(crate) fn covers(self, ip: IpAddr) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Ip(host) => host == ip.to_canonical(),
            HostMatch::Never => false,
        }
    }
}

/// One binding in the index, with its host parsed.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The binding as stored.
    pub(crate) binding: AclBinding,
    /// Its host, parsed.
    pub(crate) host: HostMatch,
}

/// The bindings of one resource type, by pattern.
#[derive(Clone, Debug, Default)]
struct TypeIndex {
    /// LITERAL bindings by name (`*` included).
    literal: BTreeMap<String, Vec<Entry>>,
    /// PREFIXED bindings by prefix.
    prefixed: BTreeMap<String, Vec<Entry>>,
    /// The lengths of the prefixes in `prefixed`, so a lookup tries only those.
    prefix_lengths: BTreeSet<usize>,
}

/// The ACLs arranged for the authorizer: by resource type, then LITERAL name or PREFIXED
/// prefix. Looking up a resource costs one map lookup for its name, one for `*`, and one per
/// distinct prefix length of that type (never one per byte of a client-chosen name).
#[derive(Clone, Debug, Default)]
pub struct AclIndex {
    /// Per resource type.
    types: BTreeMap<ResourceType, TypeIndex>,
    /// Bindings held.
    len: usize,
}

impl AclIndex {
    /// Indexes `bindings` (the image's set).
    pub fn new<'a>(bindings: impl IntoIterator<Item = &'a AclBinding>) -> Self {
        let mut index = Self::default();
        for binding in bindings {
            let of_type = index.types.entry(binding.resource_type).or_default();
            let entry = Entry {
                binding: binding.clone(),
                host: HostMatch::of(&binding.host),
            };
            let by_name = match binding.pattern_type {
                PatternType::Literal => &mut of_type.literal,
                PatternType::Prefixed => {
                    of_type.prefix_lengths.insert(binding.resource_name.len());
                    &mut of_type.prefixed
                }
            };
            by_name
                .entry(binding.resource_name.clone())
                .or_default()
                .push(entry);
            index.len += 1;
        }
        index
    }

    /// Bindings held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every binding whose pattern covers the resource `name` of `resource_type`: the LITERAL
    /// name, LITERAL `*`, and each PREFIXED prefix of `name`.
    pub(crate) fn covering<'a, 'n>(
        &'a self,
        resource_type: ResourceType,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'n> {
        let of_type = self.types.get(&resource_type);
        let literal = of_type.into_iter().flat_map(move |t| {
            let exact = t.literal.get(name);
            let wildcard = (name != WILDCARD_RESOURCE)
                .then(|| t.literal.get(WILDCARD_RESOURCE))
                .flatten();
            exact.into_iter().chain(wildcard).flatten()
        });
        let prefixed = of_type.into_iter().flat_map(move |t| {
            t.prefix_lengths
                .range(..=name.len())
                .filter(|&&len| name.is_char_boundary(len))
                .filter_map(move |&len| t.prefixed.get(&name[..len]))
                .flatten()
        });
        literal.chain(prefixed)
    }

    /// Every binding of `resource_type`, in name order, LITERAL then PREFIXED.
    pub(crate) fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &Entry> {
        self.types
            .get(&resource_type)
            .into_iter()
            .flat_map(|t| t.literal.values().chain(t.prefixed.values()).flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_acl<'a>(name: &'a str, principal: &'a str, host: &'a str) -> NewAcl<'a> {
        NewAcl {
            resource_type: ResourceType::Topic.code(),
            resource_name: name,
            pattern_type: PatternType::Literal.code(),
            principal,
            host,
            operation: AclOperation::Read.code(),
            permission: AclPermissionType::Allow.code(),
        }
    }

    fn binding(kind: ResourceType, name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: kind,
            resource_name: name.to_string(),
            pattern_type: pattern,
            principal: Principal::user("alice"),
            host: WILDCARD_HOST.to_string(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        }
    }

    #[test]
    fn codes_and_names_are_kafkas() {
        let topic: Vec<(i8, &str)> = ResourceType::ALL
            .iter()
            .map(|t| (t.code(), t.name()))
            .collect();
        assert_eq!(
            topic,
            [
                (2, "TOPIC"),
                (3, "GROUP"),
                (4, "CLUSTER"),
                (5, "TRANSACTIONAL_ID"),
                (6, "DELEGATION_TOKEN"),
                (7, "USER")
            ]
        );
        assert_eq!(PatternType::Literal.code(), 3);
        assert_eq!(PatternType::Prefixed.code(), 4);
        let ops: Vec<i8> = AclOperation::ALL.iter().map(|o| o.code()).collect();
        assert_eq!(ops, (2..=14).collect::<Vec<i8>>());
        assert_eq!(AclOperation::DescribeConfigs.name(), "DESCRIBE_CONFIGS");
        assert_eq!(AclPermissionType::Deny.code(), 2);
        assert_eq!(AclPermissionType::Allow.code(), 3);
        for code in [UNKNOWN_CODE, ANY_CODE, 15, -1, i8::MAX] {
            assert_eq!(AclOperation::from_code(code), None, "{code}");
        }
        assert_eq!(PatternType::from_code(MATCH_CODE), None);
        assert_eq!(
            "idempotent_write".parse(),
            Ok(AclOperation::IdempotentWrite)
        );
        // Serde uses Kafka's names, so records read like kafka-acls output.
        let json = serde_json::to_string(&AclOperation::ClusterAction).unwrap();
        assert_eq!(json, "\"CLUSTER_ACTION\"");
    }

    #[test]
    fn new_bindings_are_validated_with_kafkas_rules() {
        let long_name = "n".repeat(RESOURCE_NAME_MAX_BYTES + 1);
        let long_principal = format!("User:{}", "p".repeat(PRINCIPAL_NAME_MAX_BYTES + 1));
        let long_host = "1".repeat(HOST_MAX_BYTES + 1);
        let ok = new_acl("orders", "User:alice", "*");
        type Edit = fn(&mut NewAcl<'static>);
        let refused: &[(&str, Edit, &str)] = &[
            (
                "unknown type",
                |n| n.resource_type = UNKNOWN_CODE,
                "Invalid resourceType 0",
            ),
            (
                "ANY type",
                |n| n.resource_type = ANY_CODE,
                "Invalid resourceType 1",
            ),
            (
                "undefined type",
                |n| n.resource_type = 9,
                "Invalid resourceType 9",
            ),
            (
                "unknown pattern",
                |n| n.pattern_type = UNKNOWN_CODE,
                "Invalid patternType 0",
            ),
            (
                "ANY pattern",
                |n| n.pattern_type = ANY_CODE,
                "Invalid patternType 1",
            ),
            (
                "MATCH pattern",
                |n| n.pattern_type = MATCH_CODE,
                "Invalid patternType 2",
            ),
            (
                "ANY operation",
                |n| n.operation = ANY_CODE,
                "Invalid operation 1",
            ),
            (
                "unknown operation",
                |n| n.operation = UNKNOWN_CODE,
                "Invalid operation 0",
            ),
            (
                "ANY permission",
                |n| n.permission = ANY_CODE,
                "Invalid permissionType 1",
            ),
            (
                "negative permission",
                |n| n.permission = -3,
                "Invalid permissionType -3",
            ),
            (
                "empty name",
                |n| n.resource_name = "",
                "Resource name should not be empty",
            ),
            (
                "no colon",
                |n| n.principal = "alice",
                "not of the form Type:name",
            ),
            (
                "empty principal name",
                |n| n.principal = "User:",
                "not of the form",
            ),
            (
                "host name",
                |n| n.host = "broker.example.com",
                "neither * nor an IP",
            ),
            ("empty host", |n| n.host = "", "neither * nor an IP"),
            (
                "CIDR host",
                |n| n.host = "10.0.0.0/8",
                "neither * nor an IP",
            ),
            (
                "cluster named otherwise",
                |n| {
                    n.resource_type = ResourceType::Cluster.code();
                    n.resource_name = "my-cluster";
                },
                "only valid name for the CLUSTER resource is kafka-cluster",
            ),
        ];
        for (case, edit, message) in refused {
            let mut new = ok;
            edit(&mut new);
            let error = validate_new_binding(&new).expect_err(case);
            assert_eq!(error.code(), ResponseError::InvalidRequest, "{case}");
            assert!(error.to_string().contains(message), "{case}: {error}");
        }
        for (case, new, message) in [
            (
                "oversized name",
                new_acl(&long_name, "User:a", "*"),
                "longer than 1024",
            ),
            (
                "oversized principal",
                new_acl("t", &long_principal, "*"),
                "longer than 1024",
            ),
            (
                "oversized host",
                new_acl("t", "User:a", &long_host),
                "longer than 64",
            ),
        ] {
            let error = validate_new_binding(&new).expect_err(case);
            assert!(error.to_string().contains(message), "{case}: {error}");
        }

        let accepted = [
            ("plain", new_acl("orders", "User:alice", "*")),
            ("wildcard principal", new_acl("orders", "User:*", "*")),
            ("wildcard name", new_acl("*", "User:alice", "*")),
            ("longest name", new_acl(&long_name[1..], "User:alice", "*")),
            ("ipv4 host", new_acl("orders", "User:alice", "10.0.0.1")),
        ];
        for (case, new) in accepted {
            let binding = validate_new_binding(&new).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(check_binding(&binding), Ok(()), "{case}");
        }
        let cluster = NewAcl {
            resource_type: ResourceType::Cluster.code(),
            resource_name: CLUSTER_RESOURCE_NAME,
            ..ok
        };
        assert!(validate_new_binding(&cluster).is_ok());
        // Hosts are stored canonically, so two spellings of one address are one binding.
        let long_v6 = validate_new_binding(&new_acl("t", "User:a", "0:0:0:0:0:0:0:1")).unwrap();
        assert_eq!(long_v6.host, "::1");
        let mapped = validate_new_binding(&new_acl("t", "User:a", "::ffff:10.0.0.1")).unwrap();
        assert_eq!(mapped.host, "10.0.0.1");
        // A binding decoded without validation (a forged command) is re-checked.
        let mut forged = binding(ResourceType::Topic, "t", PatternType::Literal);
        forged.host = "0:0:0:0:0:0:0:1".into();
        assert!(check_binding(&forged).is_err());
        forged.host = "*".into();
        forged.resource_name = long_name.clone();
        assert!(check_binding(&forged).is_err());
    }

    fn wire(pattern_type: i8, name: Option<&str>) -> WireFilter<'_> {
        WireFilter {
            resource_type: ANY_CODE,
            resource_name: name,
            pattern_type,
            principal: None,
            host: None,
            operation: ANY_CODE,
            permission: ANY_CODE,
        }
    }

    #[test]
    fn filters_match_as_kafkas_do() {
        let literal = binding(ResourceType::Topic, "orders-1", PatternType::Literal);
        let wildcard = binding(ResourceType::Topic, "*", PatternType::Literal);
        let prefixed = binding(ResourceType::Topic, "orders", PatternType::Prefixed);
        let other_prefix = binding(ResourceType::Topic, "pay", PatternType::Prefixed);
        let group = binding(ResourceType::Group, "orders-1", PatternType::Literal);
        let all = [&literal, &wildcard, &prefixed, &other_prefix, &group];
        let literal_code = PatternType::Literal.code();
        let prefixed_code = PatternType::Prefixed.code();
        let cases: &[(&str, WireFilter<'_>, &[&AclBinding])] = &[
            ("everything", wire(ANY_CODE, None), &all),
            (
                "ANY with a name: equal names only",
                wire(ANY_CODE, Some("orders-1")),
                &[&literal, &group],
            ),
            (
                "ANY name orders: the prefixed one",
                wire(ANY_CODE, Some("orders")),
                &[&prefixed],
            ),
            (
                "MATCH: what applies to orders-1",
                wire(MATCH_CODE, Some("orders-1")),
                &[&literal, &wildcard, &prefixed, &group],
            ),
            (
                "MATCH without a name: everything",
                wire(MATCH_CODE, None),
                &all,
            ),
            (
                "MATCH payments",
                wire(MATCH_CODE, Some("payments")),
                &[&wildcard, &other_prefix],
            ),
            (
                "LITERAL without a name",
                wire(literal_code, None),
                &[&literal, &wildcard, &group],
            ),
            (
                "LITERAL * is the wildcard binding only",
                wire(literal_code, Some("*")),
                &[&wildcard],
            ),
            (
                "PREFIXED orders-1: no prefix walk",
                wire(prefixed_code, Some("orders-1")),
                &[],
            ),
            (
                "PREFIXED orders",
                wire(prefixed_code, Some("orders")),
                &[&prefixed],
            ),
            (
                "MATCH a name nothing covers",
                wire(MATCH_CODE, Some("zzz")),
                &[&wildcard],
            ),
            (
                "GROUP type",
                WireFilter {
                    resource_type: ResourceType::Group.code(),
                    ..wire(ANY_CODE, None)
                },
                &[&group],
            ),
        ];
        for (case, wire, expected) in cases {
            let filter = AclFilter::from_wire(wire).unwrap();
            let matched: Vec<&AclBinding> =
                all.iter().copied().filter(|b| filter.matches(b)).collect();
            assert_eq!(matched, *expected, "{case}");
        }

        let mut bob_deny = literal.clone();
        bob_deny.principal = Principal::user("bob");
        bob_deny.permission = AclPermissionType::Deny;
        bob_deny.host = "::1".into();
        let entry_cases: &[(&str, WireFilter<'_>, bool)] = &[
            (
                "principal equal",
                WireFilter {
                    principal: Some("User:bob"),
                    ..wire(ANY_CODE, None)
                },
                true,
            ),
            (
                "User:* is not a wildcard in filters",
                WireFilter {
                    principal: Some("User:*"),
                    ..wire(ANY_CODE, None)
                },
                false,
            ),
            (
                "malformed principal matches nothing",
                WireFilter {
                    principal: Some("bob"),
                    ..wire(ANY_CODE, None)
                },
                false,
            ),
            (
                "host canonical",
                WireFilter {
                    host: Some("0:0:0:0:0:0:0:1"),
                    ..wire(ANY_CODE, None)
                },
                true,
            ),
            (
                "host * only matches * bindings",
                WireFilter {
                    host: Some("*"),
                    ..wire(ANY_CODE, None)
                },
                false,
            ),
            (
                "operation READ",
                WireFilter {
                    operation: AclOperation::Read.code(),
                    ..wire(ANY_CODE, None)
                },
                true,
            ),
            (
                "operation ALL only matches ALL",
                WireFilter {
                    operation: AclOperation::All.code(),
                    ..wire(ANY_CODE, None)
                },
                false,
            ),
            (
                "permission ALLOW",
                WireFilter {
                    permission: AclPermissionType::Allow.code(),
                    ..wire(ANY_CODE, None)
                },
                false,
            ),
            (
                "permission DENY",
                WireFilter {
                    permission: AclPermissionType::Deny.code(),
                    ..wire(ANY_CODE, None)
                },
                true,
            ),
        ];
        for (case, wire, expected) in entry_cases {
            let filter = AclFilter::from_wire(wire).unwrap();
            assert_eq!(filter.matches(&bob_deny), *expected, "{case}");
        }
    }

    #[test]
    fn filters_with_unknown_codes_or_oversized_fields_are_refused() {
        let long_name = "n".repeat(RESOURCE_NAME_MAX_BYTES + 1);
        let long_host = "h".repeat(HOST_MAX_BYTES + 1);
        let cases: &[(&str, WireFilter<'_>)] = &[
            (
                "unknown type",
                WireFilter {
                    resource_type: UNKNOWN_CODE,
                    ..wire(ANY_CODE, None)
                },
            ),
            (
                "undefined type",
                WireFilter {
                    resource_type: 42,
                    ..wire(ANY_CODE, None)
                },
            ),
            ("unknown pattern", wire(UNKNOWN_CODE, None)),
            ("undefined pattern", wire(5, None)),
            (
                "unknown operation",
                WireFilter {
                    operation: UNKNOWN_CODE,
                    ..wire(ANY_CODE, None)
                },
            ),
            (
                "unknown permission",
                WireFilter {
                    permission: UNKNOWN_CODE,
                    ..wire(ANY_CODE, None)
                },
            ),
            ("oversized name", wire(MATCH_CODE, Some(&long_name))),
            (
                "oversized host",
                WireFilter {
                    host: Some(&long_host),
                    ..wire(ANY_CODE, None)
                },
            ),
        ];
        for (case, wire) in cases {
            let error = AclFilter::from_wire(wire).expect_err(case);
            assert_eq!(error.code(), ResponseError::InvalidRequest, "{case}");
        }
    }

    #[test]
    fn creations_are_bounded_and_duplicates_succeed_without_writing() {
        let mut existing: BTreeSet<AclBinding> = (0..ACLS_MAX - 1)
            .map(|i| binding(ResourceType::Topic, &format!("t{i}"), PatternType::Literal))
            .collect();
        let last = binding(ResourceType::Topic, "last", PatternType::Literal);
        let one_more = binding(ResourceType::Topic, "one-more", PatternType::Literal);
        let known = binding(ResourceType::Topic, "t7", PatternType::Literal);
        let outcomes = plan_creations(
            &existing,
            &[last.clone(), last.clone(), one_more.clone(), known.clone()],
        );
        assert_eq!(
            outcomes,
            [
                Ok(Created::Added(last.clone())),
                Ok(Created::Duplicate),
                Err(AclError::TooMany),
                Ok(Created::Duplicate),
            ]
        );
        assert_eq!(AclError::TooMany.code(), ResponseError::PolicyViolation);
        existing.insert(last);
        assert_eq!(existing.len(), ACLS_MAX);
        // The 100 001st binding is refused on its own too.
        assert_eq!(
            plan_creations(&existing, &[one_more]),
            [Err(AclError::TooMany)]
        );
        // A forged binding is refused, not stored.
        let mut forged = binding(ResourceType::Cluster, "other", PatternType::Literal);
        assert!(matches!(
            plan_creations(&existing, &[forged.clone()])[0],
            Err(AclError::Invalid(_))
        ));
        forged.resource_name = CLUSTER_RESOURCE_NAME.into();
        assert_eq!(
            plan_creations(&existing, &[forged]),
            [Err(AclError::TooMany)]
        );
    }

    #[test]
    fn deletions_list_matches_per_filter_and_remove_each_binding_once() {
        let a = binding(ResourceType::Topic, "orders", PatternType::Literal);
        let b = binding(ResourceType::Topic, "orders", PatternType::Prefixed);
        let existing: BTreeSet<AclBinding> = [a.clone(), b.clone()].into();
        let by_name = AclFilter::from_wire(&wire(MATCH_CODE, Some("orders"))).unwrap();
        let literal =
            AclFilter::from_wire(&wire(PatternType::Literal.code(), Some("orders"))).unwrap();
        let nothing = AclFilter::from_wire(&wire(ANY_CODE, Some("payments"))).unwrap();
        let plan = plan_deletions(&existing, &[by_name, literal, nothing.clone()]);
        assert_eq!(plan, [vec![&a, &b], vec![&a], vec![]]);
        assert_eq!(removals(&plan), [&a, &b].into());
        // A filter that matches nothing deletes nothing.
        let plan = plan_deletions(&existing, &[nothing]);
        assert!(removals(&plan).is_empty());
    }

    #[test]
    fn the_index_finds_literal_wildcard_and_prefixed_bindings() {
        let bindings: BTreeSet<AclBinding> = [
            binding(ResourceType::Topic, "orders-1", PatternType::Literal),
            binding(ResourceType::Topic, "*", PatternType::Literal),
            binding(ResourceType::Topic, "ord", PatternType::Prefixed),
            binding(ResourceType::Topic, "orders-", PatternType::Prefixed),
            binding(ResourceType::Topic, "orders-10", PatternType::Prefixed),
            binding(ResourceType::Topic, "pay", PatternType::Prefixed),
            binding(ResourceType::Group, "orders-1", PatternType::Literal),
        ]
        .into();
        let index = AclIndex::new(&bindings);
        assert_eq!(index.len(), 7);
        let names = |name: &str| -> Vec<String> {
            let mut found: Vec<String> = index
                .covering(ResourceType::Topic, name)
                .map(|e| format!("{}:{}", e.binding.pattern_type, e.binding.resource_name))
                .collect();
            found.sort();
            found
        };
        assert_eq!(
            names("orders-1"),
            [
                "LITERAL:*",
                "LITERAL:orders-1",
                "PREFIXED:ord",
                "PREFIXED:orders-"
            ]
        );
        assert_eq!(names("*"), ["LITERAL:*"]);
        assert_eq!(names("o"), ["LITERAL:*"]);
        // A multi-byte name is cut only at character boundaries.
        assert_eq!(names("orö"), ["LITERAL:*"]);
        assert_eq!(
            index
                .covering(ResourceType::Cluster, "kafka-cluster")
                .count(),
            0
        );
        assert_eq!(index.of_type(ResourceType::Topic).count(), 6);
        assert!(AclIndex::default().is_empty());
    }
}
