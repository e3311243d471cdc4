//! Every flag of upstream's `operator` (dapr/dapr `cmd/operator/options` at v1.18.3, plus
//! `--kubeconfig`, which controller-runtime registers on the same Go flag set).

use std::time::Duration;

use clap::{ArgAction, Parser};
use dapr_flags::{
    GoDuration, ParseDurationError,
    groups::{
        DEFAULT_TRUST_ANCHORS_FILE, HealthzArgs, KubeconfigArgs, LogArgs, MetricsArgs, go_bool,
    },
};

use crate::env::{NamespaceError, OperatorEnv};

/// The operator's command line.
#[derive(Parser, Clone, Debug)]
#[command(name = "operator", about = "Dapr Kubernetes operator", version)]
pub struct Options {
    /// Name of the Configuration object (in $NAMESPACE) holding the control plane's mTLS settings.
    #[arg(long = "config", default_value = "daprsystem")]
    pub config: String,

    /// Watchdog poll interval, e.g. '2m'; '0' (or false/f/no/off) disables it, 'once' runs it once
    /// at start.
    // A string, checked by `Options::validate` (exit 1), as upstream checks it after parsing.
    #[arg(long = "watch-interval", default_value = "0")]
    pub watch_interval: String,

    /// Maximum number of pods in an invalid state the watchdog restarts per minute (<= 0: no limit).
    #[arg(
        long = "max-pod-restarts-per-minute",
        default_value_t = 20,
        allow_negative_numbers = true
    )]
    pub max_pod_restarts_per_minute: i64,

    /// Disable leader election.
    #[arg(long = "disable-leader-election", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub disable_leader_election: bool,

    /// Disable the Service reconciler for Dapr-enabled Deployments and StatefulSets.
    #[arg(long = "disable-service-reconciler", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub disable_service_reconciler: bool,

    /// Namespace to watch Dapr annotated resources in ("" = every namespace).
    #[arg(long = "watch-namespace", default_value = "")]
    pub watch_namespace: String,

    /// Also reconcile Services for Dapr-enabled Argo Rollouts.
    #[arg(long = "enable-argo-rollout-service-reconciler", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub enable_argo_rollout_service_reconciler: bool,

    /// Let the watchdog label pods that already have the sidecar.
    #[arg(long = "watchdog-can-patch-pod-labels", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub watchdog_can_patch_pod_labels: bool,

    /// Filepath to the trust anchors for the Dapr control plane.
    // Declared here rather than through the shared trust group: the operator has no
    // `--trust-domain`/`--sentry-address` (it reads both from the Configuration).
    #[arg(long = "trust-anchors-file", default_value = DEFAULT_TRUST_ANCHORS_FILE)]
    pub trust_anchors_file: String,

    /// Port of the Operator gRPC API.
    #[arg(long = "port", default_value_t = 6500)]
    pub port: u16,

    /// Bind host of the Operator gRPC API ("" = all interfaces).
    #[arg(long = "listen-address", default_value = "")]
    pub listen_address: String,

    /// Port of the CRD conversion webhook (HTTPS upstream).
    #[arg(long = "webhook-server-port", default_value_t = 19443)]
    pub webhook_server_port: u16,

    /// Bind host of the CRD conversion webhook ("" = all interfaces).
    #[arg(long = "webhook-server-listen-address", default_value = "")]
    pub webhook_server_listen_address: String,

    /// Informer resync period, e.g. '10h'; 0 uses the default (10h).
    #[arg(long = "cache-sync-period", default_value = "0")]
    pub cache_sync_period: GoDuration,

    #[command(flatten)]
    pub healthz: HealthzArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub kube: KubeconfigArgs,

    /// Positional arguments Go's `flag` would leave unparsed (ignored).
    #[arg(hide = true)]
    pub ignored_args: Vec<String>,
}

/// When the watchdog runs, from `--watch-interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watchdog {
    Disabled,
    /// One pass when the operator starts.
    Once,
    /// A pass at start, then one per interval (at least 1s).
    Every(Duration),
}

/// Fatal option and environment errors, with upstream's texts (exit 1).
///
/// The inner error's text is part of each message, as upstream formats it, so it is not also
/// exposed as `source()` (an error chain would print it twice).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("invalid value for watch-interval: {0}")]
    InvalidWatchInterval(ParseDurationError),
    #[error("invalid watch-interval value: if not '0' or 'once', must be at least 1s")]
    WatchIntervalTooShort,
    /// Upstream reads `$NAMESPACE` while loading the Configuration, hence the wording.
    #[error(
        "error creating operator: unable to load configuration, config: {config}, err: {error}"
    )]
    Namespace {
        config: String,
        error: NamespaceError,
    },
}

/// The shortest watchdog interval upstream accepts.
const MIN_WATCH_INTERVAL: Duration = Duration::from_secs(1);

impl Options {
    /// Parses the process's argv, Go style.
    pub fn from_args() -> Self {
        dapr_flags::parse()
    }

    /// Upstream's checks of the parsed flags: `--watch-interval` (`cmd/operator/options`).
    pub fn validate(&self) -> Result<Watchdog, OptionsError> {
        let lower = self.watch_interval.to_lowercase();
        match lower.as_str() {
            "0" | "false" | "f" | "no" | "off" => Ok(Watchdog::Disabled),
            "once" => Ok(Watchdog::Once),
            // Go parses the original spelling, not the lower-cased one.
            _ => match self.watch_interval.parse::<GoDuration>() {
                Ok(d) if d.get() >= MIN_WATCH_INTERVAL => Ok(Watchdog::Every(d.get())),
                // Go accepts a negative duration here and then finds it shorter than 1s.
                Ok(_) | Err(ParseDurationError::Negative(_)) => {
                    Err(OptionsError::WatchIntervalTooShort)
                }
                Err(e) => Err(OptionsError::InvalidWatchInterval(e)),
            },
        }
    }

    /// The control-plane namespace; a missing or empty `$NAMESPACE` is fatal at start.
    pub fn control_plane_namespace<'e>(
        &self,
        env: &'e OperatorEnv,
    ) -> Result<&'e str, OptionsError> {
        env.namespace().map_err(|error| OptionsError::Namespace {
            config: self.config.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod tests;
