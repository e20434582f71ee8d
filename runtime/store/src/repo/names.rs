//! Checks of the names that become parts of storage keys, and the key layout of DESIGN.md §4.

use crate::key::Key;
use crate::repo::error::{RepoError, RepoResult};

/// Checks an id (execution, flow, task, task run, trigger, KV key) against Kestra's pattern.
pub(crate) fn id(what: &'static str, value: &str) -> RepoResult<()> {
    weft_flow::ids::check_id(value).map_err(|reason| RepoError::InvalidName { what, reason })
}

/// Checks a namespace (dot-separated ids).
pub(crate) fn namespace(value: &str) -> RepoResult<()> {
    weft_flow::ids::check_namespace(value).map_err(|reason| RepoError::InvalidName {
        what: "namespace",
        reason,
    })
}

/// A key built from checked parts; a failure here would be a bug, reported as a typed error.
pub(crate) fn key(what: &str, raw: String) -> RepoResult<Key> {
    Key::new(raw).map_err(|e| RepoError::store(what, e))
}

/// A name that is not an id but still one key segment (plugin names and versions, hashes).
pub(crate) fn segment(what: &'static str, value: &str) -> RepoResult<()> {
    let ok = !value.is_empty()
        && value.len() <= 200
        && value != "."
        && value != ".."
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@'));
    if ok {
        Ok(())
    } else {
        Err(RepoError::InvalidName {
            what,
            reason: format!(
                "`{value}` must be 1 to 200 characters of letters, digits, `.`, `_`, `-`, `+`, `@`, not starting with `.`"
            ),
        })
    }
}
