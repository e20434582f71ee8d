//! JSON documents read with their version and written back with a version condition: the one
//! read-modify-write loop of the repositories (executions, trigger state).

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::key::Key;
use crate::object::{Condition, ObjectStore, Version};
use crate::repo::error::{RepoError, RepoResult, UpdateError};

/// A value read from storage with the version of exactly the bytes it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The version to pass to a conditional write of the same key.
    pub version: Version,
}

/// What a successful read-modify-write returns.
#[derive(Clone, Debug)]
pub struct Updated<T, R> {
    /// The document as now stored.
    pub value: T,
    /// Its version (unchanged when nothing was written).
    pub version: Version,
    /// What the closure returned on the attempt that was written.
    pub result: R,
    /// How many times the closure ran (1 when there was no conflict).
    pub attempts: u32,
    /// False when the closure left the document byte-for-byte unchanged and no write was made.
    pub written: bool,
}

/// How a read-modify-write retries after a lost conditional write: up to `max_attempts` runs of
/// the closure, sleeping a random time in `[0, min(max_delay, base_delay * 2^n)]` (full jitter)
/// before run `n + 2`, so racing writers spread out instead of colliding again in lock step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most runs of the closure (at least 1).
    pub max_attempts: u32,
    /// The first back-off ceiling.
    pub base_delay: Duration,
    /// The largest back-off ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 100 attempts, 2 ms doubling up to 200 ms.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 100,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The jittered pause after the `failed`-th lost write (1-based).
    fn delay(&self, failed: u32) -> Duration {
        use rand::Rng;
        let exp = failed.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=micros))
    }
}

pub(crate) fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> RepoResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| RepoError::json(what, e))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> RepoResult<T> {
    serde_json::from_slice(bytes).map_err(|e| RepoError::json(what, e))
}

/// One GET: the document and its version.
pub(crate) async fn get_json<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &Key,
    what: &str,
) -> RepoResult<Versioned<T>> {
    let object = store
        .get(key)
        .await
        .map_err(|e| RepoError::store(what, e))?;
    Ok(Versioned {
        value: from_json(what, &object.bytes)?,
        version: object.version,
    })
}

/// One GET; `None` when absent.
pub(crate) async fn get_json_opt<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &Key,
    what: &str,
) -> RepoResult<Option<Versioned<T>>> {
    match get_json(store, key, what).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// One PUT with `condition`.
pub(crate) async fn put_json<T: Serialize + ?Sized>(
    store: &dyn ObjectStore,
    key: &Key,
    what: &str,
    value: &T,
    condition: Condition,
) -> RepoResult<Version> {
    let bytes = to_json(what, value)?;
    store
        .put(key, Bytes::from(bytes), condition)
        .await
        .map_err(|e| RepoError::store(what, e))
}

/// The read-modify-write loop (`init` makes the document when absent, written if absent). Without `cached`: one GET + one conditional PUT when nobody else
/// writes in between (no PUT when `f` leaves the document's bytes unchanged). With `cached`
/// (a copy the caller read earlier): one conditional PUT, and a fresh GET only after a conflict.
pub(crate) async fn update_json<T, R, E, F>(
    store: &dyn ObjectStore,
    key: &Key,
    what: &str,
    retry: RetryPolicy,
    cached: Option<Versioned<T>>,
    init: Option<&(dyn Fn() -> T + Send + Sync)>,
    mut f: F,
) -> Result<Updated<T, R>, UpdateError<E>>
where
    T: Serialize + DeserializeOwned + Send,
    F: FnMut(&mut T) -> Result<R, E> + Send,
{
    let max_attempts = retry.max_attempts.max(1);
    let mut cached = cached;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (mut value, version, read_bytes) = match cached.take() {
            Some(v) => (v.value, Some(v.version), None),
            None => match store.get(key).await {
                Ok(object) => {
                    let value: T = from_json(what, &object.bytes)?;
                    (value, Some(object.version), Some(object.bytes))
                }
                Err(e) if e.is_not_found() && init.is_some() => match init {
                    Some(init) => (init(), None, None),
                    None => return Err(RepoError::store(what, e).into()),
                },
                Err(e) => return Err(RepoError::store(what, e).into()),
            },
        };
        let result = f(&mut value).map_err(UpdateError::Aborted)?;
        let bytes = to_json(what, &value)?;
        if let (Some(version), Some(read)) = (&version, &read_bytes)
            && read.as_ref() == bytes.as_slice()
        {
            return Ok(Updated {
                value,
                version: version.clone(),
                result,
                attempts: attempt,
                written: false,
            });
        }
        let condition = match version {
            Some(v) => Condition::IfVersion(v),
            None => Condition::IfAbsent,
        };
        match store.put(key, Bytes::from(bytes), condition).await {
            Ok(version) => {
                return Ok(Updated {
                    value,
                    version,
                    result,
                    attempts: attempt,
                    written: true,
                });
            }
            Err(e) if e.is_conflict() => {
                if attempt >= max_attempts {
                    return Err(RepoError::TooManyConflicts {
                        what: what.to_owned(),
                        attempts: attempt,
                    }
                    .into());
                }
                tokio::time::sleep(retry.delay(attempt)).await;
            }
            Err(e) => return Err(RepoError::store(what, e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_ceiling() {
        let p = RetryPolicy::default();
        for n in 1..40 {
            assert!(p.delay(n) <= p.max_delay);
        }
        assert!(p.delay(1) <= p.base_delay);
    }
}
