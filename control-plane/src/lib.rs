//! Ferry's control plane: the service that turns "I want a cluster like this" into running
//! `ferry node` processes on registered hosts.
//!
//! # What the control plane will be
//!
//! One `ferry control-plane` process (three for high availability) serving:
//!
//! - the provisioning **API** (gRPC and REST/JSON on one port): clusters, nodes, hosts,
//!   operations, configurations, tenants and tokens, with MSK's names and rules;
//! - a **store** of desired and observed state, replicated on `quorum/`;
//! - **reconcilers**, one per resource, driving observed state toward the desired state: the
//!   cluster reconciler plans placement, writes per-host assignments for the agents to pull, and
//!   watches node health;
//! - **placement**, the pure function deciding which host runs which node.
//!
//! # What this crate holds today
//!
//! The pure foundations the rest will stand on, each without I/O and fully unit-tested:
//!
//! - [`spec`]: the [`spec::ClusterSpec`] and its synchronous validation, which reports every
//!   field error at once;
//! - [`placement`]: [`placement::plan`], from a spec's shape, the registered hosts and the
//!   current placement to one assignment (host, zone, ports, stable node id) per node;
//! - [`configuration`]: configurations' broker properties (Java properties text), their
//!   validation against the broker's own config parsing, and what each node runs with;
//! - [`auth`]: JWT bearer tokens (HS256) carrying tenant and role, and the role permission
//!   table.
//!
//! And the state they persist:
//!
//! - [`model`]: the resources (clusters, operations, hosts, configurations), each a desired
//!   and an observed part;
//! - [`store`]: the [`store::Store`] trait over one deterministic state machine, in memory
//!   (tests) or replicated on `ferry-quorum`;
//! - [`Error`]: the crate's error categories.
//!
//! And the edge:
//!
//! - [`api`]: the gRPC services (clusters, configurations, operations, hosts) over any store:
//!   authenticate, authorize, validate, call the store, translate errors to statuses;
//! - [`rest`]: the same services as REST/JSON under `/v1/...` and their OpenAPI document,
//!   generated from the proto definitions, on the gRPC port;
//! - [`console`]: the web console, static pages over the REST API, at `/console`;
//! - [`server`]: one control-plane process: the public API port, and a peer port (mutual TLS)
//!   for raft between members and for the agents;
//! - [`enroll`] and [`pki`]: join tokens, and the internal CA (kept in the store) that issues
//!   host and node certificates.
//!
//! And the loop that makes clusters exist:
//!
//! - [`reconcile`]: the reconciler, which on the store's leader drives every running
//!   operation through its steps (placement, per-host assignments for the agents, waiting on
//!   their reports) and marks silent hosts unreachable; its decisions are the pure
//!   [`reconcile::plan::decide`].

pub mod api;
pub mod auth;
pub mod configuration;
pub mod console;
pub mod enroll;
mod error;
#[cfg(test)]
mod golden;
pub mod model;
pub mod pki;
pub mod placement;
pub mod reconcile;
pub mod rest;
pub mod server;
pub mod spec;
pub mod store;

pub use error::{Conflict, Error, Result};
