//! Leases (DESIGN.md §6): the executions a process drives are held under a lease in storage, so
//! that when the process dies another instance takes them over.
//!
//! One lease per driver: `leases/{tenant}/{rootExecutionId}.json` in the store's root, naming the
//! owner (a random id per process), the date it expires and the executions the driver holds (the
//! root and the subflow executions it started). The owner renews it well before it expires; a
//! tick on any instance lists the leases and claims an expired one with a version condition, so
//! exactly one instance takes each over. A tick reads only the leases that changed since this
//! process last saw them ([`crate::listed`]). An owner whose renewal loses (it stalled past the
//! expiry and was taken over) stops driving at once. The lease is deleted when the driver ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weft_store::{Condition, DynStore, Key, StoreError, Version};

use crate::listed::Listed;

/// Where the leases live in the store's root.
const PREFIX: &str = "leases/";

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseDoc {
    /// The process holding it.
    pub owner: String,
    /// The tenant of its executions.
    pub tenant: String,
    /// The first execution of the driver (its key).
    pub root: String,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
    /// The executions the driver holds that have not terminated.
    pub executions: Vec<String>,
}

/// A lease this process holds: its document and the version it wrote.
#[derive(Debug, Clone)]
pub struct Lease {
    key: Key,
    doc: LeaseDoc,
    version: Version,
}

impl Lease {
    /// The document as last written.
    pub fn doc(&self) -> &LeaseDoc {
        &self.doc
    }
}

/// Why a lease could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another process holds it now: stop driving.
    #[error("the lease on execution {0} was taken over by another instance")]
    Lost(String),
    /// The document could not be encoded.
    #[error("lease document: {0}")]
    Encode(serde_json::Error),
    /// Storage failed.
    #[error("lease on execution {root}: {source}")]
    Store {
        /// The root execution.
        root: String,
        /// The store's error.
        source: StoreError,
    },
}

/// The leases of one process.
#[derive(Debug, Clone)]
pub struct Leases {
    store: DynStore,
    owner: String,
    ttl: Duration,
    /// The leases as this process last read or wrote them.
    seen: Arc<Listed<LeaseDoc>>,
}

impl Leases {
    /// Leases in `store` (the root, not a tenant's view), held for `ttl` by this process.
    pub fn new(store: DynStore, ttl: Duration) -> Leases {
        Leases {
            store,
            owner: format!("{:016x}", rand::random::<u64>()),
            ttl,
            seen: Arc::default(),
        }
    }

    /// This process's owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a lease lasts without renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn key(tenant: &str, root: &str) -> Result<Key, LeaseError> {
        Key::new(format!("{PREFIX}{tenant}/{root}.json")).map_err(|source| LeaseError::Store {
            root: root.to_string(),
            source,
        })
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::TimeDelta::from_std(self.ttl).unwrap_or(chrono::TimeDelta::MAX)
    }

    async fn write(
        &self,
        key: Key,
        doc: LeaseDoc,
        condition: Condition,
    ) -> Result<Lease, LeaseError> {
        let store_err = |source: StoreError| match source.is_conflict() || source.is_not_found() {
            true => LeaseError::Lost(doc.root.clone()),
            false => LeaseError::Store {
                root: doc.root.clone(),
                source,
            },
        };
        let bytes = serde_json::to_vec(&doc).map_err(LeaseError::Encode)?;
        let version = self
            .store
            .put(&key, Bytes::from(bytes), condition)
            .await
            .map_err(store_err)?;
        self.seen.wrote(key.clone(), version.clone(), doc.clone());
        Ok(Lease { key, doc, version })
    }

    /// Takes the lease of a new driver; [`LeaseError::Lost`] when the key is held already.
    pub async fn acquire(
        &self,
        tenant: &str,
        root: &str,
        executions: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Lease, LeaseError> {
        let doc = LeaseDoc {
            owner: self.owner.clone(),
            tenant: tenant.to_string(),
            root: root.to_string(),
            expires_at: self.expiry(now),
            executions,
        };
        // only if absent: a live driver elsewhere keeps its lease (an action on its execution
        // is then driven here without one), an expired one is for a tick to claim
        self.write(Self::key(tenant, root)?, doc, Condition::IfAbsent)
            .await
    }

    /// Renews a lease this process holds, with the executions its driver holds now.
    pub async fn renew(
        &self,
        lease: &Lease,
        executions: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Lease, LeaseError> {
        self.rewrite(lease, executions, self.expiry(now)).await
    }

    /// Hands a lease back when its driver stops before its executions ended (the process shuts
    /// down): it expires now, so the next tick on any instance takes them over.
    pub async fn hand_back(
        &self,
        lease: &Lease,
        executions: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Lease, LeaseError> {
        self.rewrite(lease, executions, now).await
    }

    async fn rewrite(
        &self,
        lease: &Lease,
        executions: Vec<String>,
        expires_at: DateTime<Utc>,
    ) -> Result<Lease, LeaseError> {
        let doc = LeaseDoc {
            expires_at,
            executions,
            ..lease.doc.clone()
        };
        self.write(
            lease.key.clone(),
            doc,
            Condition::IfVersion(lease.version.clone()),
        )
        .await
    }

    /// Deletes a lease when its driver ended (kept when another process took it meanwhile).
    pub async fn release(&self, lease: &Lease) {
        // a process that never ticks would otherwise remember every lease it ever held
        self.seen.forget(&lease.key);
        if let Err(e) = self
            .store
            .delete(&lease.key, Some(&lease.version))
            .await
            .or_else(|e| {
                if e.is_conflict() || e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        {
            tracing::warn!(root = %lease.doc.root, error = %e, "could not delete the lease");
        }
    }

    /// Claims every lease expired at `now` (each with a version condition: exactly one instance
    /// wins each). A lease that cannot be read is skipped with a warning (the next tick tries
    /// again); only a failed listing is an error.
    pub async fn claim_expired(&self, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
        let mut claimed = Vec::new();
        let leases = self.seen.scan(&self.store, PREFIX).await?;
        for found in leases {
            if found.value.expires_at > now {
                continue;
            }
            let doc = LeaseDoc {
                owner: self.owner.clone(),
                expires_at: self.expiry(now),
                ..found.value
            };
            match self
                .write(found.key, doc, Condition::IfVersion(found.version))
                .await
            {
                Ok(lease) => claimed.push(lease),
                Err(LeaseError::Lost(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim an expired lease");
                }
            }
        }
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::*;

    fn leases(store: &DynStore) -> Leases {
        Leases::new(store.clone(), Duration::from_secs(30))
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_once_and_its_owner_loses_it() {
        let store: DynStore = Arc::new(weft_store::MemoryStore::new());
        let (a, b, c) = (leases(&store), leases(&store), leases(&store));
        let t0 = Utc::now();
        let held = a
            .acquire("main", "E1", vec!["E1".into()], t0)
            .await
            .unwrap();
        // a second driver on the same execution gets no lease while the first one holds it
        assert!(matches!(
            b.acquire("main", "E1", vec![], t0).await,
            Err(LeaseError::Lost(_))
        ));
        let held = a
            .renew(&held, vec!["E1".into(), "E2".into()], t0)
            .await
            .unwrap();
        // not expired yet: nobody claims it
        assert!(b.claim_expired(t0).await.unwrap().is_empty());
        // expired: one of two instances claims it
        let later = t0 + chrono::TimeDelta::seconds(31);
        let won_b = b.claim_expired(later).await.unwrap();
        let won_c = c.claim_expired(later).await.unwrap();
        assert_eq!(won_b.len() + won_c.len(), 1);
        let won = &won_b[0];
        assert_eq!(won.doc().owner, b.owner());
        assert_eq!(won.doc().executions, ["E1", "E2"]);
        assert!(won.doc().expires_at > later);
        // the old owner's renewal loses, and its release leaves the new owner's lease alone
        assert!(matches!(
            a.renew(&held, vec![], later).await,
            Err(LeaseError::Lost(_))
        ));
        a.release(&held).await;
        let renewed = b.renew(won, vec!["E1".into()], later).await.unwrap();
        b.release(&renewed).await;
        assert!(store.list_all(PREFIX).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_tick_reads_only_the_leases_that_changed() {
        let store = weft_store::open("memory://").await.unwrap();
        let (a, b) = (leases(&store), leases(&store));
        let t0 = Utc::now();
        let mut held = Vec::new();
        for root in ["E1", "E2", "E3"] {
            held.push(
                a.acquire("main", root, vec![root.into()], t0)
                    .await
                    .unwrap(),
            );
        }
        let gets = |before: &weft_store::RequestCounts| store.stats().snapshot().since(before).get;
        // the first tick of `b` reads them all; its next one none; `a` wrote them: none either
        let before = store.stats().snapshot();
        assert!(b.claim_expired(t0).await.unwrap().is_empty());
        assert_eq!(gets(&before), 3);
        let before = store.stats().snapshot();
        assert!(b.claim_expired(t0).await.unwrap().is_empty());
        assert!(a.claim_expired(t0).await.unwrap().is_empty());
        assert_eq!(gets(&before), 0);
        // one renewed (ten seconds later: it expires ten seconds after the others): read again
        let t10 = t0 + chrono::TimeDelta::seconds(10);
        a.renew(&held[0], vec!["E1".into()], t10).await.unwrap();
        let before = store.stats().snapshot();
        let later = t0 + chrono::TimeDelta::seconds(31);
        let claimed = b.claim_expired(later).await.unwrap();
        assert_eq!(gets(&before), 1);
        // E2 and E3 expired; E1 not, by the expiry read again (the one seen first has passed)
        let mut roots: Vec<&str> = claimed.iter().map(|l| l.doc().root.as_str()).collect();
        roots.sort_unstable();
        assert_eq!(roots, ["E2", "E3"]);
        // what a process released it forgets (one that never ticks would keep every lease)
        assert_eq!(b.seen.len(), 3);
        for lease in &claimed {
            b.release(lease).await;
        }
        assert_eq!(b.seen.len(), 1);
    }
}
