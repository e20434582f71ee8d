//! Internal storage: the files of one execution, named by `kestra:///` URIs as in Kestra.
//!
//! `kestra:///{namespace with dots as slashes}/{flowId}/executions/{executionId}/{rest}` maps to the
//! key `storage/{namespace with dots as slashes}/{flowId}/executions/{executionId}/{rest}`. Task files
//! are `.../tasks/{taskId}/{taskRunId}/{name}`, FILE inputs `.../inputs/{inputId}/{fileName}`.
//! Namespace files (`kestra:///{namespace as path}/_files/{path}`) of the execution's own namespace
//! may be read, never written; so may the files of the execution that started this one (a Subflow
//! or ForEachItem parent, named by the `trigger`, as Kestra's `read()` allows), see
//! [`ExecutionFiles::also_reading`]. An [`ExecutionFiles`] view refuses every other URI with
//! [`RepoError::OutsideExecution`] (another execution, flow or namespace) or
//! [`RepoError::InvalidUri`] (`..`, `.`, empty segments, percent-encoded `/`, `\`, `.`, control
//! characters, a query or fragment).

use bytes::Bytes;

use crate::key::Key;
use crate::object::{BodyReader, Condition, DynStore, ObjectReader};
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::names;

/// The scheme and empty authority of internal storage URIs.
pub const URI_SCHEME: &str = "kestra:///";

/// One file of internal storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Its `kestra:///` URI.
    pub uri: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The internal storage of one execution: every method refuses URIs outside it.
#[derive(Clone)]
pub struct ExecutionFiles {
    store: DynStore,
    namespace: String,
    flow_id: String,
    execution_id: String,
    /// `{ns/as/path}/{flowId}/executions/{executionId}/`
    base: String,
    /// `{ns/as/path}/_files/`
    namespace_files: String,
    /// `{ns/as/path}/{flowId}/executions/{executionId}/` of the execution that started this one,
    /// whose files may be read.
    parent_base: Option<String>,
}

impl std::fmt::Debug for ExecutionFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionFiles")
            .field("store", &self.store.url())
            .field("base", &self.base)
            .finish()
    }
}

/// Characters written as `%XX` in the URIs this module makes.
fn encode_segment(segment: &str, out: &mut String) {
    for c in segment.chars() {
        match c {
            '%' | '?' | '#' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
}

fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_segment(segment, &mut out);
    }
    out
}

/// Decodes `%XX` escapes of one segment; refuses escapes that would change the path's structure.
fn decode_segment(segment: &str) -> Result<String, String> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a `%` must start a `%XX` escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent escapes must decode to UTF-8".to_owned())
}

/// The decoded path of a `kestra:///` URI, checked segment by segment.
fn decode_uri(uri: &str) -> RepoResult<String> {
    let invalid = |reason: String| RepoError::InvalidUri {
        uri: uri.to_owned(),
        reason,
    };
    let path = uri
        .strip_prefix(URI_SCHEME)
        .ok_or_else(|| invalid(format!("it must start with `{URI_SCHEME}`")))?;
    if path.contains(['?', '#']) {
        return Err(invalid("a query or fragment is not allowed".to_owned()));
    }
    let mut decoded = Vec::new();
    for raw in path.split('/') {
        let segment = decode_segment(raw).map_err(invalid)?;
        if segment.is_empty() {
            return Err(invalid("empty path segment".to_owned()));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("`.` and `..` segments are not allowed".to_owned()));
        }
        if segment.contains(['/', '\\']) || segment.chars().any(char::is_control) {
            return Err(invalid(
                "a segment must not contain `/`, `\\` or control characters (escaped or not)"
                    .to_owned(),
            ));
        }
        decoded.push(segment);
    }
    Ok(decoded.join("/"))
}

/// One file name segment given by a caller (task file name, input file name).
fn check_file_name(what: &'static str, name: &str) -> RepoResult<()> {
    let bad = |reason: &str| RepoError::InvalidName {
        what,
        reason: format!("`{name}` {reason}"),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad("is not a file name"));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(bad("must not contain `/`, `\\` or control characters"));
    }
    if name.starts_with(".weft") {
        return Err(bad("must not start with `.weft`"));
    }
    Ok(())
}

/// `ns/path/{flowId}/executions/{executionId}/`: where an execution's files are, once its
/// names are checked.
fn execution_base(namespace: &str, flow_id: &str, execution_id: &str) -> RepoResult<String> {
    names::namespace(namespace)?;
    names::id("flow id", flow_id)?;
    names::id("execution id", execution_id)?;
    Ok(format!(
        "{}/{flow_id}/executions/{execution_id}/",
        namespace.replace('.', "/")
    ))
}

impl ExecutionFiles {
    /// The files of execution `execution_id` of flow `namespace.flow_id`.
    pub fn new(
        store: DynStore,
        namespace: &str,
        flow_id: &str,
        execution_id: &str,
    ) -> RepoResult<ExecutionFiles> {
        Ok(ExecutionFiles {
            store,
            namespace: namespace.to_owned(),
            flow_id: flow_id.to_owned(),
            execution_id: execution_id.to_owned(),
            base: execution_base(namespace, flow_id, execution_id)?,
            namespace_files: format!("{}/_files/", namespace.replace('.', "/")),
            parent_base: None,
        })
    }

    /// This view, also allowed to read (never write) the files of execution `execution_id` of
    /// flow `namespace.flow_id`: the execution that started this one (Kestra lets a subflow read
    /// the files its parent passed it, such as a ForEachItem batch).
    pub fn also_reading(
        mut self,
        namespace: &str,
        flow_id: &str,
        execution_id: &str,
    ) -> RepoResult<ExecutionFiles> {
        self.parent_base = Some(execution_base(namespace, flow_id, execution_id)?);
        Ok(self)
    }

    /// The execution's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The execution's flow id.
    pub fn flow_id(&self) -> &str {
        &self.flow_id
    }

    /// The execution's id.
    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// The store the files live in.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The URI prefix of this execution: `kestra:///{ns/as/path}/{flowId}/executions/{executionId}/`.
    pub fn base_uri(&self) -> String {
        format!("{URI_SCHEME}{}", self.base)
    }

    /// The URI of `relative` (a `/`-separated path) inside this execution, checked.
    pub fn uri_for(&self, relative: &str) -> RepoResult<String> {
        let uri = format!("{URI_SCHEME}{}{}", self.base, encode_path(relative));
        self.key_for(&uri, true)?;
        Ok(uri)
    }

    /// `.../tasks/{taskId}/{taskRunId}/{name}`: a file a task run writes.
    pub fn task_file_uri(
        &self,
        task_id: &str,
        task_run_id: &str,
        name: &str,
    ) -> RepoResult<String> {
        names::id("task id", task_id)?;
        names::id("task run id", task_run_id)?;
        check_file_name("file name", name)?;
        self.uri_for(&format!("tasks/{task_id}/{task_run_id}/{name}"))
    }

    /// `.../inputs/{inputId}/{fileName}`: a FILE input.
    pub fn input_file_uri(&self, input_id: &str, file_name: &str) -> RepoResult<String> {
        names::id("input id", input_id)?;
        check_file_name("input file name", file_name)?;
        self.uri_for(&format!("inputs/{input_id}/{file_name}"))
    }

    /// `kestra:///{ns/as/path}/_files/{path}`: a namespace file of the execution's namespace
    /// (what `fileURI('path')` returns).
    pub fn namespace_file_uri(&self, path: &str) -> RepoResult<String> {
        let path = path.trim_start_matches('/');
        let uri = format!("{URI_SCHEME}{}{}", self.namespace_files, encode_path(path));
        self.key_for(&uri, false)?;
        Ok(uri)
    }

    /// The storage key of `uri`, if this view may reach it (`write`: only the execution's own
    /// files; reads also reach the namespace's files and the parent execution's, if any).
    pub fn key_for(&self, uri: &str, write: bool) -> RepoResult<Key> {
        let path = decode_uri(uri)?;
        let inside = path
            .strip_prefix(&self.base)
            .is_some_and(|rest| !rest.is_empty())
            || (!write
                && [Some(&self.namespace_files), self.parent_base.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|base| path.strip_prefix(base).is_some_and(|rest| !rest.is_empty())));
        if !inside {
            return Err(RepoError::OutsideExecution {
                uri: uri.to_owned(),
                execution_id: self.execution_id.clone(),
                allowed: self.base_uri(),
            });
        }
        Key::new(format!("storage/{path}")).map_err(|e| RepoError::InvalidUri {
            uri: uri.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Writes a file (replacing it). 1 request (PUT). Returns the size written.
    pub async fn put(&self, uri: &str, bytes: Bytes) -> RepoResult<u64> {
        let key = self.key_for(uri, true)?;
        let size = bytes.len() as u64;
        self.store
            .put(&key, bytes, Condition::None)
            .await
            .map_err(|e| RepoError::store(format!("file `{uri}`"), e))?;
        Ok(size)
    }

    /// Writes a file from a stream, without holding it in memory. 1 PUT (or one multipart upload
    /// on S3: one request per part plus two).
    pub async fn put_stream(&self, uri: &str, body: BodyReader) -> RepoResult<()> {
        let key = self.key_for(uri, true)?;
        self.store
            .put_stream(&key, body, Condition::None)
            .await
            .map_err(|e| RepoError::store(format!("file `{uri}`"), e))?;
        Ok(())
    }

    /// Reads a whole file. 1 request (GET); `NotFound` when absent.
    pub async fn get(&self, uri: &str) -> RepoResult<Bytes> {
        let key = self.key_for(uri, false)?;
        self.store
            .get(&key)
            .await
            .map(|o| o.bytes)
            .map_err(|e| RepoError::store(format!("file `{uri}`"), e))
    }

    /// Reads a file as UTF-8 text (`read()`). 1 request (GET).
    pub async fn read_text(&self, uri: &str) -> RepoResult<String> {
        let bytes = self.get(uri).await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RepoError::NotText {
            uri: uri.to_owned(),
        })
    }

    /// Opens a file as a stream. 1 request (GET).
    pub async fn get_stream(&self, uri: &str) -> RepoResult<ObjectReader> {
        let key = self.key_for(uri, false)?;
        self.store
            .get_stream(&key)
            .await
            .map_err(|e| RepoError::store(format!("file `{uri}`"), e))
    }

    /// A file's size in bytes (`fileSize()`). 1 request (HEAD).
    pub async fn size(&self, uri: &str) -> RepoResult<u64> {
        let key = self.key_for(uri, false)?;
        self.store
            .head(&key)
            .await
            .map(|m| m.size)
            .map_err(|e| RepoError::store(format!("file `{uri}`"), e))
    }

    /// Deletes a file; deleting an absent file succeeds. 1 request (DELETE).
    pub async fn delete(&self, uri: &str) -> RepoResult<()> {
        let key = self.key_for(uri, true)?;
        self.store
            .delete(&key, None)
            .await
            .map_err(|e| RepoError::store(format!("file `{uri}`"), e))
    }

    /// Deletes every file of the execution (task files, FILE inputs, offloaded outputs); how
    /// many. 1 LIST per 1,000 files, 1 DELETE each.
    pub async fn delete_all(&self) -> RepoResult<usize> {
        self.store
            .delete_all(&format!("storage/{}", self.base))
            .await
            .map_err(|e| RepoError::store(format!("files of execution `{}`", self.execution_id), e))
    }

    /// Every file of the execution (or below `relative`, a directory path such as
    /// `tasks/t1`), in key order. 1 LIST request per 1,000 files.
    pub async fn list(&self, relative: Option<&str>) -> RepoResult<Vec<FileEntry>> {
        let mut prefix = format!("storage/{}", self.base);
        if let Some(rel) = relative
            .map(|r| r.trim_matches('/'))
            .filter(|r| !r.is_empty())
        {
            // checked like a file path, then used as a directory
            self.key_for(
                &format!("{URI_SCHEME}{}{}", self.base, encode_path(rel)),
                true,
            )?;
            prefix.push_str(rel);
            prefix.push('/');
        }
        let entries = self.store.list_all(&prefix).await.map_err(|e| {
            RepoError::store(format!("files of execution `{}`", self.execution_id), e)
        })?;
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let path = e.key.as_str().strip_prefix("storage/")?;
                Some(FileEntry {
                    uri: format!("{URI_SCHEME}{}", encode_path(path)),
                    size: e.size,
                })
            })
            .collect())
    }
}

/// The `read()`, `fileSize()` and `fileURI()` functions of expressions for one execution.
///
/// [`weft_flow::expr::ExprHost`] is synchronous: calls block on the store. Inside a multi-thread
/// tokio runtime they use `block_in_place`; outside any runtime they run on the handle given here. A
/// current-thread runtime cannot serve them (the call would block the thread that drives the I/O):
/// they fail with a clear error there.
#[derive(Clone, Debug)]
pub struct FilesExprHost {
    files: ExecutionFiles,
    handle: tokio::runtime::Handle,
    kv: Option<crate::repo::KvRepo>,
    logs: Option<crate::repo::LogRepo>,
    secrets: Option<weft_flow::expr::Secrets>,
    /// The secret values `secret()` returned, for masking them in logs.
    revealed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FilesExprHost {
    /// A host for `files`, running storage calls on `handle` when called outside a runtime.
    pub fn new(files: ExecutionFiles, handle: tokio::runtime::Handle) -> FilesExprHost {
        FilesExprHost {
            files,
            handle,
            kv: None,
            logs: None,
            secrets: None,
            revealed: Default::default(),
        }
    }

    /// Also serves `secret('KEY')` from `secrets`, remembering each value it returns
    /// ([`FilesExprHost::revealed`]).
    pub fn with_secrets(mut self, secrets: weft_flow::expr::Secrets) -> FilesExprHost {
        self.secrets = Some(secrets);
        self
    }

    /// The secret values rendered so far through this host (and its clones).
    pub fn revealed(&self) -> Vec<String> {
        self.revealed.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Also serves `errorLogs()` (the ERROR log records of the execution) from `logs`.
    pub fn with_logs(mut self, logs: crate::repo::LogRepo) -> FilesExprHost {
        self.logs = Some(logs);
        self
    }

    /// Also serves `kv('KEY')` (the execution's namespace) and `kv('KEY', namespace='ns')` from `kv`.
    pub fn with_kv(mut self, kv: crate::repo::KvRepo) -> FilesExprHost {
        self.kv = Some(kv);
        self
    }

    /// The execution's files.
    pub fn files(&self) -> &ExecutionFiles {
        &self.files
    }

    fn block<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = RepoResult<T>>,
    ) -> Result<T, String> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let result = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(fut))
            }
            Ok(_) => Err(RepoError::NoRuntime {
                what: format!("{what}()"),
                reason: "storage functions in expressions need a multi-thread tokio runtime",
            }),
            Err(_) => self.handle.block_on(fut),
        };
        result.map_err(|e| format!("{what}(): {e}"))
    }
}

impl weft_flow::expr::ExprHost for FilesExprHost {
    fn secret(&self, key: &str) -> Result<String, String> {
        let Some(secrets) = &self.secrets else {
            return Err(
                "secret() is not available here: no secrets were given to this renderer".to_owned(),
            );
        };
        let value = secrets.get(key)?;
        if let Ok(mut revealed) = self.revealed.lock()
            && !revealed.contains(&value)
        {
            revealed.push(value.clone());
        }
        Ok(value)
    }

    fn read(&self, uri: &str) -> Result<String, String> {
        self.block("read", self.files.read_text(uri))
    }

    fn file_size(&self, uri: &str) -> Result<u64, String> {
        self.block("fileSize", self.files.size(uri))
    }

    fn kv(&self, namespace: Option<&str>, key: &str) -> Result<Option<serde_json::Value>, String> {
        let Some(kv) = &self.kv else {
            return Err(
                "kv() is not available here: no KV store was given to this renderer".to_owned(),
            );
        };
        let namespace = namespace.unwrap_or(self.files.namespace());
        let now = chrono::Utc::now();
        self.block("kv", kv.get(namespace, key, now))
            .map(|entry| entry.map(|e| e.value))
    }

    fn file_uri(&self, path: &str) -> Result<String, String> {
        self.files
            .namespace_file_uri(path)
            .map_err(|e| format!("fileURI(): {e}"))
    }

    fn error_logs(&self) -> Result<serde_json::Value, String> {
        let Some(logs) = &self.logs else {
            return Err(
                "errorLogs() is not available here: no log store was given to this renderer"
                    .to_owned(),
            );
        };
        let records = self.block("errorLogs", logs.read_all(self.files.execution_id()))?;
        Ok(serde_json::Value::Array(
            records
                .into_iter()
                .filter(|r| r.get("level").and_then(serde_json::Value::as_str) == Some("ERROR"))
                .collect(),
        ))
    }
}
