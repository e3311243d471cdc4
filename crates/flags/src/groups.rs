//! Flag groups shared by the control-plane services, flattened into each binary's options with
//! `#[command(flatten)]`. Names and defaults are upstream's (dapr/kit logger, dapr metrics options,
//! each service's healthz flags).
//!
//! Boolean flags follow pflag: `--flag` means true, `--flag=false` turns it off, and a value is
//! only ever attached with `=`.

use clap::{ArgAction, Args};

/// Default trust-anchors path mounted by the Helm chart.
pub const DEFAULT_TRUST_ANCHORS_FILE: &str = "/var/run/secrets/dapr.io/tls/ca.crt";

/// The value parser for every Go-style boolean flag.
pub fn go_bool(s: &str) -> Result<bool, crate::ParseBoolError> {
    crate::parse_go_bool(s)
}

/// `--log-level`, `--log-as-json`, `--log-file` (dapr/kit logger flags).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct LogArgs {
    /// Options are debug, info, warn, error, or fatal (default info).
    #[arg(long = "log-level", default_value = "info", value_name = "LEVEL")]
    pub log_level: String,

    /// Print log as JSON (default false).
    #[arg(long = "log-as-json", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub log_as_json: bool,

    /// Append logs to this file instead of stdout.
    #[arg(long = "log-file", default_value = "", value_name = "PATH")]
    pub log_file: String,
}

/// `--enable-metrics`, `--metrics-port`, `--metrics-listen-address`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct MetricsArgs {
    /// Enable Prometheus metrics.
    #[arg(long = "enable-metrics", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub enable_metrics: bool,

    /// The port for the metrics server. A string upstream: it is parsed only when the server starts.
    #[arg(long = "metrics-port", default_value = "9090", value_name = "PORT")]
    pub metrics_port: String,

    /// The address for the metrics server.
    #[arg(
        long = "metrics-listen-address",
        default_value = "0.0.0.0",
        value_name = "ADDR"
    )]
    pub metrics_listen_address: String,
}

/// The error upstream reports when `--metrics-port` is not a port number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to parse metrics port: strconv.Atoi: parsing {0:?}: invalid syntax")]
pub struct MetricsPortError(pub String);

impl MetricsArgs {
    /// The metrics port as a number, checked when the metrics server starts (as upstream does).
    pub fn port(&self) -> Result<u16, MetricsPortError> {
        self.metrics_port
            .parse()
            .map_err(|_| MetricsPortError(self.metrics_port.clone()))
    }
}

/// `--healthz-port`, `--healthz-listen-address`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct HealthzArgs {
    /// The port for the healthz server.
    #[arg(long = "healthz-port", default_value_t = 8080, value_name = "PORT")]
    pub healthz_port: u16,

    /// The listening address for the healthz server ("" = all interfaces).
    #[arg(
        long = "healthz-listen-address",
        default_value = "",
        value_name = "ADDR"
    )]
    pub healthz_listen_address: String,
}

/// `--kubeconfig` (only consulted out of cluster).
#[derive(Args, Clone, Debug, PartialEq, Eq, Default)]
pub struct KubeconfigArgs {
    /// Absolute path to the kubeconfig file.
    #[arg(long = "kubeconfig", value_name = "PATH")]
    pub kubeconfig: Option<String>,
}

/// The identity flags of a service that gets its certificate from sentry.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct TrustArgs {
    /// The control-plane trust domain.
    #[arg(
        long = "trust-domain",
        default_value = "localhost",
        value_name = "DOMAIN"
    )]
    pub trust_domain: String,

    /// Filepath to the trust anchors for the Dapr control plane.
    #[arg(long = "trust-anchors-file", value_name = "PATH")]
    pub trust_anchors_file: Option<String>,

    /// Address of the Sentry service (default `dapr-sentry.<NAMESPACE>.svc:443`).
    #[arg(long = "sentry-address", value_name = "ADDR")]
    pub sentry_address: Option<String>,
}

impl TrustArgs {
    /// The trust anchors file, falling back to the chart's mount path.
    pub fn trust_anchors_file_or_default(&self) -> &str {
        self.trust_anchors_file
            .as_deref()
            .unwrap_or(DEFAULT_TRUST_ANCHORS_FILE)
    }

    /// The sentry address, falling back to `dapr-sentry.<namespace>.svc:443`.
    pub fn sentry_address_or_default(&self, namespace: &str) -> String {
        self.sentry_address
            .clone()
            .unwrap_or_else(|| format!("dapr-sentry.{namespace}.svc:443"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "svc")]
    struct All {
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        metrics: MetricsArgs,
        #[command(flatten)]
        healthz: HealthzArgs,
        #[command(flatten)]
        kube: KubeconfigArgs,
        #[command(flatten)]
        trust: TrustArgs,
        #[arg(long = "port", default_value_t = 50001)]
        port: u16,
    }

    fn parse(args: &[&str]) -> Result<All, clap::Error> {
        crate::try_parse_from::<All, _, _>(std::iter::once("svc").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_upstreams() {
        let all = parse(&[]).unwrap();
        assert_eq!(all.log.log_level, "info");
        assert!(!all.log.log_as_json);
        assert!(all.metrics.enable_metrics);
        assert_eq!(all.metrics.port(), Ok(9090));
        assert_eq!(all.metrics.metrics_listen_address, "0.0.0.0");
        assert_eq!(all.healthz.healthz_port, 8080);
        assert_eq!(all.healthz.healthz_listen_address, "");
        assert_eq!(all.trust.trust_domain, "localhost");
        assert_eq!(
            all.trust.trust_anchors_file_or_default(),
            DEFAULT_TRUST_ANCHORS_FILE
        );
        assert_eq!(
            all.trust.sentry_address_or_default("dapr-system"),
            "dapr-sentry.dapr-system.svc:443"
        );
        assert_eq!(all.kube.kubeconfig, None);
    }

    #[test]
    fn the_test_harness_single_dash_form_parses() {
        let all = parse(&[
            "-log-level=debug",
            "-port=50123",
            "-metrics-port=9191",
            "-metrics-listen-address=127.0.0.1",
            "-healthz-port=8181",
            "-healthz-listen-address=127.0.0.1",
            "-trust-domain=integration.test.dapr.io",
            "-trust-anchors-file",
            "/tmp/ca.pem",
            "-sentry-address=localhost:1234",
            "-kubeconfig=/tmp/kc",
        ])
        .unwrap();
        assert_eq!(all.log.log_level, "debug");
        assert_eq!(all.port, 50123);
        assert_eq!(all.metrics.port(), Ok(9191));
        assert_eq!(all.healthz.healthz_port, 8181);
        assert_eq!(all.healthz.healthz_listen_address, "127.0.0.1");
        assert_eq!(all.trust.trust_domain, "integration.test.dapr.io");
        assert_eq!(all.trust.trust_anchors_file.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(all.trust.sentry_address.as_deref(), Some("localhost:1234"));
        assert_eq!(all.kube.kubeconfig.as_deref(), Some("/tmp/kc"));
    }

    #[test]
    fn the_helm_chart_space_separated_form_parses() {
        let all = parse(&[
            "--log-level",
            "info",
            "--log-as-json",
            "--enable-metrics",
            "--metrics-port",
            "9090",
            "--healthz-port",
            "8080",
            "--trust-domain",
            "cluster.local",
        ])
        .unwrap();
        assert!(all.log.log_as_json);
        assert!(all.metrics.enable_metrics);
        assert_eq!(all.trust.trust_domain, "cluster.local");
    }

    #[test]
    fn booleans_take_go_spellings_only_after_equals() {
        let all = parse(&["--enable-metrics=false", "-log-as-json=T"]).unwrap();
        assert!(!all.metrics.enable_metrics);
        assert!(all.log.log_as_json);
        let err = parse(&["--enable-metrics=maybe"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value_as_in_go() {
        let all = parse(&[
            "--log-level=debug",
            "-log-level",
            "warn",
            "--enable-metrics=false",
            "--enable-metrics",
        ])
        .unwrap();
        assert_eq!(all.log.log_level, "warn");
        assert!(all.metrics.enable_metrics);
    }

    #[test]
    fn unknown_flags_are_usage_errors_with_exit_code_2() {
        let err = parse(&["--no-such-flag=1"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--no-such-flag"));
    }

    #[test]
    fn help_is_not_an_error_exit() {
        let err = parse(&["-h"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert_eq!(err.exit_code(), 0);
    }

    #[test]
    fn a_non_numeric_metrics_port_is_reported_when_used() {
        let all = parse(&["--metrics-port=abc"]).unwrap();
        assert_eq!(
            all.metrics.port().unwrap_err().to_string(),
            "failed to parse metrics port: strconv.Atoi: parsing \"abc\": invalid syntax"
        );
    }
}
