//! The agent's identity: enrollment with a join token, and the host certificate kept after it.
//!
//! ```text
//! first start:   join token (file or env) ──► make a key and a CSR ──► Enroll on a member's
//!                public API port (each member's in turn until one answers) ──► check the
//!                CA's fingerprint against the token ──► keep the certificate, key and CA in
//!                <data dir>/identity (0700; files 0600) and every member's peer address in
//!                <data dir>/control-plane-peer (one a line, the enrolling member's first)
//! later starts:  load <data dir>/identity; the join token is not needed (it is spent)
//! ```
//!
//! The key never leaves the host. The host id is the one the join token names (and so the
//! one the certificate carries); every later call to `AgentService` is made with this
//! certificate over mutual TLS, and the control plane lets it act for that host only.
//!
//! The same scheme gives each node its certificate ([`crate::node_tls`]): the agent makes the
//! node's key, the control plane signs it for the node's cluster, id and role as assigned.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_identity::{Identity, TlsMaterial};
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::enrollment_service_client::EnrollmentServiceClient;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::write_atomically;

/// Subdirectory of the agent's data directory holding its host certificate, key and CA.
pub const IDENTITY_DIR: &str = "identity";
/// File holding the control plane members' peer addresses (`host:port`, one a line), as
/// enrollment told them.
pub const PEER_ADDRESS_FILE: &str = "control-plane-peer";
/// How long the agent keeps trying to reach the control plane to enroll.
pub const ENROLL_WAIT: Duration = Duration::from_secs(60);
/// Pause between rounds of enrollment attempts while no member can be reached.
const ENROLL_RETRY: Duration = Duration::from_millis(500);
/// Longest join token read (a JWT of a few hundred bytes).
pub const JOIN_TOKEN_BYTES_MAX: usize = 4096;

/// A join token: a secret until spent, so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken(String);

impl JoinToken {
    /// Wraps a token (surrounding whitespace, as in a file, is dropped).
    pub fn new(token: impl AsRef<str>) -> JoinToken {
        JoinToken(token.as_ref().trim().to_string())
    }

    /// The token text, for the one request that spends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinToken(<redacted>)")
    }
}

/// What the token says about itself (read without checking its signature: the agent cannot,
/// and the control plane does).
#[derive(Debug, serde::Deserialize)]
struct Claims {
    /// The host it enrolls.
    sub: String,
    /// The CA's fingerprint.
    ca: String,
}

/// An enrolled host: its id, its TLS material, the control plane members' peer addresses.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The host id the certificate speaks for.
    pub host_id: String,
    /// The host certificate, its key and the CA.
    pub material: TlsMaterial,
    /// `host:port` of each member's peer listener, the one the host enrolled with first.
    pub peer_addresses: Vec<String>,
}

/// The identity kept in `data_dir`, if the host enrolled before.
///
/// # Errors
///
/// [`Error::InvalidData`] when the kept material does not load or is not a host's.
pub fn load(data_dir: &Path) -> Result<Option<Enrolled>> {
    let dir = data_dir.join(IDENTITY_DIR);
    if !dir.join(ferry_identity::CERT_FILE).exists() {
        return Ok(None);
    }
    let material = TlsMaterial::load_dir(&dir).map_err(|e| {
        Error::InvalidData(format!("the host certificate in {}: {e}", dir.display()))
    })?;
    let host_id = host_of(&material)?;
    let path = data_dir.join(PEER_ADDRESS_FILE);
    let peer_addresses: Vec<String> = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(&path, e))?
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    if peer_addresses.is_empty() {
        return Err(Error::InvalidData(format!(
            "{} names no control plane peer address",
            path.display()
        )));
    }
    Ok(Some(Enrolled {
        host_id,
        material,
        peer_addresses,
    }))
}

/// The host id `material`'s certificate speaks for.
fn host_of(material: &TlsMaterial) -> Result<String> {
    match material.identity() {
        Ok(Identity::Host { host_id }) => Ok(host_id),
        Ok(other) => Err(Error::InvalidData(format!(
            "the kept certificate speaks for {other:?}, not a host"
        ))),
        Err(e) => Err(Error::InvalidData(format!("the kept certificate: {e}"))),
    }
}

/// The host the join token names (to check it against a given host id before enrolling).
///
/// # Errors
///
/// [`Error::InvalidInput`] for a token that is not a JWT with a host and a CA fingerprint.
pub fn token_host(token: &JoinToken) -> Result<String> {
    Ok(claims(token)?.sub)
}

/// Reads the token's claims.
fn claims(token: &JoinToken) -> Result<Claims> {
    let bad = |why: &str| Error::InvalidInput(format!("the join token {why}"));
    if token.0.len() > JOIN_TOKEN_BYTES_MAX {
        return Err(bad("is too long"));
    }
    let payload = token
        .0
        .split('.')
        .nth(1)
        .ok_or_else(|| bad("is not a JWT"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| bad("is not a JWT (payload is not base64url)"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| bad("has no host (sub) or CA fingerprint (ca)"))?;
    if claims.sub.is_empty() || claims.ca.is_empty() {
        return Err(bad("has no host or no CA fingerprint"));
    }
    Ok(claims)
}

/// Enrolls the host at one of the control plane members' public API `urls` with `token`,
/// keeps the result in `data_dir` and returns it. Tries the members in turn (each for one
/// timeout), round after round for up to [`ENROLL_WAIT`], while none can be reached; a refusal
/// is final.
///
/// # Errors
///
/// [`Error::Enrollment`] for a refused token, a CA that is not the one the token names, or a
/// control plane that stays unreachable; [`Error::InvalidInput`] for a bad URL; [`Error::Io`]
/// when the data dir cannot be written.
pub async fn enroll(
    data_dir: &Path,
    urls: &[String],
    token: &JoinToken,
    timeout: Duration,
) -> Result<Enrolled> {
    let claims = claims(token)?;
    let (key_pem, csr_pem) = new_key_and_csr()?;
    let mut clients = Vec::with_capacity(urls.len());
    for url in urls {
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| Error::InvalidInput(format!("control plane URL {url:?}: {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout);
        clients.push((url, EnrollmentServiceClient::new(endpoint.connect_lazy())));
    }
    if clients.is_empty() {
        return Err(Error::InvalidInput(
            "no control plane URL to enroll at".into(),
        ));
    }
    let deadline = tokio::time::Instant::now() + ENROLL_WAIT;
    let (url, response) = 'members: loop {
        let mut failures = Vec::new();
        for (url, client) in &mut clients {
            let request = pb::EnrollRequest {
                join_token: token.0.clone(),
                csr_pem: csr_pem.clone(),
            };
            match client.enroll(request).await {
                Ok(response) => break 'members (url.as_str(), response.into_inner()),
                Err(status) if crate::client::is_unreachable(status.code()) => {
                    failures.push(format!("{url}: {}", status.message()));
                }
                Err(status) => {
                    return Err(Error::Enrollment(format!(
                        "the control plane at {url} answered {:?}: {}",
                        status.code(),
                        status.message()
                    )));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Enrollment(format!(
                "no control-plane member could be reached within {ENROLL_WAIT:?} ({})",
                failures.join("; ")
            )));
        }
        tokio::time::sleep(ENROLL_RETRY).await;
    };
    let fingerprint = fingerprint(&response.ca_pem)?;
    if fingerprint != claims.ca {
        return Err(Error::Enrollment(format!(
            "the control plane at {url} handed over a CA ({fingerprint}) other than the one the \
             join token names ({}); not trusting it",
            claims.ca
        )));
    }
    let material = TlsMaterial::new(response.ca_pem, response.cert_pem, key_pem);
    let host_id = host_of(&material)?;
    if host_id != claims.sub {
        return Err(Error::Enrollment(format!(
            "the certificate is for host {host_id:?}, the token for {:?}",
            claims.sub
        )));
    }
    let peer_addresses = peer_addresses(&response.peer_address, &response.member_peer_addresses);
    let dir = data_dir.join(IDENTITY_DIR);
    material.write(&dir).map_err(|e| {
        Error::Io(format!(
            "keeping the host certificate in {}: {e}",
            dir.display()
        ))
    })?;
    let path: PathBuf = data_dir.join(PEER_ADDRESS_FILE);
    let lines: String = peer_addresses.iter().map(|a| format!("{a}\n")).collect();
    write_atomically(&path, lines.as_bytes()).map_err(|e| Error::io(&path, e))?;
    tracing::info!(host_id, url, "enrolled with the control plane");
    Ok(Enrolled {
        host_id,
        material,
        peer_addresses,
    })
}

/// The members' peer addresses an enrollment answer gives: the enrolling member's first, then
/// the others, each once. (A control plane older than the member list gives only its own.)
fn peer_addresses(own: &str, members: &[String]) -> Vec<String> {
    let mut addresses = vec![own.to_string()];
    for address in members {
        if !addresses.contains(address) {
            addresses.push(address.clone());
        }
    }
    addresses
}

/// A new key (PEM) and a certificate signing request over it (PEM). The request names
/// nothing: the control plane decides what the certificate says.
pub fn new_key_and_csr() -> Result<(String, String)> {
    let key =
        rcgen::KeyPair::generate().map_err(|e| Error::Io(format!("generating a key: {e}")))?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| Error::Io(format!("making a certificate signing request: {e}")))?;
    Ok((key.serialize_pem(), csr))
}

/// SHA-256 of a PEM certificate's DER, lowercase hex (as `ferry_identity` computes a CA's
/// fingerprint).
pub fn fingerprint(cert_pem: &str) -> Result<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| Error::Enrollment(format!("the CA certificate is not PEM: {e}")))?;
    Ok(Sha256::digest(&pem.contents)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> JoinToken {
        JoinToken::new(format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.as_bytes())
        ))
    }

    #[test]
    fn the_token_names_the_host() {
        let token = token(r#"{"sub":"host-a","ca":"ab","jti":"x"}"#);
        assert_eq!(token_host(&token).unwrap(), "host-a");
        assert!(!format!("{token:?}").contains("e30"));
    }

    #[test]
    fn a_token_without_host_or_ca_is_refused() {
        for claims in [r#"{"sub":"","ca":"ab"}"#, r#"{"sub":"h"}"#, "not json"] {
            assert!(token_host(&token(claims)).is_err(), "{claims}");
        }
        assert!(token_host(&JoinToken::new("no-dots")).is_err());
    }

    #[test]
    fn the_enrolling_members_peer_address_comes_first_and_each_once() {
        let members = [
            "cp-1:7071".to_string(),
            "cp-2:7071".into(),
            "cp-3:7071".into(),
        ];
        assert_eq!(
            peer_addresses("cp-2:7071", &members),
            ["cp-2:7071", "cp-1:7071", "cp-3:7071"]
        );
        assert_eq!(peer_addresses("cp-1:7071", &[]), ["cp-1:7071"]);
    }

    #[test]
    fn the_fingerprint_matches_the_cas_own() {
        let ca = ferry_identity::CertificateAuthority::generate("t").unwrap();
        assert_eq!(fingerprint(ca.cert_pem()).unwrap(), ca.fingerprint());
    }

    #[test]
    fn a_csr_is_signed_for_what_the_ca_decides() {
        let ca = ferry_identity::CertificateAuthority::generate("t").unwrap();
        let (key, csr) = new_key_and_csr().unwrap();
        let host = Identity::Host {
            host_id: "h1".into(),
        };
        let cert = ca.sign_csr(&csr, &host, Duration::from_secs(60)).unwrap();
        let material = TlsMaterial::new(ca.cert_pem().into(), cert, key);
        assert_eq!(host_of(&material).unwrap(), "h1");
    }
}
