//! The object-store trait and the values it passes around.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::error::Result;
use crate::key::Key;
use crate::stats::RequestStats;

/// An opaque version tag of one object's content: S3's ETag, the local store's file identity, the
/// memory store's generation. Compare tags only for equality, and only for the same key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Wraps a tag received from a backend (or stored earlier by the caller).
    pub fn new(tag: impl Into<String>) -> Version {
        Version(tag.into())
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

/// When a `put` may replace what is stored.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Condition {
    /// Always (last writer wins). Only for objects that have a single writer by construction.
    #[default]
    None,
    /// Only if no object exists under the key (S3 `If-None-Match: *`).
    IfAbsent,
    /// Only if the stored object still has this version (S3 `If-Match`); fails if it was deleted.
    IfVersion(Version),
}

impl Condition {
    /// The condition as a few words, for errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Condition::None => "none".to_owned(),
            Condition::IfAbsent => "if absent".to_owned(),
            Condition::IfVersion(v) => format!("if version {v}"),
        }
    }
}

/// What `head` returns: the version and size of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The version of the content.
    pub version: Version,
    /// Size of the content in bytes.
    pub size: u64,
}

/// A whole object read into memory, with the version of exactly these bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The content.
    pub bytes: Bytes,
    /// The version of this content; pass it to [`Condition::IfVersion`] to write it back.
    pub version: Version,
}

/// A streaming body, read or written without holding it in memory.
pub type BodyReader = Pin<Box<dyn AsyncRead + Send>>;

/// An object being read as a stream: its metadata and its body.
pub struct ObjectReader {
    /// Version and size of the content that `body` yields.
    pub meta: ObjectMeta,
    /// The content.
    pub body: BodyReader,
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Where a listing goes on: opaque, valid for the same prefix and store only.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageToken(pub(crate) String);

impl PageToken {
    /// The token as a string, e.g. to hand it to an API client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token received back from an API client.
    pub fn new(token: impl Into<String>) -> PageToken {
        PageToken(token.into())
    }
}

/// Most keys one `list` call returns (S3's own limit).
pub const MAX_LIST_PAGE: usize = 1000;

/// Options of one `list` call.
#[derive(Clone, Debug)]
pub struct ListOptions {
    /// Go on after the previous page.
    pub page: Option<PageToken>,
    /// At most this many keys (1 to [`MAX_LIST_PAGE`]).
    pub limit: usize,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            page: None,
            limit: MAX_LIST_PAGE,
        }
    }
}

impl ListOptions {
    /// The page after `token`.
    pub fn after(mut self, token: Option<PageToken>) -> Self {
        self.page = token;
        self
    }

    /// At most `limit` keys (clamped to 1..=[`MAX_LIST_PAGE`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn clamped_limit(&self) -> usize {
        self.limit.clamp(1, MAX_LIST_PAGE)
    }
}

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Its key, relative to the store's prefix.
    pub key: Key,
    /// Its version at listing time.
    pub version: Version,
    /// Its size in bytes.
    pub size: u64,
}

/// One page of a listing, in ascending key order (bytewise, as S3).
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// The objects of this page.
    pub entries: Vec<ListEntry>,
    /// Set when more keys follow: pass it in [`ListOptions::page`].
    pub next: Option<PageToken>,
}

/// An object store with conditional writes: the only durable state of weft (DESIGN.md §4).
///
/// Every method counts its round trips in [`ObjectStore::stats`]. All keys are relative to the
/// store's prefix (or root directory) and validated by [`Key`].
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// The store as a URL (`s3://bucket/prefix`, `file:///dir`, `memory://`), for logs and errors.
    fn url(&self) -> String;

    /// Reads a whole object. [`StoreError::NotFound`](crate::StoreError::NotFound) when absent.
    async fn get(&self, key: &Key) -> Result<Object>;

    /// Version and size of an object, without its content.
    async fn head(&self, key: &Key) -> Result<ObjectMeta>;

    /// Writes a whole object if `condition` holds, and returns the new version.
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) when it does not.
    async fn put(&self, key: &Key, body: Bytes, condition: Condition) -> Result<Version>;

    /// Deletes an object. Without a version, deleting an absent key succeeds; with one, the object
    /// must still have that version, or the result is a `Conflict`.
    async fn delete(&self, key: &Key, if_version: Option<&Version>) -> Result<()>;

    /// One page of the keys that start with `prefix` (a plain string prefix: `executions/` lists
    /// everything below that folder, `executions/ab` also matches `executions/abc.json`).
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage>;

    /// Reads an object as a stream; the body is not held in memory.
    async fn get_stream(&self, key: &Key) -> Result<ObjectReader>;

    /// Writes an object from a stream if `condition` holds. The body is held in memory at most one
    /// part at a time (S3 multipart upload above a threshold; a temporary file for the local store).
    async fn put_stream(
        &self,
        key: &Key,
        body: BodyReader,
        condition: Condition,
    ) -> Result<Version>;

    /// Round trips and conflicts so far.
    fn stats(&self) -> &RequestStats;

    /// Every key under `prefix`, all pages read.
    async fn list_all(&self, prefix: &str) -> Result<Vec<ListEntry>> {
        let mut all = Vec::new();
        let mut page = None;
        loop {
            let got = self
                .list(prefix, ListOptions::default().after(page))
                .await?;
            all.extend(got.entries);
            match got.next {
                Some(next) => page = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Deletes every key under `prefix` (one LIST per 1,000 keys, then one DELETE each); how
    /// many were deleted.
    async fn delete_all(&self, prefix: &str) -> Result<usize> {
        let entries = self.list_all(prefix).await?;
        for entry in &entries {
            self.delete(&entry.key, None).await?;
        }
        Ok(entries.len())
    }
}

/// A shared handle on any backend.
pub type DynStore = Arc<dyn ObjectStore>;
