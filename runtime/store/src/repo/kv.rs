//! The namespace key-value store: `kv/{namespace}/{key}.json` holding the value, its type and its
//! expiry, for the `kv()` expression function and the `io.kestra.plugin.core.kv.*` tasks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::key::Key;
use crate::object::{Condition, DynStore};
use crate::repo::cas;
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::names;

/// Kestra's KV value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KvType {
    /// Text.
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An ISO-8601 date-time (stored as text).
    Datetime,
    /// An ISO-8601 date (stored as text).
    Date,
    /// An ISO-8601 duration (stored as text).
    Duration,
    /// Any JSON.
    Json,
}

impl KvType {
    /// The type of a JSON value when none is given: string, number, boolean, else JSON.
    pub fn of(value: &Json) -> KvType {
        match value {
            Json::String(_) => KvType::String,
            Json::Number(_) => KvType::Number,
            Json::Bool(_) => KvType::Boolean,
            _ => KvType::Json,
        }
    }
}

/// One stored KV pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KvEntry {
    /// The value.
    pub value: Json,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: KvType,
    /// When it stops existing, if it has a TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<DateTime<Utc>>,
    /// When it was written.
    pub updated_date: DateTime<Utc>,
    /// A description, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl KvEntry {
    /// An entry of `value` written at `now`, its type inferred, expiring after `ttl` if given.
    pub fn new(value: Json, now: DateTime<Utc>, ttl: Option<chrono::Duration>) -> KvEntry {
        KvEntry {
            kind: KvType::of(&value),
            value,
            expiration_date: ttl.map(|t| now + t),
            updated_date: now,
            description: None,
        }
    }

    /// True when it has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration_date.is_some_and(|e| e <= now)
    }
}

fn what(namespace: &str, key: &str) -> String {
    format!("KV pair `{key}` of namespace `{namespace}`")
}

fn kv_key(namespace: &str, key: &str) -> RepoResult<Key> {
    names::namespace(namespace)?;
    names::id("KV key", key)?;
    names::key(&what(namespace, key), format!("kv/{namespace}/{key}.json"))
}

/// The namespace KV store.
#[derive(Clone)]
pub struct KvRepo {
    store: DynStore,
}

impl std::fmt::Debug for KvRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl KvRepo {
    /// The KV store of `store`.
    pub fn new(store: DynStore) -> KvRepo {
        KvRepo { store }
    }

    /// Writes a pair. With `overwrite` false, an existing pair (even expired) is a `Conflict`
    /// (see [`RepoError::is_conflict`]), as the Set task's `overwrite: false`. 1 request (PUT).
    pub async fn set(
        &self,
        namespace: &str,
        key: &str,
        entry: &KvEntry,
        overwrite: bool,
    ) -> RepoResult<()> {
        let k = kv_key(namespace, key)?;
        let condition = if overwrite {
            Condition::None
        } else {
            Condition::IfAbsent
        };
        cas::put_json(&*self.store, &k, &what(namespace, key), entry, condition)
            .await
            .map(|_| ())
    }

    /// A pair that has not expired at `now`; `None` otherwise. 1 request (GET).
    pub async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> RepoResult<Option<KvEntry>> {
        let k = kv_key(namespace, key)?;
        Ok(
            cas::get_json_opt::<KvEntry>(&*self.store, &k, &what(namespace, key))
                .await?
                .map(|v| v.value)
                .filter(|e| !e.is_expired(now)),
        )
    }

    /// Removes a pair; true when one existed. 2 requests (HEAD, DELETE); 1 when absent.
    pub async fn delete(&self, namespace: &str, key: &str) -> RepoResult<bool> {
        let k = kv_key(namespace, key)?;
        match self.store.head(&k).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(RepoError::store(what(namespace, key), e)),
        }
        self.store
            .delete(&k, None)
            .await
            .map_err(|e| RepoError::store(what(namespace, key), e))?;
        Ok(true)
    }

    /// The keys of a namespace, sorted (expired pairs included: expiry needs a read). 1 LIST
    /// request per 1,000.
    pub async fn keys(&self, namespace: &str) -> RepoResult<Vec<String>> {
        names::namespace(namespace)?;
        let prefix = format!("kv/{namespace}/");
        let entries = self
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| RepoError::store(format!("KV store of namespace `{namespace}`"), e))?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                e.key
                    .as_str()
                    .strip_prefix(&prefix)?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect())
    }
}
