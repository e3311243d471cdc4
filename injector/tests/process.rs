//! The injector binary as a process, started the way the integration harness starts it.

use std::time::Duration;

use dapr_testing::{Child, free_port, http_get, run_to_completion, wait_for_status, wait_for_tcp};

const INJECTOR: &str = env!("CARGO_BIN_EXE_injector");
const START: Duration = Duration::from_secs(10);

/// The injector as a child with exactly the environment `env`; killed on drop.
fn spawn(args: &[String], env: &[(&str, &str)]) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Child::spawn_with_env(INJECTOR, &args, env).unwrap()
}

struct Ports {
    webhook: u16,
    healthz: u16,
    metrics: u16,
}

fn ports() -> Ports {
    Ports {
        webhook: free_port(),
        healthz: free_port(),
        metrics: free_port(),
    }
}

/// The integration framework's command line (`tests/integration/framework/process/injector`).
fn harness_args(p: &Ports) -> Vec<String> {
    vec![
        "-log-level=debug".into(),
        format!("-port={}", p.webhook),
        format!("-metrics-port={}", p.metrics),
        "-metrics-listen-address=127.0.0.1".into(),
        format!("-healthz-port={}", p.healthz),
        "-healthz-listen-address=127.0.0.1".into(),
        "-listen-address=127.0.0.1".into(),
        "-kubeconfig=/tmp/does-not-exist/kubeconfig".into(),
    ]
}

/// The integration framework's environment (the child gets nothing else).
const HARNESS_ENV: &[(&str, &str)] = &[
    ("KUBERNETES_SERVICE_HOST", "anything"),
    ("NAMESPACE", "dapr-system"),
    ("SIDECAR_IMAGE", "integration.dapr.io/dapr"),
    ("DAPR_TRUST_ANCHORS_FILE", "/tmp/does-not-exist/ca.crt"),
    (
        "DAPR_CONTROL_PLANE_TRUST_DOMAIN",
        "integration.test.dapr.io",
    ),
    ("DAPR_SENTRY_ADDRESS", "localhost:1"),
];

#[test]
fn the_harness_command_line_opens_every_port_reports_healthy_and_exits_zero_on_sigint() {
    let p = ports();
    let mut inj = spawn(&harness_args(&p), HARNESS_ENV);
    for port in [p.webhook, p.healthz, p.metrics] {
        wait_for_tcp(port, START).unwrap_or_else(|e| panic!("{e}\n{}", inj.output()));
    }
    wait_for_status(p.healthz, "/healthz", 200, START)
        .unwrap_or_else(|e| panic!("{e}\n{}", inj.output()));
    wait_for_status(p.metrics, "/metrics", 200, START).unwrap();
    let (status, body) = http_get(p.webhook, "/mutate").unwrap();
    assert_eq!(status, 501);
    assert!(body.contains("scaffold"), "{body}");
    assert_eq!(http_get(p.webhook, "/elsewhere").unwrap().0, 404);

    let status = inj.interrupt_and_wait(START);
    let output = inj.output();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        output.contains("Starting Dapr Sidecar Injector -- version"),
        "{output}"
    );
    assert!(
        output.contains("the sidecar injector is a scaffold"),
        "{output}"
    );
    assert!(
        output.contains("Dapr sidecar injector shut down gracefully"),
        "{output}"
    );
}

#[test]
fn a_missing_sidecar_image_is_fatal_with_upstreams_message() {
    let p = ports();
    let mut inj = spawn(&harness_args(&p), &[("NAMESPACE", "dapr-system")]);
    assert_eq!(inj.wait_exit(START).code(), Some(1));
    assert!(
        inj.output()
            .contains("Error getting config: required key SIDECAR_IMAGE missing value"),
        "{}",
        inj.output()
    );
}

#[test]
fn an_invalid_trust_domain_is_fatal_with_upstreams_message() {
    let p = ports();
    let env = [
        HARNESS_ENV,
        &[("DAPR_CONTROL_PLANE_TRUST_DOMAIN", "Not Valid")],
    ]
    .concat();
    let mut inj = spawn(&harness_args(&p), &env);
    assert_eq!(inj.wait_exit(START).code(), Some(1));
    assert!(
        inj.output()
            .contains("invalid control plane trust domain: "),
        "{}",
        inj.output()
    );
}

#[test]
fn a_non_numeric_metrics_port_is_fatal_with_upstreams_message() {
    let p = ports();
    let mut args = harness_args(&p);
    args.push("-metrics-port=abc".into());
    let mut inj = spawn(&args, HARNESS_ENV);
    assert_eq!(inj.wait_exit(START).code(), Some(1));
    assert!(
        inj.output().contains(
            "Error running injector: failed to parse metrics port: strconv.Atoi: parsing"
        ),
        "{}",
        inj.output()
    );
}

#[test]
fn an_unknown_flag_exits_2_and_names_the_flag() {
    let (status, output) = run_to_completion(INJECTOR, &["-no-such-flag=1"]).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(output.contains("--no-such-flag"), "{output}");
}

#[test]
fn help_prints_usage_and_exits_zero() {
    let (status, output) = run_to_completion(INJECTOR, &["--help"]).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(output.contains("--scheduler-enabled"), "{output}");
}
