//! Every flag of upstream's `placement` (dapr/dapr `cmd/placement/options` at v1.18.3).

use std::time::Duration;

use clap::{ArgAction, Parser};
use dapr_flags::{
    GoDuration,
    groups::{HealthzArgs, LogArgs, MetricsArgs, TrustArgs, go_bool},
};

/// Env var whose truthiness is the default of `--metadata-enabled`.
pub const ENV_METADATA_ENABLED: &str = "DAPR_PLACEMENT_METADATA_ENABLED";

/// The bounds upstream enforces on both keepalive durations.
const KEEPALIVE_MIN: Duration = Duration::from_secs(1);
const KEEPALIVE_MAX: Duration = Duration::from_secs(10);

/// `--metrics-listen-address`'s default; any other value was given on purpose (and is ignored).
const DEFAULT_METRICS_LISTEN_ADDRESS: &str = "0.0.0.0";

/// Placement's command line.
#[derive(Parser, Clone, Debug)]
#[command(name = "placement", about = "Dapr actor placement service", version)]
pub struct Options {
    /// Raft node ID; must name an entry of --initial-cluster.
    #[arg(long = "id", default_value = "dapr-placement-0")]
    pub id: String,

    /// Raft peers `id=host:port` (comma separated, repeatable; the first use replaces the default).
    #[arg(long = "initial-cluster", value_delimiter = ',', action = ArgAction::Append,
          default_value = "dapr-placement-0=127.0.0.1:8201")]
    pub initial_cluster: Vec<String>,

    /// Legacy: ignored since v1.17 (Raft state is always in memory).
    #[arg(long = "inmem-store-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub inmem_store_enabled: bool,

    /// Legacy: ignored since v1.17 (the Helm chart still passes it in HA mode).
    #[arg(long = "raft-logstore-path", default_value = "")]
    pub raft_logstore_path: String,

    /// gRPC port.
    #[arg(long = "port", default_value_t = 50005)]
    pub port: u16,

    /// Bind host of the gRPC server and (as upstream) of the metrics server ("" = all interfaces).
    #[arg(long = "listen-address", default_value = "")]
    pub listen_address: String,

    #[command(flatten)]
    pub healthz: HealthzArgs,

    /// mTLS on the gRPC server and the Raft transport.
    #[arg(long = "tls-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub tls_enabled: bool,

    /// Serve `GET /placement/state` on the healthz server
    /// (default: $DAPR_PLACEMENT_METADATA_ENABLED is truthy).
    #[arg(long = "metadata-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = go_bool)]
    pub metadata_enabled: Option<bool>,

    /// Virtual nodes per host in the hash ring (camelCase, as upstream).
    #[arg(long = "replicationFactor", default_value_t = 100)]
    pub replication_factor: i64,

    /// gRPC keepalive ping interval, between 1s and 10s.
    #[arg(long = "keepalive-time", default_value = "2s")]
    pub keepalive_time: GoDuration,

    /// gRPC keepalive ack timeout, between 1s and 10s.
    #[arg(long = "keepalive-timeout", default_value = "3s")]
    pub keepalive_timeout: GoDuration,

    /// Time for a whole dissemination round before non-responders are kicked.
    #[arg(long = "disseminate-timeout", default_value = "8s")]
    pub disseminate_timeout: GoDuration,

    /// When > 0, defer follow-up rounds by this window after each round.
    #[arg(long = "disseminate-coalesce-window", default_value = "0s")]
    pub disseminate_coalesce_window: GoDuration,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// standalone or kubernetes (not validated, as upstream).
    #[arg(long = "mode", default_value = "standalone")]
    pub mode: String,

    /// Deprecated and ignored (upstream default 10).
    #[arg(long = "max-api-level", hide = true)]
    pub max_api_level: Option<i64>,

    /// Deprecated and ignored (upstream default 0).
    #[arg(long = "min-api-level", hide = true)]
    pub min_api_level: Option<i64>,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Positional arguments pflag would collect and ignore.
    #[arg(hide = true)]
    pub ignored_args: Vec<String>,
}

/// Placement's run mode; anything but `kubernetes` behaves as standalone, as upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Kubernetes,
}

/// Invalid options, checked in upstream's order; each is fatal (exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("invalid value for keepalive-time: value should be between 1s and 10s, got {0}")]
    KeepAliveTime(GoDuration),
    #[error("invalid value for keepalive-timeout: value should be between 1s and 10s, got {0}")]
    KeepAliveTimeout(GoDuration),
}

impl Options {
    /// Parses the process's argv, Go style.
    pub fn from_args() -> Self {
        dapr_flags::parse()
    }

    /// Checks the options in upstream's order; the first failure wins.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let in_range = |d: GoDuration| (KEEPALIVE_MIN..=KEEPALIVE_MAX).contains(&d.get());
        if !in_range(self.keepalive_time) {
            return Err(OptionsError::KeepAliveTime(self.keepalive_time));
        }
        if !in_range(self.keepalive_timeout) {
            return Err(OptionsError::KeepAliveTimeout(self.keepalive_timeout));
        }
        Ok(())
    }

    pub fn run_mode(&self) -> Mode {
        if self.mode == "kubernetes" {
            Mode::Kubernetes
        } else {
            Mode::Standalone
        }
    }

    /// `--metadata-enabled`, else whether `$DAPR_PLACEMENT_METADATA_ENABLED` is truthy.
    pub fn metadata_enabled_or_env(&self) -> bool {
        self.metadata_enabled
            .unwrap_or_else(|| std::env::var(ENV_METADATA_ENABLED).is_ok_and(|v| is_truthy(&v)))
    }

    /// The notices pflag prints on stderr for deprecated flags that were used.
    pub fn deprecation_notices(&self) -> Vec<String> {
        [
            ("max-api-level", self.max_api_level),
            ("min-api-level", self.min_api_level),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| {
            format!(
                "Flag --{name} has been deprecated, this flag will be removed in future releases"
            )
        })
        .collect()
    }

    /// Flags that were given but that upstream itself ignores (kept so old command lines work).
    pub fn legacy_flags_given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if !self.inmem_store_enabled {
            given.push("--inmem-store-enabled");
        }
        if !self.raft_logstore_path.is_empty() {
            given.push("--raft-logstore-path");
        }
        if self.max_api_level.is_some() {
            given.push("--max-api-level");
        }
        if self.min_api_level.is_some() {
            given.push("--min-api-level");
        }
        if self.metrics.metrics_listen_address != DEFAULT_METRICS_LISTEN_ADDRESS {
            given.push("--metrics-listen-address (metrics bind --listen-address)");
        }
        given
    }
}

/// dapr/kit `strings.IsTruthy`: `y`, `yes`, `true`, `t`, `on`, `1`, case-insensitive, trimmed.
pub fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "true" | "t" | "on" | "1"
    )
}

#[cfg(test)]
mod tests;
