//! Running one attempt: a fresh `Store` with its limits, the call, and the one function that
//! maps every way an attempt can end to an [`AttemptFailure`] (STYLE.md pattern 6).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::bindings::TaskPre;
use crate::bindings::weft::plugin::types as wit;
use crate::config::Limits;
use crate::engine::Engine;
use crate::host::{MemoryHost, TaskHost};
use crate::http::AllowList;
use crate::outcome::{AttemptFailure, AttemptOutcome, Level, TaskError};
use crate::registry::Registry;
use crate::state::{AttemptState, MemoryLimitExceeded, MemoryLimiter};

/// Where an attempt runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContext {
    /// Namespace of the flow.
    pub namespace: String,
    /// Flow id.
    pub flow_id: String,
    /// Execution id.
    pub execution_id: String,
    /// Task id.
    pub task_id: String,
    /// Task run id.
    pub task_run_id: String,
    /// Attempt number, from 1.
    pub attempt: u32,
}

impl TaskContext {
    /// A context for examples and tests.
    pub fn example() -> Self {
        Self {
            namespace: "weft.examples".into(),
            flow_id: "example".into(),
            execution_id: "exec1".into(),
            task_id: "task1".into(),
            task_run_id: "run1".into(),
            attempt: 1,
        }
    }
}

/// One task attempt to run.
#[derive(Clone)]
pub struct AttemptRequest {
    /// The task type (a name or an alias).
    pub task_type: String,
    /// The task's properties, not rendered (common properties such as `id` or `timeout` may be
    /// left in: plugins ignore them).
    pub properties: Value,
    /// Where it runs.
    pub context: TaskContext,
    /// Variables for rendering expressions, passed to [`TaskHost::render`].
    pub variables: Arc<Value>,
    /// Wall-time limit (the task's `timeout`); `None` is the engine's default. Capped by the
    /// engine's maximum.
    pub timeout: Option<Duration>,
    /// Limits; `None` is the engine's defaults.
    pub limits: Option<Limits>,
    /// Hosts the task may call over HTTP.
    pub allow_list: AllowList,
    /// The least level of the log lines kept (the task's `logLevel`); `None` keeps every line.
    pub min_log_level: Option<Level>,
    /// Rendering and file storage.
    pub host: Arc<dyn TaskHost>,
    /// A host folder the plugin may read and write, seen by the guest as `/` (a WorkingDirectory's
    /// scratch directory); `None`: no file system at all.
    pub work_dir: Option<PathBuf>,
}

impl std::fmt::Debug for AttemptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptRequest")
            .field("task_type", &self.task_type)
            .field("properties", &self.properties)
            .field("context", &self.context)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .field("allow_list", &self.allow_list)
            .field("min_log_level", &self.min_log_level)
            .field("work_dir", &self.work_dir)
            .finish()
    }
}

impl AttemptRequest {
    /// A request with no variables, the default timeout and limits, and an empty allow-list.
    pub fn new(
        task_type: impl Into<String>,
        properties: Value,
        context: TaskContext,
        host: Arc<dyn TaskHost>,
    ) -> Self {
        Self {
            task_type: task_type.into(),
            properties,
            context,
            variables: Arc::new(Value::Object(Default::default())),
            timeout: None,
            limits: None,
            allow_list: AllowList::default(),
            min_log_level: None,
            host,
            work_dir: None,
        }
    }

    /// Set the variables for rendering.
    pub fn with_variables(mut self, variables: Value) -> Self {
        self.variables = Arc::new(variables);
        self
    }

    /// Set the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Set the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Drops the log lines below `level` (Kestra's task `logLevel`): they are neither kept nor
    /// counted against the log caps.
    pub fn with_min_log_level(mut self, level: Level) -> Self {
        self.min_log_level = Some(level);
        self
    }

    /// Grants the plugin the host folder `dir`, read-write, as its `/` (and working directory):
    /// the only file system it sees.
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// Set the HTTP allow-list.
    pub fn with_allow_list(mut self, allow_list: AllowList) -> Self {
        self.allow_list = allow_list;
        self
    }
}

/// Extra time the outer tokio timeout gives the epoch deadline before dropping the call (a guest
/// blocked in a host call does not see epochs).
const GRACE: Duration = Duration::from_millis(100);

/// What a fresh `Store` is made of.
struct StoreSetup {
    ctx: TaskContext,
    variables: Arc<Value>,
    host: Arc<dyn TaskHost>,
    allow: AllowList,
    limits: Limits,
    timeout: Duration,
    work_dir: Option<PathBuf>,
}

fn new_store(engine: &Engine, setup: StoreSetup) -> Result<Store<AttemptState>, String> {
    let StoreSetup {
        ctx,
        variables,
        host,
        allow,
        limits,
        timeout,
        work_dir,
    } = setup;
    let stdout = MemoryOutputPipe::new(limits.max_stdio_bytes);
    let stderr = MemoryOutputPipe::new(limits.max_stdio_bytes);
    // Deny by default: no environment, no arguments, no sockets, no preopened directories but
    // the attempt's working directory when it has one; only clocks and randomness, and
    // stdout/stderr captured.
    let mut wasi = WasiCtx::builder();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(dir) = &work_dir {
        wasi.preopened_dir(dir, "/", FsPerms::ReadWrite)
            .map_err(|e| format!("working directory {}: {e:#}", dir.display()))?;
    }
    let wasi = wasi.build();
    let fuel = limits.fuel;
    let state = AttemptState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            limit: limits.memory_bytes,
            hit: false,
        },
        deadline: Instant::now() + timeout,
        ctx,
        variables,
        host,
        http: engine.inner.http.clone(),
        allow,
        limits,
        min_log_level: None,
        logs: Vec::new(),
        log_bytes: 0,
        logs_dropped: 0,
        metrics: Vec::new(),
        output_files: BTreeMap::new(),
        stdout,
        stderr,
    };
    let mut store = Store::new(&engine.inner.wasmtime, state);
    store.limiter(|s| &mut s.limiter);
    if engine.inner.config.consume_fuel {
        store
            .set_fuel(fuel.unwrap_or(u64::MAX))
            .map_err(|e| e.to_string())?;
    }
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|cx| {
        if Instant::now() >= cx.data().deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(store)
}

/// Call `describe` on a fresh instance.
pub(crate) async fn describe(
    engine: &Engine,
    pre: &TaskPre<AttemptState>,
) -> Result<wit::PluginInfo, String> {
    let mut store = new_store(
        engine,
        StoreSetup {
            ctx: TaskContext::example(),
            variables: Arc::new(Value::Null),
            host: Arc::new(MemoryHost::new()),
            allow: AllowList::default(),
            limits: engine.inner.config.limits.clone(),
            timeout: Duration::from_secs(10),
            work_dir: None,
        },
    )?;
    let call = async {
        let task = pre.instantiate_async(&mut store).await?;
        task.weft_plugin_plugin().call_describe(&mut store).await
    };
    match tokio::time::timeout(Duration::from_secs(10) + GRACE, call).await {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("timed out after 10 s".into()),
    }
}

/// How the call ended, before mapping.
enum Ended {
    Returned(Result<String, wit::TaskError>),
    Error(wasmtime::Error, bool),
    OuterTimeout,
}

impl Registry {
    /// Run one attempt of a task in a fresh store. Never panics and never fails as a whole:
    /// every failure is in the outcome's `result`.
    pub async fn run_attempt(&self, req: AttemptRequest) -> AttemptOutcome {
        let start = Instant::now();
        let engine = &self.engine;
        let cfg = &engine.inner.config;
        let Some(plugin) = self.plugin_for(&req.task_type).cloned() else {
            return bare(
                start,
                AttemptFailure::UnknownType {
                    type_name: req.task_type,
                },
            );
        };
        let timeout = req
            .timeout
            .unwrap_or(cfg.default_timeout)
            .min(cfg.max_timeout);
        let mut limits = req.limits.unwrap_or_else(|| cfg.limits.clone());
        limits.memory_bytes = limits.memory_bytes.min(cfg.max_memory_bytes);
        let fuel_budget = limits.fuel.unwrap_or(u64::MAX);
        let max_output = limits.max_output_bytes;
        let wctx = wit::TaskContext {
            namespace: req.context.namespace.clone(),
            flow_id: req.context.flow_id.clone(),
            execution_id: req.context.execution_id.clone(),
            task_id: req.context.task_id.clone(),
            task_run_id: req.context.task_run_id.clone(),
            attempt: req.context.attempt,
            task_type: req.task_type.clone(),
        };
        let props = req.properties.to_string();
        let allow_list = req
            .allow_list
            .union(&cfg.http_allow_for(&req.context.namespace));
        let mut store = match new_store(
            engine,
            StoreSetup {
                ctx: req.context,
                variables: req.variables,
                host: req.host,
                allow: allow_list,
                limits,
                timeout,
                work_dir: req.work_dir,
            },
        ) {
            Ok(s) => s,
            Err(e) => return bare(start, AttemptFailure::Instantiate(e)),
        };
        store.data_mut().min_log_level = req.min_log_level;
        let call = async {
            let task = match plugin.pre.instantiate_async(&mut store).await {
                Ok(t) => t,
                Err(e) => return Ended::Error(e, true),
            };
            match task
                .weft_plugin_plugin()
                .call_run(&mut store, &wctx, &props)
                .await
            {
                Ok(r) => Ended::Returned(r),
                Err(e) => Ended::Error(e, false),
            }
        };
        let ended = match tokio::time::timeout(timeout + GRACE, call).await {
            Ok(e) => e,
            Err(_) => Ended::OuterTimeout,
        };
        let fuel_used = if cfg.consume_fuel {
            store
                .get_fuel()
                .map(|left| fuel_budget.saturating_sub(left))
                .unwrap_or(0)
        } else {
            0
        };
        let result = map_outcome(ended, store.data(), timeout, fuel_budget, max_output);
        let mut state = store.into_data();
        let stdout = state.stdout.contents();
        let stderr = state.stderr.contents();
        for (bytes, level) in [(stdout, Level::Info), (stderr, Level::Warn)] {
            for line in String::from_utf8_lossy(&bytes).lines() {
                if !line.is_empty() {
                    state.push_log(level, line.to_string());
                }
            }
        }
        if state.logs_dropped > 0 {
            let note = format!(
                "{} log lines dropped: the attempt's log cap ({} lines, {} bytes) was reached",
                state.logs_dropped, state.limits.max_log_lines, state.limits.max_log_bytes
            );
            state.logs.push(crate::outcome::LogLine {
                timestamp_ms: crate::state::now_ms(),
                level: Level::Warn,
                message: note,
            });
        }
        AttemptOutcome {
            result,
            logs: state.logs,
            logs_dropped: state.logs_dropped,
            metrics: state.metrics,
            output_files: state.output_files,
            fuel_used,
            duration: start.elapsed(),
        }
    }
}

fn bare(start: Instant, failure: AttemptFailure) -> AttemptOutcome {
    AttemptOutcome {
        duration: start.elapsed(),
        ..AttemptOutcome::not_run(failure)
    }
}

/// The one place where the end of an attempt becomes outputs or a typed failure.
fn map_outcome(
    ended: Ended,
    state: &AttemptState,
    timeout: Duration,
    fuel_budget: u64,
    max_output: usize,
) -> Result<Value, AttemptFailure> {
    match ended {
        Ended::OuterTimeout => Err(AttemptFailure::Timeout { after: timeout }),
        Ended::Returned(Err(e)) => Err(AttemptFailure::Task(match e {
            wit::TaskError::InvalidProperties(m) => TaskError::InvalidProperties(m),
            wit::TaskError::Render(m) => TaskError::Render(m),
            wit::TaskError::Storage(m) => TaskError::Storage(m),
            wit::TaskError::Http(m) => TaskError::Http(m),
            wit::TaskError::Failed(m) => TaskError::Failed(m),
        })),
        Ended::Returned(Ok(json)) => {
            if json.len() > max_output {
                return Err(AttemptFailure::OutputTooLarge {
                    size: json.len(),
                    limit: max_output,
                });
            }
            match serde_json::from_str::<Value>(&json) {
                Ok(v @ Value::Object(_)) => Ok(v),
                Ok(other) => Err(AttemptFailure::InvalidOutputs(format!(
                    "expected a JSON object, got {}",
                    truncate(&other.to_string(), 200)
                ))),
                Err(e) => Err(AttemptFailure::InvalidOutputs(e.to_string())),
            }
        }
        Ended::Error(err, instantiating) => {
            if state.limiter.hit || err.downcast_ref::<MemoryLimitExceeded>().is_some() {
                return Err(AttemptFailure::MemoryLimit {
                    limit_bytes: state.limiter.limit,
                });
            }
            if let Some(trap) = err.downcast_ref::<Trap>() {
                return Err(match trap {
                    Trap::Interrupt => AttemptFailure::Timeout { after: timeout },
                    Trap::OutOfFuel => AttemptFailure::FuelExhausted {
                        budget: fuel_budget,
                    },
                    other => AttemptFailure::Trap(with_panic(other.to_string(), state)),
                });
            }
            if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Err(AttemptFailure::Exited(exit.0));
            }
            let msg = format!("{err:#}");
            if instantiating {
                Err(AttemptFailure::Instantiate(msg))
            } else {
                Err(AttemptFailure::Trap(with_panic(msg, state)))
            }
        }
    }
}

/// Add the guest's panic message (Rust guests print it to stderr before aborting).
fn with_panic(trap: String, state: &AttemptState) -> String {
    let stderr = state.stderr.contents();
    let text = String::from_utf8_lossy(&stderr);
    let panic = text
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    if panic.is_empty() {
        trap
    } else {
        format!("{trap} ({})", truncate(&panic, 500))
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
