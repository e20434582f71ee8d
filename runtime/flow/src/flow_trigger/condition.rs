//! The conditions of a Flow trigger, tested against the execution that terminated: Kestra's
//! `ExecutionStatus`, `ExecutionFlow`, `ExecutionNamespace`, `ExecutionLabels`, `Expression`,
//! `ExecutionOutputs`, `Not`, `Or`, and the `where` filters of `preconditions`. A type that is not
//! one of those parses (the flow stays valid) but fails its test with a reason.

use regex::Regex;
use serde_json::{Map, Value as Json};

use super::Source;
use crate::expr::{Context, Renderer};
use crate::model::{Condition, Label, Labels};

const NEW_PREFIX: &str = "io.kestra.plugin.core.condition.";
const OLD_PREFIX: &str = "io.kestra.core.models.conditions.types.";

/// The short name of a condition type: `ExecutionFlow` for
/// `io.kestra.plugin.core.condition.ExecutionFlow`, `...ExecutionFlowCondition` and the legacy
/// `io.kestra.core.models.conditions.types.ExecutionFlowCondition`.
pub(crate) fn short_type(type_name: &str) -> &str {
    let rest = type_name
        .strip_prefix(NEW_PREFIX)
        .or_else(|| type_name.strip_prefix(OLD_PREFIX))
        .unwrap_or(type_name);
    match rest.strip_suffix("Condition") {
        Some("Variable") => "Expression",
        Some(short) if !short.is_empty() => short,
        _ => rest,
    }
}

/// How `ExecutionNamespace` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Equals,
    Prefix,
    Suffix,
}

/// A `where` filter's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    FlowId,
    Namespace,
    State,
    Expression,
}

/// A `where` filter.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    field: Field,
    kind: String,
    value: Option<String>,
    values: Vec<String>,
    regex: Option<Regex>,
}

/// One condition, parsed.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Status {
        within: Vec<String>,
        outside: Vec<String>,
    },
    Flow {
        namespace: String,
        flow_id: String,
    },
    /// A `preconditions.flows` entry: each part optional.
    UpstreamFlow {
        namespace: Option<String>,
        flow_id: Option<String>,
    },
    Namespace {
        namespace: String,
        comparison: Comparison,
    },
    Labels(Vec<Label>),
    Expression(String),
    Outputs(String),
    /// True when no condition holds.
    Not(Vec<Cond>),
    /// True when one condition holds.
    Or(Vec<Cond>),
    /// True when every condition holds.
    All(Vec<Cond>),
    Filter(Box<Filter>),
    /// A type this runtime does not evaluate for Flow triggers.
    Unsupported(String),
}

fn string_of<'a>(props: &'a Map<String, Json>, key: &str) -> Result<Option<&'a str>, String> {
    match props.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{key}`: expected a string, got {other}")),
    }
}

fn required<'a>(props: &'a Map<String, Json>, key: &str) -> Result<&'a str, String> {
    string_of(props, key)?.ok_or_else(|| format!("`{key}` is missing"))
}

/// A list of state names (a single string is a list of one).
pub(crate) fn states_of(value: Option<&Json>) -> Result<Vec<String>, String> {
    let upper = |v: &Json| match v {
        Json::String(s) => Ok(s.trim().to_ascii_uppercase()),
        other => Err(format!("expected a state name, got {other}")),
    };
    match value {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items.iter().map(upper).collect(),
        Some(one) => Ok(vec![upper(one)?]),
    }
}

fn conditions_list(props: &Map<String, Json>) -> Result<Vec<Cond>, String> {
    match props.get("conditions") {
        Some(Json::Array(items)) => items.iter().map(Cond::from_json).collect(),
        _ => Err("`conditions`: expected a list of conditions".into()),
    }
}

impl Cond {
    /// A condition from its JSON form (`{type, ...}`).
    pub(crate) fn from_json(json: &Json) -> Result<Cond, String> {
        let condition: Condition =
            serde_json::from_value(json.clone()).map_err(|e| format!("bad condition: {e}"))?;
        Cond::parse(&condition)
    }

    /// A condition of a trigger. `MultipleCondition` is not one (see [`super::Multiple`]).
    pub(crate) fn parse(c: &Condition) -> Result<Cond, String> {
        let props: Map<String, Json> = c
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let at = |e: String| format!("condition {}: {e}", c.type_name);
        let cond = match short_type(&c.type_name) {
            "ExecutionStatus" => Cond::Status {
                within: states_of(props.get("in")).map_err(at)?,
                outside: states_of(props.get("notIn")).map_err(at)?,
            },
            "ExecutionFlow" => Cond::Flow {
                namespace: required(&props, "namespace").map_err(at)?.to_string(),
                flow_id: required(&props, "flowId").map_err(at)?.to_string(),
            },
            "ExecutionNamespace" => {
                let legacy_prefix = props.get("prefix").and_then(Json::as_bool) == Some(true);
                let comparison = match string_of(&props, "comparison").map_err(at)? {
                    None if legacy_prefix => Comparison::Prefix,
                    None | Some("EQUALS") => Comparison::Equals,
                    Some("PREFIX") => Comparison::Prefix,
                    Some("SUFFIX") => Comparison::Suffix,
                    Some(other) => {
                        return Err(at(format!(
                            "`comparison`: `{other}` is not one of EQUALS, PREFIX, SUFFIX"
                        )));
                    }
                };
                Cond::Namespace {
                    namespace: required(&props, "namespace").map_err(at)?.to_string(),
                    comparison,
                }
            }
            "ExecutionLabels" => Cond::Labels(
                Labels::from_json(props.get("labels").unwrap_or(&Json::Null))
                    .map_err(at)?
                    .0,
            ),
            "Expression" => Cond::Expression(required(&props, "expression").map_err(at)?.into()),
            "ExecutionOutputs" => Cond::Outputs(required(&props, "expression").map_err(at)?.into()),
            "Not" => Cond::Not(conditions_list(&props).map_err(at)?),
            "Or" => Cond::Or(conditions_list(&props).map_err(at)?),
            _ => Cond::Unsupported(c.type_name.clone()),
        };
        Ok(cond)
    }

    /// Whether the condition holds for `src`; an error for a condition that cannot be evaluated
    /// (unsupported type, expression that does not render).
    pub(crate) fn test(&self, src: &Source<'_>, renderer: &Renderer) -> Result<bool, String> {
        Ok(match self {
            Cond::Status { within, outside } => {
                (within.is_empty() || within.iter().any(|s| s == src.state))
                    && !outside.iter().any(|s| s == src.state)
            }
            Cond::Flow { namespace, flow_id } => {
                src.namespace == namespace && src.flow_id == flow_id
            }
            Cond::UpstreamFlow { namespace, flow_id } => {
                namespace.as_deref().is_none_or(|n| n == src.namespace)
                    && flow_id.as_deref().is_none_or(|f| f == src.flow_id)
            }
            Cond::Namespace {
                namespace,
                comparison,
            } => match comparison {
                Comparison::Equals => src.namespace == namespace,
                Comparison::Prefix => src.namespace.starts_with(namespace.as_str()),
                Comparison::Suffix => src.namespace.ends_with(namespace.as_str()),
            },
            Cond::Labels(wanted) => wanted.iter().all(|w| {
                src.labels
                    .iter()
                    .any(|l| l.key == w.key && l.value == w.value)
            }),
            Cond::Expression(expr) => {
                render(renderer, expr, src.context, src).is_some_and(|s| s == "true")
            }
            Cond::Outputs(expr) => match src.outputs {
                None => false,
                Some(outputs) => {
                    let mut vars = src.context.clone();
                    if let Json::Object(m) = &mut vars {
                        m.insert("outputs".into(), Json::Object(outputs.clone()));
                    }
                    render(renderer, expr, &vars, src).is_some_and(|s| s == "true")
                }
            },
            Cond::Not(all) => {
                for c in all {
                    if c.test(src, renderer)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Or(any) => {
                for c in any {
                    if c.test(src, renderer)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::All(all) => {
                for c in all {
                    if !c.test(src, renderer)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Filter(f) => f.test(src, renderer)?,
            Cond::Unsupported(type_name) => {
                return Err(format!(
                    "condition type `{type_name}` is not supported by Flow triggers"
                ));
            }
        })
    }
}

/// The rendered expression, trimmed; `None` when it does not render (e.g. it reads a variable
/// the execution does not have): as in Kestra, the condition is then not met.
fn render(renderer: &Renderer, expr: &str, vars: &Json, src: &Source<'_>) -> Option<String> {
    let ctx = Context {
        vars,
        now: src.now,
        seed: 0,
        host: None,
    };
    renderer
        .render(expr, &ctx)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Filter types that compare the field with `value`/`values`.
const FILTER_TYPES: &[&str] = &[
    "EQUAL_TO",
    "NOT_EQUAL_TO",
    "IS_NULL",
    "IS_NOT_NULL",
    "IS_TRUE",
    "IS_FALSE",
    "STARTS_WITH",
    "ENDS_WITH",
    "REGEX",
    "CONTAINS",
    "IN",
    "NOT_IN",
    "PREFIX",
];

impl Filter {
    /// A `where` filter (`{field, type, value, values}`).
    pub(crate) fn from_json(json: &Json) -> Result<Filter, String> {
        let props = json
            .as_object()
            .ok_or_else(|| format!("filter: expected a map, got {json}"))?;
        let field = match required(props, "field")? {
            "FLOW_ID" => Field::FlowId,
            "NAMESPACE" => Field::Namespace,
            "STATE" => Field::State,
            "EXPRESSION" => Field::Expression,
            other => return Err(format!("filter `field`: unknown field `{other}`")),
        };
        let kind = required(props, "type")?.to_string();
        if !FILTER_TYPES.contains(&kind.as_str()) {
            return Err(format!("filter `type`: unknown type `{kind}`"));
        }
        let value = string_of(props, "value")?.map(str::to_string);
        let values = match props.get("values") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            Some(other) => return Err(format!("filter `values`: expected a list, got {other}")),
        };
        let regex = match (kind.as_str(), &value) {
            ("REGEX", Some(v)) => Some(
                Regex::new(&format!("^(?:{v})$"))
                    .map_err(|e| format!("filter `value`: bad regex `{v}`: {e}"))?,
            ),
            ("REGEX", None) => return Err("filter `value` is missing for REGEX".into()),
            _ => None,
        };
        Ok(Filter {
            field,
            kind,
            value,
            values,
            regex,
        })
    }

    fn test(&self, src: &Source<'_>, renderer: &Renderer) -> Result<bool, String> {
        // EXPRESSION: the rendered `value` is the subject; the others compare a field with `value`
        let (subject, operand) = match self.field {
            Field::FlowId => (Some(src.flow_id.to_string()), self.value.as_deref()),
            Field::Namespace => (Some(src.namespace.to_string()), self.value.as_deref()),
            Field::State => (Some(src.state.to_string()), self.value.as_deref()),
            Field::Expression => {
                let expr = self
                    .value
                    .as_deref()
                    .ok_or("filter on EXPRESSION without a `value`")?;
                let Some(rendered) = render(renderer, expr, src.context, src) else {
                    return Ok(false);
                };
                (Some(rendered).filter(|s| !s.is_empty()), None)
            }
        };
        let operand_needed = || {
            operand
                .ok_or_else(|| format!("filter {} on {:?} needs a `value`", self.kind, self.field))
        };
        let s = subject.as_deref();
        Ok(match self.kind.as_str() {
            "IS_NULL" => s.is_none(),
            "IS_NOT_NULL" => s.is_some(),
            "IS_TRUE" => s == Some("true"),
            "IS_FALSE" => s == Some("false"),
            "IN" => s.is_some_and(|s| self.values.iter().any(|v| v == s)),
            "NOT_IN" => !s.is_some_and(|s| self.values.iter().any(|v| v == s)),
            "EQUAL_TO" => s == Some(operand_needed()?),
            "NOT_EQUAL_TO" => s != Some(operand_needed()?),
            "STARTS_WITH" => {
                let o = operand_needed()?;
                s.is_some_and(|s| s.starts_with(o))
            }
            "ENDS_WITH" => {
                let o = operand_needed()?;
                s.is_some_and(|s| s.ends_with(o))
            }
            "CONTAINS" => {
                let o = operand_needed()?;
                s.is_some_and(|s| s.contains(o))
            }
            "PREFIX" => {
                let o = operand_needed()?;
                s.is_some_and(|s| crate::ids::namespace_within(s, o))
            }
            "REGEX" => s.is_some_and(|s| self.regex.as_ref().is_some_and(|r| r.is_match(s))),
            other => return Err(format!("filter type `{other}` is not supported")),
        })
    }
}
