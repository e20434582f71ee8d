//! The typed flow model, with Kestra's JSON field names.
//!
//! A flow is first checked on its YAML nodes (see `parse`), then read into these types through
//! serde. Type-specific task properties stay as JSON in [`Task::properties`]: the executor reads
//! the ones of flowable tasks, plugins receive the ones of runnable tasks.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A flow: `id`, `namespace`, `tasks` and everything else a Kestra flow may have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    /// `id: my-flow`
    pub id: String,
    /// `namespace: company.team`
    pub namespace: String,
    /// `revision: 3` (set by the repository on save).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// `description: ...`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `disabled: true` stops new executions.
    #[serde(default)]
    pub disabled: bool,
    /// Set on a deleted flow's last revision.
    #[serde(default)]
    pub deleted: bool,
    /// `labels: {team: data}` or `labels: [{key: team, value: data}]`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// `inputs: [{id: name, type: STRING}]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    /// `outputs: [{id: result, type: STRING, value: "{{ outputs.t.value }}"}]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<FlowOutput>,
    /// `variables: {key: value}`, rendered when used.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, Json>,
    /// `tasks: [...]`
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// `errors: [...]`, run when a task fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Task>,
    /// `finally: [...]`, always run at the end.
    #[serde(default, rename = "finally", skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<Task>,
    /// `afterExecution: [...]`, run once the execution is terminated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_execution: Vec<Task>,
    /// `listeners: [{conditions, tasks}]` (legacy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// `triggers: [...]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// `pluginDefaults: [{type, forced, values}]` (legacy name `taskDefaults`).
    #[serde(default, alias = "taskDefaults", skip_serializing_if = "Vec::is_empty")]
    pub plugin_defaults: Vec<PluginDefault>,
    /// `retry: {type: constant, ...}` for the whole flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// `concurrency: {limit: 1, behavior: QUEUE}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// `sla: [...]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla: Vec<Sla>,
    /// `timeout: PT1H` for the whole execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `workerGroup` (accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_group: Option<Json>,
}

/// Labels, always kept as a list of `{key, value}` (Kestra normalises maps to this).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Labels(pub Vec<Label>);

impl Labels {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of a label.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(d)?;
        Labels::from_json(&json).map_err(serde::de::Error::custom)
    }
}

impl Labels {
    /// Reads labels from a map or a list of `{key, value}`.
    pub fn from_json(json: &Json) -> Result<Self, String> {
        let text = |v: &Json| match v {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        };
        match json {
            Json::Null => Ok(Labels::default()),
            Json::Object(m) => Ok(Labels(
                m.iter()
                    .map(|(k, v)| Label {
                        key: k.clone(),
                        value: text(v),
                    })
                    .collect(),
            )),
            Json::Array(items) => items
                .iter()
                .map(|it| {
                    let key = it.get("key").map(text).ok_or("a label needs a `key`")?;
                    let value = it.get("value").map(text).unwrap_or_default();
                    Ok(Label { key, value })
                })
                .collect::<Result<_, String>>()
                .map(Labels),
            _ => Err("labels must be a map or a list of {key, value}".into()),
        }
    }
}

/// A task: common properties typed, the type's own properties as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// `id: my-task`
    pub id: String,
    /// `type: io.kestra.plugin.core.log.Log` (as written; see `Registry::canonical_task_type`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// `description: ...`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `disabled: true`: the task is skipped entirely (no task run).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// `runIf: "{{ expression }}"`: when false the task run is SKIPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_if: Option<String>,
    /// `timeout: PT10M`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `retry: {type: constant, interval: PT1S, maxAttempt: 3}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// `allowFailure: true`: a failure makes the execution WARNING, not FAILED.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_failure: bool,
    /// `allowWarning: true`: a warning counts as success.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_warning: bool,
    /// `logLevel: INFO`: the least level of logs kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// `logToFile: true`
    #[serde(default, skip_serializing_if = "is_false")]
    pub log_to_file: bool,
    /// `workerGroup` (accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_group: Option<Json>,
    /// The type's own properties (`format`, `tasks`, `values`, ...), in source order.
    #[serde(flatten)]
    pub properties: IndexMap<String, Json>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Task {
    /// A property of the task's type.
    pub fn prop(&self, name: &str) -> Option<&Json> {
        self.properties.get(name).filter(|v| !v.is_null())
    }

    /// A list of tasks held in a property (`tasks`, `then`, `errors`, ...); empty when absent.
    pub fn subtasks(&self, name: &str) -> Result<Vec<Task>, serde_json::Error> {
        match self.prop(name) {
            None => Ok(Vec::new()),
            Some(v) => Vec::<Task>::deserialize(v),
        }
    }
}

/// A flow input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// `id: name` (legacy `name:` is read into it).
    #[serde(alias = "name")]
    pub id: String,
    /// `type: STRING`
    #[serde(rename = "type")]
    pub type_name: String,
    /// `description`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `displayName`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `required` (default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// `defaults`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Json>,
    /// `dependsOn: {inputs: [..], condition: "{{ }}"}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Json>,
    /// Type-specific properties (`validator`, `min`, `max`, `after`, `before`, `values`, `itemType`, ...).
    #[serde(flatten)]
    pub properties: IndexMap<String, Json>,
}

fn yes() -> bool {
    true
}

/// A flow output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowOutput {
    /// `id`
    pub id: String,
    /// `type` (an input type name).
    #[serde(rename = "type")]
    pub type_name: String,
    /// `value: "{{ outputs.t.value }}"`
    pub value: Json,
    /// `description`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `displayName`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `required` (default true).
    #[serde(default = "yes")]
    pub required: bool,
}

/// A legacy listener: tasks run at the end when conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// `description`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `conditions`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `tasks`
    #[serde(default)]
    pub tasks: Vec<Task>,
}

/// A trigger: common properties typed, the rest as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `id`
    pub id: String,
    /// `type`
    #[serde(rename = "type")]
    pub type_name: String,
    /// `description`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `disabled`
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// `conditions`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `stopAfter: [FAILED]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_after: Vec<String>,
    /// The type's own properties (`cron`, `key`, `preconditions`, ...).
    #[serde(flatten)]
    pub properties: IndexMap<String, Json>,
}

/// A condition: its type and properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// `type`
    #[serde(rename = "type")]
    pub type_name: String,
    /// Everything else.
    #[serde(flatten)]
    pub properties: IndexMap<String, Json>,
}

/// `pluginDefaults` entry: default property values for every task whose type starts with `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginDefault {
    /// A type name or prefix (`io.kestra.plugin.core.log`).
    #[serde(rename = "type")]
    pub type_prefix: String,
    /// Forced values override the task's own.
    #[serde(default)]
    pub forced: bool,
    /// The values.
    #[serde(default)]
    pub values: IndexMap<String, Json>,
}

/// A retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// `constant`, `exponential` or `random`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Most attempts in all (the first included).
    #[serde(
        default,
        alias = "maxAttempts",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempt: Option<u32>,
    /// Longest time spent retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Mark the task WARNING when it succeeded only after a retry.
    #[serde(default, skip_serializing_if = "is_false")]
    pub warning_on_retry: bool,
    /// `RETRY_FAILED_TASK` (default) or `CREATE_NEW_EXECUTION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    /// constant / exponential: the (first) delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// exponential / random: the longest delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    /// random: the shortest delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval: Option<String>,
    /// exponential: the growth factor (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_factor: Option<f64>,
}

/// Flow concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concurrency {
    /// Most executions running at once.
    pub limit: u32,
    /// `QUEUE` (default), `CANCEL` or `FAIL`.
    #[serde(default = "queue")]
    pub behavior: String,
}

fn queue() -> String {
    "QUEUE".into()
}

/// An SLA of the flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sla {
    /// `id`
    pub id: String,
    /// `MAX_DURATION` or `EXECUTION_ASSERTION`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `FAIL`, `CANCEL` or `NONE`.
    pub behavior: String,
    /// `labels` added when the SLA is violated.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Everything else (`duration`, `assert`).
    #[serde(flatten)]
    pub properties: IndexMap<String, Json>,
}
