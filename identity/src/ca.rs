//! [`CertificateAuthority`]: the one CA of a control plane (or of a hand-built cluster), which
//! issues every peer certificate.
//!
//! Keys are ECDSA P-256 (rcgen's default), signatures SHA-256. A CA may sign leaf certificates
//! only (path length 0). Leaf certificates carry both the server and the client extended key
//! usage, because every internal peer both serves and dials.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SubjectPublicKeyInfo,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::material::{CA_FILE, TlsMaterial, create_private_dir, write_private_file};
use crate::name::Identity;

/// How long a CA certificate is valid. Rotating the CA means re-issuing every certificate, so
/// it is long; see docs/security.md for rotation.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a peer certificate is valid when the caller has no reason to choose otherwise.
pub const CERT_VALIDITY_DEFAULT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The longest validity [`CertificateAuthority::issue`] accepts for a peer certificate.
pub const CERT_VALIDITY_MAX: Duration = CA_VALIDITY;

/// How far before "now" a new certificate's validity starts, so a peer whose clock is a
/// little behind the issuer's accepts it at once.
pub const NOT_BEFORE_SKEW: Duration = Duration::from_secs(3600);

/// A certificate [`CertificateAuthority::ensure_material`] finds on disk is reissued when it
/// expires within this long.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// File name of the CA's private key in a CA directory (next to [`crate::CA_FILE`]).
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Most extra SANs one certificate may carry (addresses the peer is also dialled by).
pub const EXTRA_SANS_MAX: usize = 32;

const _: () = assert!(CERT_VALIDITY_DEFAULT.as_secs() <= CERT_VALIDITY_MAX.as_secs());

/// A certificate authority: its certificate and its private key.
pub struct CertificateAuthority {
    /// The CA certificate, PEM.
    cert_pem: String,
    /// The CA key (a secret; never in Debug output).
    key: KeyPair,
    /// The issuer rcgen signs with, derived from the certificate and the key.
    issuer: Issuer<'static, KeyPair>,
    /// sha256 of the certificate's DER, lowercase hex.
    fingerprint: String,
}

impl CertificateAuthority {
    /// Makes a new CA with a fresh key; `name` becomes its common name.
    pub fn generate(name: &str) -> Result<Self> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Ferry");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// Loads a CA from its certificate and key (PEM), checking that they belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| Error::InvalidInput(format!("CA key: {e}")))?;
        let der = crate::material::first_cert_der(cert_pem)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| Error::InvalidInput(format!("CA certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(Error::InvalidInput("the CA certificate is not a CA".into()));
        }
        if cert.public_key().raw != key.subject_public_key_info() {
            return Err(Error::InvalidInput(
                "the CA key does not belong to the CA certificate".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_pem(cert_pem, KeyPair::from_pem(key_pem)?)
            .map_err(|e| Error::InvalidInput(format!("CA certificate: {e}")))?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_string(),
            key,
            issuer,
            fingerprint: hex(&Sha256::digest(&der)),
        })
    }

    /// The CA certificate, PEM: what every peer trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key, PEM. A secret: whoever holds it can issue any identity.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// sha256 of the CA certificate's DER, lowercase hex (to compare CAs out of band).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Writes the CA into `dir` (0700): [`crate::CA_FILE`] and [`CA_KEY_FILE`], both 0600.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        create_private_dir(dir)?;
        write_private_file(&dir.join(CA_FILE), &self.cert_pem)?;
        write_private_file(&dir.join(CA_KEY_FILE), &self.key_pem())
    }

    /// Reads a CA written by [`CertificateAuthority::write_dir`].
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })
        };
        Self::from_pem(&read(CA_FILE)?, &read(CA_KEY_FILE)?)
    }

    /// The CA in `dir`, or a new one named `name` written there when `dir` holds none.
    pub fn load_or_generate(dir: &Path, name: &str) -> Result<Self> {
        if dir.join(CA_KEY_FILE).exists() {
            return Self::load_dir(dir);
        }
        let ca = Self::generate(name)?;
        ca.write_dir(dir)?;
        Ok(ca)
    }

    /// The material in `dir` if it is this CA's, for `identity`, and valid for at least
    /// [`RENEW_BEFORE`]; otherwise newly issued material (valid [`CERT_VALIDITY_DEFAULT`]),
    /// written to `dir`. For tools that keep a node's certificate across restarts.
    pub fn ensure_material(
        &self,
        dir: &Path,
        identity: &Identity,
        extra_sans: &[String],
    ) -> Result<TlsMaterial> {
        if let Ok(material) = TlsMaterial::load_dir(dir)
            && material.ca_pem == self.cert_pem
            && material.identity().ok().as_ref() == Some(identity)
            && valid_for(&material.cert_pem, RENEW_BEFORE)
        {
            return Ok(material);
        }
        let material = self.issue(identity, extra_sans, CERT_VALIDITY_DEFAULT)?;
        material.write(dir)?;
        Ok(material)
    }

    /// Issues a certificate for `identity` with a fresh key. `extra_sans` are DNS names or IP
    /// addresses the peer is also known by; `validity` is at most [`CERT_VALIDITY_MAX`].
    pub fn issue(
        &self,
        identity: &Identity,
        extra_sans: &[String],
        validity: Duration,
    ) -> Result<TlsMaterial> {
        let key = KeyPair::generate()?;
        let cert_pem = self.sign(identity, extra_sans, validity, &key)?;
        Ok(TlsMaterial::new(
            self.cert_pem.clone(),
            cert_pem,
            key.serialize_pem(),
        ))
    }

    /// Signs a certificate for `identity` over a public key (SubjectPublicKeyInfo, PEM) whose
    /// private key stays with the requester.
    pub fn sign_public_key(
        &self,
        public_key_pem: &str,
        identity: &Identity,
        validity: Duration,
    ) -> Result<String> {
        let key = SubjectPublicKeyInfo::from_pem(public_key_pem)
            .map_err(|e| Error::InvalidInput(format!("public key: {e}")))?;
        self.sign(identity, &[], validity, &key)
    }

    /// Signs a certificate signing request (PEM) for `identity`. The request's signature is
    /// checked (the requester holds the key); everything the request asks for (names, usages)
    /// is ignored: the certificate says what the caller proved, not what the requester wants.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        identity: &Identity,
        validity: Duration,
    ) -> Result<String> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::InvalidInput(format!("certificate signing request: {e}")))?;
        self.sign(identity, &[], validity, &csr.public_key)
    }

    fn sign(
        &self,
        identity: &Identity,
        extra_sans: &[String],
        validity: Duration,
        public_key: &impl PublicKeyData,
    ) -> Result<String> {
        identity.validate()?;
        if validity.is_zero() || validity > CERT_VALIDITY_MAX {
            return Err(Error::InvalidInput(format!(
                "validity {validity:?}: expected more than zero and at most {CERT_VALIDITY_MAX:?}"
            )));
        }
        if extra_sans.len() > EXTRA_SANS_MAX {
            return Err(Error::InvalidInput(format!(
                "{} extra SANs: at most {EXTRA_SANS_MAX}",
                extra_sans.len()
            )));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Ferry");
        dn.push(DnType::CommonName, identity.to_string());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, validity);
        params
            .subject_alt_names
            .push(SanType::URI(ia5(&identity.uri())?));
        for name in identity.dns_names() {
            params.subject_alt_names.push(SanType::DnsName(ia5(&name)?));
        }
        for san in extra_sans {
            params.subject_alt_names.push(extra_san(san)?);
        }
        Ok(params.signed_by(public_key, &self.issuer)?.pem())
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Whether the certificate (PEM) is still valid `margin` from now.
fn valid_for(cert_pem: &str, margin: Duration) -> bool {
    let Ok(der) = crate::material::first_cert_der(cert_pem) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let deadline = time::OffsetDateTime::now_utc() + margin;
    cert.validity().not_after.to_datetime() > deadline
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - NOT_BEFORE_SKEW;
    params.not_after = now + validity;
}

fn ia5(s: &str) -> Result<rcgen::string::Ia5String> {
    s.try_into()
        .map_err(|e| Error::InvalidInput(format!("{s:?}: {e}")))
}

/// An extra SAN: an IP address, or else a DNS name. Ferry URIs are refused here: a
/// certificate carries exactly one identity, the one it was issued for.
fn extra_san(san: &str) -> Result<SanType> {
    if let Ok(ip) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = rustls::pki_types::DnsName::try_from(san).is_ok();
    if !valid || san.contains(':') || san.contains('/') {
        return Err(Error::InvalidInput(format!(
            "extra SAN {san:?}: expected an IP address or a DNS name"
        )));
    }
    Ok(SanType::DnsName(ia5(san)?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NodeRoles;

    fn node(cluster: &str, id: i32) -> Identity {
        Identity::Node {
            cluster_id: cluster.into(),
            node_id: id,
            roles: NodeRoles::COMBINED,
        }
    }

    #[test]
    fn an_issued_certificate_reads_back_as_its_identity() {
        let ca = CertificateAuthority::generate("test").unwrap();
        for identity in [
            node("demo", 3),
            Identity::Host {
                host_id: "host-1".into(),
            },
            Identity::ControlPlane { member: 2 },
        ] {
            let material = ca
                .issue(
                    &identity,
                    &["127.0.0.1".into(), "ferry-1.example".into()],
                    CERT_VALIDITY_DEFAULT,
                )
                .unwrap();
            assert_eq!(material.identity().unwrap(), identity);
            assert_eq!(material.ca_pem, ca.cert_pem());
        }
    }

    #[test]
    fn a_ca_reloads_from_its_pem_and_keeps_its_fingerprint() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let again = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        assert_eq!(ca.fingerprint().len(), 64);
        let other = CertificateAuthority::generate("test").unwrap();
        assert!(CertificateAuthority::from_pem(ca.cert_pem(), &other.key_pem()).is_err());
    }

    #[test]
    fn a_leaf_certificate_is_not_a_ca() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let leaf = ca
            .issue(&node("demo", 1), &[], CERT_VALIDITY_DEFAULT)
            .unwrap();
        assert!(CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem).is_err());
    }

    #[test]
    fn a_csr_is_signed_for_the_proven_identity_not_the_requested_one() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let agent_key = KeyPair::generate().unwrap();
        // The requester asks for a control-plane name; it proved only that it is host-7.
        let csr = CertificateParams::new(vec!["control-plane.ferry.internal".to_string()])
            .unwrap()
            .serialize_request(&agent_key)
            .unwrap()
            .pem()
            .unwrap();
        let host = Identity::Host {
            host_id: "host-7".into(),
        };
        let cert_pem = ca.sign_csr(&csr, &host, CERT_VALIDITY_DEFAULT).unwrap();
        let material = TlsMaterial::new(ca.cert_pem().into(), cert_pem, agent_key.serialize_pem());
        assert_eq!(material.identity().unwrap(), host);
        assert!(!material.cert_pem.is_empty());

        let by_key = ca
            .sign_public_key(&agent_key.public_key_pem(), &host, CERT_VALIDITY_DEFAULT)
            .unwrap();
        let material = TlsMaterial::new(ca.cert_pem().into(), by_key, agent_key.serialize_pem());
        assert_eq!(material.identity().unwrap(), host);
    }

    #[test]
    fn bad_requests_are_refused() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let bad_identity = Identity::Node {
            cluster_id: "a/b".into(),
            node_id: 1,
            roles: NodeRoles::BROKER,
        };
        assert!(ca.issue(&bad_identity, &[], CERT_VALIDITY_DEFAULT).is_err());
        assert!(
            ca.issue(
                &node("c", 1),
                &["ferry://node/c/2?roles=broker".into()],
                CERT_VALIDITY_DEFAULT
            )
            .is_err()
        );
        assert!(ca.issue(&node("c", 1), &[], CERT_VALIDITY_MAX * 2).is_err());
        assert!(ca.issue(&node("c", 1), &[], Duration::ZERO).is_err());
        assert!(
            ca.sign_csr("not a csr", &node("c", 1), CERT_VALIDITY_DEFAULT)
                .is_err()
        );
    }

    #[test]
    fn ensure_material_reuses_what_is_on_disk_and_reissues_what_does_not_fit() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_generate(&tmp.path().join("ca"), "test").unwrap();
        let again = CertificateAuthority::load_or_generate(&tmp.path().join("ca"), "test").unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        let dir = tmp.path().join("node-1/tls");
        let first = ca.ensure_material(&dir, &node("c", 1), &[]).unwrap();
        assert_eq!(ca.ensure_material(&dir, &node("c", 1), &[]).unwrap(), first);
        // Another identity, or another CA: reissued.
        let other_node = ca.ensure_material(&dir, &node("c", 2), &[]).unwrap();
        assert_eq!(other_node.identity().unwrap(), node("c", 2));
        let other_ca = CertificateAuthority::generate("test").unwrap();
        let moved = other_ca.ensure_material(&dir, &node("c", 2), &[]).unwrap();
        assert_eq!(moved.ca_pem, other_ca.cert_pem());
        // About to expire: reissued.
        let short = ca.issue(&node("c", 3), &[], RENEW_BEFORE / 2).unwrap();
        short.write(&dir).unwrap();
        assert_ne!(ca.ensure_material(&dir, &node("c", 3), &[]).unwrap(), short);
    }

    #[test]
    fn the_ca_key_is_never_in_debug_output() {
        let ca = CertificateAuthority::generate("test").unwrap();
        let debug = format!("{ca:?}");
        assert!(!debug.contains("PRIVATE KEY"));
        assert!(!debug.contains(ca.key_pem().lines().nth(1).unwrap()));
    }
}
