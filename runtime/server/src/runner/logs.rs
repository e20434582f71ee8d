//! Task logs kept in the log store (`logs/{executionId}/{taskRunId}-{attempt}.ndjson`), as
//! Kestra's log entries: what `errorLogs()` and the API read back.
//!
//! A worker writes the lines of one attempt once, when the attempt ends. Lines the executor
//! writes itself for a task run (a Fail task, an expression that cannot render, a timeout) go to
//! the task run's slot 0, which no attempt uses (attempts count from 1).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value as Json, json};
use weft_executor::RunTask;
use weft_store::repo::{LogRepo, RepoResult};

/// The slot of the lines the executor writes for a task run.
pub(crate) const EXECUTOR_SLOT: u32 = 0;

/// Where log lines come from: one attempt, or the executor for one task run.
#[derive(Debug, Clone)]
pub(crate) struct AttemptLogs {
    namespace: String,
    flow_id: String,
    execution_id: String,
    task_id: String,
    task_run_id: String,
    attempt: u32,
    records: Vec<Json>,
}

impl AttemptLogs {
    /// The logs of the attempt `task`.
    pub(crate) fn new(namespace: &str, flow_id: &str, task: &RunTask) -> Self {
        Self::of(
            namespace,
            flow_id,
            &task.execution_id,
            &task.task_id,
            &task.task_run_id,
            task.attempt,
        )
    }

    /// The logs of `task_run_id` in slot `attempt`.
    pub(crate) fn of(
        namespace: &str,
        flow_id: &str,
        execution_id: &str,
        task_id: &str,
        task_run_id: &str,
        attempt: u32,
    ) -> Self {
        AttemptLogs {
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            execution_id: execution_id.to_string(),
            task_id: task_id.to_string(),
            task_run_id: task_run_id.to_string(),
            attempt,
            records: Vec::new(),
        }
    }

    /// Adds a line written now.
    pub(crate) fn push(&mut self, level: &str, message: &str) {
        self.push_record(Utc::now(), level, message);
    }

    /// Adds a line written at `timestamp_ms` (milliseconds since the Unix epoch).
    pub(crate) fn push_at(&mut self, timestamp_ms: u64, level: &str, message: &str) {
        let at = i64::try_from(timestamp_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_else(Utc::now);
        self.push_record(at, level, message);
    }

    fn push_record(&mut self, at: DateTime<Utc>, level: &str, message: &str) {
        self.records.push(json!({
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "taskId": self.task_id,
            "executionId": self.execution_id,
            "taskRunId": self.task_run_id,
            "attemptNumber": self.attempt,
            "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "level": level,
            "message": message,
        }));
    }

    /// Writes the lines (nothing when there are none). With `keep_earlier`, the lines already
    /// stored in the slot are kept before them (the executor's slot is written once per step).
    pub(crate) async fn store_with(&self, repo: &LogRepo, keep_earlier: bool) -> RepoResult<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let mut all = if keep_earlier {
            repo.read(&self.execution_id, &self.task_run_id, self.attempt)
                .await?
        } else {
            Vec::new()
        };
        all.extend(self.records.iter().cloned());
        repo.put(&self.execution_id, &self.task_run_id, self.attempt, &all)
            .await
    }

    /// Writes the lines of an attempt (nothing when there are none). 1 PUT.
    pub(crate) async fn store(&self, repo: &LogRepo) -> RepoResult<()> {
        self.store_with(repo, false).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn attempt_and_executor_lines_are_kept_as_log_entries() {
        let repo = LogRepo::new(weft_store::open("memory://").await.unwrap());
        let mut attempt = AttemptLogs::of("ns", "f", "e1", "t1", "tr1", 1);
        attempt.push_at(1_700_000_000_000, "INFO", "hello");
        attempt.push("ERROR", "boom");
        attempt.store(&repo).await.unwrap();
        // executor lines of one task run accumulate in slot 0
        for message in ["first", "second"] {
            let mut ex = AttemptLogs::of("ns", "f", "e1", "fail", "tr2", EXECUTOR_SLOT);
            ex.push("ERROR", message);
            ex.store_with(&repo, true).await.unwrap();
        }
        // nothing to write: no object
        AttemptLogs::of("ns", "f", "e1", "t3", "tr3", 1)
            .store(&repo)
            .await
            .unwrap();
        assert_eq!(repo.list("e1").await.unwrap().len(), 2);
        let all = repo.read_all("e1").await.unwrap();
        let lines: Vec<(&str, &str)> = all
            .iter()
            .map(|r| {
                (
                    r["taskId"].as_str().unwrap(),
                    r["message"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("t1", "hello"),
                ("t1", "boom"),
                ("fail", "first"),
                ("fail", "second")
            ]
        );
        assert_eq!(all[0]["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(all[0]["attemptNumber"], 1);
        assert_eq!(all[2]["attemptNumber"], 0);
        assert_eq!(all[2]["executionId"], "e1");
    }
}
