//! Reading the identity of a peer: from a certificate's DER, or from the verified client
//! certificate of a gRPC request.

use rustls::pki_types::CertificateDer;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use x509_parser::extensions::GeneralName;

use crate::error::{Error, Result};
use crate::name::{Identity, URI_SCHEME};

/// Reads the identity out of a certificate (DER): its one `ferry://` URI SAN.
///
/// This does not verify the certificate; only call it on a certificate the TLS handshake
/// verified against the CA (as tonic does for a client certificate when the server requires
/// one), or on one's own.
pub fn identity_of_der(der: &[u8]) -> Result<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::NoIdentity(format!("unparsable certificate: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::NoIdentity(format!("bad subject alternative names: {e}")))?
        .ok_or_else(|| Error::NoIdentity("no subject alternative names".into()))?;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(URI_SCHEME) => Some(*uri),
            _ => None,
        });
    let uri = uris
        .next()
        .ok_or_else(|| Error::NoIdentity("no ferry:// URI".into()))?;
    if uris.next().is_some() {
        return Err(Error::NoIdentity("more than one ferry:// URI".into()));
    }
    Identity::from_uri(uri)
}

/// The verified client certificates of a connection, as tonic records them in a request's
/// extensions when the server was built with a TLS config and a TCP listener (`serve`, or
/// `serve_with_incoming` over `TcpStream`s).
pub(crate) fn peer_certs(
    extensions: &http::Extensions,
) -> Option<std::sync::Arc<Vec<CertificateDer<'static>>>> {
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()
}

/// The identity of the peer that sent `request`: its verified client certificate's.
///
/// Errors with UNAUTHENTICATED when the connection carries no client certificate (plaintext,
/// or a server without a TLS config) or the certificate carries no Ferry identity.
pub fn peer_identity<T>(
    request: &tonic::Request<T>,
) -> std::result::Result<Identity, tonic::Status> {
    if let Some(identity) = request.extensions().get::<Identity>() {
        return Ok(identity.clone());
    }
    let certs = request
        .peer_certs()
        .ok_or_else(|| tonic::Status::unauthenticated("a client certificate is required"))?;
    identity_of_certs(&certs)
}

pub(crate) fn identity_of_certs(
    certs: &[CertificateDer<'_>],
) -> std::result::Result<Identity, tonic::Status> {
    let leaf = certs
        .first()
        .ok_or_else(|| tonic::Status::unauthenticated("a client certificate is required"))?;
    identity_of_der(leaf).map_err(|e| tonic::Status::unauthenticated(e.to_string()))
}
