//! Decoding one request frame into a typed request.
//!
//! The decoder applies the version policy of [`super::versions`] before touching the body, and
//! implements KIP-511's special case: an ApiVersions request of a version newer than the broker
//! knows is not parsed at all, and is answered in the v0 format with UNSUPPORTED_VERSION and the
//! ApiVersions range, so the client can retry with a version both sides speak.
//!
//! Every other failure is a [`DecodeError`]. Apache Kafka closes the connection on all of them
//! (an unknown API key, a version it does not serve, a body it cannot parse): the client sees the
//! connection drop, logs the error and reconnects. The server does the same, and only for the
//! connection that sent the bad frame.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use super::{guard, versions};

/// Bytes of the fixed part of every request header: api key, api version and correlation id.
const FIXED_HEADER_BYTES: usize = 8;

/// A decoded frame.
#[derive(Debug)]
pub enum Decoded {
    /// A request for an API and version the broker serves (boxed: it is far larger than the
    /// other variant).
    Request(Box<Request>),
    /// An ApiVersions request of a version the broker does not know (KIP-511); the broker answers
    /// it in the v0 format with UNSUPPORTED_VERSION.
    UnsupportedApiVersions {
        /// Correlation id to echo.
        correlation_id: i32,
        /// The version the client asked for.
        version: i16,
    },
}

/// One request, decoded.
#[derive(Debug)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// The API version the client used; the response is encoded with the same version.
    pub version: i16,
    /// The full header (correlation id, client id).
    pub header: RequestHeader,
    /// The body.
    pub body: RequestKind,
}

/// Why a frame could not be decoded. The connection that sent it is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is shorter than the fixed header.
    #[error("request frame of {0} bytes is shorter than the fixed header")]
    TooShort(usize),
    /// The API key is not one Kafka defines.
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey {
        /// The key the client sent.
        api_key: i16,
        /// Its correlation id.
        correlation_id: i32,
    },
    /// The API exists but the broker does not serve it, or not at this version.
    #[error("unsupported version {version} of {api_key:?} (correlation id {correlation_id})")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version the client sent.
        version: i16,
        /// Its correlation id.
        correlation_id: i32,
    },
    /// The header or body does not parse as the version it claims.
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        api_key: ApiKey,
        /// The version the client sent.
        version: i16,
        /// What the codec or the guard reported.
        reason: String,
    },
}

/// Decodes one frame payload (without its size prefix).
pub fn decode(mut frame: Bytes) -> Result<Decoded, DecodeError> {
    if frame.len() < FIXED_HEADER_BYTES {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let raw_key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let correlation_id = (&frame[4..8]).get_i32();
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Err(DecodeError::UnknownApiKey {
            api_key: raw_key,
            correlation_id,
        });
    };
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions && version >= 0 {
            return Ok(Decoded::UnsupportedApiVersions {
                correlation_id,
                version,
            });
        }
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        api_key,
        version,
        reason,
    };
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| malformed(format!("header: {e}")))?;
    // The codec sizes its vectors from the counts on the wire; check them against the bytes
    // actually present before it allocates anything.
    guard::check_body(api_key, version, &frame).map_err(|e| malformed(e.to_string()))?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| malformed(format!("body: {e}")))?;
    Ok(Decoded::Request(Box::new(Request {
        api_key,
        version,
        header,
        body,
    })))
}
