//! Secrets as Kestra's open-source edition keeps them: `secret('my_secret')` is the environment
//! variable `SECRET_MY_SECRET` (the key upper-cased), holding the value base64-encoded (line
//! breaks inside the base64 text are allowed).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;

use super::ExprHost;

/// Where `secret()` finds its values: the process environment, plus variables given here (which
/// win), e.g. those of a test.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    extra: Arc<BTreeMap<String, String>>,
}

impl Secrets {
    /// The secrets of the process environment only.
    pub fn from_env() -> Self {
        Secrets::default()
    }

    /// The environment, with these `SECRET_*` variables (name -> base64 value) on top.
    pub fn with_variables(variables: impl IntoIterator<Item = (String, String)>) -> Self {
        Secrets {
            extra: Arc::new(variables.into_iter().collect()),
        }
    }

    /// The value of secret `key`, decoded; an error names the variable to set.
    pub fn get(&self, key: &str) -> Result<String, String> {
        let name = format!("SECRET_{}", key.to_uppercase());
        let encoded = match self.extra.get(&name) {
            Some(v) => v.clone(),
            None => std::env::var(&name).map_err(|_| {
                format!(
                    "secret `{key}` does not exist (set the environment variable {name}, base64-encoded)"
                )
            })?,
        };
        let compact: String = encoded.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("secret `{key}`: {name} is not base64: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("secret `{key}`: {name} is not UTF-8 text"))
    }
}

impl ExprHost for Secrets {
    fn secret(&self, key: &str) -> Result<String, String> {
        self.get(key)
    }
}

/// Replaces every occurrence of the `revealed` secret values in `line` with `***`, as Kestra
/// masks secrets in task logs. Values shorter than 3 characters are left alone: masking them
/// would blank out common text and tell more than it hides.
pub fn mask(line: &str, revealed: &[String]) -> String {
    let mut out = line.to_string();
    // the longest first: a secret that starts another one must not leave the other's end
    let mut values: Vec<&String> = revealed.iter().filter(|v| v.chars().count() >= 3).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_upper_cased_and_values_decoded_across_line_breaks() {
        let s = Secrets::with_variables([
            (
                "SECRET_MY_SECRET".to_string(),
                "c2VjcmV0\nVmFsdWU=".to_string(),
            ),
            ("SECRET_BAD".to_string(), "not base64!".to_string()),
        ]);
        assert_eq!(s.get("my_secret").unwrap(), "secretValue");
        assert!(
            s.get("bad")
                .unwrap_err()
                .contains("SECRET_BAD is not base64")
        );
        let missing = s.get("weft_no_such_secret").unwrap_err();
        assert!(missing.contains("SECRET_WEFT_NO_SUCH_SECRET"), "{missing}");
    }

    #[test]
    fn revealed_values_are_masked() {
        let revealed = vec!["hunter2".to_string(), "ab".to_string()];
        assert_eq!(mask("password hunter2, ab", &revealed), "password ***, ab");
        let nested = vec!["abc".to_string(), "abcdef".to_string()];
        assert_eq!(mask("key abcdef", &nested), "key ***");
    }
}
