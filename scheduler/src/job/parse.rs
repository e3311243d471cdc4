//! Validating a submitted job into the stored job (go-etcd-cron `scheduler.Builder.Parse`,
//! spec §7.1), with upstream's check order and error texts.

use chrono::{DateTime, TimeDelta, Utc};

use super::cron::{CronError, CronSchedule};
use super::model::{Begin, FailurePolicy, Job, StoredJob};
use super::{go, gotime, iso8601};

/// Why a job was rejected. The texts are upstream's; the ScheduleJob RPC wraps them as
/// `job failed validation: <e>` (see [`JobError::validation_message`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("job must have either a due time or a schedule")]
    NoDueTimeOrSchedule,
    #[error("job must have a schedule to repeat")]
    RepeatsWithoutSchedule,
    #[error("defined repeats must be greater than 0")]
    ZeroRepeats,
    #[error("job must have a schedule to have a ttl")]
    TtlWithoutSchedule,
    #[error(transparent)]
    Schedule(#[from] CronError),
    #[error("due time format not recognized")]
    DueTimeFormat,
    #[error("repeats not supported for due time")]
    DueTimeRepeats,
    #[error("ttl format not recognized")]
    TtlFormat,
    #[error("ttl must be greater than due time")]
    TtlBeforeDueTime,
}

impl JobError {
    /// The text the engine returns from ScheduleJob (gRPC `Unknown`).
    pub fn validation_message(&self) -> String {
        format!("job failed validation: {self}")
    }
}

/// Validates `job` and builds the stored job (upstream `Builder.Parse`).
///
/// `now` is the time of the request (UTC) and `partition_id` a fresh random number; both are
/// parameters so this stays pure. A job with no failure policy gets
/// [`FailurePolicy::default_constant`].
pub fn parse_job(
    mut job: Job,
    now: DateTime<Utc>,
    partition_id: u64,
) -> Result<StoredJob, JobError> {
    if job.due_time.is_none() && job.schedule.is_none() {
        return Err(JobError::NoDueTimeOrSchedule);
    }
    if job.schedule.is_none() && job.repeats.unwrap_or(0) > 1 {
        return Err(JobError::RepeatsWithoutSchedule);
    }
    if job.repeats == Some(0) {
        return Err(JobError::ZeroRepeats);
    }
    if job.schedule.is_none() && job.ttl.is_some() {
        return Err(JobError::TtlWithoutSchedule);
    }
    if let Some(schedule) = &job.schedule {
        CronSchedule::parse(schedule)?;
    }
    if job.failure_policy.is_none() {
        job.failure_policy = Some(FailurePolicy::default_constant());
    }

    let (begin, due) = match &job.due_time {
        Some(due_time) => {
            let due = parse_point_in_time(due_time, now).map_err(|e| match e {
                PointInTimeError::Format => JobError::DueTimeFormat,
                PointInTimeError::Repeats => JobError::DueTimeRepeats,
            })?;
            (Begin::DueTime(due), Some(due))
        }
        None => (Begin::Start(now), None),
    };

    let expiration = match &job.ttl {
        Some(ttl) => {
            let base = due.unwrap_or(now);
            let expiration = parse_point_in_time(ttl, base).map_err(|_| JobError::TtlFormat)?;
            if due.is_some_and(|due| due > expiration) {
                return Err(JobError::TtlBeforeDueTime);
            }
            Some(expiration)
        }
        None => None,
    };

    Ok(StoredJob {
        partition_id,
        begin: Some(begin),
        expiration,
        job,
    })
}

/// Why [`parse_point_in_time`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointInTimeError {
    /// `due time format not recognized` (also a time outside the representable range).
    Format,
    /// An ISO 8601 duration with `R<n>/`, n > 0.
    Repeats,
}

/// Upstream `parsePointInTime`: an RFC 3339 time; else a Go duration added to `base`; else
/// an ISO 8601 duration added to `base` (years, months and days by calendar).
pub fn parse_point_in_time(
    s: &str,
    base: DateTime<Utc>,
) -> Result<DateTime<Utc>, PointInTimeError> {
    if let Some(t) = gotime::parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(nanos) = go::parse_duration(s) {
        return base
            .checked_add_signed(TimeDelta::nanoseconds(nanos))
            .ok_or(PointInTimeError::Format);
    }
    let iso = iso8601::parse(s).map_err(|_| PointInTimeError::Format)?;
    if iso.repetition > 0 {
        return Err(PointInTimeError::Repeats);
    }
    gotime::add_date(base, iso.years, iso.months, iso.days)
        .and_then(|t| t.checked_add_signed(TimeDelta::nanoseconds(iso.nanos)))
        .ok_or(PointInTimeError::Format)
}

#[cfg(test)]
mod tests;
