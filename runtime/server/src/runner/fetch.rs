//! The Fetch task (`io.kestra.plugin.core.log.Fetch`): copies the log lines of an execution from
//! the log store into a file of the current execution's internal storage, as Kestra's. A host
//! task (see [`super::host_tasks`]): it reads the log store, which a plugin cannot.
//!
//! Properties (Kestra's): `executionId` (default: the current execution; with `namespace` and
//! `flowId` for an execution of another flow, else the current flow is assumed), `tasksId` (the
//! task ids whose lines to keep, in this order; all tasks when unset; the deprecated `taskId`
//! names one) and `level` (the lowest level kept, default INFO). Outputs: `size`, the number of
//! lines fetched, and `uri`, the `kestra:///` URI of the file: one log entry per line as a JSON
//! object (NDJSON, which is also valid Ion text; the file is named `logs.ion` as Kestra's is an
//! Ion file).

use serde_json::{Map, Value as Json};
use weft_engine::Level;
use weft_executor::RunTask;
use weft_store::repo::LogRepo;

use super::host_tasks::{Done, Outcome, target_execution};
use super::{Live, Runner};

/// The canonical type name of the Fetch task.
pub(crate) const FETCH_TYPE: &str = "io.kestra.plugin.core.log.Fetch";

/// The name of the file a Fetch writes in its task run's storage.
const FILE_NAME: &str = "logs.ion";

/// Which log lines one Fetch keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    namespace: String,
    flow_id: String,
    execution_id: String,
    /// `None`: every task.
    tasks: Option<Vec<String>>,
    min_level: Level,
}

impl Filter {
    /// The records kept, in Kestra's order: task by task as listed (each in time order), or all
    /// in time order. `records` are in time order.
    fn apply(&self, records: Vec<Json>) -> Vec<Json> {
        let text = |r: &Json, k: &str| r.get(k).and_then(Json::as_str).map(str::to_owned);
        let kept: Vec<Json> = records
            .into_iter()
            .filter(|r| {
                text(r, "namespace").as_deref() == Some(self.namespace.as_str())
                    && text(r, "flowId").as_deref() == Some(self.flow_id.as_str())
                    && text(r, "level")
                        .as_deref()
                        .and_then(Level::parse)
                        .is_some_and(|l| l >= self.min_level)
            })
            .collect();
        let Some(tasks) = &self.tasks else {
            return kept;
        };
        tasks
            .iter()
            .flat_map(|t| {
                kept.iter()
                    .filter(move |r| text(r, "taskId").as_deref() == Some(t.as_str()))
                    .cloned()
            })
            .collect()
    }
}

impl Runner {
    fn fetch_filter(&self, task: &RunTask) -> Result<Filter, String> {
        let (namespace, flow_id, execution_id, _) = target_execution(self, task)?;
        let tasks = match self.host_value(task, "tasksId")? {
            None | Some(Json::Null) => None,
            Some(Json::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|v| match v {
                        Json::String(s) => Ok(s),
                        other => Err(format!("`tasksId` must list task ids, got {other}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => return Err(format!("`tasksId` must be a list, got {other}")),
        };
        let tasks = match (tasks, self.host_str(task, "taskId")?) {
            (Some(list), _) => Some(list),
            (None, Some(one)) => Some(vec![one]),
            (None, None) => None,
        };
        let min_level = match self.host_str(task, "level")? {
            None => Level::Info,
            Some(name) => Level::parse(name.trim()).ok_or_else(|| {
                format!("`level` must be one of TRACE, DEBUG, INFO, WARN, ERROR, got `{name}`")
            })?,
        };
        Ok(Filter {
            namespace,
            flow_id,
            execution_id,
            tasks,
            min_level,
        })
    }

    /// Performs a Fetch attempt of `live`'s execution.
    pub(super) async fn run_fetch(&self, live: &Live, task: &RunTask) -> Outcome {
        let filter = self.fetch_filter(task)?;
        let records = LogRepo::new(self.store.clone())
            .read_all(&filter.execution_id)
            .await
            .map_err(|e| format!("cannot read the logs: {e}"))?;
        let kept = filter.apply(records);
        let mut body = Vec::new();
        for record in &kept {
            // a `Json` value always serializes
            if let Ok(line) = serde_json::to_vec(record) {
                body.extend_from_slice(&line);
                body.push(b'\n');
            }
        }
        let uri = live
            .files
            .task_file_uri(&task.task_id, &task.task_run_id, FILE_NAME)
            .map_err(|e| e.to_string())?;
        live.files
            .put(&uri, body.into())
            .await
            .map_err(|e| format!("cannot write the fetched logs: {e}"))?;
        let mut outputs = Map::new();
        outputs.insert("size".into(), Json::from(kept.len()));
        outputs.insert("uri".into(), Json::String(uri));
        Ok(Done {
            lines: vec![(
                "DEBUG",
                format!(
                    "fetched {} log lines of execution {}",
                    kept.len(),
                    filter.execution_id
                ),
            )],
            outputs,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn record(flow: &str, task: &str, level: &str, message: &str) -> Json {
        json!({"namespace": "ns", "flowId": flow, "taskId": task, "level": level, "message": message})
    }

    fn messages(kept: &[Json]) -> Vec<&str> {
        kept.iter()
            .map(|r| r["message"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn keeps_the_flows_lines_at_or_above_the_level_task_by_task() {
        let records = vec![
            record("f", "a", "INFO", "a1"),
            record("f", "b", "DEBUG", "b-debug"),
            record("f", "b", "WARN", "b1"),
            record("other", "a", "ERROR", "other flow"),
            record("f", "a", "ERROR", "a2"),
            record("f", "c", "INFO", "c1"),
        ];
        let mut filter = Filter {
            namespace: "ns".into(),
            flow_id: "f".into(),
            execution_id: "e".into(),
            tasks: None,
            min_level: Level::Info,
        };
        assert_eq!(
            messages(&filter.apply(records.clone())),
            ["a1", "b1", "a2", "c1"]
        );
        filter.tasks = Some(vec!["b".into(), "a".into()]);
        assert_eq!(messages(&filter.apply(records.clone())), ["b1", "a1", "a2"]);
        filter.min_level = Level::Trace;
        assert_eq!(
            messages(&filter.apply(records.clone())),
            ["b-debug", "b1", "a1", "a2"]
        );
        filter.tasks = None;
        filter.min_level = Level::Error;
        assert_eq!(messages(&filter.apply(records)), ["a2"]);
    }
}
