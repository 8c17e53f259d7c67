//! Ferry's telemetry seam: what every process uses to report on itself.
//!
//! Libraries (data plane, control plane, agent, quorum) depend on this crate only; it keeps the
//! choice of metric library in one place and adds what that library lacks.
//!
//! # Layout
//! - [`metrics`]: per-instance registries (names prefixed `ferry_`), the lock-free
//!   [`metrics::AtomicHistogram`] with named bucket sets, [`metrics::LabelCap`] bounding label
//!   values taken from user input, and the OpenMetrics text encoding.
//! - [`http`]: the `GET /metrics` axum route, merged into a process's existing router.
//!
//! Nothing here reads flags or the environment; the processes pass what they decided.
//! Deliberately absent so far: trace export (OTLP) and trace context propagation, which come as
//! their own modules.

pub mod http;
pub mod metrics;
