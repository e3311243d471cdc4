//! `SpecSchedule::next`, a step-for-step port of kit's (robfig's) algorithm including its
//! DST behaviour: fields are matched in the schedule's zone; a field that does not match is
//! advanced (months and days by calendar arithmetic with Go's `time.Date` normalisation,
//! hours, minutes and seconds by absolute time), and any wrap restarts the search.

use chrono::{DateTime, Utc};

use super::{STAR_BIT, SpecSchedule};
use crate::job::gotime::{Civil, Location, local_secs};

/// Upstream gives up after five years of calendar.
const YEAR_LIMIT: i64 = 5;

/// Bound on field-advance steps, a guard where upstream spins forever (a zone that skipped
/// a whole day, e.g. Pacific/Apia on 2011-12-30). A real search needs a few thousand: one
/// step per non-matching day over five years, plus under 150 per candidate day.
const MAX_STEPS: u32 = 100_000;

/// A time being advanced: an instant and the zone its fields are read in.
#[derive(Clone, Copy)]
struct Cursor {
    secs: i64,
    loc: Location,
}

impl Cursor {
    fn civil(self) -> Civil {
        self.loc.civil(self.secs)
    }

    /// Go's `time.Date(..)` in the cursor's zone.
    fn date(self, year: i64, month: i64, day: i64, hour: i64) -> Option<Cursor> {
        let local = local_secs(year, month, day, hour, 0, 0)?;
        Some(Cursor {
            secs: self.loc.instant_of_local(local),
            loc: self.loc,
        })
    }

    /// Go's `t.AddDate(0, months, days)`: calendar fields moved, clock kept.
    fn add_date(self, months: i64, days: i64) -> Option<Cursor> {
        let c = self.civil();
        let local = local_secs(
            c.year,
            i64::from(c.month) + months,
            i64::from(c.day) + days,
            i64::from(c.hour),
            i64::from(c.minute),
            i64::from(c.second),
        )?;
        Some(Cursor {
            secs: self.loc.instant_of_local(local),
            loc: self.loc,
        })
    }

    fn add_secs(self, secs: i64) -> Option<Cursor> {
        Some(Cursor {
            secs: self.secs.checked_add(secs)?,
            loc: self.loc,
        })
    }

    /// Go's `t.Truncate(d)` for whole seconds: on absolute time, not the wall clock.
    fn truncate(self, secs: i64) -> Cursor {
        Cursor {
            secs: self.secs - self.secs.rem_euclid(secs),
            loc: self.loc,
        }
    }
}

fn has(bits: u64, value: u32) -> bool {
    bits & (1 << value) != 0
}

fn day_matches(s: &SpecSchedule, c: &Civil) -> bool {
    let dom = has(s.dom, c.day);
    let dow = has(s.dow, c.weekday);
    if s.dom & STAR_BIT != 0 || s.dow & STAR_BIT != 0 {
        dom && dow
    } else {
        dom || dow
    }
}

impl SpecSchedule {
    /// The first activation strictly after `t` (from the next whole second), or `None` when
    /// nothing matches within five years.
    pub fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let secs = self.next_secs(t.timestamp())?;
        DateTime::from_timestamp(secs, 0)
    }

    fn next_secs(&self, after: i64) -> Option<i64> {
        // A field with no value at all (written as a bare comma) never matches; upstream
        // searches five years before giving up.
        // (Days are left to the search: an empty day-of-week still allows day-of-month.)
        let fields = [self.second, self.minute, self.hour, self.month];
        if fields.iter().any(|f| f & !STAR_BIT == 0) {
            return None;
        }
        // Start at the earliest possible time: the upcoming whole second.
        let mut t = Cursor {
            secs: after.checked_add(1)?,
            loc: self.location,
        };
        let mut added = false;
        let year_limit = t.civil().year + YEAR_LIMIT;
        let mut steps = 0u32;
        let mut step = || {
            steps += 1;
            (steps <= MAX_STEPS).then_some(())
        };

        'wrap: loop {
            if t.civil().year > year_limit {
                return None;
            }

            // Find the first applicable month.
            while !has(self.month, t.civil().month) {
                step()?;
                if !added {
                    added = true;
                    let c = t.civil();
                    t = t.date(c.year, i64::from(c.month), 1, 0)?;
                }
                t = t.add_date(1, 0)?;
                if t.civil().month == 1 {
                    continue 'wrap;
                }
            }

            // Find a day in that month. Where DST skips midnight the day starts at 01:00 or
            // the previous day's 23:00; nudge back to midnight.
            while !day_matches(self, &t.civil()) {
                step()?;
                if !added {
                    added = true;
                    let c = t.civil();
                    t = t.date(c.year, i64::from(c.month), i64::from(c.day), 0)?;
                }
                t = t.add_date(0, 1)?;
                let hour = i64::from(t.civil().hour);
                if hour != 0 {
                    t = if hour > 12 {
                        t.add_secs((24 - hour) * 3600)?
                    } else {
                        t.add_secs(-hour * 3600)?
                    };
                }
                if t.civil().day == 1 {
                    continue 'wrap;
                }
            }

            while !has(self.hour, t.civil().hour) {
                step()?;
                if !added {
                    added = true;
                    let c = t.civil();
                    t = t.date(
                        c.year,
                        i64::from(c.month),
                        i64::from(c.day),
                        i64::from(c.hour),
                    )?;
                }
                t = t.add_secs(3600)?;
                if t.civil().hour == 0 {
                    continue 'wrap;
                }
            }

            while !has(self.minute, t.civil().minute) {
                step()?;
                if !added {
                    added = true;
                    t = t.truncate(60);
                }
                t = t.add_secs(60)?;
                if t.civil().minute == 0 {
                    continue 'wrap;
                }
            }

            while !has(self.second, t.civil().second) {
                step()?;
                if !added {
                    added = true;
                    t = t.truncate(1);
                }
                t = t.add_secs(1)?;
                if t.civil().second == 0 {
                    continue 'wrap;
                }
            }

            return Some(t.secs);
        }
    }
}
