//! Prometheus metrics of this process (text exposition format): executions started and ended
//! by state, executions taken over from a dead process, HTTP requests by status class, attempts
//! dispatched to the pool (and those run here when that failed, by reason) and attempts served
//! for the pool, the attempts run here (their duration by final state, their plugin failures by
//! kind), and the storage requests and conflicts of the store.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weft_store::RequestCounts;

use crate::runner::dispatch::DispatchCounters;
use crate::runner::{AttemptStats, Histogram};

/// Counters of this process.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    started: AtomicU64,
    taken_over: AtomicU64,
    ended: Mutex<BTreeMap<String, u64>>,
    webhooks: Mutex<BTreeMap<&'static str, u64>>,
    /// Attempts this process dispatched to the pool (counted by its dispatchers).
    pub(crate) dispatch: Arc<DispatchCounters>,
    served: AtomicU64,
    /// The attempts run in this process (counted by its workers).
    pub(crate) attempts: Arc<AttemptStats>,
}

impl Metrics {
    pub(crate) fn execution_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// Executions of an expired lease this process took over.
    pub(crate) fn taken_over(&self, executions: usize) {
        self.taken_over
            .fetch_add(executions as u64, Ordering::Relaxed);
    }

    pub(crate) fn execution_ended(&self, state: &str) {
        if let Ok(mut m) = self.ended.lock() {
            *m.entry(state.to_string()).or_default() += 1;
        }
    }

    pub(crate) fn webhook(&self, outcome: &'static str) {
        if let Ok(mut m) = self.webhooks.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    /// An attempt the worker endpoint ran for another instance.
    pub(crate) fn attempt_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition of every counter, with the store's request counts.
    pub(crate) fn render(&self, storage: &RequestCounts) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP weft_executions_started_total Executions started by this process.\n# TYPE weft_executions_started_total counter\nweft_executions_started_total {}",
            self.started.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP weft_executions_taken_over_total Executions of an expired lease (their process died) this process took over.\n# TYPE weft_executions_taken_over_total counter\nweft_executions_taken_over_total {}",
            self.taken_over.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP weft_executions_ended_total Executions that ended in this process, by final state.\n# TYPE weft_executions_ended_total counter"
        );
        if let Ok(m) = self.ended.lock() {
            for (state, n) in m.iter() {
                let _ = writeln!(out, "weft_executions_ended_total{{state=\"{state}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP weft_webhooks_total Webhook calls, by outcome.\n# TYPE weft_webhooks_total counter"
        );
        if let Ok(m) = self.webhooks.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(out, "weft_webhooks_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP weft_attempts_dispatched_total Attempts posted to the pool (dispatch: http) that it ran and answered.\n# TYPE weft_attempts_dispatched_total counter\nweft_attempts_dispatched_total {}",
            self.dispatch.dispatched()
        );
        labelled(
            &mut out,
            "weft_attempt_dispatch_fallbacks_total",
            "Attempts the pool could not have run (connection refused, 429, 503, a 4xx refusal) that ran in this process instead, by reason.",
            "reason",
            self.dispatch.fallbacks(),
        );
        labelled(
            &mut out,
            "weft_attempt_dispatch_lost_total",
            "Attempts sent to the pool whose answer was lost (a timeout, a reset after sending, a 5xx): they fail rather than run twice, by reason.",
            "reason",
            self.dispatch.lost(),
        );
        let _ = writeln!(
            out,
            "# HELP weft_worker_attempts_served_total Attempts this process ran for another instance (POST /api/v1/worker/attempts).\n# TYPE weft_worker_attempts_served_total counter\nweft_worker_attempts_served_total {}",
            self.served.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP weft_task_attempt_duration_seconds Wall time of the task attempts this process ran in its WASM engine, by final state.\n# TYPE weft_task_attempt_duration_seconds histogram"
        );
        for (state, histogram) in self.attempts.durations() {
            histogram_lines(
                &mut out,
                "weft_task_attempt_duration_seconds",
                &format!("state=\"{state}\""),
                &histogram,
            );
        }
        labelled(
            &mut out,
            "weft_plugin_failures_total",
            "Task attempts whose plugin failed in this process's WASM engine, by kind (timeout, fuel_exhausted, memory_limit, output_too_large, exited, trap, task_error, invalid_outputs, instantiate, unknown_type).",
            "kind",
            self.attempts.failures(),
        );
        let _ = writeln!(
            out,
            "# HELP weft_storage_requests_total Object-store requests, by kind.\n# TYPE weft_storage_requests_total counter"
        );
        for (kind, n) in [
            ("get", storage.get),
            ("head", storage.head),
            ("put", storage.put),
            ("list", storage.list),
            ("delete", storage.delete),
        ] {
            let _ = writeln!(out, "weft_storage_requests_total{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP weft_storage_conflicts_total Conditional writes that lost.\n# TYPE weft_storage_conflicts_total counter\nweft_storage_conflicts_total {}",
            storage.conflicts
        );
        let _ = writeln!(
            out,
            "# HELP weft_storage_bytes_total Object-store content bytes.\n# TYPE weft_storage_bytes_total counter\nweft_storage_bytes_total{{direction=\"read\"}} {}\nweft_storage_bytes_total{{direction=\"written\"}} {}",
            storage.bytes_read, storage.bytes_written
        );
        out
    }
}

/// Writes the lines of one labelled series of histogram `name`: its cumulative buckets, `+Inf`,
/// sum and count.
fn histogram_lines(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (le, n) in h.cumulative() {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// Writes counter `name` with one line per value of its `label`.
fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    counts: std::collections::BTreeMap<&'static str, u64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in counts {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label() {
        let m = Metrics::default();
        m.execution_started();
        m.execution_started();
        m.execution_ended("SUCCESS");
        m.execution_ended("FAILED");
        m.execution_ended("SUCCESS");
        m.taken_over(3);
        m.attempt_served();
        m.dispatch.count_dispatched();
        m.dispatch.count_dispatched();
        m.dispatch.count_failed("connect", false);
        m.attempts.record(
            weft_executor::State::Failed,
            std::time::Duration::from_millis(20),
            Some("fuel_exhausted"),
        );
        let text = m.render(&RequestCounts {
            put: 7,
            ..Default::default()
        });
        assert!(text.contains("weft_executions_started_total 2\n"), "{text}");
        assert!(
            text.contains("weft_executions_taken_over_total 3\n"),
            "{text}"
        );
        assert!(text.contains("weft_executions_ended_total{state=\"SUCCESS\"} 2\n"));
        assert!(text.contains("weft_executions_ended_total{state=\"FAILED\"} 1\n"));
        assert!(text.contains("weft_storage_requests_total{kind=\"put\"} 7\n"));
        assert!(
            text.contains("weft_worker_attempts_served_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_attempts_dispatched_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("weft_attempt_dispatch_fallbacks_total{reason=\"connect\"} 1\n"),
            "{text}"
        );
        for line in [
            "# TYPE weft_task_attempt_duration_seconds histogram\n",
            "weft_task_attempt_duration_seconds_bucket{state=\"FAILED\",le=\"0.01\"} 0\n",
            "weft_task_attempt_duration_seconds_bucket{state=\"FAILED\",le=\"0.025\"} 1\n",
            "weft_task_attempt_duration_seconds_bucket{state=\"FAILED\",le=\"+Inf\"} 1\n",
            "weft_task_attempt_duration_seconds_count{state=\"FAILED\"} 1\n",
            "weft_plugin_failures_total{kind=\"fuel_exhausted\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }
}
