//! Step-by-step control of executions in one process, for tests and the conformance runner: a
//! [`Session`] creates executions, drives them until a condition holds (PAUSED, RUNNING,
//! terminated) or a deadline passes, then resumes, restarts or replays them, with every subflow
//! they start kept in the same session.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, oneshot};
use weft_executor::inputs::{InputContext, RawInput};
use weft_executor::{Event, Execution, State, TimerKind};
use weft_store::repo::Versioned;

use super::{Catalog, Finished, Live, RunError, Runner, StartRequest, TimerKey, storage};

impl Catalog {
    /// Adds a flow whose executions see `globals` (e.g. `envs`, `globals`) in every expression.
    pub fn add_with_globals(
        &mut self,
        flow: &weft_flow::Flow,
        registry: &weft_flow::Registry,
        renderer: Arc<weft_flow::expr::Renderer>,
        globals: Map<String, Json>,
    ) -> Result<(), RunError> {
        let executor = weft_executor::Executor::new(flow, registry, renderer)
            .map_err(|e| RunError::Flow {
                namespace: flow.namespace.clone(),
                id: flow.id.clone(),
                message: e.to_string(),
            })?
            .with_globals(globals);
        self.flows.insert(
            format!("{}.{}", flow.namespace, flow.id),
            Arc::new(executor),
        );
        self.listeners = tokio::sync::OnceCell::new();
        Ok(())
    }
}

impl Runner {
    /// Types and validates `onResume` inputs for the paused execution `id` of `lives` (uploading
    /// `req.files` first, as FILE inputs), then queues its resume in `pending`. Fails with
    /// Kestra's input error when an input is missing or invalid; nothing is queued then.
    pub(super) async fn queue_resume(
        &self,
        lives: &mut HashMap<String, Live>,
        pending: &mut IndexMap<String, Vec<Event>>,
        id: &str,
        req: StartRequest,
    ) -> Result<(), RunError> {
        let Some(live) = lives.get_mut(id) else {
            return Err(RunError::Storage(format!(
                "no execution {id} in this session"
            )));
        };
        let executor = live.executor.clone();
        let files = live.files.clone();
        let mut values = req.inputs;
        upload_files(&files, req.files, &mut values).await?;
        let exec = &live.current(&self.repo(), id).await?.value;
        let ictx = InputContext::new(&exec.id, Utc::now(), &self.renderer);
        let inputs = executor
            .resume_inputs(exec, &values, &ictx)
            .map_err(|e| RunError::Inputs(e.to_string()))?;
        pending
            .entry(id.to_string())
            .or_default()
            .push(Event::Resume { inputs });
        Ok(())
    }

    /// A session driving executions of this runner step by step.
    pub fn session(&self) -> Session<'_> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ext_tx, ext_rx) = mpsc::unbounded_channel();
        Session {
            ext_tx,
            ext_rx,
            runner: self,
            lives: HashMap::new(),
            pending: IndexMap::new(),
            timers: BinaryHeap::new(),
            attempts: HashMap::new(),
            tx,
            rx,
            stopped: false,
        }
    }
}

/// What woke the driver up.
enum Wake {
    Finished(Option<Finished>),
    External(Option<External>),
    Timer,
}

/// What another task asks of a session's executions.
enum External {
    /// Queue an event.
    Event(String, Event),
    /// Resume with `onResume` inputs as sent ([`Session::resume_with`]), answering whether they
    /// were valid.
    Resume(String, StartRequest, oneshot::Sender<Result<(), RunError>>),
    /// Write what is held and stop driving (the process shuts down).
    Stop,
}

/// Sends events (kill, resume) to the executions of a [`Session`] from elsewhere (another
/// task): they are applied at the session's next step, while it drives.
#[derive(Debug, Clone)]
pub struct SessionSender(mpsc::UnboundedSender<External>);

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            External::Event(id, e) => write!(f, "Event({id}, {e:?})"),
            External::Resume(id, ..) => write!(f, "Resume({id})"),
            External::Stop => write!(f, "Stop"),
        }
    }
}

impl SessionSender {
    /// Queues `event` for execution `id`; false when the session is gone.
    pub fn send(&self, id: &str, event: Event) -> bool {
        self.0.send(External::Event(id.to_string(), event)).is_ok()
    }

    /// Asks the session to write what it holds in memory and stop driving (see
    /// [`Session::stopped`]); false when the session is gone.
    pub fn stop(&self) -> bool {
        self.0.send(External::Stop).is_ok()
    }

    /// Asks the session to resume execution `id` with `onResume` inputs as sent (typed and
    /// validated there); the receiver answers whether they were valid. `Err(req)` when the
    /// session is gone.
    pub fn resume(
        &self,
        id: &str,
        req: StartRequest,
    ) -> Result<oneshot::Receiver<Result<(), RunError>>, Box<StartRequest>> {
        let (tx, rx) = oneshot::channel();
        match self.0.send(External::Resume(id.to_string(), req, tx)) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::SendError(External::Resume(_, req, _))) => Err(Box::new(req)),
            Err(_) => Err(Box::default()),
        }
    }
}

/// Uploads FILE inputs (input id, file name, bytes) into the execution's storage and adds them
/// to `values` by URI.
async fn upload_files(
    files: &weft_store::repo::ExecutionFiles,
    uploads: Vec<(String, String, Vec<u8>)>,
    values: &mut IndexMap<String, RawInput>,
) -> Result<(), RunError> {
    for (input, name, bytes) in uploads {
        let uri = files.input_file_uri(&input, &name).map_err(storage)?;
        files.put(&uri, bytes.into()).await.map_err(storage)?;
        values.insert(input, RawInput::File { name, uri });
    }
    Ok(())
}

/// How many executions of `namespace.id` among `lives` are running now (for the flow's
/// `concurrency`).
pub(super) fn running_in(lives: &HashMap<String, Live>, namespace: &str, id: &str) -> u32 {
    let n = lives
        .values()
        .filter_map(|l| Some((l, &l.current.as_ref()?.value)))
        .filter(|(l, e)| {
            !l.done
                && e.namespace == namespace
                && e.flow_id == id
                && !matches!(
                    e.state.current,
                    State::Created | State::Queued | State::Restarted
                )
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

type Timers = BinaryHeap<Reverse<(DateTime<Utc>, String, TimerKey)>>;

/// Executions driven together in this process (see [`Runner::session`]).
pub struct Session<'r> {
    pub(super) runner: &'r Runner,
    pub(super) lives: HashMap<String, Live>,
    pending: IndexMap<String, Vec<Event>>,
    timers: Timers,
    attempts: HashMap<(String, String, u32), tokio::task::JoinHandle<()>>,
    tx: mpsc::UnboundedSender<Finished>,
    rx: mpsc::UnboundedReceiver<Finished>,
    ext_tx: mpsc::UnboundedSender<External>,
    ext_rx: mpsc::UnboundedReceiver<External>,
    /// Asked to stop ([`SessionSender::stop`]).
    stopped: bool,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("executions", &self.lives.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        for (_, handle) in self.attempts.drain() {
            handle.abort();
        }
    }
}

impl Session<'_> {
    /// Creates an execution of `namespace.id` (uploading `req.files` first) and queues its start;
    /// nothing runs until [`Session::drive_until`]. With `raw`, inputs go into the execution as
    /// they are (Kestra's test mode, only defaults are added); otherwise they are typed and
    /// validated. Returns the new execution's id.
    pub async fn start(
        &mut self,
        namespace: &str,
        id: &str,
        req: StartRequest,
        raw: bool,
    ) -> Result<String, RunError> {
        let executor = self
            .runner
            .catalog
            .resolve_revision(namespace, id, req.revision)
            .await?;
        self.start_executor(executor, req, raw).await
    }

    /// As [`Session::start`], for the flow of `executor`.
    pub(super) async fn start_executor(
        &mut self,
        executor: Arc<weft_executor::Executor>,
        req: StartRequest,
        raw: bool,
    ) -> Result<String, RunError> {
        let runner = self.runner;
        let now = Utc::now();
        let exec = executor.create_execution(req.seed.unwrap_or_else(rand::random::<u64>), now);
        let files = runner.files_of(&exec)?;
        let mut values = req.inputs;
        upload_files(&files, req.files, &mut values).await?;
        let ictx = InputContext::new(&exec.id, now, &runner.renderer);
        let inputs = if raw {
            let json: IndexMap<String, Json> = values
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        RawInput::Text(s) => Json::String(s),
                        RawInput::File { uri, .. } => Json::String(uri),
                        RawInput::Json(j) => j,
                    };
                    (k, v)
                })
                .collect();
            weft_executor::inputs::read_inputs_raw(executor.flow(), &json, &ictx)
        } else {
            weft_executor::inputs::read_inputs(executor.flow(), &values, &ictx)
        }
        .map_err(|e| RunError::Inputs(e.to_string()))?;
        let mut exec = exec.with_inputs(inputs).with_labels(req.labels);
        if let Some(trigger) = req.trigger {
            exec = exec.with_trigger(trigger);
        }
        let exec_id = exec.id.clone();
        let running = self.running_of(&exec.namespace, &exec.flow_id);
        match req.defer_create {
            true => runner.create_in_memory(&mut self.lives, executor, exec, files),
            false => {
                runner
                    .create(&mut self.lives, executor, exec, files, None)
                    .await
            }
        }
        .map_err(|e| e.into_run(&exec_id))?;
        self.pending
            .entry(exec_id.clone())
            .or_default()
            .push(Event::Start { running });
        Ok(exec_id)
    }

    /// A handle that queues events for this session's executions from another task.
    pub fn sender(&self) -> SessionSender {
        SessionSender(self.ext_tx.clone())
    }

    /// Takes an execution stored earlier (by this or another process) into the session, with
    /// the flow revision it was created with: it can then be resumed, killed, restarted or
    /// replayed. Nothing runs until [`Session::drive_until`]. Returns it as read.
    pub async fn load(&mut self, id: &str) -> Result<Execution, RunError> {
        self.runner.load_live(&mut self.lives, id).await
    }

    /// Takes over executions whose driver stopped (their lease expired, see
    /// [`crate::lease`]): each is read and asked, with `Event::Recover`, for the attempts,
    /// subflow executions and timers the stopped driver held in memory. Terminated ones are
    /// only read, but for a RETRIED one, whose new execution is created if it was not (and
    /// carried on if it was). Nothing runs until [`Session::drive_until`].
    pub async fn take_over(&mut self, ids: &[String]) -> Result<(), RunError> {
        for id in ids {
            let exec = match self.load(id).await {
                Ok(exec) => exec,
                // deleted since: nothing to carry on
                Err(RunError::UnknownExecution(_)) => continue,
                Err(e) => return Err(e),
            };
            if !exec.state.current.is_terminal() {
                self.pending
                    .entry(id.clone())
                    .or_default()
                    .push(Event::Recover);
            } else if let Some((attempt, at)) = self
                .lives
                .get(id)
                .and_then(|l| l.executor.pending_retry(&exec))
            {
                // its driver may have stopped before it created the execution it retries in
                self.runner
                    .create_retry(&mut self.lives, &mut self.pending, id, attempt, at)
                    .await?;
            }
            if exec.state.current.is_terminal() {
                // an execution still on an expired lease ended, but its driver may have stopped
                // before the Flow triggers it fires started their executions: fire them again
                // (each derived id is created once, stateful triggers skip an end they saw)
                self.fire_flow_triggers(id).await;
            }
        }
        Ok(())
    }

    /// Whether every execution of the session has terminated.
    pub fn all_done(&self) -> bool {
        self.lives.values().all(|l| l.done)
    }

    /// Ids of the executions of the session that have not terminated.
    pub fn unfinished(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .lives
            .iter()
            .filter(|(_, l)| !l.done)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// How many executions of `namespace.id` are running now (for the flow's `concurrency`).
    fn running_of(&self, namespace: &str, id: &str) -> u32 {
        running_in(&self.lives, namespace, id)
    }

    /// The execution that the RETRIED execution `id` retries in, once this session holds it.
    pub fn retried_in(&self, id: &str) -> Option<String> {
        let live = self.lives.get(id)?;
        let (attempt, _) = live.executor.pending_retry(&live.current.as_ref()?.value)?;
        let next = weft_executor::ids::retry_execution_id(id, attempt);
        self.lives.contains_key(&next).then_some(next)
    }

    /// Drives every execution of the session until `until` holds (checked after each step) or
    /// `deadline` passes. Returns whether `until` held.
    pub async fn drive_until(
        &mut self,
        deadline: Instant,
        mut until: impl FnMut(&Session<'_>) -> bool,
    ) -> Result<bool, RunError> {
        loop {
            if self.stopped {
                self.flush_all().await?;
                return Ok(false);
            }
            let done = self.drive_pending(&mut until).await?;
            if done || until(self) {
                self.flush_all().await?;
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                self.flush_all().await?;
                return Ok(false);
            }
            let flushed = self.runner.flush_due(&mut self.lives, Some(now)).await?;
            if !flushed.is_empty() {
                self.apply_all(flushed).await?;
                continue;
            }
            let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let limit = deadline - now;
            let timer_wait = next_timer.map(|at| (at - Utc::now()).to_std().unwrap_or_default());
            let flush_wait = self
                .runner
                .next_flush(&self.lives)
                .map(|at| at.saturating_duration_since(now));
            let wait = [timer_wait, flush_wait]
                .into_iter()
                .flatten()
                .fold(limit, std::cmp::Ord::min);
            let wake = tokio::select! {
                finished = self.rx.recv() => Wake::Finished(finished),
                external = self.ext_rx.recv() => Wake::External(external),
                () = tokio::time::sleep(wait) => Wake::Timer,
            };
            match wake {
                Wake::Finished(None) => {
                    return Err(RunError::Storage("the worker channel closed".into()));
                }
                Wake::External(None) => {}
                Wake::External(Some(first)) => {
                    self.external(first).await;
                    while let Ok(more) = self.ext_rx.try_recv() {
                        self.external(more).await;
                    }
                }
                Wake::Finished(Some(first)) => {
                    let mut batch = vec![first];
                    while let Ok(more) = self.rx.try_recv() {
                        batch.push(more);
                    }
                    for f in batch {
                        self.attempts.remove(&(
                            f.exec_id.clone(),
                            f.result.task_run_id.clone(),
                            f.result.attempt,
                        ));
                        self.pending
                            .entry(f.exec_id)
                            .or_default()
                            .push(Event::WorkerResult(f.result));
                    }
                }
                Wake::Timer => {
                    let now = Utc::now();
                    while let Some(Reverse((at, _, _))) = self.timers.peek() {
                        if *at > now {
                            break;
                        }
                        if let Some(Reverse((_, exec_id, key))) = self.timers.pop() {
                            let event = match key.0.kind {
                                // a scheduled start, with the count the flow's concurrency needs
                                TimerKind::Start => {
                                    let running = self.execution(&exec_id).map_or(0, |e| {
                                        running_in(&self.lives, &e.namespace, &e.flow_id)
                                    });
                                    Event::Start { running }
                                }
                                _ => Event::Timer(key.0),
                            };
                            self.pending.entry(exec_id).or_default().push(event);
                        }
                    }
                }
            }
        }
    }

    /// Steps every execution with pending events; true as soon as `until` holds.
    async fn drive_pending(
        &mut self,
        until: &mut impl FnMut(&Session<'_>) -> bool,
    ) -> Result<bool, RunError> {
        while let Some((exec_id, events)) = self.pending.shift_remove_index(0) {
            let effects = self.runner.step(&mut self.lives, &exec_id, events).await?;
            self.apply_all(vec![(exec_id, effects)]).await?;
            if until(self) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Applies the effects of steps, by execution; fires the Flow triggers of those that ended.
    async fn apply_all(
        &mut self,
        steps: Vec<(String, Vec<weft_executor::Effect>)>,
    ) -> Result<(), RunError> {
        for (exec_id, effects) in steps {
            let terminated = effects
                .iter()
                .any(|e| matches!(e, weft_executor::Effect::Terminated { .. }));
            for effect in effects {
                self.runner
                    .apply(
                        &mut self.lives,
                        &exec_id,
                        effect,
                        &self.tx,
                        &mut self.pending,
                        &mut self.timers,
                        &mut self.attempts,
                    )
                    .await?;
            }
            if terminated {
                self.fire_flow_triggers(&exec_id).await;
            }
        }
        Ok(())
    }

    /// Writes every execution whose steps are in memory (see [`super::flush`]).
    pub async fn flush_all(&mut self) -> Result<(), RunError> {
        let flushed = self.runner.flush_due(&mut self.lives, None).await?;
        if !flushed.is_empty() {
            // a write met a conflict: what the execution asks for now runs at the next drive
            self.apply_all(flushed).await?;
        }
        Ok(())
    }

    /// Whether the session was asked to stop ([`SessionSender::stop`]): it drives no more, and
    /// what it held in memory is written.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Applies what another task asked (see [`SessionSender`]).
    async fn external(&mut self, ask: External) {
        match ask {
            External::Stop => self.stopped = true,
            External::Event(id, event) => self.pending.entry(id).or_default().push(event),
            External::Resume(id, req, reply) => {
                let _ = reply.send(self.resume_with(&id, req).await);
            }
        }
    }

    /// An execution of the session as it is now.
    pub fn execution(&self, id: &str) -> Option<&Execution> {
        self.lives
            .get(id)
            .and_then(|l| l.current.as_ref())
            .map(|c| &c.value)
    }

    /// Whether the execution has terminated (its driver saw it end).
    pub fn is_done(&self, id: &str) -> bool {
        self.lives.get(id).is_some_and(|l| l.done)
    }

    /// Every execution of the session (subflow executions included), oldest first.
    pub fn executions(&self) -> Vec<&Execution> {
        let mut all: Vec<&Execution> = self
            .lives
            .values()
            .filter_map(|l| l.current.as_ref())
            .map(|c| &c.value)
            .collect();
        all.sort_by(|a, b| {
            let created = |e: &Execution| e.state.histories.first().map(|h| h.date);
            created(a).cmp(&created(b)).then_with(|| a.id.cmp(&b.id))
        });
        all
    }

    /// The internal-storage files of an execution of the session.
    pub fn files(&self, id: &str) -> Option<weft_store::repo::ExecutionFiles> {
        self.lives.get(id).map(|l| l.files.clone())
    }

    /// Queues the resume of a paused execution with `onResume` inputs (already typed).
    pub fn resume(&mut self, id: &str, inputs: Map<String, Json>) -> Result<(), RunError> {
        if !self.lives.contains_key(id) {
            return Err(RunError::Storage(format!(
                "no execution {id} in this session"
            )));
        }
        self.pending
            .entry(id.to_string())
            .or_default()
            .push(Event::Resume { inputs });
        Ok(())
    }

    /// Types and validates `onResume` inputs for a paused execution (uploading `req.files`
    /// first, as FILE inputs), then queues its resume. Fails with Kestra's input error when an
    /// input is missing or invalid; nothing is queued then.
    pub async fn resume_with(&mut self, id: &str, req: StartRequest) -> Result<(), RunError> {
        self.runner
            .queue_resume(&mut self.lives, &mut self.pending, id, req)
            .await
    }

    /// Restarts a FAILED or KILLED execution (same id): it is RESTARTED when this returns (the
    /// returned document), and runs again at the next [`Session::drive_until`].
    pub async fn restart(&mut self, id: &str) -> Result<Execution, RunError> {
        let runner = self.runner;
        let Some(live) = self.lives.get_mut(id) else {
            return Err(RunError::Storage(format!(
                "no execution {id} in this session"
            )));
        };
        let executor = live.executor.clone();
        let now = Utc::now();
        let repo = runner.repo();
        // what it holds in memory goes first (nothing, for an execution that ended)
        let flushed = runner.flush(&mut self.lives, id, Vec::new()).await?;
        if !flushed.is_empty() {
            self.apply_all(vec![(id.to_string(), flushed)]).await?;
        }
        let Some(live) = self.lives.get_mut(id) else {
            return Err(RunError::UnknownExecution(id.to_string()));
        };
        let current = live.take_current(&repo, id).await?;
        // on failure the held copy went into the write: `take_current` reads it again when needed
        let updated = repo
            .update_from(id, current, |exec: &mut Execution| {
                executor.restart(exec, now)
            })
            .await
            .map_err(|e| match e {
                weft_store::repo::UpdateError::Aborted(e) => RunError::InvalidState(e.to_string()),
                weft_store::repo::UpdateError::Repo(e) => storage(e),
            })?;
        live.head_size = updated.size;
        live.done = false;
        let snapshot = updated.value.clone();
        live.current = Some(Versioned {
            value: updated.value,
            version: updated.version,
        });
        self.pending
            .entry(id.to_string())
            .or_default()
            .push(Event::Start { running: 0 });
        Ok(snapshot)
    }

    /// Replays a terminated execution from its task run `task_run_id`: a new execution, in
    /// RESTARTED when this returns (the returned document), that runs at the next
    /// [`Session::drive_until`].
    pub async fn replay(&mut self, id: &str, task_run_id: &str) -> Result<Execution, RunError> {
        let runner = self.runner;
        let Some(current) = self.lives.get(id).and_then(|l| l.current.as_ref()) else {
            return Err(RunError::Storage(format!(
                "no execution {id} in this session"
            )));
        };
        let executor = self.lives[id].executor.clone();
        let exec = executor
            .replay(
                &current.value,
                task_run_id,
                rand::random::<u64>(),
                Utc::now(),
            )
            .map_err(|e| RunError::InvalidState(e.to_string()))?;
        let files = runner.files_of(&exec)?;
        let snapshot = exec.clone();
        let new_id = exec.id.clone();
        runner
            .create(&mut self.lives, executor, exec, files, None)
            .await
            .map_err(|e| e.into_run(&new_id))?;
        self.pending
            .entry(new_id)
            .or_default()
            .push(Event::Start { running: 0 });
        Ok(snapshot)
    }
}
