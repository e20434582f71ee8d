//! Task logs: `logs/{executionId}/{taskRunId}-{attempt}.ndjson`, one object per attempt (one JSON
//! log record per line), written once by whoever ran the attempt.

use bytes::Bytes;
use serde_json::Value as Json;

use crate::key::Key;
use crate::object::{Condition, DynStore};
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::executions::ResultId;
use crate::repo::names;

fn what(execution_id: &str, task_run_id: &str, attempt: u32) -> String {
    format!("logs of task run `{task_run_id}` attempt {attempt} of execution `{execution_id}`")
}

fn log_key(execution_id: &str, task_run_id: &str, attempt: u32) -> RepoResult<Key> {
    names::id("execution id", execution_id)?;
    names::id("task run id", task_run_id)?;
    names::key(
        &what(execution_id, task_run_id, attempt),
        format!("logs/{execution_id}/{task_run_id}-{attempt}.ndjson"),
    )
}

/// One attempt's log object, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogObject {
    /// The task run and attempt.
    pub id: ResultId,
    /// Bytes of NDJSON.
    pub size: u64,
}

/// Task logs of executions.
#[derive(Clone)]
pub struct LogRepo {
    store: DynStore,
}

impl std::fmt::Debug for LogRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl LogRepo {
    /// Logs of `store`.
    pub fn new(store: DynStore) -> LogRepo {
        LogRepo { store }
    }

    /// Writes the log records of one attempt (replacing an earlier write of the same attempt, as a
    /// re-run attempt after a lost lease does). 1 request (PUT).
    pub async fn put(
        &self,
        execution_id: &str,
        task_run_id: &str,
        attempt: u32,
        records: &[Json],
    ) -> RepoResult<()> {
        let mut body = Vec::new();
        for record in records {
            serde_json::to_writer(&mut body, record)
                .map_err(|e| RepoError::json(what(execution_id, task_run_id, attempt), e))?;
            body.push(b'\n');
        }
        self.put_ndjson(execution_id, task_run_id, attempt, Bytes::from(body))
            .await
    }

    /// Writes already-encoded NDJSON for one attempt. 1 request (PUT).
    pub async fn put_ndjson(
        &self,
        execution_id: &str,
        task_run_id: &str,
        attempt: u32,
        ndjson: Bytes,
    ) -> RepoResult<()> {
        let key = log_key(execution_id, task_run_id, attempt)?;
        self.store
            .put(&key, ndjson, Condition::None)
            .await
            .map(|_| ())
            .map_err(|e| RepoError::store(what(execution_id, task_run_id, attempt), e))
    }

    /// The records of one attempt; empty when none were written. 1 request (GET).
    pub async fn read(
        &self,
        execution_id: &str,
        task_run_id: &str,
        attempt: u32,
    ) -> RepoResult<Vec<Json>> {
        let key = log_key(execution_id, task_run_id, attempt)?;
        let what = what(execution_id, task_run_id, attempt);
        match self.store.get(&key).await {
            Ok(object) => parse_ndjson(&what, &object.bytes),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(RepoError::store(what, e)),
        }
    }

    /// Deletes every log object of an execution; how many. 1 LIST per 1,000, 1 DELETE each.
    pub async fn delete_all(&self, execution_id: &str) -> RepoResult<usize> {
        names::id("execution id", execution_id)?;
        self.store
            .delete_all(&format!("logs/{execution_id}/"))
            .await
            .map_err(|e| RepoError::store(format!("logs of execution `{execution_id}`"), e))
    }

    /// The log objects of an execution, sorted by task run id then attempt. 1 LIST per 1,000.
    pub async fn list(&self, execution_id: &str) -> RepoResult<Vec<LogObject>> {
        names::id("execution id", execution_id)?;
        let prefix = format!("logs/{execution_id}/");
        let entries = self
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| RepoError::store(format!("logs of execution `{execution_id}`"), e))?;
        let mut out: Vec<LogObject> = entries
            .iter()
            .filter_map(|e| {
                let name = e
                    .key
                    .as_str()
                    .strip_prefix(&prefix)?
                    .strip_suffix(".ndjson")?;
                let (run, attempt) = name.rsplit_once('-')?;
                Some(LogObject {
                    id: ResultId {
                        task_run_id: run.to_owned(),
                        attempt: attempt.parse().ok()?,
                    },
                    size: e.size,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every log record of an execution, in time order: records are merged by their `timestamp`
    /// field (ISO-8601 text in UTC, compared as text; the sort is stable, so records of one attempt
    /// keep their order and records without a timestamp come first). 1 LIST per 1,000 objects + 1
    /// GET per attempt (8 at a time).
    pub async fn read_all(&self, execution_id: &str) -> RepoResult<Vec<Json>> {
        let objects = self.list(execution_id).await?;
        let mut all = Vec::new();
        for chunk in objects.chunks(8) {
            let reads: Vec<_> = chunk
                .iter()
                .map(|o| self.read(execution_id, &o.id.task_run_id, o.id.attempt))
                .collect();
            for records in join_all(reads).await {
                all.extend(records?);
            }
        }
        all.sort_by(|a, b| {
            let ts = |v: &Json| v.get("timestamp").and_then(Json::as_str).map(str::to_owned);
            ts(a).cmp(&ts(b))
        });
        Ok(all)
    }
}

/// Runs futures concurrently on the current task and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn parse_ndjson(what: &str, bytes: &[u8]) -> RepoResult<Vec<Json>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| serde_json::from_slice(line).map_err(|e| RepoError::json(what, e)))
        .collect()
}
