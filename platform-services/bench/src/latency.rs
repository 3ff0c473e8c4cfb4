//! Latency samples and their percentiles.

use std::time::Duration;

/// Every sample of one scenario, in microseconds; exact percentiles (runs are short enough).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u32>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.micros
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The `p`-th percentile (0..=100) by nearest rank; zero when there are no samples.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.micros.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.micros.len()) - 1;
        Duration::from_micros(u64::from(self.micros[i]))
    }
}

/// What one load scenario measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Completed operations inside the measured window.
    pub ops: usize,
    /// Operations that completed but answered wrongly (non-2xx, wrong job result).
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Outcome {
    pub fn from_samples(mut lat: Latencies, errors: usize, elapsed: Duration) -> Self {
        Self {
            ops: lat.len(),
            errors,
            elapsed,
            p50: lat.percentile(50.0),
            p99: lat.percentile(99.0),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut l = Latencies::default();
        for us in (1..=100).rev() {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.percentile(50.0), Duration::from_micros(50));
        assert_eq!(l.percentile(99.0), Duration::from_micros(99));
        assert_eq!(l.percentile(100.0), Duration::from_micros(100));
        assert_eq!(Latencies::default().percentile(99.0), Duration::ZERO);
    }
}
