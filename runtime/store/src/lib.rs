//! weft-store: the object-store trait (local directory, S3, memory) with conditional writes, and the
//! repositories of flows, executions, results, logs and files built on top of it.
//!
//! Storage is weft's only state (DESIGN.md §4). Everything goes through [`ObjectStore`]: `get`
//! returns bytes and a [`Version`]; `put` takes a [`Condition`] (none, [`Condition::IfAbsent`],
//! [`Condition::IfVersion`]) and fails with the typed [`StoreError::Conflict`] when it does not hold.
//! Backends: [`LocalStore`] (the embedded default; the same conditional semantics across processes on
//! one machine), [`S3Store`] (aws-sdk-s3, `If-None-Match: *` / `If-Match`), [`MemoryStore`] (tests).
//! [`open`] picks one from a URL. Each store counts its round trips in [`RequestStats`].

mod check;
mod error;
mod key;
mod local;
mod memory;
mod object;
mod prefixed;
mod s3;
mod stats;
mod url;

pub mod repo;

#[cfg(feature = "test-util")]
pub mod testing;

pub use check::{CheckReport, CheckStep, check_conditional_writes};
pub use error::{Result, StoreError};
pub use key::{Key, MAX_KEY_LEN};
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use object::{
    BodyReader, Condition, DynStore, ListEntry, ListOptions, ListPage, MAX_LIST_PAGE, Object,
    ObjectMeta, ObjectReader, ObjectStore, PageToken, Version,
};
pub use prefixed::PrefixedStore;
pub use s3::{DEFAULT_PART_SIZE, MIN_PART_SIZE, S3Options, S3Store};
pub use stats::{RequestCounts, RequestKind, RequestStats};
pub use url::{StoreUrl, open};
