//! What a node reports at `/metrics` on its admin port.
//!
//! A node builds one [`Registry`] at start ([`crate::node`]), registers what its roles report,
//! and serves it beside the admin gRPC service. Each role's metrics live in one module here,
//! which names every family it registers:
//! - [`broker`]: the Kafka listener and request handlers (requests, errors and latency per
//!   API, connections, per-topic traffic) and the scrape-time partition gauges.
//! - [`controller`]: a controller's raft numbers and the cluster counts of the active
//!   controller's metadata image.
//!
//! Node metrics carry no cluster or node labels: the scraper's service discovery adds them.
//! The hot path only touches handles built ahead (per API) or cached (per topic), so counting
//! a request is a few atomic adds.

pub mod broker;
pub mod controller;

pub use ferry_telemetry::metrics::Registry;
