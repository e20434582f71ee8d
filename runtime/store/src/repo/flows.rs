//! Flows with revisions: `flows/{namespace}/{flowId}/{revision}.yaml` (the source text, verbatim)
//! and `flows/{namespace}/{flowId}/latest.json` (`{"revision": N, "deleted": false}`), the small
//! index of the latest revision, written with a version condition.
//!
//! Every save makes a new revision; a revision file is written only if absent, so two racing
//! saves never share a number. A delete writes a tombstone revision (an empty file: a real source is
//! never empty) and marks the index deleted; the history stays. A flow is identified by its
//! namespace and id: [`FlowRepo::update`] refuses a source that names another namespace.
//!
//! If a process dies between a revision file and the index, that revision is in the history but
//! not the latest until the next save (which numbers after it).

use serde::{Deserialize, Serialize};

use crate::key::Key;
use crate::object::{Condition, DynStore};
use crate::repo::cas::{self, RetryPolicy};
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::names;

/// One stored revision of a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRevision {
    /// The namespace.
    pub namespace: String,
    /// The flow id.
    pub id: String,
    /// The revision number (from 1).
    pub revision: u32,
    /// The YAML source, verbatim (empty for a deletion).
    pub source: String,
    /// True for the tombstone revision a delete writes.
    pub deleted: bool,
}

/// A revision as listed, without its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSummary {
    /// The namespace.
    pub namespace: String,
    /// The flow id.
    pub id: String,
    /// The revision number.
    pub revision: u32,
    /// True for a deletion.
    pub deleted: bool,
    /// Bytes of the source.
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Latest {
    revision: u32,
    #[serde(default)]
    deleted: bool,
}

/// The `id` and `namespace` a flow source declares.
pub fn flow_identity(source: &str) -> RepoResult<(String, String)> {
    let invalid = |reason: String| RepoError::InvalidFlow { reason };
    if source.trim().is_empty() {
        return Err(invalid("the source is empty".to_owned()));
    }
    let doc: serde_yaml::Value =
        serde_yaml::from_str(source).map_err(|e| invalid(format!("not YAML: {e}")))?;
    let field = |name: &str| {
        doc.get(name)
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("a flow needs a string `{name}`")))
    };
    let (namespace, id) = (field("namespace")?, field("id")?);
    names::namespace(&namespace)?;
    names::id("flow id", &id)?;
    Ok((namespace, id))
}

fn what(namespace: &str, id: &str) -> String {
    format!("flow `{namespace}.{id}`")
}

fn dir(namespace: &str, id: &str) -> RepoResult<String> {
    names::namespace(namespace)?;
    names::id("flow id", id)?;
    Ok(format!("flows/{namespace}/{id}/"))
}

fn latest_key(namespace: &str, id: &str) -> RepoResult<Key> {
    names::key(
        &what(namespace, id),
        format!("{}latest.json", dir(namespace, id)?),
    )
}

fn revision_key(namespace: &str, id: &str, revision: u32) -> RepoResult<Key> {
    names::key(
        &what(namespace, id),
        format!("{}{revision}.yaml", dir(namespace, id)?),
    )
}

/// Flows and their revisions.
#[derive(Clone)]
pub struct FlowRepo {
    store: DynStore,
    retry: RetryPolicy,
}

impl std::fmt::Debug for FlowRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRepo")
            .field("store", &self.store.url())
            .finish()
    }
}

impl FlowRepo {
    /// Flows of `store`.
    pub fn new(store: DynStore) -> FlowRepo {
        FlowRepo {
            store,
            retry: RetryPolicy::default(),
        }
    }

    /// Saves a source as a new revision of the flow it declares (created when new). 3 requests
    /// without a race: GET of the index, PUT-if-absent of the revision, conditional PUT of the index.
    pub async fn save(&self, source: &str) -> RepoResult<FlowRevision> {
        let (namespace, id) = flow_identity(source)?;
        self.write(&namespace, &id, source, false).await
    }

    /// Saves a new revision of the flow `namespace.id`: the source must declare the same id and
    /// namespace ([`RepoError::NamespaceChanged`] otherwise). Requests as [`FlowRepo::save`].
    pub async fn update(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> RepoResult<FlowRevision> {
        let (new_namespace, new_id) = flow_identity(source)?;
        if new_namespace != namespace {
            return Err(RepoError::NamespaceChanged {
                flow_id: id.to_owned(),
                namespace: namespace.to_owned(),
                new_namespace,
            });
        }
        if new_id != id {
            return Err(RepoError::InvalidFlow {
                reason: format!("the source declares id `{new_id}`, not `{id}`"),
            });
        }
        self.write(namespace, id, source, false).await
    }

    /// Deletes a flow: a tombstone revision, the history kept. `NotFound` when there is no flow or
    /// it is already deleted. 3 requests without a race.
    pub async fn delete(&self, namespace: &str, id: &str) -> RepoResult<FlowRevision> {
        let latest = latest_key(namespace, id)?;
        let current =
            cas::get_json_opt::<Latest>(&*self.store, &latest, &what(namespace, id)).await?;
        if current.as_ref().is_none_or(|c| c.value.deleted) {
            return Err(RepoError::NotFound {
                what: what(namespace, id),
            });
        }
        self.write(namespace, id, "", true).await
    }

    async fn write(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        deleted: bool,
    ) -> RepoResult<FlowRevision> {
        let what = what(namespace, id);
        let latest_key = latest_key(namespace, id)?;
        let mut current = cas::get_json_opt::<Latest>(&*self.store, &latest_key, &what).await?;
        let mut revision = current.as_ref().map_or(0, |c| c.value.revision);
        // claim a revision number: the first free one after the index's
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            revision += 1;
            let key = revision_key(namespace, id, revision)?;
            match self
                .store
                .put(
                    &key,
                    bytes::Bytes::copy_from_slice(source.as_bytes()),
                    Condition::IfAbsent,
                )
                .await
            {
                Ok(_) => break,
                Err(e) if e.is_conflict() && attempts < self.retry.max_attempts => {}
                Err(e) if e.is_conflict() => {
                    return Err(RepoError::TooManyConflicts { what, attempts });
                }
                Err(e) => return Err(RepoError::store(format!("{what} revision {revision}"), e)),
            }
        }
        // move the index forward unless a later revision got there first
        let index = Latest { revision, deleted };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let condition = match &current {
                Some(c) if c.value.revision >= revision => break,
                Some(c) => Condition::IfVersion(c.version.clone()),
                None => Condition::IfAbsent,
            };
            match cas::put_json(&*self.store, &latest_key, &what, &index, condition).await {
                Ok(_) => break,
                Err(e) if e.is_conflict() && attempts < self.retry.max_attempts => {
                    current = cas::get_json_opt(&*self.store, &latest_key, &what).await?;
                }
                Err(e) if e.is_conflict() => {
                    return Err(RepoError::TooManyConflicts { what, attempts });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(FlowRevision {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            revision,
            source: source.to_owned(),
            deleted,
        })
    }

    /// The latest revision; `None` when the flow does not exist or is deleted. 2 requests (GET of
    /// the index, GET of the revision); 1 when absent or deleted.
    pub async fn get(&self, namespace: &str, id: &str) -> RepoResult<Option<FlowRevision>> {
        let latest = latest_key(namespace, id)?;
        let Some(current) =
            cas::get_json_opt::<Latest>(&*self.store, &latest, &what(namespace, id)).await?
        else {
            return Ok(None);
        };
        if current.value.deleted {
            return Ok(None);
        }
        self.get_revision(namespace, id, current.value.revision)
            .await
    }

    /// One revision (deleted ones included, with `deleted` set); `None` when absent. 1 request (GET).
    pub async fn get_revision(
        &self,
        namespace: &str,
        id: &str,
        revision: u32,
    ) -> RepoResult<Option<FlowRevision>> {
        let key = revision_key(namespace, id, revision)?;
        let what = format!("{} revision {revision}", what(namespace, id));
        match self.store.get(&key).await {
            Ok(object) => {
                let source = String::from_utf8(object.bytes.to_vec()).map_err(|_| {
                    RepoError::InvalidFlow {
                        reason: format!("{what} is not UTF-8"),
                    }
                })?;
                Ok(Some(FlowRevision {
                    namespace: namespace.to_owned(),
                    id: id.to_owned(),
                    revision,
                    deleted: source.is_empty(),
                    source,
                }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(RepoError::store(what, e)),
        }
    }

    /// Every revision of a flow, oldest first (tombstones included). 1 LIST request per 1,000.
    pub async fn revisions(&self, namespace: &str, id: &str) -> RepoResult<Vec<FlowSummary>> {
        let prefix = dir(namespace, id)?;
        let entries = self
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| RepoError::store(what(namespace, id), e))?;
        let mut out: Vec<FlowSummary> = entries
            .iter()
            .filter_map(|e| {
                let revision = e
                    .key
                    .as_str()
                    .strip_prefix(&prefix)?
                    .strip_suffix(".yaml")?
                    .parse()
                    .ok()?;
                Some(FlowSummary {
                    namespace: namespace.to_owned(),
                    id: id.to_owned(),
                    revision,
                    deleted: e.size == 0,
                    size: e.size,
                })
            })
            .collect();
        out.sort_by_key(|s| s.revision);
        Ok(out)
    }

    /// The flows of a namespace (not of its sub-namespaces) that are not deleted, with their latest
    /// revision, sorted by id. No GET: 1 LIST request per 1,000 revisions in the namespace.
    pub async fn list(&self, namespace: &str) -> RepoResult<Vec<FlowSummary>> {
        names::namespace(namespace)?;
        self.list_latest(
            &format!("flows/{namespace}/"),
            &format!("flows of namespace `{namespace}`"),
        )
        .await
    }

    /// The flows of every namespace that are not deleted, with their latest revision, sorted by
    /// namespace and id. No GET: 1 LIST request per 1,000 revisions in storage.
    pub async fn list_every(&self) -> RepoResult<Vec<FlowSummary>> {
        self.list_latest("flows/", "flows").await
    }

    /// The latest revision of each flow whose revisions are under `prefix` (`flows/` or
    /// `flows/{namespace}/`), deleted ones left out.
    async fn list_latest(&self, prefix: &str, what: &str) -> RepoResult<Vec<FlowSummary>> {
        let entries = self
            .store
            .list_all(prefix)
            .await
            .map_err(|e| RepoError::store(what.to_owned(), e))?;
        let mut latest: std::collections::BTreeMap<(String, String), FlowSummary> =
            Default::default();
        for e in &entries {
            // flows/{namespace}/{flowId}/{revision}.yaml
            let mut parts = e
                .key
                .as_str()
                .strip_prefix("flows/")
                .unwrap_or("")
                .split('/');
            let (Some(namespace), Some(id), Some(file), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(revision) = file
                .strip_suffix(".yaml")
                .and_then(|r| r.parse::<u32>().ok())
            else {
                continue;
            };
            let summary = FlowSummary {
                namespace: namespace.to_owned(),
                id: id.to_owned(),
                revision,
                deleted: e.size == 0,
                size: e.size,
            };
            let key = (namespace.to_owned(), id.to_owned());
            match latest.get(&key) {
                Some(s) if s.revision >= revision => {}
                _ => {
                    latest.insert(key, summary);
                }
            }
        }
        Ok(latest.into_values().filter(|s| !s.deleted).collect())
    }
}
