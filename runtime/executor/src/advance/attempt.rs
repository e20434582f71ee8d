//! Attempts of runnable tasks: the RunTask effect, results, `retry` (constant, exponential,
//! random; `maxAttempt`, `maxDuration`, `warningOnRetry`) and the task `timeout`.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value as Json};
use weft_flow::model::Retry;

use super::Step;
use crate::effect::{Effect, RunTask, WorkingDirectory};
use crate::event::{Timer, TimerKind};
use crate::ids;
use crate::index::NO_PARENT;
use crate::plan::{Kind, plugin_properties};
use crate::state::{State, StateInfo};
use crate::taskrun::Attempt;

impl Step<'_> {
    /// Starts the next attempt of a task run.
    pub(super) fn new_attempt(&mut self, pos: u32) {
        let now = self.now;
        let Some(run) = self.run_mut(pos) else { return };
        run.state.transition(State::Running, now);
        let attempts = run.attempts.get_or_insert_with(Vec::new);
        attempts.push(Attempt {
            state: StateInfo::new(State::Running, now),
            metrics: Vec::new(),
            log_file: None,
        });
        let number = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
        let node = self.meta(pos).node;
        let n = self.plan().node(node);
        match n.kind {
            Kind::Runnable => self.run_task_effect(pos, number, now),
            kind => {
                let (state, outputs) = super::inline::run(self, pos, kind);
                self.attempt_ended(pos, number, state, outputs, Vec::new(), None);
                if let Some(exit) = self.pending_exit.take() {
                    self.exit(pos, exit);
                }
            }
        }
    }

    /// Asks a worker for attempt `number` of a task run, started at `started` (its `timeout`
    /// counts from there).
    pub(super) fn run_task_effect(&mut self, pos: u32, number: u32, started: DateTime<Utc>) {
        let node = self.meta(pos).node;
        let n = self.plan().node(node);
        let Some(task) = &n.task else { return };
        let timeout = task
            .timeout
            .as_deref()
            .and_then(|t| self.render_str(pos, t).ok())
            .and_then(|t| weft_flow::duration::parse(&t).ok());
        let run_id = self.run(pos).map(|r| r.id.clone()).unwrap_or_default();
        let working_directory = self.working_directory(pos);
        let mut context = self.context(pos);
        if working_directory.is_some()
            && let Json::Object(m) = &mut context
            && let Some(tr) = m.get("taskrun").cloned()
        {
            // Kestra's name for the task run of a task inside a WorkingDirectory
            m.insert("workerTaskrun".into(), tr);
        }
        let effect = RunTask {
            execution_id: self.exec.id.clone(),
            task_run_id: run_id.clone(),
            attempt: number,
            task_id: task.id.clone(),
            task_type: n.type_name.clone(),
            properties: plugin_properties(task),
            context,
            seed: self.seed(pos),
            timeout,
            working_directory,
            log_level: task.log_level.clone(),
        };
        self.effects.push(Effect::RunTask(Box::new(effect)));
        if let Some(t) = timeout {
            self.effects.push(Effect::WakeAt {
                at: started + t.to_chrono(),
                timer: Timer {
                    task_run_id: Some(run_id),
                    kind: TimerKind::Timeout,
                    number,
                },
            });
        }
    }

    /// The nearest WorkingDirectory above a task run: its position, and that of its child on
    /// the way down to the task run.
    fn working_directory_above(&self, pos: u32) -> Option<(u32, u32)> {
        let mut child = pos;
        let mut cur = self.meta(pos).parent;
        while cur != NO_PARENT {
            let node = self.meta(cur).node;
            if self.plan().node(node).kind == Kind::WorkingDirectory {
                return Some((cur, child));
            }
            child = cur;
            cur = self.meta(cur).parent;
        }
        None
    }

    /// The nearest WorkingDirectory above a task run.
    fn working_directory(&self, pos: u32) -> Option<WorkingDirectory> {
        let (wd, child) = self.working_directory_above(pos)?;
        let run = self.run(wd)?;
        let lane = self.meta(child).lane;
        let first = self
            .ix
            .lanes
            .get(&(wd, lane))
            .and_then(|l| l.kids.first())
            .is_some_and(|&k| k == child)
            && self.run(pos).is_some_and(|r| r.attempt_count() <= 1);
        let n = self.plan().node(self.meta(wd).node);
        Some(WorkingDirectory {
            task_run_id: run.id.clone(),
            task_id: run.task_id.clone(),
            first,
            properties: n.task.as_ref().map(plugin_properties).unwrap_or_default(),
        })
    }

    /// Sets the outputs of the WorkingDirectory above a task run (its `outputFiles`, collected
    /// by the worker after the task run's attempt).
    pub(super) fn set_working_directory_outputs(&mut self, pos: u32, outputs: Map<String, Json>) {
        if let Some((wd, _)) = self.working_directory_above(pos) {
            self.set_outputs(wd, outputs);
        }
    }

    /// An attempt ended (from a worker, a timeout, or a task the executor ran itself).
    pub(super) fn attempt_ended(
        &mut self,
        pos: u32,
        number: u32,
        state: State,
        outputs: Map<String, Json>,
        metrics: Vec<Json>,
        log_file: Option<String>,
    ) {
        let now = self.now;
        let Some(run) = self.run_mut(pos) else { return };
        if run.state.current.is_terminal() || run.state.current != State::Running {
            return;
        }
        let count = run.attempt_count();
        let Some(attempt) = run.attempts.as_mut().and_then(|a| a.last_mut()) else {
            return;
        };
        if count != number as usize || attempt.state.current.is_terminal() {
            return; // a stale result (an earlier attempt, a duplicate)
        }
        let state = if state.is_terminal() {
            state
        } else {
            State::Failed
        };
        attempt.state.transition(state, now);
        attempt.metrics = metrics;
        attempt.log_file = log_file;
        if state == State::Failed
            && let Some(delay) = self.retry_delay(pos)
        {
            self.set_state(pos, State::Retrying);
            if delay <= TimeDelta::zero() {
                self.new_attempt(pos);
            } else {
                let id = self.run(pos).map(|r| r.id.clone());
                self.effects.push(Effect::WakeAt {
                    at: now + delay,
                    timer: Timer {
                        task_run_id: id,
                        kind: TimerKind::Retry,
                        number: number + 1,
                    },
                });
            }
            return;
        }
        if !outputs.is_empty() {
            self.set_outputs(pos, outputs);
        }
        let mut final_state = state;
        if state == State::Success
            && number > 1
            && self.retry_policy(pos).is_some_and(|r| r.warning_on_retry)
        {
            final_state = State::Warning;
        }
        self.finish_run(pos, final_state);
    }

    /// The retry policy of a task run: its task's, else the flow's (RETRY_FAILED_TASK only).
    fn retry_policy(&self, pos: u32) -> Option<&Retry> {
        let node = self.meta(pos).node;
        let task = self.plan().node(node).task.as_ref()?;
        match &task.retry {
            Some(r) => Some(r),
            None => self.plan().flow.retry.as_ref().filter(|r| {
                r.behavior
                    .as_deref()
                    .is_none_or(|b| b == "RETRY_FAILED_TASK")
            }),
        }
    }

    /// The delay before the next attempt, or `None` when no attempt is left.
    pub(super) fn retry_delay(&self, pos: u32) -> Option<TimeDelta> {
        let retry = self.retry_policy(pos)?;
        if retry.behavior.as_deref() == Some("CREATE_NEW_EXECUTION") {
            return None;
        }
        let run = self.run(pos)?;
        let attempts = run.attempts.as_ref()?;
        let first = attempts
            .first()
            .and_then(|a| a.state.start_date)
            .unwrap_or(self.now);
        let seed = ids::hash64(&[run.id.as_bytes(), &(attempts.len() as u64).to_le_bytes()]);
        next_delay(retry, attempts.len(), first, self.now, seed)
    }
}

fn dur(s: Option<&String>) -> Option<TimeDelta> {
    s.and_then(|s| weft_flow::duration::parse(s).ok())
        .map(|d| d.to_chrono())
}

/// The delay before attempt `done + 1` under `retry`, or `None` when `maxAttempt` or
/// `maxDuration` (counted from the first attempt) forbid it. `seed` drives `random`.
pub(crate) fn next_delay(
    retry: &Retry,
    done: usize,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
    seed: u64,
) -> Option<TimeDelta> {
    let max_attempt = retry.max_attempt.map_or(
        if retry.max_duration.is_some() {
            usize::MAX
        } else {
            1
        },
        |m| m as usize,
    );
    if done >= max_attempt {
        return None;
    }
    let interval = dur(retry.interval.as_ref()).unwrap_or_else(|| TimeDelta::seconds(1));
    let delay = match retry.type_name.as_str() {
        "exponential" => {
            let factor = retry.delay_factor.unwrap_or(2.0);
            let exp = i32::try_from(done.saturating_sub(1)).unwrap_or(i32::MAX);
            let ms = (interval.num_milliseconds() as f64) * factor.powi(exp);
            let mut d = TimeDelta::milliseconds(ms.min(i64::MAX as f64 / 2.0) as i64);
            if let Some(max) = dur(retry.max_interval.as_ref()) {
                d = d.min(max);
            }
            d
        }
        "random" => {
            let min = dur(retry.min_interval.as_ref()).unwrap_or(TimeDelta::zero());
            let max = dur(retry.max_interval.as_ref()).unwrap_or(min);
            let span = (max - min).num_milliseconds().max(0);
            let pick = if span == 0 {
                0
            } else {
                (seed % (span as u64 + 1)) as i64
            };
            min + TimeDelta::milliseconds(pick)
        }
        _ => interval,
    };
    if let Some(max) = dur(retry.max_duration.as_ref())
        && (now + delay) - first >= max
    {
        return None;
    }
    Some(delay)
}

/// The retry timer of a task run fired: start the attempt it was for.
pub(super) fn retry_due(step: &mut Step<'_>, pos: u32, number: u32) {
    let Some(run) = step.run(pos) else { return };
    if run.state.current != State::Retrying || run.attempt_count() + 1 != number as usize {
        return;
    }
    if step.stopping() {
        return;
    }
    step.new_attempt(pos);
}

/// The timeout timer of an attempt fired: fail it if it still runs.
pub(super) fn timeout_due(step: &mut Step<'_>, pos: u32, number: u32) {
    let Some(run) = step.run(pos) else { return };
    let running = run.state.current == State::Running
        && run.attempt_count() == number as usize
        && run
            .last_attempt()
            .is_some_and(|a| a.state.current == State::Running);
    if !running {
        return;
    }
    let id = run.id.clone();
    let timeout = step
        .plan()
        .node(step.meta(pos).node)
        .task
        .as_ref()
        .and_then(|t| t.timeout.clone())
        .unwrap_or_default();
    step.effects.push(Effect::CancelTask {
        task_run_id: id,
        attempt: number,
    });
    step.log(Some(pos), "ERROR", format!("timeout after {timeout}"));
    step.attempt_ended(pos, number, State::Failed, Map::new(), Vec::new(), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(json: serde_json::Value) -> Retry {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn delays() {
        let t0 = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let c = retry(
            serde_json::json!({"type": "constant", "interval": "PT2S", "maxDuration": "PT6S"}),
        );
        assert_eq!(next_delay(&c, 1, t0, t0, 0), Some(TimeDelta::seconds(2)));
        assert_eq!(
            next_delay(&c, 2, t0, t0 + TimeDelta::seconds(2), 0),
            Some(TimeDelta::seconds(2))
        );
        assert_eq!(next_delay(&c, 3, t0, t0 + TimeDelta::seconds(4), 0), None);
        let a =
            retry(serde_json::json!({"type": "constant", "interval": "PT0.25S", "maxAttempt": 5}));
        assert!(next_delay(&a, 4, t0, t0, 0).is_some());
        assert_eq!(next_delay(&a, 5, t0, t0, 0), None);
        let e = retry(
            serde_json::json!({"type": "exponential", "interval": "PT1S", "maxInterval": "PT5S", "maxAttempt": 10}),
        );
        assert_eq!(next_delay(&e, 1, t0, t0, 0), Some(TimeDelta::seconds(1)));
        assert_eq!(next_delay(&e, 3, t0, t0, 0), Some(TimeDelta::seconds(4)));
        assert_eq!(next_delay(&e, 4, t0, t0, 0), Some(TimeDelta::seconds(5)));
        let r = retry(
            serde_json::json!({"type": "random", "minInterval": "PT1S", "maxInterval": "PT2S", "maxAttempt": 3}),
        );
        let d = next_delay(&r, 1, t0, t0, 12345).unwrap();
        assert!(d >= TimeDelta::seconds(1) && d <= TimeDelta::seconds(2));
    }
}
