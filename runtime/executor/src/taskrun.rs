//! A task run: one run of one task (one per loop value), with its attempts and outputs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::state::StateInfo;

/// One run of one task, as Kestra serialises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRun {
    /// 22-character base62 id.
    pub id: String,
    /// The execution it belongs to.
    pub execution_id: String,
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub flow_id: String,
    /// The task's id.
    pub task_id: String,
    /// The flowable task run it runs under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_run_id: Option<String>,
    /// The loop value (`taskrun.value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The loop iteration (`taskrun.iteration`), 0-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// Attempts of a runnable task; `None` for flowable tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
    /// Outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Map<String, Json>>,
    /// State and history.
    pub state: StateInfo,
    /// weft: the values a loop task (ForEach, EachSequential, EachParallel) resolved when it
    /// started; its iterations are created from them one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_values: Option<Vec<String>>,
}

impl TaskRun {
    /// The number of attempts.
    pub fn attempt_count(&self) -> usize {
        self.attempts.as_ref().map_or(0, Vec::len)
    }

    /// The last attempt.
    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.as_ref().and_then(|a| a.last())
    }
}

/// One attempt of a runnable task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// State and history.
    pub state: StateInfo,
    /// Metrics the task reported (`{name, type, value, tags}`).
    #[serde(default)]
    pub metrics: Vec<Json>,
    /// URI of the attempt's log file, when the task logs to a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
}
