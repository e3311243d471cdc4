use std::{fmt, str::FromStr, time::Duration};

/// A duration written in Go's `time.ParseDuration` syntax (`24h`, `2h0m0s`, `1.5s`, `300ms`).
///
/// Negative durations are rejected: no control-plane flag gives them a meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

/// Why a duration string is not valid Go syntax.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseDurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("time: invalid duration {0:?}: overflow")]
    Overflow(String),
    #[error("negative duration {0:?} is not allowed here")]
    Negative(String),
}

impl GoDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Self {
        d.0
    }
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

impl FromStr for GoDuration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseDurationError::Invalid(input.to_owned());
        let (negative, mut rest) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            _ => (false, input),
        };
        if rest == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if rest.is_empty() {
            return Err(invalid());
        }
        // Total in nanoseconds, kept as a float-free fixed-point sum.
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let int_part = &rest[..int_end];
            rest = &rest[int_end..];
            let mut frac_part = "";
            if let Some(after_dot) = rest.strip_prefix('.') {
                let frac_end = after_dot
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after_dot.len());
                frac_part = &after_dot[..frac_end];
                rest = &after_dot[frac_end..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_end = rest
                .find(|c: char| c == '.' || c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_end];
            rest = &rest[unit_end..];
            if unit.is_empty() {
                return Err(ParseDurationError::MissingUnit(input.to_owned()));
            }
            let scale = unit_nanos(unit).ok_or_else(|| ParseDurationError::UnknownUnit {
                unit: unit.to_owned(),
                input: input.to_owned(),
            })?;
            let overflow = || ParseDurationError::Overflow(input.to_owned());
            let whole: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| overflow())?
            };
            let mut value = whole.checked_mul(scale).ok_or_else(overflow)?;
            // Fractional digits beyond nanosecond precision are dropped, as Go does.
            let mut frac_scale = scale;
            for digit in frac_part.bytes() {
                frac_scale /= 10;
                if frac_scale == 0 {
                    break;
                }
                value += u128::from(digit - b'0') * frac_scale;
            }
            total = total.checked_add(value).ok_or_else(overflow)?;
            if total > i64::MAX as u128 {
                return Err(overflow());
            }
        }
        if negative && total != 0 {
            return Err(ParseDurationError::Negative(input.to_owned()));
        }
        let nanos =
            u64::try_from(total).map_err(|_| ParseDurationError::Overflow(input.to_owned()))?;
        Ok(Self(Duration::from_nanos(nanos)))
    }
}

impl fmt::Display for GoDuration {
    /// Formats as Go's `Duration.String` does (`24h0m0s`, `1.5s`, `300ms`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000_000_000 {
            let (unit, scale) = if nanos < 1_000 {
                ("ns", 1)
            } else if nanos < 1_000_000 {
                ("\u{b5}s", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{}{unit}", fixed(nanos, scale));
        }
        let secs_total = nanos / 1_000_000_000;
        let sub = nanos % 1_000_000_000;
        let hours = secs_total / 3600;
        let minutes = (secs_total % 3600) / 60;
        let secs = secs_total % 60;
        if hours > 0 {
            write!(f, "{hours}h{minutes}m")?;
        } else if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write!(f, "{}s", fixed(secs * 1_000_000_000 + sub, 1_000_000_000))
    }
}

/// `value / scale` as a decimal with trailing zeros trimmed.
fn fixed(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        s.parse::<GoDuration>().unwrap().0
    }

    #[test]
    fn go_duration_syntax_parses() {
        assert_eq!(d("24h"), Duration::from_secs(86_400));
        assert_eq!(d("2h0m0s"), Duration::from_secs(7_200));
        assert_eq!(d("1.5s"), Duration::from_millis(1_500));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("10\u{b5}s"), Duration::from_micros(10));
        assert_eq!(d(".5h"), Duration::from_secs(1_800));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("+5s"), Duration::from_secs(5));
        assert_eq!(d("-0s"), Duration::ZERO);
    }

    #[test]
    fn malformed_durations_are_rejected_with_go_messages() {
        assert_eq!(
            "5".parse::<GoDuration>(),
            Err(ParseDurationError::MissingUnit("5".into()))
        );
        assert!(matches!(
            "5x".parse::<GoDuration>(),
            Err(ParseDurationError::UnknownUnit { .. })
        ));
        for bad in ["", "h", ".s", "-", "1..5s", "s5"] {
            assert!(bad.parse::<GoDuration>().is_err(), "{bad:?}");
        }
        assert!(matches!(
            "-5s".parse::<GoDuration>(),
            Err(ParseDurationError::Negative(_))
        ));
        assert!(matches!(
            "9999999999999h".parse::<GoDuration>(),
            Err(ParseDurationError::Overflow(_))
        ));
    }

    #[test]
    fn display_matches_go_duration_string() {
        for (input, shown) in [
            ("24h", "24h0m0s"),
            ("90s", "1m30s"),
            ("1.5s", "1.5s"),
            ("300ms", "300ms"),
            ("0", "0s"),
            ("2m", "2m0s"),
            ("1500us", "1.5ms"),
        ] {
            assert_eq!(input.parse::<GoDuration>().unwrap().to_string(), shown);
        }
    }
}
