//! Scheduler: Dapr's jobs and actor reminders scheduler.
//!
//! Scaffold stage: flags, logging, the healthz and metrics servers, the gRPC listener and the
//! embedded etcd member's listeners are in place; etcd, the cron engine and the Scheduler API are
//! not implemented yet (every RPC answers `Unimplemented`, the etcd ports accept and drop
//! connections).

mod app;
pub mod etcd;
mod go_url;
mod options;
pub mod quantity;

pub use options::{Mode, NoWorkersError, Options, OptionsError, Validated};
