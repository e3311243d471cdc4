//! Placement: Dapr's actor placement service.
//!
//! Scaffold stage: flags, logging, the healthz and metrics servers, the gRPC listener and the Raft
//! listener are in place; leader election and table dissemination are not implemented yet (every
//! RPC answers `Unimplemented`, the Raft port accepts and drops connections).

mod app;
pub mod authz;
pub mod dissemination;
pub mod grpc;
pub mod metrics;
mod options;
pub mod peers;
pub mod raft;
pub mod state_json;

pub use options::{Mode, Options, OptionsError};
