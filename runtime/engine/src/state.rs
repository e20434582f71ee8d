//! The data of one attempt's `Store`, and the host side of the `weft:plugin` imports: each
//! interface is one small `impl` on [`AttemptState`] (STYLE.md pattern 8).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::TaskContext;
use crate::bindings::weft::plugin as wit;
use crate::config::Limits;
use crate::host::TaskHost;
use crate::http::{AllowList, HttpClient};
use crate::outcome::{Level, LogLine, Metric, MetricKind};

/// Memory-limit bookkeeping: the limiter refuses growth past the limit and remembers it, so the
/// trap is mapped to `MemoryLimit` without parsing a message.
pub(crate) struct MemoryLimiter {
    pub(crate) limit: u64,
    pub(crate) hit: bool,
}

/// The error a refused memory growth traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (asked for {desired} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: u64,
    pub(crate) desired: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Everything an attempt collects and needs while it runs.
pub(crate) struct AttemptState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
    pub(crate) ctx: TaskContext,
    pub(crate) variables: Arc<Value>,
    pub(crate) host: Arc<dyn TaskHost>,
    pub(crate) http: HttpClient,
    pub(crate) allow: AllowList,
    pub(crate) limits: Limits,
    /// Lines below this level are dropped (the task's `logLevel`).
    pub(crate) min_log_level: Option<Level>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) log_bytes: usize,
    pub(crate) logs_dropped: u64,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) output_files: BTreeMap<String, String>,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl WasiView for AttemptState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl AttemptState {
    /// Keep a log line unless the caps are reached.
    pub(crate) fn push_log(&mut self, level: Level, message: String) {
        if self.min_log_level.is_some_and(|min| level < min) {
            return;
        }
        if self.logs.len() >= self.limits.max_log_lines
            || self.log_bytes + message.len() > self.limits.max_log_bytes
        {
            self.logs_dropped += 1;
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine {
            timestamp_ms: now_ms(),
            level,
            message,
        });
    }

    /// The prefix of every URI of the attempt's execution.
    pub(crate) fn execution_prefix(&self) -> String {
        execution_prefix(&self.ctx)
    }

    fn check_uri(&self, uri: &str) -> Result<(), String> {
        let prefix = self.execution_prefix();
        if !uri.starts_with(&prefix)
            || uri[prefix.len()..]
                .split('/')
                .any(|p| p == ".." || p == ".")
        {
            return Err(format!(
                "{uri} is not a file of this execution (expected a URI under {prefix})"
            ));
        }
        Ok(())
    }
}

/// `kestra:///{namespace as path}/{flowId}/executions/{executionId}/`.
pub(crate) fn execution_prefix(ctx: &TaskContext) -> String {
    format!(
        "kestra:///{}/{}/executions/{}/",
        ctx.namespace.replace('.', "/"),
        ctx.flow_id,
        ctx.execution_id
    )
}

impl wit::types::Host for AttemptState {}

impl wit::log::Host for AttemptState {
    fn log(&mut self, level: wit::types::Level, message: String) {
        let level = match level {
            wit::types::Level::Trace => Level::Trace,
            wit::types::Level::Debug => Level::Debug,
            wit::types::Level::Info => Level::Info,
            wit::types::Level::Warn => Level::Warn,
            wit::types::Level::Error => Level::Error,
        };
        self.push_log(level, message);
    }
}

fn tags(t: Vec<wit::types::Tag>) -> BTreeMap<String, String> {
    t.into_iter().map(|t| (t.key, t.value)).collect()
}

const MAX_METRICS: usize = 10_000;

impl wit::metrics::Host for AttemptState {
    fn counter(&mut self, name: String, value: f64, t: Vec<wit::types::Tag>) {
        if self.metrics.len() < MAX_METRICS {
            self.metrics.push(Metric {
                name,
                kind: MetricKind::Counter,
                value,
                tags: tags(t),
            });
        }
    }

    fn timer(&mut self, name: String, nanos: u64, t: Vec<wit::types::Tag>) {
        if self.metrics.len() < MAX_METRICS {
            self.metrics.push(Metric {
                name,
                kind: MetricKind::Timer,
                value: nanos as f64 / 1e9,
                tags: tags(t),
            });
        }
    }
}

impl wit::render::Host for AttemptState {
    fn render(&mut self, template: String) -> Result<String, String> {
        self.host.render(&template, &self.ctx, &self.variables)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains(['\\', '\0']))
}

impl AttemptState {
    /// The `kestra:///...` URI of a file `name` of this task run.
    fn task_file_uri(&self, name: &str) -> Result<String, String> {
        if !valid_name(name) {
            return Err(format!("{name:?} is not a valid file name"));
        }
        Ok(format!(
            "{}tasks/{}/{}/{}",
            self.execution_prefix(),
            self.ctx.task_id,
            self.ctx.task_run_id,
            name
        ))
    }
}

impl wit::storage::Host for AttemptState {
    async fn read(&mut self, uri: String) -> Result<Vec<u8>, String> {
        self.check_uri(&uri)?;
        let host = self.host.clone();
        let size = host.file_size(&uri).await?;
        if size > self.limits.max_file_bytes {
            return Err(format!(
                "{uri} is {size} bytes, larger than the limit of {} bytes",
                self.limits.max_file_bytes
            ));
        }
        host.read_file(&uri).await
    }

    async fn write(&mut self, name: String, data: Vec<u8>) -> Result<String, String> {
        let uri = self.task_file_uri(&name)?;
        if data.len() as u64 > self.limits.max_file_bytes {
            return Err(format!(
                "file of {} bytes is larger than the limit of {} bytes",
                data.len(),
                self.limits.max_file_bytes
            ));
        }
        let host = self.host.clone();
        host.write_file(&uri, data).await?;
        Ok(uri)
    }

    async fn size(&mut self, uri: String) -> Result<u64, String> {
        self.check_uri(&uri)?;
        let host = self.host.clone();
        host.file_size(&uri).await
    }

    async fn delete(&mut self, uri: String) -> Result<bool, String> {
        self.check_uri(&uri)?;
        let host = self.host.clone();
        host.delete_file(&uri).await
    }

    async fn output_file(&mut self, name: String, uri: String) {
        if self.check_uri(&uri).is_ok() && self.output_files.len() < MAX_METRICS {
            self.output_files.insert(name, uri);
        }
    }
}

impl wit::http::Host for AttemptState {
    async fn send(
        &mut self,
        request: wit::http::Request,
    ) -> Result<wit::http::Response, wit::http::HttpError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let cap = request
            .max_body_bytes
            .unwrap_or(self.limits.max_http_body_bytes)
            .min(self.limits.max_http_body_bytes);
        self.http.send(request, &self.allow, cap, remaining).await
    }

    async fn download(
        &mut self,
        request: wit::http::Request,
        name: String,
    ) -> Result<wit::http::StoredResponse, wit::http::HttpError> {
        let uri = self
            .task_file_uri(&name)
            .map_err(wit::http::HttpError::InvalidRequest)?;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let cap = request
            .max_body_bytes
            .unwrap_or(self.limits.max_download_bytes)
            .min(self.limits.max_download_bytes);
        let host = self.host.clone();
        let (status, headers, length) = self
            .http
            .download(request, &self.allow, cap, remaining, &*host, &uri)
            .await?;
        Ok(wit::http::StoredResponse {
            status,
            headers,
            uri,
            length,
        })
    }
}
