//! Host tasks: the task types the runner performs itself instead of a plugin, because they act
//! on the store, the catalog or other executions, which a sandboxed plugin cannot reach. Each is
//! one attempt, performed in the driver (or in a task it spawns), whose result comes back as any
//! worker result, with its log lines in the log store.
//!
//! | type | module |
//! |---|---|
//! | `io.kestra.plugin.core.trigger.Toggle` | [`super::toggle`] |
//! | `io.kestra.plugin.core.log.Fetch` | [`super::fetch`] |
//! | `io.kestra.plugin.core.execution.Resume` | [`super::resume_task`] |
//! | `io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit` | [`super::foreach_item`] |
//! | `io.kestra.plugin.core.flow.ForEachItem$ForEachItemMergeOutputs` | [`super::foreach_item`] |
//!
//! Types are canonical here: the flow registry maps Kestra's older aliases to them before the
//! executor asks for an attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;
use weft_executor::{Event, RunTask, State, WorkerResult};
use weft_flow::expr::Context;
use weft_store::DynStore;
use weft_store::repo::LogRepo;

use super::logs::AttemptLogs;
use super::{Finished, Live, Observer, RunError, Runner, fetch, foreach_item, resume_task, toggle};

/// A task type the runner performs itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HostTask {
    Toggle,
    Fetch,
    Resume,
    ForEachItemSplit,
    ForEachItemMerge,
}

impl HostTask {
    /// The host task of a canonical type name, if it is one.
    pub(super) fn of(task_type: &str) -> Option<HostTask> {
        match task_type {
            toggle::TOGGLE_TYPE => Some(HostTask::Toggle),
            fetch::FETCH_TYPE => Some(HostTask::Fetch),
            resume_task::RESUME_TYPE => Some(HostTask::Resume),
            foreach_item::SPLIT_TYPE => Some(HostTask::ForEachItemSplit),
            foreach_item::MERGE_TYPE => Some(HostTask::ForEachItemMerge),
            _ => None,
        }
    }
}

/// What a host task did when it succeeded: its log lines (level, message) and its outputs.
#[derive(Debug, Default)]
pub(super) struct Done {
    pub(super) lines: Vec<(&'static str, String)>,
    pub(super) outputs: Map<String, Json>,
}

impl Done {
    /// One INFO line, no outputs.
    pub(super) fn line(message: String) -> Self {
        Done {
            lines: vec![("INFO", message)],
            outputs: Map::new(),
        }
    }
}

/// The outcome of a host task: done, or the reason it failed (logged as ERROR).
pub(super) type Outcome = Result<Done, String>;

/// A host task's outcome: known now, or from a future the runner spawns (it waits on another
/// driver).
pub(super) enum Performed {
    Now(Outcome),
    Later(weft_engine::BoxFuture<'static, Outcome>),
}

/// What a host task may act on besides the runner: the executions of the driver.
pub(super) struct Driver<'a> {
    pub(super) lives: &'a mut HashMap<String, Live>,
    pub(super) pending: &'a mut IndexMap<String, Vec<Event>>,
}

impl Runner {
    /// Performs a host-task attempt and sends its result as a worker's: at once, or from a
    /// spawned task when it waits on another driver (its handle is returned then).
    pub(super) async fn host_attempt(
        &self,
        kind: HostTask,
        driver: Driver<'_>,
        task: &RunTask,
        tx: &mpsc::UnboundedSender<Finished>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, RunError> {
        let started = Instant::now();
        let Some(live) = driver.lives.get(&task.execution_id) else {
            return Ok(None);
        };
        let logs = AttemptLogs::new(live.files.namespace(), live.files.flow_id(), task);
        let performed = match kind {
            HostTask::Toggle => Performed::Now(self.run_toggle(task).await.map(Done::line)),
            HostTask::Fetch => Performed::Now(self.run_fetch(live, task).await),
            HostTask::Resume => self.run_resume(driver, task).await,
            HostTask::ForEachItemSplit => self.run_split(live, task),
            HostTask::ForEachItemMerge => self.run_merge(live, task),
        };
        let end = Ending {
            store: self.store.clone(),
            observer: self.observer.clone(),
            logs,
            task: task.clone(),
            started,
            tx: tx.clone(),
        };
        Ok(match performed {
            Performed::Now(outcome) => {
                end.finish(outcome).await;
                None
            }
            // tracked as an attempt: cancelled with its task run, not asked twice
            Performed::Later(future) => {
                Some(tokio::spawn(async move { end.finish(future.await).await }))
            }
        })
    }

    /// Renders the string property `name` of a host task with the task's variables (without
    /// `secret()`/`kv()`); `None` when it is not set.
    pub(super) fn host_str(&self, task: &RunTask, name: &str) -> Result<Option<String>, String> {
        let Some(value) = task.properties.get(name) else {
            return Ok(None);
        };
        let Json::String(template) = value else {
            return Err(format!("`{name}` must be a string, got {value}"));
        };
        self.renderer
            .render(template, &host_context(task))
            .map(Some)
            .map_err(|e| format!("`{name}`: {e}"))
    }

    /// Renders the property `name` (any JSON: strings in it are rendered) of a host task.
    pub(super) fn host_value(&self, task: &RunTask, name: &str) -> Result<Option<Json>, String> {
        let Some(value) = task.properties.get(name) else {
            return Ok(None);
        };
        self.renderer
            .render_value(value, &host_context(task))
            .map(Some)
            .map_err(|e| format!("`{name}`: {e}"))
    }
}

/// The context a task's properties are rendered in by the host (no `secret()`/`kv()`).
pub(super) fn host_context(task: &RunTask) -> Context<'_> {
    Context {
        vars: &task.context,
        now: Utc::now(),
        seed: task.seed,
        host: None,
    }
}

/// A value of the task's `flow` or `execution` variables (`/flow/namespace`, `/execution/id`).
pub(super) fn task_var(task: &RunTask, pointer: &str) -> Option<String> {
    task.context
        .pointer(pointer)
        .and_then(Json::as_str)
        .map(str::to_owned)
}

/// Which execution a task that names one acts on (Kestra's rule for Fetch and Resume): the
/// current execution without `executionId`; with it, in the current flow unless both
/// `namespace` and `flowId` are set (one without the other is an error). Returns (namespace,
/// flow id, execution id) and whether the flow was given.
pub(super) fn target_execution(
    runner: &Runner,
    task: &RunTask,
) -> Result<(String, String, String, bool), String> {
    let namespace = runner.host_str(task, "namespace")?;
    let flow_id = runner.host_str(task, "flowId")?;
    let current = |p: &str| task_var(task, p).ok_or_else(|| format!("`{p}` is not known"));
    let Some(id) = runner
        .host_str(task, "executionId")?
        .filter(|s| !s.is_empty())
    else {
        return Ok((
            current("/flow/namespace")?,
            current("/flow/id")?,
            task.execution_id.clone(),
            false,
        ));
    };
    match (namespace, flow_id) {
        (Some(ns), Some(f)) => Ok((ns, f, id, true)),
        (None, None) => Ok((current("/flow/namespace")?, current("/flow/id")?, id, false)),
        _ => Err("`namespace` and `flowId` go together: set both or neither".to_string()),
    }
}

/// Where a host attempt's result goes once known.
struct Ending {
    store: DynStore,
    observer: Arc<dyn Observer>,
    logs: AttemptLogs,
    task: RunTask,
    started: Instant,
    tx: mpsc::UnboundedSender<Finished>,
}

impl Ending {
    /// Reports and stores the log lines (before the result is applied, as a worker's), then
    /// sends the result.
    async fn finish(mut self, outcome: Outcome) {
        let task = &self.task;
        let (state, done) = match outcome {
            Ok(done) => (State::Success, done),
            Err(e) => (
                State::Failed,
                Done {
                    lines: vec![("ERROR", e)],
                    outputs: Map::new(),
                },
            ),
        };
        for (level, line) in &done.lines {
            self.observer
                .log(&task.execution_id, &task.task_id, level, line);
            self.logs.push(level, line);
        }
        if let Err(e) = self.logs.store(&LogRepo::new(self.store.clone())).await {
            tracing::warn!(error = %e, "could not store the attempt's logs");
        }
        self.observer
            .attempt_ended(task, state, self.started.elapsed().as_millis());
        let _ = self.tx.send(Finished {
            exec_id: task.execution_id.clone(),
            result: WorkerResult {
                task_run_id: task.task_run_id.clone(),
                attempt: task.attempt,
                state,
                outputs: done.outputs,
                metrics: Vec::new(),
                log_file: None,
                working_directory_outputs: Default::default(),
            },
        });
    }
}
