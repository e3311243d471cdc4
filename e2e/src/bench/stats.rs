//! Latency and throughput summaries: pure functions over recorded samples.

use std::time::Duration;

use serde::Serialize;

/// One concurrency level's outcome, as written to the results JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelSummary {
    pub concurrency: usize,
    /// Successful requests started inside the measured window.
    pub requests: u64,
    /// Failed requests started inside the measured window.
    pub errors: u64,
    /// Measured window: end of warm-up to the last completion.
    pub window_s: f64,
    /// Successful requests per second over the window.
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first error seen, to tell a broken setup from load shedding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl LevelSummary {
    /// Summarises successful-request latencies (any order) and the error count over `window`.
    pub fn new(
        concurrency: usize,
        mut latencies: Vec<Duration>,
        errors: u64,
        window: Duration,
        first_error: Option<String>,
    ) -> Self {
        latencies.sort_unstable();
        let requests = latencies.len() as u64;
        let window_s = window.as_secs_f64();
        let rps = if window_s > 0.0 {
            requests as f64 / window_s
        } else {
            0.0
        };
        Self {
            concurrency,
            requests,
            errors,
            window_s,
            rps,
            p50_ms: ms(percentile(&latencies, 50.0)),
            p90_ms: ms(percentile(&latencies, 90.0)),
            p99_ms: ms(percentile(&latencies, 99.0)),
            max_ms: ms(latencies.last().copied().unwrap_or_default()),
            first_error,
        }
    }
}

/// Nearest-rank percentile of sorted samples; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank: the smallest sample with at least p% of samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(v: &[u64]) -> Vec<Duration> {
        v.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&s, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&millis(&[7]), 99.0), Duration::from_millis(7));
    }

    #[test]
    fn no_samples_give_zeroes_not_a_panic() {
        let s = LevelSummary::new(4, Vec::new(), 3, Duration::ZERO, None);
        assert_eq!((s.requests, s.errors, s.rps, s.p99_ms), (0, 3, 0.0, 0.0));
    }

    #[test]
    fn throughput_is_successes_over_the_window() {
        let s = LevelSummary::new(2, millis(&[3, 1, 2, 4]), 1, Duration::from_secs(2), None);
        assert_eq!(s.rps, 2.0);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.max_ms, 4.0);
    }
}
