//! Cases of kinds `parse`, `valid` and `invalid`: the flow is only read and validated.

use std::path::Path;

use serde_json::Value as Json;
use weft_flow::{DocumentReport, Registry};

use super::cases::{Case, Outcome};

/// Runs one parse/valid/invalid case.
pub(crate) fn run(dir: &Path, case: &Case, registry: &Registry) -> Outcome {
    let path = dir.join(&case.file);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("cannot read {}: {e}", path.display())),
    };
    let reports = weft_flow::check_documents(&source, registry);
    let text = error_text(&reports);
    let errors = reports
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .filter(|d| d.is_error())
        .count();
    match case.kind.as_str() {
        "invalid" => check_invalid(&case.expect, &reports, &text, errors),
        _ => {
            if errors > 0 {
                return Outcome::Failed(format!("expected a valid flow, got:\n{text}"));
            }
            check_parsed(&case.expect, &reports)
        }
    }
}

fn error_text(reports: &[DocumentReport]) -> String {
    reports
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{}: {d}", d.pos.line, d.pos.col))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_invalid(expect: &Json, reports: &[DocumentReport], text: &str, errors: usize) -> Outcome {
    if errors == 0 {
        return Outcome::Failed("expected the flow to be rejected, it was accepted".into());
    }
    let mut problems = Vec::new();
    for m in strings(expect.get("messages")) {
        if !text.contains(&m) {
            problems.push(format!("missing message `{m}`"));
        }
    }
    let any_of = strings(expect.get("messagesAnyOf"));
    if !any_of.is_empty() && !any_of.iter().any(|m| text.contains(m.as_str())) {
        problems.push(format!("none of the messages {any_of:?}"));
    }
    if let Some(exact) = expect.get("messageEquals").and_then(Json::as_str) {
        let body: Vec<String> = reports
            .iter()
            .flat_map(|r| r.diagnostics.iter())
            .filter(|d| d.is_error())
            .map(|d| format!("{d}\n"))
            .collect();
        if body.concat() != exact {
            problems.push(format!("expected exactly `{}`", exact.escape_debug()));
        }
    }
    if let Some(n) = expect.get("violationCount").and_then(Json::as_u64)
        && errors as u64 != n
    {
        problems.push(format!("expected {n} violation(s), got {errors}"));
    }
    if let Some(n) = expect.get("documents").and_then(Json::as_u64)
        && reports.len() as u64 != n
    {
        problems.push(format!("expected {n} documents, got {}", reports.len()));
    }
    if problems.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed(format!("{}\nerrors were:\n{text}", problems.join("; ")))
    }
}

fn strings(v: Option<&Json>) -> Vec<String> {
    v.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn check_parsed(expect: &Json, reports: &[DocumentReport]) -> Outcome {
    let Some(flow) = reports.first().and_then(|r| r.flow.as_ref()) else {
        return Outcome::Failed("no flow was read".into());
    };
    let json = match serde_json::to_value(flow) {
        Ok(j) => j,
        Err(e) => return Outcome::Failed(format!("cannot serialise the flow: {e}")),
    };
    let mut problems = Vec::new();
    if let Some(facts) = expect.get("parsed").and_then(Json::as_object) {
        for (key, want) in facts {
            match fact(&json, key) {
                Some(got) if numbers_equal(&got, want) => {}
                got => problems.push(format!(
                    "{key}: expected {want}, got {}",
                    got.unwrap_or(Json::Null)
                )),
            }
        }
    }
    if let Some(want) = expect.get("serializedJson")
        && &json != want
    {
        problems.push(format!(
            "serialised flow differs:\n  expected {want}\n  got      {json}"
        ));
    }
    if problems.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed(problems.join("\n"))
    }
}

fn numbers_equal(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

/// A structural fact about a flow, in the vocabulary of the corpus README.
fn fact(flow: &Json, key: &str) -> Option<Json> {
    let inputs = flow.get("inputs").and_then(Json::as_array);
    let count = |pred: &dyn Fn(&Json) -> bool| {
        Some(Json::from(
            inputs.map_or(0, |i| i.iter().filter(|x| pred(x)).count()),
        ))
    };
    let required = |i: &Json| i.get("required").and_then(Json::as_bool).unwrap_or(true);
    match key {
        "tasksCount" => Some(Json::from(flow.get("tasks")?.as_array()?.len())),
        "inputsCount" => count(&|_| true),
        "requiredInputsCount" => count(&|i| required(i)),
        "optionalInputsCount" => count(&|i| !required(i)),
        "inputsWithDefaultsCount" => count(&|i| i.get("defaults").is_some_and(|d| !d.is_null())),
        "stringInputsWithValidator" => count(&|i| {
            i.get("type").and_then(Json::as_str) == Some("STRING") && i.get("validator").is_some()
        }),
        _ => path_fact(flow, key),
    }
}

/// `tasks[2].retry.maxAttempt`; a trailing `Seconds` reads a duration as seconds
/// (`retry.intervalSeconds` is `retry.interval` in seconds).
fn path_fact(flow: &Json, key: &str) -> Option<Json> {
    let mut cur = flow.clone();
    let segments: Vec<&str> = key.split('.').collect();
    for (n, seg) in segments.iter().enumerate() {
        let (name, index) = match seg.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*seg, None),
        };
        let next = cur.get(name).cloned().or_else(|| {
            let base = name.strip_suffix("Seconds")?;
            let text = cur.get(base)?.as_str()?.to_string();
            let d = weft_flow::duration::parse(&text).ok()?;
            Some(Json::from(d.as_millis() / 1000))
        });
        cur = next?;
        if let Some(i) = index {
            cur = cur.get(i)?.clone();
        }
        if n == segments.len() - 1 {
            return Some(cur);
        }
    }
    Some(cur)
}
