//! Integration tests of the quorum crate: the seeded simulation of many voters over an in-memory
//! network, three voters over real gRPC on loopback, mutual TLS between voters, and refusals of bad
//! input.
//!
//! One test binary for the crate; every module is one area.

mod bad_input;
mod grpc;
mod simulation;
mod tls;
