//! Client security on the Kafka listeners: who a connection is, how it proves it, and what it
//! may do.
//!
//! Every connection to a Kafka listener acts as one [`Principal`]: `User:ANONYMOUS` on a
//! listener without authentication, the name a client proved with SASL or its certificate
//! otherwise. The pieces here are sans-IO and take their clock and randomness as arguments, so
//! tests drive them step by step:
//! - the SASL mechanisms' server sides (one module each), turning a client's messages into a
//!   verified principal or a failure;
//! - the connection's security state machine ([`session`]): what an unauthenticated peer may
//!   send, how the SASL exchange and re-authentication advance, when a session expires;
//! - Kafka ACLs and the authorizer, a pure function of the metadata image's ACLs, the broker's
//!   settings, the principal, its address, an operation and a resource.
//!
//! The connection loop (`crate::server`) owns the sockets and the timers; the controllers'
//! metadata log (`crate::controller`) replicates credentials and ACLs. Nothing secret
//! (passwords, salted passwords, tokens) is ever logged or written to the metadata log.

pub mod acl;
pub mod authorizer;
#[cfg(test)]
mod golden;

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod plain;
pub mod scram;
pub mod session;
#[cfg(test)]
mod session_golden;

/// The longest principal name accepted, in bytes (Kafka sets none; a name longer than a
/// frame's worth of ACL lookups is refused rather than stored).
pub const PRINCIPAL_NAME_MAX_BYTES: usize = 1024;

/// Who a Kafka connection is, as ACLs name it: a type and a name, written `User:alice`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// The principal type; Kafka and Ferry use `User` for every client.
    pub principal_type: String,
    /// The name within the type (`alice`, `CN=app,O=example`, `ANONYMOUS`).
    pub name: String,
}

/// Why a principal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// No `:` between a type and a name, or one of them is empty.
    #[error("principal {0:?} is not of the form Type:name")]
    Malformed(String),
    /// The name is longer than [`PRINCIPAL_NAME_MAX_BYTES`].
    #[error("principal name is {0} bytes, longer than {PRINCIPAL_NAME_MAX_BYTES}")]
    TooLong(usize),
}

impl Principal {
    /// The type of every client principal.
    pub const USER_TYPE: &'static str = "User";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            principal_type: Self::USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: a connection on a listener without authentication, or on TLS without
    /// a client certificate (Kafka's name for it).
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Parses `Type:name` as Kafka writes principals (in `super.users` and ACL bindings). The
    /// name may itself contain `:`; only the first one separates.
    pub fn parse(text: &str) -> Result<Self, PrincipalError> {
        let Some((principal_type, name)) = text.split_once(':') else {
            return Err(PrincipalError::Malformed(text.to_string()));
        };
        if principal_type.is_empty() || name.is_empty() {
            return Err(PrincipalError::Malformed(text.to_string()));
        }
        if name.len() > PRINCIPAL_NAME_MAX_BYTES {
            return Err(PrincipalError::TooLong(name.len()));
        }
        Ok(Self {
            principal_type: principal_type.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_and_print_as_kafka_writes_them() {
        let alice = Principal::parse("User:alice").unwrap();
        assert_eq!(alice, Principal::user("alice"));
        assert_eq!(alice.to_string(), "User:alice");
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
        let dn = Principal::parse("User:CN=app,O=example:east").unwrap();
        assert_eq!(dn.name, "CN=app,O=example:east");
    }

    #[test]
    fn malformed_and_oversized_principals_are_refused() {
        for bad in ["alice", ":alice", "User:", ""] {
            assert!(
                matches!(Principal::parse(bad), Err(PrincipalError::Malformed(_))),
                "{bad:?}"
            );
        }
        let long = format!("User:{}", "a".repeat(PRINCIPAL_NAME_MAX_BYTES + 1));
        assert_eq!(
            Principal::parse(&long),
            Err(PrincipalError::TooLong(PRINCIPAL_NAME_MAX_BYTES + 1))
        );
    }
}
