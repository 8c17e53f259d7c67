//! The control plane's certificate authority as the store keeps it, and the join tokens
//! already spent.
//!
//! The CA (certificate and private key, PEM) is written into the store once, when the store
//! is first bootstrapped (or imported from files for a replicated control plane), so every
//! member can issue host and node certificates. Its key is a [`SecretPem`]: it travels in the
//! raft log and snapshots (which live under the control plane's private data directory), and
//! it never appears in `Debug` output or logs.

use crate::model::TimestampMs;

/// PEM text that must stay secret (a private key): serialized as the plain string, printed
/// as `<redacted>`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretPem(String);

impl SecretPem {
    /// Wraps `pem`.
    pub fn new(pem: impl Into<String>) -> Self {
        SecretPem(pem.into())
    }

    /// The PEM text (only to hand to the CA code).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The CA as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCa {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// The CA private key (PEM).
    pub key_pem: SecretPem,
}

/// Longest a join token may live: a spent token id is remembered until its token would have
/// expired, so this bounds how long the store keeps each one.
pub const JOIN_TOKEN_TTL_MAX_MS: TimestampMs = 7 * 24 * 3600 * 1000;
/// Most spent join token ids remembered at once (expired ones are forgotten first); beyond
/// it, enrollment is refused until some expire.
pub const SPENT_JOIN_TOKENS_MAX: usize = 100_000;
/// Longest join token id (`jti`) accepted.
pub const JOIN_TOKEN_ID_LEN_MAX: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_pem_never_prints() {
        let ca = StoredCa {
            cert_pem: "CERT".into(),
            key_pem: SecretPem::new("-----BEGIN PRIVATE KEY-----abc"),
        };
        let printed = format!("{ca:?}");
        assert!(!printed.contains("PRIVATE"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert_eq!(
            serde_json::to_string(&ca.key_pem).unwrap(),
            "\"-----BEGIN PRIVATE KEY-----abc\""
        );
    }
}
