//! The scheduler binary as a process: listeners, /healthz, exit codes.

use std::time::Duration;

use dapr_testing::{Child, free_port, run_to_completion, wait_for_status, wait_for_tcp};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const START: Duration = Duration::from_secs(10);

#[test]
fn scheduler_opens_grpc_metrics_healthz_and_etcd_ports_and_exits_zero_on_sigint() {
    let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
    let (etcd_client, etcd_peer) = (free_port(), free_port());
    let data_dir = std::env::temp_dir().join(format!("scheduler-process-{}", std::process::id()));
    let args = [
        "--log-level=debug".to_owned(),
        "--id=s0".to_owned(),
        format!("--port={grpc}"),
        format!("--healthz-port={healthz}"),
        format!("--metrics-port={metrics}"),
        format!("--etcd-data-dir={}", data_dir.display()),
        format!("--etcd-client-port={etcd_client}"),
        "--listen-address=127.0.0.1".to_owned(),
        "--etcd-backend-batch-interval=100ms".to_owned(),
        "--workers=128".to_owned(),
        format!("--etcd-initial-cluster=s0=http://127.0.0.1:{etcd_peer}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Child::spawn(SCHEDULER, &args).unwrap();
    for port in [grpc, healthz, metrics, etcd_client, etcd_peer] {
        wait_for_tcp(port, START).unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
    }
    wait_for_status(healthz, "/healthz", 200, START).unwrap();
    wait_for_status(metrics, "/metrics", 200, START).unwrap();
    assert!(
        child
            .output()
            .contains("Starting Dapr Scheduler Service -- version")
    );

    child.signal("INT").unwrap();
    let status = child
        .wait_timeout(START)
        .unwrap()
        .expect("scheduler did not stop on SIGINT");
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(
        child
            .output()
            .contains("Scheduler service shut down gracefully")
    );
}

#[test]
fn an_external_etcd_opens_no_etcd_port_and_is_healthy() {
    let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
    let args = [
        format!("--port={grpc}"),
        format!("--healthz-port={healthz}"),
        format!("--metrics-port={metrics}"),
        "--listen-address=127.0.0.1".to_owned(),
        "--etcd-embed=false".to_owned(),
        "--etcd-client-endpoints=127.0.0.1:1".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Child::spawn(SCHEDULER, &args).unwrap();
    wait_for_status(healthz, "/healthz", 200, START)
        .unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
    child.signal("TERM").unwrap();
    let status = child
        .wait_timeout(START)
        .unwrap()
        .expect("scheduler did not stop on SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", child.output());
}

#[test]
fn an_unknown_flag_exits_2_and_names_the_flag() {
    let (status, output) = run_to_completion(SCHEDULER, &["--replica-count=3"]).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(output.contains("--replica-count"), "{output}");
}

#[test]
fn the_flag_errors_of_upstreams_embed_flagerrors_case_exit_1_on_stdout() {
    for (args, message) in [
        (
            &[
                "--etcd-embed=true",
                "--etcd-client-endpoints=localhost:1234",
            ][..],
            "cannot use --etcd-client-endpoints with --etcd-embed",
        ),
        (
            &["--etcd-embed=false"],
            "must specify --etcd-client-endpoints when not using embedded etcd",
        ),
        (
            &["--etcd-embed=true", "--etcd-client-username=helloworld"],
            "cannot use --etcd-client-username with --etcd-embed",
        ),
        (
            &["--etcd-embed=true", "--etcd-client-password=helloworld"],
            "cannot use --etcd-client-password with --etcd-embed",
        ),
        (
            &["--kubeconfig=/tmp/kubeconfig"],
            "kubeconfig flag is only valid in --mode=kubernetes",
        ),
    ] {
        let out = std::process::Command::new(SCHEDULER)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(message), "{args:?}: {stdout}");
    }
}

#[test]
fn an_id_missing_from_the_initial_cluster_is_fatal_with_upstreams_wrapping() {
    let port = free_port().to_string();
    let (status, output) = run_to_completion(
        SCHEDULER,
        &[
            "--id=s9",
            "--etcd-initial-cluster=s0=http://127.0.0.1:1",
            "--healthz-port",
            &port,
        ],
    )
    .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains(
            "Fatal error running scheduler: failed to create etcd config: scheduler ID: s9 is not found in initial cluster"
        ),
        "{output}"
    );
}

#[test]
fn help_prints_usage_and_exits_zero() {
    let (status, output) = run_to_completion(SCHEDULER, &["-h"]).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        output.contains("--etcd-experimental-bootstrap-defrag-threshold-megabytes"),
        "{output}"
    );
}
