use super::*;

const SCHREDER_ID: &str = "nexus-fire-safety-api||SmokeDetectorGroupMonitorActor||Nexus|6671cfbe7f48af247700a24b||SmokeDetectorGroupInformation";

fn app<'a>(namespace: &'a str, app_id: &'a str) -> Target<'a> {
    Target::App { namespace, app_id }
}

fn actor<'a>(namespace: &'a str, actor_type: &'a str, actor_id: &'a str) -> Target<'a> {
    Target::Actor {
        namespace,
        actor_type,
        actor_id,
    }
}

/// go-etcd-cron `internal/api/validator/validator_test.go` Test_JobName.
#[test]
fn validator_matches_upstream_test_job_name() {
    let long = "a".repeat(MAX_JOB_NAME_LEN + 1);
    for bad in [
        "",
        "/",
        "/foo/",
        "foo/",
        ".",
        "..",
        "./.",
        "foo\\bar",
        "foo#bar",
        "foo?bar",
        "foo\0bar",
        "foo\nbar",
        "foo\x7fbar",
        "foo\u{85}bar",
        &long,
    ] {
        assert!(validate_job_name(bad).is_err(), "{bad:?}");
    }
    let max = "a".repeat(MAX_JOB_NAME_LEN);
    for good in [
        "fo.o",
        "fo...o",
        &max,
        "valid",
        "||",
        "foo||",
        "||foo",
        "foo||foo",
        "foo.bar||foo",
        "foo.BAR||foo",
        "foo.BAR_f-oo||foo",
        "foo|bar",
        "my@reminder",
        "café||piñata",
        "actorreminder||dapr-tests||dapr.internal.dapr-tests.perf-workflowsapp.workflow||24b3fbad-0db5-4e81-a272-71f6018a66a6||start-4NYDFil-",
        "actorreminder||dapr-tests||SmokeDetectorActor||nexus-fire-safety-api||SmokeDetectorGroupMonitorActor||Nexus|6671cfbe7f48af247700a24b||SmokeDetectorGroupInformation||my@reminder|name",
        "aABVCD||dapr-::123:123||dapr.internal.dapr-tests.perf-  workflowsapp.workflow||24b3fbad-0db5-4e81        -a272-71f6018a66a6||start-4NYDFil-",
    ] {
        assert_eq!(validate_job_name(good), Ok(()), "{good:?}");
    }
}

#[test]
fn validator_errors_carry_upstream_texts_in_upstream_order() {
    let cases: &[(&str, &str)] = &[
        ("", "job name cannot be empty"),
        (
            "a/b",
            r#"job name is invalid "a/b": must not contain '/', '\', '#' or '?'"#,
        ),
        // Forbidden characters are checked before control characters.
        (
            "a\n#",
            r#"job name is invalid "a\n#": must not contain '/', '\', '#' or '?'"#,
        ),
        (
            "a\nb",
            r#"job name is invalid "a\nb": must not contain control characters"#,
        ),
        (
            "..",
            r#"job name is invalid "..": must not be a path traversal sequence"#,
        ),
    ];
    for (name, want) in cases {
        assert_eq!(
            validate_job_name(name).unwrap_err().to_string(),
            *want,
            "{name:?}"
        );
    }
    // 600 characters (a tested daprd case) fail on length, which is checked before content.
    let long = format!("app||default||myapp||{}/", "x".repeat(600));
    let err = validate_job_name(&long).unwrap_err().to_string();
    assert!(err.ends_with(": must be at most 512 characters"), "{err}");
    // The bound is in bytes, as Go's len().
    assert!(validate_job_name(&"é".repeat(257)).is_err());
    assert!(validate_job_name(&"é".repeat(256)).is_ok());
}

#[test]
fn delete_prefixes_are_validated_with_a_dummy_suffix() {
    assert_eq!(validate_prefix(""), Ok(()));
    assert_eq!(validate_prefix("app||ns||myapp||"), Ok(()));
    assert_eq!(validate_prefix("."), Ok(()));
    assert_eq!(
        validate_prefix("app||ns||a/").unwrap_err().to_string(),
        r#"job name is invalid "app||ns||a/a": must not contain '/', '\', '#' or '?'"#
    );
}

/// dapr `serialize_test.go` Test_buildJobName.
#[test]
fn compose_matches_upstream_build_job_name() {
    assert_eq!(
        app("myns", "myapp").compose("test"),
        "app||myns||myapp||test"
    );
    assert_eq!(
        actor("myns", "myactortype", "myactorid").compose("test"),
        "actorreminder||myns||myactortype||myactorid||test"
    );
    assert_eq!(
        job_key(&app("def", "myapp").compose("testJob")),
        "dapr/jobs/app||def||myapp||testJob"
    );
    assert_eq!(
        job_key(&actor("default-foo", "test", "test").compose("testJob")),
        "dapr/jobs/actorreminder||default-foo||test||test||testJob"
    );
    assert_eq!(
        counter_key("app||ns||appid||testJob"),
        "dapr/counters/app||ns||appid||testJob"
    );
    assert_eq!(
        name_from_job_key("dapr/jobs/app||ns||appid||testJob"),
        Some("app||ns||appid||testJob")
    );
    assert_eq!(name_from_job_key("dapr/counters/x"), None);
}

/// dapr `names_test.go` Test_PrefixFromMetadata and its round-trip test.
#[test]
fn prefix_recovers_names_containing_the_delimiter() {
    assert_eq!(
        actor("myns", "myactortype", "myactorid").prefix(),
        "actorreminder||myns||myactortype||myactorid||"
    );
    assert_eq!(app("myns", "myid").prefix(), "app||myns||myid||");
    assert_eq!(
        actor("myns", "SmokeDetectorActor", SCHREDER_ID).prefix(),
        format!("actorreminder||myns||SmokeDetectorActor||{SCHREDER_ID}||")
    );
    for (name, target) in [
        ("myremindername", actor("myns", "myactortype", "myactorid")),
        (
            "my@reminder|name",
            actor("dapr-tests", "SmokeDetectorActor", SCHREDER_ID),
        ),
        ("my|job@name", app("myns", "myappid")),
        ("a||b", app("myns", "myappid")),
    ] {
        assert_eq!(target.strip(&target.compose(name)), Some(name));
    }
    assert_eq!(app("ns", "a").strip("app||ns||b||job"), None);
}

/// dapr `serialize.go` KeyFromMetadata (ListJobs, DeleteByMetadata, DeleteByNamePrefix).
#[test]
fn range_prefixes_follow_key_from_metadata() {
    assert_eq!(app("ns", "appid").range_prefix(false), "app||ns||appid||");
    assert_eq!(app("ns", "appid").range_prefix(true), "app||ns||appid");
    assert_eq!(
        actor("ns", "type", "id").range_prefix(false),
        "actorreminder||ns||type||id||"
    );
    assert_eq!(
        actor("ns", "type", "id").range_prefix(true),
        "actorreminder||ns||type||id"
    );
    // An empty actor id lists every reminder of the type.
    assert_eq!(
        actor("ns", "type", "").range_prefix(false),
        "actorreminder||ns||type||"
    );
    assert_eq!(
        actor("ns", "type", "").range_prefix(true),
        "actorreminder||ns||type"
    );
    // With id_prefix_match, `appid` also covers `appid2`.
    assert!(
        app("ns", "appid2")
            .compose("j")
            .starts_with(&app("ns", "appid").range_prefix(true))
    );
    assert!(
        !app("ns", "appid2")
            .compose("j")
            .starts_with(&app("ns", "appid").range_prefix(false))
    );
    assert_eq!(
        namespace_prefixes("default"),
        [
            "actorreminder||default||".to_owned(),
            "app||default||".to_owned()
        ]
    );
}

/// Golden file: `N:<name>` run through go-etcd-cron v0.12.7's validator (Go 1.26), with the
/// name's escapes (`\n`, `\t`, `\x00`, `\u0085`, ...) as the harness decoded them.
#[test]
fn validator_agrees_with_upstream_on_the_golden_file() {
    const ESCAPES: &[(&str, &str)] = &[
        ("\\t", "\t"),
        ("\\n", "\n"),
        ("\\x00", "\0"),
        ("\\u0085", "\u{85}"),
        ("\\u00a0", "\u{a0}"),
        ("\\u00ad", "\u{ad}"),
        ("\\u200b", "\u{200b}"),
        ("\\ue000", "\u{e000}"),
        ("\\U000e0001", "\u{e0001}"),
    ];
    let unescape = |mut s: &str| {
        let mut out = String::new();
        'scan: while !s.is_empty() {
            for (from, to) in ESCAPES {
                if let Some(rest) = s.strip_prefix(from) {
                    out.push_str(to);
                    s = rest;
                    continue 'scan;
                }
            }
            let c = s.chars().next().unwrap();
            out.push(c);
            s = &s[c.len_utf8()..];
        }
        out
    };
    let mut n = 0;
    for line in include_str!("../testdata/names.tsv").lines() {
        let (input, want) = line.split_once('\t').unwrap();
        let name = unescape(input.strip_prefix("N:").unwrap());
        let got = match validate_job_name(&name) {
            Ok(()) => "OK".to_owned(),
            Err(e) => format!("ERR {e}"),
        };
        assert_eq!(got, want, "{input}");
        n += 1;
    }
    assert!(n > 20);
}
