//! Plain mirrors of the engine's stored messages (go-etcd-cron `proto/api/*.proto` and
//! `proto/stored/*.proto`, spec §11.1), one field per proto field, so the protobuf encoding
//! added later maps one to one. Timestamps are `DateTime<Utc>` (nanosecond precision).

use chrono::{DateTime, Utc};
use prost_types::{Any, Duration};

/// `api.Job`: the job as the caller submitted it, stored verbatim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Job {
    /// 1: cron schedule, see [`super::CronSchedule`].
    pub schedule: Option<String>,
    /// 2: RFC 3339 time or duration from now.
    pub due_time: Option<String>,
    /// 3: RFC 3339 time or duration from the due time (or now).
    pub ttl: Option<String>,
    /// 4: total number of triggers.
    pub repeats: Option<u32>,
    /// 5: `type.googleapis.com/dapr.proto.scheduler.v1.JobMetadata`, as sent.
    pub metadata: Option<Any>,
    /// 6: the job's data.
    pub payload: Option<Any>,
    /// 7: what to do when a trigger fails. A message with no oneof set maps to `None` (it
    /// behaves the same everywhere: the dapr server drops it, the counter treats it as drop).
    pub failure_policy: Option<FailurePolicy>,
}

/// `api.FailurePolicy`'s oneof.
#[derive(Clone, Debug, PartialEq)]
pub enum FailurePolicy {
    /// 1: `FailurePolicyDrop{}`: a failed tick is skipped.
    Drop,
    /// 2: retry the tick at a constant interval.
    Constant(FailurePolicyConstant),
}

/// `api.FailurePolicyConstant`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailurePolicyConstant {
    /// 1: delay between attempts; unset = zero (retry at once).
    pub interval: Option<Duration>,
    /// 2: retries after the first attempt; unset = retry forever.
    pub max_retries: Option<u32>,
}

impl FailurePolicy {
    /// The policy a job gets when it names none: constant, 1 s apart, 3 retries.
    pub fn default_constant() -> FailurePolicy {
        FailurePolicy::Constant(FailurePolicyConstant {
            interval: Some(Duration {
                seconds: 1,
                nanos: 0,
            }),
            max_retries: Some(3),
        })
    }
}

/// `stored.Job`'s `begin` oneof: when the schedule's clock starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// 2: the job was stored at this time with no due time; the schedule's first tick is
    /// strictly after it.
    Start(DateTime<Utc>),
    /// 3: the first trigger is at this time (even if already past).
    DueTime(DateTime<Utc>),
}

/// `stored.Job`: the value under `dapr/jobs/<name>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredJob {
    /// 1: random; a counter from another partition id belongs to an overwritten job.
    pub partition_id: u64,
    /// 2/3: never `None` for jobs this crate parses.
    pub begin: Option<Begin>,
    /// 4: no trigger after this time.
    pub expiration: Option<DateTime<Utc>>,
    /// 5.
    pub job: Job,
}

/// `stored.Counter`: the value under `dapr/counters/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// 1: the partition id of the job this counter counts.
    pub job_partition_id: u64,
    /// 2: ticks done (succeeded, dropped or out of retries).
    pub count: u32,
    /// 3: the scheduled (not actual) time of the last tick done.
    pub last_trigger: Option<DateTime<Utc>>,
    /// 4: failed attempts at the current tick.
    pub attempts: u32,
}

/// A trigger's result as reported back to the engine (`api.TriggerResponseResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerResult {
    /// 0: delivered and acknowledged.
    Success,
    /// 1: delivered, the app failed it.
    Failed,
    /// 2: not delivered: no stream for the target on this replica, or the send failed.
    Undeliverable,
}
