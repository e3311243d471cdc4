//! Placement's Prometheus metrics, with upstream's names, help texts and types (spec §11.3).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabel {
    host_namespace: String,
}

/// Handles to every placement metric (cheap to clone).
#[derive(Clone, Default)]
pub struct Metrics {
    runtimes: Family<NamespaceLabel, Gauge>,
    actor_runtimes: Family<NamespaceLabel, Gauge>,
    leader: Gauge,
    raft_leader: Gauge,
}

impl Metrics {
    /// Registers every metric in `registry` (prefix `dapr_placement`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "runtimes_total",
            "The total number of runtimes reported to placement service.",
            metrics.runtimes.clone(),
        );
        registry.register(
            "actor_runtimes_total",
            "The total number of actor runtimes reported to placement service.",
            metrics.actor_runtimes.clone(),
        );
        registry.register(
            "leader_status",
            "Placement server leadership status (1 for leader, 0 for not leader).",
            metrics.leader.clone(),
        );
        registry.register(
            "raft_leader_status",
            "Raft server leadership status (1 for leader, 0 for not leader).",
            metrics.raft_leader.clone(),
        );
        metrics
    }

    pub fn set_runtimes(&self, namespace: &str, runtimes: u64, actor_runtimes: u64) {
        let label = NamespaceLabel {
            host_namespace: namespace.to_owned(),
        };
        self.runtimes
            .get_or_create(&label)
            .set(i64::try_from(runtimes).unwrap_or(i64::MAX));
        self.actor_runtimes
            .get_or_create(&label)
            .set(i64::try_from(actor_runtimes).unwrap_or(i64::MAX));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
        self.raft_leader.set(i64::from(leader));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauges_render_with_upstream_names_and_types() {
        let mut registry = Registry::with_prefix("dapr_placement");
        let metrics = Metrics::register(&mut registry);
        metrics.set_runtimes("ns1", 2, 1);
        metrics.set_leader(true);
        let text = dapr_kit::metrics::encode_text(&registry);
        for line in [
            "# TYPE dapr_placement_runtimes_total gauge",
            "dapr_placement_runtimes_total{host_namespace=\"ns1\"} 2",
            "dapr_placement_actor_runtimes_total{host_namespace=\"ns1\"} 1",
            "# TYPE dapr_placement_leader_status gauge",
            "dapr_placement_leader_status 1",
            "dapr_placement_raft_leader_status 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("dapr_placement_leader_status"))
                .count(),
            1
        );
    }
}
