//! dapr/kit `time.ParseISO8601Duration`, quirks included: characters other than the
//! designators are skipped, numbers may be signed, `Y` and `M` (months) assign rather than
//! add, and Go's integer arithmetic wraps.

use super::go;

/// A parsed ISO 8601 duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IsoDuration {
    pub years: i64,
    pub months: i64,
    pub days: i64,
    /// Hours, minutes and seconds, in nanoseconds.
    pub nanos: i64,
    /// `R<n>/` prefix; -1 when absent.
    pub repetition: i64,
}

/// `unsupported ISO8601 duration format: ...` in kit; the engine never shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unsupported;

const HOUR: i64 = 3_600_000_000_000;
const MINUTE: i64 = 60_000_000_000;
const SECOND: i64 = 1_000_000_000;

pub(crate) fn parse(from: &str) -> Result<IsoDuration, Unsupported> {
    let b = from.as_bytes();
    let l = b.len();
    let mut out = IsoDuration {
        repetition: -1,
        ..IsoDuration::default()
    };
    if l < 2 {
        return Err(Unsupported);
    }
    let int = |s: &[u8]| -> Result<i64, Unsupported> {
        // Designators are ASCII, so slices between them are whole UTF-8 sequences.
        let s = std::str::from_utf8(s).map_err(|_| Unsupported)?;
        go::atoi(s).map_err(|_| Unsupported)
    };
    let mut i = 0;
    if b[0] == b'R' {
        // Scan to the '/' for the repetitions.
        loop {
            i += 1;
            if i == l || b[i] == b'/' {
                break;
            }
        }
        if i < 2 {
            return Err(Unsupported);
        }
        out.repetition = int(&b[1..i])?;
        i += 1;
        if i >= l {
            return Ok(out);
        }
    }
    if b[i] != b'P' {
        return Err(Unsupported);
    }
    i += 1;
    let mut start = i;
    let mut in_time = false;
    while i < l {
        let c = b[i];
        match c {
            b'T' => {
                if start != i {
                    return Err(Unsupported);
                }
                in_time = true;
                start = i + 1;
            }
            b'Y' | b'W' | b'D' => {
                if in_time || start == i {
                    return Err(Unsupported);
                }
                let n = int(&b[start..i])?;
                match c {
                    b'Y' => out.years = n,
                    b'W' => out.days = out.days.wrapping_add(n.wrapping_mul(7)),
                    _ => out.days = out.days.wrapping_add(n),
                }
                start = i + 1;
            }
            b'H' | b'S' => {
                if !in_time || start == i {
                    return Err(Unsupported);
                }
                let n = int(&b[start..i])?;
                let unit = if c == b'H' { HOUR } else { SECOND };
                out.nanos = out.nanos.wrapping_add(n.wrapping_mul(unit));
                start = i + 1;
            }
            b'M' => {
                if start == i {
                    return Err(Unsupported);
                }
                let n = int(&b[start..i])?;
                if in_time {
                    out.nanos = out.nanos.wrapping_add(n.wrapping_mul(MINUTE));
                } else {
                    out.months = n;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(years: i64, months: i64, days: i64, nanos: i64, repetition: i64) -> IsoDuration {
        IsoDuration {
            years,
            months,
            days,
            nanos,
            repetition,
        }
    }

    /// dapr/kit `time/time_test.go` TestParseISO8601Duration, plus the quirks.
    #[test]
    fn parses_like_kit() {
        let cases: &[(&str, IsoDuration)] = &[
            (
                "P1Y2M3DT4H5M6S",
                ok(1, 2, 3, 4 * HOUR + 5 * MINUTE + 6 * SECOND, -1),
            ),
            ("PT1S", ok(0, 0, 0, SECOND, -1)),
            ("P1DT2H", ok(0, 0, 1, 2 * HOUR, -1)),
            ("P2W", ok(0, 0, 14, 0, -1)),
            ("P1W3D", ok(0, 0, 10, 0, -1)),
            ("PT10M", ok(0, 0, 0, 10 * MINUTE, -1)),
            ("P10M", ok(0, 10, 0, 0, -1)),
            ("R5/PT1S", ok(0, 0, 0, SECOND, 5)),
            ("R0/PT1S", ok(0, 0, 0, SECOND, 0)),
            ("R5", ok(0, 0, 0, 0, 5)),
            ("R5/", ok(0, 0, 0, 0, 5)),
            // Quirks: unknown characters skipped, signs accepted, months assigned.
            ("PX", ok(0, 0, 0, 0, -1)),
            ("PT", ok(0, 0, 0, 0, -1)),
            ("PT1S5", ok(0, 0, 0, SECOND, -1)),
            ("PT-1S", ok(0, 0, 0, -SECOND, -1)),
            ("P1M2M", ok(0, 2, 0, 0, -1)),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(*want), "{input}");
        }
        for bad in [
            "", "P", "R", "R/PT1S", "Rx/PT1S", "1S", "PS", "P1S", "PT1D", "P1H", "P1TS", "PTM",
            "P1.5D", "XP1D",
        ] {
            assert_eq!(parse(bad), Err(Unsupported), "{bad}");
        }
    }
}
