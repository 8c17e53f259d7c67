//! The control plane's internal certificate authority: where it comes from, and the TLS
//! material of this member's peer listener.
//!
//! ```text
//! alone (no --peers), first start:   generate a CA into <data_dir>/ca/{ca.pem,ca-key.pem}
//!                                    (dir 0700, files 0600), install it in the store
//! alone, later starts:               load it from <data_dir>/ca (the store holds the same)
//!                                    (--ca-dir puts it elsewhere: a CA kept apart from the
//!                                    store survives the loss of the store's disk, and the
//!                                    agents and nodes it certified keep working)
//! replicated (3 members):            the operator makes a CA (`ferry cert ca`) and issues each
//!                                    member a ControlPlane certificate (`ferry cert issue
//!                                    --control-plane N`); every member is started with
//!                                    --tls-ca/--tls-cert/--tls-key, and at least one with
//!                                    --tls-ca-key so the CA can be installed in the store
//! ```
//!
//! Once in the replicated store, the CA is read from there by whichever member serves an
//! enrollment or a node certificate request ([`crate::api`]), so every member can issue.
//! A member alone issues its own peer certificate at every start (it holds the CA key
//! anyway); its peer listener then presents `Identity::ControlPlane { member }` with the DNS
//! name [`ferry_identity::CONTROL_PLANE_SERVER_NAME`], which agents and other members check.

use std::path::Path;
use std::time::Duration;

use ferry_identity::{CertificateAuthority, Identity, TlsMaterial};

use crate::model::ca::{SecretPem, StoredCa};
use crate::{Error, Result};

/// Subdirectory of the data directory holding a lone control plane's CA.
pub const CA_DIR: &str = "ca";
/// The CA certificate's file name in [`CA_DIR`].
pub use ferry_identity::CA_FILE as CA_CERT_FILE;
/// The CA key's file name in [`CA_DIR`] (mode 0600).
pub use ferry_identity::CA_KEY_FILE;
/// The common name of a generated CA.
pub const CA_NAME: &str = "Ferry control plane CA";
/// How long the certificate a lone member issues itself at each start is valid.
pub const MEMBER_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where this member's CA and peer certificate come from.
#[derive(Debug, Clone, Default)]
pub enum PeerTls {
    /// A control plane alone: the CA is generated into (then loaded from) `<data_dir>/ca`,
    /// and the member's certificate is issued from it at each start.
    #[default]
    Generated,
    /// Material from files (a replicated control plane, or an operator's own CA).
    Files {
        /// This member's certificate, key and CA certificate.
        member: TlsMaterial,
        /// The CA key, to install the CA in the store (one member is enough).
        ca_key_pem: Option<SecretPem>,
    },
}

/// What a member starts with: its peer material, and the CA if it holds the key.
pub struct MemberPki {
    /// The peer listener's and the peer client's material.
    pub member: TlsMaterial,
    /// The CA, when this member holds its key (to install in the store).
    pub ca: Option<CertificateAuthority>,
}

impl std::fmt::Debug for MemberPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberPki")
            .field("member", &self.member)
            .field("holds_ca_key", &self.ca.is_some())
            .finish()
    }
}

impl MemberPki {
    /// The material of member `member_id`, as `tls` says, with `ca_dir` the CA's directory
    /// for [`PeerTls::Generated`] and `extra_sans` (the peer listener's addresses) in a
    /// certificate issued here.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for material that does not fit (a certificate of another
    /// member, a CA key that does not match), [`Error::Io`] for the CA directory.
    pub fn prepare(
        tls: &PeerTls,
        ca_dir: &Path,
        member_id: u64,
        extra_sans: &[String],
    ) -> Result<MemberPki> {
        match tls {
            PeerTls::Generated => {
                let ca = load_or_generate(ca_dir)?;
                let member = ca
                    .issue(
                        &Identity::ControlPlane { member: member_id },
                        extra_sans,
                        MEMBER_CERT_VALIDITY,
                    )
                    .map_err(|e| Error::Io(format!("issuing this member's certificate: {e}")))?;
                Ok(MemberPki {
                    member,
                    ca: Some(ca),
                })
            }
            PeerTls::Files { member, ca_key_pem } => {
                match member.identity() {
                    Ok(Identity::ControlPlane { member }) if member == member_id => {}
                    Ok(other) => {
                        return Err(Error::InvalidInput(format!(
                            "the peer certificate speaks for {other:?}, not control-plane \
                             member {member_id}"
                        )));
                    }
                    Err(e) => return Err(Error::InvalidInput(format!("peer certificate: {e}"))),
                }
                let ca = match ca_key_pem {
                    Some(key) => Some(
                        CertificateAuthority::from_pem(&member.ca_pem, key.expose())
                            .map_err(|e| Error::InvalidInput(format!("the CA key: {e}")))?,
                    ),
                    None => None,
                };
                Ok(MemberPki {
                    member: member.clone(),
                    ca,
                })
            }
        }
    }
}

/// The CA in `dir`, or a new one written there (dir 0700, key 0600).
fn load_or_generate(dir: &Path) -> Result<CertificateAuthority> {
    let existed = dir.join(CA_KEY_FILE).exists();
    let ca = CertificateAuthority::load_or_generate(dir, CA_NAME)
        .map_err(|e| Error::Io(format!("the CA in {}: {e}", dir.display())))?;
    if !existed {
        tracing::info!(
            fingerprint = ca.fingerprint(),
            dir = %dir.display(),
            "generated the control plane's CA"
        );
    }
    Ok(ca)
}

/// The CA as the store keeps it.
pub fn stored(ca: &CertificateAuthority) -> StoredCa {
    StoredCa {
        cert_pem: ca.cert_pem().to_string(),
        key_pem: SecretPem::new(ca.key_pem()),
    }
}

/// The CA the store keeps, ready to issue.
///
/// # Errors
///
/// [`Error::Io`] when the stored PEM does not load.
pub fn from_stored(ca: &StoredCa) -> Result<CertificateAuthority> {
    CertificateAuthority::from_pem(&ca.cert_pem, ca.key_pem.expose())
        .map_err(|e| Error::Io(format!("the store's CA does not load: {e}")))
}
