//! `EnrollmentService`: an agent trades a one-time join token for its host certificate.
//!
//! ```text
//! agent                                         control plane (public port)
//!   Enroll(join_token, csr over its new key)  -> verify the token (signature, audience,
//!                                                expiry), check its CA fingerprint is ours,
//!                                                sign the key for Host { sub }, spend the
//!                                                token id in the store (once, ever)
//!                                             <- host cert, CA cert, peer address (every
//!                                                member's, this one's first)
//! ```
//!
//! The certificate is for the host the token names; nothing the request asks for (names in
//! the CSR) makes it into the certificate. The token is spent only after the CSR was found
//! good, so a malformed request does not burn it; a token is spent by exactly one successful
//! call, on whichever member serves it (the store decides).

use ferry_identity::Identity;
use ferry_proto::controlplane::v1 as pb;
use ferry_proto::controlplane::v1::enrollment_service_server::EnrollmentService;
use tonic::{Request, Response, Status};

use super::{Api, status, violation};
use crate::auth::AuthError;
use crate::enroll::{CSR_PEM_BYTES_MAX, HOST_CERT_VALIDITY, JOIN_TOKEN_BYTES_MAX};
use crate::store::Store;

#[tonic::async_trait]
impl<S: Store> EnrollmentService for Api<S> {
    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let Some(enrollment) = self.inner.enrollment.get() else {
            return Err(Status::unavailable("enrollment is not enabled here"));
        };
        // Where the agent will find the peer listener: its configured address, or, when that
        // is a wildcard (`0.0.0.0`), the address this connection came in on.
        let mut peer_address = enrollment.peer_address;
        if peer_address.ip().is_unspecified()
            && let Some(local) = request.local_addr()
        {
            peer_address.set_ip(local.ip());
        }
        let request = request.into_inner();
        if request.join_token.len() > JOIN_TOKEN_BYTES_MAX {
            return Err(status::invalid_argument(&[violation(
                "join_token",
                format!("has at most {JOIN_TOKEN_BYTES_MAX} bytes"),
            )]));
        }
        if request.csr_pem.is_empty() || request.csr_pem.len() > CSR_PEM_BYTES_MAX {
            return Err(status::invalid_argument(&[violation(
                "csr_pem",
                format!("is required, with at most {CSR_PEM_BYTES_MAX} bytes"),
            )]));
        }
        let claims = enrollment
            .tokens
            .verify(&request.join_token)
            .map_err(|err| status::unauthenticated(&err))?;
        let ca = self.ca().await?;
        if claims.ca != ca.fingerprint() {
            return Err(status::unauthenticated(&AuthError::Malformed(
                "the join token was minted for another CA".into(),
            )));
        }
        let identity = Identity::Host {
            host_id: claims.sub.clone(),
        };
        identity.validate().map_err(|err| {
            status::invalid_argument(&[violation("join_token", format!("host id: {err}"))])
        })?;
        let cert_pem = ca
            .sign_csr(&request.csr_pem, &identity, HOST_CERT_VALIDITY)
            .map_err(|err| status::invalid_argument(&[violation("csr_pem", err.to_string())]))?;
        let expires_at_ms = i64::try_from(claims.exp.saturating_mul(1000)).unwrap_or(i64::MAX);
        match self
            .store()
            .spend_join_token(&claims.jti, &claims.sub, expires_at_ms)
            .await
        {
            Ok(()) => {}
            Err(crate::Error::Conflict(conflict)) => {
                return Err(status::unauthenticated(&AuthError::Malformed(
                    conflict.to_string(),
                )));
            }
            Err(err) => return Err(err.into()),
        }
        tracing::info!(host_id = claims.sub, "enrolled a host");
        let peer_address = peer_address.to_string();
        let member_peer_addresses = std::iter::once(peer_address.clone())
            .chain(enrollment.other_members.iter().cloned())
            .collect();
        Ok(Response::new(pb::EnrollResponse {
            host_id: claims.sub,
            cert_pem,
            ca_pem: ca.cert_pem().to_string(),
            peer_address,
            member_peer_addresses,
        }))
    }
}
