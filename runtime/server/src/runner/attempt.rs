//! One attempt of a runnable task in this process's WASM engine: its host (weft's renderer, the
//! execution's internal storage, the scratch folder of its WorkingDirectory), its logs (stored before the result is answered, so the tasks
//! that run next find them), its large outputs offloaded to internal storage, and its
//! [`WorkerResult`]. The driver's in-process dispatch and the worker endpoint
//! (`POST /api/v1/worker/attempts`) both run attempts through [`Worker::run`]: one code path.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use weft_engine::{AttemptRequest, TaskContext};
use weft_executor::{RunTask, State, WorkerResult};
use weft_flow::expr::{Renderer, Secrets, mask_secrets};
use weft_store::DynStore;
use weft_store::repo::{
    ExecutionFiles, FilesExprHost, LogRepo, OffloadConfig, RepoResult, offload_outputs,
};

use super::attempt_stats::AttemptStats;
use super::host::AttemptHost;
use super::logs::AttemptLogs;
use super::work_dir::WorkDirs;

/// What a worker is asked to run: one attempt of a task of a flow's execution. The body of
/// `POST /api/v1/worker/attempts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AttemptBody {
    /// The execution's namespace.
    pub(crate) namespace: String,
    /// The execution's flow.
    pub(crate) flow_id: String,
    /// The attempt, as the executor asked for it.
    pub(crate) task: RunTask,
}

/// A log line of an attempt, for the runner's [`super::Observer`].
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) level: String,
    pub(crate) message: String,
}

/// What an attempt ended with: its result, and the lines it logged (already stored).
#[derive(Debug, Clone)]
pub(crate) struct Attempted {
    pub(crate) result: WorkerResult,
    pub(crate) lines: Vec<Line>,
}

/// Runs attempts in the WASM engine of this process over one (tenant's) store.
#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) engine: Arc<weft_engine::Registry>,
    pub(crate) store: DynStore,
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) offload: OffloadConfig,
    /// The scratch folders of the WorkingDirectory tasks of this process's executions.
    pub(crate) work_dirs: WorkDirs,
    /// Where `secret()` finds its values; those revealed are masked in the attempt's logs.
    pub(crate) secrets: Secrets,
    /// Where the attempts run here are counted.
    pub(crate) stats: Arc<AttemptStats>,
}

impl Worker {
    /// A worker with no WorkingDirectory of its own (one for the pool's attempts: those of a
    /// WorkingDirectory run where its folder is, in the driving process).
    pub(crate) fn new(
        engine: Arc<weft_engine::Registry>,
        store: DynStore,
        renderer: Arc<Renderer>,
        offload: OffloadConfig,
        stats: Arc<AttemptStats>,
    ) -> Worker {
        Worker {
            engine,
            store,
            renderer,
            offload,
            work_dirs: WorkDirs,
            secrets: Secrets::from_env(),
            stats,
        }
    }

    /// Runs `task` of an execution of flow `namespace.flow_id`; an error only when a name is not
    /// valid in a storage key (nothing ran).
    pub(crate) async fn run(
        &self,
        namespace: &str,
        flow_id: &str,
        task: &RunTask,
    ) -> RepoResult<Attempted> {
        let files =
            ExecutionFiles::new(self.store.clone(), namespace, flow_id, &task.execution_id)?;
        Ok(self.run_in(files, task).await)
    }

    /// Runs `task` with the internal storage `files` of its execution.
    pub(crate) async fn run_in(&self, files: ExecutionFiles, task: &RunTask) -> Attempted {
        let files = reading_the_trigger_execution(files, task);
        let (request, expr_host) = self.request(&files, task);
        let work_dir = self.work_dirs.prepare(task, &self.renderer, &files).await;
        let outcome = match &work_dir {
            Ok(Some((dir, _))) => self.engine.run_attempt(request.with_work_dir(dir)).await,
            Ok(None) => self.engine.run_attempt(request).await,
            Err(message) => weft_engine::AttemptOutcome::not_run(
                weft_engine::AttemptFailure::Instantiate(message.clone()),
            ),
        };
        let mut logs = AttemptLogs::new(files.namespace(), files.flow_id(), task);
        let mut lines: Vec<Line> = Vec::with_capacity(outcome.logs.len() + 1);
        // secret values the task's expressions revealed never reach its logs (as Kestra masks them)
        let revealed = expr_host.revealed();
        if let Ok(Some((_, Some(warning)))) = &work_dir {
            logs.push("WARN", warning);
            lines.push(Line {
                level: "WARN".to_string(),
                message: warning.clone(),
            });
        }
        for l in &outcome.logs {
            let message = mask_secrets(&l.message, &revealed);
            logs.push_at(l.timestamp_ms, l.level.as_str(), &message);
            lines.push(Line {
                level: l.level.as_str().to_string(),
                message,
            });
        }
        let mut error = |logs: &mut AttemptLogs, message: String| {
            // an error may quote a rendered value
            let message = mask_secrets(&message, &revealed);
            logs.push("ERROR", &message);
            lines.push(Line {
                level: "ERROR".to_string(),
                message,
            });
        };
        let failure = outcome.result.as_ref().err().map(|f| f.kind());
        let (state, mut outputs) = match outcome.result {
            Ok(Json::Object(map)) => (State::Success, map),
            Ok(Json::Null) => (State::Success, Map::new()),
            Ok(other) => (
                State::Success,
                Map::from_iter([("value".to_string(), other)]),
            ),
            Err(failure) => {
                error(&mut logs, failure.to_string());
                (State::Failed, Map::new())
            }
        };
        let offloaded = offload_outputs(
            &files,
            &task.task_id,
            &task.task_run_id,
            &mut outputs,
            &self.offload,
        )
        .await;
        let mut state = match offloaded {
            Ok(_) => state,
            Err(e) => {
                error(&mut logs, e.to_string());
                outputs.clear();
                State::Failed
            }
        };
        let mut working_directory_outputs = Map::new();
        if let (Ok(Some((dir, _))), State::Success) = (&work_dir, state) {
            match self.work_dirs.collect(task, dir, &files).await {
                Ok(wd_outputs) => working_directory_outputs = wd_outputs,
                Err(message) => {
                    error(&mut logs, message);
                    state = State::Failed;
                }
            }
        }
        self.stats.record(state, outcome.duration, failure);
        // the logs are stored before the result is applied, so the tasks that run next
        // (e.g. an `errors` branch calling `errorLogs()`) find them
        if let Err(e) = logs.store(&LogRepo::new(self.store.clone())).await {
            tracing::warn!(error = %e, "could not store the attempt's logs");
        }
        Attempted {
            result: WorkerResult {
                task_run_id: task.task_run_id.clone(),
                attempt: task.attempt,
                state,
                outputs,
                metrics: outcome
                    .metrics
                    .iter()
                    .filter_map(|m| serde_json::to_value(m).ok())
                    .collect(),
                log_file: None,
                working_directory_outputs,
            },
            lines,
        }
    }

    /// The engine's request for `task`: its properties and context, its host, timeout and
    /// log level.
    /// Also returns the expression host, which knows the secrets the attempt revealed.
    fn request(&self, files: &ExecutionFiles, task: &RunTask) -> (AttemptRequest, FilesExprHost) {
        let context = TaskContext {
            namespace: files.namespace().to_string(),
            flow_id: files.flow_id().to_string(),
            execution_id: task.execution_id.clone(),
            task_id: task.task_id.clone(),
            task_run_id: task.task_run_id.clone(),
            attempt: task.attempt,
        };
        let expr_host = FilesExprHost::new(files.clone(), tokio::runtime::Handle::current())
            .with_logs(LogRepo::new(self.store.clone()))
            .with_secrets(self.secrets.clone());
        let host = Arc::new(AttemptHost {
            renderer: self.renderer.clone(),
            expr_host: expr_host.clone(),
            files: files.clone(),
            now: Utc::now(),
            seed: task.seed,
        });
        let mut request = AttemptRequest::new(
            task.task_type.clone(),
            Json::Object(task.properties.clone()),
            context,
            host,
        )
        .with_variables(task.context.clone());
        if let Some(timeout) = task.timeout.and_then(|t| t.to_std()) {
            request = request.with_timeout(timeout);
        }
        if let Some(level) = task
            .log_level
            .as_deref()
            .and_then(weft_engine::Level::parse)
        {
            request = request.with_min_log_level(level);
        }
        (request, expr_host)
    }
}

/// `files`, also allowed to read the files of the execution that started this one (the
/// `trigger`'s `namespace`, `flowId` and `executionId`, set for a Subflow's or ForEachItem's
/// execution): Kestra's `read()` accepts them, e.g. a ForEachItem batch passed as an input.
fn reading_the_trigger_execution(files: ExecutionFiles, task: &RunTask) -> ExecutionFiles {
    let var = |k: &str| super::host_tasks::task_var(task, &format!("/trigger/{k}"));
    let (Some(namespace), Some(flow_id), Some(execution_id)) =
        (var("namespace"), var("flowId"), var("executionId"))
    else {
        return files;
    };
    match files
        .clone()
        .also_reading(&namespace, &flow_id, &execution_id)
    {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "the trigger does not name an execution whose files can be read");
            files
        }
    }
}
