//! Golden scripts for the authorizer (test-only).
//!
//! Each script in `data-plane/tests/golden/authorizer/` starts with no ACLs, no super users
//! and `allow.everyone.if.no.acl.found=false`, adds bindings through the same validation
//! CreateAcls uses, and shows what [`authorize`], [`authorize_any`] and
//! [`authorized_operations`] decide and by which rule. The format is in [`crate::golden`].
//!
//! # Commands
//!
//! ```text
//! acl add <ALLOW|DENY> <principal> <operation> <resource> [from <host>]   a binding (host *)
//! settings [super-users=User:a;User:b] [allow-everyone=true|false]        the broker settings
//! check <principal> <ip> <operation> <resource>                           authorize
//! check-any <principal> <ip> <operation> <resource type>                  authorize_any
//! ops <principal> <ip> <resource>                                         authorized_operations
//! acls                                                                    the bindings, in order
//! ```
//!
//! A resource is `<type>:<name>` (LITERAL) or `<type>:<prefix>*` (PREFIXED); `topic:*` is the
//! LITERAL wildcard. Types: `topic`, `group`, `cluster`, `transactional-id`,
//! `delegation-token`, `user`. Operations, permissions and the ANY/UNKNOWN words are Kafka's
//! names, case-insensitive.
//!
//! # Output
//!
//! `acl add` renders `ok`, `ok duplicate` or `error <Kafka error>: <message>`. A check renders
//! `ALLOWED` or `DENIED`, then `by <binding>` or the rule (super user, no ACL found, ...).
//! `ops` renders the bit set, then the allowed operations.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::Principal;
use super::acl::{
    ANY_CODE, AclBinding, AclIndex, AclOperation, AclPermissionType, Created, NewAcl, PatternType,
    ResourceType, UNKNOWN_CODE, plan_creations, validate_new_binding,
};
use super::authorizer::{
    AnyDecision, AuthorizerSettings, Decision, PROBE_RESOURCE_NAME, authorize, authorize_any,
    authorized_operations, supported_operations,
};
use crate::golden::{self, Command, Driver};

/// One script's ACLs and settings.
#[derive(Default)]
struct AuthorizerDriver {
    /// The image's bindings.
    acls: BTreeSet<AclBinding>,
    /// The broker's settings.
    settings: AuthorizerSettings,
}

/// The script's word for a resource type.
fn type_word(resource_type: ResourceType) -> String {
    resource_type.name().to_ascii_lowercase().replace('_', "-")
}

/// A Kafka enum's code from its name, or ANY/UNKNOWN's code.
fn code_of<T: std::str::FromStr<Err = String>>(
    word: &str,
    code: fn(T) -> i8,
) -> Result<i8, String> {
    match word.to_ascii_uppercase().as_str() {
        "ANY" => Ok(ANY_CODE),
        "UNKNOWN" => Ok(UNKNOWN_CODE),
        _ => word.parse::<T>().map(code),
    }
}

/// `type:name` or `type:prefix*` as (type, name, pattern).
fn parse_resource(text: &str) -> Result<(ResourceType, String, PatternType), String> {
    let (kind, name) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: a resource is type:name"))?;
    let resource_type = ResourceType::ALL
        .iter()
        .copied()
        .find(|t| type_word(*t) == kind)
        .ok_or_else(|| format!("{kind:?}: not a resource type"))?;
    Ok(match name.strip_suffix('*') {
        Some(prefix) if !prefix.is_empty() => {
            (resource_type, prefix.to_string(), PatternType::Prefixed)
        }
        _ => (resource_type, name.to_string(), PatternType::Literal),
    })
}

/// A binding in the script's own syntax.
fn render_binding(binding: &AclBinding) -> String {
    let star = if binding.pattern_type == PatternType::Prefixed {
        "*"
    } else {
        ""
    };
    format!(
        "{} {} {} {}:{}{star} from {}",
        binding.permission,
        binding.principal,
        binding.operation,
        type_word(binding.resource_type),
        binding.resource_name,
        binding.host
    )
}

fn render_decision(decision: &Decision<'_>, resource: &str) -> String {
    let verdict = if decision.is_allowed() {
        "ALLOWED"
    } else {
        "DENIED"
    };
    match decision {
        Decision::SuperUser => format!("{verdict}: super user"),
        Decision::Allowed(binding) | Decision::Denied(binding) => {
            format!("{verdict} by {}", render_binding(binding))
        }
        Decision::NoMatchingAcl => format!("{verdict}: ACLs cover {resource}, none applies"),
        Decision::NoAclFound { allowed } => format!(
            "{verdict}: no ACL covers {resource} (allow.everyone.if.no.acl.found={allowed})"
        ),
    }
}

fn render_any(decision: &AnyDecision<'_>) -> String {
    match decision {
        AnyDecision::Probe(inner) => {
            let resource = format!("the probe {PROBE_RESOURCE_NAME:?}");
            format!("{} (probe)", render_decision(inner, &resource))
        }
        AnyDecision::WildcardDenied(binding) => {
            format!("DENIED by wildcard {}", render_binding(binding))
        }
        AnyDecision::WildcardAllowed(binding) => {
            format!("ALLOWED by wildcard {}", render_binding(binding))
        }
        AnyDecision::Allowed(binding) => {
            format!("ALLOWED by undominated {}", render_binding(binding))
        }
        AnyDecision::Denied => "DENIED: no applicable ALLOW escapes every DENY".to_string(),
    }
}

impl AuthorizerDriver {
    fn add(&mut self, command: &Command) -> Result<String, String> {
        let words = &command.positional;
        let host = match words.get(5).map(String::as_str) {
            None => "*",
            Some("from") => command.arg(6, "host")?,
            Some(other) => return Err(format!("{other:?}: expected `from <host>`")),
        };
        let (resource_type, name, pattern) = parse_resource(command.arg(4, "resource")?)?;
        let new = NewAcl {
            resource_type: resource_type.code(),
            resource_name: &name,
            pattern_type: pattern.code(),
            principal: command.arg(2, "principal")?,
            host,
            operation: code_of(command.arg(3, "operation")?, AclOperation::code)?,
            permission: code_of(command.arg(1, "permission")?, AclPermissionType::code)?,
        };
        let outcome = validate_new_binding(&new).and_then(|binding| {
            plan_creations(&self.acls, std::slice::from_ref(&binding))
                .pop()
                .expect("one outcome per binding")
        });
        Ok(match outcome {
            Ok(Created::Added(binding)) => {
                self.acls.insert(binding);
                "ok".to_string()
            }
            Ok(Created::Duplicate) => "ok duplicate".to_string(),
            Err(error) => format!("error {:?}: {error}", error.code()),
        })
    }

    fn who(command: &Command) -> Result<(Principal, IpAddr), String> {
        let principal =
            Principal::parse(command.arg(0, "principal")?).map_err(|e| e.to_string())?;
        let ip = command.arg(1, "ip")?;
        let ip = ip
            .parse()
            .map_err(|_| format!("{ip:?}: not an IP address"))?;
        Ok((principal, ip))
    }
}

impl Driver for AuthorizerDriver {
    fn run(&mut self, command: &Command) -> Result<String, String> {
        let index = AclIndex::new(&self.acls);
        match command.name.as_str() {
            "acl" => match command.arg(0, "add")? {
                "add" => self.add(command),
                other => Err(format!("acl {other}: unknown")),
            },
            "settings" => {
                if let Some(users) = command.named.get("super-users") {
                    self.settings.super_users =
                        AuthorizerSettings::parse_super_users(users).map_err(|e| e.to_string())?;
                }
                if let Some(allow) = command.get("allow-everyone")? {
                    self.settings.allow_everyone_if_no_acl_found = allow;
                }
                Ok("ok".to_string())
            }
            "check" => {
                let (principal, ip) = Self::who(command)?;
                let operation = command.arg(2, "operation")?.parse()?;
                let resource = command.arg(3, "resource")?;
                let (resource_type, name, pattern) = parse_resource(resource)?;
                if pattern != PatternType::Literal {
                    return Err("a checked resource is LITERAL".to_string());
                }
                let decision = authorize(
                    &index,
                    &self.settings,
                    &principal,
                    ip,
                    operation,
                    (resource_type, &name),
                );
                Ok(render_decision(&decision, resource))
            }
            "check-any" => {
                let (principal, ip) = Self::who(command)?;
                let operation = command.arg(2, "operation")?.parse()?;
                let kind = command.arg(3, "resource type")?;
                let (resource_type, _, _) = parse_resource(&format!("{kind}:x"))?;
                let decision = authorize_any(
                    &index,
                    &self.settings,
                    &principal,
                    ip,
                    operation,
                    resource_type,
                );
                Ok(render_any(&decision))
            }
            "ops" => {
                let (principal, ip) = Self::who(command)?;
                let (resource_type, name, _) = parse_resource(command.arg(2, "resource")?)?;
                let bits = authorized_operations(
                    &index,
                    &self.settings,
                    &principal,
                    ip,
                    (resource_type, &name),
                );
                let mut names: Vec<AclOperation> = supported_operations(resource_type)
                    .iter()
                    .copied()
                    .filter(|op| bits & (1 << op.code()) != 0)
                    .collect();
                names.sort();
                let names: Vec<&str> = names.iter().map(|op| op.name()).collect();
                Ok(format!("{bits} = [{}]", names.join(" ")))
            }
            "acls" => Ok(if self.acls.is_empty() {
                "none".to_string()
            } else {
                self.acls
                    .iter()
                    .map(render_binding)
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            other => Err(format!("{other}: unknown command")),
        }
    }
}

#[test]
fn authorizer_scripts() {
    golden::run_dir("authorizer", || Box::new(AuthorizerDriver::default()));
}
