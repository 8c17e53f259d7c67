//! Encoding responses into size-prefixed frames.
//!
//! The response header version follows the request's API and version, with KIP-511's exception
//! that ApiVersions responses always use header v0 so that a client that does not yet know the
//! broker's versions can read them.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use super::versions;

/// A response could not be encoded: a bug in a handler (a field set that the version cannot
/// carry). The connection is closed and the error logged.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {reason}")]
pub struct EncodeError {
    /// The API.
    pub api_key: ApiKey,
    /// The version being encoded.
    pub version: i16,
    /// What the codec reported.
    pub reason: String,
}

/// Encodes `body` as the response to a request with `correlation_id`, `api_key` and `version`,
/// including the 4-byte size prefix.
pub fn encode(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let fail = |e: anyhow::Error| EncodeError {
        api_key,
        version,
        reason: e.to_string(),
    };
    let mut out = BytesMut::with_capacity(128);
    out.put_i32(0); // size, patched below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, api_key.response_header_version(version))
        .map_err(fail)?;
    body.encode(&mut out, version).map_err(fail)?;
    let size = (out.len() - 4) as i32;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

/// The KIP-511 reply to an ApiVersions request of a version the broker does not know:
/// UNSUPPORTED_VERSION with only ApiVersions' own range, encoded as v0.
pub fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let range = versions::supported_versions(ApiKey::ApiVersions)
        .expect("ApiVersions is always in the supported table");
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(range.min)
                .with_max_version(range.max),
        ]);
    encode(
        correlation_id,
        ApiKey::ApiVersions,
        0,
        &ResponseKind::ApiVersions(body),
    )
    .expect("a v0 ApiVersions response always encodes")
}
