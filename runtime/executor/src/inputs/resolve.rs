//! The order in which inputs are read: `dependsOn` first, then the flow's order; conditions,
//! defaults (rendered), conversion and validation of each input.

use serde_json::{Map, Value as Json};
use weft_flow::model::{Flow, Input};

use super::convert::convert;
use super::error::InputError;
use super::kind::InputKind;
use super::secret::{SECRET_MASK, reveal_secrets, seal};
use super::validate::validate;
use super::{InputContext, java, nest_into, render_value};

/// The outcome of one input.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Hidden by a `dependsOn` condition: left out of the typed inputs.
    Disabled,
    /// The typed value (`null` for an optional input without value).
    Value(Json),
    /// Could not be read.
    Failed(Vec<InputError>),
}

enum State {
    Pending,
    Busy,
    Done(Outcome),
}

pub(crate) struct Resolver<'a> {
    flow: &'a Flow,
    given: Vec<Option<Json>>,
    ctx: &'a InputContext<'a>,
    states: Vec<State>,
    /// Indexes of resolved inputs, in resolution order.
    order: Vec<usize>,
}

fn dependencies(input: &Input) -> Vec<String> {
    input
        .depends_on
        .as_ref()
        .and_then(|d| d.get("inputs"))
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn condition(input: &Input) -> Option<&str> {
    input
        .depends_on
        .as_ref()
        .and_then(|d| d.get("condition"))
        .and_then(Json::as_str)
}

impl<'a> Resolver<'a> {
    /// `given[i]` is the value sent for `flow.inputs[i]` (`None` when absent or null).
    pub(crate) fn new(flow: &'a Flow, given: Vec<Option<Json>>, ctx: &'a InputContext<'a>) -> Self {
        let states = flow.inputs.iter().map(|_| State::Pending).collect();
        Self {
            flow,
            given,
            ctx,
            states,
            order: Vec::new(),
        }
    }

    /// Resolves every input; outcomes in the flow's order.
    pub(crate) fn run(mut self) -> Vec<Outcome> {
        for i in 0..self.flow.inputs.len() {
            self.resolve(i);
        }
        self.states
            .into_iter()
            .map(|s| match s {
                State::Done(o) => o,
                _ => Outcome::Disabled,
            })
            .collect()
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.flow.inputs.iter().position(|i| i.id == id)
    }

    /// What expressions see as `inputs`: the values read so far (nested, secrets revealed);
    /// `null` for inputs that failed (so one error does not cascade into every default that
    /// uses it) and, as Kestra does, for inputs with defaults not read yet.
    fn inputs_so_far(&self) -> Map<String, Json> {
        let mut inputs = Map::new();
        for (i, input) in self.flow.inputs.iter().enumerate() {
            let pending = !matches!(self.states[i], State::Done(_));
            if pending && input.defaults.is_some() {
                nest_into(&mut inputs, &input.id, Json::Null);
            }
        }
        for &i in &self.order {
            match &self.states[i] {
                State::Done(Outcome::Value(v)) => {
                    nest_into(&mut inputs, &self.flow.inputs[i].id, reveal_secrets(v));
                }
                State::Done(Outcome::Failed(_)) => {
                    nest_into(&mut inputs, &self.flow.inputs[i].id, Json::Null);
                }
                _ => {}
            }
        }
        inputs
    }

    fn render(&self, v: &Json) -> Result<Json, String> {
        render_value(self.ctx, self.flow, self.inputs_so_far(), v)
    }

    fn resolve(&mut self, i: usize) {
        if !matches!(self.states[i], State::Pending) {
            return; // done, or a dependency cycle: the cycle is broken here
        }
        self.states[i] = State::Busy;
        let input = &self.flow.inputs[i];
        let mut enabled = true;
        for dep in dependencies(input) {
            if dep == input.id {
                continue;
            }
            if let Some(j) = self.index_of(&dep) {
                self.resolve(j);
                if matches!(self.states[j], State::Done(Outcome::Disabled)) {
                    enabled = false;
                }
            }
        }
        let outcome = if !enabled {
            Outcome::Disabled
        } else {
            match condition(input) {
                Some(cond) => match self.render(&Json::String(cond.to_string())) {
                    Ok(v) if is_true(&v) => self.read(i),
                    Ok(_) => Outcome::Disabled,
                    Err(e) => Outcome::Failed(vec![InputError {
                        id: input.id.clone(),
                        message: format!("Invalid condition: {e}"),
                        received: java::to_string(self.given[i].as_ref().unwrap_or(&Json::Null)),
                    }]),
                },
                None => self.read(i),
            }
        };
        self.states[i] = State::Done(outcome);
        self.order.push(i);
    }

    /// The allowed values of a SELECT, ENUM or MULTISELECT input, rendered when they come from
    /// an expression.
    fn allowed_values(&self, input: &Input) -> Result<Option<Vec<String>>, String> {
        let source = input
            .properties
            .get("values")
            .or_else(|| input.properties.get("options"))
            .or_else(|| input.properties.get("expression"));
        let Some(source) = source else {
            return Ok(None);
        };
        let value = match source {
            Json::String(_) => {
                let rendered = self.render(source)?;
                match rendered {
                    Json::String(s) => serde_json::from_str::<Json>(&s)
                        .or_else(|_| serde_yaml::from_str::<Json>(&s))
                        .map_err(|_| format!("the values expression did not give a list: `{s}`"))?,
                    other => other,
                }
            }
            other => other.clone(),
        };
        let Json::Array(items) = value else {
            return Err(format!(
                "the values are not a list: `{}`",
                java::to_string(&value)
            ));
        };
        Ok(Some(
            items
                .iter()
                .map(|v| match v.get("value") {
                    Some(inner) if v.is_object() => java::to_string(inner),
                    _ => java::to_string(v),
                })
                .collect(),
        ))
    }

    /// Value or rendered default, then conversion and validation.
    fn read(&self, i: usize) -> Outcome {
        let input = &self.flow.inputs[i];
        let is_secret = InputKind::parse(&input.type_name) == Some(InputKind::Secret);
        let fail = |message: String, received: &Json| {
            Outcome::Failed(vec![InputError {
                id: input.id.clone(),
                message,
                // a SECRET is never printed, not even in an error
                received: if is_secret && !received.is_null() {
                    SECRET_MASK.to_string()
                } else {
                    java::to_string(received)
                },
            }])
        };
        let current = match (&self.given[i], &input.defaults) {
            (Some(v), _) => reveal_secrets(v), // a sealed secret passed on (Subflow inputs)
            (None, Some(d)) => match self.render(d) {
                Ok(v) => v,
                Err(e) => return fail(format!("unable to render the default value: {e}"), d),
            },
            (None, None) => Json::Null,
        };
        if current.is_null() {
            return if input.required {
                fail("missing required input".into(), &Json::Null)
            } else {
                Outcome::Value(Json::Null)
            };
        }
        let Some(kind) = InputKind::parse(&input.type_name) else {
            return Outcome::Value(current); // the flow parser rejects unknown types
        };
        let item = input
            .properties
            .get("itemType")
            .and_then(Json::as_str)
            .and_then(InputKind::parse);
        let typed = match convert(kind, item, &current) {
            Ok(t) => t,
            Err(e) => return fail(e, &current),
        };
        let values = match kind {
            InputKind::Select | InputKind::Enum | InputKind::MultiSelect => {
                match self.allowed_values(input) {
                    Ok(v) => v,
                    Err(e) => return fail(e, &current),
                }
            }
            _ => None,
        };
        if let Err(e) = validate(input, kind, &typed, values.as_deref()) {
            return fail(e, &current);
        }
        match (kind, &typed) {
            (InputKind::Secret, Json::String(s)) => Outcome::Value(seal(s)),
            _ => Outcome::Value(typed),
        }
    }
}

fn is_true(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}
