//! Kestra's `Flow` trigger: which terminated executions start an execution of the flow that
//! holds the trigger.
//!
//! Pure: no clock, no I/O. The driver calls [`FlowTrigger::matches`] when an execution
//! terminates (never for an execution of the trigger's own flow, nor for a disabled flow or
//! trigger); a trigger without multiple conditions then fires. One with a `MultipleCondition` or
//! `preconditions` ([`FlowTrigger::is_stateful`]) keeps a [`FlowTriggerState`] in storage:
//! [`FlowTrigger::record`] adds the execution to it and says whether the trigger fires now.
//!
//! - `states` (default: every terminal state) and the plain `conditions` must all hold.
//! - A `MultipleCondition` (`window`, `windowAdvance` or `timeWindow`, named `conditions`,
//!   `resetOnSuccess`) and `preconditions` (each `flows` entry and each `where` entry is one
//!   named condition) fire once every named condition was met by some execution within the
//!   time window (see [`window`]) and the execution at hand met at least one; with
//!   `resetOnSuccess` (the default) the results then start again.
//! - A condition type that cannot be evaluated here makes [`FlowTrigger::matches`] fail with
//!   the reason: the driver logs it and the trigger does not fire.
//! - The new execution's `trigger` is `{id, type, variables}` with Kestra's variables
//!   `executionId`, `namespace`, `flowId`, `flowRevision`, `state` (and `outputs`, the flow
//!   outputs of the execution, when it has some). Its `inputs` are rendered with the terminated
//!   execution's context plus these `trigger` variables.

pub(crate) mod condition;
mod window;

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::expr::{Context, Renderer};
use crate::model::{Label, Labels, Trigger};
pub use condition::expression_holds;
use condition::{Cond, Filter, short_type, states_of};
use window::TimeWindow;
pub use window::WindowState;

/// The names of the Flow trigger type (current, legacy).
pub const FLOW_TYPES: [&str; 2] = [
    "io.kestra.plugin.core.trigger.Flow",
    "io.kestra.core.models.triggers.types.Flow",
];

/// How many recent source executions a state remembers (an execution handled twice, by a retry
/// or by two instances, counts once).
pub const SEEN_MAX: usize = 200;

/// The execution that terminated, as the conditions see it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Its id.
    pub execution_id: &'a str,
    /// Which end of the execution this is (e.g. the length of its state history): an execution
    /// restarted and terminated again is a new source, the same end seen twice is not.
    pub termination: usize,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its flow id.
    pub flow_id: &'a str,
    /// Its flow revision.
    pub flow_revision: u32,
    /// Its state (`SUCCESS`, `FAILED`, ...).
    pub state: &'a str,
    /// Its labels.
    pub labels: &'a [Label],
    /// Its flow outputs, if any.
    pub outputs: Option<&'a Map<String, Json>>,
    /// The variables its expressions see (`outputs.<taskId>`, `inputs`, `labels`, `execution`,
    /// `flow`, ...): what `Expression` conditions, `where` expressions and `inputs` render with.
    pub context: &'a Json,
    /// When it is looked at (time windows).
    pub now: DateTime<Utc>,
}

/// A `MultipleCondition` or `preconditions`: named conditions met within a time window.
#[derive(Debug, Clone)]
struct Multiple {
    id: String,
    conditions: Vec<(String, Cond)>,
    window: TimeWindow,
    reset_on_success: bool,
}

/// What a stateful trigger keeps between executions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowTriggerState {
    /// Per multiple condition (by id), its current window.
    #[serde(default)]
    pub windows: std::collections::BTreeMap<String, WindowState>,
    /// The last source executions recorded (`{executionId}#{termination}`), oldest first (at
    /// most [`SEEN_MAX`]).
    #[serde(default)]
    pub seen: VecDeque<String>,
    /// The source (`{executionId}#{termination}`) of the last fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fire: Option<String>,
}

/// A Flow trigger, parsed.
#[derive(Debug, Clone)]
pub struct FlowTrigger {
    trigger_id: String,
    type_name: String,
    /// Empty: any terminal state.
    states: Vec<String>,
    conditions: Vec<Cond>,
    multiples: Vec<Multiple>,
    inputs: Map<String, Json>,
    labels: Labels,
}

fn bad(t: &Trigger, field: &str, message: impl std::fmt::Display) -> String {
    format!("trigger `{}`: `{field}`: {message}", t.id)
}

fn bool_or(value: Option<&Json>, default: bool) -> bool {
    value.and_then(Json::as_bool).unwrap_or(default)
}

fn multiple_condition(props: &Map<String, Json>) -> Result<Multiple, String> {
    let named = match props.get("conditions") {
        Some(Json::Object(m)) if !m.is_empty() => m,
        _ => return Err("`conditions`: expected a non-empty map of named conditions".into()),
    };
    let mut conditions = Vec::with_capacity(named.len());
    for (name, c) in named {
        let cond = Cond::from_json(c).map_err(|e| format!("`conditions.{name}`: {e}"))?;
        conditions.push((name.clone(), cond));
    }
    let window = TimeWindow::parse(
        props.get("timeWindow").or_else(|| props.get("sla")),
        props.get("window"),
        props.get("windowAdvance"),
    )?;
    Ok(Multiple {
        id: props
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or("multiple")
            .to_string(),
        conditions,
        window,
        reset_on_success: bool_or(props.get("resetOnSuccess"), true),
    })
}

/// `preconditions`: one named condition per `flows` entry (`flows.{i}`) and per `where` entry
/// (its `id`).
fn preconditions(p: &Json) -> Result<Multiple, String> {
    let props = p
        .as_object()
        .ok_or_else(|| format!("expected a map, got {p}"))?;
    let mut conditions = Vec::new();
    for (i, f) in props
        .get("flows")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = |e: String| format!("`flows[{i}]`: {e}");
        let text = |k: &str| f.get(k).and_then(Json::as_str).map(str::to_string);
        let mut all = vec![Cond::UpstreamFlow {
            namespace: text("namespace"),
            flow_id: text("flowId"),
        }];
        let states = match f.get("states") {
            None | Some(Json::Null) => vec!["SUCCESS".to_string()],
            some => states_of(some).map_err(at)?,
        };
        all.push(Cond::Status {
            within: states,
            outside: Vec::new(),
        });
        if let Some(labels) = f.get("labels").filter(|l| !l.is_null()) {
            all.push(Cond::Labels(Labels::from_json(labels).map_err(at)?.0));
        }
        conditions.push((format!("flows.{i}"), Cond::All(all)));
    }
    for (i, w) in props
        .get("where")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let id = w
            .get("id")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("`where[{i}].id` is missing"))?;
        let at = |e: String| format!("`where[{i}]`: {e}");
        let filters = w
            .get("filters")
            .and_then(Json::as_array)
            .ok_or_else(|| at("`filters`: expected a list".into()))?
            .iter()
            .map(|f| Filter::from_json(f).map(|f| Cond::Filter(Box::new(f))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        let cond = match w.get("operand").and_then(Json::as_str) {
            None | Some("AND") => Cond::All(filters),
            Some("OR") => Cond::Or(filters),
            Some(other) => return Err(at(format!("`operand`: `{other}` is not AND or OR"))),
        };
        conditions.push((id.to_string(), cond));
    }
    if conditions.is_empty() {
        return Err("neither `flows` nor `where` is given".into());
    }
    Ok(Multiple {
        id: props
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or("preconditions")
            .to_string(),
        conditions,
        window: TimeWindow::parse(props.get("timeWindow"), None, None)?,
        reset_on_success: bool_or(props.get("resetOnSuccess"), true),
    })
}

impl FlowTrigger {
    /// `None` when the trigger is not a Flow trigger; an error naming the trigger and the bad
    /// field when it cannot be evaluated as written (bad state list, time window, filter).
    pub fn from_trigger(t: &Trigger) -> Result<Option<FlowTrigger>, String> {
        if !FLOW_TYPES.contains(&t.type_name.as_str()) {
            return Ok(None);
        }
        let states = states_of(t.properties.get("states")).map_err(|e| bad(t, "states", e))?;
        let mut conditions = Vec::new();
        let mut multiples = Vec::new();
        for (i, c) in t.conditions.iter().enumerate() {
            if short_type(&c.type_name) == "Multiple" {
                let props: Map<String, Json> = c
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let m = multiple_condition(&props)
                    .map_err(|e| bad(t, &format!("conditions[{i}]"), e))?;
                multiples.push(m);
            } else {
                conditions
                    .push(Cond::parse(c).map_err(|e| bad(t, &format!("conditions[{i}]"), e))?);
            }
        }
        if let Some(p) = t.properties.get("preconditions").filter(|p| !p.is_null()) {
            multiples.push(preconditions(p).map_err(|e| bad(t, "preconditions", e))?);
        }
        let inputs = match t.properties.get("inputs") {
            None | Some(Json::Null) => Map::new(),
            Some(Json::Object(m)) => m.clone(),
            Some(other) => return Err(bad(t, "inputs", format!("expected a map, got {other}"))),
        };
        let labels = match t.properties.get("labels") {
            None => Labels::default(),
            Some(l) => Labels::from_json(l).map_err(|e| bad(t, "labels", e))?,
        };
        Ok(Some(FlowTrigger {
            trigger_id: t.id.clone(),
            type_name: t.type_name.clone(),
            states,
            conditions,
            multiples,
            inputs,
            labels,
        }))
    }

    /// The id of the trigger.
    pub fn trigger_id(&self) -> &str {
        &self.trigger_id
    }

    /// The trigger's `labels` (given to the executions it starts).
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Whether the trigger keeps a [`FlowTriggerState`] (it has a `MultipleCondition` or
    /// `preconditions`).
    pub fn is_stateful(&self) -> bool {
        !self.multiples.is_empty()
    }

    /// Whether `src` passes the trigger's `states` and plain `conditions` (for a stateless
    /// trigger: whether it fires). An error when a condition cannot be evaluated.
    pub fn matches(&self, src: &Source<'_>, renderer: &Renderer) -> Result<bool, String> {
        if !self.states.is_empty() && !self.states.iter().any(|s| s == src.state) {
            return Ok(false);
        }
        for c in &self.conditions {
            if !c.test(src, renderer)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Records `src` (which [`FlowTrigger::matches`]) in `state`: the named conditions it meets
    /// count from now on in their window. True when the trigger fires: every named condition of
    /// every multiple condition is met within its window and `src` met one. An execution already
    /// recorded changes nothing and fires again only if it was the one that fired (so a driver
    /// that died between the write and the start of the execution starts it on a retry; the
    /// execution's id is derived from the source, so it is created once).
    pub fn record(
        &self,
        state: &mut FlowTriggerState,
        src: &Source<'_>,
        renderer: &Renderer,
    ) -> Result<bool, String> {
        let key = format!("{}#{}", src.execution_id, src.termination);
        if state.seen.contains(&key) {
            return Ok(state.last_fire.as_ref() == Some(&key));
        }
        // evaluate every condition first: an error leaves the state as it was
        let mut met = Vec::with_capacity(self.multiples.len());
        for m in &self.multiples {
            let mut names = Vec::new();
            for (name, c) in &m.conditions {
                if c.test(src, renderer)? {
                    names.push(name.clone());
                }
            }
            met.push(names);
        }
        state.seen.push_back(key.clone());
        while state.seen.len() > SEEN_MAX {
            state.seen.pop_front();
        }
        let mut complete = true;
        let mut contributed = false;
        for (m, names) in self.multiples.iter().zip(met) {
            let w = state.windows.entry(m.id.clone()).or_default();
            if !m.window.refresh(w, src.now) {
                complete = false;
                continue;
            }
            contributed |= !names.is_empty();
            for name in names {
                w.results.insert(name, src.now);
            }
            complete &= m.conditions.iter().all(|(n, _)| w.results.contains_key(n));
        }
        state
            .windows
            .retain(|id, _| self.multiples.iter().any(|m| &m.id == id));
        if !(complete && contributed) {
            return Ok(false);
        }
        for m in self.multiples.iter().filter(|m| m.reset_on_success) {
            if let Some(w) = state.windows.get_mut(&m.id) {
                w.results.clear();
            }
        }
        state.last_fire = Some(key);
        Ok(true)
    }

    /// Kestra's `trigger` variables of an execution started by `src`.
    pub fn variables(src: &Source<'_>) -> Json {
        let mut v = json!({
            "executionId": src.execution_id,
            "namespace": src.namespace,
            "flowId": src.flow_id,
            "flowRevision": src.flow_revision,
            "state": src.state,
        });
        if let (Some(outputs), Json::Object(m)) = (src.outputs.filter(|o| !o.is_empty()), &mut v) {
            m.insert("outputs".into(), Json::Object(outputs.clone()));
        }
        v
    }

    /// The new execution's `trigger`: `{id, type, variables}`.
    pub fn trigger_json(&self, src: &Source<'_>) -> Json {
        json!({
            "id": self.trigger_id,
            "type": self.type_name,
            "variables": FlowTrigger::variables(src),
        })
    }

    /// The trigger's `inputs`, rendered with the context of `src` and the new `trigger`
    /// variables. An error when one does not render (the execution is then not created).
    pub fn render_inputs(
        &self,
        src: &Source<'_>,
        renderer: &Renderer,
    ) -> Result<Map<String, Json>, String> {
        if self.inputs.is_empty() {
            return Ok(Map::new());
        }
        let mut vars = src.context.clone();
        if let Json::Object(m) = &mut vars {
            m.insert("trigger".into(), FlowTrigger::variables(src));
        }
        let ctx = Context {
            vars: &vars,
            now: src.now,
            seed: 0,
            host: None,
        };
        match renderer.render_value(&Json::Object(self.inputs.clone()), &ctx) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(other) => Err(format!("inputs rendered to {other}")),
            Err(e) => Err(format!("trigger `{}`: inputs: {e}", self.trigger_id)),
        }
    }
}

#[cfg(test)]
mod tests;
