//! Trigger state: `triggers/{namespace}/{flowId}/{triggerId}.json` (e.g. a schedule's last fire
//! date), any serde type `T`, written only with a version condition so that exactly one instance
//! wins each fire.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::key::Key;
use crate::object::{Condition, DynStore, Version};
use crate::repo::cas::{self, RetryPolicy, Updated, Versioned};
use crate::repo::error::{RepoError, RepoResult, UpdateError};
use crate::repo::names;

fn what(namespace: &str, flow_id: &str, trigger_id: &str) -> String {
    format!("state of trigger `{trigger_id}` of flow `{namespace}.{flow_id}`")
}

fn trigger_key(namespace: &str, flow_id: &str, trigger_id: &str) -> RepoResult<Key> {
    names::namespace(namespace)?;
    names::id("flow id", flow_id)?;
    names::id("trigger id", trigger_id)?;
    names::key(
        &what(namespace, flow_id, trigger_id),
        format!("triggers/{namespace}/{flow_id}/{trigger_id}.json"),
    )
}

/// Trigger states of any serde type `T`.
pub struct TriggerRepo<T> {
    store: DynStore,
    retry: RetryPolicy,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Clone for TriggerRepo<T> {
    fn clone(&self) -> Self {
        TriggerRepo {
            store: self.store.clone(),
            retry: self.retry,
            _doc: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TriggerRepo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl<T> TriggerRepo<T>
where
    T: Serialize + DeserializeOwned + Send,
{
    /// Trigger states of `store`.
    pub fn new(store: DynStore) -> Self {
        TriggerRepo {
            store,
            retry: RetryPolicy::default(),
            _doc: PhantomData,
        }
    }

    /// The same repository with another retry policy for [`TriggerRepo::update`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The state with its version; `None` when absent. 1 request (GET).
    pub async fn get(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> RepoResult<Option<Versioned<T>>> {
        let key = trigger_key(namespace, flow_id, trigger_id)?;
        cas::get_json_opt(&*self.store, &key, &what(namespace, flow_id, trigger_id)).await
    }

    /// Writes the state if `version` is still current (`None`: only if absent). 1 request
    /// (conditional PUT); `Conflict` when another instance wrote first.
    pub async fn put(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        state: &T,
        version: Option<&Version>,
    ) -> RepoResult<Version> {
        let key = trigger_key(namespace, flow_id, trigger_id)?;
        let condition = match version {
            Some(v) => Condition::IfVersion(v.clone()),
            None => Condition::IfAbsent,
        };
        cas::put_json(
            &*self.store,
            &key,
            &what(namespace, flow_id, trigger_id),
            state,
            condition,
        )
        .await
    }

    /// Read-modify-write, starting from `init()` when there is no state yet (written if absent).
    /// 1 GET + 1 conditional PUT without a race (only the GET when `f` changes nothing); re-applied
    /// on a fresh read after a conflict, as [`ExecutionRepo::update`](crate::repo::ExecutionRepo::update).
    pub async fn update<R, E, F>(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        init: &(dyn Fn() -> T + Send + Sync),
        f: F,
    ) -> Result<Updated<T, R>, UpdateError<E>>
    where
        F: FnMut(&mut T) -> Result<R, E> + Send,
    {
        let key = trigger_key(namespace, flow_id, trigger_id)?;
        let what = what(namespace, flow_id, trigger_id);
        cas::update_json(&self.store, &key, &what, self.retry, None, Some(init), f).await
    }

    /// Removes a trigger's state. 1 request (DELETE).
    pub async fn delete(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> RepoResult<()> {
        let key = trigger_key(namespace, flow_id, trigger_id)?;
        self.store
            .delete(&key, None)
            .await
            .map_err(|e| RepoError::store(what(namespace, flow_id, trigger_id), e))
    }

    /// The trigger ids with a state for one flow. 1 LIST request per 1,000.
    pub async fn list(&self, namespace: &str, flow_id: &str) -> RepoResult<Vec<String>> {
        names::namespace(namespace)?;
        names::id("flow id", flow_id)?;
        let prefix = format!("triggers/{namespace}/{flow_id}/");
        let entries = self.store.list_all(&prefix).await.map_err(|e| {
            RepoError::store(format!("triggers of flow `{namespace}.{flow_id}`"), e)
        })?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                e.key
                    .as_str()
                    .strip_prefix(&prefix)?
                    .strip_suffix(".json")
                    // not the toggles (`{triggerId}/toggle.json`, ToggleRepo)
                    .filter(|id| !id.contains('/'))
                    .map(str::to_owned)
            })
            .collect())
    }
}
