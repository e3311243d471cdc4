//! Starting the healthz and metrics servers every binary runs.

use std::sync::Arc;

use dapr_flags::groups::{HealthzArgs, MetricsArgs};
use prometheus_client::registry::Registry;

use crate::{Runtime, healthz, metrics, net::bind_tcp};

/// Why a common server could not start (fatal at start-up, exit 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    MetricsPort(#[from] dapr_flags::groups::MetricsPortError),
    #[error("failed to listen on {what} {host}:{port}")]
    Bind {
        what: &'static str,
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Binds a listener, naming what it is for in the error.
pub async fn bind(
    what: &'static str,
    host: &str,
    port: u16,
) -> Result<tokio::net::TcpListener, StartError> {
    bind_tcp(host, port)
        .await
        .map_err(|source| StartError::Bind {
            what,
            host: host.to_owned(),
            port,
            source,
        })
}

/// Binds and spawns the healthz server and, when enabled, the metrics server.
///
/// `metrics_host` is the metrics bind host: `--metrics-listen-address` for most services,
/// `--listen-address` where upstream binds metrics there. The `metrics-exporter` readiness gate
/// turns ready once the metrics listener is bound (immediately when metrics are disabled).
pub async fn start_common(
    rt: &mut Runtime,
    healthz_args: &HealthzArgs,
    metrics_args: &MetricsArgs,
    metrics_host: &str,
    registry: Registry,
) -> Result<(), StartError> {
    start_common_with(
        rt,
        healthz_args,
        metrics_args,
        metrics_host,
        registry,
        axum::Router::new(),
    )
    .await
}

/// As [`start_common`], with extra HTTP routes on the healthz server.
pub async fn start_common_with(
    rt: &mut Runtime,
    healthz_args: &HealthzArgs,
    metrics_args: &MetricsArgs,
    metrics_host: &str,
    registry: Registry,
    healthz_routes: axum::Router,
) -> Result<(), StartError> {
    let metrics_gate = rt.readiness().gate("metrics-exporter");
    if metrics_args.enable_metrics {
        let port = metrics_args.port()?;
        let listener = bind("metrics", metrics_host, port).await?;
        let token = rt.shutdown_token();
        let registry = Arc::new(registry);
        rt.spawn_critical("metrics", async move {
            metrics::serve(listener, registry, token).await?;
            Ok(())
        });
    }
    metrics_gate.set_ready();

    let listener = bind(
        "healthz",
        &healthz_args.healthz_listen_address,
        healthz_args.healthz_port,
    )
    .await?;
    let token = rt.shutdown_token();
    let readiness = rt.readiness().clone();
    rt.spawn_critical("healthz", async move {
        healthz::serve_with(listener, readiness, healthz_routes, token).await?;
        Ok(())
    });
    Ok(())
}
