//! The body of every request the broker serves, as the [`super::guard`] walks it.
//!
//! Each description lists the fields that `kafka-protocol` 0.18's generated `Decodable` impl
//! (`src/messages/*_request.rs`) reads, for every version that impl decodes, in the notation of
//! [`super::schema`]. [`super::versions::SUPPORTED_APIS`] registers each one next to its served
//! versions. The guard's tests build a body from each description at every version the codec
//! decodes and check that the codec decodes exactly those bytes and encodes them back unchanged,
//! so a description that disagrees with the codec fails a test.

use super::schema::{RequestSchema, request};

/// `ProduceRequest`, versions 3-13, flexible from 9.
pub const PRODUCE: RequestSchema = request! { ProduceRequest {
    transactional_id: String,
    acks: Int16,
    timeout_ms: Int32,
    topic_data: [TopicProduceData {
        name (..=12): String,
        topic_id (13..): Uuid,
        partition_data: [PartitionProduceData {
            index: Int32,
            records: Bytes,
        }],
    }],
} };

/// `FetchRequest`, versions 4-18, flexible from 12.
pub const FETCH: RequestSchema = request! { FetchRequest {
    replica_id (..=14): Int32,
    max_wait_ms: Int32,
    min_bytes: Int32,
    max_bytes: Int32,
    isolation_level: Int8,
    session_id (7..): Int32,
    session_epoch (7..): Int32,
    topics: [FetchTopic {
        topic (..=12): String,
        topic_id (13..): Uuid,
        partitions: [FetchPartition {
            partition: Int32,
            current_leader_epoch (9..): Int32,
            fetch_offset: Int64,
            last_fetched_epoch (12..): Int32,
            log_start_offset (5..): Int64,
            partition_max_bytes: Int32,
            #0 replica_directory_id (17..): Uuid,
            #1 high_watermark (18..): Int64,
        }],
    }],
    forgotten_topics_data (7..): [ForgottenTopic {
        topic (7..=12): String,
        topic_id (13..): Uuid,
        partitions (7..): [Int32],
    }],
    rack_id (11..): String,
    #0 cluster_id: String,
    #1 replica_state (15..): ReplicaState {
        replica_id (15..): Int32,
        replica_epoch (15..): Int64,
    },
} };

/// `ListOffsetsRequest`, versions 1-10, flexible from 6.
pub const LIST_OFFSETS: RequestSchema = request! { ListOffsetsRequest {
    replica_id: Int32,
    isolation_level (2..): Int8,
    topics: [ListOffsetsTopic {
        name: String,
        partitions: [ListOffsetsPartition {
            partition_index: Int32,
            current_leader_epoch (4..): Int32,
            timestamp: Int64,
        }],
    }],
    timeout_ms (10..): Int32,
} };

/// `MetadataRequest`, versions 0-13, flexible from 9.
pub const METADATA: RequestSchema = request! { MetadataRequest {
    topics: [MetadataRequestTopic {
        topic_id (10..): Uuid,
        name: String,
    }],
    allow_auto_topic_creation (4..): Bool,
    include_cluster_authorized_operations (8..=10): Bool,
    include_topic_authorized_operations (8..): Bool,
} };

/// `OffsetCommitRequest`, versions 2-9, flexible from 8.
pub const OFFSET_COMMIT: RequestSchema = request! { OffsetCommitRequest {
    group_id: String,
    generation_id_or_member_epoch: Int32,
    member_id: String,
    group_instance_id (7..): String,
    retention_time_ms (..=4): Int64,
    topics: [OffsetCommitRequestTopic {
        name: String,
        partitions: [OffsetCommitRequestPartition {
            partition_index: Int32,
            committed_offset: Int64,
            committed_leader_epoch (6..): Int32,
            committed_metadata: String,
        }],
    }],
} };

/// `OffsetFetchRequest`, versions 1-9, flexible from 6.
pub const OFFSET_FETCH: RequestSchema = request! { OffsetFetchRequest {
    group_id (..=7): String,
    topics (..=7): [OffsetFetchRequestTopic {
        name: String,
        partition_indexes: [Int32],
    }],
    groups (8..): [OffsetFetchRequestGroup {
        group_id: String,
        member_id (9..): String,
        member_epoch (9..): Int32,
        topics: [OffsetFetchRequestTopics {
            name: String,
            partition_indexes: [Int32],
        }],
    }],
    require_stable (7..): Bool,
} };

/// `FindCoordinatorRequest`, versions 0-6, flexible from 3.
pub const FIND_COORDINATOR: RequestSchema = request! { FindCoordinatorRequest {
    key (..=3): String,
    key_type (1..): Int8,
    coordinator_keys (4..): [String],
} };

/// `JoinGroupRequest`, versions 0-9, flexible from 6.
pub const JOIN_GROUP: RequestSchema = request! { JoinGroupRequest {
    group_id: String,
    session_timeout_ms: Int32,
    rebalance_timeout_ms (1..): Int32,
    member_id: String,
    group_instance_id (5..): String,
    protocol_type: String,
    protocols: [JoinGroupRequestProtocol {
        name: String,
        metadata: Bytes,
    }],
    reason (8..): String,
} };

/// `HeartbeatRequest`, versions 0-4, flexible from 4.
pub const HEARTBEAT: RequestSchema = request! { HeartbeatRequest {
    group_id: String,
    generation_id: Int32,
    member_id: String,
    group_instance_id (3..): String,
} };

/// `LeaveGroupRequest`, versions 0-5, flexible from 4.
pub const LEAVE_GROUP: RequestSchema = request! { LeaveGroupRequest {
    group_id: String,
    member_id (..=2): String,
    members (3..): [MemberIdentity {
        member_id: String,
        group_instance_id: String,
        reason (5..): String,
    }],
} };

/// `SyncGroupRequest`, versions 0-5, flexible from 4.
pub const SYNC_GROUP: RequestSchema = request! { SyncGroupRequest {
    group_id: String,
    generation_id: Int32,
    member_id: String,
    group_instance_id (3..): String,
    protocol_type (5..): String,
    protocol_name (5..): String,
    assignments: [SyncGroupRequestAssignment {
        member_id: String,
        assignment: Bytes,
    }],
} };

/// `DescribeGroupsRequest`, versions 0-6, flexible from 5.
pub const DESCRIBE_GROUPS: RequestSchema = request! { DescribeGroupsRequest {
    groups: [String],
    include_authorized_operations (3..): Bool,
} };

/// `ListGroupsRequest`, versions 0-5, flexible from 3.
pub const LIST_GROUPS: RequestSchema = request! { ListGroupsRequest {
    states_filter (4..): [String],
    types_filter (5..): [String],
} };

/// `SaslHandshakeRequest`, versions 0-1, never flexible (its header is v1 in every version:
/// clients up to 2.4 negotiate it wrongly, KAFKA-9577).
pub const SASL_HANDSHAKE: RequestSchema = request! { SaslHandshakeRequest {
    mechanism: String,
} };

/// `ApiVersionsRequest`, versions 0-4, flexible from 3.
pub const API_VERSIONS: RequestSchema = request! { ApiVersionsRequest {
    client_software_name (3..): String,
    client_software_version (3..): String,
} };

/// `CreateTopicsRequest`, versions 2-7, flexible from 5.
pub const CREATE_TOPICS: RequestSchema = request! { CreateTopicsRequest {
    topics: [CreatableTopic {
        name: String,
        num_partitions: Int32,
        replication_factor: Int16,
        assignments: [CreatableReplicaAssignment {
            partition_index: Int32,
            broker_ids: [Int32],
        }],
        configs: [CreatableTopicConfig {
            name: String,
            value: String,
        }],
    }],
    timeout_ms: Int32,
    validate_only: Bool,
} };

/// `DeleteTopicsRequest`, versions 1-6, flexible from 4.
pub const DELETE_TOPICS: RequestSchema = request! { DeleteTopicsRequest {
    topics (6..): [DeleteTopicState {
        name (6..): String,
        topic_id (6..): Uuid,
    }],
    topic_names (..=5): [String],
    timeout_ms: Int32,
} };

/// `DeleteRecordsRequest`, versions 0-2, flexible from 2.
pub const DELETE_RECORDS: RequestSchema = request! { DeleteRecordsRequest {
    topics: [DeleteRecordsTopic {
        name: String,
        partitions: [DeleteRecordsPartition {
            partition_index: Int32,
            offset: Int64,
        }],
    }],
    timeout_ms: Int32,
} };

/// `InitProducerIdRequest`, versions 0-5, flexible from 2.
pub const INIT_PRODUCER_ID: RequestSchema = request! { InitProducerIdRequest {
    transactional_id: String,
    transaction_timeout_ms: Int32,
    producer_id (3..): Int64,
    producer_epoch (3..): Int16,
} };

/// `OffsetForLeaderEpochRequest`, versions 2-4, flexible from 4.
pub const OFFSET_FOR_LEADER_EPOCH: RequestSchema = request! { OffsetForLeaderEpochRequest {
    replica_id (3..): Int32,
    topics: [OffsetForLeaderTopic {
        topic: String,
        partitions: [OffsetForLeaderPartition {
            partition: Int32,
            current_leader_epoch: Int32,
            leader_epoch: Int32,
        }],
    }],
} };

/// `DescribeAclsRequest`, versions 1-3, flexible from 2 (v0, without the pattern type, was
/// dropped by Kafka 4 and is not decoded by the crate).
pub const DESCRIBE_ACLS: RequestSchema = request! { DescribeAclsRequest {
    resource_type_filter: Int8,
    resource_name_filter: String,
    pattern_type_filter: Int8,
    principal_filter: String,
    host_filter: String,
    operation: Int8,
    permission_type: Int8,
} };

/// `CreateAclsRequest`, versions 1-3, flexible from 2.
pub const CREATE_ACLS: RequestSchema = request! { CreateAclsRequest {
    creations: [AclCreation {
        resource_type: Int8,
        resource_name: String,
        resource_pattern_type: Int8,
        principal: String,
        host: String,
        operation: Int8,
        permission_type: Int8,
    }],
} };

/// `DeleteAclsRequest`, versions 1-3, flexible from 2.
pub const DELETE_ACLS: RequestSchema = request! { DeleteAclsRequest {
    filters: [DeleteAclsFilter {
        resource_type_filter: Int8,
        resource_name_filter: String,
        pattern_type_filter: Int8,
        principal_filter: String,
        host_filter: String,
        operation: Int8,
        permission_type: Int8,
    }],
} };

/// `DescribeConfigsRequest`, versions 1-4, flexible from 4.
pub const DESCRIBE_CONFIGS: RequestSchema = request! { DescribeConfigsRequest {
    resources: [DescribeConfigsResource {
        resource_type: Int8,
        resource_name: String,
        configuration_keys: [String],
    }],
    include_synonyms: Bool,
    include_documentation (3..): Bool,
} };

/// `AlterConfigsRequest`, versions 0-2, flexible from 2.
pub const ALTER_CONFIGS: RequestSchema = request! { AlterConfigsRequest {
    resources: [AlterConfigsResource {
        resource_type: Int8,
        resource_name: String,
        configs: [AlterableConfig {
            name: String,
            value: String,
        }],
    }],
    validate_only: Bool,
} };

/// `DescribeLogDirsRequest`, versions 1-4, flexible from 2.
pub const DESCRIBE_LOG_DIRS: RequestSchema = request! { DescribeLogDirsRequest {
    topics: [DescribableLogDirTopic {
        topic: String,
        partitions: [Int32],
    }],
} };

/// `SaslAuthenticateRequest`, versions 0-2, flexible from 2.
pub const SASL_AUTHENTICATE: RequestSchema = request! { SaslAuthenticateRequest {
    auth_bytes: Bytes,
} };

/// `CreatePartitionsRequest`, versions 0-3, flexible from 2.
pub const CREATE_PARTITIONS: RequestSchema = request! { CreatePartitionsRequest {
    topics: [CreatePartitionsTopic {
        name: String,
        count: Int32,
        assignments: [CreatePartitionsAssignment {
            broker_ids: [Int32],
        }],
    }],
    timeout_ms: Int32,
    validate_only: Bool,
} };

/// `DeleteGroupsRequest`, versions 0-2, flexible from 2.
pub const DELETE_GROUPS: RequestSchema = request! { DeleteGroupsRequest {
    groups_names: [String],
} };

/// `IncrementalAlterConfigsRequest`, versions 0-1, flexible from 1.
pub const INCREMENTAL_ALTER_CONFIGS: RequestSchema = request! { IncrementalAlterConfigsRequest {
    resources: [AlterConfigsResource {
        resource_type: Int8,
        resource_name: String,
        configs: [AlterableConfig {
            name: String,
            config_operation: Int8,
            value: String,
        }],
    }],
    validate_only: Bool,
} };

/// `OffsetDeleteRequest`, version 0, never flexible.
pub const OFFSET_DELETE: RequestSchema = request! { OffsetDeleteRequest {
    group_id: String,
    topics: [OffsetDeleteRequestTopic {
        name: String,
        partitions: [OffsetDeleteRequestPartition {
            partition_index: Int32,
        }],
    }],
} };

/// `DescribeUserScramCredentialsRequest`, version 0, flexible.
pub const DESCRIBE_USER_SCRAM_CREDENTIALS: RequestSchema = request! {
    DescribeUserScramCredentialsRequest {
        users: [UserName {
            name: String,
        }],
    }
};

/// `AlterUserScramCredentialsRequest`, version 0, flexible.
pub const ALTER_USER_SCRAM_CREDENTIALS: RequestSchema = request! {
    AlterUserScramCredentialsRequest {
        deletions: [ScramCredentialDeletion {
            name: String,
            mechanism: Int8,
        }],
        upsertions: [ScramCredentialUpsertion {
            name: String,
            mechanism: Int8,
            iterations: Int32,
            salt: Bytes,
            salted_password: Bytes,
        }],
    }
};

/// `DescribeQuorumRequest`, versions 0-2, flexible in all.
pub const DESCRIBE_QUORUM: RequestSchema = request! { DescribeQuorumRequest {
    topics: [TopicData {
        topic_name: String,
        partitions: [PartitionData {
            partition_index: Int32,
        }],
    }],
} };

/// `DescribeClusterRequest`, versions 0-2, flexible in all.
pub const DESCRIBE_CLUSTER: RequestSchema = request! { DescribeClusterRequest {
    include_cluster_authorized_operations: Bool,
    endpoint_type (1..): Int8,
    include_fenced_brokers (2..): Bool,
} };
