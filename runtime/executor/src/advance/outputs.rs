//! The end of an execution: flow `outputs` rendered (an output that fails to render fails the
//! execution), retries in a new execution (CREATE_NEW_EXECUTION), the Terminated effect.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value as Json};
use weft_flow::expr::Context;

use super::{Executor, Step};
use crate::context;
use crate::effect::Effect;
use crate::execution::{Execution, ExecutionMetadata};
use crate::plan::Plan;
use crate::state::State;

impl Step<'_> {
    /// Ends the execution in `state`.
    pub(super) fn end_execution(&mut self, mut state: State) {
        if self.exec.state.current.is_terminal() {
            return;
        }
        if state != State::Killed && !self.plan().flow.sla.is_empty() {
            state = self.sla_assertions(state);
        }
        if matches!(state, State::Success | State::Warning) && !self.plan().flow.outputs.is_empty()
        {
            match self.flow_outputs() {
                Ok(o) => self.exec.outputs = Some(o),
                Err(e) => {
                    self.log(None, "ERROR", format!("flow outputs: {e}"));
                    self.exec.outputs = None;
                    state = State::Failed;
                }
            }
        }
        if state == State::Failed
            && let Some((attempt_number, delay)) =
                retry_in_new_execution(self.plan(), self.exec, self.now)
        {
            state = State::Retried;
            self.effects.push(Effect::CreateRetryExecution {
                at: self.now + delay,
                attempt_number,
            });
        }
        if self.exec.state.current == State::Killing && state != State::Killed {
            // a kill ends KILLED whatever the children say
            state = State::Killed;
        }
        self.exec.state.transition(state, self.now);
        self.effects.push(Effect::Terminated { state });
    }

    fn flow_outputs(&self) -> Result<Map<String, Json>, String> {
        let vars = context::flow_outputs(self.plan(), &self.ix, self.exec, &self.ex.globals);
        let ctx = Context {
            vars: &vars,
            now: self.now,
            seed: crate::ids::hash64(&[self.exec.id.as_bytes(), b"outputs"]),
            host: self.ex.host.as_deref(),
        };
        let mut out = Map::new();
        for o in &self.plan().flow.outputs {
            let v = self
                .ex
                .renderer
                .render_value(&o.value, &ctx)
                .map_err(|e| format!("`{}`: {e}", o.id))?;
            out.insert(o.id.clone(), typed(&o.type_name, v));
        }
        Ok(out)
    }
}

/// The attempt number of the next execution and the delay before it when a failed execution
/// retries in a new execution (retry behavior CREATE_NEW_EXECUTION: the flow's retry, or that
/// of a failed task), `None` when it does not (no such retry, or its limits are reached: the
/// attempts are counted across the executions, the duration from the first one's creation).
fn retry_in_new_execution(
    plan: &Plan,
    exec: &Execution,
    now: DateTime<Utc>,
) -> Option<(u32, TimeDelta)> {
    let flow = &plan.flow;
    let is_new =
        |r: &weft_flow::model::Retry| r.behavior.as_deref() == Some("CREATE_NEW_EXECUTION");
    // the flow's retry, or that of a failed task (looked at once, at the end)
    let policy = flow.retry.as_ref().filter(|r| is_new(r)).or_else(|| {
        exec.task_run_list.iter().find_map(|r| {
            if r.state.current != State::Failed {
                return None;
            }
            let n = plan.by_task_id.get(&r.task_id)?;
            plan.node(*n)
                .task
                .as_ref()?
                .retry
                .as_ref()
                .filter(|r| is_new(r))
        })
    })?;
    let attempt = exec.metadata.as_ref().map_or(1, |m| m.attempt_number);
    let first = first_created(exec).unwrap_or(now);
    let seed = crate::ids::hash64(&[exec.id.as_bytes(), b"retry"]);
    super::attempt::next_delay(policy, attempt as usize, first, now, seed)
        .map(|delay| (attempt + 1, delay))
}

/// When the first execution of a chain of retries was created.
fn first_created(exec: &Execution) -> Option<DateTime<Utc>> {
    exec.metadata
        .as_ref()
        .map(|m| m.original_created_date)
        .or_else(|| exec.state.histories.first().map(|h| h.date))
        .or(exec.state.start_date)
}

impl Executor {
    /// For an execution that ended RETRIED, the attempt number of the execution it retries in
    /// and when that one starts: what its `CreateRetryExecution` effect said (computed again
    /// from the date it ended, e.g. by a driver that takes it over).
    pub fn pending_retry(&self, exec: &Execution) -> Option<(u32, DateTime<Utc>)> {
        if exec.state.current != State::Retried {
            return None;
        }
        let ended = exec.state.histories.last().map(|h| h.date)?;
        retry_in_new_execution(&self.plan, exec, ended).map(|(n, delay)| (n, ended + delay))
    }

    /// The new execution a RETRIED one retries in (`CreateRetryExecution`), as Kestra's: the
    /// same flow revision, inputs, labels, variables and trigger, no task run, `parentId` the
    /// retried execution, the same `originalId`, the next attempt number in `metadata`, CREATED
    /// at `now` and starting at `at`. Its id is derived from the retried execution's id and the
    /// attempt number: the same request makes the same execution (created once).
    pub fn retry_execution(
        &self,
        exec: &Execution,
        attempt_number: u32,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Execution {
        let id = crate::ids::retry_execution_id(&exec.id, attempt_number);
        let mut new = Execution::new(&self.plan.flow, id, now);
        new.flow_revision = exec.flow_revision;
        new.inputs = exec.inputs.clone();
        new.labels = exec.labels.clone();
        new.variables = exec.variables.clone();
        new.trigger = exec.trigger.clone();
        new.parent_id = Some(exec.id.clone());
        new.original_id = exec.original_id.clone().or_else(|| Some(exec.id.clone()));
        new.metadata = Some(ExecutionMetadata {
            attempt_number,
            original_created_date: first_created(exec).unwrap_or(now),
        });
        new.schedule_date = (at > now).then_some(at);
        new
    }
}

/// A rendered flow output, typed: STRING keeps text (maps as compact JSON); other types read
/// JSON text when they can.
fn typed(type_name: &str, v: Json) -> Json {
    match (type_name, v) {
        ("STRING" | "ENUM" | "SELECT" | "URI" | "SECRET", Json::String(s)) => Json::String(s),
        ("STRING" | "ENUM" | "SELECT" | "URI" | "SECRET", other) => Json::String(other.to_string()),
        (_, Json::String(s)) => serde_json::from_str(&s).unwrap_or(Json::String(s)),
        (_, other) => other,
    }
}
