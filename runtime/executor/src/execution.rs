//! An execution: one run of one flow revision, with Kestra's JSON shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use weft_flow::Flow;
use weft_flow::model::Label;

use crate::chunks::Archive;
use crate::index::IndexSlot;
use crate::state::{State, StateInfo};
use crate::taskrun::TaskRun;

/// The label every execution carries: the id of the execution that started the whole tree.
pub const CORRELATION_LABEL: &str = "system.correlationId";

/// One run of one flow revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// 22-character base62 id.
    pub id: String,
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub flow_id: String,
    /// The flow revision it runs.
    pub flow_revision: u32,
    /// Typed inputs.
    #[serde(default)]
    pub inputs: Map<String, Json>,
    /// Flow outputs, once terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Map<String, Json>>,
    /// Labels (flow labels, labels given at creation, `system.correlationId`, Labels tasks).
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Variables given at creation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Map<String, Json>>,
    /// What started it (`{id, type, variables}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Json>,
    /// The execution that started this one (Subflow) or that it replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The first execution of a chain of restarts and replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_id: Option<String>,
    /// State and history.
    pub state: StateInfo,
    /// Every task run, in creation order. Changed only by `advance`, `restart` and `replay`; after
    /// editing it by hand, call [`Execution::invalidate_index`].
    #[serde(default)]
    pub task_run_list: Vec<TaskRun>,
    /// Retry bookkeeping across executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ExecutionMetadata>,
    /// When a CREATED execution may start at the earliest (a retry in a new execution waits for
    /// its retry interval); a start before then waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_date: Option<DateTime<Utc>>,
    /// Indexes beside the task-run list, rebuilt on load.
    #[serde(skip)]
    pub(crate) index: IndexSlot,
    /// Where each task run is stored (head or chunk; see [`crate::chunks`]). Read from a head's
    /// `weftChunks`, never part of Kestra's JSON.
    #[serde(default, rename = "weftChunks", skip_serializing)]
    pub(crate) archive: Archive,
}

impl PartialEq for Execution {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.namespace == other.namespace
            && self.flow_id == other.flow_id
            && self.flow_revision == other.flow_revision
            && self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.labels == other.labels
            && self.variables == other.variables
            && self.trigger == other.trigger
            && self.parent_id == other.parent_id
            && self.original_id == other.original_id
            && self.state == other.state
            && self.task_run_list == other.task_run_list
            && self.metadata == other.metadata
            && self.schedule_date == other.schedule_date
    }
}

/// Kestra's execution metadata: which attempt of a flow retried in new executions this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionMetadata {
    /// 1 for the first execution, 2 for its first retry, ...
    pub attempt_number: u32,
    /// When the first execution of the chain was created.
    pub original_created_date: DateTime<Utc>,
}

impl Execution {
    /// A new execution of `flow` in state CREATED, with id `id` (see [`crate::ids::execution_id`]),
    /// the flow's labels, then the `system.correlationId` label (last, as in Kestra).
    pub fn new(flow: &Flow, id: String, now: DateTime<Utc>) -> Self {
        let mut labels: Vec<Label> = Vec::new();
        for l in &flow.labels.0 {
            upsert_label(&mut labels, l.clone());
        }
        upsert_label(
            &mut labels,
            Label {
                key: CORRELATION_LABEL.to_string(),
                value: id.clone(),
            },
        );
        Execution {
            original_id: Some(id.clone()),
            id,
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            flow_revision: flow.revision.unwrap_or(1),
            inputs: Map::new(),
            outputs: None,
            labels,
            variables: None,
            trigger: None,
            parent_id: None,
            state: StateInfo::new(State::Created, now),
            task_run_list: Vec::new(),
            metadata: None,
            schedule_date: None,
            index: IndexSlot::default(),
            archive: Archive::default(),
        }
    }

    /// Sets the inputs (already typed and validated).
    pub fn with_inputs(mut self, inputs: Map<String, Json>) -> Self {
        self.inputs = inputs;
        self
    }

    /// Adds labels given at creation: they replace flow labels of the same key, and new ones go
    /// before `system.correlationId`, which stays last (Kestra's order: the flow's labels, the
    /// request's, then the correlation id).
    pub fn with_labels(mut self, labels: Vec<Label>) -> Self {
        for l in labels {
            match self.labels.iter_mut().find(|x| x.key == l.key) {
                Some(x) => x.value = l.value,
                None => {
                    let at = self
                        .labels
                        .iter()
                        .position(|x| x.key == CORRELATION_LABEL)
                        .unwrap_or(self.labels.len());
                    self.labels.insert(at, l);
                }
            }
        }
        self
    }

    /// Sets what started the execution.
    pub fn with_trigger(mut self, trigger: Json) -> Self {
        self.trigger = Some(trigger);
        self
    }

    /// Sets the parent execution (an execution started by a Subflow task).
    pub fn with_parent(mut self, parent_id: String) -> Self {
        self.parent_id = Some(parent_id);
        self
    }

    /// The first task run of a task (Kestra `findTaskRunsByTaskId(..).getFirst()`).
    pub fn find_task_run(&self, task_id: &str) -> Option<&TaskRun> {
        self.task_run_list.iter().find(|t| t.task_id == task_id)
    }

    /// A task run by id.
    pub fn task_run(&self, id: &str) -> Option<&TaskRun> {
        match self.index.get() {
            Some(ix) => ix
                .by_id
                .get(id)
                .and_then(|&p| self.task_run_list.get(p as usize)),
            None => self.task_run_list.iter().find(|t| t.id == id),
        }
    }

    /// The value of a label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }

    /// Drops the indexes (they are rebuilt at the next `advance`); call after editing the
    /// task-run list by hand. Every task run goes back into the stored head too (the next write
    /// makes new chunks; see [`crate::chunks`]).
    pub fn invalidate_index(&mut self) {
        self.index = IndexSlot::default();
        self.archive.fold();
    }
}

/// Sets a label, replacing one with the same key.
pub(crate) fn upsert_label(labels: &mut Vec<Label>, label: Label) {
    match labels.iter_mut().find(|l| l.key == label.key) {
        Some(l) => l.value = label.value,
        None => labels.push(label),
    }
}
