use chrono::{DateTime, TimeDelta, Utc};
use prost_types::Duration;

use super::*;
use crate::job::model::FailurePolicyConstant;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    t("2025-06-01T10:20:30.123456789Z")
}

fn job(schedule: Option<&str>, due: Option<&str>, ttl: Option<&str>, repeats: Option<u32>) -> Job {
    Job {
        schedule: schedule.map(str::to_owned),
        due_time: due.map(str::to_owned),
        ttl: ttl.map(str::to_owned),
        repeats,
        ..Job::default()
    }
}

fn stored(job: Job, begin: Begin, expiration: Option<DateTime<Utc>>) -> StoredJob {
    StoredJob {
        partition_id: 7,
        begin: Some(begin),
        expiration,
        job: Job {
            failure_policy: job
                .failure_policy
                .clone()
                .or(Some(FailurePolicy::default_constant())),
            ..job
        },
    }
}

const DUE: &str = "2024-04-24T11:42:22Z";

/// go-etcd-cron `internal/scheduler/builder_test.go` Test_Parse.
#[test]
fn parse_job_matches_builder_test_parse() {
    let due = t(DUE);
    let ok: Vec<(&str, Job, StoredJob)> = vec![
        (
            "only due time",
            job(None, Some(DUE), None, None),
            stored(job(None, Some(DUE), None, None), Begin::DueTime(due), None),
        ),
        (
            "due time & schedule",
            job(Some("@every 1h"), Some(DUE), None, None),
            stored(
                job(Some("@every 1h"), Some(DUE), None, None),
                Begin::DueTime(due),
                None,
            ),
        ),
        (
            "schedule & ttl",
            job(Some("@every 1h"), None, Some("2h"), None),
            stored(
                job(Some("@every 1h"), None, Some("2h"), None),
                Begin::Start(now()),
                Some(now() + TimeDelta::hours(2)),
            ),
        ),
        (
            "due time & schedule & ttl",
            job(Some("@every 1h"), Some(DUE), Some("2h"), Some(100)),
            stored(
                job(Some("@every 1h"), Some(DUE), Some("2h"), Some(100)),
                Begin::DueTime(due),
                Some(t("2024-04-24T13:42:22Z")),
            ),
        ),
        (
            "ttl same as due time",
            job(Some("@every 1h"), Some(DUE), Some(DUE), None),
            stored(
                job(Some("@every 1h"), Some(DUE), Some(DUE), None),
                Begin::DueTime(due),
                Some(due),
            ),
        ),
    ];
    for (name, input, want) in ok {
        assert_eq!(parse_job(input, now(), 7), Ok(want), "{name}");
    }

    let constant = FailurePolicy::Constant(FailurePolicyConstant {
        interval: Some(Duration {
            seconds: 3,
            nanos: 0,
        }),
        max_retries: Some(5),
    });
    for policy in [constant, FailurePolicy::Drop] {
        let input = Job {
            failure_policy: Some(policy.clone()),
            ..job(None, Some(DUE), None, None)
        };
        let got = parse_job(input, now(), 7).unwrap();
        assert_eq!(got.job.failure_policy, Some(policy), "policy kept");
    }

    let bad: &[(&str, Job, JobError)] = &[
        (
            "no due time or schedule",
            job(None, None, Some("1h"), None),
            JobError::NoDueTimeOrSchedule,
        ),
        (
            "repeats without schedule",
            job(None, Some(DUE), None, Some(3)),
            JobError::RepeatsWithoutSchedule,
        ),
        (
            "ttl without schedule",
            job(None, Some(DUE), Some("1h"), None),
            JobError::TtlWithoutSchedule,
        ),
        (
            "zero repeats",
            job(Some("@every 1h"), Some(DUE), None, Some(0)),
            JobError::ZeroRepeats,
        ),
        (
            "ttl before due time",
            job(
                Some("@every 1h"),
                Some(DUE),
                Some("2024-04-24T11:42:21Z"),
                None,
            ),
            JobError::TtlBeforeDueTime,
        ),
        (
            "bad due time",
            job(Some("@every 1h"), Some("bad"), Some(DUE), None),
            JobError::DueTimeFormat,
        ),
        (
            "bad ttl",
            job(Some("@every 1h"), Some(DUE), Some("bad"), None),
            JobError::TtlFormat,
        ),
    ];
    for (name, input, want) in bad {
        assert_eq!(
            parse_job(input.clone(), now(), 7).as_ref(),
            Err(want),
            "{name}"
        );
    }
}

#[test]
fn checks_run_in_upstream_order() {
    // Each row breaks two rules; the first in upstream's order wins.
    let cases: &[(Job, &str)] = &[
        (
            job(None, None, Some("bad"), Some(0)),
            "job must have either a due time or a schedule",
        ),
        (
            job(None, Some("bad"), None, Some(2)),
            "job must have a schedule to repeat",
        ),
        // repeats == 1 without a schedule is allowed; then the ttl rule applies.
        (
            job(None, Some(DUE), Some("1h"), Some(1)),
            "job must have a schedule to have a ttl",
        ),
        (
            job(None, Some(DUE), None, Some(0)),
            "defined repeats must be greater than 0",
        ),
        (
            job(Some("bad"), Some("bad"), None, Some(0)),
            "defined repeats must be greater than 0",
        ),
        (
            job(Some("bad"), Some("bad"), None, None),
            "expected exactly 6 fields, found 1: [bad]",
        ),
        (
            job(Some("@daily"), Some("bad"), Some("bad"), None),
            "due time format not recognized",
        ),
        (
            job(Some("@daily"), Some("R2/PT1S"), Some("bad"), None),
            "repeats not supported for due time",
        ),
        (
            job(Some("@daily"), None, Some("R2/PT1S"), None),
            "ttl format not recognized",
        ),
        (
            job(Some("@daily"), Some(DUE), Some("-1s"), None),
            "ttl must be greater than due time",
        ),
    ];
    for (input, want) in cases {
        let err = parse_job(input.clone(), now(), 1).unwrap_err();
        assert_eq!(err.to_string(), *want, "{input:?}");
    }
    let err = parse_job(job(Some("* * *"), None, None, None), now(), 1).unwrap_err();
    assert_eq!(
        err.validation_message(),
        "job failed validation: expected exactly 6 fields, found 3: [* * *]"
    );
    let err = parse_job(
        job(Some("TZ=Nowhere/Land * * * * * *"), None, None, None),
        now(),
        1,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "provided bad location Nowhere/Land: unknown time zone Nowhere/Land"
    );
}

#[test]
fn due_time_and_ttl_forms() {
    let n = now();
    let cases: &[(&str, DateTime<Utc>)] = &[
        // go-etcd-cron builder_test.go Test_parsePointInTime.
        ("2024-04-24T11:42:22Z", t("2024-04-24T11:42:22Z")),
        ("10s", n + TimeDelta::seconds(10)),
        ("10ms", n + TimeDelta::milliseconds(10)),
        ("P1Y2M3DT4H5M6S", t("2026-08-04T14:25:36.123456789Z")),
        // Spec §7.1 forms.
        ("0s", n),
        ("100s", n + TimeDelta::seconds(100)),
        ("0h0m9s0ms", n + TimeDelta::seconds(9)),
        ("1ms", n + TimeDelta::milliseconds(1)),
        ("0m", n),
        ("-5m", n - TimeDelta::minutes(5)),
        ("PT1S", n + TimeDelta::seconds(1)),
        ("P1DT2H", n + TimeDelta::hours(26)),
        ("R0/PT1S", n + TimeDelta::seconds(1)),
        ("2024-04-24T11:42:22.5+02:00", t("2024-04-24T09:42:22.5Z")),
    ];
    for (input, want) in cases {
        assert_eq!(parse_point_in_time(input, n), Ok(*want), "{input}");
    }
    for (input, want) in [
        ("R3/P1Y2M3DT4H5M6S", PointInTimeError::Repeats),
        ("R1/PT1S", PointInTimeError::Repeats),
        ("unsupported", PointInTimeError::Format),
        ("", PointInTimeError::Format),
        ("R/PT1S", PointInTimeError::Format),
        ("2024-04-24", PointInTimeError::Format),
        ("1d", PointInTimeError::Format),
        ("P999999999Y", PointInTimeError::Format),
    ] {
        assert_eq!(parse_point_in_time(input, n), Err(want), "{input}");
    }
}

#[test]
fn ttl_counts_from_the_due_time_when_there_is_one() {
    let got = parse_job(
        job(Some("@every 1s"), Some("1h"), Some("30m"), None),
        now(),
        1,
    )
    .unwrap();
    assert_eq!(got.begin, Some(Begin::DueTime(now() + TimeDelta::hours(1))));
    assert_eq!(
        got.expiration,
        Some(now() + TimeDelta::hours(1) + TimeDelta::minutes(30))
    );
    // ISO calendar arithmetic from the due time.
    let got = parse_job(
        job(
            Some("@daily"),
            Some("2024-01-31T00:00:00Z"),
            Some("P1M"),
            None,
        ),
        now(),
        1,
    )
    .unwrap();
    assert_eq!(got.expiration, Some(t("2024-03-02T00:00:00Z")));
    // A due time in the past is kept as is (it fires at once).
    let got = parse_job(job(None, Some("-1h"), None, Some(1)), now(), 1).unwrap();
    assert_eq!(got.begin, Some(Begin::DueTime(now() - TimeDelta::hours(1))));
}

#[test]
fn parse_never_panics_on_odd_strings() {
    for s in [
        "\u{0}",
        "R",
        "R99999999999999999999/PT1S",
        "PT9223372036854775807H",
        "P-9223372036854775808D",
        "9999-12-31T23:59:59-24:00",
        "2562047h47m16.854775807s",
        "€",
        "P1€D",
        "RP",
    ] {
        let _ = parse_job(job(Some("@every 1s"), Some(s), Some(s), None), now(), 1);
        let _ = parse_point_in_time(s, DateTime::<Utc>::MAX_UTC);
        let _ = parse_point_in_time(s, DateTime::<Utc>::MIN_UTC);
    }
}

/// Golden file: each input run through upstream's `parsePointInTime` (go-etcd-cron v0.12.7
/// with kit v0.18.3, Go 1.26) from a base of 2025-01-31T10:20:30.123456789Z; the result in
/// UTC or the error. `\t`, `\n` in inputs are escaped.
#[test]
fn point_in_time_agrees_with_upstream_on_the_golden_file() {
    let base = t("2025-01-31T10:20:30.123456789Z");
    let mut n = 0;
    for line in include_str!("../testdata/point_in_time.tsv").lines() {
        let (input, want) = line.split_once('\t').unwrap();
        let input = input.replace("\\t", "\t").replace("\\n", "\n");
        let got = match parse_point_in_time(&input, base) {
            Ok(t) => go_rfc3339_nano(t),
            Err(PointInTimeError::Format) => "ERR due time format not recognized".to_owned(),
            Err(PointInTimeError::Repeats) => "ERR repeats not supported for due time".to_owned(),
        };
        assert_eq!(got, want, "{input:?}");
        n += 1;
    }
    assert!(n > 60);
}

/// Go's `Format(time.RFC3339Nano)` for a UTC time (years past 9999 unpadded).
fn go_rfc3339_nano(t: DateTime<Utc>) -> String {
    use chrono::{Datelike as _, Timelike as _};
    let frac = match t.nanosecond() {
        0 => String::new(),
        n => format!(".{n:09}").trim_end_matches('0').to_owned(),
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
