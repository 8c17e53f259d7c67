//! `ferry-identity`: who an internal peer is, and how peers prove it to each other.
//!
//! Every internal port of Ferry (controller listeners, the control plane's peer traffic, the
//! agent API) answers only peers that present a certificate issued by the Ferry CA they trust.
//! This crate is that scheme, written down once:
//!
//! - **One CA per control plane** ([`CertificateAuthority`]). The control plane generates it,
//!   keeps its key 0600 in its data directory and replicates it with its store, so every
//!   member can issue. A hand-built cluster (`ferry dev`, `ferry node` by hand) gets its own
//!   CA, made by `ferry cert ca` or by `ferry dev` itself. A certificate of one CA means
//!   nothing to peers of another.
//! - **Identities as URI SANs** ([`Identity`]): `ferry://node/<cluster>/<id>?roles=...`,
//!   `ferry://host/<id>`, `ferry://control-plane/<member>`. Servers authorize a caller by the
//!   identity in its verified certificate ([`peer_identity`], [`Policy`]), never by address.
//! - **DNS SANs for hostname verification**: a client checks the server's certificate with
//!   standard webpki hostname verification against a name that only the right kind of peer
//!   carries (`controller.<cluster>.ferry.internal`, `control-plane.ferry.internal`; see
//!   [`name`]), so a broker's certificate cannot pose as a controller.
//! - **Validity periods are named constants**: [`CA_VALIDITY`], [`CERT_VALIDITY_DEFAULT`],
//!   [`CERT_VALIDITY_MAX`], [`NOT_BEFORE_SKEW`].
//! - **Material on disk** ([`TlsMaterial`]): `ca.pem`, `cert.pem`, `key.pem` in a 0700
//!   directory, files 0600. Keys never appear in Debug output.
//! - **tonic integration** ([`grpc`]): [`server_tls_config`] requires a client certificate
//!   chained to the CA, [`client_tls_config`] presents one and verifies the server's name.
//!   rustls runs on aws-lc-rs, the one crypto provider of the workspace.
//!
//! # What it deliberately does not do
//!
//! - No revocation lists: certificates are short enough lived to be replaced, and a CA
//!   rotation (docs/security.md) invalidates everything at once.
//! - No intermediate CAs: the CA signs leaves only (path length 0).

mod ca;
mod error;
pub mod grpc;
mod material;
pub mod name;
mod peer;

pub use ca::{
    CA_KEY_FILE, CA_VALIDITY, CERT_VALIDITY_DEFAULT, CERT_VALIDITY_MAX, CertificateAuthority,
    EXTRA_SANS_MAX, NOT_BEFORE_SKEW, RENEW_BEFORE,
};
pub use error::{Error, Result};
pub use grpc::{HANDSHAKE_TIMEOUT, Policy, client_tls_config, server_tls_config};
pub use material::{
    CA_FILE, CERT_FILE, KEY_FILE, TlsMaterial, create_private_dir, write_private_file,
};
pub use name::{
    CONTROL_PLANE_SERVER_NAME, Identity, NodeId, NodeRoles, controller_server_name,
    node_server_name,
};
pub use peer::{identity_of_der, peer_identity};
