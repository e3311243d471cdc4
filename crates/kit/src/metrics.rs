//! Prometheus metrics: one `prometheus-client` registry, exposed in the classic text format.
//!
//! `prometheus-client` writes OpenMetrics text, where a counter family `foo` has samples
//! `foo_total` and the exposition ends with `# EOF`. Upstream's consumers (Prometheus and the Go
//! test framework's `expfmt.TextParser`) read text format 0.0.4, in which the family of the sample
//! `foo_total` must itself be called `foo_total`. [`encode_text`] converts, so register counters
//! under their upstream name *without* the `_total` suffix.

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Content type of text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Encodes `registry` in Prometheus text format 0.0.4.
pub fn encode_text(registry: &Registry) -> String {
    let mut open_metrics = String::new();
    if prometheus_client::encoding::text::encode(&mut open_metrics, registry).is_err() {
        // Encoding into a String cannot fail for I/O reasons; a failure means a broken metric.
        tracing::error!("failed to encode metrics");
        return String::new();
    }
    openmetrics_to_text(&open_metrics)
}

/// Rewrites OpenMetrics text into text format 0.0.4 (see the module docs).
pub fn openmetrics_to_text(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut counters = std::collections::HashSet::new();
    for line in input.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            if kind == "counter" {
                counters.insert(name.to_owned());
            }
        }
    }
    for line in input.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind = if kind == "unknown" { "untyped" } else { kind };
            let name = family_name(name, &counters);
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = family_name(name, &counters);
            out.push_str(&format!("# HELP {name} {help}\n"));
            continue;
        }
        let sample_name = line.split(['{', ' ']).next().unwrap_or("");
        if let Some(base) = sample_name.strip_suffix("_created")
            && counters.contains(base)
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn family_name(name: &str, counters: &std::collections::HashSet<String>) -> String {
    if counters.contains(name) {
        format!("{name}_total")
    } else {
        name.to_owned()
    }
}

/// Serves the registry on any path until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new().fallback(move || {
        let registry = registry.clone();
        async move {
            let body = encode_text(&registry);
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(TEXT_CONTENT_TYPE),
                )],
                body,
            )
                .into_response()
        }
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("metrics server started on {addr}/");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::{counter::Counter, gauge::Gauge};

    #[test]
    fn counters_are_exposed_under_their_total_name() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry.register(
            "dapr_sentry_cert_sign_request_received",
            "The number of CSRs received.",
            counter.clone(),
        );
        let gauge: Gauge = Gauge::default();
        registry.register(
            "dapr_sentry_issuercert_expiry_timestamp",
            "Expiry.",
            gauge.clone(),
        );
        counter.inc();
        gauge.set(42);
        let text = encode_text(&registry);
        assert!(text.contains("# TYPE dapr_sentry_cert_sign_request_received_total counter\n"));
        assert!(text.contains("\ndapr_sentry_cert_sign_request_received_total 1\n"));
        assert!(text.contains("# HELP dapr_sentry_cert_sign_request_received_total The number"));
        assert!(text.contains("# TYPE dapr_sentry_issuercert_expiry_timestamp gauge\n"));
        assert!(text.contains("\ndapr_sentry_issuercert_expiry_timestamp 42\n"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn unit_and_created_lines_are_dropped() {
        let input =
            "# HELP c Help.\n# TYPE c counter\n# UNIT c seconds\nc_total 1\nc_created 1.0\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(input),
            "# HELP c_total Help.\n# TYPE c_total counter\nc_total 1\n"
        );
    }
}
