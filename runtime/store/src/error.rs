//! The one error type of the object-store layer.

use std::path::PathBuf;

/// What went wrong in a storage operation. Callers match on the variant (never on the text):
/// [`StoreError::Conflict`] means "reload and re-apply", [`StoreError::NotFound`] means the key has no
/// object, and [`StoreError::is_transient`] says whether trying again later may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No object under this key.
    #[error("object `{key}` not found")]
    NotFound {
        /// The key that was read.
        key: String,
    },

    /// A conditional write or delete lost: the object exists (`IfAbsent`), or has another version than
    /// the one given, or no longer exists (`IfVersion`). Reload the object and re-apply the change.
    #[error("conditional {op} of `{key}` failed: {reason}")]
    Conflict {
        /// `put` or `delete`.
        op: &'static str,
        /// The key that was written.
        key: String,
        /// Which condition failed, in words.
        reason: String,
    },

    /// A key that could escape the store's prefix or that no backend can hold.
    #[error("invalid storage key `{key}`: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A storage URL that names no backend, or a malformed one.
    #[error(
        "invalid storage URL `{url}`: {reason} (expected `file:///path`, a plain path, `s3://bucket/prefix` or `memory://`)"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A file-system operation of the local store failed.
    #[error("local store: {op} `{}` failed: {source}", .path.display())]
    Io {
        /// What was being done (`open`, `rename`, `lock`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The body of a streaming put could not be read.
    #[error("reading the body for `{key}` failed: {source}")]
    Body {
        /// The key that was being written.
        key: String,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },

    /// An S3 request failed after the SDK's retries.
    #[error("S3 {op} `{key}` failed{}: {message}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    S3 {
        /// The S3 operation (`GetObject`, `PutObject`, ...).
        op: &'static str,
        /// The key (or prefix) concerned.
        key: String,
        /// The HTTP status, when a response arrived.
        status: Option<u16>,
        /// The S3 error code, when the server sent one (`SlowDown`, `AccessDenied`, ...).
        code: Option<String>,
        /// The error with its causes, for people.
        message: String,
    },

    /// The bucket of an `s3://` URL does not exist or cannot be reached.
    #[error(
        "S3 bucket `{bucket}` is not usable: {message}. Create it first (e.g. `aws s3 mb s3://{bucket}`) and check AWS_ENDPOINT_URL, AWS_REGION and the credentials"
    )]
    BucketUnavailable {
        /// The bucket name.
        bucket: String,
        /// What the server said.
        message: String,
    },

    /// The server accepted a write that should have failed its condition: it does not implement
    /// conditional writes, and weft cannot run on it without losing updates.
    #[error(
        "the storage at {store} does not honour conditional writes: {detail}. weft needs `If-None-Match: *` and `If-Match` on PUT (AWS S3, MinIO and moto have them)"
    )]
    ConditionalWritesUnsupported {
        /// The store, as `s3://bucket/prefix`.
        store: String,
        /// What the probe saw.
        detail: String,
    },
}

impl StoreError {
    /// True for a failed condition: reload and re-apply.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// True when the key has no object.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// True when the same request may succeed later (throttling, 5xx, time-outs, network errors
    /// that outlived the SDK's own retries, interrupted I/O). Conflicts are not transient: they need
    /// a reload, not a retry of the same write.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::S3 { status, code, .. } => match status {
                Some(s) => {
                    *s >= 500 || *s == 429 || code.as_deref() == Some("SlowDown") || *s == 408
                }
                // no response at all: connection refused, reset, time-out
                None => true,
            },
            StoreError::Io { source, .. } | StoreError::Body { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Results of the object-store layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
