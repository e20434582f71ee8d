//! The execution index: `index/executions/{namespace}/{flowId}/{startDate}-{executionId}`, one
//! small JSON object per execution (namespace, flow, id, start date, state), so executions are
//! listed by namespace, flow and date range without reading every execution document. The start
//! date is written as `YYYY-MM-DDTHH:MM:SS.mmmZ` (fixed width, UTC), so key order is time order.
//!
//! The index is derived data: whoever wrote the execution document (with its version condition)
//! writes the entry after it, last writer wins.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::key::Key;
use crate::object::{Condition, DynStore};
use crate::repo::cas;
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::names;

/// Length of the formatted start date in a key.
const DATE_LEN: usize = "2024-01-01T00:00:00.000Z".len();

/// The key of an entry of `namespace` from what follows `index/executions/{namespace}/` in its
/// storage key: `{flowId}/{startDate}-{executionId}`.
fn parse_key(namespace: &str, rest: &str) -> Option<IndexKey> {
    let (flow_id, name) = rest.split_once('/')?;
    let date = name.get(..DATE_LEN)?;
    let id = name.get(DATE_LEN..)?.strip_prefix('-')?;
    let start_date = DateTime::parse_from_rfc3339(date).ok()?.with_timezone(&Utc);
    Some(IndexKey {
        namespace: namespace.to_owned(),
        flow_id: flow_id.to_owned(),
        id: id.to_owned(),
        start_date,
    })
}

/// One indexed execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    /// The flow's namespace.
    pub namespace: String,
    /// The flow id.
    pub flow_id: String,
    /// The execution id.
    pub id: String,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// Its state (`RUNNING`, `SUCCESS`, ...).
    pub state: String,
    /// When it ended, once terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateTime<Utc>>,
    /// Anything else the writer wants listed without a read of the execution (labels, ...).
    #[serde(default, skip_serializing_if = "Json::is_null")]
    pub extra: Json,
}

/// An entry as known from its key alone (a listing, no GET).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexKey {
    /// The flow's namespace.
    pub namespace: String,
    /// The flow id.
    pub flow_id: String,
    /// The execution id.
    pub id: String,
    /// When it started (millisecond precision).
    pub start_date: DateTime<Utc>,
}

fn date_text(date: &DateTime<Utc>) -> String {
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn entry_key(
    namespace: &str,
    flow_id: &str,
    start_date: &DateTime<Utc>,
    id: &str,
) -> RepoResult<Key> {
    names::namespace(namespace)?;
    names::id("flow id", flow_id)?;
    names::id("execution id", id)?;
    names::key(
        &format!("index entry of execution `{id}`"),
        format!(
            "index/executions/{namespace}/{flow_id}/{}-{id}",
            date_text(start_date)
        ),
    )
}

/// Which executions [`ExecutionIndex::list`] returns.
#[derive(Clone, Debug, Default)]
pub struct IndexQuery<'a> {
    /// The namespace (exactly; not its sub-namespaces).
    pub namespace: &'a str,
    /// One flow, or every flow of the namespace.
    pub flow_id: Option<&'a str>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
}

/// The execution index.
#[derive(Clone)]
pub struct ExecutionIndex {
    store: DynStore,
}

impl std::fmt::Debug for ExecutionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionIndex")
            .field("store", &self.store.url())
            .finish()
    }
}

impl ExecutionIndex {
    /// The index of `store`.
    pub fn new(store: DynStore) -> ExecutionIndex {
        ExecutionIndex { store }
    }

    /// Writes (or rewrites, e.g. with a new state) an entry. 1 request (PUT).
    pub async fn put(&self, entry: &IndexEntry) -> RepoResult<()> {
        let key = entry_key(
            &entry.namespace,
            &entry.flow_id,
            &entry.start_date,
            &entry.id,
        )?;
        cas::put_json(
            &*self.store,
            &key,
            &format!("index entry of execution `{}`", entry.id),
            entry,
            Condition::None,
        )
        .await
        .map(|_| ())
    }

    /// Reads one entry; `None` when absent. 1 request (GET).
    pub async fn get(&self, key: &IndexKey) -> RepoResult<Option<IndexEntry>> {
        let k = entry_key(&key.namespace, &key.flow_id, &key.start_date, &key.id)?;
        Ok(cas::get_json_opt(
            &*self.store,
            &k,
            &format!("index entry of execution `{}`", key.id),
        )
        .await?
        .map(|v| v.value))
    }

    /// Removes an entry. 1 request (DELETE).
    pub async fn delete(&self, key: &IndexKey) -> RepoResult<()> {
        let k = entry_key(&key.namespace, &key.flow_id, &key.start_date, &key.id)?;
        self.store
            .delete(&k, None)
            .await
            .map_err(|e| RepoError::store(format!("index entry of execution `{}`", key.id), e))
    }

    /// The executions matching `query`, oldest first within a flow (flows in id order), from keys
    /// alone. 1 LIST request per 1,000 keys under the narrowest prefix: the flow's, narrowed further to
    /// the common start of the two dates when both are given.
    pub async fn list(&self, query: &IndexQuery<'_>) -> RepoResult<Vec<IndexKey>> {
        names::namespace(query.namespace)?;
        let mut prefix = format!("index/executions/{}/", query.namespace);
        if let Some(flow) = query.flow_id {
            names::id("flow id", flow)?;
            prefix.push_str(flow);
            prefix.push('/');
            if let (Some(from), Some(to)) = (&query.from, &query.to) {
                let (a, b) = (date_text(from), date_text(to));
                let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                prefix.push_str(&a[..common]);
            }
        }
        let base_len = format!("index/executions/{}/", query.namespace).len();
        let entries = self.store.list_all(&prefix).await.map_err(|e| {
            RepoError::store(format!("execution index of `{}`", query.namespace), e)
        })?;
        Ok(entries
            .iter()
            .filter_map(|e| parse_key(query.namespace, e.key.as_str().get(base_len..)?))
            .filter(|k| query.from.is_none_or(|f| k.start_date >= trunc(&f)))
            .filter(|k| query.to.is_none_or(|t| k.start_date < t))
            .collect())
    }

    /// The executions of every namespace that is `namespace` or below it (`io.kestra` matches
    /// `io.kestra` and `io.kestra.tests`, not `io.kestrax`), or of every namespace when `None`,
    /// from keys alone, in key order. 1 LIST request per 1,000 keys under the namespace's prefix.
    pub async fn list_under(&self, namespace: Option<&str>) -> RepoResult<Vec<IndexKey>> {
        let base = "index/executions/";
        let prefix = match namespace {
            Some(ns) => {
                names::namespace(ns)?;
                format!("{base}{ns}")
            }
            None => base.to_owned(),
        };
        let entries = self.store.list_all(&prefix).await.map_err(|e| {
            RepoError::store(
                format!("execution index under `{}`", namespace.unwrap_or("")),
                e,
            )
        })?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let rest = e.key.as_str().strip_prefix(base)?;
                let (ns, rest) = rest.split_once('/')?;
                if let Some(want) = namespace
                    && !weft_flow::ids::namespace_within(ns, want)
                {
                    return None;
                }
                parse_key(ns, rest)
            })
            .collect())
    }

    /// As [`ExecutionIndex::list`], with each entry's body (state, ...): 1 more GET per entry.
    pub async fn list_entries(&self, query: &IndexQuery<'_>) -> RepoResult<Vec<IndexEntry>> {
        let mut out = Vec::new();
        for key in self.list(query).await? {
            if let Some(entry) = self.get(&key).await? {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

/// `date` at millisecond precision, as keys hold it.
fn trunc(date: &DateTime<Utc>) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&date_text(date))
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(*date)
}
