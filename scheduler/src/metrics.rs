//! The scheduler's Prometheus metrics with upstream's names, help texts, labels and types
//! (spec §13; upstream `pkg/scheduler/monitoring`). Labelled series appear on first record.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    concurrency_key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoLabels {}

/// Why a sidecar stream or request failed (`sidecar_errors_total{reason}`).
#[derive(Clone, Copy, Debug)]
pub enum SidecarError {
    SendFailed,
    RecvFailed,
    AuthFailed,
}

impl SidecarError {
    fn label(self) -> &'static str {
        match self {
            SidecarError::SendFailed => "send_failed",
            SidecarError::RecvFailed => "recv_failed",
            SidecarError::AuthFailed => "auth_failed",
        }
    }
}

fn latency_histogram() -> Histogram {
    // OpenCensus drops the view's 0 bound.
    Histogram::new([100.0, 500.0, 1000.0, 5000.0, 10000.0])
}

/// Handles to every scheduler metric (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    sidecars_connected: Gauge,
    created: Family<TypeLabel, Counter>,
    created_failed: Family<TypeLabel, Counter>,
    deleted: Family<TypeLabel, Counter>,
    bulk_deleted: Family<NoLabels, Counter>,
    triggered: Family<TypeLabel, Counter>,
    failed: Family<TypeLabel, Counter>,
    undelivered: Family<TypeLabel, Counter>,
    latency: Family<TypeLabel, Histogram>,
    inflight: Family<KeyLabel, Gauge>,
    pending: Family<KeyLabel, Gauge>,
    throttled: Family<KeyLabel, Counter>,
    sidecar_errors: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sidecars_connected: Gauge::default(),
            created: Family::default(),
            created_failed: Family::default(),
            deleted: Family::default(),
            bulk_deleted: Family::default(),
            triggered: Family::default(),
            failed: Family::default(),
            undelivered: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            inflight: Family::default(),
            pending: Family::default(),
            throttled: Family::default(),
            sidecar_errors: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric in `registry` (prefix `dapr_scheduler`).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "sidecars_connected",
            "The number of dapr sidecars actively connected to the scheduler service.",
            m.sidecars_connected.clone(),
        );
        registry.register(
            "jobs_created",
            "The total number of jobs scheduled.",
            m.created.clone(),
        );
        registry.register(
            "jobs_created_failed",
            "The total number of failed job creation attempts.",
            m.created_failed.clone(),
        );
        registry.register(
            "jobs_deleted",
            "The total number of deleted jobs.",
            m.deleted.clone(),
        );
        registry.register(
            "jobs_bulk_deleted",
            "The total number of bulk job deletion operations.",
            m.bulk_deleted.clone(),
        );
        registry.register(
            "jobs_triggered",
            "The total number of successfully triggered jobs.",
            m.triggered.clone(),
        );
        registry.register(
            "jobs_failed",
            "The total number of failed jobs.",
            m.failed.clone(),
        );
        registry.register(
            "jobs_undelivered",
            "The total number of undelivered jobs.",
            m.undelivered.clone(),
        );
        registry.register(
            "trigger_latency",
            "The total time it takes to trigger a job from the scheduler service.",
            m.latency.clone(),
        );
        registry.register(
            "concurrency_inflight",
            "Current number of in-flight triggers subject to global concurrency limits on this scheduler instance.",
            m.inflight.clone(),
        );
        registry.register(
            "concurrency_pending",
            "Current number of triggers waiting for a concurrency slot on this scheduler instance.",
            m.pending.clone(),
        );
        registry.register(
            "concurrency_throttled",
            "Total number of triggers that were throttled by global concurrency limits.",
            m.throttled.clone(),
        );
        registry.register(
            "sidecar_errors",
            "The total number of sidecar connection errors.",
            m.sidecar_errors.clone(),
        );
        m
    }

    pub fn stream_opened(&self) {
        self.sidecars_connected.inc();
    }

    pub fn stream_closed(&self) {
        self.sidecars_connected.dec();
    }

    pub fn created(&self, kind: &'static str) {
        self.created
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    pub fn created_failed(&self, kind: &'static str) {
        self.created_failed
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    pub fn deleted(&self, kind: &'static str) {
        self.deleted
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    pub fn bulk_deleted(&self) {
        self.bulk_deleted.get_or_create(&NoLabels {}).inc();
    }

    pub fn triggered(&self, kind: &'static str, latency_ms: u64) {
        self.triggered
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        self.latency
            .get_or_create(&TypeLabel { r#type: kind })
            .observe(latency_ms as f64);
    }

    pub fn failed(&self, kind: &'static str, latency_ms: u64) {
        self.failed.get_or_create(&TypeLabel { r#type: kind }).inc();
        self.latency
            .get_or_create(&TypeLabel { r#type: kind })
            .observe(latency_ms as f64);
    }

    pub fn undelivered(&self, kind: &'static str) {
        self.undelivered
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    pub fn sidecar_error(&self, reason: SidecarError) {
        self.sidecar_errors
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    pub fn concurrency_inflight(&self, key: &str, value: i64) {
        self.inflight
            .get_or_create(&KeyLabel {
                concurrency_key: key.to_owned(),
            })
            .set(value);
    }

    pub fn concurrency_pending(&self, key: &str, value: i64) {
        self.pending
            .get_or_create(&KeyLabel {
                concurrency_key: key.to_owned(),
            })
            .set(value);
    }

    pub fn concurrency_throttled(&self, key: &str) {
        self.throttled
            .get_or_create(&KeyLabel {
                concurrency_key: key.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_render_with_upstream_names_types_and_buckets() {
        let mut registry = Registry::with_prefix("dapr_scheduler");
        let m = Metrics::register(&mut registry);
        m.stream_opened();
        m.created("job");
        m.bulk_deleted();
        m.triggered("actor", 700);
        m.sidecar_error(SidecarError::AuthFailed);
        let text = dapr_kit::metrics::encode_text(&registry);
        for line in [
            "# TYPE dapr_scheduler_sidecars_connected gauge",
            "dapr_scheduler_sidecars_connected 1",
            "# TYPE dapr_scheduler_jobs_created_total counter",
            "dapr_scheduler_jobs_created_total{type=\"job\"} 1",
            "dapr_scheduler_jobs_bulk_deleted_total 1",
            "dapr_scheduler_jobs_triggered_total{type=\"actor\"} 1",
            "dapr_scheduler_trigger_latency_bucket{le=\"500.0\",type=\"actor\"} 0",
            "dapr_scheduler_trigger_latency_bucket{le=\"1000.0\",type=\"actor\"} 1",
            "dapr_scheduler_sidecar_errors_total{reason=\"auth_failed\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // Unrecorded labelled series are absent.
        assert!(!text.contains("jobs_failed_total{"));
    }
}
