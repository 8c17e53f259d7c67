//! [`TlsMaterial`]: what one peer needs for mutual TLS (the CA it trusts, its certificate and
//! its key), and how it is kept on disk.
//!
//! On disk the material is three PEM files in one directory, named [`CA_FILE`], [`CERT_FILE`]
//! and [`KEY_FILE`]; the directory is created 0700 and the files 0600, because the key is a
//! secret and the certificate names the peer.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Error, Result};
use crate::name::Identity;

/// File name of the CA certificate in a material directory.
pub const CA_FILE: &str = "ca.pem";
/// File name of the peer's certificate in a material directory.
pub const CERT_FILE: &str = "cert.pem";
/// File name of the peer's private key in a material directory.
pub const KEY_FILE: &str = "key.pem";

/// Largest PEM file [`TlsMaterial::load`] reads; a certificate or key is a few KiB.
pub const PEM_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Mode of a material directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of each material file.
pub const FILE_MODE: u32 = 0o600;

/// One peer's TLS material, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA certificate the peer trusts (and that signed `cert_pem`).
    pub ca_pem: String,
    /// The peer's certificate.
    pub cert_pem: String,
    /// The peer's private key (a secret; Debug redacts it).
    pub key_pem: String,
}

impl TlsMaterial {
    /// Bundles material from PEM strings.
    pub fn new(ca_pem: String, cert_pem: String, key_pem: String) -> Self {
        TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
        }
    }

    /// The identity this material's certificate speaks for.
    pub fn identity(&self) -> Result<Identity> {
        crate::peer::identity_of_der(&first_cert_der(&self.cert_pem)?)
    }

    /// Reads material from three files, and checks it ([`TlsMaterial::validate`]).
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self> {
        let material = TlsMaterial {
            ca_pem: read_pem(ca)?,
            cert_pem: read_pem(cert)?,
            key_pem: read_pem(key)?,
        };
        material
            .validate()
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", cert.display())))?;
        Ok(material)
    }

    /// Checks that the certificate carries an identity, and that the key is the certificate's
    /// (a mismatch would otherwise surface only when a server starts or a peer connects).
    pub fn validate(&self) -> Result<()> {
        self.identity()?;
        let key = rcgen::KeyPair::from_pem(&self.key_pem)
            .map_err(|e| Error::InvalidInput(format!("not a private key: {e}")))?;
        let der = first_cert_der(&self.cert_pem)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| Error::InvalidInput(format!("certificate: {e}")))?;
        if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key) {
            return Err(Error::InvalidInput(
                "the private key does not belong to the certificate".into(),
            ));
        }
        Ok(())
    }

    /// Reads material written by [`TlsMaterial::write`] from `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        Self::load(
            &dir.join(CA_FILE),
            &dir.join(CERT_FILE),
            &dir.join(KEY_FILE),
        )
    }

    /// Writes the three files into `dir` (created 0700 if missing, and set to 0700), each file
    /// 0600 and replaced atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        create_private_dir(dir)?;
        write_private_file(&dir.join(CA_FILE), &self.ca_pem)?;
        write_private_file(&dir.join(CERT_FILE), &self.cert_pem)?;
        write_private_file(&dir.join(KEY_FILE), &self.key_pem)?;
        Ok(())
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let identity = self
            .identity()
            .map(|i| i.to_string())
            .unwrap_or_else(|e| e.to_string());
        f.debug_struct("TlsMaterial")
            .field("identity", &identity)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Creates `dir` (and parents) with mode 0700, and sets 0700 on it if it already existed.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(io)
}

/// Writes `contents` to `path` with mode 0600, through a temporary file and a rename so a
/// reader never sees half a key.
pub fn write_private_file(path: &Path, contents: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

fn read_pem(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > PEM_FILE_BYTES_MAX {
        return Err(Error::InvalidInput(format!(
            "{}: {len} bytes, more than the {PEM_FILE_BYTES_MAX} a PEM file may have",
            path.display()
        )));
    }
    fs::read_to_string(path).map_err(io)
}

/// The DER of the first certificate in a PEM string.
pub(crate) fn first_cert_der(pem: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::InvalidInput(format!("not a PEM certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CERT_VALIDITY_DEFAULT, CertificateAuthority};
    use crate::name::NodeRoles;

    fn material() -> TlsMaterial {
        let ca = CertificateAuthority::generate("test").unwrap();
        let node = Identity::Node {
            cluster_id: "c".into(),
            node_id: 1,
            roles: NodeRoles::BROKER,
        };
        ca.issue(&node, &[], CERT_VALIDITY_DEFAULT).unwrap()
    }

    #[test]
    fn material_is_written_private_and_reads_back_equal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node/tls");
        let material = material();
        material.write(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for file in [CA_FILE, CERT_FILE, KEY_FILE] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        assert_eq!(TlsMaterial::load_dir(&dir).unwrap(), material);
        // Writing again (a renewal) keeps the modes and replaces the contents.
        let renewed = self::material();
        renewed.write(&dir).unwrap();
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(TlsMaterial::load_dir(&dir).unwrap(), renewed);
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        let material = material();
        let debug = format!("{material:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(
            !debug.contains(material.key_pem.lines().nth(1).unwrap()),
            "{debug}"
        );
        assert!(debug.contains("node 1 (broker) of cluster c"), "{debug}");
    }

    #[test]
    fn loading_refuses_swapped_or_oversized_files() {
        let tmp = tempfile::tempdir().unwrap();
        let material = material();
        material.write(tmp.path()).unwrap();
        let (ca, cert, key) = (
            tmp.path().join(CA_FILE),
            tmp.path().join(CERT_FILE),
            tmp.path().join(KEY_FILE),
        );
        assert!(TlsMaterial::load(&ca, &key, &cert).is_err());
        // Another peer's key with this certificate.
        fs::write(&key, self::material().key_pem).unwrap();
        let err = TlsMaterial::load(&ca, &cert, &key).unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        fs::write(&key, vec![b'A'; PEM_FILE_BYTES_MAX as usize + 1]).unwrap();
        assert!(TlsMaterial::load(&ca, &cert, &key).is_err());
    }
}
