//! SASL requests sent to a PLAINTEXT listener, as raw frames: a client configured for SASL
//! against a port without it must get Kafka's answer (ILLEGAL_SASL_STATE, no mechanisms, the
//! connection kept), never a panic or a silent drop; and the two APIs are advertised with
//! every version Kafka has.

use crate::support;

use bytes::Bytes;
use ferry_data_plane::server::ServerOptions;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::{RawClient, TestNode};

/// Checks that the connection still serves requests after the SASL ones.
async fn still_served(client: &mut RawClient) {
    let ResponseKind::Metadata(metadata) = client
        .call(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await
    else {
        panic!("Metadata answered with another API");
    };
    assert_eq!(metadata.brokers.len(), 1, "the node describes itself");
}

#[tokio::test]
async fn sasl_handshake_and_authenticate_get_illegal_sasl_state_and_the_connection_stays() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;
    let mut client = RawClient::connect(node.addr).await;

    let ResponseKind::ApiVersions(versions) = client
        .call(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
    else {
        panic!("ApiVersions answered with another API");
    };
    let advertised = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(advertised(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(advertised(ApiKey::SaslAuthenticate), Some((0, 2)));

    // Both handshake versions, a mechanism Ferry knows and one it does not: Kafka's
    // KafkaApis answer on a listener without SASL, whatever the mechanism.
    for (version, mechanism) in [(0, "SCRAM-SHA-512"), (1, "PLAIN"), (1, "GSSAPI")] {
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let ResponseKind::SaslHandshake(response) = client
            .call(
                ApiKey::SaslHandshake,
                version,
                RequestKind::SaslHandshake(request),
            )
            .await
        else {
            panic!("SaslHandshake answered with another API");
        };
        assert_eq!(
            response.error_code,
            ResponseError::IllegalSaslState.code(),
            "v{version} {mechanism}"
        );
        assert!(response.mechanisms.is_empty(), "v{version} {mechanism}");
        still_served(&mut client).await;
    }

    // SaslAuthenticate in each version, v2 with the flexible header; a client-first token
    // must not start an exchange.
    for version in 0..=2 {
        let request = SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from_static(b"n,,n=alice,r=abcdefgh"));
        let ResponseKind::SaslAuthenticate(response) = client
            .call(
                ApiKey::SaslAuthenticate,
                version,
                RequestKind::SaslAuthenticate(request),
            )
            .await
        else {
            panic!("SaslAuthenticate answered with another API");
        };
        assert_eq!(
            response.error_code,
            ResponseError::IllegalSaslState.code(),
            "v{version}"
        );
        assert_eq!(
            response.error_message.as_deref(),
            Some("SaslAuthenticate request received after successful authentication"),
            "v{version}"
        );
        assert!(response.auth_bytes.is_empty(), "v{version}");
        assert_eq!(response.session_lifetime_ms, 0, "v{version}");
        still_served(&mut client).await;
    }
    node.shutdown().await;
}

#[tokio::test]
async fn unsupported_sasl_versions_and_malformed_handshakes_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[], ServerOptions::default()).await;

    // SaslHandshake v2 and SaslAuthenticate v3 do not exist: the connection closes, as for any
    // unsupported version.
    for (key, version) in [(ApiKey::SaslHandshake, 2), (ApiKey::SaslAuthenticate, 3)] {
        let mut client = RawClient::connect(node.addr).await;
        let (_, frame) = client.frame(key, 1, &RequestKind::SaslHandshake(Default::default()));
        let mut frame = frame.to_vec();
        // Patch the version in the header (after the size and the api key).
        frame[6..8].copy_from_slice(&i16::to_be_bytes(version));
        client.send_raw(&frame).await;
        assert!(client.is_closed().await, "{key:?} v{version}");
    }

    // A handshake whose mechanism length runs past the frame: refused before decoding.
    let mut client = RawClient::connect(node.addr).await;
    let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("X"));
    let (_, frame) = client.frame(
        ApiKey::SaslHandshake,
        1,
        &RequestKind::SaslHandshake(request),
    );
    let mut frame = frame.to_vec();
    let at = frame.len() - 3; // the i16 length of the one-byte mechanism
    frame[at..at + 2].copy_from_slice(&i16::MAX.to_be_bytes());
    client.send_raw(&frame).await;
    assert!(client.is_closed().await, "an oversized mechanism length");

    // Other connections are unaffected.
    let mut client = RawClient::connect(node.addr).await;
    still_served(&mut client).await;
    node.shutdown().await;
}
