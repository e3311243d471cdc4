//! A stored job's tick sequence (go-etcd-cron `internal/scheduler`: `oneshot`, `repeats`,
//! `Builder.Schedule`).

use chrono::{DateTime, Utc};

use super::cron::{CronError, CronSchedule};
use super::model::{Begin, StoredJob};

/// When a job's ticks fall, given how many are done and when the last one was scheduled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobSchedule {
    /// No schedule: one tick at the due time.
    Oneshot { due_time: DateTime<Utc> },
    /// A cron schedule, optionally bounded by a count and an expiration.
    Repeats(Repeats),
}

/// The recurring case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repeats {
    pub cron: CronSchedule,
    /// The clock starts here and the first tick is strictly after it.
    pub start: Option<DateTime<Utc>>,
    /// The first tick is exactly here. Set instead of `start`.
    pub due_time: Option<DateTime<Utc>>,
    /// No tick after this time.
    pub expiration: Option<DateTime<Utc>>,
    /// Total number of ticks.
    pub total: Option<u32>,
}

impl JobSchedule {
    /// Upstream `Builder.Schedule`. A stored job missing its `begin` (never written by this
    /// crate or upstream) reads it as the Unix epoch, as Go's nil `Timestamp.AsTime()` does.
    pub fn from_stored(job: &StoredJob) -> Result<JobSchedule, CronError> {
        let Some(schedule) = &job.job.schedule else {
            let due_time = match job.begin {
                Some(Begin::DueTime(t)) => t,
                _ => DateTime::UNIX_EPOCH,
            };
            return Ok(JobSchedule::Oneshot { due_time });
        };
        let (start, due_time) = match job.begin {
            Some(Begin::Start(t)) => (Some(t), None),
            Some(Begin::DueTime(t)) => (None, Some(t)),
            None => (Some(DateTime::UNIX_EPOCH), None),
        };
        Ok(JobSchedule::Repeats(Repeats {
            cron: CronSchedule::parse(schedule)?,
            start,
            due_time,
            expiration: job.expiration,
            total: job.job.repeats,
        }))
    }

    /// The scheduled time of tick number `count` (0-based) given the scheduled time of the
    /// previous one, or `None` when there is no such tick.
    ///
    /// Upstream's `repeats.Next` checks the expiration only when `last` is set (the caller
    /// checks it again for every tick), and a cron schedule with no match within five years
    /// gives Go's zero time there; here it is `None`, so the job completes.
    pub fn next(&self, count: u32, last: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self {
            JobSchedule::Oneshot { due_time } => (count == 0).then_some(*due_time),
            JobSchedule::Repeats(r) => {
                if r.total.is_some_and(|total| count >= total) {
                    return None;
                }
                match last {
                    None => match (r.due_time, r.start) {
                        (Some(due), _) => Some(due),
                        (None, Some(start)) => r.cron.next(start),
                        (None, None) => None,
                    },
                    Some(last) => {
                        let next = r.cron.next(last)?;
                        if r.expiration.is_some_and(|exp| next > exp) {
                            None
                        } else {
                            Some(next)
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::job::model::Job;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// go-etcd-cron `internal/scheduler/oneshot_test.go` Test_oneshot.
    #[test]
    fn oneshot_fires_once_at_its_due_time() {
        let due_time = t("2025-01-01T00:00:01Z");
        let s = JobSchedule::Oneshot { due_time };
        assert_eq!(s.next(0, None), Some(due_time));
        assert_eq!(s.next(1, None), None);
        assert_eq!(s.next(5, None), None);
    }

    /// go-etcd-cron `internal/scheduler/repeats_test.go` Test_repeats.
    #[test]
    fn repeats_matches_upstream_test_repeats() {
        let start = t("2025-01-01T01:00:00.5Z");
        let h = TimeDelta::hours(1);
        let ns = TimeDelta::nanoseconds;
        let every = CronSchedule::parse("@every 1h").unwrap();
        let r = |start: Option<DateTime<Utc>>,
                 due_time: Option<DateTime<Utc>>,
                 expiration: Option<DateTime<Utc>>,
                 total: Option<u32>| {
            JobSchedule::Repeats(Repeats {
                cron: every.clone(),
                start,
                due_time,
                expiration,
                total,
            })
        };
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            JobSchedule,
            u32,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        )> = vec![
            (
                "no count, no last: after start",
                r(Some(start), None, None, None),
                0,
                None,
                Some(start + h),
            ),
            (
                "count, no last: after start",
                r(Some(start), None, None, None),
                5,
                None,
                Some(start + h),
            ),
            (
                "count under total",
                r(Some(start), None, None, Some(10)),
                5,
                None,
                Some(start + h),
            ),
            (
                "count equals total",
                r(Some(start), None, None, Some(10)),
                10,
                None,
                None,
            ),
            (
                "count over total",
                r(Some(start), None, None, Some(10)),
                11,
                None,
                None,
            ),
            (
                "after last",
                r(Some(start), None, None, None),
                0,
                Some(start + h + ns(50)),
                Some(start + h * 2 + ns(50)),
            ),
            (
                "last is start",
                r(Some(start), None, None, None),
                0,
                Some(start),
                Some(start + h),
            ),
            (
                "before expiry",
                r(Some(start), None, Some(start + h * 2 + ns(1)), None),
                0,
                Some(start + h),
                Some(start + h * 2),
            ),
            (
                "after expiry",
                r(Some(start), None, Some(start + h * 2 + ns(1)), None),
                0,
                Some(start + h * 2),
                None,
            ),
            (
                "due time fires at the due time",
                r(
                    None,
                    Some(start + TimeDelta::seconds(1)),
                    Some(start + TimeDelta::seconds(1)),
                    None,
                ),
                0,
                None,
                Some(start + TimeDelta::seconds(1)),
            ),
            (
                "start fires one period after",
                r(
                    Some(start + TimeDelta::seconds(1)),
                    None,
                    Some(start + TimeDelta::seconds(1)),
                    None,
                ),
                0,
                None,
                Some(start + h + TimeDelta::seconds(1)),
            ),
        ];
        for (name, s, count, last, want) in cases {
            assert_eq!(s.next(count, last), want, "{name}");
        }
    }

    /// go-etcd-cron `internal/scheduler/builder_test.go` Test_Schedule.
    #[test]
    fn from_stored_matches_builder_test_schedule() {
        let now = t("2025-03-04T05:06:07.8Z");
        let stored = |schedule: Option<&str>, begin, expiration, repeats| StoredJob {
            partition_id: 1,
            begin: Some(begin),
            expiration,
            job: Job {
                schedule: schedule.map(str::to_owned),
                repeats,
                ..Job::default()
            },
        };
        assert_eq!(
            JobSchedule::from_stored(&stored(None, Begin::DueTime(now), None, None)),
            Ok(JobSchedule::Oneshot { due_time: now })
        );
        let exp = now + TimeDelta::hours(2);
        assert_eq!(
            JobSchedule::from_stored(&stored(
                Some("@every 1h"),
                Begin::Start(now),
                Some(exp),
                None
            )),
            Ok(JobSchedule::Repeats(Repeats {
                cron: CronSchedule::Every(3_600_000_000_000),
                start: Some(now),
                due_time: None,
                expiration: Some(exp),
                total: None,
            }))
        );
        assert_eq!(
            JobSchedule::from_stored(&stored(
                Some("1 2 3 4 5 6"),
                Begin::Start(now),
                None,
                Some(100)
            )),
            Ok(JobSchedule::Repeats(Repeats {
                cron: CronSchedule::parse("1 2 3 4 5 6").unwrap(),
                start: Some(now),
                due_time: None,
                expiration: None,
                total: Some(100),
            }))
        );
        assert!(
            JobSchedule::from_stored(&stored(
                Some("bad string"),
                Begin::Start(now),
                Some(exp),
                Some(100)
            ))
            .is_err()
        );
        // A one-shot stored with a start (not written by upstream) reads the epoch.
        assert_eq!(
            JobSchedule::from_stored(&stored(None, Begin::Start(now), None, None)),
            Ok(JobSchedule::Oneshot {
                due_time: DateTime::UNIX_EPOCH
            })
        );
    }
}
