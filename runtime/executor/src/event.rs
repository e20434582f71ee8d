//! What `advance` reacts to: a start, worker results, timers, subflow ends, kill, resume, restart.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::state::State;

/// Something that happened to an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// Start (or dequeue, or continue after a restart). `running` is the number of other
    /// executions of the same flow running now, for the flow's `concurrency` limit.
    Start {
        /// Other running executions of the flow.
        #[serde(default)]
        running: u32,
    },
    /// A worker finished an attempt.
    WorkerResult(WorkerResult),
    /// A timer asked for with [`crate::Effect::WakeAt`] is due.
    Timer(Timer),
    /// A subflow execution started by a Subflow task ended.
    SubflowEnded {
        /// The Subflow task run.
        task_run_id: String,
        /// The subflow execution.
        execution_id: String,
        /// Its final state.
        state: State,
        /// Its flow outputs.
        #[serde(default)]
        outputs: Option<Map<String, Json>>,
    },
    /// Kill the execution and everything running in it.
    Kill,
    /// Resume the paused task runs, with the `onResume` inputs (already typed and validated).
    Resume {
        /// `onResume` inputs.
        #[serde(default)]
        inputs: Map<String, Json>,
    },
    /// Restart a failed execution (same id): failed task runs get a new attempt.
    Restart,
    /// This driver takes the execution over from one that stopped (its lease expired): ask
    /// again for the attempts still running, the subflow executions awaited and every timer
    /// (see `advance/recover.rs`). A CREATED or RESTARTED execution starts.
    Recover,
}

/// The outcome of one attempt of a runnable task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerResult {
    /// The task run.
    pub task_run_id: String,
    /// The attempt number (1-based) from the [`crate::effect::RunTask`] effect.
    pub attempt: u32,
    /// SUCCESS, WARNING or FAILED (KILLED when the worker killed it).
    pub state: State,
    /// Outputs.
    #[serde(default)]
    pub outputs: Map<String, Json>,
    /// Metrics.
    #[serde(default)]
    pub metrics: Vec<Json>,
    /// Log file URI.
    #[serde(default)]
    pub log_file: Option<String>,
    /// For a task inside a WorkingDirectory with `outputFiles`: the outputs of the
    /// WorkingDirectory task run as the directory stands after this attempt (`outputFiles`: file
    /// name -> URI). The last successful attempt's wins.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub working_directory_outputs: Map<String, Json>,
}

/// A timer: which task run (none for the execution itself), what for, and which attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    /// The task run concerned.
    #[serde(default)]
    pub task_run_id: Option<String>,
    /// What the timer is for.
    pub kind: TimerKind,
    /// The attempt (Retry: the attempt to start; Timeout: the attempt to fail) or iteration
    /// (WaitFor: the iteration to start).
    #[serde(default)]
    pub number: u32,
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimerKind {
    /// Start the next attempt of a task waiting in RETRYING.
    Retry,
    /// Fail an attempt that ran longer than the task's `timeout`.
    Timeout,
    /// End the `delay`/`pauseDuration` of a Pause task.
    PauseDelay,
    /// End the `timeout` of a Pause task.
    PauseTimeout,
    /// Start the next iteration of a WaitFor task.
    WaitForNext,
    /// The flow's `timeout`.
    ExecutionTimeout,
    /// A MAX_DURATION `sla` of the flow (`number` is its position).
    Sla,
    /// The `scheduleDate` of a CREATED execution came: start it (a driver may send
    /// [`Event::Start`] instead, with the count of running executions).
    Start,
}
