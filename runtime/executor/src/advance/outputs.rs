//! The end of an execution: flow `outputs` rendered (an output that fails to render fails the
//! execution), retries in a new execution (CREATE_NEW_EXECUTION), the Terminated effect.

use serde_json::{Map, Value as Json};
use weft_flow::expr::Context;

use super::Step;
use crate::context;
use crate::effect::Effect;
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
            && let Some(attempt_number) = self.retry_in_new_execution()
        {
            state = State::Retried;
            let delay = self
                .plan()
                .flow
                .retry
                .as_ref()
                .and_then(|r| r.interval.as_deref())
                .and_then(|i| weft_flow::duration::parse(i).ok())
                .map(|d| d.to_chrono())
                .unwrap_or_default();
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

    /// The attempt number of the next execution when a failure retries in a new execution.
    fn retry_in_new_execution(&self) -> Option<u32> {
        let flow = &self.plan().flow;
        let is_new =
            |r: &weft_flow::model::Retry| r.behavior.as_deref() == Some("CREATE_NEW_EXECUTION");
        // the flow's retry, or that of a failed task (looked at once, at the end)
        let policy = flow.retry.as_ref().filter(|r| is_new(r)).or_else(|| {
            self.exec.task_run_list.iter().find_map(|r| {
                if r.state.current != State::Failed {
                    return None;
                }
                let n = self.plan().by_task_id.get(&r.task_id)?;
                self.plan()
                    .node(*n)
                    .task
                    .as_ref()?
                    .retry
                    .as_ref()
                    .filter(|r| is_new(r))
            })
        })?;
        let attempt = self.exec.metadata.as_ref().map_or(1, |m| m.attempt_number);
        let first = self
            .exec
            .metadata
            .as_ref()
            .map(|m| m.original_created_date)
            .or(self.exec.state.start_date)
            .unwrap_or(self.now);
        super::attempt::next_delay(policy, attempt as usize, first, self.now, 0)
            .map(|_| attempt + 1)
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
