//! End-to-end tests of the `ferry` binary: real `ferry node`, `ferry agent`, `ferry control-plane`
//! and `ferry dev` processes on loopback (and in network namespaces), driven by real Kafka clients and
//! the CLI.
//!
//! One test binary for the crate, so the tests link tokio, tonic and rdkafka once rather than once per
//! file; `support`, `cluster` and `stack` are the shared helpers, every other module one area.

mod cluster;
mod stack;
mod support;

mod admin;
mod agent;
mod configuration;
mod control_plane;
mod control_plane_ha;
mod dev;
mod groups;
mod idempotence;
mod input_bounds;
mod multihost;
mod provisioning;
mod quorum;
mod rdkafka_single_node;
mod replication;
mod tenancy;
