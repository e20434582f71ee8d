//! Execution documents (`executions/{executionId}.json`, with immutable chunks
//! `executions/{executionId}/chunks/{name}.json` when a codec splits them) and immutable worker results
//! (`executions/{executionId}/results/{taskRunId}-{attempt}.json`).
//!
//! Keys spread by themselves: execution ids are random base62, so on S3 the `executions/` keys fall
//! into many partitions as the load grows and no single hot prefix caps the request rate (3,500
//! PUT/s per prefix). The results of one execution share its prefix, but one execution never writes
//! near that rate.

use std::marker::PhantomData;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::key::Key;
use crate::object::{Condition, DynStore, Version};
use crate::repo::cas::{self, RetryPolicy, Updated, Versioned};
use crate::repo::codec::{DocIo, DocumentCodec, JsonCodec};
use crate::repo::error::{RepoError, RepoResult, UpdateError};
use crate::repo::names;

fn what(id: &str) -> String {
    format!("execution `{id}`")
}

/// The key of an execution document.
pub fn execution_key(execution_id: &str) -> RepoResult<Key> {
    names::id("execution id", execution_id)?;
    names::key(
        &what(execution_id),
        format!("executions/{execution_id}.json"),
    )
}

/// The key of an immutable part (chunk) of an execution document:
/// `executions/{executionId}/chunks/{name}.json`.
pub fn execution_part_key(execution_id: &str, name: &str) -> RepoResult<Key> {
    names::id("execution id", execution_id)?;
    names::id("execution chunk name", name)?;
    names::key(
        &what(execution_id),
        format!("executions/{execution_id}/chunks/{name}.json"),
    )
}

/// Execution documents of any type `T` (the executor's `Execution`), each written only with a
/// version condition.
///
/// A [`DocumentCodec`] says how a document is stored: by default ([`JsonCodec`]) the whole
/// document is `executions/{executionId}.json`; a codec with parts keeps a small head there and
/// the rest in immutable parts `executions/{executionId}/chunks/{name}.json`, written before the
/// head that references them (so the head never names a part that is not stored, and a part
/// written by an attempt that lost the race is only an unreferenced object). Request counts below
/// say "head" for the document's key and "part" for each chunk.
pub struct ExecutionRepo<T> {
    store: DynStore,
    retry: RetryPolicy,
    codec: Arc<dyn DocumentCodec<T>>,
}

impl<T> Clone for ExecutionRepo<T> {
    fn clone(&self) -> Self {
        ExecutionRepo {
            store: self.store.clone(),
            retry: self.retry,
            codec: self.codec.clone(),
        }
    }
}

impl<T> std::fmt::Debug for ExecutionRepo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionRepo")
            .field("store", &self.store.url())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<T> ExecutionRepo<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// Executions of `store` as plain JSON documents, retried with [`RetryPolicy::default`].
    pub fn new(store: DynStore) -> Self {
        ExecutionRepo::with_codec(store, Arc::new(JsonCodec::new()))
    }
}

impl<T: Send + 'static> ExecutionRepo<T> {
    /// Executions of `store` laid out by `codec`, retried with [`RetryPolicy::default`].
    pub fn with_codec(store: DynStore, codec: Arc<dyn DocumentCodec<T>>) -> Self {
        ExecutionRepo {
            store,
            retry: RetryPolicy::default(),
            codec,
        }
    }

    /// The same repository with another retry policy for [`ExecutionRepo::update`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn io<'a>(
        &'a self,
        key: &'a Key,
        what: &'a str,
        part_key: &'a (dyn Fn(&str) -> RepoResult<Key> + Send + Sync),
    ) -> DocIo<'a, T> {
        DocIo {
            store: &self.store,
            key,
            what,
            codec: &*self.codec,
            part_key,
        }
    }

    /// Stores a new execution: 1 PUT per part the codec makes, then 1 PUT (if absent) of the head;
    /// `Conflict` when the id is taken. `execution` records what is stored (see
    /// [`DocumentCodec::encode`]). Returns the head's version.
    pub async fn create(&self, id: &str, execution: &mut T) -> RepoResult<Version> {
        let key = execution_key(id)?;
        let what = what(id);
        let part_key = |name: &str| execution_part_key(id, name);
        let io = self.io(&key, &what, &part_key);
        Ok(io.store_doc(execution, Condition::IfAbsent).await?.0)
    }

    /// Reads an execution with its head's version: 1 GET of the head, then 1 GET per part it
    /// references (up to 16 at once); `NotFound` when absent. A missing or unreadable part is an
    /// error that names the execution and the part's key.
    pub async fn get(&self, id: &str) -> RepoResult<Versioned<T>> {
        let key = execution_key(id)?;
        let what = what(id);
        let part_key = |name: &str| execution_part_key(id, name);
        let loaded = self.io(&key, &what, &part_key).load().await?;
        Ok(Versioned {
            value: loaded.value,
            version: loaded.version,
        })
    }

    /// As [`ExecutionRepo::get`]; `None` when the head is absent.
    pub async fn find(&self, id: &str) -> RepoResult<Option<Versioned<T>>> {
        let key = execution_key(id)?;
        let what = what(id);
        let part_key = |name: &str| execution_part_key(id, name);
        Ok(self
            .io(&key, &what, &part_key)
            .load_opt()
            .await?
            .map(|l| Versioned {
                value: l.value,
                version: l.version,
            }))
    }

    /// Writes an execution the caller read at `version`: 1 PUT per new part, then 1 conditional
    /// PUT of the head; `Conflict` (see [`RepoError::is_conflict`]) when someone wrote it since
    /// (the new parts then stay unreferenced). Drop `execution` after a failure: it may record
    /// parts the stored head does not reference.
    pub async fn put_if_version(
        &self,
        id: &str,
        execution: &mut T,
        version: &Version,
    ) -> RepoResult<Version> {
        let key = execution_key(id)?;
        let what = what(id);
        let part_key = |name: &str| execution_part_key(id, name);
        let io = self.io(&key, &what, &part_key);
        Ok(io
            .store_doc(execution, Condition::IfVersion(version.clone()))
            .await?
            .0)
    }

    /// Read-modify-write: reads the execution, applies `f`, writes it back if its version did not
    /// change. On `Conflict`, `f` runs again on a fresh read (after a jittered back-off), up to the
    /// retry policy's attempts; never a blind overwrite. If `f` fails, nothing is written.
    ///
    /// Requests without a conflict: 1 GET of the head + 1 GET per part (concurrently), then 1 PUT
    /// per new part + 1 conditional PUT of the head (no PUT when `f` leaves the head byte-for-byte
    /// unchanged and makes no part). Each conflict costs one more read (head + parts) and write.
    pub async fn update<R, E, F>(&self, id: &str, f: F) -> Result<Updated<T, R>, UpdateError<E>>
    where
        F: FnMut(&mut T) -> Result<R, E> + Send,
    {
        let key = execution_key(id)?;
        let what = what(id);
        let part_key = |name: &str| execution_part_key(id, name);
        cas::update_doc(&self.io(&key, &what, &part_key), self.retry, None, None, f).await
    }

    /// As [`ExecutionRepo::update`], starting from a copy the caller already holds (e.g. the result
    /// of the previous write), moved in so nothing is copied: 1 PUT per new part + 1 conditional
    /// PUT of the head without a conflict; a read (head + parts) and a write per conflict.
    pub async fn update_from<R, E, F>(
        &self,
        id: &str,
        current: Versioned<T>,
        f: F,
    ) -> Result<Updated<T, R>, UpdateError<E>>
    where
        F: FnMut(&mut T) -> Result<R, E> + Send,
    {
        let key = execution_key(id)?;
        let what = what(id);
        let part_key = |name: &str| execution_part_key(id, name);
        cas::update_doc(
            &self.io(&key, &what, &part_key),
            self.retry,
            Some(current),
            None,
            f,
        )
        .await
    }

    /// Deletes an execution document: its head, then everything stored under it (chunks and
    /// worker results; not its files or logs). With a version, `Conflict` when the head changed,
    /// and nothing is deleted. A delete that stopped half-way leaves only objects no reader
    /// reaches, and a second delete removes them (then answers `NotFound` for the head).
    pub async fn delete(&self, id: &str, if_version: Option<&Version>) -> RepoResult<()> {
        let key = execution_key(id)?;
        let head = self.store.delete(&key, if_version).await;
        if let Err(e) = &head
            && !e.is_not_found()
        {
            return head.map_err(|e| RepoError::store(what(id), e));
        }
        self.store
            .delete_all(&format!("executions/{id}/"))
            .await
            .map_err(|e| RepoError::store(what(id), e))?;
        head.map_err(|e| RepoError::store(what(id), e))
    }
}

/// Where a worker result is stored: one task run attempt.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResultId {
    /// The task run.
    pub task_run_id: String,
    /// The attempt number (as the worker numbers it).
    pub attempt: u32,
}

fn result_what(execution_id: &str, task_run_id: &str, attempt: u32) -> String {
    format!("result of task run `{task_run_id}` attempt {attempt} of execution `{execution_id}`")
}

fn result_key(execution_id: &str, task_run_id: &str, attempt: u32) -> RepoResult<Key> {
    names::id("execution id", execution_id)?;
    names::id("task run id", task_run_id)?;
    names::key(
        &result_what(execution_id, task_run_id, attempt),
        format!("executions/{execution_id}/results/{task_run_id}-{attempt}.json"),
    )
}

/// What [`ResultRepo::put`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultWrite {
    /// The result was stored.
    Stored,
    /// The identical result was already stored (a retried delivery): nothing changed.
    AlreadyStored,
}

/// Immutable worker results of any serde type `T`: written once, never replaced. A worker writes its
/// result here and never touches the execution document.
pub struct ResultRepo<T> {
    store: DynStore,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Clone for ResultRepo<T> {
    fn clone(&self) -> Self {
        ResultRepo {
            store: self.store.clone(),
            _doc: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for ResultRepo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl<T> ResultRepo<T>
where
    T: Serialize + DeserializeOwned + Send,
{
    /// Results of `store`.
    pub fn new(store: DynStore) -> Self {
        ResultRepo {
            store,
            _doc: PhantomData,
        }
    }

    /// Stores a result if absent. 1 request (PUT if absent); when one exists, 1 more GET: identical
    /// bytes are [`ResultWrite::AlreadyStored`], other content is [`RepoError::Conflict`].
    pub async fn put(
        &self,
        execution_id: &str,
        task_run_id: &str,
        attempt: u32,
        result: &T,
    ) -> RepoResult<ResultWrite> {
        let key = result_key(execution_id, task_run_id, attempt)?;
        let what = result_what(execution_id, task_run_id, attempt);
        let bytes = Bytes::from(cas::to_json(&what, result)?);
        match self
            .store
            .put(&key, bytes.clone(), Condition::IfAbsent)
            .await
        {
            Ok(_) => Ok(ResultWrite::Stored),
            Err(e) if e.is_conflict() => {
                let stored = self
                    .store
                    .get(&key)
                    .await
                    .map_err(|e| RepoError::store(what.clone(), e))?;
                if stored.bytes == bytes {
                    Ok(ResultWrite::AlreadyStored)
                } else {
                    Err(RepoError::Conflict {
                        what,
                        key: key.to_string(),
                    })
                }
            }
            Err(e) => Err(RepoError::store(what, e)),
        }
    }

    /// Reads one result; `None` when absent. 1 request (GET).
    pub async fn get(
        &self,
        execution_id: &str,
        task_run_id: &str,
        attempt: u32,
    ) -> RepoResult<Option<T>> {
        let key = result_key(execution_id, task_run_id, attempt)?;
        let what = result_what(execution_id, task_run_id, attempt);
        Ok(cas::get_json_opt(&*self.store, &key, &what)
            .await?
            .map(|v: Versioned<T>| v.value))
    }

    /// The results stored for an execution, sorted by task run id then attempt. 1 LIST request per
    /// 1,000 results.
    pub async fn list(&self, execution_id: &str) -> RepoResult<Vec<ResultId>> {
        names::id("execution id", execution_id)?;
        let prefix = format!("executions/{execution_id}/results/");
        let entries =
            self.store.list_all(&prefix).await.map_err(|e| {
                RepoError::store(format!("results of execution `{execution_id}`"), e)
            })?;
        let mut ids: Vec<ResultId> = entries
            .iter()
            .filter_map(|e| {
                let name = e
                    .key
                    .as_str()
                    .strip_prefix(&prefix)?
                    .strip_suffix(".json")?;
                let (run, attempt) = name.rsplit_once('-')?;
                Some(ResultId {
                    task_run_id: run.to_owned(),
                    attempt: attempt.parse().ok()?,
                })
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Deletes one result (cleanup of a finished execution). 1 request (DELETE).
    pub async fn delete(
        &self,
        execution_id: &str,
        task_run_id: &str,
        attempt: u32,
    ) -> RepoResult<()> {
        let key = result_key(execution_id, task_run_id, attempt)?;
        self.store
            .delete(&key, None)
            .await
            .map_err(|e| RepoError::store(result_what(execution_id, task_run_id, attempt), e))
    }
}
