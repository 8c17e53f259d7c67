//! go-plugin, the process protocol Terraform uses to run providers, as a server.
//!
//! ```text
//! Terraform                                  terraform-provider-ferry
//!   env TF_PLUGIN_MAGIC_COOKIE=<cookie>  ->  refuse to run without it (not meant for humans)
//!   env PLUGIN_CLIENT_CERT=<PEM>         ->  the only client certificate accepted (AutoMTLS)
//!                                        <-  stdout: 1|6|tcp|127.0.0.1:PORT|grpc|<server cert,
//!                                            DER, base64 standard alphabet without padding>
//!   gRPC over TLS 1.2/1.3 (h2), both sides authenticated by the pinned certificates
//!   plugin.GRPCController/Shutdown       ->  stop serving and exit
//! ```
//!
//! The certificate check is by pinning rather than by a CA chain: go-plugin's client
//! certificate is a self-signed ECDSA P-521 certificate marked as a CA, which webpki refuses as
//! an end-entity certificate. So the verifier accepts exactly the DER bytes from
//! `PLUGIN_CLIENT_CERT` and still checks the handshake signature with the certificate's key,
//! which proves the peer holds the private key. aws-lc-rs is the crypto provider because ring
//! cannot verify P-521.

use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// go-plugin's handshake cookie for Terraform providers (the key and the value are fixed).
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The value Terraform sets.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin core protocol version 1, Terraform plugin protocol 6.
const PROTOCOL_VERSIONS: &str = "1|6";
/// Connections accepted but not yet handed to the gRPC server. Terraform opens one.
pub const PENDING_CONNECTIONS_MAX: usize = 16;

/// Checks the magic cookie; the error is the message go-plugin providers print for humans.
pub fn check_cookie() -> anyhow::Result<()> {
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        bail!(
            "This binary is a plugin. It is not meant to be executed directly: Terraform runs it. \
             See docs/terraform.md to install it."
        );
    }
    Ok(())
}

/// The server side of AutoMTLS: our certificate and the TLS acceptor pinned to Terraform's.
pub struct Tls {
    /// Our self-signed certificate, which goes into the handshake line.
    pub server_cert: CertificateDer<'static>,
    /// Accepts TLS connections from the holder of `PLUGIN_CLIENT_CERT` only.
    pub acceptor: TlsAcceptor,
}

impl Tls {
    /// Generates a fresh server certificate and pins `client_cert_pem`.
    pub fn new(client_cert_pem: &str) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
            .context("PLUGIN_CLIENT_CERT is not a PEM certificate")?;

        let key = rcgen::KeyPair::generate().context("generating the server key")?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        // go-plugin puts this certificate in the client's root pool, so it must be a CA.
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "terraform-provider-ferry");
        let cert = params
            .self_signed(&key)
            .context("self-signing the server certificate")?;
        let server_cert = cert.der().clone();
        let server_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

        let verifier = Arc::new(PinnedClientCert {
            cert: client_cert,
            provider: provider.clone(),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.clone()], server_key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            server_cert,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// The handshake line go-plugin reads from our stdout.
pub fn handshake_line(port: u16, server_cert: &CertificateDer<'_>) -> String {
    let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(server_cert.as_ref());
    format!("{PROTOCOL_VERSIONS}|tcp|127.0.0.1:{port}|grpc|{cert}")
}

/// Accepts TCP connections, completes TLS and sends each stream to `out` (bounded by
/// [`PENDING_CONNECTIONS_MAX`]: beyond it, accepting waits). A failed TLS handshake drops
/// that connection only.
pub async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    out: tokio::sync::mpsc::Sender<std::io::Result<Conn>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let out = out.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(tls) => {
                    let _ = out.send(Ok(Conn(tls))).await;
                }
                Err(e) => eprintln!("[WARN] terraform-provider-ferry: TLS handshake failed: {e}"),
            }
        });
    }
}

/// An accepted, authenticated connection, in the shape tonic's server takes.
pub struct Conn(TlsStream<TcpStream>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Accepts exactly one client certificate, and checks the handshake signature with its key.
#[derive(Debug)]
struct PinnedClientCert {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_line_has_six_fields_and_unpadded_base64() {
        let line = handshake_line(1234, &CertificateDer::from(vec![1u8, 2, 3, 4]));
        assert_eq!(line, "1|6|tcp|127.0.0.1:1234|grpc|AQIDBA");
    }
}
