//! Subflow: start another flow's execution (`namespace`, `flowId`, `revision`, `inputs`,
//! `labels`, `inheritLabels`), wait for it (`wait`) and take its state (`transmitFailed`).

use serde_json::{Map, Value as Json, json};
use weft_flow::model::{Label, Labels};

use super::Step;
use crate::effect::{Effect, StartSubflow};
use crate::execution::{CORRELATION_LABEL, upsert_label};
use crate::ids;
use crate::state::State;

fn bool_prop(step: &Step<'_>, pos: u32, name: &str, default: bool) -> bool {
    let node = step.meta(pos).node;
    match step.plan().node(node).prop(name) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => step
            .render_str(pos, s)
            .map(|t| super::truthy(&t))
            .unwrap_or(default),
        _ => default,
    }
}

/// Starts a Subflow task run.
pub(super) fn begin(step: &mut Step<'_>, pos: u32) {
    step.set_state(pos, State::Running);
    let node = step.meta(pos).node;
    let n = step.plan().node(node);
    let text = |name: &str| -> Result<String, String> {
        let raw = n
            .prop(name)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("`{name}` is missing"))?;
        step.render_str(pos, raw)
    };
    let (namespace, flow_id) = match (text("namespace"), text("flowId")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return step.fail(pos, e),
    };
    let revision = n
        .prop("revision")
        .and_then(Json::as_u64)
        .and_then(|r| u32::try_from(r).ok());
    let inputs = match n.prop("inputs").map(|v| step.render_value(pos, v)) {
        None => Map::new(),
        Some(Ok(Json::Object(m))) => m,
        Some(Ok(_)) => return step.fail(pos, "`inputs` must be a map".into()),
        Some(Err(e)) => return step.fail(pos, format!("inputs: {e}")),
    };
    let wait = bool_prop(step, pos, "wait", true);
    let mut labels: Vec<Label> = Vec::new();
    if bool_prop(step, pos, "inheritLabels", false) {
        for l in &step.exec.labels {
            if !l.key.starts_with("system.") {
                labels.push(l.clone());
            }
        }
    }
    if let Some(raw) = n.prop("labels") {
        match step
            .render_value(pos, raw)
            .and_then(|v| Labels::from_json(&v).map_err(|e| e.to_string()))
        {
            Ok(ls) => ls.0.into_iter().for_each(|l| upsert_label(&mut labels, l)),
            Err(e) => return step.fail(pos, format!("labels: {e}")),
        }
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
    let Some(run) = step.run(pos) else { return };
    let run_id = run.id.clone();
    let child_id = ids::execution_id(ids::hash64(&[step.exec.id.as_bytes(), run_id.as_bytes()]));
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
            "taskRunValue": run.value,
        }
    });
    let schedule_date = n
        .prop("scheduleDate")
        .and_then(Json::as_str)
        .and_then(|s| step.render_str(pos, s).ok())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
        .map(|d| d.to_utc());
    step.effects
        .push(Effect::StartSubflow(Box::new(StartSubflow {
            task_run_id: run_id,
            execution_id: child_id.clone(),
            namespace,
            flow_id,
            revision,
            inputs,
            labels,
            wait,
            parent_id: step.exec.id.clone(),
            trigger,
            schedule_date,
        })));
    let mut out = Map::new();
    out.insert("executionId".into(), Json::String(child_id));
    step.set_outputs(pos, out);
    if !wait {
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
        let transmit = bool_prop(self, pos, "transmitFailed", true);
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
