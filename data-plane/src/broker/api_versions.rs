//! ApiVersions (key 18): which APIs and versions this broker serves.
//!
//! The answer is [`SUPPORTED_APIS`] verbatim. Requests of a version newer than the broker knows
//! never reach this handler: the decoder answers them itself in the v0 format (KIP-511).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::protocol::versions::SUPPORTED_APIS;

/// Answers an ApiVersions request.
pub fn handle(_request: &ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_finalized_features_epoch(-1)
        .with_api_keys(
            SUPPORTED_APIS
                .iter()
                .map(|api| {
                    ApiVersion::default()
                        .with_api_key(api.key as i16)
                        .with_min_version(api.versions.min)
                        .with_max_version(api.versions.max)
                })
                .collect(),
        )
}
