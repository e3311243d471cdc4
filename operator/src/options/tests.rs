use super::*;

fn parse(args: &[&str]) -> Options {
    try_parse(args).unwrap()
}

fn try_parse(args: &[&str]) -> Result<Options, clap::Error> {
    dapr_flags::try_parse_from::<Options, _, _>(
        std::iter::once("operator").chain(args.iter().copied()),
    )
}

#[test]
fn defaults_match_upstream() {
    let o = parse(&[]);
    assert_eq!(o.config, "daprsystem");
    assert_eq!(o.watch_interval, "0");
    assert_eq!(o.max_pod_restarts_per_minute, 20);
    assert!(!o.disable_leader_election);
    assert!(!o.disable_service_reconciler);
    assert_eq!(o.watch_namespace, "");
    assert!(!o.enable_argo_rollout_service_reconciler);
    assert!(!o.watchdog_can_patch_pod_labels);
    assert_eq!(o.trust_anchors_file, "/var/run/secrets/dapr.io/tls/ca.crt");
    assert_eq!(o.port, 6500);
    assert_eq!(o.listen_address, "");
    assert_eq!(o.healthz.healthz_port, 8080);
    assert_eq!(o.healthz.healthz_listen_address, "");
    assert_eq!(o.webhook_server_port, 19443);
    assert_eq!(o.webhook_server_listen_address, "");
    assert_eq!(o.cache_sync_period.get(), Duration::ZERO);
    assert_eq!(o.log.log_level, "info");
    assert!(!o.log.log_as_json);
    assert_eq!(o.log.log_file, "");
    assert!(o.metrics.enable_metrics);
    assert_eq!(o.metrics.port(), Ok(9090));
    assert_eq!(o.metrics.metrics_listen_address, "0.0.0.0");
    assert_eq!(o.kube.kubeconfig, None);
    assert_eq!(o.validate(), Ok(Watchdog::Disabled));
}

#[test]
fn the_integration_harness_command_line_parses() {
    let o = parse(&[
        "-log-level=debug",
        "-port=40001",
        "-listen-address=127.0.0.1",
        "-healthz-port=40002",
        "-healthz-listen-address=127.0.0.1",
        "-metrics-port=40003",
        "-metrics-listen-address=127.0.0.1",
        "-trust-anchors-file=/tmp/sentry/ca.crt",
        "-disable-leader-election=true",
        "-kubeconfig=/tmp/kube/kubeconfig",
        "-webhook-server-port=40004",
        "-webhook-server-listen-address=127.0.0.1",
        "-cache-sync-period=1s",
    ]);
    assert_eq!(o.log.log_level, "debug");
    assert_eq!(o.port, 40001);
    assert_eq!(o.listen_address, "127.0.0.1");
    assert_eq!(o.healthz.healthz_port, 40002);
    assert_eq!(o.healthz.healthz_listen_address, "127.0.0.1");
    assert_eq!(o.metrics.port(), Ok(40003));
    assert_eq!(o.trust_anchors_file, "/tmp/sentry/ca.crt");
    assert!(o.disable_leader_election);
    assert_eq!(o.kube.kubeconfig.as_deref(), Some("/tmp/kube/kubeconfig"));
    assert_eq!(o.webhook_server_port, 40004);
    assert_eq!(o.webhook_server_listen_address, "127.0.0.1");
    assert_eq!(o.cache_sync_period.get(), Duration::from_secs(1));
    assert_eq!(o.validate(), Ok(Watchdog::Disabled));
}

#[test]
fn the_helm_chart_command_line_parses() {
    let o = parse(&[
        "--watch-interval",
        "0",
        "--max-pod-restarts-per-minute",
        "20",
        "--log-level",
        "info",
        "--trust-anchors-file",
        "/var/run/secrets/dapr.io/tls/ca.crt",
        "--log-as-json",
        "--enable-metrics",
        "--metrics-port",
        "9090",
        "--watch-namespace",
        "apps",
        "--disable-service-reconciler",
        "--enable-argo-rollout-service-reconciler",
        "--watchdog-can-patch-pod-labels",
    ]);
    assert!(o.log.log_as_json);
    assert!(o.metrics.enable_metrics);
    assert_eq!(o.metrics.port(), Ok(9090));
    assert_eq!(o.watch_namespace, "apps");
    assert!(o.disable_service_reconciler);
    assert!(o.enable_argo_rollout_service_reconciler);
    assert!(o.watchdog_can_patch_pod_labels);
    assert_eq!(o.validate(), Ok(Watchdog::Disabled));

    let o = parse(&["--watch-interval", "once", "--enable-metrics=false"]);
    assert!(!o.metrics.enable_metrics);
    assert_eq!(o.validate(), Ok(Watchdog::Once));
}

#[test]
fn watch_interval_spellings_follow_upstream() {
    for off in ["0", "false", "F", "No", "OFF"] {
        assert_eq!(
            parse(&[&format!("--watch-interval={off}")]).validate(),
            Ok(Watchdog::Disabled),
            "{off}"
        );
    }
    assert_eq!(
        parse(&["--watch-interval=ONCE"]).validate(),
        Ok(Watchdog::Once)
    );
    assert_eq!(
        parse(&["--watch-interval=2m"]).validate(),
        Ok(Watchdog::Every(Duration::from_secs(120)))
    );
    assert_eq!(
        parse(&["--watch-interval=1s"]).validate(),
        Ok(Watchdog::Every(Duration::from_secs(1)))
    );
}

#[test]
fn a_watch_interval_under_one_second_is_fatal_with_upstreams_message() {
    for short in ["999ms", "0s", "-5s"] {
        let err = parse(&[&format!("--watch-interval={short}")])
            .validate()
            .unwrap_err();
        assert_eq!(err, OptionsError::WatchIntervalTooShort, "{short}");
        assert_eq!(
            err.to_string(),
            "invalid watch-interval value: if not '0' or 'once', must be at least 1s"
        );
    }
}

#[test]
fn an_unparsable_watch_interval_is_fatal_with_gos_duration_error() {
    let err = parse(&["--watch-interval=soon"]).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for watch-interval: time: invalid duration \"soon\""
    );
    // Go parses the original spelling: an upper-case unit is unknown.
    let err = parse(&["--watch-interval=1M"]).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for watch-interval: time: unknown unit \"M\" in duration \"1M\""
    );
}

#[test]
fn a_missing_or_empty_namespace_is_fatal_with_upstreams_message() {
    let o = parse(&["-config=myconfig"]);
    let err = o
        .control_plane_namespace(&OperatorEnv::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error creating operator: unable to load configuration, config: myconfig, err: 'NAMESPACE' environment variable not set"
    );
    let empty = OperatorEnv {
        namespace: Some(String::new()),
        ..OperatorEnv::default()
    };
    assert_eq!(
        o.control_plane_namespace(&empty).unwrap_err().to_string(),
        "error creating operator: unable to load configuration, config: myconfig, err: 'NAMESPACE' environment variable is empty"
    );
    let set = OperatorEnv {
        namespace: Some("dapr-system".into()),
        ..OperatorEnv::default()
    };
    assert_eq!(o.control_plane_namespace(&set), Ok("dapr-system"));
}

#[test]
fn negative_pod_restart_limits_mean_unlimited_and_are_accepted() {
    assert_eq!(
        parse(&["-max-pod-restarts-per-minute=-1"]).max_pod_restarts_per_minute,
        -1
    );
}

#[test]
fn booleans_take_a_value_only_after_equals() {
    let o = parse(&["-disable-leader-election", "false"]);
    assert!(o.disable_leader_election);
    assert_eq!(o.ignored_args, ["false"]);
    assert!(!parse(&["-disable-leader-election=false"]).disable_leader_election);
}

#[test]
fn bad_values_and_unknown_flags_are_usage_errors() {
    for args in [
        &["-config-path=/tmp/x"][..],
        &["-port=abc"],
        &["-cache-sync-period=soon"],
        &["-disable-service-reconciler=maybe"],
    ] {
        let err = try_parse(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn a_flag_given_twice_takes_its_last_value_as_in_go() {
    let o = parse(&[
        "-port=1",
        "--port",
        "2",
        "-log-as-json",
        "-log-as-json=false",
    ]);
    assert_eq!(o.port, 2);
    assert!(!o.log.log_as_json);
}
