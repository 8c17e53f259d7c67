//! SaslHandshake (key 17) and SaslAuthenticate (key 36) that reach the broker.
//!
//! A SASL request reaches the broker only on a connection that is already authenticated: a
//! listener without SASL (today every listener is PLAINTEXT), or a SASL session that cannot
//! re-authenticate (see `crate::security::session`, which answers the SASL requests of SASL
//! listeners itself). Kafka's `KafkaApis` answers both with ILLEGAL_SASL_STATE and keeps the
//! connection open; Ferry does the same:
//!
//! ```text
//! SaslHandshake     error_code 34 (ILLEGAL_SASL_STATE), mechanisms []
//! SaslAuthenticate  error_code 34, error_message "SaslAuthenticate request received after
//!                   successful authentication", auth_bytes empty, session_lifetime_ms 0
//! ```
//!
//! A client configured for SASL against a PLAINTEXT port therefore gets a clear error from its
//! handshake rather than a dropped connection.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Answers a SaslHandshake on an authenticated connection.
pub(super) fn handshake(_request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_mechanisms(Vec::new())
}

/// Answers a SaslAuthenticate on an authenticated connection.
pub(super) fn authenticate(_request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        )))
        .with_auth_bytes(Bytes::new())
        .with_session_lifetime_ms(0)
}
