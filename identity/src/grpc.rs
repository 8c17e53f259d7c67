//! Mutual TLS for tonic, and authorization per gRPC method.
//!
//! A server built with [`server_tls_config`] requires every client to present a certificate
//! chained to the CA: plaintext (h2c or HTTP/1.1) and certificate-less clients fail at the
//! handshake, before any byte reaches a handler. A [`Policy`] layered onto the server then
//! decides per method path which identities may call it; every other call gets
//! PERMISSION_DENIED before any handler runs, and so does a method no rule names.
//!
//! ```text
//! TCP ─▶ TLS handshake (client cert chained to the CA, else refused)
//!      ─▶ Authorize layer: identity from the cert's URI SAN, Policy rule for the path
//!           └─ no rule allows it ─▶ PERMISSION_DENIED (handler never runs)
//!      ─▶ service handler (may check the request body against peer_identity(), e.g. a
//!         broker may register only its own node id)
//! ```

use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::Either;
use tonic::transport::{Certificate, ClientTlsConfig, ServerTlsConfig};

use crate::material::TlsMaterial;
use crate::name::Identity;
use crate::peer::{identity_of_certs, peer_certs};

/// How long a server waits for a client to finish the TLS handshake before it drops the
/// connection, so a silent client cannot hold a connection open for free.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes aws-lc-rs the process's rustls crypto provider, once. tonic's server builds its
/// rustls config with the process default; the workspace enables only aws-lc-rs, but being
/// explicit keeps a stray `ring` feature from turning into a panic at the first handshake.
fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The TLS config of a server whose clients must present a certificate chained to
/// `material`'s CA. The server presents `material`'s certificate.
pub fn server_tls_config(material: &TlsMaterial) -> ServerTlsConfig {
    install_crypto_provider();
    ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            &material.cert_pem,
            &material.key_pem,
        ))
        .client_ca_root(Certificate::from_pem(&material.ca_pem))
        .timeout(HANDSHAKE_TIMEOUT)
}

/// The TLS config of a client that trusts only `material`'s CA, presents `material`'s
/// certificate, and requires the server's certificate to carry `server_name` (for example
/// [`crate::controller_server_name`]).
pub fn client_tls_config(material: &TlsMaterial, server_name: &str) -> ClientTlsConfig {
    install_crypto_provider();
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&material.ca_pem))
        .identity(tonic::transport::Identity::from_pem(
            &material.cert_pem,
            &material.key_pem,
        ))
        .domain_name(server_name)
        .timeout(HANDSHAKE_TIMEOUT)
}

/// Whether an identity may call a method.
pub type Rule = Arc<dyn Fn(&Identity) -> bool + Send + Sync>;

/// Which identities may call which gRPC methods. Deny by default.
///
/// A rule is keyed by a full method path (`/ferry.quorum.v1.Raft/Send`), by a service prefix
/// ending in `/` (`/ferry.controller.v1.ControllerService/`) that covers every method of the
/// service, or by a package prefix ending in `.` (`/ferry.quorum.v1.`) that covers every
/// service of the package. For a call, the exact path's rule decides if there is one, else the
/// first prefix rule that matches; with none, the call is refused.
#[derive(Clone, Default)]
pub struct Policy {
    /// Rules by method path or service prefix, in the order they were added.
    rules: Vec<(String, Rule)>,
}

impl Policy {
    /// A policy that refuses everything.
    pub fn new() -> Self {
        Policy::default()
    }

    /// Lets identities for which `rule` holds call `method` (a path, or a service prefix
    /// ending in `/`).
    pub fn allow(
        mut self,
        method: impl Into<String>,
        rule: impl Fn(&Identity) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rules.push((method.into(), Arc::new(rule)));
        self
    }

    /// Decides a call of `path` by `peer`: Ok, or PERMISSION_DENIED.
    pub fn check(&self, path: &str, peer: &Identity) -> Result<(), tonic::Status> {
        let exact = self.rules.iter().find(|(key, _)| key == path);
        let service = || {
            self.rules
                .iter()
                .find(|(key, _)| is_prefix(key) && path.starts_with(key.as_str()))
        };
        match exact.or_else(service) {
            Some((_, rule)) if rule(peer) => Ok(()),
            Some(_) => Err(tonic::Status::permission_denied(format!(
                "{peer} may not call {path}"
            ))),
            None => Err(tonic::Status::permission_denied(format!(
                "{path} is not served"
            ))),
        }
    }

    /// This policy's rules, then `other`'s: where both have a rule for the same key, this
    /// policy's decides.
    pub fn extend(mut self, other: Policy) -> Self {
        self.rules.extend(other.rules);
        self
    }

    /// The tower layer that enforces this policy on a tonic server
    /// (`Server::builder().tls_config(..)?.layer(policy.layer())`).
    pub fn layer(self) -> AuthorizeLayer {
        AuthorizeLayer {
            policy: Arc::new(self),
        }
    }
}

/// Whether a rule key is a service (`/pkg.Service/`) or package (`/pkg.`) prefix.
fn is_prefix(key: &str) -> bool {
    key.ends_with('/') || key.ends_with('.')
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|(key, _)| key))
            .finish()
    }
}

/// A tower layer enforcing a [`Policy`]; see [`Policy::layer`].
#[derive(Clone, Debug)]
pub struct AuthorizeLayer {
    /// The rules, shared by every connection.
    policy: Arc<Policy>,
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`AuthorizeLayer`] wraps around a server's routes. An allowed request reaches
/// the inner service with the caller's [`Identity`] in its extensions (read it with
/// [`crate::peer_identity`]).
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    /// The routes being protected.
    inner: S,
    /// The rules.
    policy: Arc<Policy>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Authorize<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let decision = match peer_certs(request.extensions()) {
            None => Err(tonic::Status::unauthenticated(
                "a client certificate is required",
            )),
            Some(certs) => identity_of_certs(&certs).and_then(|peer| {
                self.policy
                    .check(request.uri().path(), &peer)
                    .map(|()| peer)
            }),
        };
        match decision {
            Ok(peer) => {
                request.extensions_mut().insert(peer);
                Either::Left(self.inner.call(request))
            }
            Err(status) => {
                // Rare and worth seeing: someone without the right certificate reached an
                // internal port.
                tracing::warn!(path = request.uri().path(), %status, "refused an internal call");
                Either::Right(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NodeRoles;

    const SEND: &str = "/ferry.quorum.v1.Raft/Send";
    const REGISTER: &str = "/ferry.controller.v1.ControllerService/RegisterBroker";

    fn node(cluster: &str, id: i32, roles: NodeRoles) -> Identity {
        Identity::Node {
            cluster_id: cluster.into(),
            node_id: id,
            roles,
        }
    }

    fn policy() -> Policy {
        Policy::new()
            .allow(SEND, |peer| peer.is_controller_of("a"))
            .allow("/ferry.controller.v1.ControllerService/", |peer| {
                peer.node_of("a").is_some()
            })
    }

    #[test]
    fn the_exact_rule_decides_before_the_service_rule() {
        let policy = policy();
        assert!(
            policy
                .check(SEND, &node("a", 1, NodeRoles::CONTROLLER))
                .is_ok()
        );
        let denied = policy
            .check(SEND, &node("a", 2, NodeRoles::BROKER))
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            policy
                .check(REGISTER, &node("a", 2, NodeRoles::BROKER))
                .is_ok()
        );
    }

    #[test]
    fn a_package_prefix_covers_every_service_of_the_package() {
        let policy = Policy::new().allow("/ferry.quorum.v1.", |peer| peer.is_controller_of("a"));
        let voter = node("a", 1, NodeRoles::CONTROLLER);
        let broker = node("a", 2, NodeRoles::BROKER);
        for path in [SEND, "/ferry.quorum.v1.RaftSnapshot/Send"] {
            assert!(policy.check(path, &voter).is_ok());
            assert!(policy.check(path, &broker).is_err());
        }
        assert!(policy.check(REGISTER, &voter).is_err());
    }

    #[test]
    fn another_cluster_and_unknown_methods_are_denied() {
        let policy = policy();
        let other = node("b", 1, NodeRoles::COMBINED);
        assert_eq!(
            policy.check(SEND, &other).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            policy.check(REGISTER, &other).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        let mine = node("a", 1, NodeRoles::COMBINED);
        for path in [
            "/ferry.quorum.v1.Raft/Propose",
            "/ferry.node.v1.NodeService/GetStatus",
            "/",
        ] {
            assert_eq!(
                policy.check(path, &mine).unwrap_err().code(),
                tonic::Code::PermissionDenied
            );
        }
    }

    /// The verifiers tonic builds from [`server_tls_config`] and [`client_tls_config`]:
    /// rustls's webpki verifiers over the one CA.
    mod verifiers {
        use super::*;
        use crate::ca::{CERT_VALIDITY_DEFAULT, CertificateAuthority};
        use crate::material::first_cert_der;
        use crate::name::controller_server_name;
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};

        fn roots(ca: &CertificateAuthority) -> Arc<rustls::RootCertStore> {
            install_crypto_provider();
            let mut roots = rustls::RootCertStore::empty();
            roots.add(first_cert_der(ca.cert_pem()).unwrap()).unwrap();
            Arc::new(roots)
        }

        fn leaf(
            ca: &CertificateAuthority,
            identity: &Identity,
        ) -> rustls::pki_types::CertificateDer<'static> {
            let material = ca.issue(identity, &[], CERT_VALIDITY_DEFAULT).unwrap();
            first_cert_der(&material.cert_pem).unwrap()
        }

        #[test]
        fn a_client_certificate_of_another_ca_is_refused() {
            let ca = CertificateAuthority::generate("cluster a").unwrap();
            let other = CertificateAuthority::generate("cluster a").unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder(roots(&ca))
                .build()
                .unwrap();
            assert!(verifier.client_auth_mandatory());
            let identity = node("a", 1, NodeRoles::CONTROLLER);
            let now = UnixTime::now();
            verifier
                .verify_client_cert(&leaf(&ca, &identity), &[], now)
                .unwrap();
            // The same identity, the same CA name, another CA key: refused.
            assert!(
                verifier
                    .verify_client_cert(&leaf(&other, &identity), &[], now)
                    .is_err()
            );
        }

        #[test]
        fn only_a_controller_of_the_cluster_passes_as_its_controller() {
            for cluster in ["demo", "MkU3OEVB_NTcw-NTJE"] {
                let ca = CertificateAuthority::generate("test").unwrap();
                let verifier = rustls::client::WebPkiServerVerifier::builder(roots(&ca))
                    .build()
                    .unwrap();
                let name = ServerName::try_from(controller_server_name(cluster)).unwrap();
                let now = UnixTime::now();
                let check = |identity: Identity| {
                    verifier.verify_server_cert(&leaf(&ca, &identity), &[], &name, &[], now)
                };
                check(node(cluster, 1, NodeRoles::CONTROLLER)).unwrap();
                check(node(cluster, 1, NodeRoles::COMBINED)).unwrap();
                assert!(check(node(cluster, 2, NodeRoles::BROKER)).is_err());
                assert!(check(node("other", 1, NodeRoles::CONTROLLER)).is_err());
                assert!(
                    check(Identity::Host {
                        host_id: "h".into()
                    })
                    .is_err()
                );
            }
        }
    }
}
