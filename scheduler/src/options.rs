//! Every flag of upstream's `scheduler` (dapr/dapr `cmd/scheduler/options` at v1.18.3).

use std::{num::NonZeroU32, path::PathBuf};

use clap::{ArgAction, Parser};
use dapr_flags::groups::{HealthzArgs, KubeconfigArgs, LogArgs, MetricsArgs, TrustArgs, go_bool};

use crate::quantity::{self, QuantityError};

/// `--metrics-listen-address`'s default; any other value was given on purpose (and is ignored).
const DEFAULT_METRICS_LISTEN_ADDRESS: &str = "0.0.0.0";

/// Scheduler's command line.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "scheduler",
    about = "Dapr jobs and actor reminders scheduler",
    version
)]
pub struct Options {
    /// gRPC port.
    #[arg(long = "port", default_value_t = 50006)]
    pub port: u16,

    #[command(flatten)]
    pub healthz: HealthzArgs,

    /// Bind host of the gRPC server and (as upstream) of the metrics server ("" = all interfaces).
    #[arg(long = "listen-address", default_value = "")]
    pub listen_address: String,

    /// host:port advertised to daprd by WatchHosts instead of the detected address.
    #[arg(long = "override-broadcast-host-port")]
    pub override_broadcast_host_port: Option<String>,

    /// mTLS on the gRPC server and etcd peer TLS (always on in kubernetes mode).
    #[arg(long = "tls-enabled", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub tls_enabled: bool,

    #[command(flatten)]
    pub trust: TrustArgs,

    /// standalone or kubernetes (not validated, as upstream).
    #[arg(long = "mode", default_value = "standalone")]
    pub mode: String,

    #[command(flatten)]
    pub kubeconfig: KubeconfigArgs,

    /// etcd member name and cron replica id.
    #[arg(long = "id", default_value = "dapr-scheduler-server-0")]
    pub id: String,

    /// Embed the etcd member; false connects to --etcd-client-endpoints instead.
    #[arg(long = "etcd-embed", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub etcd_embed: bool,

    /// etcd peers `id=URL` (comma separated, repeatable; the first use replaces the default).
    #[arg(long = "etcd-initial-cluster", value_delimiter = ',', action = ArgAction::Append,
          default_value = "dapr-scheduler-server-0=http://localhost:2380")]
    pub etcd_initial_cluster: Vec<String>,

    #[arg(long = "etcd-data-dir", default_value = "./data")]
    pub etcd_data_dir: String,

    #[arg(long = "etcd-client-port", default_value_t = 2379)]
    pub etcd_client_port: u64,

    #[arg(long = "etcd-client-listen-address", default_value = "localhost")]
    pub etcd_client_listen_address: String,

    /// A Kubernetes quantity (e.g. `16Mi`).
    #[arg(long = "etcd-space-quota", default_value = "9.2E")]
    pub etcd_space_quota: String,

    /// periodic or revision.
    #[arg(long = "etcd-compaction-mode", default_value = "revision")]
    pub etcd_compaction_mode: String,

    /// Revisions or a duration, per --etcd-compaction-mode.
    #[arg(long = "etcd-compaction-retention", default_value = "1000000")]
    pub etcd_compaction_retention: String,

    #[arg(long = "etcd-snapshot-count", default_value_t = 100_000)]
    pub etcd_snapshot_count: u64,

    #[arg(long = "etcd-max-snapshots", default_value_t = 10)]
    pub etcd_max_snapshots: u64,

    #[arg(long = "etcd-max-wals", default_value_t = 10)]
    pub etcd_max_wals: u64,

    #[arg(long = "etcd-backend-batch-limit", default_value_t = 10_000)]
    pub etcd_backend_batch_limit: i64,

    /// A Go duration, checked when the etcd member is configured.
    #[arg(long = "etcd-backend-batch-interval", default_value = "100ms")]
    pub etcd_backend_batch_interval: String,

    #[arg(long = "etcd-max-txn-ops", default_value_t = 10_000)]
    pub etcd_max_txn_ops: u64,

    #[arg(
        long = "etcd-experimental-bootstrap-defrag-threshold-megabytes",
        default_value_t = 100
    )]
    pub etcd_experimental_bootstrap_defrag_threshold_megabytes: u64,

    #[arg(long = "etcd-initial-election-tick-advance", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub etcd_initial_election_tick_advance: bool,

    /// basic or extensive.
    #[arg(long = "etcd-metrics", default_value = "basic")]
    pub etcd_metrics: String,

    /// External etcd endpoints (comma separated, repeatable); only without --etcd-embed.
    #[arg(long = "etcd-client-endpoints", value_delimiter = ',', action = ArgAction::Append)]
    pub etcd_client_endpoints: Vec<String>,

    #[arg(long = "etcd-client-username", default_value = "")]
    pub etcd_client_username: String,

    #[arg(long = "etcd-client-password", default_value = "")]
    pub etcd_client_password: String,

    /// Where the SVID and trust anchors are written (default $TMPDIR/secrets/dapr.io/tls).
    #[arg(long = "identity-directory-write", hide = true)]
    pub identity_directory_write: Option<String>,

    /// Cron worker loops.
    #[arg(long = "workers", default_value_t = 2048)]
    pub workers: u32,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Positional arguments pflag would collect and ignore.
    #[arg(hide = true)]
    pub ignored_args: Vec<String>,
}

/// Scheduler's run mode; anything but `kubernetes` behaves as standalone, as upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Kubernetes,
}

/// What [`Options::validate`] derives from the flags it checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validated {
    pub mode: Mode,
    /// `--etcd-space-quota` in bytes (0 = etcd's default, as upstream's `AsInt64` quirk gives).
    pub etcd_space_quota: i64,
}

/// Invalid options, checked in upstream's order; each is fatal (exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    /// The quantity error is part of the message (not a `source`), as upstream formats it.
    #[error("failed to parse etcd space quota: {0}")]
    SpaceQuota(QuantityError),
    #[error("kubeconfig flag is only valid in --mode=kubernetes")]
    KubeconfigOutsideKubernetes,
    #[error("cannot use --etcd-client-endpoints with --etcd-embed")]
    EndpointsWithEmbed,
    #[error("cannot use --etcd-client-username with --etcd-embed")]
    UsernameWithEmbed,
    #[error("cannot use --etcd-client-password with --etcd-embed")]
    PasswordWithEmbed,
    #[error("must specify --etcd-client-endpoints when not using embedded etcd")]
    EndpointsRequired,
}

/// `--workers=0`, which upstream's cron engine refuses when it is created (after etcd is up, so
/// not at option parsing); the message is go-etcd-cron's, prefixed as dapr does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("fail to create etcd-cron: workers must be larger than 0")]
pub struct NoWorkersError;

impl Options {
    /// Parses the process's argv, Go style.
    pub fn from_args() -> Self {
        dapr_flags::parse()
    }

    /// Checks the options in upstream's order; the first failure wins.
    pub fn validate(&self) -> Result<Validated, OptionsError> {
        let etcd_space_quota =
            quantity::parse_as_int64(&self.etcd_space_quota).map_err(OptionsError::SpaceQuota)?;
        let mode = if self.mode == "kubernetes" {
            Mode::Kubernetes
        } else {
            Mode::Standalone
        };
        if self.kubeconfig.kubeconfig.is_some() && mode != Mode::Kubernetes {
            return Err(OptionsError::KubeconfigOutsideKubernetes);
        }
        let endpoints = self.etcd_client_endpoints();
        if self.etcd_embed {
            if !endpoints.is_empty() {
                return Err(OptionsError::EndpointsWithEmbed);
            }
            if !self.etcd_client_username.is_empty() {
                return Err(OptionsError::UsernameWithEmbed);
            }
            if !self.etcd_client_password.is_empty() {
                return Err(OptionsError::PasswordWithEmbed);
            }
        } else if endpoints.is_empty() {
            return Err(OptionsError::EndpointsRequired);
        }
        Ok(Validated {
            mode,
            etcd_space_quota,
        })
    }

    /// The cron engine's worker count, which must be positive.
    pub fn cron_workers(&self) -> Result<NonZeroU32, NoWorkersError> {
        NonZeroU32::new(self.workers).ok_or(NoWorkersError)
    }

    /// `--etcd-client-endpoints` as pflag's string slice holds it (`--flag=` is an empty list).
    pub fn etcd_client_endpoints(&self) -> &[String] {
        go_string_slice(&self.etcd_client_endpoints)
    }

    /// `--etcd-initial-cluster` as pflag's string slice holds it.
    pub fn etcd_initial_cluster(&self) -> &[String] {
        go_string_slice(&self.etcd_initial_cluster)
    }

    /// `--identity-directory-write`, else `$TMPDIR/secrets/dapr.io/tls` (Go's `os.TempDir()`).
    pub fn identity_directory_write_or_default(&self) -> PathBuf {
        self.identity_directory_write.as_ref().map_or_else(
            || {
                let tmp = std::env::var_os("TMPDIR")
                    .filter(|t| !t.is_empty())
                    .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
                tmp.join("secrets/dapr.io/tls")
            },
            PathBuf::from,
        )
    }

    /// Flags that were given but that upstream itself ignores.
    pub fn unused_flags_given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.metrics.metrics_listen_address != DEFAULT_METRICS_LISTEN_ADDRESS {
            given.push("--metrics-listen-address (metrics bind --listen-address)");
        }
        given
    }
}

/// pflag reads `--flag=` (one empty value) as an empty string slice.
fn go_string_slice(values: &[String]) -> &[String] {
    match values {
        [only] if only.is_empty() => &[],
        _ => values,
    }
}

#[cfg(test)]
mod tests;
