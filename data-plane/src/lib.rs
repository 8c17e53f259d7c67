//! Ferry's data plane: the process that stores and serves Kafka data.
//!
//! A `ferry node` runs one [`node::Node`]. It speaks the Apache Kafka wire protocol to
//! unmodified clients and keeps each partition in a durable, segmented log.
//!
//! # Layout
//! - [`protocol`]: sans-IO framing, request decoding, version policy, response encoding.
//! - [`server`]: the TCP listener and the per-connection loop (one request at a time).
//! - [`broker`]: the request router and one file per Kafka API; partition replicas.
//! - [`log`]: the partition log — segments, indexes, retention, crash recovery.
//! - [`group`]: the classic consumer-group coordinator's sans-IO core (groups, offsets, records).
//! - [`controller`]: the KRaft-style controller's deterministic metadata state machine —
//!   commands in, typed records out, applied to the metadata image brokers follow.
//! - [`metadata`]: the cluster image the broker serves from, and the admin requests and configs
//!   that change it.
//! - [`authority`]: where a broker's image comes from and its admin requests go: the node
//!   itself (single node) or the KRaft-style controller quorum.
//! - [`security`]: client security on the Kafka listeners: principals, SASL mechanisms,
//!   ACLs and the authorizer (sans-IO).
//! - [`metrics`]: what the node reports at `/metrics` (per-API requests, connections,
//!   per-topic traffic, partition gauges), with bounded label values.
//! - [`node`]: wires the pieces into a running node with roles, a data directory and an admin
//!   endpoint.
//!
//! # Flow of a request
//! ```text
//! socket -> FrameDecoder -> request::decode -> Broker::handle -> <api>.rs -> Partition/log
//!        <- response::encode <---------------- ResponseKind <--'
//! ```

pub mod authority;
pub mod broker;
pub mod controller;
pub mod group;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod owner_only;
pub mod protocol;
pub mod security;
pub mod server;

#[cfg(test)]
mod golden;
