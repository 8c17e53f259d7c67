//! The security admin APIs of a single node, over real TCP with raw frames: CreateAcls,
//! DescribeAcls and DeleteAcls (with filters, duplicates, invalid bindings and the per-request
//! bound), AlterUserScramCredentials and DescribeUserScramCredentials (with Kafka's error
//! codes, and nothing written for a refused credential), and both surviving a restart, on a
//! single node (local authority) and on a node of a controller quorum (the commands go through
//! the raft log and are replayed on restart).

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ferry_data_plane::broker::BrokerConfig;
use ferry_data_plane::node::{Node, NodeConfig, Role};
use ferry_data_plane::security::scram::{ScramMechanism, salted_password};
use ferry_data_plane::server::ServerOptions;
use ferry_identity::{CERT_VALIDITY_DEFAULT, CertificateAuthority, Identity, NodeRoles};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use support::{RawClient, TestNode, text};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

// Kafka's ACL codes (AK `ResourceType`, `PatternType`, `AclOperation`, `AclPermissionType`).
const ANY: i8 = 1;
const MATCH: i8 = 2;
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn creation(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_resource_pattern_type(pattern)
        .with_principal(text(principal))
        .with_host(text(host))
        .with_operation(operation)
        .with_permission_type(permission)
}

async fn create_acls(
    client: &mut RawClient,
    version: i16,
    creations: Vec<AclCreation>,
) -> Vec<i16> {
    let request = CreateAclsRequest::default().with_creations(creations);
    let ResponseKind::CreateAcls(response) = client
        .call(
            ApiKey::CreateAcls,
            version,
            RequestKind::CreateAcls(request),
        )
        .await
    else {
        panic!("not a CreateAcls response");
    };
    response.results.iter().map(|r| r.error_code).collect()
}

/// Describes with a filter: (error, [(type, name, pattern, principal, host, op, permission)]).
async fn describe_acls(
    client: &mut RawClient,
    version: i16,
    request: DescribeAclsRequest,
) -> (i16, Vec<(i8, String, i8, String, String, i8, i8)>) {
    let ResponseKind::DescribeAcls(response) = client
        .call(
            ApiKey::DescribeAcls,
            version,
            RequestKind::DescribeAcls(request),
        )
        .await
    else {
        panic!("not a DescribeAcls response");
    };
    let mut flat = Vec::new();
    for resource in &response.resources {
        for acl in &resource.acls {
            flat.push((
                resource.resource_type,
                resource.resource_name.to_string(),
                resource.pattern_type,
                acl.principal.to_string(),
                acl.host.to_string(),
                acl.operation,
                acl.permission_type,
            ));
        }
    }
    (response.error_code, flat)
}

/// Matches every binding. (The codec's default filter names the empty string, not null.)
fn any_filter() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(ANY)
        .with_pattern_type_filter(ANY)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

fn delete_filter() -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(ANY)
        .with_pattern_type_filter(ANY)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

/// (error per filter, number of matching bindings per filter).
async fn delete_acls(
    client: &mut RawClient,
    version: i16,
    filters: Vec<DeleteAclsFilter>,
) -> Vec<(i16, usize)> {
    let request = DeleteAclsRequest::default().with_filters(filters);
    let ResponseKind::DeleteAcls(response) = client
        .call(
            ApiKey::DeleteAcls,
            version,
            RequestKind::DeleteAcls(request),
        )
        .await
    else {
        panic!("not a DeleteAcls response");
    };
    response
        .filter_results
        .iter()
        .map(|r| (r.error_code, r.matching_acls.len()))
        .collect()
}

#[tokio::test]
async fn acls_are_created_described_and_deleted_by_filters_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let invalid = ResponseError::InvalidRequest.code();

    for version in 1..=3 {
        let codes = create_acls(
            &mut client,
            version,
            vec![
                creation(TOPIC, "orders", LITERAL, "User:alice", "*", READ, ALLOW),
                creation(TOPIC, "ord", PREFIXED, "User:bob", "10.0.0.1", WRITE, DENY),
                // The same binding again in one request: a success that writes nothing.
                creation(TOPIC, "orders", LITERAL, "User:alice", "*", READ, ALLOW),
                creation(ANY, "orders", LITERAL, "User:alice", "*", READ, ALLOW),
                creation(TOPIC, "orders", MATCH, "User:alice", "*", READ, ALLOW),
                creation(TOPIC, "orders", LITERAL, "User:alice", "*", 0, ALLOW),
                creation(TOPIC, "", LITERAL, "User:alice", "*", READ, ALLOW),
                creation(TOPIC, "orders", LITERAL, "alice", "*", READ, ALLOW),
                creation(
                    TOPIC,
                    "orders",
                    LITERAL,
                    "User:alice",
                    "host.example",
                    READ,
                    ALLOW,
                ),
                creation(GROUP, "g", LITERAL, "User:carol", "*", READ, ALLOW),
            ],
        )
        .await;
        assert_eq!(
            codes,
            [
                0, 0, 0, invalid, invalid, invalid, invalid, invalid, invalid, 0
            ],
            "v{version}"
        );
        // Creating it again is still a success (a duplicate of a held binding).
        let again = vec![creation(
            TOPIC,
            "orders",
            LITERAL,
            "User:alice",
            "*",
            READ,
            ALLOW,
        )];
        assert_eq!(create_acls(&mut client, version, again).await, [0]);

        let (error, all) = describe_acls(&mut client, version, any_filter()).await;
        assert_eq!(error, 0);
        assert_eq!(all.len(), 3, "v{version}: {all:?}");

        // MATCH finds what applies to a name: the literal and the prefix, not the group.
        let matching = any_filter()
            .with_resource_type_filter(TOPIC)
            .with_pattern_type_filter(MATCH)
            .with_resource_name_filter(Some(text("orders")));
        let (error, found) = describe_acls(&mut client, version, matching).await;
        assert_eq!(error, 0);
        let names: Vec<&str> = found.iter().map(|b| b.1.as_str()).collect();
        assert_eq!(names, ["ord", "orders"], "v{version}");
        assert_eq!(found[0].4, "10.0.0.1");
        assert_eq!(found[1].3, "User:alice");

        // An UNKNOWN code in a filter is an error, not a match-everything.
        let (error, found) =
            describe_acls(&mut client, version, any_filter().with_operation(0)).await;
        assert_eq!((error, found.len()), (invalid, 0));

        // Two overlapping filters and an invalid one: each valid filter lists what it
        // matched; the binding both match is removed once.
        let by_alice = delete_filter().with_principal_filter(Some(text("User:alice")));
        let by_topic = delete_filter()
            .with_resource_type_filter(TOPIC)
            .with_pattern_type_filter(LITERAL);
        let bad = delete_filter().with_pattern_type_filter(0);
        let results = delete_acls(&mut client, version, vec![by_alice, by_topic, bad]).await;
        assert_eq!(results, [(0, 1), (0, 1), (invalid, 0)], "v{version}");
        let (_, left) = describe_acls(&mut client, version, any_filter()).await;
        let left: Vec<&str> = left.iter().map(|b| b.1.as_str()).collect();
        assert_eq!(left, ["ord", "g"], "v{version}");

        // Clean up for the next version.
        let results = delete_acls(&mut client, version, vec![delete_filter()]).await;
        assert_eq!(results, [(0, 2)]);
    }
    node.shutdown().await;
}

#[tokio::test]
async fn acl_requests_over_the_per_request_bound_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let max = ferry_data_plane::security::acl::ACL_CHANGES_PER_REQUEST_MAX;
    let creations = (0..=max)
        .map(|i| creation(TOPIC, &format!("t{i}"), LITERAL, "User:a", "*", READ, ALLOW))
        .collect();
    let codes = create_acls(&mut client, 2, creations).await;
    assert_eq!(codes.len(), max + 1);
    assert!(
        codes
            .iter()
            .all(|&c| c == ResponseError::InvalidRequest.code())
    );
    let (_, all) = describe_acls(&mut client, 2, any_filter()).await;
    assert!(all.is_empty(), "nothing was written");

    let filters = vec![delete_filter(); max + 1];
    let results = delete_acls(&mut client, 2, filters).await;
    assert_eq!(results.len(), max + 1);
    assert!(
        results
            .iter()
            .all(|&(c, _)| c == ResponseError::InvalidRequest.code())
    );
    node.shutdown().await;
}

fn upsertion(
    name: &str,
    mechanism: i8,
    iterations: i32,
    salt: &[u8],
    salted: Vec<u8>,
) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(text(name))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::copy_from_slice(salt))
        .with_salted_password(Bytes::from(salted))
}

fn salted(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    salted_password(mechanism, password.as_bytes(), salt, iterations)
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Alters credentials: (user, error code) per result.
async fn alter_scram(
    client: &mut RawClient,
    deletions: Vec<(&str, i8)>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let deletions = deletions
        .into_iter()
        .map(|(name, mechanism)| {
            ScramCredentialDeletion::default()
                .with_name(text(name))
                .with_mechanism(mechanism)
        })
        .collect();
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let ResponseKind::AlterUserScramCredentials(response) = client
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            RequestKind::AlterUserScramCredentials(request),
        )
        .await
    else {
        panic!("not an AlterUserScramCredentials response");
    };
    response
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect()
}

/// Describes credentials: (user, error, [(mechanism, iterations)]) per result.
async fn describe_scram(
    client: &mut RawClient,
    users: Option<Vec<&str>>,
) -> Vec<(String, i16, Vec<(i8, i32)>)> {
    let users = users.map(|u| {
        u.into_iter()
            .map(|n| UserName::default().with_name(text(n)))
            .collect()
    });
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let ResponseKind::DescribeUserScramCredentials(response) = client
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            RequestKind::DescribeUserScramCredentials(request),
        )
        .await
    else {
        panic!("not a DescribeUserScramCredentials response");
    };
    assert_eq!(response.error_code, 0);
    response
        .results
        .iter()
        .map(|r| {
            let infos = r
                .credential_infos
                .iter()
                .map(|i| (i.mechanism, i.iterations))
                .collect();
            (r.user.to_string(), r.error_code, infos)
        })
        .collect()
}

#[tokio::test]
async fn scram_credentials_are_altered_and_described_with_kafkas_codes() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let salt = [9u8; 16];
    let sha256 = ScramMechanism::Sha256;
    let sha512 = ScramMechanism::Sha512;
    let unacceptable = ResponseError::UnacceptableCredential.code();

    let results = alter_scram(
        &mut client,
        vec![],
        vec![
            upsertion("alice", 2, 8192, &salt, salted(sha512, "pw", &salt, 8192)),
            upsertion("bob", 1, 4096, &salt, salted(sha256, "pw", &salt, 4096)),
            // Too few iterations.
            upsertion("carol", 2, 1000, &salt, vec![0; 64]),
            // A salted password shorter than SHA-512's output: refused, nothing written.
            upsertion("dave", 2, 4096, &salt, salted(sha256, "pw", &salt, 4096)),
            // An unknown mechanism.
            upsertion("erin", 0, 4096, &salt, vec![0; 32]),
            // A salt too short, and a negative iteration count.
            upsertion("frank", 1, 4096, &[1, 2, 3], vec![0; 32]),
            upsertion("gina", 1, -5, &salt, vec![0; 32]),
        ],
    )
    .await;
    let expect = |user: &str, code: i16| (user.to_string(), code);
    assert_eq!(
        results,
        [
            expect("alice", 0),
            expect("bob", 0),
            expect("carol", unacceptable),
            expect("dave", unacceptable),
            expect("erin", ResponseError::UnsupportedSaslMechanism.code()),
            expect("frank", unacceptable),
            expect("gina", unacceptable),
        ]
    );

    // Describe answers mechanisms and iterations only (the response type has no other field).
    let all = describe_scram(&mut client, None).await;
    assert_eq!(
        all,
        [
            ("alice".to_string(), 0, vec![(2, 8192)]),
            ("bob".to_string(), 0, vec![(1, 4096)]),
        ]
    );
    assert_eq!(describe_scram(&mut client, Some(vec![])).await, all);
    let named = describe_scram(&mut client, Some(vec!["dave", "bob", "alice", "alice"])).await;
    assert_eq!(
        named,
        [
            (
                "dave".to_string(),
                ResponseError::ResourceNotFound.code(),
                vec![]
            ),
            ("bob".to_string(), 0, vec![(1, 4096)]),
            (
                "alice".to_string(),
                ResponseError::DuplicateResource.code(),
                vec![]
            ),
        ]
    );

    // One user twice in a request; deleting what does not exist.
    let results = alter_scram(
        &mut client,
        vec![("bob", 1), ("alice", 1)],
        vec![upsertion(
            "bob",
            2,
            4096,
            &salt,
            salted(sha512, "x", &salt, 4096),
        )],
    )
    .await;
    assert_eq!(
        results,
        [
            expect("bob", ResponseError::DuplicateResource.code()),
            expect("alice", ResponseError::ResourceNotFound.code()),
        ]
    );
    let results = alter_scram(&mut client, vec![("bob", 1)], vec![]).await;
    assert_eq!(results, [expect("bob", 0)]);
    let all = describe_scram(&mut client, None).await;
    assert_eq!(all, [("alice".to_string(), 0, vec![(2, 8192)])]);
    node.shutdown().await;
}

#[tokio::test]
async fn credentials_and_acls_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let salt = [3u8; 32];
    let sha512 = ScramMechanism::Sha512;
    let results = alter_scram(
        &mut client,
        vec![],
        vec![upsertion(
            "alice",
            2,
            4096,
            &salt,
            salted(sha512, "pw", &salt, 4096),
        )],
    )
    .await;
    assert_eq!(results, [("alice".to_string(), 0)]);
    let acl = creation(TOPIC, "app", PREFIXED, "User:alice", "*", WRITE, ALLOW);
    assert_eq!(create_acls(&mut client, 3, vec![acl]).await, [0]);
    node.shutdown().await;

    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let all = describe_scram(&mut client, None).await;
    assert_eq!(all, [("alice".to_string(), 0, vec![(2, 4096)])]);
    let (_, acls) = describe_acls(&mut client, 3, any_filter()).await;
    assert_eq!(
        acls,
        [(
            TOPIC,
            "app".to_string(),
            PREFIXED,
            "User:alice".to_string(),
            "*".to_string(),
            WRITE,
            ALLOW
        )]
    );
    node.shutdown().await;
}

#[tokio::test]
async fn scram_requests_over_their_bounds_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;
    let salt = [5u8; 16];
    let max = ferry_data_plane::controller::limits::SCRAM_ALTERATIONS_PER_REQUEST_MAX;
    // Valid upsertions, one too many of them: none is written.
    let upsertions = (0..=max)
        .map(|i| upsertion(&format!("u{i}"), 1, 4096, &salt, vec![1; 32]))
        .collect();
    let results = alter_scram(&mut client, vec![], upsertions).await;
    assert_eq!(results.len(), max + 1);
    let policy = ResponseError::PolicyViolation.code();
    assert!(results.iter().all(|(_, code)| *code == policy));
    assert!(describe_scram(&mut client, None).await.is_empty());

    // Naming more users than a cluster may hold is refused at the top level.
    let many = ferry_data_plane::controller::limits::SCRAM_USERS_MAX + 1;
    let users = (0..many)
        .map(|i| UserName::default().with_name(text(&format!("n{i}"))))
        .collect();
    let request = DescribeUserScramCredentialsRequest::default().with_users(Some(users));
    let ResponseKind::DescribeUserScramCredentials(response) = client
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            RequestKind::DescribeUserScramCredentials(request),
        )
        .await
    else {
        panic!("not a DescribeUserScramCredentials response");
    };
    assert_eq!(response.error_code, ResponseError::InvalidRequest.code());
    assert!(response.results.is_empty());
    node.shutdown().await;
}

/// Starts node 1 as the only voter of a controller quorum (and a broker) over `dir`, and waits
/// until its broker serves.
async fn start_quorum_node(
    dir: &Path,
    ca: &CertificateAuthority,
    controller: SocketAddr,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    const CLUSTER: &str = "security-admin";
    let identity = Identity::Node {
        cluster_id: CLUSTER.into(),
        node_id: 1,
        roles: NodeRoles::COMBINED,
    };
    let node = Node::bind(NodeConfig {
        node_id: 1,
        cluster_id: Some(CLUSTER.into()),
        roles: vec![Role::Broker, Role::Controller],
        data_dir: dir.to_path_buf(),
        kafka_listen: "127.0.0.1:0".parse().unwrap(),
        advertised_host: None,
        rack: None,
        admin_listen: None,
        server: ServerOptions::default(),
        broker: BrokerConfig::new(1, dir.join("logs")),
        controller_quorum: BTreeMap::from([(1, controller.to_string())]),
        controller_listen: Some(controller),
        session_timeout: Duration::from_secs(9),
        heartbeat_interval: Duration::from_millis(500),
        tls: Some(ca.issue(&identity, &[], CERT_VALIDITY_DEFAULT).unwrap()),
    })
    .await
    .unwrap();
    let kafka = node.kafka_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(node.run(stop.clone().cancelled_owned()));
    // The broker serves once it is registered and unfenced; until then an admin request may
    // find no quorum leader, so poll a harmless describe until it answers without error.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut client = RawClient::connect(kafka).await;
        let request = MetadataRequest::default().with_topics(None);
        let ResponseKind::Metadata(metadata) = client
            .call(ApiKey::Metadata, 12, RequestKind::Metadata(request))
            .await
        else {
            panic!("not a Metadata response");
        };
        if metadata.brokers.iter().any(|b| b.node_id.0 == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker 1 registered and unfenced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (kafka, stop, task)
}

#[tokio::test]
async fn through_a_controller_quorum_credentials_and_acls_commit_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::generate("security admin CA").unwrap();
    let controller: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let (kafka, stop, task) = start_quorum_node(dir.path(), &ca, controller).await;
    let mut client = RawClient::connect(kafka).await;
    let salt = [4u8; 16];
    let sha256 = ScramMechanism::Sha256;
    let results = alter_scram(
        &mut client,
        vec![("nobody", 1)],
        vec![
            upsertion("alice", 1, 4096, &salt, salted(sha256, "pw", &salt, 4096)),
            upsertion("bob", 1, 4096, &salt, vec![0; 16]),
        ],
    )
    .await;
    assert_eq!(
        results,
        [
            ("nobody".to_string(), ResponseError::ResourceNotFound.code()),
            ("alice".to_string(), 0),
            (
                "bob".to_string(),
                ResponseError::UnacceptableCredential.code()
            ),
        ]
    );
    let acl = creation(GROUP, "g", LITERAL, "User:alice", "*", READ, ALLOW);
    assert_eq!(
        create_acls(&mut client, 2, vec![acl.clone(), acl]).await,
        [0, 0]
    );
    let expected_scram = [("alice".to_string(), 0, vec![(1, 4096)])];
    assert_eq!(describe_scram(&mut client, None).await, expected_scram);
    let (_, acls) = describe_acls(&mut client, 2, any_filter()).await;
    assert_eq!(acls.len(), 1);
    stop.cancel();
    task.await.unwrap();

    // The restarted voter replays its log (or snapshot) and serves the same state.
    let (kafka, stop, task) = start_quorum_node(dir.path(), &ca, controller).await;
    let mut client = RawClient::connect(kafka).await;
    assert_eq!(describe_scram(&mut client, None).await, expected_scram);
    let (_, acls) = describe_acls(&mut client, 2, any_filter()).await;
    assert_eq!(acls.len(), 1);
    assert_eq!(
        delete_acls(&mut client, 2, vec![delete_filter()]).await,
        [(0, 1)]
    );
    stop.cancel();
    task.await.unwrap();
}
