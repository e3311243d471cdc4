//! The schedule grammar: dapr/kit `cron` (a robfig/cron fork) with the parser options the
//! engine uses, `Second | Minute | Hour | Dom | Month | Dow | Descriptor` — exactly six
//! fields, descriptors, `@every <Go duration>`, and a `TZ=`/`CRON_TZ=` prefix.
//!
//! Error texts are kit's; daprd shows them to users inside `job failed validation: `.

mod next;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::go;
pub use super::gotime::Location;

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronSchedule {
    /// Six cron fields (or a descriptor such as `@daily`).
    Spec(SpecSchedule),
    /// `@every <d>`: fires every `d` nanoseconds after the previous time. Go allows zero and
    /// negative durations and so does this.
    Every(i64),
}

/// A cron schedule as bit sets, as kit's `SpecSchedule`: bit `n` set = value `n` matches;
/// bit 63 marks a field written as `*` or `?` (for the day-of-month/day-of-week rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecSchedule {
    pub second: u64,
    pub minute: u64,
    pub hour: u64,
    pub dom: u64,
    pub month: u64,
    pub dow: u64,
    pub location: Location,
}

/// A schedule that failed to parse; displays exactly as kit's error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("empty spec string")]
    Empty,
    #[error("timezone prefix {0} is not followed by a schedule")]
    TimezoneWithoutSchedule(String),
    #[error("provided bad location {name}: {reason}")]
    BadLocation { name: String, reason: String },
    #[error("timezone is not supported for @every schedules: {0}")]
    TimezoneWithEvery(String),
    /// `fields` is Go's `%s` of the split fields, e.g. `[* * *]`.
    #[error("expected exactly 6 fields, found {count}: {fields}")]
    FieldCount { count: usize, fields: String },
    #[error("failed to parse int from {expr}: {reason}")]
    Int { expr: String, reason: String },
    #[error("negative number ({value}) not allowed: {expr}")]
    Negative { value: i64, expr: String },
    #[error("too many hyphens: {0}")]
    TooManyHyphens(String),
    #[error("too many slashes: {0}")]
    TooManySlashes(String),
    #[error("beginning of range ({start}) below minimum ({min}): {expr}")]
    BelowMinimum { start: u64, min: u64, expr: String },
    #[error("end of range ({end}) above maximum ({max}): {expr}")]
    AboveMaximum { end: u64, max: u64, expr: String },
    #[error("beginning of range ({start}) beyond end of range ({end}): {expr}")]
    BeyondEnd { start: u64, end: u64, expr: String },
    #[error("step of range should be a positive number: {0}")]
    ZeroStep(String),
    #[error("failed to parse duration {descriptor}: {reason}")]
    Duration { descriptor: String, reason: String },
    #[error("unrecognized descriptor: {0}")]
    UnrecognizedDescriptor(String),
}

/// Set when a field was written as `*` or `?`.
const STAR_BIT: u64 = 1 << 63;

/// Bounds of one field, with its names (lower case).
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

impl CronSchedule {
    /// Parses a schedule string (kit `Parser.Parse` with the engine's options). Never panics.
    pub fn parse(spec: &str) -> Result<CronSchedule, CronError> {
        if spec.is_empty() {
            return Err(CronError::Empty);
        }
        let mut spec = spec;
        let mut location = Location::Utc;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let prefixed = spec;
            let Some(space) = spec.find(char::is_whitespace) else {
                return Err(CronError::TimezoneWithoutSchedule(spec.to_owned()));
            };
            // Both prefixes contain '=' before any whitespace.
            let eq = spec.find('=').unwrap_or(0);
            let name = spec.get(eq + 1..space).unwrap_or("");
            location = load_location(name).map_err(|reason| CronError::BadLocation {
                name: name.to_owned(),
                reason,
            })?;
            spec = spec[space..].trim();
            // An @every schedule has no wall clock for a zone to apply to (kit v0.18.3).
            if spec.starts_with("@every ") {
                return Err(CronError::TimezoneWithEvery(prefixed.to_owned()));
            }
        }
        if spec.starts_with('@') {
            return parse_descriptor(spec, location);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(CronError::FieldCount {
                count: fields.len(),
                fields: format!("[{}]", fields.join(" ")),
            });
        }
        Ok(CronSchedule::Spec(SpecSchedule {
            second: get_field(fields[0], &SECONDS)?,
            minute: get_field(fields[1], &MINUTES)?,
            hour: get_field(fields[2], &HOURS)?,
            dom: get_field(fields[3], &DOM)?,
            month: get_field(fields[4], &MONTHS)?,
            dow: get_field(fields[5], &DOW)?,
            location,
        }))
    }

    /// The first activation strictly after `t`, or `None` when there is none: a cron
    /// schedule with no match within five years (Go returns the zero time there), or a time
    /// outside chrono's range.
    pub fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            CronSchedule::Spec(spec) => spec.next(t),
            CronSchedule::Every(nanos) => t.checked_add_signed(TimeDelta::nanoseconds(*nanos)),
        }
    }
}

/// Go's `time.LoadLocation` for the names it accepts without touching the file system,
/// else the embedded IANA database. Errors carry Go's texts.
fn load_location(name: &str) -> Result<Location, String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        // `Local` evaluates in the zone of the time given, which the engine always
        // passes in UTC.
        return Ok(Location::Utc);
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".to_owned());
    }
    name.parse::<Tz>()
        .map(Location::Zone)
        .map_err(|_| format!("unknown time zone {name}"))
}

fn parse_descriptor(descriptor: &str, location: Location) -> Result<CronSchedule, CronError> {
    let spec = |second, minute, hour, dom, month, dow| {
        Ok(CronSchedule::Spec(SpecSchedule {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
            location,
        }))
    };
    match descriptor {
        "@yearly" | "@annually" => spec(1, 1, 1, 1 << 1, 1 << 1, all(&DOW)),
        "@monthly" => spec(1, 1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
        "@weekly" => spec(1, 1, 1, all(&DOM), all(&MONTHS), 1),
        "@daily" | "@midnight" => spec(1, 1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => spec(1, 1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {
            match descriptor.strip_prefix("@every ") {
                Some(d) => go::parse_duration(d).map(CronSchedule::Every).map_err(|e| {
                    CronError::Duration {
                        descriptor: descriptor.to_owned(),
                        reason: e.to_string(),
                    }
                }),
                None => Err(CronError::UnrecognizedDescriptor(descriptor.to_owned())),
            }
        }
    }
}

/// A comma-separated list of ranges; empty items are skipped, as Go's `FieldsFunc`.
fn get_field(field: &str, bounds: &Bounds) -> Result<u64, CronError> {
    field
        .split(',')
        .filter(|r| !r.is_empty())
        .try_fold(0, |bits, expr| Ok(bits | get_range(expr, bounds)?))
}

/// `number | number "-" number [ "/" number ]`, `*`/`?` with an optional step.
fn get_range(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        // Anything after a hyphen is ignored here, as upstream does.
        (start, end, extra) = (bounds.min, bounds.max, STAR_BIT);
    } else {
        start = parse_int_or_name(low_and_high[0], bounds.names)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], bounds.names)?,
            _ => return Err(CronError::TooManyHyphens(expr.to_owned())),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = bounds.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(CronError::TooManySlashes(expr.to_owned())),
    };
    if start < bounds.min {
        return Err(CronError::BelowMinimum {
            start,
            min: bounds.min,
            expr: expr.to_owned(),
        });
    }
    if end > bounds.max {
        return Err(CronError::AboveMaximum {
            end,
            max: bounds.max,
            expr: expr.to_owned(),
        });
    }
    if start > end {
        return Err(CronError::BeyondEnd {
            start,
            end,
            expr: expr.to_owned(),
        });
    }
    if step == 0 {
        return Err(CronError::ZeroStep(expr.to_owned()));
    }
    Ok(get_bits(start, end, step) | extra)
}

/// A name (case-insensitive, per-rune lower-casing as Go's `strings.ToLower`) or a number.
fn parse_int_or_name(expr: &str, names: &[(&str, u64)]) -> Result<u64, CronError> {
    if !names.is_empty() {
        let lower: String = expr
            .chars()
            .filter_map(|c| c.to_lowercase().next())
            .collect();
        if let Some((_, v)) = names.iter().find(|(n, _)| *n == lower) {
            return Ok(*v);
        }
    }
    must_parse_int(expr)
}

fn must_parse_int(expr: &str) -> Result<u64, CronError> {
    let n = go::atoi(expr).map_err(|e| CronError::Int {
        expr: expr.to_owned(),
        reason: e.to_string(),
    })?;
    u64::try_from(n).map_err(|_| CronError::Negative {
        value: n,
        expr: expr.to_owned(),
    })
}

/// Bits `min..=max` stepping by `step` (callers guarantee `min <= max <= 59`, `step >= 1`).
fn get_bits(min: u64, max: u64, step: u64) -> u64 {
    let mut bits = 0;
    let mut i = min;
    while i <= max {
        bits |= 1 << i;
        i = match i.checked_add(step) {
            Some(i) => i,
            None => break,
        };
    }
    bits
}

/// Every value of the field, plus the star bit.
fn all(bounds: &Bounds) -> u64 {
    get_bits(bounds.min, bounds.max, 1) | STAR_BIT
}

#[cfg(test)]
mod tests;
