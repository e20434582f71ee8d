//! Render contexts: the variables an expression of a task sees (`inputs`, `outputs`, `vars`,
//! `execution`, `flow`, `task`, `taskrun`, `parent`, `parents`, `trigger`, `labels`), built from
//! the indexes in time proportional to what the task reads, not to the execution's size.

use serde_json::{Map, Value as Json, json};

use crate::execution::Execution;
use crate::index::{Index, NO_PARENT};
use crate::plan::{Plan, Refs};

/// The variables every expression of the execution sees (`flow`, `execution`, `inputs`, `vars`,
/// `labels`, `trigger` and the driver's globals such as `envs` and `globals`).
pub(crate) fn base(
    plan: &Plan,
    exec: &Execution,
    globals: &Map<String, Json>,
) -> Map<String, Json> {
    let mut v = globals.clone();
    let flow = &plan.flow;
    v.insert(
        "flow".into(),
        json!({"id": flow.id, "namespace": flow.namespace, "revision": exec.flow_revision}),
    );
    let mut e = Map::new();
    e.insert("id".into(), Json::String(exec.id.clone()));
    if let Some(d) = exec.state.start_date {
        e.insert(
            "startDate".into(),
            Json::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
    }
    if let Some(o) = &exec.original_id {
        e.insert("originalId".into(), Json::String(o.clone()));
    }
    e.insert(
        "state".into(),
        Json::String(exec.state.current.as_str().into()),
    );
    v.insert("execution".into(), Json::Object(e));
    if !flow.inputs.is_empty() || !exec.inputs.is_empty() {
        // SECRET inputs are sealed in the execution; expressions see their plain text
        let mut inputs: Map<String, Json> = exec
            .inputs
            .iter()
            .map(|(k, x)| (k.clone(), crate::inputs::reveal_secrets(x)))
            .collect();
        for i in &flow.inputs {
            if let (false, Some(d)) = (inputs.contains_key(&i.id), &i.defaults) {
                inputs.insert(i.id.clone(), d.clone());
            }
        }
        v.insert("inputs".into(), Json::Object(inputs));
    }
    if !flow.variables.is_empty() {
        let vars: Map<String, Json> = flow
            .variables
            .iter()
            .map(|(k, x)| (k.clone(), x.clone()))
            .collect();
        v.insert("vars".into(), Json::Object(vars));
    }
    v.insert("labels".into(), Json::Object(nested_labels(&exec.labels)));
    if let Some(t) = &exec.trigger {
        let vars = t.get("variables").cloned().unwrap_or_else(|| t.clone());
        v.insert("trigger".into(), vars);
    }
    v
}

/// The labels as expressions see them (Kestra's `Label.toNestedMap`): a dotted key is nested,
/// so `system.correlationId` is read as `labels.system.correlationId`; a later label with the
/// same key wins. A key that is both a value and a prefix (`a` and `a.b`) keeps the value.
fn nested_labels(labels: &[weft_flow::model::Label]) -> Map<String, Json> {
    let mut out = Map::new();
    for l in labels {
        let mut cur = &mut out;
        let mut parts = l.key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                cur.insert(part.to_string(), Json::String(l.value.clone()));
                break;
            }
            let slot = cur
                .entry(part.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            match slot {
                Json::Object(m) => cur = m,
                _ => break,
            }
        }
    }
    out
}

/// Loops with more values than this show a task only the outputs of its own iteration of the
/// tasks it shares the loop with (`outputs.sibling[taskrun.value]` still works).
const NARROW_ABOVE: usize = 256;

/// The outputs a node's expressions read, narrowed to the current loop iteration for tasks in
/// the same loops.
fn outputs_for(
    plan: &Plan,
    ix: &Index,
    exec: &Execution,
    node: u32,
    pos: Option<u32>,
) -> Map<String, Json> {
    let n = plan.node(node);
    match &n.refs {
        Refs::All => ix.outputs.clone(),
        Refs::Some(ids) => {
            let mut out = Map::new();
            if ids.is_empty() {
                return out;
            }
            let path = pos.map(|p| ix.loop_path(exec, p)).unwrap_or_default();
            for id in ids {
                let Some(tree) = ix.outputs.get(id) else {
                    continue;
                };
                let shared = plan
                    .by_task_id
                    .get(id)
                    .map(|&r| {
                        let rl = &plan.node(r).loops;
                        rl.iter()
                            .zip(n.loops.iter())
                            .take_while(|(a, b)| a == b)
                            .count()
                    })
                    .unwrap_or(0)
                    .min(path.len());
                // Kestra gives the whole map; past NARROW_ABOVE values, only the current
                // iteration's branch, so a loop stays linear in its number of values.
                let big = tree.as_object().is_some_and(|m| m.len() > NARROW_ABOVE);
                let keep = if big { shared } else { 0 };
                out.insert(id.clone(), narrow(tree, &path[..keep]));
            }
            out
        }
    }
}

/// `tree[p0][p1]...` wrapped back into single-key maps, so `outputs.t[p0][p1]` still works.
fn narrow(tree: &Json, path: &[String]) -> Json {
    match path.split_first() {
        None => tree.clone(),
        Some((first, rest)) => match tree.get(first) {
            Some(sub) => {
                let mut m = Map::new();
                m.insert(first.clone(), narrow(sub, rest));
                Json::Object(m)
            }
            None => Json::Object(Map::new()),
        },
    }
}

/// The context of a task run (at `pos`) or of a task about to get one (`node` under `parent`,
/// with `value`).
pub(crate) struct Site<'a> {
    pub(crate) node: u32,
    pub(crate) pos: Option<u32>,
    pub(crate) parent: u32,
    pub(crate) value: Option<&'a str>,
    pub(crate) iteration: Option<u32>,
}

/// The full context of a task (run).
pub(crate) fn task(
    plan: &Plan,
    ix: &Index,
    exec: &Execution,
    globals: &Map<String, Json>,
    site: &Site<'_>,
) -> Json {
    let mut v = base(plan, exec, globals);
    v.insert(
        "outputs".into(),
        Json::Object(outputs_for(plan, ix, exec, site.node, site.pos)),
    );
    let n = plan.node(site.node);
    if let Some(t) = &n.task {
        v.insert("task".into(), json!({"id": t.id, "type": t.type_name}));
    }
    let mut tr = Map::new();
    if let Some(p) = site.pos
        && let Some(run) = exec.task_run_list.get(p as usize)
    {
        tr.insert("id".into(), Json::String(run.id.clone()));
        if let Some(d) = run.state.start_date {
            tr.insert(
                "startDate".into(),
                Json::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
        tr.insert(
            "attemptsCount".into(),
            json!(run.attempt_count().saturating_sub(1)),
        );
        if let Some(pid) = &run.parent_task_run_id {
            tr.insert("parentId".into(), Json::String(pid.clone()));
        }
    }
    if let Some(val) = site.value {
        tr.insert("value".into(), Json::String(val.to_string()));
    }
    if let Some(it) = site.iteration {
        tr.insert("iteration".into(), json!(it));
    }
    v.insert("taskrun".into(), Json::Object(tr));
    // parents: every ancestor that has a value, innermost first
    let mut parents = Vec::new();
    let mut cur = site.parent;
    while cur != NO_PARENT {
        let Some(run) = exec.task_run_list.get(cur as usize) else {
            break;
        };
        if let Some(val) = &run.value {
            let mut p = Map::new();
            p.insert("taskrun".into(), json!({"value": val}));
            if let Some(o) = &run.outputs {
                p.insert("outputs".into(), Json::Object(o.clone()));
            }
            parents.push(Json::Object(p));
        }
        cur = ix.meta.get(cur as usize).map_or(NO_PARENT, |m| m.parent);
    }
    if let Some(first) = parents.first() {
        v.insert("parent".into(), first.clone());
        v.insert("parents".into(), Json::Array(parents));
    }
    Json::Object(v)
}

/// The context of the flow's `outputs`: every output of the execution.
pub(crate) fn flow_outputs(
    plan: &Plan,
    ix: &Index,
    exec: &Execution,
    globals: &Map<String, Json>,
) -> Json {
    let mut v = base(plan, exec, globals);
    v.insert("outputs".into(), Json::Object(ix.outputs.clone()));
    Json::Object(v)
}
