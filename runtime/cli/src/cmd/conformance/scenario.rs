//! Cases of kind `scenario`: several steps (runs, pause and resume, restart, replay, executions
//! started by Subflow tasks) in one session of the in-process runner. A step action the runner
//! cannot perform makes the case skipped with a reason naming it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value as Json};
use weft_executor::{Execution, State};
use weft_server::runner::Runner;
use weft_server::runner::control::Session;

use super::cases::{Case, Outcome};
use super::expect::{self, Ctx, LogSink};
use super::run_kinds::{self, DEFAULT_TIMEOUT, Env};

/// Actions this runner performs.
const SUPPORTED: &[&str] = &[
    "run",
    "run_until_paused",
    "run_until_running",
    "create",
    "await",
    "resume",
    "restart",
    "replay",
    "await_triggered",
    "collect_triggered",
    "assert_not_triggered",
    "collect_terminated",
];

/// Runs one a `scenario` case; an error is a failure of the case.
pub(crate) fn run(env: &mut Env, case: &Case) -> anyhow::Result<Outcome> {
    let raw = env.raw_case(&case.name)?;
    let dir = env.dir().to_path_buf();
    let store_url = env.store_url(&case.name);
    let inner = env.inner()?;
    let globals = match run_kinds::setup_globals(&raw) {
        Ok(g) => g,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let steps: Vec<Json> = raw
        .get("steps")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    for step in &steps {
        let action = step.get("action").and_then(Json::as_str).unwrap_or("");
        if !SUPPORTED.contains(&action) {
            return Ok(Outcome::Skipped(format!(
                "step action `{action}` is not supported by the in-process runner"
            )));
        }
    }
    let (catalog, flow) = match run_kinds::catalog(&dir, &raw, inner, &globals) {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let sink = Arc::new(LogSink::default());
    inner.rt.block_on(async {
        let store = weft_store::open(&store_url).await?;
        run_kinds::prepare_store(&raw, &store).await?;
        let runner = Runner::new(inner.engine.clone(), store, inner.renderer.clone(), catalog)
            .with_observer(sink.clone())
            .with_secrets(run_kinds::setup_secrets(&raw));
        let mut s = Scenario {
            session: runner.session(),
            sink: sink.clone(),
            aliases: HashMap::new(),
            current: None,
            started: Vec::new(),
            problems: Vec::new(),
            case_flow: format!("{}/{}", flow.namespace, flow.id),
        };
        if steps.is_empty() {
            s.without_steps(&raw, &case.expect).await?;
        }
        for (i, step) in steps.iter().enumerate() {
            if let Err(e) = s.step(step, &raw).await {
                s.problems.push(format!(
                    "step {i} ({}): {e}",
                    step.get("action").and_then(Json::as_str).unwrap_or("")
                ));
                break;
            }
            let before = s.problems.len();
            if before > 0 {
                let action = step.get("action").and_then(Json::as_str).unwrap_or("");
                let msgs: Vec<String> = s
                    .problems
                    .drain(..)
                    .map(|p| format!("step {i} ({action}): {p}"))
                    .collect();
                s.problems = msgs;
                break;
            }
        }
        Ok::<Outcome, anyhow::Error>(if s.problems.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(s.problems.join("\n"))
        })
    })
}

struct Scenario<'r> {
    session: Session<'r>,
    sink: Arc<LogSink>,
    /// `as` name -> execution id.
    aliases: HashMap<String, String>,
    /// The execution the last step acted on.
    current: Option<String>,
    /// Executions started by steps (not by a Subflow task).
    started: Vec<String>,
    problems: Vec<String>,
    case_flow: String,
}

impl Scenario<'_> {
    fn alias_snapshots(&self) -> HashMap<String, Execution> {
        self.aliases
            .iter()
            .filter_map(|(a, id)| Some((a.clone(), self.session.execution(id)?.clone())))
            .collect()
    }

    /// Checks `expect` on execution `id`.
    async fn check(&mut self, expect: Option<&Json>, id: &str, previous: Option<&Execution>) {
        let Some(expect) = expect else { return };
        let Some(exec) = self.session.execution(id).cloned() else {
            self.problems.push(format!("execution {id} vanished"));
            return;
        };
        self.check_doc(expect, &exec, previous).await;
    }

    async fn check_doc(&mut self, expect: &Json, exec: &Execution, previous: Option<&Execution>) {
        let aliases = self.alias_snapshots();
        let logs = self.sink.snapshot();
        let mut expect = expect.clone();
        let states_any = expect
            .as_object_mut()
            .and_then(|m| m.remove("statesInAnyOrder"));
        if states_any.is_some() {
            self.problems
                .push("statesInAnyOrder applies to collect_terminated only".into());
        }
        let ctx = Ctx {
            exec,
            files: self.session.files(&exec.id),
            logs: Some(&logs),
            aliases: &aliases,
            previous,
        };
        let report = expect::check(&expect, &ctx).await;
        self.problems.extend(report.problems);
    }

    fn target(&self, step: &Json) -> anyhow::Result<String> {
        match step.get("execution").and_then(Json::as_str) {
            Some(alias) => self
                .aliases
                .get(alias)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no execution named `{alias}`")),
            None => self
                .current
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no execution to act on")),
        }
    }

    async fn start(&mut self, step: &Json, raw: &Json) -> anyhow::Result<String> {
        let flow = step
            .get("flow")
            .and_then(Json::as_str)
            .unwrap_or(&self.case_flow)
            .to_string();
        let (ns, id) = flow
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("bad flow `{flow}`"))?;
        // the case's inputs apply to steps on the case flow that give none
        let (inputs, raw_mode, labels) = if step.get("inputs").is_some() || flow != self.case_flow {
            (
                step.get("inputs"),
                step.get("inputsRaw"),
                step.get("executionLabels"),
            )
        } else {
            (
                raw.get("inputs"),
                raw.get("inputsRaw"),
                raw.get("executionLabels"),
            )
        };
        let aliases = self.alias_snapshots();
        let subst_str = |s: &str| expect::substitute_in(s, None, &aliases);
        let req = run_kinds::start_request(inputs, labels, &subst_str);
        let raw_mode = raw_mode.and_then(Json::as_bool) == Some(true);
        let exec_id = self
            .session
            .start(ns, id, req, raw_mode)
            .await
            .map_err(|e| anyhow::anyhow!("the execution could not start: {e}"))?;
        if let Some(alias) = step.get("as").and_then(Json::as_str) {
            self.aliases.insert(alias.to_string(), exec_id.clone());
        }
        self.current = Some(exec_id.clone());
        self.started.push(exec_id.clone());
        Ok(exec_id)
    }

    /// Drives until `until` holds for execution `id`; an error names the state it reached.
    async fn drive(
        &mut self,
        id: &str,
        step: &Json,
        what: &str,
        until: impl Fn(&Session<'_>, &str) -> bool,
    ) -> anyhow::Result<()> {
        let timeout = run_kinds::timeout_of(step.get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let ok = self
            .session
            .drive_until(deadline, |s| until(s, id))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !ok {
            let state = self
                .session
                .execution(id)
                .map_or("unknown", |e| e.state.current.as_str());
            anyhow::bail!(
                "the execution did not become {what} within {}s (it is {state})",
                timeout.as_secs_f64()
            );
        }
        Ok(())
    }

    async fn await_done(&mut self, id: &str, step: &Json) -> anyhow::Result<()> {
        self.drive(id, step, "terminated", |s, id| s.is_done(id))
            .await
    }

    async fn step(&mut self, step: &Json, raw: &Json) -> anyhow::Result<()> {
        let action = step.get("action").and_then(Json::as_str).unwrap_or("");
        let expect = step.get("expect");
        match action {
            "run" => {
                let id = self.start(step, raw).await?;
                self.await_done(&id, step).await?;
                self.check(expect, &id, None).await;
            }
            "run_until_paused" | "run_until_running" => {
                let id = self.start(step, raw).await?;
                let want = if action == "run_until_paused" {
                    State::Paused
                } else {
                    State::Running
                };
                self.drive(&id, step, want.as_str(), move |s, id| {
                    s.execution(id)
                        .is_some_and(|e| e.state.current == want || e.state.current.is_terminal())
                })
                .await?;
                self.check(expect, &id, None).await;
            }
            "create" => {
                let id = self.start(step, raw).await?;
                self.check(step.get("expectImmediate"), &id, None).await;
                self.check(expect, &id, None).await;
            }
            "await" => {
                let id = self.target(step)?;
                self.await_done(&id, step).await?;
                self.check(expect, &id, None).await;
            }
            "resume" => {
                let id = self.target(step)?;
                let resumed = match step.get("resumeInputs") {
                    Some(inputs) => {
                        let aliases = self.alias_snapshots();
                        let subst_str = |s: &str| expect::substitute_in(s, None, &aliases);
                        let req = run_kinds::start_request(Some(inputs), None, &subst_str);
                        self.session.resume_with(&id, req).await
                    }
                    None => self.session.resume(&id, Map::new()),
                };
                match (resumed, step.get("expectError")) {
                    (Ok(()), None) => {}
                    (Err(e), None) => anyhow::bail!("resume: {e}"),
                    (Err(e), Some(want)) => {
                        if let Some(problem) = expect::error_mismatch(want, &e.to_string()) {
                            self.problems.push(format!("resume: {problem}"));
                        }
                        return Ok(());
                    }
                    (Ok(()), Some(want)) => {
                        self.problems.push(format!(
                            "resume: expected an error ({want}), it was accepted"
                        ));
                        return Ok(());
                    }
                }
                if expect.is_some() {
                    self.await_done(&id, step).await?;
                    self.check(expect, &id, None).await;
                }
            }
            "restart" => {
                let id = self.target(step)?;
                let before = self.session.execution(&id).cloned();
                let snapshot = self
                    .session
                    .restart(&id)
                    .await
                    .map_err(|e| anyhow::anyhow!("restart: {e}"))?;
                if let Some(imm) = step.get("expectImmediate") {
                    self.check_doc(imm, &snapshot, before.as_ref()).await;
                }
                if expect.is_some() {
                    self.await_done(&id, step).await?;
                    self.check(expect, &id, before.as_ref()).await;
                }
            }
            "replay" => {
                let id = self.target(step)?;
                let Some(before) = self.session.execution(&id).cloned() else {
                    anyhow::bail!("no execution {id}");
                };
                let from = step.get("fromTask").and_then(Json::as_str).unwrap_or("");
                let Some(tr) = before.find_task_run(from) else {
                    anyhow::bail!("replay: the execution has no task run of `{from}`");
                };
                let tr_id = tr.id.clone();
                let snapshot = self
                    .session
                    .replay(&id, &tr_id)
                    .await
                    .map_err(|e| anyhow::anyhow!("replay: {e}"))?;
                let new_id = snapshot.id.clone();
                if let Some(alias) = step.get("as").and_then(Json::as_str) {
                    self.aliases.insert(alias.to_string(), new_id.clone());
                }
                self.current = Some(new_id.clone());
                self.started.push(new_id.clone());
                if let Some(imm) = step.get("expectImmediate") {
                    self.check_doc(imm, &snapshot, Some(&before)).await;
                }
                if expect.is_some() {
                    self.await_done(&new_id, step).await?;
                    self.check(expect, &new_id, Some(&before)).await;
                }
            }
            "await_triggered" | "collect_triggered" => {
                let flow = step
                    .get("flow")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                let started = self.started.clone();
                let matches = move |s: &Session<'_>| -> Vec<String> {
                    s.executions()
                        .into_iter()
                        .filter(|e| {
                            format!("{}/{}", e.namespace, e.flow_id) == flow
                                && !started.contains(&e.id)
                        })
                        .map(|e| e.id.clone())
                        .collect()
                };
                let timeout = run_kinds::timeout_of(step.get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
                let deadline = Instant::now() + timeout;
                let m2 = matches.clone();
                let ok = self
                    .session
                    .drive_until(deadline, |s| m2(s).iter().any(|id| s.is_done(id)))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let found = matches(&self.session);
                let Some(id) = found.iter().find(|id| self.session.is_done(id)).cloned() else {
                    anyhow::bail!(
                        "no terminated execution of `{}` within {}s ({} started)",
                        step.get("flow").and_then(Json::as_str).unwrap_or(""),
                        timeout.as_secs_f64(),
                        found.len()
                    );
                };
                let _ = ok;
                if let Some(alias) = step.get("as").and_then(Json::as_str) {
                    self.aliases.insert(alias.to_string(), id.clone());
                }
                // seen: a later `assert_not_triggered` or `await_triggered` looks past it
                self.started.push(id.clone());
                self.check(expect, &id, None).await;
            }
            "assert_not_triggered" => {
                let flow = step.get("flow").and_then(Json::as_str).unwrap_or("");
                let wait = run_kinds::timeout_of(step.get("wait"))
                    .unwrap_or(std::time::Duration::from_secs(1));
                let started = &self.started;
                let of_flow = |s: &Session<'_>| -> Vec<String> {
                    s.executions()
                        .into_iter()
                        .filter(|e| {
                            format!("{}/{}", e.namespace, e.flow_id) == flow
                                && !started.contains(&e.id)
                        })
                        .map(|e| e.id.clone())
                        .collect()
                };
                // drive for `wait` (or until one appears), then none may have been started
                self.session
                    .drive_until(Instant::now() + wait, |s| !of_flow(s).is_empty())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let found = of_flow(&self.session);
                if !found.is_empty() {
                    self.problems.push(format!(
                        "expected no execution of `{flow}` within {}s, found {}",
                        wait.as_secs_f64(),
                        found.len()
                    ));
                }
            }
            "collect_terminated" => {
                let flow = step
                    .get("flow")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                let count = step.get("count").and_then(Json::as_u64).unwrap_or(1) as usize;
                let of_flow = move |s: &Session<'_>| -> Vec<String> {
                    s.executions()
                        .into_iter()
                        .filter(|e| format!("{}/{}", e.namespace, e.flow_id) == flow)
                        .filter(|e| s.is_done(&e.id))
                        .map(|e| e.id.clone())
                        .collect()
                };
                let timeout = run_kinds::timeout_of(step.get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
                let of2 = of_flow.clone();
                self.session
                    .drive_until(Instant::now() + timeout, |s| of2(s).len() >= count)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let done = of_flow(&self.session);
                let states: Vec<String> = done
                    .iter()
                    .filter_map(|id| self.session.execution(id))
                    .map(|e| e.state.current.as_str().to_string())
                    .collect();
                if done.len() < count {
                    anyhow::bail!(
                        "expected {count} terminated executions within {}s, found {} {states:?}",
                        timeout.as_secs_f64(),
                        done.len()
                    );
                }
                if let Some(want) = expect
                    .and_then(|e| e.get("statesInAnyOrder"))
                    .and_then(Json::as_array)
                {
                    let mut w: Vec<String> = want
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect();
                    let mut f = states.clone();
                    w.sort();
                    f.sort();
                    if w != f {
                        self.problems
                            .push(format!("statesInAnyOrder: expected {w:?}, found {f:?}"));
                    }
                }
            }
            other => anyhow::bail!("step action `{other}` is not supported"),
        }
        Ok(())
    }

    /// A scenario without steps (ForEachItem with `children`): one run of the case flow with
    /// the case's inputs, the children checks, then `expect`.
    async fn without_steps(&mut self, raw: &Json, expect: &Json) -> anyhow::Result<()> {
        let step = Json::Object(Map::new());
        let id = self.start(&step, raw).await?;
        self.await_done(&id, &step).await?;
        if let Some(children) = raw.get("children") {
            let flow = children.get("flow").and_then(Json::as_str).unwrap_or("");
            let done: Vec<Execution> = self
                .session
                .executions()
                .into_iter()
                .filter(|e| format!("{}/{}", e.namespace, e.flow_id) == flow)
                .filter(|e| self.session.is_done(&e.id))
                .cloned()
                .collect();
            if let Some(n) = children.get("terminatedCount").and_then(Json::as_u64)
                && done.len() as u64 != n
            {
                self.problems.push(format!(
                    "children of `{flow}`: expected {n} terminated executions, found {}",
                    done.len()
                ));
            }
            if let Some(last) = children.get("last") {
                match done.last() {
                    Some(child) => {
                        let mut last = last.clone();
                        let matches = last.as_object_mut().and_then(|m| m.remove("inputMatches"));
                        for (k, pattern) in matches
                            .as_ref()
                            .and_then(Json::as_object)
                            .into_iter()
                            .flatten()
                        {
                            let found = child
                                .inputs
                                .get(k)
                                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from));
                            let pattern = pattern.as_str().unwrap_or("");
                            let ok = regex::Regex::new(&format!("^(?:{pattern})$"))
                                .ok()
                                .zip(found.as_ref())
                                .is_some_and(|(re, f)| re.is_match(f));
                            if !ok {
                                self.problems.push(format!(
                                    "last child input `{k}`: expected a match of /{pattern}/, found {found:?}"
                                ));
                            }
                        }
                        self.check_doc(&last, child, None).await;
                    }
                    None => self
                        .problems
                        .push(format!("children of `{flow}`: none terminated")),
                }
            }
        }
        self.check(Some(expect), &id, None).await;
        Ok(())
    }
}
