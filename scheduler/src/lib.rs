//! Scheduler: Dapr's jobs and actor reminders scheduler.
//!
//! In progress: flags, logging, healthz/metrics, the sentry identity, the embedded etcd-API store
//! (`dapr-etcd-store`) on the etcd client and peer ports, replica leadership keys and the pure job
//! model are in place; the cron engine and the Scheduler API are not implemented yet (every RPC
//! answers `Unimplemented`).

mod api;
mod app;
pub mod defrag;
pub mod embed;
pub mod engine;
pub mod etcd;
pub mod gates;
mod go_url;
pub mod job;
pub mod leadership;
pub mod metrics;
pub mod namespaces;
mod options;
pub mod quantity;

pub use options::{Mode, NoWorkersError, Options, OptionsError, Validated};
