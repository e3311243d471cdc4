//! Robustness: the parsers take arbitrary strings from the network and must never panic.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;

/// xorshift64*: a deterministic stream, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "0",
    "1",
    "5",
    "9",
    "59",
    "60",
    "-",
    "/",
    ",",
    "*",
    "?",
    " ",
    "\t",
    "\u{85}",
    "@",
    "@every ",
    "@daily",
    "TZ=",
    "CRON_TZ=",
    "UTC",
    "Europe/Rome",
    "America/New_York",
    "..",
    "jan",
    "MON",
    "R",
    "P",
    "T",
    "Y",
    "M",
    "W",
    "D",
    "H",
    "S",
    "h",
    "m",
    "s",
    "ms",
    "µs",
    "ns",
    ".",
    "+",
    "Z",
    ":",
    "2024-02-29T",
    "23:59:59",
    "+24:00",
    "99999999999999999999",
    "9223372036854775807",
    "é",
    "\u{0}",
    "\u{130}",
    "#",
    "||",
    "\\",
];

fn garbage(rng: &mut Rng) -> String {
    (0..rng.below(12))
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

#[test]
fn parsers_never_panic_on_generated_input() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let times = [
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        DateTime::UNIX_EPOCH,
        DateTime::parse_from_rfc3339("2024-02-29T23:59:59.999999999Z")
            .unwrap()
            .to_utc(),
    ];
    for i in 0..20_000 {
        let s = garbage(&mut rng);
        let at = times[i % times.len()];
        if let Ok(cron) = CronSchedule::parse(&s) {
            let _ = cron.next(at);
        }
        let _ = parse_point_in_time(&s, at);
        let _ = parse_duration(&s);
        let _ = validate_job_name(&s);
        let _ = validate_prefix(&s);
        let job = Job {
            schedule: (i % 3 != 0).then(|| s.clone()),
            due_time: (i % 2 == 0).then(|| s.clone()),
            ttl: (i % 5 == 0).then(|| s.clone()),
            repeats: (i % 7 == 0).then_some(i as u32 % 3),
            ..Job::default()
        };
        if let Ok(stored) = parse_job(job, at, i as u64)
            && let Ok(Loaded::Active { mut counter, .. }) = JobCounter::load(&stored, None)
        {
            for result in [
                TriggerResult::Failed,
                TriggerResult::Success,
                TriggerResult::Undeliverable,
            ] {
                if counter.apply(result) == Outcome::Finished {
                    break;
                }
            }
        }
    }
}

#[test]
fn extreme_times_do_not_panic() {
    let far = DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1);
    for spec in [
        "* * * * * *",
        "@yearly",
        "@every 1h",
        "CRON_TZ=Europe/Rome 0 0 0 1 1 *",
    ] {
        let cron = CronSchedule::parse(spec).unwrap();
        assert_eq!(cron.next(DateTime::<Utc>::MAX_UTC), None, "{spec}");
        let _ = cron.next(far);
        let _ = cron.next(DateTime::<Utc>::MIN_UTC);
    }
}
