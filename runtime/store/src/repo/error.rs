//! The error type of the repositories, internal storage and offload.

use crate::error::StoreError;

/// What went wrong in a repository operation. Every variant names what was concerned (which
/// execution, which flow, which key or URI); callers match on the variant, never on the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The object store failed (I/O, S3, invalid key). A `StoreError::Conflict` here means a
    /// conditional write lost; see [`RepoError::is_conflict`].
    #[error("{what}: {source}")]
    Store {
        /// What was being read or written (`execution `abc``, `flow `ns.id` revision 3`, ...).
        what: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },

    /// Nothing stored under this name.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up.
        what: String,
    },

    /// A write that must not replace what is stored: an immutable object (worker result, plugin
    /// cache entry) already exists with other content, or a version condition failed.
    #[error("{what} already exists with other content (`{key}`)")]
    Conflict {
        /// What was written.
        what: String,
        /// The object's key.
        key: String,
    },

    /// A read-modify-write lost the race this many times in a row and gave up.
    #[error("{what}: gave up after {attempts} conflicting concurrent updates")]
    TooManyConflicts {
        /// What was updated.
        what: String,
        /// Attempts made.
        attempts: u32,
    },

    /// A stored document is not valid JSON of the expected shape, or a value cannot be serialized.
    #[error("{what}: invalid JSON: {source}")]
    Json {
        /// What was (de)serialized.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored document (or one of its parts) cannot be read back or written: a corrupt or
    /// inconsistent object, or a document its codec cannot encode.
    #[error("{what}: `{key}`: {reason}")]
    Codec {
        /// The document (`execution `abc``).
        what: String,
        /// The object at fault (its head or one of its parts).
        key: String,
        /// What is wrong, naming the part when a part is at fault.
        reason: String,
    },

    /// An id, namespace or name that cannot become part of a storage key.
    #[error("invalid {what}: {reason}")]
    InvalidName {
        /// Which name (`execution id`, `namespace`, `task run id`, ...).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A flow source without a valid `id` or `namespace`, or one that is not YAML.
    #[error("invalid flow source: {reason}")]
    InvalidFlow {
        /// What is wrong with it.
        reason: String,
    },

    /// A save that would move a flow to another namespace (namespaces are immutable).
    #[error(
        "flow `{flow_id}` belongs to namespace `{namespace}`; its namespace cannot change to `{new_namespace}`"
    )]
    NamespaceChanged {
        /// The flow's id.
        flow_id: String,
        /// Its namespace.
        namespace: String,
        /// The namespace the new source names.
        new_namespace: String,
    },

    /// A `kestra://` URI that is malformed.
    #[error("invalid internal storage URI `{uri}`: {reason}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A `kestra://` URI outside the execution a file view is bound to (another execution, another
    /// flow or namespace, `..`, percent-encoded segments).
    #[error("`{uri}` is outside the internal storage of execution `{execution_id}` (`{allowed}`)")]
    OutsideExecution {
        /// The URI as given.
        uri: String,
        /// The execution the view is bound to.
        execution_id: String,
        /// The URI prefix the view allows.
        allowed: String,
    },

    /// A file that is not UTF-8 text was read as text (`read()`).
    #[error("`{uri}` is not UTF-8 text")]
    NotText {
        /// The file's URI.
        uri: String,
    },

    /// A task's outputs would push the execution document past its size budget.
    #[error(
        "task `{task_id}`: the execution document would be {size} bytes with its outputs, over the budget of {budget} bytes"
    )]
    BudgetExceeded {
        /// The task whose outputs are too large.
        task_id: String,
        /// The document size the outputs would make, in bytes.
        size: usize,
        /// The budget, in bytes.
        budget: usize,
    },

    /// An expression host call was made where no tokio runtime can serve it.
    #[error("{what}: {reason}")]
    NoRuntime {
        /// The call.
        what: String,
        /// Why it cannot run.
        reason: &'static str,
    },
}

impl RepoError {
    /// True for a lost conditional write (typed, from the store or from an immutable object).
    pub fn is_conflict(&self) -> bool {
        match self {
            RepoError::Store { source, .. } => source.is_conflict(),
            RepoError::Conflict { .. } => true,
            _ => false,
        }
    }

    /// True when nothing is stored under the name.
    pub fn is_not_found(&self) -> bool {
        match self {
            RepoError::Store { source, .. } => source.is_not_found(),
            RepoError::NotFound { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn store(what: impl Into<String>, source: StoreError) -> RepoError {
        let what = what.into();
        if source.is_not_found() {
            return RepoError::NotFound { what };
        }
        RepoError::Store { what, source }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> RepoError {
        RepoError::Json {
            what: what.into(),
            source,
        }
    }
}

/// The error of a read-modify-write ([`ExecutionRepo::update`](crate::repo::ExecutionRepo::update)):
/// the closure refused the change, or storage failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// The closure returned this error; nothing was written.
    #[error("{0}")]
    Aborted(E),
    /// Storage failed (including [`RepoError::TooManyConflicts`]).
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Results of the repositories.
pub type RepoResult<T> = std::result::Result<T, RepoError>;
