//! The driver loop: advances executions with the pure executor, runs the attempts it asks for in
//! the WASM engine ([`attempt`]: in this process or on the pool, see [`dispatch`]), starts
//! subflows, fires timers, and persists every step in object storage.
//!
//! Each step of an execution is one `advance` over every event that arrived together. A step that
//! only starts attempts and records their results may stay in memory for up to the flush interval
//! and is written with the steps after it ([`flush`]); every other step is written at once. Each
//! write is conditional on the version read, and a `Conflict` re-applies the held steps to a fresh
//! read (safe because `advance` is deterministic). A worker's result is applied by the driver's
//! next write (nothing else stores it: an attempt lost to a crash runs again after a takeover);
//! large outputs are offloaded to internal storage before.

pub(crate) mod attempt;
mod attempt_stats;
pub mod control;
pub mod dispatch;
mod fetch;
mod flow_triggers;
mod flush;
mod foreach_item;
mod host;
mod host_tasks;
mod logs;
mod resume_task;
mod retry;
mod toggle;
mod work_dir;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio::sync::mpsc;
use weft_executor::inputs::{InputContext, RawInput};
use weft_executor::{Effect, Event, Execution, Executor, RunTask, State, Timer, WorkerResult};
use weft_flow::expr::Renderer;
use weft_flow::model::{Flow, Label};
use weft_store::DynStore;
use weft_store::repo::{
    ExecutionFiles, ExecutionIndex, ExecutionRepo, IndexEntry, LogRepo, OffloadConfig, Versioned,
    check_outputs_fit, outputs_size,
};

pub use attempt_stats::{AttemptStats, DURATION_BUCKETS, Histogram};
pub use flush::Claim;
use logs::AttemptLogs;
pub use resume_task::SessionDirectory;

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The flow cannot be executed (unknown type, bad property, ...).
    #[error("flow {namespace}.{id}: {message}")]
    Flow {
        /// Namespace.
        namespace: String,
        /// Flow id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A Subflow task names a flow that is not available.
    #[error(
        "flow {0} does not exist (with `weft run`, pass the folder that holds it with --flows)"
    )]
    UnknownFlow(String),
    /// The execution's inputs are invalid.
    #[error("{0}")]
    Inputs(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// No execution has this id.
    #[error("execution {0} does not exist")]
    UnknownExecution(String),
    /// An execution with this id exists already (a schedule's fire started twice).
    #[error("execution {0} exists already")]
    Exists(String),
    /// The execution is not in a state that allows the action.
    #[error("{0}")]
    InvalidState(String),
}

/// What the runner reports as it goes (the CLI prints it).
pub trait Observer: Send + Sync {
    /// An attempt starts (`task` names its execution, task and task run).
    fn attempt_started(&self, _task: &RunTask) {}
    /// An attempt ended.
    fn attempt_ended(&self, _task: &RunTask, _state: State, _elapsed_ms: u128) {}
    /// A log line of an attempt.
    fn log(&self, _exec_id: &str, _task_id: &str, _level: &str, _message: &str) {}
    /// An execution terminated.
    fn terminated(&self, _exec: &Execution) {}
}

/// An observer that says nothing.
#[derive(Debug, Default)]
pub struct Silent;
impl Observer for Silent {}

/// Where a [`Catalog`] finds the flows it was not given: e.g. the flows of a tenant in storage.
/// `revision` is `None` for the latest one.
pub trait FlowSource: Send + Sync {
    /// The executor of `namespace.id` (at `revision`), `Ok(None)` when there is no such flow.
    fn load<'a>(
        &'a self,
        namespace: &'a str,
        id: &'a str,
        revision: Option<u32>,
    ) -> weft_engine::BoxFuture<'a, Result<Option<Arc<Executor>>, RunError>>;

    /// The latest revisions of the flows that have a Flow trigger (disabled ones may be
    /// included: the caller skips them). None by default.
    fn triggered<'a>(&'a self) -> weft_engine::BoxFuture<'a, Result<Vec<Arc<Executor>>, RunError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Flows the runner can start (the flow run, and those Subflow tasks call), by `namespace.id`:
/// the flows added, then those of the [`FlowSource`], if any.
#[derive(Default)]
pub struct Catalog {
    flows: HashMap<String, Arc<Executor>>,
    source: Option<Arc<dyn FlowSource>>,
    loaded: std::sync::Mutex<HashMap<String, Arc<Executor>>>,
    /// The flows with Flow triggers, listed once per catalog (see [`Catalog::listeners`]).
    listeners: tokio::sync::OnceCell<Arc<Vec<flow_triggers::Listener>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("flows", &self.flows.keys().collect::<Vec<_>>())
            .field("source", &self.source.is_some())
            .finish()
    }
}

impl Catalog {
    /// A catalog that loads every flow from `source` (each loaded once per catalog).
    pub fn from_source(source: Arc<dyn FlowSource>) -> Self {
        Catalog {
            source: Some(source),
            ..Catalog::default()
        }
    }

    /// Adds a flow.
    pub fn add(
        &mut self,
        flow: &Flow,
        registry: &weft_flow::Registry,
        renderer: Arc<Renderer>,
    ) -> Result<(), RunError> {
        let executor = Executor::new(flow, registry, renderer).map_err(|e| RunError::Flow {
            namespace: flow.namespace.clone(),
            id: flow.id.clone(),
            message: e.to_string(),
        })?;
        self.flows.insert(
            format!("{}.{}", flow.namespace, flow.id),
            Arc::new(executor),
        );
        self.listeners = tokio::sync::OnceCell::new();
        Ok(())
    }

    /// The executor of `namespace.id`: an added flow, else the latest revision from the source.
    pub async fn resolve(&self, namespace: &str, id: &str) -> Result<Arc<Executor>, RunError> {
        self.resolve_revision(namespace, id, None).await
    }

    /// As [`Catalog::resolve`], at one revision when the flow comes from the source (the revision
    /// an execution was created with).
    pub async fn resolve_revision(
        &self,
        namespace: &str,
        id: &str,
        revision: Option<u32>,
    ) -> Result<Arc<Executor>, RunError> {
        let name = format!("{namespace}.{id}");
        if let Some(e) = self.flows.get(&name) {
            return Ok(e.clone());
        }
        let Some(source) = &self.source else {
            return Err(RunError::UnknownFlow(name));
        };
        let cache_key = format!("{name}@{}", revision.map_or(0, |r| r));
        if let Some(e) = self
            .loaded
            .lock()
            .ok()
            .and_then(|m| m.get(&cache_key).cloned())
        {
            return Ok(e);
        }
        let executor = source
            .load(namespace, id, revision)
            .await?
            .ok_or(RunError::UnknownFlow(name))?;
        if let Ok(mut m) = self.loaded.lock() {
            m.insert(cache_key, executor.clone());
        }
        Ok(executor)
    }
}

/// How an execution is started.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Inputs as sent.
    pub inputs: IndexMap<String, RawInput>,
    /// Input files to upload first: input id -> (file name, bytes).
    pub files: Vec<(String, String, Vec<u8>)>,
    /// Labels given at creation.
    pub labels: Vec<Label>,
    /// What started the execution (`trigger` in expressions; a webhook's body, headers and
    /// parameters), when not a user.
    pub trigger: Option<Json>,
    /// Derives the execution's id (the same seed, the same id: a schedule's fire creates its
    /// execution once however many instances fire it); a random id when `None`.
    pub seed: Option<u64>,
    /// The revision of the flow to start (one the caller read already); the latest when `None`.
    pub revision: Option<u32>,
    /// Keep the new execution in memory until its first write (when it ends, or one flush
    /// interval later), for a caller that answers only once it ended (`?wait=true`): nobody
    /// else can know its id before. Not with `seed` (an id another start may repeat).
    pub defer_create: bool,
}

/// Runs executions to their end in this process.
pub struct Runner {
    engine: Arc<weft_engine::Registry>,
    store: DynStore,
    renderer: Arc<Renderer>,
    catalog: Catalog,
    offload: OffloadConfig,
    observer: Arc<dyn Observer>,
    work_dirs: work_dir::WorkDirs,
    dispatch: dispatch::Dispatch,
    secrets: weft_flow::expr::Secrets,
    /// The other sessions of this process, for host tasks (see [`Runner::with_sessions`]).
    sessions: Option<Arc<dyn SessionDirectory>>,
    /// How long steps may stay in memory before they are written (see [`flush`]).
    flush_interval: std::time::Duration,
    /// What the first write of an execution created in memory waits for.
    claim: Option<Arc<dyn Claim>>,
    /// Where the attempts run in this process are counted.
    attempt_stats: Arc<AttemptStats>,
}

/// How long an execution's steps stay in memory at most, by default (see [`flush`]).
pub const DEFAULT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("store", &self.store.url())
            .finish_non_exhaustive()
    }
}

struct Live {
    executor: Arc<Executor>,
    /// The execution as stored (moved into each write, never copied); `None` only while a write
    /// is in flight or after one failed (then it is read again).
    current: Option<Versioned<Execution>>,
    /// Bytes of its stored head, for the document budget (plus the outputs of the results
    /// applied since, while they are in memory).
    head_size: usize,
    files: ExecutionFiles,
    /// (parent execution, task run) for a subflow execution.
    parent: Option<(String, String)>,
    done: bool,
    /// The steps applied to `current` and not written yet.
    unflushed: flush::Unflushed,
    /// False while its creation is deferred to its first write.
    stored: bool,
    /// The state its execution-index entry holds.
    indexed: Option<State>,
}

impl Live {
    fn new(
        executor: Arc<Executor>,
        current: Versioned<Execution>,
        files: ExecutionFiles,
        parent: Option<(String, String)>,
    ) -> Self {
        let done = current.value.state.current.is_terminal();
        let indexed = Some(current.value.state.current);
        Live {
            executor,
            current: Some(current),
            // known from the first write on; until then the budget counts the outputs only
            head_size: 0,
            files,
            parent,
            done,
            unflushed: flush::Unflushed::default(),
            stored: true,
            indexed,
        }
    }
}

impl Live {
    /// Takes the held execution out for a write, reading the stored one when the held copy went
    /// into a write that failed.
    async fn take_current(
        &mut self,
        repo: &ExecutionRepo<Execution>,
        id: &str,
    ) -> Result<Versioned<Execution>, RunError> {
        match self.current.take() {
            Some(c) => Ok(c),
            None => repo.get(id).await.map_err(storage),
        }
    }

    /// The held execution (read again if needed, see [`Live::take_current`]).
    async fn current(
        &mut self,
        repo: &ExecutionRepo<Execution>,
        id: &str,
    ) -> Result<&Versioned<Execution>, RunError> {
        let current = self.take_current(repo, id).await?;
        Ok(self.current.insert(current))
    }
}

/// Why [`Runner::create`] did not create an execution.
enum CreateError {
    /// An execution with this id exists already (in storage, or in this process).
    Exists,
    Run(RunError),
}

impl CreateError {
    fn into_run(self, id: &str) -> RunError {
        match self {
            CreateError::Exists => RunError::Exists(id.to_string()),
            CreateError::Run(e) => e,
        }
    }
}

/// The (parent execution, Subflow task run) awaiting a subflow execution, from the trigger the
/// executor gave it; `None` for an execution no task started.
fn parent_of(exec: &Execution) -> Option<(String, String)> {
    let vars = exec.trigger.as_ref()?.get("variables")?;
    let text = |k: &str| vars.get(k).and_then(Json::as_str).map(str::to_string);
    Some((text("executionId")?, text("taskRunId")?))
}

struct Finished {
    exec_id: String,
    result: WorkerResult,
}

impl Runner {
    /// A runner over `store` with the plugins of `engine`.
    pub fn new(
        engine: Arc<weft_engine::Registry>,
        store: DynStore,
        renderer: Arc<Renderer>,
        catalog: Catalog,
    ) -> Self {
        Runner {
            engine,
            store,
            renderer,
            catalog,
            offload: OffloadConfig::default(),
            observer: Arc::new(Silent),
            work_dirs: work_dir::WorkDirs,
            dispatch: dispatch::Dispatch::Local,
            secrets: weft_flow::expr::Secrets::from_env(),
            sessions: None,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            claim: None,
            attempt_stats: Arc::default(),
        }
    }

    /// Counts the attempts run in this process in `stats` (shared by the drivers of a server).
    pub fn with_attempt_stats(mut self, stats: Arc<AttemptStats>) -> Self {
        self.attempt_stats = stats;
        self
    }

    /// Lets the steps of an execution stay in memory up to `interval` before they are written
    /// together (zero: every step is written at once). See [`flush`].
    pub fn with_flush_interval(mut self, interval: std::time::Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Calls `claim` before the first write of an execution created in memory.
    pub fn with_claim(mut self, claim: Arc<dyn Claim>) -> Self {
        self.claim = Some(claim);
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Where `secret()` finds its values in the tasks' expressions (by default the process
    /// environment's `SECRET_*` variables).
    pub fn with_secrets(mut self, secrets: weft_flow::expr::Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Sets the offload threshold and document budget.
    pub fn with_offload(mut self, offload: OffloadConfig) -> Self {
        self.offload = offload;
        self
    }

    /// Runs the attempts of runnable tasks as `dispatch` says (in this process by default). Host
    /// tasks the runner performs itself (Toggle) always run here.
    pub fn with_dispatch(mut self, dispatch: dispatch::Dispatch) -> Self {
        self.dispatch = dispatch;
        self
    }

    fn repo(&self) -> ExecutionRepo<Execution> {
        crate::executions(self.store.clone())
    }

    /// Creates an execution of `namespace.id` and runs it, with every subflow it starts, to its
    /// end; when it ends RETRIED, the executions it retries in run too, and the last one is
    /// returned.
    pub async fn run(
        &self,
        namespace: &str,
        id: &str,
        req: StartRequest,
    ) -> Result<Execution, RunError> {
        let mut session = self.session();
        let mut root = session.start(namespace, id, req, false).await?;
        let far = Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
        loop {
            session.drive_until(far, |s| s.is_done(&root)).await?;
            // RETRIED: the new execution it retries in carries on
            match session.retried_in(&root) {
                Some(next) => root = next,
                None => break,
            }
        }
        session
            .execution(&root)
            .cloned()
            .ok_or_else(|| RunError::Storage("the execution vanished".into()))
    }

    /// Reads a stored execution into `lives` (with the flow revision it was created with, and
    /// the Subflow task run awaiting it, if any), or returns the one already there.
    async fn load_live(
        &self,
        lives: &mut HashMap<String, Live>,
        id: &str,
    ) -> Result<Execution, RunError> {
        if let Some(live) = lives.get_mut(id) {
            return Ok(live.current(&self.repo(), id).await?.value.clone());
        }
        let current = self
            .repo()
            .find(id)
            .await
            .map_err(storage)?
            .ok_or_else(|| RunError::UnknownExecution(id.to_string()))?;
        let exec = &current.value;
        let executor = self
            .catalog
            .resolve_revision(&exec.namespace, &exec.flow_id, Some(exec.flow_revision))
            .await?;
        let files = self.files_of(exec)?;
        let parent = parent_of(exec);
        let snapshot = exec.clone();
        lives.insert(id.to_string(), Live::new(executor, current, files, parent));
        Ok(snapshot)
    }

    fn files_of(&self, exec: &Execution) -> Result<ExecutionFiles, RunError> {
        ExecutionFiles::new(self.store.clone(), &exec.namespace, &exec.flow_id, &exec.id)
            .map_err(storage)
    }

    async fn create(
        &self,
        lives: &mut HashMap<String, Live>,
        executor: Arc<Executor>,
        mut exec: Execution,
        files: ExecutionFiles,
        parent: Option<(String, String)>,
    ) -> Result<(), CreateError> {
        let id = exec.id.clone();
        if lives.contains_key(&id) {
            return Err(CreateError::Exists);
        }
        let version =
            self.repo()
                .create(&id, &mut exec)
                .await
                .map_err(|e| match e.is_conflict() {
                    true => CreateError::Exists,
                    false => CreateError::Run(storage(e)),
                })?;
        self.index(&exec).await;
        let current = Versioned {
            value: exec,
            version,
        };
        lives.insert(id, Live::new(executor, current, files, parent));
        Ok(())
    }

    /// As [`Runner::create`] for an execution whose id nobody else knows yet, written only at
    /// its first flush (see [`StartRequest::defer_create`]).
    fn create_in_memory(
        &self,
        lives: &mut HashMap<String, Live>,
        executor: Arc<Executor>,
        exec: Execution,
        files: ExecutionFiles,
    ) -> Result<(), CreateError> {
        let id = exec.id.clone();
        if lives.contains_key(&id) {
            return Err(CreateError::Exists);
        }
        // not stored: the version is never used as a condition (the first write is a create)
        let current = Versioned {
            value: exec,
            version: weft_store::Version::new(""),
        };
        let mut live = Live::new(executor, current, files, None);
        live.stored = false;
        live.indexed = None;
        live.unflushed = flush::Unflushed::created();
        lives.insert(id, live);
        Ok(())
    }

    /// One advance of one execution over `events`: kept in memory when it may be (see
    /// [`flush::deferrable`]) until its flush is due, else written at once with a version
    /// condition (with the steps before it). The log lines among its effects are reported and
    /// stored here ([`Runner::store_executor_logs`]); the other effects are returned for the
    /// caller to apply.
    async fn step(
        &self,
        lives: &mut HashMap<String, Live>,
        exec_id: &str,
        events: Vec<Event>,
    ) -> Result<Vec<Effect>, RunError> {
        let Some(live) = lives.get_mut(exec_id) else {
            return Ok(Vec::new());
        };
        let mut current = live.take_current(&self.repo(), exec_id).await?;
        let before = current.value.state.current;
        let mut events = events;
        live.head_size = admit_results(
            &current.value,
            &mut events,
            live.head_size,
            &self.offload,
            &*self.observer,
        );
        let now = Utc::now();
        let effects = live
            .executor
            .advance(&mut current.value, events.clone(), now);
        let after = current.value.state.current;
        live.current = Some(current);
        let quiet = flush::deferrable(&events, before, after, &effects);
        live.unflushed.push(events, now);
        let write_now = !quiet
            || live.head_size > self.offload.document_budget / 2
            || live
                .unflushed
                .due(self.flush_interval)
                .is_some_and(|at| at <= Instant::now());
        let effects = match write_now {
            true => self.flush(lives, exec_id, effects).await?,
            false => effects,
        };
        self.store_executor_logs(lives, exec_id, effects).await
    }

    /// Writes the execution's entry in the execution index (derived data: a failure is logged,
    /// the execution goes on).
    pub(crate) async fn index(&self, exec: &Execution) {
        let Some(start_date) = exec
            .state
            .start_date
            .or_else(|| exec.state.histories.first().map(|h| h.date))
        else {
            return;
        };
        let entry = IndexEntry {
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
            id: exec.id.clone(),
            start_date,
            state: exec.state.current.as_str().to_string(),
            end_date: exec.state.end_date,
            extra: Json::Null,
        };
        if let Err(e) = ExecutionIndex::new(self.store.clone()).put(&entry).await {
            tracing::warn!(execution = %exec.id, error = %e, "could not index the execution");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        lives: &mut HashMap<String, Live>,
        exec_id: &str,
        effect: Effect,
        tx: &mpsc::UnboundedSender<Finished>,
        pending: &mut IndexMap<String, Vec<Event>>,
        timers: &mut BinaryHeap<Reverse<(DateTime<Utc>, String, TimerKey)>>,
        attempts: &mut HashMap<(String, String, u32), tokio::task::JoinHandle<()>>,
    ) -> Result<(), RunError> {
        match effect {
            Effect::RunTask(task) => {
                if !lives.contains_key(exec_id) {
                    return Ok(());
                }
                let key = (exec_id.to_string(), task.task_run_id.clone(), task.attempt);
                if attempts.contains_key(&key) || result_pending(pending, exec_id, &task) {
                    // asked again (a write that met a conflict recovers the execution): it runs
                    return Ok(());
                }
                self.observer.attempt_started(&task);
                if let Some(kind) = host_tasks::HostTask::of(&task.task_type) {
                    let driver = host_tasks::Driver { lives, pending };
                    if let Some(handle) = self.host_attempt(kind, driver, &task, tx).await? {
                        attempts.insert(key, handle);
                    }
                    return Ok(());
                }
                let Some(live) = lives.get(exec_id) else {
                    return Ok(());
                };
                let handle = self.spawn_attempt(live, *task, tx.clone());
                attempts.insert(key, handle);
            }
            Effect::WakeAt { at, timer } => {
                timers.push(Reverse((at, exec_id.to_string(), TimerKey(timer))))
            }
            Effect::CancelTask {
                task_run_id,
                attempt,
            } => {
                if let Some(h) = attempts.remove(&(exec_id.to_string(), task_run_id, attempt)) {
                    h.abort();
                }
            }
            Effect::StartSubflow(sub) => {
                let executor = self.catalog.resolve(&sub.namespace, &sub.flow_id).await?;
                let now = Utc::now();
                let mut exec = Execution::new(executor.flow(), sub.execution_id.clone(), now)
                    .with_labels(sub.labels.clone())
                    .with_trigger(sub.trigger.clone())
                    .with_parent(sub.parent_id.clone());
                let raw: IndexMap<String, RawInput> = sub
                    .inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), RawInput::Json(v.clone())))
                    .collect();
                let ictx = InputContext::new(&exec.id, now, &self.renderer);
                match weft_executor::inputs::read_inputs(executor.flow(), &raw, &ictx) {
                    Ok(inputs) => exec = exec.with_inputs(inputs),
                    Err(e) => {
                        // The subflow cannot start: its task fails with the reason.
                        self.observer
                            .log(exec_id, &sub.task_run_id, "ERROR", &e.to_string());
                        pending
                            .entry(exec_id.to_string())
                            .or_default()
                            .push(Event::SubflowEnded {
                                task_run_id: sub.task_run_id.clone(),
                                execution_id: sub.execution_id.clone(),
                                state: State::Failed,
                                outputs: None,
                            });
                        return Ok(());
                    }
                }
                let files = self.files_of(&exec)?;
                let parent = sub
                    .wait
                    .then(|| (exec_id.to_string(), sub.task_run_id.clone()));
                let child = exec.id.clone();
                match Box::pin(self.create(lives, executor, exec, files, parent)).await {
                    Ok(()) => {
                        pending
                            .entry(child)
                            .or_default()
                            .push(Event::Start { running: 0 });
                    }
                    // asked again after a takeover (`Event::Recover`): it exists, carry it on
                    Err(CreateError::Exists) => {
                        let known = lives.contains_key(&child);
                        let exec = Box::pin(self.load_live(lives, &child)).await?;
                        if exec.state.current.is_terminal() {
                            pending.entry(exec_id.to_string()).or_default().push(
                                Event::SubflowEnded {
                                    task_run_id: sub.task_run_id.clone(),
                                    execution_id: child,
                                    state: exec.state.current,
                                    outputs: exec.outputs.clone(),
                                },
                            );
                        } else if !known {
                            // read from storage: its own driver is gone too
                            pending.entry(child).or_default().push(Event::Recover);
                        }
                    }
                    Err(e) => return Err(e.into_run(&child)),
                }
            }
            Effect::KillExecution { execution_id } => {
                pending.entry(execution_id).or_default().push(Event::Kill);
            }
            Effect::CreateRetryExecution { at, attempt_number } => {
                Box::pin(self.create_retry(lives, pending, exec_id, attempt_number, at)).await?;
            }
            // taken out of the step's effects by `store_executor_logs`
            Effect::Log { .. } => {}
            Effect::Terminated { state } => {
                let Some(live) = lives.get_mut(exec_id) else {
                    return Ok(());
                };
                live.done = true;
                self.work_dirs.remove_execution(exec_id);
                let Some(current) = live.current.as_ref() else {
                    return Ok(());
                };
                self.observer.terminated(&current.value);
                if let Some((parent, task_run_id)) = live.parent.clone() {
                    pending
                        .entry(parent)
                        .or_default()
                        .push(Event::SubflowEnded {
                            task_run_id,
                            execution_id: exec_id.to_string(),
                            state,
                            outputs: current.value.outputs.clone(),
                        });
                }
            }
        }
        Ok(())
    }

    /// Reports the log lines of one step's effects and keeps those of task runs in the log
    /// store: one read and one write per task run that has lines (appended to what its executor
    /// slot already holds), before the step's other effects start tasks that may read them
    /// (`errorLogs()`). Returns the other effects.
    async fn store_executor_logs(
        &self,
        lives: &mut HashMap<String, Live>,
        exec_id: &str,
        effects: Vec<Effect>,
    ) -> Result<Vec<Effect>, RunError> {
        let mut rest = Vec::with_capacity(effects.len());
        let mut by_run: IndexMap<String, Vec<(String, String)>> = IndexMap::new();
        for effect in effects {
            let Effect::Log {
                task_run_id,
                level,
                message,
            } = effect
            else {
                rest.push(effect);
                continue;
            };
            by_run
                .entry(task_run_id.unwrap_or_default())
                .or_default()
                .push((level, message));
        }
        let Some(live) = lives.get_mut(exec_id).filter(|_| !by_run.is_empty()) else {
            return Ok(rest);
        };
        let exec = &live.current(&self.repo(), exec_id).await?.value;
        let repo = LogRepo::new(self.store.clone());
        for (run_id, lines) in by_run {
            let task_id = exec.task_run(&run_id).map_or("", |r| r.task_id.as_str());
            for (level, message) in &lines {
                self.observer.log(exec_id, task_id, level, message);
            }
            if run_id.is_empty() {
                // the execution's own lines (no task run): reported only
                continue;
            }
            let mut logs = AttemptLogs::of(
                &exec.namespace,
                &exec.flow_id,
                &exec.id,
                task_id,
                &run_id,
                logs::EXECUTOR_SLOT,
            );
            for (level, message) in &lines {
                logs.push(level, message);
            }
            if let Err(e) = logs.store_with(&repo, true).await {
                tracing::warn!(error = %e, "could not store the executor's log lines");
            }
        }
        Ok(rest)
    }
}

/// Applies the document budget (DESIGN.md §4) to the worker results of one step: the head of
/// `head_size` bytes receives their outputs until the next chunk moves them out, so a result whose
/// outputs would push it past [`OffloadConfig::document_budget`] fails its task (outputs dropped,
/// the reason logged with the task's name) instead of the whole execution. Results are counted in
/// order, each accepted one adding to the head.
fn admit_results(
    exec: &Execution,
    events: &mut [Event],
    head_size: usize,
    offload: &OffloadConfig,
    observer: &dyn Observer,
) -> usize {
    let mut size = head_size;
    for event in events.iter_mut() {
        let Event::WorkerResult(r) = event else {
            continue;
        };
        let task_id = exec
            .task_run(&r.task_run_id)
            .map_or(r.task_run_id.as_str(), |t| t.task_id.as_str());
        match check_outputs_fit(task_id, size, &r.outputs, offload) {
            Ok(()) => size = size.saturating_add(outputs_size(&r.outputs)),
            Err(e) => {
                observer.log(&exec.id, task_id, "ERROR", &e.to_string());
                r.state = State::Failed;
                r.outputs.clear();
            }
        }
    }
    size
}

/// Whether the result of `task`'s attempt waits in `pending` to be applied.
fn result_pending(pending: &IndexMap<String, Vec<Event>>, exec_id: &str, task: &RunTask) -> bool {
    pending.get(exec_id).is_some_and(|events| {
        events.iter().any(|e| {
            matches!(e, Event::WorkerResult(r)
                if r.task_run_id == task.task_run_id && r.attempt == task.attempt)
        })
    })
}

fn storage(e: impl std::fmt::Display) -> RunError {
    RunError::Storage(e.to_string())
}

/// A timer in the heap (ordered by its fields, to break ties deterministically).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TimerKey(Timer);

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |t: &Timer| (t.task_run_id.clone(), format!("{:?}", t.kind), t.number);
        key(&self.0).cmp(&key(&other.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Mutex;

    use chrono::TimeDelta;
    use serde_json::{Map, json};
    use weft_executor::{State, StateInfo, TaskRun};

    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);
    impl Observer for Lines {
        fn log(&self, _exec_id: &str, task_id: &str, level: &str, message: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{level} {task_id}: {message}"));
        }
    }

    fn exec_with_run() -> Execution {
        let flow = weft_flow::parse_flow(
            "id: f\nnamespace: t\ntasks:\n  - {id: big, type: io.kestra.plugin.core.debug.Return, format: x}\n",
            &weft_flow::Registry::core(),
        )
        .unwrap()
        .flow;
        let now = Utc::now();
        let mut exec = Execution::new(&flow, "E".into(), now);
        exec.task_run_list.push(TaskRun {
            id: "TR".into(),
            execution_id: "E".into(),
            namespace: "t".into(),
            flow_id: "f".into(),
            task_id: "big".into(),
            parent_task_run_id: None,
            value: None,
            iteration: None,
            attempts: None,
            outputs: None,
            state: StateInfo::new(State::Running, now - TimeDelta::seconds(1)),
            loop_values: None,
        });
        exec
    }

    fn result(value: Json) -> Event {
        let mut outputs = Map::new();
        outputs.insert("value".into(), value);
        Event::WorkerResult(WorkerResult {
            task_run_id: "TR".into(),
            attempt: 1,
            state: State::Success,
            outputs,
            metrics: Vec::new(),
            log_file: None,
            working_directory_outputs: Default::default(),
        })
    }

    #[test]
    fn outputs_over_the_head_budget_fail_the_task_by_name() {
        let exec = exec_with_run();
        let lines = Lines::default();
        let offload = OffloadConfig {
            threshold: 64 * 1024,
            document_budget: 100_000,
        };
        // fits: unchanged
        let mut events = vec![result(json!("small"))];
        admit_results(&exec, &mut events, 10_000, &offload, &lines);
        assert!(
            matches!(&events[0], Event::WorkerResult(r) if r.state == State::Success && !r.outputs.is_empty())
        );
        // 2 results of 60 kB each on a 10 kB head: the second one is over
        let mut events = vec![
            result(json!("x".repeat(60_000))),
            result(json!("y".repeat(60_000))),
        ];
        admit_results(&exec, &mut events, 10_000, &offload, &lines);
        let states: Vec<(State, bool)> = events
            .iter()
            .map(|e| match e {
                Event::WorkerResult(r) => (r.state, r.outputs.is_empty()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(states, [(State::Success, false), (State::Failed, true)]);
        let lines = lines.0.lock().unwrap();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("ERROR big: task `big`")
                && lines[0].contains("budget of 100000 bytes"),
            "{}",
            lines[0]
        );
    }
}
