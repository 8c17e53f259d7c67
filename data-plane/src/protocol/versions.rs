//! Which APIs and versions the broker advertises in ApiVersions, and accepts.
//!
//! The table is the single source of truth: the request decoder refuses anything outside it, the
//! [`guard`](super::guard) walks bodies of exactly these versions, and the ApiVersions handler
//! advertises exactly it. Each row also names the description of its request body in
//! [`bodies`], which the guard walks; serving a new API is one row here and one
//! description there (plus its handler in the broker). Each range must lie inside the versions
//! that the `kafka-protocol` request type itself decodes (`<XRequest as Message>::VERSIONS`, which
//! can be narrower than `ApiKey::valid_versions()`): the row does not compile otherwise, and a unit
//! test checks it too.
//!
//! The minimums are Apache Kafka 4.0's (the first release that dropped the pre-2.1 versions); the
//! maximums stop where Ferry stops implementing the protocol exactly:
//! - Produce 12 and Fetch 12: versions 13+ address topics by id only, which comes later;
//! - ListOffsets 7: adds the max-timestamp query (-3); 8 and 9 concern tiered storage;
//! - Metadata 12: the topic-id-aware version Kafka 3.x and 4.0 serve.
//! - The classic group APIs take every version the codec has except FindCoordinator 5–6
//!   (transaction coordinator semantics of KIP-890) and DescribeGroups 6 (group errors of
//!   KIP-1043); JoinGroup keeps v0–1 (below Kafka 4.0's minimum) because librdkafka, kafkajs and
//!   kafka-python negotiate down from their own maximum and v0 differs only in the timeout.
//! - SaslHandshake 0-1 and SaslAuthenticate 0-2: every version Kafka has. On a listener without
//!   SASL both are answered ILLEGAL_SASL_STATE, as Kafka's KafkaApis does; on SASL listeners the
//!   connection's `security::session::Session` answers them.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

use super::bodies;
use super::schema::RequestSchema;

/// One advertised API: its key, the inclusive range of versions the broker implements, and its
/// request body's layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupportedApi {
    /// The API.
    pub key: ApiKey,
    /// Versions the broker decodes and answers exactly as Kafka does.
    pub versions: VersionRange,
    /// The request body, as the guard walks it before the codec decodes it.
    pub(crate) request: &'static RequestSchema,
}

impl SupportedApi {
    /// The API's name as Kafka writes it (`Produce`, `DescribeAcls`): its request type's name
    /// without `Request`, so metrics and logs name APIs from this one table.
    pub fn name(&self) -> &'static str {
        let body = self.request.body.name;
        body.strip_suffix("Request").unwrap_or(body)
    }
}

/// Registers one API. Fails the build when `request` describes another API's body, or when the
/// range is empty or reaches past the versions the codec decodes.
const fn api(key: ApiKey, min: i16, max: i16, request: &'static RequestSchema) -> SupportedApi {
    assert!(
        key as i16 == request.key,
        "the body described is another API's"
    );
    assert!(min <= max, "an empty range of versions");
    assert!(
        request.codec.min <= min && max <= request.codec.max,
        "a version the codec does not decode"
    );
    SupportedApi {
        key,
        versions: VersionRange { min, max },
        request,
    }
}

/// Every API the broker serves, in api-key order.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    api(ApiKey::Produce, 3, 12, &bodies::PRODUCE),
    api(ApiKey::Fetch, 4, 12, &bodies::FETCH),
    api(ApiKey::ListOffsets, 1, 7, &bodies::LIST_OFFSETS),
    api(ApiKey::Metadata, 0, 12, &bodies::METADATA),
    api(ApiKey::OffsetCommit, 2, 9, &bodies::OFFSET_COMMIT),
    api(ApiKey::OffsetFetch, 1, 9, &bodies::OFFSET_FETCH),
    api(ApiKey::FindCoordinator, 0, 4, &bodies::FIND_COORDINATOR),
    api(ApiKey::JoinGroup, 0, 9, &bodies::JOIN_GROUP),
    api(ApiKey::Heartbeat, 0, 4, &bodies::HEARTBEAT),
    api(ApiKey::LeaveGroup, 0, 5, &bodies::LEAVE_GROUP),
    api(ApiKey::SyncGroup, 0, 5, &bodies::SYNC_GROUP),
    api(ApiKey::DescribeGroups, 0, 5, &bodies::DESCRIBE_GROUPS),
    api(ApiKey::ListGroups, 0, 5, &bodies::LIST_GROUPS),
    api(ApiKey::SaslHandshake, 0, 1, &bodies::SASL_HANDSHAKE),
    api(ApiKey::ApiVersions, 0, 4, &bodies::API_VERSIONS),
    api(ApiKey::CreateTopics, 2, 7, &bodies::CREATE_TOPICS),
    api(ApiKey::DeleteTopics, 1, 6, &bodies::DELETE_TOPICS),
    api(ApiKey::DeleteRecords, 0, 2, &bodies::DELETE_RECORDS),
    api(ApiKey::InitProducerId, 0, 5, &bodies::INIT_PRODUCER_ID),
    api(
        ApiKey::OffsetForLeaderEpoch,
        2,
        4,
        &bodies::OFFSET_FOR_LEADER_EPOCH,
    ),
    api(ApiKey::DescribeAcls, 1, 3, &bodies::DESCRIBE_ACLS),
    api(ApiKey::CreateAcls, 1, 3, &bodies::CREATE_ACLS),
    api(ApiKey::DeleteAcls, 1, 3, &bodies::DELETE_ACLS),
    api(ApiKey::DescribeConfigs, 1, 4, &bodies::DESCRIBE_CONFIGS),
    api(ApiKey::AlterConfigs, 0, 2, &bodies::ALTER_CONFIGS),
    api(ApiKey::DescribeLogDirs, 1, 4, &bodies::DESCRIBE_LOG_DIRS),
    api(ApiKey::SaslAuthenticate, 0, 2, &bodies::SASL_AUTHENTICATE),
    api(ApiKey::CreatePartitions, 0, 3, &bodies::CREATE_PARTITIONS),
    api(ApiKey::DeleteGroups, 0, 2, &bodies::DELETE_GROUPS),
    api(
        ApiKey::IncrementalAlterConfigs,
        0,
        1,
        &bodies::INCREMENTAL_ALTER_CONFIGS,
    ),
    api(ApiKey::OffsetDelete, 0, 0, &bodies::OFFSET_DELETE),
    api(
        ApiKey::DescribeUserScramCredentials,
        0,
        0,
        &bodies::DESCRIBE_USER_SCRAM_CREDENTIALS,
    ),
    api(
        ApiKey::AlterUserScramCredentials,
        0,
        0,
        &bodies::ALTER_USER_SCRAM_CREDENTIALS,
    ),
    api(ApiKey::DescribeQuorum, 0, 2, &bodies::DESCRIBE_QUORUM),
    api(ApiKey::DescribeCluster, 0, 1, &bodies::DESCRIBE_CLUSTER),
];

/// The versions of `key` the broker accepts, or `None` if it does not serve the API at all.
pub fn supported_versions(key: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|api| api.key == key)
        .map(|api| api.versions)
}

/// Whether the broker accepts `version` of `key`.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_versions(key).is_some_and(|range| range.min <= version && version <= range.max)
}

/// The versions the `kafka-protocol` codec decodes for a request type the broker serves
/// (`<XRequest as Message>::VERSIONS`, taken from its body's description); tests check the policy
/// and the guard against it.
#[cfg(test)]
pub(crate) fn codec_versions(key: ApiKey) -> VersionRange {
    let api = SUPPORTED_APIS.iter().find(|api| api.key == key);
    api.unwrap_or_else(|| panic!("{key:?} is not served"))
        .request
        .codec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_decodable_by_the_codec() {
        for api in SUPPORTED_APIS {
            let codec = codec_versions(api.key);
            assert!(
                codec.min <= api.versions.min && api.versions.max <= codec.max,
                "{:?} advertises {} but the codec decodes {}",
                api.key,
                api.versions,
                codec
            );
            assert!(
                !api.versions.is_empty(),
                "{:?} advertises an empty range",
                api.key
            );
        }
    }

    #[test]
    fn table_is_in_api_key_order_without_duplicates() {
        let keys: Vec<i16> = SUPPORTED_APIS.iter().map(|api| api.key as i16).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }

    /// SaslHandshake keeps header v1 (never flexible) in every version, so its body uses
    /// classic lengths; SaslAuthenticate turns flexible at v2.
    #[test]
    fn sasl_header_flexibility_follows_kafka() {
        use crate::protocol::schema::is_flexible;
        for v in 0..=1 {
            assert!(is_supported(ApiKey::SaslHandshake, v));
            assert_eq!(ApiKey::SaslHandshake.request_header_version(v), 1);
            assert_eq!(ApiKey::SaslHandshake.response_header_version(v), 0);
            assert!(!is_flexible(ApiKey::SaslHandshake, v));
        }
        assert!(!is_supported(ApiKey::SaslHandshake, 2));
        for (v, flexible) in [(0, false), (1, false), (2, true)] {
            assert!(is_supported(ApiKey::SaslAuthenticate, v));
            assert_eq!(is_flexible(ApiKey::SaslAuthenticate, v), flexible, "v{v}");
        }
        assert!(!is_supported(ApiKey::SaslAuthenticate, 3));
    }

    #[test]
    fn api_versions_zero_to_four_are_supported() {
        for v in 0..=4 {
            assert!(is_supported(ApiKey::ApiVersions, v));
        }
        assert!(!is_supported(ApiKey::ApiVersions, 5));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(!is_supported(ApiKey::JoinGroup, 10));
    }
}
