//! Execution inputs: the raw values a user sends when creating an execution, turned into typed,
//! validated inputs as Kestra does (`FlowInputOutput.readExecutionInputs`).
//!
//! Pure functions: no I/O, no clock (the context carries `now`). Uploaded files are stored by
//! the caller, which passes their storage URI ([`file_input_uri`] builds Kestra's).
//!
//! - [`read_inputs`]: strings (or typed JSON values, e.g. from a Subflow task) converted by
//!   type, validated (`validator`, `min`/`max`, `after`/`before`, `values`), `defaults`
//!   rendered and applied, `dependsOn` conditions evaluated, dotted ids nested. Every error is
//!   reported, each naming its input, in Kestra's words.
//! - [`read_inputs_raw`]: Kestra's test mode in which values go straight into the execution;
//!   only missing inputs with `defaults` are filled in.
//! - [`describe`]: what an input expects, in words.
//!
//! Typed values are JSON: INT an integer, FLOAT a number (a 32-bit float, printed as Java prints
//! it: `42.42`), BOOLEAN a boolean, DATETIME `2019-10-06T18:27:49Z` (UTC), DATE `2019-10-06`,
//! TIME `18:27:49`, DURATION `PT5M6S` (Java's printing), JSON and YAML the parsed document,
//! ARRAY and MULTISELECT a list, FILE and URI strings, SECRET a marked object (see [`secret`]).
//!
//! Differences from Kestra, on purpose: BOOLEAN refuses anything but `true`/`false` (Java reads
//! any other text as `false`); INT is 64-bit; URI accepts any absolute `scheme://host...` URI
//! (Kestra's pattern wants a dot in the host, refusing `http://localhost:8080`); SELECT values
//! are checked for optional inputs too; a `dependsOn` condition that fails to render is an error
//! (Kestra drops it silently); defaults and conditions see every input read before them (the
//! ones they depend on are read first), not only their `dependsOn` inputs.

mod convert;
mod describe;
mod error;
mod java;
mod kind;
mod resolve;
pub mod secret;
mod validate;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use weft_flow::expr::{Context, ExprHost, Renderer};
use weft_flow::model::Flow;

pub use describe::{describe, describe_kind};
pub use error::{InputError, InputErrors};
pub use kind::InputKind;
pub use secret::{is_secret, mask_secrets, reveal_secrets};

use resolve::{Outcome, Resolver};

/// A value sent for one input.
#[derive(Debug, Clone, PartialEq)]
pub enum RawInput {
    /// Text, as in a form field or `weft run --input k=v`.
    Text(String),
    /// An uploaded file, already stored by the caller at `uri` (see [`file_input_uri`]).
    File {
        /// The file's name as uploaded.
        name: String,
        /// Where the caller stored it (`kestra:///...`).
        uri: String,
    },
    /// A typed value (JSON API, Subflow task inputs); `null` counts as absent.
    Json(Json),
}

impl RawInput {
    fn to_json(&self) -> Option<Json> {
        match self {
            RawInput::Text(s) => Some(Json::String(s.clone())),
            RawInput::File { uri, .. } => Some(Json::String(uri.clone())),
            RawInput::Json(Json::Null) => None,
            RawInput::Json(v) => Some(v.clone()),
        }
    }
}

/// What reading inputs needs besides the flow and the values.
pub struct InputContext<'a> {
    /// The execution being created.
    pub execution_id: &'a str,
    /// What `now()` gives in defaults and conditions.
    pub now: DateTime<Utc>,
    /// Seed of `uuid()`, `randomInt()`, ... in defaults.
    pub seed: u64,
    /// Renders `{{ }}` in defaults, conditions and SELECT value expressions.
    pub renderer: &'a Renderer,
    /// The variables those expressions see (`flow`, `execution`, `envs`, `globals`, ...), an
    /// object; `inputs` is set here. `None`: `flow` (`id`, `namespace`, `revision`) and
    /// `execution` (`id`, `startDate`).
    pub vars: Option<&'a Json>,
    /// Secrets, KV store, ... for `secret()` and `kv()` in defaults; `None` makes them fail.
    pub host: Option<&'a dyn ExprHost>,
}

impl std::fmt::Debug for InputContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputContext")
            .field("execution_id", &self.execution_id)
            .field("now", &self.now)
            .field("seed", &self.seed)
            .field("vars", &self.vars)
            .field("host", &self.host.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> InputContext<'a> {
    /// A context with default variables and no host.
    pub fn new(execution_id: &'a str, now: DateTime<Utc>, renderer: &'a Renderer) -> Self {
        Self {
            execution_id,
            now,
            seed: 0,
            renderer,
            vars: None,
            host: None,
        }
    }

    fn base_vars(&self, flow: &Flow) -> Json {
        if let Some(v @ Json::Object(_)) = self.vars {
            return v.clone();
        }
        let mut flow_vars = Map::new();
        flow_vars.insert("id".into(), Json::String(flow.id.clone()));
        flow_vars.insert("namespace".into(), Json::String(flow.namespace.clone()));
        if let Some(r) = flow.revision {
            flow_vars.insert("revision".into(), Json::from(r));
        }
        let mut execution = Map::new();
        execution.insert("id".into(), Json::String(self.execution_id.to_string()));
        execution.insert("startDate".into(), Json::String(java::instant(&self.now)));
        let mut vars = Map::new();
        vars.insert("flow".into(), Json::Object(flow_vars));
        vars.insert("execution".into(), Json::Object(execution));
        Json::Object(vars)
    }
}

/// Renders the strings of `v` with `inputs` and the context's variables.
fn render_value(
    ctx: &InputContext<'_>,
    flow: &Flow,
    inputs: Map<String, Json>,
    v: &Json,
) -> Result<Json, String> {
    let mut vars = ctx.base_vars(flow);
    if let Json::Object(m) = &mut vars {
        m.insert("inputs".into(), Json::Object(inputs));
    }
    let c = Context {
        vars: &vars,
        now: ctx.now,
        seed: ctx.seed,
        host: ctx.host,
    };
    ctx.renderer.render_value(v, &c).map_err(|e| e.message)
}

/// Puts `value` at the dotted `id` (`nested.more.int`) of `map`, making the maps on the way.
pub fn nest_into(map: &mut Map<String, Json>, id: &str, value: Json) {
    let mut parts: Vec<&str> = id.split('.').collect();
    let last = parts.pop().unwrap_or(id);
    let mut cur = map;
    for p in parts {
        let slot = cur
            .entry(p.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if !slot.is_object() {
            *slot = Json::Object(Map::new());
        }
        let Json::Object(next) = slot else { return };
        cur = next;
    }
    cur.insert(last.to_string(), value);
}

/// Reads the inputs of a new execution: typed values, nested by dotted id, in the flow's order.
/// Inputs hidden by a `dependsOn` condition are left out; optional inputs without value or
/// default are `null`. Values for undeclared inputs are ignored (see [`undeclared_inputs`]).
pub fn read_inputs(
    flow: &Flow,
    raw: &IndexMap<String, RawInput>,
    ctx: &InputContext<'_>,
) -> Result<Map<String, Json>, InputErrors> {
    let given = flow
        .inputs
        .iter()
        .map(|i| raw.get(&i.id).and_then(RawInput::to_json))
        .collect();
    let outcomes = Resolver::new(flow, given, ctx).run();
    let mut typed = Map::new();
    let mut errors = Vec::new();
    for (input, outcome) in flow.inputs.iter().zip(outcomes) {
        match outcome {
            Outcome::Disabled => {}
            Outcome::Value(v) => nest_into(&mut typed, &input.id, v),
            Outcome::Failed(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(typed)
    } else {
        Err(InputErrors(errors))
    }
}

/// Kestra's test mode (`inputsRaw`): values go into the execution as they are, without
/// parsing or validation; declared inputs that are missing (or null) and have `defaults` get
/// them, rendered and typed. Dotted keys are nested. Errors only come from defaults.
pub fn read_inputs_raw(
    flow: &Flow,
    raw: &IndexMap<String, Json>,
    ctx: &InputContext<'_>,
) -> Result<Map<String, Json>, InputErrors> {
    let mut typed = Map::new();
    for (k, v) in raw {
        nest_into(&mut typed, k, v.clone());
    }
    let mut errors = Vec::new();
    for input in &flow.inputs {
        let present = raw.get(&input.id).is_some_and(|v| !v.is_null());
        let Some(defaults) = input.defaults.as_ref().filter(|_| !present) else {
            continue;
        };
        let fail = |message: String| InputError {
            id: input.id.clone(),
            message,
            received: java::to_string(defaults),
        };
        let seen = match reveal_secrets(&Json::Object(typed.clone())) {
            Json::Object(m) => m,
            _ => Map::new(),
        };
        let value = match render_value(ctx, flow, seen, defaults) {
            Ok(v) => v,
            Err(e) => {
                errors.push(fail(format!("unable to render the default value: {e}")));
                continue;
            }
        };
        let kind = InputKind::parse(&input.type_name);
        let item = input
            .properties
            .get("itemType")
            .and_then(Json::as_str)
            .and_then(InputKind::parse);
        let value = match kind {
            None => value,
            Some(_) if value.is_null() => Json::Null,
            Some(kind) => match convert::convert(kind, item, &value) {
                Ok(Json::String(s)) if kind == InputKind::Secret => secret::seal(&s),
                Ok(v) => v,
                Err(e) => {
                    errors.push(fail(e));
                    continue;
                }
            },
        };
        nest_into(&mut typed, &input.id, value);
    }
    if errors.is_empty() {
        Ok(typed)
    } else {
        Err(InputErrors(errors))
    }
}

/// The keys of `raw` that name no input of the flow (Kestra ignores them with a warning).
pub fn undeclared_inputs<'a>(
    flow: &Flow,
    raw: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    raw.into_iter()
        .filter(|k| !flow.inputs.iter().any(|i| &i.id == *k))
        .cloned()
        .collect()
}

/// Where Kestra stores an uploaded FILE input:
/// `kestra:///{namespace with / for .}/{flowId}/executions/{executionId}/inputs/{inputId}/{fileName}`.
pub fn file_input_uri(
    namespace: &str,
    flow_id: &str,
    execution_id: &str,
    input_id: &str,
    file_name: &str,
) -> String {
    format!(
        "kestra:///{}/{flow_id}/executions/{execution_id}/inputs/{input_id}/{file_name}",
        namespace.replace('.', "/")
    )
}
