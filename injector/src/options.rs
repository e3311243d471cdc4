//! Every flag of upstream's `injector` (dapr/dapr `cmd/injector/options` at v1.18.3).
//!
//! Upstream has no checks on these flags; its fatal start-up checks are on the environment
//! (see [`crate::config`]).

use clap::{ArgAction, Parser};
use dapr_flags::groups::{HealthzArgs, KubeconfigArgs, LogArgs, MetricsArgs, go_bool};

/// The injector's command line.
#[derive(Parser, Clone, Debug)]
#[command(name = "injector", about = "Dapr sidecar injector", version)]
pub struct Options {
    /// Port of the admission webhook (HTTPS upstream).
    #[arg(long = "port", default_value_t = 4000)]
    pub port: u16,

    /// Accepted and ignored, as upstream: the webhook listens on every interface.
    #[arg(long = "listen-address", default_value = "")]
    pub listen_address: String,

    /// Whether scheduler is enabled in the cluster: injected sidecars then get its address.
    #[arg(long = "scheduler-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub scheduler_enabled: bool,

    #[command(flatten)]
    pub kube: KubeconfigArgs,

    #[command(flatten)]
    pub healthz: HealthzArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Positional arguments pflag would collect and ignore.
    #[arg(hide = true)]
    pub ignored_args: Vec<String>,
}

impl Options {
    /// Parses the process's argv, Go style.
    pub fn from_args() -> Self {
        dapr_flags::parse()
    }

    /// The kubeconfig path: the flag (even empty), else `<home>/.kube/config`, else `""`, as
    /// upstream's default is computed from `$HOME`.
    pub fn kubeconfig_path(&self, home: Option<&str>) -> String {
        match (&self.kube.kubeconfig, home) {
            (Some(path), _) => path.clone(),
            (None, Some(home)) if !home.is_empty() => format!("{home}/.kube/config"),
            (None, _) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_parse(args: &[&str]) -> Result<Options, clap::Error> {
        dapr_flags::try_parse_from::<Options, _, _>(
            std::iter::once("injector").chain(args.iter().copied()),
        )
    }

    fn parse(args: &[&str]) -> Options {
        try_parse(args).unwrap()
    }

    #[test]
    fn defaults_match_upstream() {
        let o = parse(&[]);
        assert_eq!(o.port, 4000);
        assert_eq!(o.listen_address, "");
        assert!(o.scheduler_enabled);
        assert_eq!(o.healthz.healthz_port, 8080);
        assert_eq!(o.healthz.healthz_listen_address, "");
        assert_eq!(o.log.log_level, "info");
        assert!(!o.log.log_as_json);
        assert_eq!(o.log.log_file, "");
        assert!(o.metrics.enable_metrics);
        assert_eq!(o.metrics.port(), Ok(9090));
        assert_eq!(o.metrics.metrics_listen_address, "0.0.0.0");
        assert_eq!(
            o.kubeconfig_path(Some("/home/dapr")),
            "/home/dapr/.kube/config"
        );
        assert_eq!(o.kubeconfig_path(Some("")), "");
        assert_eq!(o.kubeconfig_path(None), "");
    }

    #[test]
    fn the_integration_harness_command_line_parses() {
        let o = parse(&[
            "-log-level=debug",
            "-port=40001",
            "-metrics-port=40002",
            "-metrics-listen-address=127.0.0.1",
            "-healthz-port=40003",
            "-healthz-listen-address=127.0.0.1",
            "-listen-address=127.0.0.1",
            "-kubeconfig=/tmp/kube/kubeconfig",
        ]);
        assert_eq!(o.log.log_level, "debug");
        assert_eq!(o.port, 40001);
        assert_eq!(o.metrics.port(), Ok(40002));
        assert_eq!(o.metrics.metrics_listen_address, "127.0.0.1");
        assert_eq!(o.healthz.healthz_port, 40003);
        assert_eq!(o.healthz.healthz_listen_address, "127.0.0.1");
        assert_eq!(o.listen_address, "127.0.0.1");
        assert_eq!(o.kubeconfig_path(Some("/root")), "/tmp/kube/kubeconfig");
    }

    #[test]
    fn the_helm_chart_command_line_parses() {
        let o = parse(&[
            "--log-level",
            "info",
            "--log-as-json",
            "--enable-metrics",
            "--metrics-port",
            "9090",
            "--healthz-port",
            "8080",
            "--scheduler-enabled=false",
        ]);
        assert!(o.log.log_as_json);
        assert!(o.metrics.enable_metrics);
        assert_eq!(o.healthz.healthz_port, 8080);
        assert!(!o.scheduler_enabled);

        let o = parse(&[
            "--log-level",
            "debug",
            "--enable-metrics=false",
            "--healthz-port",
            "8080",
            "--scheduler-enabled=true",
        ]);
        assert!(!o.metrics.enable_metrics);
        assert!(o.scheduler_enabled);
    }

    #[test]
    fn an_empty_kubeconfig_flag_stays_empty() {
        assert_eq!(parse(&["--kubeconfig="]).kubeconfig_path(Some("/root")), "");
    }

    #[test]
    fn a_separate_false_word_is_a_positional_argument_not_a_value() {
        let o = parse(&["--scheduler-enabled", "false"]);
        assert!(o.scheduler_enabled);
        assert_eq!(o.ignored_args, ["false"]);
    }

    #[test]
    fn a_flag_given_twice_takes_its_last_value_as_in_go() {
        let o = parse(&[
            "-metrics-port=1",
            "--metrics-port",
            "2",
            "--scheduler-enabled=false",
            "--scheduler-enabled",
        ]);
        assert_eq!(o.metrics.port(), Ok(2));
        assert!(o.scheduler_enabled);
    }

    #[test]
    fn unknown_flags_and_bad_values_are_usage_errors() {
        for args in [
            &["-no-such-flag=1"][..],
            &["-port=abc"],
            &["--scheduler-enabled=maybe"],
        ] {
            assert_eq!(try_parse(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
    }
}
