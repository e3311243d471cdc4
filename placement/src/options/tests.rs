use std::time::Duration;

use super::*;

fn try_parse(args: &[&str]) -> Result<Options, clap::Error> {
    dapr_flags::try_parse_from::<Options, _, _>(
        std::iter::once("placement").chain(args.iter().copied()),
    )
}

fn parse(args: &[&str]) -> Options {
    try_parse(args).unwrap()
}

#[test]
fn defaults_match_upstream() {
    let o = parse(&[]);
    assert_eq!(o.id, "dapr-placement-0");
    assert_eq!(o.initial_cluster, ["dapr-placement-0=127.0.0.1:8201"]);
    assert!(o.inmem_store_enabled);
    assert_eq!(o.raft_logstore_path, "");
    assert_eq!(o.port, 50005);
    assert_eq!(o.listen_address, "");
    assert_eq!(o.healthz.healthz_port, 8080);
    assert_eq!(o.healthz.healthz_listen_address, "");
    assert!(!o.tls_enabled);
    assert_eq!(o.metadata_enabled, None);
    assert_eq!(o.replication_factor, 100);
    assert_eq!(o.keepalive_time.get(), Duration::from_secs(2));
    assert_eq!(o.keepalive_timeout.get(), Duration::from_secs(3));
    assert_eq!(o.disseminate_timeout.get(), Duration::from_secs(8));
    assert_eq!(o.disseminate_coalesce_window.get(), Duration::ZERO);
    assert_eq!(o.trust.trust_domain, "localhost");
    assert_eq!(
        o.trust.trust_anchors_file_or_default(),
        "/var/run/secrets/dapr.io/tls/ca.crt"
    );
    assert_eq!(
        o.trust.sentry_address_or_default("default"),
        "dapr-sentry.default.svc:443"
    );
    assert_eq!(o.mode, "standalone");
    assert_eq!(o.run_mode(), Mode::Standalone);
    assert_eq!((o.max_api_level, o.min_api_level), (None, None));
    assert_eq!(o.log.log_level, "info");
    assert!(o.metrics.enable_metrics);
    assert_eq!(o.metrics.port(), Ok(9090));
    assert!(o.deprecation_notices().is_empty());
    assert!(o.legacy_flags_given().is_empty());
    assert_eq!(o.validate(), Ok(()));
}

#[test]
fn the_integration_harness_command_line_parses() {
    let o = parse(&[
        "--log-level=debug",
        "--id=p1",
        "--port=40001",
        "--listen-address=127.0.0.1",
        "--healthz-port=40002",
        "--healthz-listen-address=127.0.0.1",
        "--metrics-port=40003",
        "--metrics-listen-address=127.0.0.1",
        "--initial-cluster=p1=localhost:40011,p2=localhost:40012,p3=localhost:40013",
        "--tls-enabled=false",
        "--metadata-enabled=true",
        "--max-api-level=20",
        "--min-api-level=10",
        "--sentry-address=localhost:40020",
        "--trust-anchors-file=/tmp/ca.pem",
        "--trust-domain=integration.test.dapr.io",
        "--mode=standalone",
        "--disseminate-timeout=1s",
        "--disseminate-coalesce-window=500ms",
    ]);
    assert_eq!(o.log.log_level, "debug");
    assert_eq!(o.id, "p1");
    assert_eq!(o.port, 40001);
    assert_eq!(o.listen_address, "127.0.0.1");
    assert_eq!(o.healthz.healthz_port, 40002);
    assert_eq!(o.metrics.port(), Ok(40003));
    assert_eq!(
        o.initial_cluster,
        [
            "p1=localhost:40011",
            "p2=localhost:40012",
            "p3=localhost:40013"
        ]
    );
    assert!(!o.tls_enabled);
    assert_eq!(o.metadata_enabled, Some(true));
    assert!(o.metadata_enabled_or_env());
    assert_eq!((o.max_api_level, o.min_api_level), (Some(20), Some(10)));
    assert_eq!(o.trust.sentry_address.as_deref(), Some("localhost:40020"));
    assert_eq!(o.trust.trust_domain, "integration.test.dapr.io");
    assert_eq!(o.disseminate_timeout.get(), Duration::from_secs(1));
    assert_eq!(
        o.disseminate_coalesce_window.get(),
        Duration::from_millis(500)
    );
    assert_eq!(o.validate(), Ok(()));
}

#[test]
fn the_single_dash_form_of_the_harness_parses() {
    let o = parse(&[
        "-log-level=debug",
        "-id=3b0c0a5e-0",
        "-port=40001",
        "-healthz-port=40002",
        "-metrics-port=40003",
        "-listen-address=127.0.0.1",
        "-healthz-listen-address=127.0.0.1",
        "-metrics-listen-address=127.0.0.1",
        "-initial-cluster=3b0c0a5e-0=127.0.0.1:40004",
        "-tls-enabled=true",
        "-metadata-enabled=true",
    ]);
    assert_eq!(o.id, "3b0c0a5e-0");
    assert_eq!(o.initial_cluster, ["3b0c0a5e-0=127.0.0.1:40004"]);
    assert!(o.tls_enabled);
    assert_eq!(o.healthz.healthz_listen_address, "127.0.0.1");
}

#[test]
fn the_helm_chart_command_line_parses() {
    let o = parse(&[
        "--id",
        "dapr-placement-server-1",
        "--initial-cluster",
        "dapr-placement-server-0=dapr-placement-server-0.dapr-placement-server.dapr-system.svc.cluster.local:8201,\
         dapr-placement-server-1=dapr-placement-server-1.dapr-placement-server.dapr-system.svc.cluster.local:8201,\
         dapr-placement-server-2=dapr-placement-server-2.dapr-placement-server.dapr-system.svc.cluster.local:8201",
        "--raft-logstore-path",
        "/var/run/dapr/raft-log/cluster-v2-nonroot-dapr-placement-server-1",
        "--log-level",
        "info",
        "--log-as-json",
        "--metadata-enabled",
        "--replicationFactor=100",
        "--max-api-level=10",
        "--min-api-level=0",
        "--keepalive-time=2s",
        "--keepalive-timeout=3s",
        "--disseminate-timeout=8s",
        "--disseminate-coalesce-window=0s",
        "--enable-metrics",
        "--metrics-port",
        "9090",
        "--tls-enabled",
        "--trust-domain=cluster.local",
        "--trust-anchors-file=/var/run/secrets/dapr.io/tls/ca.crt",
        "--sentry-address=dapr-sentry.dapr-system.svc.cluster.local:443",
        "--mode=kubernetes",
    ]);
    assert_eq!(o.id, "dapr-placement-server-1");
    assert_eq!(o.initial_cluster.len(), 3);
    assert!(o.initial_cluster[1].starts_with("dapr-placement-server-1=dapr-placement-server-1."));
    assert!(o.log.log_as_json);
    assert_eq!(o.metadata_enabled, Some(true));
    assert_eq!(o.replication_factor, 100);
    assert!(o.metrics.enable_metrics);
    assert!(o.tls_enabled);
    assert_eq!(o.run_mode(), Mode::Kubernetes);
    assert_eq!(
        o.legacy_flags_given(),
        ["--raft-logstore-path", "--max-api-level", "--min-api-level"]
    );
    assert_eq!(o.validate(), Ok(()));
}

#[test]
fn the_non_ha_chart_with_metrics_disabled_keeps_the_default_cluster() {
    let o = parse(&[
        "--log-level",
        "info",
        "--replicationFactor=100",
        "--enable-metrics=false",
    ]);
    assert!(!o.metrics.enable_metrics);
    assert_eq!(o.initial_cluster, ["dapr-placement-0=127.0.0.1:8201"]);
}

#[test]
fn repeated_initial_cluster_flags_append_after_replacing_the_default() {
    let o = parse(&[
        "--initial-cluster=a=h:1",
        "--initial-cluster",
        "b=h:2,c=h:3",
    ]);
    assert_eq!(o.initial_cluster, ["a=h:1", "b=h:2", "c=h:3"]);
}

#[test]
fn keepalive_bounds_are_checked_in_upstreams_order_with_its_messages() {
    assert_eq!(
        parse(&["--keepalive-time=500ms", "--keepalive-timeout=11s"])
            .validate()
            .unwrap_err()
            .to_string(),
        "invalid value for keepalive-time: value should be between 1s and 10s, got 500ms"
    );
    assert_eq!(
        parse(&["--keepalive-timeout=1m"])
            .validate()
            .unwrap_err()
            .to_string(),
        "invalid value for keepalive-timeout: value should be between 1s and 10s, got 1m0s"
    );
    assert_eq!(
        parse(&["--keepalive-time=1s", "--keepalive-timeout=10s"]).validate(),
        Ok(())
    );
}

#[test]
fn unparsable_values_and_unknown_flags_are_usage_errors() {
    for args in [
        &["--port=x"][..],
        &["--keepalive-time=5"],
        &["--tls-enabled=maybe"],
        &["--replica-count=3"],
    ] {
        let err = try_parse(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn a_bool_followed_by_a_separate_false_stays_true_and_false_is_positional() {
    let o = parse(&["--tls-enabled", "false"]);
    assert!(o.tls_enabled);
    assert_eq!(o.ignored_args, ["false"]);
}

#[test]
fn deprecated_api_level_flags_print_pflags_notice() {
    assert_eq!(
        parse(&["--max-api-level=10"]).deprecation_notices(),
        ["Flag --max-api-level has been deprecated, this flag will be removed in future releases"]
    );
}

#[test]
fn truthiness_follows_dapr_kit() {
    for yes in ["y", "YES", " true ", "t", "On", "1"] {
        assert!(is_truthy(yes), "{yes:?}");
    }
    for no in ["", "0", "false", "no", "enabled"] {
        assert!(!is_truthy(no), "{no:?}");
    }
}
