//! Pause: `delay`/`pauseDuration` (resume by itself), `timeout` (fail), manual resume with
//! `onResume` inputs, and the deprecated `tasks` run after the resume.

use chrono::TimeDelta;
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use weft_flow::model::Input;

use super::{Executor, Step};
use crate::effect::Effect;
use crate::error::ExecutorError;
use crate::event::{Timer, TimerKind};
use crate::execution::Execution;
use crate::index::Agg;
use crate::inputs::{InputContext, RawInput};
use crate::plan::BlockKind;
use crate::state::State;

fn duration(step: &Step<'_>, pos: u32, name: &str) -> Option<TimeDelta> {
    let node = step.meta(pos).node;
    let n = step.plan().node(node);
    let raw = match name {
        "timeout" => n.task.as_ref()?.timeout.clone()?,
        _ => n.prop(name)?.as_str()?.to_string(),
    };
    let text = step.render_str(pos, &raw).ok()?;
    weft_flow::duration::parse(text.trim())
        .ok()
        .map(|d| d.to_chrono())
}

/// Starts a Pause task run: RUNNING, then PAUSED with its timers.
pub(super) fn begin(step: &mut Step<'_>, pos: u32) {
    step.set_state(pos, State::Running);
    let node = step.meta(pos).node;
    let agg = Agg {
        body: step.plan().node(node).block_of(&BlockKind::Tasks),
        ..Agg::default()
    };
    step.ix.aggs.insert(pos, agg);
    step.set_state(pos, State::Paused);
    if step.exec.state.current == State::Running {
        step.exec.state.transition(State::Paused, step.now);
    }
    timers(step, pos, step.now);
}

/// Asks for the timers of a Pause task run paused at `since`: its `delay` and its `timeout`.
pub(super) fn timers(step: &mut Step<'_>, pos: u32, since: chrono::DateTime<chrono::Utc>) {
    let id = step.run(pos).map(|r| r.id.clone());
    let delay = duration(step, pos, "pauseDuration").or_else(|| duration(step, pos, "delay"));
    let timeout = duration(step, pos, "timeout");
    for (d, kind) in [
        (delay, TimerKind::PauseDelay),
        (timeout, TimerKind::PauseTimeout),
    ] {
        if let Some(d) = d {
            step.effects.push(Effect::WakeAt {
                at: since + d,
                timer: Timer {
                    task_run_id: id.clone(),
                    kind,
                    number: 0,
                },
            });
        }
    }
}

/// Resumes one paused task run.
fn resume_run(step: &mut Step<'_>, pos: u32, inputs: Option<Map<String, Json>>) {
    step.set_state(pos, State::Running);
    if let Some(inputs) = inputs.filter(|i| !i.is_empty()) {
        let mut out = Map::new();
        out.insert("onResume".into(), Json::Object(inputs));
        step.set_outputs(pos, out);
    }
    unpause_execution(step);
    let node = step.meta(pos).node;
    let has_tasks = step
        .plan()
        .node(node)
        .block_of(&BlockKind::Tasks)
        .and_then(|b| step.plan().node(node).blocks.get(b as usize))
        .is_some_and(|b| !b.nodes.is_empty());
    if has_tasks {
        step.evaluate(pos, None);
    } else {
        step.finish_run(pos, State::Success);
    }
}

/// The execution goes back to RUNNING once no task run is paused.
fn unpause_execution(step: &mut Step<'_>) {
    if step.exec.state.current != State::Paused {
        return;
    }
    let any_paused = step.ix.active.iter().any(|&p| {
        step.run(p)
            .is_some_and(|r| r.state.current == State::Paused)
    });
    if !any_paused {
        step.exec.state.transition(State::Running, step.now);
    }
}

impl Step<'_> {
    /// Resumes every paused task run.
    pub(super) fn resume(&mut self, inputs: Map<String, Json>) {
        let paused: Vec<u32> = self
            .ix
            .active
            .iter()
            .copied()
            .filter(|&p| {
                self.run(p)
                    .is_some_and(|r| r.state.current == State::Paused)
            })
            .collect();
        for p in paused {
            resume_run(self, p, Some(inputs.clone()));
        }
    }
}

/// The delay of a pause ended: resume (or apply its `behavior`).
pub(super) fn delay_due(step: &mut Step<'_>, pos: u32) {
    if step.state_of(pos) != State::Paused {
        return;
    }
    let node = step.meta(pos).node;
    let behavior = step
        .plan()
        .node(node)
        .prop("behavior")
        .and_then(Json::as_str)
        .unwrap_or("RESUME")
        .to_string();
    match behavior.as_str() {
        "WARN" => end_paused(step, pos, State::Warning),
        "FAIL" => end_paused(step, pos, State::Failed),
        "CANCEL" => end_paused(step, pos, State::Cancelled),
        _ => resume_run(step, pos, None),
    }
}

/// The timeout of a pause ended without a resume: the task run fails.
pub(super) fn timeout_due(step: &mut Step<'_>, pos: u32) {
    if step.state_of(pos) != State::Paused {
        return;
    }
    step.log(
        Some(pos),
        "ERROR",
        "the pause timed out before it was resumed".into(),
    );
    end_paused(step, pos, State::Failed);
}

fn end_paused(step: &mut Step<'_>, pos: u32, state: State) {
    step.finish_run(pos, state);
    unpause_execution(step);
}

impl Executor {
    /// Types and validates the `onResume` inputs sent to resume `exec`, as flow inputs are
    /// (Kestra's wording in errors): the inputs declared by the `onResume` of its paused Pause
    /// task runs. Send the result with [`crate::Event::Resume`]. Scans the task runs once (a
    /// resume is one request, not an `advance`).
    pub fn resume_inputs(
        &self,
        exec: &Execution,
        raw: &IndexMap<String, RawInput>,
        ctx: &InputContext<'_>,
    ) -> Result<Map<String, Json>, ExecutorError> {
        let not_allowed = |reason: String| ExecutorError::NotAllowed {
            execution: exec.id.clone(),
            action: "resumed",
            reason,
        };
        if exec.state.current != State::Paused {
            return Err(not_allowed(format!(
                "it is {}, not PAUSED",
                exec.state.current.as_str()
            )));
        }
        let mut declared: Vec<Input> = Vec::new();
        for run in exec
            .task_run_list
            .iter()
            .filter(|r| r.state.current == State::Paused)
        {
            let Some(task) = self
                .plan
                .by_task_id
                .get(&run.task_id)
                .and_then(|&n| self.plan.node(n).task.as_ref())
            else {
                continue;
            };
            let Some(list) = task.properties.get("onResume") else {
                continue;
            };
            let inputs: Vec<Input> = serde_json::from_value(list.clone()).map_err(|e| {
                not_allowed(format!(
                    "the `onResume` of task `{}` cannot be read: {e}",
                    task.id
                ))
            })?;
            for i in inputs {
                if !declared.iter().any(|d| d.id == i.id) {
                    declared.push(i);
                }
            }
        }
        let mut flow = self.plan.flow.clone();
        flow.inputs = declared;
        crate::inputs::read_inputs(&flow, raw, ctx).map_err(ExecutorError::Inputs)
    }
}
