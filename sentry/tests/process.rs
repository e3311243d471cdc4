//! The sentry binary as a process: listeners, /healthz, exit codes.

use std::time::Duration;

use dapr_testing::{Child, free_port, run_to_completion, wait_for_status, wait_for_tcp};

const SENTRY: &str = env!("CARGO_BIN_EXE_sentry");
const START: Duration = Duration::from_secs(10);

/// A fresh, empty credentials directory and an empty config file, as the upstream harness uses.
fn workdir(name: &str) -> (String, String) {
    let dir = std::env::temp_dir().join(format!("sentry-process-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("creds")).unwrap();
    std::fs::write(dir.join("sentry.yaml"), "").unwrap();
    (
        dir.join("creds").display().to_string(),
        dir.join("sentry.yaml").display().to_string(),
    )
}

#[test]
fn sentry_opens_its_ports_reports_healthy_and_exits_zero_on_sigint() {
    let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
    let (creds, config) = workdir("ports");
    let args = [
        format!("-issuer-credentials={creds}"),
        format!("-config={config}"),
        format!("-port={grpc}"),
        format!("-healthz-port={healthz}"),
        format!("-metrics-port={metrics}"),
        "-listen-address=127.0.0.1".to_owned(),
        "-healthz-listen-address=127.0.0.1".to_owned(),
        "-metrics-listen-address=127.0.0.1".to_owned(),
        "-log-level=debug".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Child::spawn(SENTRY, &args).unwrap();
    for port in [grpc, healthz, metrics] {
        wait_for_tcp(port, START).unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
    }
    wait_for_status(healthz, "/healthz", 200, START).unwrap();
    wait_for_status(healthz, "/nothing-here", 404, START).unwrap();
    wait_for_status(metrics, "/metrics", 200, START).unwrap();

    child.signal("INT").unwrap();
    let status = child
        .wait_timeout(START)
        .unwrap()
        .expect("sentry did not stop on SIGINT");
    assert_eq!(status.code(), Some(0), "{}", child.output());
    assert!(
        child
            .output()
            .contains("Received signal 'interrupt'; beginning shutdown")
    );
}

#[test]
fn a_missing_config_file_is_fatal_with_upstreams_prefix() {
    let (creds, _) = workdir("noconfig");
    let port = free_port().to_string();
    let (status, output) = run_to_completion(
        SENTRY,
        &[
            "-config=/nonexistent/sentry.yaml",
            &format!("-issuer-credentials={creds}"),
            "-healthz-port",
            &port,
        ],
    )
    .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains(
            r#"loading default config. couldn't find config name \"/nonexistent/sentry.yaml\""#
        ) || output.contains(
            r#"loading default config. couldn't find config name "/nonexistent/sentry.yaml""#
        ),
        "{output}"
    );
}

#[test]
fn an_unknown_flag_exits_2_and_names_the_flag() {
    let (status, output) = run_to_completion(SENTRY, &["-no-such-flag=1"]).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(output.contains("--no-such-flag"), "{output}");
}

#[test]
fn an_invalid_mode_is_fatal_with_upstreams_message() {
    let port = free_port().to_string();
    let (status, output) =
        run_to_completion(SENTRY, &["-mode=cloud", "-healthz-port", &port]).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        output.contains("Invalid options: invalid mode: cloud"),
        "{output}"
    );
}

#[test]
fn help_prints_usage_and_exits_zero() {
    let (status, output) = run_to_completion(SENTRY, &["-h"]).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(output.contains("--issuer-credentials"), "{output}");
}

#[test]
fn an_empty_jwks_file_is_fatal_within_a_second_even_with_jwt_off() {
    let (creds, config) = workdir("emptyjwks");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    std::fs::write(format!("{creds}/jwt.key"), key.serialize_pem()).unwrap();
    std::fs::write(format!("{creds}/jwks.json"), "").unwrap();
    let (grpc, healthz, metrics) = (free_port(), free_port(), free_port());
    let args = [
        format!("-issuer-credentials={creds}"),
        format!("-config={config}"),
        format!("-port={grpc}"),
        format!("-healthz-port={healthz}"),
        format!("-metrics-port={metrics}"),
        "-listen-address=127.0.0.1".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Child::spawn(SENTRY, &args).unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(1))
        .unwrap()
        .unwrap_or_else(|| panic!("sentry still running after 1 s\n{}", child.output()));
    assert_eq!(status.code(), Some(1), "{}", child.output());
    assert!(
        child
            .output()
            .contains("error creating CA: failed to get CA bundle: failed to verify JWKS: failed to parse JWKS: "),
        "{}",
        child.output()
    );
}

#[test]
fn an_unusable_kubeconfig_exits_2_as_upstreams_panic_does() {
    let port = free_port().to_string();
    // Only the host is set, as in the upstream harness: in-cluster config fails and the
    // kubeconfig flag is used.
    let mut child = Child::spawn_with_env(
        SENTRY,
        &[
            "--mode=kubernetes",
            "--kubeconfig=/nonexistent",
            "-healthz-port",
            &port,
        ],
        &[("KUBERNETES_SERVICE_HOST", "anything")],
    )
    .unwrap();
    let status = child.wait_exit(START);
    assert_eq!(status.code(), Some(2), "{}", child.output());
    assert!(
        child
            .output()
            .contains("failed to create the Kubernetes client: invalid kubeconfig /nonexistent: "),
        "{}",
        child.output()
    );
}
