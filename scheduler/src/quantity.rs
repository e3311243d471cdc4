//! `--etcd-space-quota`: a Kubernetes quantity (`9.2E`, `16Mi`, `2G`, `1e9`) read the way
//! upstream reads it, `resource.ParseQuantity(s)` then `AsInt64()` (k8s.io/apimachinery).
//!
//! `AsInt64` only succeeds for values held exactly as an int64 with a non-negative decimal scale;
//! anything else (fractions of a byte, values past int64, inputs needing arbitrary precision)
//! yields 0, which etcd reads as "use the default quota". That quirk is kept.

/// Why a quantity does not parse; the messages are apimachinery's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// apimachinery's `maxInt64Factors`: decimal digits an int64 can always hold.
const MAX_INT64_FACTORS: i32 = 18;
/// The smallest decimal scale kept in the int64 fast path (nano).
const MIN_FAST_SCALE: i32 = -9;

enum Suffix {
    /// `value * 10^exponent`
    Decimal(i32),
    /// `value * 2^exponent`
    Binary(u32),
}

/// Parses `s` as a quantity and returns `AsInt64()` of it (0 when not exactly an int64).
pub fn parse_as_int64(s: &str) -> Result<i64, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    if s == "0" {
        return Ok(0);
    }
    let parts = split(s)?;
    let suffix = interpret(parts.suffix).ok_or(QuantityError::Suffix)?;
    if !parts.has_digits {
        // Every quantity without digits is zero (`.`, `+`, `-.5`'s cousins without digits).
        return Ok(0);
    }
    let (mantissa, scale, precision) = match suffix {
        Suffix::Decimal(exponent) => (
            1i64,
            exponent,
            MAX_INT64_FACTORS - (parts.num.len() + parts.denom.len()) as i32,
        ),
        Suffix::Binary(exponent) if parts.denom.is_empty() => {
            let precision = 15 - parts.num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
            (1i64 << exponent, 0, precision)
        }
        Suffix::Binary(_) => (1, 0, -1),
    };
    if precision < 0 {
        // apimachinery falls back to an arbitrary-precision decimal, which `AsInt64` refuses.
        return Ok(0);
    }
    let scale = scale - parts.denom.len() as i32;
    if scale < MIN_FAST_SCALE {
        return Ok(0);
    }
    let shifted: i64 = format!("{}{}", parts.num, parts.denom)
        .parse()
        .map_err(|_| QuantityError::Numeric)?;
    let Some(mut value) = shifted.checked_mul(mantissa) else {
        return Ok(0);
    };
    if !parts.positive {
        value = -value;
    }
    match scale {
        0 => Ok(value),
        s if s < 0 => Ok(0),
        s => Ok((0..s)
            .try_fold(value, |v, _| v.checked_mul(10))
            .unwrap_or(0)),
    }
}

struct Parts<'a> {
    positive: bool,
    /// Integer digits without leading zeros ("0" when there are none).
    num: &'a str,
    /// Fraction digits (may be empty).
    denom: &'a str,
    suffix: &'a str,
    has_digits: bool,
}

/// apimachinery's `parseQuantityString`.
fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut positive = true;
    match bytes.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < bytes.len() && bytes[pos] == b'0' {
        pos += 1;
    }
    let had_zeros = pos > usize::from(!positive || bytes[0] == b'+');
    let digits_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(bytes.len(), |i| from + i)
    };
    let num_end = digits_end(pos);
    let mut num = &s[pos..num_end];
    let has_num_digits = !num.is_empty() || had_zeros;
    if num.is_empty() {
        num = "0";
    }
    pos = num_end;
    let mut denom = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        let end = digits_end(pos + 1);
        denom = &s[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && (bytes[pos] == b'-' || bytes[pos] == b'+') {
        pos += 1;
    }
    if digits_end(pos) != bytes.len() {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
        has_digits: has_num_digits || !denom.is_empty(),
    })
}

/// apimachinery's `suffixHandler.interpret`.
fn interpret(suffix: &str) -> Option<Suffix> {
    let decimal = |e| Some(Suffix::Decimal(e));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Some(Suffix::Binary(10)),
        "Mi" => Some(Suffix::Binary(20)),
        "Gi" => Some(Suffix::Binary(30)),
        "Ti" => Some(Suffix::Binary(40)),
        "Pi" => Some(Suffix::Binary(50)),
        "Ei" => Some(Suffix::Binary(60)),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let exponent: i64 = s[1..].parse().ok()?;
            decimal(i32::try_from(exponent).ok()?)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_default_is_nine_point_two_exabytes() {
        assert_eq!(parse_as_int64("9.2E"), Ok(9_200_000_000_000_000_000));
    }

    #[test]
    fn binary_and_decimal_suffixes_scale_the_value() {
        assert_eq!(parse_as_int64("16Mi"), Ok(16 << 20));
        assert_eq!(parse_as_int64("16Gi"), Ok(16 << 30));
        assert_eq!(parse_as_int64("2G"), Ok(2_000_000_000));
        assert_eq!(parse_as_int64("1e9"), Ok(1_000_000_000));
        assert_eq!(parse_as_int64("1.5k"), Ok(1_500));
        assert_eq!(parse_as_int64("+100"), Ok(100));
        assert_eq!(parse_as_int64("-1k"), Ok(-1_000));
        assert_eq!(parse_as_int64("0"), Ok(0));
        assert_eq!(parse_as_int64("007"), Ok(7));
    }

    #[test]
    fn values_as_int64_cannot_hold_exactly_read_as_zero() {
        // Fractions of a byte, overflow and the arbitrary-precision fallback, as apimachinery.
        assert_eq!(parse_as_int64("1.5"), Ok(0));
        assert_eq!(parse_as_int64("500m"), Ok(0));
        assert_eq!(parse_as_int64("10E"), Ok(0));
        assert_eq!(parse_as_int64("1Ei"), Ok(0));
        assert_eq!(parse_as_int64("1.5Gi"), Ok(0));
        // A suffix without digits is a valid zero for apimachinery.
        assert_eq!(parse_as_int64("Gi"), Ok(0));
    }

    #[test]
    fn malformed_quantities_get_apimachinerys_messages() {
        for bad in ["", "abc", "1x", "1Q", "1 Gi"] {
            assert_eq!(
                parse_as_int64(bad),
                Err(QuantityError::FormatWrong),
                "{bad:?}"
            );
        }
        for bad in ["1KK", "1e", "1iK", "1e-x1"] {
            assert!(parse_as_int64(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_as_int64("1KK"), Err(QuantityError::Suffix));
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }
}
