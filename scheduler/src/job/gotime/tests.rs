use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn rfc3339_accepts_what_go_accepts() {
    let cases: &[(&str, &str)] = &[
        ("2024-04-24T11:42:22Z", "2024-04-24T11:42:22Z"),
        ("2024-04-24T11:42:22+02:00", "2024-04-24T09:42:22Z"),
        ("2024-04-24T11:42:22-07:30", "2024-04-24T19:12:22Z"),
        ("2024-04-24T11:42:22.5Z", "2024-04-24T11:42:22.500Z"),
        (
            "2024-04-24T11:42:22.123456789Z",
            "2024-04-24T11:42:22.123456789Z",
        ),
        // More than nine fraction digits: the rest are dropped.
        (
            "2024-04-24T11:42:22.1234567891234Z",
            "2024-04-24T11:42:22.123456789Z",
        ),
        // Go's general parser: comma separator, one-digit hour, offset up to 24:60.
        ("2024-04-24T11:42:22,25Z", "2024-04-24T11:42:22.250Z"),
        ("2024-04-24T1:42:22Z", "2024-04-24T01:42:22Z"),
        ("2024-04-24T11:42:22+24:00", "2024-04-23T11:42:22Z"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ];
    for (input, want) in cases {
        assert_eq!(parse_rfc3339(input), Some(utc(want)), "{input}");
    }
}

#[test]
fn rfc3339_rejects_what_go_rejects() {
    for bad in [
        "",
        "2024-04-24",
        "2024-04-24 11:42:22Z",
        "2024-04-24t11:42:22Z",
        "2024-04-24T11:42:22z",
        "2024-04-24T11:42:22",
        "2024-04-24T11:42:60Z",
        "2024-04-24T24:00:00Z",
        "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-4-24T11:42:22Z",
        "24-04-24T11:42:22Z",
        "2024-04-24T11:42:22+0200",
        "2024-04-24T11:42:22+25:00",
        "2024-04-24T11:42:22Zjunk",
        "2024-04-24T11:42:22.Z",
        "10000-01-01T00:00:00Z",
        "2024-04-24T11:42:22€",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn add_date_normalises_like_go() {
    let t = utc("2024-01-31T10:00:00.25Z");
    assert_eq!(add_date(t, 0, 1, 0), Some(utc("2024-03-02T10:00:00.25Z")));
    assert_eq!(add_date(t, 1, 1, 0), Some(utc("2025-03-03T10:00:00.25Z")));
    assert_eq!(add_date(t, 0, 0, 366), Some(utc("2025-01-31T10:00:00.25Z")));
    assert_eq!(add_date(t, 0, -13, 0), Some(utc("2022-12-31T10:00:00.25Z")));
    let leap = utc("2024-02-29T00:00:00Z");
    assert_eq!(add_date(leap, 1, 0, 0), Some(utc("2025-03-01T00:00:00Z")));
    assert_eq!(add_date(leap, 4, 0, 0), Some(utc("2028-02-29T00:00:00Z")));
    // Far outside chrono's range: no panic, no time.
    assert_eq!(add_date(t, i64::MAX, 0, 0), None);
    assert_eq!(add_date(t, 0, 0, i64::MIN), None);
}

#[test]
fn civil_fields_round_trip() {
    for secs in [
        -62_167_219_200i64, // 0000-01-01
        -1,
        0,
        951_782_400, // 2000-02-29
        1_709_164_800,
        253_402_300_799, // 9999-12-31T23:59:59
    ] {
        let c = Civil::from_local_secs(secs);
        let back = local_secs(
            c.year,
            i64::from(c.month),
            i64::from(c.day),
            i64::from(c.hour),
            i64::from(c.minute),
            i64::from(c.second),
        );
        assert_eq!(back, Some(secs));
        let chrono = DateTime::from_timestamp(secs, 0).unwrap();
        assert_eq!(
            c.weekday,
            chrono::Datelike::weekday(&chrono).num_days_from_sunday()
        );
    }
}

#[test]
fn go_date_resolves_dst_gaps_and_overlaps_like_go() {
    let ny = Location::Zone(chrono_tz::America::New_York);
    // 2012-03-11 02:30 does not exist in New York; Go's time.Date gives 01:30 EST
    // (checked with go1.26: `time.Date(2012, 3, 11, 2, 30, 0, 0, ny).UTC()`).
    let local = local_secs(2012, 3, 11, 2, 30, 0).unwrap();
    assert_eq!(
        ny.instant_of_local(local),
        utc("2012-03-11T06:30:00Z").timestamp()
    );
    // 2012-11-04 01:30 happens twice; Go's time.Date gives the EDT (first) one.
    let local = local_secs(2012, 11, 4, 1, 30, 0).unwrap();
    assert_eq!(
        ny.instant_of_local(local),
        utc("2012-11-04T05:30:00Z").timestamp()
    );
    assert_eq!(Location::Utc.instant_of_local(local), local);
}
