//! Load generators for the control-plane benchmarks (`hack/bench/*.sh`).
//!
//! Each generator targets loopback only, runs a bounded number of requests for a bounded time
//! per concurrency level and prints one JSON document the bench script compares across servers.

pub mod h2grpc;
pub mod placement;
pub mod scheduler;
pub mod sentry;
pub mod stats;
pub mod store;
pub mod tls;
