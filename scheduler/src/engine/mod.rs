//! The cron engine: the jobs this replica owns, fired on time to connected sidecars.
//!
//! - [`queue`]: the pure trigger queue (due times, one trigger in flight per job, staging).
//! - [`router`]: the pure stream registry (round robin, deliverable prefixes).
//! - [`core`]: the engine task around both.
//! - [`informer`], [`writer`], [`store`]: the etcd side.

pub mod core;
pub mod informer;
pub mod queue;
pub mod router;
pub mod store;
pub mod writer;
