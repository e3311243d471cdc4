use super::*;

const NS: i64 = 1;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

#[test]
fn parse_duration_accepts_go_durations() {
    // Go `src/time/time_test.go` parseDurationTests.
    let cases: &[(&str, i64)] = &[
        ("0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", S),
        ("1.00s", S),
        ("1.004s", S + 4 * MS),
        ("1.0040s", S + 4 * MS),
        ("100.00100s", 100 * S + MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12µs", 12 * US),
        ("12μs", 12 * US),
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * M),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * M),
        ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        (
            "1h2m3s4ms5us6ns",
            H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
        ),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000),
        ("0.3333333333333333333h", 20 * M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036s854ms775us807ns", i64::MAX),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("-9223372036s854ms775us808ns", i64::MIN),
        ("-2562047h47m16.854775808s", i64::MIN),
        ("0.100000000000000000000h", 6 * M),
        ("0.830103483285477580700h", 49 * M + 48 * S + 372539827),
        // Forms the scheduler sees (spec §7.1).
        ("0h0m9s0ms", 9 * S),
        ("1ms", MS),
        ("0m", 0),
    ];
    for (input, want) in cases {
        assert_eq!(parse_duration(input), Ok(*want), "{input}");
    }
}

#[test]
fn parse_duration_rejects_with_go_error_texts() {
    // Go `src/time/time_test.go` parseDurationErrorTests, plus the exact message prefixes.
    let cases: &[(&str, &str)] = &[
        ("", r#"time: invalid duration """#),
        ("3", r#"time: missing unit in duration "3""#),
        ("-", r#"time: invalid duration "-""#),
        ("s", r#"time: invalid duration "s""#),
        (".", r#"time: invalid duration ".""#),
        ("-.", r#"time: invalid duration "-.""#),
        (".s", r#"time: invalid duration ".s""#),
        ("+.s", r#"time: invalid duration "+.s""#),
        ("1d", r#"time: unknown unit "d" in duration "1d""#),
        ("\u{FFFD}", r#"time: invalid duration "\xef\xbf\xbd""#),
        (
            "9223372036854775810ns",
            r#"time: invalid duration "9223372036854775810ns""#,
        ),
        (
            "9223372036854775808ns",
            r#"time: invalid duration "9223372036854775808ns""#,
        ),
        (
            "-9223372036854775809ns",
            r#"time: invalid duration "-9223372036854775809ns""#,
        ),
        (
            "9223372036854776us",
            r#"time: invalid duration "9223372036854776us""#,
        ),
        ("3000000h", r#"time: invalid duration "3000000h""#),
        (
            "9223372036854775.808us",
            r#"time: invalid duration "9223372036854775.808us""#,
        ),
        (
            "1é",
            r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#,
        ),
        ("Xm", r#"time: invalid duration "Xm""#),
    ];
    for (input, want) in cases {
        let err = parse_duration(input).expect_err(input);
        assert_eq!(err.to_string(), *want, "{input}");
    }
}

#[test]
fn atoi_matches_strconv() {
    assert_eq!(atoi("0").ok(), Some(0));
    assert_eq!(atoi("+5").ok(), Some(5));
    assert_eq!(atoi("-12").ok(), Some(-12));
    assert_eq!(atoi("007").ok(), Some(7));
    assert_eq!(atoi("9223372036854775807").ok(), Some(i64::MAX));
    assert_eq!(atoi("-9223372036854775808").ok(), Some(i64::MIN));
    for bad in ["", "+", "-", "1_000", " 1", "1 ", "0x10", "1e3", "١"] {
        assert_eq!(
            atoi(bad).unwrap_err().kind(),
            AtoiErrorKind::Syntax,
            "{bad:?}"
        );
    }
    for big in [
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999",
        // Overflow is met before the bad digit, as in strconv.ParseUint.
        "99999999999999999999x",
    ] {
        assert_eq!(atoi(big).unwrap_err().kind(), AtoiErrorKind::Range, "{big}");
    }
    assert_eq!(
        atoi("x").unwrap_err().to_string(),
        r#"strconv.Atoi: parsing "x": invalid syntax"#
    );
    assert_eq!(
        atoi("99999999999999999999").unwrap_err().to_string(),
        r#"strconv.Atoi: parsing "99999999999999999999": value out of range"#
    );
}

#[test]
fn quote_matches_strconv_quote() {
    let cases: &[(&str, &str)] = &[
        ("abc", r#""abc""#),
        ("a\"b\\c", r#""a\"b\\c""#),
        ("foo\nbar", r#""foo\nbar""#),
        ("foo\x00bar", r#""foo\x00bar""#),
        ("foo\x7fbar", r#""foo\x7fbar""#),
        ("foo\u{85}bar", r#""foo\u0085bar""#),
        ("\u{a0}", r#""\u00a0""#),
        ("café||piñata", r#""café||piñata""#),
        ("\u{e0001}", r#""\U000e0001""#),
        ("\t\u{07}\u{08}\u{0b}\u{0c}\r", r#""\t\a\b\v\f\r""#),
    ];
    for (input, want) in cases {
        assert_eq!(quote(input), *want, "{input:?}");
    }
}
