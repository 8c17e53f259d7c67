//! The Kafka wire protocol, sans-IO.
//!
//! This layer turns bytes into typed requests and typed responses into bytes. It never touches a
//! socket: [`frame`] splits a byte stream into size-prefixed frames (refusing oversized ones before
//! any allocation), [`request`] decodes a frame's header and body with the `kafka-protocol`
//! codecs, applying the [`versions`] policy, after the [`guard`] has checked every length in the
//! body against the layouts in [`bodies`] (written in the notation of [`schema`]), and
//! [`response`] encodes replies. The server (`crate::server`) owns the sockets and calls into this
//! module.
//!
//! ```text
//! frame    := size:i32 (big endian, excludes itself) payload:[u8; size]
//! request  := api_key:i16 api_version:i16 correlation_id:i32 client_id:nullable_string
//!             [tagged_fields if flexible] body
//! response := correlation_id:i32 [tagged_fields if flexible header] body
//! ```
//!
//! After a SaslHandshake v0, SASL tokens travel as raw frames with the same size prefix and no
//! request header; [`frame`] splits them like any frame, and the connection's
//! `crate::security::session::Session` says whether the next frame is a request or a raw token.

pub mod bodies;
pub mod frame;
pub mod guard;
pub mod request;
pub mod response;
pub mod schema;
pub mod versions;
