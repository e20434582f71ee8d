//! What a task attempt produces: outputs or a typed failure, plus logs, metrics and files.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::format_duration;

/// A log level, as Kestra's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// TRACE
    Trace,
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARN
    Warn,
    /// ERROR
    Error,
}

impl Level {
    /// Parses Kestra's level name (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`), in any case.
    pub fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_uppercase().as_str() {
            "TRACE" => Some(Level::Trace),
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" | "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            _ => None,
        }
    }

    /// The level's name as Kestra writes it (`INFO`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One log line of an attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Level.
    pub level: Level,
    /// The message.
    pub message: String,
}

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A counter: `value` is added.
    Counter,
    /// A timer: `value` is one duration in seconds.
    Timer,
}

/// One metric sample of an attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Name.
    pub name: String,
    /// Counter or timer.
    #[serde(rename = "type")]
    pub kind: MetricKind,
    /// Counter increment, or timer duration in seconds.
    pub value: f64,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// An error the plugin itself returned (`task-error` of the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum TaskError {
    /// A property is missing or has the wrong shape.
    #[error("invalid properties: {0}")]
    InvalidProperties(String),
    /// Rendering an expression failed.
    #[error("render: {0}")]
    Render(String),
    /// Internal storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// An HTTP call failed.
    #[error("http: {0}")]
    Http(String),
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
}

/// Why an attempt did not succeed. Each limit has its own variant; tests match on variants,
/// never on text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttemptFailure {
    /// No loaded plugin provides this task type.
    #[error(
        "unknown task type {type_name}: no loaded plugin provides it (see `weft plugins list`)"
    )]
    UnknownType {
        /// The type asked for.
        type_name: String,
    },
    /// The wall-time limit (the task's `timeout`) was reached.
    #[error("timeout after {}", format_duration(*after))]
    Timeout {
        /// The limit.
        after: Duration,
    },
    /// The fuel (CPU) budget ran out.
    #[error("fuel exhausted (budget {budget})")]
    FuelExhausted {
        /// The budget.
        budget: u64,
    },
    /// The guest tried to grow its memory past the limit.
    #[error("memory limit {} MiB", limit_bytes >> 20)]
    MemoryLimit {
        /// The limit.
        limit_bytes: u64,
    },
    /// The outputs JSON is larger than the cap.
    #[error("outputs of {size} bytes exceed the limit of {limit} bytes")]
    OutputTooLarge {
        /// Size of the outputs.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The guest called `exit`.
    #[error("the plugin exited with code {0}")]
    Exited(i32),
    /// The guest trapped (a panic, `unreachable`, out-of-bounds access, ...).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// The plugin returned an error.
    #[error("{0}")]
    Task(TaskError),
    /// The plugin returned outputs that are not a JSON object.
    #[error("the plugin returned invalid outputs: {0}")]
    InvalidOutputs(String),
    /// The attempt could not start (instantiation failed).
    #[error("the plugin could not be started: {0}")]
    Instantiate(String),
}

impl AttemptFailure {
    /// A short, stable name of the variant, for metrics and logs: `unknown_type`, `timeout`,
    /// `fuel_exhausted`, `memory_limit`, `output_too_large`, `exited`, `trap`, `task_error`,
    /// `invalid_outputs`, `instantiate`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownType { .. } => "unknown_type",
            Self::Timeout { .. } => "timeout",
            Self::FuelExhausted { .. } => "fuel_exhausted",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::Exited(_) => "exited",
            Self::Trap(_) => "trap",
            Self::Task(_) => "task_error",
            Self::InvalidOutputs(_) => "invalid_outputs",
            Self::Instantiate(_) => "instantiate",
        }
    }

    /// Whether the failure is a limit of the sandbox (rather than the task's own error).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::FuelExhausted { .. }
                | Self::MemoryLimit { .. }
                | Self::OutputTooLarge { .. }
        )
    }
}

/// Everything one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// The outputs (a JSON object), or why the attempt failed.
    pub result: Result<serde_json::Value, AttemptFailure>,
    /// Log lines, in order (plugin logs, then captured stdout/stderr).
    pub logs: Vec<LogLine>,
    /// Log lines dropped past the cap.
    pub logs_dropped: u64,
    /// Metric samples.
    pub metrics: Vec<Metric>,
    /// Output files reported by the plugin: name -> `kestra:///...` URI.
    pub output_files: BTreeMap<String, String>,
    /// Fuel consumed (0 when fuel is not counted).
    pub fuel_used: u64,
    /// Wall time of the attempt, instantiation included.
    pub duration: Duration,
}

impl AttemptOutcome {
    /// An attempt that did not run: it failed with `failure` before the plugin started (e.g. its
    /// working directory could not be set up).
    pub fn not_run(failure: AttemptFailure) -> Self {
        AttemptOutcome {
            result: Err(failure),
            logs: Vec::new(),
            logs_dropped: 0,
            metrics: Vec::new(),
            output_files: BTreeMap::new(),
            fuel_used: 0,
            duration: Duration::ZERO,
        }
    }
}
