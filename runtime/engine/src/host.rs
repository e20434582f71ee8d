//! What the engine asks of its embedder for each attempt: rendering expressions and storing
//! files. The engine itself scopes file access to the execution and checks HTTP against the
//! allow-list; the host only does the I/O.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;

use crate::TaskContext;

/// A boxed future, as the host's async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The services a task attempt gets from its embedder (the worker or a test).
///
/// Every URI passed to the file methods is a `kestra:///...` URI that the engine has already
/// checked to belong to the attempt's execution.
pub trait TaskHost: Send + Sync {
    /// Render a template (`{{ ... }}`) in the task's context; `variables` are the request's.
    fn render(
        &self,
        template: &str,
        ctx: &TaskContext,
        variables: &Value,
    ) -> Result<String, String>;

    /// Read a whole file.
    fn read_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>>;

    /// Write a whole file, replacing any previous one.
    fn write_file<'a>(&'a self, uri: &'a str, data: Vec<u8>) -> BoxFuture<'a, Result<(), String>>;

    /// The size of a file.
    fn file_size<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<u64, String>>;

    /// Delete a file; whether it existed.
    fn delete_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<bool, String>>;
}

/// A host for tests and the CLI: files in memory, and templates rendered by plain substitution of
/// `{{ path.to.value }}` from the variables (no filters or functions; the worker plugs in the real
/// expression engine).
#[derive(Debug, Default)]
pub struct MemoryHost {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// The files written so far, by URI.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.files.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Put a file (e.g. an input file of a test).
    pub fn put(&self, uri: &str, data: Vec<u8>) {
        if let Ok(mut f) = self.files.lock() {
            f.insert(uri.to_string(), data);
        }
    }
}

/// Substitute `{{ a.b.c }}` with values looked up in `variables` (strings as they are, other
/// values as JSON). Anything else inside `{{ }}` is an error.
pub fn render_simple(template: &str, variables: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed expression in {template:?}"))?;
        let expr = after[..end].trim();
        let mut v = variables;
        for part in expr.split('.') {
            let valid = !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(format!(
                    "cannot render {{{{ {expr} }}}}: only variable paths are supported here"
                ));
            }
            v = match v {
                Value::Object(m) => m.get(part),
                Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("{{{{ {expr} }}}}: {part} is not defined"))?;
        }
        match v {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl TaskHost for MemoryHost {
    fn render(
        &self,
        template: &str,
        _ctx: &TaskContext,
        variables: &Value,
    ) -> Result<String, String> {
        render_simple(template, variables)
    }

    fn read_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let files = self
                .files
                .lock()
                .map_err(|_| "storage lock poisoned".to_string())?;
            files
                .get(uri)
                .cloned()
                .ok_or_else(|| format!("{uri} does not exist"))
        })
    }

    fn write_file<'a>(&'a self, uri: &'a str, data: Vec<u8>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut files = self
                .files
                .lock()
                .map_err(|_| "storage lock poisoned".to_string())?;
            files.insert(uri.to_string(), data);
            Ok(())
        })
    }

    fn file_size<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let files = self
                .files
                .lock()
                .map_err(|_| "storage lock poisoned".to_string())?;
            files
                .get(uri)
                .map(|d| d.len() as u64)
                .ok_or_else(|| format!("{uri} does not exist"))
        })
    }

    fn delete_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut files = self
                .files
                .lock()
                .map_err(|_| "storage lock poisoned".to_string())?;
            Ok(files.remove(uri).is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_paths() {
        let vars = json!({"inputs": {"name": "world", "n": 3}, "list": ["a", "b"]});
        assert_eq!(
            render_simple("Hello {{ inputs.name }}!", &vars).as_deref(),
            Ok("Hello world!")
        );
        assert_eq!(render_simple("{{inputs.n}}", &vars).as_deref(), Ok("3"));
        assert_eq!(render_simple("{{ list.1 }}", &vars).as_deref(), Ok("b"));
        assert!(render_simple("{{ inputs.missing }}", &vars).is_err());
        assert!(render_simple("{{ inputs.name | upper }}", &vars).is_err());
    }
}
