//! What the engine asks of its embedder for each attempt: rendering expressions and storing
//! files. The engine itself scopes file access to the execution and checks HTTP against the
//! allow-list; the host only does the I/O.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use weft_flow::expr::{Context, Renderer};

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

    /// Write a file from a stream, replacing any previous one. The default reads the whole stream
    /// into memory and calls [`TaskHost::write_file`]; hosts backed by object storage stream it.
    fn write_file_stream<'a>(
        &'a self,
        uri: &'a str,
        mut body: Pin<Box<dyn AsyncRead + Send>>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut data = Vec::new();
            body.read_to_end(&mut data)
                .await
                .map_err(|e| format!("reading the body of {uri}: {e}"))?;
            self.write_file(uri, data).await
        })
    }

    /// The size of a file.
    fn file_size<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<u64, String>>;

    /// Delete a file; whether it existed.
    fn delete_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<bool, String>>;
}

/// A host for tests and benchmarks: files in memory, and templates rendered by weft's expression
/// engine over the request's variables (functions that need storage, secrets or the KV store fail).
#[derive(Debug, Default)]
pub struct MemoryHost {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    renderer: Renderer,
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

impl TaskHost for MemoryHost {
    fn render(
        &self,
        template: &str,
        _ctx: &TaskContext,
        variables: &Value,
    ) -> Result<String, String> {
        let ctx = Context {
            vars: variables,
            now: chrono::Utc::now(),
            seed: 0,
            host: None,
        };
        self.renderer
            .render(template, &ctx)
            .map_err(|e| e.to_string())
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
    fn renders_with_the_expression_engine() {
        let host = MemoryHost::new();
        let ctx = TaskContext::example();
        let vars = json!({"inputs": {"name": "world", "n": 3}, "list": ["a", "b"]});
        let render = |t: &str| host.render(t, &ctx, &vars);
        assert_eq!(
            render("Hello {{ inputs.name }}!").as_deref(),
            Ok("Hello world!")
        );
        assert_eq!(render("{{ inputs.name | upper }}").as_deref(), Ok("WORLD"));
        assert_eq!(render("{{ list[1] }}").as_deref(), Ok("b"));
        assert!(render("{{ inputs.missing }}").is_err());
    }
}
