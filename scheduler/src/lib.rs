//! Scheduler: Dapr's jobs and actor reminders scheduler.
//!
//! In progress: flags, logging, healthz/metrics, the sentry identity, the embedded etcd-API store
//! (`dapr-etcd-store`) on the etcd client and peer ports, replica leadership keys and the pure job
//! model are in place; the cron engine and the Scheduler API are not implemented yet (every RPC
//! answers `Unimplemented`).

mod app;
pub mod embed;
pub mod etcd;
mod go_url;
pub mod job;
pub mod leadership;
mod options;
pub mod quantity;

pub use options::{Mode, NoWorkersError, Options, OptionsError, Validated};
