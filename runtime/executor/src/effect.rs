//! What `advance` asks its driver to do: run attempts, wake it up, start or kill subflow
//! executions, and know that the execution ended.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use weft_flow::model::Label;

use crate::event::Timer;
use crate::state::State;

/// One thing for the driver to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Effect {
    /// Run one attempt of a runnable task, then send a [`crate::Event::WorkerResult`].
    RunTask(Box<RunTask>),
    /// Send [`crate::Event::Timer`] with `timer` at or after `at`.
    WakeAt {
        /// When.
        at: DateTime<Utc>,
        /// The timer to send back.
        timer: Timer,
    },
    /// Stop an attempt still running (killed, timed out); its result will be ignored.
    CancelTask {
        /// The task run.
        task_run_id: String,
        /// The attempt.
        attempt: u32,
    },
    /// Create and start a subflow execution; when `wait`, send [`crate::Event::SubflowEnded`]
    /// once it has ended.
    StartSubflow(Box<StartSubflow>),
    /// Kill a subflow execution started by this one.
    KillExecution {
        /// The subflow execution.
        execution_id: String,
    },
    /// Create a new execution of the same flow (retry behaviour CREATE_NEW_EXECUTION) at `at`.
    CreateRetryExecution {
        /// When to start it.
        at: DateTime<Utc>,
        /// Its [`crate::ExecutionMetadata::attempt_number`].
        attempt_number: u32,
    },
    /// A log line of a task the executor ran itself (Fail, a failed expression, ...).
    Log {
        /// The task run, if any.
        task_run_id: Option<String>,
        /// TRACE, DEBUG, INFO, WARN or ERROR.
        level: String,
        /// The message.
        message: String,
    },
    /// The execution reached a terminal state.
    Terminated {
        /// Its state.
        state: State,
    },
}

/// One attempt of a runnable task to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTask {
    /// The execution.
    pub execution_id: String,
    /// The task run.
    pub task_run_id: String,
    /// The attempt number (1-based).
    pub attempt: u32,
    /// The task's id.
    pub task_id: String,
    /// The canonical type name (`io.kestra.plugin.core.log.Log`).
    pub task_type: String,
    /// The task's own properties after `pluginDefaults`, not rendered.
    pub properties: Map<String, Json>,
    /// What the plugin renders its properties with: `inputs`, `outputs`, `vars`, `execution`,
    /// `flow`, `task`, `taskrun`, `parent`, `parents`, `trigger`, `labels` (+ the driver's globals).
    pub context: Json,
    /// The seed for `uuid()`/`randomInt()` while rendering.
    pub seed: u64,
    /// The task's `timeout`, if any (the executor also sets a timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<weft_flow::duration::Duration>,
    /// Set inside a WorkingDirectory: its task run id (one scratch directory, one worker) and
    /// its properties (`inputFiles`, `outputFiles`, `cache`, `namespaceFiles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<WorkingDirectory>,
    /// `logLevel` of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

/// The WorkingDirectory a task runs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkingDirectory {
    /// The WorkingDirectory task run: tasks with the same id share a directory and a worker.
    pub task_run_id: String,
    /// The WorkingDirectory task's id.
    #[serde(default)]
    pub task_id: String,
    /// Whether this task is the first of the directory (set it up: inputFiles, cache).
    pub first: bool,
    /// The WorkingDirectory task's properties, not rendered.
    pub properties: Map<String, Json>,
}

/// A subflow execution to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartSubflow {
    /// The Subflow task run.
    pub task_run_id: String,
    /// The id to give the new execution.
    pub execution_id: String,
    /// The subflow's namespace.
    pub namespace: String,
    /// The subflow's id.
    pub flow_id: String,
    /// A revision, or the latest.
    pub revision: Option<u32>,
    /// Rendered inputs.
    pub inputs: Map<String, Json>,
    /// Labels of the new execution (inherited, given, and the correlation id).
    pub labels: Vec<Label>,
    /// Whether the Subflow task waits for the end.
    pub wait: bool,
    /// The new execution's `parentId`.
    pub parent_id: String,
    /// The new execution's `trigger`.
    pub trigger: Json,
    /// When to schedule it, if later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_date: Option<DateTime<Utc>>,
}
