//! What a plugin reaches through the engine's host: expressions rendered by weft's renderer in the
//! task's context, and the internal-storage files of its own execution.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use weft_engine::{BoxFuture, TaskContext, TaskHost};
use weft_flow::expr::{Context, Renderer};
use weft_store::repo::{ExecutionFiles, FilesExprHost};

/// The host of one attempt.
pub(crate) struct AttemptHost {
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) files: ExecutionFiles,
    pub(crate) expr_host: FilesExprHost,
    pub(crate) now: DateTime<Utc>,
    pub(crate) seed: u64,
}

impl TaskHost for AttemptHost {
    fn render(
        &self,
        template: &str,
        _ctx: &TaskContext,
        variables: &Json,
    ) -> Result<String, String> {
        let ctx = Context {
            vars: variables,
            now: self.now,
            seed: self.seed,
            host: Some(&self.expr_host),
        };
        self.renderer
            .render(template, &ctx)
            .map_err(|e| e.to_string())
    }

    fn read_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.files
                .get(uri)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
    }

    fn write_file<'a>(&'a self, uri: &'a str, data: Vec<u8>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.files
                .put(uri, Bytes::from(data))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn write_file_stream<'a>(
        &'a self,
        uri: &'a str,
        body: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.files
                .put_stream(uri, body)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn file_size<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move { self.files.size(uri).await.map_err(|e| e.to_string()) })
    }

    fn delete_file<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            match self.files.delete(uri).await {
                Ok(()) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
