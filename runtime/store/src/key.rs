//! Validated object keys: nothing a caller builds can escape the store's prefix or root directory.

use std::fmt;
use std::str::FromStr;

use crate::error::{Result, StoreError};

/// Longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Names starting with this are the local store's own bookkeeping (locks, temporary files).
pub(crate) const RESERVED_PREFIX: &str = ".weft";

/// An object key such as `executions/0f3c.json`: `/`-separated segments, relative to the store's
/// prefix. A key is never empty, never starts or ends with `/`, has no empty segment (`a//b`), no `.`
/// or `..` segment, no backslash or control character, no segment starting with `.weft` (reserved),
/// and is at most [`MAX_KEY_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Key> {
        let key = key.into();
        if let Err(reason) = check_key(&key) {
            return Err(StoreError::InvalidKey { key, reason });
        }
        Ok(Key(key))
    }

    /// A key under the store's reserved `.weft/` area (probes), checked except for the reservation.
    pub(crate) fn reserved(key: String) -> Key {
        debug_assert!(key.starts_with(RESERVED_PREFIX) && !key.contains(".."));
        Key(key)
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self/segment`, validated (the segment may itself contain `/`).
    pub fn join(&self, segment: &str) -> Result<Key> {
        Key::new(format!("{}/{segment}", self.0))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Key {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Key> {
        Key::new(s)
    }
}

impl TryFrom<&str> for Key {
    type Error = StoreError;
    fn try_from(s: &str) -> Result<Key> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Key> {
        Key::new(s)
    }
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("a key must not be empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("a key must be at most 1024 bytes");
    }
    if key.starts_with('/') {
        return Err("a key must not start with `/`");
    }
    if key.ends_with('/') {
        return Err("a key must not end with `/`");
    }
    key.split('/').try_for_each(check_segment)
}

fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("a key must not contain an empty segment (`//`)");
    }
    if segment == "." || segment == ".." {
        return Err("a key must not contain a `.` or `..` segment");
    }
    if segment.starts_with(RESERVED_PREFIX) {
        return Err("segments starting with `.weft` are reserved for the store");
    }
    check_chars(segment)
}

fn check_chars(s: &str) -> Result<(), &'static str> {
    if s.chars().any(|c| c == '\\' || c.is_control()) {
        return Err("a key must not contain a backslash or a control character");
    }
    Ok(())
}

/// Validates a listing prefix: empty, or complete valid segments followed by a partial last
/// segment (which may be empty, as in `executions/`). Returns the prefix unchanged.
pub(crate) fn check_prefix(prefix: &str) -> Result<&str> {
    let invalid = |reason| StoreError::InvalidKey {
        key: prefix.to_owned(),
        reason,
    };
    if prefix.len() > MAX_KEY_LEN {
        return Err(invalid("a prefix must be at most 1024 bytes"));
    }
    if prefix.starts_with('/') {
        return Err(invalid("a prefix must not start with `/`"));
    }
    let mut segments: Vec<&str> = prefix.split('/').collect();
    let last = segments.pop().unwrap_or_default();
    segments
        .into_iter()
        .try_for_each(check_segment)
        .and_then(|()| check_chars(last))
        .map_err(invalid)?;
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_design_layout() {
        for k in [
            "flows/company.team/hello/3.yaml",
            "executions/4Xy-z_1.json",
            "executions/abc/results/t1-0.json",
            "index/executions/a.b/f/2024-01-01T00:00:00Z-abc",
            "storage/a/b/f/executions/e/tasks/t/tr/out put.txt",
            "x",
        ] {
            assert!(Key::new(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn rejects_escapes() {
        for k in [
            "",
            "/abs",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "./a",
            "a/.",
            "a\\b",
            "a\0b",
            "a\nb",
            ".weft/locks/1",
            "a/.weft-tmp-1",
        ] {
            let err = Key::new(k).unwrap_err();
            assert!(matches!(err, StoreError::InvalidKey { .. }), "{k}: {err}");
        }
        assert!(Key::new("a".repeat(1025)).is_err());
    }

    #[test]
    fn prefixes() {
        for p in ["", "a", "a/", "a/b", "executions/ab", "a/.."] {
            assert!(check_prefix(p).is_ok(), "{p}");
        }
        for p in ["/", "/a", "a//", "../a/", "a/../b", "a/./"] {
            assert!(check_prefix(p).is_err(), "{p}");
        }
    }

    #[test]
    fn join() {
        let k = Key::new("a").unwrap();
        assert_eq!(k.join("b/c").unwrap().as_str(), "a/b/c");
        assert!(k.join("../x").is_err());
    }
}
