//! Go `time` semantics the job model depends on: `time.Date`'s normalisation and its choice
//! of offset for wall-clock times that a DST change skips or repeats, `Time.AddDate`, and
//! `time.Parse(time.RFC3339, ..)`'s acceptance rules.
//!
//! Times are Unix seconds plus nanoseconds; calendar arithmetic is done in `i128` so that no
//! input, however large, can overflow. Results outside chrono's range are `None`.

use chrono::{DateTime, Offset as _, TimeZone as _, Utc};
use chrono_tz::Tz;

const SECS_PER_DAY: i128 = 86_400;

/// Where a cron schedule's fields are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// UTC: no `TZ=`/`CRON_TZ=` prefix (the engine always evaluates with UTC times), or an
    /// explicit `UTC`, `Local` or empty zone name.
    Utc,
    /// An IANA zone from the prefix.
    Zone(Tz),
}

impl Location {
    /// The zone's UTC offset in seconds at the instant `unix`.
    pub(crate) fn offset_at(self, unix: i64) -> i64 {
        match self {
            Location::Utc => 0,
            Location::Zone(tz) => DateTime::from_timestamp(unix, 0)
                .map(|t| {
                    i64::from(
                        tz.offset_from_utc_datetime(&t.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    )
                })
                .unwrap_or(0),
        }
    }

    /// The instant of the wall-clock time `local` (seconds, the local fields read as if UTC),
    /// as Go's `time.Date` picks it: the offset in force at `local - offset_at(local)`. A
    /// time skipped by a DST change moves forward by the gap; a repeated one takes the
    /// earlier offset's reading as Go does.
    pub(crate) fn instant_of_local(self, local: i64) -> i64 {
        let first = self.offset_at(local);
        let offset = self.offset_at(local.saturating_sub(first));
        local.saturating_sub(offset)
    }

    /// Wall-clock fields of the instant `unix` in this location.
    pub(crate) fn civil(self, unix: i64) -> Civil {
        Civil::from_local_secs(unix.saturating_add(self.offset_at(unix)))
    }
}

/// Wall-clock fields of a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl Civil {
    /// Fields of `local` seconds since 1970-01-01T00:00:00 (wall clock read as UTC).
    pub(crate) fn from_local_secs(local: i64) -> Civil {
        let local = i128::from(local);
        let days = local.div_euclid(SECS_PER_DAY);
        let secs = local.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year: year as i64,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

/// Go's `time.Date` normalisation: month, day, hour, minute and second may be out of range
/// and carry into the larger fields. Returns local seconds (wall clock read as UTC), `None`
/// past `i64`.
pub(crate) fn local_secs(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    let m0 = i128::from(month) - 1;
    let year = i128::from(year) + m0.div_euclid(12);
    let month = (m0.rem_euclid(12) + 1) as u32;
    let days = days_from_civil(year, month, 1) + i128::from(day) - 1;
    let secs = days * SECS_PER_DAY
        + i128::from(hour) * 3600
        + i128::from(minute) * 60
        + i128::from(second);
    i64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i128, month: u32, day: u32) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i128::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i128::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `t.AddDate(years, months, days)` for a UTC time: calendar fields added, then
/// normalised (so Jan 31 + 1 month is Mar 2 or 3).
pub(crate) fn add_date(
    t: DateTime<Utc>,
    years: i64,
    months: i64,
    days: i64,
) -> Option<DateTime<Utc>> {
    let c = Civil::from_local_secs(t.timestamp());
    let secs = local_secs(
        c.year.checked_add(years)?,
        i64::from(c.month).checked_add(months)?,
        i64::from(c.day).checked_add(days)?,
        i64::from(c.hour),
        i64::from(c.minute),
        i64::from(c.second),
    )?;
    DateTime::from_timestamp(secs, t.timestamp_subsec_nanos())
}

/// `time.Parse(time.RFC3339, s)`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`.
///
/// Go's general layout parser (the fallback behind its RFC 3339 fast path) is a little more
/// lenient than RFC 3339, and so is this: a one-digit hour, `,` as the fraction separator,
/// any number of fraction digits (nanoseconds kept), and offsets up to `±24:60`. Upper-case
/// `T` and `Z` only.
pub(crate) fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    let mut v = s.as_bytes();
    let year = fixed_digits(&mut v, 4)?;
    literal(&mut v, b'-')?;
    let month = fixed_digits(&mut v, 2)?;
    literal(&mut v, b'-')?;
    let day = fixed_digits(&mut v, 2)?;
    literal(&mut v, b'T')?;
    let hour = one_or_two_digits(&mut v)?;
    literal(&mut v, b':')?;
    let minute = fixed_digits(&mut v, 2)?;
    literal(&mut v, b':')?;
    let second = fixed_digits(&mut v, 2)?;
    if !(1..=12).contains(&month) || hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    let mut nanos: i64 = 0;
    if v.len() >= 2 && (v[0] == b'.' || v[0] == b',') && v[1].is_ascii_digit() {
        let n = 1 + v[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        // Nine digits are kept; the rest are read and dropped.
        let kept = &v[1..n.min(10)];
        nanos = kept
            .iter()
            .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'));
        for _ in kept.len()..9 {
            nanos *= 10;
        }
        v = &v[n..];
    }
    let offset = if v.first() == Some(&b'Z') {
        v = &v[1..];
        0
    } else {
        if v.len() < 6 || v[3] != b':' {
            return None;
        }
        let sign = v[0];
        let mut h = &v[1..3];
        let mut m = &v[4..6];
        let (hh, mm) = (fixed_digits(&mut h, 2)?, fixed_digits(&mut m, 2)?);
        if hh > 24 || mm > 60 {
            return None;
        }
        let off = (hh * 60 + mm) * 60;
        v = &v[6..];
        match sign {
            b'+' => off,
            b'-' => -off,
            _ => return None,
        }
    };
    if !v.is_empty() {
        return None;
    }
    if day < 1 || day > i64::from(days_in(month as u32, year)) {
        return None;
    }
    let local = local_secs(year, month, day, hour, minute, second)?;
    DateTime::from_timestamp(local - offset, nanos as u32)
}

/// Exactly `n` ASCII digits.
fn fixed_digits(v: &mut &[u8], n: usize) -> Option<i64> {
    if v.len() < n || !v[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let x = v[..n]
        .iter()
        .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'));
    *v = &v[n..];
    Some(x)
}

/// One or two ASCII digits (Go's `getnum(value, false)`).
fn one_or_two_digits(v: &mut &[u8]) -> Option<i64> {
    let n = match v {
        [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => 2,
        [a, ..] if a.is_ascii_digit() => 1,
        _ => return None,
    };
    fixed_digits(v, n)
}

fn literal(v: &mut &[u8], c: u8) -> Option<()> {
    match v.split_first() {
        Some((&first, rest)) if first == c => {
            *v = rest;
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
