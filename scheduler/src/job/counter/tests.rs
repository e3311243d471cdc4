use chrono::{DateTime, TimeDelta, Utc};
use prost_types::Duration;

use super::*;
use crate::job::model::{Begin, FailurePolicyConstant, Job};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-05-05T05:05:05.5Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn job(schedule: Option<&str>, repeats: Option<u32>, policy: Option<FailurePolicy>) -> Job {
    Job {
        schedule: schedule.map(str::to_owned),
        due_time: Some("2025-05-05T05:05:05Z".to_owned()),
        repeats,
        failure_policy: policy,
        ..Job::default()
    }
}

fn stored(begin: Begin, expiration: Option<DateTime<Utc>>, job: Job) -> StoredJob {
    StoredJob {
        partition_id: 123,
        begin: Some(begin),
        expiration,
        job,
    }
}

/// A counter in the given state, as upstream's tests build `&counter{..}` directly.
fn state(job: &StoredJob, counter: Counter, next: DateTime<Utc>) -> JobCounter {
    JobCounter {
        schedule: JobSchedule::from_stored(job).unwrap(),
        repeats: job.job.repeats,
        expiration: job.expiration,
        failure_policy: job.job.failure_policy.clone(),
        counter,
        next,
    }
}

fn constant(interval: Option<i64>, max_retries: Option<u32>) -> Option<FailurePolicy> {
    Some(FailurePolicy::Constant(FailurePolicyConstant {
        interval: interval.map(|seconds| Duration { seconds, nanos: 0 }),
        max_retries,
    }))
}

fn counter(count: u32, last: Option<DateTime<Utc>>, attempts: u32) -> Counter {
    Counter {
        job_partition_id: 0,
        count,
        last_trigger: last,
        attempts,
    }
}

fn active(loaded: Loaded) -> (JobCounter, Option<Counter>) {
    match loaded {
        Loaded::Active { counter, reset } => (*counter, reset),
        Loaded::Finished => panic!("finished"),
    }
}

/// go-etcd-cron `internal/counter/counter_test.go` Test_New.
#[test]
fn load_matches_upstream_test_new() {
    let oneshot = stored(Begin::DueTime(now()), None, job(None, None, None));
    let mine = Counter {
        job_partition_id: 123,
        ..Counter::default()
    };
    // Partition id matches: kept as is, nothing written.
    let (c, reset) = active(JobCounter::load(&oneshot, Some(mine.clone())).unwrap());
    assert_eq!((c.counter(), reset), (&mine, None));
    assert_eq!(c.scheduled_time(), now());
    // Partition id differs: a fresh counter, written at once.
    let theirs = Counter {
        job_partition_id: 456,
        count: 9,
        last_trigger: Some(now()),
        attempts: 2,
    };
    let (c, reset) = active(JobCounter::load(&oneshot, Some(theirs)).unwrap());
    assert_eq!(c.counter(), &mine);
    assert_eq!(reset, Some(mine.clone()));
    // Matches but done (a one-shot with count 1): delete both.
    let done = Counter {
        count: 1,
        last_trigger: Some(now()),
        ..mine.clone()
    };
    assert_eq!(
        JobCounter::load(&oneshot, Some(done)).unwrap(),
        Loaded::Finished
    );
    // No counter: a fresh one in memory, not written.
    let (c, reset) = active(JobCounter::load(&oneshot, None).unwrap());
    assert_eq!((c.counter(), reset), (&mine, None));
    // A stored job with an unparsable schedule is an error, not a panic.
    let bad = stored(Begin::Start(now()), None, job(Some("bad"), None, None));
    assert!(JobCounter::load(&bad, None).is_err());
}

/// go-etcd-cron `counter_test.go` Test_TriggerSuccess.
#[test]
fn success_matches_upstream_test_trigger_success() {
    let every = stored(
        Begin::DueTime(now()),
        None,
        job(Some("@every 1s"), None, None),
    );
    let mut c = state(&every, counter(0, None, 0), now());
    assert_eq!(
        c.trigger_success(),
        Outcome::Reschedule {
            counter: counter(1, Some(now()), 0),
            at: now() + secs(1)
        }
    );
    // A one-shot is done after its success.
    let oneshot = stored(Begin::Start(now()), None, job(None, None, None));
    let mut c = state(&oneshot, counter(0, None, 0), now());
    assert_eq!(c.trigger_success(), Outcome::Finished);
    // Attempts are reset by a success.
    let mut c = state(&every, counter(0, None, 456), now());
    assert_eq!(
        c.trigger_success(),
        Outcome::Reschedule {
            counter: counter(1, Some(now()), 0),
            at: now() + secs(1)
        }
    );
}

/// go-etcd-cron `counter_test.go` Test_updateNext.
#[test]
fn update_next_matches_upstream_test_update_next() {
    let repeats = stored(
        Begin::Start(now()),
        None,
        job(Some("@every 1s"), Some(4), None),
    );
    let expires = stored(
        Begin::Start(now()),
        Some(now() + secs(5)),
        job(Some("@every 1s"), Some(4), None),
    );
    let oneshot = stored(Begin::DueTime(now()), None, job(None, None, None));
    let past_expiry = StoredJob {
        expiration: Some(now() - secs(5)),
        ..expires.clone()
    };
    let cases: Vec<(&str, JobCounter, Option<DateTime<Utc>>)> = vec![
        (
            "count equals repeats",
            state(&repeats, counter(4, None, 0), now()),
            None,
        ),
        (
            "count over repeats",
            state(&repeats, counter(5, None, 0), now()),
            None,
        ),
        (
            "last trigger at the expiry",
            state(&expires, counter(2, Some(now() + secs(5)), 0), now()),
            None,
        ),
        (
            "count equals total",
            state(&expires, counter(4, Some(now()), 0), now()),
            None,
        ),
        (
            "past expiry",
            state(&past_expiry, counter(0, None, 0), now()),
            None,
        ),
        (
            "one-shot not fired yet",
            state(&oneshot, counter(0, None, 0), now()),
            Some(now()),
        ),
        (
            "one-shot fired",
            state(&oneshot, counter(1, None, 0), now()),
            None,
        ),
    ];
    for (name, mut c, want) in cases {
        let got = c.update_next().then_some(c.next);
        assert_eq!(got, want, "{name}");
    }
}

/// go-etcd-cron `counter_test.go` Test_TriggerFailed: (name, job, count, attempts, next,
/// last trigger, want).
#[test]
fn failed_matches_upstream_test_trigger_failed() {
    let n = now();
    let due = Some("@every 1s");
    let drop = Some(FailurePolicy::Drop);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        Job,
        u32,
        u32,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Outcome,
    )> = vec![
        (
            "no policy, one-shot: deleted",
            job(None, None, None),
            0,
            0,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "no policy, schedule: counter forward",
            job(due, None, None),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            "drop, one-shot: deleted",
            job(None, None, drop.clone()),
            0,
            0,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "drop, schedule: counter forward",
            job(due, None, drop.clone()),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            "drop, schedule, count not up: count forward",
            job(due, Some(3), drop.clone()),
            1,
            0,
            n + secs(1),
            Some(n),
            Outcome::Reschedule {
                counter: counter(2, Some(n + secs(1)), 0),
                at: n + secs(2),
            },
        ),
        (
            "drop, schedule, count up: deleted",
            job(due, Some(3), drop),
            2,
            0,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "constant nil/nil, one-shot: retry now",
            job(None, None, constant(None, None)),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 1),
                at: n,
            },
        ),
        (
            "constant nil/0, one-shot: deleted",
            job(None, None, constant(None, Some(0))),
            0,
            0,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "constant nil/0, schedule: count forward",
            job(due, None, constant(None, Some(0))),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            "constant nil/0, schedule at the last repeat: deleted",
            job(due, Some(3), constant(None, Some(0))),
            2,
            0,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "constant 3s/nil, one-shot: retry in 3s",
            job(None, None, constant(Some(3), None)),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 1),
                at: n + secs(3),
            },
        ),
        (
            "constant 3s/nil, schedule: retry in 3s",
            job(due, None, constant(Some(3), None)),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 1),
                at: n + secs(3),
            },
        ),
        (
            "constant 3s/nil, schedule at the last repeat: retry at +9s",
            job(due, Some(3), constant(Some(3), None)),
            2,
            0,
            n + secs(6),
            None,
            Outcome::Reschedule {
                counter: counter(2, None, 1),
                at: n + secs(9),
            },
        ),
        (
            "constant 3s/nil, attempt 5: retry at +15s",
            job(due, None, constant(Some(3), None)),
            0,
            4,
            n + secs(12),
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 5),
                at: n + secs(15),
            },
        ),
        (
            "constant 0s/nil, attempt 5: retry now",
            job(due, None, constant(Some(0), None)),
            0,
            4,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 5),
                at: n,
            },
        ),
        (
            "constant 5s/0, schedule: count forward",
            job(due, None, constant(Some(5), Some(0))),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            "constant 5s/0, one-shot: deleted",
            job(None, None, constant(Some(5), Some(0))),
            0,
            0,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "constant 5s/1, attempt 1, schedule: retry in 5s",
            job(due, None, constant(Some(5), Some(1))),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 1),
                at: n + secs(5),
            },
        ),
        (
            "constant 5s/1, attempt 1, one-shot: retry in 5s",
            job(None, None, constant(Some(5), Some(1))),
            0,
            0,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 1),
                at: n + secs(5),
            },
        ),
        (
            "constant 5s/1, attempt 2, schedule: count forward",
            job(due, None, constant(Some(5), Some(1))),
            0,
            1,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            "constant 5s/1, attempt 2, one-shot: deleted",
            job(None, None, constant(Some(5), Some(1))),
            0,
            1,
            n,
            None,
            Outcome::Finished,
        ),
        (
            "constant 5s/2, attempt 3, schedule: count forward",
            job(due, None, constant(Some(5), Some(2))),
            0,
            2,
            n,
            None,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            "constant 5s/3, attempt 3, schedule: retry",
            job(due, None, constant(Some(5), Some(3))),
            0,
            2,
            n + secs(10),
            None,
            Outcome::Reschedule {
                counter: counter(0, None, 3),
                at: n + secs(15),
            },
        ),
        (
            "constant 5s/2, attempt 3, count 3: nominal tick done, next tick",
            job(due, None, constant(Some(5), Some(2))),
            3,
            2,
            n + secs(12),
            Some(n + secs(3)),
            Outcome::Reschedule {
                counter: counter(4, Some(n + secs(4)), 0),
                at: n + secs(5),
            },
        ),
    ];
    for (name, job, count, attempts, next, last, want) in cases {
        let stored = stored(Begin::DueTime(n), None, job);
        let mut c = state(&stored, counter(count, last, attempts), next);
        assert_eq!(c.trigger_failed(), want, "{name}");
    }
}

/// go-etcd-cron `counter_test.go` Test_TriggerFailureSuccess: retries shift the fire time,
/// but a success records the nominal tick.
#[test]
fn failures_then_success_keep_the_nominal_ticks() {
    let n = now();
    let stored = stored(
        Begin::DueTime(n),
        None,
        job(Some("@every 1s"), Some(3), constant(Some(5), Some(2))),
    );
    let mut c = state(&stored, Counter::default(), n);
    let steps: &[(TriggerResult, Outcome)] = &[
        (
            TriggerResult::Success,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 0),
                at: n + secs(1),
            },
        ),
        (
            TriggerResult::Failed,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 1),
                at: n + secs(6),
            },
        ),
        (
            TriggerResult::Failed,
            Outcome::Reschedule {
                counter: counter(1, Some(n), 2),
                at: n + secs(11),
            },
        ),
        (
            TriggerResult::Success,
            Outcome::Reschedule {
                counter: counter(2, Some(n + secs(1)), 0),
                at: n + secs(2),
            },
        ),
        (
            TriggerResult::Failed,
            Outcome::Reschedule {
                counter: counter(2, Some(n + secs(1)), 1),
                at: n + secs(7),
            },
        ),
        (
            TriggerResult::Failed,
            Outcome::Reschedule {
                counter: counter(2, Some(n + secs(1)), 2),
                at: n + secs(12),
            },
        ),
        // Out of retries on the third and last repeat: done.
        (TriggerResult::Failed, Outcome::Finished),
    ];
    for (i, (result, want)) in steps.iter().enumerate() {
        assert_eq!(&c.apply(*result), want, "step {i}");
    }
}

#[test]
fn undeliverable_changes_nothing() {
    let stored = stored(
        Begin::DueTime(now()),
        None,
        job(Some("@every 1s"), None, None),
    );
    let mut c = state(&stored, counter(3, Some(now()), 1), now() + secs(7));
    let before = c.clone();
    assert_eq!(
        c.apply(TriggerResult::Undeliverable),
        Outcome::Undeliverable {
            at: now() + secs(7)
        }
    );
    assert_eq!(c, before);
}

#[test]
fn default_policy_delivers_four_times_then_moves_on() {
    // max_retries=3 means four deliveries of the same tick (spec §7.4).
    let stored = stored(
        Begin::DueTime(now()),
        None,
        job(
            Some("@every 10s"),
            None,
            Some(FailurePolicy::default_constant()),
        ),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let mut fire_times = vec![c.scheduled_time()];
    for _ in 0..3 {
        match c.apply(TriggerResult::Failed) {
            Outcome::Reschedule { at, .. } => fire_times.push(at),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        fire_times,
        [now(), now() + secs(1), now() + secs(2), now() + secs(3)]
    );
    assert_eq!(
        c.apply(TriggerResult::Failed),
        Outcome::Reschedule {
            counter: Counter {
                job_partition_id: 123,
                count: 1,
                last_trigger: Some(now()),
                attempts: 0
            },
            at: now() + secs(10)
        }
    );
}

#[test]
fn reload_mid_retry_returns_to_the_nominal_tick() {
    let stored = stored(
        Begin::DueTime(now()),
        None,
        job(Some("@every 10s"), None, constant(Some(3), None)),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    c.apply(TriggerResult::Success);
    let Outcome::Reschedule {
        counter: persisted,
        at,
    } = c.apply(TriggerResult::Failed)
    else {
        panic!("retry expected");
    };
    assert_eq!(at, now() + secs(13));
    let (reloaded, reset) = active(JobCounter::load(&stored, Some(persisted)).unwrap());
    assert_eq!(reset, None);
    assert_eq!(reloaded.scheduled_time(), now() + secs(10));
    assert_eq!(reloaded.counter().attempts, 1);
}

#[test]
fn missed_ticks_are_caught_up_in_order_after_a_long_pause() {
    // Created at `now` with `@every 1s`, loaded again an hour later: the first tick is
    // start+1s (in the past, so due at once), and every success moves one nominal second.
    let stored = stored(
        Begin::Start(now()),
        None,
        job(Some("@every 1s"), Some(5000), None),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let later = now() + TimeDelta::hours(1);
    let mut fired = 0;
    while c.is_due(later) {
        assert_eq!(c.scheduled_time(), now() + secs(fired + 1));
        let Outcome::Reschedule { .. } = c.apply(TriggerResult::Success) else {
            panic!("ended early");
        };
        fired += 1;
    }
    assert_eq!(fired, 3600);
    assert!(!c.is_due(later));
    assert!(c.is_due(later + secs(1)));
    assert_eq!(c.counter().count, 3600);
    assert_eq!(c.counter().last_trigger, Some(later));
}

#[test]
fn cron_catch_up_uses_scheduled_not_actual_times() {
    let start = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let stored = stored(
        Begin::Start(start),
        None,
        job(Some("0 0 * * * *"), None, None),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(c.scheduled_time());
        c.apply(TriggerResult::Success);
    }
    let h = TimeDelta::hours(1);
    assert_eq!(seen, [start + h, start + h * 2, start + h * 3]);
    // Never early.
    assert!(!c.is_due(start + h * 4 - TimeDelta::nanoseconds(1)));
    assert!(c.is_due(start + h * 4));
}

#[test]
fn expiration_exactly_at_a_tick_still_fires_it() {
    // ttl 3s with @every 1s from a due time: ticks at +0, +1, +2, +3 (== expiration) fire.
    let stored = stored(
        Begin::DueTime(now()),
        Some(now() + secs(3)),
        job(Some("@every 1s"), None, None),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let mut fired = vec![c.scheduled_time()];
    while let Outcome::Reschedule { at, .. } = c.apply(TriggerResult::Success) {
        fired.push(at);
    }
    assert_eq!(
        fired,
        [now(), now() + secs(1), now() + secs(2), now() + secs(3)]
    );
    // A nanosecond earlier and the last tick is dropped.
    let stored = StoredJob {
        expiration: Some(now() + secs(3) - TimeDelta::nanoseconds(1)),
        ..stored
    };
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let mut n = 1;
    while let Outcome::Reschedule { .. } = c.apply(TriggerResult::Success) {
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn expiration_before_the_first_tick_finishes_at_load() {
    let stored = stored(
        Begin::Start(now()),
        Some(now() + TimeDelta::milliseconds(500)),
        job(Some("@every 1s"), None, None),
    );
    assert_eq!(JobCounter::load(&stored, None).unwrap(), Loaded::Finished);
}

#[test]
fn repeats_bound_the_ticks_with_sub_second_every() {
    let stored = stored(
        Begin::Start(now()),
        None,
        job(Some("@every 100ms"), Some(5), None),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let mut fired = vec![c.scheduled_time()];
    while let Outcome::Reschedule { at, .. } = c.apply(TriggerResult::Success) {
        fired.push(at);
    }
    let ms = TimeDelta::milliseconds;
    assert_eq!(
        fired,
        [
            now() + ms(100),
            now() + ms(200),
            now() + ms(300),
            now() + ms(400),
            now() + ms(500)
        ]
    );
    assert_eq!(c.counter().count, 5);
}

#[test]
fn due_time_in_the_past_fires_at_once_then_follows_the_schedule() {
    let due = now() - TimeDelta::days(2);
    let stored = stored(
        Begin::DueTime(due),
        None,
        job(Some("@daily"), Some(2), None),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    assert_eq!(c.scheduled_time(), due);
    assert!(c.is_due(now()));
    let Outcome::Reschedule { at, .. } = c.apply(TriggerResult::Success) else {
        panic!("second repeat expected");
    };
    assert_eq!(at.to_rfc3339(), "2025-05-04T00:00:00+00:00");
    assert_eq!(c.apply(TriggerResult::Success), Outcome::Finished);
}

#[test]
fn unsatisfiable_cron_finishes_instead_of_firing_forever() {
    // Upstream gets Go's zero time here and fires repeatedly; spec §7.2 recommends "never".
    let stored = stored(
        Begin::Start(now()),
        None,
        job(Some("0 0 0 30 2 *"), None, None),
    );
    assert_eq!(JobCounter::load(&stored, None).unwrap(), Loaded::Finished);
}

#[test]
fn every_zero_fires_back_to_back_at_the_same_time() {
    let stored = stored(
        Begin::DueTime(now()),
        None,
        job(Some("@every 0s"), Some(3), None),
    );
    let (mut c, _) = active(JobCounter::load(&stored, None).unwrap());
    let mut fired = vec![c.scheduled_time()];
    while let Outcome::Reschedule { at, .. } = c.apply(TriggerResult::Success) {
        fired.push(at);
    }
    assert_eq!(fired, [now(), now(), now()]);
}
