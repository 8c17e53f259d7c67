//! Which APIs and versions the broker advertises in ApiVersions, and accepts.
//!
//! The table is the single source of truth: the request decoder refuses anything outside it and
//! the ApiVersions handler advertises exactly it. Each range must lie inside the versions that the
//! `kafka-protocol` request type itself decodes (`<XRequest as Message>::VERSIONS`, which can be
//! narrower than `ApiKey::valid_versions()`); a unit test checks that.
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

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// One advertised API: its key and the inclusive range of versions the broker implements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupportedApi {
    /// The API.
    pub key: ApiKey,
    /// Versions the broker decodes and answers exactly as Kafka does.
    pub versions: VersionRange,
}

const fn api(key: ApiKey, min: i16, max: i16) -> SupportedApi {
    SupportedApi {
        key,
        versions: VersionRange { min, max },
    }
}

/// Every API the broker serves, in api-key order.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    api(ApiKey::Produce, 3, 12),
    api(ApiKey::Fetch, 4, 12),
    api(ApiKey::ListOffsets, 1, 7),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::DescribeQuorum, 0, 2),
    api(ApiKey::DescribeCluster, 0, 1),
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

/// The versions the `kafka-protocol` codec decodes for each request type the broker serves
/// (`<XRequest as Message>::VERSIONS`); tests check the policy and the guard against it.
#[cfg(test)]
pub(crate) fn codec_versions(key: ApiKey) -> VersionRange {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;
    match key {
        ApiKey::Produce => ProduceRequest::VERSIONS,
        ApiKey::Fetch => FetchRequest::VERSIONS,
        ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
        ApiKey::Metadata => MetadataRequest::VERSIONS,
        ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
        ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
        ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
        ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
        ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
        ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
        ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
        ApiKey::DescribeQuorum => DescribeQuorumRequest::VERSIONS,
        ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
        ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
        ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
        ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
        ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
        ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
        ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
        ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
        ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
        ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
        ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
        ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
        ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
        other => panic!("no codec mapping for {other:?}: add it here"),
    }
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
