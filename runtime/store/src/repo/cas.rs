//! JSON documents read with their version and written back with a version condition: the one
//! read-modify-write loop of the repositories (executions, trigger state).

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::key::Key;
use crate::object::{Condition, DynStore, ObjectStore, Version};
use crate::repo::codec::{DocIo, JsonCodec};
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
    /// Bytes of the document's head as stored (the whole document for plain JSON).
    pub size: usize,
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

/// The read-modify-write loop of a plain JSON document (`init` makes the document when absent,
/// written if absent): [`update_doc`] with [`JsonCodec`].
pub(crate) async fn update_json<T, R, E, F>(
    store: &DynStore,
    key: &Key,
    what: &str,
    retry: RetryPolicy,
    cached: Option<Versioned<T>>,
    init: Option<&(dyn Fn() -> T + Send + Sync)>,
    f: F,
) -> Result<Updated<T, R>, UpdateError<E>>
where
    T: Serialize + DeserializeOwned + Send,
    F: FnMut(&mut T) -> Result<R, E> + Send,
{
    let codec = JsonCodec::<T>::new();
    let no_parts = |name: &str| -> RepoResult<Key> {
        Err(RepoError::Codec {
            what: what.to_owned(),
            key: key.to_string(),
            reason: format!("a plain JSON document has no part `{name}`"),
        })
    };
    let io = DocIo {
        store,
        key,
        what,
        codec: &codec,
        part_key: &no_parts,
    };
    update_doc(&io, retry, cached, init, f).await
}

/// The read-modify-write loop (`init` makes the document when absent, written if absent).
///
/// Without `cached`: one GET of the head + one GET per part it references (concurrently), then
/// one PUT per new part and one conditional PUT of the head when nobody else writes in between
/// (no PUT when `f` leaves the head's bytes unchanged and makes no part). With `cached` (a copy the
/// caller read or wrote earlier): only the PUTs, and a fresh read only after a conflict. Parts are
/// written before the head that references them; a part of a lost attempt stays unreferenced.
pub(crate) async fn update_doc<T, R, E, F>(
    io: &DocIo<'_, T>,
    retry: RetryPolicy,
    cached: Option<Versioned<T>>,
    init: Option<&(dyn Fn() -> T + Send + Sync)>,
    mut f: F,
) -> Result<Updated<T, R>, UpdateError<E>>
where
    T: Send,
    F: FnMut(&mut T) -> Result<R, E> + Send,
{
    let max_attempts = retry.max_attempts.max(1);
    let mut cached = cached;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (mut value, version, read_head) = match cached.take() {
            Some(v) => (v.value, Some(v.version), None),
            None => match io.load_opt().await? {
                Some(loaded) => (loaded.value, Some(loaded.version), Some(loaded.head)),
                None => match init {
                    Some(init) => (init(), None, None),
                    None => {
                        return Err(RepoError::NotFound {
                            what: io.what.to_owned(),
                        }
                        .into());
                    }
                },
            },
        };
        let result = f(&mut value).map_err(UpdateError::Aborted)?;
        let encoded = io.encode(&mut value)?;
        if let (Some(version), Some(read)) = (&version, &read_head)
            && encoded.parts.is_empty()
            && read.as_ref() == encoded.head.as_slice()
        {
            return Ok(Updated {
                value,
                version: version.clone(),
                result,
                attempts: attempt,
                written: false,
                size: encoded.head.len(),
            });
        }
        let condition = match version {
            Some(v) => Condition::IfVersion(v),
            None => Condition::IfAbsent,
        };
        match io.write(encoded, condition).await {
            Ok((version, size)) => {
                return Ok(Updated {
                    value,
                    version,
                    result,
                    attempts: attempt,
                    written: true,
                    size,
                });
            }
            Err(e) if e.is_conflict() => {
                if attempt >= max_attempts {
                    return Err(RepoError::TooManyConflicts {
                        what: io.what.to_owned(),
                        attempts: attempt,
                    }
                    .into());
                }
                tokio::time::sleep(retry.delay(attempt)).await;
            }
            Err(e) => return Err(e.into()),
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
