//! Ids and namespaces: Kestra's patterns, and the guarantee that they never escape a storage key.

/// The longest id accepted.
pub const MAX_ID_LEN: usize = 100;
/// The longest namespace accepted.
pub const MAX_NAMESPACE_LEN: usize = 255;

/// Checks an id (flow, task, trigger, input) against `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`.
pub fn check_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !rest_ok {
        return Err(format!(
            "`{id}` is not a valid id: it must match `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`"
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "id is {} characters long, the maximum is {MAX_ID_LEN}",
            id.len()
        ));
    }
    Ok(())
}

/// Checks a namespace: dot-separated segments, each a valid id, no empty segment.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{ns}` is not a valid namespace: it must be dot-separated ids such as `company.team`"
        )
    };
    if ns.is_empty()
        || ns
            .split('.')
            .any(|seg| seg.is_empty() || check_id(seg).is_err())
    {
        return Err(bad());
    }
    if ns.len() > MAX_NAMESPACE_LEN {
        return Err(format!(
            "namespace is {} characters long, the maximum is {MAX_NAMESPACE_LEN}",
            ns.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "hello-world", "t5-t4_1", "A.b", "9lives"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "..", "a/b", "a b", "é", "a\\b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert!(check_id(&"a".repeat(101)).is_err());
    }

    #[test]
    fn namespaces() {
        assert!(check_namespace("io.kestra.tests").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a/b", "a.-b"] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }
}

/// Whether namespace `ns` is `parent` or one of the namespaces under it (`company.sales` is under
/// `company`, `companyx` is not).
pub fn namespace_within(ns: &str, parent: &str) -> bool {
    ns.strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

#[cfg(test)]
mod within_tests {
    use super::namespace_within;

    #[test]
    fn a_namespace_is_within_itself_and_its_parents_only() {
        assert!(namespace_within("company.sales", "company"));
        assert!(namespace_within("company", "company"));
        assert!(!namespace_within("companyx", "company"));
        assert!(!namespace_within("company", "company.sales"));
    }
}
