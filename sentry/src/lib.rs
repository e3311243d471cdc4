//! Sentry: Dapr's mTLS certificate authority.
//!
//! Scaffold stage: flags, logging, healthz and metrics servers and the gRPC listener are in
//! place; certificate signing is not implemented yet (every RPC answers `Unimplemented`).

mod app;
mod options;

pub use options::{Mode, Options, OptionsError};
