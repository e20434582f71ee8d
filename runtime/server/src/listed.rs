//! The JSON objects under one prefix, decoded, for a scan that runs again and again (every tick lists
//! the leases and the schedule entries): a listing gives each object's version, and only the
//! objects whose version changed since the last scan of this process are read (GET) again. A
//! tick over a thousand leases that did not move makes one LIST, not a thousand GETs.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use weft_store::{DynStore, Key, StoreError, Version};

/// Decoded objects by key, each with the version it was decoded from.
#[derive(Debug)]
pub(crate) struct Listed<T> {
    seen: Mutex<HashMap<Key, (Version, T)>>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            seen: Mutex::new(HashMap::new()),
        }
    }
}

/// One object of a scan: its key, the version its value was decoded from, and the value.
#[derive(Debug)]
pub(crate) struct Found<T> {
    pub(crate) key: Key,
    pub(crate) version: Version,
    pub(crate) value: T,
}

impl<T: Clone + DeserializeOwned> Listed<T> {
    /// Lists `prefix` of `store` and returns every object there, decoded from JSON: from memory
    /// when the listed version is the one decoded before, else read and decoded again. An object
    /// that cannot be read (but for one deleted meanwhile, which is left out) or decoded is left
    /// out with a warning: the next scan tries again. Only a failed listing is an error.
    pub(crate) async fn scan(
        &self,
        store: &DynStore,
        prefix: &str,
    ) -> Result<Vec<Found<T>>, StoreError> {
        let listed = store.list_all(prefix).await?;
        let mut out = Vec::with_capacity(listed.len());
        let mut fresh = HashMap::with_capacity(listed.len());
        for entry in listed {
            let known = self.seen.lock().ok().and_then(|seen| {
                seen.get(&entry.key)
                    .filter(|(v, _)| *v == entry.version)
                    .map(|(_, value)| value.clone())
            });
            let (version, value) = match known {
                Some(value) => (entry.version, value),
                None => {
                    let object = match store.get(&entry.key).await {
                        Ok(o) => o,
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => {
                            tracing::warn!(key = %entry.key, error = %e, "object not read; the next scan tries again");
                            continue;
                        }
                    };
                    match serde_json::from_slice(&object.bytes) {
                        Ok(value) => (object.version, value),
                        Err(e) => {
                            tracing::warn!(key = %entry.key, error = %e, "unreadable object skipped");
                            continue;
                        }
                    }
                }
            };
            fresh.insert(entry.key.clone(), (version.clone(), value.clone()));
            out.push(Found {
                key: entry.key,
                version,
                value,
            });
        }
        // keys no longer listed are forgotten
        if let Ok(mut seen) = self.seen.lock() {
            *seen = fresh;
        }
        Ok(out)
    }

    /// How many objects are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.lock().map_or(0, |seen| seen.len())
    }

    /// Forgets `key` (this process deleted it).
    pub(crate) fn forget(&self, key: &Key) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(key);
        }
    }

    /// Remembers what this process wrote under `key` (at `version`), so that the next scan does
    /// not read it back.
    pub(crate) fn wrote(&self, key: Key, version: Version, value: T) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(key, (version, value));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use weft_store::Condition;

    use super::*;

    async fn put(store: &DynStore, key: &str, value: &str) -> Version {
        store
            .put(
                &Key::new(key).unwrap(),
                Bytes::from(serde_json::to_vec(value).unwrap()),
                Condition::None,
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn only_the_objects_that_changed_are_read_again() {
        let store = weft_store::open("memory://").await.unwrap();
        put(&store, "p/a", "one").await;
        put(&store, "p/b", "two").await;
        let listed: Listed<String> = Listed::default();
        let values = |found: Vec<Found<String>>| -> Vec<String> {
            found.into_iter().map(|f| f.value).collect()
        };

        let before = store.stats().snapshot();
        let found = listed.scan(&store, "p/").await.unwrap();
        assert_eq!(values(found), ["one", "two"]);
        assert_eq!(store.stats().snapshot().since(&before).get, 2);

        // nothing moved: one listing, no read
        let before = store.stats().snapshot();
        let found = listed.scan(&store, "p/").await.unwrap();
        assert_eq!(values(found), ["one", "two"]);
        let spent = store.stats().snapshot().since(&before);
        assert_eq!((spent.list, spent.get), (1, 0));

        // one changed, one deleted, one new: the two that are read are the changed and the new
        put(&store, "p/a", "uno").await;
        store.delete(&Key::new("p/b").unwrap(), None).await.unwrap();
        put(&store, "p/c", "three").await;
        let before = store.stats().snapshot();
        let found = listed.scan(&store, "p/").await.unwrap();
        assert_eq!(values(found), ["uno", "three"]);
        assert_eq!(store.stats().snapshot().since(&before).get, 2);

        // what this process wrote itself is not read back
        let version = put(&store, "p/c", "drei").await;
        listed.wrote(Key::new("p/c").unwrap(), version, "drei".to_string());
        let before = store.stats().snapshot();
        let found = listed.scan(&store, "p/").await.unwrap();
        assert_eq!(values(found), ["uno", "drei"]);
        assert_eq!(store.stats().snapshot().since(&before).get, 0);

        // an object that cannot be decoded is left out, and read again by the next scan
        store
            .put(
                &Key::new("p/d").unwrap(),
                Bytes::from_static(b"not json"),
                Condition::None,
            )
            .await
            .unwrap();
        let found = listed.scan(&store, "p/").await.unwrap();
        assert_eq!(values(found), ["uno", "drei"]);
        let before = store.stats().snapshot();
        listed.scan(&store, "p/").await.unwrap();
        assert_eq!(store.stats().snapshot().since(&before).get, 1);
    }
}
