//! Whether a trigger is disabled at run time (Kestra's trigger state `disabled`, set by the API or
//! the Toggle task without editing the flow): one small document per trigger,
//! `triggers/{namespace}/{flowId}/{triggerId}/toggle.json` = `{"disabled": true, "date": ...}`.
//!
//! It sits next to the trigger's own state (`triggers/{namespace}/{flowId}/{triggerId}.json`,
//! [`TriggerRepo`](crate::repo::TriggerRepo)) without touching it, whatever the trigger's type, so
//! a toggle never clobbers a Flow trigger's conditions or a schedule's dates. An absent document is
//! "enabled". Writes are read-modify-writes with a version condition, so concurrent toggles never
//! lose an update. A trigger `disabled: true` in the flow's source stays disabled whatever this
//! document says: callers check the source first.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::key::Key;
use crate::object::DynStore;
use crate::repo::cas::{self, RetryPolicy};
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::names;

/// The name of the toggle document under a trigger's folder.
const FILE: &str = "toggle.json";

/// The run-time toggle of one trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerToggle {
    /// True when the trigger must not fire.
    pub disabled: bool,
    /// When it was last switched.
    pub date: DateTime<Utc>,
}

fn what(namespace: &str, flow_id: &str, trigger_id: &str) -> String {
    format!("toggle of trigger `{trigger_id}` of flow `{namespace}.{flow_id}`")
}

fn flow_prefix(namespace: &str, flow_id: &str) -> RepoResult<String> {
    names::namespace(namespace)?;
    names::id("flow id", flow_id)?;
    Ok(format!("triggers/{namespace}/{flow_id}/"))
}

fn toggle_key(namespace: &str, flow_id: &str, trigger_id: &str) -> RepoResult<Key> {
    let prefix = flow_prefix(namespace, flow_id)?;
    names::id("trigger id", trigger_id)?;
    names::key(
        &what(namespace, flow_id, trigger_id),
        format!("{prefix}{trigger_id}/{FILE}"),
    )
}

/// The run-time toggles of triggers.
#[derive(Clone)]
pub struct ToggleRepo {
    store: DynStore,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ToggleRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToggleRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl ToggleRepo {
    /// The toggles of `store`.
    pub fn new(store: DynStore) -> Self {
        ToggleRepo {
            store,
            retry: RetryPolicy::default(),
        }
    }

    /// The toggle, `None` when the trigger was never switched. 1 request (GET).
    pub async fn get(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> RepoResult<Option<TriggerToggle>> {
        let key = toggle_key(namespace, flow_id, trigger_id)?;
        let got =
            cas::get_json_opt(&*self.store, &key, &what(namespace, flow_id, trigger_id)).await?;
        Ok(got.map(|v| v.value))
    }

    /// Whether the trigger is disabled at run time. 1 request (GET).
    pub async fn is_disabled(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
    ) -> RepoResult<bool> {
        Ok(self
            .get(namespace, flow_id, trigger_id)
            .await?
            .is_some_and(|t| t.disabled))
    }

    /// Sets the trigger disabled or enabled at `now`; returns the toggle as stored. 1 GET + 1
    /// conditional PUT (re-applied on a fresh read after a conflict); only the GET when it is
    /// already in that state (its date then stays the last switch's).
    pub async fn set(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> RepoResult<TriggerToggle> {
        let key = toggle_key(namespace, flow_id, trigger_id)?;
        let what = what(namespace, flow_id, trigger_id);
        let init = move || TriggerToggle {
            disabled: !disabled,
            date: now,
        };
        let updated = cas::update_json(
            &self.store,
            &key,
            &what,
            self.retry,
            None,
            Some(&init),
            |t: &mut TriggerToggle| {
                if t.disabled != disabled {
                    t.disabled = disabled;
                    t.date = now;
                }
                Ok::<_, std::convert::Infallible>(())
            },
        )
        .await
        .map_err(|e| match e {
            crate::repo::UpdateError::Repo(e) => e,
            crate::repo::UpdateError::Aborted(never) => match never {},
        })?;
        Ok(updated.value)
    }

    /// The toggles of one flow's triggers, by trigger id. 1 LIST request per 1,000 keys + 1 GET
    /// per toggle.
    pub async fn list(
        &self,
        namespace: &str,
        flow_id: &str,
    ) -> RepoResult<BTreeMap<String, TriggerToggle>> {
        let prefix = flow_prefix(namespace, flow_id)?;
        let entries = self.store.list_all(&prefix).await.map_err(|e| {
            RepoError::store(
                format!("trigger toggles of flow `{namespace}.{flow_id}`"),
                e,
            )
        })?;
        let mut out = BTreeMap::new();
        for e in entries {
            let Some(trigger_id) = e
                .key
                .as_str()
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&format!("/{FILE}")))
                .filter(|id| !id.contains('/'))
            else {
                continue;
            };
            if let Some(t) = self.get(namespace, flow_id, trigger_id).await? {
                out.insert(trigger_id.to_owned(), t);
            }
        }
        Ok(out)
    }

    /// Removes the toggles of one flow (it was deleted). 1 LIST + 1 DELETE per toggle.
    pub async fn delete_flow(&self, namespace: &str, flow_id: &str) -> RepoResult<()> {
        for trigger_id in self.list(namespace, flow_id).await?.keys() {
            let key = toggle_key(namespace, flow_id, trigger_id)?;
            match self.store.delete(&key, None).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(RepoError::store(what(namespace, flow_id, trigger_id), e)),
            }
        }
        Ok(())
    }
}
