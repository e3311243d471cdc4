//! Ports of the Go standard-library routines whose acceptance rules and error texts leak
//! through the scheduler API: `strconv.Quote` (the `%q` verb), `strconv.Atoi`, and
//! `time.ParseDuration` with the `time` package's own quoting.
//!
//! Upstream validates schedules, due times and TTLs with these routines and returns their
//! errors verbatim to daprd, so the texts are part of the wire behaviour.

use std::fmt::Write as _;

/// Go's `strconv.Quote`, used by the `%q` verb: ASCII printables as is, `"` and `\`
/// escaped, C escapes for the usual controls, `\xNN` for other ASCII controls and `\u`/`\U`
/// for other non-printable runes (lower-case hex).
///
/// Go decides "printable" with `unicode.IsPrint`; Rust's std has no general-category table,
/// so non-printable is approximated as control characters, whitespace other than U+0020,
/// the common format (Cf) characters and private-use code points.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_print(c) => out.push(c),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximation of Go's `unicode.IsPrint` (see [`quote`]).
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(
        u,
        0xad | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xd800..=0xdfff
            | 0xe000..=0xf8ff
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
            | 0xf0000..
    )
}

/// The `time` package's private `quote`: like `strconv.Quote` for printable ASCII, but every
/// byte of a non-ASCII or control character is written as `\xNN` (DEL passes through).
pub(crate) fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Why `strconv.Atoi` rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtoiErrorKind {
    Syntax,
    Range,
}

/// A `strconv.Atoi` failure; displays as Go's `*strconv.NumError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AtoiError {
    input: String,
    kind: AtoiErrorKind,
}

impl AtoiError {
    #[cfg(test)]
    pub(crate) fn kind(&self) -> AtoiErrorKind {
        self.kind
    }
}

impl std::fmt::Display for AtoiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.kind {
            AtoiErrorKind::Syntax => "invalid syntax",
            AtoiErrorKind::Range => "value out of range",
        };
        write!(f, "strconv.Atoi: parsing {}: {why}", quote(&self.input))
    }
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional `+`/`-`, then ASCII decimal digits
/// only (no underscores), range of `int64`.
pub(crate) fn atoi(s: &str) -> Result<i64, AtoiError> {
    let err = |kind| AtoiError {
        input: s.to_owned(),
        kind,
    };
    let bytes = s.as_bytes();
    let (neg, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return Err(err(AtoiErrorKind::Syntax));
    }
    // Like `strconv.ParseUint`, report the first problem met from the left: a bad digit is
    // a syntax error, overflowing before it a range error.
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(err(AtoiErrorKind::Syntax));
        }
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
        {
            Some(n) => n,
            None => return Err(err(AtoiErrorKind::Range)),
        };
    }
    const CUTOFF: u64 = 1 << 63;
    if neg {
        if n > CUTOFF {
            return Err(err(AtoiErrorKind::Range));
        }
        // `n` is at most 2^63 here, so the negation fits.
        Ok((n as i64).wrapping_neg())
    } else if n >= CUTOFF {
        Err(err(AtoiErrorKind::Range))
    } else {
        Ok(n as i64)
    }
}

/// A `time.ParseDuration` failure; displays exactly as Go's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    message: String,
    value: String,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "time: {} {}", self.message, time_quote(&self.value))
    }
}

impl std::error::Error for DurationError {}

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers, each with an optional
/// fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `-1.5s`,
/// `0`. Returns nanoseconds.
pub fn parse_duration(orig: &str) -> Result<i64, DurationError> {
    let invalid = |message: &str| DurationError {
        message: message.to_owned(),
        value: orig.to_owned(),
    };
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid("invalid duration"));
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid("invalid duration"));
        }
        // Consume [0-9]*.
        let before = s.len();
        let (v, rest) = leading_int(s).ok_or_else(|| invalid("invalid duration"))?;
        s = rest;
        let pre = before != s.len();
        // Consume (\.[0-9]*)?.
        let mut post = false;
        let (mut f, mut scale) = (0u64, 1f64);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (ff, sc, rest) = leading_fraction(s);
            (f, scale, s) = (ff, sc, rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid("invalid duration"));
        }
        // Consume the unit: everything up to the next '.' or digit.
        let i = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(invalid("missing unit in duration"));
        }
        let (u, rest) = s.split_at(i);
        s = rest;
        let unit: u64 = match u {
            b"ns" => 1,
            // U+00B5 (micro sign) and U+03BC (Greek mu), as UTF-8.
            b"us" | [0xc2, 0xb5, b's'] | [0xce, 0xbc, b's'] => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                // The unit ends at an ASCII byte or the end, so it is valid UTF-8.
                let u = String::from_utf8_lossy(u);
                return Err(invalid(&format!(
                    "unknown unit {} in duration",
                    time_quote(&u)
                )));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid("invalid duration"));
        }
        let mut v = v * unit;
        if f > 0 {
            // Go converts through float64 to stay nanosecond-accurate for fractions of hours.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid("invalid duration"));
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid("invalid duration"));
        }
    }
    if neg {
        // `d` is at most 2^63, so this is `-d` without overflow.
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid("invalid duration"));
    }
    Ok(d as i64)
}

/// Go's `leadingInt`: consume leading digits; `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1u64 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `leadingFraction`: consume leading digits, keeping precision while it fits.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let c = s[i];
        i += 1;
        if overflow {
            continue;
        }
        if x > ((1u64 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

#[cfg(test)]
mod tests;
