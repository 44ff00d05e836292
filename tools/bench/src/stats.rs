//! Latency percentiles and rates.

use std::time::Duration;

/// Recorded latencies.
#[derive(Default, Clone)]
pub struct Latencies {
    samples_us: Vec<u64>,
}

impl Latencies {
    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples_us
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Merges another set.
    pub fn merge(&mut self, other: Latencies) {
        self.samples_us.extend(other.samples_us);
    }

    /// The `p`-th percentile (0..=100) in milliseconds, or 0 with no samples.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.samples_us.is_empty() {
            return 0.0;
        }
        self.samples_us.sort_unstable();
        let rank = ((p / 100.0) * (self.samples_us.len() - 1) as f64).round() as usize;
        self.samples_us[rank.min(self.samples_us.len() - 1)] as f64 / 1000.0
    }
}

/// Rounds to two decimals for the report.
pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
