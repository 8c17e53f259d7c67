//! Integration tests of one Ferry node in process: the Kafka API request by request over real TCP
//! with exact versions and raw frames (well-formed, malformed and oversized), the admin and group
//! APIs (ACLs and SCRAM credentials among them), the idempotent producer, the controllers'
//! authentication of brokers, SASL requests on a PLAINTEXT listener, and the node's `/metrics`
//! (a broker's and a controller's).
//!
//! One test binary for the crate, so the tests link the node once rather than once per file;
//! `support` holds the raw Kafka client and the in-process node every module uses.

mod support;

mod admin_api;
mod controller_auth;
mod controller_metrics;
mod groups_api;
mod idempotent_produce;
mod input_bounds;
mod kafka_api;
mod metrics;
mod sasl_on_plaintext;
mod security_admin;
