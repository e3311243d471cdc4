//! Sentry's metrics, named as upstream's OpenCensus views (`dapr_sentry_*`, spec §12).
//!
//! Counters are families so that, as with OpenCensus, a series appears only after its first
//! recording; the unlabelled ones use an empty label list.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// A counter without labels that is absent until first incremented.
type LazyCounter = Family<Vec<(String, String)>, Counter>;

/// Every sentry metric; cheap to clone (the values are shared).
#[derive(Clone, Default)]
pub struct Metrics {
    cert_sign_request_received: LazyCounter,
    cert_sign_success: LazyCounter,
    cert_sign_failure: Family<Reason, Counter>,
    servercert_issue_failed: Family<Reason, Counter>,
    issuercert_changed: LazyCounter,
    issuercert_expiry_timestamp: Gauge,
}

impl Metrics {
    /// Registers the metrics in `registry` (which carries the `dapr_sentry` prefix). Counters
    /// are registered without `_total`: the exposition adds it.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "cert_sign_request_received",
            "The number of CSRs received.",
            m.cert_sign_request_received.clone(),
        );
        registry.register(
            "cert_sign_success",
            "The number of certificates issuances that have succeeded.",
            m.cert_sign_success.clone(),
        );
        registry.register(
            "cert_sign_failure",
            "The number of errors occurred when signing the CSR.",
            m.cert_sign_failure.clone(),
        );
        registry.register(
            "servercert_issue_failed",
            "The number of server TLS certificate issuance failures.",
            m.servercert_issue_failed.clone(),
        );
        registry.register(
            "issuercert_changed",
            "The number of issuer cert updates, when issuer cert or key is changed",
            m.issuercert_changed.clone(),
        );
        registry.register(
            "issuercert_expiry_timestamp",
            "The unix timestamp, in seconds, when issuer/root cert will expire.",
            m.issuercert_expiry_timestamp.clone(),
        );
        m
    }

    /// A CSR arrived.
    pub fn request_received(&self) {
        self.cert_sign_request_received
            .get_or_create(&Vec::new())
            .inc();
    }

    /// A certificate was issued.
    pub fn sign_succeeded(&self) {
        self.cert_sign_success.get_or_create(&Vec::new()).inc();
    }

    /// A request failed (upstream always uses reason `sign`).
    pub fn sign_failed(&self) {
        self.cert_sign_failure
            .get_or_create(&Reason {
                reason: "sign".into(),
            })
            .inc();
    }

    /// The CA material was generated or changed.
    pub fn issuer_changed(&self) {
        self.issuercert_changed.get_or_create(&Vec::new()).inc();
    }

    /// Records the issuer certificate's NotAfter (unix seconds).
    pub fn set_issuer_expiry(&self, not_after: i64) {
        self.issuercert_expiry_timestamp.set(not_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_upstream_and_counters_appear_on_first_use() {
        let mut registry = Registry::with_prefix("dapr_sentry");
        let m = Metrics::register(&mut registry);
        m.set_issuer_expiry(1_800_000_000);
        m.sign_failed();
        let text = dapr_kit::metrics::encode_text(&registry);
        assert!(
            text.lines()
                .any(|l| l == "dapr_sentry_issuercert_expiry_timestamp 1800000000"),
            "{text}"
        );
        assert!(
            text.contains("dapr_sentry_cert_sign_failure_total{reason=\"sign\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("dapr_sentry_cert_sign_request_received_total "),
            "{text}"
        );
        m.request_received();
        m.sign_succeeded();
        m.issuer_changed();
        let text = dapr_kit::metrics::encode_text(&registry);
        for line in [
            "dapr_sentry_cert_sign_request_received_total 1",
            "dapr_sentry_cert_sign_success_total 1",
            "dapr_sentry_issuercert_changed_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
