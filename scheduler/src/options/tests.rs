use super::*;

fn try_parse(args: &[&str]) -> Result<Options, clap::Error> {
    dapr_flags::try_parse_from::<Options, _, _>(
        std::iter::once("scheduler").chain(args.iter().copied()),
    )
}

fn parse(args: &[&str]) -> Options {
    try_parse(args).unwrap()
}

fn validate(args: &[&str]) -> Result<Validated, OptionsError> {
    parse(args).validate()
}

#[test]
fn defaults_match_upstream() {
    let o = parse(&[]);
    assert_eq!(o.port, 50006);
    assert_eq!(o.healthz.healthz_port, 8080);
    assert_eq!(o.healthz.healthz_listen_address, "");
    assert_eq!(o.listen_address, "");
    assert_eq!(o.override_broadcast_host_port, None);
    assert!(!o.tls_enabled);
    assert_eq!(o.trust.trust_domain, "localhost");
    assert_eq!(o.trust.trust_anchors_file, None);
    assert_eq!(o.mode, "standalone");
    assert_eq!(o.kubeconfig.kubeconfig, None);
    assert_eq!(o.id, "dapr-scheduler-server-0");
    assert!(o.etcd_embed);
    assert_eq!(
        o.etcd_initial_cluster(),
        ["dapr-scheduler-server-0=http://localhost:2380"]
    );
    assert_eq!(o.etcd_data_dir, "./data");
    assert_eq!(o.etcd_client_port, 2379);
    assert_eq!(o.etcd_client_listen_address, "localhost");
    assert_eq!(o.etcd_space_quota, "9.2E");
    assert_eq!(o.etcd_compaction_mode, "revision");
    assert_eq!(o.etcd_compaction_retention, "1000000");
    assert_eq!(o.etcd_snapshot_count, 100_000);
    assert_eq!((o.etcd_max_snapshots, o.etcd_max_wals), (10, 10));
    assert_eq!(o.etcd_backend_batch_limit, 10_000);
    assert_eq!(o.etcd_backend_batch_interval, "100ms");
    assert_eq!(o.etcd_max_txn_ops, 10_000);
    assert_eq!(
        o.etcd_experimental_bootstrap_defrag_threshold_megabytes,
        100
    );
    assert!(!o.etcd_initial_election_tick_advance);
    assert_eq!(o.etcd_metrics, "basic");
    assert!(o.etcd_client_endpoints().is_empty());
    assert_eq!(
        (
            o.etcd_client_username.as_str(),
            o.etcd_client_password.as_str()
        ),
        ("", "")
    );
    assert!(
        o.identity_directory_write_or_default()
            .ends_with("secrets/dapr.io/tls")
    );
    assert_eq!(o.workers, 2048);
    assert_eq!(o.log.log_level, "info");
    assert!(o.metrics.enable_metrics);
    assert_eq!(o.metrics.port(), Ok(9090));
    assert_eq!(
        o.validate(),
        Ok(Validated {
            mode: Mode::Standalone,
            etcd_space_quota: 9_200_000_000_000_000_000
        })
    );
}

#[test]
fn the_integration_harness_command_line_parses() {
    let o = parse(&[
        "--log-level=debug",
        "--id=6f1c-0",
        "--port=40001",
        "--healthz-port=40002",
        "--metrics-port=40003",
        "--etcd-data-dir=/tmp/sched",
        "--etcd-client-port=40004",
        "--listen-address=127.0.0.1",
        "--identity-directory-write=/tmp/sched-tls",
        "--etcd-backend-batch-interval=100ms",
        "--tls-enabled=true",
        "--sentry-address=localhost:40010",
        "--trust-anchors-file=/tmp/ca.pem",
        "--trust-domain=integration.test.dapr.io",
        "--etcd-initial-cluster=6f1c-0=https://127.0.0.1:40005",
        "--override-broadcast-host-port=1.2.3.4:5678",
        "--etcd-embed=true",
        "--workers=128",
        "--etcd-space-quota=16Mi",
    ]);
    assert_eq!(o.log.log_level, "debug");
    assert_eq!(o.id, "6f1c-0");
    assert_eq!(o.port, 40001);
    assert_eq!(o.healthz.healthz_port, 40002);
    assert_eq!(o.metrics.port(), Ok(40003));
    assert_eq!(o.etcd_data_dir, "/tmp/sched");
    assert_eq!(o.etcd_client_port, 40004);
    assert_eq!(
        o.identity_directory_write_or_default(),
        PathBuf::from("/tmp/sched-tls")
    );
    assert!(o.tls_enabled);
    assert_eq!(o.trust.trust_anchors_file.as_deref(), Some("/tmp/ca.pem"));
    assert_eq!(o.etcd_initial_cluster(), ["6f1c-0=https://127.0.0.1:40005"]);
    assert_eq!(
        o.override_broadcast_host_port.as_deref(),
        Some("1.2.3.4:5678")
    );
    assert_eq!(o.workers, 128);
    assert_eq!(o.validate().unwrap().etcd_space_quota, 16 << 20);
}

#[test]
fn the_single_dash_form_parses_too() {
    let o = parse(&[
        "-port=40001",
        "-healthz-port=40002",
        "-metrics-port=40003",
        "-listen-address=127.0.0.1",
        "-healthz-listen-address=127.0.0.1",
        "-metrics-listen-address=127.0.0.1",
        "-etcd-client-port=40004",
        "-etcd-initial-cluster=s0=http://127.0.0.1:40005",
        "-id=s0",
    ]);
    assert_eq!(o.etcd_client_port, 40004);
    assert_eq!(o.id, "s0");
    assert_eq!(
        o.unused_flags_given(),
        ["--metrics-listen-address (metrics bind --listen-address)"]
    );
}

#[test]
fn the_helm_chart_command_line_parses() {
    let o = parse(&[
        "--listen-address=0.0.0.0",
        "--id",
        "dapr-scheduler-server-2",
        "--etcd-initial-cluster",
        "dapr-scheduler-server-0=https://dapr-scheduler-server-0.dapr-scheduler-server.dapr-system.svc.cluster.local:2380,\
         dapr-scheduler-server-1=https://dapr-scheduler-server-1.dapr-scheduler-server.dapr-system.svc.cluster.local:2380,\
         dapr-scheduler-server-2=https://dapr-scheduler-server-2.dapr-scheduler-server.dapr-system.svc.cluster.local:2380",
        "--etcd-embed=true",
        "--log-level",
        "info",
        "--log-as-json",
        "--enable-metrics",
        "--metrics-port",
        "9090",
        "--etcd-client-port",
        "2379",
        "--etcd-data-dir=/var/run/data/dapr-scheduler/dapr-system/dapr-scheduler-server-2",
        "--etcd-space-quota=9.2E",
        "--etcd-compaction-mode=revision",
        "--etcd-compaction-retention=1000000",
        "--etcd-snapshot-count=100000",
        "--etcd-max-snapshots=10",
        "--etcd-max-wals=10",
        "--etcd-backend-batch-limit=10000",
        "--etcd-backend-batch-interval=100ms",
        "--etcd-max-txn-ops=10000",
        "--etcd-experimental-bootstrap-defrag-threshold-megabytes=100",
        "--etcd-initial-election-tick-advance=false",
        "--etcd-metrics=basic",
        "--tls-enabled",
        "--trust-domain=cluster.local",
        "--trust-anchors-file=/var/run/secrets/dapr.io/tls/ca.crt",
        "--sentry-address=dapr-sentry.dapr-system.svc.cluster.local:443",
        "--mode=kubernetes",
        "--workers=2048",
        "--override-broadcast-host-port=10.0.0.1:50006",
    ]);
    assert_eq!(o.id, "dapr-scheduler-server-2");
    assert_eq!(o.etcd_initial_cluster().len(), 3);
    assert!(o.log.log_as_json);
    assert_eq!(o.etcd_client_port, 2379);
    assert!(o.tls_enabled);
    assert_eq!(
        o.validate(),
        Ok(Validated {
            mode: Mode::Kubernetes,
            etcd_space_quota: 9_200_000_000_000_000_000
        })
    );
}

#[test]
fn the_chart_external_etcd_form_passes_space_separated_values() {
    let o = parse(&[
        "--etcd-embed=false",
        "--etcd-client-endpoints",
        "http://etcd-0:2379,http://etcd-1:2379",
        "--etcd-client-username",
        "u",
        "--etcd-client-password",
        "p",
        "--enable-metrics=false",
    ]);
    assert_eq!(
        o.etcd_client_endpoints(),
        ["http://etcd-0:2379", "http://etcd-1:2379"]
    );
    assert_eq!(o.etcd_client_username, "u");
    assert_eq!(o.validate().unwrap().mode, Mode::Standalone);
}

#[test]
fn option_checks_run_in_upstreams_order_with_its_messages() {
    assert_eq!(
        validate(&["--etcd-space-quota=lots", "--kubeconfig=/k"])
            .unwrap_err()
            .to_string(),
        "failed to parse etcd space quota: quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        validate(&["--kubeconfig=/k", "--etcd-client-username=u"])
            .unwrap_err()
            .to_string(),
        "kubeconfig flag is only valid in --mode=kubernetes"
    );
    assert_eq!(
        validate(&["--kubeconfig="]),
        Err(OptionsError::KubeconfigOutsideKubernetes),
        "given but empty still counts as given"
    );
    assert!(validate(&["--kubeconfig=/k", "--mode=kubernetes"]).is_ok());
    assert_eq!(
        validate(&[
            "--etcd-embed=true",
            "--etcd-client-endpoints=localhost:1234"
        ])
        .unwrap_err()
        .to_string(),
        "cannot use --etcd-client-endpoints with --etcd-embed"
    );
    assert_eq!(
        validate(&["--etcd-embed=true", "--etcd-client-username=helloworld"])
            .unwrap_err()
            .to_string(),
        "cannot use --etcd-client-username with --etcd-embed"
    );
    assert_eq!(
        validate(&["--etcd-embed=true", "--etcd-client-password=helloworld"])
            .unwrap_err()
            .to_string(),
        "cannot use --etcd-client-password with --etcd-embed"
    );
    assert_eq!(
        validate(&["--etcd-embed=false"]).unwrap_err().to_string(),
        "must specify --etcd-client-endpoints when not using embedded etcd"
    );
    assert_eq!(
        validate(&["--etcd-embed=false", "--etcd-client-endpoints="]),
        Err(OptionsError::EndpointsRequired),
        "an empty value is an empty list, as pflag reads it"
    );
}

#[test]
fn unparsable_values_and_removed_flags_are_usage_errors() {
    for args in [
        &["--port=x"][..],
        &["--workers=-1"],
        &["--etcd-embed=maybe"],
        &["--replica-count=3"],
        &["--initial-cluster=a=b"],
        &["--etcd-client-ports=a=1"],
    ] {
        let err = try_parse(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn zero_workers_is_refused_with_the_cron_engines_message() {
    assert_eq!(
        parse(&["--workers=128"]).cron_workers().map(|w| w.get()),
        Ok(128)
    );
    assert_eq!(
        parse(&["--workers=0"])
            .cron_workers()
            .unwrap_err()
            .to_string(),
        "fail to create etcd-cron: workers must be larger than 0"
    );
}
