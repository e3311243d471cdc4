//! The operator binary as a process, started the way the integration harness starts it.

use std::time::Duration;

use dapr_proto::operator::v1::{ListComponentsRequest, operator_client::OperatorClient};
use dapr_testing::{Child, free_port, http_get, run_to_completion, wait_for_status, wait_for_tcp};

const OPERATOR: &str = env!("CARGO_BIN_EXE_operator");
const START: Duration = Duration::from_secs(10);

/// The operator as a child with exactly the environment `env`; killed on drop.
fn spawn(args: &[String], env: &[(&str, &str)]) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Child::spawn_with_env(OPERATOR, &args, env).unwrap()
}

struct Ports {
    grpc: u16,
    healthz: u16,
    metrics: u16,
    webhook: u16,
}

/// The integration framework's command line (`tests/integration/framework/process/operator`).
fn harness_args(p: &Ports) -> Vec<String> {
    vec![
        "-log-level=debug".into(),
        format!("-port={}", p.grpc),
        "-listen-address=127.0.0.1".into(),
        format!("-healthz-port={}", p.healthz),
        "-healthz-listen-address=127.0.0.1".into(),
        format!("-metrics-port={}", p.metrics),
        "-metrics-listen-address=127.0.0.1".into(),
        "-trust-anchors-file=/tmp/does-not-exist/ca.crt".into(),
        "-disable-leader-election=true".into(),
        "-kubeconfig=/tmp/does-not-exist/kubeconfig".into(),
        format!("-webhook-server-port={}", p.webhook),
        "-webhook-server-listen-address=127.0.0.1".into(),
        "-cache-sync-period=1s".into(),
    ]
}

fn ports() -> Ports {
    Ports {
        grpc: free_port(),
        healthz: free_port(),
        metrics: free_port(),
        webhook: free_port(),
    }
}

const HARNESS_ENV: &[(&str, &str)] = &[
    ("KUBERNETES_SERVICE_HOST", "anything"),
    ("NAMESPACE", "dapr-system"),
];

#[test]
fn the_harness_command_line_opens_every_port_reports_healthy_and_exits_zero_on_sigint() {
    let p = ports();
    let mut op = spawn(&harness_args(&p), HARNESS_ENV);
    for port in [p.grpc, p.healthz, p.metrics, p.webhook] {
        wait_for_tcp(port, START).unwrap_or_else(|e| panic!("{e}\n{}", op.output()));
    }
    wait_for_status(p.healthz, "/healthz", 200, START)
        .unwrap_or_else(|e| panic!("{e}\n{}", op.output()));
    wait_for_status(p.metrics, "/metrics", 200, START).unwrap();
    let (status, body) = http_get(p.webhook, "/convert").unwrap();
    assert_eq!(status, 501);
    assert!(body.contains("scaffold"), "{body}");
    assert_eq!(http_get(p.webhook, "/elsewhere").unwrap().0, 404);

    let code = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client = OperatorClient::connect(format!("http://127.0.0.1:{}", p.grpc))
            .await
            .unwrap();
        client
            .list_components(ListComponentsRequest::default())
            .await
            .unwrap_err()
            .code()
    });
    assert_eq!(code, tonic::Code::Unimplemented);

    let status = op.interrupt_and_wait(START);
    let output = op.output();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        output.contains("Starting Dapr Operator -- version"),
        "{output}"
    );
    assert!(output.contains("the operator is a scaffold"), "{output}");
    assert!(output.contains("operator shut down gracefully"), "{output}");
}

#[test]
fn with_webhooks_disabled_the_webhook_port_stays_closed_and_healthz_is_ready() {
    let p = ports();
    let env = [HARNESS_ENV, &[("ENABLE_WEBHOOKS", "False")]].concat();
    let mut op = spawn(&harness_args(&p), &env);
    wait_for_status(p.healthz, "/healthz", 200, START)
        .unwrap_or_else(|e| panic!("{e}\n{}", op.output()));
    wait_for_tcp(p.webhook, Duration::from_millis(200)).unwrap_err();
    assert_eq!(op.interrupt_and_wait(START).code(), Some(0));
}

#[test]
fn a_missing_namespace_is_fatal_with_upstreams_message() {
    let p = ports();
    let mut op = spawn(
        &harness_args(&p),
        &[("KUBERNETES_SERVICE_HOST", "anything")],
    );
    let status = op.wait_exit(START);
    assert_eq!(status.code(), Some(1));
    assert!(
        op.output().contains(
            "error creating operator: unable to load configuration, config: daprsystem, err: 'NAMESPACE' environment variable not set"
        ),
        "{}",
        op.output()
    );
}

#[test]
fn a_short_watch_interval_is_fatal_with_upstreams_message() {
    let (status, output) = run_to_completion(OPERATOR, &["-watch-interval=500ms"]).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains("invalid watch-interval value: if not '0' or 'once', must be at least 1s"),
        "{output}"
    );
    assert!(output.contains("scope=dapr.operator.options"), "{output}");
}

#[test]
fn an_unknown_flag_exits_2_and_names_the_flag() {
    let (status, output) = run_to_completion(OPERATOR, &["-config-path=/tmp/x"]).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(output.contains("--config-path"), "{output}");
}

#[test]
fn help_prints_usage_and_exits_zero() {
    let (status, output) = run_to_completion(OPERATOR, &["-help"]).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(output.contains("--webhook-server-port"), "{output}");
}
