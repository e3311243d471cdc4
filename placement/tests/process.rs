//! The placement binary as a process: listeners, /healthz, exit codes.

use std::time::Duration;

use dapr_testing::{Child, free_port, run_to_completion, wait_for_status, wait_for_tcp};

const PLACEMENT: &str = env!("CARGO_BIN_EXE_placement");
const START: Duration = Duration::from_secs(10);

#[test]
fn placement_opens_grpc_metrics_healthz_and_raft_ports_and_exits_zero_on_sigint() {
    let (grpc, healthz, metrics, raft) = (free_port(), free_port(), free_port(), free_port());
    let args = [
        "-log-level=debug".to_owned(),
        "-id=p1".to_owned(),
        format!("-port={grpc}"),
        "-listen-address=127.0.0.1".to_owned(),
        format!("-healthz-port={healthz}"),
        "-healthz-listen-address=127.0.0.1".to_owned(),
        format!("-metrics-port={metrics}"),
        "-metrics-listen-address=127.0.0.1".to_owned(),
        format!("-initial-cluster=p1=127.0.0.1:{raft}"),
        "-tls-enabled=false".to_owned(),
        "-metadata-enabled=true".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Child::spawn(PLACEMENT, &args).unwrap();
    for port in [grpc, healthz, metrics, raft] {
        wait_for_tcp(port, START).unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
    }
    wait_for_status(healthz, "/healthz", 200, START).unwrap();
    wait_for_status(metrics, "/metrics", 200, START).unwrap();
    assert!(
        child
            .output()
            .contains("Starting Dapr Placement Service -- version")
    );

    child.signal("INT").unwrap();
    let status = child
        .wait_timeout(START)
        .unwrap()
        .expect("placement did not stop on SIGINT");
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(
        child
            .output()
            .contains("Placement service shut down gracefully")
    );
}

#[test]
fn an_unknown_flag_exits_2_and_names_the_flag() {
    let (status, output) = run_to_completion(PLACEMENT, &["-no-such-flag=1"]).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(output.contains("--no-such-flag"), "{output}");
}

#[test]
fn a_keepalive_out_of_range_is_fatal_with_upstreams_message() {
    let port = free_port().to_string();
    let (status, output) = run_to_completion(
        PLACEMENT,
        &["--keepalive-time=20s", "--healthz-port", &port],
    )
    .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains(
            "invalid value for keepalive-time: value should be between 1s and 10s, got 20s"
        ),
        "{output}"
    );
}

#[test]
fn a_node_missing_from_the_initial_cluster_is_fatal() {
    let port = free_port().to_string();
    let (status, output) = run_to_completion(
        PLACEMENT,
        &[
            "--id=p9",
            "--initial-cluster=p1=127.0.0.1:1",
            "--healthz-port",
            &port,
        ],
    )
    .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains("address for node p9 not found in raft peers [{p1 127.0.0.1:1}]"),
        "{output}"
    );
}

#[test]
fn help_prints_usage_and_exits_zero() {
    let (status, output) = run_to_completion(PLACEMENT, &["-h"]).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(output.contains("--replicationFactor"), "{output}");
}
