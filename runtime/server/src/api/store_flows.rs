//! The flows of a tenant's store as the drivers need them: parsed, validated and turned into
//! executors, with a cache shared by every driver of the process.
//!
//! - A revision never changes once written, so its executor is parsed once per process and kept
//!   (by tenant, namespace, flow and revision). Starting the latest revision still reads it (the
//!   flow's index and the revision: two GETs); a start at a known revision reads nothing.
//! - The flows with Flow triggers, which every driver consults when an execution ends, are
//!   listed (one LIST of the flows, a GET only for a revision not seen before) at most once per
//!   [`LISTENERS_TTL`] per tenant, and at once after a flow of the tenant was saved or deleted
//!   through this process. A flow saved through another instance is seen here within that time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_executor::Executor;
use weft_flow::expr::Renderer;
use weft_flow::flow_trigger::FLOW_TYPES;
use weft_store::DynStore;
use weft_store::repo::{FlowRepo, FlowRevision, RepoError};

use super::App;
use crate::runner::{FlowSource, RunError};

/// How long the list of flows with Flow triggers of a tenant is reused.
pub(crate) const LISTENERS_TTL: Duration = Duration::from_secs(2);

/// Parsed revisions kept at most; the cache starts again empty past it.
const MAX_PARSED: usize = 10_000;

/// When a tenant's flows with Flow triggers were listed, and them.
type Listed = (Instant, Arc<Vec<Arc<Executor>>>);

/// What the drivers of this process share about flows.
#[derive(Default)]
pub(crate) struct FlowCache {
    /// `tenant/namespace/id@revision` -> its executor.
    parsed: Mutex<HashMap<String, Arc<Executor>>>,
    /// `tenant/namespace/id@revision` of revisions without a Flow trigger.
    not_listening: Mutex<HashSet<String>>,
    /// tenant -> its flows with Flow triggers.
    listeners: Mutex<HashMap<String, Listed>>,
}

impl FlowCache {
    /// Forgets the list of flows with Flow triggers of `tenant` (a flow of it was saved).
    pub(crate) fn flows_changed(&self, tenant: &str) {
        if let Ok(mut m) = self.listeners.lock() {
            m.remove(tenant);
        }
    }

    fn parsed(&self, key: &str) -> Option<Arc<Executor>> {
        self.parsed.lock().ok()?.get(key).cloned()
    }

    fn keep(&self, key: String, executor: Arc<Executor>) {
        if let Ok(mut m) = self.parsed.lock() {
            if m.len() >= MAX_PARSED {
                m.clear();
            }
            m.insert(key, executor);
        }
    }

    fn known_quiet(&self, key: &str) -> bool {
        self.not_listening.lock().is_ok_and(|s| s.contains(key))
    }

    fn mark_not_listening(&self, key: String) {
        if let Ok(mut s) = self.not_listening.lock() {
            if s.len() >= MAX_PARSED {
                s.clear();
            }
            s.insert(key);
        }
    }

    fn fresh_listeners(&self, tenant: &str) -> Option<Arc<Vec<Arc<Executor>>>> {
        let m = self.listeners.lock().ok()?;
        let (at, list) = m.get(tenant)?;
        (at.elapsed() < LISTENERS_TTL).then(|| list.clone())
    }
}

/// Flows of one tenant's store, parsed and validated against the server's registry.
pub(crate) struct StoreFlows {
    tenant: String,
    store: DynStore,
    registry: Arc<weft_flow::Registry>,
    renderer: Arc<Renderer>,
    cache: Arc<FlowCache>,
}

impl StoreFlows {
    /// The flows of `tenant`, whose view of the store is `store`.
    pub(crate) fn new(app: &App, tenant: &str, store: DynStore) -> StoreFlows {
        StoreFlows {
            tenant: tenant.to_string(),
            store,
            registry: app.setup.registry.clone(),
            renderer: app.setup.renderer.clone(),
            cache: app.flows.clone(),
        }
    }

    fn key(&self, namespace: &str, id: &str, revision: u32) -> String {
        format!("{}/{namespace}/{id}@{revision}", self.tenant)
    }

    /// The executor of a stored revision, parsed once per process.
    pub(crate) fn executor(&self, rev: &FlowRevision) -> Result<Arc<Executor>, RunError> {
        let key = self.key(&rev.namespace, &rev.id, rev.revision);
        if let Some(e) = self.cache.parsed(&key) {
            return Ok(e);
        }
        let flow_error = |message: String| RunError::Flow {
            namespace: rev.namespace.clone(),
            id: rev.id.clone(),
            message,
        };
        let parsed = weft_flow::parse_flow(&rev.source, &self.registry).map_err(|diags| {
            let first = diags
                .iter()
                .find(|d| d.is_error())
                .map(|d| format!("{}: {d}", d.pos))
                .unwrap_or_default();
            flow_error(format!("revision {} is not valid: {first}", rev.revision))
        })?;
        let mut flow = parsed.flow;
        flow.revision = Some(rev.revision);
        let executor = Arc::new(
            Executor::new(&flow, &self.registry, self.renderer.clone())
                .map_err(|e| flow_error(e.to_string()))?,
        );
        self.cache.keep(key, executor.clone());
        Ok(executor)
    }

    /// The flows with Flow triggers, listed now.
    async fn list_listeners(&self) -> Result<Vec<Arc<Executor>>, RunError> {
        let storage = |e: RepoError| RunError::Storage(e.to_string());
        let repo = FlowRepo::new(self.store.clone());
        let mut out = Vec::new();
        for s in repo.list_every().await.map_err(storage)? {
            if s.deleted {
                continue;
            }
            let key = self.key(&s.namespace, &s.id, s.revision);
            if self.cache.known_quiet(&key) {
                continue;
            }
            if let Some(executor) = self.cache.parsed(&key) {
                let flow = executor.flow();
                if flow
                    .triggers
                    .iter()
                    .any(|t| FLOW_TYPES.contains(&t.type_name.as_str()))
                {
                    out.push(executor);
                } else {
                    self.cache.mark_not_listening(key);
                }
                continue;
            }
            let Some(rev) = repo
                .get_revision(&s.namespace, &s.id, s.revision)
                .await
                .map_err(storage)?
            else {
                continue;
            };
            let names_flow_trigger = FLOW_TYPES.iter().any(|t| rev.source.contains(t));
            if !names_flow_trigger {
                self.cache.mark_not_listening(key);
                continue;
            }
            match self.executor(&rev) {
                Ok(executor) => out.push(executor),
                Err(e) => tracing::warn!(namespace = %s.namespace, flow = %s.id, error = %e,
                    "flow with a Flow trigger not loaded"),
            }
        }
        Ok(out)
    }
}

impl FlowSource for StoreFlows {
    fn load<'a>(
        &'a self,
        namespace: &'a str,
        id: &'a str,
        revision: Option<u32>,
    ) -> weft_engine::BoxFuture<'a, Result<Option<Arc<Executor>>, RunError>> {
        Box::pin(async move {
            if let Some(r) = revision
                && let Some(e) = self.cache.parsed(&self.key(namespace, id, r))
            {
                return Ok(Some(e));
            }
            let repo = FlowRepo::new(self.store.clone());
            let found = match revision {
                Some(r) => repo.get_revision(namespace, id, r).await,
                None => repo.get(namespace, id).await,
            }
            .map_err(|e| RunError::Storage(e.to_string()))?;
            match found.filter(|r| !r.deleted) {
                Some(rev) => self.executor(&rev).map(Some),
                None => Ok(None),
            }
        })
    }

    /// See the module: one LIST at most every [`LISTENERS_TTL`] per tenant and process.
    fn triggered<'a>(&'a self) -> weft_engine::BoxFuture<'a, Result<Vec<Arc<Executor>>, RunError>> {
        Box::pin(async move {
            if let Some(list) = self.cache.fresh_listeners(&self.tenant) {
                return Ok(list.to_vec());
            }
            let list = Arc::new(self.list_listeners().await?);
            if let Ok(mut m) = self.cache.listeners.lock() {
                m.insert(self.tenant.clone(), (Instant::now(), list.clone()));
            }
            Ok(list.to_vec())
        })
    }
}
