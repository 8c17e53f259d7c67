//! Join tokens: the one-time credential an agent trades for its host certificate.
//!
//! An operator mints one per host (`ferry token create --role agent --host ID`). The agent
//! presents it once, to `EnrollmentService/Enroll` on the public API port, with a certificate
//! signing request over a key it made itself; the control plane checks the token, spends its
//! id in the store (a second use is refused, on every member), and signs the key for
//! `Identity::Host { host_id }`, the host the *token* names. From then on the agent calls
//! `AgentService` on the peer port with that certificate, and only for that host.
//!
//! # Token format
//!
//! ```text
//! header:  {"alg":"HS256","typ":"JWT"}
//! claims:  {"sub":"host-a","jti":"<32 hex digits>","ca":"<sha256 of the CA cert, hex>",
//!           "iss":"ferry-control-plane","aud":"ferry-agent-join",
//!           "iat":1767225600,"nbf":1767225600,"exp":1767229200}
//! ```
//!
//! Signed with the control plane's token secret, like API tokens, but for another audience
//! ([`JOIN_AUDIENCE`]): a join token is never an API token and an API token never enrolls a
//! host. `ca` lets the agent check that the CA the control plane hands it is the one the
//! operator meant (the enrollment call itself is not yet authenticated by TLS). A token lives
//! at most [`JOIN_TOKEN_TTL_MAX`].

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, LEEWAY_SECS, SECRET_LEN_MIN, WeakSecret};
use crate::model::ca::{JOIN_TOKEN_ID_LEN_MAX, JOIN_TOKEN_TTL_MAX_MS};

/// The audience (`aud`) of join tokens; API tokens have another, so neither passes for the
/// other.
pub const JOIN_AUDIENCE: &str = "ferry-agent-join";
/// The longest a join token may be valid.
pub const JOIN_TOKEN_TTL_MAX: Duration = Duration::from_millis(JOIN_TOKEN_TTL_MAX_MS as u64);
/// How long a join token is valid unless the operator says otherwise.
pub const JOIN_TOKEN_TTL_DEFAULT: Duration = Duration::from_secs(3600);
/// How long a host certificate issued at enrollment is valid.
pub const HOST_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Longest certificate signing request accepted (PEM bytes); a P-256 CSR is under 1 KiB.
pub const CSR_PEM_BYTES_MAX: usize = 16 * 1024;
/// Longest join token accepted (bytes).
pub const JOIN_TOKEN_BYTES_MAX: usize = 4 * 1024;

/// The claims of a join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The host the token enrolls.
    pub sub: String,
    /// The token's one-time id (defaulted when absent, so that a token of another kind is
    /// refused for its audience rather than its shape).
    #[serde(default)]
    pub jti: String,
    /// SHA-256 fingerprint (hex) of the CA certificate the agent must be given.
    #[serde(default)]
    pub ca: String,
    /// Issuer.
    pub iss: String,
    /// Audience: [`JOIN_AUDIENCE`].
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
}

/// Mints and verifies join tokens under the control plane's token secret.
#[derive(Clone)]
pub struct JoinTokens {
    issuer: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JoinTokens {
    // Never print the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinTokens")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl JoinTokens {
    /// Join tokens of `issuer` signed with `secret`.
    ///
    /// # Errors
    ///
    /// [`WeakSecret`] if `secret` is shorter than [`SECRET_LEN_MIN`].
    pub fn new(secret: &[u8], issuer: impl Into<String>) -> Result<Self, WeakSecret> {
        if secret.len() < SECRET_LEN_MIN {
            return Err(WeakSecret { len: secret.len() });
        }
        let issuer = issuer.into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[JOIN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(JoinTokens {
            issuer,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// A join token for `host_id`, expecting the CA with `ca_fingerprint`, valid for `ttl`
    /// (at most [`JOIN_TOKEN_TTL_MAX`]) from now, with a fresh random id.
    pub fn mint(&self, host_id: &str, ca_fingerprint: &str, ttl: Duration) -> String {
        let id: [u8; 16] = rand::random();
        let jti: String = id.iter().map(|b| format!("{b:02x}")).collect();
        self.mint_at(host_id, ca_fingerprint, ttl, crate::auth::unix_now(), &jti)
    }

    /// A join token as [`JoinTokens::mint`], at time `now` (seconds) with id `jti`.
    pub fn mint_at(
        &self,
        host_id: &str,
        ca_fingerprint: &str,
        ttl: Duration,
        now: u64,
        jti: &str,
    ) -> String {
        let ttl = ttl.min(JOIN_TOKEN_TTL_MAX);
        let claims = JoinClaims {
            sub: host_id.into(),
            jti: jti.into(),
            ca: ca_fingerprint.into(),
            iss: self.issuer.clone(),
            aud: JOIN_AUDIENCE.into(),
            exp: now.saturating_add(ttl.as_secs()),
            nbf: now,
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing failed")
    }

    /// Verifies a join token at time `now` (seconds since the Unix epoch).
    ///
    /// # Errors
    ///
    /// An [`AuthError`] naming the first check that failed: shape, algorithm, signature,
    /// issuer or audience (an API token is [`AuthError::WrongIssuerOrAudience`]), expiry,
    /// not-before, an empty host or id.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<JoinClaims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > JOIN_TOKEN_BYTES_MAX {
            return Err(AuthError::Malformed(format!(
                "a join token has at most {JOIN_TOKEN_BYTES_MAX} bytes"
            )));
        }
        crate::auth::check_algorithm(token)?;
        let claims = jsonwebtoken::decode::<JoinClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| crate::auth::from_jwt_error(e.kind()))?
            .claims;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Expired);
        }
        if now.saturating_add(LEEWAY_SECS) < claims.nbf {
            return Err(AuthError::NotYetValid);
        }
        if claims.sub.is_empty() {
            return Err(AuthError::Malformed("the join token names no host".into()));
        }
        if claims.jti.is_empty() || claims.jti.len() > JOIN_TOKEN_ID_LEN_MAX {
            return Err(AuthError::Malformed(
                "the join token id is missing or too long".into(),
            ));
        }
        if claims.ca.is_empty() {
            return Err(AuthError::Malformed("the join token names no CA".into()));
        }
        Ok(claims)
    }

    /// Verifies a join token against the system clock; see [`JoinTokens::verify_at`].
    ///
    /// # Errors
    ///
    /// As [`JoinTokens::verify_at`].
    pub fn verify(&self, token: &str) -> Result<JoinClaims, AuthError> {
        self.verify_at(token, crate::auth::unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Role, TokenIssuer};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_767_225_600;

    fn tokens() -> JoinTokens {
        JoinTokens::new(SECRET, "ferry-control-plane").unwrap()
    }

    #[test]
    fn a_join_token_names_its_host_id_and_ca() {
        let token = tokens().mint_at("host-a", "ab12", Duration::from_secs(600), NOW, "j1");
        let claims = tokens().verify_at(&token, NOW + 10).unwrap();
        assert_eq!((claims.sub.as_str(), claims.jti.as_str()), ("host-a", "j1"));
        assert_eq!(claims.ca, "ab12");
    }

    #[test]
    fn an_expired_join_token_is_refused() {
        let token = tokens().mint_at("host-a", "ab12", Duration::from_secs(600), NOW, "j1");
        let late = NOW + 600 + LEEWAY_SECS + 1;
        assert_eq!(tokens().verify_at(&token, late), Err(AuthError::Expired));
    }

    #[test]
    fn api_tokens_and_join_tokens_do_not_pass_for_each_other() {
        let api = TokenIssuer::new(SECRET, "ferry-control-plane", "ferry-api").unwrap();
        let admin = api.mint_at(
            &Principal {
                subject: "a".into(),
                tenant: "t".into(),
                role: Role::Admin,
            },
            Duration::from_secs(600),
            NOW,
        );
        assert_eq!(
            tokens().verify_at(&admin, NOW),
            Err(AuthError::WrongIssuerOrAudience)
        );
        let join = tokens().mint_at("host-a", "ab12", Duration::from_secs(600), NOW, "j1");
        assert!(api.verify_at(Some(&format!("Bearer {join}")), NOW).is_err());
    }

    #[test]
    fn a_join_token_signed_with_another_secret_is_refused() {
        let other =
            JoinTokens::new(b"another secret that is 32 bytes!!", "ferry-control-plane").unwrap();
        let token = other.mint_at("host-a", "ab12", Duration::from_secs(600), NOW, "j1");
        assert_eq!(
            tokens().verify_at(&token, NOW),
            Err(AuthError::InvalidSignature)
        );
    }

    #[test]
    fn the_ttl_is_capped() {
        let token = tokens().mint_at("h", "f", Duration::from_secs(365 * 24 * 3600), NOW, "j");
        let claims = tokens().verify_at(&token, NOW).unwrap();
        assert_eq!(claims.exp - NOW, JOIN_TOKEN_TTL_MAX.as_secs());
    }
}
