//! The in-memory backend, for unit tests: the same semantics as the others, nothing durable.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::error::{Result, StoreError};
use crate::key::{Key, check_prefix};
use crate::object::{
    BodyReader, Condition, ListEntry, ListOptions, ListPage, Object, ObjectMeta, ObjectReader,
    ObjectStore, PageToken, Version,
};
use crate::stats::{RequestKind, RequestStats};

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, (Bytes, Version)>,
    generation: u64,
}

/// Objects in a map behind a mutex. Versions are a store-wide generation, so a tag is never reused.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    stats: RequestStats,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // a panic while holding the lock cannot leave the map half-updated: recover it
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn conflict(&self, op: &'static str, key: &Key, reason: String) -> StoreError {
        self.stats.record_conflict();
        StoreError::Conflict {
            op,
            key: key.to_string(),
            reason,
        }
    }
}

/// Checks `condition` against the current version; the reason of the conflict when it fails.
pub(crate) fn condition_fails(condition: &Condition, current: Option<&Version>) -> Option<String> {
    match (condition, current) {
        (Condition::None, _) | (Condition::IfAbsent, None) => None,
        (Condition::IfAbsent, Some(v)) => Some(format!("the object exists (version {v})")),
        (Condition::IfVersion(want), Some(have)) if want == have => None,
        (Condition::IfVersion(want), Some(have)) => Some(format!(
            "expected version {want}, the object has version {have}"
        )),
        (Condition::IfVersion(want), None) => Some(format!(
            "expected version {want}, the object no longer exists"
        )),
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn url(&self) -> String {
        "memory://".to_owned()
    }

    async fn get(&self, key: &Key) -> Result<Object> {
        self.stats.record(RequestKind::Get);
        let state = self.lock();
        match state.objects.get(key.as_str()) {
            Some((bytes, version)) => {
                self.stats.record_read(bytes.len() as u64);
                Ok(Object {
                    bytes: bytes.clone(),
                    version: version.clone(),
                })
            }
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.stats.record(RequestKind::Head);
        let state = self.lock();
        match state.objects.get(key.as_str()) {
            Some((bytes, version)) => Ok(ObjectMeta {
                version: version.clone(),
                size: bytes.len() as u64,
            }),
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn put(&self, key: &Key, body: Bytes, condition: Condition) -> Result<Version> {
        self.stats.record(RequestKind::Put);
        let mut state = self.lock();
        let current = state.objects.get(key.as_str()).map(|(_, v)| v);
        if let Some(reason) = condition_fails(&condition, current) {
            drop(state);
            return Err(self.conflict("put", key, reason));
        }
        state.generation += 1;
        let version = Version::new(format!("m{}", state.generation));
        self.stats.record_written(body.len() as u64);
        state
            .objects
            .insert(key.to_string(), (body, version.clone()));
        Ok(version)
    }

    async fn delete(&self, key: &Key, if_version: Option<&Version>) -> Result<()> {
        self.stats.record(RequestKind::Delete);
        let mut state = self.lock();
        if let Some(want) = if_version {
            let current = state.objects.get(key.as_str()).map(|(_, v)| v);
            if let Some(reason) = condition_fails(&Condition::IfVersion(want.clone()), current) {
                drop(state);
                return Err(self.conflict("delete", key, reason));
            }
        }
        state.objects.remove(key.as_str());
        Ok(())
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage> {
        check_prefix(prefix)?;
        self.stats.record(RequestKind::List);
        let limit = options.clamped_limit();
        let state = self.lock();
        let start = match &options.page {
            Some(token) if token.0.as_str() >= prefix => Bound::Excluded(token.0.clone()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut entries = Vec::new();
        let mut more = false;
        for (key, (bytes, version)) in state.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(ListEntry {
                key: Key::new(key.clone())?,
                version: version.clone(),
                size: bytes.len() as u64,
            });
        }
        let next = match entries.last() {
            Some(last) if more => Some(PageToken(last.key.to_string())),
            _ => None,
        };
        Ok(ListPage { entries, next })
    }

    async fn get_stream(&self, key: &Key) -> Result<ObjectReader> {
        let object = self.get(key).await?;
        Ok(ObjectReader {
            meta: ObjectMeta {
                version: object.version,
                size: object.bytes.len() as u64,
            },
            body: Box::pin(std::io::Cursor::new(object.bytes)),
        })
    }

    async fn put_stream(
        &self,
        key: &Key,
        mut body: BodyReader,
        condition: Condition,
    ) -> Result<Version> {
        let mut buf = Vec::new();
        body.read_to_end(&mut buf)
            .await
            .map_err(|source| StoreError::Body {
                key: key.to_string(),
                source,
            })?;
        self.put(key, Bytes::from(buf), condition).await
    }

    fn stats(&self) -> &RequestStats {
        &self.stats
    }
}
