//! Cases of kinds `input-typing` and `input-validation`: the flow's inputs are only read (typed
//! and validated), no execution runs.

use serde_json::{Map, Value as Json};
use weft_executor::inputs::InputContext;

use super::cases::{Case, Outcome};
use super::run_kinds::{self, Env};

/// Runs one an `input-typing` or `input-validation` case; an error is a failure of the case.
pub(crate) fn run(env: &mut Env, case: &Case) -> anyhow::Result<Outcome> {
    let raw = env.raw_case(&case.name)?;
    let dir = env.dir().to_path_buf();
    let inner = env.inner()?;
    let file = raw.get("file").and_then(Json::as_str).unwrap_or("");
    let flow = match run_kinds::read_flow(&dir, file, &inner.registry) {
        Ok(f) => f,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let exec_id = raw
        .get("executionId")
        .and_then(Json::as_str)
        .unwrap_or("conformance")
        .to_string();
    let base = raw
        .get("inputs")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let renderer = inner.renderer.clone();
    let read = |inputs: &Map<String, Json>| -> Result<Map<String, Json>, String> {
        let values = run_kinds::typing_inputs(inputs, &flow, &exec_id);
        let ctx = InputContext::new(&exec_id, chrono::Utc::now(), &renderer);
        weft_executor::inputs::read_inputs(&flow, &values, &ctx).map_err(|e| e.to_string())
    };
    let mut problems = Vec::new();
    let expect = &case.expect;
    if case.kind == "input-typing" {
        check_variant("base inputs", expect, read(&base), &mut problems);
    }
    for (i, variant) in expect
        .get("variants")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = variant
            .get("name")
            .and_then(Json::as_str)
            .map_or_else(|| format!("variant {i}"), |n| format!("variant `{n}`"));
        let mut inputs = base.clone();
        for (k, v) in variant
            .get("inputsOverride")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            inputs.insert(k.clone(), v.clone());
        }
        for k in variant
            .get("removeInputs")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
        {
            inputs.remove(k);
        }
        check_variant(&name, variant, read(&inputs), &mut problems);
    }
    Ok(if problems.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed(problems.join("\n"))
    })
}

/// JSON equality with numbers compared by value.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}

fn check_variant(
    name: &str,
    expect: &Json,
    result: Result<Map<String, Json>, String>,
    problems: &mut Vec<String>,
) {
    let wants_error = expect.get("errorContains").is_some() || expect.get("errorEquals").is_some();
    let typed = match result {
        Ok(typed) => {
            if wants_error {
                problems.push(format!(
                    "{name}: expected an error, the inputs were accepted as {}",
                    Json::Object(typed)
                ));
                return;
            }
            typed
        }
        Err(e) => {
            if let Some(c) = expect.get("errorContains").and_then(Json::as_str)
                && !e.contains(c)
            {
                problems.push(format!(
                    "{name}: expected an error containing `{c}`, found `{e}`"
                ));
            }
            if let Some(c) = expect.get("errorEquals").and_then(Json::as_str)
                && e != c
            {
                problems.push(format!("{name}: expected the error `{c}`, found `{e}`"));
            }
            if !wants_error {
                problems.push(format!(
                    "{name}: expected typed inputs, found the error `{e}`"
                ));
            }
            return;
        }
    };
    for (k, w) in expect
        .get("typedInputs")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        match typed.get(k) {
            Some(f) if same(f, w) => {}
            found => problems.push(format!(
                "{name}: input `{k}`: expected {w}, found {found:?}"
            )),
        }
    }
    for (k, w) in expect
        .get("typedInputsNotEqual")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        if typed.get(k).is_some_and(|f| same(f, w)) {
            problems.push(format!(
                "{name}: input `{k}`: expected anything but {w}, found it"
            ));
        }
    }
    for k in expect
        .get("typedInputsHasKeyNull")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        match typed.get(k) {
            Some(Json::Null) => {}
            found => problems.push(format!(
                "{name}: input `{k}`: expected a null entry, found {found:?}"
            )),
        }
    }
}
