//! The group coordinator on the wire: a node on loopback, requests written byte for byte with
//! the `kafka-protocol` codecs at chosen versions, so every error code can be asserted exactly.
//!
//! Real-client tests (librdkafka, kafka-python, confluent-kafka, kafkajs, kcat) live in
//! `cli/tests/integration/groups.rs` and `tests/clients/`; these pin the protocol details they cannot reach
//! (stale generations, batched keys, per-member LeaveGroup results, reload after a restart).

use crate::support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_data_plane::server::ServerOptions;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use support::{GROUP_CONFIGS, RawClient, TestNode, find_coordinator, text};

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// A JoinGroup v5 that retries while the coordinator loads.
async fn join(client: &mut RawClient, group: &str, member_id: &str) -> JoinGroupResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(text(member_id))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(subscription("orders")),
            ]);
        let ResponseKind::JoinGroup(r) = client
            .call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(request))
            .await
        else {
            panic!("wrong response kind");
        };
        if r.error_code != code(ResponseError::CoordinatorLoadInProgress) {
            return r;
        }
        assert!(Instant::now() < deadline, "coordinator loaded within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A ConsumerProtocol subscription (v0) to one topic.
fn subscription(topic: &str) -> Bytes {
    let mut b = vec![0u8, 0, 0, 0, 0, 1];
    b.extend((topic.len() as i16).to_be_bytes());
    b.extend(topic.as_bytes());
    b.extend((-1i32).to_be_bytes());
    Bytes::from(b)
}

async fn commit(
    client: &mut RawClient,
    group: &str,
    member: &str,
    generation: i32,
    offset: i64,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("orders")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(0)
                        .with_committed_metadata(Some(text("meta"))),
                ]),
        ]);
    let ResponseKind::OffsetCommit(r) = client
        .call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request))
        .await
    else {
        panic!("wrong response kind");
    };
    r.topics[0].partitions[0].error_code
}

/// The committed offset of orders-0 (OffsetFetch v8, batched groups).
async fn fetch_committed(client: &mut RawClient, group: &str) -> (i16, i64) {
    let request = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(text("orders")))
                    .with_partition_indexes(vec![0]),
            ])),
    ]);
    let ResponseKind::OffsetFetch(r) = client
        .call(ApiKey::OffsetFetch, 8, RequestKind::OffsetFetch(request))
        .await
    else {
        panic!("wrong response kind");
    };
    let group = &r.groups[0];
    let offset = group
        .topics
        .first()
        .map_or(-1, |t| t.partitions[0].committed_offset);
    (group.error_code, offset)
}

async fn create_orders(client: &mut RawClient) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(text("orders")))
                .with_num_partitions(2)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(10_000);
    let ResponseKind::CreateTopics(r) = client
        .call(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(request))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.topics[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_lifecycle_with_every_refusal_leaving_state_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), GROUP_CONFIGS, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    create_orders(&mut client).await;
    assert_eq!(find_coordinator(&mut client, "g").await, 1);

    // v4 batches keys; the transaction key type is refused with a clear error.
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![text("g"), text("h"), text("")]);
    let ResponseKind::FindCoordinator(r) = client
        .call(
            ApiKey::FindCoordinator,
            4,
            RequestKind::FindCoordinator(request),
        )
        .await
    else {
        panic!("wrong response kind");
    };
    let codes: Vec<i16> = r.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, vec![0, 0, code(ResponseError::InvalidRequest)]);
    let request = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![text("txn")]);
    let ResponseKind::FindCoordinator(r) = client
        .call(
            ApiKey::FindCoordinator,
            4,
            RequestKind::FindCoordinator(request),
        )
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(
        r.coordinators[0].error_code,
        code(ResponseError::InvalidRequest)
    );
    assert!(
        r.coordinators[0]
            .error_message
            .as_ref()
            .is_some_and(|m| m.contains("transaction"))
    );

    // First join: MEMBER_ID_REQUIRED with the id to use; second join: generation 1, leader.
    let first = join(&mut client, "g", "").await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let member = first.member_id.to_string();
    assert!(member.starts_with("ferry-test-"), "{member}");
    let joined = join(&mut client, "g", &member).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader.as_str(), member);
    assert_eq!(
        joined.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    assert_eq!(joined.members.len(), 1);

    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id(1)
        .with_member_id(text(&member))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(text(&member))
                .with_assignment(Bytes::from_static(b"all of it")),
        ]);
    let ResponseKind::SyncGroup(r) = client
        .call(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(request))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.assignment, Bytes::from_static(b"all of it"));

    // Bad commits are refused and store nothing.
    assert_eq!(
        commit(&mut client, "g", &member, 0, 99).await,
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut client, "g", "stranger", 1, 99).await,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        commit(&mut client, "g", "", -1, 99).await,
        code(ResponseError::UnknownMemberId),
        "a simple commit into a group with members"
    );
    assert_eq!(fetch_committed(&mut client, "g").await, (0, -1));
    assert_eq!(commit(&mut client, "g", &member, 1, 42).await, 0);
    assert_eq!(fetch_committed(&mut client, "g").await, (0, 42));

    // Heartbeats: current generation fine, stale refused.
    let heartbeat = |generation: i32, member: &str| {
        RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(GroupId(text("g")))
                .with_generation_id(generation)
                .with_member_id(text(member)),
        )
    };
    let ResponseKind::Heartbeat(r) = client
        .call(ApiKey::Heartbeat, 3, heartbeat(1, &member))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.error_code, 0);
    let ResponseKind::Heartbeat(r) = client
        .call(ApiKey::Heartbeat, 3, heartbeat(0, &member))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.error_code, code(ResponseError::IllegalGeneration));

    // Deleting a group with members is refused; the group and its offsets stay.
    let delete = || {
        RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("g"))]),
        )
    };
    let ResponseKind::DeleteGroups(r) = client.call(ApiKey::DeleteGroups, 2, delete()).await else {
        panic!("wrong response kind");
    };
    assert_eq!(r.results[0].error_code, code(ResponseError::NonEmptyGroup));
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text("g"))]);
    let ResponseKind::DescribeGroups(r) = client
        .call(
            ApiKey::DescribeGroups,
            5,
            RequestKind::DescribeGroups(request),
        )
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    assert_eq!(r.groups[0].members.len(), 1);
    assert_eq!(fetch_committed(&mut client, "g").await, (0, 42));

    // OffsetDelete of a subscribed topic is refused.
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(text("orders")))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0),
                ]),
        ]);
    let ResponseKind::OffsetDelete(r) = client
        .call(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(request))
        .await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::GroupSubscribedToTopic)
    );

    // ListGroups filters by state.
    let list = |state: &str| {
        RequestKind::ListGroups(ListGroupsRequest::default().with_states_filter(vec![text(state)]))
    };
    let ResponseKind::ListGroups(r) = client.call(ApiKey::ListGroups, 4, list("stable")).await
    else {
        panic!("wrong response kind");
    };
    assert_eq!(r.groups.len(), 1);
    let ResponseKind::ListGroups(r) = client.call(ApiKey::ListGroups, 4, list("Empty")).await
    else {
        panic!("wrong response kind");
    };
    assert!(r.groups.is_empty());

    // Batched LeaveGroup (v3+): one result per member.
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(text(&member)),
            leave_group_request::MemberIdentity::default().with_member_id(text("stranger")),
        ]);
    let ResponseKind::LeaveGroup(r) = client
        .call(ApiKey::LeaveGroup, 3, RequestKind::LeaveGroup(request))
        .await
    else {
        panic!("wrong response kind");
    };
    let codes: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, code(ResponseError::UnknownMemberId)]);

    // The group is empty now: its offsets survive a restart (replayed from the log), and then
    // it can be deleted.
    drop(client);
    node.shutdown().await;
    let node = TestNode::start(dir.path(), GROUP_CONFIGS, ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    find_coordinator(&mut client, "g").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (error, offset) = fetch_committed(&mut client, "g").await;
        if error == 0 {
            assert_eq!(
                offset, 42,
                "the commit was replayed from __consumer_offsets"
            );
            break;
        }
        assert_eq!(error, code(ResponseError::CoordinatorLoadInProgress));
        assert!(Instant::now() < deadline, "loaded within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ResponseKind::DeleteGroups(r) = client.call(ApiKey::DeleteGroups, 2, delete()).await else {
        panic!("wrong response kind");
    };
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(fetch_committed(&mut client, "g").await, (0, -1));
    let ResponseKind::DeleteGroups(r) = client.call(ApiKey::DeleteGroups, 2, delete()).await else {
        panic!("wrong response kind");
    };
    assert_eq!(
        r.results[0].error_code,
        code(ResponseError::GroupIdNotFound)
    );
    node.shutdown().await;
}
