//! Starting flowable task runs: Sequential, Parallel, AllowFailure, WorkingDirectory, Dag,
//! the loops (ForEach, EachSequential, EachParallel, WaitFor) and the branches (If, Switch).

use serde_json::{Map, Value as Json, json};

use super::{Step, truthy};
use crate::event::{Timer, TimerKind};
use crate::index::{Agg, NO_PARENT};
use crate::plan::{BlockKind, Kind};
use crate::state::State;

/// How many lanes of a parent may run at once (0 = no limit).
pub(super) fn lane_limit(step: &Step<'_>, pnode: u32, kind: Kind) -> u32 {
    let plan = step.plan();
    match kind {
        Kind::ForEach => super::lanes::lane_int_prop(plan, pnode, "concurrencyLimit").unwrap_or(1),
        Kind::EachParallel => super::lanes::lane_int_prop(plan, pnode, "concurrent").unwrap_or(0),
        _ => 1,
    }
}

/// Starts a flowable task run.
pub(super) fn begin(step: &mut Step<'_>, pos: u32) {
    step.set_state(pos, State::Running);
    let node = step.meta(pos).node;
    let n = step.plan().node(node);
    let mut agg = Agg {
        body: n.block_of(&BlockKind::Tasks),
        ..Agg::default()
    };
    match n.kind {
        Kind::ForEach | Kind::EachSequential | Kind::EachParallel => {
            let prop = if n.kind == Kind::ForEach {
                "values"
            } else {
                "value"
            };
            let raw = n.prop(prop).cloned().unwrap_or(Json::Null);
            match resolve_values(step, pos, &raw) {
                Ok(values) => {
                    agg.total = u32::try_from(values.len()).unwrap_or(u32::MAX);
                    if let Some(r) = step.run_mut(pos) {
                        r.loop_values = Some(values);
                    }
                }
                Err(e) => return step.fail(pos, e),
            }
        }
        Kind::If => {
            let cond = n.prop("condition").cloned().unwrap_or(Json::Null);
            let text = match &cond {
                Json::String(s) => step.render_str(pos, s),
                Json::Bool(b) => Ok(b.to_string()),
                other => Ok(other.to_string()),
            };
            match text {
                Ok(t) => {
                    let branch = if truthy(&t) {
                        BlockKind::Then
                    } else {
                        BlockKind::Else
                    };
                    agg.body = n.block_of(&branch);
                }
                Err(e) => return step.fail(pos, format!("condition: {e}")),
            }
        }
        Kind::Switch => {
            let raw = n.prop("value").cloned().unwrap_or(Json::Null);
            let value = match &raw {
                Json::String(s) => step.render_str(pos, s),
                Json::Null => Ok(String::new()),
                other => Ok(other.to_string()),
            };
            let value = match value {
                Ok(v) => v,
                Err(e) => return step.fail(pos, format!("value: {e}")),
            };
            let case = n.block_of(&BlockKind::Case(value.clone()));
            let defaults = case.is_none();
            agg.body = case.or_else(|| n.block_of(&BlockKind::Defaults));
            let mut out = Map::new();
            out.insert("value".into(), Json::String(value));
            out.insert("defaults".into(), Json::Bool(defaults));
            step.set_outputs(pos, out);
        }
        Kind::WaitFor => {
            let mut out = Map::new();
            out.insert("iterationCount".into(), json!(0));
            step.set_outputs(pos, out);
        }
        _ => {}
    }
    step.ix.aggs.insert(pos, agg);
    step.evaluate(pos, None);
}

/// The values of a loop: a list (each string rendered), or a string rendered to a JSON list.
fn resolve_values(step: &Step<'_>, pos: u32, raw: &Json) -> Result<Vec<String>, String> {
    let items: Vec<Json> = match raw {
        Json::String(s) => {
            let text = step.render_str(pos, s)?;
            match serde_json::from_str::<Json>(&text) {
                Ok(Json::Array(a)) => a,
                _ => return Err(format!("values must be a JSON array, got `{text}`")),
            }
        }
        Json::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for item in a {
                out.push(match item {
                    Json::String(s) if weft_flow::expr::is_template(s) => {
                        Json::String(step.render_str(pos, s)?)
                    }
                    other => other.clone(),
                });
            }
            out
        }
        Json::Null => return Err("values are missing".into()),
        other => return Err(format!("values must be a list, got `{other}`")),
    };
    let nulls = items.iter().filter(|v| v.is_null()).count();
    if nulls > 0 {
        let shown: Vec<String> = items.iter().map(java_string).collect();
        return Err(format!(
            "Found '{nulls}' null values on Each, with values=[{}]",
            shown.join(", ")
        ));
    }
    Ok(items
        .into_iter()
        .map(|v| match v {
            Json::String(s) => s,
            other => other.to_string(),
        })
        .collect())
}

/// How Java prints a value inside a list (`{key=value}` maps), for messages Kestra users know.
fn java_string(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::String(s) => s.clone(),
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(java_string).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{k}={}", java_string(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// A WaitFor iteration ended: stop when the condition holds or a limit is reached, else wait
/// for the next iteration.
pub(super) fn waitfor_iteration_ended(step: &mut Step<'_>, p: u32, agg: &mut Agg) {
    if p == NO_PARENT || agg.failed {
        return;
    }
    let node = step.meta(p).node;
    let n = step.plan().node(node);
    let mut out = step
        .run(p)
        .and_then(|r| r.outputs.clone())
        .unwrap_or_default();
    out.insert("iterationCount".into(), json!(agg.done));
    step.set_outputs(p, out);
    let cond = n
        .prop("condition")
        .and_then(Json::as_str)
        .unwrap_or("false")
        .to_string();
    let met = match step.render_str(p, &cond) {
        Ok(t) => truthy(&t),
        Err(e) => {
            step.log(Some(p), "ERROR", format!("condition: {e}"));
            agg.worst = State::Failed;
            agg.failed = true;
            return;
        }
    };
    if met {
        agg.total = agg.started;
        return;
    }
    let freq = n.prop("checkFrequency").cloned().unwrap_or(Json::Null);
    let max_iter = freq
        .get("maxIterations")
        .and_then(Json::as_u64)
        .unwrap_or(100);
    let dur = |key: &str, default: i64| {
        freq.get(key)
            .and_then(Json::as_str)
            .and_then(|s| weft_flow::duration::parse(s).ok())
            .map_or(chrono::TimeDelta::seconds(default), |d| d.to_chrono())
    };
    let interval = dur("interval", 1);
    let max_duration = dur("maxDuration", 3600);
    let started_at = step
        .run(p)
        .and_then(|r| r.state.start_date)
        .unwrap_or(step.now);
    let over = u64::from(agg.done) >= max_iter || step.now + interval - started_at > max_duration;
    if over {
        let fail = n
            .prop("failOnMaxReached")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        if fail {
            step.log(
                Some(p),
                "ERROR",
                "WaitFor reached its maximum of iterations or duration".into(),
            );
            agg.worst = State::Failed;
        }
        agg.total = agg.started;
        return;
    }
    if interval <= chrono::TimeDelta::zero() {
        agg.total = agg.started + 1;
        return;
    }
    agg.waiting = true;
    let id = step.run(p).map(|r| r.id.clone());
    step.effects.push(crate::Effect::WakeAt {
        at: step.now + interval,
        timer: Timer {
            task_run_id: id,
            kind: TimerKind::WaitForNext,
            number: agg.started,
        },
    });
}

/// The timer of a WaitFor's next iteration fired.
pub(super) fn waitfor_next(step: &mut Step<'_>, pos: u32, iteration: u32) {
    let Some(mut agg) = step.ix.aggs.get(&pos).copied() else {
        return;
    };
    if !agg.waiting || agg.started != iteration || step.state_of(pos) != State::Running {
        return;
    }
    agg.waiting = false;
    agg.total = agg.started + 1;
    step.ix.aggs.insert(pos, agg);
    step.evaluate(pos, None);
}
