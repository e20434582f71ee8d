//! Flow `sla`: MAX_DURATION (a timer from the start) and EXECUTION_ASSERTION (checked when the
//! execution ends). A violation adds the SLA's labels and, by `behavior`, fails (FAIL) or cancels
//! (CANCEL) the execution, or does nothing more (NONE).

use serde_json::Value as Json;
use weft_flow::expr::Context;

use super::{Step, truthy};
use crate::context;
use crate::effect::Effect;
use crate::event::{Timer, TimerKind};
use crate::execution::upsert_label;
use crate::state::State;

impl Step<'_> {
    /// Asks for the timers of MAX_DURATION SLAs.
    pub(super) fn sla_timers(&mut self) {
        for (i, sla) in self.plan().flow.sla.iter().enumerate() {
            if sla.type_name != "MAX_DURATION" {
                continue;
            }
            let Some(d) = sla
                .properties
                .get("duration")
                .and_then(Json::as_str)
                .and_then(|d| weft_flow::duration::parse(d).ok())
            else {
                continue;
            };
            self.effects.push(Effect::WakeAt {
                at: self.now + d.to_chrono(),
                timer: Timer {
                    task_run_id: None,
                    kind: TimerKind::Sla,
                    number: u32::try_from(i).unwrap_or(u32::MAX),
                },
            });
        }
    }

    /// A MAX_DURATION SLA is due: the execution is still running, so it is violated.
    pub(super) fn sla_due(&mut self, i: u32) {
        if self.exec.state.current.is_terminal() {
            return;
        }
        let Some(sla) = self.plan().flow.sla.get(i as usize) else {
            return;
        };
        self.log(
            None,
            "WARN",
            format!(
                "SLA `{}` violated: the execution ran longer than its maximum duration",
                sla.id
            ),
        );
        match self.sla_violated(i as usize) {
            Some(State::Failed) => self.kill(State::Failed),
            Some(State::Cancelled) => self.kill(State::Cancelled),
            _ => {}
        }
    }

    /// Checks EXECUTION_ASSERTION SLAs when the execution ends in `state`; returns the state
    /// to end in.
    pub(super) fn sla_assertions(&mut self, mut state: State) -> State {
        let n = self.plan().flow.sla.len();
        for i in 0..n {
            let sla = &self.plan().flow.sla[i];
            if sla.type_name != "EXECUTION_ASSERTION" {
                continue;
            }
            let Some(assertion) = sla.properties.get("assert").and_then(Json::as_str) else {
                continue;
            };
            let vars = context::flow_outputs(self.plan(), &self.ix, self.exec, &self.ex.globals);
            let ctx = Context {
                vars: &vars,
                now: self.now,
                seed: 0,
                host: self.ex.host.as_deref(),
            };
            let holds = self
                .ex
                .renderer
                .render(assertion, &ctx)
                .map(|t| truthy(&t))
                .unwrap_or(false);
            if !holds {
                let id = sla.id.clone();
                self.log(
                    None,
                    "WARN",
                    format!("SLA `{id}` violated: its assertion is false"),
                );
                if let Some(s) = self.sla_violated(i) {
                    state = s;
                }
            }
        }
        state
    }

    /// Adds the labels of a violated SLA; the state its behaviour asks for, if any.
    fn sla_violated(&mut self, i: usize) -> Option<State> {
        let sla = self.plan().flow.sla.get(i)?;
        for l in &sla.labels.0 {
            upsert_label(&mut self.exec.labels, l.clone());
        }
        match sla.behavior.as_str() {
            "FAIL" => Some(State::Failed),
            "CANCEL" => Some(State::Cancelled),
            _ => None,
        }
    }
}
