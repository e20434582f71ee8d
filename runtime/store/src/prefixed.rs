//! A view of a store under a key prefix: every key the view is given is stored as
//! `{prefix}{key}`, and listings strip the prefix again. weft-server gives each tenant such a
//! view (`tenants/{tenant}/`), so the repositories of one tenant never see another's keys.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::key::Key;
use crate::object::{
    BodyReader, Condition, DynStore, ListEntry, ListOptions, ListPage, Object, ObjectMeta,
    ObjectReader, ObjectStore, Version,
};
use crate::stats::RequestStats;

/// `inner` seen under `prefix` (see the module doc).
#[derive(Debug, Clone)]
pub struct PrefixedStore {
    inner: DynStore,
    prefix: String,
}

impl PrefixedStore {
    /// A view of `inner` under `prefix`, which must be a valid key followed by `/`
    /// (`tenants/acme/`).
    pub fn new(inner: DynStore, prefix: &str) -> Result<PrefixedStore> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        Key::new(trimmed)?;
        Ok(PrefixedStore {
            inner,
            prefix: format!("{trimmed}/"),
        })
    }

    /// The prefix, ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full(&self, key: &Key) -> Result<Key> {
        Key::new(format!("{}{}", self.prefix, key.as_str()))
    }

    fn strip(&self, entry: ListEntry) -> Result<ListEntry> {
        let rest = entry
            .key
            .as_str()
            .strip_prefix(&self.prefix)
            .ok_or_else(|| StoreError::InvalidKey {
                key: entry.key.as_str().to_owned(),
                reason: "a listed key is outside the view's prefix",
            })?;
        Ok(ListEntry {
            key: Key::new(rest)?,
            version: entry.version,
            size: entry.size,
        })
    }
}

#[async_trait]
impl ObjectStore for PrefixedStore {
    fn url(&self) -> String {
        format!("{} (under {})", self.inner.url(), self.prefix)
    }

    async fn get(&self, key: &Key) -> Result<Object> {
        self.inner.get(&self.full(key)?).await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.inner.head(&self.full(key)?).await
    }

    async fn put(&self, key: &Key, body: Bytes, condition: Condition) -> Result<Version> {
        self.inner.put(&self.full(key)?, body, condition).await
    }

    async fn delete(&self, key: &Key, if_version: Option<&Version>) -> Result<()> {
        self.inner.delete(&self.full(key)?, if_version).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage> {
        let page = self
            .inner
            .list(&format!("{}{prefix}", self.prefix), options)
            .await?;
        Ok(ListPage {
            entries: page
                .entries
                .into_iter()
                .map(|e| self.strip(e))
                .collect::<Result<_>>()?,
            next: page.next,
        })
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<ListEntry>> {
        // the inner store's own way (the local store lists everything in one walk)
        self.inner
            .list_all(&format!("{}{prefix}", self.prefix))
            .await?
            .into_iter()
            .map(|e| self.strip(e))
            .collect()
    }

    async fn get_stream(&self, key: &Key) -> Result<ObjectReader> {
        self.inner.get_stream(&self.full(key)?).await
    }

    async fn put_stream(
        &self,
        key: &Key,
        body: BodyReader,
        condition: Condition,
    ) -> Result<Version> {
        self.inner
            .put_stream(&self.full(key)?, body, condition)
            .await
    }

    fn stats(&self) -> &RequestStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn keys_live_under_the_prefix_and_listings_strip_it() {
        let base: DynStore = Arc::new(MemoryStore::new());
        listings_strip_the_prefix(base).await;
        // the local store lists in its own way (one walk): the view strips its keys too
        let dir = tempfile::tempdir().unwrap();
        let local = crate::open(&format!("file://{}", dir.path().display()))
            .await
            .unwrap();
        listings_strip_the_prefix(local).await;
    }

    async fn listings_strip_the_prefix(base: DynStore) {
        let a = PrefixedStore::new(base.clone(), "tenants/a/").unwrap();
        let b = PrefixedStore::new(base.clone(), "tenants/b").unwrap();
        let key = Key::new("flows/x.yaml").unwrap();
        a.put(&key, Bytes::from_static(b"A"), Condition::None)
            .await
            .unwrap();
        assert!(b.get(&key).await.unwrap_err().is_not_found());
        let raw = base
            .get(&Key::new("tenants/a/flows/x.yaml").unwrap())
            .await
            .unwrap();
        assert_eq!(&raw.bytes[..], b"A");
        let listed = a.list_all("flows/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key.as_str(), "flows/x.yaml");
        assert!(b.list_all("").await.unwrap().is_empty());
    }

    #[test]
    fn a_prefix_that_escapes_is_refused() {
        let base: DynStore = Arc::new(MemoryStore::new());
        assert!(PrefixedStore::new(base.clone(), "../x/").is_err());
        assert!(PrefixedStore::new(base, "/x/").is_err());
    }
}
