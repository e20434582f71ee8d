//! The `expect` checks of execution cases (see the corpus README, "`expect` vocabulary"): each
//! failed check says what was expected and what was found.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value as Json};
use weft_executor::{Execution, State, TaskRun};
use weft_server::runner::Observer;
use weft_store::repo::ExecutionFiles;

/// One log line seen during a run: execution id, task id or task run id, level, message.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) exec_id: String,
    pub(crate) key: String,
    pub(crate) level: String,
    pub(crate) message: String,
}

/// An observer that keeps every log line.
#[derive(Debug, Default)]
pub(crate) struct LogSink {
    pub(crate) lines: Mutex<Vec<LogLine>>,
}

impl Observer for LogSink {
    fn log(&self, exec_id: &str, task_id: &str, level: &str, message: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(LogLine {
                exec_id: exec_id.to_string(),
                key: task_id.to_string(),
                level: level.to_string(),
                message: message.to_string(),
            });
        }
    }
}

impl LogSink {
    pub(crate) fn snapshot(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// What the checks of one execution see.
pub(crate) struct Ctx<'a> {
    /// The execution checked.
    pub(crate) exec: &'a Execution,
    /// Its files (to read `kestra://` outputs).
    pub(crate) files: Option<ExecutionFiles>,
    /// Every log line of the run, when logs are available.
    pub(crate) logs: Option<&'a [LogLine]>,
    /// Executions named with `as` in a scenario.
    pub(crate) aliases: &'a HashMap<String, Execution>,
    /// The same execution at the previous step (`sameExecutionId`, `sameTaskRunId`).
    pub(crate) previous: Option<&'a Execution>,
}

/// The result of checking: problems (the case fails) and notes (checks that could not be made).
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) problems: Vec<String>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    fn fail(&mut self, msg: String) {
        self.problems.push(msg);
    }
}

/// Replaces `${execution.id}`, `${taskrun[X].id}`, `${alias.id}` and `${alias.taskrun[X].id}`
/// in the strings of `v`.
pub(crate) fn substitute(v: &Json, ctx: &Ctx<'_>) -> Json {
    match v {
        Json::String(s) => Json::String(substitute_str(s, ctx)),
        Json::Array(a) => Json::Array(a.iter().map(|x| substitute(x, ctx)).collect()),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute_str(s: &str, ctx: &Ctx<'_>) -> String {
    substitute_in(s, Some(ctx.exec), ctx.aliases)
}

/// Replaces the placeholders of `s` that name executions of `aliases` (and `execution`, when
/// given).
pub(crate) fn substitute_in(
    s: &str,
    exec: Option<&Execution>,
    aliases: &HashMap<String, Execution>,
) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match resolve_placeholder(name, exec, aliases) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn resolve_placeholder(
    name: &str,
    current: Option<&Execution>,
    aliases: &HashMap<String, Execution>,
) -> Option<String> {
    let (exec, path) = match name.split_once('.') {
        _ if name.starts_with("taskrun[") => (current?, name),
        Some(("execution", path)) => (current?, path),
        Some((alias, path)) if aliases.contains_key(alias) => (aliases.get(alias)?, path),
        _ => return None,
    };
    if path == "id" {
        return Some(exec.id.clone());
    }
    let task = path.strip_prefix("taskrun[")?.strip_suffix("].id")?;
    exec.find_task_run(task).map(|t| t.id.clone())
}

/// Checks `expect` (already substituted or not) against the context.
pub(crate) async fn check(expect: &Json, ctx: &Ctx<'_>) -> Report {
    let mut r = Report::default();
    let Some(expect) = substitute(expect, ctx).as_object().cloned() else {
        return r;
    };
    let exec = ctx.exec;
    for (key, want) in &expect {
        match key.as_str() {
            "state" => {
                if let Some(w) = want.as_str()
                    && exec.state.current.as_str() != w
                {
                    r.fail(format!(
                        "state: expected {w}, found {}",
                        exec.state.current.as_str()
                    ));
                }
            }
            "taskRunCount" => {
                let n = exec.task_run_list.len();
                if want.as_u64() != Some(n as u64) {
                    r.fail(format!(
                        "taskRunCount: expected {want}, found {n} ({})",
                        task_ids(exec)
                    ));
                }
            }
            "failedTaskRunCountMin" => {
                let n = exec
                    .task_run_list
                    .iter()
                    .filter(|t| t.state.current == State::Failed)
                    .count();
                if (n as u64) < want.as_u64().unwrap_or(0) {
                    r.fail(format!(
                        "failedTaskRunCountMin: expected at least {want}, found {n}"
                    ));
                }
            }
            "tasks" => {
                for t in want.as_array().into_iter().flatten() {
                    check_task(t, ctx, &mut r);
                }
            }
            "taskOrder" => {
                for t in want.as_array().into_iter().flatten() {
                    let idx = t.get("index").and_then(Json::as_i64).unwrap_or(0);
                    let task = t.get("task").and_then(Json::as_str).unwrap_or("");
                    let found = by_index(exec, idx).map(|t| t.task_id.as_str());
                    if found != Some(task) {
                        r.fail(format!(
                            "taskOrder[{idx}]: expected `{task}`, found {found:?} ({})",
                            task_ids(exec)
                        ));
                    }
                }
            }
            "allTaskRunsState" => {
                let w = want.as_str().unwrap_or("");
                for t in &exec.task_run_list {
                    if t.state.current.as_str() != w {
                        r.fail(format!(
                            "allTaskRunsState: expected {w}, task run `{}` is {}",
                            t.task_id,
                            t.state.current.as_str()
                        ));
                    }
                }
            }
            "outputs" => {
                for o in want.as_array().into_iter().flatten() {
                    check_output(o, ctx, &mut r).await;
                }
            }
            "flowOutputs" => check_flow_outputs(want, ctx, &mut r).await,
            "executionInputs" => {
                let inputs = Json::Object(exec.inputs.clone());
                for item in want.as_array().into_iter().flatten() {
                    let key = item.get("key").and_then(Json::as_str).unwrap_or("*");
                    let found = path_get(&inputs, key);
                    check_value(
                        &format!("executionInputs `{key}`"),
                        found,
                        item,
                        ctx,
                        &mut r,
                    )
                    .await;
                }
            }
            "labels" => check_labels(want, exec, &mut r),
            "logs" => check_logs(want, ctx, &mut r),
            "trigger" => check_trigger(want, exec, &mut r),
            "sameExecutionId" => {
                if let Some(prev) = ctx.previous {
                    let same = prev.id == exec.id;
                    if Some(same) != want.as_bool() {
                        r.fail(format!(
                            "sameExecutionId: expected {want}, the id went from {} to {}",
                            prev.id, exec.id
                        ));
                    }
                }
            }
            "newExecutionId" => {
                if let Some(prev) = ctx.previous {
                    let new = prev.id != exec.id;
                    if Some(new) != want.as_bool() {
                        r.fail(format!(
                            "newExecutionId: expected {want}, the id went from {} to {}",
                            prev.id, exec.id
                        ));
                    }
                }
            }
            "parentId" => {
                let found = exec
                    .parent_id
                    .clone()
                    .map(Json::String)
                    .unwrap_or(Json::Null);
                if &found != want {
                    r.fail(format!("parentId: expected {want}, found {found}"));
                }
            }
            "stateHistoryPrefix" => {
                let found: Vec<&str> = exec
                    .state
                    .histories
                    .iter()
                    .map(|h| h.state.as_str())
                    .collect();
                let w: Vec<&str> = want
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .collect();
                if !found.starts_with(&w) {
                    r.fail(format!(
                        "stateHistoryPrefix: expected {w:?}, found {found:?}"
                    ));
                }
            }
            "stateHistoryCount" => {
                let n = exec.state.histories.len();
                if want.as_u64() != Some(n as u64) {
                    let found: Vec<&str> = exec
                        .state
                        .histories
                        .iter()
                        .map(|h| h.state.as_str())
                        .collect();
                    r.fail(format!(
                        "stateHistoryCount: expected {want}, found {n} {found:?}"
                    ));
                }
            }
            "terminated" => {
                let t = exec.state.current.is_terminal();
                if want.as_bool() != Some(t) {
                    r.fail(format!(
                        "terminated: expected {want}, the execution is {}",
                        exec.state.current.as_str()
                    ));
                }
            }
            "flowOutputsInOrder" => {
                let keys: Vec<String> = exec
                    .outputs
                    .iter()
                    .flat_map(|o| o.keys().cloned())
                    .collect();
                let w: Vec<String> = want
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
                if keys != w {
                    r.fail(format!(
                        "flowOutputsInOrder: expected {w:?}, found {keys:?}"
                    ));
                }
            }
            other => r.fail(format!(
                "unknown check `{other}` (not supported by this runner)"
            )),
        }
    }
    r
}

fn task_ids(exec: &Execution) -> String {
    let ids: Vec<String> = exec
        .task_run_list
        .iter()
        .map(|t| format!("{}:{}", t.task_id, t.state.current.as_str()))
        .collect();
    format!("task runs [{}]", ids.join(", "))
}

fn by_index(exec: &Execution, idx: i64) -> Option<&TaskRun> {
    let len = exec.task_run_list.len() as i64;
    let i = if idx < 0 { len + idx } else { idx };
    usize::try_from(i)
        .ok()
        .and_then(|i| exec.task_run_list.get(i))
}

/// The loop values of a task run, outer to inner (its own and its parents', repeats dropped).
fn loop_values(exec: &Execution, tr: &TaskRun) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur = Some(tr);
    let mut guard = 0;
    while let Some(t) = cur {
        if let Some(v) = &t.value {
            chain.push(v.clone());
        }
        cur = t
            .parent_task_run_id
            .as_deref()
            .and_then(|p| exec.task_run(p));
        guard += 1;
        if guard > 10_000 {
            break;
        }
    }
    chain.reverse();
    chain.dedup();
    chain
}

/// A task run named by a selector (`index`, or `task` with optional `value`).
fn select<'e>(exec: &'e Execution, sel: &Json) -> Result<&'e TaskRun, String> {
    if let Some(idx) = sel.get("index").and_then(Json::as_i64) {
        return by_index(exec, idx)
            .ok_or_else(|| format!("no task run at index {idx} ({})", task_ids(exec)));
    }
    let task = sel.get("task").and_then(Json::as_str).unwrap_or("");
    match sel.get("value").and_then(Json::as_array) {
        Some(values) => {
            let want: Vec<String> = values
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect();
            exec.task_run_list
                .iter()
                .filter(|t| t.task_id == task)
                .find(|t| loop_values(exec, t) == want)
                .ok_or_else(|| {
                    let found: Vec<Vec<String>> = exec
                        .task_run_list
                        .iter()
                        .filter(|t| t.task_id == task)
                        .map(|t| loop_values(exec, t))
                        .collect();
                    format!("no task run of `{task}` with values {want:?} (found values {found:?})")
                })
        }
        None => exec
            .find_task_run(task)
            .ok_or_else(|| format!("no task run of `{task}` ({})", task_ids(exec))),
    }
}

fn sel_name(sel: &Json) -> String {
    if let Some(i) = sel.get("index") {
        return format!("task run #{i}");
    }
    let task = sel.get("task").and_then(Json::as_str).unwrap_or("?");
    match sel.get("value") {
        Some(v) => format!("task `{task}` {v}"),
        None => format!("task `{task}`"),
    }
}

fn check_task(t: &Json, ctx: &Ctx<'_>, r: &mut Report) {
    let exec = ctx.exec;
    let name = sel_name(t);
    if let Some(n) = t.get("count").and_then(Json::as_u64) {
        let task = t.get("task").and_then(Json::as_str).unwrap_or("");
        let found = exec
            .task_run_list
            .iter()
            .filter(|x| x.task_id == task)
            .count();
        if found as u64 != n {
            r.fail(format!("{name}: expected {n} task run(s), found {found}"));
        }
        if n == 0 {
            return;
        }
    }
    let tr = match select(exec, t) {
        Ok(tr) => tr,
        Err(e) => {
            r.fail(format!("{name}: {e}"));
            return;
        }
    };
    let attempts = tr.attempt_count() as u64;
    for (key, want) in t.as_object().into_iter().flatten() {
        match key.as_str() {
            "task" | "value" | "index" | "count" => {}
            "state" => {
                if Some(tr.state.current.as_str()) != want.as_str() {
                    r.fail(format!(
                        "{name}: expected state {want}, found {}",
                        tr.state.current.as_str()
                    ));
                }
            }
            "attempts" => {
                if want.as_u64() != Some(attempts) {
                    r.fail(format!(
                        "{name}: expected {want} attempt(s), found {attempts}"
                    ));
                }
            }
            "attemptsMin" => {
                if attempts < want.as_u64().unwrap_or(0) {
                    r.fail(format!(
                        "{name}: expected at least {want} attempt(s), found {attempts}"
                    ));
                }
            }
            "attemptsNull" => {
                let null = tr.attempts.is_none();
                if want.as_bool() != Some(null) {
                    r.fail(format!(
                        "{name}: expected attempts to be {}null, found {:?}",
                        if null { "not " } else { "" },
                        tr.attempts.as_ref().map(Vec::len)
                    ));
                }
            }
            "attemptState" => {
                let found = tr
                    .attempts
                    .as_ref()
                    .and_then(|a| a.first())
                    .map(|a| a.state.current.as_str());
                if found != want.as_str() {
                    r.fail(format!(
                        "{name}: expected first attempt state {want}, found {found:?}"
                    ));
                }
            }
            "historyCounts" => {
                for (state, n) in want.as_object().into_iter().flatten() {
                    let found = State::parse(state).map_or(0, |s| tr.state.count(s));
                    if n.as_u64() != Some(found as u64) {
                        let hist: Vec<&str> = tr
                            .state
                            .histories
                            .iter()
                            .map(|h| h.state.as_str())
                            .collect();
                        r.fail(format!(
                            "{name}: expected {state} {n} time(s) in the state history, found {found} {hist:?}"
                        ));
                    }
                }
            }
            "historyCount" => {
                let n = tr.state.histories.len();
                if want.as_u64() != Some(n as u64) {
                    let hist: Vec<&str> = tr
                        .state
                        .histories
                        .iter()
                        .map(|h| h.state.as_str())
                        .collect();
                    r.fail(format!(
                        "{name}: expected {want} state history entries, found {n} {hist:?}"
                    ));
                }
            }
            "attemptLogFile" => {
                let found = tr
                    .attempts
                    .as_ref()
                    .and_then(|a| a.first())
                    .and_then(|a| a.log_file.clone());
                let ok = match want {
                    Json::Bool(b) => found.is_some() == *b,
                    Json::Null => found.is_none(),
                    Json::String(s) => found.as_deref() == Some(s.as_str()),
                    _ => false,
                };
                if !ok {
                    r.fail(format!(
                        "{name}: expected attempt log file {want}, found {found:?}"
                    ));
                }
            }
            "sameTaskRunId" => match ctx.previous {
                Some(prev) => {
                    let before = select(prev, t).map(|p| p.id.clone()).ok();
                    let same = before.as_deref() == Some(tr.id.as_str());
                    if want.as_bool() != Some(same) {
                        r.fail(format!(
                            "{name}: expected sameTaskRunId {want}, id was {before:?}, now {}",
                            tr.id
                        ));
                    }
                }
                None => r.notes.push(format!(
                    "{name}: sameTaskRunId not checked (no previous step)"
                )),
            },
            other => r.fail(format!("{name}: unknown task check `{other}`")),
        }
    }
}

/// Splits `a.b['c.d'][0]` into segments.
fn path_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let mut inner = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    inner.push(d);
                }
                let inner = inner.trim();
                let inner = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    .unwrap_or(inner);
                out.push(inner.to_string());
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The value at a dotted path (`*` = the whole value); `None` when absent.
fn path_get<'v>(v: &'v Json, path: &str) -> Option<&'v Json> {
    if path == "*" {
        return Some(v);
    }
    let mut cur = v;
    for seg in path_segments(path) {
        cur = match cur {
            Json::Object(m) => m.get(&seg)?,
            Json::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// JSON equality with numbers compared by value (`1` equals `1.0`) and `inAnyOrder`.
fn json_eq(found: &Json, want: &Json) -> bool {
    if let Some(items) = want.get("inAnyOrder").and_then(Json::as_array)
        && want.as_object().is_some_and(|m| m.len() == 1)
    {
        let Some(found) = found.as_array() else {
            return false;
        };
        if found.len() != items.len() {
            return false;
        }
        let mut used = vec![false; found.len()];
        return items.iter().all(|w| {
            let pos = found
                .iter()
                .enumerate()
                .position(|(i, f)| !used[i] && json_eq(f, w));
            pos.map(|p| used[p] = true).is_some()
        });
    }
    match (found, want) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_eq(x, y))
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => found == want,
    }
}

/// A value as Java's `toString` would print it for string checks.
fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn check_output(o: &Json, ctx: &Ctx<'_>, r: &mut Report) {
    let name = sel_name(o);
    let key = o.get("key").and_then(Json::as_str).unwrap_or("*");
    let tr = match select(ctx.exec, o) {
        Ok(tr) => tr,
        Err(e) => {
            r.fail(format!("{name}: {e}"));
            return;
        }
    };
    let outputs = Json::Object(tr.outputs.clone().unwrap_or_default());
    let found = path_get(&outputs, key);
    check_value(&format!("{name} output `{key}`"), found, o, ctx, r).await;
}

/// Reads a `kestra://` file of the execution.
async fn read_file(ctx: &Ctx<'_>, uri: &str) -> Result<String, String> {
    let Some(files) = &ctx.files else {
        return Err("the execution's files are not available".into());
    };
    files.read_text(uri).await.map_err(|e| e.to_string())
}

/// Applies the value checks of `spec` (equals, contains, ...) to `found`.
async fn check_value(name: &str, found: Option<&Json>, spec: &Json, ctx: &Ctx<'_>, r: &mut Report) {
    let shown = found.map_or_else(|| "nothing".to_string(), |v| v.to_string());
    for (key, want) in spec.as_object().into_iter().flatten() {
        match key.as_str() {
            "task" | "value" | "index" | "key" => {}
            "equals" => {
                if !found.is_some_and(|f| json_eq(f, want)) {
                    r.fail(format!("{name}: expected {want}, found {shown}"));
                }
            }
            "contains" | "startsWith" | "endsWith" => {
                let w = as_text(want);
                let ok = match found {
                    Some(Json::Array(items)) if key == "contains" => {
                        items.iter().any(|i| json_eq(i, want))
                    }
                    Some(f) => {
                        let t = as_text(f);
                        match key.as_str() {
                            "contains" => t.contains(&w),
                            "startsWith" => t.starts_with(&w),
                            _ => t.ends_with(&w),
                        }
                    }
                    None => false,
                };
                if !ok {
                    r.fail(format!(
                        "{name}: expected it to {key} {want}, found {shown}"
                    ));
                }
            }
            "matches" => {
                let pattern = as_text(want);
                match regex::Regex::new(&format!("^(?:{pattern})$")) {
                    Ok(re) => {
                        if !found.is_some_and(|f| re.is_match(&as_text(f))) {
                            r.fail(format!(
                                "{name}: expected a match of /{pattern}/, found {shown}"
                            ));
                        }
                    }
                    Err(e) => r.fail(format!(
                        "{name}: the expected pattern does not compile: {e}"
                    )),
                }
            }
            "isNull" => {
                let null = found.is_none_or(Json::is_null);
                if want.as_bool() != Some(null) {
                    r.fail(format!("{name}: expected isNull {want}, found {shown}"));
                }
            }
            "present" => {
                if want.as_bool() != Some(found.is_some()) {
                    r.fail(format!("{name}: expected present {want}, found {shown}"));
                }
            }
            "notNull" => {
                let not_null = found.is_some_and(|f| !f.is_null());
                if want.as_bool() != Some(not_null) {
                    r.fail(format!("{name}: expected notNull {want}, found {shown}"));
                }
            }
            "hasItems" => {
                let items = found.and_then(Json::as_array);
                for w in want.as_array().into_iter().flatten() {
                    if !items.is_some_and(|i| i.iter().any(|x| json_eq(x, w))) {
                        r.fail(format!("{name}: expected an item {w}, found {shown}"));
                    }
                }
            }
            "containsKey" => {
                let k = as_text(want);
                if !found
                    .and_then(Json::as_object)
                    .is_some_and(|m| m.contains_key(&k))
                {
                    r.fail(format!("{name}: expected a key `{k}`, found {shown}"));
                }
            }
            "containsOutputOf" => {
                let other_key = want.get("key").and_then(Json::as_str).unwrap_or("*");
                let prefix = want.get("prefix").and_then(Json::as_str).unwrap_or("");
                match select(ctx.exec, want) {
                    Ok(other) => {
                        let outs = Json::Object(other.outputs.clone().unwrap_or_default());
                        let part = path_get(&outs, other_key).map(as_text);
                        let ok = match (&part, found) {
                            (Some(p), Some(f)) => as_text(f).contains(&format!("{prefix}{p}")),
                            _ => false,
                        };
                        if !ok {
                            r.fail(format!(
                                "{name}: expected it to contain `{prefix}{}`, found {shown}",
                                part.unwrap_or_else(|| "<missing output>".into())
                            ));
                        }
                    }
                    Err(e) => r.fail(format!("{name}: containsOutputOf: {e}")),
                }
            }
            "isoDateTimeWithinSecondsOfNow" => {
                let secs = want.as_f64().unwrap_or(0.0);
                let parsed = found
                    .and_then(Json::as_str)
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                match parsed {
                    Some(t) => {
                        let diff = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                            .num_milliseconds()
                            .abs() as f64
                            / 1000.0;
                        if diff > secs {
                            r.fail(format!("{name}: expected a date within {secs}s of now, found {shown} ({diff}s away)"));
                        }
                    }
                    None => r.fail(format!("{name}: expected an ISO date-time, found {shown}")),
                }
            }
            "fileContentEquals" | "firstFileContentEquals" | "fileLineCount" => {
                let uri = match (key.as_str(), found) {
                    ("firstFileContentEquals", Some(Json::Object(m))) => {
                        m.values().next().and_then(Json::as_str).map(String::from)
                    }
                    ("firstFileContentEquals", Some(Json::Array(a))) => {
                        a.first().and_then(Json::as_str).map(String::from)
                    }
                    (_, Some(Json::String(s))) => Some(s.clone()),
                    _ => None,
                };
                let Some(uri) = uri else {
                    r.fail(format!("{name}: expected a file URI, found {shown}"));
                    continue;
                };
                match read_file(ctx, &uri).await {
                    Ok(text) => {
                        if key == "fileLineCount" {
                            let n = text.lines().count();
                            if want.as_u64() != Some(n as u64) {
                                r.fail(format!(
                                    "{name}: expected {want} line(s) in {uri}, found {n}"
                                ));
                            }
                        } else if text != as_text(want) {
                            r.fail(format!(
                                "{name}: expected file content {want}, found {:?}",
                                text
                            ));
                        }
                    }
                    Err(e) => r.fail(format!("{name}: cannot read {uri}: {e}")),
                }
            }
            other => r.fail(format!("{name}: unknown value check `{other}`")),
        }
    }
}

async fn check_flow_outputs(want: &Json, ctx: &Ctx<'_>, r: &mut Report) {
    let outputs = ctx.exec.outputs.as_ref();
    if let Some(null) = want.get("isNull").and_then(Json::as_bool) {
        let is_null = outputs.is_none_or(Map::is_empty);
        if null != is_null {
            r.fail(format!(
                "flowOutputs: expected isNull {null}, found {outputs:?}"
            ));
        }
    }
    if let Some(n) = want.get("size").and_then(Json::as_u64) {
        let size = outputs.map_or(0, Map::len);
        if size as u64 != n {
            r.fail(format!(
                "flowOutputs: expected {n} output(s), found {outputs:?}"
            ));
        }
    }
    let whole = Json::Object(outputs.cloned().unwrap_or_default());
    for item in want
        .get("items")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let key = item.get("key").and_then(Json::as_str).unwrap_or("*");
        check_value(
            &format!("flow output `{key}`"),
            path_get(&whole, key),
            item,
            ctx,
            r,
        )
        .await;
    }
}

fn label_list(v: &Json) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l.get("key").map(as_text).unwrap_or_default(),
                l.get("value").map(as_text).unwrap_or_default(),
            )
        })
        .collect()
}

fn check_labels(want: &Json, exec: &Execution, r: &mut Report) {
    let found: Vec<(String, String)> = exec
        .labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect();
    if let Some(exact) = want.get("exactly") {
        let mut w = label_list(exact);
        let mut f = found.clone();
        w.sort();
        f.sort();
        if w != f {
            r.fail(format!("labels: expected exactly {w:?}, found {f:?}"));
        }
    }
    if let Some(inc) = want.get("includes") {
        for l in label_list(inc) {
            if !found.contains(&l) {
                r.fail(format!("labels: expected {l:?}, found {found:?}"));
            }
        }
    }
    if let Some(prefix) = want.get("orderedPrefix") {
        let w = label_list(prefix);
        if !found.starts_with(&w) {
            r.fail(format!(
                "labels: expected to start with {w:?}, found {found:?}"
            ));
        }
    }
    if let Some(n) = want.get("size").and_then(Json::as_u64)
        && found.len() as u64 != n
    {
        r.fail(format!("labels: expected {n} label(s), found {found:?}"));
    }
}

fn check_logs(want: &Json, ctx: &Ctx<'_>, r: &mut Report) {
    let Some(logs) = ctx.logs else {
        r.notes
            .push("logs not checked: no logs from this run".into());
        return;
    };
    let exec = ctx.exec;
    for item in want.as_array().into_iter().flatten() {
        let selected = item.get("index").is_some() || item.get("task").is_some();
        let (name, lines): (String, Vec<&LogLine>) = if selected {
            let tr = match select(exec, item) {
                Ok(tr) => tr,
                Err(e) => {
                    r.fail(format!("logs of {}: {e}", sel_name(item)));
                    continue;
                }
            };
            (
                format!("logs of {}", sel_name(item)),
                logs.iter()
                    .filter(|l| l.exec_id == exec.id && (l.key == tr.id || l.key == tr.task_id))
                    .collect(),
            )
        } else {
            (
                "logs of the execution".into(),
                logs.iter().filter(|l| l.exec_id == exec.id).collect(),
            )
        };
        let level = item.get("level").and_then(Json::as_str);
        let lines: Vec<&LogLine> = lines
            .into_iter()
            .filter(|l| level.is_none_or(|lv| l.level.eq_ignore_ascii_case(lv)))
            .collect();
        let shown: Vec<String> = lines
            .iter()
            .map(|l| format!("{} {}", l.level, l.message))
            .collect();
        if item.get("absent").and_then(Json::as_bool) == Some(true) && !lines.is_empty() {
            r.fail(format!("{name}: expected no log, found {shown:?}"));
        }
        if let Some(eq) = item.get("equals").and_then(Json::as_str)
            && !lines.iter().any(|l| l.message == eq)
        {
            r.fail(format!(
                "{name}: expected a {}log `{eq}`, found {shown:?}",
                level.map(|l| format!("{l} ")).unwrap_or_default()
            ));
        }
        if let Some(c) = item.get("contains").and_then(Json::as_str)
            && !lines.iter().any(|l| l.message.contains(c))
        {
            r.fail(format!(
                "{name}: expected a log containing `{c}`, found {shown:?}"
            ));
        }
    }
}

fn check_trigger(want: &Json, exec: &Execution, r: &mut Report) {
    let Some(trigger) = &exec.trigger else {
        r.fail(format!(
            "trigger: expected {want}, the execution has no trigger"
        ));
        return;
    };
    if let Some(t) = want.get("type")
        && trigger.get("type") != Some(t)
    {
        r.fail(format!(
            "trigger: expected type {t}, found {:?}",
            trigger.get("type")
        ));
    }
    let vars = trigger.get("variables");
    for (k, w) in want
        .get("variables")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(base) = k.strip_suffix("OneOf") {
            let found = vars.and_then(|v| v.get(base));
            let ok = found.is_some_and(|f| {
                w.as_array()
                    .is_some_and(|a| a.iter().any(|x| json_eq(f, x)))
            });
            if !ok {
                r.fail(format!(
                    "trigger variable `{base}`: expected one of {w}, found {found:?}"
                ));
            }
            continue;
        }
        let found = vars.and_then(|v| v.get(k));
        if !found.is_some_and(|f| json_eq(f, w)) {
            r.fail(format!(
                "trigger variable `{k}`: expected {w}, found {found:?}"
            ));
        }
    }
}

/// Checks an error message against a step's `expectError` (`contains` and/or `equals`); the
/// mismatch, if any.
pub(crate) fn error_mismatch(want: &Json, message: &str) -> Option<String> {
    if let Some(c) = want.get("contains").and_then(Json::as_str)
        && !message.contains(c)
    {
        return Some(format!(
            "expected an error containing {c:?}, found {message:?}"
        ));
    }
    if let Some(e) = want.get("equals").and_then(Json::as_str)
        && message != e
    {
        return Some(format!("expected the error {e:?}, found {message:?}"));
    }
    None
}
