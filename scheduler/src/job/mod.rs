//! The scheduler's pure job model: no I/O, no clocks — time is a parameter.
//!
//! - [`parse_job`] validates a ScheduleJob request's job into a [`StoredJob`] (spec §7.1).
//! - [`CronSchedule`] is the schedule grammar (dapr/kit cron, spec §7.2).
//! - [`JobSchedule`] gives a stored job's tick times; [`JobCounter`] tracks one loaded job's
//!   counter and applies trigger results (spec §7.3–7.4).
//! - [`Target`] composes names and etcd keys; [`validate_job_name`] checks them (spec §6.1,
//!   §7.5).
//!
//! Behaviour follows go-etcd-cron v0.12.7 and dapr/kit v0.18.3, error texts included; the
//! few Go standard-library routines those depend on are ported in `go` and `gotime`.

mod codec;
mod counter;
pub mod cron;
mod go;
mod gotime;
mod iso8601;
mod model;
mod name;
mod parse;
mod schedule;

pub use codec::{
    DecodeError, datetime, job_from_wire, policy_from_wire, policy_to_wire, timestamp,
};
pub use counter::{JobCounter, Loaded, Outcome};
pub use cron::{CronError, CronSchedule, Location, SpecSchedule};
pub use go::{DurationError, parse_duration};
pub use model::{
    Begin, Counter, FailurePolicy, FailurePolicyConstant, Job, StoredJob, TriggerResult,
};
pub use name::{
    COUNTERS_PREFIX, JOBS_PREFIX, MAX_JOB_NAME_LEN, NameError, Target, counter_key, job_key,
    name_from_job_key, namespace_prefixes, validate_job_name, validate_prefix,
};
pub use parse::{JobError, PointInTimeError, parse_job, parse_point_in_time};
pub use schedule::{JobSchedule, Repeats};

#[cfg(test)]
mod tests;
