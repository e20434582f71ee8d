//! Uploaded plugins (`plugins/{name}/{version}.wasm`) and the precompiled plugin cache
//! (`cache/{engineHash}/{sha256}.cwasm`). Bytes in, bytes out: the engine decides what to trust
//! (it checks hashes and compatibility itself).

use bytes::Bytes;

use crate::key::Key;
use crate::object::{Condition, DynStore};
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::names;

fn plugin_key(name: &str, version: &str) -> RepoResult<Key> {
    names::segment("plugin name", name)?;
    names::segment("plugin version", version)?;
    names::key(
        &format!("plugin `{name}` {version}"),
        format!("plugins/{name}/{version}.wasm"),
    )
}

fn cache_key(engine_hash: &str, sha256: &str) -> RepoResult<Key> {
    names::segment("engine hash", engine_hash)?;
    names::segment("component hash", sha256)?;
    names::key(
        &format!("precompiled `{sha256}`"),
        format!("cache/{engine_hash}/{sha256}.cwasm"),
    )
}

/// One uploaded plugin, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginObject {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Bytes of the component.
    pub size: u64,
}

/// Uploaded plugins and precompiled code.
#[derive(Clone)]
pub struct PluginRepo {
    store: DynStore,
}

impl std::fmt::Debug for PluginRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl PluginRepo {
    /// Plugins of `store`.
    pub fn new(store: DynStore) -> PluginRepo {
        PluginRepo { store }
    }

    /// Stores an uploaded plugin (replacing the same name and version). 1 request (PUT).
    pub async fn put_plugin(&self, name: &str, version: &str, wasm: Bytes) -> RepoResult<()> {
        let key = plugin_key(name, version)?;
        self.store
            .put(&key, wasm, Condition::None)
            .await
            .map(|_| ())
            .map_err(|e| RepoError::store(format!("plugin `{name}` {version}"), e))
    }

    /// An uploaded plugin; `None` when absent. 1 request (GET).
    pub async fn get_plugin(&self, name: &str, version: &str) -> RepoResult<Option<Bytes>> {
        let key = plugin_key(name, version)?;
        optional(
            self.store.get(&key).await.map(|o| o.bytes),
            &format!("plugin `{name}` {version}"),
        )
    }

    /// Removes an uploaded plugin. 1 request (DELETE).
    pub async fn delete_plugin(&self, name: &str, version: &str) -> RepoResult<()> {
        let key = plugin_key(name, version)?;
        self.store
            .delete(&key, None)
            .await
            .map_err(|e| RepoError::store(format!("plugin `{name}` {version}"), e))
    }

    /// Every uploaded plugin, sorted by name then version text. 1 LIST request per 1,000.
    pub async fn list_plugins(&self) -> RepoResult<Vec<PluginObject>> {
        let entries = self
            .store
            .list_all("plugins/")
            .await
            .map_err(|e| RepoError::store("uploaded plugins", e))?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let rest = e.key.as_str().strip_prefix("plugins/")?;
                let (name, file) = rest.split_once('/')?;
                Some(PluginObject {
                    name: name.to_owned(),
                    version: file.strip_suffix(".wasm")?.to_owned(),
                    size: e.size,
                })
            })
            .collect())
    }

    /// Stores precompiled code if absent (a key names its content, so an existing entry is kept).
    /// 1 request (PUT if absent).
    pub async fn put_cached(&self, engine_hash: &str, sha256: &str, code: Bytes) -> RepoResult<()> {
        let key = cache_key(engine_hash, sha256)?;
        match self.store.put(&key, code, Condition::IfAbsent).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(RepoError::store(format!("precompiled `{sha256}`"), e)),
        }
    }

    /// Precompiled code; `None` when absent. 1 request (GET).
    pub async fn get_cached(&self, engine_hash: &str, sha256: &str) -> RepoResult<Option<Bytes>> {
        let key = cache_key(engine_hash, sha256)?;
        optional(
            self.store.get(&key).await.map(|o| o.bytes),
            &format!("precompiled `{sha256}`"),
        )
    }
}

fn optional(r: crate::error::Result<Bytes>, what: &str) -> RepoResult<Option<Bytes>> {
    match r {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(RepoError::store(what, e)),
    }
}
