//! Tasks the executor runs itself, as one attempt each: Fail, Exit, OutputValues, Labels.

use serde_json::{Map, Value as Json};
use weft_flow::model::{Label, Labels};

use super::{Step, truthy};
use crate::execution::upsert_label;
use crate::plan::Kind;
use crate::state::State;

/// Runs the attempt; returns its state and outputs.
pub(super) fn run(step: &mut Step<'_>, pos: u32, kind: Kind) -> (State, Map<String, Json>) {
    let node = step.meta(pos).node;
    let n = step.plan().node(node);
    match kind {
        Kind::Fail => {
            if let Some(cond) = n.prop("condition") {
                let text = match cond {
                    Json::String(s) => step.render_str(pos, s),
                    other => Ok(other.to_string()),
                };
                match text {
                    Ok(t) if !truthy(&t) => return (State::Success, Map::new()),
                    Ok(_) => {}
                    Err(e) => {
                        step.log(Some(pos), "ERROR", format!("condition: {e}"));
                        return (State::Failed, Map::new());
                    }
                }
            }
            let msg = match n.prop("errorMessage").and_then(Json::as_str) {
                Some(m) => step.render_str(pos, m).unwrap_or_else(|e| e),
                None => "Task failure".to_string(),
            };
            step.log(Some(pos), "ERROR", msg);
            (State::Failed, Map::new())
        }
        Kind::Exit => {
            let raw = n
                .prop("state")
                .and_then(Json::as_str)
                .unwrap_or("SUCCESS")
                .to_string();
            let state = step
                .render_str(pos, &raw)
                .ok()
                .and_then(|s| State::parse(s.trim()))
                .unwrap_or(State::Success);
            step.pending_exit = Some(state);
            (State::Success, Map::new())
        }
        Kind::OutputValues => {
            let values = n
                .prop("values")
                .cloned()
                .unwrap_or(Json::Object(Map::new()));
            match step.render_value(pos, &values) {
                Ok(v) => {
                    let mut out = Map::new();
                    out.insert("values".into(), v);
                    (State::Success, out)
                }
                Err(e) => {
                    step.log(Some(pos), "ERROR", e);
                    (State::Failed, Map::new())
                }
            }
        }
        Kind::Labels => {
            let raw = n.prop("labels").cloned().unwrap_or(Json::Null);
            let rendered = match &raw {
                Json::String(s) => step.render_str(pos, s).and_then(|t| {
                    serde_json::from_str::<Json>(&t).map_err(|e| format!("labels: {e}"))
                }),
                other => step.render_value(pos, other),
            };
            let labels = rendered.and_then(|v| Labels::from_json(&v).map_err(|e| e.to_string()));
            match labels {
                Ok(labels) => {
                    for Label { key, value } in labels.0 {
                        if key == crate::execution::CORRELATION_LABEL {
                            continue;
                        }
                        upsert_label(&mut step.exec.labels, Label { key, value });
                    }
                    (State::Success, Map::new())
                }
                Err(e) => {
                    step.log(Some(pos), "ERROR", e);
                    (State::Failed, Map::new())
                }
            }
        }
        _ => (State::Failed, Map::new()),
    }
}
