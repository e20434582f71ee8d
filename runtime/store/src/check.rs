//! Does a store honour conditional writes? The start-up probe of the S3 backend and `weft storage check`.

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::key::Key;
use crate::object::{Condition, ObjectStore, Version};

/// One step of the check.
#[derive(Clone, Debug)]
pub struct CheckStep {
    /// What was tried, e.g. `create-if-absent of an existing key`.
    pub name: &'static str,
    /// Whether the store behaved as weft needs.
    pub ok: bool,
    /// Whether weft depends on this step (a failed optional step is a warning).
    pub required: bool,
    /// What happened.
    pub detail: String,
}

/// The outcome of [`check_conditional_writes`].
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The store, as a URL.
    pub store: String,
    /// The steps, in order.
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// The first required step that failed, if any.
    pub fn first_failure(&self) -> Option<&CheckStep> {
        self.steps.iter().find(|s| s.required && !s.ok)
    }

    /// True when every required step passed.
    pub fn passed(&self) -> bool {
        self.first_failure().is_none()
    }
}

/// Writes, rewrites and deletes a fresh object under `.weft/probe/` and records whether every
/// condition was enforced: create-if-absent twice (the second must conflict), an update with the
/// current version (must succeed) and with a stale one (must conflict), a delete with a stale version
/// (should conflict), a delete. About seven requests. An error other than a conflict (network,
/// permissions) is returned as is.
pub async fn check_conditional_writes(store: &dyn ObjectStore) -> Result<CheckReport> {
    let key = Key::reserved(format!(".weft/probe/{}", uuid::Uuid::new_v4().simple()));
    let mut steps = Vec::new();
    let mut step = |name, required, ok, detail: String| {
        steps.push(CheckStep {
            name,
            ok,
            required,
            detail,
        });
        ok
    };

    let created = store
        .put(&key, Bytes::from_static(b"1"), Condition::IfAbsent)
        .await;
    let v1 = match created {
        Ok(v) => {
            step(
                "create-if-absent of a new key",
                true,
                true,
                format!("created, version {v}"),
            );
            v
        }
        Err(e) if e.is_conflict() => {
            step(
                "create-if-absent of a new key",
                true,
                false,
                format!("refused: {e}"),
            );
            return finish(store, &key, steps).await;
        }
        Err(e) => return Err(e),
    };

    let again = store
        .put(&key, Bytes::from_static(b"2"), Condition::IfAbsent)
        .await;
    match outcome(again)? {
        Outcome::Conflict => step(
            "create-if-absent of an existing key",
            true,
            true,
            "refused with a conflict, as it must".to_owned(),
        ),
        Outcome::Written(v) => step(
            "create-if-absent of an existing key",
            true,
            false,
            format!("accepted (version {v}): `If-None-Match: *` is ignored"),
        ),
    };

    let current = store.head(&key).await?.version;
    let updated = store
        .put(
            &key,
            Bytes::from_static(b"3"),
            Condition::IfVersion(current.clone()),
        )
        .await;
    let v2 = match outcome(updated)? {
        Outcome::Written(v) => {
            step(
                "update with the current version",
                true,
                v != current,
                if v != current {
                    format!("accepted, new version {v}")
                } else {
                    format!("accepted, but the version did not change ({v})")
                },
            );
            Some(v)
        }
        Outcome::Conflict => {
            step(
                "update with the current version",
                true,
                false,
                "refused with a conflict".to_owned(),
            );
            None
        }
    };

    let stale = store
        .put(
            &key,
            Bytes::from_static(b"4"),
            Condition::IfVersion(v1.clone()),
        )
        .await;
    if v2.is_some() {
        match outcome(stale)? {
            Outcome::Conflict => step(
                "update with a stale version",
                true,
                true,
                "refused with a conflict, as it must".to_owned(),
            ),
            Outcome::Written(v) => step(
                "update with a stale version",
                true,
                false,
                format!("accepted (version {v}): `If-Match` is ignored"),
            ),
        };
    }

    let stale_delete = store.delete(&key, Some(&Version::new("\"0-stale\""))).await;
    match stale_delete {
        Err(e) if e.is_conflict() => step(
            "delete with a stale version",
            false,
            true,
            "refused with a conflict".to_owned(),
        ),
        Ok(()) => step(
            "delete with a stale version",
            false,
            false,
            "accepted: conditional deletes are not honoured (weft does not rely on them)"
                .to_owned(),
        ),
        Err(e) => return Err(e),
    };
    finish(store, &key, steps).await
}

enum Outcome {
    Written(Version),
    Conflict,
}

fn outcome(result: Result<Version>) -> Result<Outcome> {
    match result {
        Ok(v) => Ok(Outcome::Written(v)),
        Err(StoreError::Conflict { .. }) => Ok(Outcome::Conflict),
        Err(e) => Err(e),
    }
}

async fn finish(store: &dyn ObjectStore, key: &Key, steps: Vec<CheckStep>) -> Result<CheckReport> {
    store.delete(key, None).await?;
    Ok(CheckReport {
        store: store.url(),
        steps,
    })
}
