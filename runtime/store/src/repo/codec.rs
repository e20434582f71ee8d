//! How a versioned document is laid out in storage: one small *head* object, written with a
//! version condition, and any number of immutable *parts* it references (written first, under
//! content-addressed names, so a part left behind by a lost race is harmless and never replaces
//! anything). [`JsonCodec`] keeps the whole document in the head (no parts).
//!
//! The repository knows nothing of the document's type: a [`DocumentCodec`] says what the head
//! and the parts are, and how a document is put back together from them.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use tokio::task::JoinSet;

use crate::key::Key;
use crate::object::{Condition, DynStore, Version};
use crate::repo::error::{RepoError, RepoResult};

/// A document as it is about to be written: the head and the parts not yet stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The head's bytes (written with a version condition).
    pub head: Vec<u8>,
    /// New immutable parts `(name, bytes)` the head references; each name is one key segment
    /// (Kestra's id pattern) and must change whenever the content does (e.g. it holds a hash).
    pub parts: Vec<(String, Vec<u8>)>,
}

/// Splits a document into a head and immutable parts, and puts it back together. Errors are
/// readable sentences (the repository adds which document and which key).
pub trait DocumentCodec<T>: Send + Sync {
    /// The head and the parts to write for `doc`. `doc` may record that its parts are stored
    /// (the repository writes every returned part before the head, and drops `doc` if the head
    /// is not written).
    fn encode(&self, doc: &mut T) -> Result<Encoded, String>;
    /// A document from its head, and the names of the parts to [`DocumentCodec::attach`].
    fn decode(&self, head: &[u8]) -> Result<(T, Vec<String>), String>;
    /// Puts the parts named by [`DocumentCodec::decode`] back into `doc`, in the order of the
    /// names. Called once after every decode, with no parts when there are none.
    fn attach(&self, doc: &mut T, parts: Vec<(String, Bytes)>) -> Result<(), String>;
}

/// The whole document as one JSON head, no parts.
pub struct JsonCodec<T>(PhantomData<fn() -> T>);

impl<T> JsonCodec<T> {
    /// The codec.
    pub fn new() -> Self {
        JsonCodec(PhantomData)
    }
}

impl<T> Default for JsonCodec<T> {
    fn default() -> Self {
        JsonCodec::new()
    }
}

impl<T> std::fmt::Debug for JsonCodec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonCodec")
    }
}

impl<T: Serialize + DeserializeOwned> DocumentCodec<T> for JsonCodec<T> {
    fn encode(&self, doc: &mut T) -> Result<Encoded, String> {
        Ok(Encoded {
            head: serde_json::to_vec(doc).map_err(|e| format!("invalid JSON: {e}"))?,
            parts: Vec::new(),
        })
    }

    fn decode(&self, head: &[u8]) -> Result<(T, Vec<String>), String> {
        let doc = serde_json::from_slice(head).map_err(|e| format!("invalid JSON: {e}"))?;
        Ok((doc, Vec::new()))
    }

    fn attach(&self, _doc: &mut T, parts: Vec<(String, Bytes)>) -> Result<(), String> {
        match parts.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!("a plain JSON document has no part `{name}`")),
        }
    }
}

/// A codec with the keys of its parts: everything the repository needs to read and write one
/// document.
pub(crate) struct DocIo<'a, T> {
    pub(crate) store: &'a DynStore,
    pub(crate) key: &'a Key,
    pub(crate) what: &'a str,
    pub(crate) codec: &'a dyn DocumentCodec<T>,
    /// The key of a part, from its name (checked there).
    pub(crate) part_key: &'a (dyn Fn(&str) -> RepoResult<Key> + Send + Sync),
}

/// Most part requests in flight at once for one document.
const PART_CONCURRENCY: usize = 16;

/// What was read: the document, its head's version and bytes.
pub(crate) struct Loaded<T> {
    pub(crate) value: T,
    pub(crate) version: Version,
    pub(crate) head: Bytes,
}

impl<T> DocIo<'_, T> {
    fn codec_error(&self, key: &Key, reason: String) -> RepoError {
        RepoError::Codec {
            what: self.what.to_owned(),
            key: key.to_string(),
            reason,
        }
    }

    /// Reads the head (1 GET) and then every part it names (1 GET each, up to 16 at once).
    /// `NotFound` for a missing head; a missing or unreadable part names its key.
    pub(crate) async fn load(&self) -> RepoResult<Loaded<T>> {
        let object = self
            .store
            .get(self.key)
            .await
            .map_err(|e| RepoError::store(self.what, e))?;
        let (mut value, names) = self
            .codec
            .decode(&object.bytes)
            .map_err(|r| self.codec_error(self.key, r))?;
        let parts = self.get_parts(&names).await?;
        self.codec
            .attach(&mut value, parts)
            .map_err(|r| self.codec_error(self.key, r))?;
        Ok(Loaded {
            value,
            version: object.version,
            head: object.bytes,
        })
    }

    /// As [`DocIo::load`]; `None` when the head is absent.
    pub(crate) async fn load_opt(&self) -> RepoResult<Option<Loaded<T>>> {
        match self.load().await {
            Ok(l) => Ok(Some(l)),
            // only the head's absence: a missing part is an error of the document
            Err(RepoError::NotFound { what }) if what == self.what => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_parts(&self, names: &[String]) -> RepoResult<Vec<(String, Bytes)>> {
        let mut keys = Vec::with_capacity(names.len());
        for name in names {
            keys.push((self.part_key)(name)?);
        }
        let mut out: Vec<Option<Bytes>> = vec![None; names.len()];
        let mut set = JoinSet::new();
        let mut next = 0;
        while next < keys.len() || !set.is_empty() {
            while next < keys.len() && set.len() < PART_CONCURRENCY {
                let store = self.store.clone();
                let key = keys[next].clone();
                let i = next;
                set.spawn(async move { (i, store.get(&key).await) });
                next += 1;
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (i, got) = joined.map_err(|e| RepoError::Codec {
                what: self.what.to_owned(),
                key: self.key.to_string(),
                reason: format!("a part read did not finish: {e}"),
            })?;
            let object = got.map_err(|e| {
                RepoError::store(
                    format!("part `{}` of {} (`{}`)", names[i], self.what, keys[i]),
                    e,
                )
            })?;
            out[i] = Some(object.bytes);
        }
        names
            .iter()
            .zip(out)
            .zip(&keys)
            .map(|((name, bytes), key)| match bytes {
                Some(b) => Ok((name.clone(), b)),
                None => Err(self.codec_error(key, format!("part `{name}` was not read"))),
            })
            .collect()
    }

    /// Writes new parts (1 PUT if absent each, up to 16 at once). A part already stored under
    /// its content-addressed name (a retry, a lost race) is left as it is.
    pub(crate) async fn put_parts(&self, parts: Vec<(String, Vec<u8>)>) -> RepoResult<()> {
        let mut set = JoinSet::new();
        let mut parts = parts.into_iter();
        loop {
            while set.len() < PART_CONCURRENCY {
                let Some((name, bytes)) = parts.next() else {
                    break;
                };
                let key = (self.part_key)(&name)?;
                let store = self.store.clone();
                set.spawn(async move {
                    let r = store
                        .put(&key, Bytes::from(bytes), Condition::IfAbsent)
                        .await;
                    (name, key, r)
                });
            }
            let Some(joined) = set.join_next().await else {
                return Ok(());
            };
            let (name, key, r) = joined.map_err(|e| RepoError::Codec {
                what: self.what.to_owned(),
                key: self.key.to_string(),
                reason: format!("a part write did not finish: {e}"),
            })?;
            match r {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {}
                Err(e) => {
                    return Err(RepoError::store(
                        format!("part `{name}` of {} (`{key}`)", self.what),
                        e,
                    ));
                }
            }
        }
    }

    /// Encodes `doc`, writes its new parts, then its head with `condition`: 1 PUT per new part,
    /// then 1 PUT. Returns the head's version and size.
    pub(crate) async fn store_doc(
        &self,
        doc: &mut T,
        condition: Condition,
    ) -> RepoResult<(Version, usize)> {
        let encoded = self
            .codec
            .encode(doc)
            .map_err(|r| self.codec_error(self.key, r))?;
        self.write(encoded, condition).await
    }

    /// Writes an encoded document: parts first, then the head.
    pub(crate) async fn write(
        &self,
        encoded: Encoded,
        condition: Condition,
    ) -> RepoResult<(Version, usize)> {
        self.put_parts(encoded.parts).await?;
        let size = encoded.head.len();
        let version = self
            .store
            .put(self.key, Bytes::from(encoded.head), condition)
            .await
            .map_err(|e| RepoError::store(self.what, e))?;
        Ok((version, size))
    }

    pub(crate) fn encode(&self, doc: &mut T) -> RepoResult<Encoded> {
        self.codec
            .encode(doc)
            .map_err(|r| self.codec_error(self.key, r))
    }
}
