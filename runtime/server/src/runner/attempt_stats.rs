//! Counters of the attempts this process ran in its WASM engine (for a driver of its own, or
//! for another instance through the worker endpoint), for the server's Prometheus metrics: their
//! wall time by final state, as a histogram, and the plugin failures by kind
//! ([`weft_engine::AttemptFailure::kind`]). An attempt is counted where its plugin ran.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use weft_executor::State;

/// The upper bounds of the duration buckets, in seconds (Prometheus `le`): from a warm `Return`
/// (tens of µs) to a task at the default maximum timeout.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];

/// A histogram of durations: counts per bucket (not cumulative), their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or under each bound of [`DURATION_BUCKETS`] and over the one before.
    pub buckets: [u64; DURATION_BUCKETS.len()],
    /// The sum of all observations, in seconds.
    pub sum: f64,
    /// How many observations, those over the last bound included.
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = DURATION_BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// The cumulative count at each bound, as Prometheus exposes buckets.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        DURATION_BUCKETS
            .iter()
            .zip(self.buckets.iter())
            .scan(0u64, |total, (le, n)| {
                *total += n;
                Some((*le, *total))
            })
    }
}

/// The attempts of this process: durations by final state, plugin failures by kind.
#[derive(Debug, Default)]
pub struct AttemptStats {
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    failures: Mutex<BTreeMap<&'static str, u64>>,
}

impl AttemptStats {
    /// Counts an attempt that ended in `state` after `took`; `failure` is the kind of the
    /// plugin's failure, if it failed in the engine.
    pub(crate) fn record(&self, state: State, took: Duration, failure: Option<&'static str>) {
        if let Ok(mut m) = self.durations.lock() {
            m.entry(state.as_str())
                .or_default()
                .observe(took.as_secs_f64());
        }
        if let Some(kind) = failure
            && let Ok(mut m) = self.failures.lock()
        {
            *m.entry(kind).or_default() += 1;
        }
    }

    /// The durations so far, by final state.
    pub fn durations(&self) -> BTreeMap<&'static str, Histogram> {
        self.durations.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The plugin failures so far, by kind.
    pub fn failures(&self) -> BTreeMap<&'static str, u64> {
        self.failures.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_their_bucket_and_failures_are_counted_by_kind() {
        let stats = AttemptStats::default();
        stats.record(State::Success, Duration::from_micros(30), None);
        stats.record(State::Success, Duration::from_millis(30), None);
        stats.record(State::Failed, Duration::from_secs(2), Some("timeout"));
        stats.record(State::Failed, Duration::from_secs(900), Some("timeout"));
        stats.record(State::Failed, Duration::from_millis(3), Some("trap"));

        let durations = stats.durations();
        let ok = &durations["SUCCESS"];
        assert_eq!(ok.count, 2);
        let cumulative: Vec<(f64, u64)> = ok.cumulative().collect();
        assert_eq!(cumulative[0], (0.001, 1));
        assert_eq!(cumulative[3], (0.025, 1));
        assert_eq!(cumulative[4], (0.05, 2));
        let failed = &durations["FAILED"];
        assert_eq!(failed.count, 3);
        // over the last bound: only in the count (the `+Inf` bucket)
        assert_eq!(failed.cumulative().last(), Some((300.0, 2)));
        assert!((failed.sum - 902.003).abs() < 1e-9, "{}", failed.sum);

        let failures = stats.failures();
        assert_eq!(failures["timeout"], 2);
        assert_eq!(failures["trap"], 1);
        assert_eq!(failures.len(), 2);
    }
}
