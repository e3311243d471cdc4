//! Trigger bookkeeping for one job (go-etcd-cron `internal/counter`, spec §7.3–7.4): where
//! the next trigger falls, and what a trigger's result does to the persisted counter.
//!
//! Times are *scheduled* times: after downtime the missed ticks of a recurring job come due
//! back to back, in order, until it has caught up; nothing fires before its time. Retry
//! shifts live only in memory, so a reload goes back to the nominal tick.

use chrono::{DateTime, TimeDelta, Utc};

use super::cron::CronError;
use super::model::{Counter, FailurePolicy, StoredJob, TriggerResult};
use super::schedule::JobSchedule;

/// The loaded state of one job: its schedule, its counter and its next trigger time. The
/// engine keeps one per active job, fires it when [`JobCounter::is_due`], and reports the
/// result with [`JobCounter::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct JobCounter {
    schedule: JobSchedule,
    repeats: Option<u32>,
    expiration: Option<DateTime<Utc>>,
    failure_policy: Option<FailurePolicy>,
    counter: Counter,
    next: DateTime<Utc>,
}

/// The result of loading a job and its stored counter.
#[derive(Clone, Debug, PartialEq)]
pub enum Loaded {
    /// The job has a next trigger. `reset` is a fresh counter to write at once (`Put` if the
    /// job's mod revision is unchanged): the stored counter belonged to an earlier job of the
    /// same name (a different partition id).
    Active {
        counter: Box<JobCounter>,
        reset: Option<Counter>,
    },
    /// The job will never trigger (repeats done, expired, one-shot done): delete the counter
    /// and, if its mod revision is unchanged, the job.
    Finished,
}

/// What the engine must do after a trigger result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write `counter` (`Put` if the job's mod revision is unchanged; a failed compare means
    /// the job changed and this state is dropped), then queue the job at `at`.
    Reschedule { counter: Counter, at: DateTime<Utc> },
    /// The job is done: delete the counter and, if its mod revision is unchanged, the job.
    Finished,
    /// Nothing changed: re-queue at `at` (now) if the target is deliverable, else park the
    /// job until it becomes deliverable.
    Undeliverable { at: DateTime<Utc> },
}

impl JobCounter {
    /// Upstream `counter.New`: recover `stored` if it belongs to this job, else start
    /// afresh, and find the next trigger.
    pub fn load(job: &StoredJob, stored: Option<Counter>) -> Result<Loaded, CronError> {
        let schedule = JobSchedule::from_stored(job)?;
        let fresh = Counter {
            job_partition_id: job.partition_id,
            ..Counter::default()
        };
        let (counter, reset) = match stored {
            None => (fresh, None),
            Some(c) if c.job_partition_id == job.partition_id => (c, None),
            Some(_) => (fresh.clone(), Some(fresh)),
        };
        let mut state = JobCounter {
            schedule,
            repeats: job.job.repeats,
            expiration: job.expiration,
            failure_policy: job.job.failure_policy.clone(),
            counter,
            next: DateTime::UNIX_EPOCH,
        };
        Ok(if state.update_next() {
            Loaded::Active {
                counter: Box::new(state),
                reset,
            }
        } else {
            Loaded::Finished
        })
    }

    /// The time the job is due (may be in the past: fire at once).
    pub fn scheduled_time(&self) -> DateTime<Utc> {
        self.next
    }

    /// Whether the job may fire at `now`. Never early.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        now >= self.next
    }

    /// The counter as it would be persisted.
    pub fn counter(&self) -> &Counter {
        &self.counter
    }

    /// Applies a trigger's result.
    pub fn apply(&mut self, result: TriggerResult) -> Outcome {
        match result {
            TriggerResult::Success => self.trigger_success(),
            TriggerResult::Failed => self.trigger_failed(),
            TriggerResult::Undeliverable => Outcome::Undeliverable { at: self.next },
        }
    }

    /// Upstream `TriggerSuccess`: the nominal tick is done.
    pub fn trigger_success(&mut self) -> Outcome {
        if let Some(last) = self
            .schedule
            .next(self.counter.count, self.counter.last_trigger)
        {
            self.counter.last_trigger = Some(last);
        }
        self.counter.count = self.counter.count.saturating_add(1);
        self.counter.attempts = 0;
        self.reschedule()
    }

    /// Upstream `TriggerFailed`: retry this tick if the failure policy allows, else count it
    /// as done and move on.
    pub fn trigger_failed(&mut self) -> Outcome {
        self.counter.attempts = self.counter.attempts.saturating_add(1);
        if self.policy_try_again() {
            return Outcome::Reschedule {
                counter: self.counter.clone(),
                at: self.next,
            };
        }
        self.counter.count = self.counter.count.saturating_add(1);
        self.counter.attempts = 0;
        self.reschedule()
    }

    fn reschedule(&mut self) -> Outcome {
        if self.update_next() {
            Outcome::Reschedule {
                counter: self.counter.clone(),
                at: self.next,
            }
        } else {
            Outcome::Finished
        }
    }

    /// Upstream `policyTryAgain`: whether to retry the current tick; sets `last_trigger`
    /// when not (the current fire time for drop, the nominal tick once retries run out).
    fn policy_try_again(&mut self) -> bool {
        match &self.failure_policy {
            Some(FailurePolicy::Constant(c)) => {
                let again = c.max_retries.is_none_or(|max| max >= self.counter.attempts);
                if again {
                    let interval = c.interval.map_or(0, go_duration_nanos);
                    if let Some(next) = self
                        .next
                        .checked_add_signed(TimeDelta::nanoseconds(interval))
                    {
                        self.next = next;
                    }
                } else if let Some(last) = self
                    .schedule
                    .next(self.counter.count, self.counter.last_trigger)
                {
                    self.counter.last_trigger = Some(last);
                }
                again
            }
            Some(FailurePolicy::Drop) | None => {
                self.counter.last_trigger = Some(self.next);
                false
            }
        }
    }

    /// Upstream `updateNext`: the next tick, unless repeats are used up, the schedule has
    /// ended, or the tick is past the expiration.
    fn update_next(&mut self) -> bool {
        if self.repeats.is_some_and(|r| self.counter.count >= r) {
            return false;
        }
        let Some(next) = self
            .schedule
            .next(self.counter.count, self.counter.last_trigger)
        else {
            return false;
        };
        if self.expiration.is_some_and(|exp| next > exp) {
            return false;
        }
        self.next = next;
        true
    }
}

/// Go's `durationpb.AsDuration`: saturating at the `int64` nanosecond range.
fn go_duration_nanos(d: prost_types::Duration) -> i64 {
    i128::from(d.seconds)
        .saturating_mul(1_000_000_000)
        .saturating_add(i128::from(d.nanos))
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests;
