//! Subflow: start another flow's execution (`namespace`, `flowId`, `revision`, `inputs`,
//! `labels`, `inheritLabels`), wait for it (`wait`) and take its state (`transmitFailed`).

use serde_json::{Map, Value as Json, json};
use weft_flow::model::{Label, Labels};

use super::Step;
use crate::effect::{Effect, StartSubflow};
use crate::execution::{CORRELATION_LABEL, upsert_label};
use crate::ids;
use crate::state::State;

fn bool_prop(step: &Step<'_>, node: u32, pos: u32, name: &str, default: bool) -> bool {
    match step.plan().node(node).prop(name) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => step
            .render_str(pos, s)
            .map(|t| super::truthy(&t))
            .unwrap_or(default),
        _ => default,
    }
}

/// What a subflow execution is started with, read from a Subflow or ForEachItem task.
pub(super) struct ChildSpec {
    namespace: String,
    flow_id: String,
    revision: Option<u32>,
    labels: Vec<Label>,
    wait: bool,
    schedule_date: Option<chrono::DateTime<chrono::Utc>>,
}

/// Reads the properties of `node` (rendered in the context of task run `pos`).
fn child_spec(step: &Step<'_>, pos: u32, node: u32) -> Result<ChildSpec, String> {
    let n = step.plan().node(node);
    let text = |name: &str| -> Result<String, String> {
        let raw = n
            .prop(name)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("`{name}` is missing"))?;
        step.render_str(pos, raw)
    };
    let namespace = text("namespace")?;
    let flow_id = text("flowId")?;
    let revision = n
        .prop("revision")
        .and_then(Json::as_u64)
        .and_then(|r| u32::try_from(r).ok());
    let prop_bool = |name: &str, default: bool| match n.prop(name) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => step
            .render_str(pos, s)
            .map(|t| super::truthy(&t))
            .unwrap_or(default),
        _ => default,
    };
    let wait = prop_bool("wait", true);
    let mut labels: Vec<Label> = Vec::new();
    if prop_bool("inheritLabels", false) {
        for l in &step.exec.labels {
            if !l.key.starts_with("system.") {
                labels.push(l.clone());
            }
        }
    }
    if let Some(raw) = n.prop("labels") {
        let ls = step
            .render_value(pos, raw)
            .and_then(|v| Labels::from_json(&v).map_err(|e| e.to_string()))
            .map_err(|e| format!("labels: {e}"))?;
        ls.0.into_iter().for_each(|l| upsert_label(&mut labels, l));
    }
    let correlation = step
        .exec
        .label(CORRELATION_LABEL)
        .map_or_else(|| step.exec.id.clone(), str::to_string);
    upsert_label(
        &mut labels,
        Label {
            key: CORRELATION_LABEL.into(),
            value: correlation,
        },
    );
    let schedule_date = n
        .prop("scheduleDate")
        .and_then(Json::as_str)
        .and_then(|s| step.render_str(pos, s).ok())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
        .map(|d| d.to_utc());
    Ok(ChildSpec {
        namespace,
        flow_id,
        revision,
        labels,
        wait,
        schedule_date,
    })
}

/// Pushes the effect starting one subflow execution for task run `pos`; returns its id.
fn start_child(
    step: &mut Step<'_>,
    pos: u32,
    spec: &ChildSpec,
    inputs: Map<String, Json>,
    batch: Option<u32>,
) -> String {
    let node = step.meta(pos).node;
    let n = step.plan().node(node);
    let run_id = step.run(pos).map(|r| r.id.clone()).unwrap_or_default();
    let value = step.run(pos).and_then(|r| r.value.clone());
    let batch_bytes = batch.map_or(u64::MAX, u64::from).to_le_bytes();
    let child_id = ids::execution_id(ids::hash64(&[
        step.exec.id.as_bytes(),
        run_id.as_bytes(),
        &batch_bytes,
    ]));
    let trigger = json!({
        "id": n.task_id(),
        "type": n.type_name,
        "variables": {
            "executionId": step.exec.id,
            "namespace": step.exec.namespace,
            "flowId": step.exec.flow_id,
            "flowRevision": step.exec.flow_revision,
            "taskRunId": run_id,
            "taskId": n.task_id(),
            "taskRunValue": value,
            "taskRunIteration": batch,
        }
    });
    step.effects
        .push(Effect::StartSubflow(Box::new(StartSubflow {
            task_run_id: run_id,
            execution_id: child_id.clone(),
            namespace: spec.namespace.clone(),
            flow_id: spec.flow_id.clone(),
            revision: spec.revision,
            inputs,
            labels: spec.labels.clone(),
            wait: spec.wait,
            parent_id: step.exec.id.clone(),
            trigger,
            schedule_date: spec.schedule_date,
        })));
    child_id
}

/// Opens the single attempt of a Subflow or ForEachItem `_items` task run.
fn open_attempt(step: &mut Step<'_>, pos: u32) {
    let now = step.now;
    if let Some(r) = step.run_mut(pos) {
        r.attempts
            .get_or_insert_with(Vec::new)
            .push(crate::taskrun::Attempt {
                state: crate::state::StateInfo::new(State::Running, now),
                metrics: Vec::new(),
                log_file: None,
            });
    }
}

/// Starts a Subflow task run.
pub(super) fn begin(step: &mut Step<'_>, pos: u32) {
    step.set_state(pos, State::Running);
    open_attempt(step, pos);
    let (spec, child_id) = match ask_child(step, pos) {
        Ok(started) => started,
        Err(e) => return step.fail(pos, e),
    };
    let mut out = Map::new();
    out.insert("executionId".into(), Json::String(child_id));
    step.set_outputs(pos, out);
    if !spec.wait {
        step.finish_run(pos, State::Success);
    }
}

/// Pushes the effect that starts the subflow execution of Subflow task run `pos` (its id is
/// derived from the task run, so asking again names the same execution); returns its spec and id.
pub(super) fn ask_child(step: &mut Step<'_>, pos: u32) -> Result<(ChildSpec, String), String> {
    let node = step.meta(pos).node;
    let spec = child_spec(step, pos, node)?;
    let inputs = match step
        .plan()
        .node(node)
        .prop("inputs")
        .map(|v| step.render_value(pos, v))
    {
        None => Map::new(),
        Some(Ok(Json::Object(m))) => m,
        Some(Ok(_)) => return Err("`inputs` must be a map".into()),
        Some(Err(e)) => return Err(format!("inputs: {e}")),
    };
    let child_id = start_child(step, pos, &spec, inputs, None);
    Ok((spec, child_id))
}

/// Starts the `<id>_items` task run of a ForEachItem: one subflow execution per batch file
/// listed in the `<id>_split` outputs (`splits`), `{{ taskrun.items }}` being the batch's URI.
pub(super) fn begin_items(step: &mut Step<'_>, pos: u32) {
    step.set_state(pos, State::Running);
    open_attempt(step, pos);
    let parent = step.meta(pos).parent;
    let parent_node = step.node_of(parent);
    let split_id = format!("{}_split", step.plan().node(parent_node).task_id());
    let splits: Vec<String> = step
        .ix
        .outputs
        .get(&split_id)
        .and_then(|o| o.get("splits"))
        .map(|v| match v {
            Json::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Json::String(s) => s
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let spec = match child_spec(step, pos, parent_node) {
        Ok(s) => s,
        Err(e) => return step.fail(pos, e),
    };
    let raw_inputs = step.plan().node(parent_node).prop("inputs").cloned();
    let mut ids = Vec::with_capacity(splits.len());
    for (i, uri) in splits.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let inputs = match &raw_inputs {
            None => Map::new(),
            Some(raw) => {
                let mut vars = step.context(pos);
                if let Some(tr) = vars.get_mut("taskrun").and_then(Json::as_object_mut) {
                    tr.insert("items".into(), Json::String(uri.clone()));
                    tr.insert("iteration".into(), json!(i));
                }
                let ctx = weft_flow::expr::Context {
                    vars: &vars,
                    now: step.now,
                    seed: step.seed(pos),
                    host: step.ex.host.as_deref(),
                };
                match step.ex.renderer.render_value(raw, &ctx) {
                    Ok(Json::Object(m)) => m,
                    Ok(_) => return step.fail(pos, "`inputs` must be a map".into()),
                    Err(e) => return step.fail(pos, format!("inputs: {e}")),
                }
            }
        };
        ids.push(Json::String(start_child(step, pos, &spec, inputs, Some(i))));
    }
    let n = ids.len();
    let mut iterations = Map::new();
    for s in [
        "CREATED",
        "RUNNING",
        "SUCCESS",
        "WARNING",
        "FAILED",
        "KILLED",
        "CANCELLED",
    ] {
        iterations.insert(s.into(), json!(0));
    }
    let waiting = if spec.wait { n } else { 0 };
    iterations.insert("RUNNING".into(), json!(waiting));
    iterations.insert(State::Success.as_str().into(), json!(n - waiting));
    let mut out = Map::new();
    out.insert("numberOfBatches".into(), json!(n));
    out.insert("iterations".into(), Json::Object(iterations));
    out.insert("executionIds".into(), Json::Array(ids));
    step.set_outputs(pos, out);
    if waiting == 0 {
        step.finish_run(pos, State::Success);
    }
}

impl Step<'_> {
    /// A subflow execution ended: the Subflow task run takes its state.
    pub(super) fn subflow_ended(
        &mut self,
        task_run_id: &str,
        execution_id: &str,
        state: State,
        outputs: Option<Map<String, Json>>,
    ) {
        let Some(&pos) = self.ix.by_id.get(task_run_id) else {
            return;
        };
        let Some(run) = self.run(pos) else { return };
        if run.state.current != State::Running {
            return;
        }
        if self.plan().node(self.meta(pos).node).kind == crate::plan::Kind::ForEachItemExecutable {
            return self.items_child_ended(pos, execution_id, state);
        }
        let expected = run
            .outputs
            .as_ref()
            .and_then(|o| o.get("executionId"))
            .and_then(Json::as_str);
        if expected != Some(execution_id) {
            return;
        }
        let mut out = Map::new();
        out.insert("executionId".into(), Json::String(execution_id.to_string()));
        out.insert("state".into(), Json::String(state.as_str().into()));
        if let Some(o) = outputs {
            out.insert("outputs".into(), Json::Object(o));
        }
        self.set_outputs(pos, out);
        let transmit = bool_prop(self, self.meta(pos).node, pos, "transmitFailed", true);
        let mine = match state {
            State::Success | State::Skipped => State::Success,
            State::Warning => State::Warning,
            _ if !transmit => State::Success,
            State::Killed => State::Killed,
            _ => State::Failed,
        };
        if mine == State::Failed {
            self.log(
                Some(pos),
                "ERROR",
                format!("subflow execution `{execution_id}` ended {state}"),
            );
        }
        self.finish_run(pos, mine);
    }
}

impl Step<'_> {
    /// One subflow execution of a ForEachItem ended: count it; the `_items` task run ends with
    /// the last one (FAILED if one failed and `transmitFailed`).
    fn items_child_ended(&mut self, pos: u32, execution_id: &str, state: State) {
        let Some(mut out) = self.run(pos).and_then(|r| r.outputs.clone()) else {
            return;
        };
        let known = out
            .get("executionIds")
            .and_then(Json::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(execution_id)));
        let done_key = "terminatedIds";
        let already = out
            .get(done_key)
            .and_then(Json::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(execution_id)));
        if !known || already {
            return;
        }
        if let Some(Json::Array(a)) = out.get_mut(done_key) {
            a.push(Json::String(execution_id.to_string()));
        } else {
            out.insert(done_key.into(), json!([execution_id]));
        }
        let Some(Json::Object(it)) = out.get_mut("iterations") else {
            return;
        };
        let running = it
            .get("RUNNING")
            .and_then(Json::as_u64)
            .unwrap_or(0)
            .saturating_sub(1);
        it.insert("RUNNING".into(), json!(running));
        let key = state.as_str().to_string();
        let c = it.get(&key).and_then(Json::as_u64).unwrap_or(0) + 1;
        it.insert(key, json!(c));
        let failed = ["FAILED", "KILLED"]
            .iter()
            .any(|k| it.get(*k).and_then(Json::as_u64).unwrap_or(0) > 0);
        let warned = it.get("WARNING").and_then(Json::as_u64).unwrap_or(0) > 0;
        self.set_outputs(pos, out);
        if running > 0 {
            return;
        }
        let parent_node = self.node_of(self.meta(pos).parent);
        let transmit = bool_prop(self, parent_node, pos, "transmitFailed", true);
        let end = if failed && transmit {
            State::Failed
        } else if warned {
            State::Warning
        } else {
            State::Success
        };
        self.finish_run(pos, end);
    }
}
