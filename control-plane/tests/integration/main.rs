//! Integration tests of the control plane in process: the gRPC and REST API, the agent API, the
//! replicated store, the peer port's attack tests, hygiene checks and poison-input refusals, each
//! server on a loopback port 0.
//!
//! One test binary for the crate, so tonic, axum and the store link once rather than once per file;
//! every module is one area.

mod agent_api;
mod api;
mod hygiene;
mod peer;
mod poison;
mod quorum_store;
mod rest;
