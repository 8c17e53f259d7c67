//! API authentication and authorization: JWT bearer tokens and what each role may do.
//!
//! Every control-plane API call carries `Authorization: Bearer <jwt>`. The API layer hands that
//! header to [`TokenIssuer::verify`], which returns the caller's [`Principal`] (who, in which
//! tenant, with which [`Role`]) or an [`AuthError`] (→ 401). It then asks
//! [`Role::allows`] whether the role may perform the call's [`Action`] (→ 403 if not). Admins
//! mint tokens with [`TokenIssuer::mint`].
//!
//! # The service operator
//!
//! [`Role::ServiceOperator`] (`service-operator`) is the person or team that runs the Ferry
//! service itself, as opposed to a tenant's admin. It has an admin's rights in its own
//! tenant and, on top, the fleet view ([`Action::ReadFleet`]): every host with every tenant's
//! nodes on it. A tenant admin's view of the hosts shows only its own tenant's nodes on
//! them. Only the holder of the token secret mints tokens (`ferry token create`; there is no
//! minting API), so no tenant role can turn itself into a service operator. `ferry dev`
//! prints an admin token of its `dev` tenant and a service-operator token beside it.
//!
//! # Agents
//!
//! Host agents authenticate with the same kind of token, with the role [`Role::Agent`] and an
//! empty tenant: an agent acts for the fleet, not for a tenant. The agent role allows no
//! tenant [`Action`] at all, and only the agent role may call `AgentService`, so a tenant
//! token cannot pose as a host and an agent token cannot read any tenant's clusters. One
//! agent token serves every host for now; per-host credentials (client certificates issued at
//! enrollment, DESIGN.md section 8) will replace it.
//!
//! # Token format
//!
//! ```text
//! header:  {"alg":"HS256","typ":"JWT"}
//! claims:  {"sub":"alice","tenant":"acme","role":"operator",
//!           "iss":"ferry-control-plane","aud":"ferry-api",
//!           "iat":1767225600,"nbf":1767225600,"exp":1767229200}
//! ```
//!
//! # Algorithm: HS256 only
//!
//! Tokens are signed with HMAC-SHA256 under one secret key. The control plane is both the only
//! issuer and the only verifier (its replicas share the key), so a shared secret costs nothing
//! and keeps key handling to one random byte string (at least [`SECRET_LEN_MIN`] bytes). The
//! allow-list holds exactly HS256: `none`, HS384/HS512 and every asymmetric algorithm are
//! refused before any signature check, which rules out algorithm-confusion attacks. If agents or
//! brokers ever verify tokens themselves, switch to EdDSA so that verifiers cannot mint.
//!
//! # Time
//!
//! [`TokenIssuer::mint_at`] and [`TokenIssuer::verify_at`] take the current time (seconds since
//! the Unix epoch) so that they are pure and tests are exact; [`TokenIssuer::mint`] and
//! [`TokenIssuer::verify`] read the system clock. `exp` and `nbf` are checked with
//! [`LEEWAY_SECS`] of tolerance for clock skew between control-plane replicas.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The only signing algorithm accepted, by its JWT name.
pub const ALGORITHM: &str = "HS256";
/// Shortest HS256 secret accepted: 256 bits, the size of the hash.
pub const SECRET_LEN_MIN: usize = 32;
/// Tolerance, in seconds, on `exp` and `nbf` for clock skew between control-plane replicas.
pub const LEEWAY_SECS: u64 = 60;
/// The scheme prefix of the `Authorization` header value.
pub const BEARER_PREFIX: &str = "Bearer ";

/// A caller's permission level inside its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the tenant.
    Viewer,
    /// Reads, and changes running clusters (update, reboot), but neither creates nor deletes.
    Operator,
    /// Everything in the tenant, including creating and deleting clusters and minting tokens.
    Admin,
    /// Runs the Ferry service: an admin in its own tenant plus the fleet view, every host
    /// with every tenant's nodes on it ([`Action::ReadFleet`]). See the module docs.
    #[serde(rename = "service-operator")]
    ServiceOperator,
    /// A host agent: calls `AgentService` only, in no tenant (its tokens carry an empty
    /// tenant).
    Agent,
}

impl Role {
    /// Every role: the tenant roles least powerful first, then the agent role.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Admin,
        Role::ServiceOperator,
        Role::Agent,
    ];

    /// Whether this role may perform `action`. The whole permission table is this match.
    pub fn allows(self, action: Action) -> bool {
        if self == Role::Agent {
            // Agents act in no tenant, so no tenant action is theirs.
            return false;
        }
        let admin = matches!(self, Role::Admin | Role::ServiceOperator);
        match action {
            Action::Read => true,
            Action::Update | Action::Reboot => self == Role::Operator || admin,
            Action::Create | Action::Delete | Action::MintToken | Action::ReadHosts => admin,
            Action::ReadFleet => self == Role::ServiceOperator,
        }
    }

    /// Whether tokens of this role name a tenant (every role but [`Role::Agent`]).
    pub fn has_tenant(self) -> bool {
        self != Role::Agent
    }

    /// The role's name in tokens and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::ServiceOperator => "service-operator",
            Role::Agent => "agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?} (expected viewer, operator, admin, service-operator or \
                     agent)"
                )
            })
    }
}

/// What an API call does, for permission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Get, List, GetBootstrapBrokers, ListNodes, operations.
    Read,
    /// Changes to a running cluster: UpdateBrokerCount, UpdateClusterConfiguration, ….
    Update,
    /// RebootBroker.
    Reboot,
    /// CreateCluster, CreateConfiguration.
    Create,
    /// DeleteCluster, DeleteConfiguration.
    Delete,
    /// Minting API tokens.
    MintToken,
    /// ListHosts: the hosts, with the caller's own tenant's nodes on them.
    ReadHosts,
    /// The fleet view: every tenant's nodes on the hosts (service operators only).
    ReadFleet,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::Read,
        Action::Update,
        Action::Reboot,
        Action::Create,
        Action::Delete,
        Action::MintToken,
        Action::ReadHosts,
        Action::ReadFleet,
    ];
}

/// Who is calling: the verified content of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user or service the token was minted for (`sub`).
    pub subject: String,
    /// The tenant every call with this token acts in; empty for [`Role::Agent`].
    pub tenant: String,
    /// The caller's role in that tenant.
    pub role: Role,
}

/// The claims of a Ferry token, as serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user or service.
    pub sub: String,
    /// Tenant the token acts in.
    pub tenant: String,
    /// Role name; parsed after the signature is checked, so an unknown role is reported as
    /// malformed rather than as a JSON error.
    pub role: String,
    /// Issuer: the control plane that minted it.
    pub iss: String,
    /// Audience: the API it is meant for.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
}

/// Why a request's token was refused. Every variant means 401 Unauthenticated; they differ in
/// what the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or an empty one: the caller must log in.
    #[error("no bearer token was presented")]
    Missing,
    /// The header or token is not a well-formed Ferry token.
    #[error("malformed bearer token: {0}")]
    Malformed(String),
    /// The token has expired: the caller must get a new one.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (its `nbf` is in the future): clocks disagree.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The signature does not match: forged, or signed with another key.
    #[error("the token signature is invalid")]
    InvalidSignature,
    /// The token names an algorithm other than the one allowed (including `none`).
    #[error("the token algorithm {0:?} is not allowed (only {ALGORITHM} is)")]
    WrongAlgorithm(String),
    /// The token was minted by another issuer or for another audience.
    #[error("the token was issued by another issuer or for another audience")]
    WrongIssuerOrAudience,
}

/// The secret key was too short for HS256.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an HS256 secret needs at least {SECRET_LEN_MIN} bytes, got {len}")]
pub struct WeakSecret {
    /// The length given.
    pub len: usize,
}

/// Mints and verifies tokens for one issuer and audience under one HS256 secret.
#[derive(Clone)]
pub struct TokenIssuer {
    issuer: String,
    audience: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenIssuer {
    // Never print the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer named `issuer` minting tokens for `audience`, signing with `secret`.
    ///
    /// # Errors
    ///
    /// [`WeakSecret`] if `secret` is shorter than [`SECRET_LEN_MIN`].
    pub fn new(
        secret: &[u8],
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, WeakSecret> {
        if secret.len() < SECRET_LEN_MIN {
            return Err(WeakSecret { len: secret.len() });
        }
        let (issuer, audience) = (issuer.into(), audience.into());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Time is checked in `verify_at` against the time passed in, not the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            issuer,
            audience,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Mints a token for `principal` valid for `ttl` from now (system clock).
    pub fn mint(&self, principal: &Principal, ttl: Duration) -> String {
        self.mint_at(principal, ttl, unix_now())
    }

    /// Mints a token for `principal` valid from `now` (seconds since the Unix epoch) for `ttl`.
    pub fn mint_at(&self, principal: &Principal, ttl: Duration, now: u64) -> String {
        let claims = Claims {
            sub: principal.subject.clone(),
            tenant: principal.tenant.clone(),
            role: principal.role.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now.saturating_add(ttl.as_secs()),
            nbf: now,
            iat: now,
        };
        // HMAC signing of serializable claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing failed")
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`) against the system clock.
    ///
    /// # Errors
    ///
    /// See [`TokenIssuer::verify_at`].
    pub fn verify(&self, header_value: Option<&str>) -> Result<Principal, AuthError> {
        self.verify_at(header_value, unix_now())
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`) at time `now` (seconds since
    /// the Unix epoch) and returns who is calling.
    ///
    /// Checks, in order: the `Bearer ` prefix, the token's shape, the algorithm allow-list (before
    /// touching the signature), the signature, the issuer and audience, `exp` and `nbf` (with
    /// [`LEEWAY_SECS`]), and that the subject, tenant and role are present and known.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] naming the first check that failed.
    pub fn verify_at(&self, header_value: Option<&str>, now: u64) -> Result<Principal, AuthError> {
        let value = header_value.map(str::trim_start).unwrap_or_default();
        // "Bearer" with nothing after it (trailing space trimmed by a proxy) presents no token.
        if value.trim_end().is_empty() || value.trim_end() == BEARER_PREFIX.trim_end() {
            return Err(AuthError::Missing);
        }
        let token = value
            .strip_prefix(BEARER_PREFIX)
            .ok_or_else(|| AuthError::Malformed("expected \"Bearer <token>\"".into()))?
            .trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        check_algorithm(token)?;

        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| from_jwt_error(e.kind()))?
            .claims;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Expired);
        }
        if now.saturating_add(LEEWAY_SECS) < claims.nbf {
            return Err(AuthError::NotYetValid);
        }
        if claims.sub.is_empty() {
            return Err(AuthError::Malformed("empty subject".into()));
        }
        let role: Role = claims.role.parse().map_err(AuthError::Malformed)?;
        // Tenant roles need a tenant; an agent token must not name one, so that no code path
        // can ever mistake an agent for a member of some tenant.
        match (role.has_tenant(), claims.tenant.is_empty()) {
            (true, true) => return Err(AuthError::Malformed("empty tenant".into())),
            (false, false) => {
                return Err(AuthError::Malformed(
                    "an agent token must not name a tenant".into(),
                ));
            }
            _ => {}
        }
        Ok(Principal {
            subject: claims.sub,
            tenant: claims.tenant,
            role,
        })
    }
}

/// Reads the token's header ourselves and refuses any algorithm but [`ALGORITHM`]. jsonwebtoken
/// cannot even parse `"alg":"none"` (it has no such algorithm), which would make a `none` token
/// look merely malformed; naming it is clearer in logs and tests.
pub(crate) fn check_algorithm(token: &str) -> Result<(), AuthError> {
    #[derive(Deserialize)]
    struct JoseHeader {
        alg: String,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "a JWT has three dot-separated parts".into(),
        ));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("the header is not base64url".into()))?;
    let header: JoseHeader = serde_json::from_slice(&header)
        .map_err(|_| AuthError::Malformed("the header is not a JSON object with alg".into()))?;
    if header.alg != ALGORITHM {
        return Err(AuthError::WrongAlgorithm(header.alg));
    }
    Ok(())
}

pub(crate) fn from_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::WrongAlgorithm("unknown".into())
        }
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => AuthError::WrongIssuerOrAudience,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::Malformed(format!("the {claim} claim is missing"))
        }
        other => AuthError::Malformed(format!("{other:?}")),
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const HOUR: Duration = Duration::from_secs(3600);

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SECRET, "ferry-control-plane", "ferry-api").unwrap()
    }

    fn alice() -> Principal {
        Principal {
            subject: "alice".into(),
            tenant: "acme".into(),
            role: Role::Operator,
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn claims_json(now: u64) -> String {
        format!(
            r#"{{"sub":"alice","tenant":"acme","role":"admin","iss":"ferry-control-plane","aud":"ferry-api","iat":{now},"nbf":{now},"exp":{}}}"#,
            now + 3600
        )
    }

    #[test]
    fn a_minted_token_verifies_to_the_same_principal() {
        let issuer = issuer();
        for role in Role::ALL {
            let tenant = if role.has_tenant() { "acme" } else { "" };
            let principal = Principal {
                role,
                tenant: tenant.into(),
                ..alice()
            };
            let token = issuer.mint_at(&principal, HOUR, NOW);
            assert_eq!(
                issuer.verify_at(Some(&bearer(&token)), NOW + 10),
                Ok(principal)
            );
        }
    }

    #[test]
    fn the_system_clock_variants_round_trip() {
        let issuer = issuer();
        let token = issuer.mint(&alice(), HOUR);
        assert_eq!(issuer.verify(Some(&bearer(&token))), Ok(alice()));
    }

    #[test]
    fn a_missing_or_empty_header_is_missing() {
        let issuer = issuer();
        assert_eq!(issuer.verify_at(None, NOW), Err(AuthError::Missing));
        assert_eq!(issuer.verify_at(Some(""), NOW), Err(AuthError::Missing));
        assert_eq!(
            issuer.verify_at(Some("Bearer "), NOW),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let issuer = issuer();
        let token = issuer.mint_at(&alice(), HOUR, NOW);
        for value in [
            token.clone(), // no scheme
            format!("Basic {token}"),
            bearer("garbage"),
            bearer("a.b.c"),
            bearer("a.b.c.d"),
            bearer(&format!("{}.{}.", b64("[1,2]"), b64("{}"))),
        ] {
            assert!(
                matches!(
                    issuer.verify_at(Some(&value), NOW),
                    Err(AuthError::Malformed(_))
                ),
                "{value:?} gave {:?}",
                issuer.verify_at(Some(&value), NOW)
            );
        }
    }

    #[test]
    fn an_expired_token_is_refused_after_the_leeway() {
        let issuer = issuer();
        let token = bearer(&issuer.mint_at(&alice(), HOUR, NOW - 2 * 3600));
        assert_eq!(issuer.verify_at(Some(&token), NOW), Err(AuthError::Expired));
        // Within the leeway of its expiry it still passes.
        let exp = NOW - 3600;
        assert!(issuer.verify_at(Some(&token), exp + LEEWAY_SECS).is_ok());
        assert_eq!(
            issuer.verify_at(Some(&token), exp + LEEWAY_SECS + 1),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn a_token_from_the_future_is_not_yet_valid() {
        let issuer = issuer();
        let token = bearer(&issuer.mint_at(&alice(), HOUR, NOW + 600));
        assert_eq!(
            issuer.verify_at(Some(&token), NOW),
            Err(AuthError::NotYetValid)
        );
        assert!(
            issuer
                .verify_at(Some(&token), NOW + 600 - LEEWAY_SECS)
                .is_ok()
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = TokenIssuer::new(&[7u8; 32], "ferry-control-plane", "ferry-api").unwrap();
        let token = bearer(&other.mint_at(&alice(), HOUR, NOW));
        assert_eq!(
            issuer().verify_at(Some(&token), NOW),
            Err(AuthError::InvalidSignature)
        );
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let issuer = issuer();
        let token = issuer.mint_at(&alice(), HOUR, NOW);
        let parts: Vec<&str> = token.split('.').collect();
        // Promote the operator to admin, keeping the old signature.
        let forged = format!("{}.{}.{}", parts[0], b64(&claims_json(NOW)), parts[2]);
        assert_eq!(
            issuer.verify_at(Some(&bearer(&forged)), NOW),
            Err(AuthError::InvalidSignature)
        );
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&claims_json(NOW))
        );
        assert_eq!(
            issuer().verify_at(Some(&bearer(&token)), NOW),
            Err(AuthError::WrongAlgorithm("none".into()))
        );
    }

    #[test]
    fn an_hs384_token_with_the_right_key_is_refused_by_the_allow_list() {
        let header = jsonwebtoken::Header::new(Algorithm::HS384);
        let claims: Claims = serde_json::from_str(&claims_json(NOW)).unwrap();
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(
            issuer().verify_at(Some(&bearer(&token)), NOW),
            Err(AuthError::WrongAlgorithm("HS384".into()))
        );
    }

    #[test]
    fn a_token_for_another_issuer_or_audience_is_refused() {
        let other_issuer = TokenIssuer::new(SECRET, "someone-else", "ferry-api").unwrap();
        let other_audience = TokenIssuer::new(SECRET, "ferry-control-plane", "grafana").unwrap();
        for other in [other_issuer, other_audience] {
            let token = bearer(&other.mint_at(&alice(), HOUR, NOW));
            assert_eq!(
                issuer().verify_at(Some(&token), NOW),
                Err(AuthError::WrongIssuerOrAudience)
            );
        }
    }

    #[test]
    fn a_signed_token_with_an_unknown_role_or_missing_claim_is_malformed() {
        let sign = |json: &str| {
            let claims: serde_json::Value = serde_json::from_str(json).unwrap();
            bearer(
                &jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &claims,
                    &EncodingKey::from_secret(SECRET),
                )
                .unwrap(),
            )
        };
        let root = claims_json(NOW).replace(r#""role":"admin""#, r#""role":"root""#);
        let no_tenant = claims_json(NOW).replace(r#""tenant":"acme","#, "");
        for token in [sign(&root), sign(&no_tenant)] {
            assert!(
                matches!(
                    issuer().verify_at(Some(&token), NOW),
                    Err(AuthError::Malformed(_))
                ),
                "{:?}",
                issuer().verify_at(Some(&token), NOW)
            );
        }
    }

    #[test]
    fn an_agent_token_names_no_tenant_and_a_tenant_token_names_one() {
        let issuer = issuer();
        let agent_in_tenant = Principal {
            role: Role::Agent,
            ..alice()
        };
        let token = bearer(&issuer.mint_at(&agent_in_tenant, HOUR, NOW));
        assert!(matches!(
            issuer.verify_at(Some(&token), NOW),
            Err(AuthError::Malformed(_))
        ));
        let admin_without_tenant = Principal {
            role: Role::Admin,
            tenant: String::new(),
            ..alice()
        };
        let token = bearer(&issuer.mint_at(&admin_without_tenant, HOUR, NOW));
        assert!(matches!(
            issuer.verify_at(Some(&token), NOW),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            TokenIssuer::new(b"short", "i", "a").unwrap_err(),
            WeakSecret { len: 5 }
        );
    }

    #[test]
    fn debug_output_hides_the_keys() {
        let shown = format!("{:?}", issuer());
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn role_permissions_table() {
        use Action::*;
        let table: [(Role, &[Action]); 5] = [
            (Role::Viewer, &[Read]),
            (Role::Operator, &[Read, Update, Reboot]),
            (
                Role::Admin,
                &[Read, Update, Reboot, Create, Delete, MintToken, ReadHosts],
            ),
            (
                Role::ServiceOperator,
                &[
                    Read, Update, Reboot, Create, Delete, MintToken, ReadHosts, ReadFleet,
                ],
            ),
            (Role::Agent, &[]),
        ];
        for (role, allowed) in table {
            for action in Action::ALL {
                assert_eq!(
                    role.allows(action),
                    allowed.contains(&action),
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(
            "service-operator".parse::<Role>(),
            Ok(Role::ServiceOperator)
        );
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
